/* tests for node/ul.c: a second, independent transcription of PS3.8 Table 9-10 (STYLE.md §11).
 *
 * The table below is written the way the standard prints it: one row per event, one column per
 * state Sta1..Sta13, each cell the action name or "" for an empty cell. The next state of each
 * action comes from a separate transcription of Tables 9-6..9-9 (actions_next). Every (state,
 * event) cell is walked: the action and the next state must match ul.c, an empty cell must be
 * refused with MT_ESTATE leaving the state unchanged. The effects of each action are checked
 * against the action's wording in Tables 9-6..9-9. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "ul.h"
#include "util/err.h"

/*                 Sta1    Sta2    Sta3    Sta4    Sta5    Sta6    Sta7    Sta8    Sta9    Sta10
 *                 Sta11   Sta12   Sta13 */
/* clang-format off */
static const char *const table_9_10[20][14] = {
    [1] = {"", "AE-1", "", "", "", "", "", "", "", "", "", "", "", ""},
    [2] = {"", "", "", "", "AE-2", "", "", "", "", "", "", "", "", ""},
    [3] = {"", "", "AA-1", "AA-8", "", "AE-3", "AA-8", "AA-8", "AA-8", "AA-8", "AA-8",
           "AA-8", "AA-8", "AA-6"},
    [4] = {"", "", "AA-1", "AA-8", "", "AE-4", "AA-8", "AA-8", "AA-8", "AA-8", "AA-8",
           "AA-8", "AA-8", "AA-6"},
    [5] = {"", "AE-5", "", "", "", "", "", "", "", "", "", "", "", ""},
    [6] = {"", "", "AE-6", "AA-8", "", "AA-8", "AA-8", "AA-8", "AA-8", "AA-8", "AA-8",
           "AA-8", "AA-8", "AA-7"},
    [7] = {"", "", "", "AE-7", "", "", "", "", "", "", "", "", "", ""},
    [8] = {"", "", "", "AE-8", "", "", "", "", "", "", "", "", "", ""},
    [9] = {"", "", "", "", "", "", "DT-1", "", "AR-7", "", "", "", "", ""},
    [10] = {"", "", "AA-1", "AA-8", "", "AA-8", "DT-2", "AR-6", "AA-8", "AA-8", "AA-8",
            "AA-8", "AA-8", "AA-6"},
    [11] = {"", "", "", "", "", "", "AR-1", "", "", "", "", "", "", ""},
    [12] = {"", "", "AA-1", "AA-8", "", "AA-8", "AR-2", "AR-8", "AA-8", "AA-8", "AA-8",
            "AA-8", "AA-8", "AA-6"},
    [13] = {"", "", "AA-1", "AA-8", "", "AA-8", "AA-8", "AR-3", "AA-8", "AA-8", "AR-10",
            "AR-3", "AA-8", "AA-6"},
    [14] = {"", "", "", "", "", "", "", "", "AR-4", "AR-9", "", "", "AR-4", ""},
    [15] = {"", "", "", "AA-1", "AA-2", "AA-1", "AA-1", "AA-1", "AA-1", "AA-1", "AA-1",
            "AA-1", "AA-1", ""},
    [16] = {"", "", "AA-2", "AA-3", "", "AA-3", "AA-3", "AA-3", "AA-3", "AA-3", "AA-3",
            "AA-3", "AA-3", "AA-2"},
    [17] = {"", "", "AA-5", "AA-4", "AA-4", "AA-4", "AA-4", "AA-4", "AA-4", "AA-4", "AA-4",
            "AA-4", "AA-4", "AR-5"},
    [18] = {"", "", "AA-2", "", "", "", "", "", "", "", "", "", "", "AA-2"},
    [19] = {"", "", "AA-1", "AA-8", "", "AA-8", "AA-8", "AA-8", "AA-8", "AA-8", "AA-8",
            "AA-8", "AA-8", "AA-7"},
};
/* clang-format on */

/* Tables 9-6..9-9: the next state each action names. 0 = it depends (AE-6, AR-8). */
/* clang-format off */
static const struct {
    const char *name;
    int next;
} actions_next[] = {
    {"AE-1", 4},  {"AE-2", 5},  {"AE-3", 6},  {"AE-4", 1},  {"AE-5", 2},  {"AE-6", 0},
    {"AE-7", 6},  {"AE-8", 13}, {"DT-1", 6},  {"DT-2", 6},  {"AR-1", 7},  {"AR-2", 8},
    {"AR-3", 1},  {"AR-4", 13}, {"AR-5", 1},  {"AR-6", 7},  {"AR-7", 8},  {"AR-8", 0},
    {"AR-9", 11}, {"AR-10", 12}, {"AA-1", 13}, {"AA-2", 1},  {"AA-3", 1},  {"AA-4", 1},
    {"AA-5", 1},  {"AA-6", 13}, {"AA-7", 13}, {"AA-8", 13},
};
/* clang-format on */

static int expected_next(const char *action)
{
    for (size_t i = 0; i < sizeof actions_next / sizeof actions_next[0]; i++)
        if (strcmp(actions_next[i].name, action) == 0)
            return actions_next[i].next;
    fail_msg("unknown action %s", action);
    return -1;
}

static void walk_every_cell(void **state)
{
    (void)state;
    unsigned filled = 0;
    for (int ev = 1; ev <= 19; ev++) {
        for (int st = 1; st <= 13; st++) {
            const char *want = table_9_10[ev][st];
            mt_ul_t ul;
            mt_ul_init(&ul, false, NULL);
            ul.state = (mt_ul_state_t)st;
            mt_ul_effects_t fx;
            int rc = mt_ul_step(&ul, (mt_ul_event_t)ev, NULL, &fx);
            char where[64];
            snprintf(where, sizeof where, "Evt%d in Sta%d", ev, st);
            if (!want[0]) {
                if (rc != MT_ESTATE)
                    fail_msg("%s: empty cell, got %s", where, mt_ul_action_name(fx.action));
                assert_int_equal(ul.state, st);
                assert_int_equal(fx.n, 0);
                continue;
            }
            filled++;
            if (rc != 0)
                fail_msg("%s: want %s, refused", where, want);
            if (strcmp(mt_ul_action_name(fx.action), want) != 0)
                fail_msg("%s: want %s, got %s", where, want, mt_ul_action_name(fx.action));
            int next = expected_next(want);
            if (strcmp(want, "AE-6") == 0)
                next = 3; /* acceptable RQ (default input) */
            if (strcmp(want, "AR-8") == 0)
                next = 10; /* acceptor side */
            if ((int)ul.state != next || (int)fx.to != next)
                fail_msg("%s [%s]: want Sta%d, got %s", where, want, next,
                         mt_ul_state_name(ul.state));
            assert_int_equal(fx.from, st);
            /* the cell as data agrees */
            mt_ul_state_t cell_next;
            assert_int_equal(mt_ul_cell((mt_ul_state_t)st, (mt_ul_event_t)ev, &cell_next),
                             fx.action);
        }
    }
    /* cells filled in the standard's table */
    assert_int_equal(filled, 1 + 1 + 11 + 11 + 1 + 11 + 1 + 1 + 2 + 11 + 1 + 11 + 11 + 3 + 10 + 11 +
                                 12 + 2 + 11);
}

static void chosen_states(void **state)
{
    (void)state;
    mt_ul_t ul;
    mt_ul_effects_t fx;
    /* AE-6: not acceptable -> Sta13 with A-ASSOCIATE-RJ sent and ARTIM started */
    mt_ul_init(&ul, false, NULL);
    ul.state = MT_STA2;
    mt_ul_input_t in = {.rq_unacceptable = true};
    assert_int_equal(mt_ul_step(&ul, MT_UL_EV_A_ASSOCIATE_RQ_PDU, &in, &fx), 0);
    assert_int_equal(ul.state, MT_STA13);
    assert_int_equal(fx.n, 3);
    assert_int_equal(fx.fx[0].kind, MT_UL_FX_STOP_ARTIM);
    assert_int_equal(fx.fx[1].kind, MT_UL_FX_SEND_PDU);
    assert_int_equal(fx.fx[1].pdu_type, 0x03);
    assert_int_equal(fx.fx[2].kind, MT_UL_FX_START_ARTIM);
    /* AE-6 acceptable: stop ARTIM, indication */
    mt_ul_init(&ul, false, NULL);
    ul.state = MT_STA2;
    assert_int_equal(mt_ul_step(&ul, MT_UL_EV_A_ASSOCIATE_RQ_PDU, NULL, &fx), 0);
    assert_int_equal(ul.state, MT_STA3);
    assert_int_equal(fx.n, 2);
    assert_int_equal(fx.fx[0].kind, MT_UL_FX_STOP_ARTIM);
    assert_int_equal(fx.fx[1].kind, MT_UL_FX_INDICATE_ASSOCIATE);
    /* AR-8 on the requestor side: Sta9 */
    mt_ul_init(&ul, true, NULL);
    ul.state = MT_STA7;
    assert_int_equal(mt_ul_step(&ul, MT_UL_EV_A_RELEASE_RQ_PDU, NULL, &fx), 0);
    assert_int_equal(ul.state, MT_STA9);
    assert_int_equal(fx.fx[0].kind, MT_UL_FX_INDICATE_RELEASE);
    assert_true(fx.fx[0].collision);
}

/* Effects of one action, in order, as a string like "SEND_PDU(7/2/2) INDICATE_P_ABORT". */
static void fx_string(const mt_ul_effects_t *fx, char *out, size_t n)
{
    size_t len = 0;
    out[0] = 0;
    for (unsigned i = 0; i < fx->n; i++) {
        const mt_ul_fx_t *f = &fx->fx[i];
        if (f->kind == MT_UL_FX_SEND_PDU && f->pdu_type == 0x07)
            len += (size_t)snprintf(out + len, n - len, "%sA-ABORT(%u/%u)", i ? " " : "",
                                    f->abort_source, f->abort_reason);
        else if (f->kind == MT_UL_FX_SEND_PDU)
            len += (size_t)snprintf(out + len, n - len, "%sPDU%u", i ? " " : "", f->pdu_type);
        else
            len +=
                (size_t)snprintf(out + len, n - len, "%s%s", i ? " " : "", mt_ul_fx_name(f->kind));
    }
}

/* Tables 9-6..9-9, the wording of each action as effects, with a state/event that reaches it. */
static void action_effects(void **state)
{
    (void)state;
    static const struct {
        int st, ev;
        const char *fx;
    } cases[] = {
        {1, 1, "TRANSPORT_CONNECT"},                          /* AE-1 */
        {4, 2, "PDU1"},                                       /* AE-2 */
        {5, 3, "CONFIRM_ASSOCIATE_AC"},                       /* AE-3 */
        {5, 4, "CONFIRM_ASSOCIATE_RJ CLOSE_TRANSPORT"},       /* AE-4 */
        {1, 5, "TRANSPORT_ACCEPT START_ARTIM"},               /* AE-5 */
        {3, 7, "PDU2"},                                       /* AE-7 */
        {3, 8, "PDU3 START_ARTIM"},                           /* AE-8 */
        {6, 9, "PDU4"},                                       /* DT-1 */
        {6, 10, "INDICATE_P_DATA"},                           /* DT-2 */
        {6, 11, "PDU5"},                                      /* AR-1 */
        {6, 12, "INDICATE_RELEASE"},                          /* AR-2 */
        {7, 13, "CONFIRM_RELEASE CLOSE_TRANSPORT"},           /* AR-3 */
        {8, 14, "PDU6 START_ARTIM"},                          /* AR-4 */
        {13, 17, "STOP_ARTIM"},                               /* AR-5 */
        {7, 10, "INDICATE_P_DATA"},                           /* AR-6 */
        {8, 9, "PDU4"},                                       /* AR-7 */
        {9, 14, "PDU6"},                                      /* AR-9 */
        {10, 13, "CONFIRM_RELEASE"},                          /* AR-10 */
        {6, 15, "A-ABORT(0/0) START_ARTIM"},                  /* AA-1 */
        {2, 3, "A-ABORT(2/2) START_ARTIM"},                   /* AA-1 peer PDU */
        {2, 19, "A-ABORT(2/0) START_ARTIM"},                  /* AA-1 invalid PDU */
        {3, 15, "A-ABORT(0/0) START_ARTIM"},                  /* AA-1 user abort */
        {4, 15, "STOP_ARTIM CLOSE_TRANSPORT"},                /* AA-2 */
        {2, 16, "STOP_ARTIM CLOSE_TRANSPORT"},                /* AA-2 peer abort */
        {13, 16, "STOP_ARTIM CLOSE_TRANSPORT"},               /* AA-2 */
        {13, 18, "STOP_ARTIM CLOSE_TRANSPORT"},               /* AA-2 */
        {6, 16, "INDICATE_ABORT CLOSE_TRANSPORT"},            /* AA-3 user source */
        {6, 17, "INDICATE_P_ABORT"},                          /* AA-4 */
        {2, 17, "STOP_ARTIM"},                                /* AA-5 */
        {13, 10, ""},                                         /* AA-6 */
        {13, 6, "A-ABORT(2/2)"},                              /* AA-7 */
        {6, 6, "A-ABORT(2/2) INDICATE_P_ABORT START_ARTIM"},  /* AA-8 unexpected */
        {8, 10, "A-ABORT(2/2) INDICATE_P_ABORT START_ARTIM"}, /* AA-8 unexpected */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        mt_ul_t ul;
        mt_ul_init(&ul, false, NULL);
        ul.state = (mt_ul_state_t)cases[i].st;
        mt_ul_effects_t fx;
        assert_int_equal(mt_ul_step(&ul, (mt_ul_event_t)cases[i].ev, NULL, &fx), 0);
        char got[256];
        fx_string(&fx, got, sizeof got);
        if (strcmp(got, cases[i].fx) != 0)
            fail_msg("Sta%d Evt%d [%s]: want \"%s\", got \"%s\"", cases[i].st, cases[i].ev,
                     mt_ul_action_name(fx.action), cases[i].fx, got);
    }
    /* AA-3 with a provider-source A-ABORT: A-P-ABORT indication */
    mt_ul_t ul;
    mt_ul_effects_t fx;
    char got[256];
    mt_ul_init(&ul, false, NULL);
    ul.state = MT_STA6;
    mt_ul_input_t in = {.abort_source = 2};
    assert_int_equal(mt_ul_step(&ul, MT_UL_EV_A_ABORT_PDU, &in, &fx), 0);
    fx_string(&fx, got, sizeof got);
    assert_string_equal(got, "INDICATE_P_ABORT CLOSE_TRANSPORT");
    /* Evt19: the reason the caller gives (invalid PDU parameter value) */
    mt_ul_init(&ul, false, NULL);
    ul.state = MT_STA6;
    mt_ul_input_t bad = {.abort_reason = MT_UL_ABORT_REASON_INVALID_PARAM};
    assert_int_equal(mt_ul_step(&ul, MT_UL_EV_INVALID_PDU, &bad, &fx), 0);
    fx_string(&fx, got, sizeof got);
    assert_string_equal(got, "A-ABORT(2/6) INDICATE_P_ABORT START_ARTIM");
}

/* The acceptor's normal life: connect, associate, data, release, close. */
static void acceptor_path(void **state)
{
    (void)state;
    static const struct {
        mt_ul_event_t ev;
        mt_ul_state_t to;
        mt_ul_action_t a;
    } path[] = {
        {MT_UL_EV_TRANSPORT_INDICATION, MT_STA2, MT_AE_5},
        {MT_UL_EV_A_ASSOCIATE_RQ_PDU, MT_STA3, MT_AE_6},
        {MT_UL_EV_A_ASSOCIATE_RSP_AC, MT_STA6, MT_AE_7},
        {MT_UL_EV_P_DATA_TF_PDU, MT_STA6, MT_DT_2},
        {MT_UL_EV_P_DATA_RQ, MT_STA6, MT_DT_1},
        {MT_UL_EV_A_RELEASE_RQ_PDU, MT_STA8, MT_AR_2},
        {MT_UL_EV_P_DATA_RQ, MT_STA8, MT_AR_7},
        {MT_UL_EV_A_RELEASE_RSP, MT_STA13, MT_AR_4},
        {MT_UL_EV_TRANSPORT_CLOSED, MT_STA1, MT_AR_5},
    };
    mt_ul_t ul;
    mt_ul_init(&ul, false, NULL);
    assert_int_equal(ul.state, MT_STA1);
    for (size_t i = 0; i < sizeof path / sizeof path[0]; i++) {
        mt_ul_effects_t fx;
        assert_int_equal(mt_ul_step(&ul, path[i].ev, NULL, &fx), 0);
        assert_int_equal(fx.action, path[i].a);
        assert_int_equal(ul.state, path[i].to);
    }
}

static void names(void **state)
{
    (void)state;
    assert_string_equal(mt_ul_state_name(MT_STA6), "Sta6");
    assert_string_equal(mt_ul_state_name(MT_STA13), "Sta13");
    assert_string_equal(mt_ul_state_name(0), "?");
    assert_string_equal(mt_ul_event_name(MT_UL_EV_A_RELEASE_RQ_PDU), "Evt12");
    assert_string_equal(mt_ul_event_name(MT_UL_EV_INVALID_PDU), "Evt19");
    assert_string_equal(mt_ul_event_name(MT_UL_EV_COUNT), "?");
    assert_string_equal(mt_ul_action_name(MT_AR_10), "AR-10");
    assert_string_equal(mt_ul_action_name(MT_AA_8), "AA-8");
    assert_string_equal(mt_ul_fx_name(MT_UL_FX_SEND_PDU), "SEND_PDU");
    for (int a = 1; a < MT_UL_ACTION_COUNT; a++)
        assert_string_not_equal(mt_ul_action_name((mt_ul_action_t)a), "?");
    for (int e = 1; e < MT_UL_EV_COUNT; e++)
        assert_string_not_equal(mt_ul_event_desc((mt_ul_event_t)e), "?");
    /* out of range events/states are refused, not indexed */
    mt_ul_t ul;
    mt_ul_effects_t fx;
    mt_ul_init(&ul, false, NULL);
    assert_int_equal(mt_ul_step(&ul, (mt_ul_event_t)0, NULL, &fx), MT_ESTATE);
    assert_int_equal(mt_ul_step(&ul, MT_UL_EV_COUNT, NULL, &fx), MT_ESTATE);
    assert_int_equal(ul.state, MT_STA1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(walk_every_cell), cmocka_unit_test(chosen_states),
        cmocka_unit_test(action_effects),  cmocka_unit_test(acceptor_path),
        cmocka_unit_test(names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
