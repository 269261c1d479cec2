/* fuzz_dimse.c - libFuzzer target for node/dimse.c: any bytes either decode into a command set
 * or give MT_EMALFORMED with a reason and an offset inside the input; a decoded command of a
 * known type re-encodes and decodes to the same fields. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dimse.h"
#include "util/err.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    mt_dimse_cmd_t c, d;
    mt_diag_t diag = {0, NULL};
    int rc = mt_dimse_decode(data, size, &c, &diag);
    if (rc) {
        if (rc != MT_EMALFORMED || !diag.reason || diag.offset > size)
            abort();
        return 0;
    }
    if (strcmp(mt_dimse_command_name(c.command_field), "unknown") == 0)
        return 0;
    mt_buf_t b;
    mt_buf_init(&b, 4096);
    if (mt_dimse_encode(&c, &b) == 0) {
        if (mt_dimse_decode(b.data, b.len, &d, &diag) != 0 ||
            d.command_field != c.command_field || d.data_set_type != c.data_set_type ||
            ((c.command_field & 0x8000) && d.status != c.status))
            abort();
    }
    mt_buf_dispose(&b);
    return 0;
}
