/*
 * nowait_io.c - mt_open_cached and mt_pread_nowait (nowait_io.h).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* preadv2, RWF_NOWAIT */
#endif
#include "nowait_io.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

static atomic_bool no_openat2; /* the kernel (or a seccomp filter) refused the call */

int mt_open_cached(const char *path)
{
#ifdef SYS_openat2
    if (!atomic_load_explicit(&no_openat2, memory_order_relaxed)) {
        struct open_how how = {.flags = O_RDONLY | O_CLOEXEC, .resolve = RESOLVE_CACHED};
        long fd = syscall(SYS_openat2, AT_FDCWD, path, &how, sizeof how);
        if (fd >= 0)
            return (int)fd;
        /* ENOSYS: no openat2 (before 5.6); EINVAL: no RESOLVE_CACHED (before 5.12); E2BIG:
         * a struct open_how the kernel does not know; EPERM: refused by a filter */
        if (errno != ENOSYS && errno != EINVAL && errno != E2BIG && errno != EPERM)
            return -1;
        atomic_store_explicit(&no_openat2, true, memory_order_relaxed);
    }
#endif
    errno = ENOSYS;
    return -1;
}

ssize_t mt_pread_nowait(int fd, void *buf, size_t n, off_t off)
{
    struct iovec v = {buf, n};
    ssize_t k;
    do
        k = preadv2(fd, &v, 1, off, RWF_NOWAIT);
    while (k < 0 && errno == EINTR);
    return k;
}
