/* fuzz_route.c - libFuzzer target for node/route/rules.c + match.c: any bytes either compile
 * into a rule set or give "name:line: message"; a compiled set decides for a few fixed
 * instances without crashing, and every decision stays within its bounds. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dicom/ds.h"
#include "route/rules.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[256];
    mt_route_set_t *s = mt_route_set_new();
    int rc = mt_route_set_add(s, (const char *)data, size, "fuzz", NULL, err, sizeof err);
    if (rc != 0) {
        if (strncmp(err, "fuzz:", 5) != 0)
            abort();
        mt_route_set_free(s);
        return 0;
    }
    static const struct {
        uint32_t tag;
        uint16_t vr;
        const char *v;
    } attrs[] = {
        {MT_TAG(0x0008, 0x0060), MT_VR('C', 'S'), "MR"},
        {MT_TAG(0x0008, 0x0020), MT_VR('D', 'A'), "20200615"},
        {MT_TAG(0x0008, 0x1030), MT_VR('L', 'O'), "CARDIAC\\HEART "},
        {MT_TAG(0x0010, 0x0020), MT_VR('L', 'O'), "H123"},
        {MT_TAG(0x0018, 0x0087), MT_VR('D', 'S'), "1.5"},
    };
    for (int k = 0; k < 2; k++) {
        mt_route_attrs_t *a = mt_route_attrs_new(k ? s : NULL);
        for (size_t i = 0; i < sizeof attrs / sizeof attrs[0]; i++)
            mt_route_attrs_offer(a, attrs[i].tag, attrs[i].vr, (const uint8_t *)attrs[i].v,
                                 strlen(attrs[i].v), false);
        uint8_t rows[2] = {0, 1};
        mt_route_attrs_offer(a, MT_TAG(0x0028, 0x0010), MT_VR('U', 'S'), rows, 2, false);
        mt_route_input_t in = {.calling_ae = "PACS1", .called_ae = "MITRAL",
                               .peer = k ? "::ffff:10.1.2.3" : "10.1.2.3", .attrs = a};
        mt_route_decision_t d;
        mt_route_decide(s, &in, &d);
        if (d.n_projects > MT_ROUTE_MAX_TARGETS || d.n_forward > MT_ROUTE_MAX_TARGETS ||
            d.n_rules > MT_ROUTE_MAX_TARGETS || (d.reject && !d.reject_reason))
            abort();
        mt_route_attrs_free(a);
    }
    mt_route_set_free(s);
    return 0;
}
