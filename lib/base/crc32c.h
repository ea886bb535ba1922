/* CRC32C (Castagnoli, iSCSI polynomial 0x1EDC6F41), the checksum of WAL and snapshot records.
 * Uses the SSE4.2 crc32 instruction when the CPU has it, a slicing-by-8 table otherwise. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* zlib-style running value: start with 0; crc32c(crc32c(0, a), b) == crc32c(0, a ++ b). */
uint32_t keel_crc32c(uint32_t crc, const void *data, size_t n);

/* The two implementations, exposed so tests and benchmarks can compare them. The hardware one
 * must only be called when keel_crc32c_hw_available() is true. */
uint32_t keel_crc32c_sw(uint32_t crc, const void *data, size_t n);
uint32_t keel_crc32c_hw(uint32_t crc, const void *data, size_t n);
bool keel_crc32c_hw_available(void);
