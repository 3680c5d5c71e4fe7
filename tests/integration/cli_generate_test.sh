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
check "bad number" 2 "--top-p: \"abc\" is not a finite number" -- \
  "$rlhf" generate --model $model --prompt hi --top-p abc
check "negative temperature" 2 "temperature" -- \
  "$rlhf" generate --model $model --prompt hi --temperature -1
check "prompt longer than the context" 2 "context of 256 tokens" -- \
  "$rlhf" generate --model $model --prompt hi --max-new-tokens 1000
check "unknown command" 2 "unknown command 'genrate'" -- "$rlhf" genrate
echo "$((10 - failures)) passed, $failures failed"
[ "$failures" -eq 0 ]
