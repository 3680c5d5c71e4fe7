#!/usr/bin/env bash
# End-to-end: the five binaries as separate processes on loopback ephemeral ports.
#   1. a small PPO job submitted with `rlhf submit`, followed with `rlhf watch`: it
#      finishes, checkpoints exist, /metrics of the coordinator shows the training metrics
#      and /metrics of every service its RPCs;
#   2. bad input: malformed JSON, invalid fields, a missing file, a dataset with a bad line,
#      an unreachable service (the job fails with a clear message, the coordinator keeps
#      serving);
#   3. restart: kill -9 the coordinator mid-job, start it again: the job resumes from its
#      last checkpoint and finishes; no iteration is lost or run twice;
#   4. SIGTERM: every server drains and exits 0.
# Every server runs as on a shared cluster: TLS with certificates made here
# (scripts/make_test_certs.sh), the job API behind one bearer token, the model services
# behind another (the reward service behind mTLS instead); the CLI reads its token and CA
# from RLHF_TOKEN_FILE / RLHF_TLS_CA. Calls without them are refused.
# Usage: distributed_test.sh BIN_DIR   (run from the repository root)
set -uo pipefail
source "$(dirname "$0")/testlib.sh"
servers_setup "$1"


metrics() { curl -sf "http://127.0.0.1:${mport[$1]}/metrics"; }

tls=$work/tls
scripts/make_test_certs.sh "$tls" || { echo "FAIL cannot make certificates"; exit 1; }
openssl rand -hex 24 >"$tls/service-token"
serve_tls=(--tls-cert "$tls/server.pem" --tls-key "$tls/server.key")
services_auth=("${serve_tls[@]}" --auth-token-file "$tls/service-token")
coordinator_flags=("${serve_tls[@]}" --auth-token-file "$tls/token"
  --service-token-file "$tls/service-token" --service-tls-ca "$tls/ca.pem"
  --service-tls-cert "$tls/client.pem" --service-tls-key "$tls/client.key")
# (the client certificate is for `rlhf health` of the mTLS reward service)
export RLHF_TOKEN_FILE=$tls/token RLHF_TLS_CA=$tls/ca.pem RLHF_TLS_CERT=$tls/client.pem \
  RLHF_TLS_KEY=$tls/client.key

start actor "$bin/rlhf-actor" --model "$model" --lr 1e-4 "${services_auth[@]}"
start rollout "$bin/rlhf-rollout" --model "$model" "${services_auth[@]}"
start reference "$bin/rlhf-reference" --model "$model" "${services_auth[@]}"
start reward "$bin/rlhf-reward" --scorer length --target-length 6 "${serve_tls[@]}" --tls-ca "$tls/ca.pem"
start coordinator "$bin/rlhf-coordinator" --state-db "$work/jobs.sqlite" --connect-timeout 3 \
  "${coordinator_flags[@]}"
for name in actor rollout reference reward coordinator; do wait_serving $name; done
ok "five servers SERVING on ephemeral ports, over TLS"
coord=127.0.0.1:${port[coordinator]}
expect "a job-API call without a token: UNAUTHENTICATED, nothing listed" 1 \
  "rlhf list: error: missing 'authorization: Bearer" -- env -u RLHF_TOKEN_FILE "$bin/rlhf" list --coordinator "$coord"
echo wrong >"$work/wrong-token"
expect "a wrong token: UNAUTHENTICATED" 1 "invalid bearer token" -- \
  "$bin/rlhf" list --coordinator "$coord" --token-file "$work/wrong-token"
expect "the model services' token is not the job API's" 1 "invalid bearer token" -- \
  "$bin/rlhf" list --coordinator "$coord" --token-file "$tls/service-token"
expect "plaintext to a TLS server fails" 1 "coordinator at $coord" -- \
  env -u RLHF_TLS_CA -u RLHF_TLS_CERT -u RLHF_TLS_KEY "$bin/rlhf" list --coordinator "$coord" --timeout 2
expect "a client trusting another CA refuses the server" 1 \
  "coordinator at $coord" -- "$bin/rlhf" list --coordinator "$coord" --timeout 2 --tls-ca "$tls/other-ca.pem"
declare -A served=([actor]=ActorService [rollout]=RolloutService [reference]=ReferenceService
  [reward]=RewardService [coordinator]=JobService)
for name in "${!served[@]}"; do
  expect "health answers for rlhf.v1.${served[$name]} by name" 0 "SERVING" -- \
    "$bin/rlhf" health "127.0.0.1:${port[$name]}" --service "rlhf.v1.${served[$name]}"
done
expect "health of a service the server does not have: exit 1, says so" 1 "service name unknown" -- \
  "$bin/rlhf" health "$coord" --service rlhf.v1.ActorService

printf '%s\n' '{"prompt": "hello world"}' '{"prompt": "the quick brown fox"}' \
  '{"prompt": "once upon a time"}' '{"prompt": "a b c"}' >"$work/prompts.jsonl"
# job NAME ITERATIONS [REWARD_ADDRESS]: a PPO job file against the services above.
job() {
  cat >"$work/$1.json" <<EOF
{"name": "$1", "algorithm": "ppo",
 "models": {"policy_dir": "$model"},
 "data": {"train_path": "$work/prompts.jsonl"},
 "optimizer": {"learning_rate": 1e-4},
 "training": {"batch_size": 4, "minibatch_size": 2, "ppo_epochs": 2, "iterations": $2},
 "generation": {"max_prompt_tokens": 16, "max_response_tokens": 8},
 "reward": {"kind": "length", "target_length": 6},
 "checkpoint": {"dir": "$work/ckpt-$1", "interval": ${4:-2}},
 "runtime": {"seed": 7},
 "endpoints": {"actor": "127.0.0.1:${port[actor]}", "rollout": ["127.0.0.1:${port[rollout]}"],
               "reference": "127.0.0.1:${port[reference]}", "reward": "${3:-127.0.0.1:${port[reward]}}"}}
EOF
  echo "$work/$1.json"
}

# 1. A PPO job across the processes.
id=$("$bin/rlhf" submit "$(job ppo 4)" --coordinator "$coord")
[ -n "$id" ] && ok "submit prints the job id ($id)" || fail "submit printed no id"
expect "watch follows the job to SUCCEEDED" 0 "iter 4/4 .*reward.*kl.*.*SUCCEEDED" -- \
  "$bin/rlhf" watch "$id" --coordinator "$coord"
for d in iter-000002 iter-000004 final; do  # final: the policy alone, HF layout
  [ -f "$work/ckpt-ppo/$d/$([ $d = final ] && echo model.safetensors || echo policy/model.safetensors)" ] &&
    ok "checkpoint $d exists" || fail "checkpoint $d missing: $(ls -R "$work/ckpt-ppo" 2>&1 | head)"
done
[ ! -e "$work/ckpt-ppo/final/optimizer.safetensors" ] && ! grep -q v_head "$work/ckpt-ppo/final/model.safetensors" &&
  ok "the final export has no value head or optimizer state" || fail "the final export carries training state"
grep -q '"iteration": 4' "$work/ckpt-ppo/iter-000004/coordinator_state.json" &&
  ok "checkpoint records the iteration" || fail "coordinator_state.json lacks the iteration"
expect "status shows SUCCEEDED with metrics" 0 "state: +SUCCEEDED.*reward_mean" -- \
  "$bin/rlhf" status "$id" --coordinator "$coord"
expect "list shows the job" 0 "$id +SUCCEEDED +ppo +4/4" -- "$bin/rlhf" list --coordinator "$coord"
m=$(metrics coordinator)
for name in rlhf_training_reward_mean rlhf_training_kl rlhf_training_kl_coef \
  rlhf_training_policy_loss rlhf_training_value_loss rlhf_training_entropy \
  rlhf_training_clip_fraction rlhf_training_approx_kl rlhf_training_response_length_tokens \
  rlhf_training_weights_version rlhf_training_tokens_generated_total; do
  grep -q "^$name{job_id=\"$id\"}" <<<"$m" || { fail "coordinator /metrics lacks $name"; continue; }
done
grep -q "rlhf_training_stage_seconds_count{job_id=\"$id\",stage=\"sync\"}" <<<"$m" &&
  ok "coordinator /metrics has the training metrics and stage timings" ||
  fail "coordinator /metrics lacks stage timings"
for pair in actor:Train actor:Evaluate actor:ExportWeights rollout:Generate rollout:LoadWeights \
  reference:LogProbs reward:Score coordinator:SubmitJob; do
  # (not `metrics | grep -q`: with pipefail, grep's early exit fails curl with SIGPIPE)
  m=$(metrics "${pair%%:*}")
  grep -q "rlhf_rpc_requests_total{.*method=\"${pair#*:}\"" <<<"$m" &&
    ok "/metrics of ${pair%%:*} counts ${pair#*:}" || fail "/metrics of ${pair%%:*} lacks ${pair#*:}"
done

# 2. Bad input.
echo '{"algorithm": "ppo",' >"$work/malformed.json"
expect "malformed JSON" 2 "malformed.json" -- "$bin/rlhf" submit "$work/malformed.json" --coordinator "$coord"
sed 's/"learning_rate": 1e-4/"learning_rate": -1/; s/"batch_size": 4/"batch_size": 3/' \
  "$(job bad 2)" >"$work/invalid.json"
expect "invalid fields, each with its path" 2 \
  "optimizer.learning_rate: must be > 0.*training.minibatch_size" -- \
  "$bin/rlhf" submit "$work/invalid.json" --coordinator "$coord"
expect "missing job file" 1 "cannot read job file" -- \
  "$bin/rlhf" submit "$work/nope.json" --coordinator "$coord"
sed "s#$work/prompts.jsonl#$work/missing.jsonl#" "$(job bad 2)" >"$work/missing-data.json"
expect "missing dataset" 2 "data.train_path" -- \
  "$bin/rlhf" submit "$work/missing-data.json" --coordinator "$coord"
printf '%s\n' '{"prompt": "ok"}' '{"prompt": 5}' >"$work/badline.jsonl"
sed "s#$work/prompts.jsonl#$work/badline.jsonl#" "$(job bad 2)" >"$work/badline.json"
expect "dataset bad line named with its number" 2 "badline.jsonl:2" -- \
  "$bin/rlhf" submit "$work/badline.json" --coordinator "$coord"
sed "s#\"dir\": \"$work/ckpt-bad\"#\"dir\": \"$work/../ckpt-escape\"#; s#$work/prompts.jsonl#/etc/passwd#" \
  "$(job bad 2)" >"$work/escape.json"
expect "paths outside the coordinator's roots: refused, each field named" 2 \
  "data.train_path: /etc/passwd is outside $work.*checkpoint.dir: $work/../ckpt-escape is outside" -- \
  "$bin/rlhf" submit "$work/escape.json" --coordinator "$coord"
[ ! -e "$work/../ckpt-escape" ] && ok "nothing was created outside" || fail "$work/../ckpt-escape exists"
sed "s#\"dir\": \"$work/ckpt-foreign\"#\"dir\": \"$work/models\"#" "$(job foreign 2)" >"$work/foreign-dir.json"
id_foreign=$("$bin/rlhf" submit "$work/foreign-dir.json" --coordinator "$coord")
expect "a checkpoint.dir holding other files (the model): the job fails naming it" 1 \
  "FAILED: .*checkpoint.dir $work/models holds other files \('gpt2'\)" -- \
  "$bin/rlhf" watch "$id_foreign" --coordinator "$coord"
[ "$(ls "$work/models")" = gpt2 ] && [ -f "$model/config.json" ] &&
  ok "... and nothing was written or deleted there" || fail "$work/models changed: $(ls -a "$work/models")"
id_bad=$("$bin/rlhf" submit "$(job unreachable 2 127.0.0.1:1)" --coordinator "$coord")
expect "unreachable reward service: the job fails clearly" 1 \
  "FAILED: .*cannot reach the reward service at 127.0.0.1:1" -- \
  "$bin/rlhf" watch "$id_bad" --coordinator "$coord"
expect "the coordinator keeps serving" 0 "SERVING" -- "$bin/rlhf" health "$coord"
expect "unknown job id" 1 "no job with id \"job-nope\"" -- \
  "$bin/rlhf" status job-nope --coordinator "$coord"

# 3. Restart: kill -9 mid-job, start again, the job resumes and finishes.
id_r=$("$bin/rlhf" submit "$(job restart 30 "" 1)" --coordinator "$coord")
wait_iteration "$id_r" 3
kill -9 "${pid[coordinator]}"; wait "${pid[coordinator]}" 2>/dev/null
[ "${it:-0}" -ge 3 ] && [ "${it:-0}" -lt 30 ] && ok "killed the coordinator at iteration $it/30" ||
  fail "did not catch the job mid-run (iteration ${it:-?})"
start_coordinator 3
expect "the restarted coordinator resumes the job to SUCCEEDED" 0 "SUCCEEDED" -- \
  "$bin/rlhf" watch "$id_r" --coordinator "$coord"
grep -q "resum" "$work/coordinator.log" && ok "it resumed from a checkpoint" ||
  fail "no resume in the log: $(cat "$work/coordinator.log")"
# Every iteration once: 30 iterations x 2 epochs x 2 minibatches optimizer steps exactly,
# and the metrics history holds iterations 1..30 once each.
python3 - "$work/ckpt-restart/iter-000030" <<'EOF' && ok "no iteration lost or run twice" || fail "iterations lost or repeated"
import json, sys
d = sys.argv[1]
state = json.load(open(d + "/coordinator_state.json"))
trainer = json.load(open(d + "/policy/trainer_state.json"))
iters = [m["iteration"] for m in state["metrics"]]
assert iters == list(range(1, 31)), iters
assert trainer["policy_version"] == 30 * 2 * 2, trainer["policy_version"]
EOF

# 4. SIGTERM: drain and exit 0.
for name in coordinator actor rollout reference reward; do
  kill -TERM "${pid[$name]}"
  wait "${pid[$name]}"; status=$?
  unset "pid[$name]"
  [ $status -eq 0 ] && ok "$name drains on SIGTERM and exits 0" || fail "$name exited $status on SIGTERM"
done

finish
