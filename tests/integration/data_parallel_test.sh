#!/usr/bin/env bash
# Data-parallel actor ranks end to end: two rlhf-actor processes form one group (c10d
# TCPStore + Gloo on loopback); rank 0 serves the RPCs, rank 1 follows it.
#   1. a PPO job with runtime.num_actor_ranks 2 runs to SUCCEEDED across seven processes;
#   2. a minibatch the ranks cannot split is refused with a clear message, and the group
#      keeps working (the next job succeeds); num_actor_ranks 2 without an actor endpoint
#      is refused at submit;
#   3. faults: a group idle for longer than --group-timeout-s still trains; rank 1 killed
#      (SIGKILL) mid-job and restarted rejoins without restarting rank 0, and the job ends
#      with the uninterrupted run's final policy, byte for byte; rank 1 killed while idle
#      and restarted catches up with rank 0's state before the next job;
#   4. SIGTERM to rank 0 stops rank 1 too; both exit 0.
# Rank 1 takes its rank, world size and store from torchrun's variables (RANK, WORLD_SIZE,
# MASTER_ADDR, MASTER_PORT); a flag that disagrees with one, or a bad value, is one line
# and exit 2.
# Usage: data_parallel_test.sh BIN_DIR   (run from the repository root)
set -uo pipefail
source "$(dirname "$0")/testlib.sh"
servers_setup "$1"

store=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
group=(--world-size 2 --group-store "127.0.0.1:$store" --group-host 127.0.0.1 --group-timeout-s 8)
torchrun=(env RANK=1 WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT="$store" LOCAL_RANK=1)
actor=("$bin/rlhf-actor" --model "$model" --lr 1e-4)
expect "torchrun's RANK against a --rank that disagrees: one line, exit 2" 2 \
  "^rlhf-actor: error: --rank 0 disagrees with RANK=1 in the environment" -- \
  "${torchrun[@]}" "${actor[@]}" --rank 0
expect "a MASTER_PORT against --group-store: one line, exit 2" 2 \
  "--group-store 127.0.0.1:1 disagrees with MASTER_ADDR:MASTER_PORT=127.0.0.1:$store" -- \
  "${torchrun[@]}" "${actor[@]}" --group-store 127.0.0.1:1
expect "a RANK that is no integer: one line, exit 2" 2 "RANK: want an integer >= 0, got 'one'" -- \
  env RANK=one "${actor[@]}"
expect "a rank past the world size: one line, exit 2" 2 \
  "rank 2 \(RANK\) must be in \[0, world size 2 \(--world-size\)\)" -- \
  env RANK=2 "${actor[@]}" --world-size 2
expect "torchrun's own store at MASTER_PORT: refused with the way out" 2 \
  "TORCHELASTIC_USE_AGENT_STORE=True.*TORCH_DISABLE_SHARE_RDZV_TCP_STORE=1" -- \
  "${torchrun[@]}" TORCHELASTIC_USE_AGENT_STORE=True "${actor[@]}"
expect "a bucket size of 0: one line, exit 2" 2 "--allreduce-bucket-mb: want 1..1048576, got 0" -- \
  "${actor[@]}" --allreduce-bucket-mb 0
start actor0 "${actor[@]}" --rank 0 "${group[@]}"
start actor1 "${torchrun[@]}" "${actor[@]}" --group-host 127.0.0.1 --group-timeout-s 8
start rollout "$bin/rlhf-rollout" --model "$model"
start reference "$bin/rlhf-reference" --model "$model"
start reward "$bin/rlhf-reward" --scorer length --target-length 6
start coordinator "$bin/rlhf-coordinator" --state-db "$work/jobs.sqlite" --connect-timeout 3
for name in actor0 actor1 rollout reference reward coordinator; do wait_serving $name; done
ok "two actor ranks (rank 1 from torchrun's variables) joined one group; all servers SERVING"
coord=127.0.0.1:${port[coordinator]}

printf '%s\n' '{"prompt": "hello world"}' '{"prompt": "the quick brown fox"}' \
  '{"prompt": "once upon a time"}' '{"prompt": "a b c"}' >"$work/prompts.jsonl"
# job NAME BATCH MINIBATCH RANKS [ACTOR_ADDRESS]  (env: ITERATIONS, INTERVAL, EPOCHS)
job() {
  cat >"$work/$1.json" <<EOF
{"name": "$1", "algorithm": "ppo",
 "models": {"policy_dir": "$model"},
 "data": {"train_path": "$work/prompts.jsonl"},
 "optimizer": {"learning_rate": 1e-4},
 "training": {"batch_size": $2, "minibatch_size": $3, "ppo_epochs": ${EPOCHS:-2}, "iterations": ${ITERATIONS:-3}},
 "generation": {"max_prompt_tokens": 16, "max_response_tokens": 8},
 "reward": {"kind": "length", "target_length": 6},
 "checkpoint": {"dir": "$work/ckpt-$1", "interval": ${INTERVAL:-0}},
 "runtime": {"seed": 7, "num_actor_ranks": $4},
 "endpoints": {"actor": "${5-127.0.0.1:${port[actor0]}}", "rollout": ["127.0.0.1:${port[rollout]}"],
               "reference": "127.0.0.1:${port[reference]}", "reward": "127.0.0.1:${port[reward]}"}}
EOF
  echo "$work/$1.json"
}

# 1. PPO over two ranks.
id=$("$bin/rlhf" submit "$(job dp 4 2 2)" --coordinator "$coord")
expect "a PPO job over 2 actor ranks runs to SUCCEEDED" 0 "iter 3/3 .*reward.*SUCCEEDED" -- \
  "$bin/rlhf" watch "$id" --coordinator "$coord"
[ -f "$work/ckpt-dp/final/model.safetensors" ] && ok "rank 0 wrote the final policy" ||
  fail "no final policy: $(ls -R "$work/ckpt-dp" 2>&1 | head)"
grep -q "failed" "$work/actor1.log" && fail "rank 1 logged a failure: $(tail -5 "$work/actor1.log")" ||
  ok "rank 1 followed without errors"

# 2. Bad input.
id=$("$bin/rlhf" submit "$(job odd 3 3 1)" --coordinator "$coord")
expect "a minibatch of 3 rows over 2 ranks fails the job with a clear message" 1 \
  "cannot be split evenly over 2 data-parallel actor ranks" -- \
  "$bin/rlhf" watch "$id" --coordinator "$coord"
id=$("$bin/rlhf" submit "$(job again 4 2 2)" --coordinator "$coord")
expect "the group still trains after the refusal" 0 "SUCCEEDED" -- \
  "$bin/rlhf" watch "$id" --coordinator "$coord"
expect "num_actor_ranks 2 without an actor endpoint is refused" 2 \
  "num_actor_ranks.*need an actor group" -- \
  "$bin/rlhf" submit "$(job local 4 2 2 "")" --coordinator "$coord"

# 3. Faults.
sleep 10
id=$("$bin/rlhf" submit "$(job idle 4 2 2)" --coordinator "$coord")
expect "idle for longer than --group-timeout-s (8 s): the group still trains" 0 "SUCCEEDED" -- \
  "$bin/rlhf" watch "$id" --coordinator "$coord"

# restart_rank1: SIGKILL rank 1, start it again with the same flags (its log kept).
restart_rank1() {
  kill -9 "${pid[actor1]}"; wait "${pid[actor1]}" 2>/dev/null
  cat "$work/actor1.log" >>"$work/actor1-before.log"
  start actor1 "${torchrun[@]}" "${actor[@]}" --group-host 127.0.0.1 --group-timeout-s 8
}
# killed_run NAME WHEN WAIT_ITERATION PAUSE_S: an uninterrupted run (NAME-clean), then the
# same job (NAME-kill) with rank 1 killed and restarted once WAIT_ITERATION iterations are
# done (and PAUSE_S more); it must SUCCEED with the uninterrupted run's final policy, byte
# for byte. Leaves the killed job in $id and the iteration it was killed at in $it.
killed_run() {
  local name=$1 when=$2
  id=$("$bin/rlhf" submit "$(job "$name-clean" 4 2 2)" --coordinator "$coord")
  expect "an uninterrupted $ITERATIONS-iteration run over 2 ranks ($name)" 0 "SUCCEEDED" -- \
    "$bin/rlhf" watch "$id" --coordinator "$coord"
  id=$("$bin/rlhf" submit "$(job "$name-kill" 4 2 2)" --coordinator "$coord")
  wait_iteration "$id" "$3"
  sleep "$4"
  restart_rank1
  expect "kill -9 rank 1 $when: the job still SUCCEEDS" 0 "SUCCEEDED" -- \
    "$bin/rlhf" watch "$id" --coordinator "$coord"
  cmp -s "$work/ckpt-$name-clean/final/model.safetensors" \
    "$work/ckpt-$name-kill/final/model.safetensors" &&
    ok "kill -9 rank 1 $when: the final policy equals the uninterrupted run's, byte for byte" ||
    fail "kill -9 rank 1 $when: the final policy differs from the uninterrupted run's"
}

export ITERATIONS=12 INTERVAL=1
killed_run mid "mid-job" 3 0
[ "${it:-0}" -ge 3 ] && [ "${it:-0}" -lt 12 ] && ok "killed rank 1 at iteration $it/12 and restarted it" ||
  fail "did not catch the job mid-run (iteration ${it:-?})"
grep "job $id: .*restoring every role from" "$work/coordinator.log" | sed 's/^/     /'
kill -0 "${pid[actor0]}" && ok "rank 0 kept running" || fail "rank 0 died"

# Inside a Train (60 epochs x 2 minibatches: most of each iteration): rank 0's all-reduce
# fails, the coordinator restores every role from the last checkpoint once rank 0 has
# re-formed the group with the restarted rank 1.
export ITERATIONS=3 EPOCHS=60
killed_run long "inside a Train" 1 0.5
recovered=$(grep "job $id: .*restoring every role from" "$work/coordinator.log")
[ -n "$recovered" ] && ok "... the failed Train was repeated from the last checkpoint" ||
  fail "no recovery in the coordinator's log (rank 1 not killed inside a Train?)"
echo "$recovered" | sed 's/^/     /'
unset ITERATIONS INTERVAL EPOCHS

restart_rank1  # while idle
id=$("$bin/rlhf" submit "$(job after-idle-restart 4 2 2)" --coordinator "$coord")
expect "rank 1 restarted while idle: the next job SUCCEEDS" 0 "SUCCEEDED" -- \
  "$bin/rlhf" watch "$id" --coordinator "$coord"
grep -q "joined the group at policy version" "$work/actor1.log" &&
  ok "... rank 1 caught up with rank 0's state first" ||
  fail "rank 1 did not sync: $(tail -5 "$work/actor1.log")"

# 4. SIGTERM to rank 0 stops both.
kill -TERM "${pid[actor0]}"
for name in actor0 actor1; do
  for _ in $(seq 1 100); do kill -0 "${pid[$name]}" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "${pid[$name]}" 2>/dev/null; then
    fail "$name still running after rank 0's SIGTERM"
  else
    wait "${pid[$name]}"; status=$?
    [ "$status" -eq 0 ] && ok "$name exited 0" || fail "$name exited $status: $(tail -5 "$work/$name.log")"
  fi
done
finish
