#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <jansson.h>
#include <string.h>

#include "base/buf.h"
#include "base/fault.h"
#include "base/jw.h"

static int teardown_faults(void **state)
{
	keel_fault_reset();
	return 0;
}

/* Finish w and compare what it wrote to b with want. */
static void check_doc(struct keel_jw *w, struct keel_buf *b, const char *want)
{
	assert_int_equal(keel_jw_finish(w), 0);
	assert_non_null(b->data);
	assert_string_equal(b->data, want);
	assert_int_equal(b->len, strlen(want));
}

/* Escape n bytes of s as a JSON string body and compare with want. */
static void check_escape(const char *s, size_t n, unsigned flags, const char *want)
{
	struct keel_buf b = KEEL_BUF_INIT;
	assert_int_equal(keel_json_escape(&b, s, n, flags), 0);
	if (b.len != strlen(want) || memcmp(b.data, want, b.len) != 0)
		fail_msg("escape gave \"%.*s\", want \"%s\"", (int)b.len, b.data ? b.data : "",
			 want);
	keel_buf_free(&b);
}

#define CHECK_ESC(lit, flags, want) check_escape((lit), sizeof(lit) - 1, (flags), (want))

static void jw_object_with_scalar_members(void **state)
{
	struct keel_buf b = KEEL_BUF_INIT;
	struct keel_jw w;
	keel_jw_init(&w, &b, 0);
	keel_jw_obj_begin(&w);
	keel_jw_key(&w, "s");
	keel_jw_str(&w, "x");
	keel_jw_key(&w, "u");
	keel_jw_u64(&w, UINT64_MAX);
	keel_jw_key(&w, "i");
	keel_jw_i64(&w, INT64_MIN);
	keel_jw_key(&w, "t");
	keel_jw_bool(&w, true);
	keel_jw_key(&w, "f");
	keel_jw_bool(&w, false);
	keel_jw_key(&w, "n");
	keel_jw_null(&w);
	keel_jw_key(&w, "r");
	keel_jw_raw(&w, "[1, 2]", 6);
	keel_jw_keyn(&w, "key-cut", 3);
	keel_jw_strn(&w, "abcdef", 2);
	keel_jw_key(&w, "");
	keel_jw_str(&w, "");
	keel_jw_obj_end(&w);
	check_doc(&w, &b,
		  "{\"s\":\"x\",\"u\":18446744073709551615,\"i\":-9223372036854775808,"
		  "\"t\":true,\"f\":false,\"n\":null,\"r\":[1, 2],\"key\":\"ab\",\"\":\"\"}");
	keel_buf_free(&b);
}

static void jw_empty_containers(void **state)
{
	struct keel_buf b = KEEL_BUF_INIT;
	struct keel_jw w;
	keel_jw_init(&w, &b, 0);
	keel_jw_obj_begin(&w);
	keel_jw_obj_end(&w);
	check_doc(&w, &b, "{}");

	keel_buf_reset(&b);
	keel_jw_init(&w, &b, 0);
	keel_jw_arr_begin(&w);
	keel_jw_arr_end(&w);
	check_doc(&w, &b, "[]");
	keel_buf_free(&b);
}

static void jw_nesting_puts_commas_between_siblings_only(void **state)
{
	struct keel_buf b = KEEL_BUF_INIT;
	struct keel_jw w;
	keel_jw_init(&w, &b, 0);
	keel_jw_obj_begin(&w);
	keel_jw_key(&w, "list");
	keel_jw_arr_begin(&w);
	keel_jw_u64(&w, 1);
	keel_jw_i64(&w, -2);
	keel_jw_obj_begin(&w);
	keel_jw_key(&w, "k");
	keel_jw_arr_begin(&w);
	keel_jw_arr_end(&w);
	keel_jw_key(&w, "m");
	keel_jw_obj_begin(&w);
	keel_jw_obj_end(&w);
	keel_jw_obj_end(&w);
	keel_jw_arr_begin(&w);
	keel_jw_arr_begin(&w);
	keel_jw_null(&w);
	keel_jw_arr_end(&w);
	keel_jw_arr_end(&w);
	keel_jw_str(&w, "end");
	keel_jw_arr_end(&w);
	keel_jw_key(&w, "after");
	keel_jw_obj_begin(&w);
	keel_jw_kbool(&w, "deep", false);
	keel_jw_obj_end(&w);
	keel_jw_obj_end(&w);
	check_doc(&w, &b,
		  "{\"list\":[1,-2,{\"k\":[],\"m\":{}},[[null]],\"end\"],"
		  "\"after\":{\"deep\":false}}");
	keel_buf_free(&b);
}

static void jw_top_level_scalars_are_documents(void **state)
{
	struct keel_buf b = KEEL_BUF_INIT;
	struct keel_jw w;
	keel_jw_init(&w, &b, 0);
	keel_jw_str(&w, "only");
	check_doc(&w, &b, "\"only\"");

	keel_buf_reset(&b);
	keel_jw_init(&w, &b, 0);
	keel_jw_u64(&w, 0);
	check_doc(&w, &b, "0");

	keel_buf_reset(&b);
	keel_jw_init(&w, &b, 0);
	keel_jw_null(&w);
	check_doc(&w, &b, "null");
	keel_buf_free(&b);
}

static void jw_appends_to_existing_buffer(void **state)
{
	struct keel_buf b = KEEL_BUF_INIT;
	assert_int_equal(keel_buf_puts(&b, "data: "), 0);
	struct keel_jw w;
	keel_jw_init(&w, &b, 0);
	keel_jw_arr_begin(&w);
	keel_jw_u64(&w, 7);
	keel_jw_arr_end(&w);
	check_doc(&w, &b, "data: [7]");
	keel_buf_free(&b);
}

static void jw_member_shorthands(void **state)
{
	struct keel_buf b = KEEL_BUF_INIT;
	struct keel_jw w;
	keel_jw_init(&w, &b, 0);
	keel_jw_obj_begin(&w);
	keel_jw_kstr(&w, "action", "get");
	keel_jw_ku64(&w, "modifiedIndex", 18446744073709551615ull);
	keel_jw_ki64(&w, "ttl", -1);
	keel_jw_kbool(&w, "dir", true);
	keel_jw_kstr(&w, "q\"k", "v\n");
	keel_jw_obj_end(&w);
	check_doc(&w, &b,
		  "{\"action\":\"get\",\"modifiedIndex\":18446744073709551615,\"ttl\":-1,"
		  "\"dir\":true,\"q\\\"k\":\"v\\n\"}");
	keel_buf_free(&b);
}

static void jw_escapes_quotes_backslash_and_controls(void **state)
{
	CHECK_ESC("plain text", 0, "plain text");
	CHECK_ESC("", 0, "");
	CHECK_ESC("a\"b\\c", 0, "a\\\"b\\\\c");
	CHECK_ESC("\n\r\t", 0, "\\n\\r\\t");
	CHECK_ESC("\x01\x1f\b\f\x0b\x1b", 0, "\\u0001\\u001f\\u0008\\u000c\\u000b\\u001b");
	CHECK_ESC("nul\0byte", 0, "nul\\u0000byte");
	/* DEL and '/' need no escaping. */
	CHECK_ESC("\x7f/", 0, "\x7f/");
	CHECK_ESC("\x1a", KEEL_JW_GO_ESCAPE, "\\u001a");

	/* Appends, and escapes keys as well as values. */
	struct keel_buf b = KEEL_BUF_INIT;
	assert_int_equal(keel_buf_puts(&b, ">"), 0);
	assert_int_equal(keel_json_escape(&b, "\"", 1, 0), 0);
	assert_string_equal(b.data, ">\\\"");
	keel_buf_reset(&b);
	struct keel_jw w;
	keel_jw_init(&w, &b, 0);
	keel_jw_obj_begin(&w);
	keel_jw_key(&w, "tab\there");
	keel_jw_strn(&w, "\0\x02", 2);
	keel_jw_obj_end(&w);
	check_doc(&w, &b, "{\"tab\\there\":\"\\u0000\\u0002\"}");
	keel_buf_free(&b);
}

static void jw_go_escape_flag_escapes_html_and_line_separators(void **state)
{
	CHECK_ESC("<a href=\"x\">&amp;</a>", KEEL_JW_GO_ESCAPE,
		  "\\u003ca href=\\\"x\\\"\\u003e\\u0026amp;\\u003c/a\\u003e");
	CHECK_ESC("a\xe2\x80\xa8" "b\xe2\x80\xa9" "c", KEEL_JW_GO_ESCAPE, "a\\u2028b\\u2029c");
	/* Neighbours of U+2028/2029 are left alone. */
	CHECK_ESC("\xe2\x80\xa7\xe2\x80\xaa", KEEL_JW_GO_ESCAPE, "\xe2\x80\xa7\xe2\x80\xaa");
	CHECK_ESC("\xc3\xa9<", KEEL_JW_GO_ESCAPE, "\xc3\xa9\\u003c");
}

static void jw_without_go_flag_html_stays_literal(void **state)
{
	CHECK_ESC("<a>&b</a>", 0, "<a>&b</a>");
	CHECK_ESC("\xe2\x80\xa8\xe2\x80\xa9", 0, "\xe2\x80\xa8\xe2\x80\xa9");

	struct keel_buf b = KEEL_BUF_INIT;
	struct keel_jw w;
	keel_jw_init(&w, &b, 0);
	keel_jw_str(&w, "<&>");
	check_doc(&w, &b, "\"<&>\"");
	keel_buf_reset(&b);
	keel_jw_init(&w, &b, KEEL_JW_GO_ESCAPE);
	keel_jw_str(&w, "<&>");
	check_doc(&w, &b, "\"\\u003c\\u0026\\u003e\"");
	keel_buf_free(&b);
}

static void jw_valid_utf8_passes_through(void **state)
{
	static const char *const ok[] = {
		"\xc2\x80",             /* U+0080, smallest 2-byte */
		"\xc3\xa9t\xc3\xa9",    /* été */
		"\xdf\xbf",             /* U+07FF */
		"\xe0\xa0\x80",         /* U+0800, smallest 3-byte */
		"\xe2\x82\xac",         /* € */
		"\xed\x9f\xbf",         /* U+D7FF, just below the surrogates */
		"\xee\x80\x80",         /* U+E000, just above them */
		"\xef\xbf\xbf",         /* U+FFFF */
		"\xf0\x90\x80\x80",     /* U+10000, smallest 4-byte */
		"\xf0\x9f\x98\x80",     /* emoji */
		"\xf4\x8f\xbf\xbf",     /* U+10FFFF, the last code point */
		"\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e",
	};
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		check_escape(ok[i], strlen(ok[i]), 0, ok[i]);
		check_escape(ok[i], strlen(ok[i]), KEEL_JW_GO_ESCAPE, ok[i]);
	}
}

static void jw_invalid_utf8_becomes_one_replacement_per_byte(void **state)
{
#define FFFD "\\ufffd"
	CHECK_ESC("\x80", 0, FFFD);
	CHECK_ESC("a\x80z", 0, "a" FFFD "z");
	CHECK_ESC("\xe2\x82", 0, FFFD FFFD);                /* truncated at the end */
	CHECK_ESC("\xe2\x82" "A", 0, FFFD FFFD "A");        /* truncated mid-string */
	CHECK_ESC("\xc0\x80", 0, FFFD FFFD);                /* overlong NUL */
	CHECK_ESC("\xc1\xbf", 0, FFFD FFFD);                /* overlong DEL */
	CHECK_ESC("\xe0\x80\x80", 0, FFFD FFFD FFFD);       /* overlong 3-byte */
	CHECK_ESC("\xe0\x9f\xbf", 0, FFFD FFFD FFFD);       /* overlong U+07FF */
	CHECK_ESC("\xf0\x80\x80\x80", 0, FFFD FFFD FFFD FFFD);
	CHECK_ESC("\xf0\x8f\xbf\xbf", 0, FFFD FFFD FFFD FFFD); /* overlong U+FFFF */
	CHECK_ESC("\xed\xa0\x80", 0, FFFD FFFD FFFD);       /* surrogate U+D800 */
	CHECK_ESC("\xed\xbf\xbf", 0, FFFD FFFD FFFD);       /* surrogate U+DFFF */
	CHECK_ESC("\xf4\x90\x80\x80", 0, FFFD FFFD FFFD FFFD); /* U+110000 */
	CHECK_ESC("\xf5", 0, FFFD);
	CHECK_ESC("\xf5\x80\x80\x80", 0, FFFD FFFD FFFD FFFD);
	CHECK_ESC("\xff\xfe", 0, FFFD FFFD);
	CHECK_ESC("\xf0\x9f\x98", 0, FFFD FFFD FFFD);       /* emoji missing its last byte */
	CHECK_ESC("\xc3", 0, FFFD);
	CHECK_ESC("\xc3\xc3\xa9", 0, FFFD "\xc3\xa9");      /* a bad lead, then a good char */
	CHECK_ESC("\xe2\x80\xa8\x80", KEEL_JW_GO_ESCAPE, "\\u2028" FFFD);
	/* A NUL cuts no sequence short silently: it is a byte of its own. */
	CHECK_ESC("\xc3\0", 0, FFFD "\\u0000");
#undef FFFD
}

static void jw_finish_rejects_misuse(void **state)
{
	struct keel_buf b = KEEL_BUF_INIT;
	struct keel_jw w;

	/* Nothing written at all. */
	keel_jw_init(&w, &b, 0);
	assert_int_equal(keel_jw_finish(&w), -EINVAL);

	/* A value inside an object without a key. */
	keel_jw_init(&w, &b, 0);
	keel_jw_obj_begin(&w);
	keel_jw_str(&w, "v");
	keel_jw_obj_end(&w);
	assert_int_equal(keel_jw_finish(&w), -EINVAL);

	/* A container inside an object without a key. */
	keel_jw_init(&w, &b, 0);
	keel_jw_obj_begin(&w);
	keel_jw_arr_begin(&w);
	assert_int_equal(keel_jw_finish(&w), -EINVAL);

	/* A key inside an array. */
	keel_jw_init(&w, &b, 0);
	keel_jw_arr_begin(&w);
	keel_jw_key(&w, "k");
	keel_jw_u64(&w, 1);
	keel_jw_arr_end(&w);
	assert_int_equal(keel_jw_finish(&w), -EINVAL);

	/* A key at the top level. */
	keel_jw_init(&w, &b, 0);
	keel_jw_key(&w, "k");
	assert_int_equal(keel_jw_finish(&w), -EINVAL);

	/* Two keys in a row. */
	keel_jw_init(&w, &b, 0);
	keel_jw_obj_begin(&w);
	keel_jw_key(&w, "a");
	keel_jw_key(&w, "b");
	keel_jw_u64(&w, 1);
	keel_jw_obj_end(&w);
	assert_int_equal(keel_jw_finish(&w), -EINVAL);

	/* A key without its value. */
	keel_jw_init(&w, &b, 0);
	keel_jw_obj_begin(&w);
	keel_jw_key(&w, "a");
	keel_jw_obj_end(&w);
	assert_int_equal(keel_jw_finish(&w), -EINVAL);

	/* Unbalanced: closing what is not open, closing the wrong kind, leaving one open. */
	keel_jw_init(&w, &b, 0);
	keel_jw_obj_end(&w);
	assert_int_equal(keel_jw_finish(&w), -EINVAL);
	keel_jw_init(&w, &b, 0);
	keel_jw_arr_end(&w);
	assert_int_equal(keel_jw_finish(&w), -EINVAL);
	keel_jw_init(&w, &b, 0);
	keel_jw_arr_begin(&w);
	keel_jw_obj_end(&w);
	assert_int_equal(keel_jw_finish(&w), -EINVAL);
	keel_jw_init(&w, &b, 0);
	keel_jw_obj_begin(&w);
	keel_jw_arr_end(&w);
	assert_int_equal(keel_jw_finish(&w), -EINVAL);
	keel_jw_init(&w, &b, 0);
	keel_jw_obj_begin(&w);
	keel_jw_key(&w, "a");
	keel_jw_arr_begin(&w);
	keel_jw_arr_end(&w);
	assert_int_equal(keel_jw_finish(&w), -EINVAL);
	keel_jw_init(&w, &b, 0);
	keel_jw_arr_begin(&w);
	keel_jw_arr_end(&w);
	keel_jw_arr_end(&w);
	assert_int_equal(keel_jw_finish(&w), -EINVAL);

	/* Two top-level values. */
	keel_jw_init(&w, &b, 0);
	keel_jw_u64(&w, 1);
	keel_jw_u64(&w, 2);
	assert_int_equal(keel_jw_finish(&w), -EINVAL);
	keel_jw_init(&w, &b, 0);
	keel_jw_obj_begin(&w);
	keel_jw_obj_end(&w);
	keel_jw_arr_begin(&w);
	keel_jw_arr_end(&w);
	assert_int_equal(keel_jw_finish(&w), -EINVAL);
	keel_buf_free(&b);
}

static void jw_error_is_sticky_and_stops_output(void **state)
{
	struct keel_buf b = KEEL_BUF_INIT;
	struct keel_jw w;
	keel_jw_init(&w, &b, 0);
	keel_jw_arr_begin(&w);
	keel_jw_key(&w, "bad");
	size_t len = b.len;
	/* Everything after the first error is ignored, valid or not. */
	keel_jw_u64(&w, 1);
	keel_jw_str(&w, "x");
	keel_jw_arr_end(&w);
	keel_jw_obj_begin(&w);
	assert_int_equal(b.len, len);
	assert_string_equal(b.data, "[");
	assert_int_equal(keel_jw_finish(&w), -EINVAL);
	assert_int_equal(keel_jw_finish(&w), -EINVAL);
	keel_buf_free(&b);
}

static void jw_depth_limit_is_64(void **state)
{
	struct keel_buf b = KEEL_BUF_INIT;
	struct keel_jw w;
	char want[2 * KEEL_JW_MAX_DEPTH + 1];

	keel_jw_init(&w, &b, 0);
	for (int i = 0; i < KEEL_JW_MAX_DEPTH; i++)
		keel_jw_arr_begin(&w);
	for (int i = 0; i < KEEL_JW_MAX_DEPTH; i++)
		keel_jw_arr_end(&w);
	memset(want, '[', KEEL_JW_MAX_DEPTH);
	memset(want + KEEL_JW_MAX_DEPTH, ']', KEEL_JW_MAX_DEPTH);
	want[2 * KEEL_JW_MAX_DEPTH] = '\0';
	check_doc(&w, &b, want);

	/* One more level is refused, however the document continues. */
	keel_buf_reset(&b);
	keel_jw_init(&w, &b, 0);
	for (int i = 0; i < KEEL_JW_MAX_DEPTH + 1; i++)
		keel_jw_arr_begin(&w);
	assert_int_equal(b.len, KEEL_JW_MAX_DEPTH);
	for (int i = 0; i < KEEL_JW_MAX_DEPTH + 1; i++)
		keel_jw_arr_end(&w);
	assert_int_equal(keel_jw_finish(&w), -EINVAL);

	/* Objects count the same way. */
	keel_buf_reset(&b);
	keel_jw_init(&w, &b, 0);
	keel_jw_obj_begin(&w);
	for (int i = 1; i < KEEL_JW_MAX_DEPTH + 1; i++) {
		keel_jw_key(&w, "k");
		keel_jw_obj_begin(&w);
	}
	for (int i = 0; i < KEEL_JW_MAX_DEPTH + 1; i++)
		keel_jw_obj_end(&w);
	assert_int_equal(keel_jw_finish(&w), -EINVAL);
	keel_buf_free(&b);
}

/* Write the same document every time; used under allocation failure. */
static void write_sample(struct keel_jw *w)
{
	char big[700];
	memset(big, 'b', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	keel_jw_obj_begin(w);
	keel_jw_kstr(w, "a", "short");
	keel_jw_kstr(w, "big", big);
	keel_jw_key(w, "arr");
	keel_jw_arr_begin(w);
	for (int i = 0; i < 40; i++)
		keel_jw_i64(w, -1000000000000ll * i);
	keel_jw_arr_end(w);
	keel_jw_kstr(w, "esc", "\"\x01\xe2\x80\xa8<>");
	keel_jw_kbool(w, "t", true);
	keel_jw_key(w, "n");
	keel_jw_null(w);
	keel_jw_obj_end(w);
}

static void jw_allocation_failure_is_sticky_enomem(void **state)
{
	struct keel_buf ref = KEEL_BUF_INIT;
	struct keel_jw w;
	keel_jw_init(&w, &ref, KEEL_JW_GO_ESCAPE);
	write_sample(&w);
	assert_int_equal(keel_jw_finish(&w), 0);

	/* The first allocation fails. */
	struct keel_buf b = KEEL_BUF_INIT;
	keel_jw_init(&w, &b, KEEL_JW_GO_ESCAPE);
	keel_fault_arm(KEEL_FAULT_ALLOC, 0, 1, ENOMEM);
	write_sample(&w);
	keel_fault_reset();
	assert_int_equal(keel_jw_finish(&w), -ENOMEM);
	keel_buf_free(&b);

	/* Each later allocation fails in turn; one failure is enough to fail the document, even
	 * when later allocations would have worked again. */
	bool saw_success = false;
	for (unsigned skip = 1; skip < 64 && !saw_success; skip++) {
		keel_buf_init(&b);
		keel_jw_init(&w, &b, KEEL_JW_GO_ESCAPE);
		keel_fault_arm(KEEL_FAULT_ALLOC, skip, 1, ENOMEM);
		write_sample(&w);
		unsigned long injected = keel_fault_injected(KEEL_FAULT_ALLOC);
		keel_fault_reset();
		int r = keel_jw_finish(&w);
		if (injected) {
			assert_int_equal(r, -ENOMEM);
		} else {
			assert_int_equal(r, 0);
			assert_string_equal(b.data, ref.data);
			saw_success = true;
		}
		keel_buf_free(&b);
	}
	assert_true(saw_success);

	/* The first error wins: misuse after ENOMEM still reports ENOMEM. */
	keel_buf_init(&b);
	keel_jw_init(&w, &b, 0);
	keel_fault_arm(KEEL_FAULT_ALLOC, 0, -1, ENOMEM);
	keel_jw_arr_begin(&w);
	keel_fault_reset();
	keel_jw_obj_end(&w);
	keel_jw_key(&w, "x");
	assert_int_equal(keel_jw_finish(&w), -ENOMEM);
	keel_buf_free(&b);

	/* keel_json_escape reports it directly and leaves the buffer as it was. */
	keel_buf_init(&b);
	assert_int_equal(keel_buf_puts(&b, "keep"), 0);
	char big[200];
	memset(big, '"', sizeof(big));
	keel_fault_arm(KEEL_FAULT_ALLOC, 0, -1, ENOMEM);
	assert_int_equal(keel_json_escape(&b, big, sizeof(big), 0), -ENOMEM);
	keel_fault_reset();
	assert_string_equal(b.data, "keep");
	keel_buf_free(&b);
	keel_buf_free(&ref);
}

static void jw_output_parses_back_with_jansson(void **state)
{
	static const struct {
		const char *key;
		const char *val;
		size_t len;
	} members[] = {
		{"quote\"back\\slash", "a\"b\\c/d", 7},
		{"controls", "\n\r\t\b\f\x01\x1f", 7},
		{"nul", "x\0y", 3},
		{"html", "<script>&</script>", 18},
		{"utf8", "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", 9},
		{"separators", "\xe2\x80\xa8\xe2\x80\xa9", 6},
		{"\xe6\x97\xa5\xe6\x9c\xac", "key in UTF-8", 12},
		{"", "empty key", 9},
		{"empty", "", 0},
	};
	for (unsigned flags = 0; flags <= KEEL_JW_GO_ESCAPE; flags += KEEL_JW_GO_ESCAPE) {
		struct keel_buf b = KEEL_BUF_INIT;
		struct keel_jw w;
		keel_jw_init(&w, &b, flags);
		keel_jw_obj_begin(&w);
		for (size_t i = 0; i < sizeof(members) / sizeof(members[0]); i++) {
			keel_jw_key(&w, members[i].key);
			keel_jw_strn(&w, members[i].val, members[i].len);
		}
		keel_jw_key(&w, "bad utf8");
		keel_jw_str(&w, "\x80\xc0\x80\xed\xa0\x80\xf5");
		keel_jw_key(&w, "nums");
		keel_jw_arr_begin(&w);
		keel_jw_i64(&w, INT64_MIN);
		keel_jw_i64(&w, INT64_MAX);
		keel_jw_u64(&w, 0);
		keel_jw_arr_end(&w);
		keel_jw_obj_end(&w);
		assert_int_equal(keel_jw_finish(&w), 0);

		json_error_t jerr;
		json_t *root = json_loadb(b.data, b.len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL,
					  &jerr);
		if (!root)
			fail_msg("jansson rejected %s: %s", b.data, jerr.text);
		assert_int_equal(json_object_size(root), sizeof(members) / sizeof(members[0]) + 2);
		for (size_t i = 0; i < sizeof(members) / sizeof(members[0]); i++) {
			json_t *v = json_object_get(root, members[i].key);
			assert_non_null(v);
			assert_true(json_is_string(v));
			assert_int_equal(json_string_length(v), members[i].len);
			assert_memory_equal(json_string_value(v), members[i].val, members[i].len);
		}
		/* Seven bad bytes, seven U+FFFD. */
		const char *bad = json_string_value(json_object_get(root, "bad utf8"));
		assert_string_equal(bad, "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"
					 "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");
		json_t *nums = json_object_get(root, "nums");
		assert_int_equal(json_array_size(nums), 3);
		assert_true(json_integer_value(json_array_get(nums, 0)) == INT64_MIN);
		assert_true(json_integer_value(json_array_get(nums, 1)) == INT64_MAX);
		json_decref(root);
		keel_buf_free(&b);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(jw_object_with_scalar_members),
		cmocka_unit_test(jw_empty_containers),
		cmocka_unit_test(jw_nesting_puts_commas_between_siblings_only),
		cmocka_unit_test(jw_top_level_scalars_are_documents),
		cmocka_unit_test(jw_appends_to_existing_buffer),
		cmocka_unit_test(jw_member_shorthands),
		cmocka_unit_test(jw_escapes_quotes_backslash_and_controls),
		cmocka_unit_test(jw_go_escape_flag_escapes_html_and_line_separators),
		cmocka_unit_test(jw_without_go_flag_html_stays_literal),
		cmocka_unit_test(jw_valid_utf8_passes_through),
		cmocka_unit_test(jw_invalid_utf8_becomes_one_replacement_per_byte),
		cmocka_unit_test(jw_finish_rejects_misuse),
		cmocka_unit_test(jw_error_is_sticky_and_stops_output),
		cmocka_unit_test(jw_depth_limit_is_64),
		cmocka_unit_test_teardown(jw_allocation_failure_is_sticky_enomem, teardown_faults),
		cmocka_unit_test(jw_output_parses_back_with_jansson),
	};
	return cmocka_run_group_tests_name("base/jw", tests, NULL, NULL);
}
