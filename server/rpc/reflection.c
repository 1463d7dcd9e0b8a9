/*
 * reflection.c - grpc.reflection.v1 and v1alpha ServerReflection.
 *
 * The build embeds a FileDescriptorSet (with imports and source comments)
 * of every file the server serves. At start it is indexed: file name ->
 * serialized FileDescriptorProto and dependencies, fully-qualified symbol
 * -> file, and each method's streaming kind (which rpc_server_add_service
 * checks the method tables against). grpcurl and `buf curl` need nothing
 * else to list, describe and invoke every method.
 *
 * v1alpha is wire-identical to v1: its handler re-decodes the request as v1
 * and the answer as v1alpha, so there is one implementation.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "google/protobuf/descriptor.pb-c.h"
#include "grpc/reflection/v1/reflection.pb-c.h"
#include "grpc/reflection/v1alpha/reflection.pb-c.h"
#include "rpc/internal.h"

typedef struct refl_file {
  const char *name;
  uint8_t *bytes;
  size_t len;
  size_t *deps; /* indexes into files */
  size_t ndeps;
} refl_file;

typedef struct refl_symbol {
  char *name;
  size_t file;
  int kind; /* rpc_kind for methods, -1 otherwise */
} refl_symbol;

struct rpc_reflection {
  Google__Protobuf__FileDescriptorSet *set;
  refl_file *files;
  size_t nfiles;
  refl_symbol *syms;
  size_t nsyms, cap;
};

static bool add_symbol(rpc_reflection *r, const char *prefix, const char *name, size_t file,
                       int kind) {
  if (r->nsyms == r->cap) {
    size_t ncap = r->cap ? r->cap * 2 : 256;
    refl_symbol *ns = realloc(r->syms, ncap * sizeof(*ns));
    if (!ns) return false;
    r->syms = ns;
    r->cap = ncap;
  }
  size_t len = strlen(prefix) + strlen(name) + 2;
  char *full = malloc(len);
  if (!full) return false;
  if (prefix[0])
    snprintf(full, len, "%s.%s", prefix, name);
  else
    snprintf(full, len, "%s", name);
  r->syms[r->nsyms++] = (refl_symbol){full, file, kind};
  return true;
}

static bool index_message(rpc_reflection *r, const char *prefix,
                          const Google__Protobuf__DescriptorProto *m, size_t file) {
  if (!add_symbol(r, prefix, m->name, file, -1)) return false;
  const char *full = r->syms[r->nsyms - 1].name;
  for (size_t i = 0; i < m->n_nested_type; i++) {
    if (!index_message(r, full, m->nested_type[i], file)) return false;
  }
  for (size_t i = 0; i < m->n_enum_type; i++) {
    if (!add_symbol(r, full, m->enum_type[i]->name, file, -1)) return false;
  }
  for (size_t i = 0; i < m->n_field; i++) {
    if (!add_symbol(r, full, m->field[i]->name, file, -1)) return false;
  }
  return true;
}

static int cmp_sym(const void *a, const void *b) {
  return strcmp(((const refl_symbol *)a)->name, ((const refl_symbol *)b)->name);
}

static const refl_symbol *find_symbol(const rpc_reflection *r, const char *name) {
  refl_symbol key = {(char *)name, 0, 0};
  return bsearch(&key, r->syms, r->nsyms, sizeof(refl_symbol), cmp_sym);
}

static long find_file(const rpc_reflection *r, const char *name) {
  for (size_t i = 0; i < r->nfiles; i++) {
    if (strcmp(r->files[i].name, name) == 0) return (long)i;
  }
  return -1;
}

rpc_reflection *rpc_reflection_create(const unsigned char *set, size_t len, char *errbuf,
                                      size_t errlen) {
  rpc_reflection *r = calloc(1, sizeof(*r));
  if (!r) return NULL;
  r->set = google__protobuf__file_descriptor_set__unpack(NULL, len, set);
  if (!r->set) {
    snprintf(errbuf, errlen, "the embedded descriptor set does not decode");
    rpc_reflection_destroy(r);
    return NULL;
  }
  r->nfiles = r->set->n_file;
  r->files = calloc(r->nfiles ? r->nfiles : 1, sizeof(refl_file));
  if (!r->files) goto oom;
  for (size_t i = 0; i < r->nfiles; i++) {
    const Google__Protobuf__FileDescriptorProto *f = r->set->file[i];
    refl_file *rf = &r->files[i];
    rf->name = f->name;
    rf->len = protobuf_c_message_get_packed_size(&f->base);
    rf->bytes = malloc(rf->len ? rf->len : 1);
    if (!rf->bytes) goto oom;
    protobuf_c_message_pack(&f->base, rf->bytes);
    const char *pkg = f->package ? f->package : "";
    for (size_t m = 0; m < f->n_message_type; m++) {
      if (!index_message(r, pkg, f->message_type[m], i)) goto oom;
    }
    for (size_t e = 0; e < f->n_enum_type; e++) {
      if (!add_symbol(r, pkg, f->enum_type[e]->name, i, -1)) goto oom;
    }
    for (size_t e = 0; e < f->n_extension; e++) {
      if (!add_symbol(r, pkg, f->extension[e]->name, i, -1)) goto oom;
    }
    for (size_t s = 0; s < f->n_service; s++) {
      const Google__Protobuf__ServiceDescriptorProto *sv = f->service[s];
      if (!add_symbol(r, pkg, sv->name, i, -1)) goto oom;
      const char *svname = r->syms[r->nsyms - 1].name;
      for (size_t m = 0; m < sv->n_method; m++) {
        const Google__Protobuf__MethodDescriptorProto *md = sv->method[m];
        int kind = (md->client_streaming ? 2 : 0) | (md->server_streaming ? 1 : 0);
        if (!add_symbol(r, svname, md->name, i, kind)) goto oom;
      }
    }
  }
  /* dependencies, now that every file is known */
  for (size_t i = 0; i < r->nfiles; i++) {
    const Google__Protobuf__FileDescriptorProto *f = r->set->file[i];
    r->files[i].deps = calloc(f->n_dependency ? f->n_dependency : 1, sizeof(size_t));
    if (!r->files[i].deps) goto oom;
    for (size_t d = 0; d < f->n_dependency; d++) {
      long k = find_file(r, f->dependency[d]);
      if (k < 0) {
        snprintf(errbuf, errlen, "descriptor set: %s imports %s, which is missing", f->name,
                 f->dependency[d]);
        rpc_reflection_destroy(r);
        return NULL;
      }
      r->files[i].deps[r->files[i].ndeps++] = (size_t)k;
    }
  }
  qsort(r->syms, r->nsyms, sizeof(refl_symbol), cmp_sym);
  return r;
oom:
  snprintf(errbuf, errlen, "out of memory indexing the descriptor set");
  rpc_reflection_destroy(r);
  return NULL;
}

void rpc_reflection_destroy(rpc_reflection *r) {
  if (!r) return;
  for (size_t i = 0; i < r->nsyms; i++)
    free(r->syms[i].name);
  free(r->syms);
  for (size_t i = 0; r->files && i < r->nfiles; i++) {
    free(r->files[i].bytes);
    free(r->files[i].deps);
  }
  free(r->files);
  if (r->set) google__protobuf__file_descriptor_set__free_unpacked(r->set, NULL);
  free(r);
}

int rpc_reflection_method_kind(const rpc_reflection *r, const char *service_full_name,
                               const char *method) {
  char name[512];
  snprintf(name, sizeof(name), "%s.%s", service_full_name, method);
  const refl_symbol *s = find_symbol(r, name);
  return s ? s->kind : -1;
}

/* ---- the service ---- */

typedef Grpc__Reflection__V1__ServerReflectionRequest refl_req;
typedef Grpc__Reflection__V1__ServerReflectionResponse refl_resp;

static bool set_error(rpc_call *call, refl_resp *out, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static bool set_error(rpc_call *call, refl_resp *out, int code, const char *fmt, ...) {
  Grpc__Reflection__V1__ErrorResponse *e = rpc_call_alloc(call, sizeof(*e));
  if (!e) return false;
  grpc__reflection__v1__error_response__init(e);
  char buf[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof(buf), fmt, ap);
  va_end(ap);
  e->error_code = code;
  e->error_message = rpc_call_strdup(call, buf);
  if (!e->error_message) return false;
  out->message_response_case =
      GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_ERROR_RESPONSE;
  out->error_response = e;
  return true;
}

/* The file and its transitive dependencies, file first. */
static bool set_files(rpc_call *call, const rpc_reflection *r, refl_resp *out, size_t file) {
  bool *seen = rpc_call_alloc(call, r->nfiles);
  size_t *order = rpc_call_alloc(call, r->nfiles * sizeof(size_t));
  if (!seen || !order) return false;
  memset(seen, 0, r->nfiles);
  size_t n = 0;
  order[n++] = file;
  seen[file] = true;
  for (size_t i = 0; i < n; i++) {
    const refl_file *f = &r->files[order[i]];
    for (size_t d = 0; d < f->ndeps; d++) {
      if (!seen[f->deps[d]]) {
        seen[f->deps[d]] = true;
        order[n++] = f->deps[d];
      }
    }
  }
  Grpc__Reflection__V1__FileDescriptorResponse *fr = rpc_call_alloc(call, sizeof(*fr));
  if (!fr) return false;
  grpc__reflection__v1__file_descriptor_response__init(fr);
  fr->n_file_descriptor_proto = n;
  fr->file_descriptor_proto = rpc_call_alloc(call, n * sizeof(ProtobufCBinaryData));
  if (!fr->file_descriptor_proto) return false;
  for (size_t i = 0; i < n; i++) {
    fr->file_descriptor_proto[i].data = r->files[order[i]].bytes;
    fr->file_descriptor_proto[i].len = r->files[order[i]].len;
  }
  out->message_response_case =
      GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_FILE_DESCRIPTOR_RESPONSE;
  out->file_descriptor_response = fr;
  return true;
}

static bool list_services(rpc_call *call, const rpc_server *srv, refl_resp *out) {
  Grpc__Reflection__V1__ListServiceResponse *ls = rpc_call_alloc(call, sizeof(*ls));
  if (!ls) return false;
  grpc__reflection__v1__list_service_response__init(ls);
  ls->service = rpc_call_alloc(call, (srv->nservices + 1) * sizeof(*ls->service));
  if (!ls->service) return false;
  for (size_t i = 0; i < srv->nservices; i++) {
    Grpc__Reflection__V1__ServiceResponse *s = rpc_call_alloc(call, sizeof(*s));
    if (!s) return false;
    grpc__reflection__v1__service_response__init(s);
    s->name = (char *)srv->services[i]->desc->name;
    ls->service[ls->n_service++] = s;
  }
  out->message_response_case =
      GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_LIST_SERVICES_RESPONSE;
  out->list_services_response = ls;
  return true;
}

static bool extension_numbers(rpc_call *call, const rpc_reflection *r, const char *type,
                              refl_resp *out) {
  const refl_symbol *s = find_symbol(r, type);
  if (!s || s->kind != -1)
    return set_error(call, out, GRPC_STATUS_NOT_FOUND, "type not found: %s", type);
  Grpc__Reflection__V1__ExtensionNumberResponse *en = rpc_call_alloc(call, sizeof(*en));
  if (!en) return false;
  grpc__reflection__v1__extension_number_response__init(en);
  en->base_type_name = (char *)type; /* no extensions are served: the list is empty */
  out->message_response_case =
      GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_ALL_EXTENSION_NUMBERS_RESPONSE;
  out->all_extension_numbers_response = en;
  return true;
}

/* One answer per request; lookup failures are answered in-band with an
 * ErrorResponse, as the protocol wants, and the stream goes on. */
static int reflect_v1(rpc_call *call, const ProtobufCMessage *req, ProtobufCMessage *resp,
                      void *ctx) {
  rpc_server *srv = ctx;
  const rpc_reflection *r = srv->reflection;
  const refl_req *in = (const void *)req;
  refl_resp *out = (void *)resp;
  out->valid_host = in->host;
  out->original_request = (refl_req *)in;
  bool ok;
  switch (in->message_request_case) {
  case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_LIST_SERVICES:
    ok = list_services(call, srv, out);
    break;
  case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_BY_FILENAME: {
    long f = find_file(r, in->file_by_filename);
    ok = f < 0 ? set_error(call, out, GRPC_STATUS_NOT_FOUND, "file not found: %s",
                           in->file_by_filename)
               : set_files(call, r, out, (size_t)f);
    break;
  }
  case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_CONTAINING_SYMBOL: {
    const refl_symbol *s = find_symbol(r, in->file_containing_symbol);
    ok = !s ? set_error(call, out, GRPC_STATUS_NOT_FOUND, "symbol not found: %s",
                        in->file_containing_symbol)
            : set_files(call, r, out, s->file);
    break;
  }
  case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_CONTAINING_EXTENSION:
    ok = set_error(
        call, out, GRPC_STATUS_NOT_FOUND, "no extension of %s is served",
        in->file_containing_extension ? in->file_containing_extension->containing_type : "");
    break;
  case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_ALL_EXTENSION_NUMBERS_OF_TYPE:
    ok = extension_numbers(call, r, in->all_extension_numbers_of_type, out);
    break;
  default:
    ok = set_error(call, out, GRPC_STATUS_INVALID_ARGUMENT, "%s", "the request names no query");
    break;
  }
  return ok ? GRPC_STATUS_OK : rpc_fail(call, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
}

/* v1alpha: same wire format; translate through bytes. */
static ProtobufCMessage *recode(rpc_call *call, const ProtobufCMessage *m,
                                const ProtobufCMessageDescriptor *to) {
  size_t len = protobuf_c_message_get_packed_size(m);
  uint8_t *buf = rpc_call_alloc(call, len ? len : 1);
  if (!buf) return NULL;
  protobuf_c_message_pack(m, buf);
  return protobuf_c_message_unpack(to, rpc_call_allocator(call), len, buf);
}

static int reflect_v1alpha(rpc_call *call, const ProtobufCMessage *req, ProtobufCMessage *resp,
                           void *ctx) {
  ProtobufCMessage *v1req =
      recode(call, req, &grpc__reflection__v1__server_reflection_request__descriptor);
  if (!v1req) return rpc_fail(call, GRPC_STATUS_INTERNAL, "could not translate the request");
  refl_resp v1resp = GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__INIT;
  int code = reflect_v1(call, v1req, &v1resp.base, ctx);
  if (code != GRPC_STATUS_OK) return code;
  ProtobufCMessage *alpha = recode(call, &v1resp.base, resp->descriptor);
  if (!alpha) return rpc_fail(call, GRPC_STATUS_INTERNAL, "could not translate the response");
  memcpy(resp, alpha, resp->descriptor->sizeof_message);
  return GRPC_STATUS_OK;
}

static const rpc_method_row v1_rows[] = {
    {.name = "ServerReflectionInfo",
     .kind = RPC_BIDI_STREAMING,
     .handler = reflect_v1,
     .flags = RPC_INLINE | RPC_PUBLIC},
};
static const rpc_method_row v1alpha_rows[] = {
    {.name = "ServerReflectionInfo",
     .kind = RPC_BIDI_STREAMING,
     .handler = reflect_v1alpha,
     .flags = RPC_INLINE | RPC_PUBLIC},
};

int rpc_reflection_register(rpc_server *srv, char *errbuf, size_t errlen) {
  if (rpc_server_add_service(srv, &grpc__reflection__v1__server_reflection__descriptor, v1_rows, 1,
                             srv, errbuf, errlen) != 0)
    return -1;
  return rpc_server_add_service(srv, &grpc__reflection__v1alpha__server_reflection__descriptor,
                                v1alpha_rows, 1, srv, errbuf, errlen);
}
