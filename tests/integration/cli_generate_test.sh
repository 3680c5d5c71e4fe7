#!/usr/bin/env bash
# End-to-end: build/bin/rlhf generate on the bundled model, and its error handling.
# Usage: cli_generate_test.sh RLHF_BINARY   (run from the repository root)
set -uo pipefail
rlhf=$1 model=examples/models/tiny-gpt2 failures=0
check() {  # check NAME EXPECTED_STATUS EXPECTED_OUTPUT_REGEX -- command...
  local name=$1 want_status=$2 want=$3; shift 4
  local out status
  out=$("$@" 2>&1); status=$?
  if [ "$status" -ne "$want_status" ] || ! grep -Eq -- "$want" <<<"$out"; then
    echo "FAIL $name: status $status (want $want_status), output:"; echo "$out"
    failures=$((failures + 1))
  else
    echo "ok   $name"
  fi
}
check "generates a continuation" 0 "^Once upon a time" -- \
  "$rlhf" generate --model $model --prompt "Once upon a time" --max-new-tokens 8 --seed 3
a=$("$rlhf" generate --model $model --prompt "Hello" --max-new-tokens 12 --seed 5 --show-ids)
b=$("$rlhf" generate --model $model --prompt "Hello" --max-new-tokens 12 --seed 5 --show-ids)
[ "$a" = "$b" ] && echo "ok   same seed, same output" || { echo "FAIL same seed differs"; failures=$((failures + 1)); }
check "greedy" 0 "generated ids:( [0-9]+){1,6}$" -- \
  "$rlhf" generate --model $model --prompt "Hello" --max-new-tokens 6 --temperature 0 --show-ids
check "help documents every flag" 0 "--top-k" -- "$rlhf" generate --help
check "missing model dir" 1 "^rlhf generate: error: .*nonexistent" -- \
  "$rlhf" generate --model /nonexistent --prompt hi
check "unknown flag" 2 "unknown flag --tempreature" -- \
  "$rlhf" generate --model $model --prompt hi --tempreature 1
check "--device cuda without CUDA: one clear line, exit 2" 2 \
  "^rlhf generate: error: --device cuda:0: CUDA is not available here" -- \
  "$rlhf" generate --model $model --prompt hi --device cuda
check "bad --device" 2 "--device: want cpu, cuda or cuda:N, got 'gpu'" -- \
  "$rlhf" generate --model $model --prompt hi --device gpu
check "bad --dtype" 2 "--dtype: want float32, bfloat16 or float16" -- \
  "$rlhf" generate --model $model --prompt hi --dtype half
check "--dtype bfloat16 on the CPU generates" 0 "^Once upon a time" -- \
  "$rlhf" generate --model $model --prompt "Once upon a time" --max-new-tokens 8 --dtype bfloat16
check "bad number" 2 "--top-p: \"abc\" is not a finite number" -- \
  "$rlhf" generate --model $model --prompt hi --top-p abc
check "negative temperature, named as the flag" 2 "error: --temperature must be finite and >= 0" -- \
  "$rlhf" generate --model $model --prompt hi --temperature -1
check "zero --max-new-tokens, named as the flag" 2 "error: --max-new-tokens must be positive" -- \
  "$rlhf" generate --model $model --prompt hi --max-new-tokens 0
check "bad --top-p, named as the flag" 2 "error: --top-p must be in" -- \
  "$rlhf" generate --model $model --prompt hi --top-p 1.5
check "prompt longer than the context" 2 "context of 256 tokens" -- \
  "$rlhf" generate --model $model --prompt hi --max-new-tokens 1000
check "unknown command" 2 "unknown command 'genrate'" -- "$rlhf" genrate

# A model whose embedding has more rows than its tokenizer has tokens, as every Qwen2/2.5
# checkpoint does (151936 rows, 151665 tokens): the gpt2 tokenizer fixture (ids 0..500)
# with 565 rows, the padded ones made likely (tests/golden/make_model_goldens.py). Sampled
# ids without a token are dropped when decoding, as tokenizers does, rather than an error.
result() {  # result NAME STATUS DETAIL: STATUS 0 passes; DETAIL says why not
  if [ "$2" -eq 0 ]; then echo "ok   $1"; else echo "FAIL $1: $3"; failures=$((failures + 1)); fi
}
padded=tests/golden/fixtures/models/gpt2-padded-vocab tokenizer_size=501
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
gen=$("$rlhf" generate --model $padded --prompt hi --max-new-tokens 32 --seed 1 --show-ids 2>&1)
gen_status=$?
[ "$gen_status" -eq 0 ] && grep -q "^hi" <<<"$gen"
result "padded vocab: generate succeeds" $? "status $gen_status (want 0), output: $gen"
ids=$(sed -n 's/^generated ids://p' <<<"$gen")
awk -v n=$tokenizer_size '{for (i = 1; i <= NF; i++) if ($i >= n) hit = 1} END {exit !hit}' <<<"$ids"
result "padded vocab: generated ids include ids past the tokenizer" $? \
  "no generated id >= $tokenizer_size, so the test proves nothing; ids:$ids"
printf '%s\n' '{"prompt": "hi"}' '{"prompt": "Once upon a time"}' '{"prompt": "The end"}' \
  >"$tmp/prompts.jsonl"
eval_out=$("$rlhf" eval --policy $padded --prompts "$tmp/prompts.jsonl" \
  --samples-out "$tmp/s.jsonl" --max-response-tokens 16 --seed 1 2>&1)
eval_status=$?
[ "$eval_status" -eq 0 ] && grep -Eq "^samples +3$" <<<"$eval_out"
result "padded vocab: eval --samples-out succeeds" $? \
  "status $eval_status (want 0, 3 samples), output: $eval_out"
! grep -qi "out of range" <<<"$eval_out"
result "padded vocab: eval reports no out-of-range id" $? "output: $eval_out"
[ "$(grep -c '"response"' "$tmp/s.jsonl" 2>/dev/null)" = 3 ]
result "padded vocab: eval writes one sample per prompt" $? \
  "want 3 lines with a response in --samples-out, got: $(cat "$tmp/s.jsonl" 2>&1)"
# rlhf eval takes --device and --dtype as generate does: CUDA where there is none is one
# line and exit 2, before any model is loaded; bfloat16 on the CPU evaluates.
check "eval --device cuda without CUDA: one clear line, exit 2" 2 \
  "^rlhf eval: error: --device cuda:0: CUDA is not available here" -- \
  "$rlhf" eval --policy $model --prompts "$tmp/prompts.jsonl" --device cuda
check "eval: bad --device" 2 "^rlhf eval: error: --device: want cpu, cuda or cuda:N, got 'gpu'" -- \
  "$rlhf" eval --policy $model --prompts "$tmp/prompts.jsonl" --device gpu
check "eval --dtype bfloat16 on the CPU evaluates" 0 "^samples +3$" -- \
  "$rlhf" eval --policy $model --reference $model --prompts "$tmp/prompts.jsonl" \
  --max-response-tokens 4 --dtype bfloat16
check "eval --help documents --dtype" 0 "^  --dtype " -- "$rlhf" eval --help
# best-of-n: the same seeds sample the same completions, so the best kept of each prompt is
# the highest-scoring of that prompt's samples when all are kept; a threshold keeps exactly
# those at or above it; the output trains an sft job.
printf '%s\n' '{"prompt": "hello world"}' '{"prompt": "the quick brown fox"}' \
  '{"prompt": "once upon a time"}' >"$tmp/bon.jsonl"
bon=("$rlhf" best-of-n --model $model --prompts "$tmp/bon.jsonl" --n 4 --reward regex
  --pattern e --max-new-tokens 4 --seed 1)
check "best-of-n keeps one per prompt, every sample with a threshold below all" 0 "kept 12 to" -- \
  bash -c "$(printf '%q ' "${bon[@]}") --out $tmp/best.jsonl >/dev/null &&
  $(printf '%q ' "${bon[@]}") --out $tmp/all.jsonl --threshold -1000 &&
  $(printf '%q ' "${bon[@]}") --out $tmp/ones.jsonl --threshold 1 >/dev/null"
check "... the best is each prompt's highest score; the threshold keeps exactly those >= 1" 0 \
  "^best-ok " -- python3 -c 'import json, sys
best, every, ones = ([json.loads(line) for line in open(p)] for p in sys.argv[1:])
by_prompt = {}
for row in every:
    by_prompt.setdefault(row["prompt"], []).append(row)
good = len(best) == 3 and len(every) == 12 and len({r["score"] for r in every}) > 1
for row in best:
    group = by_prompt[row["prompt"]]
    good = good and row["score"] == max(r["score"] for r in group) and row in group
good = good and ones == [r for r in every if r["score"] >= 1]
print(("best-ok " if good else "best-wrong ") + str([r["score"] for r in every]))' \
  "$tmp/best.jsonl" "$tmp/all.jsonl" "$tmp/ones.jsonl"
cat >"$tmp/bon-sft.json" <<EOF
{"name": "raft", "algorithm": "sft", "models": {"policy_dir": "$PWD/$model"},
 "data": {"train_path": "$tmp/best.jsonl"}, "training": {"batch_size": 3, "iterations": 2},
 "generation": {"max_prompt_tokens": 32, "max_response_tokens": 32},
 "checkpoint": {"dir": "$tmp/ckpt-raft", "interval": 0}}
EOF
check "... and the kept samples train an sft job" 0 "summary: SUCCEEDED" -- \
  "$rlhf" local "$tmp/bon-sft.json"
check "best-of-n without a reward: exit 2, naming the flag" 2 \
  "^rlhf best-of-n: error: --reward is required" -- \
  "$rlhf" best-of-n --model $model --prompts "$tmp/bon.jsonl" --out "$tmp/x.jsonl"
: >"$tmp/empty.jsonl"
check "best-of-n on an empty prompts file: exit 2, naming it" 2 "empty.jsonl: no examples" -- \
  "$rlhf" best-of-n --model $model --prompts "$tmp/empty.jsonl" --out "$tmp/x.jsonl" \
  --reward length
echo "$((30 - failures)) passed, $failures failed"
[ "$failures" -eq 0 ]
