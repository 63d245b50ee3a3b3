"""The ``bassl`` command: one subcommand per pipeline stage.

Every subcommand takes ``--config FILE`` (the user's YAML) and trailing ``key=value`` overrides, e.g.
``bassl synth --out data/synth synth.train_movies=20``. Only stages that work are listed.
"""

from __future__ import annotations

import argparse
import errno
import re
import sys
from collections.abc import Callable
from pathlib import Path

from bassl.config import Config, ConfigError, load_config, save_config
from bassl.errors import BasslError, DataError

Command = Callable[[argparse.Namespace, Config], int]
COMMANDS: dict[str, tuple[str, Callable[[argparse.ArgumentParser], None], Command]] = {}


def command(name: str, help: str, arguments: Callable[[argparse.ArgumentParser], None] = lambda p: None):
    """Register a subcommand: ``fn(args, cfg) -> exit code``."""

    def register(fn: Command) -> Command:
        COMMANDS[name] = (help, arguments, fn)
        return fn

    return register


# --------------------------------------------------------------------------------------------------
# synth: the built-in synthetic movies
# --------------------------------------------------------------------------------------------------


def _synth_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", required=True, type=Path, help="dataset root to write (MovieNet-SSeg layout)")


@command("synth", "write a synthetic dataset in the MovieNet-SSeg layout", _synth_args)
def _synth(args: argparse.Namespace, cfg: Config) -> int:
    from bassl.synth.generate import generate

    summary = generate(args.out, cfg.synth)
    save_config(cfg, args.out, "synth_config.yaml")
    print(summary.describe())
    return 0


# --------------------------------------------------------------------------------------------------
# validate: check a MovieNet-SSeg layout
# --------------------------------------------------------------------------------------------------


def _validate_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--root", type=Path, help="dataset root (default: data.root)")


@command("validate", "check a MovieNet-SSeg layout: frames, annotations, shot timing", _validate_args)
def _validate(args: argparse.Namespace, cfg: Config) -> int:
    from bassl.data.movienet import MovieNetSource

    source = MovieNetSource.from_config(cfg.data, root=args.root)
    report = source.validate(window_size=cfg.window_size)
    print(report.describe())
    return 0 if report.ok else 1


# --------------------------------------------------------------------------------------------------
# shard: keyframes -> WebDataset tar shards + DALI indexes + manifest
# --------------------------------------------------------------------------------------------------


def parse_part(text: str | None) -> tuple[int, int] | None:
    """``"I/N"`` (0 <= I < N, as Slurm array task ids) -> (I, N)."""
    if text is None:
        return None
    m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
    if not m or not 0 <= int(m.group(1)) < int(m.group(2)):
        raise DataError(f"--part {text!r}: expected I/N with 0 <= I < N, e.g. --part 3/16 (Slurm: "
                        "--part $SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT with --array=0-15)")
    return int(m.group(1)), int(m.group(2))


def _shard_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--source", type=Path, help="MovieNet-SSeg root (default: data.root)")
    p.add_argument("--out", help="shard directory, or s3:// gs:// URL prefix to publish to (default: data.shards)")
    p.add_argument("--staging", type=Path, help="with a URL --out: where shards are built before upload "
                                                "(default: under ~/.cache/bassl)")
    p.add_argument("--shard-size", default="1GB", help="target bytes per shard, e.g. 1GB, 256MB (default: 1GB)")
    p.add_argument("--workers", type=int, default=0, help="processes on this machine (default 0: one per core)")
    group = p.add_mutually_exclusive_group()
    group.add_argument("--part", metavar="I/N", help="build only part I of N (0 <= I < N), e.g. a Slurm array task")
    group.add_argument("--merge", action="store_true", help="after every --part finished: write the manifest")
    p.add_argument("--on-error", choices=("error", "skip"), default="error",
                   help="bad keyframe or empty movie: stop naming the file (default), or leave it out and report it")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


@command("shard", "pack keyframes into WebDataset tar shards with DALI indexes and a manifest (resumable)", _shard_args)
def _shard(args: argparse.Namespace, cfg: Config) -> int:
    from bassl.data.storage import is_remote
    from bassl.sharding.run import build_shards, merge_shards

    if args.workers < 0:
        raise ConfigError(f"--workers {args.workers}: give 0 (one per core) or more processes")
    out = args.out or cfg.data.shards
    out = out if is_remote(out) else str(Path(out).expanduser().resolve())
    if args.merge:
        summary = merge_shards(out, source_root=args.source, cfg=cfg)
    else:  # config.yaml is written with the manifest, not per part: parts sharing a directory would race on it
        summary = build_shards(cfg, args.source, out, shard_bytes=args.shard_size, workers=args.workers,
                               part=parse_part(args.part), on_error=args.on_error, progress=not args.no_progress,
                               staging=args.staging)
    print(summary.describe())
    return 0


# --------------------------------------------------------------------------------------------------
# import-checkpoint: an official BaSSL .ckpt -> our weights export
# --------------------------------------------------------------------------------------------------


def _import_checkpoint_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--ckpt", required=True, type=Path, help="official checkpoint, e.g. pretrain/ckpt/bassl/model-v1.ckpt")
    p.add_argument("--out", required=True, type=Path, help="weights file to write (our export format; loads with weights_only)")


@command(
    "import-checkpoint",
    "convert an official BaSSL checkpoint (tensors only, nothing executed); pass the method it was trained with",
    _import_checkpoint_args,
)
def _import_checkpoint(args: argparse.Namespace, cfg: Config) -> int:
    from bassl.models.official_checkpoint import import_official_checkpoint

    print(import_official_checkpoint(args.ckpt, args.out, cfg).describe())
    return 0


# --------------------------------------------------------------------------------------------------
# pretrain: self-supervised pre-training with the DeepSpeed engine
# --------------------------------------------------------------------------------------------------


def _pretrain_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", type=Path, help="run directory (default: pretrain.output_dir)")
    p.add_argument("--resume", action="store_true", help="continue from the run directory's latest checkpoint")
    p.add_argument("--fresh", action="store_true",
                   help="start again at step 0 in a run directory that holds checkpoints (they, its encoder.pt and "
                        "TensorBoard logs are deleted)")
    p.add_argument("--max-steps", type=int, help="stop after this many global steps (the schedule still spans all "
                   "epochs); 0 writes the initial encoder.pt")


@command("pretrain", "pre-train the shot encoder (and CRN) on the shards; one process, deepspeed, torchrun or srun",
         _pretrain_args)
def _pretrain(args: argparse.Namespace, cfg: Config) -> int:
    from bassl.train.pretrain import pretrain

    result = pretrain(cfg, args.out or Path(cfg.pretrain.output_dir), resume=args.resume, max_steps=args.max_steps,
                      fresh=args.fresh)
    return 0 if result["step"] > 0 or result["stopped"] or args.max_steps == 0 else 1


# --------------------------------------------------------------------------------------------------
# extract / finetune / evaluate
# --------------------------------------------------------------------------------------------------


def _extract_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--weights", required=True, type=Path, help="encoder.pt from `bassl pretrain` or `bassl import-checkpoint`")
    p.add_argument("--out", type=Path, help="feature directory (default: extract.output_dir)")


@command("extract", "shot features of a frozen encoder to Parquet (every shot once; resumable)", _extract_args)
def _extract(args: argparse.Namespace, cfg: Config) -> int:
    from bassl.train.extract import extract

    extract(cfg, args.weights, args.out or Path(cfg.extract.output_dir))
    return 0


def _finetune_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--features", required=True, type=Path, help="feature directory written by `bassl extract`")
    p.add_argument("--out", type=Path, help="run directory (default: finetune.output_dir)")
    p.add_argument("--weights", type=Path, help="pre-trained encoder.pt for the CRN (default: the one the features name)")


@command("finetune", "train the boundary model (model.boundary.head) on the features; evaluate every epoch; write the report",
         _finetune_args)
def _finetune(args: argparse.Namespace, cfg: Config) -> int:
    from bassl.train.finetune import finetune

    finetune(cfg, args.features, args.out or Path(cfg.finetune.output_dir), weights=args.weights)
    return 0


def _evaluate_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--predictions", required=True, type=Path, help="predictions_test.parquet from `bassl finetune`")
    p.add_argument("--out", required=True, type=Path, help="where report.json and the plots go")


@command("evaluate", "MovieNet-SSeg metrics (AP, mIoU, AUC-ROC, F1, Recall, Recall@3s), report JSON and plots",
         _evaluate_args)
def _evaluate(args: argparse.Namespace, cfg: Config) -> int:
    from bassl.eval.evaluate import evaluate_file

    report = evaluate_file(cfg, args.predictions, args.out)
    print(", ".join(f"{k} {v:.2f}" for k, v in report["test"].items()) + f"; report in {args.out / 'report.json'}")
    return 0


# --------------------------------------------------------------------------------------------------
# ingest / segment: raw video files
# --------------------------------------------------------------------------------------------------


def _ingest_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("videos", nargs="*", metavar="VIDEO_OR_DIR", help="video files, or directories searched for them")
    p.add_argument("--out", required=True, type=Path, help="dataset root to write (MovieNet-SSeg layout)")
    group = p.add_mutually_exclusive_group()
    group.add_argument("--part", metavar="I/N", help="ingest only part I of N of the files (0 <= I < N), e.g. a Slurm "
                                                     "array task; then --merge once")
    group.add_argument("--merge", action="store_true", help="after every --part finished: write the annotation files")
    p.add_argument("--on-error", choices=("error", "skip"), default="error",
                   help="an unreadable or empty video: stop naming it (default), or skip it and list it in ingest_report.json")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


@command("ingest", "video files -> shots and keyframes in the MovieNet-SSeg layout (for shard and pretrain; resumable)",
         _ingest_args)
def _ingest(args: argparse.Namespace, cfg: Config) -> int:
    from bassl.video.ingest import ingest_videos, merge_ingest

    if args.merge:
        if args.videos:
            raise ConfigError(f"--merge reads the finished --part runs under --out; it takes no videos "
                              f"(given: {' '.join(map(str, args.videos))})")
        print(merge_ingest(args.out).describe())
        return 0
    summary = ingest_videos(args.videos, args.out, cfg.video, on_error=args.on_error, progress=not args.no_progress,
                            part=parse_part(args.part))
    save_config(cfg, args.out, "ingest_config.yaml")
    print(summary.describe())
    return 0


def _segment_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("video", help="the video file to segment")  # a str: parse_args may swap it with an override
    p.add_argument("--model", required=True, type=Path,
                   help="segmenter.pt from `bassl finetune` (or `bassl demo`), or an encoder.pt (no fine-tuning)")
    p.add_argument("--out", required=True, type=Path, help="where scenes.json, .csv, .edl, chapters and the contact sheet go")
    p.add_argument("--split", action="store_true", help="also cut the video into one clip per scene (clips/)")
    p.add_argument("--html-video", metavar="URL", help="the video scenes.html plays (default: its path relative to --out)")


@command("segment", "a video file -> its scenes (JSON, CSV, EDL, chapters, a viewer page, contact sheet, optional clips)",
         _segment_args)
def _segment(args: argparse.Namespace, cfg: Config) -> int:
    from bassl.scenes.segment import segment

    segment(cfg, args.video, args.model, args.out, split=args.split, html_video=args.html_video)
    return 0


# --------------------------------------------------------------------------------------------------
# demo: the README's first command
# --------------------------------------------------------------------------------------------------


def _demo_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", type=Path, default=Path("demo_run"), help="where the demo writes everything")


@command("demo", "run the pipeline end to end on built-in synthetic data", _demo_args)
def _demo(args: argparse.Namespace, cfg: Config) -> int:
    from bassl.demo import run_demo

    return run_demo(args.out, cfg)


# --------------------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bassl", description=__doc__.splitlines()[0])
    # the deepspeed launcher inserts --local_rank=N before the subcommand; the rank is read from the environment
    parser.add_argument("--local_rank", "--local-rank", type=int, help=argparse.SUPPRESS)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (help_text, arguments, _) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        arguments(p)
        p.add_argument("--config", type=Path, help="your YAML config (applied after the presets)")
        # the deepspeed launcher appends --local_rank=N; the rank is read from the environment instead
        p.add_argument("--local_rank", "--local-rank", type=int, help=argparse.SUPPRESS)
        p.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides, e.g. pretrain.epochs=2")
    return parser


OVERRIDE = re.compile(r"^[A-Za-z_][\w.]*=")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """argparse fills the positionals in one go, so ``key=value`` after an option would be refused and one before
    it could land in a list of paths: collect every ``key=value`` as an override, wherever it stands."""
    parser = build_parser()
    args, rest = parser.parse_known_args(argv)
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices
    error = commands[args.command].error  # the subcommand's usage with the message, not the top-level one
    unknown = [a for a in rest if not OVERRIDE.match(a)]
    if unknown:
        error(f"unrecognized arguments: {' '.join(unknown)}")
    overrides = [a for a in args.overrides if OVERRIDE.match(a)] + [a for a in rest if OVERRIDE.match(a)]
    stray = [a for a in args.overrides if not OVERRIDE.match(a)]
    if args.command == "segment":  # `segment key=value VIDEO`: argparse took the override for the video
        words = [args.video, *stray]
        overrides += [w for w in words if OVERRIDE.match(w) and not Path(w).exists()]
        videos = [w for w in words if not (OVERRIDE.match(w) and not Path(w).exists())]
        if not videos:
            error("give the video file to segment")
        if len(videos) > 1:
            error(f"segment takes one video file, not {len(videos)} ({' '.join(videos)}); for many, call it once "
                  "per file, or `bassl ingest` a folder")
        args.video, stray = Path(videos[0]), []
    if stray:
        error(f"{' '.join(stray)}: expected key=value (a config override, e.g. pretrain.epochs=2)")
    if hasattr(args, "videos"):  # `ingest DIR key=value`: the override is not a video
        overrides += [v for v in args.videos if OVERRIDE.match(v) and not Path(v).exists()]
        args.videos = [v for v in args.videos if not (OVERRIDE.match(v) and not Path(v).exists())]
        if not args.videos and not args.merge:
            error("give at least one video file or directory (or --merge after --part runs)")
    given = list(sys.argv[1:] if argv is None else argv)
    args.overrides = sorted(overrides, key=given.index)  # later wins, as written
    return args


USERS_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EMFILE}


def is_users_to_fix(e: OSError) -> bool:
    """An OS error the user fixes (a path, space, permissions): one line, no traceback."""
    return e.filename is not None or e.errno in USERS_ERRNOS


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        overrides = list(args.overrides)
        if args.command == "demo":
            from bassl.demo import DEMO_OVERRIDES

            overrides = DEMO_OVERRIDES + overrides  # the user's key=value still win
        cfg = load_config(overrides, config_file=args.config)
        _, _, fn = COMMANDS[args.command]
        return fn(args, cfg)
    except ConfigError as e:
        print(f"bassl {args.command}: config error: {e}", file=sys.stderr)
        return 2
    except BasslError as e:
        print(f"bassl {args.command}: {e}", file=sys.stderr)
        return 1
    except OSError as e:  # a folder that is a file, a read-only disk, no space: the file and the reason, no traceback
        if not is_users_to_fix(e):  # a bug or a network error: with its traceback
            raise
        print(f"bassl {args.command}: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"bassl {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
