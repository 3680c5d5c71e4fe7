#!/usr/bin/env bash
# Rejection sampling (RAFT / expert iteration) with `rlhf local` on the tiny GPT-2: every
# iteration keeps each prompt's best sample (or every one >= min_score) and takes SFT steps
# on them; the kept samples score at least the batch's mean, and the reward rises. A
# min_score on another algorithm is refused, naming the field.
# Usage: rejection_sampling_test.sh RLHF_BINARY   (run from the repository root)
set -uo pipefail
source "$(dirname "$0")/testlib.sh"
rlhf=$1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
model=$PWD/tests/golden/fixtures/models/gpt2
printf '%s\n' '{"prompt": "hello world"}' '{"prompt": "the quick brown fox"}' \
  '{"prompt": "once upon a time"}' '{"prompt": "a b c"}' >"$work/prompts.jsonl"
# job NAME ALGORITHM ITERATIONS EXTRA_JSON
job() {
  cat >"$work/$1.json" <<EOF_JOB
{"name": "$1", "algorithm": "$2", "models": {"policy_dir": "$model"},
 "data": {"train_path": "$work/prompts.jsonl"}, "optimizer": {"learning_rate": 1e-3},
 "training": {"batch_size": 4, "minibatch_size": 4, "ppo_epochs": 1, "iterations": $3},
 "generation": {"max_prompt_tokens": 16, "max_response_tokens": 8, "samples_per_prompt": 4},
 "reward": {"kind": "regex", "pattern": "ing"},
 "checkpoint": {"dir": "$work/ckpt-$1", "interval": 0}, "runtime": {"seed": 2} $4}
EOF_JOB
  echo "$work/$1.json"
}
expect "best per prompt: 4 kept each iteration, never below the mean, and the reward rises" 0 \
  "^as-expected " -- bash -c "'$rlhf' local '$(job best rejection_sampling 12 "")' \
  --metrics-jsonl '$work/best.jsonl' >/dev/null 2>&1 && python3 -c 'import json, sys
rows = [json.loads(line) for line in open(sys.argv[1])]
kept = [r[\"rejection_kept\"] for r in rows]
above = all(r[\"rejection_kept_reward_mean\"] >= r[\"reward_mean\"] for r in rows)
reward = [r[\"reward_mean\"] for r in rows]
rises = sum(reward[-4:]) > sum(reward[:4])
no_ref = not any(\"kl\" in r for r in rows) and max(r[\"time_reference_seconds\"] for r in rows) < 1e-3
good = len(rows) == 12 and kept == [4] * 12 and above and rises and no_ref
print((\"as-expected \" if good else \"unexpected \") + str((kept, reward)))' '$work/best.jsonl'"
expect "min_score: exactly the samples at or above it are kept" 0 "^as-expected " -- \
  bash -c "'$rlhf' local '$(job min rejection_sampling 3 ', "rejection_sampling": {"min_score": 1}')' \
  --metrics-jsonl '$work/min.jsonl' >/dev/null 2>&1 && python3 -c 'import json, sys
rows = [json.loads(line) for line in open(sys.argv[1])]
# regex reward: 1 on a match, 0 otherwise, over 16 samples
good = len(rows) == 3 and all(r[\"rejection_kept\"] == round(16 * r[\"reward_mean\"]) for r in rows)
print((\"as-expected \" if good else \"unexpected \") + str([(r[\"rejection_kept\"], r[\"reward_mean\"]) for r in rows]))' '$work/min.jsonl'"
expect "min_score on grpo is refused, naming the field" 2 \
  "rejection_sampling.min_score: applies to rejection_sampling only, not grpo" -- \
  "$rlhf" local "$(job wrong grpo 1 ', "rejection_sampling": {"min_score": 1}')"
finish
