#!/usr/bin/env bash
# sweep.sh - compare server configurations with health-h2load.sh.
#
#   bench/sweep.sh [--rounds N] [--max-other PCT] [--out FILE] [--csv FILE] \
#       [--h2load-args "..."] CONFIG...
#   bench/sweep.sh --summarize [--max-other PCT] CSV...   (summary of earlier runs)
#
# Each CONFIG is a string of health-h2load.sh options, optionally after a
# label and a colon, e.g.
#   "--cq-threads 1" "two threads: --cq-threads 2 --requests-per-method 16".
# The configurations run in turn (round robin) N rounds, so a burst of other
# work on the machine hits every configuration alike rather than one. Each
# run records how much CPU the rest of the machine used meanwhile ("other");
# the summary keeps only runs where that stayed at or below --max-other
# (default 10%) and prints, per configuration and connection count, the
# median req/s and latencies of the kept runs, min-max req/s, and the
# server's CPU time per request (server CPU / req/s).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROUNDS=3
MAX_OTHER=10
OUT=
CSV=
H2ARGS=
SUMMARIZE=false
CONFIGS=()
while (($#)); do
  case $1 in
  --rounds) ROUNDS=$2; shift ;;
  --max-other) MAX_OTHER=$2; shift ;;
  --out) OUT=$2; shift ;;
  --csv) CSV=$2; shift ;;
  --h2load-args) H2ARGS=$2; shift ;;
  --summarize) SUMMARIZE=true ;;
  -h | --help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
  *) CONFIGS+=("$1") ;;
  esac
  shift
done
rc=0
if $SUMMARIZE; then
  ((${#CONFIGS[@]})) || { echo "sweep: --summarize needs CSV files" >&2; exit 2; }
  CSVS=("${CONFIGS[@]}")
  CONFIGS=()
  ROUNDS=0
else
  ((${#CONFIGS[@]})) || CONFIGS=("")
  [[ -n $CSV ]] || CSV=$(mktemp "${TMPDIR:-/tmp}/sweep.XXXXXX.csv")
  CSVS=("$CSV")
fi
for ((r = 1; r <= ROUNDS; r++)); do
  for cfg in "${CONFIGS[@]}"; do
    label=${cfg:-defaults}
    if [[ $cfg =~ ^([^-][^:]*):\ *(.*)$ ]]; then # "label: options"
      label=${BASH_REMATCH[1]}
      cfg=${BASH_REMATCH[2]}
    fi
    echo "== round $r/$ROUNDS: $label" >&2
    # a config is a string of options written as on a command line (quotes work)
    opts=()
    eval "opts=($cfg $H2ARGS)"
    "$HERE/health-h2load.sh" "${opts[@]}" --label "$label" --csv "$CSV" >&2 || rc=1
  done
done

summary=$(python3 - "$MAX_OTHER" "${CSVS[@]}" <<'EOF'
import csv, statistics, sys
max_other, paths = float(sys.argv[1]), sys.argv[2:]
runs = {}
order = []
rows = [row for path in paths for row in csv.reader(open(path))]
for row in rows:
    label, _run, conns, streams, _n, rps, p50, p99, failed, srv, h2l, other = row
    key = (label, int(conns))
    if label not in order:
        order.append(label)
    runs.setdefault(key, []).append(
        dict(rps=int(rps), p50=float(p50), p99=float(p99), failed=int(failed),
             srv=float(srv), h2l=float(h2l), other=float(other), streams=int(streams),
             us=float(srv) / 100 / max(int(rps), 1) * 1e6))
print("| configuration | connections | streams | kept runs | median req/s | min-max req/s "
      "| median p50 ms | median p99 ms | failed | server CPU | server µs/req | h2load CPU |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
for label in order:
    for (lab, conns), rs in sorted(runs.items(), key=lambda kv: kv[0][1]):
        if lab != label:
            continue
        kept = [r for r in rs if r["other"] <= max_other]
        failed = sum(r["failed"] for r in rs)
        if not kept:
            print(f"| {label} | {conns} | {rs[0]['streams']} | 0/{len(rs)} | - | - | - | - | {failed} | - | - | - |")
            continue
        med = lambda k: statistics.median(r[k] for r in kept)
        lo, hi = min(r["rps"] for r in kept), max(r["rps"] for r in kept)
        print(f"| {label} | {conns} | {rs[0]['streams']} | {len(kept)}/{len(rs)} | {med('rps'):.0f} "
              f"| {lo}-{hi} | {med('p50'):.3f} | {med('p99'):.3f} | {failed} "
              f"| {med('srv'):.0f}% | {med('us'):.1f} | {med('h2l'):.0f}% |")
EOF
)
echo "$summary"
echo "(runs kept when other processes used <= ${MAX_OTHER}% CPU; raw runs in ${CSVS[*]})"
if [[ -n $OUT ]]; then
  { echo "$summary"; echo; } >>"$OUT"
fi
exit $rc
