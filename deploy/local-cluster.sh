#!/usr/bin/env bash
# The docker-compose topology as processes on this machine's loopback, with the same
# security as a cluster: coordinator, two data-parallel actor ranks, and two replicas each
# of rollout, reference and reward, every server over TLS (certificates and tokens from scripts/make_test_certs.sh),
# the job API behind one token and the model services behind another, job paths confined
# to DIR; plus a real Prometheus (Debian's `prometheus`) scraping all six /metrics with
# deploy/prometheus/rules.yml loaded. For trying a deployment, and for
# tests/integration/local_cluster_test.sh.
#
#   deploy/local-cluster.sh up DIR [MODEL_DIR]   start; returns once everything serves
#   deploy/local-cluster.sh down DIR             SIGTERM everything (drain), then wait
#
# `up` copies MODEL_DIR (default examples/models/tiny-gpt2) to DIR/models/policy and
# writes DIR/cluster.env: the addresses (COORDINATOR, ACTOR, ROLLOUT0, ROLLOUT1, and
# REFERENCE and REWARD as "ipv4:A,B" targets the coordinator spreads calls over; over TLS
# such a list has no one host name, so the coordinator verifies the certificates' name
# "localhost" (--service-tls-server-name); PROMETHEUS) and the client settings (RLHF_TOKEN_FILE, RLHF_TLS_CA), so that
#   source DIR/cluster.env; build/bin/rlhf list --coordinator "$COORDINATOR"
# works. Logs: DIR/logs/NAME.log. BIN_DIR (env) names the binaries (default build/bin).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
bin=$(cd "${BIN_DIR:-build/bin}" && pwd)
action=${1:?usage: local-cluster.sh up|down DIR [MODEL_DIR]}
dir=${2:?usage: local-cluster.sh up|down DIR [MODEL_DIR]}
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
servers=(actor0 actor1 rollout0 rollout1 reference0 reference1 reward0 reward1 coordinator)
names=("${servers[@]}" prometheus)

if [ "$action" = down ]; then
  for name in "${names[@]}"; do
    [ -f "$dir/pids/$name" ] && kill -TERM "$(cat "$dir/pids/$name")" 2>/dev/null || true
  done
  for name in "${names[@]}"; do
    pid=$(cat "$dir/pids/$name" 2>/dev/null) || continue
    for _ in $(seq 1 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
    rm -f "$dir/pids/$name"
  done
  exit 0
fi
[ "$action" = up ] || { echo "usage: local-cluster.sh up|down DIR [MODEL_DIR]" >&2; exit 2; }
command -v prometheus >/dev/null || { echo "local-cluster: needs prometheus (scripts/install_deps.sh)" >&2; exit 1; }

model_src=${3:-examples/models/tiny-gpt2}
mkdir -p "$dir/logs" "$dir/pids" "$dir/models" "$dir/checkpoints"
rm -rf "$dir/models/policy" && cp -r "$model_src" "$dir/models/policy"
model=$dir/models/policy
secrets=$dir/secrets
[ -f "$secrets/ca.pem" ] || scripts/make_test_certs.sh "$secrets" >/dev/null
[ -s "$secrets/service-token" ] || openssl rand -hex 24 >"$secrets/service-token"
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

tls=(--tls-cert "$secrets/server.pem" --tls-key "$secrets/server.key")
service_auth=("${tls[@]}" --auth-token-file "$secrets/service-token")
store=127.0.0.1:$(free_port)
group=(--world-size 2 --group-store "$store" --group-host 127.0.0.1 --group-timeout-s 60)
declare -A port mport

# start NAME ARGS...: in $dir (the servers' roots), on ephemeral ports read from its log.
start() {
  local name=$1; shift
  (cd "$dir" && exec "$@" --listen 127.0.0.1:0 --metrics-listen 127.0.0.1:0) \
    >"$dir/logs/$name.log" 2>&1 &
  echo $! >"$dir/pids/$name"
}
wait_listening() {
  local name=$1
  for _ in $(seq 1 600); do
    if grep -q "listening on" "$dir/logs/$name.log"; then
      port[$name]=$(sed -n 's/.*listening on 127.0.0.1:\([0-9]*\),.*/\1/p' "$dir/logs/$name.log" | head -1)
      mport[$name]=$(sed -n 's/.*metrics on port \([0-9]*\);.*/\1/p' "$dir/logs/$name.log" | head -1)
      return 0
    fi
    kill -0 "$(cat "$dir/pids/$name")" 2>/dev/null || break
    sleep 0.1
  done
  echo "local-cluster: $name did not start:" >&2; cat "$dir/logs/$name.log" >&2; exit 1
}

start actor0 "$bin/rlhf-actor" --model "$model" --rank 0 "${group[@]}" "${service_auth[@]}"
start actor1 "$bin/rlhf-actor" --model "$model" --rank 1 "${group[@]}" "${service_auth[@]}"
for i in 0 1; do
  start "rollout$i" "$bin/rlhf-rollout" --model "$model" "${service_auth[@]}"
  start "reference$i" "$bin/rlhf-reference" --model "$model" "${service_auth[@]}"
  start "reward$i" "$bin/rlhf-reward" --scorer length --target-length 8 "${service_auth[@]}"
done
start coordinator "$bin/rlhf-coordinator" --state-db "$dir/jobs.sqlite" --connect-timeout 30 \
  "${tls[@]}" --auth-token-file "$secrets/token" --service-token-file "$secrets/service-token" \
  --service-tls-ca "$secrets/ca.pem" --service-tls-server-name localhost --data-root "$dir" --checkpoint-root "$dir/checkpoints" \
  --finished-job-metrics-seconds 3600
for name in "${servers[@]}"; do wait_listening "$name"; done

prom_port=$(free_port)
{
  echo "global: {scrape_interval: 1s, evaluation_interval: 1s}"
  echo "rule_files: [$repo/deploy/prometheus/rules.yml]"
  echo "scrape_configs:"
  for name in "${servers[@]}"; do
    echo "  - {job_name: $name, static_configs: [{targets: [\"127.0.0.1:${mport[$name]}\"]}]}"
  done
} >"$dir/prometheus.yml"
promtool check config "$dir/prometheus.yml" >/dev/null
prometheus --config.file "$dir/prometheus.yml" --storage.tsdb.path "$dir/tsdb" \
  --web.listen-address "127.0.0.1:$prom_port" >"$dir/logs/prometheus.log" 2>&1 &
echo $! >"$dir/pids/prometheus"

cat >"$dir/cluster.env" <<EOF
COORDINATOR=127.0.0.1:${port[coordinator]}
ACTOR=127.0.0.1:${port[actor0]}
ROLLOUT0=127.0.0.1:${port[rollout0]}
ROLLOUT1=127.0.0.1:${port[rollout1]}
REFERENCE=ipv4:127.0.0.1:${port[reference0]},127.0.0.1:${port[reference1]}
REWARD=ipv4:127.0.0.1:${port[reward0]},127.0.0.1:${port[reward1]}
PROMETHEUS=127.0.0.1:$prom_port
DATA_DIR=$dir
MODEL_DIR=$model
export RLHF_TOKEN_FILE=$secrets/token RLHF_TLS_CA=$secrets/ca.pem
EOF

for name in "${servers[@]}"; do
  ok=0
  for _ in $(seq 1 600); do
    RLHF_TLS_CA=$secrets/ca.pem "$bin/rlhf" health "127.0.0.1:${port[$name]}" >/dev/null 2>&1 && { ok=1; break; }
    sleep 0.1
  done
  [ $ok = 1 ] || { echo "local-cluster: $name never reported SERVING:" >&2; cat "$dir/logs/$name.log" >&2; exit 1; }
done
for _ in $(seq 1 300); do
  curl -sf "http://127.0.0.1:$prom_port/-/ready" >/dev/null && break
  sleep 0.1
done
curl -sf "http://127.0.0.1:$prom_port/-/ready" >/dev/null ||
  { echo "local-cluster: prometheus is not ready:" >&2; tail -20 "$dir/logs/prometheus.log" >&2; exit 1; }
echo "local-cluster: up; source $dir/cluster.env (coordinator ${port[coordinator]}, prometheus $prom_port)"
