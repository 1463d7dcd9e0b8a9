#!/usr/bin/env bash
# compute.sh - VM start/stop latency through the API against raw libvirt on
# the same hypervisor, ListVms over 10,000 VMs, and event delivery latency.
#
#   bench/compute.sh [--server-bin PATH] [--iterations N] [--vms N] [--pages N]
#                    [--events N] [--qemu]
#
# Starts its own private PostgreSQL (tests/pg.sh) and server on the built-in
# test hypervisor. With --qemu it also starts libvirtd (scripts/lib/libvirtd.sh,
# as root), registers qemu:///system and measures a small diskless qemu VM
# there (TCG without /dev/kvm). The raw baseline (bench/raw_libvirt.c) does
# the same virDomainCreate / virDomainDestroy on an equivalent domain, in
# its own process. Figures go in docs/performance.md with the machine.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SERVER_BIN=$ROOT/build-bench/server/novacron-server
ITER=50
VMS=10000
PAGES=200
EVENTS=500
QEMU=0
while (($#)); do
  case $1 in
  --server-bin) SERVER_BIN=$2; shift ;;
  --iterations) ITER=$2; shift ;;
  --vms) VMS=$2; shift ;;
  --pages) PAGES=$2; shift ;;
  --events) EVENTS=$2; shift ;;
  --qemu) QEMU=1 ;;
  -h | --help) sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"; exit 0 ;;
  *) echo "compute.sh: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
die() { echo "compute.sh: $*" >&2; exit 1; }
[[ -x $SERVER_BIN ]] || die "no server at $SERVER_BIN (cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=Release && cmake --build build-bench --target novacron-server)"

TMP=$(mktemp -d "${TMPDIR:-/tmp}/compute-bench.XXXXXX")
PGDIR=/tmp/nc-bench-pg-$$
SRV=
LV=0
cleanup() {
  [[ -n $SRV ]] && { kill -TERM "$SRV" 2>/dev/null; wait "$SRV" 2>/dev/null || true; }
  ((LV)) && "$ROOT/scripts/lib/libvirtd.sh" stop "$TMP/libvirtd" >/dev/null 2>&1 || true
  "$ROOT/tests/pg.sh" stop "$PGDIR" >/dev/null 2>&1 || true
  rm -rf "$TMP"
}
trap cleanup EXIT
cc -O2 -o "$TMP/raw_libvirt" "$ROOT/bench/raw_libvirt.c" $(pkg-config --cflags --libs libvirt)
"$ROOT/scripts/gen-certs" "$TMP/certs" >/dev/null
"$ROOT/tests/pg.sh" start "$PGDIR" >/dev/null
export NOVACRON_DATABASE_URL="postgresql:///novacron?host=$PGDIR/sock&port=5432&user=novacron"
NOVACRON_TOKEN_SECRET=$(openssl rand -base64 48)
PW="bench-Root-$(openssl rand -hex 8)"
export NOVACRON_TOKEN_SECRET NOVACRON_ADMIN_PASSWORD=$PW
if ((QEMU)); then
  mkdir -p "$TMP/libvirtd"
  "$ROOT/scripts/lib/libvirtd.sh" start "$TMP/libvirtd" >/dev/null && LV=1
fi
"$SERVER_BIN" --listen 127.0.0.1:0 --tls-cert "$TMP/certs/server.crt" --tls-key "$TMP/certs/server.key" \
  --ready-file "$TMP/ready" --access-log=false --rate-limit-rps 0 --log-level warn \
  --cpu-overcommit-percent 10000 \
  2>"$TMP/server.log" &
SRV=$!
for _ in $(seq 400); do [[ -s $TMP/ready ]] && break; sleep 0.05; done
[[ -s $TMP/ready ]] || { cat "$TMP/server.log" >&2; die "server not ready"; }
ADDR=$(head -n1 "$TMP/ready")
py() { local mode=$1; shift; NC_SOURCE_DIR=$ROOT /usr/bin/python3 "$ROOT/bench/compute.py" "$mode" "$ADDR" "$TMP/certs/ca.crt" "$PW" "$@"; }

domxml() { # type arch -> a diskless domain like NovaCron's
  cat <<XML
<domain type='$1'><name>raw-bench-$$</name><memory unit='KiB'>131072</memory>
<currentMemory unit='KiB'>131072</currentMemory><vcpu>1</vcpu>
<os><type arch='$2'>hvm</type></os><features><acpi/><apic/></features>
<on_poweroff>destroy</on_poweroff><on_reboot>restart</on_reboot><on_crash>destroy</on_crash>
<devices>$3</devices></domain>
XML
}

echo "== test driver (test:///default)"
py latency default "$ITER"
domxml test x86_64 "" >"$TMP/test.xml"
"$TMP/raw_libvirt" test:///default "$TMP/test.xml" "$ITER"
if ((LV)); then
  echo "== qemu (qemu:///system, $([[ -e /dev/kvm ]] && echo kvm || echo tcg))"
  NC_SOURCE_DIR=$ROOT /usr/bin/python3 - "$ADDR" "$TMP/certs/ca.crt" "$PW" <<'PYEOF'
import os, sys, uuid
sys.path.insert(0, os.path.join(os.environ["NC_SOURCE_DIR"], "bench"))
import compute
api = compute.Api(*sys.argv[1:4])
from novacron.v1 import host_pb2 as hp, host_pb2_grpc as hg
o = hg.HostServiceStub(api.ch).RegisterHost(hp.RegisterHostRequest(
    host_id="qemu", host=hp.Host(uri="qemu:///system"), request_id=str(uuid.uuid4())),
    metadata=api.md).operation
api.wait(o)
PYEOF
  py latency qemu "$ITER"
  t=qemu; [[ -e /dev/kvm ]] && t=kvm
  domxml "$t" x86_64 "<serial type='pty'/><console type='pty'/><memballoon model='virtio'/>" >"$TMP/qemu.xml"
  "$TMP/raw_libvirt" qemu:///system "$TMP/qemu.xml" "$ITER"
fi
echo "== events"
py events "$EVENTS"
echo "== list"
# a private test hypervisor big enough for the VMs (the default one has 3 GiB)
cat >"$TMP/bulk.xml" <<XML
<node><cpu><mhz>2000</mhz><model>x86_64</model><nodes>1</nodes><sockets>1</sockets>
<cores>256</cores><threads>1</threads><active>256</active></cpu><memory>$((4 * 1024 * 1024 * 1024))</memory></node>
XML
py list "$VMS" "$PAGES" "test://$TMP/bulk.xml"
