# common.sh - shared by scripts/run and scripts/test: installing what is
# missing (Debian packages, npm tools) and building. Source it; do not run.

NC_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)

# Debian packages the build, the tests and scripts/run need (DESIGN.md §2).
NC_DEB_PACKAGES=(
  build-essential cmake pkg-config git ca-certificates openssl clang-format
  libgrpc-dev libprotobuf-c-dev protobuf-c-compiler protobuf-compiler grpc-proto
  libinih-dev libjansson-dev libssl-dev libpq-dev libjwt-dev libcurl4-openssl-dev
  libisofs-dev libarchive-tools
  libcmocka-dev python3 python3-grpcio python3-protobuf protobuf-compiler-grpc
  nghttp2-client postgresql
  libvirt-dev libxml2-dev libvirt-daemon libvirt-daemon-driver-qemu qemu-system-x86
  libvirt-clients dnsmasq-base iptables qemu-utils ipxe-qemu
  nodejs npm
)

nc_log() { printf '==> %s\n' "$*" >&2; }
nc_die() { printf 'error: %s\n' "$*" >&2; exit 1; }

nc_as_root() {
  if [[ $(id -u) -eq 0 ]]; then "$@"
  elif command -v sudo >/dev/null; then sudo "$@"
  else nc_die "need root to run: $*"; fi
}

# Installs the Debian packages that are missing (no apt-get when none is).
nc_install_packages() {
  local missing=() p
  for p in "${NC_DEB_PACKAGES[@]}"; do
    # npm/nodejs may come from elsewhere (e.g. a preinstalled node): accept the commands
    if [[ $p == nodejs ]] && command -v node >/dev/null; then continue; fi
    if [[ $p == npm ]] && command -v npm >/dev/null; then continue; fi
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  if ((${#missing[@]})); then
    nc_log "installing Debian packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    nc_as_root apt-get update -qq
    nc_as_root apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
}

# npm tools pinned in package.json/package-lock.json, into ./node_modules.
nc_install_npm_tools() {
  if [[ ! -x $NC_ROOT/node_modules/.bin/buf ]] ||
     [[ $NC_ROOT/package-lock.json -nt $NC_ROOT/node_modules/.package-lock.json ]]; then
    nc_log "installing npm tools (package-lock.json)"
    (cd "$NC_ROOT" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
  fi
  export PATH="$NC_ROOT/node_modules/.bin:$PATH"
}

# nc_build DIR [cmake args...]: configure (once) and build.
nc_build() {
  local dir=$1
  shift
  cmake -S "$NC_ROOT" -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >/dev/null
  cmake --build "$dir" -j"$(nproc)"
}

# PostgreSQL's server binaries are not on PATH on Debian.
nc_pg_bindir() {
  local d
  d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1)
  [[ -n $d ]] || nc_die "PostgreSQL server binaries not found under /usr/lib/postgresql"
  printf '%s\n' "$d"
}
