#!/usr/bin/env bash
# Makes a private CA and one server certificate signed by it, for trying
# gridcc's TLS (or for a small grid with no CA of its own):
#
#   scripts/make-test-ca.sh DIR [NAME...]
#
# writes DIR/ca.pem, DIR/ca-key.pem, DIR/server.pem and DIR/server-key.pem.
# The server certificate names every NAME (an IP address becomes an IP SAN,
# anything else a DNS name); default: 127.0.0.1 and localhost. Give every
# address that servers are reached at: the coordinator's host and each
# worker's --advertise address. Keep ca-key.pem private (or delete it).
set -euo pipefail

dir=${1:?usage: make-test-ca.sh DIR [NAME...]}
shift
names=("$@")
[ ${#names[@]} -gt 0 ] || names=(127.0.0.1 localhost)

san=""
for n in "${names[@]}"; do
    if [[ $n =~ ^[0-9.]+$ || $n == *:* ]]; then san+="IP:$n,"; else san+="DNS:$n,"; fi
done
san=${san%,}

mkdir -p "$dir"
cd "$dir"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 825 \
    -subj "/CN=gridcc test CA" -keyout ca-key.pem -out ca.pem \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -subj "/CN=${names[0]}" -keyout server-key.pem -out server.csr 2>/dev/null
openssl x509 -req -in server.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial -days 825 \
    -extfile <(printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n' "$san") \
    -out server.pem 2>/dev/null
rm -f server.csr ca.srl
chmod 600 ca-key.pem server-key.pem
echo "wrote $dir/ca.pem, $dir/server.pem, $dir/server-key.pem (SAN $san)"
