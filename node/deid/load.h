/*
 * load.h - reading what the de-identification engine needs from the file system: a profile by
 * NAME (deid-profiles/NAME.yaml) or FILE, and the site secret from a key file. NOT pure (it
 * reads files); shared by `mitral deid` (cli.c) and the node's start-up (node.c), so both
 * refuse the same bad key files with the same messages. Nothing read is ever logged.
 */
#ifndef MT_DEID_LOAD_H
#define MT_DEID_LOAD_H

#include <stddef.h>
#include <stdint.h>

#include "../util/buf.h"
#include "profile.h"

/* Read a whole regular file of at most limit bytes; *out (NUL-terminated, mt_free) and *len.
 * Returns 0, MT_ETOOBIG, MT_EINVAL (not a regular file), or an errno code. */
int mt_deid_read_file(const char *path, size_t limit, uint8_t **out, size_t *len);
/* The same into b (reset first; its storage is kept and reused from one call to the next, so a
 * batch allocates once for its largest file): b->len bytes, b->data[b->len] == 0. */
int mt_deid_read_file_into(const char *path, size_t limit, mt_buf_t *b);

/* Is `name` a FILE (contains '/' or ends in .yaml) rather than a profile NAME? */
int mt_deid_is_profile_file(const char *name);

/* Compile profile `name`: a NAME is <dir>/NAME.yaml (dir NULL or "": MT_DEID_PROFILES_DIR, the
 * build's deid-profiles/); a FILE is read as is and its `base` looked up beside it, then in
 * dir. On error returns MT_ECONF/MT_ENOENT... and err holds "file:line: message". */
int mt_deid_load_profile(const char *name, const char *dir, mt_deid_profile_t **out, char *err,
                         size_t errsz);

/* The key file's bytes are the secret. Refused (MT_ECONF, err says why) when group or others
 * have any permission on the file, when it holds fewer than 16 bytes or more than 4096. *key is
 * released with mt_deid_key_free, which wipes it. */
int mt_deid_load_key(const char *path, uint8_t **key, size_t *len, char *err, size_t errsz);
void mt_deid_key_free(uint8_t *key, size_t len);

#endif
