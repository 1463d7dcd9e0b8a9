#!/usr/bin/env bash
# libvirtd.sh - the real-hypervisor stage's libvirt: start a private libvirtd
# (+ virtlogd) for the qemu driver on a machine without systemd, and stop it
# again leaving the machine as found. See docs/hypervisor-stage.md.
#
#   scripts/lib/libvirtd.sh start STATE_DIR
#   scripts/lib/libvirtd.sh stop  STATE_DIR
#
# Exit codes: 0 ready / stopped; 1 error (message and daemon log tail on
# stderr; a failed start undoes itself); 2 usage; 3 the stage cannot run here:
# exactly one line "qemu stage unavailable: REASON" on stderr, nothing changed.
#
# start reuses a daemon that already answers on qemu:///system (systemd hosts,
# a developer's libvirtd) and then changes nothing; stop is a no-op for it.
# After start, STATE_DIR/stage.env holds shell assignments for the caller:
#   NC_QEMU_URI=qemu:///system  NC_QEMU_DOMAIN_TYPE=kvm|qemu  NC_QEMU_OWNED=1|0
# Daemon logs: STATE_DIR/libvirtd.log, STATE_DIR/virtlogd.log; guest console
# and qemu logs are copied to STATE_DIR/qemu-logs/ by stop.
#
# Everything start changes is written to STATE_DIR/journal before it is done;
# stop undoes the journal in reverse and renames it journal.done, so stop is
# idempotent and also cleans up after an interrupted start.
#
# Environment: NC_LIBVIRT_LOG_LEVEL (1 debug .. 4 error; default 3) for the
# daemons' own logs; NC_LIBVIRT_WAIT (seconds, default 30) for readiness.
#
# stop removes only NovaCron's domains (metadata namespace NS_URI below)
# created while our daemon ran; anything else defined or running on it is
# kept, with the libvirt state it needs, and reported.
set -euo pipefail

readonly URI=qemu:///system
readonly NS_URI=https://novacron.dev/xmlns/vm/1
# The qemu driver refuses to initialise unless its compiled-in default account
# exists, even when qemu.conf overrides user/group. Debian 12 builds libvirt
# with user and group "libvirt-qemu" (libvirtd logs "Failed to parse user
# 'libvirt-qemu'", then "... group 'libvirt-qemu'" while they are missing).
readonly QEMU_ACCOUNT=libvirt-qemu
readonly QEMU_CONF=/etc/libvirt/qemu.conf
readonly CONF_BEGIN='# BEGIN novacron hypervisor stage (scripts/lib/libvirtd.sh) - restored on stop'
readonly CONF_END='# END novacron hypervisor stage'
# Directories libvirtd (or we) create; removed on stop when absent at start.
readonly RUNTIME_DIRS=(/run/libvirt /var/log/libvirt /var/cache/libvirt /var/lib/libvirt)
# Parents whose mtime we put back when their entries are as found.
readonly PARENT_DIRS=(/etc /etc/libvirt /run /var/log /var/cache /var/lib)
readonly ACCOUNT_FILES=(/etc/passwd /etc/group /etc/shadow /etc/gshadow)

log() { printf '==> libvirtd.sh: %s\n' "$*" >&2; }
warn() { printf 'warning: libvirtd.sh: %s\n' "$*" >&2; }
err() { printf 'error: libvirtd.sh: %s\n' "$*" >&2; }
unavailable() {
  printf 'qemu stage unavailable: %s\n' "$*" >&2
  exit 3
}
usage() {
  printf 'usage: %s start|stop STATE_DIR\n' "${0##*/}" >&2
  exit 2
}

(($# == 2)) || usage
CMD=$1
case $CMD in start | stop) ;; *) usage ;; esac
[[ -n $2 ]] || usage
STATE=$(realpath -m -- "$2")
SELF=$(realpath -- "${BASH_SOURCE[0]}")

# ---------------------------------------------------------------- privileges
if ((EUID != 0)); then
  if command -v sudo >/dev/null 2>&1 && sudo -n true >/dev/null 2>&1; then
    exec sudo -n -- env NC_LIBVIRT_LOG_LEVEL="${NC_LIBVIRT_LOG_LEVEL:-3}" \
      NC_LIBVIRT_WAIT="${NC_LIBVIRT_WAIT:-30}" "$SELF" "$CMD" "$STATE"
  fi
  [[ $CMD == stop && ! -e $STATE/journal ]] && exit 0
  unavailable "not root and no passwordless sudo"
fi

JOURNAL=$STATE/journal
KEPT=0

# ------------------------------------------------------------------- helpers
vsh() { timeout 20 virsh -q -c "$URI" "$@"; }
answers() { timeout 10 virsh -q -c "$URI" version >/dev/null 2>&1; }

# alive PID [COMM]: the process exists, is not a zombie (PID 1 here may not
# reap) and, when given, its command name is COMM.
alive() {
  local pid=$1 comm=${2:-} stat
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  stat=$(cat "/proc/$pid/stat" 2>/dev/null) || return 1
  stat=${stat##*) }
  [[ ${stat%% *} != Z ]] || return 1
  [[ -z $comm || $(cat "/proc/$pid/comm" 2>/dev/null) == "$comm" ]]
}

# running COMM...: the first live (non-zombie) process with one of the names.
running() {
  local c p
  for c in "$@"; do
    for p in $(pgrep -x "$c" || true); do
      if alive "$p" "$c"; then
        echo "$p"
        return 0
      fi
    done
  done
}

# kill_pid PID COMM: SIGTERM, wait up to 10 s, then SIGKILL.
kill_pid() {
  local pid=$1 comm=$2 i
  alive "$pid" "$comm" || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 100; i++)); do
    alive "$pid" "$comm" || return 0
    sleep 0.1
  done
  warn "$comm (pid $pid) ignored SIGTERM for 10 s; sending SIGKILL"
  kill -KILL "$pid" 2>/dev/null || true
  for ((i = 0; i < 50; i++)); do
    alive "$pid" "$comm" || return 0
    sleep 0.1
  done
  err "$comm (pid $pid) survived SIGKILL"
  return 1
}

journal() { printf '%s\n' "$*" >>"$JOURNAL"; }
mtime() { stat -c %.9Y -- "$1"; }
entries() { find "$1" -mindepth 1 -maxdepth 1 -printf '%f\n' 2>/dev/null | LC_ALL=C sort | md5sum | cut -d' ' -f1; }

# The file minus our marked block (a block left by a crashed run is not part
# of what we found).
strip_block() {
  awk -v b="$CONF_BEGIN" -v e="$CONF_END" \
    '$0 == b { skip = 1; next } skip && $0 == e { skip = 0; next } !skip' "$1"
}

daemon_pid() { if [[ -s $STATE/$1.pid ]]; then cat "$STATE/$1.pid"; fi; }

# ---------------------------------------------------------------------- stop
# Undo the journal in reverse order. Safe to run on a partial journal.
do_stop() {
  if [[ ! -f $JOURNAL ]]; then
    log "nothing to stop (not started, already stopped, or the daemon is not ours)"
    return 0
  fi
  # Keep going whatever fails: undo as much as possible, report at the end.
  set +e
  local rc=0 line op arg i lines=()
  mapfile -t lines <"$JOURNAL"

  # 1. NovaCron's leftover domains, while our libvirtd still runs.
  local lpid
  lpid=$(daemon_pid libvirtd)
  if [[ -n $lpid ]] && alive "$lpid" libvirtd && answers; then
    clean_domains || rc=1
  else
    clean_orphans || rc=1
  fi

  for ((i = ${#lines[@]} - 1; i >= 0; i--)); do
    line=${lines[i]}
    op=${line%% *}
    arg=${line#* }
    case $op in
      daemon) # daemon NAME (pid in STATE/NAME.pid)
        local pid
        pid=$(daemon_pid "$arg")
        if [[ -n $pid ]]; then kill_pid "$pid" "$arg" || rc=1; fi
        if [[ $arg == libvirtd ]] && [[ -d /var/log/libvirt/qemu ]]; then
          mkdir -p "$STATE/qemu-logs"
          cp -a /var/log/libvirt/qemu/. "$STATE/qemu-logs/" 2>/dev/null || true
        fi
        ;;
      conf-created) # conf-created PATH: did not exist at start
        rm -f -- "$arg"
        ;;
      conf-backup) # conf-backup PATH BACKUP
        if cat -- "${arg#* }" >"${arg%% *}"; then
          touch -r "${arg#* }" -- "${arg%% *}"
        else
          err "could not restore ${arg%% *} from ${arg#* }"
          rc=1
        fi
        ;;
      user)
        if getent passwd "$arg" >/dev/null && ! userdel "$arg"; then
          err "userdel $arg failed"
          rc=1
        fi
        ;;
      group)
        if getent group "$arg" >/dev/null && ! groupdel "$arg"; then
          err "groupdel $arg failed"
          rc=1
        fi
        ;;
      accounts) restore_accounts ;;
      dir-absent) remove_dir "$arg" || rc=1 ;;
      dir-existed) prune_existing "$arg" ;;
      etc-listing) prune_etc_libvirt ;;
      parents) restore_parents ;;
      *) ;;
    esac
  done
  mv -f "$JOURNAL" "$STATE/journal.done"
  chown_state
  set -e
  if ((rc != 0)); then
    err "stop finished with errors (see above)"
  elif ((KEPT)); then
    log "stopped; others' domains/objects and libvirt's state for them were kept (see warnings)"
  else
    log "stopped; machine restored"
  fi
  return "$rc"
}

# Destroy and undefine domains carrying NovaCron's metadata. Others are left
# alone (and reported: their qemu processes outlive libvirtd).
clean_domains() {
  local uuid name rc=0 flags
  while read -r uuid; do
    [[ -n $uuid ]] || continue
    name=$(vsh domname "$uuid" 2>/dev/null) || continue
    if ! vsh metadata "$uuid" "$NS_URI" >/dev/null 2>&1 &&
      ! vsh dumpxml --inactive "$uuid" 2>/dev/null | grep -qF "$NS_URI"; then
      KEPT=1
      warn "leaving domain '$name' ($uuid): no NovaCron metadata"
      continue
    fi
    if grep -qxF -- "./qemu/$name.xml" "$STATE/etc-libvirt.before" 2>/dev/null; then
      KEPT=1
      warn "leaving domain '$name': it was defined before start"
      continue
    fi
    log "removing leftover NovaCron domain '$name'"
    if [[ $(vsh domstate "$uuid" 2>/dev/null) != "shut off" ]]; then
      vsh destroy "$uuid" >/dev/null 2>&1 || true
    fi
    if vsh dominfo "$uuid" >/dev/null 2>&1; then # persistent
      flags=(--managed-save --snapshots-metadata --checkpoints-metadata --nvram)
      vsh undefine "$uuid" "${flags[@]}" >/dev/null 2>&1 ||
        vsh undefine "$uuid" --snapshots-metadata >/dev/null 2>&1 ||
        { err "could not undefine domain '$name'"; rc=1; }
    fi
  done < <(vsh list --all --uuid 2>/dev/null)
  return "$rc"
}

# Our libvirtd died: kill the qemu processes of NovaCron's domains it left
# (their status XML in /run/libvirt/qemu carries the metadata).
clean_orphans() {
  local f name pid rc=0
  for f in /run/libvirt/qemu/*.pid; do
    [[ -f $f ]] || continue
    name=${f##*/}
    name=${name%.pid}
    pid=$(cat "$f" 2>/dev/null) || continue
    alive "$pid" || continue
    [[ $(cat "/proc/$pid/comm") == qemu* ]] || continue
    if grep -qF "$NS_URI" "/run/libvirt/qemu/$name.xml" 2>/dev/null; then
      log "libvirtd is gone; killing qemu of NovaCron domain '$name' (pid $pid)"
      kill_pid "$pid" "$(cat "/proc/$pid/comm")" || rc=1
    else
      KEPT=1
      warn "leaving qemu of domain '$name' (pid $pid): no NovaCron metadata"
    fi
  done
  # Definitions of NovaCron domains made since start, and their metadata.
  while read -r f; do
    [[ $f == ./qemu/*.xml && $f != */autostart/* ]] || continue
    novacron_file "/etc/libvirt/$f" || continue
    name=${f#./qemu/}
    name=${name%.xml}
    log "libvirtd is gone; dropping the definition of NovaCron domain '$name'"
    rm -rf -- "/var/lib/libvirt/qemu/snapshot/$name" "/var/lib/libvirt/qemu/checkpoint/$name" \
      "/var/lib/libvirt/qemu/save/$name.save" "/etc/libvirt/qemu/autostart/$name.xml"
    rm -f -- "/etc/libvirt/$f"
  done < <(new_etc_files)
  return "$rc"
}

# Files and links under /etc/libvirt that were not there at start.
new_etc_files() {
  [[ -f $STATE/etc-libvirt.before && -d /etc/libvirt ]] || return 0
  LC_ALL=C comm -13 "$STATE/etc-libvirt.before" \
    <(cd /etc/libvirt && find . ! -type d | LC_ALL=C sort)
}

# A definition with NovaCron's metadata, or a link to one (grep follows it).
novacron_file() { grep -qsF "$NS_URI" -- "$1"; }

# Is anything of others left in our daemon's world: objects (domains, pools,
# networks, secrets) defined under /etc/libvirt since start that are not
# NovaCron's, or a running qemu? Then libvirt's state directories survive.
foreign_config_left() {
  local f pid
  for f in /run/libvirt/qemu/*.pid; do
    [[ -f $f ]] || continue
    pid=$(cat "$f" 2>/dev/null) || continue
    alive "$pid" && return 0
  done
  while read -r f; do
    [[ -n $f ]] || continue
    novacron_file "/etc/libvirt/$f" || return 0
  done < <(new_etc_files)
  return 1
}

remove_dir() {
  local d=$1
  [[ -d $d ]] || return 0
  if foreign_config_left; then
    find "$d" -depth -type d -empty -delete 2>/dev/null || true
    if [[ -d $d ]]; then
      KEPT=1
      warn "kept $d: domains or objects that are not NovaCron's are still defined or running"
    fi
    return 0
  fi
  rm -rf --one-file-system -- "$d"
}

# A runtime directory that existed at start: remove the daemon's run-time
# markers and the empty directories our daemon added; keep everything else.
prune_existing() {
  local d=$1 list=$STATE/listing${1//\//_} p
  [[ -f $list && -d $d ]] || return 0
  if foreign_config_left; then return 0; fi
  while read -r p; do
    case ${p##*/} in
      autostarted | nwfilter.leases | driver.pid) if [[ -f $p ]]; then rm -f -- "$p"; fi ;;
    esac
  done < <(LC_ALL=C comm -13 "$list" <(find "$d" -xdev | LC_ALL=C sort))
  while read -r p; do
    rmdir -- "$p" 2>/dev/null || true
  done < <(LC_ALL=C comm -13 "$list" <(find "$d" -xdev -type d | LC_ALL=C sort) | LC_ALL=C sort -r)
  return 0
}

# Remove what appeared under /etc/libvirt since start: NovaCron's leftover
# definitions (only there if libvirtd died), then the new empty directories.
prune_etc_libvirt() {
  [[ -f $STATE/etc-libvirt.before-dirs && -d /etc/libvirt ]] || return 0
  local f ours=() foreign=()
  while read -r f; do
    [[ -n $f ]] || continue
    if novacron_file "/etc/libvirt/$f"; then ours+=("/etc/libvirt/$f"); else foreign+=("$f"); fi
  done < <(new_etc_files)
  ((${#ours[@]} == 0)) || rm -f -- "${ours[@]}"
  if ((${#foreign[@]})); then
    KEPT=1
    warn "kept new files under /etc/libvirt (objects defined by others):"
    printf '    %s\n' "${foreign[@]}" >&2
  fi
  local d
  while read -r d; do
    [[ -n $d && $d != . ]] || continue
    grep -qxF -- "$d" "$STATE/etc-libvirt.before-dirs" && continue
    rmdir -- "/etc/libvirt/$d" 2>/dev/null || true
  done < <(cd /etc/libvirt && find . -depth -type d)
}

# userdel/groupdel leave the files' mtimes and the "-" backup copies changed.
# If the account files are back to what we found, put those back too.
restore_accounts() {
  local f
  for f in "${ACCOUNT_FILES[@]}"; do
    [[ -f $STATE/accounts/${f##*/} ]] || continue
    cmp -s "$f" "$STATE/accounts/${f##*/}" || return 0
  done
  for f in "${ACCOUNT_FILES[@]}"; do
    if [[ -f $STATE/accounts/${f##*/} ]]; then touch -r "$STATE/accounts/${f##*/}" -- "$f"; fi
    if [[ -f $STATE/accounts/${f##*/}- ]]; then
      cp -p -- "$STATE/accounts/${f##*/}-" "$f-"
    elif [[ -e $STATE/accounts/${f##*/}-.absent ]]; then
      rm -f -- "$f-"
    fi
  done
}

restore_parents() {
  local d m e
  [[ -f $STATE/parents ]] || return 0
  while read -r d m e; do
    if [[ -d $d && $(entries "$d") == "$e" ]]; then touch -d "@$m" -- "$d"; fi
  done <"$STATE/parents"
  return 0
}

chown_state() {
  if [[ -n ${SUDO_UID:-} && -d $STATE ]]; then
    chown -R "$SUDO_UID:${SUDO_GID:-$SUDO_UID}" "$STATE" 2>/dev/null || true
  fi
}

# --------------------------------------------------------------------- start
write_env() {
  local type=qemu
  if vsh domcapabilities --virttype kvm --arch x86_64 >/dev/null 2>&1; then type=kvm; fi
  printf 'NC_QEMU_URI=%s\nNC_QEMU_DOMAIN_TYPE=%s\nNC_QEMU_OWNED=%s\n' "$URI" "$type" "$1" >"$STATE/stage.env"
  chown_state
  log "libvirtd ready on $URI ($([[ $1 == 1 ]] && echo "started by us" || echo "already running; not ours")), domain type $type"
}

fail_start() {
  err "$*"
  printf '(errors about dnsmasq, D-Bus, udev and dmidecode in the log are harmless)\n' >&2
  local f
  for f in "$STATE/libvirtd.log" "$STATE/virtlogd.log" "$STATE/libvirtd.stderr" "$STATE/virtlogd.stderr"; do
    [[ -s $f ]] || continue
    printf -- '--- last lines of %s ---\n' "$f" >&2
    tail -n 25 -- "$f" >&2
  done
  exit 1
}

do_start() {
  local c
  for c in libvirtd virtlogd virsh useradd groupadd userdel groupdel timeout; do
    command -v "$c" >/dev/null 2>&1 || unavailable "'$c' not found (install libvirt-daemon, libvirt-clients)"
  done
  command -v qemu-system-x86_64 >/dev/null 2>&1 || unavailable "qemu-system-x86_64 not found (install qemu-system-x86)"
  compgen -G '/usr/lib/*/libvirt/connection-driver/libvirt_driver_qemu.so' >/dev/null ||
    compgen -G '/usr/lib*/libvirt/connection-driver/libvirt_driver_qemu.so' >/dev/null ||
    unavailable "libvirt's qemu driver is not installed (libvirt-daemon-driver-qemu)"

  mkdir -p "$STATE" || unavailable "cannot create state directory $STATE"

  if [[ -f $JOURNAL ]]; then
    local p
    p=$(daemon_pid libvirtd)
    if [[ -n $p ]] && alive "$p" libvirtd && answers; then
      log "already started with this state directory (libvirtd pid $p)"
      write_env 1
      return 0
    fi
    log "cleaning up an earlier, unfinished run in $STATE"
    do_stop || fail_start "could not clean up the earlier run in $STATE"
  fi

  # A daemon that answers already (systemd's, socket activation, a developer's).
  if answers; then
    rm -f "$STATE/journal.done"
    write_env 0
    return 0
  fi
  local other
  other=$(running libvirtd virtqemud)
  if [[ -n $other ]]; then
    for ((c = 0; c < 20; c++)); do
      sleep 0.5
      if answers; then write_env 0; return 0; fi
    done
    unavailable "a $(cat "/proc/$other/comm" 2>/dev/null || echo libvirt daemon) (pid $other) runs but $URI does not answer"
  fi
  if [[ -S /run/libvirt/libvirt-sock ]]; then
    warn "stale /run/libvirt/libvirt-sock (no daemon); libvirtd will replace it"
  fi

  # From here on every change is journaled first; a failure undoes them.
  : >"$JOURNAL"
  trap 'rc=$?; if ((rc != 0 && rc != 3)) && [[ -f $JOURNAL ]]; then log "start failed; undoing"; do_stop || true; fi' EXIT
  rm -f "$STATE/journal.done" "$STATE/stage.env" "$STATE"/*.pid

  # What was there before (for restoring mtimes and removing new dirs).
  local d
  : >"$STATE/parents"
  for d in "${PARENT_DIRS[@]}"; do
    if [[ -d $d ]]; then printf '%s %s %s\n' "$d" "$(mtime "$d")" "$(entries "$d")" >>"$STATE/parents"; fi
  done
  journal "parents"
  if [[ -d /etc/libvirt ]]; then
    (cd /etc/libvirt && find . ! -type d | LC_ALL=C sort) >"$STATE/etc-libvirt.before"
    (cd /etc/libvirt && find . -type d | LC_ALL=C sort) >"$STATE/etc-libvirt.before-dirs"
    journal "etc-listing"
  else
    : >"$STATE/etc-libvirt.before"
    journal "dir-absent /etc/libvirt"
  fi
  for d in "${RUNTIME_DIRS[@]}"; do
    if [[ -d $d ]]; then
      # Someone else's libvirt (even an in-process qemu:///embed or a client
      # run as root) may have made it: later, remove only what our daemon adds.
      find "$d" -xdev | LC_ALL=C sort >"$STATE/listing${d//\//_}"
      printf '%s %s %s\n' "$d" "$(mtime "$d")" "$(entries "$d")" >>"$STATE/parents"
      journal "dir-existed $d"
    else
      journal "dir-absent $d"
    fi
  done

  # Accounts the qemu driver insists on.
  if ! getent passwd "$QEMU_ACCOUNT" >/dev/null || ! getent group "$QEMU_ACCOUNT" >/dev/null; then
    local f
    mkdir -p "$STATE/accounts"
    for f in "${ACCOUNT_FILES[@]}"; do
      if [[ -f $f ]]; then cp -p -- "$f" "$STATE/accounts/"; fi
      if [[ -f $f- ]]; then cp -p -- "$f-" "$STATE/accounts/"; else : >"$STATE/accounts/${f##*/}-.absent"; fi
    done
    journal "accounts"
    if ! getent group "$QEMU_ACCOUNT" >/dev/null; then
      journal "group $QEMU_ACCOUNT"
      groupadd -r "$QEMU_ACCOUNT"
    fi
    if ! getent passwd "$QEMU_ACCOUNT" >/dev/null; then
      journal "user $QEMU_ACCOUNT"
      useradd -r -M -N -g "$QEMU_ACCOUNT" -d /var/lib/libvirt -s /usr/sbin/nologin \
        -c "libvirt qemu (NovaCron hypervisor stage)" "$QEMU_ACCOUNT"
    fi
  fi

  # qemu.conf: our block first (libvirt's config parser takes the first
  # occurrence of a key), the file's own content after it.
  mkdir -p /etc/libvirt
  if [[ -f $QEMU_CONF ]]; then
    strip_block "$QEMU_CONF" >"$STATE/qemu.conf.orig"
    chmod --reference="$QEMU_CONF" "$STATE/qemu.conf.orig"
    touch -r "$QEMU_CONF" "$STATE/qemu.conf.orig"
    journal "conf-backup $QEMU_CONF $STATE/qemu.conf.orig"
  else
    : >"$STATE/qemu.conf.orig"
    journal "conf-created $QEMU_CONF"
  fi
  {
    printf '%s\n' "$CONF_BEGIN"
    printf '# Containers without systemd: qemu runs as root (no DAC relabelling of\n'
    printf '# files owned by the test user), libvirt manages no cgroups and builds\n'
    printf '# no private /dev per domain (moving /dev/pts fails in some containers).\n'
    printf 'user = "root"\ngroup = "root"\ncgroup_controllers = [ ]\nnamespaces = [ ]\n'
    printf '%s\n' "$CONF_END"
    cat "$STATE/qemu.conf.orig"
  } >"$QEMU_CONF.nc-tmp"
  if [[ -f $QEMU_CONF ]]; then chmod --reference="$QEMU_CONF" "$QEMU_CONF.nc-tmp"; else chmod 600 "$QEMU_CONF.nc-tmp"; fi
  mv -f "$QEMU_CONF.nc-tmp" "$QEMU_CONF"

  mkdir -p /run/libvirt /var/log/libvirt/qemu

  # Daemon configs live in STATE (not /etc): logs there too.
  local level=${NC_LIBVIRT_LOG_LEVEL:-3} sockgrp=root
  if [[ -n ${SUDO_GID:-} ]]; then sockgrp=$(getent group "$SUDO_GID" | cut -d: -f1); fi
  cat >"$STATE/virtlogd.conf" <<EOF
log_outputs = "$level:file:$STATE/virtlogd.log"
EOF
  cat >"$STATE/libvirtd.conf" <<EOF
log_outputs = "$level:file:$STATE/libvirtd.log"
# Let the user who ran us through sudo (if any) use qemu:///system directly.
unix_sock_group = "${sockgrp:-root}"
unix_sock_ro_perms = "0770"
unix_sock_rw_perms = "0770"
auth_unix_ro = "none"
auth_unix_rw = "none"
EOF

  # virtlogd (libvirtd's qemu driver sends guest stdout/stderr through it).
  if [[ -n $(running virtlogd) && -S /run/libvirt/virtlogd-sock ]]; then
    log "reusing the running virtlogd"
  else
    journal "daemon virtlogd"
    virtlogd --daemon -f "$STATE/virtlogd.conf" -p "$STATE/virtlogd.pid" 2>"$STATE/virtlogd.stderr" ||
      fail_start "virtlogd failed to start"
    for ((c = 0; c < 50; c++)); do
      [[ -S /run/libvirt/virtlogd-sock && -s $STATE/virtlogd.pid ]] && break
      sleep 0.1
    done
    alive "$(daemon_pid virtlogd)" virtlogd || fail_start "virtlogd did not come up"
  fi

  journal "daemon libvirtd"
  # --daemon returns 0 even when driver initialisation fails later: poll.
  libvirtd --daemon -f "$STATE/libvirtd.conf" -p "$STATE/libvirtd.pid" 2>"$STATE/libvirtd.stderr" ||
    fail_start "libvirtd failed to start"
  local wait=${NC_LIBVIRT_WAIT:-30} t0=$SECONDS pid
  while ! answers; do
    pid=$(daemon_pid libvirtd)
    if ((SECONDS - t0 >= 3)) && { [[ -z $pid ]] || ! alive "$pid" libvirtd; }; then
      fail_start "libvirtd exited during start-up"
    fi
    ((SECONDS - t0 < wait)) || fail_start "libvirtd did not answer on $URI within ${wait} s"
    sleep 0.2
  done
  pid=$(daemon_pid libvirtd)
  alive "$pid" libvirtd || fail_start "a libvirtd answers on $URI but it is not the one we started"
  trap - EXIT
  write_env 1
}

case $CMD in
  start) do_start ;;
  stop) do_stop ;;
esac
