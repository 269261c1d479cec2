/* fuzz_ul.c - libFuzzer target for node/ul.c: each input byte pair is (event, input flags) fed
 * to the state machine from Sta1. Invariants: a refused event leaves the state unchanged and
 * emits nothing; an accepted one emits at most MT_UL_MAX_FX effects of known kinds, ends in a
 * valid state, and the state only changes when the table has a cell. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "ul.h"
#include "util/err.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    mt_ul_t ul;
    mt_ul_init(&ul, size > 0 && (data[0] & 0x80), NULL);
    for (size_t i = 0; i + 1 < size; i += 2) {
        mt_ul_event_t ev = (mt_ul_event_t)(data[i] % (MT_UL_EV_COUNT + 1));
        mt_ul_input_t in = {.rq_unacceptable = data[i + 1] & 1,
                            .abort_source = (uint8_t)((data[i + 1] >> 1) & 3),
                            .abort_reason = (uint8_t)((data[i + 1] >> 3) & 7)};
        mt_ul_state_t before = ul.state, next;
        mt_ul_action_t cell = mt_ul_cell(before, ev, &next);
        mt_ul_effects_t fx;
        int rc = mt_ul_step(&ul, ev, &in, &fx);
        if (rc) {
            if (rc != MT_ESTATE || cell != MT_UL_NO_ACTION || ul.state != before || fx.n)
                abort();
            continue;
        }
        if (cell == MT_UL_NO_ACTION || fx.action != cell || fx.n > MT_UL_MAX_FX)
            abort();
        if (ul.state < MT_STA1 || ul.state >= MT_STA_COUNT || (next && ul.state != next))
            abort();
        for (unsigned k = 0; k < fx.n; k++)
            if (fx.fx[k].kind <= 0 || fx.fx[k].kind >= MT_UL_FX_KIND_COUNT)
                abort();
    }
    return 0;
}
