#include "init/words.h"

#include <errno.h>
#include <string.h>

#include "base/buf.h"
#include "base/mem.h"
#include "base/str.h"

#define WHITESPACE " \t\n\r"

bool keel_unichar_is_valid(uint32_t c)
{
	if (c >= 0x110000)
		return false;
	if ((c & 0xFFFFF800) == 0xD800)
		return false;
	if (c >= 0xFDD0 && c <= 0xFDEF)
		return false;
	if ((c & 0xFFFE) == 0xFFFE)
		return false;
	return true;
}

size_t keel_utf8_valid_char(const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;
	if (n == 0)
		return 0;
	if (p[0] < 0x80)
		return 1;
	size_t len;
	uint32_t c;
	if ((p[0] & 0xE0) == 0xC0) {
		len = 2;
		c = p[0] & 0x1F;
	} else if ((p[0] & 0xF0) == 0xE0) {
		len = 3;
		c = p[0] & 0x0F;
	} else if ((p[0] & 0xF8) == 0xF0) {
		len = 4;
		c = p[0] & 0x07;
	} else {
		return 0;
	}
	if (n < len)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((p[i] & 0xC0) != 0x80)
			return 0;
		c = c << 6 | (p[i] & 0x3F);
	}
	size_t need = c < 0x80 ? 1 : c < 0x800 ? 2 : c < 0x10000 ? 3 : 4;
	if (need != len || !keel_unichar_is_valid(c))
		return 0;
	return len;
}

bool keel_utf8_is_valid_n(const char *s, size_t n)
{
	for (size_t i = 0; i < n;) {
		size_t k = keel_utf8_valid_char(s + i, n - i);
		if (k == 0)
			return false;
		i += k;
	}
	return true;
}

bool keel_utf8_is_valid(const char *s)
{
	return keel_utf8_is_valid_n(s, strlen(s));
}

char *keel_utf8_escape_invalid(const char *s)
{
	struct keel_buf b = KEEL_BUF_INIT;
	size_t n = strlen(s);
	for (size_t i = 0; i < n;) {
		size_t k = keel_utf8_valid_char(s + i, n - i);
		int r = k ? keel_buf_append(&b, s + i, k) : keel_buf_puts(&b, "\xef\xbf\xbd");
		if (r < 0) {
			keel_buf_free(&b);
			return NULL;
		}
		i += k ? k : 1;
	}
	return keel_buf_steal(&b, NULL);
}

size_t keel_utf8_encode(char *out, uint32_t c)
{
	unsigned char *o = (unsigned char *)out;
	if (c < 0x80) {
		o[0] = (unsigned char)c;
		return 1;
	}
	if (c < 0x800) {
		o[0] = (unsigned char)(0xC0 | c >> 6);
		o[1] = (unsigned char)(0x80 | (c & 0x3F));
		return 2;
	}
	if (c < 0x10000) {
		o[0] = (unsigned char)(0xE0 | c >> 12);
		o[1] = (unsigned char)(0x80 | (c >> 6 & 0x3F));
		o[2] = (unsigned char)(0x80 | (c & 0x3F));
		return 3;
	}
	o[0] = (unsigned char)(0xF0 | (c >> 18 & 0x07));
	o[1] = (unsigned char)(0x80 | (c >> 12 & 0x3F));
	o[2] = (unsigned char)(0x80 | (c >> 6 & 0x3F));
	o[3] = (unsigned char)(0x80 | (c & 0x3F));
	return 4;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static int hexn(const char *p, int n, uint32_t *ret)
{
	uint32_t v = 0;
	for (int i = 0; i < n; i++) {
		int d = hexval(p[i]);
		if (d < 0)
			return -EINVAL;
		v = v << 4 | (uint32_t)d;
	}
	*ret = v;
	return 0;
}

int keel_cunescape_one(const char *p, uint32_t *ret, bool *ret_raw)
{
	static const char simple_from[] = "abfnrtv\\\"'s";
	static const char simple_to[] = "\a\b\f\n\r\t\v\\\"' ";
	const char *hit = *p ? strchr(simple_from, *p) : NULL;
	*ret_raw = false;
	if (hit) {
		*ret = (unsigned char)simple_to[hit - simple_from];
		return 1;
	}
	uint32_t v;
	switch (*p) {
	case 'x':
		if (hexn(p + 1, 2, &v) < 0 || v == 0)
			return -EINVAL;
		*ret = v;
		*ret_raw = true;
		return 3;
	case 'u':
		if (hexn(p + 1, 4, &v) < 0 || v == 0)
			return -EINVAL;
		*ret = v;
		return 5;
	case 'U':
		if (hexn(p + 1, 8, &v) < 0 || v == 0 || !keel_unichar_is_valid(v))
			return -EINVAL;
		*ret = v;
		return 9;
	case '0': case '1': case '2': case '3': case '4': case '5': case '6': case '7':
		for (int i = 0; i < 3; i++)
			if (p[i] < '0' || p[i] > '7')
				return -EINVAL;
		v = (uint32_t)(p[0] - '0') << 6 | (uint32_t)(p[1] - '0') << 3 | (uint32_t)(p[2] - '0');
		if (v == 0 || v > 255)
			return -EINVAL;
		*ret = v;
		*ret_raw = true;
		return 3;
	default:
		return -EINVAL;
	}
}

static int put_unescaped(struct keel_buf *b, uint32_t c, bool raw)
{
	if (raw)
		return keel_buf_putc(b, (char)c);
	char tmp[4];
	return keel_buf_append(b, tmp, keel_utf8_encode(tmp, c));
}

int keel_cunescape(const char *s, bool relax, char **ret)
{
	struct keel_buf b = KEEL_BUF_INIT;
	int r = 0;
	for (const char *f = s; *f; f++) {
		if (*f != '\\') {
			r = keel_buf_putc(&b, *f);
		} else if (!f[1]) {
			if (!relax) {
				r = -EINVAL;
				break;
			}
			r = keel_buf_putc(&b, '\\');
		} else {
			uint32_t u;
			bool raw;
			int k = keel_cunescape_one(f + 1, &u, &raw);
			if (k < 0) {
				if (!relax) {
					r = -EINVAL;
					break;
				}
				r = keel_buf_putc(&b, '\\');
			} else {
				f += k;
				r = put_unescaped(&b, u, raw);
			}
		}
		if (r < 0)
			break;
	}
	if (r < 0) {
		keel_buf_free(&b);
		return r;
	}
	*ret = keel_buf_steal(&b, NULL);
	return *ret ? 0 : -ENOMEM;
}

/* systemd's extract_first_word(), written from its documented behaviour: leading separators are
 * skipped; quotes may open anywhere in a word and are removed (UNQUOTE); a backslash escapes the
 * next character (decoded with CUNESCAPE), also inside quotes; the word ends at an unquoted
 * separator, after which further separators are skipped. */
int keel_extract_word(const char **p, char **ret, const char *separators, unsigned flags)
{
	struct keel_buf s = KEEL_BUF_INIT;
	bool backslash = false;
	char quote = 0;
	int r;

	if (!separators)
		separators = WHITESPACE;
	if (!*p)
		goto none;

	/* Skip leading separators; with DONT_COALESCE one separator is an empty word. */
	for (;; (*p)++) {
		char c = **p;
		if (!c) {
			*p = NULL;
			/* systemd returns an empty last word in this mode ("a," is "a", "") */
			if (flags & KEEL_EXTRACT_DONT_COALESCE_SEPARATORS)
				goto word;
			goto none;
		}
		if (!strchr(separators, c))
			break;
		if (flags & KEEL_EXTRACT_DONT_COALESCE_SEPARATORS) {
			(*p)++;
			goto word;
		}
	}
	for (;; (*p)++) {
		char c = **p;
		if (backslash) {
			backslash = false;
			if (!c) {
				if ((flags & KEEL_EXTRACT_UNESCAPE_RELAX) && (!quote || (flags & KEEL_EXTRACT_RELAX))) {
					if ((r = keel_buf_putc(&s, '\\')) < 0)
						goto fail;
					*p = NULL;
					goto word;
				}
				if (flags & KEEL_EXTRACT_RELAX) {
					*p = NULL;
					goto word;
				}
				r = -EINVAL;
				goto fail;
			}
			if (flags & (KEEL_EXTRACT_CUNESCAPE | KEEL_EXTRACT_UNESCAPE_SEPARATORS)) {
				uint32_t u;
				bool raw;
				int k = -EINVAL;
				if (flags & KEEL_EXTRACT_CUNESCAPE)
					k = keel_cunescape_one(*p, &u, &raw);
				if (k >= 0) {
					*p += k - 1;
					r = put_unescaped(&s, u, raw);
				} else if ((flags & KEEL_EXTRACT_UNESCAPE_SEPARATORS) &&
					   (strchr(separators, c) || c == '\\')) {
					r = keel_buf_putc(&s, c);
				} else if (flags & KEEL_EXTRACT_UNESCAPE_RELAX) {
					r = keel_buf_putc(&s, '\\');
					if (r == 0)
						r = keel_buf_putc(&s, c);
				} else {
					r = -EINVAL;
				}
			} else {
				r = keel_buf_putc(&s, c);
			}
			if (r < 0)
				goto fail;
			continue;
		}
		if (!c) {
			if (quote && !(flags & KEEL_EXTRACT_RELAX)) {
				r = -EINVAL;
				goto fail;
			}
			*p = NULL;
			goto word;
		}
		if (c == '\\' && !(flags & KEEL_EXTRACT_RETAIN_ESCAPE)) {
			backslash = true;
			continue;
		}
		if (quote) {
			if (c == quote) {
				quote = 0;
				continue;
			}
		} else if ((c == '\'' || c == '"') && (flags & KEEL_EXTRACT_UNQUOTE)) {
			quote = c;
			continue;
		} else if (strchr(separators, c)) {
			if (flags & KEEL_EXTRACT_DONT_COALESCE_SEPARATORS) {
				(*p)++;
				goto word;
			}
			while (**p && strchr(separators, **p))
				(*p)++;
			if (!**p)
				*p = NULL;
			goto word;
		}
		if ((r = keel_buf_putc(&s, c)) < 0)
			goto fail;
	}

word:
	if ((r = keel_buf_reserve(&s, 0)) < 0)
		goto fail;
	*ret = keel_buf_steal(&s, NULL);
	return 1;
none:
	*ret = NULL;
	return 0;
fail:
	keel_buf_free(&s);
	return r;
}

bool keel_env_name_is_valid(const char *s, size_t n)
{
	if (n == 0 || (s[0] >= '0' && s[0] <= '9'))
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_'))
			return false;
	}
	return true;
}

bool keel_env_assignment_is_valid(const char *s)
{
	const char *eq = strchr(s, '=');
	if (!eq || !keel_env_name_is_valid(s, (size_t)(eq - s)))
		return false;
	return keel_utf8_is_valid(eq + 1);
}

const char *keel_env_get(char *const *env, const char *name, size_t n)
{
	const char *found = NULL;
	for (size_t i = 0; env && env[i]; i++)
		if (strncmp(env[i], name, n) == 0 && env[i][n] == '=')
			found = env[i] + n + 1;
	return found;
}

char *keel_env_expand_word(const char *word, char *const *env)
{
	struct keel_buf b = KEEL_BUF_INIT;
	const char *p = word;
	int r = 0;
	while (*p && r == 0) {
		if (p[0] == '$' && p[1] == '$') {
			r = keel_buf_putc(&b, '$');
			p += 2;
		} else if (p[0] == '$' && p[1] == '{') {
			const char *name = p + 2;
			size_t n = strcspn(name, "}:");
			if (name[n] != '}') {
				/* "${A:-b}" is not supported for command lines and "${A" never ends:
				 * both stay literal, like systemd. */
				r = keel_buf_append(&b, p, 2);
				p += 2;
				continue;
			}
			const char *v = keel_env_get(env, name, n);
			if (v)
				r = keel_buf_puts(&b, v);
			p = name + n + 1;
		} else {
			r = keel_buf_putc(&b, *p++);
		}
	}
	if (r == 0)
		r = keel_buf_reserve(&b, 0);
	if (r < 0) {
		keel_buf_free(&b);
		return NULL;
	}
	return keel_buf_steal(&b, NULL);
}

int keel_exec_expand_argv(char *const *argv, char *const *env, char ***ret)
{
	char **out = NULL;
	int r = 0;
	for (size_t i = 0; argv && argv[i] && r == 0; i++) {
		const char *w = argv[i];
		if (w[0] == '$' && w[1] != '{' && w[1] != '$') {
			const char *v = keel_env_get(env, w + 1, strlen(w + 1));
			for (const char *p = v; p && r == 0;) {
				char *word;
				r = keel_extract_word(&p, &word, NULL, KEEL_EXTRACT_RELAX | KEEL_EXTRACT_UNQUOTE);
				if (r <= 0)
					break;
				r = keel_strv_consume(&out, word);
			}
			continue;
		}
		r = keel_strv_consume(&out, keel_env_expand_word(w, env));
	}
	if (r == 0 && !out) {
		out = keel_calloc(1, sizeof(char *));
		if (!out)
			r = -ENOMEM;
	}
	if (r < 0) {
		keel_strv_free(out);
		return r;
	}
	*ret = out;
	return 0;
}
