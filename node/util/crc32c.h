/*
 * crc32c.h - CRC-32C (Castagnoli, the iSCSI / ext4 / Btrfs polynomial 0x1EDC6F41, reflected).
 * The checksum the ingest records for every stored file (docs/internals/durability.md: the
 * one-flush path's torn-file check). On x86-64 with SSE4.2 it runs on the CPU's crc32
 * instruction (~8 bytes a cycle's worth of throughput, several times zlib's adler32); elsewhere
 * a table-driven version computes the same values. Pure.
 */
#ifndef MT_UTIL_CRC32C_H
#define MT_UTIL_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* Continue crc (0 to start) over n bytes at p: mt_crc32c(mt_crc32c(0, a, na), b, nb) is the
 * CRC-32C of a followed by b. mt_crc32c(0, "123456789", 9) == 0xE3069283. */
uint32_t mt_crc32c(uint32_t crc, const void *p, size_t n);
/* The portable table version (what mt_crc32c falls back to): for the tests. */
uint32_t mt_crc32c_sw(uint32_t crc, const void *p, size_t n);

#endif
