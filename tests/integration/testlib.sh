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
