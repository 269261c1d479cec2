/* fuzz_conf.c - libFuzzer target for node/conf/conf.c: any bytes either load into a config or
 * give "name:line: message"; never crash, leak or read out of bounds. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "conf/conf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[256];
    mt_conf_t *c = mt_conf_load_string((const char *)data, size, "fuzz", err, sizeof err);
    if (c) {
        /* the invariants a loaded config promises its users */
        if (!c->data_dir || !c->storage_root || !c->index_path || c->port == 0 ||
            c->n_calling_ae_allow > MT_CONF_MAX_LIST || c->n_ts_preference > MT_CONF_MAX_LIST ||
            strlen(c->ae_title) == 0 || strlen(c->ae_title) > 16)
            abort();
        mt_conf_set_data_dir(c, "/fuzz");
        mt_conf_free(c);
    } else if (strncmp(err, "fuzz:", 5) != 0) {
        abort();
    }
    return 0;
}
