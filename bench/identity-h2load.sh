#!/usr/bin/env bash
# identity-h2load.sh - authenticated calls under load with h2load:
#   WhoAmI with an access token (JWT verify + session/role lookup in
#   PostgreSQL per call), WhoAmI with an API key (digest lookup), and Login
#   (scrypt, 32 MiB per hash: the deliberately slow path).
#
#   bench/identity-h2load.sh [--server-bin PATH] [--conns "1 4 16"] [--requests N]
#                            [--login-requests N]
#
# Starts its own private PostgreSQL (tests/pg.sh) and server (rate limits
# off so the limiter does not cap the numbers), logs in with Python grpcio
# to get the credentials, then runs h2load. Prints one line per run:
#   <call> conns=<c> req/s=<n> p50_ms=<x> p99_ms=<y> ok=<succeeded>/<total>
# Figures go in docs/performance.md with the machine they were measured on.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SERVER_BIN=$ROOT/build-bench/server/novacron-server
CONNS="1 4 16"
REQUESTS=20000
LOGIN_REQUESTS=200
while (($#)); do
  case $1 in
  --server-bin) SERVER_BIN=$2; shift ;;
  --conns) CONNS=$2; shift ;;
  --requests) REQUESTS=$2; shift ;;
  --login-requests) LOGIN_REQUESTS=$2; shift ;;
  -h | --help) sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"; exit 0 ;;
  *) echo "identity-h2load: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
die() { echo "identity-h2load: $*" >&2; exit 1; }
[[ -x $SERVER_BIN ]] || die "no server at $SERVER_BIN (cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=Release && cmake --build build-bench --target novacron-server)"
command -v h2load >/dev/null || die "h2load is not installed (nghttp2-client)"

TMP=$(mktemp -d "${TMPDIR:-/tmp}/identity-h2load.XXXXXX")
PGDIR=/tmp/nc-bench-pg-$$
SRV=
cleanup() {
  [[ -n $SRV ]] && { kill -TERM "$SRV" 2>/dev/null; wait "$SRV" 2>/dev/null || true; }
  "$ROOT/tests/pg.sh" stop "$PGDIR" >/dev/null 2>&1 || true
  rm -rf "$TMP"
}
trap cleanup EXIT
"$ROOT/scripts/gen-certs" "$TMP/certs" >/dev/null
"$ROOT/tests/pg.sh" start "$PGDIR" >/dev/null
export NOVACRON_DATABASE_URL="postgresql:///novacron?host=$PGDIR/sock&port=5432&user=novacron"
NOVACRON_TOKEN_SECRET=$(openssl rand -base64 48)
PW="bench-Root-$(openssl rand -hex 8)"
export NOVACRON_TOKEN_SECRET NOVACRON_ADMIN_PASSWORD=$PW
"$SERVER_BIN" --listen 127.0.0.1:0 --tls-cert "$TMP/certs/server.crt" --tls-key "$TMP/certs/server.key" \
  --ready-file "$TMP/ready" --access-log=false --rate-limit-rps 0 --rate-limit-anonymous-rps 0 \
  2>"$TMP/server.log" &
SRV=$!
for _ in $(seq 200); do [[ -s $TMP/ready ]] && break; sleep 0.05; done
[[ -s $TMP/ready ]] || { cat "$TMP/server.log" >&2; die "server not ready"; }
ADDR=$(head -n1 "$TMP/ready")

# credentials and request bodies (gRPC frames) from Python grpcio
NC_SOURCE_DIR=$ROOT /usr/bin/python3 - "$ADDR" "$TMP" "$PW" <<'EOF'
import os, struct, sys, uuid
sys.path.insert(0, os.path.join(os.environ["NC_SOURCE_DIR"], "examples", "python"))
import novacron_stubs
novacron_stubs.load()
import grpc
from novacron.v1 import identity_pb2 as ip, identity_pb2_grpc as ig
addr, tmp, pw = sys.argv[1:4]
creds = grpc.ssl_channel_credentials(open(os.path.join(tmp, "certs", "ca.crt"), "rb").read())
with grpc.secure_channel(addr, creds) as ch:
    s = ig.IdentityServiceStub(ch)
    tok = s.Login(ip.LoginRequest(username="admin", password=pw)).access_token
    md = [("authorization", "Bearer " + tok)]
    key = s.CreateApiKey(ip.CreateApiKeyRequest(
        parent="projects/default", api_key_id="bench", api_key=ip.ApiKey(role=ip.ROLE_VIEWER),
        request_id=str(uuid.uuid4())), metadata=md).secret
open(os.path.join(tmp, "token"), "w").write(tok)
open(os.path.join(tmp, "apikey"), "w").write(key)
def frame(msg):
    b = msg.SerializeToString()
    return b"\0" + struct.pack(">I", len(b)) + b
open(os.path.join(tmp, "whoami.body"), "wb").write(frame(ip.WhoAmIRequest()))
open(os.path.join(tmp, "login.body"), "wb").write(frame(ip.LoginRequest(username="admin", password=pw)))
EOF

run() { # name conns requests body path [headers...]
  local name=$1 c=$2 n=$3 body=$4 path=$5
  shift 5
  local out
  out=$(h2load -n "$n" -c "$c" -m 1 -d "$body" -H 'content-type: application/grpc' -H 'te: trailers' \
    "$@" "https://$ADDR$path" 2>&1)
  local rps ok p50 p99
  rps=$(awk '/^finished in/{gsub(",", "", $4); print $4}' <<<"$out")
  ok=$(awk '/^requests:/{print $8 "/" $2}' <<<"$out")
  # time for request: min max mean sd; h2load has no percentiles: report mean and max
  p50=$(awk '/^time for request:/{print $6}' <<<"$out")
  p99=$(awk '/^time for request:/{print $5}' <<<"$out")
  printf '%s conns=%s req/s=%s mean=%s max=%s ok=%s\n' "$name" "$c" "$rps" "$p50" "$p99" "$ok"
}
TOKEN=$(<"$TMP/token")
KEY=$(<"$TMP/apikey")
for c in $CONNS; do
  run whoami-jwt "$c" "$REQUESTS" "$TMP/whoami.body" /novacron.v1.IdentityService/WhoAmI \
    -H "authorization: Bearer $TOKEN"
done
for c in $CONNS; do
  run whoami-apikey "$c" "$REQUESTS" "$TMP/whoami.body" /novacron.v1.IdentityService/WhoAmI \
    -H "authorization: Bearer $KEY"
done
for c in $CONNS; do
  run login "$c" "$LOGIN_REQUESTS" "$TMP/login.body" /novacron.v1.IdentityService/Login
done
