/*
 * network.c - virtual networks of one host, known by their UUID: defined
 * from a spec and converged (redefined, started, autostarted), redefined,
 * deleted; their static DHCP hosts edited in place; their leases; and a
 * summary of every network on the host for the subnet overlap check.
 *
 * A missing network is NOT_FOUND, decided here at the lookup. The test
 * driver runs no DHCP server and keeps a single definition per network:
 * both are handled here, as hv.h documents.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

#include "hv/internal.h"

/* Finds network `uuid`: NOT_FOUND when no network has it. */
static int net_lookup(hv_conn *c, const char *uuid, virNetworkPtr *out, char *err, size_t errlen) {
  *out = NULL;
  if (!uuid || !hv_uuid_valid(uuid))
    return hv_fail(HV_INVALID_ARGUMENT, err, errlen, "network uuid: not a UUID");
  *out = virNetworkLookupByUUIDString(c->conn, uuid);
  if (*out) return HV_OK;
  bool missing = hv_virerr_code() == VIR_ERR_NO_NETWORK;
  int rc = hv_conn_fail_op(c, "looking up the network", err, errlen);
  if (missing && rc != HV_UNAVAILABLE)
    rc = hv_fail(HV_NOT_FOUND, err, errlen, "network %s not found", uuid);
  return rc;
}

/* The network's persistent definition (`config`) or running state as
 * XML; NULL with the libvirt error set. The test driver keeps a single
 * definition and rejects VIR_NETWORK_XML_INACTIVE: its one document
 * serves for both. */
static char *net_xml(hv_conn *c, virNetworkPtr net, bool config) {
  char *xml = virNetworkGetXMLDesc(net, config ? VIR_NETWORK_XML_INACTIVE : 0);
  if (!xml && config && hv_conn_is_test(c) && hv_virerr_code() == VIR_ERR_INVALID_ARG) {
    virResetLastError();
    xml = virNetworkGetXMLDesc(net, 0);
  }
  return xml;
}

/* ALREADY_EXISTS when a network other than `uuid` has `name` (libvirt
 * would only say "operation failed"). */
static int name_free(hv_conn *c, const char *name, const char *uuid, char *err, size_t errlen) {
  virNetworkPtr other = virNetworkLookupByName(c->conn, name);
  if (!other) {
    if (hv_virerr_code() != VIR_ERR_NO_NETWORK)
      return hv_conn_fail_op(c, "looking up the network name", err, errlen);
    virResetLastError();
    return HV_OK;
  }
  char other_uuid[VIR_UUID_STRING_BUFLEN] = "";
  virNetworkGetUUIDString(other, other_uuid);
  virNetworkFree(other);
  if (strcasecmp(other_uuid, uuid) == 0) return HV_OK;
  return hv_fail(HV_ALREADY_EXISTS, err, errlen, "the host already has a network named %s (%s)",
                 name, other_uuid);
}

/* Defines the spec's network: a new one, or the new persistent
 * definition of the network with its UUID (a running one keeps its
 * current setup until restarted). */
static int net_define(hv_conn *c, const hv_net_spec *spec, virNetworkPtr *out, char *err,
                      size_t errlen) {
  *out = NULL;
  char *xml = hv_network_xml(spec, err, errlen);
  if (!xml) return HV_INVALID_ARGUMENT;
  int rc = name_free(c, spec->name, spec->uuid, err, errlen);
  if (rc == HV_OK && !(*out = virNetworkDefineXML(c->conn, xml)))
    rc = hv_conn_fail_op(c, "defining the network", err, errlen);
  free(xml);
  return rc;
}

int hv_net_create(hv *h, const char *host_id, const hv_net_spec *spec, char *err, size_t errlen) {
  if (!spec) return hv_fail(HV_INVALID_ARGUMENT, err, errlen, "spec required");
  hv_conn c;
  int rc = hv_conn_get(h, host_id, &c, err, errlen);
  if (rc != HV_OK) return rc;
  virNetworkPtr net = NULL;
  rc = net_define(&c, spec, &net, err, errlen);
  int active = rc == HV_OK ? virNetworkIsActive(net) : 0;
  if (rc == HV_OK && (active < 0 || (active == 0 && virNetworkCreate(net) < 0)))
    rc = hv_conn_fail_op(&c, "starting the network", err, errlen);
  if (rc == HV_OK && virNetworkSetAutostart(net, spec->autostart ? 1 : 0) < 0)
    rc = hv_conn_fail_op(&c, "setting the network's autostart", err, errlen);
  if (net) virNetworkFree(net);
  hv_conn_put(&c);
  return rc;
}

int hv_net_redefine(hv *h, const char *host_id, const hv_net_spec *spec, bool restart, char *err,
                    size_t errlen) {
  if (!spec) return hv_fail(HV_INVALID_ARGUMENT, err, errlen, "spec required");
  hv_conn c;
  int rc = hv_conn_get(h, host_id, &c, err, errlen);
  if (rc != HV_OK) return rc;
  virNetworkPtr net = NULL, defined = NULL;
  rc = net_lookup(&c, spec->uuid, &net, err, errlen);
  if (rc == HV_OK) rc = net_define(&c, spec, &defined, err, errlen);
  int active = rc == HV_OK ? virNetworkIsActive(defined) : 0;
  if (active < 0) rc = hv_conn_fail_op(&c, "reading the network", err, errlen);
  if (rc == HV_OK && active == 1 && restart &&
      (virNetworkDestroy(defined) < 0 || virNetworkCreate(defined) < 0))
    rc = hv_conn_fail_op(&c, "restarting the network", err, errlen);
  if (rc == HV_OK && virNetworkSetAutostart(defined, spec->autostart ? 1 : 0) < 0)
    rc = hv_conn_fail_op(&c, "setting the network's autostart", err, errlen);
  if (defined) virNetworkFree(defined);
  if (net) virNetworkFree(net);
  hv_conn_put(&c);
  return rc;
}

int hv_net_delete(hv *h, const char *host_id, const char *uuid, char *err, size_t errlen) {
  hv_conn c;
  int rc = hv_conn_get(h, host_id, &c, err, errlen);
  if (rc != HV_OK) return rc;
  virNetworkPtr net = NULL;
  rc = net_lookup(&c, uuid, &net, err, errlen);
  int active = rc == HV_OK ? virNetworkIsActive(net) : 0;
  int persistent = rc == HV_OK ? virNetworkIsPersistent(net) : 0;
  if (active < 0 || persistent < 0) rc = hv_conn_fail_op(&c, "reading the network", err, errlen);
  if (rc == HV_OK && active == 1 && virNetworkDestroy(net) < 0)
    rc = hv_conn_fail_op(&c, "stopping the network", err, errlen);
  if (rc == HV_OK && persistent == 1 && virNetworkUndefine(net) < 0)
    rc = hv_conn_fail_op(&c, "undefining the network", err, errlen);
  if (net) virNetworkFree(net);
  hv_conn_put(&c);
  return rc;
}

int hv_net_info(hv *h, const char *host_id, const char *uuid, bool *active, bool *autostart,
                char bridge[16], char *err, size_t errlen) {
  if (active) *active = false;
  if (autostart) *autostart = false;
  if (bridge) bridge[0] = '\0';
  hv_conn c;
  int rc = hv_conn_get(h, host_id, &c, err, errlen);
  if (rc != HV_OK) return rc;
  virNetworkPtr net = NULL;
  rc = net_lookup(&c, uuid, &net, err, errlen);
  int is_active = 0, is_autostart = 0;
  char *xml = NULL;
  if (rc == HV_OK &&
      ((is_active = virNetworkIsActive(net)) < 0 ||
       virNetworkGetAutostart(net, &is_autostart) < 0 || !(xml = net_xml(&c, net, false))))
    rc = hv_conn_fail_op(&c, "reading the network", err, errlen);
  if (rc == HV_OK) {
    hv_xml_net parsed;
    hv_xml_net_parse(xml, &parsed);
    if (active) *active = is_active == 1;
    if (autostart) *autostart = is_autostart == 1;
    if (bridge) snprintf(bridge, 16, "%s", parsed.bridge);
  }
  free(xml);
  if (net) virNetworkFree(net);
  hv_conn_put(&c);
  return rc;
}

/* ---------------------------------------------------------------------- */
/* static DHCP hosts                                                       */

/* A network call on the static hosts: where the network has a
 * definition (persistent) and a running state (active). */
typedef struct hcall {
  hv_conn c;
  virNetworkPtr net;
  bool persistent, active;
} hcall;

static void hcall_end(hcall *n) {
  if (n->net) virNetworkFree(n->net);
  n->net = NULL;
  hv_conn_put(&n->c);
}

static int hcall_begin(hv *h, const char *host_id, const char *uuid, hcall *n, char *err,
                       size_t errlen) {
  memset(n, 0, sizeof(*n));
  int rc = hv_conn_get(h, host_id, &n->c, err, errlen);
  if (rc != HV_OK) return rc;
  rc = net_lookup(&n->c, uuid, &n->net, err, errlen);
  if (rc == HV_OK) {
    int persistent = virNetworkIsPersistent(n->net), active = virNetworkIsActive(n->net);
    if (persistent < 0 || active < 0)
      rc = hv_conn_fail_op(&n->c, "reading the network", err, errlen);
    n->persistent = persistent == 1;
    n->active = active == 1;
  }
  if (rc != HV_OK) hcall_end(n);
  return rc;
}

/* The host entry with `mac` (and, with ip, the entry holding `ip`) in
 * the network's definition (`config`) or running state. */
static int find_host(hcall *n, bool config, const char *mac, const char *ip, hv_net_host *by_mac,
                     bool *mac_found, hv_net_host *by_ip, bool *ip_found, char *err,
                     size_t errlen) {
  char *xml = net_xml(&n->c, n->net, config);
  if (!xml) return hv_conn_fail_op(&n->c, "reading the network", err, errlen);
  *mac_found = hv_xml_net_host_find(xml, mac, NULL, by_mac);
  if (ip) *ip_found = hv_xml_net_host_find(xml, NULL, ip, by_ip);
  free(xml);
  return HV_OK;
}

int hv_net_host_add(hv *h, const char *host_id, const char *uuid, const hv_net_host *host,
                    char *err, size_t errlen) {
  if (!host) return hv_fail(HV_INVALID_ARGUMENT, err, errlen, "host required");
  char *xml = hv_xml_net_host(host, err, errlen);
  if (!xml) return HV_INVALID_ARGUMENT;
  hcall n;
  int rc = hcall_begin(h, host_id, uuid, &n, err, errlen);
  if (rc != HV_OK) {
    free(xml);
    return rc;
  }
  /* Add it where it is missing; a MAC or IP reserved differently is a
   * conflict libvirt would report as "operation invalid". */
  unsigned where = 0;
  for (int i = 0; i < 2 && rc == HV_OK; i++) {
    bool config = i == 0;
    if (config ? !n.persistent : !n.active) continue;
    hv_net_host by_mac, by_ip;
    bool mac_found = false, ip_found = false;
    rc = find_host(&n, config, host->mac, host->ip, &by_mac, &mac_found, &by_ip, &ip_found, err,
                   errlen);
    if (rc != HV_OK) break;
    if (mac_found && strcmp(by_mac.ip, host->ip) == 0) continue; /* there already */
    if (mac_found)
      rc = hv_fail(HV_ALREADY_EXISTS, err, errlen, "MAC %s already has %s on the network",
                   host->mac, by_mac.ip);
    else if (ip_found)
      rc = hv_fail(HV_ALREADY_EXISTS, err, errlen, "%s is already reserved for MAC %s", host->ip,
                   by_ip.mac);
    else
      where |= config ? VIR_NETWORK_UPDATE_AFFECT_CONFIG : VIR_NETWORK_UPDATE_AFFECT_LIVE;
  }
  if (rc == HV_OK && where &&
      virNetworkUpdate(n.net, VIR_NETWORK_UPDATE_COMMAND_ADD_LAST, VIR_NETWORK_SECTION_IP_DHCP_HOST,
                       -1, xml, where) < 0)
    rc = hv_conn_fail_op(&n.c, "adding the DHCP host", err, errlen);
  free(xml);
  hcall_end(&n);
  return rc;
}

int hv_net_host_remove(hv *h, const char *host_id, const char *uuid, const char *mac, char *err,
                       size_t errlen) {
  if (!mac || !hv_mac_ok(mac))
    return hv_fail(HV_INVALID_ARGUMENT, err, errlen, "mac: not a MAC address");
  hcall n;
  int rc = hcall_begin(h, host_id, uuid, &n, err, errlen);
  if (rc != HV_OK) return rc;
  /* Remove the entry as it is written (libvirt matches every attribute
   * given) from where it is. */
  hv_net_host found[2];
  bool in[2] = {false, false};
  for (int i = 0; i < 2 && rc == HV_OK; i++) {
    bool config = i == 0;
    if (config ? n.persistent : n.active)
      rc = find_host(&n, config, mac, NULL, &found[i], &in[i], NULL, NULL, err, errlen);
  }
  /* one call when both have the same entry: the test driver keeps one
   * definition, and a second call would find nothing */
  bool same = in[0] && in[1] && strcasecmp(found[0].mac, found[1].mac) == 0 &&
              strcmp(found[0].ip, found[1].ip) == 0 &&
              strcmp(found[0].hostname, found[1].hostname) == 0;
  for (int i = 0; i < 2 && rc == HV_OK; i++) {
    if (!in[i] || (same && i == 1)) continue;
    unsigned where = i == 0 ? VIR_NETWORK_UPDATE_AFFECT_CONFIG : VIR_NETWORK_UPDATE_AFFECT_LIVE;
    if (same) where |= VIR_NETWORK_UPDATE_AFFECT_LIVE;
    char *xml = hv_xml_net_host(&found[i], err, errlen);
    if (!xml)
      rc = HV_INTERNAL;
    else if (virNetworkUpdate(n.net, VIR_NETWORK_UPDATE_COMMAND_DELETE,
                              VIR_NETWORK_SECTION_IP_DHCP_HOST, -1, xml, where) < 0)
      rc = hv_conn_fail_op(&n.c, "removing the DHCP host", err, errlen);
    free(xml);
  }
  hcall_end(&n);
  return rc;
}

/* ---------------------------------------------------------------------- */
/* leases and the host's networks                                          */

int hv_net_leases(hv *h, const char *host_id, const char *uuid, hv_lease **out, int *n, char *err,
                  size_t errlen) {
  *out = NULL;
  *n = 0;
  hv_conn c;
  int rc = hv_conn_get(h, host_id, &c, err, errlen);
  if (rc != HV_OK) return rc;
  virNetworkPtr net = NULL;
  rc = net_lookup(&c, uuid, &net, err, errlen);
  virNetworkDHCPLeasePtr *leases = NULL;
  int count = 0;
  if (rc == HV_OK && (count = virNetworkGetDHCPLeases(net, NULL, &leases, 0)) < 0) {
    count = 0;
    /* the test driver runs no DHCP server: nothing is leased */
    if (hv_virerr_unsupported() && hv_conn_is_test(&c))
      virResetLastError();
    else
      rc = hv_conn_fail_op(&c, "reading the DHCP leases", err, errlen);
  }
  hv_lease *list = NULL;
  if (rc == HV_OK && !(list = calloc((size_t)(count > 0 ? count : 1), sizeof(*list))))
    rc = hv_fail(HV_INTERNAL, err, errlen, "out of memory");
  for (int i = 0; rc == HV_OK && i < count; i++) {
    const virNetworkDHCPLease *l = leases[i];
    snprintf(list[i].mac, sizeof(list[i].mac), "%s", l->mac ? l->mac : "");
    snprintf(list[i].ip, sizeof(list[i].ip), "%s", l->ipaddr ? l->ipaddr : "");
    snprintf(list[i].hostname, sizeof(list[i].hostname), "%s", l->hostname ? l->hostname : "");
    snprintf(list[i].client_id, sizeof(list[i].client_id), "%s", l->clientid ? l->clientid : "");
    list[i].expiry = l->expirytime;
  }
  for (int i = 0; i < count; i++)
    virNetworkDHCPLeaseFree(leases[i]);
  free(leases);
  if (net) virNetworkFree(net);
  hv_conn_put(&c);
  if (rc != HV_OK) {
    free(list);
    return rc;
  }
  *out = list;
  *n = count;
  return HV_OK;
}

int hv_net_list(hv *h, const char *host_id, hv_net_summary **out, int *n, char *err,
                size_t errlen) {
  *out = NULL;
  *n = 0;
  hv_conn c;
  int rc = hv_conn_get(h, host_id, &c, err, errlen);
  if (rc != HV_OK) return rc;
  virNetworkPtr *nets = NULL;
  int count = virConnectListAllNetworks(c.conn, &nets, 0);
  if (count < 0) {
    rc = hv_conn_fail_op(&c, "listing networks", err, errlen);
    hv_conn_put(&c);
    return rc;
  }
  hv_net_summary *list = calloc((size_t)(count > 0 ? count : 1), sizeof(*list));
  if (!list) rc = hv_fail(HV_INTERNAL, err, errlen, "out of memory");
  int filled = 0;
  for (int i = 0; i < count && rc == HV_OK; i++) {
    hv_net_summary *e = &list[filled];
    char *xml = virNetworkGetXMLDesc(nets[i], 0);
    if (!xml) {
      if (hv_virerr_code() == VIR_ERR_NO_NETWORK) { /* gone meanwhile */
        virResetLastError();
        continue;
      }
      rc = hv_conn_fail_op(&c, "reading a network", err, errlen);
      break;
    }
    hv_xml_net parsed;
    hv_xml_net_parse(xml, &parsed);
    free(xml);
    const char *name = virNetworkGetName(nets[i]);
    snprintf(e->name, sizeof(e->name), "%s", name ? name : parsed.name);
    if (virNetworkGetUUIDString(nets[i], e->uuid) < 0)
      snprintf(e->uuid, sizeof(e->uuid), "%s", parsed.uuid);
    snprintf(e->ipv4, sizeof(e->ipv4), "%s", parsed.ipv4);
    e->prefix = parsed.prefix;
    snprintf(e->bridge, sizeof(e->bridge), "%s", parsed.bridge);
    filled++;
  }
  for (int i = 0; i < count; i++)
    virNetworkFree(nets[i]);
  free(nets);
  hv_conn_put(&c);
  if (rc != HV_OK) {
    free(list);
    return rc;
  }
  *out = list;
  *n = filled;
  return HV_OK;
}
