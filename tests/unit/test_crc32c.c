#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "base/crc32c.h"

typedef uint32_t (*crc_fn)(uint32_t, const void *, size_t);

/* RFC 3720 (iSCSI) appendix B.4 test vectors, plus the common "123456789" check value. */
static void check_vectors(crc_fn crc)
{
	uint8_t buf[48];

	memset(buf, 0, 32);
	assert_int_equal(crc(0, buf, 32), 0x8A9136AA);
	memset(buf, 0xFF, 32);
	assert_int_equal(crc(0, buf, 32), 0x62A8AB43);
	for (int i = 0; i < 32; i++)
		buf[i] = (uint8_t)i;
	assert_int_equal(crc(0, buf, 32), 0x46DD794E);
	for (int i = 0; i < 32; i++)
		buf[i] = (uint8_t)(31 - i);
	assert_int_equal(crc(0, buf, 32), 0x113FDB5C);

	static const uint8_t iscsi_read[48] = {
		0x01, 0xc0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
		0x00, 0x00, 0x00, 0x00, 0x14, 0x00, 0x00, 0x00, 0x00, 0x00, 0x04, 0x00,
		0x00, 0x00, 0x00, 0x14, 0x00, 0x00, 0x00, 0x18, 0x28, 0x00, 0x00, 0x00,
		0x00, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	};
	assert_int_equal(crc(0, iscsi_read, sizeof(iscsi_read)), 0xD9963A56);
	assert_int_equal(crc(0, "123456789", 9), 0xE3069283);
	assert_int_equal(crc(0, "", 0), 0);
	assert_int_equal(crc(0, "a", 1), 0xC1D04330);
}

static void crc32c_sw_matches_rfc3720_vectors(void **state)
{
	check_vectors(keel_crc32c_sw);
}

static void crc32c_hw_matches_rfc3720_vectors(void **state)
{
	if (!keel_crc32c_hw_available())
		skip();
	check_vectors(keel_crc32c_hw);
}

static void crc32c_dispatch_matches_rfc3720_vectors(void **state)
{
	check_vectors(keel_crc32c);
}

/* Extending a running value must equal one pass over the concatenation, for every split point
 * and every alignment: the WAL checksums records piece by piece. */
static void crc32c_incremental_equals_one_shot(void **state)
{
	uint8_t data[200];
	srand(7);
	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)rand();
	crc_fn fns[] = {keel_crc32c_sw, keel_crc32c};
	for (size_t f = 0; f < 2; f++) {
		for (size_t off = 0; off < 9; off++) {
			size_t n = sizeof(data) - off;
			uint32_t whole = fns[f](0, data + off, n);
			for (size_t split = 0; split <= n; split += 7) {
				uint32_t c = fns[f](0, data + off, split);
				c = fns[f](c, data + off + split, n - split);
				assert_int_equal(c, whole);
			}
		}
	}
}

static void crc32c_hw_equals_sw_on_random_input(void **state)
{
	if (!keel_crc32c_hw_available())
		skip();
	uint8_t *data = malloc(4096 + 16);
	assert_non_null(data);
	srand(42);
	for (int round = 0; round < 500; round++) {
		size_t off = (size_t)rand() % 16, n = (size_t)rand() % 4096;
		for (size_t i = 0; i < n; i++)
			data[off + i] = (uint8_t)rand();
		uint32_t seed = (uint32_t)rand();
		assert_int_equal(keel_crc32c_hw(seed, data + off, n), keel_crc32c_sw(seed, data + off, n));
	}
	free(data);
}

static void crc32c_detects_single_bit_flips(void **state)
{
	uint8_t data[64] = "a WAL record whose every bit matters";
	uint32_t good = keel_crc32c(0, data, sizeof(data));
	for (size_t bit = 0; bit < sizeof(data) * 8; bit++) {
		data[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		assert_int_not_equal(keel_crc32c(0, data, sizeof(data)), good);
		data[bit / 8] ^= (uint8_t)(1u << (bit % 8));
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(crc32c_sw_matches_rfc3720_vectors),
		cmocka_unit_test(crc32c_hw_matches_rfc3720_vectors),
		cmocka_unit_test(crc32c_dispatch_matches_rfc3720_vectors),
		cmocka_unit_test(crc32c_incremental_equals_one_shot),
		cmocka_unit_test(crc32c_hw_equals_sw_on_random_input),
		cmocka_unit_test(crc32c_detects_single_bit_flips),
	};
	return cmocka_run_group_tests_name("base/crc32c", tests, NULL, NULL);
}
