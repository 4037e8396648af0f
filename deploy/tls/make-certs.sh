#!/usr/bin/env bash
# Makes a local certificate authority and the certificates a GoD-DB bus needs
# for TLS (README, "Security"), with openssl:
#
#   deploy/tls/make-certs.sh <out-dir> [server-name ...]
#
#   ca.pem, ca.key          the CA (keep ca.key offline once the certificates are made)
#   server.pem, server.key  nats-server's, valid for localhost, 127.0.0.1 and each server-name
#                           (default: nats nats-1 nats-2 nats-3, the names deploy/ uses)
#   node.pem, node.key      the workers' client certificate (CN goddb-node)
#   client.pem, client.key  the applications' client certificate (CN goddb-client)
#
# deploy/tls/nats-tls.conf expects them in /etc/nats/tls. Workers take
# --nats-tls-ca ca.pem --nats-tls-cert node.pem --nats-tls-key node.key; clients
# connect({ tls: { caFile, certFile, keyFile } }) or goddb --nats-tls-ca ... .
# Existing files are kept: delete the directory to make new ones.
set -euo pipefail

if [ $# -lt 1 ]; then
  echo "usage: $0 <out-dir> [server-name ...]" >&2
  exit 2
fi
out=$1
shift
names=("$@")
if [ ${#names[@]} -eq 0 ]; then names=(nats nats-1 nats-2 nats-3); fi
days=${GODDB_TLS_DAYS:-825}

command -v openssl >/dev/null 2>&1 || { echo "$0: openssl is not installed (apt-get install openssl)" >&2; exit 1; }
mkdir -p "$out"
cd "$out"
umask 077

# P-256 keys: small, fast, and accepted by nats-server and Node.js alike.
key() { [ -f "$1.key" ] || openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1.key" 2>/dev/null; }

if [ ! -f ca.pem ]; then
  key ca
  openssl req -x509 -new -key ca.key -sha256 -days "$days" -subj "/CN=GoD-DB local CA" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" -out ca.pem
fi

# sign <name> <CN> <extendedKeyUsage> [subjectAltName]
sign() {
  local name=$1 cn=$2 usage=$3 san=${4:-}
  [ -f "$name.pem" ] && return 0
  key "$name"
  openssl req -new -key "$name.key" -subj "/CN=$cn" -out "$name.csr"
  {
    echo "basicConstraints=critical,CA:FALSE"
    echo "keyUsage=critical,digitalSignature,keyEncipherment"
    echo "extendedKeyUsage=$usage"
    if [ -n "$san" ]; then echo "subjectAltName=$san"; fi
  } > "$name.ext"
  openssl x509 -req -in "$name.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -sha256 -days "$days" -extfile "$name.ext" -out "$name.pem" 2>/dev/null
  rm -f "$name.csr" "$name.ext"
}

san="DNS:localhost,IP:127.0.0.1"
for n in "${names[@]}"; do san="$san,DNS:$n"; done
sign server nats-server serverAuth "$san"
sign node goddb-node clientAuth
sign client goddb-client clientAuth
rm -f ca.srl
chmod 644 ./*.pem
echo "certificates in $(pwd): ca.pem server.pem node.pem client.pem (and their .key files)"
