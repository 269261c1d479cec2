/*
 * url.h - http[s]://host[:port]/path URLs (DICOMweb destinations). PURE. See url.c.
 */
#ifndef MT_HTTP_URL_H
#define MT_HTTP_URL_H

#include <stdbool.h>
#include <stdint.h>

typedef struct mt_httpc_url {
    bool tls;        /* https */
    char host[256];  /* name or address literal (IPv6 without the brackets) */
    uint16_t port;   /* 80 / 443 when not given */
    char path[1024]; /* from the first '/', query included; "/" when none */
} mt_httpc_url_t;

/* 0, or MT_EMALFORMED with *why a static reason (no user info, no fragment, http/https only). */
int mt_httpc_url_parse(const char *url, mt_httpc_url_t *out, const char **why);

#endif
