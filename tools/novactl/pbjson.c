/*
 * pbjson.c - protobuf-c message -> jansson value, driven by the message
 * descriptors (see pbjson.h for the mapping). Knows the handful of
 * well-known types the API uses by their full names; everything else is
 * walked field by field.
 */
#include "pbjson.h"

#include <inttypes.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

void pbjson_key(const char *field_name, char *buf, size_t len) {
  size_t o = 0;
  bool upper = false;
  if (len == 0) return;
  for (const char *p = field_name; *p && o + 1 < len; p++) {
    if (*p == '_') {
      upper = o > 0;
      continue;
    }
    buf[o++] = upper && *p >= 'a' && *p <= 'z' ? (char)(*p - 'a' + 'A') : *p;
    upper = false;
  }
  buf[o] = '\0';
}

void pbjson_time_text(int64_t seconds, int32_t nanos, char *buf, size_t len) {
  struct tm tm;
  time_t t = (time_t)seconds;
  if (seconds == 0 && nanos == 0) {
    snprintf(buf, len, "-");
    return;
  }
  if (!gmtime_r(&t, &tm)) {
    snprintf(buf, len, "%" PRId64, seconds);
    return;
  }
  char date[40];
  strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%S", &tm);
  if (nanos > 0 && nanos < 1000000000) {
    /* the shortest of 3, 6 or 9 fraction digits, as proto3 JSON does */
    if (nanos % 1000000 == 0)
      snprintf(buf, len, "%s.%03dZ", date, (int)(nanos / 1000000));
    else if (nanos % 1000 == 0)
      snprintf(buf, len, "%s.%06dZ", date, (int)(nanos / 1000));
    else
      snprintf(buf, len, "%s.%09dZ", date, (int)nanos);
  } else {
    snprintf(buf, len, "%sZ", date);
  }
}

static json_t *base64(const ProtobufCBinaryData *data) {
  static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  size_t n = data->len;
  char *out = malloc(4 * ((n + 2) / 3) + 1);
  size_t o = 0;
  if (!out) return NULL;
  for (size_t i = 0; i < n; i += 3) {
    uint32_t v = (uint32_t)data->data[i] << 16;
    if (i + 1 < n) v |= (uint32_t)data->data[i + 1] << 8;
    if (i + 2 < n) v |= data->data[i + 2];
    out[o++] = alphabet[(v >> 18) & 63];
    out[o++] = alphabet[(v >> 12) & 63];
    out[o++] = i + 1 < n ? alphabet[(v >> 6) & 63] : '=';
    out[o++] = i + 2 < n ? alphabet[v & 63] : '=';
  }
  out[o] = '\0';
  json_t *s = json_string(out);
  free(out);
  return s;
}

/* The field named `name` of a message (for the well-known types). */
static const void *member(const ProtobufCMessage *msg, const char *name, ProtobufCType *type) {
  const ProtobufCFieldDescriptor *f =
      protobuf_c_message_descriptor_get_field_by_name(msg->descriptor, name);
  if (!f) return NULL;
  *type = f->type;
  return (const char *)msg + f->offset;
}

static json_t *scalar(ProtobufCType type, const void *p, const ProtobufCFieldDescriptor *f);

/* The well-known types the API uses; NULL (with *handled false) otherwise. */
static json_t *well_known(const ProtobufCMessage *msg, bool *handled) {
  const char *name = msg->descriptor->name;
  ProtobufCType type;
  *handled = true;
  if (strcmp(name, "google.protobuf.Timestamp") == 0) {
    const int64_t *seconds = member(msg, "seconds", &type);
    const int32_t *nanos = member(msg, "nanos", &type);
    char text[64];
    pbjson_time_text(seconds ? *seconds : 0, nanos ? *nanos : 0, text, sizeof(text));
    return json_string(text);
  }
  if (strcmp(name, "google.protobuf.Duration") == 0) {
    const int64_t *seconds = member(msg, "seconds", &type);
    const int32_t *nanos = member(msg, "nanos", &type);
    char text[64];
    if (nanos && *nanos)
      snprintf(text, sizeof(text), "%" PRId64 ".%09ds", seconds ? *seconds : 0, (int)*nanos);
    else
      snprintf(text, sizeof(text), "%" PRId64 "s", seconds ? *seconds : 0);
    return json_string(text);
  }
  if (strcmp(name, "google.protobuf.FieldMask") == 0) {
    const ProtobufCFieldDescriptor *f =
        protobuf_c_message_descriptor_get_field_by_name(msg->descriptor, "paths");
    size_t n = *(const size_t *)((const char *)msg + f->quantifier_offset);
    char *const *paths = *(char *const *const *)((const char *)msg + f->offset);
    size_t total = 1;
    for (size_t i = 0; i < n; i++)
      total += strlen(paths[i]) + 1;
    char *text = calloc(total, 1);
    if (!text) return NULL;
    for (size_t i = 0, o = 0; i < n; i++)
      o += (size_t)snprintf(text + o, total - o, "%s%s", i ? "," : "", paths[i]);
    json_t *s = json_string(text);
    free(text);
    return s;
  }
  if (strncmp(name, "google.protobuf.", 16) == 0 && strstr(name, "Value") &&
      msg->descriptor->n_fields == 1 && strcmp(msg->descriptor->fields[0].name, "value") == 0) {
    const ProtobufCFieldDescriptor *f = &msg->descriptor->fields[0];
    return scalar(f->type, (const char *)msg + f->offset, f);
  }
  *handled = false;
  return NULL;
}

static json_t *scalar(ProtobufCType type, const void *p, const ProtobufCFieldDescriptor *f) {
  switch (type) {
  case PROTOBUF_C_TYPE_INT32:
  case PROTOBUF_C_TYPE_SINT32:
  case PROTOBUF_C_TYPE_SFIXED32: return json_integer(*(const int32_t *)p);
  case PROTOBUF_C_TYPE_UINT32:
  case PROTOBUF_C_TYPE_FIXED32: return json_integer(*(const uint32_t *)p);
  case PROTOBUF_C_TYPE_INT64:
  case PROTOBUF_C_TYPE_SINT64:
  case PROTOBUF_C_TYPE_SFIXED64: return json_integer(*(const int64_t *)p);
  case PROTOBUF_C_TYPE_UINT64:
  case PROTOBUF_C_TYPE_FIXED64: {
    uint64_t v = *(const uint64_t *)p;
    if (v <= (uint64_t)INT64_MAX) return json_integer((json_int_t)v);
    char text[32];
    snprintf(text, sizeof(text), "%" PRIu64, v);
    return json_string(text);
  }
  case PROTOBUF_C_TYPE_FLOAT: return json_real(*(const float *)p);
  case PROTOBUF_C_TYPE_DOUBLE: return json_real(*(const double *)p);
  case PROTOBUF_C_TYPE_BOOL: return json_boolean(*(const protobuf_c_boolean *)p);
  case PROTOBUF_C_TYPE_ENUM: {
    int v = *(const int *)p;
    const ProtobufCEnumValue *ev =
        f ? protobuf_c_enum_descriptor_get_value(f->descriptor, v) : NULL;
    return ev ? json_string(ev->name) : json_integer(v);
  }
  case PROTOBUF_C_TYPE_STRING: {
    const char *s = *(char *const *)p;
    return json_string(s ? s : "");
  }
  case PROTOBUF_C_TYPE_BYTES: return base64((const ProtobufCBinaryData *)p);
  case PROTOBUF_C_TYPE_MESSAGE: {
    const ProtobufCMessage *m = *(ProtobufCMessage *const *)p;
    return m ? pbjson_message(m) : json_null();
  }
  }
  return json_null();
}

static size_t element_size(ProtobufCType type) {
  switch (type) {
  case PROTOBUF_C_TYPE_INT32:
  case PROTOBUF_C_TYPE_SINT32:
  case PROTOBUF_C_TYPE_SFIXED32:
  case PROTOBUF_C_TYPE_UINT32:
  case PROTOBUF_C_TYPE_FIXED32: return 4;
  case PROTOBUF_C_TYPE_INT64:
  case PROTOBUF_C_TYPE_SINT64:
  case PROTOBUF_C_TYPE_SFIXED64:
  case PROTOBUF_C_TYPE_UINT64:
  case PROTOBUF_C_TYPE_FIXED64: return 8;
  case PROTOBUF_C_TYPE_FLOAT: return sizeof(float);
  case PROTOBUF_C_TYPE_DOUBLE: return sizeof(double);
  case PROTOBUF_C_TYPE_BOOL: return sizeof(protobuf_c_boolean);
  case PROTOBUF_C_TYPE_ENUM: return sizeof(int);
  case PROTOBUF_C_TYPE_STRING: return sizeof(char *);
  case PROTOBUF_C_TYPE_BYTES: return sizeof(ProtobufCBinaryData);
  case PROTOBUF_C_TYPE_MESSAGE: return sizeof(ProtobufCMessage *);
  }
  return 0;
}

/* Whether a singular field is present (message set, oneof member chosen,
 * proto2/proto3-optional has_ flag). */
static bool present(const ProtobufCMessage *msg, const ProtobufCFieldDescriptor *f) {
  const char *base = (const char *)msg;
  if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)
    return *(const uint32_t *)(base + f->quantifier_offset) == f->id;
  if (f->type == PROTOBUF_C_TYPE_MESSAGE) return *(void *const *)(base + f->offset) != NULL;
  if (f->label == PROTOBUF_C_LABEL_OPTIONAL && f->type != PROTOBUF_C_TYPE_STRING)
    return *(const protobuf_c_boolean *)(base + f->quantifier_offset);
  return true;
}

json_t *pbjson_message(const ProtobufCMessage *msg) {
  bool handled;
  json_t *wk = well_known(msg, &handled);
  if (handled) return wk;
  json_t *obj = json_object();
  if (!obj) return NULL;
  const ProtobufCMessageDescriptor *d = msg->descriptor;
  for (unsigned i = 0; i < d->n_fields; i++) {
    const ProtobufCFieldDescriptor *f = &d->fields[i];
    const char *base = (const char *)msg;
    char key[128];
    json_t *value;
    pbjson_key(f->name, key, sizeof(key));
    if (f->label == PROTOBUF_C_LABEL_REPEATED) {
      size_t n = *(const size_t *)(base + f->quantifier_offset);
      const char *items = *(const char *const *)(base + f->offset);
      size_t size = element_size(f->type);
      value = json_array();
      for (size_t k = 0; value && k < n; k++)
        json_array_append_new(value, scalar(f->type, items + k * size, f));
    } else {
      if (!present(msg, f)) continue;
      value = scalar(f->type, base + f->offset, f);
    }
    if (!value || json_object_set_new(obj, key, value) != 0) {
      json_decref(obj);
      return NULL;
    }
  }
  return obj;
}
