/*
 * cachestat.h - whether a file's bytes are in the page cache (cachestat(2), Linux 6.5+), so
 * that the loop thread may send them (sendfile(2)) without waiting for the disk.
 */
#ifndef MT_UTIL_CACHESTAT_H
#define MT_UTIL_CACHESTAT_H

#include <stdbool.h>
#include <stdint.h>

/* Every page of fd's bytes [off, off + len) is cached. False where the kernel lacks
 * cachestat(2) (the caller then reads the file on a pool thread). */
bool mt_in_page_cache(int fd, uint64_t off, uint64_t len);

/* False once mt_in_page_cache found the kernel without cachestat(2): a caller may then skip
 * the work that only a cached file would need. */
bool mt_page_cache_checkable(void);

#endif
