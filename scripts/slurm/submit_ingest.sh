#!/usr/bin/env bash
# Submit the ingest array (parts 0..N-1) and the merge job that runs once all of them succeeded.
#
#   BASSL_VIDEOS=/data/my_videos BASSL_DATA=/scratch/my_videos_layout BASSL_PARTS=100 CPUS_PER_TASK=4 \
#     scripts/slurm/submit_ingest.sh [sbatch options for both jobs] [-- arguments for `bassl ingest`]
#
# e.g. scripts/slurm/submit_ingest.sh --partition=cpu --time=4:00:00 -- --on-error skip
# Prints "ingest=<array job id> merge=<merge job id>". If a task fails, run this again: finished videos are kept.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

BASSL_VIDEOS=${BASSL_VIDEOS:-}
BASSL_DATA=${BASSL_DATA:-}
BASSL_PARTS=${BASSL_PARTS:-8}           # array size N (each task ingests 1/N of the files)
CPUS_PER_TASK=${CPUS_PER_TASK:-4}       # videos decoded at once per task

die() { echo "[bassl-slurm] error: $*" >&2; exit 1; }
command -v sbatch >/dev/null || die "sbatch not found: run this on a Slurm login node"
[ -n "$BASSL_VIDEOS" ] && [ -e "$BASSL_VIDEOS" ] || die "BASSL_VIDEOS='$BASSL_VIDEOS' does not exist (the video directory)"
[ -n "$BASSL_DATA" ] || die "BASSL_DATA is not set (the layout root to write)"
[ "$BASSL_PARTS" -ge 1 ] || die "BASSL_PARTS=$BASSL_PARTS must be >= 1"
export BASSL_VIDEOS BASSL_DATA BASSL_PARTS
opts=()
while [ $# -gt 0 ] && [ "$1" != -- ]; do opts+=("$1"); shift; done
[ $# -eq 0 ] || shift  # the --
extra=("$@")

array=(sbatch --parsable --array="0-$((BASSL_PARTS - 1))" --cpus-per-task="$CPUS_PER_TASK" "${opts[@]}"
       "$here/ingest.sbatch" "${extra[@]}")
echo "[bassl-slurm] + $(printf '%q ' "${array[@]}")" >&2
array_id=$("${array[@]}")
array_id=${array_id%%;*}
merge=(sbatch --parsable --dependency="afterok:$array_id" "${opts[@]}" "$here/ingest_merge.sbatch")
echo "[bassl-slurm] + $(printf '%q ' "${merge[@]}")" >&2
merge_id=$("${merge[@]}")
merge_id=${merge_id%%;*}
echo "ingest=$array_id merge=$merge_id"
