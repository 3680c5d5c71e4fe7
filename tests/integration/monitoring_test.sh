#!/usr/bin/env bash
# The monitoring artefacts in deploy/: Prometheus config and alert rules (promtool check),
# the rules' unit tests (promtool test rules; every alert has a firing and a quiet case,
# and each firing case fails when its alert never fires), every PromQL expression of the
# Grafana dashboard parses, and every metric the dashboard and the rules name is one the
# services export (string literals in common/ and services/). Each checker is first shown
# a broken input and must reject it. Needs promtool (Debian's prometheus package) and python3.
set -uo pipefail
cd "$(dirname "$0")/../.."
source tests/integration/testlib.sh

if ! command -v promtool >/dev/null; then
  echo "FAIL promtool not found: scripts/install_deps.sh installs Debian's prometheus package"
  exit 1
fi
rules=deploy/prometheus/rules.yml
rules_test=deploy/prometheus/rules_test.yml
dashboard=deploy/grafana/dashboards/rlhf.json
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

expect "promtool check config" 0 "SUCCESS: 1 rule files found" -- \
  promtool check config deploy/prometheus/prometheus.yml
expect "promtool check rules" 0 "SUCCESS: [0-9]+ rules found" -- promtool check rules "$rules"
expect "promtool test rules" 0 "SUCCESS" -- promtool test rules "$rules_test"

# The alert names of rules.yml, and (by text, no YAML module needed) rules_test.yml's
# evaluations per alert: [] = quiet, anything else = firing.
alerts=$(sed -n 's/^ *- alert: *\([A-Za-z0-9_]*\).*/\1/p' "$rules")
[ -n "$alerts" ] || fail "no alerts found in $rules"
for alert in $alerts; do
  evals=$(grep -A1 -E "alertname: *$alert\$" "$rules_test" | grep -oE "exp_alerts:.*" | sed 's/ *#.*//')
  if grep -qx "exp_alerts: \[\]" <<<"$evals" && grep -qx "exp_alerts:" <<<"$evals"; then
    ok "$alert has a firing and a quiet evaluation in rules_test.yml"
  else
    fail "$alert needs an evaluation that fires and one that stays quiet in rules_test.yml"
  fi
  # With the alert's expression replaced by one that never fires, the tests must fail.
  mkdir -p "$tmp/mutant"
  python3 - "$rules" "$alert" >"$tmp/mutant/rules.yml" <<'EOF'
import re, sys
lines, alert, out, skip = open(sys.argv[1]).read().split("\n"), sys.argv[2], [], None
in_alert = False
for line in lines:
    indent = len(line) - len(line.lstrip())
    if skip is not None:
        if line.strip() == "" or indent > skip:
            continue
        skip = None
    if re.match(r"\s*- alert:", line):
        in_alert = line.split(":", 1)[1].strip() == alert
    m = re.match(r"(\s*)expr:", line)
    if in_alert and m:
        out.append(m.group(1) + "expr: vector(0) > 1")
        skip = len(m.group(1))
        continue
    out.append(line)
print("\n".join(out))
EOF
  sed "s#^  - rules.yml#  - $tmp/mutant/rules.yml#" "$rules_test" >"$tmp/mutant/rules_test.yml"
  expect "$alert: a never-firing $alert fails rules_test.yml" 1 "FAILED" -- \
    promtool test rules "$tmp/mutant/rules_test.yml"
done

# Every expression of the dashboard (panel targets; Grafana's $variables made concrete) as
# a recording rule, so that `promtool check rules` parses it.
dashboard_exprs() {  # DASHBOARD_JSON -> one expression per line (newlines folded)
  python3 - "$1" <<'EOF'
import json, re, sys
def walk(node):
    if isinstance(node, dict):
        if isinstance(node.get("expr"), str):
            yield node["expr"]
        for v in node.values():
            yield from walk(v)
    elif isinstance(node, list):
        for v in node:
            yield from walk(v)
for expr in walk(json.load(open(sys.argv[1]))):
    expr = re.sub(r"\$__(rate_interval|interval|range)", "5m", expr)
    expr = re.sub(r"\$\{?[A-Za-z_][A-Za-z0-9_]*\}?", ".+", expr)
    print(" ".join(expr.split()))
EOF
}
as_recording_rules() {  # EXPRS_FILE -> a rules file
  echo "groups:"
  echo "  - name: dashboard"
  echo "    rules:"
  local n=0
  while IFS= read -r expr; do
    n=$((n + 1))
    printf '      - record: dashboard:expr_%d\n        expr: %s\n' "$n" \
      "$(python3 -c 'import json,sys; print(json.dumps(sys.argv[1]))' "$expr")"
  done <"$1"
}
dashboard_exprs "$dashboard" >"$tmp/exprs.txt"
count=$(wc -l <"$tmp/exprs.txt")
[ "$count" -ge 20 ] || fail "only $count expressions found in $dashboard"
as_recording_rules "$tmp/exprs.txt" >"$tmp/dashboard_rules.yml"
expect "the $count dashboard expressions parse" 0 "SUCCESS: $count rules found" -- \
  promtool check rules "$tmp/dashboard_rules.yml"
printf '%s\n' 'sum by (job (rate(rlhf_rpc_requests_total[5m]))' >"$tmp/broken.txt"
as_recording_rules "$tmp/broken.txt" >"$tmp/broken_rules.yml"
expect "a broken expression is rejected" 1 "parse error" -- promtool check rules "$tmp/broken_rules.yml"

# Metric names: what the code registers (string literals "rlhf_..."; a histogram also as
# _bucket, _sum and _count) and Prometheus's own `up`, against every name the rules and
# the dashboard use.
python3 - common services >"$tmp/exported.txt" <<'EOF'
import pathlib, re, sys
names, histograms = set(), set()
for root in sys.argv[1:]:
    for path in pathlib.Path(root).rglob("*"):
        if path.suffix not in (".cc", ".h"):
            continue
        text = path.read_text(errors="replace")
        names |= set(re.findall(r'"(rlhf_[a-z0-9_]+)"', text))
        histograms |= set(re.findall(r'BuildHistogram\(\)\s*\.Name\("(rlhf_[a-z0-9_]+)"\)', text))
if not histograms:
    sys.exit("no histogram found: the scan of the code is broken")
for h in histograms:
    names |= {h + "_bucket", h + "_sum", h + "_count"}
print("\n".join(sorted(names | {"up"})))
EOF
[ "$(wc -l <"$tmp/exported.txt")" -ge 20 ] || fail "too few exported metric names found"
used_metrics() {  # FILE... -> metric names in the expressions (one per line)
  python3 - "$@" <<'EOF'
import re, sys
KEYWORDS = {"and", "or", "unless", "by", "without", "on", "ignoring", "group_left",
            "group_right", "bool", "offset", "inf", "nan"}
for path in sys.argv[1:]:
    for expr in open(path):
        expr = re.sub(r'"(\\.|[^"\\])*"', "", expr)                      # strings
        expr = re.sub(r"\{[^}]*\}", "", expr)                              # label matchers
        expr = re.sub(r"\[[^\]]*\]", "", expr)                             # ranges
        expr = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", expr)
        for m in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", expr):
            name, rest = m.group(0), expr[m.end():].lstrip()
            if name.lower() in KEYWORDS or rest.startswith("("):
                continue  # a keyword or a function
            if re.match(r"[0-9.]", expr[m.start() - 1:m.start()] or " "):
                continue  # the exponent or unit of a number
            print(name)
EOF
}
# The rules' expressions, one per line.
python3 - "$rules" >"$tmp/rule_exprs.txt" <<'EOF'
import re, sys
lines, exprs, current, indent = open(sys.argv[1]).read().split("\n"), [], None, 0
for line in lines + ["END:"]:
    if current is not None:
        if line.strip() and len(line) - len(line.lstrip()) <= indent:
            exprs.append(" ".join(current)); current = None
        else:
            current.append(line.strip()); continue
    m = re.match(r"(\s*)expr:\s*(.*)", line)
    if m:
        indent, rest = len(m.group(1)), m.group(2)
        if rest in ("|", ">", "|-", ">-"):
            current = []
        else:
            exprs.append(rest)
print("\n".join(e for e in exprs if e.strip()))
EOF
[ "$(wc -l <"$tmp/rule_exprs.txt")" -eq "$(wc -w <<<"$alerts")" ] ||
  fail "read $(wc -l <"$tmp/rule_exprs.txt") expressions from $rules, want one per alert"
# Grafana's label_values(METRIC, label) queries name metrics too.
grep -oE 'label_values\([a-z0-9_]+' "$dashboard" | sed 's/label_values(//' >"$tmp/variables.txt"
unknown_metrics() {  # FILE... -> the names not exported
  used_metrics "$@" | sort -u | comm -23 - "$tmp/exported.txt"
}
used=$(used_metrics "$tmp/exprs.txt" "$tmp/rule_exprs.txt" "$tmp/variables.txt" | sort -u)
[ "$(wc -l <<<"$used")" -ge 15 ] || fail "only $(wc -l <<<"$used") metric names found in use"
unknown=$(unknown_metrics "$tmp/exprs.txt" "$tmp/rule_exprs.txt" "$tmp/variables.txt")
if [ -z "$unknown" ]; then
  ok "the $(wc -l <<<"$used") metrics the rules and the dashboard use are exported"
else
  fail "metrics used but not exported by the services: $(echo $unknown)"
fi
echo 'rate(rlhf_rpc_request_total{code!="OK"}[5m]) / on (job) rlhf_training_kl' >"$tmp/typo.txt"
if [ "$(unknown_metrics "$tmp/typo.txt")" = "rlhf_rpc_request_total" ]; then
  ok "a misspelt metric name is caught"
else
  fail "the metric name check missed rlhf_rpc_request_total (got: $(unknown_metrics "$tmp/typo.txt"))"
fi

finish
