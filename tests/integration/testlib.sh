# Shared by the integration scripts: pass/fail counting and `expect`.
# Source it, then end the script with `finish`.
failures=0 passed=0
ok() { echo "ok   $1"; passed=$((passed + 1)); }
fail() { echo "FAIL $1"; failures=$((failures + 1)); }
# expect NAME EXPECTED_STATUS REGEX -- command...: runs the command; passes when it exits
# with EXPECTED_STATUS and its output (stdout+stderr, newlines as spaces) matches REGEX.
expect() {
  local name=$1 want_status=$2 want=$3; shift 4
  local out status
  out=$("$@" 2>&1); status=$?
  if [ "$status" -ne "$want_status" ] || ! tr '\n' ' ' <<<"$out" | grep -Eq -- "$want"; then
    fail "$name: status $status (want $want_status, output matching '$want'), output:"
    echo "$out" | tail -20
  else
    ok "$name"
  fi
}
finish() {
  echo "$passed passed, $failures failed"
  [ "$failures" -eq 0 ]
}

# Servers for the multi-process tests: `servers_setup BIN_DIR` sets $bin, a fresh $work,
# $model (a copy of the gpt2 fixture in $work: servers only read and write under their
# working directory, $work, as a deployment's --data-root/--checkpoint-root), declares the
# pid/port/mport maps `start` fills, and kills every server (and removes $work;
# RLHF_TEST_LOGS=DIR keeps the logs) on exit.
servers_setup() {
  bin=$(cd "$1" && pwd)
  work=$(mktemp -d)
  model=$work/models/gpt2
  mkdir -p "$work/models" && cp -r tests/golden/fixtures/models/gpt2 "$model"
  declare -gA pid port mport
  trap kill_servers EXIT
}
kill_servers() {
  for name in "${!pid[@]}"; do kill -9 "${pid[$name]}" 2>/dev/null; done
  # RLHF_TEST_LOGS=DIR keeps every server's log for a post-mortem.
  [ -n "${RLHF_TEST_LOGS:-}" ] && mkdir -p "$RLHF_TEST_LOGS" && cp "$work"/*.log "$RLHF_TEST_LOGS"/
  rm -rf "$work"
}
# start NAME BINARY ARGS...: runs a server in $work on ephemeral ports, reads them from
# its log.
start() {
  local name=$1; shift
  (cd "$work" && exec "$@" --listen 127.0.0.1:0 --metrics-listen 127.0.0.1:0) >"$work/$name.log" 2>&1 &
  pid[$name]=$!
  for _ in $(seq 1 300); do
    if grep -q "listening on" "$work/$name.log"; then
      port[$name]=$(sed -n 's/.*listening on 127.0.0.1:\([0-9]*\),.*/\1/p' "$work/$name.log" | head -1)
      mport[$name]=$(sed -n 's/.*metrics on port \([0-9]*\);.*/\1/p' "$work/$name.log" | head -1)
      return 0
    fi
    sleep 0.1
  done
  echo "FAIL $name did not start:"; cat "$work/$name.log"; exit 1
}
wait_serving() {
  for _ in $(seq 1 300); do
    "$bin/rlhf" health "127.0.0.1:${port[$1]}" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "FAIL $1 never reported SERVING:"; cat "$work/$1.log"; exit 1
}
# wait_iteration JOB_ID N: polls `rlhf status` (30 s at most) until the job has done N
# iterations or ended; leaves the iterations done in $it.
wait_iteration() {
  local st
  for _ in $(seq 1 600); do
    st=$("$bin/rlhf" status "$1" --coordinator "$coord" 2>/dev/null)
    it=$(sed -n 's/^progress: *\([0-9]*\)\/.*/\1/p' <<<"$st")
    [ "${it:-0}" -ge "$2" ] || grep -Eq "state: +(FAILED|SUCCEEDED|CANCELLED)" <<<"$st" && return
    sleep 0.05
  done
}
# start_coordinator CONNECT_TIMEOUT_S: (re)starts rlhf-coordinator on $work/jobs.sqlite
# (plus the flags in the array coordinator_flags, when set), waits until it serves, and
# points $coord at it.
start_coordinator() {
  start coordinator "$bin/rlhf-coordinator" --state-db "$work/jobs.sqlite" --connect-timeout "$1" \
    ${coordinator_flags[@]+"${coordinator_flags[@]}"}
  wait_serving coordinator
  coord=127.0.0.1:${port[coordinator]}
}
