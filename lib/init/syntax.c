#include "init/syntax.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/mem.h"
#include "base/sys.h"
#include "init/words.h"

#define WHITESPACE " \t\n\r"
#define BOM "\xef\xbb\xbf"

enum { EOL_NONE = 0, EOL_NUL = 1, EOL_LF = 2, EOL_CR = 4 };

static int eol_kind(char c)
{
	return c == '\n' ? EOL_LF : c == '\r' ? EOL_CR : c == '\0' ? EOL_NUL : EOL_NONE;
}

/* systemd's read_line(): the next line's content starts at *pos; a run of end-of-line bytes
 * ends it as long as no kind repeats and no NUL came before. 1 and the content, 0 at the end,
 * -ENOBUFS when the content reaches the limit. */
static int next_line(const char *data, size_t len, size_t *pos, const char **ret, size_t *ret_len)
{
	size_t start = *pos, p = *pos, n = 0, count = 0;
	int prev = EOL_NONE;
	for (;;) {
		if (n >= KEEL_SYNTAX_LINE_MAX)
			return -ENOBUFS;
		if (p >= len)
			break;
		int eol = eol_kind(data[p]);
		if ((prev & EOL_NUL) || (eol == EOL_NONE && prev != EOL_NONE) ||
		    (eol != EOL_NONE && (prev & eol)))
			break;
		p++;
		count++;
		if (eol != EOL_NONE) {
			prev |= eol;
			continue;
		}
		n++;
	}
	*pos = p;
	if (count == 0)
		return 0;
	*ret = data + start;
	*ret_len = n;
	return 1;
}

bool keel_string_is_safe(const char *s)
{
	for (const unsigned char *t = (const unsigned char *)s; *t; t++)
		if (*t < ' ' || *t == 0x7f || *t == '"' || *t == '\'' || *t == '\\')
			return false;
	return true;
}

static char *strip(char *s)
{
	s += strspn(s, WHITESPACE);
	size_t n = strlen(s);
	while (n > 0 && strchr(WHITESPACE, s[n - 1]))
		s[--n] = '\0';
	return s;
}

struct state {
	const char *file, *unit;
	const struct keel_syntax_ops *ops;
	void *userdata;
	const struct keel_diag_sink *sink;
	struct keel_buf section;
	bool have_section, section_ignored;
	unsigned section_line;
};

static int parse_logical(struct state *st, unsigned line, char *l)
{
	l = strip(l);
	if (!*l)
		return 0;
	if (!keel_utf8_is_valid(l)) {
		char *esc = keel_utf8_escape_invalid(l);
		keel_diag_emit(st->sink, KEEL_DIAG_WARNING, st->unit, st->file, line,
			       "String is not UTF-8 clean, ignoring assignment: %s", esc ? esc : "");
		keel_free(esc);
		return -EINVAL;
	}
	if (l[0] == '[') {
		size_t k = strlen(l);
		if (l[k - 1] != ']' || k < 2) {
			keel_diag_emit(st->sink, KEEL_DIAG_ERR, st->unit, st->file, line,
				       "Invalid section header '%s'", l);
			return -EBADMSG;
		}
		l[k - 1] = '\0';
		const char *name = l + 1;
		if (!keel_string_is_safe(name)) {
			l[k - 1] = ']';
			keel_diag_emit(st->sink, KEEL_DIAG_ERR, st->unit, st->file, line,
				       "Bad characters in section header '%s'", l);
			return -EBADMSG;
		}
		enum keel_section_kind kind = st->ops->section(st->userdata, name);
		if (kind != KEEL_SECTION_KNOWN) {
			if (kind == KEEL_SECTION_UNKNOWN)
				keel_diag_emit(st->sink, KEEL_DIAG_WARNING, st->unit, st->file, line,
					       "Unknown section '%s'. Ignoring.", name);
			st->have_section = false;
			st->section_ignored = true;
			st->section_line = 0;
			return 0;
		}
		keel_buf_reset(&st->section);
		if (keel_buf_puts(&st->section, name) < 0)
			return -ENOMEM;
		st->have_section = true;
		st->section_ignored = false;
		st->section_line = line;
		return 0;
	}
	if (!st->have_section) {
		if (!st->section_ignored)
			keel_diag_emit(st->sink, KEEL_DIAG_WARNING, st->unit, st->file, line,
				       "Assignment outside of section. Ignoring.");
		return 0;
	}
	char *e = strchr(l, '=');
	if (!e) {
		keel_diag_emit(st->sink, KEEL_DIAG_WARNING, st->unit, st->file, line,
			       "Missing '=', ignoring line.");
		return 0;
	}
	if (e == l) {
		keel_diag_emit(st->sink, KEEL_DIAG_WARNING, st->unit, st->file, line,
			       "Missing key name before '=', ignoring line.");
		return 0;
	}
	*e = '\0';
	struct keel_syntax_item item = {
		.file = st->file,
		.line = line,
		.section = st->section.data,
		.section_line = st->section_line,
		.key = strip(l),
		.value = strip(e + 1),
	};
	return st->ops->assign(st->userdata, &item);
}

/* Whether the text ends in a backslash that is not itself escaped. */
static bool ends_escaped(const char *p)
{
	bool escaped = false;
	for (; *p; p++)
		escaped = escaped ? false : *p == '\\';
	return escaped;
}

int keel_syntax_parse(const char *file, const char *unit, const char *data, size_t len,
		      const struct keel_syntax_ops *ops, void *userdata,
		      const struct keel_diag_sink *sink)
{
	struct state st = {
		.file = file, .unit = unit, .ops = ops, .userdata = userdata, .sink = sink,
		.section = KEEL_BUF_INIT,
	};
	struct keel_buf buf = KEEL_BUF_INIT, cont = KEEL_BUF_INIT;
	bool in_cont = false, bom_seen = false;
	unsigned line = 0;
	size_t pos = 0;
	int r = 0;

	for (;;) {
		const char *text;
		size_t n;
		r = next_line(data, len, &pos, &text, &n);
		if (r == 0)
			break;
		if (r < 0) {
			keel_diag_emit(sink, KEEL_DIAG_ERR, unit, file, line + 1, "Line too long");
			goto out;
		}
		line++;
		keel_buf_reset(&buf);
		if (keel_buf_append(&buf, text, n) < 0) {
			r = -ENOMEM;
			goto out;
		}
		char *l = buf.data;
		const char *first = l + strspn(l, WHITESPACE);
		if (*first == '#' || *first == ';')
			continue;
		if (!bom_seen && strncmp(l, BOM, 3) == 0) {
			l += 3;
			bom_seen = true;
		}
		char *p;
		if (in_cont) {
			if (cont.len + strlen(l) > KEEL_SYNTAX_LINE_MAX) {
				keel_diag_emit(sink, KEEL_DIAG_ERR, unit, file, line,
					       "Continuation line too long");
				r = -ENOBUFS;
				goto out;
			}
			if (keel_buf_puts(&cont, l) < 0) {
				r = -ENOMEM;
				goto out;
			}
			p = cont.data;
		} else {
			p = l;
		}
		if (ends_escaped(p)) {
			p[strlen(p) - 1] = ' ';
			if (!in_cont) {
				keel_buf_reset(&cont);
				if (keel_buf_puts(&cont, l) < 0) {
					r = -ENOMEM;
					goto out;
				}
				in_cont = true;
			}
			continue;
		}
		r = parse_logical(&st, line, p);
		if (r < 0)
			goto out;
		in_cont = false;
	}
	r = 0;
	if (in_cont)
		r = parse_logical(&st, ++line, cont.data);
out:
	keel_buf_free(&buf);
	keel_buf_free(&cont);
	keel_buf_free(&st.section);
	return r < 0 ? r : 0;
}

int keel_syntax_read_file(const char *path, char **ret, size_t *ret_len)
{
	/* O_NONBLOCK: a FIFO where a drop-in should be must not hang the loader. */
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0)
		return -errno;
	struct keel_buf b = KEEL_BUF_INIT;
	int r = 0;
	struct stat st;
	if (fstat(fd, &st) < 0) {
		r = -errno;
		goto out;
	}
	if (S_ISDIR(st.st_mode)) {
		r = -EISDIR;
		goto out;
	}
	if (!S_ISREG(st.st_mode) && !S_ISCHR(st.st_mode)) {
		r = -EBADFD;
		goto out;
	}
	for (;;) {
		if (b.len >= KEEL_SYNTAX_FILE_MAX) {
			r = -EFBIG;
			goto out;
		}
		r = keel_buf_reserve(&b, 16384);
		if (r < 0)
			goto out;
		ssize_t n = read(fd, b.data + b.len, b.cap - b.len - 1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			r = -errno;
			goto out;
		}
		if (n == 0)
			break;
		b.len += (size_t)n;
		b.data[b.len] = '\0';
	}
	r = keel_buf_reserve(&b, 0); /* an empty file still gets a buffer */
	if (r < 0)
		goto out;
	*ret_len = b.len;
	*ret = keel_buf_steal(&b, NULL);
	if (!*ret)
		r = -ENOMEM;
out:
	close(fd);
	keel_buf_free(&b);
	return r;
}
