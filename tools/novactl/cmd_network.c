/*
 * cmd_network.c - "novactl network list|get|create|update|delete|leases|
 * reserve|unreserve": a project's virtual networks (NetworkService), each
 * on one host, with their DHCP leases and reservations. NETWORK may be
 * given as its id (in --project) or its full name
 * projects/P/networks/ID. Every change starts an Operation and, unless
 * --no-wait, waits for it and shows the network (cmd_op_call); reads
 * answer directly.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "resource.h"

#define NAME_LEN 512
#define MAX_RESERVATIONS 256
#define MIN_MTU 576
#define MAX_MTU 9000
#define MAX_VLAN 4094

/* ---- showing ---- */

static const out_column network_cols[] = {
    {"Name", "name"},
    {"Host", "host"},
    {"Mode", "_mode"},
    {"State", "_state"},
    {"State message", "stateMessage"},
    {"Bridge", "bridge"},
    {"IPv4 CIDR", "ipv4Cidr"},
    {"Gateway", "gateway"},
    {"IPv6 CIDR", "ipv6Cidr"},
    {"DHCP range", "_dhcp"},
    {"Reservations", "_reservations"},
    {"VLAN", "_vlan"},
    {"MTU", "mtu"},
    {"Autostart", "autostart"},
    {"Labels", "_labels"},
    {"Description", "description"},
    {"Created", "createTime"},
    {"Updated", "updateTime"},
    {"Etag", "etag"},
    {"UID", "uid"},
};

static const out_column network_list_cols[] = {
    {"NAME", "name"},     {"HOST", "host"},     {"MODE", "_mode"},         {"STATE", "_state"},
    {"CIDR", "ipv4Cidr"}, {"BRIDGE", "bridge"}, {"CREATED", "createTime"},
};

static const out_column lease_list_cols[] = {
    {"MAC", "mac"},
    {"IP", "ip"},
    {"HOSTNAME", "hostname"},
    {"RESERVED", "reserved"},
    {"EXPIRES", "expireTime"},
    {"CLIENT ID", "clientId"},
};

/* Table-only keys: short enums, the DHCP range, the reservations, VLAN, labels. */
static void decorate_network(json_t *n) {
  const char *start = json_string_value(json_object_get(n, "dhcpStart"));
  const char *end = json_string_value(json_object_get(n, "dhcpEnd"));
  json_t *vlan = json_object_get(n, "vlanId");
  json_t *items = json_object_get(n, "reservations");
  json_t *item;
  size_t i;
  char text[2048] = "";
  size_t o = 0;
  res_short_enum(n, "mode", "MODE_", "_mode");
  res_short_enum(n, "state", "STATE_", "_state");
  res_labels_text(n, "labels", "_labels");
  if (start && *start)
    snprintf(text, sizeof(text), "%s - %s", start, end ? end : "?");
  else
    snprintf(text, sizeof(text), "-");
  json_object_set_new(n, "_dhcp", json_string(text));
  if (json_is_integer(vlan))
    snprintf(text, sizeof(text), "%" JSON_INTEGER_FORMAT, json_integer_value(vlan));
  else
    snprintf(text, sizeof(text), "-");
  json_object_set_new(n, "_vlan", json_string(text));
  text[0] = '\0';
  json_array_foreach(items, i, item) {
    const char *mac = json_string_value(json_object_get(item, "mac"));
    const char *ip = json_string_value(json_object_get(item, "ip"));
    const char *host = json_string_value(json_object_get(item, "hostname"));
    int k = snprintf(text + o, sizeof(text) - o, "%s%s=%s%s%s", i ? "," : "", mac ? mac : "?",
                     ip ? ip : "?", host && *host ? "," : "", host && *host ? host : "");
    if (k < 0 || (size_t)k >= sizeof(text) - o) break;
    o += (size_t)k;
  }
  json_object_set_new(n, "_reservations", json_string(o ? text : "-"));
}

static int show_network(const cli_ctx *ctx, const ProtobufCMessage *network) {
  if (!network) return out_usage_error(ctx->name, "the server sent no network");
  return res_show(ctx, network, network_cols, sizeof(network_cols) / sizeof(network_cols[0]),
                  decorate_network);
}

static int show_network_deleted(const cli_ctx *ctx, const ProtobufCMessage *network) {
  return res_show_deleted(ctx, ((const Novacron__V1__Network *)network)->name);
}

/* ---- names and flags ---- */

/* "projects/{--project}/networks/{arg}" unless arg is a full name. */
static void network_name(const cli_ctx *ctx, char *buf, size_t len, const char *arg) {
  char project[NAME_LEN];
  char prefix[NAME_LEN + 16];
  res_project(ctx, project, sizeof(project));
  snprintf(prefix, sizeof(prefix), "%s/networks/", project);
  res_name(buf, len, prefix, arg);
}

/* An integer flag in [min, max] into *out (untouched when the flag is
 * absent). 0, or prints and returns EXIT_USAGE. */
static int int_flag(const cli_ctx *ctx, const char *flag, int64_t min, int64_t max, int32_t *out) {
  const char *text = cli_get(ctx, flag);
  int64_t v;
  if (!text) return 0;
  if (!res_parse_int64(text, &v) || v < min || v > max)
    return out_usage_error(ctx->name, "--%s must be a whole number from %lld to %lld, not \"%s\"",
                           flag, (long long)min, (long long)max, text);
  *out = (int32_t)v;
  return 0;
}

/* The --reservation MAC=IP[,HOSTNAME] flags, parsed into *out (an array of
 * *n pointers into one allocation, strings included). Free *out with free().
 * 0, or prints and returns EXIT_USAGE. */
static int reservations(const cli_ctx *ctx, Novacron__V1__Network__Reservation ***out, size_t *n) {
  const char *text;
  size_t count = 0, bytes = 0;
  *out = NULL;
  *n = 0;
  while ((text = cli_get_nth(ctx, "reservation", count))) {
    bytes += strlen(text) + 1;
    count++;
  }
  if (count == 0) return 0;
  if (count > MAX_RESERVATIONS)
    return out_usage_error(ctx->name, "at most %d --reservation", MAX_RESERVATIONS);
  /* pointers, then the messages, then copies of the texts to cut up */
  size_t head = count * (sizeof(**out) + sizeof(***out));
  char *block = calloc(1, head + bytes);
  if (!block) return out_usage_error(ctx->name, "out of memory");
  Novacron__V1__Network__Reservation **ptrs = (Novacron__V1__Network__Reservation **)block;
  Novacron__V1__Network__Reservation *msgs =
      (Novacron__V1__Network__Reservation *)(block + count * sizeof(**out));
  char *strings = block + head;
  for (size_t i = 0; i < count; i++) {
    text = cli_get_nth(ctx, "reservation", i);
    size_t len = strlen(text);
    memcpy(strings, text, len + 1);
    char *eq = strchr(strings, '=');
    char *comma = eq ? strchr(eq + 1, ',') : NULL;
    if (!eq || eq == strings || eq[1] == '\0' || eq + 1 == comma || (comma && !comma[1])) {
      free(block);
      return out_usage_error(ctx->name, "--reservation needs MAC=IP or MAC=IP,HOSTNAME, not \"%s\"",
                             text);
    }
    *eq = '\0';
    if (comma) *comma = '\0';
    novacron__v1__network__reservation__init(&msgs[i]);
    msgs[i].mac = strings;
    msgs[i].ip = eq + 1;
    if (comma) msgs[i].hostname = comma + 1;
    ptrs[i] = &msgs[i];
    strings += len + 1;
  }
  *out = ptrs;
  *n = count;
  return 0;
}

/* ---- typed calls, adapted for cmd_op_call and res_run_list ---- */

RES_LIST_CALL(list_networks, nc_network_list, ListNetworksRequest, ListNetworksResponse)
RES_LIST_CALL(list_leases, nc_network_list_leases, ListLeasesRequest, ListLeasesResponse)
RES_LIST_CALL(create_network, nc_network_create, CreateNetworkRequest, CreateNetworkResponse)
RES_LIST_CALL(update_network, nc_network_update, UpdateNetworkRequest, UpdateNetworkResponse)
RES_LIST_CALL(delete_network, nc_network_delete, DeleteNetworkRequest, DeleteNetworkResponse)
RES_LIST_CALL(add_reservation, nc_network_add_reservation, AddReservationRequest,
              AddReservationResponse)
RES_LIST_CALL(remove_reservation, nc_network_remove_reservation, RemoveReservationRequest,
              RemoveReservationResponse)

#define NETWORK_RESULT &novacron__v1__network__descriptor

/* ---- reads ---- */

int cmd_network_list(cli_ctx *ctx) {
  Novacron__V1__ListNetworksRequest req = NOVACRON__V1__LIST_NETWORKS_REQUEST__INIT;
  static const res_list list = {list_networks, "networks", network_list_cols,
                                sizeof(network_list_cols) / sizeof(network_list_cols[0]),
                                decorate_network};
  char parent[NAME_LEN];
  nc_client *client = NULL;
  res_project(ctx, parent, sizeof(parent));
  req.parent = parent;
  int rc = cli_connect(ctx, &client);
  if (rc == 0) rc = res_run_list(ctx, client, &req.base, &list);
  nc_client_free(client);
  return rc;
}

int cmd_network_get(cli_ctx *ctx) {
  Novacron__V1__GetNetworkRequest req = NOVACRON__V1__GET_NETWORK_REQUEST__INIT;
  Novacron__V1__GetNetworkResponse *resp = NULL;
  char name[NAME_LEN];
  nc_client *client = NULL;
  nc_error err;
  network_name(ctx, name, sizeof(name), ctx->argv[0]);
  req.name = name;
  int rc = cli_connect(ctx, &client);
  if (rc != 0) goto cleanup;
  nc_status st = nc_network_get(client, &req, &resp, NULL, &err);
  rc = st != NC_OK ? out_sdk_error(ctx->name, st, &err)
                   : show_network(ctx, resp->network ? &resp->network->base : NULL);
cleanup:
  nc_message_free(resp ? &resp->base : NULL);
  nc_client_free(client);
  return rc;
}

int cmd_network_leases(cli_ctx *ctx) {
  Novacron__V1__ListLeasesRequest req = NOVACRON__V1__LIST_LEASES_REQUEST__INIT;
  static const res_list list = {list_leases, "leases", lease_list_cols,
                                sizeof(lease_list_cols) / sizeof(lease_list_cols[0]), NULL};
  char parent[NAME_LEN];
  nc_client *client = NULL;
  network_name(ctx, parent, sizeof(parent), ctx->argv[0]);
  req.parent = parent;
  int rc = cli_connect(ctx, &client);
  if (rc == 0) rc = res_run_list(ctx, client, &req.base, &list);
  nc_client_free(client);
  return rc;
}

/* ---- changes ---- */

int cmd_network_create(cli_ctx *ctx) {
  Novacron__V1__CreateNetworkRequest req = NOVACRON__V1__CREATE_NETWORK_REQUEST__INIT;
  Novacron__V1__Network network = NOVACRON__V1__NETWORK__INIT;
  Google__Protobuf__Int32Value vlan = GOOGLE__PROTOBUF__INT32_VALUE__INIT;
  Novacron__V1__Network__Reservation **reserved = NULL;
  Novacron__V1__Label **labels = NULL;
  Novacron__V1__Label *storage = NULL;
  size_t nlabels = 0, nreserved = 0;
  char parent[NAME_LEN];
  char host[NAME_LEN];
  const char *text;
  int mode = 0;
  int rc;

  if (!cli_get(ctx, "host")) return out_usage_error(ctx->name, "--host is required");
  if (!(text = cli_get(ctx, "mode")))
    return out_usage_error(ctx->name, "--mode is required: nat, isolated, routed or bridge");
  if (!cmd_parse_enum(ctx, "mode", text, &novacron__v1__network__mode__descriptor, "MODE_", &mode))
    return EXIT_USAGE;
  if ((rc = int_flag(ctx, "mtu", MIN_MTU, MAX_MTU, &network.mtu)) != 0 ||
      (rc = int_flag(ctx, "vlan", 1, MAX_VLAN, &vlan.value)) != 0)
    return rc;

  /* NETWORK: an id in --project, or a full name projects/P/networks/ID */
  const char *slash = strstr(ctx->argv[0], "/networks/");
  if (slash) {
    snprintf(parent, sizeof(parent), "%.*s", (int)(slash - ctx->argv[0]), ctx->argv[0]);
    req.network_id = (char *)slash + strlen("/networks/");
  } else {
    res_project(ctx, parent, sizeof(parent));
    req.network_id = ctx->argv[0];
  }
  req.parent = parent;
  req.network = &network;
  res_name(host, sizeof(host), "hosts/", cli_get(ctx, "host"));
  network.host = host;
  network.mode = (Novacron__V1__Network__Mode)mode;
  if ((text = cli_get(ctx, "bridge"))) network.bridge = (char *)text;
  if ((text = cli_get(ctx, "cidr"))) network.ipv4_cidr = (char *)text;
  if ((text = cli_get(ctx, "gateway"))) network.gateway = (char *)text;
  if ((text = cli_get(ctx, "ipv6-cidr"))) network.ipv6_cidr = (char *)text;
  if ((text = cli_get(ctx, "dhcp-start"))) network.dhcp_start = (char *)text;
  if ((text = cli_get(ctx, "dhcp-end"))) network.dhcp_end = (char *)text;
  if (cli_get(ctx, "vlan")) network.vlan_id = &vlan;
  network.autostart = cli_switch(ctx, "autostart");
  if ((text = cli_get(ctx, "description"))) network.description = (char *)text;
  if ((rc = reservations(ctx, &reserved, &nreserved)) != 0) goto cleanup;
  req.reservations = reserved;
  req.n_reservations = nreserved;
  if ((rc = res_labels(ctx, &labels, &storage, &nlabels)) != 0) goto cleanup;
  network.labels = labels;
  network.n_labels = nlabels;
  rc = cmd_op_call(ctx, &req.base, create_network, NETWORK_RESULT, show_network);
cleanup:
  res_labels_free(labels, storage, nlabels);
  free(reserved);
  return rc;
}

int cmd_network_update(cli_ctx *ctx) {
  Novacron__V1__UpdateNetworkRequest req = NOVACRON__V1__UPDATE_NETWORK_REQUEST__INIT;
  Novacron__V1__Network network = NOVACRON__V1__NETWORK__INIT;
  Google__Protobuf__FieldMask mask = GOOGLE__PROTOBUF__FIELD_MASK__INIT;
  Novacron__V1__Label **labels = NULL;
  Novacron__V1__Label *storage = NULL;
  size_t nlabels = 0;
  char *paths[6];
  char name[NAME_LEN];
  int rc;

  if (cli_switch(ctx, "clear-labels") && cli_get_nth(ctx, "label", 0))
    return out_usage_error(ctx->name, "--clear-labels contradicts --label");
  if (cli_switch(ctx, "autostart") && cli_switch(ctx, "no-autostart"))
    return out_usage_error(ctx->name, "--autostart contradicts --no-autostart");
  if ((rc = int_flag(ctx, "mtu", 0, MAX_MTU, &network.mtu)) != 0) return rc;
  network_name(ctx, name, sizeof(name), ctx->argv[0]);
  network.name = name;
  if (cli_get(ctx, "etag")) network.etag = (char *)cli_get(ctx, "etag");
  if (cli_given(ctx, "description")) {
    network.description = (char *)cli_get(ctx, "description");
    paths[mask.n_paths++] = "description";
  }
  if ((rc = res_labels(ctx, &labels, &storage, &nlabels)) != 0) goto cleanup;
  if (nlabels || cli_switch(ctx, "clear-labels")) {
    network.labels = labels;
    network.n_labels = nlabels;
    paths[mask.n_paths++] = "labels";
  }
  if (cli_switch(ctx, "autostart") || cli_switch(ctx, "no-autostart")) {
    network.autostart = cli_switch(ctx, "autostart");
    paths[mask.n_paths++] = "autostart";
  }
  if (cli_given(ctx, "mtu")) paths[mask.n_paths++] = "mtu";
  if (cli_given(ctx, "dhcp-start")) {
    network.dhcp_start = (char *)cli_get(ctx, "dhcp-start");
    paths[mask.n_paths++] = "dhcp_start";
  }
  if (cli_given(ctx, "dhcp-end")) {
    network.dhcp_end = (char *)cli_get(ctx, "dhcp-end");
    paths[mask.n_paths++] = "dhcp_end";
  }
  if (mask.n_paths == 0) {
    rc = out_usage_error(ctx->name,
                         "nothing to change: give --description, --label, --clear-labels, "
                         "--autostart, --no-autostart, --mtu, --dhcp-start or --dhcp-end");
    goto cleanup;
  }
  mask.paths = paths;
  req.network = &network;
  req.update_mask = &mask;
  rc = cmd_op_call(ctx, &req.base, update_network, NETWORK_RESULT, show_network);
cleanup:
  res_labels_free(labels, storage, nlabels);
  return rc;
}

int cmd_network_delete(cli_ctx *ctx) {
  Novacron__V1__DeleteNetworkRequest req = NOVACRON__V1__DELETE_NETWORK_REQUEST__INIT;
  char name[NAME_LEN];
  network_name(ctx, name, sizeof(name), ctx->argv[0]);
  req.name = name;
  if (cli_get(ctx, "etag")) req.etag = (char *)cli_get(ctx, "etag");
  return cmd_op_call(ctx, &req.base, delete_network, NETWORK_RESULT, show_network_deleted);
}

int cmd_network_reserve(cli_ctx *ctx) {
  Novacron__V1__AddReservationRequest req = NOVACRON__V1__ADD_RESERVATION_REQUEST__INIT;
  Novacron__V1__Network__Reservation reservation = NOVACRON__V1__NETWORK__RESERVATION__INIT;
  char name[NAME_LEN];
  network_name(ctx, name, sizeof(name), ctx->argv[0]);
  req.name = name;
  reservation.mac = ctx->argv[1];
  reservation.ip = ctx->argv[2];
  if (ctx->argc > 3) reservation.hostname = ctx->argv[3];
  req.reservation = &reservation;
  if (cli_get(ctx, "etag")) req.etag = (char *)cli_get(ctx, "etag");
  return cmd_op_call(ctx, &req.base, add_reservation, NETWORK_RESULT, show_network);
}

int cmd_network_unreserve(cli_ctx *ctx) {
  Novacron__V1__RemoveReservationRequest req = NOVACRON__V1__REMOVE_RESERVATION_REQUEST__INIT;
  char name[NAME_LEN];
  network_name(ctx, name, sizeof(name), ctx->argv[0]);
  req.name = name;
  req.mac = ctx->argv[1];
  if (cli_get(ctx, "etag")) req.etag = (char *)cli_get(ctx, "etag");
  return cmd_op_call(ctx, &req.base, remove_reservation, NETWORK_RESULT, show_network);
}
