/* Pure parts of the pods: /etc/subuid-style ranges (whose are whose, which ranges a pod may take)
 * and --publish's HOSTPORT:PODPORT[/proto]. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "run/pod-internal.h"
#include "run/pod.h"
#include "testutil.h"

static void test_subid_parse_splits_own_and_others(void **state)
{
	(void)state;
	struct keel__subids s;
	const char *text = "# shadow's format\n"
			   "alice:100000:65536\n"
			   "root:1000000:131072\n"
			   "\n"
			   "0:5000000:65536\n"
			   "bad line\n"
			   "bob:x:10\n"
			   "carol:10:0\n"
			   "dave:4294967295:2\n"
			   "erin:6:18446744073709551615\n" /* start + count wraps around 2^64 */
			   "frank:4294967296:1\n"
			   "gina:0:4294967296\n"
			   "containers:9000000:65536\n"
			   "keel-pod:8000000:65536\n"
			   " root : 7000000 : 65536 ";
	assert_int_equal(keel__pod_subid_parse(text, "root", 0, &s), 0);
	assert_int_equal(s.n_own, 4);
	assert_int_equal(s.own[0].start, 1000000);
	assert_int_equal(s.own[0].count, 131072);
	assert_int_equal(s.own[1].start, 5000000); /* by uid */
	assert_int_equal(s.own[2].start, 8000000); /* keel-pod's own name */
	assert_int_equal(s.own[3].start, 7000000); /* spaces around fields */
	assert_int_equal(s.n_other, 3);            /* malformed, empty and overflowing lines skipped */
	assert_int_equal(s.other[0].start, 100000);
	assert_int_equal(s.other[1].start, 0);     /* all 2^32 ids: kept, as 2^32-1 of them */
	assert_int_equal(s.other[1].count, UINT32_MAX);
	assert_int_equal(s.other[2].start, 9000000); /* podman's: someone else's */
	keel__pod_subids_free(&s);

	assert_int_equal(keel__pod_subid_parse("alice:100000:65536", "root", 0, &s), 0);
	assert_int_equal(s.n_own, 0);
	assert_int_equal(s.n_other, 1);
	keel__pod_subids_free(&s);
	assert_int_equal(keel__pod_subid_parse("", "root", 0, &s), 0);
	assert_int_equal(s.n_own + s.n_other, 0);
	keel__pod_subids_free(&s);
}

static void test_subid_allows(void **state)
{
	(void)state;
	struct keel__subids s;
	/* Own ranges: only inside one of them. */
	assert_int_equal(keel__pod_subid_parse("root:1000000:131072\nalice:0:2000000\n", "root", 0, &s), 0);
	assert_true(keel__pod_subid_allows(&s, 1000000, 65536));
	assert_true(keel__pod_subid_allows(&s, 1065536, 65536));
	assert_false(keel__pod_subid_allows(&s, 1065537, 65536)); /* one past the end */
	assert_false(keel__pod_subid_allows(&s, 999999, 65536));
	assert_false(keel__pod_subid_allows(&s, 1u << 30, 65536));
	keel__pod_subids_free(&s);
	/* None of its own: anything the others' ranges do not touch. */
	assert_int_equal(keel__pod_subid_parse("alice:1000000:65536\nbob:2000000:1\n", "root", 0, &s), 0);
	assert_true(keel__pod_subid_allows(&s, 1065536, 65536));
	assert_true(keel__pod_subid_allows(&s, 1000000 - 65536, 65536)); /* ends right before alice's */
	assert_false(keel__pod_subid_allows(&s, 1000000 - 65535, 65536));
	assert_false(keel__pod_subid_allows(&s, 1065535, 65536));
	assert_false(keel__pod_subid_allows(&s, 1990000, 65536)); /* covers bob's one id */
	assert_true(keel__pod_subid_allows(&s, 2000001, 65536));
	keel__pod_subids_free(&s);
}

static void test_parse_port(void **state)
{
	(void)state;
	struct keel_pod_port p;
	assert_int_equal(keel_pod_parse_port("8080:80", &p), 0);
	assert_int_equal(p.host, 8080);
	assert_int_equal(p.pod, 80);
	assert_false(p.udp);
	assert_int_equal(keel_pod_parse_port("53:5353/udp", &p), 0);
	assert_int_equal(p.host, 53);
	assert_int_equal(p.pod, 5353);
	assert_true(p.udp);
	assert_int_equal(keel_pod_parse_port("65535:1/tcp", &p), 0);
	assert_false(p.udp);
	static const char *const bad[] = {"80", ":80", "80:", "0:80", "80:0", "65536:80", "80:65536", "x:80",
					  "80:80/sctp", "80:80/", "80/tcp:80", "-1:80", "80:80:80", "1234567:1",
					  "80:80/udpx", ""};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(keel_pod_parse_port(bad[i], &p), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_subid_parse_splits_own_and_others),
		cmocka_unit_test(test_subid_allows),
		cmocka_unit_test(test_parse_port),
	};
	return cmocka_run_group_tests_name("run/pod_parse", tests, NULL, NULL);
}
