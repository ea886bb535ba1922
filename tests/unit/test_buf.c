#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/fault.h"
#include "base/mem.h"

static int teardown_faults(void **state)
{
	keel_fault_reset();
	return 0;
}

/* The invariants every buffer keeps: len < cap and a NUL right after the content once allocated. */
static void check_buf(const struct keel_buf *b, const char *want, size_t want_len)
{
	assert_int_equal(b->len, want_len);
	if (b->cap == 0) {
		assert_int_equal(want_len, 0);
		return;
	}
	assert_non_null(b->data);
	assert_true(b->len < b->cap);
	assert_memory_equal(b->data, want, want_len);
	assert_int_equal(b->data[b->len], '\0');
}

static void buf_init_is_empty_and_unallocated(void **state)
{
	struct keel_buf b = {(char *)1, 5, 7};
	keel_buf_init(&b);
	assert_null(b.data);
	assert_int_equal(b.len, 0);
	assert_int_equal(b.cap, 0);

	struct keel_buf s = KEEL_BUF_INIT;
	assert_null(s.data);
	assert_int_equal(s.len, 0);
	assert_int_equal(s.cap, 0);

	/* Freeing a never-used buffer and NULL are both fine. */
	keel_buf_free(&b);
	keel_buf_free(NULL);
	assert_null(b.data);
}

static void buf_append_grows_and_keeps_nul(void **state)
{
	struct keel_buf b = KEEL_BUF_INIT;
	assert_int_equal(keel_buf_append(&b, "abc", 3), 0);
	check_buf(&b, "abc", 3);
	assert_string_equal(b.data, "abc");

	/* Appending nothing is fine and changes nothing. */
	assert_int_equal(keel_buf_append(&b, NULL, 0), 0);
	check_buf(&b, "abc", 3);

	/* Grow well past the initial capacity, with bytes that include NULs. */
	char chunk[100];
	for (size_t i = 0; i < sizeof(chunk); i++)
		chunk[i] = (char)(i % 7 == 0 ? 0 : 'a' + i % 26);
	char want[3 + 50 * sizeof(chunk)];
	memcpy(want, "abc", 3);
	size_t len = 3;
	for (int i = 0; i < 50; i++) {
		assert_int_equal(keel_buf_append(&b, chunk, sizeof(chunk)), 0);
		memcpy(want + len, chunk, sizeof(chunk));
		len += sizeof(chunk);
		check_buf(&b, want, len);
	}
	assert_true(b.cap > 5000);
	keel_buf_free(&b);
	assert_null(b.data);
	assert_int_equal(b.len, 0);
	assert_int_equal(b.cap, 0);
}

static void buf_append_exact_capacity_boundary(void **state)
{
	/* 63 bytes fill a 64-byte block exactly (one left for the NUL); the 64th must grow it. */
	struct keel_buf b = KEEL_BUF_INIT;
	char s[64];
	memset(s, 'x', sizeof(s));
	assert_int_equal(keel_buf_append(&b, s, 63), 0);
	size_t cap = b.cap;
	assert_true(cap >= 64);
	check_buf(&b, s, 63);
	assert_int_equal(keel_buf_append(&b, s, cap - 1 - 63), 0);
	assert_int_equal(b.cap, cap);
	assert_int_equal(keel_buf_putc(&b, 'y'), 0);
	assert_true(b.cap > cap);
	assert_int_equal(b.len, cap);
	assert_int_equal(b.data[cap - 1], 'y');
	assert_int_equal(b.data[cap], '\0');
	keel_buf_free(&b);
}

static void buf_puts_and_putc_concatenate(void **state)
{
	struct keel_buf b = KEEL_BUF_INIT;
	assert_int_equal(keel_buf_puts(&b, "hello"), 0);
	assert_int_equal(keel_buf_putc(&b, ','), 0);
	assert_int_equal(keel_buf_putc(&b, ' '), 0);
	assert_int_equal(keel_buf_puts(&b, ""), 0);
	assert_int_equal(keel_buf_puts(&b, "world"), 0);
	check_buf(&b, "hello, world", 12);
	assert_string_equal(b.data, "hello, world");

	/* putc of a NUL byte stores it and counts it. */
	assert_int_equal(keel_buf_putc(&b, '\0'), 0);
	assert_int_equal(b.len, 13);
	assert_int_equal(b.data[12], '\0');
	keel_buf_free(&b);
}

static void buf_printf_short_and_long(void **state)
{
	struct keel_buf b = KEEL_BUF_INIT;
	assert_int_equal(keel_buf_printf(&b, "%d-%s-%c", 42, "x", 'z'), 0);
	assert_string_equal(b.data, "42-x-z");
	assert_int_equal(b.len, 6);

	/* Empty output appends nothing. */
	assert_int_equal(keel_buf_printf(&b, "%s", ""), 0);
	assert_int_equal(b.len, 6);

	/* Longer than the 256-byte stack buffer: the second formatting pass must be complete. */
	char big[1000];
	for (size_t i = 0; i < sizeof(big) - 1; i++)
		big[i] = (char)('A' + i % 26);
	big[sizeof(big) - 1] = '\0';
	assert_int_equal(keel_buf_printf(&b, "[%s|%d]", big, 7), 0);
	assert_int_equal(b.len, 6 + 1 + 999 + 3);
	assert_memory_equal(b.data, "42-x-z[", 7);
	assert_memory_equal(b.data + 7, big, 999);
	assert_string_equal(b.data + 7 + 999, "|7]");
	assert_int_equal(b.data[b.len], '\0');
	assert_true(b.len < b.cap);

	/* Exactly 255 and 256 characters: both sides of the stack buffer boundary. */
	struct keel_buf c = KEEL_BUF_INIT;
	assert_int_equal(keel_buf_printf(&c, "%.*s", 255, big), 0);
	assert_int_equal(c.len, 255);
	assert_memory_equal(c.data, big, 255);
	assert_int_equal(keel_buf_printf(&c, "%.*s", 256, big), 0);
	assert_int_equal(c.len, 511);
	assert_memory_equal(c.data + 255, big, 256);
	assert_int_equal(c.data[511], '\0');
	keel_buf_free(&c);
	keel_buf_free(&b);
}

static void buf_put_u64_extremes(void **state)
{
	struct keel_buf b = KEEL_BUF_INIT;
	assert_int_equal(keel_buf_put_u64(&b, 0), 0);
	assert_string_equal(b.data, "0");
	keel_buf_reset(&b);
	assert_int_equal(keel_buf_put_u64(&b, UINT64_MAX), 0);
	assert_string_equal(b.data, "18446744073709551615");
	keel_buf_reset(&b);
	assert_int_equal(keel_buf_put_u64(&b, 10), 0);
	assert_int_equal(keel_buf_putc(&b, ' '), 0);
	assert_int_equal(keel_buf_put_u64(&b, 9), 0);
	assert_int_equal(keel_buf_putc(&b, ' '), 0);
	assert_int_equal(keel_buf_put_u64(&b, 1000000007), 0);
	assert_string_equal(b.data, "10 9 1000000007");
	keel_buf_free(&b);
}

static void buf_put_i64_extremes(void **state)
{
	struct keel_buf b = KEEL_BUF_INIT;
	assert_int_equal(keel_buf_put_i64(&b, INT64_MIN), 0);
	assert_string_equal(b.data, "-9223372036854775808");
	keel_buf_reset(&b);
	assert_int_equal(keel_buf_put_i64(&b, -1), 0);
	assert_string_equal(b.data, "-1");
	keel_buf_reset(&b);
	assert_int_equal(keel_buf_put_i64(&b, INT64_MAX), 0);
	assert_string_equal(b.data, "9223372036854775807");
	keel_buf_reset(&b);
	assert_int_equal(keel_buf_put_i64(&b, 0), 0);
	assert_string_equal(b.data, "0");
	keel_buf_reset(&b);
	assert_int_equal(keel_buf_put_i64(&b, -120), 0);
	assert_string_equal(b.data, "-120");
	keel_buf_free(&b);
}

static void buf_u64_to_dec_writes_no_nul(void **state)
{
	char out[24];
	memset(out, '#', sizeof(out));
	assert_int_equal(keel_u64_to_dec(UINT64_MAX, out), 20);
	assert_memory_equal(out, "18446744073709551615", 20);
	assert_int_equal(out[20], '#');
	memset(out, '#', sizeof(out));
	assert_int_equal(keel_u64_to_dec(0, out), 1);
	assert_int_equal(out[0], '0');
	assert_int_equal(out[1], '#');
	assert_int_equal(keel_u64_to_dec(100, out), 3);
	assert_memory_equal(out, "100", 3);
}

static void buf_le32_le64_round_trip(void **state)
{
	struct keel_buf b = KEEL_BUF_INIT;
	assert_int_equal(keel_buf_put_le32(&b, 0x12345678u), 0);
	assert_int_equal(keel_buf_put_le64(&b, 0x0102030405060708ull), 0);
	assert_int_equal(keel_buf_put_le32(&b, 0xFFFFFFFFu), 0);
	assert_int_equal(keel_buf_put_le64(&b, 0x8000000000000001ull), 0);
	assert_int_equal(b.len, 4 + 8 + 4 + 8);

	/* Byte order on the wire is fixed, not the host's. */
	static const unsigned char want[] = {
		0x78, 0x56, 0x34, 0x12, 0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01,
		0xFF, 0xFF, 0xFF, 0xFF, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x80,
	};
	assert_memory_equal(b.data, want, sizeof(want));

	assert_int_equal(keel_le32(b.data), 0x12345678u);
	assert_true(keel_le64(b.data + 4) == 0x0102030405060708ull);
	assert_int_equal(keel_le32(b.data + 12), 0xFFFFFFFFu);
	assert_true(keel_le64(b.data + 16) == 0x8000000000000001ull);

	/* Unaligned reads work too. */
	unsigned char raw[9] = {0xAA, 0xEF, 0xCD, 0xAB, 0x89, 0x67, 0x45, 0x23, 0x01};
	assert_int_equal(keel_le32(raw + 1), 0x89ABCDEFu);
	assert_true(keel_le64(raw + 1) == 0x0123456789ABCDEFull);
	keel_buf_free(&b);
}

static void buf_consume_drops_prefix(void **state)
{
	struct keel_buf b = KEEL_BUF_INIT;
	assert_int_equal(keel_buf_puts(&b, "0123456789"), 0);
	char *data = b.data;
	size_t cap = b.cap;

	keel_buf_consume(&b, 0);
	check_buf(&b, "0123456789", 10);
	keel_buf_consume(&b, 3);
	check_buf(&b, "3456789", 7);
	assert_string_equal(b.data, "3456789");
	keel_buf_consume(&b, 6);
	check_buf(&b, "9", 1);
	keel_buf_consume(&b, 1);
	check_buf(&b, "", 0);
	assert_string_equal(b.data, "");

	/* Consuming more than there is empties the buffer without freeing it. */
	assert_int_equal(keel_buf_puts(&b, "abc"), 0);
	keel_buf_consume(&b, 100);
	check_buf(&b, "", 0);
	assert_ptr_equal(b.data, data);
	assert_int_equal(b.cap, cap);

	/* On a never-used buffer it is a no-op. */
	struct keel_buf e = KEEL_BUF_INIT;
	keel_buf_consume(&e, 0);
	keel_buf_consume(&e, 5);
	assert_null(e.data);
	assert_int_equal(e.len, 0);
	keel_buf_free(&b);
}

static void buf_truncate_shortens(void **state)
{
	struct keel_buf b = KEEL_BUF_INIT;
	assert_int_equal(keel_buf_puts(&b, "hello world"), 0);
	keel_buf_truncate(&b, 11);
	check_buf(&b, "hello world", 11);
	keel_buf_truncate(&b, 5);
	check_buf(&b, "hello", 5);
	assert_string_equal(b.data, "hello");
	keel_buf_truncate(&b, 0);
	assert_string_equal(b.data, "");
	assert_int_equal(b.len, 0);
	assert_int_equal(keel_buf_puts(&b, "x"), 0);
	assert_string_equal(b.data, "x");

	struct keel_buf e = KEEL_BUF_INIT;
	keel_buf_truncate(&e, 0);
	assert_null(e.data);
	keel_buf_free(&b);
}

static void buf_steal_hands_over_storage(void **state)
{
	struct keel_buf b = KEEL_BUF_INIT;
	assert_int_equal(keel_buf_puts(&b, "payload"), 0);
	char *data = b.data;
	size_t len = 0;
	char *s = keel_buf_steal(&b, &len);
	assert_ptr_equal(s, data);
	assert_int_equal(len, 7);
	assert_string_equal(s, "payload");
	assert_null(b.data);
	assert_int_equal(b.len, 0);
	assert_int_equal(b.cap, 0);
	keel_free(s);

	/* The buffer is usable again afterwards. */
	assert_int_equal(keel_buf_puts(&b, "again"), 0);
	s = keel_buf_steal(&b, NULL);
	assert_string_equal(s, "again");
	keel_free(s);
}

static void buf_steal_never_used_gives_empty_string(void **state)
{
	struct keel_buf b = KEEL_BUF_INIT;
	size_t len = 99;
	char *s = keel_buf_steal(&b, &len);
	assert_non_null(s);
	assert_string_equal(s, "");
	assert_int_equal(len, 0);
	assert_null(b.data);
	assert_int_equal(b.cap, 0);
	keel_free(s);

	/* After a reset the storage exists but is empty: still an empty string. */
	assert_int_equal(keel_buf_puts(&b, "gone"), 0);
	keel_buf_reset(&b);
	s = keel_buf_steal(&b, &len);
	assert_string_equal(s, "");
	assert_int_equal(len, 0);
	keel_free(s);
}

static void buf_steal_never_used_fails_cleanly_without_memory(void **state)
{
	struct keel_buf b = KEEL_BUF_INIT;
	size_t len = 99;
	keel_fault_arm(KEEL_FAULT_ALLOC, 0, 1, ENOMEM);
	assert_null(keel_buf_steal(&b, &len));
	keel_fault_reset();
	assert_int_equal(len, 99);
	assert_null(b.data);
	assert_int_equal(b.len, 0);
	assert_int_equal(b.cap, 0);
}

static void buf_reset_keeps_capacity(void **state)
{
	struct keel_buf b = KEEL_BUF_INIT;
	char big[300];
	memset(big, 'q', sizeof(big));
	assert_int_equal(keel_buf_append(&b, big, sizeof(big)), 0);
	char *data = b.data;
	size_t cap = b.cap;
	keel_buf_reset(&b);
	assert_int_equal(b.len, 0);
	assert_int_equal(b.cap, cap);
	assert_ptr_equal(b.data, data);
	assert_string_equal(b.data, "");

	/* Refilling up to the old size needs no allocation at all. */
	keel_fault_arm(KEEL_FAULT_ALLOC, 0, -1, ENOMEM);
	assert_int_equal(keel_buf_append(&b, big, sizeof(big)), 0);
	keel_fault_reset();
	assert_ptr_equal(b.data, data);
	check_buf(&b, big, sizeof(big));

	/* Resetting a never-used buffer does not touch memory. */
	struct keel_buf e = KEEL_BUF_INIT;
	keel_buf_reset(&e);
	assert_null(e.data);
	keel_buf_free(&b);
}

static void buf_reserve_guards_overflow(void **state)
{
	struct keel_buf b = KEEL_BUF_INIT;
	assert_int_equal(keel_buf_reserve(&b, SIZE_MAX), -ENOMEM);
	assert_null(b.data);
	assert_int_equal(b.cap, 0);

	assert_int_equal(keel_buf_puts(&b, "keep"), 0);
	char *data = b.data;
	size_t cap = b.cap;
	assert_int_equal(keel_buf_reserve(&b, SIZE_MAX), -ENOMEM);
	assert_int_equal(keel_buf_reserve(&b, SIZE_MAX - 4), -ENOMEM);
	assert_int_equal(keel_buf_reserve(&b, SIZE_MAX / 2), -ENOMEM);
	assert_int_equal(keel_buf_append(&b, "x", SIZE_MAX), -ENOMEM);
	assert_ptr_equal(b.data, data);
	assert_int_equal(b.cap, cap);
	check_buf(&b, "keep", 4);

	/* A reservation that fits makes later appends allocation-free. */
	assert_int_equal(keel_buf_reserve(&b, 1000), 0);
	assert_true(b.cap >= 4 + 1000 + 1);
	check_buf(&b, "keep", 4);
	char big[1000];
	memset(big, 'z', sizeof(big));
	keel_fault_arm(KEEL_FAULT_ALLOC, 0, -1, ENOMEM);
	assert_int_equal(keel_buf_append(&b, big, sizeof(big)), 0);
	keel_fault_reset();
	assert_int_equal(b.len, 1004);
	keel_buf_free(&b);
}

static void buf_append_failure_leaves_content_intact(void **state)
{
	struct keel_buf b = KEEL_BUF_INIT;
	assert_int_equal(keel_buf_puts(&b, "old content"), 0);
	char *data = b.data;
	size_t cap = b.cap;
	char big[500];
	memset(big, 'n', sizeof(big));

	keel_fault_arm(KEEL_FAULT_ALLOC, 0, 1, ENOMEM);
	assert_int_equal(keel_buf_append(&b, big, sizeof(big)), -ENOMEM);
	assert_int_equal(keel_fault_injected(KEEL_FAULT_ALLOC), 1);
	keel_fault_reset();
	assert_ptr_equal(b.data, data);
	assert_int_equal(b.cap, cap);
	check_buf(&b, "old content", 11);

	/* Each writer reports the failure the same way and changes nothing. */
	keel_fault_arm(KEEL_FAULT_ALLOC, 0, -1, ENOMEM);
	assert_int_equal(keel_buf_printf(&b, "%0600d", 1), -ENOMEM);
	assert_int_equal(keel_buf_reserve(&b, cap), -ENOMEM);
	keel_fault_reset();
	check_buf(&b, "old content", 11);

	/* After the fault the same append works. */
	assert_int_equal(keel_buf_append(&b, big, sizeof(big)), 0);
	assert_int_equal(b.len, 511);
	assert_memory_equal(b.data, "old content", 11);
	assert_memory_equal(b.data + 11, big, sizeof(big));
	keel_buf_free(&b);
}

static void buf_first_allocation_failure_on_each_writer(void **state)
{
	struct keel_buf b = KEEL_BUF_INIT;
	keel_fault_arm(KEEL_FAULT_ALLOC, 0, -1, ENOMEM);
	assert_int_equal(keel_buf_puts(&b, "a"), -ENOMEM);
	assert_int_equal(keel_buf_putc(&b, 'a'), -ENOMEM);
	assert_int_equal(keel_buf_printf(&b, "%d", 5), -ENOMEM);
	assert_int_equal(keel_buf_put_u64(&b, 5), -ENOMEM);
	assert_int_equal(keel_buf_put_i64(&b, -5), -ENOMEM);
	assert_int_equal(keel_buf_put_le32(&b, 5), -ENOMEM);
	assert_int_equal(keel_buf_put_le64(&b, 5), -ENOMEM);
	assert_int_equal(keel_buf_reserve(&b, 1), -ENOMEM);
	/* Reserving nothing on a never-used buffer still needs the NUL's byte. */
	assert_int_equal(keel_buf_reserve(&b, 0), -ENOMEM);
	keel_fault_reset();
	assert_null(b.data);
	assert_int_equal(b.len, 0);
	assert_int_equal(b.cap, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(buf_init_is_empty_and_unallocated),
		cmocka_unit_test(buf_append_grows_and_keeps_nul),
		cmocka_unit_test(buf_append_exact_capacity_boundary),
		cmocka_unit_test(buf_puts_and_putc_concatenate),
		cmocka_unit_test(buf_printf_short_and_long),
		cmocka_unit_test(buf_put_u64_extremes),
		cmocka_unit_test(buf_put_i64_extremes),
		cmocka_unit_test(buf_u64_to_dec_writes_no_nul),
		cmocka_unit_test(buf_le32_le64_round_trip),
		cmocka_unit_test(buf_consume_drops_prefix),
		cmocka_unit_test(buf_truncate_shortens),
		cmocka_unit_test(buf_steal_hands_over_storage),
		cmocka_unit_test(buf_steal_never_used_gives_empty_string),
		cmocka_unit_test_teardown(buf_steal_never_used_fails_cleanly_without_memory,
					  teardown_faults),
		cmocka_unit_test_teardown(buf_reset_keeps_capacity, teardown_faults),
		cmocka_unit_test_teardown(buf_reserve_guards_overflow, teardown_faults),
		cmocka_unit_test_teardown(buf_append_failure_leaves_content_intact,
					  teardown_faults),
		cmocka_unit_test_teardown(buf_first_allocation_failure_on_each_writer,
					  teardown_faults),
	};
	return cmocka_run_group_tests_name("base/buf", tests, NULL, NULL);
}
