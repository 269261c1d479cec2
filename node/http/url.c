/*
 * url.c - http:// and https:// URLs of DICOMweb destinations (RFC 3986 §3 subset): scheme,
 * host (name, IPv4, [IPv6]), port, path with query. PURE; in mitral_core so that conf.c can
 * validate stow_url at load time.
 */
#include "url.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "../util/err.h"

int mt_httpc_url_parse(const char *url, mt_httpc_url_t *out, const char **why)
{
    memset(out, 0, sizeof *out);
    const char *p;
    if (strncasecmp(url, "https://", 8) == 0) {
        out->tls = true;
        p = url + 8;
    } else if (strncasecmp(url, "http://", 7) == 0) {
        p = url + 7;
    } else {
        *why = "not an http:// or https:// URL";
        return MT_EMALFORMED;
    }
    for (const char *q = url; *q; q++)
        if ((unsigned char)*q <= 0x20 || *q == 0x7F || *q == '#') {
            *why = "white space, control characters or a fragment in the URL";
            return MT_EMALFORMED;
        }
    size_t alen = strcspn(p, "/?");
    const char *auth_end = p + alen;
    if (memchr(p, '@', alen)) {
        *why = "user information in the URL (credentials belong in a file)";
        return MT_EMALFORMED;
    }
    const char *host = p, *host_end, *port = NULL;
    if (*p == '[') { /* RFC 3986 IP-literal */
        host = p + 1;
        host_end = memchr(host, ']', (size_t)(auth_end - host));
        if (!host_end) {
            *why = "unterminated [IPv6] literal";
            return MT_EMALFORMED;
        }
        if (host_end + 1 < auth_end) {
            if (host_end[1] != ':') {
                *why = "junk after the [IPv6] literal";
                return MT_EMALFORMED;
            }
            port = host_end + 2;
        }
    } else {
        host_end = memchr(p, ':', alen);
        if (host_end)
            port = host_end + 1;
        else
            host_end = auth_end;
    }
    size_t hlen = (size_t)(host_end - host);
    if (hlen == 0 || hlen >= sizeof out->host) {
        *why = "no host, or a host name longer than 255 characters";
        return MT_EMALFORMED;
    }
    memcpy(out->host, host, hlen);
    out->port = out->tls ? 443 : 80;
    if (port) {
        unsigned long v = 0;
        if (port == auth_end) {
            *why = "empty port";
            return MT_EMALFORMED;
        }
        for (const char *q = port; q < auth_end; q++) {
            if (*q < '0' || *q > '9' || (v = v * 10 + (unsigned long)(*q - '0')) > 65535) {
                *why = "bad port (1-65535)";
                return MT_EMALFORMED;
            }
        }
        if (v == 0) {
            *why = "bad port (1-65535)";
            return MT_EMALFORMED;
        }
        out->port = (uint16_t)v;
    }
    if (*auth_end == '\0')
        snprintf(out->path, sizeof out->path, "/");
    else if (*auth_end == '?')
        snprintf(out->path, sizeof out->path, "/%s", auth_end);
    else if (strlen(auth_end) >= sizeof out->path) {
        *why = "path longer than 1023 characters";
        return MT_EMALFORMED;
    } else
        snprintf(out->path, sizeof out->path, "%s", auth_end);
    return 0;
}
