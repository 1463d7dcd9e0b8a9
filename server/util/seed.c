/*
 * seed.c - NoCloud seed images with libisofs (util/seed.h).
 */
#include "util/seed.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <time.h>

/* libisofs.h uses these types without including their headers, and
 * declares struct burn_source (which this file reads the image from)
 * only when told that libburn.h is not there to do it */
#define LIBISOFS_WITHOUT_LIBBURN 1
#include <libisofs/libisofs.h>

static pthread_once_t iso_once = PTHREAD_ONCE_INIT;
static int iso_init_rc = -1;

static void iso_start(void) {
  iso_init_rc = iso_init();
  if (iso_init_rc >= 0) iso_set_msgs_severities("NEVER", "NEVER", "libisofs");
}

static int fail(char *err, size_t errlen, const char *what, int rc) {
  if (err && errlen) snprintf(err, errlen, "building the config drive: %s (libisofs %d)", what, rc);
  return -1;
}

/* A file of `len` bytes copied from `data` into the image's root. */
static int add_file(IsoDir *root, const char *name, const char *data, size_t len, char *err,
                    size_t errlen) {
  /* the memory stream owns its buffer (free()); an empty file still
   * needs one */
  unsigned char *copy = malloc(len ? len : 1);
  if (!copy) return fail(err, errlen, "out of memory", 0);
  memcpy(copy, data, len);
  IsoStream *stream = NULL;
  int rc = iso_memory_stream_new(copy, len, &stream);
  if (rc < 0) {
    free(copy);
    return fail(err, errlen, "a file stream", rc);
  }
  rc = iso_tree_add_new_file(root, name, stream, NULL); /* takes our reference */
  if (rc < 0) {
    iso_stream_unref(stream);
    return fail(err, errlen, "adding a file", rc);
  }
  return 0;
}

int nc_seed_image(const char *user_data, size_t user_len, const char *meta_data,
                  unsigned char **out, size_t *len, char *err, size_t errlen) {
  *out = NULL;
  *len = 0;
  pthread_once(&iso_once, iso_start);
  if (iso_init_rc < 0) return fail(err, errlen, "initialization", iso_init_rc);
  IsoImage *image = NULL;
  IsoWriteOpts *opts = NULL;
  struct burn_source *src = NULL;
  unsigned char *buf = NULL;
  int rc = iso_image_new("cidata", &image);
  if (rc < 0) return fail(err, errlen, "a new image", rc);
  int result = -1;
  if (add_file(iso_image_get_root(image), "user-data", user_data, user_len, err, errlen) < 0 ||
      add_file(iso_image_get_root(image), "meta-data", meta_data, strlen(meta_data), err, errlen) <
          0)
    goto done;
  if ((rc = iso_write_opts_new(&opts, 0)) < 0) {
    fail(err, errlen, "write options", rc);
    goto done;
  }
  /* "user-data" is not an ISO 9660 level-1 name: guests read the Rock
   * Ridge (Linux) or Joliet (Windows) names */
  iso_write_opts_set_rockridge(opts, 1);
  iso_write_opts_set_joliet(opts, 1);
  if ((rc = iso_image_create_burn_source(image, opts, &src)) < 0) {
    fail(err, errlen, "generating the image", rc);
    src = NULL;
    goto done;
  }
  off_t size = src->get_size(src);
  if (size <= 0 || size > 64 * 1024 * 1024) {
    fail(err, errlen, "an unexpected image size", (int)size);
    goto done;
  }
  if (!(buf = malloc((size_t)size))) {
    fail(err, errlen, "out of memory", 0);
    goto done;
  }
  size_t got = 0;
  while (got < (size_t)size) {
    size_t want = (size_t)size - got < 65536 ? (size_t)size - got : 65536;
    int n = src->read_xt(src, buf + got, (int)want);
    if (n <= 0) break;
    got += (size_t)n;
  }
  if (got != (size_t)size) {
    fail(err, errlen, "the image ended early", (int)got);
    goto done;
  }
  *out = buf;
  *len = got;
  buf = NULL;
  result = 0;
done:
  if (src) {
    if (result != 0 && src->cancel) src->cancel(src);
    src->free_data(src);
    free(src);
  }
  free(buf);
  if (opts) iso_write_opts_free(opts);
  iso_image_unref(image);
  return result;
}
