#include "base/str.h"

#include <ctype.h>
#include <errno.h>
#include <string.h>

#include "base/mem.h"

const char *keel_startswith(const char *s, const char *prefix)
{
	size_t n = strlen(prefix);
	return strncmp(s, prefix, n) == 0 ? s + n : NULL;
}

bool keel_endswith(const char *s, const char *suffix)
{
	size_t a = strlen(s), b = strlen(suffix);
	return a >= b && memcmp(s + a - b, suffix, b) == 0;
}

char *keel_strstrip(char *s)
{
	while (*s && isspace((unsigned char)*s))
		s++;
	size_t n = strlen(s);
	while (n > 0 && isspace((unsigned char)s[n - 1]))
		s[--n] = '\0';
	return s;
}

size_t keel_strv_len(char *const *v)
{
	size_t n = 0;
	while (v && v[n])
		n++;
	return n;
}

int keel_strv_consume(char ***v, char *s)
{
	if (!s)
		return -ENOMEM;
	size_t n = keel_strv_len(*v);
	char **nv = keel_reallocarray(*v, n + 2, sizeof(char *));
	if (!nv) {
		keel_free(s);
		return -ENOMEM;
	}
	nv[n] = s;
	nv[n + 1] = NULL;
	*v = nv;
	return 0;
}

int keel_strv_push(char ***v, const char *s)
{
	return keel_strv_consume(v, keel_strdup(s));
}

void keel_strv_free(char **v)
{
	for (size_t i = 0; v && v[i]; i++)
		keel_free(v[i]);
	keel_free(v);
}

bool keel_strv_contains(char *const *v, const char *s)
{
	for (size_t i = 0; v && v[i]; i++)
		if (strcmp(v[i], s) == 0)
			return true;
	return false;
}

int keel_strv_split(const char *s, const char *seps, char ***ret)
{
	char **v = NULL;
	while (*s) {
		size_t n = strcspn(s, seps);
		if (n > 0) {
			int r = keel_strv_consume(&v, keel_strndup(s, n));
			if (r) {
				keel_strv_free(v);
				return r;
			}
		}
		s += n;
		if (*s)
			s++;
	}
	if (!v) {
		/* An empty vector is still a vector: callers can tell it from failure. */
		v = keel_calloc(1, sizeof(char *));
		if (!v)
			return -ENOMEM;
	}
	*ret = v;
	return 0;
}

int keel_parse_u64(const char *s, uint64_t *ret)
{
	if (!s || !*s)
		return -EINVAL;
	uint64_t v = 0;
	for (const char *p = s; *p; p++) {
		if (*p < '0' || *p > '9')
			return -EINVAL;
		unsigned d = (unsigned)(*p - '0');
		if (v > (UINT64_MAX - d) / 10)
			return -ERANGE;
		v = v * 10 + d;
	}
	*ret = v;
	return 0;
}

int keel_parse_i64(const char *s, int64_t *ret)
{
	if (!s)
		return -EINVAL;
	bool neg = false;
	if (*s == '-' || *s == '+') {
		neg = *s == '-';
		s++;
	}
	uint64_t u;
	int r = keel_parse_u64(s, &u);
	if (r)
		return r;
	if (neg) {
		if (u > (uint64_t)INT64_MAX + 1)
			return -ERANGE;
		*ret = (int64_t)(0 - u);
	} else {
		if (u > INT64_MAX)
			return -ERANGE;
		*ret = (int64_t)u;
	}
	return 0;
}

int keel_parse_bool(const char *s, bool *ret)
{
	static const char *const yes[] = {"1", "t", "T", "TRUE", "true", "True"};
	static const char *const no[] = {"0", "f", "F", "FALSE", "false", "False"};
	if (!s)
		return -EINVAL;
	for (size_t i = 0; i < KEEL_ARRAY_SIZE(yes); i++) {
		if (strcmp(s, yes[i]) == 0) {
			*ret = true;
			return 0;
		}
		if (strcmp(s, no[i]) == 0) {
			*ret = false;
			return 0;
		}
	}
	return -EINVAL;
}

/* Unit of a duration suffix in nanoseconds, with its length; 0 if s does not start with one. */
static uint64_t keel__dur_unit(const char *s, size_t *len)
{
	static const struct {
		const char *name;
		uint64_t ns;
	} units[] = {
		/* Longer names first so that "ms" is not read as "m" followed by "s". */
		{"ns", 1}, {"us", 1000}, {"\xc2\xb5s", 1000}, {"\xce\xbcs", 1000}, {"ms", 1000000},
		{"s", 1000000000ull}, {"m", 60000000000ull}, {"h", 3600000000000ull},
	};
	for (size_t i = 0; i < KEEL_ARRAY_SIZE(units); i++) {
		size_t n = strlen(units[i].name);
		if (strncmp(s, units[i].name, n) == 0) {
			*len = n;
			return units[i].ns;
		}
	}
	return 0;
}

int keel_parse_duration(const char *s, int64_t *ret_ns)
{
	if (!s || !*s)
		return -EINVAL;
	bool neg = false;
	if (*s == '-' || *s == '+') {
		neg = *s == '-';
		s++;
	}
	if (strcmp(s, "0") == 0) {
		*ret_ns = 0;
		return 0;
	}
	if (!*s)
		return -EINVAL;

	/* Accumulate in unsigned nanoseconds; the magnitude may reach 2^63 for a negative result. */
	const uint64_t limit = (uint64_t)INT64_MAX + (neg ? 1 : 0);
	uint64_t total = 0;
	while (*s) {
		uint64_t whole = 0, frac = 0;
		double scale = 1;
		bool digits = false, overflow = false, frac_full = false;
		while (*s >= '0' && *s <= '9') {
			unsigned d = (unsigned)(*s++ - '0');
			digits = true;
			if (whole > (UINT64_MAX - d) / 10)
				overflow = true;
			else
				whole = whole * 10 + d;
		}
		if (*s == '.') {
			s++;
			while (*s >= '0' && *s <= '9') {
				unsigned d = (unsigned)(*s++ - '0');
				digits = true;
				/* As Go's leadingFraction: keep digits while the value fits in 2^63, then
				 * ignore the rest. */
				if (frac_full || frac > (uint64_t)INT64_MAX / 10 ||
				    frac * 10 + d > (uint64_t)1 << 63) {
					frac_full = true;
					continue;
				}
				frac = frac * 10 + d;
				scale *= 10;
			}
		}
		if (!digits)
			return -EINVAL;
		size_t ulen;
		uint64_t unit = keel__dur_unit(s, &ulen);
		if (!unit)
			return -EINVAL;
		s += ulen;
		if (overflow || (whole && whole > limit / unit))
			return -ERANGE;
		uint64_t v = whole * unit;
		/* frac/scale of a unit in Go's float64 arithmetic, so that results match it to the
		 * nanosecond ("0.3333333333333333333h" is exactly 20m there): fv < unit <= 3.6e12. */
		uint64_t fv = (uint64_t)((double)frac * ((double)unit / scale));
		if (v > limit - fv)
			return -ERANGE;
		v += fv;
		if (total > limit - v)
			return -ERANGE;
		total += v;
	}
	*ret_ns = neg ? (int64_t)(0 - total) : (int64_t)total;
	return 0;
}

size_t keel_env_name(const char *prefix, const char *name, char *out, size_t size)
{
	size_t n = 0;
	const char *parts[2] = {prefix, name};
	for (int part = 0; part < 2; part++) {
		const char *p = parts[part];
		if (!p || !*p)
			continue;
		if (part == 1 && n > 0) {
			if (n + 1 < size)
				out[n] = '_';
			n++;
		}
		for (; *p; p++, n++) {
			char c = *p == '-' || *p == '.' ? '_' : (char)toupper((unsigned char)*p);
			if (n + 1 < size)
				out[n] = c;
		}
	}
	if (size)
		out[n < size ? n : size - 1] = '\0';
	return n;
}

/* Length of the valid UTF-8 sequence at p (of n bytes available), or 0 if it is invalid.
 * Rejects overlong forms, surrogates and code points above U+10FFFF (RFC 3629). */
size_t keel_utf8_char(const unsigned char *p, size_t n, uint32_t *ret_cp)
{
	unsigned char c = p[0];
	size_t len;
	uint32_t cp, min;
	if (c < 0xC2)
		return 0; /* ASCII is handled by callers; 0x80-0xC1 never start a sequence */
	if (c < 0xE0) {
		len = 2, cp = c & 0x1F, min = 0x80;
	} else if (c < 0xF0) {
		len = 3, cp = c & 0x0F, min = 0x800;
	} else if (c < 0xF5) {
		len = 4, cp = c & 0x07, min = 0x10000;
	} else {
		return 0;
	}
	if (n < len)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((p[i] & 0xC0) != 0x80)
			return 0;
		cp = cp << 6 | (p[i] & 0x3F);
	}
	if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
		return 0;
	*ret_cp = cp;
	return len;
}
