#!/usr/bin/env bash
# Faults lose nothing. A second coordinator on the same job store refuses to start. A PPO
# job across five processes (a checkpoint every iteration) has
# its actor, then in another run its rollout, killed with SIGKILL mid-job and restarted on
# the same port. The coordinator notices (a call fails, or the role reports another policy
# version), restores every role from the job's latest checkpoint and repeats the iterations
# after it: each job ends SUCCEEDED with exactly the optimizer steps of an uninterrupted
# run, and its final policy is byte-for-byte the uninterrupted run's. Last, the coordinator
# is killed and its newest checkpoints damaged: it resumes from an older one that verifies;
# and a role left down fails the job within the connect timeout, named.
# Usage: fault_test.sh BIN_DIR   (run from the repository root)
set -uo pipefail
source "$(dirname "$0")/testlib.sh"
servers_setup "$1"

start actor "$bin/rlhf-actor" --model "$model"
start rollout "$bin/rlhf-rollout" --model "$model"
start reference "$bin/rlhf-reference" --model "$model"
start reward "$bin/rlhf-reward" --scorer length
start coordinator "$bin/rlhf-coordinator" --state-db "$work/jobs.sqlite" --connect-timeout 20
for name in actor rollout reference reward coordinator; do wait_serving $name; done
coord=127.0.0.1:${port[coordinator]}
expect "a second coordinator on the same job store refuses to start" 1 \
  "in use by another coordinator" -- timeout 60 "$bin/rlhf-coordinator" \
  --state-db "$work/jobs.sqlite" --listen 127.0.0.1:0 --metrics-listen 127.0.0.1:0

iterations=16 epochs=2 minibatches=2
printf '%s\n' '{"prompt": "hello world"}' '{"prompt": "the quick brown fox"}' \
  '{"prompt": "once upon a time"}' '{"prompt": "a b c"}' >"$work/prompts.jsonl"
job() {  # job NAME
  cat >"$work/$1.json" <<JOB
{"name": "$1", "algorithm": "ppo", "models": {"policy_dir": "$model"},
 "data": {"train_path": "$work/prompts.jsonl"}, "optimizer": {"learning_rate": 1e-4},
 "training": {"batch_size": 4, "minibatch_size": 2, "ppo_epochs": $epochs,
              "iterations": $iterations},
 "generation": {"max_prompt_tokens": 16, "max_response_tokens": 8},
 "reward": {"kind": "length", "target_length": 6},
 "checkpoint": {"dir": "$work/ckpt-$1", "interval": 1}, "runtime": {"seed": 5},
 "endpoints": {"actor": "127.0.0.1:${port[actor]}", "rollout": ["127.0.0.1:${port[rollout]}"],
               "reference": "127.0.0.1:${port[reference]}", "reward": "127.0.0.1:${port[reward]}"}}
JOB
  echo "$work/$1.json"
}
last=$(printf 'iter-%06d' "$iterations")

# The uninterrupted run every faulted run must equal.
id=$("$bin/rlhf" submit "$(job clean)" --coordinator "$coord")
expect "uninterrupted run" 0 "SUCCEEDED" -- "$bin/rlhf" watch "$id" --coordinator "$coord"

# restart ROLE FLAGS...: SIGKILL, then the same binary on the same port (in $work, as `start`).
restart() {
  local name=$1; shift
  kill -9 "${pid[$name]}"; wait "${pid[$name]}" 2>/dev/null
  (cd "$work" && exec "$@" --listen "127.0.0.1:${port[$name]}" --metrics-listen 127.0.0.1:0) \
    >>"$work/$name.log" 2>&1 &
  pid[$name]=$!
}

for role in actor rollout; do
  id=$("$bin/rlhf" submit "$(job "kill-$role")" --coordinator "$coord")
  wait_iteration "$id" 3
  restart "$role" "$bin/rlhf-$role" --model "$model"
  [ "${it:-0}" -ge 3 ] && [ "${it:-0}" -lt "$iterations" ] &&
    ok "killed the $role at iteration $it/$iterations and restarted it" ||
    fail "did not catch the job mid-run (iteration ${it:-?})"
  start_s=$(date +%s.%N)
  expect "kill -9 $role: the job still SUCCEEDS" 0 "SUCCEEDED" -- \
    "$bin/rlhf" watch "$id" --coordinator "$coord"
  echo "     (job finished $(python3 -c "print(round($(date +%s.%N) - $start_s, 1))") s after the restart)"
  # A role that came back before anything asked it (a rollout killed between Generate and
  # the weight sync) needs no recovery; otherwise the log says what was restored.
  grep "job $id: .*restoring every role from" "$work/coordinator.log" | sed 's/^/     /'

  python3 - "$work/ckpt-kill-$role/$last" "$((iterations * epochs * minibatches))" <<'PY' &&
import json, sys
state = json.load(open(sys.argv[1] + "/policy/trainer_state.json"))
history = json.load(open(sys.argv[1] + "/coordinator_state.json"))["metrics"]
assert state["policy_version"] == int(sys.argv[2]), (state["policy_version"], sys.argv[2])
assert [m["iteration"] for m in history] == list(range(1, len(history) + 1)), history
PY
    ok "kill -9 $role: every optimizer step once, every iteration once" ||
    fail "kill -9 $role: optimizer steps or iterations lost or repeated"
  cmp -s "$work/ckpt-clean/final/model.safetensors" "$work/ckpt-kill-$role/final/model.safetensors" &&
    ok "kill -9 $role: the final policy equals the uninterrupted run's, byte for byte" ||
    fail "kill -9 $role: the final policy differs from the uninterrupted run's"
  wait_serving "$role"
done

# The coordinator killed mid-job, and its newest checkpoints damaged (4 KiB of 0xFF in the
# weights, the size unchanged): the restarted coordinator skips what does not verify
# against its SHA-256 manifest and resumes from the newest checkpoint that does.
id=$("$bin/rlhf" submit "$(job damaged)" --coordinator "$coord")
wait_iteration "$id" 3  # status polls lag a few iterations behind on a fast machine
kill -9 "${pid[coordinator]}"; wait "${pid[coordinator]}" 2>/dev/null
[ "${it:-0}" -ge 3 ] && [ "${it:-0}" -lt "$iterations" ] &&
  ok "killed the coordinator at iteration $it/$iterations" ||
  fail "did not catch the job mid-run (iteration ${it:-?})"
for dir in $(ls -d "$work"/ckpt-damaged/iter-* | sort | tail -2); do
  printf '\xff%.0s' $(seq 1 4096) | dd of="$dir/policy/model.safetensors" bs=1 seek=20000 \
    conv=notrunc status=none
done
start_coordinator 20
expect "damaged checkpoints: the resumed job SUCCEEDS" 0 "SUCCEEDED" -- \
  "$bin/rlhf" watch "$id" --coordinator "$coord"
skipped=$(grep "job $id: skipping checkpoint .*SHA-256" "$work/coordinator.log")
[ -n "$skipped" ] && ok "damaged checkpoints: skipped, with the reason" ||
  fail "damaged checkpoints: no skip in the log: $(grep "job $id" "$work/coordinator.log" | tail -5)"
echo "$skipped" | sed 's/^/     /'
cmp -s "$work/ckpt-clean/final/model.safetensors" "$work/ckpt-damaged/final/model.safetensors" &&
  ok "damaged checkpoints: the final policy equals the uninterrupted run's" ||
  fail "damaged checkpoints: the final policy differs from the uninterrupted run's"

# A pipelined job (runtime.max_policy_lag 1: batch k+1 is sampled while batch k trains)
# with its coordinator killed mid-job: the restarted one resumes from the checkpoint, whose
# data cursor excludes the batch that was in flight, and samples that batch again from the
# restored weights (policy lag 0 once, then one iteration's 4 steps again): every iteration
# and optimizer step once, and the same prompts consumed as the uninterrupted pipelined run.
lag_job() {  # lag_job NAME
  sed 's/"seed": 5/"seed": 5, "max_policy_lag": 1/' \
    "$(job "$1")" >"$work/$1-lag.json"
  echo "$work/$1-lag.json"
}
id=$("$bin/rlhf" submit "$(lag_job lagclean)" --coordinator "$coord")
expect "pipelined (max_policy_lag 1) uninterrupted run" 0 "SUCCEEDED" -- \
  "$bin/rlhf" watch "$id" --coordinator "$coord"
id=$("$bin/rlhf" submit "$(lag_job lagkill)" --coordinator "$coord")
wait_iteration "$id" 2
kill -9 "${pid[coordinator]}"; wait "${pid[coordinator]}" 2>/dev/null
killed_at=${it:-0}
[ "$killed_at" -ge 2 ] && [ "$killed_at" -lt "$iterations" ] ||
  fail "did not catch the pipelined job mid-run (iteration $killed_at)"
start_coordinator 20
expect "pipelined job, coordinator killed at iteration $killed_at: the resumed job SUCCEEDS" 0 \
  "SUCCEEDED" -- "$bin/rlhf" watch "$id" --coordinator "$coord"
python3 - "$work/ckpt-lagclean/$last" "$work/ckpt-lagkill/$last" "$iterations" <<'PY' &&
import json, sys
clean, killed = (json.load(open(d + "/coordinator_state.json")) for d in sys.argv[1:3])
n = int(sys.argv[3])
steps = json.load(open(sys.argv[2] + "/policy/trainer_state.json"))["policy_version"]
assert steps == n * 4, steps
history = killed["metrics"]
assert [m["iteration"] for m in history] == list(range(1, n + 1)), history
assert clean["cursor"] == killed["cursor"] == n * 4, (clean["cursor"], killed["cursor"])
lags = [m["policy_lag"] for m in history]
assert [m["policy_lag"] for m in clean["metrics"]] == [0] + [4] * (n - 1), clean["metrics"]
assert lags.count(0) == 2 and set(lags) == {0, 4}, lags  # the start, and the resume
print("     policy lag per iteration after the resume:", lags)
PY
  ok "pipelined job: every iteration and optimizer step once, the same prompts as uninterrupted" ||
  fail "pipelined job: iterations, steps or data order differ from the uninterrupted run"

# SIGTERM to a coordinator whose job is inside a long Train: it cancels its in-flight calls
# (the actor stops at its next optimizer step), leaves the job RUNNING for the next start
# and exits 0 in seconds, not when the Train would have ended.
# (1000 epochs x 4 minibatches of 32-token responses: a Train of minutes on this model)
sed 's/"ppo_epochs": [0-9]*/"ppo_epochs": 1000/; s/"minibatch_size": 2/"minibatch_size": 1/;
     s/"max_response_tokens": 8/"max_response_tokens": 32/' "$(job long)" >"$work/long-epochs.json"
id=$("$bin/rlhf" submit "$work/long-epochs.json" --coordinator "$coord")
for _ in $(seq 1 300); do
  grep -q "job $id: running" "$work/coordinator.log" && break
  sleep 0.05
done
sleep 3  # into the first Train
term_start=$(date +%s)
kill -TERM "${pid[coordinator]}"; wait "${pid[coordinator]}"; status=$?
term_s=$(($(date +%s) - term_start))
[ $status -eq 0 ] && [ "$term_s" -le 10 ] &&
  ok "SIGTERM during a long Train: the coordinator exits 0 in $term_s s" ||
  fail "SIGTERM during a long Train: exit status $status after $term_s s"
start_coordinator 20
expect "... the job is still there to resume, and can be cancelled" 0 "CANCELLED" -- \
  "$bin/rlhf" cancel "$id" --coordinator "$coord"

# A role killed and left down: the job fails within the connect timeout, naming the role,
# not after the RPC timeout (10 minutes by default).
id=$("$bin/rlhf" submit "$(job down)" --coordinator "$coord")
wait_iteration "$id" 2
kill -9 "${pid[reward]}"; wait "${pid[reward]}" 2>/dev/null; unset "pid[reward]"
down_start=$(date +%s)
expect "a role left down: the job FAILS naming it" 1 "FAILED: .*cannot reach the reward service" -- \
  "$bin/rlhf" watch "$id" --coordinator "$coord"
down_s=$(($(date +%s) - down_start))
[ "$down_s" -le 60 ] && ok "... within the 20 s connect timeout ($down_s s)" ||
  fail "the job took $down_s s to fail"

finish
