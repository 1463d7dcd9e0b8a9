#!/usr/bin/env bash
# buf-curl.sh - call NovaCron with `buf curl`, which needs no .proto files:
# it reads the schema from the server's reflection service.
#
#   examples/buf-curl.sh [--target HOST:PORT] [--ca CA.crt] [--cert C --key K] [--token T]
#
# Defaults: --target localhost:8443 (env NOVACRON_TARGET) and --ca
# .state/certs/ca.crt (env NOVACRON_CA), which is what scripts/run sets up.
# buf comes from node_modules/.bin (`npm ci` in the source tree) or PATH.
# Each step prints the command it runs, so you can copy it.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
target=${NOVACRON_TARGET:-localhost:8443}
ca=${NOVACRON_CA:-$root/.state/certs/ca.crt}
cert='' key='' token=${NOVACRON_TOKEN:-}
while (($#)); do
  case $1 in
    --target) target=$2; shift ;;
    --ca) ca=$2; shift ;;
    --cert) cert=$2; shift ;;
    --key) key=$2; shift ;;
    --token) token=$2; shift ;;
    -h | --help) sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"; exit 0 ;;
    *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
buf=$root/node_modules/.bin/buf
[[ -x $buf ]] || buf=$(command -v buf) || {
  echo "buf not found: run 'npm ci' in $root (or install @bufbuild/buf)" >&2
  exit 1
}

# what every call shares: gRPC protocol, trust the development CA, and
# optionally a client certificate (mTLS) and a bearer token
common=(--protocol grpc --cacert "$ca")
[[ -n $cert ]] && common+=(--cert "$cert" --key "$key")
[[ -n $token ]] && common+=(-H "Authorization: Bearer $token")
url=https://$target

show() { # a command as you would type it (paths relative to here)
  local a out=''
  for a in "$@"; do
    a=${a//"$PWD"\//}
    [[ $a =~ ^[A-Za-z0-9_./:=@%+,-]+$ ]] || a="'${a//\'/\'\\\'\'}'"
    out+=" $a"
  done
  printf '\n$%s\n' "$out"
}
step() { # shows, then runs a command; returns its status
  show "$@"
  "$@" 2>&1
}

# 1. the services the server offers (from reflection)
step "$buf" curl "${common[@]}" --list-services "$url"

# 2. every method (service/method); here those of VmService
show "$buf" curl "${common[@]}" --list-methods "$url"
printf '  | grep VmService/\n'
"$buf" curl "${common[@]}" --list-methods "$url" | grep '^novacron.v1.VmService/'

# 3. health of the whole server, then of one service
step "$buf" curl "${common[@]}" -d '{}' "$url/grpc.health.v1.Health/Check"
step "$buf" curl "${common[@]}" -d '{"service": "novacron.v1.VmService"}' \
  "$url/grpc.health.v1.Health/Check"

# 4. a NovaCron method: JSON in, JSON out; an error prints its code and
# message as JSON and exits non-zero (methods not written yet answer
# "unimplemented")
rc=0
step "$buf" curl "${common[@]}" -d '{"parent": "projects/demo", "page_size": 10}' \
  "$url/novacron.v1.VmService/ListVms" || rc=$?
echo "(exit status $rc)"
