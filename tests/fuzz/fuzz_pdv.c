/* fuzz_pdv.c - libFuzzer target for node/pdv.c (through node/pdu.c): the input is a stream of
 * PDUs; each P-DATA-TF is fed to a PDV assembler that accepts contexts 1, 3 and 5 and decodes
 * each command set with node/dimse.c to learn whether a data set follows. Errors reset the
 * assembler, and feeding goes on with the next PDU. Invariants: commands are bounded, data events
 * only come between a command that announced a data set and the last fragment, on the command's
 * context, and an error always says what to tell the peer. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "dimse.h"
#include "pdu.h"
#include "pdv.h"
#include "util/err.h"

#define CHECK(x)                                                                                   \
    do {                                                                                           \
        if (!(x))                                                                                  \
            abort();                                                                               \
    } while (0)

typedef struct st {
    bool in_data;
    uint8_t pcid;
    unsigned n;
} st_t;

static int on_event(void *user, mt_pdv_event_t *ev)
{
    st_t *s = user;
    if (ev->type == MT_PDV_EV_COMMAND) {
        CHECK(!s->in_data && ev->len <= MT_PDV_DEFAULT_MAX_COMMAND);
        mt_dimse_cmd_t c;
        mt_diag_t d;
        ev->expect_data = mt_dimse_decode(ev->data, ev->len, &c, &d) == 0
                              ? c.data_set_type != MT_DIMSE_NO_DATASET
                              : (ev->len & 1) != 0;
        s->in_data = ev->expect_data;
        s->pcid = ev->pcid;
    } else {
        CHECK(s->in_data && ev->pcid == s->pcid);
        if (ev->last)
            s->in_data = false;
    }
    /* now and then a service refuses the message */
    if (++s->n % 97 == 0)
        return MT_ECANCELED;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    st_t s = {false, 0, 0};
    mt_pdv_asm_t a;
    mt_pdv_init(&a, 0, on_event, &s);
    mt_pdv_allow(&a, 1);
    mt_pdv_allow(&a, 3);
    mt_pdv_allow(&a, 5);
    size_t off = 0;
    while (off < size) {
        mt_pdu_t p;
        size_t used;
        mt_pdu_diag_t d = {0};
        int rc = mt_pdu_decode(data + off, size - off, 65536, &p, &used, &d);
        if (rc)
            break;
        off += used;
        if (p.type != MT_PDU_P_DATA_TF) {
            mt_pdu_dispose(&p);
            continue;
        }
        rc = mt_pdv_feed_pdu(&a, &p, &d);
        if (rc) {
            CHECK(rc == MT_EPROTO || rc == MT_ETOOBIG || rc == MT_ECANCELED);
            if (rc != MT_ECANCELED)
                CHECK(d.reason && d.abort_source == 2 && d.offset < used);
            CHECK(mt_pdv_idle(&a));
            s.in_data = false;
        }
        if (mt_pdv_idle(&a))
            CHECK(!s.in_data);
    }
    mt_pdu_diag_t d;
    int rc = mt_pdv_finish(&a, &d);
    CHECK(rc == 0 || (rc == MT_EPROTO && d.reason));
    mt_pdv_dispose(&a);
    return 0;
}
