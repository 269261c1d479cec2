/*
 * pseudonym.c - HMAC-SHA256 pseudonyms, 2.25 UIDs and date shifts (see pseudonym.h). PURE.
 */
#include "pseudonym.h"

#include <openssl/evp.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/params.h>
#include <stdio.h>
#include <stdbool.h>
#include <string.h>

#include "../util/err.h"
#include "../util/fnv.h"

static const char label[] = "mitral-deid-v1";

/* One keyed HMAC-SHA256 context per thread, kept between calls. OpenSSL's one-shot HMAC()
 * fetches the digest, allocates and keys a context and frees it again on every call: that was
 * most of the engine's cost per UID (perf, docs/deid.md). Here the context is keyed once
 * (EVP_MAC_init with the key hashes it into the inner and outer pads), and every MAC after
 * that re-initialises it with a NULL key, which reuses those pads. The cache holds a copy of
 * the key to tell when a caller passes another one (tests, a reloaded key); it is wiped when
 * replaced. Same bytes out as HMAC(EVP_sha256(), key, label || domain || msg).
 *
 * Beside it, the last MACs computed, direct-mapped by a hash of (domain, msg): the instances
 * of a series repeat their Study, Series and Frame of Reference UIDs, the patient's pseudonym
 * and date shift, and C-STORE maps the SOP Instance UID twice (File Meta and data set), so
 * most MACs of an instance are found here; a UID's slot also keeps the 2.25 text made from
 * its MAC (the 128-bit decimal is most of mt_deid_uid's cost on a hit). The inputs it holds
 * (UIDs, a Patient ID) stay in this thread's memory only, and go with the key. */
#define HMAC_KEY_MAX 1024
#define MAC_CACHE_N 64   /* a power of two */
#define MAC_CACHE_MSG 80 /* domain, NUL, message: a UID (64) or an ID fits */

typedef struct mac_entry {
    uint8_t n; /* bytes in m; 0 = empty */
    char m[MAC_CACHE_MSG];
    uint8_t mac[32];
    char uid[MT_DEID_UID_MAX]; /* domain "uid": mt_deid_uid's text of mac, once made; "" before */
} mac_entry_t;

static _Thread_local struct {
    EVP_MAC_CTX *ctx;
    size_t key_len;
    uint8_t key[HMAC_KEY_MAX];
    mac_entry_t cache[MAC_CACHE_N];
} keyed;

static EVP_MAC_CTX *keyed_ctx(const uint8_t *key, size_t key_len)
{
    /* memcmp, not CRYPTO_memcmp: both sides are this process's own secret (no input of a peer
     * is compared), and the check runs for every MAC, cache hits included (~250 instructions
     * less each). */
    if (keyed.ctx && keyed.key_len == key_len && memcmp(keyed.key, key, key_len) == 0)
        return keyed.ctx;
    EVP_MAC_CTX_free(keyed.ctx);
    keyed.ctx = NULL;
    OPENSSL_cleanse(keyed.key, sizeof(keyed.key));
    OPENSSL_cleanse(keyed.cache, sizeof(keyed.cache));
    EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    EVP_MAC_CTX *c = mac ? EVP_MAC_CTX_new(mac) : NULL;
    EVP_MAC_free(mac); /* the context holds its own reference */
    char digest[] = "SHA256";
    OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
                           OSSL_PARAM_construct_end()};
    if (!c || !EVP_MAC_init(c, key, key_len, params)) {
        EVP_MAC_CTX_free(c);
        return NULL;
    }
    keyed.ctx = c;
    keyed.key_len = key_len;
    memcpy(keyed.key, key, key_len);
    return c;
}

/* FNV-1a of (domain, NUL, msg), already laid out in m. */
static size_t mac_slot(const char *m, size_t n)
{
    return mt_fnv1a32(m, n) & (MAC_CACHE_N - 1);
}

/* The MAC, and its cache slot (NULL: the message does not fit one), which then holds it. */
static int hmac_slot(const uint8_t *key, size_t key_len, const char *domain, const void *msg,
                     size_t msg_len, uint8_t out[32], mac_entry_t **slot_out)
{
    *slot_out = NULL;
    if (!key || key_len == 0 || key_len > HMAC_KEY_MAX || !domain)
        return MT_EINVAL;
    EVP_MAC_CTX *c = keyed_ctx(key, key_len);
    if (!c)
        return MT_EINVAL;
    size_t ld = strlen(domain) + 1;
    mac_entry_t *slot = NULL;
    char m[MAC_CACHE_MSG];
    if (ld + msg_len <= sizeof(m)) {
        memcpy(m, domain, ld);
        if (msg_len)
            memcpy(m + ld, msg, msg_len);
        slot = &keyed.cache[mac_slot(m, ld + msg_len)];
        if (slot->n == ld + msg_len && memcmp(slot->m, m, slot->n) == 0) {
            memcpy(out, slot->mac, 32);
            *slot_out = slot;
            return 0;
        }
    }
    size_t outlen = 0;
    /* both labels keep their NUL */
    if (!EVP_MAC_init(c, NULL, 0, NULL) ||
        !EVP_MAC_update(c, (const uint8_t *)label, sizeof(label)) ||
        !EVP_MAC_update(c, (const uint8_t *)domain, ld) ||
        (msg_len && !EVP_MAC_update(c, msg, msg_len)) || !EVP_MAC_final(c, out, &outlen, 32) ||
        outlen != 32)
        return MT_EINVAL;
    if (slot) {
        slot->n = (uint8_t)(ld + msg_len);
        memcpy(slot->m, m, slot->n);
        memcpy(slot->mac, out, 32);
        slot->uid[0] = '\0';
        *slot_out = slot;
    }
    return 0;
}

int mt_deid_hmac(const uint8_t *key, size_t key_len, const char *domain, const void *msg,
                 size_t msg_len, uint8_t out[32])
{
    mac_entry_t *slot;
    return hmac_slot(key, key_len, domain, msg, msg_len, out, &slot);
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
    mac_entry_t *slot;
    int rc = hmac_slot(key, key_len, "uid", uid, uid_len, h, &slot);
    if (rc)
        return rc;
    if (slot && slot->uid[0]) { /* made before from the same MAC: a series repeats its UIDs */
        memcpy(out, slot->uid, strlen(slot->uid) + 1);
        return 0;
    }
    /* Decimal of the 128-bit big-endian integer h[0..16): split into base-10^19 limbs (at most
     * three), each printed with 64-bit arithmetic; the first without leading zeros. */
    unsigned __int128 v = 0;
    for (size_t i = 0; i < 16; i++)
        v = v << 8 | h[i];
    const uint64_t e19 = 10000000000000000000ull;
    uint64_t limb[3];
    size_t nl = 0;
    do {
        limb[nl++] = (uint64_t)(v % e19);
        v /= e19;
    } while (v);
    char digits[60];
    size_t nd = 0;
    for (size_t l = 0; l < nl; l++) { /* least significant limb first, digits reversed */
        uint64_t x = limb[l];
        for (size_t k = 0; k < 19 && (x || l + 1 < nl); k++) {
            digits[nd++] = (char)('0' + x % 10);
            x /= 10;
        }
    }
    if (!nd)
        digits[nd++] = '0';
    memcpy(out, "2.25.", 5);
    for (size_t i = 0; i < nd; i++)
        out[5 + i] = digits[nd - 1 - i];
    out[5 + nd] = '\0';
    if (slot)
        memcpy(slot->uid, out, 6 + nd);
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
    /* 0 is not a shift (the real dates, labelled MODIFIED): a range that holds it skips it */
    bool skip0 = min_days <= 0 && max_days >= 0;
    uint64_t span = (uint64_t)((int64_t)max_days - min_days) + 1 - skip0;
    int64_t d = (int64_t)min_days + (int64_t)(v % span);
    return (int32_t)(skip0 && d >= 0 ? d + 1 : d);
}
