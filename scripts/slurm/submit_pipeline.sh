#!/usr/bin/env bash
# Submit the whole pipeline as a chain of Slurm jobs, each starting after the previous one succeeded
# (--dependency=afterok): shard array + merge -> pre-training -> extraction -> fine-tuning + evaluation.
#
#   BASSL_DATA=/data/movienet BASSL_WORK=/scratch/$USER/bassl NODES=2 GPUS_PER_NODE=8 CPUS_PER_TASK=12 \
#   PRETRAIN_SBATCH="--time=24:00:00" scripts/slurm/submit_pipeline.sh method=bassl
#
# Arguments are key=value overrides for every `bassl` command of the chain. Prints one line,
# "shard=<id> merge=<id> pretrain=<id> extract=<id> finetune=<id>" (only the stages submitted).
# A pre-training job that is preempted or reaches its time limit requeues itself; the jobs after it wait.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

# ---- paths -------------------------------------------------------------------------------------------------
BASSL_DATA=${BASSL_DATA:-}                              # required: MovieNet-SSeg root
BASSL_WORK=${BASSL_WORK:-}                              # where everything below goes by default (shared filesystem)
BASSL_SHARDS=${BASSL_SHARDS:-${BASSL_WORK:+$BASSL_WORK/shards}}
BASSL_RUN=${BASSL_RUN:-${BASSL_WORK:+$BASSL_WORK/pretrain}}
BASSL_FEATURES=${BASSL_FEATURES:-${BASSL_RUN:+$BASSL_RUN/features}}
BASSL_FINETUNE=${BASSL_FINETUNE:-${BASSL_RUN:+$BASSL_RUN/finetune}}
# ---- sizes -------------------------------------------------------------------------------------------------
STAGES=${STAGES:-shard pretrain extract finetune}       # a subset runs only those (in this order)
NODES=${NODES:-1}                                       # pre-training nodes
GPUS_PER_NODE=${GPUS_PER_NODE:-8}                       # 0 on CPU nodes
TASKS_PER_NODE=${TASKS_PER_NODE:-$((GPUS_PER_NODE > 0 ? GPUS_PER_NODE : 1))}  # ranks per node (= GPUs)
CPUS_PER_TASK=${CPUS_PER_TASK:-8}                       # loader threads per rank
EXTRACT_NODES=${EXTRACT_NODES:-$NODES}
FINETUNE_TASKS=${FINETUNE_TASKS:-1}                     # fine-tuning is small: one rank (one GPU) by default
BASSL_PARTS=${BASSL_PARTS:-8}                           # shard array size
SHARD_CPUS=${SHARD_CPUS:-4}
SHARD_ARGS=${SHARD_ARGS:-}                              # for `bassl shard`, word-split, e.g. "--shard-size 1GB --on-error skip"
# Extra sbatch options, word-split: for every job, and per stage (e.g. --time=..., --partition=...).
SBATCH_FLAGS=${SBATCH_FLAGS:-}
SHARD_SBATCH=${SHARD_SBATCH:-}
PRETRAIN_SBATCH=${PRETRAIN_SBATCH:-}
EXTRACT_SBATCH=${EXTRACT_SBATCH:-}
FINETUNE_SBATCH=${FINETUNE_SBATCH:-}

die() { echo "[bassl-slurm] error: $*" >&2; exit 1; }
command -v sbatch >/dev/null || die "sbatch not found: run this on a Slurm login node"
[ -n "$BASSL_DATA" ] && [ -d "$BASSL_DATA" ] || die "BASSL_DATA='$BASSL_DATA' is not a directory (the MovieNet-SSeg root)"
[ -n "$BASSL_SHARDS" ] && [ -n "$BASSL_RUN" ] || die "set BASSL_WORK (or BASSL_SHARDS and BASSL_RUN)"
[ "$GPUS_PER_NODE" -eq 0 ] || [ "$TASKS_PER_NODE" -eq "$GPUS_PER_NODE" ] \
    || die "TASKS_PER_NODE=$TASKS_PER_NODE but GPUS_PER_NODE=$GPUS_PER_NODE: one rank per GPU"
for stage in $STAGES; do
    case $stage in shard|pretrain|extract|finetune) ;; *) die "STAGES: unknown stage '$stage' (shard pretrain extract finetune)" ;; esac
done
export BASSL_DATA BASSL_SHARDS BASSL_RUN BASSL_FEATURES BASSL_FINETUNE BASSL_PARTS

# shellcheck disable=SC2206
all=($SBATCH_FLAGS)
gpus() { [ "$GPUS_PER_NODE" -gt 0 ] && echo "--gpus-per-node=$1" || true; }
submit() {  # sbatch options... script [args]
    local cmd=(sbatch --parsable ${dependency:+--dependency=afterok:$dependency} "${all[@]}" "$@")
    echo "[bassl-slurm] + $(printf '%q ' "${cmd[@]}")" >&2
    local id
    id=$("${cmd[@]}") || die "sbatch failed"
    echo "${id%%;*}"
}

dependency=
ids=()
for stage in $STAGES; do
    case $stage in
    shard)
        # shellcheck disable=SC2086
        line=$(CPUS_PER_TASK=$SHARD_CPUS "$here/submit_shard.sh" "${all[@]}" $SHARD_SBATCH -- $SHARD_ARGS "$@")
        ids+=("$line")
        dependency=${line##*merge=}
        ;;
    pretrain)
        # shellcheck disable=SC2046,SC2086
        dependency=$(submit --nodes="$NODES" --ntasks-per-node="$TASKS_PER_NODE" --cpus-per-task="$CPUS_PER_TASK" \
            $(gpus "$GPUS_PER_NODE") $PRETRAIN_SBATCH "$here/pretrain.sbatch" "$@")
        ids+=("pretrain=$dependency")
        ;;
    extract)
        # shellcheck disable=SC2046,SC2086
        dependency=$(submit --nodes="$EXTRACT_NODES" --ntasks-per-node="$TASKS_PER_NODE" --cpus-per-task="$CPUS_PER_TASK" \
            $(gpus "$GPUS_PER_NODE") $EXTRACT_SBATCH "$here/extract.sbatch" "$@")
        ids+=("extract=$dependency")
        ;;
    finetune)
        # shellcheck disable=SC2046,SC2086
        dependency=$(submit --nodes=1 --ntasks="$FINETUNE_TASKS" --cpus-per-task="$CPUS_PER_TASK" \
            $(gpus "$FINETUNE_TASKS") $FINETUNE_SBATCH "$here/finetune.sbatch" "$@")
        ids+=("finetune=$dependency")
        ;;
    esac
done
echo "${ids[*]}"
