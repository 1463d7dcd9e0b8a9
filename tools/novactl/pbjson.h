/*
 * pbjson.h - protobuf-c messages as jansson values, by walking their
 * descriptors, so every response prints as JSON without per-message code.
 *
 * The mapping follows proto3 JSON: lowerCamelCase keys, enums by name,
 * google.protobuf.Timestamp as an RFC 3339 string, wrapper types as their
 * value, FieldMask as comma-separated paths, bytes as base64. Departures,
 * chosen for scripts: every singular scalar field is present (defaults
 * included) and 64-bit integers are JSON numbers. Unset message fields are
 * absent.
 */
#ifndef NOVACTL_PBJSON_H
#define NOVACTL_PBJSON_H

#include <jansson.h>
#include <novacron/novacron.h>
#include <stddef.h>

/* The message as a JSON object; NULL only when out of memory. */
json_t *pbjson_message(const ProtobufCMessage *msg);

/* "snake_case" -> "snakeCase" into buf (truncated to len). */
void pbjson_key(const char *field_name, char *buf, size_t len);

/* Seconds since the epoch as RFC 3339 ("2024-05-01T12:00:00Z") into buf;
 * "-" for 0. */
void pbjson_time_text(int64_t seconds, int32_t nanos, char *buf, size_t len);

#endif
