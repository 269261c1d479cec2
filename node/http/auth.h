/*
 * auth.h - DICOMweb credentials: HTTP Basic (RFC 7617) and bearer tokens (RFC 6750) checked
 * against the hashed secrets of the `users:` config. PURE (OpenSSL's libcrypto only).
 *
 * Stored forms: "sha256$HEX" (SHA-256 of the secret: fine for long random tokens) and
 * "pbkdf2-sha256$ITER$SALTHEX$HASHHEX" (PBKDF2-HMAC-SHA256, 32-byte hash: for passwords).
 * Comparisons are constant-time (CRYPTO_memcmp).
 */
#ifndef MT_HTTP_AUTH_H
#define MT_HTTP_AUTH_H

#include <stdbool.h>
#include <stddef.h>

#include "../conf/conf.h"

/* Does secret match the stored hash? */
bool mt_auth_verify(const char *stored, const char *secret, size_t n);
/* A new "pbkdf2-sha256$..." for secret (random salt), into out. 0 or negative error. */
int mt_auth_hash(const char *secret, size_t n, unsigned iterations, char *out, size_t outsz);

typedef enum mt_auth_result {
    MT_AUTH_OK,
    MT_AUTH_NONE,    /* no Authorization header */
    MT_AUTH_BAD,     /* malformed or wrong credentials */
} mt_auth_result_t;
/* The user an Authorization header value names, or NULL with the reason. */
const mt_conf_user_t *mt_auth_check(const mt_conf_t *c, const char *authorization,
                                    mt_auth_result_t *res);
/* May user (NULL: the anonymous loopback admin when no users are configured) use project
 * (NULL: /dicomweb, every study)? */
bool mt_auth_allows(const mt_conf_user_t *u, const char *project);

#endif
