/*
 * crc32c.c - CRC-32C (crc32c.h). Reflected polynomial 0x82F63B78, initial value and final xor
 * ~0 (RFC 3720 B.4). Two implementations with identical results: the SSE4.2 crc32 instruction
 * (x86-64, chosen at run time; three lanes interleaved) and slicing-by-8 tables built once.
 */
#include "crc32c.h"

#include <string.h>
#include <threads.h>

#define POLY 0x82F63B78u

static uint32_t table[8][256];
static once_flag table_once = ONCE_FLAG_INIT;

static void table_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = c & 1 ? (c >> 1) ^ POLY : c >> 1;
        table[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; i++)
        for (int t = 1; t < 8; t++)
            table[t][i] = (table[t - 1][i] >> 8) ^ table[0][table[t - 1][i] & 0xFF];
}

uint32_t mt_crc32c_sw(uint32_t crc, const void *p, size_t n)
{
    call_once(&table_once, table_init);
    const uint8_t *b = p;
    uint32_t c = ~crc;
    while (n && ((uintptr_t)b & 7)) {
        c = (c >> 8) ^ table[0][(c ^ *b++) & 0xFF];
        n--;
    }
    for (; n >= 8; n -= 8, b += 8) {
        uint32_t lo = (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 |
                      (uint32_t)b[3] << 24;
        uint32_t hi = (uint32_t)b[4] | (uint32_t)b[5] << 8 | (uint32_t)b[6] << 16 |
                      (uint32_t)b[7] << 24;
        lo ^= c; /* the tables are indexed by the bytes in stream order */
        c = table[7][lo & 0xFF] ^ table[6][(lo >> 8) & 0xFF] ^ table[5][(lo >> 16) & 0xFF] ^
            table[4][lo >> 24] ^ table[3][hi & 0xFF] ^ table[2][(hi >> 8) & 0xFF] ^
            table[1][(hi >> 16) & 0xFF] ^ table[0][hi >> 24];
    }
    while (n--)
        c = (c >> 8) ^ table[0][(c ^ *b++) & 0xFF];
    return ~c;
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__)) &&                        \
    __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define MT_CRC32C_HW 1
/* The crc32 instruction takes 3 cycles but can start one a cycle: three independent lanes of
 * LANE bytes each run in parallel, and their states are joined with the (linear) effect of LANE
 * zero bytes on a state, from tables made once: shift(state) = crc register after LANE zeros. */
#define LANE 1024
static uint32_t shift_tab[4][256];
static once_flag shift_once = ONCE_FLAG_INIT;

__attribute__((target("sse4.2"))) static void shift_init(void)
{
    for (int k = 0; k < 4; k++)
        for (uint32_t v = 0; v < 256; v++) {
            uint64_t c = v << (8 * k);
            for (size_t i = 0; i < LANE; i += 8)
                c = __builtin_ia32_crc32di(c, 0);
            shift_tab[k][v] = (uint32_t)c;
        }
}

static uint32_t shift(uint32_t c)
{
    return shift_tab[0][c & 0xFF] ^ shift_tab[1][(c >> 8) & 0xFF] ^
           shift_tab[2][(c >> 16) & 0xFF] ^ shift_tab[3][c >> 24];
}

__attribute__((target("sse4.2"))) static uint32_t crc32c_hw(uint32_t crc, const void *p,
                                                             size_t n)
{
    const uint8_t *b = p;
    uint64_t c = ~crc;
    while (n && ((uintptr_t)b & 7)) {
        c = __builtin_ia32_crc32qi((uint32_t)c, *b++);
        n--;
    }
    if (n >= 3 * LANE)
        call_once(&shift_once, shift_init);
    for (; n >= 3 * LANE; n -= 3 * LANE, b += 3 * LANE) {
        uint64_t c1 = 0, c2 = 0, w0, w1, w2;
        for (size_t i = 0; i < LANE; i += 8) {
            memcpy(&w0, b + i, 8);
            memcpy(&w1, b + LANE + i, 8);
            memcpy(&w2, b + 2 * LANE + i, 8);
            c = __builtin_ia32_crc32di(c, w0);
            c1 = __builtin_ia32_crc32di(c1, w1);
            c2 = __builtin_ia32_crc32di(c2, w2);
        }
        c = shift(shift((uint32_t)c) ^ (uint32_t)c1) ^ (uint32_t)c2;
    }
    for (; n >= 8; n -= 8, b += 8) {
        uint64_t w;
        memcpy(&w, b, 8);
        c = __builtin_ia32_crc32di(c, w);
    }
    while (n--)
        c = __builtin_ia32_crc32qi((uint32_t)c, *b++);
    return ~(uint32_t)c;
}
#endif

uint32_t mt_crc32c(uint32_t crc, const void *p, size_t n)
{
#ifdef MT_CRC32C_HW
    if (__builtin_cpu_supports("sse4.2"))
        return crc32c_hw(crc, p, n);
#endif
    return mt_crc32c_sw(crc, p, n);
}
