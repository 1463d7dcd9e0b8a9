/*
 * main.c - novactl, the NovaCron command-line client: the command table.
 *
 * Each command is one row: name, synopsis, summary, its flags and handler;
 * a group row (user, project, ...) lists its subcommands, which are rows
 * of their own (groups nest: "vm snapshot create"). Adding a command means adding a row here
 * and a cmd_<name>.c with the handlers; flag parsing, help, connecting,
 * credentials and output are shared (cli.c, creds.c, output.c, resource.c).
 */
#include <jansson.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "resource.h"

static int cmd_help(cli_ctx *ctx);

#define FLAGS(table) table, sizeof(table) / sizeof(table[0])
#define NO_FLAGS NULL, 0
#define NO_SUBCOMMANDS NULL, 0
/* A group row: no flags, arguments or handler of its own. */
#define SUBCOMMANDS(table) NULL, 0, 0, 0, NULL, table, sizeof(table) / sizeof(table[0])

/* ---- flags ---- */

static const cli_flag health_flags[] = {
    {"watch", NULL, NULL, NULL,
     "Stream every status change until the server ends the watch (no deadline unless "
     "--timeout is given)."},
};

static const cli_flag login_flags[] = {
    {"username", "NAME", NULL, NULL, "The user to log in as (instead of the USERNAME argument)."},
    {"password-stdin", NULL, NULL, NULL,
     "Read the password from the first line of stdin instead of the terminal."},
};

static const cli_flag list_flags[] = {RES_LIST_FLAGS};

static const cli_flag etag_flags[] = {
    {"etag", "ETAG", NULL, NULL, "Only if unchanged since read with this etag (else ABORTED)."},
};

static const cli_flag user_create_flags[] = {
    {"display-name", "TEXT", NULL, NULL, "Human-readable name."},
    {"email", "ADDRESS", NULL, NULL, "Contact email address."},
    {"system-admin", NULL, NULL, NULL, "Make the user a system administrator."},
    {"password-stdin", NULL, NULL, NULL,
     "Read the initial password from stdin (else asked twice on the terminal)."},
};

static const cli_flag user_update_flags[] = {
    {"display-name", "TEXT", NULL, NULL, "New human-readable name."},
    {"email", "ADDRESS", NULL, NULL, "New contact email address (\"\" clears it)."},
    {"disable", NULL, NULL, NULL, "Disable the user (ends their sessions)."},
    {"enable", NULL, NULL, NULL, "Enable the user again."},
    {"system-admin", NULL, NULL, NULL, "Grant system administrator rights."},
    {"no-system-admin", NULL, NULL, NULL, "Withdraw system administrator rights."},
    {"etag", "ETAG", NULL, NULL, "Only if unchanged since read with this etag (else ABORTED)."},
};

static const cli_flag passwd_flags[] = {
    {"password-stdin", NULL, NULL, NULL,
     "Read from stdin: the current password on the first line when changing one's own, then "
     "the new one."},
};

static const cli_flag project_create_flags[] = {
    {"display-name", "TEXT", NULL, NULL, "Human-readable name."},
    {"description", "TEXT", NULL, NULL, "Free-form description."},
    {"label", "KEY=VALUE", NULL, NULL, "A label; repeat for several."},
};

static const cli_flag project_update_flags[] = {
    {"display-name", "TEXT", NULL, NULL, "New human-readable name."},
    {"description", "TEXT", NULL, NULL, "New description."},
    {"label", "KEY=VALUE", NULL, NULL, "Replace all labels by these; repeat for several."},
    {"clear-labels", NULL, NULL, NULL, "Remove every label."},
    {"etag", "ETAG", NULL, NULL, "Only if unchanged since read with this etag (else ABORTED)."},
};

static const cli_flag role_grant_flags[] = {
    RES_PROJECT_FLAG,
    {"id", "ID", NULL, NULL, "The binding's id (default: the username)."},
};

static const cli_flag role_list_flags[] = {
    {"project", "PROJECT", "NOVACRON_PROJECT", "default",
     "The project (id or projects/ID); \"-\" for every project you have a role on."},
    RES_LIST_FLAGS,
};

static const cli_flag project_etag_flags[] = {
    RES_PROJECT_FLAG,
    {"etag", "ETAG", NULL, NULL, "Only if unchanged since read with this etag (else ABORTED)."},
};

static const cli_flag apikey_create_flags[] = {
    RES_PROJECT_FLAG,
    {"role", "ROLE", NULL, NULL, "The key's role: viewer, operator or admin (required)."},
    {"description", "TEXT", NULL, NULL, "What the key is for."},
    {"ttl", "DURATION", NULL, NULL, "Expire after this long: 3600s, 90m, 12h, 30d."},
    {"expire-time", "TIME", NULL, NULL, "Expire at this time, e.g. 2030-01-31T00:00:00Z."},
};

static const cli_flag project_list_flags[] = {RES_PROJECT_FLAG, RES_LIST_FLAGS};

static const cli_flag project_flags[] = {RES_PROJECT_FLAG};

static const cli_flag quota_set_flags[] = {
    RES_PROJECT_FLAG,
    {"vcpus", "N", NULL, NULL, "Total virtual CPUs of all VMs (a number or unlimited)."},
    {"memory-mib", "N", NULL, NULL, "Total memory of all VMs in MiB (or unlimited)."},
    {"vms", "N", NULL, NULL, "Number of VMs (or unlimited)."},
    {"volumes", "N", NULL, NULL, "Number of volumes, a VM's new disks included (or unlimited)."},
    {"volume-gib", "N", NULL, NULL, "Total size of all volumes in GiB (or unlimited)."},
    {"networks", "N", NULL, NULL, "Number of networks (or unlimited)."},
    {"backup-gib", "N", NULL, NULL, "Total stored size of all backups in GiB (or unlimited)."},
    {"etag", "ETAG", NULL, NULL, "Only if unchanged since read with this etag (else ABORTED)."},
};

static const cli_flag audit_list_flags[] = {
    {"project", "PROJECT", NULL, NULL,
     "Only this project's events (needs admin on it); default: all events (system "
     "administrators)."},
    RES_LIST_FLAGS,
};

/* ---- flags of the compute commands (host, vm, op, events) ---- */

/* Every command that starts an Operation waits for it unless told not to. */
#define WAIT_FLAGS                                                                      \
  {"no-wait", NULL, NULL, NULL,                                                         \
   "Do not wait: print the operation's name (JSON: the operation) and exit."},          \
  {                                                                                     \
    "wait-timeout", "DURATION", NULL, "10m",                                            \
        "How long to wait for the operation (90s, 10m, 1h); the work goes on after it." \
  }

/* --project for reads that also take "-" (every project you have a role on). */
#define SCOPED_PROJECT_FLAG                                                            \
  {                                                                                    \
    "project", "PROJECT", "NOVACRON_PROJECT", "default",                               \
        "The project (id or projects/ID); \"-\" for every project you have a role on." \
  }

static const cli_flag scoped_list_flags[] = {SCOPED_PROJECT_FLAG, RES_LIST_FLAGS};

static const cli_flag host_register_flags[] = {
    {"uri", "URI", NULL, NULL,
     "libvirt connection URI (required): qemu+ssh://root@kvm1/system, qemu:///system, ..."},
    {"description", "TEXT", NULL, NULL, "Free-form description."},
    {"label", "KEY=VALUE", NULL, NULL, "A label (matched by placement host selectors); repeat."},
    {"cordoned", NULL, NULL, NULL, "Register it cordoned: no VMs are placed on it yet."},
    {"validate-only", NULL, NULL, NULL, "Probe the URI and check the request; register nothing."},
    WAIT_FLAGS,
};

static const cli_flag host_update_flags[] = {
    {"description", "TEXT", NULL, NULL, "New description."},
    {"label", "KEY=VALUE", NULL, NULL, "Replace all labels by these; repeat for several."},
    {"clear-labels", NULL, NULL, NULL, "Remove every label."},
    {"etag", "ETAG", NULL, NULL, "Only if unchanged since read with this etag (else ABORTED)."},
};

static const cli_flag host_drain_flags[] = {
    {"mode", "MODE", NULL, NULL,
     "live-migrate (default), cold-migrate (stop, move, start) or stop (nothing moves)."},
    {"target-host", "HOST", NULL, NULL, "A destination for the VMs; repeat (default: any)."},
    {"stop-timeout", "DURATION", NULL, NULL,
     "Graceful shutdown time per VM before it is powered off (default 60s)."},
    WAIT_FLAGS,
};

static const cli_flag host_deregister_flags[] = {
    {"etag", "ETAG", NULL, NULL, "Only if unchanged since read with this etag (else ABORTED)."},
    {"force", NULL, NULL, NULL,
     "Even with VMs left on it (they go to state ERROR without a host; the host must be dead)."},
    WAIT_FLAGS,
};

static const cli_flag vm_create_flags[] = {
    RES_PROJECT_FLAG,
    {"vcpus", "N", NULL, NULL, "Virtual CPUs, 1-256 (required)."},
    {"memory-mib", "N", NULL, NULL, "Memory in MiB, at least 64 (required)."},
    {"max-vcpus", "N", NULL, NULL, "Upper bound for live vCPU growth (default: --vcpus)."},
    {"max-memory-mib", "N", NULL, NULL, "Upper bound for live memory growth (default: memory)."},
    {"description", "TEXT", NULL, NULL, "Free-form description."},
    {"label", "KEY=VALUE", NULL, NULL, "A label; repeat for several."},
    {"disk", "VOLUME", NULL, NULL, "Attach an existing volume (id or full name); repeat."},
    {"new-disk", "GIB", NULL, NULL, "Create a blank volume of this size as a disk; repeat."},
    {"nic", "NETWORK", NULL, NULL,
     "A network interface on this network (id or full name); repeat."},
    {"host", "HOST", NULL, NULL, "Pin the VM to this host (default: the scheduler chooses)."},
    {"machine-type", "TYPE", NULL, NULL, "libvirt machine type, e.g. q35 (default: the host's)."},
    {"firmware", "FIRMWARE", NULL, NULL, "bios (default) or uefi."},
    {"user-data-file", "FILE", NULL, NULL, "Cloud-init user data (at most 64 KiB)."},
    {"start", NULL, NULL, NULL, "Start the VM once created."},
    {"validate-only", NULL, NULL, NULL, "Check the request (quota, placement); create nothing."},
    WAIT_FLAGS,
};

static const cli_flag vm_update_flags[] = {
    RES_PROJECT_FLAG,
    {"description", "TEXT", NULL, NULL, "New description."},
    {"label", "KEY=VALUE", NULL, NULL, "Replace all labels by these; repeat for several."},
    {"clear-labels", NULL, NULL, NULL, "Remove every label."},
    {"pin-host", "HOST", NULL, NULL,
     "Replace the placement rules by a pin to this host (applies at the next placement)."},
    {"unpin", NULL, NULL, NULL, "Remove every placement rule."},
    {"etag", "ETAG", NULL, NULL, "Only if unchanged since read with this etag (else ABORTED)."},
};

static const cli_flag vm_delete_flags[] = {
    RES_PROJECT_FLAG,
    {"etag", "ETAG", NULL, NULL, "Only if unchanged since read with this etag (else ABORTED)."},
    {"delete-volumes", NULL, NULL, NULL, "Also delete its volumes (default: detach and keep)."},
    {"force", NULL, NULL, NULL, "Even if running (powered off first) or in state UNKNOWN."},
    WAIT_FLAGS,
};

static const cli_flag vm_op_flags[] = {RES_PROJECT_FLAG, WAIT_FLAGS};

static const cli_flag vm_stop_flags[] = {
    RES_PROJECT_FLAG,
    {"force", NULL, NULL, NULL, "Power off at once, like pulling the plug."},
    {"stop-timeout", "DURATION", NULL, NULL,
     "How long the guest gets to shut down after the ACPI request (default 60s)."},
    {"force-on-timeout", NULL, NULL, NULL, "Power off if the guest has not shut down in time."},
    WAIT_FLAGS,
};

static const cli_flag vm_reboot_flags[] = {
    RES_PROJECT_FLAG,
    {"force", NULL, NULL, NULL, "Hard reset instead of asking the guest."},
    WAIT_FLAGS,
};

static const cli_flag vm_resize_flags[] = {
    RES_PROJECT_FLAG,
    {"vcpus", "N", NULL, NULL, "New number of virtual CPUs."},
    {"memory-mib", "N", NULL, NULL, "New memory size in MiB."},
    {"max-vcpus", "N", NULL, NULL, "New vCPU upper bound (stopped VMs)."},
    {"max-memory-mib", "N", NULL, NULL, "New memory upper bound (stopped VMs)."},
    {"live", NULL, NULL, NULL, "Resize a running VM (within its upper bounds)."},
    WAIT_FLAGS,
};

static const cli_flag vm_migrate_flags[] = {
    RES_PROJECT_FLAG,
    {"target-host", "HOST", NULL, NULL, "The destination (default: the scheduler chooses)."},
    {"live", NULL, NULL, NULL, "Keep a running VM running during the move."},
    {"copy-storage", NULL, NULL, NULL, "Also copy disks that are not on shared storage."},
    WAIT_FLAGS,
};

static const cli_flag vm_clone_flags[] = {
    RES_PROJECT_FLAG,
    {"linked", NULL, NULL, NULL, "qcow2 overlays on the source's disks instead of full copies."},
    {"description", "TEXT", NULL, NULL, "The clone's description (default: the source's)."},
    {"label", "KEY=VALUE", NULL, NULL, "The clone's labels (default: the source's); repeat."},
    {"start", NULL, NULL, NULL, "Start the clone once created."},
    WAIT_FLAGS,
};

static const cli_flag snapshot_create_flags[] = {
    RES_PROJECT_FLAG,
    {"description", "TEXT", NULL, NULL, "Free-form description."},
    {"label", "KEY=VALUE", NULL, NULL, "A label; repeat for several."},
    {"include-memory", NULL, NULL, NULL, "Capture a running VM's memory too."},
    {"quiesce", NULL, NULL, NULL, "Freeze guest file systems (needs the QEMU guest agent)."},
    WAIT_FLAGS,
};

static const cli_flag snapshot_delete_flags[] = {
    RES_PROJECT_FLAG,
    {"etag", "ETAG", NULL, NULL, "Only if unchanged since read with this etag (else ABORTED)."},
    {"delete-children", NULL, NULL, NULL, "Also delete the snapshots taken on top of it."},
    WAIT_FLAGS,
};

static const cli_flag attach_volume_flags[] = {
    RES_PROJECT_FLAG,
    {"bus", "BUS", NULL, NULL, "virtio (default), scsi or sata (not hot-pluggable)."},
    {"boot-index", "N", NULL, NULL, "Position in the boot order (0: not bootable)."},
    {"read-only", NULL, NULL, NULL, "Present the disk read-only."},
    WAIT_FLAGS,
};

static const cli_flag attach_nic_flags[] = {
    RES_PROJECT_FLAG,
    {"mac", "MAC", NULL, NULL, "MAC address (default: generated under 52:54:00)."},
    {"model", "MODEL", NULL, NULL, "virtio (default) or e1000."},
    {"boot-index", "N", NULL, NULL, "Position in the boot order (0: not bootable)."},
    WAIT_FLAGS,
};

static const cli_flag op_wait_flags[] = {
    RES_PROJECT_FLAG,
    {"wait-timeout", "DURATION", NULL, "10m", "How long to wait (90s, 10m, 1h)."},
};

static const cli_flag events_flags[] = {
    SCOPED_PROJECT_FLAG,
    {"system", NULL, NULL, NULL,
     "Every event, with hosts and system operations (system administrators)."},
    {"type", "TYPE", NULL, NULL,
     "Only this event type, e.g. vm-state-changed, operation-done; repeat or comma-separate."},
    {"resource", "NAME", NULL, NULL,
     "Only events about this resource and its children (a VM id, or a full name); repeat."},
    {"resource-type", "TYPE", NULL, NULL, "Only resources of this type, e.g. Vm, Host; repeat."},
    {"after", "SEQ", NULL, NULL, "Replay the retained events after this sequence first."},
    {"follow", NULL, NULL, NULL,
     "Keep printing live events; reconnect and resume after transient failures."},
    {"heartbeats", NULL, NULL, NULL, "Print heartbeats (they carry the head sequence) too."},
    {"json", NULL, NULL, NULL, "One JSON document per event (same as --output json)."},
};

/* ---- flags of the storage and network commands (pool, volume, network) ---- */

static const cli_flag pool_list_flags[] = {
    {"host", "HOST", NULL, NULL, "Only this host's pools (default: every host)."},
    RES_LIST_FLAGS,
};

static const cli_flag pool_flags[] = {
    {"host", "HOST", NULL, NULL, "The pool's host, when POOL is given as a bare id."},
};

static const cli_flag pool_create_flags[] = {
    {"host", "HOST", NULL, NULL, "The host to create the pool on, when POOL is a bare id."},
    {"type", "TYPE", NULL, NULL, "dir, logical (LVM volume group) or netfs (NFS) (required)."},
    {"target-path", "PATH", NULL, NULL,
     "Where volumes appear on the host (required for dir and netfs)."},
    {"source-device", "DEVICE", NULL, NULL,
     "logical: a block device for the new volume group, e.g. /dev/sdb; repeat."},
    {"source-host", "HOST", NULL, NULL, "netfs: the NFS server (required for netfs)."},
    {"source-export", "PATH", NULL, NULL, "netfs: the exported directory (required for netfs)."},
    {"autostart", NULL, NULL, NULL, "Start the pool when the host boots."},
    {"description", "TEXT", NULL, NULL, "Free-form description."},
    {"label", "KEY=VALUE", NULL, NULL, "A label; repeat for several."},
    WAIT_FLAGS,
};

static const cli_flag pool_delete_flags[] = {
    {"host", "HOST", NULL, NULL, "The pool's host, when POOL is given as a bare id."},
    {"etag", "ETAG", NULL, NULL, "Only if unchanged since read with this etag (else ABORTED)."},
    {"delete-storage", NULL, NULL, NULL,
     "Also remove the directory (dir) or volume group (logical), files not made by NovaCron "
     "included."},
    WAIT_FLAGS,
};

static const cli_flag volume_create_flags[] = {
    RES_PROJECT_FLAG,
    {"pool", "POOL", NULL, NULL, "The pool: HOST/POOL or hosts/HOST/pools/POOL (required)."},
    {"size", "SIZE", NULL, NULL,
     "Virtual size: bytes, or with a suffix like 512MiB or 20GiB; whole MiB (required unless "
     "--from-volume or --from-image)."},
    {"format", "FORMAT", NULL, NULL, "qcow2 (default) or raw (always raw on logical pools)."},
    {"from-volume", "VOLUME", NULL, NULL, "Copy this volume of the project (id or full name)."},
    {"from-image", "PATH|URL", NULL, NULL,
     "Import a qcow2 or raw image: a path on the pool's host under the server's "
     "--storage-image-dirs, or an http(s) URL under its --storage-image-urls."},
    {"description", "TEXT", NULL, NULL, "Free-form description."},
    {"label", "KEY=VALUE", NULL, NULL, "A label; repeat for several."},
    WAIT_FLAGS,
};

static const cli_flag volume_resize_flags[] = {
    RES_PROJECT_FLAG,
    {"size", "SIZE", NULL, NULL, "The new virtual size, e.g. 40GiB (required)."},
    {"allow-shrink", NULL, NULL, NULL,
     "Permit a smaller size (detached volumes only; data past the new end is lost)."},
    {"etag", "ETAG", NULL, NULL, "Only if unchanged since read with this etag (else ABORTED)."},
    WAIT_FLAGS,
};

static const cli_flag volume_clone_flags[] = {
    RES_PROJECT_FLAG,
    {"pool", "POOL", NULL, NULL, "The copy's pool, HOST/POOL (default: the source's)."},
    {"label", "KEY=VALUE", NULL, NULL, "The copy's labels (default: the source's); repeat."},
    WAIT_FLAGS,
};

static const cli_flag volume_delete_flags[] = {
    RES_PROJECT_FLAG,
    {"etag", "ETAG", NULL, NULL, "Only if unchanged since read with this etag (else ABORTED)."},
    {"wipe", NULL, NULL, NULL, "Overwrite the data with zeros before removing it (slow)."},
    WAIT_FLAGS,
};

static const cli_flag network_create_flags[] = {
    RES_PROJECT_FLAG,
    {"host", "HOST", NULL, NULL, "The host the network lives on (required)."},
    {"mode", "MODE", NULL, NULL, "nat, isolated, routed or bridge (required)."},
    {"bridge", "BRIDGE", NULL, NULL, "bridge mode: the existing host bridge to join, e.g. br0."},
    {"cidr", "CIDR", NULL, NULL,
     "IPv4 subnet, e.g. 192.168.100.0/24 (required unless bridge mode)."},
    {"gateway", "IP", NULL, NULL, "The host's address on it (default: the first usable one)."},
    {"ipv6-cidr", "CIDR", NULL, NULL, "IPv6 subnet with prefix length 64, e.g. fd00:1::/64."},
    {"dhcp-start", "IP", NULL, NULL, "First address of the DHCP range (with --dhcp-end)."},
    {"dhcp-end", "IP", NULL, NULL, "Last address of the DHCP range (with --dhcp-start)."},
    {"vlan", "ID", NULL, NULL,
     "802.1Q tag 1-4094; the server refuses it for now (it cannot tell an Open vSwitch "
     "bridge)."},
    {"mtu", "BYTES", NULL, NULL, "MTU, 576-9000 (default 1500)."},
    {"autostart", NULL, NULL, NULL, "Start the network when the host boots."},
    {"reservation", "MAC=IP[,HOSTNAME]", NULL, NULL, "A fixed DHCP assignment; repeat."},
    {"description", "TEXT", NULL, NULL, "Free-form description."},
    {"label", "KEY=VALUE", NULL, NULL, "A label; repeat for several."},
    WAIT_FLAGS,
};

static const cli_flag network_update_flags[] = {
    RES_PROJECT_FLAG,
    {"description", "TEXT", NULL, NULL, "New description."},
    {"label", "KEY=VALUE", NULL, NULL, "Replace all labels by these; repeat for several."},
    {"clear-labels", NULL, NULL, NULL, "Remove every label."},
    {"autostart", NULL, NULL, NULL, "Start the network when the host boots."},
    {"no-autostart", NULL, NULL, NULL, "Do not start it when the host boots."},
    {"mtu", "BYTES", NULL, NULL, "New MTU, 576-9000 (0: the default)."},
    {"dhcp-start", "IP", NULL, NULL,
     "New first DHCP address (\"\" with --dhcp-end \"\": no DHCP)."},
    {"dhcp-end", "IP", NULL, NULL, "New last DHCP address."},
    {"etag", "ETAG", NULL, NULL, "Only if unchanged since read with this etag (else ABORTED)."},
    WAIT_FLAGS,
};

static const cli_flag network_etag_flags[] = {
    RES_PROJECT_FLAG,
    {"etag", "ETAG", NULL, NULL, "Only if unchanged since read with this etag (else ABORTED)."},
    WAIT_FLAGS,
};

/* ---- groups ---- */

static const cli_command user_commands[] = {
    {"create", "USERNAME", "Create a user (system administrators).",
     "USERNAME: 1-63 characters of [a-z0-9-], starting with a letter. The password (12-1024\n"
     "bytes) is asked twice on the terminal, or read from stdin with --password-stdin.",
     FLAGS(user_create_flags), 1, 1, cmd_user_create, NO_SUBCOMMANDS},
    {"get", "USERNAME", "Show a user.", NULL, NO_FLAGS, 1, 1, cmd_user_get, NO_SUBCOMMANDS},
    {"list", NULL, "List users (all for system administrators, else yourself).",
     "Filter over username, email, disabled and system_admin, e.g.\n"
     "  --filter 'disabled = false AND username = \"ops-*\"'",
     FLAGS(list_flags), 0, 0, cmd_user_list, NO_SUBCOMMANDS},
    {"update", "USERNAME", "Change a user's profile or flags.",
     "Only the fields given change. --disable, --enable, --system-admin and\n"
     "--no-system-admin need a system administrator.",
     FLAGS(user_update_flags), 1, 1, cmd_user_update, NO_SUBCOMMANDS},
    {"delete", "USERNAME", "Delete a user with their sessions and role bindings.", NULL,
     FLAGS(etag_flags), 1, 1, cmd_user_delete, NO_SUBCOMMANDS},
    {"passwd", "[USERNAME]", "Change your password, or reset another user's (administrators).",
     "Without USERNAME, your own. Changing your own asks for the current password; the\n"
     "new one is asked twice. Your other sessions are revoked.",
     FLAGS(passwd_flags), 0, 1, cmd_user_passwd, NO_SUBCOMMANDS},
};

static const cli_command project_commands[] = {
    {"create", "PROJECT", "Create a project (system administrators).",
     "PROJECT: 1-63 characters of [a-z0-9-], starting with a letter.", FLAGS(project_create_flags),
     1, 1, cmd_project_create, NO_SUBCOMMANDS},
    {"get", "PROJECT", "Show a project.", NULL, NO_FLAGS, 1, 1, cmd_project_get, NO_SUBCOMMANDS},
    {"list", NULL, "List the projects you have a role on (all for administrators).",
     "Filter over display_name and labels.KEY, e.g. --filter 'labels.team = \"web\"'.",
     FLAGS(list_flags), 0, 0, cmd_project_list, NO_SUBCOMMANDS},
    {"update", "PROJECT", "Change a project's display name, description or labels.",
     "Only the fields given change; --label replaces the whole label set.",
     FLAGS(project_update_flags), 1, 1, cmd_project_update, NO_SUBCOMMANDS},
    {"delete", "PROJECT", "Delete an empty project (system administrators).", NULL,
     FLAGS(etag_flags), 1, 1, cmd_project_delete, NO_SUBCOMMANDS},
};

static const cli_command role_commands[] = {
    {"grant", "USER ROLE", "Grant USER a ROLE (viewer, operator, admin) on the project.",
     "A user has at most one binding per project: revoke it to change the role.",
     FLAGS(role_grant_flags), 2, 2, cmd_role_grant, NO_SUBCOMMANDS},
    {"list", NULL, "List the project's role bindings.",
     "Filter over user and role, e.g. --filter 'role = ROLE_ADMIN'.", FLAGS(role_list_flags), 0, 0,
     cmd_role_list, NO_SUBCOMMANDS},
    {"revoke", "BINDING", "Remove a role binding (its id, usually the username, or full name).",
     NULL, FLAGS(project_etag_flags), 1, 1, cmd_role_revoke, NO_SUBCOMMANDS},
};

static const cli_command apikey_commands[] = {
    {"create", "KEY", "Create an API key; its secret is shown this once.",
     "KEY: 1-63 characters of [a-z0-9-], starting with a letter. Use the secret with\n"
     "--api-key-file FILE or the NOVACRON_API_KEY environment variable.",
     FLAGS(apikey_create_flags), 1, 1, cmd_apikey_create, NO_SUBCOMMANDS},
    {"list", NULL, "List the project's API keys (never their secrets).",
     "Filter over state, role and creator, e.g. --filter 'state = STATE_ACTIVE'.",
     FLAGS(project_list_flags), 0, 0, cmd_apikey_list, NO_SUBCOMMANDS},
    {"revoke", "KEY", "Revoke an API key immediately and for good.", NULL,
     FLAGS(project_etag_flags), 1, 1, cmd_apikey_revoke, NO_SUBCOMMANDS},
};

static const cli_command quota_commands[] = {
    {"get", "[PROJECT]", "Show a project's limits and usage.", NULL, FLAGS(project_flags), 0, 1,
     cmd_quota_get, NO_SUBCOMMANDS},
    {"set", "[PROJECT]", "Change a project's limits (system administrators).",
     "Only the limits given change; \"unlimited\" removes one. Example:\n"
     "  novactl quota set default --vcpus 64 --memory-mib 131072 --vms 20 --volume-gib 2000",
     FLAGS(quota_set_flags), 0, 1, cmd_quota_set, NO_SUBCOMMANDS},
};

static const cli_command audit_commands[] = {
    {"list", NULL, "List audit events, newest first.",
     "Filter over time, principal, method, resource, result_code and request_id, e.g.\n"
     "  --filter 'time >= \"2024-05-01T00:00:00Z\" AND result_code != 0'",
     FLAGS(audit_list_flags), 0, 0, cmd_audit_list, NO_SUBCOMMANDS},
};

static const cli_command session_commands[] = {
    {"list", "[USER]", "List your login sessions (or USER's; \"-\" for everyone's).",
     "Filter over state and create_time, e.g. --filter 'state = STATE_ACTIVE'.", FLAGS(list_flags),
     0, 1, cmd_session_list, NO_SUBCOMMANDS},
    {"revoke", "SESSION", "Revoke a session (users/USER/sessions/ID).", NULL, NO_FLAGS, 1, 1,
     cmd_session_revoke, NO_SUBCOMMANDS},
};

static const cli_command host_commands[] = {
    {"list", NULL, "List hypervisor hosts.",
     "Filter over name, state, cordoned, hypervisor_type, arch, vm_count and labels.KEY, e.g.\n"
     "  --filter 'state = STATE_READY AND cordoned = false'",
     FLAGS(list_flags), 0, 0, cmd_host_list, NO_SUBCOMMANDS},
    {"get", "HOST", "Show a host.", NULL, NO_FLAGS, 1, 1, cmd_host_get, NO_SUBCOMMANDS},
    {"register", "HOST", "Register a libvirt host (system administrators).",
     "HOST: 1-63 characters of [a-z0-9-], starting with a letter. Waits for the\n"
     "registration and shows the host, unless --no-wait.",
     FLAGS(host_register_flags), 1, 1, cmd_host_register, NO_SUBCOMMANDS},
    {"update", "HOST", "Change a host's description or labels.", NULL, FLAGS(host_update_flags), 1,
     1, cmd_host_update, NO_SUBCOMMANDS},
    {"cordon", "HOST", "Place no new VMs on a host (its VMs keep running).", NULL,
     FLAGS(etag_flags), 1, 1, cmd_host_cordon, NO_SUBCOMMANDS},
    {"uncordon", "HOST", "Make a cordoned host schedulable again.", NULL, FLAGS(etag_flags), 1, 1,
     cmd_host_uncordon, NO_SUBCOMMANDS},
    {"drain", "HOST", "Cordon a host and move or stop its VMs.",
     "Cancel a drain with 'novactl op cancel OPERATION'. The host stays cordoned.",
     FLAGS(host_drain_flags), 1, 1, cmd_host_drain, NO_SUBCOMMANDS},
    {"deregister", "HOST", "Remove a host from NovaCron.", NULL, FLAGS(host_deregister_flags), 1, 1,
     cmd_host_deregister, NO_SUBCOMMANDS},
};

static const cli_command snapshot_commands[] = {
    {"create", "VM SNAPSHOT", "Take a snapshot of a VM.",
     "SNAPSHOT: 1-63 characters of [a-z0-9-], starting with a letter. Disks must be qcow2.",
     FLAGS(snapshot_create_flags), 2, 2, cmd_vm_snapshot_create, NO_SUBCOMMANDS},
    {"list", "VM", "List a VM's snapshots.", NULL, FLAGS(project_list_flags), 1, 1,
     cmd_vm_snapshot_list, NO_SUBCOMMANDS},
    {"get", "VM SNAPSHOT", "Show a snapshot (or give its full name alone).", NULL,
     FLAGS(project_flags), 1, 2, cmd_vm_snapshot_get, NO_SUBCOMMANDS},
    {"revert", "VM SNAPSHOT", "Return a VM to a snapshot (later changes are lost).", NULL,
     FLAGS(vm_op_flags), 1, 2, cmd_vm_snapshot_revert, NO_SUBCOMMANDS},
    {"delete", "VM SNAPSHOT", "Delete a snapshot.", NULL, FLAGS(snapshot_delete_flags), 1, 2,
     cmd_vm_snapshot_delete, NO_SUBCOMMANDS},
};

static const cli_command vm_commands[] = {
    {"list", NULL, "List the VMs of a project.",
     "Filter over name, state, host, vcpus, memory_mib, create_time, update_time and\n"
     "labels.KEY, e.g. --filter 'state = STATE_RUNNING AND labels.env = \"prod\"'.",
     FLAGS(scoped_list_flags), 0, 0, cmd_vm_list, NO_SUBCOMMANDS},
    {"get", "VM", "Show a VM.", NULL, FLAGS(project_flags), 1, 1, cmd_vm_get, NO_SUBCOMMANDS},
    {"create", "VM", "Create a VM.",
     "VM: 1-63 characters of [a-z0-9-], starting with a letter. Example:\n"
     "  novactl vm create web-1 --vcpus 2 --memory-mib 2048 --new-disk 20 --nic lan --start\n"
     "Waits for the VM to be created (and started with --start), unless --no-wait.",
     FLAGS(vm_create_flags), 1, 1, cmd_vm_create, NO_SUBCOMMANDS},
    {"update", "VM", "Change a VM's description, labels or placement.", NULL,
     FLAGS(vm_update_flags), 1, 1, cmd_vm_update, NO_SUBCOMMANDS},
    {"delete", "VM", "Delete a stopped VM (its volumes are kept unless --delete-volumes).", NULL,
     FLAGS(vm_delete_flags), 1, 1, cmd_vm_delete, NO_SUBCOMMANDS},
    {"start", "VM", "Boot a stopped VM.", NULL, FLAGS(vm_op_flags), 1, 1, cmd_vm_start,
     NO_SUBCOMMANDS},
    {"stop", "VM", "Shut a VM down (gracefully unless --force).", NULL, FLAGS(vm_stop_flags), 1, 1,
     cmd_vm_stop, NO_SUBCOMMANDS},
    {"reboot", "VM", "Reboot a running VM.", NULL, FLAGS(vm_reboot_flags), 1, 1, cmd_vm_reboot,
     NO_SUBCOMMANDS},
    {"pause", "VM", "Suspend a running VM's vCPUs.", NULL, FLAGS(vm_op_flags), 1, 1, cmd_vm_pause,
     NO_SUBCOMMANDS},
    {"resume", "VM", "Resume a paused VM.", NULL, FLAGS(vm_op_flags), 1, 1, cmd_vm_resume,
     NO_SUBCOMMANDS},
    {"resize", "VM", "Change vCPUs and memory (stopped, or running with --live).", NULL,
     FLAGS(vm_resize_flags), 1, 1, cmd_vm_resize, NO_SUBCOMMANDS},
    {"migrate", "VM", "Move a VM to another host.", NULL, FLAGS(vm_migrate_flags), 1, 1,
     cmd_vm_migrate, NO_SUBCOMMANDS},
    {"clone", "VM NEW_VM", "Create a new VM from a stopped one.", NULL, FLAGS(vm_clone_flags), 2, 2,
     cmd_vm_clone, NO_SUBCOMMANDS},
    {"stats", "VM", "Sample a running VM's CPU, memory, disk and network counters.", NULL,
     FLAGS(project_flags), 1, 1, cmd_vm_stats, NO_SUBCOMMANDS},
    {"snapshot", NULL, "Manage VM snapshots: create, list, get, revert, delete.", NULL,
     SUBCOMMANDS(snapshot_commands)},
    {"attach-volume", "VM VOLUME", "Attach a volume as a disk (hot-plugged if running).", NULL,
     FLAGS(attach_volume_flags), 2, 2, cmd_vm_attach_volume, NO_SUBCOMMANDS},
    {"detach-volume", "VM VOLUME", "Detach a volume (it is kept).", NULL, FLAGS(vm_op_flags), 2, 2,
     cmd_vm_detach_volume, NO_SUBCOMMANDS},
    {"attach-nic", "VM NETWORK", "Add a network interface (hot-plugged if running).", NULL,
     FLAGS(attach_nic_flags), 2, 2, cmd_vm_attach_nic, NO_SUBCOMMANDS},
    {"detach-nic", "VM MAC", "Remove the network interface with this MAC address.", NULL,
     FLAGS(vm_op_flags), 2, 2, cmd_vm_detach_nic, NO_SUBCOMMANDS},
};

static const cli_command op_commands[] = {
    {"list", NULL, "List a project's operations, newest first.",
     "Filter over state, verb, target and done, e.g. --filter 'done = false'.",
     FLAGS(scoped_list_flags), 0, 0, cmd_op_list, NO_SUBCOMMANDS},
    {"get", "OPERATION", "Show an operation (its id in --project, or its full name).", NULL,
     FLAGS(project_flags), 1, 1, cmd_op_get, NO_SUBCOMMANDS},
    {"wait", "OPERATION", "Wait for an operation to finish and show it.",
     "Exit code 0 when it succeeded, 1 when it failed, was cancelled or is still running\n"
     "after --wait-timeout.",
     FLAGS(op_wait_flags), 1, 1, cmd_op_wait, NO_SUBCOMMANDS},
    {"cancel", "OPERATION", "Request an operation's cancellation.", NULL, FLAGS(project_flags), 1,
     1, cmd_op_cancel, NO_SUBCOMMANDS},
};

static const cli_command pool_commands[] = {
    {"list", NULL, "List storage pools (of every host, or of --host).",
     "Filter over type, state, autostart, available_bytes and labels.KEY, e.g.\n"
     "  --filter 'type = TYPE_NETFS AND available_bytes > 107374182400'",
     FLAGS(pool_list_flags), 0, 0, cmd_pool_list, NO_SUBCOMMANDS},
    {"get", "POOL", "Show a pool with its capacity.",
     "POOL: HOST/POOL, hosts/HOST/pools/POOL, or POOL with --host.", FLAGS(pool_flags), 1, 1,
     cmd_pool_get, NO_SUBCOMMANDS},
    {"create", "POOL", "Define, build and start a pool on a host (system administrators).",
     "POOL: HOST/POOL (or POOL with --host); the id is 1-63 characters of [a-z0-9-],\n"
     "starting with a letter. Examples:\n"
     "  novactl pool create default/images --type dir --target-path /var/lib/novacron/images\n"
     "  novactl pool create kvm1/vg0 --type logical --source-device /dev/sdb\n"
     "  novactl pool create kvm1/nfs --type netfs --target-path /mnt/nfs --source-host nas\n"
     "      --source-export /srv/vmstore\n"
     "Waits for the pool to be built and shows it, unless --no-wait.",
     FLAGS(pool_create_flags), 1, 1, cmd_pool_create, NO_SUBCOMMANDS},
    {"delete", "POOL", "Stop and undefine a pool without volumes (system administrators).", NULL,
     FLAGS(pool_delete_flags), 1, 1, cmd_pool_delete, NO_SUBCOMMANDS},
};

static const cli_command volume_commands[] = {
    {"list", NULL, "List the volumes of a project.",
     "Filter over state, format, pool, attachment.vm, size_bytes and labels.KEY, e.g.\n"
     "  --filter 'state = STATE_READY AND labels.tier = \"db\"'",
     FLAGS(project_list_flags), 0, 0, cmd_volume_list, NO_SUBCOMMANDS},
    {"get", "VOLUME", "Show a volume.", NULL, FLAGS(project_flags), 1, 1, cmd_volume_get,
     NO_SUBCOMMANDS},
    {"create", "VOLUME", "Create a volume: blank, a copy of a volume, or an imported image.",
     "VOLUME: 1-63 characters of [a-z0-9-], starting with a letter. Examples:\n"
     "  novactl volume create data-1 --pool default/images --size 20GiB\n"
     "  novactl volume create web-root --pool default/images --from-image /srv/images/deb.qcow2\n"
     "Waits for the volume and shows it, unless --no-wait.",
     FLAGS(volume_create_flags), 1, 1, cmd_volume_create, NO_SUBCOMMANDS},
    {"resize", "VOLUME", "Change a volume's virtual size (grow, or shrink with --allow-shrink).",
     NULL, FLAGS(volume_resize_flags), 1, 1, cmd_volume_resize, NO_SUBCOMMANDS},
    {"clone", "VOLUME NEW_VOLUME", "Copy a volume (not attached to a running VM) into a new one.",
     NULL, FLAGS(volume_clone_flags), 2, 2, cmd_volume_clone, NO_SUBCOMMANDS},
    {"delete", "VOLUME", "Delete a detached volume and its data.", NULL, FLAGS(volume_delete_flags),
     1, 1, cmd_volume_delete, NO_SUBCOMMANDS},
};

static const cli_command network_commands[] = {
    {"list", NULL, "List the networks of a project.",
     "Filter over host, mode, state, autostart and labels.KEY, e.g.\n"
     "  --filter 'host = \"hosts/kvm1\" AND mode = MODE_NAT'",
     FLAGS(project_list_flags), 0, 0, cmd_network_list, NO_SUBCOMMANDS},
    {"get", "NETWORK", "Show a network with its DHCP reservations.", NULL, FLAGS(project_flags), 1,
     1, cmd_network_get, NO_SUBCOMMANDS},
    {"create", "NETWORK", "Define and start a network on a host.",
     "NETWORK: 1-63 characters of [a-z0-9-], starting with a letter. Examples:\n"
     "  novactl network create lan --host default --mode nat --cidr 192.168.100.0/24 \\\n"
     "      --dhcp-start 192.168.100.100 --dhcp-end 192.168.100.199 \\\n"
     "      --reservation 52:54:00:00:00:10=192.168.100.10,db-1\n"
     "  novactl network create uplink --host kvm1 --mode bridge --bridge br0\n"
     "Waits for the network and shows it, unless --no-wait.",
     FLAGS(network_create_flags), 1, 1, cmd_network_create, NO_SUBCOMMANDS},
    {"update", "NETWORK", "Change a network's description, labels, autostart, MTU or DHCP range.",
     "Only the fields given change; --label replaces the whole label set. MTU and DHCP\n"
     "changes restart the network's bridge and DHCP service briefly when no running VM\n"
     "uses it; otherwise they apply at its next start (the network's state message says so).",
     FLAGS(network_update_flags), 1, 1, cmd_network_update, NO_SUBCOMMANDS},
    {"delete", "NETWORK", "Stop and undefine a network no VM is connected to.", NULL,
     FLAGS(network_etag_flags), 1, 1, cmd_network_delete, NO_SUBCOMMANDS},
    {"leases", "NETWORK", "List the DHCP leases the network's host holds now.",
     "Filter over mac, ip, hostname and reserved, e.g. --filter 'reserved = true'.",
     FLAGS(project_list_flags), 1, 1, cmd_network_leases, NO_SUBCOMMANDS},
    {"reserve", "NETWORK MAC IP [HOSTNAME]", "Add a fixed DHCP assignment MAC -> IP.",
     "MAC in lower-case colon form (52:54:00:12:34:56); IP inside the network's subnet.",
     FLAGS(network_etag_flags), 3, 4, cmd_network_reserve, NO_SUBCOMMANDS},
    {"unreserve", "NETWORK MAC", "Remove the DHCP reservation of a MAC address.",
     "A lease already handed out stays valid until it expires.", FLAGS(network_etag_flags), 2, 2,
     cmd_network_unreserve, NO_SUBCOMMANDS},
};

/* ---- the table ---- */

static const cli_command commands[] = {
    {"login", "[USERNAME]", "Log in and save the session in the credentials file.",
     "The password is read from the terminal without echo, or with --password-stdin from\n"
     "stdin; never from the command line. The session (server, user, tokens) is saved\n"
     "with mode 0600 and used by later commands; its tokens are refreshed as needed and\n"
     "saved again as they rotate.",
     FLAGS(login_flags), 0, 1, cmd_login, NO_SUBCOMMANDS},
    {"logout", NULL, "End the saved session on the server and delete the credentials file.",
     "The file is deleted even when the server cannot be reached (with a warning).", NO_FLAGS, 0, 0,
     cmd_logout, NO_SUBCOMMANDS},
    {"whoami", NULL, "Show who the server sees: user or API key, roles, session.", NULL, NO_FLAGS,
     0, 0, cmd_whoami, NO_SUBCOMMANDS},
    {"user", NULL, "Manage users: create, get, list, update, delete, passwd.", NULL,
     SUBCOMMANDS(user_commands)},
    {"project", NULL, "Manage projects: create, get, list, update, delete.", NULL,
     SUBCOMMANDS(project_commands)},
    {"role", NULL, "Manage project role bindings: grant, list, revoke.", NULL,
     SUBCOMMANDS(role_commands)},
    {"apikey", NULL, "Manage project API keys: create, list, revoke.", NULL,
     SUBCOMMANDS(apikey_commands)},
    {"quota", NULL, "Show or change project quotas: get, set.", NULL, SUBCOMMANDS(quota_commands)},
    {"audit", NULL, "Read the audit log: list.", NULL, SUBCOMMANDS(audit_commands)},
    {"session", NULL, "Manage login sessions: list, revoke.", NULL, SUBCOMMANDS(session_commands)},
    {"vm", NULL, "Manage virtual machines: create, start, stop, snapshot, ...", NULL,
     SUBCOMMANDS(vm_commands)},
    {"host", NULL, "Manage hypervisor hosts: list, get, register, cordon, drain, ...", NULL,
     SUBCOMMANDS(host_commands)},
    {"op", NULL, "Follow long-running operations: list, get, wait, cancel.", NULL,
     SUBCOMMANDS(op_commands)},
    {"pool", NULL, "Manage storage pools on hosts: list, get, create, delete.", NULL,
     SUBCOMMANDS(pool_commands)},
    {"volume", NULL, "Manage volumes: create, resize, clone, delete, ...", NULL,
     SUBCOMMANDS(volume_commands)},
    {"network", NULL, "Manage networks: create, update, leases, reserve, ...", NULL,
     SUBCOMMANDS(network_commands)},
    {"events", NULL, "Print the change feed: one line per event (--follow to keep watching).",
     "Without --follow, prints the retained events after --after SEQ up to now and exits\n"
     "(start with --heartbeats to learn the current sequence). With --follow, prints live\n"
     "events until interrupted, resuming after the last one printed when the connection\n"
     "drops. Example:\n"
     "  novactl events --follow --type vm-state-changed --resource web-1",
     FLAGS(events_flags), 0, 0, cmd_events, NO_SUBCOMMANDS},
    {"health", "[SERVICE]", "Check whether the server (or one of its services) is serving.",
     "Uses grpc.health.v1.Health. SERVICE is a full service name such as\n"
     "novacron.v1.VmService; without it the whole server is checked.\n"
     "Exit code 0 when SERVING, 3 when not, 1 when the call failed.",
     FLAGS(health_flags), 0, 1, cmd_health, NO_SUBCOMMANDS},
    {"version", NULL, "Print the versions of novactl and of the SDK (libnovacron).", NULL, NO_FLAGS,
     0, 0, cmd_version, NO_SUBCOMMANDS},
    {"help", "[COMMAND [SUBCOMMAND...]]", "Show the commands, or one command's usage.", NULL,
     NO_FLAGS, 0, 3, cmd_help, NO_SUBCOMMANDS},
};
#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

static const cli_command *find(const cli_command *table, size_t n, const char *name) {
  for (size_t i = 0; i < n; i++) {
    if (strcmp(table[i].name, name) == 0) return &table[i];
  }
  return NULL;
}

static int cmd_help(cli_ctx *ctx) {
  const cli_command *target = NULL;
  const cli_command *group = NULL;
  const cli_command *table = commands;
  size_t n = NCOMMANDS;
  char path[sizeof(ctx->name)] = "";
  /* follow the words down nested groups: "help vm snapshot create" */
  for (int i = 0; i < ctx->argc; i++) {
    size_t used = strlen(path);
    snprintf(path + used, sizeof(path) - used, "%s%s", i ? " " : "", ctx->argv[i]);
    group = target;
    target = find(table, n, ctx->argv[i]);
    if (!target) return out_usage_error("help", "unknown command \"%s\"", path);
    table = target->subcommands;
    n = target->nsubcommands;
  }
  if (target) {
    /* cli_print_help names the command it was asked about by ctx->name */
    ctx->command = target;
    ctx->group = group;
    snprintf(ctx->name, sizeof(ctx->name), "%s", path);
  }
  cli_print_help(ctx, group, target);
  return EXIT_OK;
}

/* jansson's allocator: memory is wiped before it is freed, since tokens,
 * passwords and API key secrets pass through JSON values. */
static void *json_alloc(size_t n) { return malloc(n); }

static void json_wipe_free(void *p) {
  if (!p) return;
  explicit_bzero(p, malloc_usable_size(p));
  free(p);
}

int main(int argc, char **argv) {
  /* gRPC's own log lines would repeat our error messages; GRPC_VERBOSITY
   * set by the user (e.g. debug) still wins */
  setenv("GRPC_VERBOSITY", "NONE", 0);
  json_set_alloc_funcs(json_alloc, json_wipe_free);
  return cli_main(commands, NCOMMANDS, argc, argv);
}
