#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "base/errors.h"

static void errors_strerror_knows_errno_and_keel_codes(void **state)
{
	assert_string_equal(keel_strerror(-ENOENT), "No such file or directory");
	assert_string_equal(keel_strerror(ENOENT), "No such file or directory");
	assert_string_equal(keel_strerror(-KEEL_EUNKNOWN_FLAG), "unknown flag");
	assert_string_equal(keel_strerror(-KEEL_ECORRUPT), "data corrupted");
	assert_string_equal(keel_strerror(0), "success");
	assert_string_equal(keel_strerror(-123456), "unknown error");
}

static void errors_set_returns_negative_code_and_formats(void **state)
{
	struct keel_err err;
	keel_err_clear(&err);
	assert_int_equal(keel_err_set(&err, EINVAL, "bad %s %d", "thing", 3), -EINVAL);
	assert_int_equal(err.code, -EINVAL);
	assert_string_equal(err.msg, "bad thing 3");
	assert_int_equal(keel_err_set(&err, -KEEL_EPARSE, "x"), -KEEL_EPARSE);
	/* A NULL report is allowed: the code still comes back. */
	assert_int_equal(keel_err_set(NULL, -ENOSPC, "ignored"), -ENOSPC);
}

static void errors_errno_appends_the_description(void **state)
{
	struct keel_err err;
	assert_int_equal(keel_err_errno(&err, -ENOSPC, "writing %s", "wal"), -ENOSPC);
	assert_string_equal(err.msg, "writing wal: No space left on device");
}

static void errors_wrap_prefixes_context_and_keeps_code(void **state)
{
	struct keel_err err;
	keel_err_set(&err, -EIO, "read failed");
	assert_int_equal(keel_err_wrap(&err, "segment %d", 7), -EIO);
	assert_int_equal(keel_err_wrap(&err, "opening WAL"), -EIO);
	assert_string_equal(err.msg, "opening WAL: segment 7: read failed");

	/* Wrapping a bare code uses its text as the inner message. */
	keel_err_clear(&err);
	err.code = -ENOMEM;
	keel_err_wrap(&err, "loading");
	assert_string_equal(err.msg, "loading: Cannot allocate memory");
	assert_int_equal(keel_err_wrap(NULL, "x"), -KEEL_EBASE);
}

static void errors_wrap_truncates_instead_of_overflowing(void **state)
{
	struct keel_err err;
	char big[400];
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	keel_err_set(&err, -EIO, "%s", big);
	assert_int_equal(strlen(err.msg), KEEL_ERR_MSG_SIZE - 1);
	for (int i = 0; i < 10; i++)
		keel_err_wrap(&err, "context %d", i);
	assert_int_equal(strlen(err.msg), KEEL_ERR_MSG_SIZE - 1);
	assert_memory_equal(err.msg, "context 9: context 8: ", 22);
}

static void errors_msg_falls_back_to_code_text(void **state)
{
	struct keel_err err;
	keel_err_clear(&err);
	err.code = -KEEL_ECORRUPT;
	assert_string_equal(keel_err_msg(&err), "data corrupted");
	assert_string_equal(keel_err_msg(NULL), "");
}

static void errors_keel_codes_do_not_collide_with_errno(void **state)
{
	/* Linux errno values stay far below 10000, where Keel's codes start. */
	assert_true(KEEL_EBASE > 4095);
	assert_true(KEEL_EPARSE > KEEL_EBASE);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(errors_strerror_knows_errno_and_keel_codes),
		cmocka_unit_test(errors_set_returns_negative_code_and_formats),
		cmocka_unit_test(errors_errno_appends_the_description),
		cmocka_unit_test(errors_wrap_prefixes_context_and_keeps_code),
		cmocka_unit_test(errors_wrap_truncates_instead_of_overflowing),
		cmocka_unit_test(errors_msg_falls_back_to_code_text),
		cmocka_unit_test(errors_keel_codes_do_not_collide_with_errno),
	};
	return cmocka_run_group_tests_name("base/errors", tests, NULL, NULL);
}
