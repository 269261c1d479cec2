/* err.c - messages and names for the MT_E* codes of err.h (generated from MT_ERR_MAP). */
#include "err.h"

#include <string.h>

const char *mt_strerror(int err)
{
    switch (err) {
#define XX(name, val, msg)                                                                         \
    case MT_##name:                                                                                \
        return msg;
        MT_ERR_MAP(XX)
#undef XX
    }
    if (err < 0 && err > -4000)
        return strerror(-err);
    return "unknown error";
}

const char *mt_err_name(int err)
{
    switch (err) {
#define XX(name, val, msg)                                                                         \
    case MT_##name:                                                                                \
        return "MT_" #name;
        MT_ERR_MAP(XX)
#undef XX
    }
    return "MT_E?";
}
