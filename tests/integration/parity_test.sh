#!/usr/bin/env bash
# One behaviour, every topology: the same jobs, with every optimizer, reward and loss
# field set away from its default, run (1) with `rlhf local` and (2) across five
# processes on loopback, give bitwise-identical training metrics for their first
# iterations. The servers are started with flags that contradict the jobs (another
# learning rate and weight decay on the actor, another scorer on the reward server): the
# job's own values must reach them.
# grpochat trains on conversational prompts rendered with the model's chat template; raft
# is rejection sampling (best of 2 per prompt, SFT steps).
# Usage: parity_test.sh BIN_DIR   (run from the repository root)
set -uo pipefail
source "$(dirname "$0")/testlib.sh"
servers_setup "$1"
cp tests/golden/fixtures/chat/templates/chatml.jinja "$model/chat_template.jinja"

start actor "$bin/rlhf-actor" --model "$model" --value-head --lr 5e-2 --weight-decay 0.3
start rollout "$bin/rlhf-rollout" --model "$model"
start reference "$bin/rlhf-reference" --model "$model"
start reward "$bin/rlhf-reward" --scorer length --target-length 3
start coordinator "$bin/rlhf-coordinator" --state-db "$work/jobs.sqlite" --connect-timeout 10
for name in actor rollout reference reward coordinator; do wait_serving $name; done
coord=127.0.0.1:${port[coordinator]}

printf '%s\n' '{"prompt": "hello world"}' '{"prompt": "the quick brown fox"}' \
  '{"prompt": "once upon a time"}' '{"prompt": "a b c"}' >"$work/prompts.jsonl"
sed 's/"prompt": \("[^"]*"\)/"prompt": [{"role": "user", "content": \1}]/' "$work/prompts.jsonl" \
  >"$work/chat-prompts.jsonl"
# job NAME ALGORITHM EXTRA_JSON [ENDPOINTS_JSON]
job() {
  cat >"$work/$1.json" <<JOB
{"name": "$1", "algorithm": "$2", "models": {"policy_dir": "$model"},
 "data": {"train_path": "$work/prompts.jsonl"},
 "optimizer": {"learning_rate": 2e-4, "weight_decay": 0.05, "adam_beta1": 0.85,
               "adam_beta2": 0.99, "adam_epsilon": 1e-6, "grad_clip": 0.7, "warmup_steps": 2},
 "training": {"batch_size": 4, "minibatch_size": 2, "ppo_epochs": 2, "iterations": 3},
 "ppo": {"gamma": 0.97, "gae_lambda": 0.9, "clip_range": 0.15, "clip_range_value": 0.3,
         "vf_coef": 0.2, "entropy_coef": 0.01, "whiten_advantages": false},
 "reward": {"kind": "regex", "pattern": "[aeiou][a-z]", "match_reward": 2.0,
            "mismatch_reward": -0.5},
 "checkpoint": {"dir": "$work/ckpt-$1", "interval": 0}, "runtime": {"seed": 11} $3 ${4:-}}
JOB
  echo "$work/$1.json"
}
endpoints=", \"endpoints\": {\"actor\": \"127.0.0.1:${port[actor]}\",
  \"rollout\": [\"127.0.0.1:${port[rollout]}\"], \"reference\": \"127.0.0.1:${port[reference]}\",
  \"reward\": \"127.0.0.1:${port[reward]}\"}"
ppo_extra=', "kl": {"coef": 0.07, "adaptive": true, "target": 3, "horizon": 500, "estimator": "k3"},
 "generation": {"max_prompt_tokens": 16, "max_response_tokens": 8, "temperature": 0.9,
                "top_p": 0.95, "top_k": 50}'
grpo_extra=', "kl": {"coef": 0.04},
 "generation": {"max_prompt_tokens": 16, "max_response_tokens": 8, "temperature": 1.1,
                "samples_per_prompt": 2}'

# compare LOCAL_CHECKPOINT REMOTE_CHECKPOINT: the metrics history each run recorded in its
# last checkpoint (every iteration, full precision), wall-clock timings aside.
compare() {
  python3 - "$1/coordinator_state.json" "$2/coordinator_state.json" <<'PY'
import json, sys
local = json.load(open(sys.argv[1]))["metrics"]
remote = json.load(open(sys.argv[2]))["metrics"]
assert len(local) == len(remote) == 3, (len(local), len(remote))
timing = lambda k: k.startswith("time_") or k == "tokens_per_second"
bad = []
for a, b in zip(local, remote):
    keys = sorted(k for k in a if not timing(k))
    if keys != sorted(k for k in b if not timing(k)):
        bad.append(f"iteration {a['iteration']}: metric names differ")
    for k in keys:
        if a[k] != b.get(k):
            bad.append(f"iteration {a['iteration']} {k}: local {a[k]!r} remote {b.get(k)!r}")
print("\n".join(bad) if bad else f"{len(local)} iterations, {len(keys)} metrics each, bitwise equal")
sys.exit(1 if bad else 0)
PY
}

# grpo1: one on-policy step per batch, so neither topology runs the actor's Evaluate (the
# trainer's own log-probs are the old ones; kl from the rollout's sampling log-probs).
for spec in "ppo ppo" "grpo grpo" "grpo1 grpo" "grpochat grpo" "raft rejection_sampling"; do
  set -- $spec
  extra=$ppo_extra
  [ "$2" != ppo ] && extra=$grpo_extra
  local_job=$(job "$1-local" "$2" "$extra")
  remote_job=$(job "$1-remote" "$2" "$extra" "$endpoints")
  [ "$1" = grpo1 ] && sed -i 's/"minibatch_size": 2, "ppo_epochs": 2/"minibatch_size": 4, "ppo_epochs": 1/' \
    "$local_job" "$remote_job"
  [ "$1" = grpochat ] && sed -i "s#$work/prompts.jsonl#$work/chat-prompts.jsonl#" "$local_job" "$remote_job"
  expect "$1 with rlhf local" 0 "SUCCEEDED" -- "$bin/rlhf" local "$local_job"
  id=$("$bin/rlhf" submit "$remote_job" --coordinator "$coord")
  expect "$1 across five processes" 0 "SUCCEEDED" -- \
    "$bin/rlhf" watch "$id" --coordinator "$coord"
  expect "$1: local and distributed metrics are bitwise equal" 0 "bitwise equal" -- \
    compare "$work/ckpt-$1-local/iter-000003" "$work/ckpt-$1-remote/iter-000003"
  [ "$1" = grpo1 ] && expect "grpo1: no Evaluate pass in either topology" 0 "^no-evaluate" -- \
    python3 -c 'import json, sys
t = [m["time_evaluate_seconds"] for p in sys.argv[1:] for m in json.load(open(p))["metrics"]]
print(("no-evaluate " if len(t) == 6 and not any(t) else "evaluated ") + str(t))' \
    "$work/ckpt-$1-local/iter-000003/coordinator_state.json" \
    "$work/ckpt-$1-remote/iter-000003/coordinator_state.json"
done

finish
