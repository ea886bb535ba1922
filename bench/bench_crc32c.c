/* CRC32C throughput for the record sizes a WAL sees, beside zlib's crc32 (the checksum most C
 * storage engines use) as the reference, in one run. Prints GB/s and the ratio to zlib. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <zlib.h>

#include "base/clock.h"
#include "base/crc32c.h"

typedef uint32_t (*crc_fn)(uint32_t, const void *, size_t);

static uint32_t zlib_crc(uint32_t crc, const void *p, size_t n)
{
	return (uint32_t)crc32(crc, p, (uInt)n);
}

/* Best of 5 rounds of ~total bytes each, in GB/s. */
static double measure(crc_fn fn, const uint8_t *buf, size_t size, size_t total, uint32_t *sink)
{
	double best = 0;
	for (int round = 0; round < 5; round++) {
		size_t iters = total / size;
		int64_t t0 = keel_mono_ns();
		uint32_t c = 0;
		for (size_t i = 0; i < iters; i++)
			c = fn(c, buf, size);
		int64_t dt = keel_mono_ns() - t0;
		*sink ^= c;
		double gbs = (double)(iters * size) / (double)dt;
		if (gbs > best)
			best = gbs;
	}
	return best;
}

int main(void)
{
	static const size_t sizes[] = {64, 256, 4096, 65536};
	uint8_t *buf = malloc(65536);
	for (size_t i = 0; i < 65536; i++)
		buf[i] = (uint8_t)(i * 131 + 7);
	uint32_t sink = 0;
	printf("crc32c throughput, GB/s (best of 5), hardware crc32: %s\n",
	       keel_crc32c_hw_available() ? "yes" : "no");
	printf("%8s %12s %12s %12s %14s %14s\n", "size", "zlib crc32", "crc32c sw", "crc32c hw",
	       "sw/zlib", "keel/zlib");
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		size_t total = 256u << 20;
		double z = measure(zlib_crc, buf, sizes[i], total, &sink);
		double sw = measure(keel_crc32c_sw, buf, sizes[i], total, &sink);
		double hw = keel_crc32c_hw_available() ? measure(keel_crc32c_hw, buf, sizes[i], total, &sink) : 0;
		double keel = measure(keel_crc32c, buf, sizes[i], total, &sink);
		printf("%8zu %12.2f %12.2f %12.2f %13.2fx %13.2fx\n", sizes[i], z, sw, hw, sw / z, keel / z);
	}
	free(buf);
	return sink == 0x12345678; /* keep the loops from being optimised away */
}
