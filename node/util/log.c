/* log.c - formats one structured log line and writes it with a single write(2). */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

mt_log_level_t mt_log_level = MT_LOG_INFO;
static int log_fd = 2;

static const char *const level_names[] = {"error", "warn", "info", "debug", "trace"};

int mt_log_level_parse(const char *name)
{
    for (int i = 0; i <= MT_LOG_TRACE; i++)
        if (strcmp(name, level_names[i]) == 0)
            return i;
    return -1;
}

void mt_log_set_fd(int fd)
{
    log_fd = fd;
}

void mt_log_write(mt_log_level_t lvl, const mt_log_ctx_t *ctx, const char *fmt, ...)
{
    char line[2048];
    struct timeval tv;
    struct tm tm;
    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    size_t n = strftime(line, sizeof line, "%Y-%m-%dT%H:%M:%S", &tm);
    n += (size_t)snprintf(line + n, sizeof line - n, ".%03ldZ %-5s ", (long)(tv.tv_usec / 1000),
                          level_names[lvl]);
    if (ctx && ctx->assoc_id)
        n += (size_t)snprintf(line + n, sizeof line - n, "assoc=%llu peer=%s calling=%s called=%s ",
                              (unsigned long long)ctx->assoc_id, ctx->peer, ctx->calling,
                              ctx->called);
    if (n < sizeof line) {
        va_list ap;
        va_start(ap, fmt);
        int m = vsnprintf(line + n, sizeof line - n, fmt, ap);
        va_end(ap);
        if (m > 0)
            n += (size_t)m;
    }
    if (n >= sizeof line - 1)
        n = sizeof line - 2;
    line[n++] = '\n';
    ssize_t w = write(log_fd, line, n);
    (void)w;
}
