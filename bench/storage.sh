#!/usr/bin/env bash
# storage.sh - volume, pool and network latency through the API, against raw
# libvirt on the same hypervisor, and ListVolumes over 5,000 volumes.
#
#   bench/storage.sh [--server-bin PATH] [--iterations N] [--volumes N]
#                    [--pages N] [--qemu] [--qemu-iterations N] [--rounds N]
#                    [--attach-per-vm N] [--settle S] [--size-gib N]
#                    [--skip-test-driver] [--samples DIR] [--wait-load LOAD]
#                    [--images N] [--image-mib N]
#
# Starts its own private PostgreSQL (tests/pg.sh) and server. On the built-in
# test hypervisor (hosts/default, a dir pool created first): CreateVolume
# (1 MiB qcow2), CreateNetwork (isolated, a /24 each), AddReservation and
# ListLeases latency, N (--iterations, 100) each, then ListVolumes pages of
# 100 (--pages, 100) over --volumes (5,000) volumes. With --qemu it also
# starts libvirtd (scripts/lib/libvirtd.sh, as root), registers
# qemu:///system, makes a dir pool in a temp dir and measures, N
# (--qemu-iterations, 25) each per round: CreateVolume of a --size-gib (1) GiB
# qcow2 volume, AttachVolume of a fresh volume hot-plugged into a running
# diskless VM (a new VM every --attach-per-vm, 8, disks: a guest without an
# OS does not release hot-plugged disks; each VM is left --settle, 5, seconds
# after its start, while its firmware keeps a CPU busy) and CreateNetwork
# (isolated /24 with DHCP). The raw baselines (bench/raw_storage.c:
# virStorageVolCreateXML, virDomainAttachDeviceFlags, virNetworkDefineXML +
# virNetworkCreate) do the same on the same pool and hypervisor in their own
# process. --rounds (2) alternates which goes first, API or raw, so that a
# busy spell on a shared machine does not fall on one side only; the last
# lines sum up all rounds, API against raw.
#
# --images N (with --qemu; 0 = off) also times N image imports of a qcow2
# image of --image-mib (256) MiB from a host path and from an HTTP URL, and
# N CreateVm without and with user_data (the cloud-init config drive).
#
# Latencies are timed from the call until WaitOperation reports the
# Operation done. --samples DIR keeps every timed call (api.txt, raw.txt).
# --wait-load LOAD first waits (up to 25 min, polling every 30 s) until the
# 1-minute load average is below LOAD. Figures go in docs/performance.md
# with the machine.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SERVER_BIN=$ROOT/build-bench/server/novacron-server
ITER=100
VOLUMES=5000
PAGES=100
QEMU=0
QITER=25
ROUNDS=2
PER_VM=8
SETTLE=5
SIZE_GIB=1
TESTDRV=1
IMAGES=0
IMAGE_MIB=256
SAMPLES=
WAIT_LOAD=
while (($#)); do
  case $1 in
  --server-bin) SERVER_BIN=$2; shift ;;
  --iterations) ITER=$2; shift ;;
  --volumes) VOLUMES=$2; shift ;;
  --pages) PAGES=$2; shift ;;
  --qemu) QEMU=1 ;;
  --qemu-iterations) QITER=$2; shift ;;
  --rounds) ROUNDS=$2; shift ;;
  --attach-per-vm) PER_VM=$2; shift ;;
  --settle) SETTLE=$2; shift ;;
  --size-gib) SIZE_GIB=$2; shift ;;
  --skip-test-driver) TESTDRV=0 ;;
  --images) IMAGES=$2; shift ;;
  --image-mib) IMAGE_MIB=$2; shift ;;
  --samples) SAMPLES=$2; shift ;;
  --wait-load) WAIT_LOAD=$2; shift ;;
  -h | --help) sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"; exit 0 ;;
  *) echo "storage.sh: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
die() { echo "storage.sh: $*" >&2; exit 1; }
[[ -x $SERVER_BIN ]] || die "no server at $SERVER_BIN (cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=Release && cmake --build build-bench --target novacron-server)"
((PER_VM >= 1 && PER_VM <= 16)) || die "--attach-per-vm: 1..16 (NovaCron allows 16 disks per VM)"
((ROUNDS >= 1)) || die "--rounds: at least 1"
((QITER <= 250)) || die "--qemu-iterations: at most 250 (one /24 per network)"
((ITER <= 1000)) || die "--iterations: at most 1000"

if [[ -n $WAIT_LOAD ]]; then
  for ((i = 0; i <= 50; i++)); do
    load=$(cut -d' ' -f1 /proc/loadavg)
    awk -v l="$load" -v m="$WAIT_LOAD" 'BEGIN { exit !(l < m) }' && break
    ((i < 50)) || die "load average still $load after 25 min"
    echo "storage.sh: load average $load, waiting for < $WAIT_LOAD" >&2
    sleep 30
  done
fi
echo "== load average at start: $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) CPUs"

TMP=$(mktemp -d "${TMPDIR:-/tmp}/storage-bench.XXXXXX")
chmod 755 "$TMP" # the pool directory is opened by qemu
PGDIR=/tmp/nc-bench-pg-$$
POOL=stbench-$$       # the qemu pool (NovaCron pool id = libvirt pool name)
RAWP=rawst-$$         # raw_storage's domains and networks
SRV=
LV=0
vsh() { virsh -q -c qemu:///system "$@" 2>/dev/null; }
leftovers() { # libvirt objects of ours a failed run left behind
  local x
  for x in $(vsh list --all --name | grep -E "^($RAWP-|default\.qa-)"); do
    vsh destroy "$x" >/dev/null; vsh undefine "$x" >/dev/null
  done
  for x in $(vsh net-list --all --name | grep -E "^($RAWP-|default\.qn-)"); do
    vsh net-destroy "$x" >/dev/null; vsh net-undefine "$x" >/dev/null
  done
  for x in "$POOL" "${POOL}s"; do
    if vsh pool-info "$x" >/dev/null; then
      vsh pool-destroy "$x" >/dev/null; vsh pool-undefine "$x" >/dev/null
    fi
  done
  return 0
}
cleanup() {
  [[ -n $SRV ]] && { kill -TERM "$SRV" 2>/dev/null; wait "$SRV" 2>/dev/null || true; }
  ((LV)) && { leftovers; "$ROOT/scripts/lib/libvirtd.sh" stop "$TMP/libvirtd" >/dev/null 2>&1 || true; }
  "$ROOT/tests/pg.sh" stop "$PGDIR" >/dev/null 2>&1 || true
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
# shellcheck disable=SC2046 # pkg-config prints several words
cc -O2 -o "$TMP/raw_storage" "$ROOT/bench/raw_storage.c" $(pkg-config --cflags --libs libvirt)
"$ROOT/scripts/gen-certs" "$TMP/certs" >/dev/null
"$ROOT/tests/pg.sh" start "$PGDIR" >/dev/null
export NOVACRON_DATABASE_URL="postgresql:///novacron?host=$PGDIR/sock&port=5432&user=novacron"
NOVACRON_TOKEN_SECRET=$(openssl rand -base64 48)
PW="bench-Root-$(openssl rand -hex 8)"
export NOVACRON_TOKEN_SECRET NOVACRON_ADMIN_PASSWORD=$PW
if ((QEMU)); then
  mkdir -p "$TMP/libvirtd"
  "$ROOT/scripts/lib/libvirtd.sh" start "$TMP/libvirtd" >/dev/null && LV=1
  # shellcheck disable=SC1091
  . "$TMP/libvirtd/stage.env"
fi
WEBPORT=$(/usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
mkdir -p "$TMP/images"
"$SERVER_BIN" --listen 127.0.0.1:0 --tls-cert "$TMP/certs/server.crt" --tls-key "$TMP/certs/server.key" \
  --ready-file "$TMP/ready" --access-log=false --rate-limit-rps 0 --log-level warn \
  --storage-image-dirs "$TMP/images" --storage-image-urls "http://127.0.0.1:$WEBPORT/img/" \
  --default-pool "${POOL}s" \
  2>"$TMP/server.log" &
SRV=$!
for _ in $(seq 400); do [[ -s $TMP/ready ]] && break; sleep 0.05; done
[[ -s $TMP/ready ]] || { cat "$TMP/server.log" >&2; die "server not ready"; }
ADDR=$(head -n1 "$TMP/ready")
SAMPLES=${SAMPLES:-$TMP/samples}
mkdir -p "$SAMPLES"
: >"$SAMPLES/api.txt"
: >"$SAMPLES/raw.txt"
export STORAGE_BENCH_SAMPLES=$SAMPLES/api.txt
py() { local mode=$1; shift; /usr/bin/python3 "$ROOT/bench/storage.py" "$mode" "$ADDR" "$TMP/certs/ca.crt" "$PW" "$@"; }
raw() { "$TMP/raw_storage" "$@" | tee -a "$SAMPLES/raw.txt" | grep -v ' op='; }

if ((TESTDRV)); then
  echo "== test driver (test:///default)"
  py test "$ITER" "$VOLUMES" "$PAGES" "$TMP/testpool"
  # the raw test driver lives in this process, the server's in the server
  "$TMP/raw_storage" create test:///default default-pool "$ITER" 1048576 | grep -v ' op='
  "$TMP/raw_storage" network test:///default "$ITER" "$RAWP" 10.202 | grep -v ' op='
fi
if ((LV)); then
  echo "== qemu ($NC_QEMU_URI, domain type $NC_QEMU_DOMAIN_TYPE, $([[ -e /dev/kvm ]] && echo "/dev/kvm present" || echo "no /dev/kvm"))"
  SIZE=$((SIZE_GIB << 30))
  py qemu-setup "$POOL" "$TMP/pool"
  # the domain NovaCron defines for a diskless VM (server/hv/xml.c), not started
  cat >"$TMP/dom.xml" <<XML
<domain type='$NC_QEMU_DOMAIN_TYPE'><name>$RAWP</name><memory unit='KiB'>131072</memory>
<currentMemory unit='KiB'>131072</currentMemory><vcpu current='1'>1</vcpu>
<os><type arch='x86_64'>hvm</type></os><features><acpi/><apic/></features>
<on_poweroff>destroy</on_poweroff><on_reboot>restart</on_reboot><on_crash>destroy</on_crash>
<devices><serial type='pty'><target port='0'/></serial><console type='pty'><target type='serial' port='0'/></console>
<memballoon model='virtio'/></devices></domain>
XML
  for ((r = 1; r <= ROUNDS; r++)); do
    first=api; ((r % 2)) || first=raw
    echo "-- round $r of $ROUNDS ($first first)"
    for what in volumes attach networks; do
      for side in $first $([[ $first == api ]] && echo raw || echo api); do
        case $side.$what in
        api.volumes) py qemu-volumes "$POOL" "r$r" "$QITER" "$SIZE" ;;
        raw.volumes) raw create "$NC_QEMU_URI" "$POOL" "$QITER" "$SIZE" ;;
        api.attach) py qemu-attach "$POOL" "r$r" "$QITER" "$SIZE" "$PER_VM" "$SETTLE" ;;
        raw.attach) raw attach "$NC_QEMU_URI" "$POOL" "$QITER" "$SIZE" "$TMP/dom.xml" "$PER_VM" "$SETTLE" ;;
        api.networks) py qemu-networks "r$r" "$QITER" 10.201 ;;
        raw.networks) raw network "$NC_QEMU_URI" "$QITER" "$RAWP" 10.202 ;;
        esac
      done
    done
  done
  if ((IMAGES > 0)); then
    echo "-- images and config drives"
    py qemu-images "$POOL" img "$IMAGES" "$IMAGE_MIB" "$TMP/images" "$WEBPORT"
  fi
  py qemu-teardown "$POOL"
  echo "== qemu, all $ROUNDS rounds"
  /usr/bin/python3 "$ROOT/bench/storage.py" summary "$SAMPLES/api.txt" "$SAMPLES/raw.txt"
fi
echo "== load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
