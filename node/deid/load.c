/*
 * load.c - profile and key files for the de-identification engine (see load.h). NOT pure.
 */
#include "load.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "../util/alloc.h"
#include "../util/buf.h"
#include "../util/err.h"

#ifndef MT_DEID_PROFILES_DIR
#define MT_DEID_PROFILES_DIR "deid-profiles"
#endif

#define MAX_PROFILE ((size_t)4 << 20)
#define MAX_KEY 4096

int mt_deid_read_file_into(const char *path, size_t limit, mt_buf_t *b)
{
    mt_buf_reset(b);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return MT_ERR_FROM_ERRNO();
    struct stat st;
    int rc = 0;
    if (fstat(fd, &st) < 0)
        rc = MT_ERR_FROM_ERRNO();
    else if (!S_ISREG(st.st_mode))
        rc = MT_EINVAL;
    else if ((uint64_t)st.st_size > limit)
        rc = MT_ETOOBIG;
    size_t n = rc ? 0 : (size_t)st.st_size;
    if (!rc && b->cap < n + 1) {
        /* grown once to the largest file seen; no copy of the old bytes is needed */
        mt_free(b->data); /* mt_try_malloc: a file's size must not abort the batch */
        b->data = mt_try_malloc(n + 1);
        b->cap = b->data ? n + 1 : 0;
        if (!b->data)
            rc = MT_ENOMEM;
    }
    while (!rc && b->len < n) {
        ssize_t r = read(fd, b->data + b->len, n - b->len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            rc = r < 0 ? MT_ERR_FROM_ERRNO() : MT_EIO;
        else
            b->len += (size_t)r;
    }
    close(fd);
    if (rc) {
        mt_buf_reset(b);
        return rc;
    }
    b->data[n] = 0;
    return 0;
}

int mt_deid_read_file(const char *path, size_t limit, uint8_t **out, size_t *len)
{
    mt_buf_t b;
    mt_buf_init(&b, limit + 1);
    int rc = mt_deid_read_file_into(path, limit, &b);
    if (rc) {
        mt_buf_dispose(&b);
        *out = NULL;
        *len = 0;
        return rc;
    }
    *out = b.data; /* mt_buf's bytes come from mt_malloc: the caller's mt_free releases them */
    *len = b.len;
    return 0;
}

int mt_deid_is_profile_file(const char *name)
{
    size_t n = strlen(name);
    return strchr(name, '/') || (n > 5 && strcmp(name + n - 5, ".yaml") == 0);
}

/* ---- the resolver handed to mt_deid_profile_load ---- */
typedef struct resolver {
    const char *dir;
    char first_dir[4096]; /* directory of the profile FILE, if one was given */
    struct {
        uint8_t *text;
        char *path;
    } loaded[8];
    size_t n;
} resolver_t;

static int resolve(void *user, const char *name, mt_deid_source_t *out)
{
    resolver_t *r = user;
    if (r->n == sizeof(r->loaded) / sizeof(r->loaded[0]))
        return MT_ETOOBIG;
    char path[4096 + 256];
    uint8_t *text = NULL;
    size_t len = 0;
    int rc = MT_ENOENT;
    if (mt_deid_is_profile_file(name)) {
        snprintf(path, sizeof(path), "%s", name);
        rc = mt_deid_read_file(path, MAX_PROFILE, &text, &len);
    } else {
        if (strchr(name, '.'))
            return MT_EINVAL;
        if (r->first_dir[0]) {
            snprintf(path, sizeof(path), "%s/%s.yaml", r->first_dir, name);
            rc = mt_deid_read_file(path, MAX_PROFILE, &text, &len);
        }
        if (rc) {
            snprintf(path, sizeof(path), "%s/%s.yaml", r->dir, name);
            rc = mt_deid_read_file(path, MAX_PROFILE, &text, &len);
        }
    }
    if (rc)
        return rc;
    r->loaded[r->n].text = text;
    r->loaded[r->n].path = mt_strdup(path);
    out->text = (const char *)text;
    out->len = len;
    out->filename = r->loaded[r->n].path;
    r->n++;
    return 0;
}

int mt_deid_load_profile(const char *name, const char *dir, mt_deid_profile_t **out, char *err,
                         size_t errsz)
{
    resolver_t *rs = mt_calloc(1, sizeof(*rs));
    rs->dir = dir && dir[0] ? dir : MT_DEID_PROFILES_DIR;
    if (mt_deid_is_profile_file(name)) {
        snprintf(rs->first_dir, sizeof(rs->first_dir), "%s", name);
        char *slash = strrchr(rs->first_dir, '/');
        if (slash)
            *slash = '\0';
        else
            snprintf(rs->first_dir, sizeof(rs->first_dir), ".");
    }
    int rc = mt_deid_profile_load(name, resolve, rs, out, err, errsz);
    for (size_t i = 0; i < rs->n; i++) {
        mt_free(rs->loaded[i].text);
        mt_free(rs->loaded[i].path);
    }
    mt_free(rs);
    return rc;
}

int mt_deid_load_key(const char *path, uint8_t **key, size_t *len, char *err, size_t errsz)
{
    *key = NULL;
    *len = 0;
    struct stat st;
    if (stat(path, &st) < 0) {
        int rc = MT_ERR_FROM_ERRNO();
        snprintf(err, errsz, "key file %s: %s", path, strerror(errno));
        return rc;
    }
    if (st.st_mode & (S_IRWXG | S_IRWXO)) {
        snprintf(err, errsz,
                 "key file %s is accessible by group or others; refusing to use it "
                 "(chmod 600 %s)",
                 path, path);
        return MT_ECONF;
    }
    int rc = mt_deid_read_file(path, MAX_KEY, key, len);
    if (rc) {
        snprintf(err, errsz, "key file %s: %s", path,
                 rc == MT_ETOOBIG ? "larger than 4096 bytes" : mt_strerror(rc));
        return rc == MT_ETOOBIG ? MT_ECONF : rc;
    }
    if (*len < 16) {
        snprintf(err, errsz, "key file %s holds %zu bytes; at least 16 are needed", path, *len);
        mt_deid_key_free(*key, *len);
        *key = NULL;
        *len = 0;
        return MT_ECONF;
    }
    return 0;
}

void mt_deid_key_free(uint8_t *key, size_t len)
{
    if (!key)
        return;
    OPENSSL_cleanse(key, len);
    mt_free(key);
}
