#!/usr/bin/env bash
# The bundled demo (issue 5), short variant with fixed seeds:
#   1. examples/demo/run_demo.py --quick --check: SFT from random weights -> reward model
#      -> PPO, and DPO from the SFT model; every effect must go the right way on held-out
#      data (the checks are listed in the report); the report has its files;
#   2. the same PPO stage across separate service processes (rlhf submit to a coordinator
#      and four servers) gives the same first iterations as the in-process run;
#   3. the PPO stage in bf16-mixed precision learns and tracks the float32 run.
# Usage: demo_test.sh BIN_DIR PYTHON   (run from the repository root)
set -uo pipefail
source "$(dirname "$0")/testlib.sh"
bin=$(cd "$1" && pwd)
python=$2
work=$(mktemp -d)
declare -A pid port mport
cleanup() {  # servers drain on SIGTERM; kill -9 what is left after 10 s
  for name in "${!pid[@]}"; do kill "${pid[$name]}" 2>/dev/null; done
  for _ in $(seq 1 100); do
    alive=0
    for name in "${!pid[@]}"; do kill -0 "${pid[$name]}" 2>/dev/null && alive=1; done
    [ $alive -eq 0 ] && break
    sleep 0.1
  done
  for name in "${!pid[@]}"; do kill -9 "${pid[$name]}" 2>/dev/null; done
  wait 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
out=$work/demo

# 1. The pipeline, in-process.
if "$python" examples/demo/run_demo.py --quick --check --quiet --rlhf "$bin/rlhf" \
    --out "$out" >"$work/demo.log" 2>&1; then
  ok "quick demo: every effect in the right direction"
else
  fail "quick demo: a stage failed or a check did not hold:"
  tail -60 "$work/demo.log"
fi
grep -E '^- \[' "$out/report/summary.md"
for file in summary.md summary.json metrics/sft.jsonl metrics/reward_model.jsonl \
    metrics/ppo.jsonl metrics/dpo.jsonl samples/sft.jsonl samples/ppo.jsonl samples/dpo.jsonl; do
  [ -s "$out/report/$file" ] || fail "report lacks $file"
done
for stage in sft reward_model ppo dpo; do
  if [ "$(head -c 4 "$out/report/plots/$stage.png" 2>/dev/null | od -An -c | tr -d ' ')" = "211PNG" ]; then
    ok "report has a PNG plot for $stage"
  else
    fail "report lacks plots/$stage.png"
  fi
done

# 2. The PPO stage again, across processes: same seed, same first iterations.
start actor "$bin/rlhf-actor" --model "$out/sft/final"
start rollout "$bin/rlhf-rollout" --model "$out/sft/final"
start reference "$bin/rlhf-reference" --model "$out/sft/final"
start reward "$bin/rlhf-reward" --scorer model --model "$out/reward_model/final"
start coordinator "$bin/rlhf-coordinator" --state-db "$work/jobs.sqlite"
for name in actor rollout reference reward coordinator; do wait_serving $name; done
"$python" - "$out/jobs/ppo.json" "$work/ppo-remote.json" "$work/ckpt" <<PYEOF
import json, shutil, sys
job = json.load(open(sys.argv[1]))
job["training"]["iterations"] = 3
job["checkpoint"] = {"dir": sys.argv[3], "interval": 0}
# The servers run in the work directory and read only under it (--data-root).
shutil.copy(job["data"]["train_path"], sys.argv[3] + "-prompts.jsonl")
job["data"]["train_path"] = sys.argv[3] + "-prompts.jsonl"
job["endpoints"] = {"actor": "127.0.0.1:${port[actor]}", "rollout": ["127.0.0.1:${port[rollout]}"],
                    "reference": "127.0.0.1:${port[reference]}",
                    "reward": "127.0.0.1:${port[reward]}"}
json.dump(job, open(sys.argv[2], "w"))
PYEOF
coord=127.0.0.1:${port[coordinator]}
id=$("$bin/rlhf" submit "$work/ppo-remote.json" --coordinator "$coord")
expect "PPO stage across processes succeeds" 0 "SUCCEEDED" -- \
  "$bin/rlhf" watch "$id" --coordinator "$coord" --metrics-jsonl "$work/remote.jsonl"
expect "first 3 PPO iterations match the in-process run" 0 "match" -- \
  "$python" - "$out/report/metrics/ppo.jsonl" "$work/remote.jsonl" <<'PYEOF'
import json, sys
local = [json.loads(line) for line in open(sys.argv[1])][:3]
remote = [json.loads(line) for line in open(sys.argv[2])]
assert len(remote) == 3, f"remote run has {len(remote)} iterations"
bad, worst = [], 0.0
for a, b in zip(local, remote):
    for key in ["reward_mean", "kl", "loss", "policy_loss", "value_loss", "entropy",
                "response_length"]:
        worst = max(worst, abs(a[key] - b[key]))
        if abs(a[key] - b[key]) > 1e-3 * max(1.0, abs(a[key])):
            bad.append(f"iteration {a['iteration']} {key}: local {a[key]} remote {b[key]}")
print("\n".join(bad) if bad else f"first iterations match (largest difference {worst:.3g})")
sys.exit(1 if bad else 0)
PYEOF

# 3. bf16-mixed precision (runtime.precision; CPU bf16 autocast, float32 master weights and
#    AdamW state): the same PPO stage in-process still learns, and its first iteration
#    (the same rollout: the sampler is float32) tracks the float32 run.
"$python" - "$out/jobs/ppo.json" "$work/ppo-bf16.json" "$work/bf16" <<'PYEOF'
import json, sys
job = json.load(open(sys.argv[1]))
job["runtime"]["precision"] = "bf16-mixed"
job["checkpoint"] = {"dir": sys.argv[3], "interval": 0}
json.dump(job, open(sys.argv[2], "w"))
PYEOF
expect "bf16-mixed PPO stage succeeds" 0 "SUCCEEDED" -- \
  "$bin/rlhf" local "$work/ppo-bf16.json" --metrics-jsonl "$work/bf16.jsonl"
expect "bf16-mixed PPO learns and tracks float32" 0 "tracks" -- \
  "$python" - "$out/report/metrics/ppo.jsonl" "$work/bf16.jsonl" "$out/jobs/ppo.json" \
  "$work/bf16-check.txt" <<'PYEOF'
import json, sys
fp32 = [json.loads(line) for line in open(sys.argv[1])]
bf16 = [json.loads(line) for line in open(sys.argv[2])]
target = json.load(open(sys.argv[3]))["kl"]["target"]
bad = []
if len(bf16) != len(fp32):
    bad.append(f"{len(bf16)} bf16 iterations, {len(fp32)} fp32")
first = lambda rows, key: rows[0][key]
if first(bf16, "reward_mean") != first(fp32, "reward_mean"):
    bad.append("the first rollout differs (the sampler should be float32 in both)")
for key in ["loss", "policy_loss", "value_loss", "entropy"]:
    a, b = first(fp32, key), first(bf16, key)
    if abs(a - b) > 0.05 * max(1.0, abs(a)):
        bad.append(f"iteration 1 {key}: fp32 {a:.5f} bf16 {b:.5f} (tolerance 5%)")
k = max(1, len(bf16) // 5)
early = sum(r["reward_mean"] for r in bf16[:k]) / k
late = sum(r["reward_mean"] for r in bf16[-k:]) / k
if not late > early:
    bad.append(f"reward did not rise: first {k} iterations {early:.3f}, last {k} {late:.3f}")
if not 0 <= bf16[-1]["kl"] < target:
    bad.append(f"final KL {bf16[-1]['kl']:.3f} not under the target {target}")
summary = ("\n".join(bad) if bad else
      f"bf16-mixed tracks fp32 (iteration 1 loss {first(fp32, 'loss'):.4f} vs "
      f"{first(bf16, 'loss'):.4f}); reward {early:.3f} -> {late:.3f}, final KL "
      f"{bf16[-1]['kl']:.3f} < {target}")
print(summary)
open(sys.argv[4], "w").write(summary + "\n")
sys.exit(1 if bad else 0)
PYEOF
cat "$work/bf16-check.txt" 2>/dev/null

# rlhf eval: bad flags and inputs are one clear line.
expect "eval without a model" 2 "give --policy and/or --reward-model" -- \
  "$bin/rlhf" eval --pairs examples/demo/data/heldout.jsonl
expect "eval of pairs with a policy but no reference" 2 "--pairs needs --reward-model" -- \
  "$bin/rlhf" eval --policy "$out/sft/final" --pairs examples/demo/data/heldout.jsonl
expect "eval of a missing model" 1 "/nonexistent: cannot open" -- \
  "$bin/rlhf" eval --reward-model /nonexistent --pairs examples/demo/data/heldout.jsonl
expect "eval of prompts as pairs" 2 "prompts.jsonl:1: missing field .chosen." -- \
  "$bin/rlhf" eval --reward-model "$out/reward_model/final" --pairs examples/demo/data/prompts.jsonl
finish
