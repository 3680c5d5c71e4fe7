#!/usr/bin/env bash
# deploy/local-cluster.sh end to end: the compose topology (two actor ranks, two replicas
# of each model service) as processes over TLS with tokens, and a real Prometheus scraping
# them. A small PPO job submitted with the cluster's token succeeds; Prometheus' HTTP API
# then holds the job's training series, rlhf_jobs{state="succeeded"} = 1, every target up,
# calls on every replica (rollouts listed one by one; reference and reward replicas behind
# one "ipv4:A,B" endpoint each, round-robin), and the alert rules loaded.
# Usage: local_cluster_test.sh BIN_DIR   (run from the repository root)
set -uo pipefail
source "$(dirname "$0")/testlib.sh"
bin=$(cd "$1" && pwd)
work=$(mktemp -d)
trap 'deploy/local-cluster.sh down "$work" >/dev/null 2>&1; rm -rf "$work"' EXIT

if ! BIN_DIR=$bin deploy/local-cluster.sh up "$work" tests/golden/fixtures/models/gpt2 >"$work/up.log" 2>&1; then
  fail "local-cluster.sh up: $(tail -20 "$work/up.log")"; finish; exit 1
fi
ok "local-cluster.sh up: nine servers over TLS and Prometheus"
source "$work/cluster.env"

# promql QUERY: the instant vector's samples as "labels value" lines.
promql() {
  curl -sfG "http://$PROMETHEUS/api/v1/query" --data-urlencode "query=$1" | python3 -c '
import json, sys
for r in json.load(sys.stdin)["data"]["result"]:
    print(json.dumps(r["metric"], sort_keys=True), r["value"][1])'
}
# wait_for NAME QUERY REGEX: polls (30 s) until the query's output matches.
wait_for() {
  local out=""
  for _ in $(seq 1 150); do
    out=$(promql "$2" 2>/dev/null)
    grep -Eq -- "$3" <<<"$out" && { ok "$1"; return; }
    sleep 0.2
  done
  fail "$1: '$2' gave: $out"
}

printf '%s\n' '{"prompt": "hello world"}' '{"prompt": "the quick brown fox"}' \
  '{"prompt": "once upon a time"}' '{"prompt": "a b c"}' >"$DATA_DIR/prompts.jsonl"
cat >"$work/job.json" <<JOB
{"name": "cluster-ppo", "algorithm": "ppo",
 "models": {"policy_dir": "models/policy"},
 "data": {"train_path": "prompts.jsonl"},
 "optimizer": {"learning_rate": 1e-4},
 "training": {"batch_size": 4, "minibatch_size": 2, "ppo_epochs": 1, "iterations": 3},
 "generation": {"max_prompt_tokens": 16, "max_response_tokens": 8},
 "reward": {"kind": "length", "target_length": 6},
 "checkpoint": {"interval": 2},
 "runtime": {"seed": 3, "num_actor_ranks": 2},
 "endpoints": {"actor": "$ACTOR", "rollout": ["$ROLLOUT0", "$ROLLOUT1"], "reference": "$REFERENCE",
               "reward": "$REWARD"}}
JOB
id=$("$bin/rlhf" submit "$work/job.json" --coordinator "$COORDINATOR")
[ -n "$id" ] && ok "submitted with the cluster's token ($id)" || fail "submit printed no id"
expect "the job SUCCEEDS on two actor ranks" 0 "iter 3/3 .*SUCCEEDED" -- \
  "$bin/rlhf" watch "$id" --coordinator "$COORDINATOR"
[ -f "$DATA_DIR/checkpoints/$id/iter-000002/coordinator_state.json" ] &&
  ok "checkpoint under --checkpoint-root/<job id>" || fail "no checkpoint in $DATA_DIR/checkpoints/$id"

wait_for "Prometheus scraped every target: 9 up" 'count(up == 1)' '^\{\} 9$'
wait_for "Prometheus has the job's reward series" "rlhf_training_reward_mean{job_id=\"$id\"}" "\"job_id\": \"$id\""
wait_for "... its KL coefficient" "rlhf_training_kl_coef{job_id=\"$id\"}" "\"job_id\": \"$id\""
wait_for "... 3 iterations" "rlhf_training_iterations_total{job_id=\"$id\"}" ' 3$'
wait_for "rlhf_jobs{state=\"succeeded\"} = 1" 'rlhf_jobs{state="succeeded"}' ' 1$'
wait_for "both actor ranks are scraped" 'count(up{job=~"actor.*"} == 1)' '^\{\} 2$'
wait_for "the actor counted its Train calls" 'sum(rlhf_rpc_requests_total{method="Train",code="OK"})' ' [1-9]'
for pair in rollout0:Generate rollout1:Generate rollout1:LoadWeights reference0:LogProbs \
  reference1:LogProbs reward0:Score reward1:Score; do
  wait_for "replica ${pair%%:*} served ${pair#*:}" \
    "sum(rlhf_rpc_requests_total{job=\"${pair%%:*}\",method=\"${pair#*:}\",code=\"OK\"})" ' [1-9]'
done
rules=$(curl -sf "http://$PROMETHEUS/api/v1/rules" | python3 -c '
import json, sys
print(" ".join(sorted(r["name"] for g in json.load(sys.stdin)["data"]["groups"] for r in g["rules"])))')
grep -q "RlhfJobFailed" <<<"$rules" && grep -q "RlhfServiceDown" <<<"$rules" &&
  ok "the alert rules are loaded ($rules)" || fail "alert rules missing: $rules"
firing=$(curl -sf "http://$PROMETHEUS/api/v1/alerts" | python3 -c '
import json, sys
print(" ".join(a["labels"]["alertname"] for a in json.load(sys.stdin)["data"]["alerts"] if a["state"] == "firing"))')
[ -z "$firing" ] && ok "no alert fires on a healthy cluster" || fail "alerts firing: $firing"

# A dead role shows up: the reward service killed, `up` goes to 0 for it.
kill -9 "$(cat "$work/pids/reward0")"
wait_for "a killed service is down in Prometheus" 'up{job="reward0"}' ' 0$'
expect "without the token the job API refuses" 1 "missing 'authorization: Bearer" -- \
  env -u RLHF_TOKEN_FILE "$bin/rlhf" list --coordinator "$COORDINATOR"
finish
