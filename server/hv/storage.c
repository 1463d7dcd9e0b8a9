/*
 * storage.c - storage pools and volumes of one host: pools known by their
 * UUID and converged (defined, built, started, autostarted), volumes by
 * name within a pool: create, clone on one host, copy between hosts over
 * libvirt streams, import of an image file through a transient pool,
 * resize and delete.
 *
 * A missing pool or volume is NOT_FOUND, decided here at the lookup (hv.c
 * converts libvirt's "no storage pool" into FAILED_PRECONDITION, which is
 * what a pool vanishing during a call is). The test driver lacks volume
 * resize and wipe: they are emulated here, as hv.h documents.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

#include "hv/internal.h"
#include "util/log.h"

/* ---------------------------------------------------------------------- */
/* lookups                                                                 */

/* Finds pool `uuid`: NOT_FOUND when no pool has it, FAILED_PRECONDITION
 * when `active` is required and it is stopped. */
static int pool_lookup(hv_conn *c, const char *uuid, bool active, virStoragePoolPtr *out, char *err,
                       size_t errlen) {
  *out = NULL;
  if (!uuid || !hv_uuid_valid(uuid))
    return hv_fail(HV_INVALID_ARGUMENT, err, errlen, "pool uuid: not a UUID");
  virStoragePoolPtr pool = virStoragePoolLookupByUUIDString(c->conn, uuid);
  if (!pool) {
    bool missing = hv_virerr_code() == VIR_ERR_NO_STORAGE_POOL;
    int rc = hv_conn_fail_op(c, "looking up the storage pool", err, errlen);
    if (missing && rc != HV_UNAVAILABLE)
      rc = hv_fail(HV_NOT_FOUND, err, errlen, "storage pool %s not found", uuid);
    return rc;
  }
  int is_active = active ? virStoragePoolIsActive(pool) : 1;
  if (is_active != 1) {
    int rc = is_active < 0 ? hv_conn_fail_op(c, "reading the storage pool", err, errlen)
                           : hv_fail(HV_FAILED_PRECONDITION, err, errlen,
                                     "storage pool %s is not active", uuid);
    virStoragePoolFree(pool);
    return rc;
  }
  *out = pool;
  return HV_OK;
}

/* Finds volume `name` of `pool`: NOT_FOUND when the pool has none. */
static int vol_lookup(hv_conn *c, virStoragePoolPtr pool, const char *name, virStorageVolPtr *out,
                      char *err, size_t errlen) {
  *out = virStorageVolLookupByName(pool, name);
  if (*out) return HV_OK;
  bool missing = hv_virerr_code() == VIR_ERR_NO_STORAGE_VOL;
  int rc = hv_conn_fail_op(c, "looking up the volume", err, errlen);
  if (missing && rc != HV_UNAVAILABLE)
    rc = hv_fail(HV_NOT_FOUND, err, errlen, "volume %s not found in storage pool %s", name,
                 virStoragePoolGetName(pool));
  return rc;
}

/* Path, format and sizes of a volume. A volume without a format (a
 * logical volume) is raw. */
static int vol_fill(hv_conn *c, virStorageVolPtr vol, hv_vol_info *info, char *err, size_t errlen) {
  if (!info) return HV_OK;
  memset(info, 0, sizeof(*info));
  virStorageVolInfo vi;
  if (virStorageVolGetInfo(vol, &vi) < 0)
    return hv_conn_fail_op(c, "reading the volume", err, errlen);
  char *path = virStorageVolGetPath(vol);
  char *xml = path ? virStorageVolGetXMLDesc(vol, 0) : NULL;
  int rc = HV_OK;
  if (!xml) {
    rc = hv_conn_fail_op(c, "reading the volume", err, errlen);
  } else {
    bool backing;
    snprintf(info->path, sizeof(info->path), "%s", path);
    hv_xml_volume_parse(xml, info->format, sizeof(info->format), &backing);
    if (!info->format[0]) snprintf(info->format, sizeof(info->format), "raw");
    info->capacity = (int64_t)vi.capacity;
    info->allocation = (int64_t)vi.allocation;
  }
  free(xml);
  free(path);
  return rc;
}

/* OK when `pool` has no volume `name`; ALREADY_EXISTS with *info filled
 * when it has (a retried create converges on it). */
static int vol_absent(hv_conn *c, virStoragePoolPtr pool, const char *name, hv_vol_info *info,
                      char *err, size_t errlen) {
  virStorageVolPtr vol = virStorageVolLookupByName(pool, name);
  if (!vol) {
    if (hv_virerr_code() != VIR_ERR_NO_STORAGE_VOL)
      return hv_conn_fail_op(c, "looking up the volume", err, errlen);
    virResetLastError();
    return HV_OK;
  }
  int rc = vol_fill(c, vol, info, err, errlen);
  virStorageVolFree(vol);
  if (rc != HV_OK) return rc;
  return hv_fail(HV_ALREADY_EXISTS, err, errlen, "volume %s already exists in storage pool %s",
                 name, virStoragePoolGetName(pool));
}

/* The arguments every volume creation checks before connecting. */
static int check_vol(const char *name, const char *format, int64_t capacity, char *err,
                     size_t errlen) {
  if (!name || !hv_xml_name_ok(name, 255))
    return hv_fail(HV_INVALID_ARGUMENT, err, errlen,
                   "volume name: required, at most 255 bytes of printable UTF-8 without '/'");
  if (!format || (strcmp(format, "qcow2") != 0 && strcmp(format, "raw") != 0))
    return hv_fail(HV_INVALID_ARGUMENT, err, errlen, "format: qcow2 or raw");
  if (capacity < 0) return hv_fail(HV_INVALID_ARGUMENT, err, errlen, "capacity: negative");
  return HV_OK;
}

/* ---------------------------------------------------------------------- */
/* pools                                                                   */

static int pool_fill(hv_conn *c, virStoragePoolPtr pool, hv_pool_info *info, char *err,
                     size_t errlen) {
  if (!info) return HV_OK;
  memset(info, 0, sizeof(*info));
  virStoragePoolInfo pi;
  int autostart = 0;
  int active = virStoragePoolIsActive(pool);
  if (active < 0 || virStoragePoolGetInfo(pool, &pi) < 0 ||
      virStoragePoolGetAutostart(pool, &autostart) < 0)
    return hv_conn_fail_op(c, "reading the storage pool", err, errlen);
  info->active = active == 1;
  info->autostart = autostart == 1;
  info->capacity = (int64_t)pi.capacity;
  info->allocation = (int64_t)pi.allocation;
  info->available = (int64_t)pi.available;
  return HV_OK;
}

/* Defines a new pool after ruling out the clashes libvirt would only call
 * "operation failed": another pool with the name or the target path. */
static int pool_define(hv_conn *c, const hv_pool_spec *spec, const char *xml,
                       virStoragePoolPtr *out, char *err, size_t errlen) {
  *out = NULL;
  char type[16], target[512];
  hv_xml_pool_parse(xml, type, sizeof(type), target, sizeof(target));
  virStoragePoolPtr *pools = NULL;
  int n = virConnectListAllStoragePools(c->conn, &pools, 0);
  if (n < 0) return hv_conn_fail_op(c, "listing storage pools", err, errlen);
  int rc = HV_OK;
  for (int i = 0; i < n && rc == HV_OK; i++) {
    const char *name = virStoragePoolGetName(pools[i]);
    char *other = virStoragePoolGetXMLDesc(pools[i], 0);
    char other_type[16], other_target[512];
    hv_xml_pool_parse(other, other_type, sizeof(other_type), other_target, sizeof(other_target));
    free(other);
    if (name && strcmp(name, spec->name) == 0)
      rc = hv_fail(HV_ALREADY_EXISTS, err, errlen, "the host already has a storage pool named %s",
                   spec->name);
    else if (other_target[0] && strcmp(other_target, target) == 0)
      rc = hv_fail(HV_ALREADY_EXISTS, err, errlen, "storage pool %s already uses %s",
                   name ? name : "?", target);
  }
  for (int i = 0; i < n; i++)
    virStoragePoolFree(pools[i]);
  free(pools);
  virResetLastError();
  if (rc != HV_OK) return rc;
  *out = virStoragePoolDefineXML(c->conn, xml, 0);
  return *out ? HV_OK : hv_conn_fail_op(c, "defining the storage pool", err, errlen);
}

/* Starts a stopped pool, building it when the start fails for want of
 * its storage (dir, netfs: the target directory; logical with devices:
 * the volume group, never over a device that holds data), and sets
 * autostart. */
static int pool_converge(hv_conn *c, virStoragePoolPtr pool, const hv_pool_spec *spec, char *err,
                         size_t errlen) {
  int active = virStoragePoolIsActive(pool);
  if (active < 0) return hv_conn_fail_op(c, "reading the storage pool", err, errlen);
  if (active == 0 && virStoragePoolCreate(pool, 0) < 0) {
    if (spec->type == HV_POOL_LOGICAL && spec->ndevices == 0)
      return hv_conn_fail_op(c, "starting the storage pool", err, errlen);
    virResetLastError();
    unsigned flags = spec->type == HV_POOL_LOGICAL ? VIR_STORAGE_POOL_BUILD_NO_OVERWRITE : 0;
    if (virStoragePoolBuild(pool, flags) < 0)
      return hv_conn_fail_op(c, "building the storage pool", err, errlen);
    if (virStoragePoolCreate(pool, 0) < 0)
      return hv_conn_fail_op(c, "starting the storage pool", err, errlen);
  }
  if (virStoragePoolSetAutostart(pool, spec->autostart ? 1 : 0) < 0)
    return hv_conn_fail_op(c, "setting the storage pool's autostart", err, errlen);
  return HV_OK;
}

int hv_pool_create(hv *h, const char *host_id, const hv_pool_spec *spec, hv_pool_info *info,
                   char *err, size_t errlen) {
  if (info) memset(info, 0, sizeof(*info));
  char *xml = hv_pool_xml(spec, err, errlen);
  if (!xml) return HV_INVALID_ARGUMENT;
  hv_conn c;
  int rc = hv_conn_get(h, host_id, &c, err, errlen);
  if (rc != HV_OK) {
    free(xml);
    return rc;
  }
  virStoragePoolPtr pool = virStoragePoolLookupByUUIDString(c.conn, spec->uuid);
  if (!pool && hv_virerr_code() != VIR_ERR_NO_STORAGE_POOL)
    rc = hv_conn_fail_op(&c, "looking up the storage pool", err, errlen);
  else if (!pool)
    rc = pool_define(&c, spec, xml, &pool, err, errlen);
  if (rc == HV_OK) rc = pool_converge(&c, pool, spec, err, errlen);
  if (rc == HV_OK) rc = pool_fill(&c, pool, info, err, errlen);
  if (pool) virStoragePoolFree(pool);
  hv_conn_put(&c);
  free(xml);
  return rc;
}

int hv_pool_delete(hv *h, const char *host_id, const char *uuid, bool delete_storage, char *err,
                   size_t errlen) {
  hv_conn c;
  int rc = hv_conn_get(h, host_id, &c, err, errlen);
  if (rc != HV_OK) return rc;
  virStoragePoolPtr pool = NULL;
  rc = pool_lookup(&c, uuid, false, &pool, err, errlen);
  int active = 0, persistent = 1;
  char *xml = NULL;
  if (rc == HV_OK) {
    active = virStoragePoolIsActive(pool);
    persistent = virStoragePoolIsPersistent(pool);
    xml = virStoragePoolGetXMLDesc(pool, 0);
    if (active < 0 || persistent < 0 || !xml)
      rc = hv_conn_fail_op(&c, "reading the storage pool", err, errlen);
  }
  if (rc == HV_OK && active == 1 && virStoragePoolDestroy(pool) < 0)
    rc = hv_conn_fail_op(&c, "stopping the storage pool", err, errlen);
  char type[16] = "", target[512];
  if (xml) hv_xml_pool_parse(xml, type, sizeof(type), target, sizeof(target));
  /* netfs storage is someone else's export: only the mount goes */
  if (rc == HV_OK && delete_storage && persistent == 1 && strcmp(type, "netfs") != 0 &&
      virStoragePoolDelete(pool, 0) < 0) {
    rc = hv_conn_fail_op(&c, "deleting the storage pool's storage", err, errlen);
    /* left as found: running, with its volumes reachable */
    if (active == 1 && virStoragePoolCreate(pool, 0) < 0) virResetLastError();
  }
  if (rc == HV_OK && persistent == 1 && virStoragePoolUndefine(pool) < 0)
    rc = hv_conn_fail_op(&c, "undefining the storage pool", err, errlen);
  free(xml);
  if (pool) virStoragePoolFree(pool);
  hv_conn_put(&c);
  return rc;
}

int hv_pool_info_get(hv *h, const char *host_id, const char *uuid, bool refresh, hv_pool_info *info,
                     char *err, size_t errlen) {
  if (info) memset(info, 0, sizeof(*info));
  hv_conn c;
  int rc = hv_conn_get(h, host_id, &c, err, errlen);
  if (rc != HV_OK) return rc;
  virStoragePoolPtr pool = NULL;
  rc = pool_lookup(&c, uuid, false, &pool, err, errlen);
  if (rc == HV_OK && refresh) {
    int active = virStoragePoolIsActive(pool);
    if (active < 0 || (active == 1 && virStoragePoolRefresh(pool, 0) < 0))
      rc = hv_conn_fail_op(&c, "refreshing the storage pool", err, errlen);
  }
  if (rc == HV_OK) rc = pool_fill(&c, pool, info, err, errlen);
  if (pool) virStoragePoolFree(pool);
  hv_conn_put(&c);
  return rc;
}

int hv_pool_start(hv *h, const char *host_id, const char *uuid, char *err, size_t errlen) {
  hv_conn c;
  int rc = hv_conn_get(h, host_id, &c, err, errlen);
  if (rc != HV_OK) return rc;
  virStoragePoolPtr pool = NULL;
  rc = pool_lookup(&c, uuid, false, &pool, err, errlen);
  int active = rc == HV_OK ? virStoragePoolIsActive(pool) : 0;
  if (rc == HV_OK && (active < 0 || (active == 0 && virStoragePoolCreate(pool, 0) < 0)))
    rc = hv_conn_fail_op(&c, "starting the storage pool", err, errlen);
  if (pool) virStoragePoolFree(pool);
  hv_conn_put(&c);
  return rc;
}

/* ---------------------------------------------------------------------- */
/* volumes                                                                 */

int hv_vol_create(hv *h, const char *host_id, const char *pool_uuid, const char *name,
                  const char *format, int64_t capacity, hv_vol_info *info, char *err,
                  size_t errlen) {
  if (info) memset(info, 0, sizeof(*info));
  char *xml = hv_xml_volume(name, format, capacity, err, errlen);
  if (!xml) return HV_INVALID_ARGUMENT;
  hv_conn c;
  int rc = hv_conn_get(h, host_id, &c, err, errlen);
  if (rc != HV_OK) {
    free(xml);
    return rc;
  }
  virStoragePoolPtr pool = NULL;
  virStorageVolPtr vol = NULL;
  rc = pool_lookup(&c, pool_uuid, true, &pool, err, errlen);
  if (rc == HV_OK) rc = vol_absent(&c, pool, name, info, err, errlen);
  if (rc == HV_OK && !(vol = virStorageVolCreateXML(pool, xml, 0)))
    rc = hv_conn_fail_op(&c, "creating the volume", err, errlen);
  if (rc == HV_OK) rc = vol_fill(&c, vol, info, err, errlen);
  if (vol) virStorageVolFree(vol);
  if (pool) virStoragePoolFree(pool);
  hv_conn_put(&c);
  free(xml);
  return rc;
}

/* Grows a new volume to `capacity` when its creation left it smaller (a
 * backend that copied the source's size); deletes it when that fails. */
static int grow_new(hv_conn *c, virStorageVolPtr vol, int64_t capacity, char *err, size_t errlen) {
  virStorageVolInfo vi;
  int rc = HV_OK;
  if (virStorageVolGetInfo(vol, &vi) < 0)
    rc = hv_conn_fail_op(c, "reading the new volume", err, errlen);
  else if ((int64_t)vi.capacity < capacity &&
           virStorageVolResize(vol, (unsigned long long)capacity, 0) < 0)
    rc = hv_conn_fail_op(c, "growing the new volume", err, errlen);
  if (rc != HV_OK && virStorageVolDelete(vol, 0) < 0) virResetLastError();
  return rc;
}

/* Creates `name` in `pool` from `src` of the same host, converting to
 * `format` and growing to `capacity` when that is larger than the
 * source's virtual size. */
static int create_from(hv_conn *c, virStoragePoolPtr pool, const char *name, const char *format,
                       int64_t capacity, virStorageVolPtr src, virStorageVolPtr *out, char *err,
                       size_t errlen) {
  *out = NULL;
  virStorageVolInfo si;
  if (virStorageVolGetInfo(src, &si) < 0)
    return hv_conn_fail_op(c, "reading the source volume", err, errlen);
  int64_t want = capacity > (int64_t)si.capacity ? capacity : (int64_t)si.capacity;
  char *xml = hv_xml_volume(name, format, want, err, errlen);
  if (!xml) return HV_INVALID_ARGUMENT;
  virStorageVolPtr vol = virStorageVolCreateXMLFrom(pool, xml, src, 0);
  /* The test driver looks the source up in the new volume's pool only;
   * its volumes hold no data, so a blank one is the same copy. */
  if (!vol && hv_conn_is_test(c) && hv_virerr_code() == VIR_ERR_NO_STORAGE_VOL) {
    virResetLastError();
    vol = virStorageVolCreateXML(pool, xml, 0);
  }
  free(xml);
  if (!vol) return hv_conn_fail_op(c, "copying the volume", err, errlen);
  int rc = grow_new(c, vol, want, err, errlen);
  if (rc == HV_OK)
    *out = vol;
  else
    virStorageVolFree(vol);
  return rc;
}

int hv_vol_clone(hv *h, const char *host_id, const char *pool_uuid, const char *name,
                 const char *format, int64_t capacity, const char *src_pool_uuid,
                 const char *src_name, hv_vol_info *info, char *err, size_t errlen) {
  if (info) memset(info, 0, sizeof(*info));
  int rc = check_vol(name, format, capacity, err, errlen);
  if (rc != HV_OK) return rc;
  if (!src_name || !hv_xml_name_ok(src_name, 255))
    return hv_fail(HV_INVALID_ARGUMENT, err, errlen, "source volume name: invalid");
  hv_conn c;
  rc = hv_conn_get(h, host_id, &c, err, errlen);
  if (rc != HV_OK) return rc;
  virStoragePoolPtr pool = NULL, src_pool = NULL;
  virStorageVolPtr src = NULL, vol = NULL;
  rc = pool_lookup(&c, pool_uuid, true, &pool, err, errlen);
  if (rc == HV_OK) rc = vol_absent(&c, pool, name, info, err, errlen);
  if (rc == HV_OK) rc = pool_lookup(&c, src_pool_uuid, true, &src_pool, err, errlen);
  if (rc == HV_OK) rc = vol_lookup(&c, src_pool, src_name, &src, err, errlen);
  if (rc == HV_OK) rc = create_from(&c, pool, name, format, capacity, src, &vol, err, errlen);
  if (rc == HV_OK) rc = vol_fill(&c, vol, info, err, errlen);
  if (vol) virStorageVolFree(vol);
  if (src) virStorageVolFree(src);
  if (src_pool) virStoragePoolFree(src_pool);
  if (pool) virStoragePoolFree(pool);
  hv_conn_put(&c);
  return rc;
}

/* ---------------------------------------------------------------------- */
/* copies between hosts                                                    */

enum { COPY_CHUNK = 1 << 20 };

/* Streams the content of `from` (on `src`) into `to` (on `dst`): the
 * volume file's bytes, so both must have the same format. */
static int stream_copy(hv_conn *src, virStorageVolPtr from, hv_conn *dst, virStorageVolPtr to,
                       char *err, size_t errlen) {
  virStreamPtr in = virStreamNew(src->conn, 0);
  virStreamPtr out = in ? virStreamNew(dst->conn, 0) : NULL;
  char *buf = out ? malloc(COPY_CHUNK) : NULL;
  bool reading = false, writing = false;
  int rc = HV_OK;
  if (!in)
    rc = hv_conn_fail_op(src, "opening a stream on the source host", err, errlen);
  else if (!out)
    rc = hv_conn_fail_op(dst, "opening a stream on the destination host", err, errlen);
  else if (!buf)
    rc = hv_fail(HV_INTERNAL, err, errlen, "out of memory");
  else if (virStorageVolDownload(from, in, 0, 0, 0) < 0)
    rc = hv_conn_fail_op(src, "downloading the source volume", err, errlen);
  else
    reading = true;
  if (rc == HV_OK && virStorageVolUpload(to, out, 0, 0, 0) < 0)
    rc = hv_conn_fail_op(dst, "uploading into the new volume", err, errlen);
  else if (rc == HV_OK)
    writing = true;
  while (rc == HV_OK) {
    int n = virStreamRecv(in, buf, COPY_CHUNK);
    if (n < 0) rc = hv_conn_fail_op(src, "reading the source volume", err, errlen);
    if (n <= 0) break;
    for (int done = 0; rc == HV_OK && done < n;) {
      int m = virStreamSend(out, buf + done, (size_t)(n - done));
      if (m < 0)
        rc = hv_conn_fail_op(dst, "writing the new volume", err, errlen);
      else
        done += m;
    }
  }
  if (rc == HV_OK) {
    reading = false;
    if (virStreamFinish(in) < 0) rc = hv_conn_fail_op(src, "finishing the download", err, errlen);
  }
  if (rc == HV_OK) {
    writing = false;
    if (virStreamFinish(out) < 0) rc = hv_conn_fail_op(dst, "finishing the upload", err, errlen);
  }
  if (reading && virStreamAbort(in) < 0) virResetLastError();
  if (writing && virStreamAbort(out) < 0) virResetLastError();
  free(buf);
  if (out) virStreamFree(out);
  if (in) virStreamFree(in);
  return rc;
}

/* The source side of a copy: its format must be `format` and it must
 * stand alone (a backing file would not travel with it). */
static int copy_source(hv_conn *c, virStorageVolPtr src, const char *format, int64_t *capacity,
                       char *err, size_t errlen) {
  virStorageVolInfo si;
  char *xml = virStorageVolGetXMLDesc(src, 0);
  if (!xml || virStorageVolGetInfo(src, &si) < 0) {
    free(xml);
    return hv_conn_fail_op(c, "reading the source volume", err, errlen);
  }
  char src_format[16];
  bool backing;
  hv_xml_volume_parse(xml, src_format, sizeof(src_format), &backing);
  free(xml);
  if (!src_format[0]) snprintf(src_format, sizeof(src_format), "raw");
  if (strcmp(src_format, format) != 0)
    return hv_fail(HV_INVALID_ARGUMENT, err, errlen,
                   "format: the source volume is %s, and a copy between hosts keeps the format",
                   src_format);
  if (backing)
    return hv_fail(HV_FAILED_PRECONDITION, err, errlen,
                   "the source volume has a backing file, which a copy would not carry");
  *capacity = (int64_t)si.capacity;
  return HV_OK;
}

int hv_vol_copy(hv *h, const char *host_id, const char *pool_uuid, const char *name,
                const char *format, int64_t capacity, const char *src_host_id,
                const char *src_pool_uuid, const char *src_name, hv_vol_info *info, char *err,
                size_t errlen) {
  if (info) memset(info, 0, sizeof(*info));
  if (host_id && src_host_id && strcmp(host_id, src_host_id) == 0)
    return hv_vol_clone(h, host_id, pool_uuid, name, format, capacity, src_pool_uuid, src_name,
                        info, err, errlen);
  int rc = check_vol(name, format, capacity, err, errlen);
  if (rc != HV_OK) return rc;
  if (!src_name || !hv_xml_name_ok(src_name, 255))
    return hv_fail(HV_INVALID_ARGUMENT, err, errlen, "source volume name: invalid");
  hv_conn c, sc;
  rc = hv_conn_get(h, host_id, &c, err, errlen);
  if (rc != HV_OK) return rc;
  rc = hv_conn_get(h, src_host_id, &sc, err, errlen);
  if (rc != HV_OK) {
    hv_conn_put(&c);
    return rc;
  }
  virStoragePoolPtr pool = NULL, src_pool = NULL;
  virStorageVolPtr src = NULL, vol = NULL;
  int64_t src_capacity = 0;
  char *xml = NULL;
  rc = pool_lookup(&c, pool_uuid, true, &pool, err, errlen);
  if (rc == HV_OK) rc = vol_absent(&c, pool, name, info, err, errlen);
  if (rc == HV_OK) rc = pool_lookup(&sc, src_pool_uuid, true, &src_pool, err, errlen);
  if (rc == HV_OK) rc = vol_lookup(&sc, src_pool, src_name, &src, err, errlen);
  if (rc == HV_OK) rc = copy_source(&sc, src, format, &src_capacity, err, errlen);
  /* the copy's content is the source's file: created at the source's
   * size, grown afterwards */
  if (rc == HV_OK && !(xml = hv_xml_volume(name, format, src_capacity, err, errlen)))
    rc = HV_INVALID_ARGUMENT;
  if (rc == HV_OK && !(vol = virStorageVolCreateXML(pool, xml, 0)))
    rc = hv_conn_fail_op(&c, "creating the volume", err, errlen);
  if (rc == HV_OK) {
    rc = stream_copy(&sc, src, &c, vol, err, errlen);
    if (rc != HV_OK && virStorageVolDelete(vol, 0) < 0) {
      nc_log(NC_LOG_WARN, "cannot delete a half-copied volume", LKV_S("host", host_id),
             LKV_S("volume", name));
      virResetLastError();
    }
    if (rc == HV_OK) rc = grow_new(&c, vol, capacity, err, errlen);
  }
  if (rc == HV_OK) rc = vol_fill(&c, vol, info, err, errlen);
  free(xml);
  if (vol) virStorageVolFree(vol);
  if (src) virStorageVolFree(src);
  if (src_pool) virStoragePoolFree(src_pool);
  if (pool) virStoragePoolFree(pool);
  hv_conn_put(&sc);
  hv_conn_put(&c);
  return rc;
}

/* ---------------------------------------------------------------------- */
/* imports                                                                 */

/* qemu-img converts only what libvirt detected as one of these. */
static int check_image_format(const char *format, char *err, size_t errlen) {
  if (!format[0] || strcmp(format, "raw") == 0 || strcmp(format, "qcow2") == 0) return HV_OK;
  return hv_fail(HV_INVALID_ARGUMENT, err, errlen,
                 "the image is %s; only qcow2 and raw images are imported", format);
}

/* The transient pools over image directories that this process created:
 * libvirt allows one pool per directory, so concurrent imports from one
 * directory share it, and the last one out destroys it. */
typedef struct import_pool {
  const hv *h;
  char *host_id;
  char *dir;
  char *name;
  int users;
  struct import_pool *next;
} import_pool;

static pthread_mutex_t import_mu = PTHREAD_MUTEX_INITIALIZER;
static import_pool *import_pools;

static const char IMPORT_PREFIX[] = "nc-import-";

/* FNV-1a: a short, stable name for a directory's transient pool. */
static uint32_t dir_hash(const char *dir) {
  uint32_t hash = 2166136261u;
  for (const unsigned char *p = (const unsigned char *)dir; *p; p++)
    hash = (hash ^ *p) * 16777619u;
  return hash;
}

/* The pool whose target is `dir`, if any (*out stays NULL otherwise). A
 * stopped one is FAILED_PRECONDITION: libvirt would refuse a second pool
 * there. *adopt when it is a transient import pool nobody here holds (left
 * behind by an earlier process): this import then owns it. */
static int pool_over_dir(hv_conn *c, const char *dir, virStoragePoolPtr *out, bool *adopt,
                         char *err, size_t errlen) {
  *out = NULL;
  *adopt = false;
  virStoragePoolPtr *pools = NULL;
  int n = virConnectListAllStoragePools(c->conn, &pools, 0);
  if (n < 0) return hv_conn_fail_op(c, "listing storage pools", err, errlen);
  int rc = HV_OK;
  for (int i = 0; i < n && rc == HV_OK && !*out; i++) {
    char *xml = virStoragePoolGetXMLDesc(pools[i], 0);
    char type[16], target[512];
    hv_xml_pool_parse(xml, type, sizeof(type), target, sizeof(target));
    free(xml);
    if (strcmp(target, dir) != 0) continue;
    const char *name = virStoragePoolGetName(pools[i]);
    if (virStoragePoolIsActive(pools[i]) != 1) {
      rc = hv_fail(HV_FAILED_PRECONDITION, err, errlen,
                   "the image's directory belongs to storage pool %s, which is not active",
                   name ? name : "?");
    } else {
      *out = pools[i];
      pools[i] = NULL;
      *adopt = name && strncmp(name, IMPORT_PREFIX, sizeof(IMPORT_PREFIX) - 1) == 0 &&
               virStoragePoolIsPersistent(*out) == 0;
    }
  }
  for (int i = 0; i < n; i++)
    if (pools[i]) virStoragePoolFree(pools[i]);
  free(pools);
  virResetLastError();
  return rc;
}

/* An active pool over `dir`: the one this process shares, one that is
 * there already, or a new transient one. *held is set when this process
 * owns it (release with import_release). */
static int import_acquire(hv_conn *c, const char *host_id, const char *dir, virStoragePoolPtr *out,
                          import_pool **held, char *err, size_t errlen) {
  *out = NULL;
  *held = NULL;
  pthread_mutex_lock(&import_mu);
  import_pool *e = import_pools;
  while (e && !(e->h == c->h && strcmp(e->host_id, host_id) == 0 && strcmp(e->dir, dir) == 0))
    e = e->next;
  virStoragePoolPtr pool = NULL;
  if (e && !(pool = virStoragePoolLookupByName(c->conn, e->name)))
    virResetLastError(); /* gone with a libvirtd restart: make it again */
  bool ours = e != NULL;
  int rc = HV_OK;
  if (!pool) rc = pool_over_dir(c, dir, &pool, &ours, err, errlen);
  if (rc == HV_OK && !pool) {
    char name[32];
    snprintf(name, sizeof(name), "%s%08x", IMPORT_PREFIX, (unsigned)dir_hash(dir));
    char *xml = hv_xml_dir_pool(name, dir, err, errlen);
    if (!xml)
      rc = HV_INVALID_ARGUMENT;
    else if (!(pool = virStoragePoolCreateXML(c->conn, xml, 0)))
      rc = hv_conn_fail_op(c, "creating a storage pool over the image's directory", err, errlen);
    free(xml);
    ours = true;
  }
  if (rc == HV_OK && ours && !e) {
    e = calloc(1, sizeof(*e));
    const char *name = virStoragePoolGetName(pool);
    if (e) {
      e->h = c->h;
      e->host_id = strdup(host_id);
      e->dir = strdup(dir);
      e->name = strdup(name ? name : "");
    }
    if (!e || !e->host_id || !e->dir || !e->name) {
      if (e) {
        free(e->host_id);
        free(e->dir);
        free(e->name);
        free(e);
      }
      e = NULL;
      rc = hv_fail(HV_INTERNAL, err, errlen, "out of memory");
    } else {
      e->next = import_pools;
      import_pools = e;
    }
  }
  if (rc == HV_OK && ours) {
    e->users++;
    *held = e;
  }
  pthread_mutex_unlock(&import_mu);
  if (rc == HV_OK)
    *out = pool;
  else if (pool)
    virStoragePoolFree(pool);
  return rc;
}

/* Frees an import's pool; the last user of a pool this process owns
 * destroys it (a transient pool then vanishes). */
static void import_release(virStoragePoolPtr pool, import_pool *held) {
  if (held) {
    pthread_mutex_lock(&import_mu);
    if (--held->users == 0) {
      if (virStoragePoolDestroy(pool) < 0) {
        virErrorPtr e = virGetLastError();
        nc_log(NC_LOG_WARN, "cannot remove an import's transient storage pool",
               LKV_S("pool", held->name), LKV_S("error", e && e->message ? e->message : "?"));
        virResetLastError();
      }
      for (import_pool **pp = &import_pools; *pp; pp = &(*pp)->next)
        if (*pp == held) {
          *pp = held->next;
          break;
        }
      free(held->host_id);
      free(held->dir);
      free(held->name);
      free(held);
    }
    pthread_mutex_unlock(&import_mu);
  }
  virStoragePoolFree(pool);
}

/* An image path: absolute, without "." or ".." components, naming a file;
 * `clean` gets it with repeated slashes collapsed and `dir` its
 * directory. */
static int image_path_split(const char *path, char *clean, size_t csize, char *dir, size_t dsize,
                            char *err, size_t errlen) {
  if (!path || !hv_text_ok(path, 4095) || path[0] != '/')
    return hv_fail(HV_INVALID_ARGUMENT, err, errlen, "image_path: absolute path required");
  size_t n = 0;
  for (const char *p = path; *p; p++) {
    if (*p == '/' && n > 0 && clean[n - 1] == '/') continue;
    if (n + 1 >= csize) return hv_fail(HV_INVALID_ARGUMENT, err, errlen, "image_path: too long");
    clean[n++] = *p;
  }
  clean[n] = '\0';
  if (clean[n - 1] == '/')
    return hv_fail(HV_INVALID_ARGUMENT, err, errlen, "image_path: names a directory");
  for (const char *p = clean; *p; p++) {
    if (*p != '/') continue;
    size_t len = strcspn(p + 1, "/");
    if ((len == 1 && p[1] == '.') || (len == 2 && p[1] == '.' && p[2] == '.'))
      return hv_fail(HV_INVALID_ARGUMENT, err, errlen,
                     "image_path: '.' and '..' components are not allowed");
  }
  const char *slash = strrchr(clean, '/');
  size_t dlen = slash == clean ? 1 : (size_t)(slash - clean);
  if (dlen >= dsize) return hv_fail(HV_INVALID_ARGUMENT, err, errlen, "image_path: too long");
  memcpy(dir, clean, dlen);
  dir[dlen] = '\0';
  return HV_OK;
}

/* The image volume at `path` of the import pool, rescanning the pool
 * once when libvirt does not know it yet. */
static int image_lookup(hv_conn *c, const char *host_id, virStoragePoolPtr pool, const char *path,
                        virStorageVolPtr *out, char *err, size_t errlen) {
  *out = virStorageVolLookupByPath(c->conn, path);
  if (!*out && hv_virerr_code() == VIR_ERR_NO_STORAGE_VOL) {
    virResetLastError();
    if (virStoragePoolRefresh(pool, 0) < 0)
      return hv_conn_fail_op(c, "scanning the image's directory", err, errlen);
    *out = virStorageVolLookupByPath(c->conn, path);
  }
  if (*out) return HV_OK;
  bool missing = hv_virerr_code() == VIR_ERR_NO_STORAGE_VOL;
  int rc = hv_conn_fail_op(c, "looking up the image", err, errlen);
  if (missing && rc != HV_UNAVAILABLE)
    rc = hv_fail(HV_NOT_FOUND, err, errlen, "no image at %s on host %s", path, host_id);
  return rc;
}

int hv_vol_import(hv *h, const char *host_id, const char *pool_uuid, const char *name,
                  const char *format, int64_t capacity, const char *image_path, hv_vol_info *info,
                  char *err, size_t errlen) {
  if (info) memset(info, 0, sizeof(*info));
  int rc = check_vol(name, format, capacity, err, errlen);
  if (rc != HV_OK) return rc;
  char path[4096], dir[4096];
  rc = image_path_split(image_path, path, sizeof(path), dir, sizeof(dir), err, errlen);
  if (rc != HV_OK) return rc;
  hv_conn c;
  rc = hv_conn_get(h, host_id, &c, err, errlen);
  if (rc != HV_OK) return rc;
  virStoragePoolPtr pool = NULL, image_pool = NULL;
  virStorageVolPtr image = NULL, vol = NULL;
  import_pool *held = NULL;
  rc = pool_lookup(&c, pool_uuid, true, &pool, err, errlen);
  if (rc == HV_OK) rc = vol_absent(&c, pool, name, info, err, errlen);
  if (rc == HV_OK) rc = import_acquire(&c, host_id, dir, &image_pool, &held, err, errlen);
  if (rc == HV_OK) rc = image_lookup(&c, host_id, image_pool, path, &image, err, errlen);
  if (rc == HV_OK) {
    /* qemu-img would follow a backing file anywhere on the host */
    char *xml = virStorageVolGetXMLDesc(image, 0);
    char image_format[16];
    bool backing = false;
    if (!xml)
      rc = hv_conn_fail_op(&c, "reading the image", err, errlen);
    else
      hv_xml_volume_parse(xml, image_format, sizeof(image_format), &backing);
    free(xml);
    if (rc == HV_OK && backing)
      rc = hv_fail(HV_INVALID_ARGUMENT, err, errlen, "image_path: %s has a backing file", path);
    if (rc == HV_OK) rc = check_image_format(image_format, err, errlen);
  }
  if (rc == HV_OK) rc = create_from(&c, pool, name, format, capacity, image, &vol, err, errlen);
  if (image) virStorageVolFree(image);
  if (image_pool) import_release(image_pool, held);
  if (rc == HV_OK) rc = vol_fill(&c, vol, info, err, errlen);
  if (vol) virStorageVolFree(vol);
  if (pool) virStoragePoolFree(pool);
  hv_conn_put(&c);
  return rc;
}

/* ---------------------------------------------------------------------- */
/* uploads (an image the caller downloads)                                 */

enum { UPLOAD_HEAD = 65536 };

struct hv_upload {
  hv_conn c;
  virStoragePoolPtr pool;
  virStorageVolPtr part;
  virStreamPtr st; /* NULL: the test driver, which only counts */
  char name[256];
  char part_name[272];
  int64_t length, sent;
  unsigned char head[UPLOAD_HEAD]; /* the image's first bytes, for check_header */
  size_t headlen;
};

static uint64_t be64(const unsigned char *p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; i++)
    v = v << 8 | p[i];
  return v;
}

static uint32_t be32(const unsigned char *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* What qemu-img would follow out of the image: a qcow2 backing file, an
 * external data file (incompatible feature bit 2, or its header
 * extension 0x44415441), each of which can name any file of the host.
 * libvirt's volume XML shows the first only. */
static int check_header(const unsigned char *h, size_t n, char *err, size_t errlen) {
  if (n < 4 || memcmp(h, "QFI\xfb", 4) != 0) return HV_OK; /* not qcow2 */
  if (n < 104) return hv_fail(HV_INVALID_ARGUMENT, err, errlen, "the qcow2 header is cut short");
  uint32_t version = be32(h + 4);
  if (be64(h + 8) != 0)
    return hv_fail(HV_INVALID_ARGUMENT, err, errlen, "the image has a backing file");
  if (version < 3) return HV_OK; /* no feature bits, no extensions beyond v2's */
  if (be64(h + 72) & 4)
    return hv_fail(HV_INVALID_ARGUMENT, err, errlen, "the image has an external data file");
  size_t off = be32(h + 100);
  while (off + 8 <= n) {
    uint32_t type = be32(h + off), len = be32(h + off + 4);
    if (type == 0) return HV_OK;
    if (type == 0x44415441u)
      return hv_fail(HV_INVALID_ARGUMENT, err, errlen, "the image names an external data file");
    off += 8 + ((size_t)len + 7) / 8 * 8;
  }
  return hv_fail(HV_INVALID_ARGUMENT, err, errlen,
                 "the qcow2 header extensions do not end within the first %d bytes", UPLOAD_HEAD);
}

/* A pool rescan, waiting (up to 10 min) while libvirt is building
 * another volume in the pool: it refuses to rescan meanwhile. */
static int refresh_pool(hv_conn *c, virStoragePoolPtr pool, char *err, size_t errlen) {
  for (int i = 0; i < 600; i++) {
    if (virStoragePoolRefresh(pool, 0) == 0) return HV_OK;
    virErrorPtr e = virGetLastError();
    if (!e || !e->message || !strstr(e->message, "asynchronous jobs")) break;
    virResetLastError();
    struct timespec pause = {1, 0};
    nanosleep(&pause, NULL);
  }
  return hv_conn_fail_op(c, "scanning the pool", err, errlen);
}

static void upload_free(hv_upload *u) {
  if (u->st) {
    if (virStreamAbort(u->st) < 0) virResetLastError();
    virStreamFree(u->st);
  }
  if (u->part) {
    if (virStorageVolDelete(u->part, 0) < 0) {
      virErrorPtr e = virGetLastError();
      nc_log(NC_LOG_WARN, "cannot delete an upload's partial volume", LKV_S("volume", u->part_name),
             LKV_S("error", e && e->message ? e->message : "?"));
      virResetLastError();
    }
    virStorageVolFree(u->part);
  }
  if (u->pool) virStoragePoolFree(u->pool);
  hv_conn_put(&u->c);
  free(u);
}

int hv_vol_upload_open(hv *h, const char *host_id, const char *pool_uuid, const char *name,
                       int64_t length, hv_upload **out, hv_vol_info *info, char *err,
                       size_t errlen) {
  *out = NULL;
  if (info) memset(info, 0, sizeof(*info));
  int rc = check_vol(name, "raw", length, err, errlen);
  if (rc != HV_OK) return rc;
  if (length <= 0) return hv_fail(HV_INVALID_ARGUMENT, err, errlen, "the image is empty");
  hv_upload *u = calloc(1, sizeof(*u));
  if (!u) return hv_fail(HV_INTERNAL, err, errlen, "out of memory");
  snprintf(u->name, sizeof(u->name), "%s", name);
  snprintf(u->part_name, sizeof(u->part_name), "%s.part", name);
  u->length = length;
  if ((rc = hv_conn_get(h, host_id, &u->c, err, errlen)) != HV_OK) {
    free(u);
    return rc;
  }
  rc = pool_lookup(&u->c, pool_uuid, true, &u->pool, err, errlen);
  if (rc == HV_OK) rc = vol_absent(&u->c, u->pool, name, info, err, errlen);
  if (rc == HV_OK) { /* the part of an interrupted upload goes first */
    virStorageVolPtr old = virStorageVolLookupByName(u->pool, u->part_name);
    if (old) {
      if (virStorageVolDelete(old, 0) < 0)
        rc = hv_conn_fail_op(&u->c, "removing an interrupted upload", err, errlen);
      virStorageVolFree(old);
    } else {
      virResetLastError();
    }
  }
  char *xml = NULL;
  if (rc == HV_OK && !(xml = hv_xml_volume(u->part_name, "raw", length, err, errlen)))
    rc = HV_INVALID_ARGUMENT;
  if (rc == HV_OK && !(u->part = virStorageVolCreateXML(u->pool, xml, 0)))
    rc = hv_conn_fail_op(&u->c, "creating the volume to upload into", err, errlen);
  free(xml);
  if (rc == HV_OK && !(u->st = virStreamNew(u->c.conn, 0)))
    rc = hv_conn_fail_op(&u->c, "opening a stream", err, errlen);
  if (rc == HV_OK && virStorageVolUpload(u->part, u->st, 0, (unsigned long long)length, 0) < 0) {
    if (hv_virerr_unsupported() && hv_conn_is_test(&u->c)) {
      virResetLastError(); /* its volumes hold no data: count the bytes only */
      virStreamFree(u->st);
      u->st = NULL;
    } else {
      rc = hv_conn_fail_op(&u->c, "uploading into the volume", err, errlen);
    }
  }
  if (rc != HV_OK) {
    upload_free(u);
    return rc;
  }
  *out = u;
  return HV_OK;
}

int hv_vol_upload_write(hv_upload *u, const void *buf, size_t n, char *err, size_t errlen) {
  if (u->sent + (int64_t)n > u->length)
    return hv_fail(HV_FAILED_PRECONDITION, err, errlen,
                   "more bytes arrived than the %" PRId64 " announced", u->length);
  const char *p = buf;
  if (u->headlen < UPLOAD_HEAD) {
    size_t k = n < UPLOAD_HEAD - u->headlen ? n : UPLOAD_HEAD - u->headlen;
    memcpy(u->head + u->headlen, buf, k);
    u->headlen += k;
  }
  for (size_t done = 0; u->st && done < n;) {
    int m = virStreamSend(u->st, p + done, n - done);
    if (m < 0) return hv_conn_fail_op(&u->c, "writing the volume", err, errlen);
    done += (size_t)m;
  }
  u->sent += (int64_t)n;
  return HV_OK;
}

int hv_vol_upload_finish(hv_upload *u, bool ok, const char *format, int64_t capacity,
                         hv_vol_info *info, char *err, size_t errlen) {
  if (info) memset(info, 0, sizeof(*info));
  int rc = ok ? check_vol(u->name, format, capacity, err, errlen) : HV_CANCELLED;
  if (rc == HV_OK && u->sent != u->length)
    rc = hv_fail(HV_FAILED_PRECONDITION, err, errlen,
                 "the image ended after %" PRId64 " of %" PRId64 " bytes", u->sent, u->length);
  if (rc == HV_OK) rc = check_header(u->head, u->headlen, err, errlen);
  if (rc == HV_OK && u->st) {
    int f = virStreamFinish(u->st);
    virStreamFree(u->st);
    u->st = NULL;
    if (f < 0) rc = hv_conn_fail_op(&u->c, "finishing the upload", err, errlen);
  }
  /* libvirt detects the image's format when it scans the pool again */
  if (rc == HV_OK) rc = refresh_pool(&u->c, u->pool, err, errlen);
  if (rc == HV_OK) {
    virStorageVolFree(u->part);
    u->part = NULL;
    rc = vol_lookup(&u->c, u->pool, u->part_name, &u->part, err, errlen);
  }
  if (rc == HV_OK) { /* qemu-img would follow a backing file anywhere on the host */
    char *xml = virStorageVolGetXMLDesc(u->part, 0);
    char image_format[16];
    bool backing = false;
    if (!xml)
      rc = hv_conn_fail_op(&u->c, "reading the uploaded image", err, errlen);
    else
      hv_xml_volume_parse(xml, image_format, sizeof(image_format), &backing);
    free(xml);
    if (rc == HV_OK && backing)
      rc = hv_fail(HV_INVALID_ARGUMENT, err, errlen, "the image has a backing file");
    if (rc == HV_OK) rc = check_image_format(image_format, err, errlen);
  }
  virStorageVolPtr vol = NULL;
  if (rc == HV_OK)
    rc = create_from(&u->c, u->pool, u->name, format, capacity, u->part, &vol, err, errlen);
  if (rc == HV_OK) rc = vol_fill(&u->c, vol, info, err, errlen);
  if (vol) virStorageVolFree(vol);
  upload_free(u); /* the part goes in every case */
  return rc;
}

/* ---------------------------------------------------------------------- */
/* small files the server writes (config drives)                           */

int hv_vol_put(hv *h, const char *host_id, const char *pool_uuid, const char *name,
               const void *bytes, size_t len, hv_vol_info *info, char *err, size_t errlen) {
  if (info) memset(info, 0, sizeof(*info));
  int rc = check_vol(name, "raw", (int64_t)len, err, errlen);
  if (rc != HV_OK) return rc;
  if (len == 0) return hv_fail(HV_INVALID_ARGUMENT, err, errlen, "no content");
  hv_conn c;
  if ((rc = hv_conn_get(h, host_id, &c, err, errlen)) != HV_OK) return rc;
  virStoragePoolPtr pool = NULL;
  virStorageVolPtr vol = NULL;
  virStreamPtr st = NULL;
  char *xml = NULL;
  rc = pool_lookup(&c, pool_uuid, true, &pool, err, errlen);
  if (rc == HV_OK && (vol = virStorageVolLookupByName(pool, name))) {
    /* derived content: what is there is replaced */
    if (virStorageVolDelete(vol, 0) < 0)
      rc = hv_conn_fail_op(&c, "replacing the file", err, errlen);
    virStorageVolFree(vol);
    vol = NULL;
  }
  virResetLastError();
  if (rc == HV_OK && !(xml = hv_xml_volume(name, "raw", (int64_t)len, err, errlen)))
    rc = HV_INVALID_ARGUMENT;
  if (rc == HV_OK && !(vol = virStorageVolCreateXML(pool, xml, 0)))
    rc = hv_conn_fail_op(&c, "creating the file", err, errlen);
  if (rc == HV_OK && !(st = virStreamNew(c.conn, 0)))
    rc = hv_conn_fail_op(&c, "opening a stream", err, errlen);
  bool sending = false;
  if (rc == HV_OK) {
    if (virStorageVolUpload(vol, st, 0, (unsigned long long)len, 0) == 0)
      sending = true;
    else if (hv_virerr_unsupported() && hv_conn_is_test(&c))
      virResetLastError(); /* the test driver holds no data */
    else
      rc = hv_conn_fail_op(&c, "writing the file", err, errlen);
  }
  const char *p = bytes;
  for (size_t done = 0; rc == HV_OK && sending && done < len;) {
    int m = virStreamSend(st, p + done, len - done);
    if (m < 0)
      rc = hv_conn_fail_op(&c, "writing the file", err, errlen);
    else
      done += (size_t)m;
  }
  if (rc == HV_OK && sending) {
    sending = false;
    if (virStreamFinish(st) < 0) rc = hv_conn_fail_op(&c, "finishing the file", err, errlen);
  }
  if (sending && virStreamAbort(st) < 0) virResetLastError();
  if (rc == HV_OK) rc = vol_fill(&c, vol, info, err, errlen);
  if (rc != HV_OK && vol && virStorageVolDelete(vol, 0) < 0) virResetLastError();
  if (st) virStreamFree(st);
  free(xml);
  if (vol) virStorageVolFree(vol);
  if (pool) virStoragePoolFree(pool);
  hv_conn_put(&c);
  return rc;
}

/* ---------------------------------------------------------------------- */
/* resize, delete, info                                                    */

/* The test driver has no virStorageVolResize, and its volumes hold no
 * data: the volume is made again at the new size, in the same format. */
static int resize_emulated(hv_conn *c, virStoragePoolPtr pool, virStorageVolPtr *vol,
                           const char *name, int64_t capacity, char *err, size_t errlen) {
  hv_vol_info info;
  int rc = vol_fill(c, *vol, &info, err, errlen);
  char *xml = rc == HV_OK ? hv_xml_volume(name, info.format, capacity, err, errlen) : NULL;
  if (rc == HV_OK && !xml) rc = HV_INVALID_ARGUMENT;
  if (rc == HV_OK && virStorageVolDelete(*vol, 0) < 0)
    rc = hv_conn_fail_op(c, "resizing the volume (deleting it)", err, errlen);
  if (rc == HV_OK) {
    virStorageVolFree(*vol);
    if (!(*vol = virStorageVolCreateXML(pool, xml, 0)))
      rc = hv_conn_fail_op(c, "resizing the volume (creating it again)", err, errlen);
  }
  free(xml);
  return rc;
}

int hv_vol_resize(hv *h, const char *host_id, const char *pool_uuid, const char *name,
                  int64_t capacity, char *err, size_t errlen) {
  if (!name || !hv_xml_name_ok(name, 255))
    return hv_fail(HV_INVALID_ARGUMENT, err, errlen, "volume name: invalid");
  if (capacity <= 0) return hv_fail(HV_INVALID_ARGUMENT, err, errlen, "capacity: must be positive");
  hv_conn c;
  int rc = hv_conn_get(h, host_id, &c, err, errlen);
  if (rc != HV_OK) return rc;
  virStoragePoolPtr pool = NULL;
  virStorageVolPtr vol = NULL;
  virStorageVolInfo vi;
  rc = pool_lookup(&c, pool_uuid, true, &pool, err, errlen);
  if (rc == HV_OK) rc = vol_lookup(&c, pool, name, &vol, err, errlen);
  if (rc == HV_OK && virStorageVolGetInfo(vol, &vi) < 0)
    rc = hv_conn_fail_op(&c, "reading the volume", err, errlen);
  if (rc == HV_OK && (int64_t)vi.capacity != capacity) {
    unsigned flags = capacity < (int64_t)vi.capacity ? VIR_STORAGE_VOL_RESIZE_SHRINK : 0;
    if (virStorageVolResize(vol, (unsigned long long)capacity, flags) < 0) {
      if (hv_virerr_unsupported() && hv_conn_is_test(&c)) {
        virResetLastError();
        rc = resize_emulated(&c, pool, &vol, name, capacity, err, errlen);
      } else {
        rc = hv_conn_fail_op(&c, "resizing the volume", err, errlen);
      }
    }
  }
  if (vol) virStorageVolFree(vol);
  if (pool) virStoragePoolFree(pool);
  hv_conn_put(&c);
  return rc;
}

int hv_vol_delete(hv *h, const char *host_id, const char *pool_uuid, const char *name, bool wipe,
                  char *err, size_t errlen) {
  if (!name || !hv_xml_name_ok(name, 255))
    return hv_fail(HV_INVALID_ARGUMENT, err, errlen, "volume name: invalid");
  hv_conn c;
  int rc = hv_conn_get(h, host_id, &c, err, errlen);
  if (rc != HV_OK) return rc;
  virStoragePoolPtr pool = NULL;
  virStorageVolPtr vol = NULL;
  rc = pool_lookup(&c, pool_uuid, true, &pool, err, errlen);
  if (rc == HV_OK) rc = vol_lookup(&c, pool, name, &vol, err, errlen);
  /* the test driver has no virStorageVolWipe, and no data to wipe */
  if (rc == HV_OK && wipe && virStorageVolWipe(vol, 0) < 0) {
    if (hv_virerr_unsupported() && hv_conn_is_test(&c))
      virResetLastError();
    else
      rc = hv_conn_fail_op(&c, "wiping the volume", err, errlen);
  }
  if (rc == HV_OK && virStorageVolDelete(vol, 0) < 0)
    rc = hv_conn_fail_op(&c, "deleting the volume", err, errlen);
  if (vol) virStorageVolFree(vol);
  if (pool) virStoragePoolFree(pool);
  hv_conn_put(&c);
  return rc;
}

int hv_vol_info_get(hv *h, const char *host_id, const char *pool_uuid, const char *name,
                    hv_vol_info *info, char *err, size_t errlen) {
  if (info) memset(info, 0, sizeof(*info));
  if (!name || !hv_xml_name_ok(name, 255))
    return hv_fail(HV_INVALID_ARGUMENT, err, errlen, "volume name: invalid");
  hv_conn c;
  int rc = hv_conn_get(h, host_id, &c, err, errlen);
  if (rc != HV_OK) return rc;
  virStoragePoolPtr pool = NULL;
  virStorageVolPtr vol = NULL;
  rc = pool_lookup(&c, pool_uuid, true, &pool, err, errlen);
  if (rc == HV_OK) rc = vol_lookup(&c, pool, name, &vol, err, errlen);
  if (rc == HV_OK) rc = vol_fill(&c, vol, info, err, errlen);
  if (vol) virStorageVolFree(vol);
  if (pool) virStoragePoolFree(pool);
  hv_conn_put(&c);
  return rc;
}
