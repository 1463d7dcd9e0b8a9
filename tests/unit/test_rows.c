/*
 * test_rows.c - the method tables of every novacron.v1 service
 * (api/services.h) against the protos: one row per method, the streaming
 * kind the embedded descriptor set declares, scope paths that name a
 * string field of the request, a scope on every project-scoped row, and a
 * request_id on every change that claims to be retry-safe. Services whose
 * table is still empty are skipped.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "api/authz.h"
#include "api/services.h"
#include "google/protobuf/descriptor.pb-c.h"
#include "novacron/v1/vm.pb-c.h"

extern const unsigned char nc_protoset[];
extern const size_t nc_protoset_len;

static const api_service *const services[] = {
    &api_vm_service,         &api_host_service,       &api_storage_service,
    &api_network_service,    &api_identity_service,   &api_backup_service,
    &api_federation_service, &api_operations_service, &api_event_service,
};
#define NSERVICES (sizeof(services) / sizeof(services[0]))

/* The field at dotted `path` of `d` when it is a singular string field,
 * every earlier segment being a singular message field; NULL otherwise. */
static const ProtobufCFieldDescriptor *string_field(const ProtobufCMessageDescriptor *d,
                                                    const char *path) {
  char seg[64];
  const char *p = path;
  for (;;) {
    const char *dot = strchr(p, '.');
    size_t n = dot ? (size_t)(dot - p) : strlen(p);
    if (!d || n == 0 || n >= sizeof(seg)) return NULL;
    memcpy(seg, p, n);
    seg[n] = '\0';
    const ProtobufCFieldDescriptor *f = protobuf_c_message_descriptor_get_field_by_name(d, seg);
    if (!f || f->label == PROTOBUF_C_LABEL_REPEATED) return NULL;
    if (!dot) return f->type == PROTOBUF_C_TYPE_STRING ? f : NULL;
    if (f->type != PROTOBUF_C_TYPE_MESSAGE) return NULL;
    d = f->descriptor;
    p = dot + 1;
  }
}

static const ProtobufCMethodDescriptor *method_of(const api_service *s, const rpc_method_row *r) {
  return protobuf_c_service_descriptor_get_method_by_name(s->desc, r->name);
}

static void resolver_refuses_what_is_not_a_string_field(void **state) {
  const ProtobufCMessageDescriptor *upd = &novacron__v1__update_vm_request__descriptor;
  const ProtobufCMessageDescriptor *list = &novacron__v1__list_vms_request__descriptor;
  assert_non_null(string_field(upd, "vm.name"));
  assert_non_null(string_field(upd, "request_id"));
  assert_non_null(string_field(upd, "vm.placement.host"));
  assert_null(string_field(upd, "vm"));           /* a message */
  assert_null(string_field(upd, "name"));         /* no such field */
  assert_null(string_field(upd, "vm.nope"));      /* no such nested field */
  assert_null(string_field(upd, "vm.labels"));    /* repeated */
  assert_null(string_field(upd, "vm.name.x"));    /* through a string */
  assert_null(string_field(upd, "vm..name"));     /* empty segment */
  assert_null(string_field(upd, ""));             /* empty path */
  assert_null(string_field(list, "page_size"));   /* an int32 */
  assert_null(string_field(list, "parent.name")); /* through a string */
}

static void every_method_has_exactly_one_row(void **state) {
  int bad = 0, checked = 0;
  for (size_t i = 0; i < NSERVICES; i++) {
    const api_service *s = services[i];
    assert_non_null(s->desc);
    if (s->nrows == 0) continue;
    checked++;
    for (unsigned m = 0; m < s->desc->n_methods; m++) {
      const char *name = s->desc->methods[m].name;
      int n = 0;
      for (size_t r = 0; r < s->nrows; r++)
        if (s->rows[r].name && strcmp(s->rows[r].name, name) == 0) n++;
      if (n != 1) {
        print_error("%s.%s: %d rows\n", s->desc->name, name, n);
        bad++;
      }
    }
    for (size_t r = 0; r < s->nrows; r++) {
      if (!s->rows[r].name || !method_of(s, &s->rows[r])) {
        print_error("%s: row %zu (%s) names no method\n", s->desc->name, r,
                    s->rows[r].name ? s->rows[r].name : "NULL");
        bad++;
      }
    }
    if (s->nrows != s->desc->n_methods) {
      print_error("%s: %zu rows for %u methods\n", s->desc->name, s->nrows, s->desc->n_methods);
      bad++;
    }
  }
  assert_int_equal(bad, 0);
  assert_true(checked >= 8); /* the eight tables of this issue at least */
}

static void kinds_match_the_descriptor_set(void **state) {
  Google__Protobuf__FileDescriptorSet *set =
      google__protobuf__file_descriptor_set__unpack(NULL, nc_protoset_len, nc_protoset);
  assert_non_null(set);
  int bad = 0, streaming = 0;
  for (size_t i = 0; i < NSERVICES; i++) {
    const api_service *s = services[i];
    if (s->nrows == 0) continue;
    const Google__Protobuf__ServiceDescriptorProto *sv = NULL;
    for (size_t f = 0; f < set->n_file && !sv; f++) {
      const Google__Protobuf__FileDescriptorProto *fd = set->file[f];
      const char *pkg = fd->package ? fd->package : "";
      size_t pl = strlen(pkg);
      for (size_t k = 0; k < fd->n_service; k++) {
        const char *full = s->desc->name;
        if (strncmp(full, pkg, pl) == 0 && full[pl] == '.' &&
            strcmp(full + pl + 1, fd->service[k]->name) == 0)
          sv = fd->service[k];
      }
    }
    if (!sv) {
      print_error("%s: not in the descriptor set\n", s->desc->name);
      bad++;
      continue;
    }
    for (size_t r = 0; r < s->nrows; r++) {
      const rpc_method_row *row = &s->rows[r];
      const Google__Protobuf__MethodDescriptorProto *md = NULL;
      for (size_t k = 0; k < sv->n_method; k++)
        if (row->name && strcmp(sv->method[k]->name, row->name) == 0) md = sv->method[k];
      if (!md) {
        print_error("%s.%s: not in the descriptor set\n", s->desc->name, row->name);
        bad++;
        continue;
      }
      int kind = (md->client_streaming ? RPC_CLIENT_STREAMING : RPC_UNARY) |
                 (md->server_streaming ? RPC_SERVER_STREAMING : RPC_UNARY);
      if ((int)row->kind != kind) {
        print_error("%s.%s: kind %d, the proto says %d\n", s->desc->name, row->name, (int)row->kind,
                    kind);
        bad++;
      }
      if (row->kind != RPC_UNARY) streaming++;
    }
  }
  google__protobuf__file_descriptor_set__free_unpacked(set, NULL);
  assert_int_equal(bad, 0);
  assert_int_equal(streaming, 1); /* EventService.WatchEvents */
}

static void scopes_name_string_fields_of_the_request(void **state) {
  int bad = 0;
  for (size_t i = 0; i < NSERVICES; i++) {
    const api_service *s = services[i];
    for (size_t r = 0; r < s->nrows; r++) {
      const rpc_method_row *row = &s->rows[r];
      const ProtobufCMethodDescriptor *md = method_of(s, row);
      if (!md || !row->scope) continue;
      if (!string_field(md->input, row->scope)) {
        print_error("%s.%s: scope \"%s\" is not a string field of %s\n", s->desc->name, row->name,
                    row->scope, md->input->name);
        bad++;
        continue;
      }
      /* and the authorizer's own resolver reads it (as "" when unset) */
      ProtobufCMessage *msg = calloc(1, md->input->sizeof_message);
      assert_non_null(msg);
      protobuf_c_message_init(md->input, msg);
      const char *v = api_field_string(msg, row->scope);
      if (!v || *v) {
        print_error("%s.%s: api_field_string(\"%s\") does not read it\n", s->desc->name, row->name,
                    row->scope);
        bad++;
      }
      free(msg);
    }
  }
  assert_int_equal(bad, 0);
}

static void project_scoped_rows_have_a_scope(void **state) {
  int bad = 0;
  for (size_t i = 0; i < NSERVICES; i++) {
    const api_service *s = services[i];
    for (size_t r = 0; r < s->nrows; r++) {
      const rpc_method_row *row = &s->rows[r];
      int level = API_ACCESS_LEVEL(row->access);
      if (level < API_SYSTEM_ADMIN || level > API_ADMIN ||
          (row->access & ~(API_ACROSS_PROJECTS | 0x0f))) {
        print_error("%s.%s: access %d is no api_access value\n", s->desc->name, row->name,
                    row->access);
        bad++;
      }
      bool project = level == API_VIEWER || level == API_OPERATOR || level == API_ADMIN;
      if ((row->access & API_ACROSS_PROJECTS) &&
          (level != API_VIEWER || strncmp(row->name, "List", 4) != 0) &&
          strcmp(row->name, "WatchEvents") != 0) {
        print_error("%s.%s: only reads that list may span projects\n", s->desc->name, row->name);
        bad++;
      }
      if (project && (!row->scope || !*row->scope)) {
        print_error("%s.%s: project-scoped without a scope\n", s->desc->name, row->name);
        bad++;
      }
    }
  }
  assert_int_equal(bad, 0);
}

static void retry_safe_changes_carry_a_request_id(void **state) {
  int bad = 0, changes = 0;
  for (size_t i = 0; i < NSERVICES; i++) {
    const api_service *s = services[i];
    for (size_t r = 0; r < s->nrows; r++) {
      const rpc_method_row *row = &s->rows[r];
      const ProtobufCMethodDescriptor *md = method_of(s, row);
      unsigned both = RPC_MUTATING | RPC_IDEMPOTENT;
      if (!md || (row->flags & both) != both) continue;
      changes++;
      if (!string_field(md->input, "request_id")) {
        print_error("%s.%s: idempotent change but %s has no request_id\n", s->desc->name, row->name,
                    md->input->name);
        bad++;
      }
    }
  }
  assert_int_equal(bad, 0);
  assert_true(changes > 0);
}

static void the_runtime_accepts_every_table(void **state) {
  rpc_server_options o = {.listen_addr = "127.0.0.1:0",
                          .insecure = true,
                          .protoset = nc_protoset,
                          .protoset_len = nc_protoset_len};
  rpc_server *srv = NULL;
  char err[256] = "";
  assert_int_equal(rpc_server_create(&o, &srv, err, sizeof(err)), 0);
  if (api_register_all(srv, NULL, err, sizeof(err)) != 0) print_error("%s\n", err);
  assert_string_equal(err, "");
  const rpc_method_row *row = rpc_server_lookup(srv, "/novacron.v1.VmService/UpdateVm");
  assert_non_null(row);
  assert_int_equal(row->access, API_OPERATOR);
  assert_string_equal(row->scope, "vm.name");
  row = rpc_server_lookup(srv, "/novacron.v1.EventService/WatchEvents");
  assert_non_null(row);
  assert_int_equal(row->kind, RPC_SERVER_STREAMING);
  rpc_server_destroy(srv);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(resolver_refuses_what_is_not_a_string_field),
      cmocka_unit_test(every_method_has_exactly_one_row),
      cmocka_unit_test(kinds_match_the_descriptor_set),
      cmocka_unit_test(scopes_name_string_fields_of_the_request),
      cmocka_unit_test(project_scoped_rows_have_a_scope),
      cmocka_unit_test(retry_safe_changes_carry_a_request_id),
      cmocka_unit_test(the_runtime_accepts_every_table),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
