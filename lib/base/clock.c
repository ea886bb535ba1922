#include "base/clock.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "base/macro.h"

static int64_t keel__clock_ns(clockid_t id)
{
	struct timespec ts;
	int r = clock_gettime(id, &ts);
	keel_assert(r == 0);
	return (int64_t)ts.tv_sec * KEEL_NSEC_PER_SEC + ts.tv_nsec;
}

int64_t keel_mono_ns(void)
{
	return keel__clock_ns(CLOCK_MONOTONIC);
}

int64_t keel_wall_ns(void)
{
	return keel__clock_ns(CLOCK_REALTIME);
}

size_t keel_fmt_rfc3339(int64_t unix_ns, int nano, char *out, size_t size)
{
	/* Floor division, so that times before 1970 keep a non-negative fraction. */
	int64_t sec = unix_ns / KEEL_NSEC_PER_SEC;
	int64_t frac = unix_ns % KEEL_NSEC_PER_SEC;
	if (frac < 0) {
		frac += KEEL_NSEC_PER_SEC;
		sec--;
	}
	time_t t = (time_t)sec;
	struct tm tm;
	if (!gmtime_r(&t, &tm) || tm.tm_year + 1900 > 9999 || tm.tm_year + 1900 < 0)
		return 0;

	char fr[16] = "";
	if (nano) {
		if (frac) {
			snprintf(fr, sizeof(fr), ".%09lld", (long long)frac);
			size_t n = strlen(fr);
			while (fr[n - 1] == '0')
				fr[--n] = '\0';
		}
	} else {
		snprintf(fr, sizeof(fr), ".%03lld", (long long)(frac / KEEL_NSEC_PER_MSEC));
	}
	int n = snprintf(out, size, "%04d-%02d-%02dT%02d:%02d:%02d%sZ", tm.tm_year + 1900,
			 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, fr);
	if (n < 0 || (size_t)n >= size)
		return 0;
	return (size_t)n;
}

static int keel__digits(const char **p, int n, int *ret)
{
	int v = 0;
	for (int i = 0; i < n; i++) {
		char c = (*p)[i];
		if (c < '0' || c > '9')
			return -EINVAL;
		v = v * 10 + (c - '0');
	}
	*p += n;
	*ret = v;
	return 0;
}

static int keel__expect(const char **p, char c)
{
	if (**p != c)
		return -EINVAL;
	(*p)++;
	return 0;
}

int keel_parse_rfc3339(const char *s, int64_t *ret_ns)
{
	int year, mon, day, hour, min, sec;
	const char *p = s;
	if (keel__digits(&p, 4, &year) || keel__expect(&p, '-') || keel__digits(&p, 2, &mon) ||
	    keel__expect(&p, '-') || keel__digits(&p, 2, &day) ||
	    (*p != 'T' && *p != 't') || !++p || keel__digits(&p, 2, &hour) ||
	    keel__expect(&p, ':') || keel__digits(&p, 2, &min) || keel__expect(&p, ':') ||
	    keel__digits(&p, 2, &sec))
		return -EINVAL;
	static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	if (mon < 1 || mon > 12 || day < 1 || day > mdays[mon - 1] || hour > 23 || min > 59 ||
	    sec > 59)
		return -EINVAL;
	int leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
	if (mon == 2 && day == 29 && !leap)
		return -EINVAL;

	int64_t frac = 0;
	if (*p == '.') {
		p++;
		int nd = 0;
		int64_t scale = KEEL_NSEC_PER_SEC;
		while (*p >= '0' && *p <= '9') {
			if (nd < 9) {
				scale /= 10;
				frac += (*p - '0') * scale;
			}
			nd++;
			p++;
		}
		if (nd == 0)
			return -EINVAL;
	}
	int offset = 0;
	if (*p == 'Z' || *p == 'z') {
		p++;
	} else if (*p == '+' || *p == '-') {
		int sign = *p++ == '-' ? -1 : 1, oh, om;
		if (keel__digits(&p, 2, &oh) || keel__expect(&p, ':') || keel__digits(&p, 2, &om) ||
		    oh > 23 || om > 59)
			return -EINVAL;
		offset = sign * (oh * 3600 + om * 60);
	} else {
		return -EINVAL;
	}
	if (*p)
		return -EINVAL;

	/* Days from civil date (proleptic Gregorian), independent of the local time zone. */
	int y = year - (mon <= 2);
	int era = (y >= 0 ? y : y - 399) / 400;
	int yoe = y - era * 400;
	int doy = (153 * (mon + (mon > 2 ? -3 : 9)) + 2) / 5 + day - 1;
	int doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	int64_t days = (int64_t)era * 146097 + doe - 719468;
	int64_t secs = days * 86400 + hour * 3600 + min * 60 + sec - offset;
	/* Years 0000-9999 reach far past the int64 nanosecond range (1677-2262). Borrow a second
	 * first so that the earliest representable instant does not overflow on the way. */
	if (secs < 0 && frac > 0) {
		secs++;
		frac -= KEEL_NSEC_PER_SEC;
	}
	int64_t ns;
	if (__builtin_mul_overflow(secs, KEEL_NSEC_PER_SEC, &ns) ||
	    __builtin_add_overflow(ns, frac, &ns))
		return -ERANGE;
	*ret_ns = ns;
	return 0;
}
