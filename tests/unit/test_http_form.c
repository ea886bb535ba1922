/* lib/http/form.c: percent-decoding and form parsing as Go's net/url does them, error texts
 * included (etcd shows them to clients in error 210). Expected values are what Go 1.22's
 * url.PathUnescape / url.QueryUnescape / url.ParseQuery return for the same input. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/fault.h"
#include "base/mem.h"
#include "http/form.h"

static int teardown_faults(void **state)
{
	keel_fault_reset();
	return 0;
}

/* Decode s; on success return the result (static buffer), on failure NULL and the message. */
static const char *unescape(const char *s, enum keel_http_unescape_mode mode, size_t *ret_len,
			    struct keel_err *err)
{
	static char out[256];
	size_t len = 0;
	keel_err_clear(err);
	if (keel_http_unescape(s, strlen(s), mode, out, &len, err) < 0)
		return NULL;
	if (ret_len)
		*ret_len = len;
	return out;
}

static void http_form_path_unescape_keeps_plus(void **state)
{
	struct keel_err err;
	assert_string_equal(unescape("/v2/keys/a%2Fb+c", KEEL_HTTP_UNESCAPE_PATH, NULL, &err), "/v2/keys/a/b+c");
	assert_string_equal(unescape("%41%62%7e%7E", KEEL_HTTP_UNESCAPE_PATH, NULL, &err), "Ab~~");
	assert_string_equal(unescape("", KEEL_HTTP_UNESCAPE_PATH, NULL, &err), "");
	assert_string_equal(unescape("%E2%82%AC", KEEL_HTTP_UNESCAPE_PATH, NULL, &err), "\xe2\x82\xac");
}

static void http_form_query_unescape_turns_plus_into_space(void **state)
{
	struct keel_err err;
	assert_string_equal(unescape("a+b%2Bc", KEEL_HTTP_UNESCAPE_QUERY, NULL, &err), "a b+c");
	assert_string_equal(unescape("++", KEEL_HTTP_UNESCAPE_QUERY, NULL, &err), "  ");
}

static void http_form_unescape_keeps_nul_bytes(void **state)
{
	struct keel_err err;
	size_t len = 0;
	const char *s = unescape("a%00b", KEEL_HTTP_UNESCAPE_PATH, &len, &err);
	assert_non_null(s);
	assert_int_equal(len, 3);
	assert_memory_equal(s, "a\0b", 4);
}

static void http_form_unescape_in_place(void **state)
{
	char buf[] = "x%20y+z";
	size_t len;
	assert_int_equal(keel_http_unescape(buf, strlen(buf), KEEL_HTTP_UNESCAPE_QUERY, buf, &len, NULL), 0);
	assert_string_equal(buf, "x y z");
	assert_int_equal(len, 5);
}

static void http_form_bad_escapes_give_go_messages(void **state)
{
	static const struct {
		const char *in, *msg;
	} cases[] = {
		{"%zz", "invalid URL escape \"%zz\""},
		{"ab%4", "invalid URL escape \"%4\""},
		{"%", "invalid URL escape \"%\""},
		{"x%g1yz", "invalid URL escape \"%g1\""},
		{"%1", "invalid URL escape \"%1\""},
		{"%\xff\xfe", "invalid URL escape \"%\\xff\\xfe\""},
		{"%\xc3\xa9", "invalid URL escape \"%\xc3\xa9\""},       /* é is printable */
		{"%\xc2\x85", "invalid URL escape \"%\\u0085\""},         /* NEL is not */
		{"%\n1", "invalid URL escape \"%\\n1\""},
		{"%\"a", "invalid URL escape \"%\\\"a\""},
		{"%\\x", "invalid URL escape \"%\\\\x\""},
		{"%\x01q", "invalid URL escape \"%\\x01q\""},
		{"%\x7fq", "invalid URL escape \"%\\x7fq\""},
		{"%\xe2\x82\xac", "invalid URL escape \"%\\xe2\\x82\""}, /* a cut sequence */
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct keel_err err;
		assert_null(unescape(cases[i].in, KEEL_HTTP_UNESCAPE_QUERY, NULL, &err));
		assert_int_equal(err.code, -KEEL_EPARSE);
		assert_string_equal(err.msg, cases[i].msg);
		assert_null(unescape(cases[i].in, KEEL_HTTP_UNESCAPE_PATH, NULL, &err));
		assert_string_equal(err.msg, cases[i].msg);
	}
}

static void http_form_parse_keeps_order_and_repeats(void **state)
{
	struct keel_http_form f = KEEL_HTTP_FORM_INIT;
	const char *q = "value=a+b&key=%2Ffoo&value=2&dir=true";
	assert_int_equal(keel_http_form_parse(&f, q, strlen(q), NULL), 0);
	assert_int_equal(f.n, 4);
	assert_string_equal(f.params[0].key, "value");
	assert_string_equal(f.params[0].value, "a b");
	assert_string_equal(f.params[1].key, "key");
	assert_string_equal(f.params[1].value, "/foo");
	assert_string_equal(f.params[2].value, "2");
	assert_string_equal(keel_http_form_get(&f, "value"), "a b");
	assert_string_equal(keel_http_form_get_nth(&f, "value", 1), "2");
	assert_null(keel_http_form_get_nth(&f, "value", 2));
	assert_int_equal(keel_http_form_count(&f, "value"), 2);
	assert_int_equal(keel_http_form_count(&f, "dir"), 1);
	assert_int_equal(keel_http_form_count(&f, "nope"), 0);
	assert_null(keel_http_form_get(&f, "nope"));
	keel_http_form_free(&f);
	assert_int_equal(f.n, 0);
	keel_http_form_free(&f); /* twice is fine */
	keel_http_form_free(NULL);
}

static void http_form_parse_edge_pairs(void **state)
{
	struct keel_http_form f = KEEL_HTTP_FORM_INIT;
	const char *q = "&&flag&=v&a=1=2&&e=&";
	assert_int_equal(keel_http_form_parse(&f, q, strlen(q), NULL), 0);
	assert_int_equal(f.n, 4);
	assert_string_equal(f.params[0].key, "flag");
	assert_string_equal(f.params[0].value, ""); /* present, empty */
	assert_string_equal(f.params[1].key, "");
	assert_string_equal(f.params[1].value, "v");
	assert_string_equal(f.params[2].key, "a");
	assert_string_equal(f.params[2].value, "1=2");
	assert_string_equal(f.params[3].key, "e");
	assert_string_equal(f.params[3].value, "");
	assert_non_null(keel_http_form_get(&f, "flag"));
	keel_http_form_free(&f);

	assert_int_equal(keel_http_form_parse(&f, "", 0, NULL), 0);
	assert_int_equal(f.n, 0);
	assert_int_equal(keel_http_form_parse(&f, "&&&", 3, NULL), 0);
	assert_int_equal(f.n, 0);
}

static void http_form_parse_nul_in_key(void **state)
{
	struct keel_http_form f = KEEL_HTTP_FORM_INIT;
	const char *q = "a%00b=1&ab=2";
	assert_int_equal(keel_http_form_parse(&f, q, strlen(q), NULL), 0);
	assert_int_equal(f.n, 2);
	assert_int_equal(f.params[0].key_len, 3);
	assert_memory_equal(f.params[0].key, "a\0b", 3);
	assert_string_equal(keel_http_form_get(&f, "ab"), "2");
	assert_int_equal(keel_http_form_count(&f, "a"), 0);
	keel_http_form_free(&f);
}

static void http_form_bad_pair_is_dropped_others_kept(void **state)
{
	struct keel_http_form f = KEEL_HTTP_FORM_INIT;
	struct keel_err err;
	keel_err_clear(&err);
	const char *q = "a=1&b=%zz&c=3&d%x=4";
	assert_int_equal(keel_http_form_parse(&f, q, strlen(q), &err), -KEEL_EPARSE);
	assert_string_equal(err.msg, "invalid URL escape \"%zz\""); /* the first one */
	assert_int_equal(f.n, 2);
	assert_string_equal(keel_http_form_get(&f, "a"), "1");
	assert_string_equal(keel_http_form_get(&f, "c"), "3");
	assert_null(keel_http_form_get(&f, "b"));
	keel_http_form_free(&f);
}

static void http_form_semicolon_is_an_error(void **state)
{
	struct keel_http_form f = KEEL_HTTP_FORM_INIT;
	struct keel_err err;
	keel_err_clear(&err);
	const char *q = "a=1;b=2&c=3";
	assert_int_equal(keel_http_form_parse(&f, q, strlen(q), &err), -KEEL_EPARSE);
	assert_string_equal(err.msg, "invalid semicolon separator in query");
	assert_int_equal(f.n, 1);
	assert_string_equal(keel_http_form_get(&f, "c"), "3");
	keel_http_form_free(&f);

	/* Go lets a later semicolon error replace an earlier escape error, not the reverse. */
	q = "a=%zz&b=;&c=%qq";
	assert_int_equal(keel_http_form_parse(&f, q, strlen(q), &err), -KEEL_EPARSE);
	assert_string_equal(err.msg, "invalid semicolon separator in query");
	assert_int_equal(f.n, 0);
	keel_http_form_free(&f);
	q = "b=;&a=%zz";
	assert_int_equal(keel_http_form_parse(&f, q, strlen(q), &err), -KEEL_EPARSE);
	assert_string_equal(err.msg, "invalid semicolon separator in query");
	keel_http_form_free(&f);
}

static void http_form_too_many_params(void **state)
{
	size_t n = KEEL_HTTP_FORM_MAX_PARAMS;
	char *q = keel_malloc(n * 2);
	assert_non_null(q);
	for (size_t i = 0; i < n; i++) {
		q[2 * i] = 'k';
		q[2 * i + 1] = '&';
	}
	struct keel_http_form f = KEEL_HTTP_FORM_INIT;
	/* exactly the limit: "k&k&...&k" has n pairs */
	assert_int_equal(keel_http_form_parse(&f, q, n * 2 - 1, NULL), 0);
	assert_int_equal(f.n, n);
	keel_http_form_free(&f);
	/* one more '&' is one pair too many, even if it is empty */
	struct keel_err err;
	assert_int_equal(keel_http_form_parse(&f, q, n * 2, &err), -KEEL_EPARSE);
	assert_string_equal(err.msg, "number of URL query parameters exceeded limit");
	assert_int_equal(f.n, 0);
	keel_free(q);
}

static void http_form_out_of_memory_leaves_form_empty(void **state)
{
	struct keel_http_form f = KEEL_HTTP_FORM_INIT;
	for (unsigned skip = 0; skip < 2; skip++) {
		keel_fault_arm(KEEL_FAULT_ALLOC, skip, 1, ENOMEM);
		assert_int_equal(keel_http_form_parse(&f, "a=1&b=2", 7, NULL), -ENOMEM);
		assert_int_equal(f.n, 0);
		assert_null(f.params);
		assert_null(f.text);
		keel_fault_reset();
	}
}

static void http_form_content_type(void **state)
{
	static const char *yes[] = {
		"application/x-www-form-urlencoded",
		"application/x-www-form-urlencoded; charset=utf-8",
		"Application/X-WWW-Form-Urlencoded",
		" application/x-www-form-urlencoded ;charset=UTF-8",
	};
	static const char *no[] = {
		"", "application/json", "multipart/form-data; boundary=x", "application/x-www-form-urlencodedx",
		"text/plain",
	};
	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++)
		assert_true(keel_http_is_form_content_type(yes[i], strlen(yes[i])));
	for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++)
		assert_false(keel_http_is_form_content_type(no[i], strlen(no[i])));
	assert_false(keel_http_is_form_content_type(NULL, 0));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(http_form_path_unescape_keeps_plus),
		cmocka_unit_test(http_form_query_unescape_turns_plus_into_space),
		cmocka_unit_test(http_form_unescape_keeps_nul_bytes),
		cmocka_unit_test(http_form_unescape_in_place),
		cmocka_unit_test(http_form_bad_escapes_give_go_messages),
		cmocka_unit_test(http_form_parse_keeps_order_and_repeats),
		cmocka_unit_test(http_form_parse_edge_pairs),
		cmocka_unit_test(http_form_parse_nul_in_key),
		cmocka_unit_test(http_form_bad_pair_is_dropped_others_kept),
		cmocka_unit_test(http_form_semicolon_is_an_error),
		cmocka_unit_test(http_form_too_many_params),
		cmocka_unit_test_teardown(http_form_out_of_memory_leaves_form_empty, teardown_faults),
		cmocka_unit_test(http_form_content_type),
	};
	return cmocka_run_group_tests_name("http/form", tests, NULL, NULL);
}
