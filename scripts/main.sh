#!/usr/bin/env bash
# The main job (README): installs what is missing, builds build/bin/rlhf and runs it on
# the bundled tiny model. Extra arguments are passed to `rlhf generate`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build.sh --target rlhf
set -x
build/bin/rlhf generate --model examples/models/tiny-gpt2 \
  --prompt "${RLHF_PROMPT:-The quick brown fox}" --max-new-tokens 32 --seed 1 "$@"
