#include "init/logsink.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/clock.h"
#include "base/mem.h"

struct file_sink {
	char *dir;
	uint64_t max_bytes;
};

int keel_log_priority_prefix(const char **msg, size_t *len, int def)
{
	const char *m = *msg;
	if (*len >= 3 && m[0] == '<' && m[1] >= '0' && m[1] <= '7' && m[2] == '>') {
		*msg = m + 3;
		*len -= 3;
		return m[1] - '0';
	}
	return def;
}

static int unit_path(const struct file_sink *fs, const char *unit, char *out, size_t size)
{
	if (!unit || !*unit || strchr(unit, '/') || unit[0] == '.')
		return -EINVAL;
	int n = snprintf(out, size, "%s/%s.log", fs->dir, unit);
	return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

/* Keep the newer half of a file that grew past the limit (copy, then rename over). */
static void shrink(const char *path, uint64_t keep)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	struct stat st;
	if (fstat(fd, &st) < 0 || (uint64_t)st.st_size <= keep) {
		close(fd);
		return;
	}
	char tmp[4200];
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	int out = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
	if (out < 0) {
		close(fd);
		return;
	}
	off_t off = st.st_size - (off_t)keep;
	char buf[8192];
	bool line_start = false;
	ssize_t n;
	while ((n = pread(fd, buf, sizeof(buf), off)) > 0) {
		off += n;
		char *p = buf;
		size_t len = (size_t)n;
		if (!line_start) {
			char *nl = memchr(buf, '\n', len);
			if (!nl)
				continue;
			len -= (size_t)(nl + 1 - buf);
			p = nl + 1;
			line_start = true;
		}
		if (write(out, p, len) != (ssize_t)len)
			break;
	}
	close(fd);
	close(out);
	rename(tmp, path);
}

static void file_write(void *impl, const struct keel_log_record *rec)
{
	struct file_sink *fs = impl;
	char path[4096];
	if (unit_path(fs, rec->unit, path, sizeof(path)) < 0)
		return;
	char ts[KEEL_RFC3339_MAX];
	keel_fmt_rfc3339((int64_t)rec->realtime_usec * 1000, 0, ts, sizeof(ts));
	struct keel_buf b = KEEL_BUF_INIT;
	int r;
	if (rec->pid > 0)
		r = keel_buf_printf(&b, "%s <%d> %s[%d]: ", ts, rec->priority,
				    rec->identifier ? rec->identifier : "?", (int)rec->pid);
	else
		r = keel_buf_printf(&b, "%s <%d> keel-init: ", ts, rec->priority);
	if (r == 0)
		r = keel_buf_append(&b, rec->msg, rec->len);
	if (r == 0)
		r = keel_buf_putc(&b, '\n');
	if (r == 0) {
		int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0640);
		if (fd >= 0) {
			ssize_t w = write(fd, b.data, b.len);
			(void)w;
			struct stat st;
			bool big = fstat(fd, &st) == 0 && (uint64_t)st.st_size > fs->max_bytes;
			close(fd);
			if (big)
				shrink(path, fs->max_bytes / 2);
		}
	}
	keel_buf_free(&b);
}

/* Lines look like "TS <P> IDENT[PID]: MSG"; hand back the parts. */
static void emit_line(const char *unit, char *line, keel_logsink_tail_fn fn, void *ud)
{
	struct keel_log_record rec = {.unit = unit, .priority = 6, .msg = line, .len = strlen(line)};
	char *sp = strchr(line, ' ');
	if (sp) {
		*sp = '\0';
		int64_t ns;
		if (keel_parse_rfc3339(line, &ns) == 0)
			rec.realtime_usec = (uint64_t)ns / 1000;
		char *rest = sp + 1;
		if (rest[0] == '<' && rest[1] >= '0' && rest[1] <= '7' && rest[2] == '>' && rest[3] == ' ') {
			rec.priority = rest[1] - '0';
			rest += 4;
		}
		char *colon = strstr(rest, ": ");
		if (colon) {
			*colon = '\0';
			char *br = strchr(rest, '[');
			if (br) {
				*br = '\0';
				rec.pid = atoi(br + 1);
			}
			rec.identifier = rest;
			rest = colon + 2;
		}
		rec.msg = rest;
		rec.len = strlen(rest);
	}
	fn(ud, &rec);
}

static int file_tail(void *impl, const char *unit, unsigned n, keel_logsink_tail_fn fn, void *ud)
{
	struct file_sink *fs = impl;
	char path[4096];
	int r = unit_path(fs, unit, path, sizeof(path));
	if (r < 0)
		return r;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? 0 : -errno;
	struct stat st;
	if (fstat(fd, &st) < 0) {
		close(fd);
		return -errno;
	}
	/* Read back from the end until n newlines are in the window. */
	size_t want = 4096;
	char *buf = NULL;
	size_t len = 0;
	for (;;) {
		size_t size = (size_t)KEEL_MIN((uint64_t)st.st_size, (uint64_t)want);
		char *nb = keel_realloc(buf, size + 1);
		if (!nb) {
			keel_free(buf);
			close(fd);
			return -ENOMEM;
		}
		buf = nb;
		ssize_t got = pread(fd, buf, size, st.st_size - (off_t)size);
		if (got < 0) {
			keel_free(buf);
			close(fd);
			return -errno;
		}
		len = (size_t)got;
		buf[len] = '\0';
		unsigned lines = 0;
		for (size_t i = 0; i < len; i++)
			lines += buf[i] == '\n';
		if (lines > n || size == (size_t)st.st_size || want > ((size_t)1 << 24))
			break;
		want *= 4;
	}
	close(fd);
	/* Skip to the start of the last n lines. */
	size_t start = len, seen = 0;
	if (start > 0 && buf[start - 1] == '\n')
		start--;
	while (start > 0) {
		if (buf[start - 1] == '\n' && ++seen == n)
			break;
		start--;
	}
	char *p = buf + start;
	while (*p) {
		char *nl = strchr(p, '\n');
		if (nl)
			*nl = '\0';
		emit_line(unit, p, fn, ud);
		if (!nl)
			break;
		p = nl + 1;
	}
	keel_free(buf);
	return 0;
}

static void file_free(void *impl)
{
	struct file_sink *fs = impl;
	keel_free(fs->dir);
	keel_free(fs);
}

static const struct keel_logsink_ops file_ops = {
	.write = file_write,
	.tail = file_tail,
	.free = file_free,
};

int keel_logsink_file_new(const char *dir, uint64_t max_bytes, struct keel_logsink *ret)
{
	if (mkdir(dir, 0755) < 0 && errno != EEXIST)
		return -errno;
	struct file_sink *fs = keel_calloc(1, sizeof(*fs));
	if (!fs || !(fs->dir = keel_strdup(dir))) {
		keel_free(fs);
		return -ENOMEM;
	}
	fs->max_bytes = max_bytes ? max_bytes : (uint64_t)8 << 20;
	ret->ops = &file_ops;
	ret->impl = fs;
	return 0;
}

void keel_logsink_free(struct keel_logsink *s)
{
	if (s && s->ops && s->ops->free)
		s->ops->free(s->impl);
	if (s)
		*s = (struct keel_logsink){0};
}
