#!/usr/bin/env bash
# The main job (README): installs what is missing, builds build/bin/rlhf and runs the
# bundled PPO job with every service in one process (`rlhf local`), then samples from the
# trained policy. Extra arguments are passed to `rlhf local` (e.g. another job file first).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build.sh --target rlhf
job=${1:-examples/jobs/ppo.json}
[ $# -gt 0 ] && shift
set -x
build/bin/rlhf local "$job" "$@"
build/bin/rlhf generate --model checkpoints/ppo-tiny-gpt2/final \
  --prompt "${RLHF_PROMPT:-Write a haiku about the sea.}" --max-new-tokens 16 --seed 1
