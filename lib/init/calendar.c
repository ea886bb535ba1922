#include "init/calendar.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>

#include "base/buf.h"
#include "base/mem.h"

#define USEC_PER_SEC 1000000
#define MIN_YEAR 1970
#define MAX_YEAR 2199
#define MAX_COMPONENTS 240 /* per field, like systemd's bound on nesting */
#define ALL_WEEKDAYS 127

/* One element of a field's list: start, optional end of range (-1: none), repeat (0: none).
 * Seconds are kept in microseconds. */
struct comp {
	int start, stop, repeat;
};

struct chain {
	struct comp *v;
	int n; /* 0 with v == NULL: "*" */
};

enum { F_YEAR, F_MONTH, F_DAY, F_HOUR, F_MINUTE, F_USEC, F_MAX };

struct keel_calendar {
	struct chain f[F_MAX];
	int weekdays; /* bit 0 = Monday; -1: any */
	bool end_of_month;
	bool utc;
	int dst;        /* -1, or 0/1 when the local zone's tzname[] was given */
	char *timezone; /* a zoneinfo name, or NULL */
};

static void chain_clear(struct chain *c)
{
	keel_free(c->v);
	c->v = NULL;
	c->n = 0;
}

void keel_calendar_free(struct keel_calendar *c)
{
	if (!c)
		return;
	for (int i = 0; i < F_MAX; i++)
		chain_clear(&c->f[i]);
	keel_free(c->timezone);
	keel_free(c);
}

size_t keel_calendar_size(const struct keel_calendar *c)
{
	size_t n = sizeof(*c) + (c->timezone ? strlen(c->timezone) + 1 : 0);
	for (int i = 0; i < F_MAX; i++)
		n += (size_t)c->f[i].n * sizeof(struct comp);
	return n;
}

static int chain_add(struct chain *c, int start, int stop, int repeat)
{
	if (c->n >= MAX_COMPONENTS)
		return -ENOBUFS;
	struct comp *nv = keel_reallocarray(c->v, (size_t)c->n + 1, sizeof(*nv));
	if (!nv)
		return -ENOMEM;
	c->v = nv;
	c->v[c->n++] = (struct comp){start, stop, repeat};
	return 0;
}

static int const_chain(struct chain *c, int v)
{
	chain_clear(c);
	return chain_add(c, v, -1, 0);
}

/* A decimal number; for seconds (usec) also ".fraction" up to six digits (more are dropped). */
static int parse_number(const char **p, bool usec, int *ret)
{
	const char *s = *p;
	if (!isdigit((unsigned char)*s))
		return -EINVAL;
	unsigned long long v = 0;
	while (isdigit((unsigned char)*s)) {
		v = v * 10 + (unsigned long long)(*s - '0');
		if (v > INT_MAX)
			return -ERANGE;
		s++;
	}
	if (usec) {
		v *= USEC_PER_SEC;
		if (s[0] == '.' && s[1] != '.') {
			s++;
			if (!isdigit((unsigned char)*s))
				return -EINVAL;
			/* six digits; a seventh of 5 or more rounds up, the rest is dropped */
			unsigned long long frac = 0;
			int i;
			for (i = 0; i < 6 && isdigit((unsigned char)*s); i++, s++)
				frac = frac * 10 + (unsigned long long)(*s - '0');
			for (; i < 6; i++)
				frac *= 10;
			if (*s >= '5' && *s <= '9')
				frac++;
			while (isdigit((unsigned char)*s))
				s++;
			v += frac;
		}
		if (v > INT_MAX)
			return -ERANGE;
	}
	*ret = (int)v;
	*p = s;
	return 0;
}

/* "a", "a..b", "a/r", "a..b/r", then ",..." */
static int parse_chain(const char **p, bool usec, struct chain *c)
{
	const char *t = *p;
	chain_clear(c);
	if (*t == '*') {
		*p = t + 1;
		if (usec)
			return chain_add(c, 0, -1, USEC_PER_SEC);
		return 0;
	}
	for (;;) {
		int start, stop = -1, repeat = 0, r;
		r = parse_number(&t, usec, &start);
		if (r < 0)
			return r;
		if (t[0] == '.' && t[1] == '.') {
			t += 2;
			r = parse_number(&t, usec, &stop);
			if (r < 0)
				return r;
			repeat = usec ? USEC_PER_SEC : 1;
		}
		if (*t == '/') {
			t++;
			r = parse_number(&t, usec, &repeat);
			if (r < 0)
				return r;
			if (repeat == 0)
				return -ERANGE;
		} else {
			if (start > INT_MAX - repeat)
				return -ERANGE;
			/* A range of seconds shorter than one repetition cannot elapse. */
			if (usec && stop >= 0 && start + repeat > stop)
				return -EINVAL;
		}
		if (!strchr(" ,-~:", *t)) /* end, space, list, date/time separators */
			return -EINVAL;
		r = chain_add(c, start, stop, repeat);
		if (r < 0)
			return r;
		if (*t != ',')
			break;
		t++;
	}
	*p = t;
	return 0;
}

static const struct {
	const char *name;
	int nr;
} day_names[] = {
	{"Monday", 0}, {"Mon", 0}, {"Tuesday", 1}, {"Tue", 1}, {"Wednesday", 2}, {"Wed", 2},
	{"Thursday", 3}, {"Thu", 3}, {"Friday", 4}, {"Fri", 4}, {"Saturday", 5}, {"Sat", 5},
	{"Sunday", 6}, {"Sun", 6},
};
static const char *const day_abbr[7] = {"Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"};

/* "Mon", "Mon,Wed", "Mon..Fri", "Mon-Fri" (old range syntax), lists of those, then a space. */
static int parse_weekdays(const char **p, struct keel_calendar *c)
{
	int l = -1;
	bool first = true;
	int bits = 0;
	for (;;) {
		size_t i;
		for (i = 0; i < KEEL_ARRAY_SIZE(day_names); i++) {
			size_t skip = strlen(day_names[i].name);
			if (strncasecmp(*p, day_names[i].name, skip) != 0)
				continue;
			if (!strchr("-., ", (*p)[skip]))
				return -EINVAL;
			bits |= 1 << day_names[i].nr;
			if (l >= 0) {
				if (l > day_names[i].nr)
					return -EINVAL;
				for (int j = l + 1; j < day_names[i].nr; j++)
					bits |= 1 << j;
			}
			*p += skip;
			break;
		}
		if (i >= KEEL_ARRAY_SIZE(day_names)) {
			if (!first)
				return -EINVAL;
			return 0;
		}
		c->weekdays = bits;
		if (!**p)
			return 0;
		if (**p == ' ') {
			*p += strspn(*p, " ");
			return 0;
		}
		if (**p == '.') {
			if (l >= 0 || (*p)[1] != '.')
				return -EINVAL;
			l = day_names[i].nr;
			*p += 2;
		} else if (**p == '-') {
			if (l >= 0)
				return -EINVAL;
			l = day_names[i].nr;
			*p += 1;
		} else if (**p == ',') {
			l = -1;
			*p += 1;
		}
		if (!**p || **p == ' ') {
			*p += strspn(*p, " ");
			return l < 0 ? 0 : -EINVAL; /* a trailing comma is fine, an open range not */
		}
		first = false;
	}
}

static void from_time_t(struct keel_calendar *c, time_t t, int *r)
{
	struct tm tm;
	if (!gmtime_r(&t, &tm)) {
		*r = -EINVAL;
		return;
	}
	if (tm.tm_year + 1900 > MAX_YEAR) {
		*r = -ERANGE;
		return;
	}
	if ((*r = const_chain(&c->f[F_YEAR], tm.tm_year + 1900)) < 0 ||
	    (*r = const_chain(&c->f[F_MONTH], tm.tm_mon + 1)) < 0 ||
	    (*r = const_chain(&c->f[F_DAY], tm.tm_mday)) < 0 ||
	    (*r = const_chain(&c->f[F_HOUR], tm.tm_hour)) < 0 ||
	    (*r = const_chain(&c->f[F_MINUTE], tm.tm_min)) < 0 ||
	    (*r = const_chain(&c->f[F_USEC], tm.tm_sec * USEC_PER_SEC)) < 0)
		return;
	c->utc = true;
}

/* [YEAR-]MONTH-DAY, with '~' in place of the last '-' for days from the month's end.
 * 1 when "@EPOCH" consumed everything (no time follows). */
static int parse_date(const char **p, struct keel_calendar *c)
{
	const char *t = *p;
	struct chain a = {0}, b = {0}, d = {0};
	int r = 0;
	if (!*t)
		return 0;
	if (*t == '@') {
		char *e;
		errno = 0;
		/* the seconds since the epoch, as a time span in seconds */
		unsigned long long secs = strtoull(t + 1, &e, 10);
		if (errno || e == t + 1 || *e || t[1] == '-' || t[1] == '+' || t[1] == ' ')
			return -EINVAL;
		if (secs > (unsigned long long)LLONG_MAX)
			return -ERANGE;
		from_time_t(c, (time_t)secs, &r);
		if (r < 0)
			return r;
		*p = t + strlen(t);
		return 1;
	}
	r = parse_chain(&t, false, &a);
	if (r < 0)
		goto out;
	if (!*t || *t == ':') {
		r = 0; /* it was a time */
		goto out;
	}
	if (*t == '~')
		c->end_of_month = true;
	else if (*t != '-') {
		r = -EINVAL;
		goto out;
	}
	t++;
	r = parse_chain(&t, false, &b);
	if (r < 0)
		goto out;
	if (!*t || *t == ' ') {
		*p = t + strspn(t, " ");
		c->f[F_MONTH] = a;
		c->f[F_DAY] = b;
		return 0;
	}
	if (c->end_of_month) {
		r = -EINVAL;
		goto out;
	}
	if (*t == '~')
		c->end_of_month = true;
	else if (*t != '-') {
		r = -EINVAL;
		goto out;
	}
	t++;
	r = parse_chain(&t, false, &d);
	if (r < 0)
		goto out;
	if (*t && *t != ' ') {
		r = -EINVAL;
		goto out;
	}
	*p = t + strspn(t, " ");
	c->f[F_YEAR] = a;
	c->f[F_MONTH] = b;
	c->f[F_DAY] = d;
	return 0;
out:
	chain_clear(&a);
	chain_clear(&b);
	chain_clear(&d);
	return r;
}

/* HOUR:MINUTE[:SECOND]; nothing at all means 00:00:00. */
static int parse_time(const char **p, struct keel_calendar *c)
{
	const char *t = *p;
	struct chain h = {0}, m = {0}, s = {0};
	int r;
	if (!*t) {
		if ((r = const_chain(&h, 0)) < 0 || (r = const_chain(&m, 0)) < 0 ||
		    (r = const_chain(&s, 0)) < 0)
			goto fail;
		goto done;
	}
	if ((r = parse_chain(&t, false, &h)) < 0)
		goto fail;
	if (*t != ':') {
		r = -EINVAL;
		goto fail;
	}
	t++;
	if ((r = parse_chain(&t, false, &m)) < 0)
		goto fail;
	if (!*t) {
		if ((r = const_chain(&s, 0)) < 0)
			goto fail;
		goto done;
	}
	if (*t != ':') {
		r = -EINVAL;
		goto fail;
	}
	t++;
	if ((r = parse_chain(&t, true, &s)) < 0)
		goto fail;
	if (*t) {
		r = -EINVAL;
		goto fail;
	}
done:
	*p = t;
	c->f[F_HOUR] = h;
	c->f[F_MINUTE] = m;
	c->f[F_USEC] = s;
	return 0;
fail:
	chain_clear(&h);
	chain_clear(&m);
	chain_clear(&s);
	return r;
}

static int comp_cmp(const void *a, const void *b)
{
	const struct comp *x = a, *y = b;
	if (x->start != y->start)
		return x->start < y->start ? -1 : 1;
	if (x->stop != y->stop)
		return x->stop < y->stop ? -1 : 1;
	if (x->repeat != y->repeat)
		return x->repeat < y->repeat ? -1 : 1;
	return 0;
}

/* systemd's normalize_chain(): shorten ranges to a multiple of the repeat, turn degenerate
 * repetitions into single values, sort, drop duplicates. */
static void normalize_chain(struct chain *c)
{
	for (int i = 0; i < c->n; i++) {
		struct comp *x = &c->v[i];
		if (x->stop > x->start && x->repeat > 0)
			x->stop -= (x->stop - x->start) % x->repeat;
		if ((x->stop > x->start && x->repeat > 0 && x->start + x->repeat > x->stop) ||
		    x->start == x->stop) {
			x->repeat = 0;
			x->stop = -1;
		}
	}
	if (c->n <= 1)
		return;
	qsort(c->v, (size_t)c->n, sizeof(*c->v), comp_cmp);
	int k = 1;
	for (int i = 1; i < c->n; i++)
		if (comp_cmp(&c->v[i], &c->v[k - 1]) != 0)
			c->v[k++] = c->v[i];
	c->n = k;
}

static bool chain_valid(const struct chain *c, int from, int to, bool end_of_month)
{
	if (end_of_month)
		to -= 3; /* at most 28 days from the end */
	for (int i = 0; i < c->n; i++) {
		const struct comp *x = &c->v[i];
		if (x->start < from || x->start > to)
			return false;
		if (x->repeat > to - from)
			return false;
		if (x->stop >= 0) {
			if (x->stop < from || x->stop > to)
				return false;
			if (x->start + x->repeat > x->stop)
				return false;
		} else {
			if (end_of_month && x->start - x->repeat < from)
				return false;
			if (!end_of_month && x->start + x->repeat > to)
				return false;
		}
	}
	return true;
}

static bool zone_exists(const char *name)
{
	if (!*name || name[0] == '/' || strstr(name, "..") || strlen(name) > 255)
		return false;
	for (const char *p = name; *p; p++)
		if (!(isalnum((unsigned char)*p) || strchr("/-_+", *p)))
			return false;
	char path[320];
	snprintf(path, sizeof(path), "/usr/share/zoneinfo/%s", name);
	FILE *f = fopen(path, "re");
	if (!f)
		return false;
	char magic[4];
	bool ok = fread(magic, 1, 4, f) == 4 && memcmp(magic, "TZif", 4) == 0;
	fclose(f);
	return ok;
}

static bool ends_with_word_nocase(const char *s, const char *w, size_t *ret_cut)
{
	size_t n = strlen(s), k = strlen(w);
	if (k == 0 || n <= k || strcasecmp(s + n - k, w) != 0 || s[n - k - 1] != ' ')
		return false;
	*ret_cut = n - k - 1;
	return true;
}

static int shorthand(struct keel_calendar *c, const char *p, bool *ret_done)
{
	static const struct {
		const char *name;
		int month[4], n_month, day, hour, minute; /* -1: "*" */
		bool weekly;
	} tab[] = {
		{"minutely", {0}, 0, -1, -1, -1, false},
		{"hourly", {0}, 0, -1, -1, 0, false},
		{"daily", {0}, 0, -1, 0, 0, false},
		{"monthly", {0}, 0, 1, 0, 0, false},
		{"weekly", {0}, 0, -1, 0, 0, true},
		{"yearly", {1}, 1, 1, 0, 0, false},
		{"annually", {1}, 1, 1, 0, 0, false},
		{"anually", {1}, 1, 1, 0, 0, false},
		{"quarterly", {1, 4, 7, 10}, 4, 1, 0, 0, false},
		{"semiannually", {1, 7}, 2, 1, 0, 0, false},
		{"semi-annually", {1, 7}, 2, 1, 0, 0, false},
		{"biannually", {1, 7}, 2, 1, 0, 0, false},
		{"bi-annually", {1, 7}, 2, 1, 0, 0, false},
	};
	*ret_done = false;
	for (size_t i = 0; i < KEEL_ARRAY_SIZE(tab); i++) {
		if (strcasecmp(p, tab[i].name) != 0)
			continue;
		int r = 0;
		for (int m = 0; m < tab[i].n_month && r == 0; m++)
			r = chain_add(&c->f[F_MONTH], tab[i].month[m], -1, 0);
		if (r == 0 && tab[i].day >= 0)
			r = const_chain(&c->f[F_DAY], tab[i].day);
		if (r == 0 && tab[i].hour >= 0)
			r = const_chain(&c->f[F_HOUR], tab[i].hour);
		if (r == 0 && tab[i].minute >= 0)
			r = const_chain(&c->f[F_MINUTE], tab[i].minute);
		if (r == 0)
			r = const_chain(&c->f[F_USEC], 0);
		if (tab[i].weekly)
			c->weekdays = 1;
		*ret_done = true;
		return r;
	}
	return 0;
}

int keel_calendar_parse(const char *input, struct keel_calendar **ret)
{
	struct keel_calendar *c = keel_calloc(1, sizeof(*c));
	char *buf = keel_strdup(input);
	int r;
	if (!c || !buf) {
		r = -ENOMEM;
		goto fail;
	}
	c->weekdays = -1;
	c->dst = -1;
	const char *p = buf;
	size_t cut;

	/* The zone: " UTC", the local zone's own abbreviations, or a zoneinfo name as last word. */
	if (ends_with_word_nocase(buf, "UTC", &cut)) {
		c->utc = true;
		buf[cut] = '\0';
	} else {
		tzset();
		int j;
		for (j = 0; j <= 1; j++)
			if (tzname[j] && *tzname[j] && ends_with_word_nocase(buf, tzname[j], &cut))
				break;
		if (j <= 1) {
			buf[cut] = '\0';
			c->dst = j;
		} else {
			char *sp = strrchr(buf, ' ');
			if (sp && zone_exists(sp + 1)) {
				c->timezone = keel_strdup(sp + 1);
				if (!c->timezone) {
					r = -ENOMEM;
					goto fail;
				}
				*sp = '\0';
			}
		}
	}
	if (!*p) {
		r = -EINVAL;
		goto fail;
	}
	bool done;
	r = shorthand(c, p, &done);
	if (r < 0)
		goto fail;
	if (!done) {
		r = parse_weekdays(&p, c);
		if (r < 0)
			goto fail;
		r = parse_date(&p, c);
		if (r < 0)
			goto fail;
		if (r == 0) {
			r = parse_time(&p, c);
			if (r < 0)
				goto fail;
		}
		if (*p) {
			r = -EINVAL;
			goto fail;
		}
	}

	/* systemd's calendar_spec_normalize() and _valid(). */
	if (c->timezone && strcmp(c->timezone, "UTC") == 0) {
		c->utc = true;
		keel_free(c->timezone);
		c->timezone = NULL;
	}
	if (c->weekdays <= 0 || c->weekdays >= ALL_WEEKDAYS)
		c->weekdays = -1;
	if (c->end_of_month && c->f[F_DAY].n == 0)
		c->end_of_month = false;
	for (int i = 0; i < c->f[F_YEAR].n; i++) {
		struct comp *x = &c->f[F_YEAR].v[i];
		if (x->start >= 0 && x->start < 70)
			x->start += 2000;
		else if (x->start >= 70 && x->start < 100)
			x->start += 1900;
		if (x->stop >= 0 && x->stop < 70)
			x->stop += 2000;
		else if (x->stop >= 70 && x->stop < 100)
			x->stop += 1900;
	}
	for (int i = 0; i < F_MAX; i++)
		normalize_chain(&c->f[i]);
	if (!chain_valid(&c->f[F_YEAR], MIN_YEAR, MAX_YEAR, false) ||
	    !chain_valid(&c->f[F_MONTH], 1, 12, false) ||
	    !chain_valid(&c->f[F_DAY], 1, 31, c->end_of_month) ||
	    !chain_valid(&c->f[F_HOUR], 0, 23, false) ||
	    !chain_valid(&c->f[F_MINUTE], 0, 59, false) ||
	    !chain_valid(&c->f[F_USEC], 0, 60 * USEC_PER_SEC - 1, false)) {
		r = -EINVAL;
		goto fail;
	}
	keel_free(buf);
	*ret = c;
	return 0;
fail:
	keel_free(buf);
	keel_calendar_free(c);
	return r == -ENOMEM ? r : -EINVAL;
}

static int put_chain(struct keel_buf *b, const struct chain *c, int width, bool usec)
{
	int d = usec ? USEC_PER_SEC : 1;
	int r = 0;
	if (c->n == 0)
		return keel_buf_putc(b, '*');
	if (usec && c->n == 1 && c->v[0].start == 0 && c->v[0].repeat == USEC_PER_SEC &&
	    c->v[0].stop < 0)
		return keel_buf_putc(b, '*');
	for (int i = 0; i < c->n && r == 0; i++) {
		const struct comp *x = &c->v[i];
		if (i > 0)
			r = keel_buf_putc(b, ',');
		if (r == 0)
			r = keel_buf_printf(b, "%0*d", width, x->start / d);
		if (r == 0 && x->start % d > 0)
			r = keel_buf_printf(b, ".%06d", x->start % d);
		if (r == 0 && x->stop > 0)
			r = keel_buf_printf(b, "..%0*d", width, x->stop / d);
		if (r == 0 && x->stop > 0 && x->stop % d > 0)
			r = keel_buf_printf(b, ".%06d", x->stop % d);
		if (r == 0 && x->repeat > 0 && !(x->stop > 0 && x->repeat == d))
			r = keel_buf_printf(b, "/%d", x->repeat / d);
		if (r == 0 && x->repeat % d > 0)
			r = keel_buf_printf(b, ".%06d", x->repeat % d);
	}
	return r;
}

static int put_weekdays(struct keel_buf *b, int bits)
{
	int l = -1, x, r = 0;
	bool comma = false;
	for (x = 0; x < 7 && r == 0; x++) {
		if (bits & (1 << x)) {
			if (l < 0) {
				if (comma)
					r = keel_buf_putc(b, ',');
				comma = true;
				if (r == 0)
					r = keel_buf_puts(b, day_abbr[x]);
				l = x;
			}
		} else if (l >= 0) {
			if (x > l + 1)
				r = keel_buf_printf(b, "%s%s", x > l + 2 ? ".." : ",", day_abbr[x - 1]);
			l = -1;
		}
	}
	if (r == 0 && l >= 0 && x > l + 1)
		r = keel_buf_printf(b, "%s%s", x > l + 2 ? ".." : ",", day_abbr[x - 1]);
	return r;
}

int keel_calendar_to_string(const struct keel_calendar *c, char **ret)
{
	struct keel_buf b = KEEL_BUF_INIT;
	int r = 0;
	if (c->weekdays > 0 && c->weekdays < ALL_WEEKDAYS) {
		r = put_weekdays(&b, c->weekdays);
		if (r == 0)
			r = keel_buf_putc(&b, ' ');
	}
	if (r == 0)
		r = put_chain(&b, &c->f[F_YEAR], 4, false);
	if (r == 0)
		r = keel_buf_putc(&b, '-');
	if (r == 0)
		r = put_chain(&b, &c->f[F_MONTH], 2, false);
	if (r == 0)
		r = keel_buf_putc(&b, c->end_of_month ? '~' : '-');
	if (r == 0)
		r = put_chain(&b, &c->f[F_DAY], 2, false);
	if (r == 0)
		r = keel_buf_putc(&b, ' ');
	if (r == 0)
		r = put_chain(&b, &c->f[F_HOUR], 2, false);
	if (r == 0)
		r = keel_buf_putc(&b, ':');
	if (r == 0)
		r = put_chain(&b, &c->f[F_MINUTE], 2, false);
	if (r == 0)
		r = keel_buf_putc(&b, ':');
	if (r == 0)
		r = put_chain(&b, &c->f[F_USEC], 2, true);
	if (r == 0) {
		if (c->utc)
			r = keel_buf_puts(&b, " UTC");
		else if (c->timezone)
			r = keel_buf_printf(&b, " %s", c->timezone);
		else if (c->dst == 0 || c->dst == 1) {
			tzset();
			if (tzname[c->dst] && *tzname[c->dst])
				r = keel_buf_printf(&b, " %s", tzname[c->dst]);
		}
	}
	if (r < 0) {
		keel_buf_free(&b);
		return r;
	}
	*ret = keel_buf_steal(&b, NULL);
	return 0;
}

/* Next elapse */

static bool leap(int y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int days_in_month(int y, int m)
{
	static const int d[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	return m == 2 && leap(y) ? 29 : d[m - 1];
}

/* 0 = Monday, for a proleptic Gregorian date. */
static int weekday(int y, int m, int d)
{
	/* days since 1970-01-01 (a Thursday), Howard Hinnant's days_from_civil */
	y -= m <= 2;
	int era = (y >= 0 ? y : y - 399) / 400;
	int yoe = y - era * 400;
	int doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	int doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	long days = (long)era * 146097 + doe - 719468;
	return (int)(((days % 7) + 7 + 3) % 7);
}

/* The smallest value >= v that the field accepts, or -1. For days counted from the month's end
 * the elements are mapped onto this month's days first, as systemd does. */
static int next_in_chain(const struct chain *c, int v, bool eom, int dim)
{
	if (c->n == 0)
		return v;
	int best = -1;
	for (int i = 0; i < c->n; i++) {
		const struct comp *x = &c->v[i];
		int start = x->start, stop = x->stop;
		if (eom) {
			start = dim + 1 - x->start;
			if (x->stop >= 0) {
				stop = dim + 1 - x->stop;
				int t = start;
				start = stop;
				stop = t;
			}
		}
		int k = -1;
		if (start >= v)
			k = start;
		else if (x->repeat > 0) {
			long kk = start + (long)x->repeat * ((v - start + x->repeat - 1) / x->repeat);
			if (kk <= INT_MAX && (stop < 0 || kk <= stop))
				k = (int)kk;
		}
		if (k >= 0 && (best < 0 || k < best))
			best = k;
	}
	return best;
}

struct when {
	int y, mo, d, h, mi;
	int us; /* microseconds within the minute */
};

static void carry(struct when *w)
{
	if (w->us >= 60 * USEC_PER_SEC) {
		w->us = 0;
		w->mi++;
	}
	if (w->mi > 59) {
		w->mi = 0;
		w->h++;
	}
	if (w->h > 23) {
		w->h = 0;
		w->d++;
	}
	if (w->mo > 12) { /* before the day: the month must be valid to know its length */
		w->mo = 1;
		w->y++;
	}
	if (w->d > days_in_month(w->y, w->mo)) {
		w->d = 1;
		w->mo++;
	}
	if (w->mo > 12) {
		w->mo = 1;
		w->y++;
	}
}

/* The first moment of the next year/month/day/hour/minute/second. */
static void advance(struct when *w, int f)
{
	switch (f) {
	case F_YEAR:
		*w = (struct when){w->y + 1, 1, 1, 0, 0, 0};
		return;
	case F_MONTH:
		w->mo++;
		w->d = 1;
		w->h = w->mi = w->us = 0;
		break;
	case F_DAY:
		w->d++;
		w->h = w->mi = w->us = 0;
		break;
	case F_HOUR:
		w->h++;
		w->mi = w->us = 0;
		break;
	case F_MINUTE:
		w->mi++;
		w->us = 0;
		break;
	default:
		w->us = (w->us / USEC_PER_SEC + 1) * USEC_PER_SEC;
		break;
	}
	carry(w);
}

struct zone_guard {
	bool switched;
	char *old;
};

static void zone_enter(const struct keel_calendar *c, struct zone_guard *g)
{
	g->switched = false;
	g->old = NULL;
	if (!c->timezone)
		return;
	const char *cur = getenv("TZ");
	g->old = cur ? keel_strdup(cur) : NULL;
	char tz[300];
	snprintf(tz, sizeof(tz), ":%s", c->timezone);
	setenv("TZ", tz, 1);
	tzset();
	g->switched = true;
}

static void zone_leave(struct zone_guard *g)
{
	if (!g->switched)
		return;
	if (g->old)
		setenv("TZ", g->old, 1);
	else
		unsetenv("TZ");
	tzset();
	keel_free(g->old);
}

static bool mk(const struct keel_calendar *c, const struct when *w, int isdst, time_t *ret)
{
	struct tm tm = {
		.tm_year = w->y - 1900, .tm_mon = w->mo - 1, .tm_mday = w->d,
		.tm_hour = w->h, .tm_min = w->mi, .tm_sec = w->us / USEC_PER_SEC, .tm_isdst = isdst,
	};
	struct tm want = tm;
	time_t t = c->utc ? timegm(&tm) : mktime(&tm);
	if (t == (time_t)-1 && !(tm.tm_year == 69 && tm.tm_mon == 11 && tm.tm_mday == 31))
		return false;
	/* A normalised result means the local time does not exist with this DST flag. */
	if (tm.tm_year != want.tm_year || tm.tm_mon != want.tm_mon || tm.tm_mday != want.tm_mday ||
	    tm.tm_hour != want.tm_hour || tm.tm_min != want.tm_min || tm.tm_sec != want.tm_sec)
		return false;
	*ret = t;
	return true;
}

/* The instant of a wall-clock time after `after` (µs). A local time that falls twice (the hour
 * DST ends) is its first occurrence unless that is not after `after`; one that does not exist
 * (the hour DST starts) has none: false. */
static bool to_epoch(const struct keel_calendar *c, const struct when *w, uint64_t after, time_t *ret)
{
	uint64_t frac = (uint64_t)(w->us % USEC_PER_SEC);
	if (c->utc || c->dst >= 0) {
		time_t t;
		if (!mk(c, w, c->utc ? 0 : c->dst, &t))
			return false;
		*ret = t;
		return true;
	}
	time_t t[2];
	bool ok[2] = {mk(c, w, 0, &t[0]), mk(c, w, 1, &t[1])};
	bool have = false;
	time_t best = 0;
	for (int i = 0; i < 2; i++) {
		if (!ok[i] || t[i] < 0 || (uint64_t)t[i] * USEC_PER_SEC + frac <= after)
			continue;
		if (!have || t[i] < best)
			best = t[i];
		have = true;
	}
	if (!have) {
		/* Both before `after` (or neither exists): fall back to whichever exists, so the
		 * caller moves on. */
		if (!ok[0] && !ok[1])
			return false;
		best = ok[0] ? t[0] : t[1];
	}
	*ret = best;
	return true;
}

int keel_calendar_next(const struct keel_calendar *c, uint64_t after, uint64_t *ret)
{
	if (after >= (uint64_t)(MAX_YEAR - 1969) * 366 * 86400 * USEC_PER_SEC)
		return -EINVAL;
	uint64_t start = after + 1;
	time_t t = (time_t)(start / USEC_PER_SEC);
	struct zone_guard g;
	zone_enter(c, &g);
	struct tm tm;
	if (!(c->utc ? gmtime_r(&t, &tm) : localtime_r(&t, &tm))) {
		zone_leave(&g);
		return -EINVAL;
	}
	struct when w = {
		tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
		tm.tm_sec * USEC_PER_SEC + (int)(start % USEC_PER_SEC),
	};
	int r = -ENOENT;
	/* Each pass either matches or moves a field forward to the start of its next value; the
	 * year field ends the search at MAX_YEAR. */
	for (int iter = 0; iter < 100000; iter++) {
		int v = next_in_chain(&c->f[F_YEAR], w.y, false, 0);
		if (v < 0 || v > MAX_YEAR)
			break;
		if (v != w.y)
			w = (struct when){v, 1, 1, 0, 0, 0};

		v = next_in_chain(&c->f[F_MONTH], w.mo, false, 0);
		if (v < 0 || v > 12) {
			advance(&w, F_YEAR);
			continue;
		}
		if (v != w.mo)
			w = (struct when){w.y, v, 1, 0, 0, 0};

		int dim = days_in_month(w.y, w.mo);
		v = next_in_chain(&c->f[F_DAY], w.d, c->end_of_month, dim);
		if (v < 0 || v > dim) {
			advance(&w, F_MONTH);
			continue;
		}
		if (v != w.d)
			w = (struct when){w.y, w.mo, v, 0, 0, 0};
		if (c->weekdays >= 0 && !(c->weekdays & (1 << weekday(w.y, w.mo, w.d)))) {
			advance(&w, F_DAY);
			continue;
		}

		v = next_in_chain(&c->f[F_HOUR], w.h, false, 0);
		if (v < 0 || v > 23) {
			advance(&w, F_DAY);
			continue;
		}
		if (v != w.h) {
			w.h = v;
			w.mi = w.us = 0;
		}

		v = next_in_chain(&c->f[F_MINUTE], w.mi, false, 0);
		if (v < 0 || v > 59) {
			advance(&w, F_HOUR);
			continue;
		}
		if (v != w.mi) {
			w.mi = v;
			w.us = 0;
		}

		v = next_in_chain(&c->f[F_USEC], w.us, false, 0);
		if (v < 0 || v >= 60 * USEC_PER_SEC) {
			advance(&w, F_MINUTE);
			continue;
		}
		w.us = v;

		time_t e;
		if (!to_epoch(c, &w, after, &e)) {
			advance(&w, F_USEC); /* a local time that does not exist (DST gap) */
			continue;
		}
		if (e < 0) {
			r = -EINVAL;
			break;
		}
		uint64_t at = (uint64_t)e * USEC_PER_SEC + (uint64_t)(w.us % USEC_PER_SEC);
		if (at <= after) {
			advance(&w, F_USEC); /* both occurrences of a repeated hour already passed */
			continue;
		}
		*ret = at;
		r = 0;
		break;
	}
	zone_leave(&g);
	return r;
}
