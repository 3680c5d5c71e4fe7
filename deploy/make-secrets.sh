#!/usr/bin/env bash
# Makes the bearer tokens docker-compose.yml mounts as secrets, in deploy/secrets/ (git
# ignores it): api-token (callers of the coordinator's job API) and service-token (the
# coordinator's calls to the model services). Existing tokens are kept. Every server and
# client re-reads its token file within a second of a change, so rotate in place (compose
# bind-mounts the files: a file replaced by a new one is not seen by running containers):
#   t=$(openssl rand -hex 32); f=deploy/secrets/service-token
#   printf '%s\n%s\n' "$(head -1 $f)" "$t" >$f   # servers accept both; clients still send the old
#   printf '%s\n' "$t" >$f                        # clients send the new one; the old is gone
# With --tls also TLS material (scripts/make_test_certs.sh, for
# trying TLS locally; use your own CA in production).
set -euo pipefail
cd "$(dirname "$0")"
mkdir -p secrets
for name in api-token service-token; do
  [ -s "secrets/$name" ] || openssl rand -hex 32 >"secrets/$name"
done
# Readable by the containers' non-root user (uid 10001); keep the folder itself private.
chmod 0644 secrets/api-token secrets/service-token
chmod 0700 secrets
if [ "${1:-}" = "--tls" ]; then
  RLHF_CERT_DNS="coordinator actor rollout reference reward" ../scripts/make_test_certs.sh secrets/tls
fi
echo "tokens in $(pwd)/secrets"
