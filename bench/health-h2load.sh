#!/usr/bin/env bash
# health-h2load.sh - Health.Check over TLS with h2load against novacron-server.
#
# Starts the server on loopback with a throw-away development certificate,
# checks that Health.Check really answers gRPC OK/SERVING (curl shows the
# trailers; a second server with the access log on confirms that h2load's
# own requests end with grpc-status OK), then runs h2load at several
# connection counts (8 streams each) and prints requests/s, p50/p99 latency
# from h2load's per-request log, the number of failed requests and the CPU
# the server and h2load used. Stops the server with SIGTERM and checks it
# exits 0. Builds nothing unless --build is given. See bench/README.md.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SERVER_BIN=$ROOT/build-bench/server/novacron-server
BUILD=false
CONNS="1 4 16 64"
STREAMS=8
REQ_HIGH=200000 # per run at >= 16 connections
REQ_LOW=100000  # per run below 16 connections
WARMUP=20000
REPEAT=1
H2_THREADS=1
OUT=
CSV=
LABEL=
KEEP=false
CHECK=true
ACCESS_LOG=false
RUN_TIMEOUT=60
SERVER_ARGS=()

usage() {
  cat <<'EOF'
usage: bench/health-h2load.sh [options]

  --server-bin PATH        server binary (default build-bench/server/novacron-server)
  --build                  configure and build build-bench (Release) first
  --connections "1 4 16 64"  connection counts to run (default "1 4 16 64")
  --streams N              concurrent streams per connection, h2load -m (default 8)
  --requests N             requests per run at >= 16 connections (default 200000)
  --requests-low N         requests per run below 16 connections (default 100000)
  --warmup N               requests of the warm-up run, 0 to skip (default 20000)
  --repeat N               run every connection count N times (default 1)
  --h2load-threads N       h2load -t (default 1)
  --cq-threads N           passed to the server (default: the server's, one per CPU)
  --requests-per-method N  passed to the server
  --workers N              passed to the server
  --access-log             serve with --log-level info --access-log=true, records
                           to a file in the temp dir (default: warn, access log off)
  --server-arg ARG         any other server flag, e.g. --server-arg=--insecure=false
  --no-check               skip the gRPC-level preflight checks
  --out FILE               also write the results as a markdown table to FILE
  --csv FILE               also append one CSV line per run to FILE (label first)
  --label TEXT             label for the tables (default: the server flags)
  --keep                   keep the temp dir (certs, h2load logs, server log)
  -h, --help               this text

Every h2load run has a hard timeout of 60 s; at the defaults the whole script
takes well under a minute on two cores. Exit status: 0 when every request
succeeded and the server exited 0, 1 otherwise, 2 on usage errors.
EOF
}

die() {
  echo "health-h2load: $*" >&2
  exit 1
}

while (($#)); do
  case $1 in
  --server-bin) SERVER_BIN=$2; shift ;;
  --server-bin=*) SERVER_BIN=${1#*=} ;;
  --build) BUILD=true ;;
  --connections) CONNS=$2; shift ;;
  --connections=*) CONNS=${1#*=} ;;
  --streams) STREAMS=$2; shift ;;
  --streams=*) STREAMS=${1#*=} ;;
  --requests) REQ_HIGH=$2; shift ;;
  --requests=*) REQ_HIGH=${1#*=} ;;
  --requests-low) REQ_LOW=$2; shift ;;
  --requests-low=*) REQ_LOW=${1#*=} ;;
  --warmup) WARMUP=$2; shift ;;
  --warmup=*) WARMUP=${1#*=} ;;
  --repeat) REPEAT=$2; shift ;;
  --repeat=*) REPEAT=${1#*=} ;;
  --h2load-threads) H2_THREADS=$2; shift ;;
  --h2load-threads=*) H2_THREADS=${1#*=} ;;
  --cq-threads | --requests-per-method | --workers)
    SERVER_ARGS+=("$1=$2"); shift ;;
  --cq-threads=* | --requests-per-method=* | --workers=*) SERVER_ARGS+=("$1") ;;
  --access-log) ACCESS_LOG=true ;;
  --server-arg) SERVER_ARGS+=("$2"); shift ;;
  --server-arg=*) SERVER_ARGS+=("${1#*=}") ;;
  --no-check) CHECK=false ;;
  --out) OUT=$2; shift ;;
  --out=*) OUT=${1#*=} ;;
  --csv) CSV=$2; shift ;;
  --csv=*) CSV=${1#*=} ;;
  --label) LABEL=$2; shift ;;
  --label=*) LABEL=${1#*=} ;;
  --keep) KEEP=true ;;
  -h | --help) usage; exit 0 ;;
  *) echo "health-h2load: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done

isnum() { [[ $1 =~ ^[1-9][0-9]*$ ]]; }
for v in "$STREAMS" "$REQ_HIGH" "$REQ_LOW" "$REPEAT" "$H2_THREADS"; do
  isnum "$v" || { echo "health-h2load: expected a positive number, got '$v'" >&2; exit 2; }
done
[[ $WARMUP =~ ^[0-9]+$ ]] || { echo "health-h2load: bad --warmup '$WARMUP'" >&2; exit 2; }
for c in $CONNS; do
  isnum "$c" || { echo "health-h2load: bad connection count '$c'" >&2; exit 2; }
done

if $BUILD; then
  cmake -S "$ROOT" -B "$ROOT/build-bench" -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build "$ROOT/build-bench" -j"$(nproc)" --target novacron-server >/dev/null
  SERVER_BIN=$ROOT/build-bench/server/novacron-server
fi
[[ -x $SERVER_BIN ]] || die "no server binary at $SERVER_BIN (build it, or pass --build / --server-bin)"
for t in h2load curl openssl awk sort od; do
  command -v "$t" >/dev/null || die "$t is not installed"
done

# How busy the machine is before we start (percent of all CPUs over 0.5 s).
cpu_busy() {
  local a b
  a=$(awk '/^cpu /{print $2+$3+$4+$7+$8+$9, $5+$6}' /proc/stat)
  sleep 0.5
  b=$(awk '/^cpu /{print $2+$3+$4+$7+$8+$9, $5+$6}' /proc/stat)
  awk -v a="$a" -v b="$b" 'BEGIN {split(a, x, " "); split(b, y, " ");
    t = (y[1] - x[1]) + (y[2] - x[2]); printf "%.0f", (t > 0 ? 100 * (y[1] - x[1]) / t : 0)}'
}
IDLE_BUSY=$(cpu_busy 2>/dev/null || true)

TMP=$(mktemp -d "${TMPDIR:-/tmp}/health-h2load.XXXXXX")
PGDIR=/tmp/nc-bench-pg-$$
PIDS=()
cleanup() {
  local p
  "$ROOT/tests/pg.sh" stop "$PGDIR" >/dev/null 2>&1 || true
  for p in "${PIDS[@]}"; do
    kill -TERM "$p" 2>/dev/null || true
  done
  for p in "${PIDS[@]}"; do
    wait "$p" 2>/dev/null || true
  done
  if $KEEP; then echo "kept $TMP" >&2; else rm -rf "$TMP"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

"$ROOT/scripts/gen-certs" "$TMP/certs" >/dev/null
# the server needs PostgreSQL and a signing secret (tests/pg.sh: a private
# socket-only cluster, removed at exit)
"$ROOT/tests/pg.sh" start "$PGDIR" >/dev/null
export NOVACRON_DATABASE_URL="postgresql:///novacron?host=$PGDIR/sock&port=5432&user=novacron"
NOVACRON_TOKEN_SECRET=$(openssl rand -base64 48)
export NOVACRON_TOKEN_SECRET NOVACRON_ADMIN_PASSWORD="bench-Root-$(openssl rand -hex 8)"
printf '\0\0\0\0\0' >"$TMP/body" # gRPC frame: uncompressed, length 0 (empty HealthCheckRequest)
PATH_=/grpc.health.v1.Health/Check
H2_HEADERS=(-H 'content-type: application/grpc' -H 'te: trailers')

# start_server NAME LOG-ARGS... : starts a server, sets SRV_PID and SRV_ADDR.
start_server() {
  local name=$1
  shift
  rm -f "$TMP/$name.ready"
  "$SERVER_BIN" --listen 127.0.0.1:0 --tls-cert "$TMP/certs/server.crt" \
    --tls-key "$TMP/certs/server.key" --ready-file "$TMP/$name.ready" "$@" \
    2>"$TMP/$name.log" &
  SRV_PID=$!
  PIDS+=("$SRV_PID")
  local i
  for ((i = 0; i < 200; i++)); do
    [[ -s $TMP/$name.ready ]] && break
    kill -0 "$SRV_PID" 2>/dev/null || { cat "$TMP/$name.log" >&2; die "the server exited at start"; }
    sleep 0.05
  done
  [[ -s $TMP/$name.ready ]] || die "the server did not become ready in 10 s"
  SRV_ADDR=$(head -n1 "$TMP/$name.ready")
}

# stop_server PID NAME : SIGTERM, wait up to 15 s, require exit status 0.
stop_server() {
  local pid=$1 name=$2 i rc=0
  kill -TERM "$pid"
  for ((i = 0; i < 300; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.05
  done
  if kill -0 "$pid" 2>/dev/null; then
    kill -KILL "$pid"
    die "the $name server did not stop within 15 s of SIGTERM"
  fi
  wait "$pid" || rc=$?
  local p keep=()
  for p in "${PIDS[@]}"; do [[ $p == "$pid" ]] || keep+=("$p"); done
  PIDS=("${keep[@]}")
  [[ $rc == 0 ]] || { tail -n 20 "$TMP/$name.log" >&2; die "the $name server exited with status $rc"; }
}

h2() { # h2load with the gRPC request; extra args first
  timeout "$RUN_TIMEOUT" h2load -d "$TMP/body" "${H2_HEADERS[@]}" "$@" "https://$SRV_ADDR$PATH_"
}

# ---- preflight: the responses are real gRPC OK / SERVING ----
if $CHECK; then
  # 1. h2load -d sends POST with our headers (seen on a plain HTTP/1.1 socket).
  if command -v python3 >/dev/null; then
    python3 - "$TMP/req.txt" "$TMP/probe.port" <<'EOF' &
import socket, sys
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen(1)
open(sys.argv[2] + ".tmp", "w").write(str(s.getsockname()[1]))
import os; os.rename(sys.argv[2] + ".tmp", sys.argv[2])
s.settimeout(10)
c, _ = s.accept()
c.settimeout(5)
data = b""
while b"\r\n\r\n" not in data:
    chunk = c.recv(4096)
    if not chunk:
        break
    data += chunk
open(sys.argv[1], "wb").write(data)
c.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
c.close()
EOF
    probe=$!
    for ((i = 0; i < 100; i++)); do [[ -s $TMP/probe.port ]] && break; sleep 0.05; done
    timeout 10 h2load --h1 -n 1 -c 1 -d "$TMP/body" "${H2_HEADERS[@]}" \
      "http://127.0.0.1:$(cat "$TMP/probe.port")$PATH_" >/dev/null 2>&1 || true
    wait "$probe" || true
    head -n1 "$TMP/req.txt" 2>/dev/null | grep -q "^POST $PATH_ " ||
      die "h2load -d did not send a POST (saw: $(head -n1 "$TMP/req.txt" 2>/dev/null))"
    grep -qi '^content-type: application/grpc' "$TMP/req.txt" ||
      die "h2load did not send content-type: application/grpc"
  fi

  # 2. A server with the access log on: curl sees grpc-status 0 and SERVING,
  #    and every request h2load sends is logged with status OK.
  start_server check --log-level info --access-log=true "${SERVER_ARGS[@]}"
  curl -sS --http2 -k -v -X POST --data-binary @"$TMP/body" "${H2_HEADERS[@]}" \
    -o "$TMP/check.resp" "https://$SRV_ADDR$PATH_" 2>"$TMP/curl.txt" ||
    die "curl could not call Health.Check (see $TMP/curl.txt)"
  grep -q '^< HTTP/2 200' "$TMP/curl.txt" || die "Health.Check: no HTTP/2 200"
  grep -qi '^< grpc-status: 0' "$TMP/curl.txt" || die "Health.Check: trailers lack grpc-status 0"
  got=$(od -An -tx1 "$TMP/check.resp" | tr -s ' \n' ' ' | sed 's/^ //; s/ $//')
  # 5-byte frame header (length 2) + field 1 varint 1 = SERVING
  [[ $got == "00 00 00 00 02 08 01" ]] || die "Health.Check: expected SERVING, got bytes '$got'"
  h2 -n 64 -c 2 -m "$STREAMS" >"$TMP/check.h2load" 2>&1 || die "h2load failed against the check server"
  stop_server "$SRV_PID" check
  ok=$(grep -c '"method":"/grpc.health.v1.Health/Check".*"status":"OK"' "$TMP/check.log" || true)
  [[ $ok == 65 ]] || die "expected 65 Health.Check calls logged with status OK (1 curl + 64 h2load), got $ok"
  echo "preflight: h2load sends POST; Health.Check answers SERVING with grpc-status 0;" \
    "65/65 calls logged OK"
fi

# ---- benchmark ----
if $ACCESS_LOG; then
  LOGARGS=(--log-level info --access-log=true)
else
  LOGARGS=(--log-level warn --access-log=false)
fi
start_server bench "${LOGARGS[@]}" "${SERVER_ARGS[@]}"
BENCH_PID=$SRV_PID
CLK=$(getconf CLK_TCK)
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# busy ticks of the whole machine (user nice system irq softirq steal)
machine_ticks() { awk '/^cpu /{print $2 + $3 + $4 + $7 + $8 + $9}' /proc/stat; }

FLAGS="${LOGARGS[*]}${SERVER_ARGS[*]:+ ${SERVER_ARGS[*]}}"
echo "server: $SERVER_BIN $FLAGS (listening on $SRV_ADDR)"
GRPC_VER="gRPC core $(pkg-config --modversion grpc 2>/dev/null || echo '?')"
if v=$(dpkg-query -W -f '${Version}' libgrpc-dev 2>/dev/null); then GRPC_VER="$GRPC_VER (libgrpc-dev $v)"; fi
echo "machine: $(nproc) CPUs, $(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -n1)," \
  "kernel $(uname -r), $GRPC_VER, $(h2load --version | head -n1)"
if [[ -n $IDLE_BUSY ]] && awk -v b="$IDLE_BUSY" 'BEGIN {exit !(b > 10)}'; then
  echo "warning: the CPUs were ${IDLE_BUSY}% busy before the run: other work on this machine" \
    "skews the numbers" >&2
fi

if ((WARMUP > 0)); then
  h2 -n "$WARMUP" -c 16 -m "$STREAMS" -t "$H2_THREADS" >"$TMP/warmup.h2load" 2>&1 ||
    die "the warm-up run failed: $(tail -n 5 "$TMP/warmup.h2load")"
fi

ROWS=()
FAILED=0
printf '%5s %7s %8s %10s %9s %9s %6s %8s %8s %8s\n' conns streams requests "req/s" "p50 ms" "p99 ms" \
  failed "srv CPU" "h2l CPU" "other"
for ((r = 1; r <= REPEAT; r++)); do
  for c in $CONNS; do
    n=$REQ_LOW
    ((c >= 16)) && n=$REQ_HIGH
    ((n >= c)) || n=$c
    log=$TMP/h2load.c$c.r$r.tsv
    t0=$(cpu_ticks "$BENCH_PID")
    m0=$(machine_ticks)
    TIMEFORMAT='%U %S'
    { time h2 -n "$n" -c "$c" -m "$STREAMS" -t "$H2_THREADS" --log-file="$log" \
      >"$TMP/h2load.c$c.r$r.out" 2>&1; } 2>"$TMP/h2load.c$c.r$r.time" || true
    t1=$(cpu_ticks "$BENCH_PID")
    m1=$(machine_ticks)
    out=$TMP/h2load.c$c.r$r.out
    rps=$(sed -n 's/^finished in \([0-9.]*\)\(m\?s\), \([0-9.]*\) req\/s.*/\3/p' "$out")
    secs=$(sed -n 's/^finished in \([0-9.]*\)\(m\?s\),.*/\1 \2/p' "$out" |
      awk '{print ($2 == "ms") ? $1 / 1000 : $1}')
    ok2xx=$(sed -n 's/^status codes: \([0-9]*\) 2xx.*/\1/p' "$out")
    if [[ -z $rps || -z $ok2xx ]]; then
      echo "health-h2load: h2load failed at $c connections:" >&2
      tail -n 5 "$out" >&2
      FAILED=$((FAILED + n))
      continue
    fi
    # failed = requests that did not end with HTTP 200 (h2load status -1 = failed stream)
    bad=$(awk -F'\t' -v n="$n" '$2 == 200 {ok++} END {print n - ok}' "$log")
    bad2=$((n - ok2xx))
    ((bad2 > bad)) && bad=$bad2
    FAILED=$((FAILED + bad))
    read -r p50 p99 < <(awk -F'\t' '$2 == 200 {print $3}' "$log" | sort -n |
      awk '{v[NR] = $1} END {
        if (NR == 0) { print "- -"; exit }
        i50 = int(NR * 0.50); if (i50 < NR * 0.50) i50++
        i99 = int(NR * 0.99); if (i99 < NR * 0.99) i99++
        printf "%.3f %.3f\n", v[i50] / 1000, v[i99] / 1000 }')
    srv_cpu=$(awk -v t="$((t1 - t0))" -v k="$CLK" -v s="$secs" 'BEGIN {printf "%.0f%%", 100 * t / k / s}')
    h2_cpu=$(awk -v s="$secs" '{printf "%.0f%%", 100 * ($1 + $2) / s}' "$TMP/h2load.c$c.r$r.time")
    # CPU the rest of the machine used meanwhile (other processes, interrupts)
    other=$(awk -v m="$((m1 - m0 - (t1 - t0)))" -v k="$CLK" -v s="$secs" \
      '{o = 100 * (m / k - $1 - $2) / s; printf "%.0f%%", (o < 0 ? 0 : o)}' "$TMP/h2load.c$c.r$r.time")
    rps_i=$(printf '%.0f' "$rps")
    printf '%5s %7s %8s %10s %9s %9s %6s %8s %8s %8s\n' "$c" "$((c * STREAMS))" "$n" "$rps_i" \
      "$p50" "$p99" "$bad" "$srv_cpu" "$h2_cpu" "$other"
    [[ -z $CSV ]] || echo "\"${LABEL:-$FLAGS}\",$r,$c,$((c * STREAMS)),$n,$rps_i,$p50,$p99,$bad,${srv_cpu%\%},${h2_cpu%\%},${other%\%}" >>"$CSV"
    ROWS+=("| $c | $((c * STREAMS)) | $n | $rps_i | $p50 | $p99 | $bad | $srv_cpu | $h2_cpu | $other |")
  done
done

stop_server "$BENCH_PID" bench
echo "server stopped with SIGTERM, exit status 0"

if [[ -n $OUT ]]; then
  {
    echo "**${LABEL:-$FLAGS}** (h2load -m $STREAMS -t $H2_THREADS)"
    echo
    echo "| connections | streams | requests | req/s | p50 ms | p99 ms | failed | server CPU | h2load CPU | other CPU |"
    echo "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    printf '%s\n' "${ROWS[@]}"
    echo
  } >>"$OUT"
  echo "table appended to $OUT"
fi

if ((FAILED > 0)); then
  echo "health-h2load: $FAILED requests failed or did not return HTTP 200" >&2
  exit 1
fi
