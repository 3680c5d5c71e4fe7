#!/usr/bin/env bash
# On-policy distillation with `rlhf local`: a teacher is made from the tiny GPT-2 by a short
# SFT run (so it prefers one continuation), then a distill job trains the untouched fixture
# on its own samples with the per-token reverse KL to the teacher as the only signal: the
# KL falls. A distill job without a teacher, with a reward, or with a teacher of another
# tokenizer is refused before any work, naming the field.
# Usage: distill_test.sh RLHF_BINARY   (run from the repository root)
set -uo pipefail
source "$(dirname "$0")/testlib.sh"
rlhf=$1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
model=$PWD/tests/golden/fixtures/models/gpt2
printf '%s\n' '{"prompt": "the colour of the sky is", "completion": " blue and blue again"}' \
  '{"prompt": "my favourite word is", "completion": " blue and blue again"}' \
  '{"prompt": "once upon a time", "completion": " blue and blue again"}' \
  '{"prompt": "a b c", "completion": " blue and blue again"}' >"$work/teach.jsonl"
printf '%s\n' '{"prompt": "the colour of the sky is"}' '{"prompt": "my favourite word is"}' \
  '{"prompt": "once upon a time"}' '{"prompt": "a b c"}' >"$work/prompts.jsonl"

# job NAME ALGORITHM DATA ITERATIONS EXTRA_JSON
job() {
  cat >"$work/$1.json" <<EOF_JOB
{"name": "$1", "algorithm": "$2", "models": {"policy_dir": "$model" $6},
 "data": {"train_path": "$3"}, "optimizer": {"learning_rate": $5},
 "training": {"batch_size": 4, "minibatch_size": 4, "iterations": $4},
 "generation": {"max_prompt_tokens": 16, "max_response_tokens": 8},
 "checkpoint": {"dir": "$work/ckpt-$1", "interval": 0}, "runtime": {"seed": 5} $7}
EOF_JOB
  echo "$work/$1.json"
}
expect "the teacher: sft of the fixture" 0 "SUCCEEDED" -- \
  "$rlhf" local "$(job teacher sft "$work/teach.jsonl" 12 3e-3 "" "")"
teacher=$work/ckpt-teacher/final
expect "distill: the student's reverse KL to the teacher falls" 0 "^closer " -- \
  bash -c "'$rlhf' local '$(job distill distill "$work/prompts.jsonl" 16 3e-3 ", \"reference_dir\": \"$teacher\"" \
    ', "generation": {"max_prompt_tokens": 16, "max_response_tokens": 8, "samples_per_prompt": 4}')' \
    --metrics-jsonl '$work/distill.jsonl' >/dev/null 2>&1 && python3 -c 'import json, sys
rows = [json.loads(line) for line in open(sys.argv[1])]
kl = [r[\"kl\"] for r in rows]
assert len(kl) == 16 and all(\"reward_mean\" not in r for r in rows), rows[0]
first, last = sum(kl[:3]) / 3, sum(kl[-3:]) / 3
print((\"closer \" if last < 0.7 * first else \"not closer \") + \" \".join(f\"{k:.3f}\" for k in kl))' '$work/distill.jsonl'"

expect "distill without a teacher: refused, naming models.reference_dir" 2 \
  "models.reference_dir: distill needs a teacher" -- \
  "$rlhf" local "$(job noteacher distill "$work/prompts.jsonl" 1 1e-3 "" "")"
expect "distill with a reward: refused, naming reward.kind" 2 "reward.kind: distill takes no reward" -- \
  "$rlhf" local "$(job rewarded distill "$work/prompts.jsonl" 1 1e-3 ", \"reference_dir\": \"$teacher\"" \
    ', "reward": {"kind": "length"}')"
cp -r "$teacher" "$work/other-tokenizer"
echo " " >>"$work/other-tokenizer/tokenizer.json"
expect "distill from a teacher with another tokenizer: refused" 2 \
  "models.reference_dir: the teacher's tokenizer.json differs" -- \
  "$rlhf" local "$(job othertok distill "$work/prompts.jsonl" 1 1e-3 \
    ", \"reference_dir\": \"$work/other-tokenizer\"" "")"
[ ! -e "$work/ckpt-noteacher" ] && [ ! -e "$work/ckpt-othertok" ] && ok "... no refused job left a checkpoint" ||
  fail "a refused job wrote a checkpoint"
finish
