/*
 * pseudonym.h - keyed one-way pseudonyms for de-identification (issue 4). PURE.
 *
 * Everything is HMAC-SHA256 (OpenSSL) under the site secret, with a domain label so that the
 * same input gives unrelated outputs in each use:
 *
 *   pseudonym(id)   = prefix + base32(HMAC(key, "mitral-deid-v1\0pid\0"   || id))[0..16)  80 bits
 *   uid(u)          = "2.25." + decimal(HMAC(key, "mitral-deid-v1\0uid\0"   || u)[0..16)) 128 bits
 *   shift(patient)  = min + HMAC(key, "mitral-deid-v1\0shift\0" || patient)[0..8) mod (max-min+1)
 *
 * Same key and input: same output, on every node and every run (so a patient's later studies
 * link to the earlier ones, and references between instances keep pointing at the right mapped
 * UID). Without the key the mapping cannot be reversed or recomputed. The key is never logged.
 * 2.25 UIDs are PS3.5 §B.2 (a 128-bit integer under the UUID arc): at most 44 characters.
 */
#ifndef MT_DEID_PSEUDONYM_H
#define MT_DEID_PSEUDONYM_H

#include <stddef.h>
#include <stdint.h>

#define MT_DEID_PSEUDONYM_MAX 33 /* 16 prefix + 16 base32 + NUL */
#define MT_DEID_UID_MAX 65

/* HMAC-SHA256(key, "mitral-deid-v1\0" domain "\0" msg). Returns 0 or MT_EINVAL. */
int mt_deid_hmac(const uint8_t *key, size_t key_len, const char *domain, const void *msg,
                 size_t msg_len, uint8_t out[32]);
/* out: prefix followed by 16 characters of [A-Z2-7]. outsz >= MT_DEID_PSEUDONYM_MAX. */
int mt_deid_pseudonym(const uint8_t *key, size_t key_len, const char *prefix, const char *id,
                      size_t id_len, char *out, size_t outsz);
/* out: "2.25.<decimal>", NUL terminated; outsz >= MT_DEID_UID_MAX. */
int mt_deid_uid(const uint8_t *key, size_t key_len, const char *uid, size_t uid_len, char *out,
                size_t outsz);
/* A whole number of days in [min_days, max_days]. */
int32_t mt_deid_date_shift(const uint8_t *key, size_t key_len, const char *patient, size_t len,
                           int32_t min_days, int32_t max_days);

#endif
