/* The journal's on-disk encoding (journal-internal.h), the "<N>" prefix, and journalctl's time
 * syntax for --since/--until. No I/O here. */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/crc32c.h"
#include "base/str.h"
#include "init/journal-internal.h"
#include "init/journal.h"
#include "init/values.h"

int keel__jname_parse(const char *name, uint64_t *ret_seq)
{
	if (strncmp(name, "journal-", 8) != 0)
		return -1;
	const char *p = name + 8;
	uint64_t seq = 0;
	for (int i = 0; i < 16; i++) {
		char c = p[i];
		int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
		if (d < 0)
			return -1;
		seq = seq << 4 | (uint64_t)d;
	}
	p += 16;
	int kind;
	if (strcmp(p, ".kj") == 0)
		kind = 0;
	else if (strcmp(p, ".kji") == 0)
		kind = 1;
	else
		return -1;
	*ret_seq = seq;
	return kind;
}

void keel__jname(char *out, uint64_t seq, int index)
{
	snprintf(out, KEEL_JNAME_MAX, "journal-%016" PRIx64 ".kj%s", seq, index ? "i" : "");
}

void keel__jhdr_encode(const struct keel_jhdr *h, uint8_t out[KEEL_JHDR_SIZE])
{
	memset(out, 0, KEEL_JHDR_SIZE);
	memcpy(out, KEEL_JHDR_MAGIC, 8);
	keel__put32(out + 8, KEEL_JHDR_VERSION);
	keel__put32(out + 12, KEEL_JHDR_SIZE);
	keel__put64(out + 16, h->seq);
	keel__put64(out + 24, h->created_usec);
	memcpy(out + 32, h->boot_id, 16);
	memcpy(out + 48, h->hostname, strnlen(h->hostname, KEEL_J_HOST_MAX));
	keel__put32(out + 112, keel_crc32c(0, out, 112));
}

int keel__jhdr_decode(const uint8_t *in, size_t len, struct keel_jhdr *h)
{
	if (len < KEEL_JHDR_SIZE || memcmp(in, KEEL_JHDR_MAGIC, 8) != 0 ||
	    keel__get32(in + 8) != KEEL_JHDR_VERSION || keel__get32(in + 12) != KEEL_JHDR_SIZE ||
	    keel__get32(in + 112) != keel_crc32c(0, in, 112))
		return -KEEL_ECORRUPT;
	h->seq = keel__get64(in + 16);
	h->created_usec = keel__get64(in + 24);
	memcpy(h->boot_id, in + 32, 16);
	memcpy(h->hostname, in + 48, KEEL_J_HOST_MAX);
	h->hostname[KEEL_J_HOST_MAX] = '\0';
	return 0;
}

size_t keel__jrec_encode(uint8_t *out, int priority, uint32_t pid, uint64_t realtime_usec,
			 uint64_t mono_usec, const char *unit, size_t unit_len, const char *ident,
			 size_t ident_len, const char *msg, size_t msg_len)
{
	uint8_t *p = out + KEEL_JREC_FRAME;
	size_t payload = KEEL_JREC_FIXED + unit_len + ident_len + msg_len;
	p[0] = 1;
	p[1] = (uint8_t)priority;
	p[2] = (uint8_t)unit_len;
	p[3] = (uint8_t)(unit_len >> 8);
	p[4] = (uint8_t)ident_len;
	p[5] = (uint8_t)(ident_len >> 8);
	p[6] = p[7] = 0;
	keel__put32(p + 8, pid);
	keel__put64(p + 12, realtime_usec);
	keel__put64(p + 20, mono_usec);
	memcpy(p + KEEL_JREC_FIXED, unit, unit_len);
	if (ident_len)
		memcpy(p + KEEL_JREC_FIXED + unit_len, ident, ident_len);
	if (msg_len)
		memcpy(p + KEEL_JREC_FIXED + unit_len + ident_len, msg, msg_len);
	keel__put32(out, KEEL_JREC_MAGIC);
	keel__put32(out + 4, (uint32_t)payload);
	uint32_t crc = keel_crc32c(0, out + 4, 4);
	keel__put32(out + 8, keel_crc32c(crc, p, payload));
	return KEEL_JREC_FRAME + payload;
}

int keel__jrec_decode(const uint8_t *buf, size_t len, struct keel_jrec *rec, size_t *ret_size)
{
	if (len < KEEL_JREC_FRAME)
		return len >= 4 && keel__get32(buf) != KEEL_JREC_MAGIC ? KEEL_JREC_BAD : KEEL_JREC_SHORT;
	if (keel__get32(buf) != KEEL_JREC_MAGIC)
		return KEEL_JREC_BAD;
	uint32_t payload = keel__get32(buf + 4);
	if (payload < KEEL_JREC_FIXED || payload > KEEL_JREC_MAX_PAYLOAD)
		return KEEL_JREC_BAD;
	if (len - KEEL_JREC_FRAME < payload)
		return KEEL_JREC_SHORT;
	const uint8_t *p = buf + KEEL_JREC_FRAME;
	uint32_t crc = keel_crc32c(keel_crc32c(0, buf + 4, 4), p, payload);
	if (crc != keel__get32(buf + 8))
		return KEEL_JREC_BAD;
	size_t unit_len = (size_t)p[2] | (size_t)p[3] << 8;
	size_t ident_len = (size_t)p[4] | (size_t)p[5] << 8;
	if (p[0] != 1 || p[1] > 7 || unit_len == 0 || KEEL_JREC_FIXED + unit_len + ident_len > payload)
		return KEEL_JREC_BAD;
	/* the writer takes both from C strings */
	if (memchr(p + KEEL_JREC_FIXED, '\0', unit_len + ident_len))
		return KEEL_JREC_BAD;
	rec->priority = p[1];
	rec->pid = keel__get32(p + 8);
	rec->realtime_usec = keel__get64(p + 12);
	rec->mono_usec = keel__get64(p + 20);
	rec->unit = (const char *)p + KEEL_JREC_FIXED;
	rec->unit_len = unit_len;
	rec->ident = rec->unit + unit_len;
	rec->ident_len = ident_len;
	rec->msg = rec->ident + ident_len;
	rec->msg_len = payload - KEEL_JREC_FIXED - unit_len - ident_len;
	*ret_size = KEEL_JREC_FRAME + payload;
	return KEEL_JREC_OK;
}

void keel__jidx_encode(uint8_t out[KEEL_JIDX_SIZE], uint64_t offset, uint64_t realtime_usec)
{
	memset(out, 0, KEEL_JIDX_SIZE);
	keel__put64(out, offset);
	keel__put64(out + 8, realtime_usec);
	keel__put32(out + 16, KEEL_JIDX_MAGIC);
	keel__put32(out + 28, keel_crc32c(0, out, 28));
}

int keel__jidx_decode(const uint8_t *in, uint64_t *ret_offset, uint64_t *ret_realtime)
{
	if (keel__get32(in + 16) != KEEL_JIDX_MAGIC || keel__get32(in + 28) != keel_crc32c(0, in, 28))
		return -KEEL_ECORRUPT;
	*ret_offset = keel__get64(in);
	*ret_realtime = keel__get64(in + 8);
	return 0;
}

/* syslog_parse_priority(…, with_facility=false) of systemd: "<" one to three decimal digits ">",
 * where all digits but the last are 0 and the last is 0..7. */
int keel_journal_prio_prefix(const char **msg, size_t *len, int def)
{
	const char *m = *msg;
	size_t n = *len;
	if (n < 3 || m[0] != '<')
		return def;
	size_t k = 1;
	while (k < n && k <= 4 && m[k] != '>')
		k++;
	if (k >= n || m[k] != '>' || k < 2 || k > 4)
		return def;
	for (size_t i = 1; i < k; i++)
		if (m[i] < '0' || m[i] > '9' || (i < k - 1 && m[i] != '0'))
			return def;
	int prio = m[k - 1] - '0';
	if (prio > 7)
		return def;
	*msg = m + k + 1;
	*len = n - k - 1;
	return prio;
}

/* ---- time syntax ---- */

static int local_to_usec(struct tm *tm, bool utc, uint64_t *ret)
{
	tm->tm_isdst = -1;
	time_t t = utc ? timegm(tm) : mktime(tm);
	if (t == (time_t)-1 || t < 0)
		return -EINVAL;
	*ret = (uint64_t)t * 1000000;
	return 0;
}

static int day_start(uint64_t now_usec, int day_offset, uint64_t *ret)
{
	time_t t = (time_t)(now_usec / 1000000);
	struct tm tm;
	if (!localtime_r(&t, &tm))
		return -EINVAL;
	tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
	tm.tm_mday += day_offset;
	return local_to_usec(&tm, false, ret);
}

/* "YYYY-MM-DD[ HH:MM[:SS]]" or "HH:MM[:SS]" (today), optionally ".frac" seconds. */
static int parse_timestamp(const char *s, uint64_t now_usec, bool utc, uint64_t *ret)
{
	struct tm tm;
	time_t now = (time_t)(now_usec / 1000000);
	if (!(utc ? gmtime_r(&now, &tm) : localtime_r(&now, &tm)))
		return -EINVAL;
	int y, mo, d, h = 0, mi = 0, sec = 0, n = 0;
	const char *p = s;
	if (sscanf(p, "%4d-%2d-%2d%n", &y, &mo, &d, &n) == 3 && n == 10) {
		tm.tm_year = y - 1900;
		tm.tm_mon = mo - 1;
		tm.tm_mday = d;
		p += n;
		if (*p == '\0')
			goto done;
		if (*p != ' ' && *p != 'T')
			return -EINVAL;
		p++;
	}
	n = 0;
	if (sscanf(p, "%2d:%2d%n", &h, &mi, &n) != 2 || n != 5)
		return -EINVAL;
	p += n;
	if (*p == ':') {
		n = 0;
		if (sscanf(p + 1, "%2d%n", &sec, &n) != 1 || n != 2)
			return -EINVAL;
		p += 3;
		uint64_t frac = 0, scale = 1000000;
		if (*p == '.') {
			p++;
			if (!isdigit((unsigned char)*p))
				return -EINVAL;
			while (isdigit((unsigned char)*p)) {
				if (scale > 1) {
					scale /= 10;
					frac += (uint64_t)(*p - '0') * scale;
				}
				p++;
			}
		}
		if (*p != '\0')
			return -EINVAL;
		if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60 || h < 0 ||
		    mi < 0 || sec < 0)
			return -EINVAL;
		tm.tm_hour = h;
		tm.tm_min = mi;
		tm.tm_sec = sec;
		int r = local_to_usec(&tm, utc, ret);
		*ret += frac;
		return r;
	}
	if (*p != '\0' || h < 0 || h > 23 || mi < 0 || mi > 59)
		return -EINVAL;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = 0;
	return local_to_usec(&tm, utc, ret);
done:
	if (mo < 1 || mo > 12 || d < 1 || d > 31)
		return -EINVAL;
	tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
	return local_to_usec(&tm, utc, ret);
}

int keel_journal_parse_time(const char *s, uint64_t now_usec, uint64_t *ret_usec)
{
	if (!s)
		return -EINVAL;
	while (*s == ' ')
		s++;
	char buf[128];
	size_t n = strlen(s);
	while (n > 0 && s[n - 1] == ' ')
		n--;
	if (n == 0 || n >= sizeof(buf))
		return -EINVAL;
	memcpy(buf, s, n);
	buf[n] = '\0';

	if (strcmp(buf, "now") == 0) {
		*ret_usec = now_usec;
		return 0;
	}
	if (strcmp(buf, "today") == 0)
		return day_start(now_usec, 0, ret_usec);
	if (strcmp(buf, "yesterday") == 0)
		return day_start(now_usec, -1, ret_usec);
	if (strcmp(buf, "tomorrow") == 0)
		return day_start(now_usec, 1, ret_usec);
	if (buf[0] == '@') {
		uint64_t sec;
		if (keel_parse_u64(buf + 1, &sec) < 0 || sec > UINT64_MAX / 1000000)
			return -EINVAL;
		*ret_usec = sec * 1000000;
		return 0;
	}
	uint64_t span;
	if (buf[0] == '-' || buf[0] == '+') {
		if (keel_parse_sec(buf + 1, &span) < 0 || span == UINT64_MAX)
			return -EINVAL;
		if (buf[0] == '-')
			*ret_usec = span > now_usec ? 0 : now_usec - span;
		else
			*ret_usec = now_usec + span;
		return 0;
	}
	if (n > 4 && strcmp(buf + n - 4, " ago") == 0) {
		buf[n - 4] = '\0';
		if (keel_parse_sec(buf, &span) < 0 || span == UINT64_MAX)
			return -EINVAL;
		*ret_usec = span > now_usec ? 0 : now_usec - span;
		return 0;
	}
	bool utc = false;
	if (n > 4 && strcmp(buf + n - 4, " UTC") == 0) {
		buf[n - 4] = '\0';
		utc = true;
	}
	return parse_timestamp(buf, now_usec, utc, ret_usec);
}
