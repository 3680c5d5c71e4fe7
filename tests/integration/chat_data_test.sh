#!/usr/bin/env bash
# Conversational data end to end with `rlhf local` on the tiny GPT-2 given a ChatML
# chat_template.jinja: SFT on "messages", DPO on conversational pairs, GRPO on
# conversational prompts; `rlhf best-of-n` keeps conversational prompts as messages and its
# output trains an sft job; the same data with a model that has no chat template is refused
# before any work, naming the field.
# Usage: chat_data_test.sh RLHF_BINARY   (run from the repository root)
set -uo pipefail
source "$(dirname "$0")/testlib.sh"
rlhf=$1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
plain=$PWD/tests/golden/fixtures/models/gpt2
model=$work/chat-gpt2
cp -r "$plain" "$model"
cp tests/golden/fixtures/chat/templates/chatml.jinja "$model/chat_template.jinja"

cat >"$work/messages.jsonl" <<'EOF_DATA'
{"messages": [{"role": "system", "content": "Answer briefly."}, {"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]}
{"messages": [{"role": "user", "content": "1 2"}, {"role": "assistant", "content": "3"}, {"role": "user", "content": "4 5"}, {"role": "assistant", "content": "6"}]}
EOF_DATA
cat >"$work/pairs.jsonl" <<'EOF_DATA'
{"prompt": [{"role": "user", "content": "colour of the sky?"}], "chosen": [{"role": "assistant", "content": "blue"}], "rejected": [{"role": "assistant", "content": "green"}]}
{"prompt": [{"role": "user", "content": "2+2?"}], "chosen": [{"role": "assistant", "content": "4"}], "rejected": [{"role": "assistant", "content": "5"}]}
EOF_DATA
cat >"$work/prompts.jsonl" <<'EOF_DATA'
{"prompt": [{"role": "system", "content": "Be kind."}, {"role": "user", "content": "hello world"}]}
{"prompt": [{"role": "user", "content": "once upon a time"}]}
EOF_DATA

# job NAME ALGORITHM DATA MODEL EXTRA_JSON
job() {
  cat >"$work/$1.json" <<EOF_JOB
{"name": "$1", "algorithm": "$2", "models": {"policy_dir": "$4"},
 "data": {"train_path": "$3"}, "optimizer": {"learning_rate": 1e-4},
 "training": {"batch_size": 2, "minibatch_size": 1, "iterations": 2},
 "generation": {"max_prompt_tokens": 64, "max_response_tokens": 6},
 "checkpoint": {"dir": "$work/ckpt-$1"}, "runtime": {"seed": 3} $5}
EOF_JOB
  echo "$work/$1.json"
}
done_re="iter 1/2 .*iter 2/2 .*summary: SUCCEEDED after 2/2 iterations"
expect "sft on \"messages\" conversations" 0 "$done_re" -- \
  "$rlhf" local "$(job sft sft "$work/messages.jsonl" "$model" "")"
expect "dpo on conversational pairs" 0 "$done_re" -- \
  "$rlhf" local "$(job dpo dpo "$work/pairs.jsonl" "$model" "")"
expect "grpo on conversational prompts" 0 "$done_re" -- \
  "$rlhf" local "$(job grpo grpo "$work/prompts.jsonl" "$model" \
    ', "reward": {"kind": "regex", "pattern": "e"}, "generation": {"max_prompt_tokens": 64, "max_response_tokens": 6, "samples_per_prompt": 2}')"
expect "a model without a chat template is refused before any work, naming the field" 2 \
  "data.train_path: conversational examples need the policy's chat template: the model in .* has no chat template" -- \
  "$rlhf" local "$(job plain sft "$work/messages.jsonl" "$plain" "")"
[ ! -e "$work/ckpt-plain" ] && ok "... and leaves no checkpoint" || fail "... a checkpoint was written"

expect "best-of-n on conversational prompts" 0 "kept 2 to" -- \
  "$rlhf" best-of-n --model "$model" --prompts "$work/prompts.jsonl" --n 2 --reward regex \
  --pattern e --max-new-tokens 4 --seed 1 --out "$work/best.jsonl"
expect "... writes the prompt's messages and the answer as an assistant turn" 0 "^chat-ok" -- \
  python3 -c 'import json, sys
lines = [json.loads(line) for line in open(sys.argv[1])]
source = [json.loads(line) for line in open(sys.argv[2])]
assert [l["prompt"] for l in lines] == [s["prompt"] for s in source], lines
assert all(len(l["completion"]) == 1 and l["completion"][0]["role"] == "assistant" for l in lines)
print("chat-ok")' "$work/best.jsonl" "$work/prompts.jsonl"
expect "... and trains an sft job" 0 "$done_re" -- \
  "$rlhf" local "$(job sft-best sft "$work/best.jsonl" "$model" "")"
finish
