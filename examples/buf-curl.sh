#!/usr/bin/env bash
# buf-curl.sh - call NovaCron with `buf curl`, which needs no .proto files:
# it reads the schema from the server's reflection service.
#
#   examples/buf-curl.sh [--target HOST:PORT] [--ca CA.crt] [--cert C --key K]
#                        [--token T | --user U --password-file F]
#
# With --user it logs in first (IdentityService/Login) and uses the access
# token it gets; --token sends a token or API key you already have.
#
# Defaults: --target localhost:8443 (env NOVACRON_TARGET) and --ca
# .state/certs/ca.crt (env NOVACRON_CA), which is what scripts/run sets up.
# buf comes from node_modules/.bin (`npm ci` in the source tree) or PATH.
# Each step prints the command it runs, so you can copy it.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
target=${NOVACRON_TARGET:-localhost:8443}
ca=${NOVACRON_CA:-$root/.state/certs/ca.crt}
cert='' key='' token=${NOVACRON_TOKEN:-} user='' pwfile=''

while (($#)); do
  case $1 in
    --target) target=$2; shift ;;
    --ca) ca=$2; shift ;;
    --cert) cert=$2; shift ;;
    --key) key=$2; shift ;;
    --token) token=$2; shift ;;
    --user) user=$2; shift ;;
    --password-file) pwfile=$2; shift ;;
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
# optionally a client certificate (mTLS)
common=(--protocol grpc --cacert "$ca")
[[ -n $cert ]] && common+=(--cert "$cert" --key "$key")
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

# 4. log in: the password goes in on stdin (-d @-) so it is not on the
# command line; the access token comes back in the JSON answer
if [[ -n $user ]]; then
  [[ -r $pwfile ]] || { echo "--password-file $pwfile is not readable" >&2; exit 2; }
  show "$buf" curl "${common[@]}" -d @- "$url/novacron.v1.IdentityService/Login"
  printf '  (stdin: {"username": "%s", "password": "..."})\n' "$user"
  login=$(/usr/bin/python3 -c 'import json, sys; print(json.dumps({"username": sys.argv[1], "password": open(sys.argv[2]).read().strip()}))' "$user" "$pwfile" |
    "$buf" curl "${common[@]}" -d @- "$url/novacron.v1.IdentityService/Login")
  token=$(printf '%s' "$login" | /usr/bin/python3 -c 'import json, sys; print(json.load(sys.stdin)["accessToken"])')
  printf '  -> accessToken (%d characters), session %s\n' "${#token}" \
    "$(printf '%s' "$login" | /usr/bin/python3 -c 'import json, sys; print(json.load(sys.stdin)["session"])')"
fi
auth=()
[[ -n $token ]] && auth=(-H "Authorization: Bearer $token")

# 5. NovaCron methods: JSON in, JSON out, the token in a header; an error
# prints its code and message as JSON and exits non-zero (without a token:
# "unauthenticated"; a missing resource: "not_found")
rc=0
step "$buf" curl "${common[@]}" "${auth[@]}" -d '{}' \
  "$url/novacron.v1.IdentityService/WhoAmI" || rc=$?
echo "(exit status $rc)"
rc=0
step "$buf" curl "${common[@]}" "${auth[@]}" -d '{"parent": "projects/default", "page_size": 10}' \
  "$url/novacron.v1.VmService/ListVms" || rc=$?
echo "(exit status $rc)"
