#!/usr/bin/env bash
# Submit the shard array (parts 0..N-1) and the merge job that runs once all of them succeeded.
#
#   BASSL_DATA=/data/movienet BASSL_SHARDS=/scratch/movienet/shards BASSL_PARTS=16 CPUS_PER_TASK=8 \
#     scripts/slurm/submit_shard.sh [sbatch options for both jobs] [-- arguments for `bassl shard`]
#
# e.g. scripts/slurm/submit_shard.sh --partition=cpu --time=2:00:00 -- --on-error skip
# Prints "shard=<array job id> merge=<merge job id>". If a task fails, the merge is cancelled by Slurm
# (or stays pending: DependencyNeverSatisfied); run this again: finished parts are not rebuilt.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

BASSL_DATA=${BASSL_DATA:-}
BASSL_SHARDS=${BASSL_SHARDS:-}
BASSL_PARTS=${BASSL_PARTS:-8}           # array size N (each task packs 1/N of the movies)
CPUS_PER_TASK=${CPUS_PER_TASK:-4}       # JPEG bytes are copied, not decoded: a few cores per task suffice

die() { echo "[bassl-slurm] error: $*" >&2; exit 1; }
command -v sbatch >/dev/null || die "sbatch not found: run this on a Slurm login node"
[ -n "$BASSL_DATA" ] && [ -d "$BASSL_DATA" ] || die "BASSL_DATA='$BASSL_DATA' is not a directory (the MovieNet-SSeg root)"
[ -n "$BASSL_SHARDS" ] || die "BASSL_SHARDS is not set (the shard directory to write)"
[ "$BASSL_PARTS" -ge 1 ] || die "BASSL_PARTS=$BASSL_PARTS must be >= 1"
export BASSL_DATA BASSL_SHARDS BASSL_PARTS
opts=()
while [ $# -gt 0 ] && [ "$1" != -- ]; do opts+=("$1"); shift; done
[ $# -eq 0 ] || shift  # the --
extra=("$@")

array=(sbatch --parsable --array="0-$((BASSL_PARTS - 1))" --cpus-per-task="$CPUS_PER_TASK" "${opts[@]}"
       "$here/shard.sbatch" "${extra[@]}")
echo "[bassl-slurm] + $(printf '%q ' "${array[@]}")" >&2
array_id=$("${array[@]}")
array_id=${array_id%%;*}
merge=(sbatch --parsable --dependency="afterok:$array_id" "${opts[@]}" "$here/shard_merge.sbatch" "${extra[@]}")
echo "[bassl-slurm] + $(printf '%q ' "${merge[@]}")" >&2
merge_id=$("${merge[@]}")
merge_id=${merge_id%%;*}
echo "shard=$array_id merge=$merge_id"
