/*
 * network.c - NetworkService: validation, reads, live DHCP leases and the
 * journaling of host-side work (the executors, the heartbeat refresh and
 * the restore of ephemeral hosts are in core/network_exec.c).
 *
 * A network is a row of `networks` plus a libvirt network named
 * "{project}.{network}" whose UUID is the row's uid, on the one host the
 * row names. Every change runs one transaction: replay a retried
 * request_id; lock the row; check the etag, that no other operation is in
 * progress on the network and that its state allows the change; journal
 * the Operation. The executor records the outcome in the row, so the row
 * always says what the host was told. Subnets never overlap on one host:
 * creates on a host queue on an advisory lock and compare with PostgreSQL's
 * `&&` on cidr; the executor compares with the host's own libvirt networks
 * before defining.
 *
 * Every change, even a description, goes through an operation: the proto
 * promises one, and a single path keeps "one operation per network" true.
 * Metadata-only operations finish at once without touching the host.
 */
#include <arpa/inet.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/compute_int.h"
#include "util/log.h"

#define NS(x) NOVACRON__V1__NETWORK__STATE__STATE_##x
#define NM(x) NOVACRON__V1__NETWORK__MODE__MODE_##x

/* The most reservations one network holds: dnsmasq reads them all at
 * every start, and a larger fixed plan belongs in an IPAM system. */
#define MAX_RESERVATIONS 1024

static const char *const state_names[] = {"STATE_UNSPECIFIED", "STATE_CREATING", "STATE_ACTIVE",
                                          "STATE_INACTIVE",    "STATE_ERROR",    "STATE_DELETING"};

const char *core_network_state_name(int s) {
  return s >= 0 && s <= 5 ? state_names[s] : "STATE_UNSPECIFIED";
}

static const char *const mode_names[] = {"MODE_UNSPECIFIED", "MODE_NAT", "MODE_ISOLATED",
                                         "MODE_ROUTED", "MODE_BRIDGE"};

static const char *const host_state_names[] = {
    "STATE_UNSPECIFIED", "STATE_PENDING",  "STATE_READY",        "STATE_NOT_READY",
    "STATE_UNREACHABLE", "STATE_DRAINING", "STATE_DEREGISTERING"};

/* ================= rows ================= */

/* "mac ip hostname,mac ip hostname" (NET_COLS) -> reservations. */
static void parse_reservations(core_call *call, const char *text, Novacron__V1__Network *n) {
  const char *p = text ? text : "";
  while (*p) {
    const char *end = strchr(p, ',');
    size_t len = end ? (size_t)(end - p) : strlen(p);
    char item[160];
    snprintf(item, sizeof(item), "%.*s", (int)(len < sizeof(item) ? len : sizeof(item) - 1), p);
    char *sp1 = strchr(item, ' ');
    char *sp2 = sp1 ? strchr(sp1 + 1, ' ') : NULL;
    Novacron__V1__Network__Reservation *r = core_alloc(call, sizeof(*r));
    void **slot = r && sp2 ? core_push(call, (void ***)&n->reservations, &n->n_reservations) : NULL;
    if (slot) {
      novacron__v1__network__reservation__init(r);
      *sp1 = *sp2 = '\0';
      r->mac = core_strdup(call, item);
      r->ip = core_strdup(call, sp1 + 1);
      r->hostname = core_strdup(call, sp2 + 1);
      *slot = r;
    }
    p = end ? end + 1 : p + len;
  }
}

Novacron__V1__Network *core_network_from_row(core_call *call, const PGresult *r, int i) {
  Novacron__V1__Network *n = core_alloc(call, sizeof(*n));
  if (!n) return NULL;
  novacron__v1__network__init(n);
  char name[160];
  snprintf(name, sizeof(name), "projects/%s/networks/%s", PQgetvalue(r, i, 1), PQgetvalue(r, i, 2));
  n->name = core_strdup(call, name);
  n->uid = core_strdup(call, PQgetvalue(r, i, 0));
  snprintf(name, sizeof(name), "hosts/%s", PQgetvalue(r, i, 3));
  n->host = core_strdup(call, name);
  n->mode = (Novacron__V1__Network__Mode)core_i64(r, i, 4);
  n->bridge = core_strdup(call, PQgetvalue(r, i, 5));
  n->ipv4_cidr = core_strdup(call, PQgetvalue(r, i, 6));
  n->gateway = core_strdup(call, PQgetvalue(r, i, 7));
  n->ipv6_cidr = core_strdup(call, PQgetvalue(r, i, 8));
  n->dhcp_start = core_strdup(call, PQgetvalue(r, i, 9));
  n->dhcp_end = core_strdup(call, PQgetvalue(r, i, 10));
  if (core_val(r, i, 11)) {
    n->vlan_id = core_alloc(call, sizeof(*n->vlan_id));
    if (n->vlan_id) {
      google__protobuf__int32_value__init(n->vlan_id);
      n->vlan_id->value = (int32_t)core_i64(r, i, 11);
    }
  }
  n->mtu = (int32_t)core_i64(r, i, 12);
  n->autostart = core_bool(r, i, 13);
  n->state = (Novacron__V1__Network__State)core_i64(r, i, 14);
  n->state_message = core_strdup(call, PQgetvalue(r, i, 15));
  n->description = core_strdup(call, PQgetvalue(r, i, 16));
  n->labels = core_labels_from_json(call, PQgetvalue(r, i, 17), &n->n_labels);
  n->etag = core_etag(call, core_i64(r, i, NET_C_VERSION));
  n->create_time = core_ts(call, r, i, 19);
  n->update_time = core_ts(call, r, i, 20);
  parse_reservations(call, PQgetvalue(r, i, 21), n);
  return n;
}

int core_network_load_uid(core_tx *tx, store_conn *conn, const char *uid, bool lock,
                          PGresult **res) {
  return core_q_one(tx, conn, lock ? "net_lock_uid" : "net_get_uid",
                    lock ? "SELECT " NET_COLS NET_FROM " WHERE n.id = $1::uuid FOR UPDATE OF n"
                         : "SELECT " NET_COLS NET_FROM " WHERE n.id = $1::uuid",
                    uid, "network", res);
}

static int load_network(core_tx *tx, store_conn *conn, const char *project, const char *id,
                        bool lock, PGresult **res) {
  const char *p[] = {project, id};
  int code =
      core_q(tx, conn, lock ? "net_lock" : "net_get",
             lock ? "SELECT " NET_COLS NET_FROM
                    " WHERE p.project_id = $1 AND n.network_id = $2 FOR UPDATE OF n"
                  : "SELECT " NET_COLS NET_FROM " WHERE p.project_id = $1 AND n.network_id = $2",
             2, p, res);
  if (code) return code;
  if (PQntuples(*res) == 0) {
    PQclear(*res);
    *res = NULL;
    return core_fail(tx->call, CORE_NOT_FOUND, "network projects/%s/networks/%s not found", project,
                     id);
  }
  return CORE_OK;
}

int core_network_set_state(core_tx *tx, store_conn *conn, core_op *op, const char *uid, int state,
                           const char *message, Novacron__V1__Network **out) {
  PGresult *r;
  /* the previous state, read under the row lock first */
  int code = core_network_load_uid(tx, conn, uid, true, &r);
  if (code) return code;
  int old = (int)core_i64(r, 0, 14);
  PQclear(r);
  char st[8];
  snprintf(st, sizeof(st), "%d", state);
  const char *p[] = {uid, st, message ? message : ""};
  code = core_q(tx, conn, "net_set_state",
                "UPDATE networks SET state = $2::smallint, state_message = $3, version = version + "
                "CASE WHEN state <> $2::smallint OR state_message <> $3 THEN 1 ELSE 0 END, "
                "updated_at = CASE WHEN state <> $2::smallint OR state_message <> $3 THEN now() "
                "ELSE updated_at END WHERE id = $1::uuid",
                3, p, NULL);
  if (code) return code;
  if ((code = core_network_load_uid(tx, conn, uid, false, &r))) return code;
  Novacron__V1__Network *n = core_network_from_row(tx->call, r, 0);
  char project[64];
  snprintf(project, sizeof(project), "%s", PQgetvalue(r, 0, 1));
  PQclear(r);
  if (!n) return core_fail(tx->call, CORE_INTERNAL, "out of memory");
  if (out) *out = n;
  if (old == state) return CORE_OK;
  char msg[96];
  snprintf(msg, sizeof(msg), "state %s -> %s", core_network_state_name(old) + 6,
           core_network_state_name(state) + 6);
  return core_emit(tx, conn, op, NOVACRON__V1__EVENT__TYPE__TYPE_RESOURCE_UPDATED, n->name, project,
                   msg, &n->base);
}

/* ================= addresses ================= */

static bool ip4_parse(const char *s, uint32_t *out) {
  struct in_addr a;
  if (!s || strlen(s) > 15 || inet_pton(AF_INET, s, &a) != 1) return false;
  *out = ntohl(a.s_addr);
  return true;
}

static void ip4_text(uint32_t ip, char out[16]) {
  struct in_addr a = {.s_addr = htonl(ip)};
  if (!inet_ntop(AF_INET, &a, out, 16)) out[0] = '\0';
}

static uint32_t mask4(int prefix) { return prefix <= 0 ? 0 : 0xffffffffu << (32 - prefix); }

/* "addr/len" with a decimal length without leading zeros; the address part
 * is copied into `addr` (size addrlen). */
static bool split_cidr(const char *s, char *addr, size_t addrlen, int *prefix) {
  const char *slash = s ? strchr(s, '/') : NULL;
  if (!slash || slash == s || (size_t)(slash - s) >= addrlen) return false;
  const char *p = slash + 1;
  size_t n = strlen(p);
  if (n < 1 || n > 3 || strspn(p, "0123456789") != n || (n > 1 && p[0] == '0')) return false;
  snprintf(addr, addrlen, "%.*s", (int)(slash - s), s);
  *prefix = (int)strtol(p, NULL, 10);
  return true;
}

/* An IPv4 subnet and the addresses hosts may use in it. */
typedef struct subnet {
  uint32_t net, bcast, gw;
  int prefix;
  char text[20]; /* canonical "a.b.c.d/n" */
} subnet;

static int check_cidr4(core_call *call, const char *field, const char *s, subnet *sn) {
  char addr[16];
  uint32_t ip;
  if (!split_cidr(s, addr, sizeof(addr), &sn->prefix) || !ip4_parse(addr, &ip))
    return core_fail(
        call, CORE_INVALID_ARGUMENT,
        "%s: must be an IPv4 subnet in CIDR form like 192.168.100.0/24 (got \"%.64s\")", field, s);
  if (sn->prefix < 8 || sn->prefix > 30)
    return core_fail(call, CORE_INVALID_ARGUMENT, "%s: the prefix length must be 8 to 30 (got /%d)",
                     field, sn->prefix);
  sn->net = ip & mask4(sn->prefix);
  sn->bcast = sn->net | ~mask4(sn->prefix);
  char net[16];
  ip4_text(sn->net, net);
  snprintf(sn->text, sizeof(sn->text), "%s/%d", net, sn->prefix);
  if (ip != sn->net)
    return core_fail(call, CORE_INVALID_ARGUMENT, "%s: %s has host bits set; the subnet is %s",
                     field, s, sn->text);
  return CORE_OK;
}

/* A subnet from a stored (canonical) cidr text; false if it is not one. */
static bool subnet_of(const char *cidr, const char *gateway, subnet *sn) {
  char addr[16];
  uint32_t ip;
  if (!split_cidr(cidr, addr, sizeof(addr), &sn->prefix) || !ip4_parse(addr, &ip)) return false;
  sn->net = ip & mask4(sn->prefix);
  sn->bcast = sn->net | ~mask4(sn->prefix);
  snprintf(sn->text, sizeof(sn->text), "%s", cidr);
  return ip4_parse(gateway, &sn->gw);
}

/* An address a host on `sn` may have: inside it, neither the network nor
 * the broadcast address. */
static int check_host_addr(core_call *call, const char *field, const char *s, const subnet *sn,
                           uint32_t *out) {
  if (!ip4_parse(s, out))
    return core_fail(call, CORE_INVALID_ARGUMENT,
                     "%s: must be an IPv4 address like 192.168.100.10 (got \"%.64s\")", field, s);
  if ((*out & mask4(sn->prefix)) != sn->net)
    return core_fail(call, CORE_INVALID_ARGUMENT, "%s: %s is outside the subnet %s", field, s,
                     sn->text);
  if (*out == sn->net)
    return core_fail(call, CORE_INVALID_ARGUMENT, "%s: %s is the network address of %s", field, s,
                     sn->text);
  if (*out == sn->bcast)
    return core_fail(call, CORE_INVALID_ARGUMENT, "%s: %s is the broadcast address of %s", field, s,
                     sn->text);
  return CORE_OK;
}

/* The DHCP range: both ends or neither, inside the subnet, in order, and
 * not handing out the gateway. `pfx` is "network." on create and update. */
static int check_dhcp(core_call *call, const char *pfx, const char *start, const char *end,
                      const subnet *sn) {
  bool hs = start && *start, he = end && *end;
  if (!hs && !he) return CORE_OK;
  if (hs != he)
    return core_fail(call, CORE_INVALID_ARGUMENT,
                     "%sdhcp_start and %sdhcp_end: set both (a DHCP range) or neither (no DHCP)",
                     pfx, pfx);
  char f1[40], f2[40];
  snprintf(f1, sizeof(f1), "%sdhcp_start", pfx);
  snprintf(f2, sizeof(f2), "%sdhcp_end", pfx);
  uint32_t a, b;
  int code;
  if ((code = check_host_addr(call, f1, start, sn, &a)) ||
      (code = check_host_addr(call, f2, end, sn, &b)))
    return code;
  if (b < a)
    return core_fail(call, CORE_INVALID_ARGUMENT, "%s: %s is below %s %s", f2, end, f1, start);
  if (sn->gw >= a && sn->gw <= b) {
    char gw[16];
    ip4_text(sn->gw, gw);
    return core_fail(call, CORE_INVALID_ARGUMENT,
                     "%s and %s: the range %s-%s contains the gateway %s; start it above or end "
                     "it below the gateway",
                     f1, f2, start, end, gw);
  }
  return CORE_OK;
}

/* "fd00:1::/64": the prefix length must be 64 and the host half zero. */
static int check_cidr6(core_call *call, const char *field, const char *s, char *canon,
                       size_t canonlen) {
  char addr[48];
  int prefix;
  unsigned char a[16];
  if (!split_cidr(s, addr, sizeof(addr), &prefix) || inet_pton(AF_INET6, addr, a) != 1)
    return core_fail(call, CORE_INVALID_ARGUMENT,
                     "%s: must be an IPv6 subnet in CIDR form like fd00:1::/64 (got \"%.64s\")",
                     field, s);
  if (prefix != 64)
    return core_fail(call, CORE_INVALID_ARGUMENT,
                     "%s: the prefix length must be 64 (got /%d): libvirt's DHCPv6 and router "
                     "advertisements need a /64",
                     field, prefix);
  for (int i = 8; i < 16; i++)
    if (a[i])
      return core_fail(call, CORE_INVALID_ARGUMENT,
                       "%s: %s has host bits set; the interface identifier half must be zero",
                       field, s);
  char t[INET6_ADDRSTRLEN];
  if (!inet_ntop(AF_INET6, a, t, sizeof(t)))
    return core_fail(call, CORE_INTERNAL, "cannot format an IPv6 address");
  snprintf(canon, canonlen, "%s/64", t);
  return CORE_OK;
}

/* A unicast MAC address in colon form, either case; written lower-case. */
static bool mac_norm(const char *s, char out[18]) {
  if (!s || strlen(s) != 17) return false;
  for (int i = 0; i < 17; i++) {
    char c = s[i];
    if (i % 3 == 2) {
      if (c != ':') return false;
    } else if (c >= 'A' && c <= 'F') {
      c = (char)(c - 'A' + 'a');
    } else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
      return false;
    }
    out[i] = c;
  }
  out[17] = '\0';
  if (strcmp(out, "00:00:00:00:00:00") == 0) return false;
  return (strtol(out, NULL, 16) & 1) == 0; /* not multicast */
}

/* A DNS label: 1-63 of a-z 0-9 '-', neither starting nor ending with '-'. */
static bool hostname_valid(const char *h) {
  size_t n = strlen(h);
  return n >= 1 && n <= 63 && strspn(h, "abcdefghijklmnopqrstuvwxyz0123456789-") == n &&
         h[0] != '-' && h[n - 1] != '-';
}

/* A Linux interface name that is safe everywhere it travels (libvirt XML,
 * logs): 1-15 of letters, digits, '.', '_' and '-', not "." or "..". */
static bool ifname_valid(const char *b) {
  size_t n = b ? strlen(b) : 0;
  return n >= 1 && n <= 15 &&
         strspn(b, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") == n &&
         strcmp(b, ".") != 0 && strcmp(b, "..") != 0 && b[0] != '-';
}

/* A reservation, normalized. */
typedef struct resv {
  char mac[18];
  char ip[16];
  const char *hostname;
  uint32_t addr;
} resv;

/* The syntax of a reservation; `field` is "reservation" or
 * "reservations[2]". */
static int check_resv_syntax(core_call *call, const char *field,
                             const Novacron__V1__Network__Reservation *in, resv *out) {
  if (!in) return core_fail(call, CORE_INVALID_ARGUMENT, "%s: required", field);
  if (!in->mac || !*in->mac)
    return core_fail(call, CORE_INVALID_ARGUMENT, "%s.mac: required", field);
  if (!mac_norm(in->mac, out->mac))
    return core_fail(call, CORE_INVALID_ARGUMENT,
                     "%s.mac: must be a unicast MAC address in colon form like 52:54:00:12:34:56 "
                     "(got \"%.32s\")",
                     field, in->mac);
  if (!in->ip || !*in->ip) return core_fail(call, CORE_INVALID_ARGUMENT, "%s.ip: required", field);
  if (!ip4_parse(in->ip, &out->addr))
    return core_fail(call, CORE_INVALID_ARGUMENT,
                     "%s.ip: must be an IPv4 address like 192.168.100.10 (got \"%.64s\")", field,
                     in->ip);
  ip4_text(out->addr, out->ip);
  out->hostname = in->hostname ? in->hostname : "";
  if (*out->hostname && !hostname_valid(out->hostname))
    return core_fail(call, CORE_INVALID_ARGUMENT,
                     "%s.hostname: at most 63 characters of a-z, 0-9 and '-', not starting or "
                     "ending with '-' (got \"%.64s\")",
                     field, out->hostname);
  return CORE_OK;
}

/* A reservation's address on its network: a usable address, not the
 * gateway. */
static int check_resv_addr(core_call *call, const char *field, const resv *r, const subnet *sn) {
  char f[48];
  snprintf(f, sizeof(f), "%s.ip", field);
  uint32_t a;
  int code = check_host_addr(call, f, r->ip, sn, &a);
  if (code) return code;
  if (a == sn->gw)
    return core_fail(call, CORE_INVALID_ARGUMENT, "%s: %s is the network's gateway", f, r->ip);
  return CORE_OK;
}

/* ================= CreateNetwork ================= */

/* libvirt sets no MTU on a network that joins a host bridge: the bridge
 * has its own, set by whoever manages it. */
static int bridge_mtu(core_call *call) {
  return core_fail(call, CORE_INVALID_ARGUMENT,
                   "network.mtu: MODE_BRIDGE networks use the host bridge's MTU; leave mtu 0");
}

/* A validated create request, as SQL parameters (NULL = SQL NULL). */
typedef struct net_input {
  char host[64];
  char mode[4];
  const char *bridge; /* MODE_BRIDGE: the host bridge; else NULL (generated) */
  char cidr[20], gateway[16], ipv6[64];
  const char *dhcp_start, *dhcp_end;
  char mtu[12];
  subnet sn;
  resv *res;
  size_t nres;
} net_input;

static int check_create(core_call *call, const Novacron__V1__CreateNetworkRequest *req,
                        net_input *v) {
  const Novacron__V1__Network *in = req->network;
  if (!in) return core_fail(call, CORE_INVALID_ARGUMENT, "network: required");
  if (!in->host || !*in->host)
    return core_fail(call, CORE_INVALID_ARGUMENT, "network.host: required (hosts/{host})");
  if (!core_name1(in->host, "hosts/", v->host, sizeof(v->host)))
    return core_fail(call, CORE_INVALID_ARGUMENT, "network.host: must be hosts/{host}");
  int mode = (int)in->mode;
  if (mode < NM(NAT) || mode > NM(BRIDGE))
    return core_fail(call, CORE_INVALID_ARGUMENT,
                     "network.mode: required, one of MODE_NAT, MODE_ISOLATED, MODE_ROUTED and "
                     "MODE_BRIDGE (got %d)",
                     mode);
  snprintf(v->mode, sizeof(v->mode), "%d", mode);
  const char *mname = mode_names[mode];
  if (in->vlan_id) {
    int32_t tag = in->vlan_id->value;
    if (tag < 1 || tag > 4094)
      return core_fail(call, CORE_INVALID_ARGUMENT, "network.vlan_id: must be 1 to 4094 (got %d)",
                       tag);
    if (mode != NM(BRIDGE))
      return core_fail(call, CORE_INVALID_ARGUMENT,
                       "network.vlan_id: VLAN tags are only for MODE_BRIDGE networks (this is "
                       "%s)",
                       mname);
    /* libvirt tags ports itself only on Open vSwitch, and nothing a host
     * reports through libvirt tells an OVS bridge from a Linux one, so a
     * tag could never be verified before a guest's port failed */
    return core_fail(call, CORE_INVALID_ARGUMENT,
                     "network.vlan_id: a VLAN tag needs an Open vSwitch bridge, and NovaCron "
                     "manages plain Linux bridges only; leave vlan_id unset and tag the bridge's "
                     "uplink on the host instead");
  }
  if (in->mtu != 0 && (in->mtu < 576 || in->mtu > 9000))
    return core_fail(call, CORE_INVALID_ARGUMENT,
                     "network.mtu: must be 576 to 9000, or 0 for the default (got %d)", in->mtu);
  snprintf(v->mtu, sizeof(v->mtu), "%d", in->mtu);
  if (in->mtu && mode == NM(BRIDGE)) return bridge_mtu(call);
  int code = core_check_text(call, "network.description", in->description, 1024);
  if (code) return code;
  const char *cidr = in->ipv4_cidr ? in->ipv4_cidr : "";
  const char *gw = in->gateway ? in->gateway : "";
  const char *v6 = in->ipv6_cidr ? in->ipv6_cidr : "";
  v->dhcp_start = in->dhcp_start && *in->dhcp_start ? in->dhcp_start : NULL;
  v->dhcp_end = in->dhcp_end && *in->dhcp_end ? in->dhcp_end : NULL;
  if (mode == NM(BRIDGE)) {
    if (!in->bridge || !*in->bridge)
      return core_fail(call, CORE_INVALID_ARGUMENT,
                       "network.bridge: required for MODE_BRIDGE (the existing host bridge, e.g. "
                       "br0)");
    if (!ifname_valid(in->bridge))
      return core_fail(call, CORE_INVALID_ARGUMENT,
                       "network.bridge: 1-15 characters of letters, digits, '.', '_' and '-' "
                       "(got \"%.32s\")",
                       in->bridge);
    /* joining another network's NovaCron bridge would bypass its isolation */
    if (strncmp(in->bridge, "ncbr", 4) == 0 && in->bridge[4] &&
        strspn(in->bridge + 4, "0123456789") == strlen(in->bridge + 4))
      return core_fail(call, CORE_INVALID_ARGUMENT,
                       "network.bridge: %s is the bridge of a NovaCron network; MODE_BRIDGE joins "
                       "bridges managed outside NovaCron",
                       in->bridge);
    static const char *const fields[] = {"ipv4_cidr", "gateway", "ipv6_cidr", "dhcp_start",
                                         "dhcp_end"};
    const char *vals[] = {cidr, gw, v6, v->dhcp_start ? v->dhcp_start : "",
                          v->dhcp_end ? v->dhcp_end : ""};
    for (int i = 0; i < 5; i++)
      if (*vals[i])
        return core_fail(call, CORE_INVALID_ARGUMENT,
                         "network.%s: must be empty for MODE_BRIDGE (the host bridge's "
                         "addressing is managed outside NovaCron)",
                         fields[i]);
    if (req->n_reservations)
      return core_fail(call, CORE_INVALID_ARGUMENT,
                       "reservations: MODE_BRIDGE networks have no NovaCron DHCP to reserve "
                       "addresses in");
    v->bridge = in->bridge;
    return CORE_OK;
  }
  if (!*cidr)
    return core_fail(call, CORE_INVALID_ARGUMENT,
                     "network.ipv4_cidr: required for %s (e.g. 192.168.100.0/24)", mname);
  if ((code = check_cidr4(call, "network.ipv4_cidr", cidr, &v->sn))) return code;
  snprintf(v->cidr, sizeof(v->cidr), "%s", v->sn.text);
  if (*gw) {
    if ((code = check_host_addr(call, "network.gateway", gw, &v->sn, &v->sn.gw))) return code;
  } else {
    v->sn.gw = v->sn.net + 1; /* the first usable address */
  }
  ip4_text(v->sn.gw, v->gateway);
  if (*v6 && (code = check_cidr6(call, "network.ipv6_cidr", v6, v->ipv6, sizeof(v->ipv6))))
    return code;
  if ((code = check_dhcp(call, "network.", v->dhcp_start, v->dhcp_end, &v->sn))) return code;
  if (req->n_reservations > MAX_RESERVATIONS)
    return core_fail(call, CORE_INVALID_ARGUMENT, "reservations: at most %d (got %zu)",
                     MAX_RESERVATIONS, req->n_reservations);
  v->nres = req->n_reservations;
  v->res = v->nres ? core_alloc(call, sizeof(*v->res) * v->nres) : NULL;
  if (v->nres && !v->res) return core_fail(call, CORE_INTERNAL, "out of memory");
  for (size_t i = 0; i < v->nres; i++) {
    char f[40];
    snprintf(f, sizeof(f), "reservations[%zu]", i);
    resv *r = &v->res[i];
    if ((code = check_resv_syntax(call, f, req->reservations[i], r)) ||
        (code = check_resv_addr(call, f, r, &v->sn)))
      return code;
    for (size_t k = 0; k < i; k++) {
      const resv *o = &v->res[k];
      if (strcmp(o->mac, r->mac) == 0)
        return core_fail(call, CORE_INVALID_ARGUMENT,
                         "%s.mac: %s is reserved by reservations[%zu] "
                         "too",
                         f, r->mac, k);
      if (o->addr == r->addr)
        return core_fail(call, CORE_INVALID_ARGUMENT,
                         "%s.ip: %s is reserved by reservations[%zu] "
                         "too",
                         f, r->ip, k);
      if (*r->hostname && strcmp(o->hostname, r->hostname) == 0)
        return core_fail(call, CORE_INVALID_ARGUMENT,
                         "%s.hostname: %s is reserved by reservations[%zu] too", f, r->hostname, k);
    }
  }
  return CORE_OK;
}

typedef struct create_arg {
  const Novacron__V1__CreateNetworkRequest *req;
  ProtobufCMessage *resp;
  const char *project, *labels;
  net_input *v;
  Novacron__V1__Operation **out;
} create_arg;

/* RESOURCE_EXHAUSTED when one more network would exceed the project's
 * quota. Locks the quota row, so concurrent creates in a project queue. */
static int check_quota(core_tx *tx, store_conn *conn, const char *project_uid) {
  const char *p[] = {project_uid};
  PGresult *r;
  int code = core_q(tx, conn, "quota_net_lock",
                    "SELECT q.networks, (SELECT count(*) FROM networks WHERE project = $1::uuid) "
                    "FROM quotas q WHERE q.project = $1::uuid FOR UPDATE OF q",
                    1, p, &r);
  if (code) return code;
  static const char *const what[] = {"networks"};
  static const int64_t one[] = {1};
  return core_quota_check(tx, r, what, one, 1, 1);
}

/* The host must exist and be READY; writes its uid. */
static int check_host(core_tx *tx, store_conn *conn, const char *host, char uid[40]) {
  const char *p[] = {host};
  PGresult *r;
  int code =
      core_q(tx, conn, "net_host", "SELECT id, state FROM hosts WHERE host_id = $1", 1, p, &r);
  if (code) return code;
  if (PQntuples(r) == 0) {
    PQclear(r);
    return core_fail(tx->call, CORE_NOT_FOUND, "network.host: host hosts/%s not found", host);
  }
  snprintf(uid, 40, "%s", PQgetvalue(r, 0, 0));
  int st = (int)core_i64(r, 0, 1);
  PQclear(r);
  if (st != NOVACRON__V1__HOST__STATE__STATE_READY)
    return core_fail(tx->call, CORE_FAILED_PRECONDITION,
                     "network.host: hosts/%s is %s; networks are created on READY hosts", host,
                     host_state_names[st >= 0 && st <= 6 ? st : 0]);
  return CORE_OK;
}

/* FAILED_PRECONDITION naming a network of the host whose subnet overlaps.
 * Runs under the host's advisory lock, so two creates cannot both pass. */
static int check_overlap(core_tx *tx, store_conn *conn, const char *host, const char *host_uid,
                         const net_input *v) {
  PGresult *r;
  const char *l[] = {host_uid};
  int code = core_q(tx, conn, "net_host_lock",
                    "SELECT pg_advisory_xact_lock(hashtext('nc-networks:' || $1))", 1, l, NULL);
  if (code) return code;
  const char *p[] = {host_uid, v->cidr, *v->ipv6 ? v->ipv6 : NULL};
  code = core_q(tx, conn, "net_overlap",
                "SELECT p.project_id, n.network_id, n.ipv4_cidr::text, coalesce(n.ipv6_cidr::text, "
                "''), n.ipv4_cidr && $2::cidr FROM networks n JOIN projects p ON p.id = n.project "
                "WHERE n.host = $1::uuid AND (n.ipv4_cidr && $2::cidr OR n.ipv6_cidr && $3::cidr) "
                "ORDER BY n.created_at LIMIT 1",
                3, p, &r);
  if (code) return code;
  if (PQntuples(r) == 0) {
    PQclear(r);
    return CORE_OK;
  }
  const char *proj = PQgetvalue(r, 0, 0);
  bool v4 = core_bool(r, 0, 4);
  char other[300];
  /* a network of a project the caller cannot see is neither named nor
   * described (its subnet would tell what another project runs there) */
  const core_principal *who = tx->call->who;
  if (who && core_principal_role(who, proj) > CORE_ROLE_NONE)
    snprintf(other, sizeof(other), "%s of network projects/%s/networks/%s",
             PQgetvalue(r, 0, v4 ? 2 : 3), proj, PQgetvalue(r, 0, 1));
  else
    snprintf(other, sizeof(other), "a network of another project");
  code = core_fail(tx->call, CORE_FAILED_PRECONDITION,
                   "network.%s: %s overlaps %s on hosts/%s; subnets on one host must not overlap",
                   v4 ? "ipv4_cidr" : "ipv6_cidr", v4 ? v->cidr : v->ipv6, other, host);
  PQclear(r);
  return code;
}

static int create_tx(store_conn *conn, core_tx *tx) {
  create_arg *a = tx->arg;
  const Novacron__V1__CreateNetworkRequest *req = a->req;
  const Novacron__V1__Network *in = req->network;
  net_input *v = a->v;
  bool found;
  int code = core_idem_replay(tx, conn, req->request_id, &req->base, a->resp, &found);
  if (code || found) return code;
  char puid[40], huid[40];
  if ((code = core_project_uid(tx, conn, a->project, puid))) return code;
  const char *k[] = {puid, req->network_id};
  PGresult *r;
  if ((code =
           core_q(tx, conn, "net_exists",
                  "SELECT 1 FROM networks WHERE project = $1::uuid AND network_id = $2", 2, k, &r)))
    return code;
  bool dup = PQntuples(r) > 0;
  PQclear(r);
  if (dup)
    return core_fail(tx->call, CORE_ALREADY_EXISTS,
                     "network projects/%s/networks/%s already exists", a->project, req->network_id);
  if ((code = check_host(tx, conn, v->host, huid)) || (code = check_quota(tx, conn, puid)))
    return code;
  if (!v->bridge && (code = check_overlap(tx, conn, v->host, huid, v))) return code;
  bool bridged = v->bridge != NULL;
  const char *p[] = {puid,
                     req->network_id,
                     huid,
                     v->mode,
                     v->bridge,
                     bridged ? NULL : v->cidr,
                     bridged ? NULL : v->gateway,
                     *v->ipv6 ? v->ipv6 : NULL,
                     v->dhcp_start,
                     v->dhcp_end,
                     v->mtu,
                     in->autostart ? "t" : "f",
                     in->description ? in->description : "",
                     a->labels};
  if ((code = core_q(tx, conn, "net_insert",
                     "INSERT INTO networks (project, network_id, host, mode, bridge, ipv4_cidr, "
                     "gateway, ipv6_cidr, dhcp_start, dhcp_end, mtu, autostart, description, "
                     "labels, state) VALUES ($1::uuid, $2, $3::uuid, $4::smallint, coalesce($5, "
                     "'ncbr' || nextval('network_bridge_seq')), $6::cidr, $7::inet, $8::cidr, "
                     "$9::inet, $10::inet, $11::int, $12::bool, $13, $14::jsonb, 1) RETURNING id",
                     14, p, &r)))
    return code;
  char uid[40];
  snprintf(uid, sizeof(uid), "%s", PQgetvalue(r, 0, 0));
  PQclear(r);
  for (size_t i = 0; i < v->nres; i++) {
    const char *q[] = {uid, v->res[i].mac, v->res[i].ip, v->res[i].hostname};
    if ((code = core_q(tx, conn, "net_resv_insert",
                       "INSERT INTO network_reservations (network, mac, ip, hostname) VALUES "
                       "($1::uuid, $2::macaddr, $3::inet, $4)",
                       4, q, NULL)))
      return code;
  }
  if ((code = core_network_load_uid(tx, conn, uid, false, &r))) return code;
  Novacron__V1__Network *row = core_network_from_row(tx->call, r, 0);
  PQclear(r);
  if (!row) return core_fail(tx->call, CORE_INTERNAL, "out of memory");
  if ((code = core_emit(tx, conn, NULL, NOVACRON__V1__EVENT__TYPE__TYPE_RESOURCE_CREATED, row->name,
                        a->project, "created", &row->base)))
    return code;
  core_op_new n = {.verb = "NetworkService.CreateNetwork",
                   .target = row->name,
                   .target_uid = uid,
                   .project_uid = puid,
                   .project_id = a->project,
                   .req = &req->base,
                   .request_id = req->request_id,
                   .status_message = "queued: define and start the network"};
  if ((code = core_op_enqueue(tx, conn, &n, a->out))) return code;
  return core_idem_store(tx, conn, req->request_id, &req->base, a->resp);
}

static void kick(core_compute *c) {
  core_events_kick(c->ev);
  core_compute_kick(c);
}

CORE_COMPUTE_FN(create_network, CreateNetworkRequest, CreateNetworkResponse) {
  int code = core_check_request_id(call, req->request_id);
  if (code) return code;
  char project[64];
  if (!core_name1(req->parent, "projects/", project, sizeof(project)))
    return core_fail(call, CORE_INVALID_ARGUMENT, "parent: must be projects/{project}");
  if (!core_id_valid(req->network_id))
    return core_fail(call, CORE_INVALID_ARGUMENT,
                     "network_id: 1-63 characters of a-z, 0-9 and '-', starting with a letter "
                     "(got \"%.64s\")",
                     req->network_id ? req->network_id : "");
  net_input v;
  memset(&v, 0, sizeof(v));
  if ((code = check_create(call, req, &v))) return code;
  char *labels = NULL;
  if ((code = core_labels_json(call, req->network->labels, req->network->n_labels, &labels)))
    return code;
  create_arg a = {.req = req,
                  .resp = &resp->base,
                  .project = project,
                  .labels = labels,
                  .v = &v,
                  .out = &resp->operation};
  code = core_run_tx(c->db, call, create_tx, &a);
  free(labels);
  if (code == CORE_OK) kick(c);
  return code;
}

/* ================= Get / List ================= */

static int parse_name(core_call *call, const char *field, const char *name, char project[64],
                      char id[64]) {
  if (!core_name2(name, "networks", project, 64, id, 64))
    return core_fail(call, CORE_INVALID_ARGUMENT,
                     "%s: must be projects/{project}/networks/{network}", field);
  return CORE_OK;
}

typedef struct get_arg {
  const char *project, *id;
  Novacron__V1__Network **out;
} get_arg;

static int get_tx(store_conn *conn, core_tx *tx) {
  get_arg *a = tx->arg;
  PGresult *r;
  int code = load_network(tx, conn, a->project, a->id, false, &r);
  if (code) return code;
  *a->out = core_network_from_row(tx->call, r, 0);
  PQclear(r);
  return *a->out ? CORE_OK : core_fail(tx->call, CORE_INTERNAL, "out of memory");
}

CORE_COMPUTE_FN(get_network, GetNetworkRequest, GetNetworkResponse) {
  char project[64], id[64];
  int code = parse_name(call, "name", req->name, project, id);
  if (code) return code;
  get_arg a = {.project = project, .id = id, .out = &resp->network};
  return core_run_ro(c->db, call, get_tx, &a);
}

static const lq_enum_value net_modes[] = {
    {"MODE_NAT", 1}, {"MODE_ISOLATED", 2}, {"MODE_ROUTED", 3}, {"MODE_BRIDGE", 4}};
static const lq_enum_value net_states[] = {{"STATE_CREATING", 1},
                                           {"STATE_ACTIVE", 2},
                                           {"STATE_INACTIVE", 3},
                                           {"STATE_ERROR", 4},
                                           {"STATE_DELETING", 5}};
static const lq_field net_fields[] = {
    {.name = "name",
     .column = "('projects/' || p.project_id || '/networks/' || n.network_id)",
     .type = LQ_STRING,
     .orderable = true},
    {.name = "host",
     .column = "('hosts/' || h.host_id)",
     .type = LQ_STRING,
     .filterable = true,
     .wildcard = true},
    LQ_ENUM_FIELD("mode", "n.mode", net_modes),
    LQ_ENUM_FIELD("state", "n.state", net_states),
    {.name = "autostart", .column = "n.autostart", .type = LQ_BOOL, .filterable = true},
    {.name = "labels", .column = "n.labels", .type = LQ_LABELS, .filterable = true},
    {.name = "create_time", .column = "n.created_at", .type = LQ_TIME, .orderable = true},
};
static const lq_spec net_spec = {
    net_fields, sizeof(net_fields) / sizeof(net_fields[0]), "name", "n.id", 50, 500};

CORE_LIST_ROW(net_row, Novacron__V1__ListNetworksResponse, networks, core_network_from_row)

CORE_COMPUTE_FN(list_networks, ListNetworksRequest, ListNetworksResponse) {
  char project[64];
  if (!core_name1(req->parent, "projects/", project, sizeof(project)))
    return core_fail(call, CORE_INVALID_ARGUMENT, "parent: must be projects/{project}");
  char fp[96];
  snprintf(fp, sizeof(fp), "networks|%s", req->parent);
  core_list_req l = {
      .spec = &net_spec,
      .select = "SELECT " NET_COLS ", count(*) OVER ()" NET_FROM " WHERE p.project_id = $1",
      .fixed = {project},
      .nfixed = 1,
      CORE_LIST_PAGE(req, resp),
      .fingerprint = fp,
      .ncols = NET_NCOLS,
      .row = net_row,
      .total_size = &resp->total_size};
  return core_run_ro(c->db, call, core_list_tx, &l);
}

/* ================= changes that journal an operation ================= */

typedef struct verb_arg {
  core_compute *c;
  const char *verb; /* "DeleteNetwork" */
  const char *rid, *etag;
  const ProtobufCMessage *req;
  ProtobufCMessage *resp;
  Novacron__V1__Operation **out;
  const char *queued;
  /* checks on the locked row (and the transitional change, if any) */
  int (*check)(core_tx *tx, store_conn *conn, struct verb_arg *a, const Novacron__V1__Network *n,
               const char *uid);
  char project[64], network[64];
} verb_arg;

static int verb_tx(store_conn *conn, core_tx *tx) {
  verb_arg *a = tx->arg;
  bool found;
  int code = core_idem_replay(tx, conn, a->rid, a->req, a->resp, &found);
  if (code || found) return code;
  PGresult *r;
  if ((code = load_network(tx, conn, a->project, a->network, true, &r))) return code;
  Novacron__V1__Network *n = core_network_from_row(tx->call, r, 0);
  char uid[40], puid[40];
  snprintf(uid, sizeof(uid), "%s", PQgetvalue(r, 0, 0));
  snprintf(puid, sizeof(puid), "%s", PQgetvalue(r, 0, NET_C_PROJECT_UID));
  int64_t version = core_i64(r, 0, NET_C_VERSION);
  PQclear(r);
  if (!n) return core_fail(tx->call, CORE_INTERNAL, "out of memory");
  if ((code = core_check_etag(tx->call, a->etag, version, "the network"))) return code;
  char busy[40], bverb[96];
  if ((code = core_op_active(tx, conn, uid, busy, bverb))) return code;
  if (busy[0]) return core_op_busy(tx->call, n->name, busy, bverb, a->project);
  if ((code = a->check(tx, conn, a, n, uid))) return code;
  char verb[64];
  snprintf(verb, sizeof(verb), "NetworkService.%s", a->verb);
  core_op_new o = {.verb = verb,
                   .target = n->name,
                   .target_uid = uid,
                   .project_uid = puid,
                   .project_id = a->project,
                   .req = a->req,
                   .request_id = a->rid,
                   .status_message = a->queued};
  if ((code = core_op_enqueue(tx, conn, &o, a->out))) return code;
  return core_idem_store(tx, conn, a->rid, a->req, a->resp);
}

static int run_verb(core_compute *c, core_call *call, const char *field, const char *name,
                    verb_arg *a) {
  int code = core_check_request_id(call, a->rid);
  if (code) return code;
  if ((code = parse_name(call, field, name, a->project, a->network))) return code;
  a->c = c;
  code = core_run_tx(c->db, call, verb_tx, a);
  if (code == CORE_OK) kick(c);
  return code;
}

#define VERB_INIT(V) \
  .verb = V, .rid = req->request_id, .req = &req->base, .resp = &resp->base, .out = &resp->operation

/* FAILED_PRECONDITION unless the network is defined on its host. */
static int needs_defined(core_call *call, const Novacron__V1__Network *n, const char *what) {
  if (n->state == NS(ACTIVE) || n->state == NS(INACTIVE)) return CORE_OK;
  return core_fail(call, CORE_FAILED_PRECONDITION,
                   "network %s is %s%s%s; %s needs STATE_ACTIVE or STATE_INACTIVE", n->name,
                   core_network_state_name(n->state), *n->state_message ? " (" : "",
                   *n->state_message ? n->state_message : "", what);
}

/* ---- DeleteNetwork ---- */

static int delete_check(core_tx *tx, store_conn *conn, verb_arg *a, const Novacron__V1__Network *n,
                        const char *uid) {
  (void)a;
  const char *p[] = {uid};
  PGresult *r;
  int code = core_q(tx, conn, "net_users",
                    "SELECT DISTINCT 'projects/' || p.project_id || '/vms/' || v.vm_id FROM "
                    "vm_nics x JOIN vms v ON v.id = x.vm JOIN projects p ON p.id = v.project WHERE "
                    "x.network = $1::uuid ORDER BY 1",
                    1, p, &r);
  if (code) return code;
  int users = PQntuples(r);
  if (users) {
    char list[512] = "";
    for (int i = 0; i < users && i < 3; i++) {
      size_t len = strlen(list);
      snprintf(list + len, sizeof(list) - len, "%s%s", i ? ", " : "", PQgetvalue(r, i, 0));
    }
    PQclear(r);
    return core_fail(tx->call, CORE_FAILED_PRECONDITION,
                     "network %s is in use by %d VM%s (%s%s); detach their NICs or delete the "
                     "VMs first",
                     n->name, users, users == 1 ? "" : "s", list, users > 3 ? ", ..." : "");
  }
  PQclear(r);
  /* any other state may be deleted: CREATING or DELETING without an
   * operation means one gave up, and deleting converges from there */
  return core_network_set_state(tx, conn, NULL, uid, NS(DELETING), "", NULL);
}

CORE_COMPUTE_FN(delete_network, DeleteNetworkRequest, DeleteNetworkResponse) {
  verb_arg a = {VERB_INIT("DeleteNetwork"), .etag = req->etag, .check = delete_check,
                .queued = "queued: stop and undefine the network"};
  return run_verb(c, call, "name", req->name, &a);
}

/* ---- UpdateNetwork ---- */

static const char *const update_paths[] = {"description", "labels",     "autostart",
                                           "mtu",         "dhcp_start", "dhcp_end"};

static int update_check(core_tx *tx, store_conn *conn, verb_arg *a, const Novacron__V1__Network *n,
                        const char *uid) {
  (void)conn;
  (void)uid;
  const Novacron__V1__UpdateNetworkRequest *req = (const void *)a->req;
  const Google__Protobuf__FieldMask *m = req->update_mask;
  const Novacron__V1__Network *in = req->network;
  if (n->state == NS(DELETING) || n->state == NS(CREATING))
    return core_fail(tx->call, CORE_FAILED_PRECONDITION,
                     "network %s is %s; UpdateNetwork needs a network that is not being created "
                     "or deleted",
                     n->name, core_network_state_name(n->state));
  bool host_side = core_mask_has(m, "autostart") || core_mask_has(m, "mtu") ||
                   core_mask_has(m, "dhcp_start") || core_mask_has(m, "dhcp_end");
  int code;
  if (host_side && (code = needs_defined(tx->call, n, "changing autostart, mtu or the DHCP range")))
    return code;
  if (core_mask_has(m, "mtu") && in->mtu && n->mode == NM(BRIDGE)) return bridge_mtu(tx->call);
  bool ms = core_mask_has(m, "dhcp_start"), me = core_mask_has(m, "dhcp_end");
  if (!ms && !me) return CORE_OK;
  if (n->mode == NM(BRIDGE))
    return core_fail(tx->call, CORE_INVALID_ARGUMENT,
                     "network.%s: MODE_BRIDGE networks have no NovaCron DHCP",
                     ms ? "dhcp_start" : "dhcp_end");
  subnet sn;
  if (!subnet_of(n->ipv4_cidr, n->gateway, &sn))
    return core_fail(tx->call, CORE_INTERNAL, "network %s has no valid subnet recorded", n->name);
  /* the range as it would be: the fields in the mask, the rest as stored */
  return check_dhcp(tx->call, "network.", ms ? in->dhcp_start : n->dhcp_start,
                    me ? in->dhcp_end : n->dhcp_end, &sn);
}

CORE_COMPUTE_FN(update_network, UpdateNetworkRequest, UpdateNetworkResponse) {
  const Novacron__V1__Network *in = req->network;
  if (!in) return core_fail(call, CORE_INVALID_ARGUMENT, "network: required");
  const Google__Protobuf__FieldMask *m = req->update_mask;
  if (!m || m->n_paths == 0)
    return core_fail(call, CORE_INVALID_ARGUMENT,
                     "update_mask: list the fields to change (description, labels, autostart, "
                     "mtu, dhcp_start, dhcp_end)");
  for (size_t i = 0; i < m->n_paths; i++) {
    bool ok = false;
    for (size_t k = 0; k < sizeof(update_paths) / sizeof(update_paths[0]); k++)
      ok = ok || strcmp(m->paths[i], update_paths[k]) == 0;
    if (!ok)
      return core_fail(call, CORE_INVALID_ARGUMENT,
                       "update_mask: \"%.64s\" cannot be changed (allowed: description, labels, "
                       "autostart, mtu, dhcp_start, dhcp_end)",
                       m->paths[i]);
  }
  int code;
  if ((code = core_check_text(call, "network.description", in->description, 1024))) return code;
  char *labels = NULL;
  if ((code = core_labels_json(call, in->labels, in->n_labels, &labels))) return code;
  free(labels);
  if (core_mask_has(m, "mtu") && in->mtu != 0 && (in->mtu < 576 || in->mtu > 9000))
    return core_fail(call, CORE_INVALID_ARGUMENT,
                     "network.mtu: must be 576 to 9000, or 0 for the default (got %d)", in->mtu);
  uint32_t ip;
  if (core_mask_has(m, "dhcp_start") && in->dhcp_start && *in->dhcp_start &&
      !ip4_parse(in->dhcp_start, &ip))
    return core_fail(call, CORE_INVALID_ARGUMENT,
                     "network.dhcp_start: must be an IPv4 address like 192.168.100.10 (got "
                     "\"%.64s\")",
                     in->dhcp_start);
  if (core_mask_has(m, "dhcp_end") && in->dhcp_end && *in->dhcp_end &&
      !ip4_parse(in->dhcp_end, &ip))
    return core_fail(call, CORE_INVALID_ARGUMENT,
                     "network.dhcp_end: must be an IPv4 address like 192.168.100.200 (got "
                     "\"%.64s\")",
                     in->dhcp_end);
  verb_arg a = {VERB_INIT("UpdateNetwork"), .etag = in->etag, .check = update_check,
                .queued = "queued: update"};
  return run_verb(c, call, "network.name", in->name, &a);
}

/* ---- AddReservation / RemoveReservation ---- */

static int add_check(core_tx *tx, store_conn *conn, verb_arg *a, const Novacron__V1__Network *n,
                     const char *uid) {
  const Novacron__V1__AddReservationRequest *req = (const void *)a->req;
  if (n->mode == NM(BRIDGE))
    return core_fail(tx->call, CORE_FAILED_PRECONDITION,
                     "network %s is MODE_BRIDGE: its addressing is managed outside NovaCron, so "
                     "there is no DHCP to reserve addresses in",
                     n->name);
  int code = needs_defined(tx->call, n, "AddReservation");
  if (code) return code;
  resv rv;
  subnet sn;
  if ((code = check_resv_syntax(tx->call, "reservation", req->reservation, &rv))) return code;
  if (!subnet_of(n->ipv4_cidr, n->gateway, &sn))
    return core_fail(tx->call, CORE_INTERNAL, "network %s has no valid subnet recorded", n->name);
  if ((code = check_resv_addr(tx->call, "reservation", &rv, &sn))) return code;
  for (size_t i = 0; i < n->n_reservations; i++) {
    const Novacron__V1__Network__Reservation *o = n->reservations[i];
    if (strcmp(o->mac, rv.mac) == 0)
      return core_fail(tx->call, CORE_ALREADY_EXISTS,
                       "reservation.mac: %s already has a reservation in %s (ip %s)", rv.mac,
                       n->name, o->ip);
    if (strcmp(o->ip, rv.ip) == 0)
      return core_fail(tx->call, CORE_ALREADY_EXISTS,
                       "reservation.ip: %s is already reserved in %s (for %s)", rv.ip, n->name,
                       o->mac);
    if (*rv.hostname && strcmp(o->hostname, rv.hostname) == 0)
      return core_fail(tx->call, CORE_ALREADY_EXISTS,
                       "reservation.hostname: %s is already reserved in %s (for %s)", rv.hostname,
                       n->name, o->mac);
  }
  if (n->n_reservations >= MAX_RESERVATIONS)
    return core_fail(tx->call, CORE_RESOURCE_EXHAUSTED,
                     "network %s already has %d reservations, the most one network holds", n->name,
                     MAX_RESERVATIONS);
  (void)conn;
  (void)uid;
  return CORE_OK;
}

CORE_COMPUTE_FN(add_reservation, AddReservationRequest, AddReservationResponse) {
  resv rv;
  int code = check_resv_syntax(call, "reservation", req->reservation, &rv);
  if (code) return code;
  verb_arg a = {VERB_INIT("AddReservation"), .etag = req->etag, .check = add_check,
                .queued = "queued: add the DHCP reservation"};
  return run_verb(c, call, "name", req->name, &a);
}

static int remove_check(core_tx *tx, store_conn *conn, verb_arg *a, const Novacron__V1__Network *n,
                        const char *uid) {
  (void)conn;
  (void)uid;
  const Novacron__V1__RemoveReservationRequest *req = (const void *)a->req;
  char mac[18];
  mac_norm(req->mac, mac);
  bool have = false;
  for (size_t i = 0; i < n->n_reservations && !have; i++)
    have = strcmp(n->reservations[i]->mac, mac) == 0;
  if (!have)
    return core_fail(tx->call, CORE_NOT_FOUND, "network %s has no reservation for MAC %s", n->name,
                     mac);
  return needs_defined(tx->call, n, "RemoveReservation");
}

CORE_COMPUTE_FN(remove_reservation, RemoveReservationRequest, RemoveReservationResponse) {
  char mac[18];
  if (!req->mac || !*req->mac) return core_fail(call, CORE_INVALID_ARGUMENT, "mac: required");
  if (!mac_norm(req->mac, mac))
    return core_fail(call, CORE_INVALID_ARGUMENT,
                     "mac: must be a unicast MAC address in colon form like 52:54:00:12:34:56 "
                     "(got \"%.32s\")",
                     req->mac);
  verb_arg a = {VERB_INIT("RemoveReservation"), .etag = req->etag, .check = remove_check,
                .queued = "queued: remove the DHCP reservation"};
  return run_verb(c, call, "name", req->name, &a);
}

/* ================= ListLeases ================= */

/* Leases are read live from the host, so List's SQL machinery does not
 * apply: the filter is the subset that makes sense for them, `field =
 * value` terms joined by AND, and the page token is the offset. */

enum { LF_MAC, LF_IP, LF_HOSTNAME, LF_RESERVED, LF_EXPIRE };
static const char *const lease_fields[] = {"mac", "ip", "hostname", "reserved"};

typedef struct lease_term {
  int field;
  char value[130];
  bool flag;
} lease_term;

#define MAX_LEASE_TERMS 8

static int parse_lease_filter(core_call *call, const char *f, lease_term *terms, int *nterms) {
  *nterms = 0;
  if (!f) return CORE_OK;
  if (strlen(f) > 1024) return core_fail(call, CORE_INVALID_ARGUMENT, "filter: at most 1024 bytes");
  const char *p = f;
  while (*p == ' ')
    p++;
  if (!*p) return CORE_OK;
  for (;;) {
    if (*nterms == MAX_LEASE_TERMS)
      return core_fail(call, CORE_INVALID_ARGUMENT, "filter: at most %d terms", MAX_LEASE_TERMS);
    lease_term *t = &terms[(*nterms)++];
    const char *name = p;
    while ((*p >= 'a' && *p <= 'z') || *p == '_' || *p == '.')
      p++;
    size_t nl = (size_t)(p - name);
    if (nl == 0 && !*p)
      return core_fail(call, CORE_INVALID_ARGUMENT, "filter: a term is missing after AND");
    t->field = -1;
    for (int k = 0; k < 4; k++)
      if (strlen(lease_fields[k]) == nl && strncmp(name, lease_fields[k], nl) == 0) t->field = k;
    if (t->field < 0)
      return core_fail(call, CORE_INVALID_ARGUMENT,
                       "filter: unknown field \"%.*s\" (filterable: mac, ip, hostname, reserved)",
                       (int)(nl ? (nl > 32 ? 32 : nl) : 1), nl ? name : p);
    while (*p == ' ')
      p++;
    if (*p != '=' || p[1] == '=')
      return core_fail(call, CORE_INVALID_ARGUMENT,
                       "filter: %s: only the = operator is supported for leases",
                       lease_fields[t->field]);
    p++;
    while (*p == ' ')
      p++;
    if (t->field == LF_RESERVED) {
      if (strncmp(p, "true", 4) == 0) {
        t->flag = true;
        p += 4;
      } else if (strncmp(p, "false", 5) == 0) {
        t->flag = false;
        p += 5;
      } else {
        return core_fail(call, CORE_INVALID_ARGUMENT,
                         "filter: reserved: the value must be true or false");
      }
    } else {
      if (*p != '"')
        return core_fail(call, CORE_INVALID_ARGUMENT,
                         "filter: %s: the value must be a double-quoted string",
                         lease_fields[t->field]);
      p++;
      size_t n = 0;
      for (;;) {
        if (!*p) return core_fail(call, CORE_INVALID_ARGUMENT, "filter: unterminated string");
        if (*p == '"') break;
        if (*p == '\\') {
          if (p[1] != '"' && p[1] != '\\')
            return core_fail(call, CORE_INVALID_ARGUMENT,
                             "filter: only \\\" and \\\\ are escapes in strings");
          p++;
        }
        if ((unsigned char)*p < 0x20)
          return core_fail(call, CORE_INVALID_ARGUMENT, "filter: control character in a string");
        if (n + 1 >= sizeof(t->value))
          return core_fail(call, CORE_INVALID_ARGUMENT, "filter: a value is too long");
        t->value[n++] = *p++;
      }
      t->value[n] = '\0';
      p++;
    }
    while (*p == ' ')
      p++;
    if (!*p) return CORE_OK;
    if (strncmp(p, "AND ", 4) != 0)
      return core_fail(call, CORE_INVALID_ARGUMENT,
                       "filter: expected AND between terms near \"%.16s\" (OR, NOT and "
                       "parentheses are not supported)",
                       p);
    p += 4;
    while (*p == ' ')
      p++;
  }
}

typedef struct lease_sort {
  int field; /* LF_MAC, LF_IP or LF_EXPIRE */
  bool desc;
} lease_sort;

typedef struct lease_row {
  const hv_lease *l;
  const lease_sort *sort;
  bool reserved;
  unsigned char key[17]; /* family, then the address bytes: IPv4 sorts first */
} lease_row;

static int lease_cmp(const void *x, const void *y) {
  const lease_row *a = x, *b = y;
  int c = 0;
  if (a->sort->field == LF_MAC)
    c = strcasecmp(a->l->mac, b->l->mac);
  else if (a->sort->field == LF_EXPIRE)
    c = a->l->expiry < b->l->expiry ? -1 : a->l->expiry > b->l->expiry;
  if (c == 0) c = memcmp(a->key, b->key, sizeof(a->key));
  if (c == 0) c = strcasecmp(a->l->mac, b->l->mac);
  return a->sort->desc ? -c : c;
}

static int parse_lease_order(core_call *call, const char *o, int *field, bool *desc) {
  *field = LF_IP;
  *desc = false;
  if (!o || !*o) return CORE_OK;
  char buf[32];
  if (strlen(o) >= sizeof(buf)) goto bad;
  snprintf(buf, sizeof(buf), "%s", o);
  char *sp = strchr(buf, ' ');
  if (sp) {
    *sp = '\0';
    const char *dir = sp + 1;
    if (strcmp(dir, "desc") == 0 || strcmp(dir, "DESC") == 0)
      *desc = true;
    else if (strcmp(dir, "asc") != 0 && strcmp(dir, "ASC") != 0)
      goto bad;
  }
  if (strcmp(buf, "ip") == 0)
    *field = LF_IP;
  else if (strcmp(buf, "mac") == 0)
    *field = LF_MAC;
  else if (strcmp(buf, "expire_time") == 0)
    *field = LF_EXPIRE;
  else
    goto bad;
  return CORE_OK;
bad:
  return core_fail(call, CORE_INVALID_ARGUMENT,
                   "order_by: must be ip, mac or expire_time, optionally followed by \" desc\" "
                   "(got \"%.32s\")",
                   o);
}

typedef struct lease_arg {
  const char *project, *id;
  Novacron__V1__Network *n;
  char uid[40], host[64];
  int host_state;
} lease_arg;

static int lease_tx(store_conn *conn, core_tx *tx) {
  lease_arg *a = tx->arg;
  PGresult *r;
  int code = load_network(tx, conn, a->project, a->id, false, &r);
  if (code) return code;
  a->n = core_network_from_row(tx->call, r, 0);
  snprintf(a->uid, sizeof(a->uid), "%s", PQgetvalue(r, 0, 0));
  snprintf(a->host, sizeof(a->host), "%s", PQgetvalue(r, 0, 3));
  PQclear(r);
  if (!a->n) return core_fail(tx->call, CORE_INTERNAL, "out of memory");
  if ((code = core_q_one(tx, conn, "net_host_state", "SELECT state FROM hosts WHERE host_id = $1",
                         a->host, "host", &r)))
    return code;
  a->host_state = (int)core_i64(r, 0, 0);
  PQclear(r);
  return CORE_OK;
}

CORE_COMPUTE_FN(list_leases, ListLeasesRequest, ListLeasesResponse) {
  lease_arg a = {0};
  char project[64], id[64];
  int code = parse_name(call, "parent", req->parent, project, id);
  if (code) return code;
  lease_term terms[MAX_LEASE_TERMS];
  int nterms;
  lease_sort sort;
  if ((code = parse_lease_filter(call, req->filter, terms, &nterms)) ||
      (code = parse_lease_order(call, req->order_by, &sort.field, &sort.desc)))
    return code;
  if (req->page_size < 0)
    return core_fail(call, CORE_INVALID_ARGUMENT, "page_size: must not be negative");
  int size = req->page_size == 0 ? 50 : req->page_size > 500 ? 500 : req->page_size;
  long offset = 0;
  if (req->page_token && *req->page_token) {
    size_t n = strlen(req->page_token);
    if (n > 9 || strspn(req->page_token, "0123456789") != n)
      return core_fail(call, CORE_INVALID_ARGUMENT, "page_token: malformed");
    offset = strtol(req->page_token, NULL, 10);
  }
  a.project = project;
  a.id = id;
  if ((code = core_run_ro(c->db, call, lease_tx, &a))) return code;
  if (a.n->mode == NM(BRIDGE))
    return core_fail(call, CORE_FAILED_PRECONDITION,
                     "network %s is MODE_BRIDGE: NovaCron runs no DHCP on it, so it has no leases "
                     "to list",
                     a.n->name);
  if (a.host_state == NOVACRON__V1__HOST__STATE__STATE_UNREACHABLE)
    return core_fail(call, CORE_UNAVAILABLE,
                     "hosts/%s is unreachable; the leases of %s cannot be "
                     "read",
                     a.host, a.n->name);
  if (a.n->state != NS(ACTIVE) && a.n->state != NS(INACTIVE))
    return core_fail(call, CORE_FAILED_PRECONDITION,
                     "network %s is %s; leases are read from a network defined on its host",
                     a.n->name, core_network_state_name(a.n->state));
  hv_lease *leases = NULL;
  int nl = 0;
  char err[512];
  int hc = hv_net_leases(c->hv, a.host, a.uid, &leases, &nl, err, sizeof(err));
  if (hc == HV_UNAVAILABLE) {
    /* libvirt's message names the host's address: the log gets it */
    nc_warnf("leases of %s: hosts/%s: %s", a.n->name, a.host, err);
    return core_fail(call, CORE_UNAVAILABLE,
                     "hosts/%s cannot be reached; the leases of %s cannot "
                     "be read",
                     a.host, a.n->name);
  }
  if (hc == HV_NOT_FOUND)
    return core_fail(call, CORE_FAILED_PRECONDITION, "network %s is missing on hosts/%s", a.n->name,
                     a.host);
  if (hc) return core_fail(call, hc, "reading the leases of %s failed: %s", a.n->name, err);
  lease_row *rows = nl ? calloc((size_t)nl, sizeof(*rows)) : NULL;
  if (nl && !rows) {
    free(leases);
    return core_fail(call, CORE_INTERNAL, "out of memory");
  }
  int nrows = 0;
  for (int i = 0; i < nl; i++) {
    const hv_lease *l = &leases[i];
    bool reserved = false;
    for (size_t k = 0; k < a.n->n_reservations && !reserved; k++)
      reserved = strcasecmp(a.n->reservations[k]->mac, l->mac) == 0 &&
                 strcmp(a.n->reservations[k]->ip, l->ip) == 0;
    bool match = true;
    for (int t = 0; t < nterms && match; t++) {
      const lease_term *lt = &terms[t];
      switch (lt->field) {
      case LF_MAC: match = strcasecmp(l->mac, lt->value) == 0; break;
      case LF_IP: match = strcmp(l->ip, lt->value) == 0; break;
      case LF_HOSTNAME: match = strcmp(l->hostname, lt->value) == 0; break;
      default: match = reserved == lt->flag; break;
      }
    }
    if (!match) continue;
    lease_row *row = &rows[nrows++];
    row->l = l;
    row->sort = &sort;
    row->reserved = reserved;
    if (inet_pton(AF_INET, l->ip, row->key + 1) == 1)
      row->key[0] = 4;
    else if (inet_pton(AF_INET6, l->ip, row->key + 1) == 1)
      row->key[0] = 6;
    else
      row->key[0] = 9; /* unparsable: last */
  }
  if (nrows > 1) qsort(rows, (size_t)nrows, sizeof(*rows), lease_cmp);
  code = CORE_OK;
  for (long i = offset; i < nrows && i < offset + size && code == CORE_OK; i++) {
    const hv_lease *l = rows[i].l;
    Novacron__V1__Lease *out = core_alloc(call, sizeof(*out));
    void **slot = out ? core_push(call, (void ***)&resp->leases, &resp->n_leases) : NULL;
    if (!slot) {
      code = core_fail(call, CORE_INTERNAL, "out of memory");
      break;
    }
    novacron__v1__lease__init(out);
    char mac[18];
    out->mac = core_strdup(call, mac_norm(l->mac, mac) ? mac : l->mac);
    out->ip = core_strdup(call, l->ip);
    out->hostname = core_strdup(call, l->hostname);
    out->client_id = core_strdup(call, l->client_id);
    out->expire_time = l->expiry > 0 ? core_ts_s(call, l->expiry) : NULL;
    out->reserved = rows[i].reserved;
    *slot = out;
  }
  free(rows);
  free(leases);
  if (code) return code;
  resp->total_size = nrows;
  char tok[24] = "";
  long next = offset + size;
  if (next < nrows) snprintf(tok, sizeof(tok), "%ld", next);
  resp->next_page_token = core_strdup(call, tok);
  return CORE_OK;
}
