#!/usr/bin/env bash
# The main job (README): installs what is missing, builds build/bin/rlhf, then runs the
# bundled alignment demo (examples/demo/run_demo.py): SFT a tiny GPT-2 from random
# weights, train a reward model on preference pairs, PPO against it and, separately, DPO,
# each stage a `rlhf local` job with every service in one process; then evaluate on
# held-out data and write a report to out/demo/report/ (summary.md, plots, metrics).
# Extra arguments go to run_demo.py (--out DIR, --quick, --check, --quiet).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build.sh --target rlhf
exec .venv/bin/python examples/demo/run_demo.py "$@"
