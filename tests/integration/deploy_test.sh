#!/usr/bin/env bash
# Structural checks of the deployment files (no Docker or Kubernetes here): the compose
# file and every Kubernetes manifest parse; every flag they pass to a binary is one that
# binary's --help lists; every secret, volume and volume mount they name is defined; every
# server that listens beyond loopback authenticates its callers (a token file or mTLS) or
# says --insecure-no-auth; every Kubernetes container has startup, readiness and liveness
# probes.
# Usage: deploy_test.sh BIN_DIR   (run from the repository root)
set -uo pipefail
source "$(dirname "$0")/testlib.sh"
bin=$(cd "$1" && pwd)
# check COMPOSE_FILE K8S_DIR: prints "checked N flags" and a "PROBLEM ..." line for each.
check() {
  python3 - "$bin" "$1" "$2" <<'PY'
import glob, re, subprocess, sys, yaml
bin_dir, compose_file, k8s_dir = sys.argv[1:4]

# Docker Compose and Kubernetes reject a mapping that repeats a key (YAML 1.2; "<<" too);
# PyYAML would silently keep the last one.
class StrictLoader(yaml.SafeLoader):
    pass
def construct_unique_mapping(loader, node, deep=False):
    keys = [k.value for k, _ in node.value if isinstance(k, yaml.ScalarNode)]
    repeated = sorted({k for k in keys if keys.count(k) > 1})
    if repeated:
        raise yaml.constructor.ConstructorError(None, None, f"repeated keys {repeated}", node.start_mark)
    return loader.construct_mapping(node, deep)
StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, construct_unique_mapping)
def load_all(path):
    try:
        return list(yaml.load_all(open(path), Loader=StrictLoader))
    except yaml.YAMLError as e:
        problems.append(f"{path}: {e}".replace("\n", " "))
        return []
problems, checked = [], 0
help_cache = {}

def flags_of(binary):
    if binary not in help_cache:
        text = subprocess.run([f"{bin_dir}/{binary}", "--help"], capture_output=True, text=True).stdout
        help_cache[binary] = set(re.findall(r"--([a-z0-9-]+)", text))
    return help_cache[binary]

def check_command(where, argv):
    global checked
    binary, args = argv[0], [str(a) for a in argv[1:]]
    known = flags_of(binary)
    if not known:
        problems.append(f"{where}: {binary} --help lists no flags")
    for a in args:
        if a.startswith("--"):
            name = a[2:].split("=")[0]
            checked += 1
            if name not in known:
                problems.append(f"{where}: {binary} has no flag --{name}")
    listen = args[args.index("--listen") + 1] if "--listen" in args else "127.0.0.1"
    if not listen.startswith(("127.", "localhost", "[::1]")) and not (
            {"--auth-token-file", "--tls-ca", "--insecure-no-auth"} & set(args)):
        problems.append(f"{where}: listens on {listen} without --auth-token-file/--tls-ca")
    return args

compose = (load_all(compose_file) or [{"services": {}}])[0]
secrets = set(compose.get("secrets", {}))
volumes = set(compose.get("volumes", {}))
for name, svc in compose["services"].items():
    cmd = svc.get("command")
    if cmd and str(cmd[0]).startswith("rlhf"):
        args = check_command(f"{compose_file} {name}", cmd)
        for s in svc.get("secrets", []):
            if s not in secrets:
                problems.append(f"{compose_file} {name}: secret {s} is not defined")
        for a in args:
            if a.startswith("/run/secrets/") and a.split("/")[3] not in svc.get("secrets", []):
                problems.append(f"{compose_file} {name}: {a} is not one of its secrets")
    for v in svc.get("volumes", []):
        src = v.split(":")[0]
        if not src.startswith((".", "/")) and src not in volumes:
            problems.append(f"{compose_file} {name}: volume {src} is not defined")

claims = set()
docs = []
for f in sorted(glob.glob(f"{k8s_dir}/*.yaml")):
    for d in load_all(f):
        if d:
            docs.append((f, d))
            if d["kind"] == "PersistentVolumeClaim":
                claims.add(d["metadata"]["name"])
for f, d in docs:
    if d["kind"] not in ("Deployment", "StatefulSet"):
        continue
    pod = d["spec"]["template"]["spec"]
    vols = {v["name"]: v for v in pod.get("volumes", [])}
    for v in vols.values():
        if "persistentVolumeClaim" in v and v["persistentVolumeClaim"]["claimName"] not in claims:
            problems.append(f"{f}: claim {v['persistentVolumeClaim']['claimName']} is not defined")
    for c in pod["containers"]:
        check_command(f"{f} {c['name']}", c["command"] + c.get("args", []))
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            if probe not in c:
                problems.append(f"{f} {c['name']}: no {probe}")
        for m in c.get("volumeMounts", []):
            if m["name"] not in vols:
                problems.append(f"{f} {c['name']}: volume mount {m['name']} has no volume")
        for a in c.get("args", []):
            a = str(a)
            if a.startswith("/var/run/rlhf/") and not any(
                    m["mountPath"] == "/var/run/rlhf" for m in c.get("volumeMounts", [])):
                problems.append(f"{f} {c['name']}: {a} is not mounted")
kustomization = yaml.safe_load(open(f"{k8s_dir}/kustomization.yaml")) if glob.glob(f"{k8s_dir}/kustomization.yaml") else None
if kustomization is not None:
    listed = set(kustomization.get("resources", []))
    for f in glob.glob(f"{k8s_dir}/*.yaml"):
        name = f.split("/")[-1]
        if name != "kustomization.yaml" and name not in listed:
            problems.append(f"{k8s_dir}/kustomization.yaml does not list {name}")
    for name in listed:
        if not glob.glob(f"{k8s_dir}/{name}"):
            problems.append(f"{k8s_dir}/kustomization.yaml lists missing {name}")
print(f"checked {checked} flags")
for p in problems:
    print("PROBLEM", p)
PY
}
out=$(check docker-compose.yml deploy/k8s)
echo "$out" | grep -v PROBLEM
grep -q "^PROBLEM" <<<"$out" && { grep "^PROBLEM" <<<"$out" | while read -r line; do fail "${line#PROBLEM }"; done; } ||
  ok "compose and Kubernetes files: flags exist, secrets/volumes defined, non-loopback servers authenticate"
# The checker itself catches a flag that does not exist, an undefined secret and an
# unauthenticated public listener.
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
sed 's/--data-root, \/app/--data-rooot, \/app/; s/secrets: \[api-token, service-token\]/secrets: [api-token, service-tokn]/' \
  docker-compose.yml >"$tmp/compose.yml"
mkdir "$tmp/k8s" && grep -v network-policy deploy/k8s/kustomization.yaml >"$tmp/k8s/kustomization.yaml"
cp deploy/k8s/network-policy.yaml "$tmp/k8s/" && sed 's/--auth-token-file, \/var\/run\/rlhf\/service-token/--lr, "1"/; s/livenessProbe:/livenessProbeX:/' \
  deploy/k8s/reward.yaml >"$tmp/k8s/reward.yaml"
mutated=$(check "$tmp/compose.yml" "$tmp/k8s")
for want in "rlhf-coordinator has no flag --data-rooot" "secret service-tokn is not defined" \
  "reward: listens on 0.0.0.0:50055 without" "kustomization.yaml does not list network-policy.yaml" \
  "reward.yaml reward: no livenessProbe"; do
  grep -q "PROBLEM.*$want" <<<"$mutated" && ok "the checker catches: $want" || fail "the checker missed: $want ($mutated)"
done
sed '0,/    <<: \[\*rlhf, \*service-auth\]/s//    <<: *rlhf\n    <<: *service-auth/' docker-compose.yml >"$tmp/repeated.yml"
grep -q '<<: \*service-auth' "$tmp/repeated.yml" || fail "cannot prepare the repeated-key mutation"
repeated=$(check "$tmp/repeated.yml" deploy/k8s)
grep -q "PROBLEM.*repeated keys \['<<'\]" <<<"$repeated" && ok "the checker catches: a repeated '<<' key" ||
  fail "the checker missed a repeated key ($repeated)"
finish
