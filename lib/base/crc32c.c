#include "base/crc32c.h"

#include <string.h>

#define KEEL__CRC32C_POLY 0x82F63B78u /* 0x1EDC6F41 bit-reversed */

/* Slicing-by-8 tables (Intel, "A Systematic Approach to Building High Performance Software-based
 * CRC Generators"): table[k][b] is the CRC of byte b followed by k zero bytes. */
static uint32_t keel__crc_table[8][256];

static void keel__crc_tables_init(void)
{
	for (uint32_t b = 0; b < 256; b++) {
		uint32_t c = b;
		for (int i = 0; i < 8; i++)
			c = (c >> 1) ^ (KEEL__CRC32C_POLY & (0u - (c & 1)));
		keel__crc_table[0][b] = c;
	}
	for (uint32_t b = 0; b < 256; b++)
		for (int k = 1; k < 8; k++) {
			uint32_t prev = keel__crc_table[k - 1][b];
			keel__crc_table[k][b] = (prev >> 8) ^ keel__crc_table[0][prev & 0xff];
		}
}

static uint32_t (*keel__crc_impl)(uint32_t, const void *, size_t);

/* Runs before main(), so the tables and the dispatch need no locking later. */
__attribute__((constructor)) static void keel__crc_init(void)
{
	keel__crc_tables_init();
	keel__crc_impl = keel_crc32c_hw_available() ? keel_crc32c_hw : keel_crc32c_sw;
}

uint32_t keel_crc32c_sw(uint32_t crc, const void *data, size_t n)
{
	const uint8_t *p = data;
	crc = ~crc;
	while (n && ((uintptr_t)p & 7)) {
		crc = (crc >> 8) ^ keel__crc_table[0][(crc ^ *p++) & 0xff];
		n--;
	}
	while (n >= 8) {
		uint32_t lo, hi;
		memcpy(&lo, p, 4);
		memcpy(&hi, p + 4, 4);
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
		lo = __builtin_bswap32(lo);
		hi = __builtin_bswap32(hi);
#endif
		lo ^= crc;
		crc = keel__crc_table[7][lo & 0xff] ^ keel__crc_table[6][(lo >> 8) & 0xff] ^
		      keel__crc_table[5][(lo >> 16) & 0xff] ^ keel__crc_table[4][lo >> 24] ^
		      keel__crc_table[3][hi & 0xff] ^ keel__crc_table[2][(hi >> 8) & 0xff] ^
		      keel__crc_table[1][(hi >> 16) & 0xff] ^ keel__crc_table[0][hi >> 24];
		p += 8;
		n -= 8;
	}
	while (n--)
		crc = (crc >> 8) ^ keel__crc_table[0][(crc ^ *p++) & 0xff];
	return ~crc;
}

#if defined(__x86_64__)
#include <nmmintrin.h>

bool keel_crc32c_hw_available(void)
{
	return __builtin_cpu_supports("sse4.2");
}

__attribute__((target("sse4.2"))) uint32_t keel_crc32c_hw(uint32_t crc, const void *data, size_t n)
{
	const uint8_t *p = data;
	uint64_t c = ~crc;
	while (n && ((uintptr_t)p & 7)) {
		c = _mm_crc32_u8((uint32_t)c, *p++);
		n--;
	}
	while (n >= 8) {
		uint64_t w;
		memcpy(&w, p, 8);
		c = _mm_crc32_u64(c, w);
		p += 8;
		n -= 8;
	}
	while (n--)
		c = _mm_crc32_u8((uint32_t)c, *p++);
	return ~(uint32_t)c;
}
#else
bool keel_crc32c_hw_available(void)
{
	return false;
}

uint32_t keel_crc32c_hw(uint32_t crc, const void *data, size_t n)
{
	return keel_crc32c_sw(crc, data, n);
}
#endif

uint32_t keel_crc32c(uint32_t crc, const void *data, size_t n)
{
	return keel__crc_impl(crc, data, n);
}
