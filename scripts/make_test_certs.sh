#!/usr/bin/env bash
# Makes throw-away TLS material in DIR for tests and local clusters (openssl from Debian):
#   ca.pem ca.key                 a CA
#   server.pem server.key         signed by it, for 127.0.0.1 / ::1 / localhost (and $RLHF_CERT_DNS names)
#   client.pem client.key         a client certificate signed by it (mTLS)
#   other-ca.pem other-client.pem other-client.key   a second CA and a client it signed,
#                                 which servers trusting ca.pem must refuse
#   token                         a random bearer token (one line)
# Certificates are valid for 30 days; keys are P-256. Usage: scripts/make_test_certs.sh DIR
set -euo pipefail
dir="${1:?usage: make_test_certs.sh DIR}"
mkdir -p "$dir"
cd "$dir"
umask 077
key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }
ca() {  # name
  key "$1.key"
  openssl req -x509 -new -key "$1.key" -out "$1.pem" -days 30 -subj "/CN=rlhf-test-$1" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign" 2>/dev/null
}
leaf() {  # name ca usage san
  key "$1.key"
  openssl req -new -key "$1.key" -out "$1.csr" -subj "/CN=rlhf-test-$1" 2>/dev/null
  printf 'basicConstraints=CA:FALSE\nextendedKeyUsage=%s\n%s\n' "$3" "$4" >"$1.ext"
  openssl x509 -req -in "$1.csr" -CA "$2.pem" -CAkey "$2.key" -CAcreateserial -out "$1.pem" \
    -days 30 -extfile "$1.ext" 2>/dev/null
  rm -f "$1.csr" "$1.ext"
}
san="subjectAltName=IP:127.0.0.1,IP:::1,DNS:localhost"
for name in ${RLHF_CERT_DNS:-}; do san="$san,DNS:$name"; done
ca ca
leaf server ca serverAuth "$san"
leaf client ca clientAuth ""
ca other-ca
leaf other-client other-ca clientAuth ""
openssl rand -hex 24 >token
rm -f ./*.srl
chmod 0644 ./*.pem token  # readable by a container's non-root user; keys stay 0600
