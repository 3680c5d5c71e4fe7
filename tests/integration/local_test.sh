#!/usr/bin/env bash
# End-to-end: `rlhf local` runs jobs with all five services in one process: every
# algorithm (PPO, GRPO with group sampling, RLOO, REINFORCE++, SFT, DPO, SimPO, reward
# model, KTO) on the tiny GPT-2 of the golden fixtures.
# Each finishes, prints a progress line per iteration and a summary, and leaves its
# checkpoints; bad job files fail with one clear line and exit 2.
# Usage: local_test.sh RLHF_BINARY   (run from the repository root)
set -uo pipefail
source "$(dirname "$0")/testlib.sh"
rlhf=$1
model=$PWD/tests/golden/fixtures/models/gpt2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
printf '%s\n' '{"prompt": "hello world", "reference": "yes"}' '{"prompt": "the quick brown fox"}' \
  '{"prompt": "once upon a time"}' '{"prompt": "a b c"}' >"$work/prompts.jsonl"
printf '%s\n' '{"prompt": "hi", "completion": " there"}' '{"prompt": "1 2", "completion": " 3 4"}' \
  >"$work/sft.jsonl"
printf '%s\n' '{"prompt": "hi", "completion": " there", "label": true}' \
  '{"prompt": "1 2", "completion": " 5 5", "label": false}' >"$work/kto.jsonl"
# job NAME ALGORITHM DATA EXTRA_JSON
job() {
  cat >"$work/$1.json" <<EOF
{"name": "$1", "algorithm": "$2", "models": {"policy_dir": "$model"},
 "data": {"train_path": "$3"}, "optimizer": {"learning_rate": 1e-4},
 "training": {"batch_size": 2, "minibatch_size": 1, "ppo_epochs": 1, "iterations": 3},
 "generation": {"max_prompt_tokens": 16, "max_response_tokens": 6},
 "checkpoint": {"dir": "$work/ckpt-$1", "interval": 2}, "runtime": {"seed": 3} $4}
EOF
  echo "$work/$1.json"
}
for spec in "ppo ppo $work/prompts.jsonl" "grpo grpo $work/prompts.jsonl" \
  "rloo rloo $work/prompts.jsonl" "reinforce_pp reinforce_pp $work/prompts.jsonl" \
  "sft sft $work/sft.jsonl" "dpo dpo $PWD/examples/data/preference.jsonl" \
  "simpo simpo $PWD/examples/data/preference.jsonl" \
  "reward_model reward_model $PWD/examples/data/preference.jsonl" "kto kto $work/kto.jsonl"; do
  set -- $spec
  extra=', "reward": {"kind": "regex", "pattern": "[a-z]"}'
  [ "$1" = grpo ] && extra=', "reward": {"kind": "length", "target_length": 4}, "generation": {"max_prompt_tokens": 16, "max_response_tokens": 6, "samples_per_prompt": 2}'
  expect "local $1: a line per iteration, a summary" 0 \
    "iter 1/3 .*iter 2/3 .*iter 3/3 .*summary: SUCCEEDED after 3/3 iterations" -- \
    "$rlhf" local "$(job "$1" "$2" "$3" "$extra")"
  [ -f "$work/ckpt-$1/iter-000002/policy/model.safetensors" ] && [ -f "$work/ckpt-$1/final/config.json" ] &&
    ok "local $1: checkpoints" || fail "local $1: checkpoints missing"
done
expect "same seed, same first iteration" 0 "^same " -- bash -c \
  "a=\$('$rlhf' local '$work/ppo.json' 2>/dev/null | grep -m1 'iter 1/3' | cut -d'|' -f2-3); \
   b=\$('$rlhf' local '$work/ppo.json' 2>/dev/null | grep -m1 'iter 1/3' | cut -d'|' -f2-3); \
   [ -n \"\$a\" ] && [ \"\$a\" = \"\$b\" ] && echo same || echo \"differ: \$a / \$b\""
echo '{"algorithm": ' >"$work/malformed.json"
expect "malformed job file" 2 "^rlhf local: error: .*malformed.json" -- "$rlhf" local "$work/malformed.json"
sed 's/"learning_rate": 1e-4/"learning_rate": -1/' "$work/ppo.json" >"$work/negative.json"
expect "invalid field with its path" 2 "optimizer.learning_rate: must be > 0" -- \
  "$rlhf" local "$work/negative.json"
sed "s#\"runtime\"#\"endpoints\": {\"actor\": \"x:1\"}, \"runtime\"#" "$work/ppo.json" >"$work/endpoints.json"
expect "endpoints are refused by local" 2 "endpoints" -- "$rlhf" local "$work/endpoints.json"
sed 's/"seed": 3/"seed": 3, "num_actor_ranks": 2/; s/"minibatch_size": 1/"minibatch_size": 2/' \
  "$(job ranks-base sft "$work/sft.jsonl" "")" >"$work/ranks.json"
expect "several actor ranks in one process are refused before any work" 2 \
  "runtime.num_actor_ranks: 2 data-parallel ranks need an actor group" -- \
  "$rlhf" local "$work/ranks.json"
expect "--device cuda without CUDA: one line, exit 2, before any work" 2 \
  "^rlhf local: error: --device cuda:0: CUDA is not available here" -- \
  "$rlhf" local "$work/ppo.json" --device cuda
sed 's#"dir": "[^"]*"#"dir": "'"$work"'/ckpt-bf16"#' "$work/grpo.json" >"$work/bf16.json"
expect "--dtype bfloat16 (frozen copies in bf16 on the CPU) still runs the job" 0 \
  "summary: SUCCEEDED" -- "$rlhf" local "$work/bf16.json" --dtype bfloat16 \
  --metrics-jsonl "$work/bf16.jsonl"
# The first weight sync is float32; the rollout answers that it holds bf16, and the later
# syncs move bf16 on the wire: half the bytes.
expect "weight sync moves bf16 to a bf16 rollout (half the bytes)" 0 "^half " -- \
  python3 -c 'import json, sys
rows = [json.loads(line) for line in open(sys.argv[1])]
b = [r["sync_bytes"] for r in rows]
print(("half " if len(b) == 3 and b[1] == b[2] and abs(2 * b[1] - b[0]) < 0.01 * b[0]
       else "not half ") + str(b))' "$work/bf16.jsonl"
# One on-policy GRPO step per batch (one minibatch, one epoch): the actor's Evaluate pass is
# left out (the trainer's own detached log-probs are the old ones); with two minibatches
# (the bf16 job above) it runs.
sed 's#"dir": "[^"]*"#"dir": "'"$work"'/ckpt-onestep"#; s/"minibatch_size": 1/"minibatch_size": 2/' \
  "$work/grpo.json" >"$work/onestep.json"
expect "one on-policy step per batch skips Evaluate; two minibatches do not" 0 "evaluate-skipped " -- \
  bash -c "'$rlhf' local '$work/onestep.json' --metrics-jsonl '$work/onestep.jsonl' >/dev/null &&
  python3 -c 'import json, sys
one, two = ([json.loads(line)[\"time_evaluate_seconds\"] for line in open(p)] for p in sys.argv[1:])
print((\"evaluate-skipped \" if len(one) == 3 and not any(one) and len(two) == 3 and all(two)
       else \"evaluate-not-skipped \") + str((one, two)))' '$work/onestep.jsonl' '$work/bf16.jsonl'"
# The rollout's sampling log-probs vs the trainer's Evaluate of the same tokens: an fp32
# rollout computes the trainer's distribution (tiny rounding), a bf16 one visibly not.
expect "rollout-vs-trainer log-prob mismatch: ~0 in fp32, > 0 with a bf16 rollout" 0 \
  "mismatch-as-expected " -- bash -c "'$rlhf' local '$work/grpo.json' \
  --metrics-jsonl '$work/grpo.jsonl' >/dev/null 2>&1 && python3 -c 'import json, sys
fp32, bf16 = ([json.loads(line) for line in open(p)] for p in sys.argv[1:])
d32 = [r[\"rollout_logprob_abs_diff\"] for r in fp32] + [r[\"rollout_kl\"] for r in fp32]
d16 = [r[\"rollout_logprob_abs_diff\"] for r in bf16]
print((\"mismatch-as-expected \" if max(d32) < 1e-4 and min(d16) > 1e-3
       else \"mismatch-unexpected \") + str((d32, d16)))' '$work/grpo.jsonl' '$work/bf16.jsonl'"
# The policy-loss variants on the GRPO job. GSPO: a sequence-level ratio with clip-higher and
# the original GRPO's sequence mean. CISPO with DAPO's overlong shaping (responses past 3 of
# the 6 tokens lose reward) and TIS capped at 1, so the mean weight is below 1 exactly when
# the rollout's log-probs differ from the trainer's: not with an fp32 rollout, yes with bf16.
sed 's#"dir": "[^"]*"#"dir": "'"$work"'/ckpt-gspo"#; s#"runtime"#"ppo": {"importance_sampling_level": "sequence", "clip_range_high": 0.28, "loss_aggregation": "sequence_mean"}, "runtime"#' \
  "$work/grpo.json" >"$work/gspo.json"
expect "GSPO (sequence-level ratio) job" 0 "summary: SUCCEEDED after 3/3" -- \
  "$rlhf" local "$work/gspo.json"
sed 's#"dir": "[^"]*"#"dir": "'"$work"'/ckpt-cispo"#; s#"runtime"#"ppo": {"policy_loss": "cispo", "tis_cap": 1.0}, "runtime"#; s#"target_length": 4}#"target_length": 4, "overlong_buffer_tokens": 3}#' \
  "$work/grpo.json" >"$work/cispo.json"
expect "CISPO + TIS + overlong shaping: penalties in [-1, 0), TIS weight 1 (fp32) vs < 1 (bf16)" 0 \
  "^as-expected " -- bash -c "'$rlhf' local '$work/cispo.json' --metrics-jsonl '$work/cispo.jsonl' \
  >/dev/null 2>&1 && '$rlhf' local '$work/cispo.json' --dtype bfloat16 \
  --metrics-jsonl '$work/cispo16.jsonl' >/dev/null 2>&1 && python3 -c 'import json, sys
fp32, bf16 = ([json.loads(line) for line in open(p)] for p in sys.argv[1:])
pen = [r[\"overlong_penalty\"] for r in fp32]
w32 = [r[\"tis_weight\"] for r in fp32]
w16 = [r[\"tis_weight\"] for r in bf16]
good = (len(pen) == 3 and min(pen) >= -1 and max(pen) <= 0 and min(pen) < 0 and
        min(w32) > 1 - 1e-4 and max(w32) <= 1 and max(w16) < 1 - 1e-4)
print((\"as-expected \" if good else \"unexpected \") + str((pen, w32, w16)))' '$work/cispo.jsonl' '$work/cispo16.jsonl'"
# DAPO's dynamic sampling. A regex reward ("e" in the response) splits some groups and not
# others: an iteration ends its rounds early exactly when batch_size groups differed, and
# the data cursor advanced by batch_size prompts per round. A length reward on responses
# that all run to the limit makes every group uniform: every iteration takes the 3 rounds
# allowed and trains on filler groups.
sed 's#"dir": "[^"]*"#"dir": "'"$work"'/ckpt-dyn"#; s#"samples_per_prompt": 2#"samples_per_prompt": 2, "dynamic_sampling": true, "max_sampling_rounds": 3#; s#"reward": {"kind": "length", "target_length": 4}#"reward": {"kind": "regex", "pattern": "e"}#' \
  "$work/grpo.json" >"$work/dyn.json"
sed 's#"dir": "[^"]*"#"dir": "'"$work"'/ckpt-dyn-uniform"#; s#"samples_per_prompt": 2#"samples_per_prompt": 2, "dynamic_sampling": true, "max_sampling_rounds": 3#; s#"target_length": 4#"target_length": 1#; s#"max_response_tokens": 6#"max_response_tokens": 3#' \
  "$work/grpo.json" >"$work/dyn-uniform.json"
expect "dynamic sampling: rounds end when batch_size groups differ; the cursor counts every round" 0 \
  "^as-expected " -- bash -c "'$rlhf' local '$work/dyn.json' --metrics-jsonl '$work/dyn.jsonl' >/dev/null 2>&1 &&
  '$rlhf' local '$work/dyn-uniform.json' --metrics-jsonl '$work/dyn-uniform.jsonl' >/dev/null 2>&1 &&
  python3 -c 'import json, sys
dyn, uni = ([json.loads(line) for line in open(p)] for p in sys.argv[1:3])
state = json.load(open(sys.argv[3]))
rounds = [r[\"sampling_rounds\"] for r in dyn]
informative = [round(r[\"informative_group_fraction\"] * r[\"sampling_rounds\"] * 2) for r in dyn]
early_ok = all(1 <= n <= 3 for n in rounds)
enough_ok = all(k >= 2 for n, k in zip(rounds, informative) if n < 3)
uniform_ok = all(r[\"sampling_rounds\"] == 3 and r[\"informative_group_fraction\"] == 0 for r in uni)
cursor_ok = state[\"cursor\"] == 2 * sum(rounds[:2])
good = len(rounds) == 3 and enough_ok and early_ok and uniform_ok and len(uni) == 3 and cursor_ok
print((\"as-expected \" if good else \"unexpected \") + str((rounds, informative, state[\"cursor\"])))' \
  '$work/dyn.jsonl' '$work/dyn-uniform.jsonl' '$work/ckpt-dyn/iter-000002/coordinator_state.json'"
# runtime.max_policy_lag 1: batch k+1 is sampled while batch k trains. The first batch comes
# from the current weights, each later one from the weights one iteration older (2
# optimizer steps with two minibatches and the actor's Evaluate; 1 in the one-step job,
# which skips Evaluate and trains with TIS); the loop waited for a prefetch after
# iterations 1 and 2 (not after the last); a checkpoint records the data cursor before the
# batch in flight (2 x 2 prompts at iteration 2, not 6). The trainer's tensors are not
# shared with the sampler here.
sed 's#"dir": "[^"]*"#"dir": "'"$work"'/ckpt-lag"#; s/"seed": 3/"seed": 3, "max_policy_lag": 1/' \
  "$work/grpo.json" >"$work/lag.json"
sed 's#"dir": "[^"]*"#"dir": "'"$work"'/ckpt-lag1"#; s/"minibatch_size": 1/"minibatch_size": 2/; s#"runtime"#"ppo": {"tis_cap": 2}, "runtime"#' \
  "$work/lag.json" >"$work/lag-onestep.json"
expect "max_policy_lag 1: lag 0 then one iteration; the checkpoint cursor excludes the prefetch" 0 \
  "^as-expected " -- bash -c "'$rlhf' local '$work/lag.json' --metrics-jsonl '$work/lag.jsonl' >/dev/null 2>&1 &&
  '$rlhf' local '$work/lag-onestep.json' --metrics-jsonl '$work/lag1.jsonl' >/dev/null 2>&1 &&
  python3 -c 'import json, sys
rows, one = ([json.loads(line) for line in open(p)] for p in sys.argv[1:3])
state = json.load(open(sys.argv[3]))
lag = [r[\"policy_lag\"] for r in rows]
lag1 = [r[\"policy_lag\"] for r in one]
skipped = not any(r[\"time_evaluate_seconds\"] for r in one)
waited = [\"time_generate_wait_seconds\" in r for r in rows]
good = (lag == [0, 2, 2] and lag1 == [0, 1, 1] and skipped and waited == [True, True, False]
        and state[\"cursor\"] == 4)
print((\"as-expected \" if good else \"unexpected \") + str((lag, lag1, waited, state[\"cursor\"])))' \
  '$work/lag.jsonl' '$work/lag1.jsonl' '$work/ckpt-lag/iter-000002/coordinator_state.json'"
# No KL penalty (kl.coef 0, TRL GRPO's default beta): no reference is loaded or asked, and
# no kl metric claims a measurement.
sed 's#"dir": "[^"]*"#"dir": "'"$work"'/ckpt-nokl"#; s#"runtime"#"kl": {"coef": 0}, "runtime"#' \
  "$work/grpo.json" >"$work/nokl.json"
expect "kl.coef 0: the reference is never called and no kl is reported" 0 "^as-expected " -- \
  bash -c "'$rlhf' local '$work/nokl.json' --metrics-jsonl '$work/nokl.jsonl' >/dev/null 2>&1 &&
  python3 -c 'import json, sys
rows = [json.loads(line) for line in open(sys.argv[1])]
ref = [r[\"time_reference_seconds\"] for r in rows]
good = len(rows) == 3 and max(ref) < 1e-3 and not any(\"kl\" in r for r in rows)
print((\"as-expected \" if good else \"unexpected \") + str(ref))' '$work/nokl.jsonl'"
expect "missing job file" 1 "cannot open job spec .*none.json" -- "$rlhf" local "$work/none.json"
sed 's#"dir": "[^"]*", "interval": 2#"dir": "'"$work"'/ckpt-keep", "interval": 1, "keep_last": 2#' \
  "$work/sft.json" >"$work/keep.json"
expect "checkpoint.keep_last 2" 0 "SUCCEEDED" -- "$rlhf" local "$work/keep.json"
[ "$(cd "$work/ckpt-keep" && ls -d iter-* | tr '\n' ' ')" = "iter-000002 iter-000003 " ] &&
  ok "... keeps only the newest two checkpoints" ||
  fail "... left $(ls "$work/ckpt-keep")"
# checkpoint.export_dtype: a bf16 checkpoint (config.json dtype) trains in float32 and
# exports bf16 by default, float32 when told; resume checkpoints stay float32.
cp -r "$model" "$work/bf16-model"
python3 -c 'import json, sys; p = sys.argv[1]; c = json.load(open(p)); c["dtype"] = "bfloat16"
json.dump(c, open(p, "w"))' "$work/bf16-model/config.json"
sed 's#"dir": "[^"]*"#"dir": "'"$work"'/ckpt-bf16"#; s#"policy_dir": "[^"]*"#"policy_dir": "'"$work"'/bf16-model"#' \
  "$work/sft.json" >"$work/export-bf16.json"
sed 's#ckpt-bf16"#ckpt-f32", "export_dtype": "float32"#' "$work/export-bf16.json" >"$work/export-f32.json"
# dtypes.py DIR: the tensor dtypes in DIR/model.safetensors and config.json's dtype.
cat >"$work/dtypes.py" <<'PY'
import json, struct, sys
for d in sys.argv[1:]:
    f = open(d + "/model.safetensors", "rb")
    header = json.loads(f.read(struct.unpack("<Q", f.read(8))[0]))
    kinds = sorted({v["dtype"] for k, v in header.items() if k != "__metadata__"})
    config = json.load(open(d + "/config.json"))
    print(" ".join(kinds), config.get("dtype", config.get("torch_dtype")), end=" ")
PY
expect "a bf16 checkpoint exports bf16; its resume checkpoints stay float32" 0 \
  "^BF16 bfloat16 F32 " -- bash -c "'$rlhf' local '$work/export-bf16.json' >/dev/null 2>&1 &&
  python3 '$work/dtypes.py' '$work/ckpt-bf16/final' '$work/ckpt-bf16/iter-000002/policy'"
expect "... checkpoint.export_dtype float32 exports float32" 0 "^F32 float32" -- \
  bash -c "'$rlhf' local '$work/export-f32.json' >/dev/null 2>&1 && python3 '$work/dtypes.py' '$work/ckpt-f32/final'"
sed 's#"float32"#"int8"#' "$work/export-f32.json" >"$work/export-bad.json"
expect "... an unknown export dtype is refused, naming the field" 2 \
  "checkpoint.export_dtype: must be float32, bfloat16 or float16, got \"int8\"" -- \
  "$rlhf" local "$work/export-bad.json"
sed 's#"dir": "[^"]*"#"dir": "'"$work"'/ckpt-jsonl"#' "$work/ppo.json" >"$work/jsonl.json"
expect "--metrics-jsonl into a missing directory fails before the job starts, with the reason" 2 \
  "^rlhf local: error: --metrics-jsonl: cannot write $work/none/x.jsonl: No such file or directory" -- \
  "$rlhf" local "$work/jsonl.json" --metrics-jsonl "$work/none/x.jsonl"
[ ! -e "$work/ckpt-jsonl" ] && ok "... and no job ran" || fail "a job ran despite the bad --metrics-jsonl"
for command in local eval watch submit generate; do
  n=$("$rlhf" "$command" --help 2>&1 | grep -c "usage:")
  [ "$n" = 1 ] && ok "rlhf $command --help says usage once" || fail "rlhf $command --help says usage $n times"
done
finish
