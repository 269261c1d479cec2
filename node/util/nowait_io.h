/*
 * nowait_io.h - opening and reading a file only when the kernel can do it without waiting for
 * the disk, so that the loop thread may do it (a relay's forwarder preparing what it has just
 * stored, node/svc/retrieve.c). Each call fails instead of blocking; the caller then does the
 * same work on a pool thread.
 */
#ifndef MT_UTIL_NOWAIT_IO_H
#define MT_UTIL_NOWAIT_IO_H

#include <stddef.h>
#include <sys/types.h>

/* A read-only, close-on-exec fd on path when every component of it resolves from the
 * kernel's lookup cache (openat2(2) RESOLVE_CACHED, Linux 5.12), else -1: errno EAGAIN (not
 * cached), the open's own error, or ENOSYS once the kernel has shown it lacks the call (it is
 * not tried again). */
int mt_open_cached(const char *path);

/* pread(2) that returns -1 (errno EAGAIN) rather than wait for the disk (preadv2(2)
 * RWF_NOWAIT): n bytes, or fewer at the end of the file or where the cached part ends. */
ssize_t mt_pread_nowait(int fd, void *buf, size_t n, off_t off);

#endif
