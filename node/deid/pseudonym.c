/*
 * pseudonym.c - HMAC-SHA256 pseudonyms, 2.25 UIDs and date shifts (see pseudonym.h). PURE.
 */
#include "pseudonym.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <string.h>

#include "../util/alloc.h"
#include "../util/err.h"

static const char label[] = "mitral-deid-v1";

int mt_deid_hmac(const uint8_t *key, size_t key_len, const char *domain, const void *msg,
                 size_t msg_len, uint8_t out[32])
{
    if (!key || key_len == 0 || key_len > 1024 || !domain)
        return MT_EINVAL;
    size_t ld = strlen(domain);
    size_t n = sizeof(label) + ld + 1 + msg_len; /* both labels keep their NUL */
    uint8_t stackbuf[512];
    uint8_t *buf = n <= sizeof(stackbuf) ? stackbuf : mt_malloc(n);
    memcpy(buf, label, sizeof(label));
    memcpy(buf + sizeof(label), domain, ld + 1);
    if (msg_len)
        memcpy(buf + sizeof(label) + ld + 1, msg, msg_len);
    unsigned int outlen = 0;
    uint8_t *r = HMAC(EVP_sha256(), key, (int)key_len, buf, n, out, &outlen);
    if (buf != stackbuf)
        mt_free(buf);
    return r && outlen == 32 ? 0 : MT_EINVAL;
}

int mt_deid_pseudonym(const uint8_t *key, size_t key_len, const char *prefix, const char *id,
                      size_t id_len, char *out, size_t outsz)
{
    static const char b32[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    uint8_t h[32];
    size_t lp = prefix ? strlen(prefix) : 0;
    if (lp > 16 || outsz < lp + 17)
        return MT_EINVAL;
    int rc = mt_deid_hmac(key, key_len, "pid", id, id_len, h);
    if (rc)
        return rc;
    memcpy(out, prefix, lp);
    /* 16 characters x 5 bits = the first 80 bits of the MAC. */
    for (size_t i = 0; i < 16; i++) {
        size_t bit = i * 5;
        unsigned v = ((unsigned)h[bit / 8] << 8 | h[bit / 8 + 1]) >> (11 - bit % 8);
        out[lp + i] = b32[v & 31];
    }
    out[lp + 16] = '\0';
    return 0;
}

int mt_deid_uid(const uint8_t *key, size_t key_len, const char *uid, size_t uid_len, char *out,
                size_t outsz)
{
    uint8_t h[32];
    if (outsz < MT_DEID_UID_MAX)
        return MT_EINVAL;
    int rc = mt_deid_hmac(key, key_len, "uid", uid, uid_len, h);
    if (rc)
        return rc;
    /* Decimal of the 128-bit big-endian integer h[0..16): repeated division by 10. */
    uint8_t num[16];
    memcpy(num, h, 16);
    char digits[40];
    size_t nd = 0;
    for (;;) {
        unsigned rem = 0;
        int nonzero = 0;
        for (size_t i = 0; i < 16; i++) {
            unsigned cur = rem << 8 | num[i];
            num[i] = (uint8_t)(cur / 10);
            rem = cur % 10;
            nonzero |= num[i];
        }
        digits[nd++] = (char)('0' + rem);
        if (!nonzero)
            break;
    }
    memcpy(out, "2.25.", 5);
    for (size_t i = 0; i < nd; i++)
        out[5 + i] = digits[nd - 1 - i];
    out[5 + nd] = '\0';
    return 0;
}

int32_t mt_deid_date_shift(const uint8_t *key, size_t key_len, const char *patient, size_t len,
                           int32_t min_days, int32_t max_days)
{
    uint8_t h[32];
    if (max_days <= min_days || mt_deid_hmac(key, key_len, "shift", patient, len, h))
        return min_days;
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | h[i];
    uint64_t span = (uint64_t)((int64_t)max_days - min_days) + 1;
    return (int32_t)((int64_t)min_days + (int64_t)(v % span));
}
