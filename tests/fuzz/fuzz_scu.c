/* fuzz_scu.c - libFuzzer target for the requestor side of node/negotiate.c (what node/scu.c
 * does with the peer's answer): any bytes that decode as an A-ASSOCIATE-AC are read against a
 * fixed A-ASSOCIATE-RQ of 64 contexts (mt_nego_read_ac). Either MT_EPROTO (a context we did not
 * propose) or a table where every accepted context carries a transfer syntax we proposed for
 * it and know, n_accepted counts them, and mt_nego_find_pc only returns accepted ids. The
 * chunked P-DATA encoder (node/link.c) splits the input and the pieces add up. Corpus: ACs
 * captured from storescp and Orthanc (tests/fixtures/pdu/). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "link.h"
#include "negotiate.h"
#include "pdu.h"
#include "util/err.h"

#define CHECK(x)                                                                                   \
    do {                                                                                           \
        if (!(x))                                                                                  \
            abort();                                                                               \
    } while (0)

static const char *const classes[4] = {"1.2.840.10008.5.1.4.1.1.4", "1.2.840.10008.1.1",
                                       "1.2.840.10008.5.1.4.1.1.2", "1.2.840.10008.1.20.1"};
static const char *const syntaxes[3] = {"1.2.840.10008.1.2.1", "1.2.840.10008.1.2",
                                        "1.2.840.10008.1.2.4.50"};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    mt_nego_proposal_t pcs[64];
    memset(pcs, 0, sizeof pcs);
    for (int i = 0; i < 64; i++) {
        pcs[i].abstract_syntax = classes[i % 4];
        pcs[i].ts[0] = syntaxes[i % 3];
        pcs[i].ts[1] = syntaxes[(i + 1) % 3];
        pcs[i].n_ts = 1 + (size_t)(i % 2);
        pcs[i].role_item = i % 4 == 3;
        pcs[i].we_scp = true;
    }
    mt_nego_rq_params_t p = {"MITRAL", "PEER", pcs, 64, 65536, 16};
    mt_pdu_t rq;
    CHECK(mt_nego_build_rq(&p, &rq) == 0);
    mt_pdu_t ac;
    size_t used = 0;
    mt_pdu_diag_t d;
    if (mt_pdu_decode(data, size, 1 << 20, &ac, &used, &d) == 0) {
        if (ac.type == MT_PDU_A_ASSOCIATE_AC) {
            mt_negotiated_t n;
            int rc = mt_nego_read_ac(&rq.u.assoc, &ac.u.assoc, &n);
            CHECK(rc == 0 || rc == MT_EPROTO);
            if (rc == 0) {
                size_t acc = 0;
                CHECK(n.n_pcs == 64);
                for (size_t i = 0; i < n.n_pcs; i++) {
                    if (n.pcs[i].result != MT_PC_ACCEPTANCE)
                        continue;
                    acc++;
                    CHECK(n.pcs[i].ts != NULL);
                    const mt_pdu_pc_t *q = &rq.u.assoc.pcs[i];
                    bool proposed = false;
                    for (size_t k = 0; k < q->n_ts; k++)
                        proposed |= strcmp(q->ts[k].s, n.pcs[i].transfer_syntax) == 0;
                    CHECK(proposed);
                }
                CHECK(acc == n.n_accepted);
                for (int c = 0; c < 4; c++)
                    for (int scp = 0; scp < 2; scp++) {
                        uint8_t id = mt_nego_find_pc(&n, classes[c], NULL, scp == 1);
                        CHECK(id == 0 || mt_negotiated_pc(&n, id) != NULL);
                    }
            }
        }
        mt_pdu_dispose(&ac);
    }
    mt_pdu_dispose(&rq);

    /* chunked P-DATA: the pieces of the input add up, with one last bit at most */
    mt_buf_t b;
    mt_buf_init(&b, SIZE_MAX);
    uint32_t peer = size ? 8u + data[0] : 0;
    if (mt_link_encode_pdata(&b, 1, false, data, size, size % 2 == 0, peer) == 0) {
        size_t pos = 0, total = 0, lasts = 0;
        while (pos < b.len) {
            mt_pdu_t pd;
            size_t u = 0;
            CHECK(mt_pdu_decode(b.data + pos, b.len - pos, 0, &pd, &u, &d) == 0);
            mt_pdv_iter_t it;
            mt_pdv_iter_init(&it, &pd);
            mt_pdv_t v;
            while (mt_pdv_next(&it, &v, &d) == 1) {
                total += v.len;
                lasts += v.last;
            }
            mt_pdu_dispose(&pd);
            pos += u;
        }
        CHECK(total == size);
        CHECK(lasts == (size % 2 == 0 ? 1u : 0u));
    }
    mt_buf_dispose(&b);
    return 0;
}
