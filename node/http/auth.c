/*
 * auth.c - HTTP Basic / bearer credentials against hashed secrets. Contract: auth.h. PURE.
 */
#include "auth.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../util/err.h"

#define MAX_ITER 10000000u

static int unhex(const char *s, size_t n, unsigned char *out, size_t outsz)
{
    if (n % 2 || n / 2 > outsz)
        return -1;
    for (size_t i = 0; i < n; i += 2) {
        int v = 0;
        for (int k = 0; k < 2; k++) {
            char c = s[i + k];
            int d = c >= '0' && c <= '9'   ? c - '0'
                    : c >= 'a' && c <= 'f' ? c - 'a' + 10
                    : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                           : -1;
            if (d < 0)
                return -1;
            v = v * 16 + d;
        }
        out[i / 2] = (unsigned char)v;
    }
    return (int)(n / 2);
}

static void hex(const unsigned char *p, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++)
        sprintf(out + 2 * i, "%02x", p[i]);
}

bool mt_auth_verify(const char *stored, const char *secret, size_t n)
{
    if (!stored || !secret)
        return false;
    unsigned char want[64], got[64];
    if (strncmp(stored, "sha256$", 7) == 0) {
        if (unhex(stored + 7, strlen(stored + 7), want, sizeof want) != 32)
            return false;
        SHA256((const unsigned char *)secret, n, got);
        return CRYPTO_memcmp(want, got, 32) == 0;
    }
    if (strncmp(stored, "pbkdf2-sha256$", 14) == 0) {
        const char *p = stored + 14;
        char *end;
        unsigned long it = strtoul(p, &end, 10);
        if (*end != '$' || it == 0 || it > MAX_ITER)
            return false;
        const char *salt = end + 1;
        const char *d = strchr(salt, '$');
        if (!d)
            return false;
        unsigned char s[64];
        int sn = unhex(salt, (size_t)(d - salt), s, sizeof s);
        int wn = unhex(d + 1, strlen(d + 1), want, sizeof want);
        if (sn <= 0 || wn != 32)
            return false;
        if (!PKCS5_PBKDF2_HMAC(secret, (int)n, s, sn, (int)it, EVP_sha256(), 32, got))
            return false;
        return CRYPTO_memcmp(want, got, 32) == 0;
    }
    return false;
}

int mt_auth_hash(const char *secret, size_t n, unsigned iterations, char *out, size_t outsz)
{
    unsigned char salt[16], h[32];
    if (RAND_bytes(salt, sizeof salt) != 1)
        return MT_EIO;
    if (!PKCS5_PBKDF2_HMAC(secret, (int)n, salt, sizeof salt, (int)iterations, EVP_sha256(),
                           32, h))
        return MT_EIO;
    char sh[33], hh[65];
    hex(salt, sizeof salt, sh);
    hex(h, sizeof h, hh);
    int w = snprintf(out, outsz, "pbkdf2-sha256$%u$%s$%s", iterations, sh, hh);
    return w > 0 && (size_t)w < outsz ? 0 : MT_ETOOBIG;
}

static int b64val(int c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

/* base64 decode into out (NUL-terminated); -1 when malformed. */
static int b64dec(const char *s, char *out, size_t outsz)
{
    size_t o = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (; *s && *s != '='; s++) {
        int v = b64val((unsigned char)*s);
        if (v < 0)
            return -1;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (o + 1 >= outsz)
                return -1;
            out[o++] = (char)((acc >> bits) & 0xFF);
        }
    }
    out[o] = 0;
    return (int)o;
}

const mt_conf_user_t *mt_auth_check(const mt_conf_t *c, const char *a, mt_auth_result_t *res)
{
    *res = MT_AUTH_NONE;
    if (!a || !*a)
        return NULL;
    *res = MT_AUTH_BAD;
    if (strncasecmp(a, "Basic ", 6) == 0) {
        char dec[512];
        const char *p = a + 6;
        while (*p == ' ')
            p++;
        int n = b64dec(p, dec, sizeof dec);
        if (n <= 0 || memchr(dec, 0, (size_t)n))
            return NULL;
        char *colon = strchr(dec, ':');
        if (!colon)
            return NULL;
        *colon = 0;
        const mt_conf_user_t *u = mt_conf_user_by_name(c, dec);
        const char *pw = colon + 1;
        bool ok = u && u->password_hash && mt_auth_verify(u->password_hash, pw, strlen(pw));
        OPENSSL_cleanse(dec, sizeof dec);
        if (!ok)
            return NULL;
        *res = MT_AUTH_OK;
        return u;
    }
    if (strncasecmp(a, "Bearer ", 7) == 0) {
        const char *t = a + 7;
        while (*t == ' ')
            t++;
        size_t n = strlen(t);
        if (!n)
            return NULL;
        for (size_t i = 0; i < c->n_users; i++) {
            const mt_conf_user_t *u = &c->users[i];
            if (u->token_hash && mt_auth_verify(u->token_hash, t, n)) {
                *res = MT_AUTH_OK;
                return u;
            }
        }
    }
    return NULL;
}

bool mt_auth_allows(const mt_conf_user_t *u, const char *project)
{
    if (!u)
        return true; /* the loopback admin of a node without users (web.c decides when) */
    if (u->admin)
        return true;
    if (!project)
        return false;
    for (size_t i = 0; i < u->n_projects; i++)
        if (strcmp(u->projects[i], project) == 0)
            return true;
    return false;
}
