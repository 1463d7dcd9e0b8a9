/*
 * seed.h - cloud-init NoCloud seed images (libisofs): an ISO 9660 image
 * labelled "cidata" holding `user-data` and `meta-data` (Rock Ridge and
 * Joliet names), which cloud-init finds on any block device of the guest.
 */
#ifndef NC_UTIL_SEED_H
#define NC_UTIL_SEED_H

#include <stddef.h>

/* Builds the image in memory: *out (malloc'ed, *len bytes, a multiple of
 * 2048). 0 on success, -1 with a message in err. */
int nc_seed_image(const char *user_data, size_t user_len, const char *meta_data,
                  unsigned char **out, size_t *len, char *err, size_t errlen);

#endif
