/*
 * log.h - structured logging: one event a line, key=value context appended.
 *
 *   2026-11-22T10:00:00.123Z info  assoc=42 peer=127.0.0.1:51234 calling=STORESCU called=MITRAL
 *       msg="released" stored=3
 *
 * The level is checked before the arguments are evaluated (Redis serverLog). A context
 * (mt_log_ctx_t) carries the association id and peer; pass NULL when there is none.
 * PHI rule: never log a value taken from a data set at info or above; UIDs only at debug.
 * Thread-safe: each line is formatted into a local buffer and written with one write(2).
 */
#ifndef MT_UTIL_LOG_H
#define MT_UTIL_LOG_H

#include <stdint.h>

typedef enum { MT_LOG_ERROR, MT_LOG_WARN, MT_LOG_INFO, MT_LOG_DEBUG, MT_LOG_TRACE } mt_log_level_t;

typedef struct mt_log_ctx {
    uint64_t assoc_id; /* 0: none */
    char peer[64];     /* "127.0.0.1:51234" */
    char calling[17];
    char called[17];
} mt_log_ctx_t;

extern mt_log_level_t mt_log_level;

/* Returns -1 for an unknown name. Accepts error, warn, info, debug, trace. */
int mt_log_level_parse(const char *name);
void mt_log_set_fd(int fd); /* default 2 (stderr) */

void mt_log_write(mt_log_level_t lvl, const mt_log_ctx_t *ctx, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define mt_log(lvl, ctx, ...)                                                                      \
    do {                                                                                           \
        if ((lvl) <= mt_log_level)                                                                 \
            mt_log_write((lvl), (ctx), __VA_ARGS__);                                               \
    } while (0)

#endif
