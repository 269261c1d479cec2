/* fuzz_stow_resp.c - libFuzzer target for node/http/stow_client.c and node/http/jsonp.c:
 * what a STOW-RS origin server answers us. The first input byte picks the HTTP status, the
 * second the Content-Type, the rest is the body. Invariants: every instance gets a verdict of
 * the three, its reason text is NUL-terminated, an instance is DELIVERED only under a 2xx
 * status and only when the body is valid JSON (the status alone never delivers), and the
 * JSON reader accepts exactly the texts whose tree it builds (parse twice: same outcome). */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/jsonp.h"
#include "http/stow_client.h"

#define CHECK(x)                                                                                   \
    do {                                                                                           \
        if (!(x))                                                                                  \
            abort();                                                                               \
    } while (0)

static const int statuses[] = {200, 202, 409, 400, 401, 404, 413, 429, 500, 503, 204, 301};
static const char *const ctypes[] = {"application/dicom+json", NULL, "application/json",
                                     "application/dicom+xml"};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    int status = statuses[data[0] % (sizeof statuses / sizeof statuses[0])];
    const char *ctype = ctypes[data[1] % (sizeof ctypes / sizeof ctypes[0])];
    const uint8_t *body = data + 2;
    size_t len = size - 2;
    mt_stowc_item_t it[3] = {{.sop_uid = "1.2.3"}, {.sop_uid = "1.2.4"}, {.sop_uid = ""}};
    mt_stowc_outcomes(status, ctype, body, len, it, 3);
    mt_jsonv_t *v = NULL;
    mt_diag_t d;
    bool json = mt_jsonp_parse((const char *)body, len, &v, &d) == 0;
    for (int i = 0; i < 3; i++) {
        CHECK(it[i].verdict == MT_STOWC_DELIVERED || it[i].verdict == MT_STOWC_RETRY ||
              it[i].verdict == MT_STOWC_REFUSED);
        CHECK(memchr(it[i].why, '\0', sizeof it[i].why) != NULL);
        if (it[i].verdict == MT_STOWC_DELIVERED)
            CHECK(status >= 200 && status < 300 && json);
    }
    mt_jsonv_t *w = NULL;
    CHECK((mt_jsonp_parse((const char *)body, len, &w, &d) == 0) == json);
    mt_jsonv_free(v);
    mt_jsonv_free(w);
    return 0;
}
