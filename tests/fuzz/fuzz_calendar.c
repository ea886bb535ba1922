/* Fuzz OnCalendar= expressions (lib/init/calendar.c). The input is one expression.
 *
 * Properties: nothing crashes or leaks; an expression that parses prints a normalised form
 * that parses again to the same form (normalising is idempotent); from a fixed base time the
 * next elapse is strictly later, and the one after that later still; the search ends (the
 * year 2200 bounds it) with 0 or -ENOENT. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "init/calendar.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int tz_set;
	if (!tz_set) {
		setenv("TZ", "UTC", 1);
		tzset();
		tz_set = 1;
	}
	if (size > 4096)
		return 0;
	char *s = malloc(size + 1);
	memcpy(s, data, size);
	s[size] = '\0';
	/* Named zones switch TZ while computing; keep the fuzzer to UTC and local time. */
	if (strchr(s, '/')) {
		free(s);
		return 0;
	}
	struct keel_calendar *c;
	int r = keel_calendar_parse(s, &c);
	free(s);
	if (r == -ENOMEM)
		return 0;
	if (r < 0) {
		if (r != -EINVAL)
			abort();
		return 0;
	}
	char *norm, *again;
	struct keel_calendar *c2;
	if (keel_calendar_to_string(c, &norm) < 0)
		abort();
	if (keel_calendar_parse(norm, &c2) < 0)
		abort();
	if (keel_calendar_to_string(c2, &again) < 0 || strcmp(norm, again) != 0)
		abort();
	free(norm);
	free(again);
	keel_calendar_free(c2);
	uint64_t base = UINT64_C(1709121600) * 1000000, n1, n2; /* 2024-02-28 12:00:00 UTC */
	r = keel_calendar_next(c, base, &n1);
	if (r == 0) {
		if (n1 <= base)
			abort();
		r = keel_calendar_next(c, n1, &n2);
		if (r == 0 && n2 <= n1)
			abort();
	}
	if (r != 0 && r != -ENOENT && r != -EINVAL)
		abort();
	keel_calendar_free(c);
	return 0;
}
