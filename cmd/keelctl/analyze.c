/* keelctl calendar / timespan: systemd-analyze's checks of OnCalendar= and time span values,
 * with keel-init's parsers, so a unit author can see what keel-init will make of them. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include "base/mem.h"
#include "init/calendar.h"
#include "init/values.h"
#include "keelctl.h"

static int parse_base_time(const char *s, uint64_t *ret)
{
	if (s[0] == '@') {
		char *e;
		errno = 0;
		unsigned long long v = strtoull(s + 1, &e, 10);
		if (errno || *e || e == s + 1)
			return -EINVAL;
		*ret = (uint64_t)v * KEEL_USEC_PER_SEC;
		return 0;
	}
	struct tm tm = {0};
	const char *rest = strptime(s, "%Y-%m-%d %H:%M:%S", &tm);
	if (!rest)
		return -EINVAL;
	while (*rest == ' ')
		rest++;
	time_t t;
	if (strcmp(rest, "UTC") == 0) {
		t = timegm(&tm);
	} else if (!*rest) {
		tm.tm_isdst = -1;
		t = mktime(&tm);
	} else {
		return -EINVAL;
	}
	if (t < 0)
		return -EINVAL;
	*ret = (uint64_t)t * KEEL_USEC_PER_SEC;
	return 0;
}

static void format_ts(uint64_t usec, bool utc, char *out, size_t size)
{
	time_t t = (time_t)(usec / KEEL_USEC_PER_SEC);
	struct tm tm;
	if (utc)
		gmtime_r(&t, &tm);
	else
		localtime_r(&t, &tm);
	strftime(out, size, utc ? "%a %Y-%m-%d %H:%M:%S UTC" : "%a %Y-%m-%d %H:%M:%S %Z", &tm);
}

int keelctl_calendar(struct keelctl *ctl, int argc, char **argv)
{
	uint64_t base;
	if (ctl->base_time) {
		if (parse_base_time(ctl->base_time, &base) < 0) {
			fprintf(stderr, "Failed to parse --base-time= parameter: %s\n", ctl->base_time);
			return KEELCTL_USAGE;
		}
	} else {
		struct timeval tv;
		gettimeofday(&tv, NULL);
		base = (uint64_t)tv.tv_sec * KEEL_USEC_PER_SEC + (uint64_t)tv.tv_usec;
	}
	int rc = KEELCTL_OK;
	tzset();
	bool local_is_utc = timezone == 0 && !daylight;
	for (int i = 0; i < argc; i++) {
		struct keel_calendar *c;
		int r = keel_calendar_parse(argv[i], &c);
		if (r < 0) {
			fprintf(stderr, "Failed to parse calendar specification '%s': %s\n", argv[i], strerror(-r));
			rc = KEELCTL_FAILED;
			continue;
		}
		char *norm;
		if (keel_calendar_to_string(c, &norm) < 0) {
			keel_calendar_free(c);
			return KEELCTL_FAILED;
		}
		if (i > 0)
			printf("\n");
		if (strcmp(norm, argv[i]) != 0)
			printf("  Original form: %s\n", argv[i]);
		printf("Normalized form: %s\n", norm);
		uint64_t next = base;
		for (int k = 0; k < ctl->iterations; k++) {
			r = keel_calendar_next(c, next, &next);
			if (r < 0) {
				if (k == 0)
					printf("    Next elapse: never\n");
				break;
			}
			char buf[64];
			format_ts(next, false, buf, sizeof(buf));
			if (k == 0)
				printf("    Next elapse: %s\n", buf);
			else
				printf("       Iter. #%d: %s\n", k + 1, buf);
			if (!local_is_utc) {
				format_ts(next, true, buf, sizeof(buf));
				printf("       (in UTC): %s\n", buf);
			}
		}
		keel_free(norm);
		keel_calendar_free(c);
	}
	return rc;
}

int keelctl_timespan(struct keelctl *ctl, int argc, char **argv)
{
	int rc = KEELCTL_OK;
	for (int i = 0; i < argc; i++) {
		uint64_t usec;
		int r = keel_parse_sec(argv[i], &usec);
		if (r < 0) {
			fprintf(stderr, "Failed to parse time span '%s': %s\n", argv[i], strerror(-r));
			rc = KEELCTL_FAILED;
			continue;
		}
		char human[128];
		if (i > 0)
			printf("\n");
		printf("Original: %s\n", argv[i]);
		printf("      \xce\xbcs: %llu\n", (unsigned long long)usec);
		printf("   Human: %s\n", keel_format_timespan(human, sizeof(human), usec, 1));
	}
	(void)ctl;
	return rc;
}
