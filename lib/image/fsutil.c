/* File helpers for the image store: resolution that cannot leave a directory (openat2), atomic
 * small-file writes, and recursive removal that never follows symlinks. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/mem.h"
#include "base/str.h"
#include "base/sys.h"
#include "image/image-internal.h"

int open_beneath(int dirfd, const char *path, int flags, mode_t mode, uint64_t extra_resolve)
{
	struct open_how how = {
		.flags = (uint64_t)(flags | O_CLOEXEC),
		.mode = (flags & (O_CREAT | O_TMPFILE)) ? mode : 0,
		.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS | extra_resolve,
	};
	for (;;) {
		long fd = syscall(SYS_openat2, dirfd, path, &how, sizeof(how));
		if (fd >= 0)
			return (int)fd;
		if (errno != EINTR && errno != EAGAIN)
			return -errno;
	}
}

int read_file_beneath(int dirfd, const char *path, size_t max, char **ret, size_t *ret_len,
		      struct keel_err *err)
{
	int fd = open_beneath(dirfd, path, O_RDONLY | O_NOCTTY, 0, 0);
	if (fd < 0)
		return keel_err_errno(err, fd, "%s", path);
	struct stat st;
	int r = 0;
	char *buf = NULL;
	if (fstat(fd, &st) < 0) {
		r = keel_err_errno(err, -errno, "%s", path);
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		r = keel_err_set(err, -EINVAL, "%s: not a regular file", path);
		goto out;
	}
	if ((uint64_t)st.st_size > max) {
		r = keel_err_set(err, -EFBIG, "%s: %lld bytes is more than the %zu allowed", path,
				 (long long)st.st_size, max);
		goto out;
	}
	buf = keel_malloc((size_t)st.st_size + 1);
	if (!buf) {
		r = keel_err_set(err, -ENOMEM, "out of memory");
		goto out;
	}
	ssize_t n = keel_sys_pread_all(fd, buf, (size_t)st.st_size, 0);
	if (n < 0) {
		r = keel_err_errno(err, (int)n, "reading %s", path);
		goto out;
	}
	buf[n] = '\0';
	*ret = buf;
	buf = NULL;
	if (ret_len)
		*ret_len = (size_t)n;
out:
	keel_free(buf);
	close(fd);
	return r;
}

int write_file_atomic(int dirfd, const char *path, const void *data, size_t len, struct keel_err *err)
{
	char tmp[512];
	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp-%d", path, (int)getpid()) >= sizeof(tmp))
		return keel_err_set(err, -ENAMETOOLONG, "%s: name too long", path);
	int fd = keel_sys_openat(dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0)
		return keel_err_errno(err, fd, "creating %s", tmp);
	int r = keel_sys_write_all(fd, data, len);
	if (r == 0)
		r = keel_sys_fsync(fd);
	int rc = keel_sys_close(fd);
	if (r == 0)
		r = rc;
	if (r == 0 && renameat(dirfd, tmp, dirfd, path) < 0)
		r = -errno;
	if (r < 0) {
		unlinkat(dirfd, tmp, 0);
		return keel_err_errno(err, r, "writing %s", path);
	}
	/* The rename lives in path's own directory: that is the one to fsync. */
	const char *slash = strrchr(path, '/');
	char parent[512];
	snprintf(parent, sizeof(parent), "%.*s", slash ? (int)(slash - path) : 1, slash ? path : ".");
	int pfd = open_beneath(dirfd, parent, O_RDONLY | O_DIRECTORY, 0, 0);
	if (pfd < 0)
		return keel_err_errno(err, pfd, "opening the directory of %s", path);
	r = fsync(pfd) < 0 ? -errno : 0;
	close(pfd);
	if (r < 0)
		return keel_err_errno(err, r, "fsync of the directory of %s", path);
	return 0;
}

/* Names in one directory, read in full before anything is removed (so removal can go on with a
 * single fd open per call, whatever the depth). */
static int list_dir(int dirfd, const char *rel, char ***ret)
{
	int fd = open_beneath(dirfd, rel, O_RDONLY | O_DIRECTORY, 0, RESOLVE_NO_SYMLINKS);
	if (fd < 0)
		return fd;
	DIR *d = fdopendir(fd);
	if (!d) {
		int e = -errno;
		close(fd);
		return e;
	}
	char **names = NULL;
	struct dirent *e;
	int r = 0;
	while ((e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		if ((r = keel_strv_push(&names, e->d_name)) < 0)
			break;
	}
	closedir(d);
	if (r < 0) {
		keel_strv_free(names);
		return r;
	}
	*ret = names;
	return 0;
}

/* Below dirfd, with paths relative to it: the depth of a tree costs stack, never fds. */
static int rm_rf_rel(int dirfd, struct keel_buf *path)
{
	if (unlinkat(dirfd, path->data, 0) == 0 || errno == ENOENT)
		return 0;
	if (errno != EISDIR)
		return -errno;
	char **names = NULL;
	int r = list_dir(dirfd, path->data, &names);
	if (r == -ENOENT)
		return 0;
	if (r < 0)
		return r;
	size_t len = path->len;
	for (size_t i = 0; names && names[i] && r == 0; i++) {
		if (keel_buf_putc(path, '/') < 0 || keel_buf_puts(path, names[i]) < 0)
			r = -ENOMEM;
		else
			r = rm_rf_rel(dirfd, path);
		keel_buf_truncate(path, len);
	}
	keel_strv_free(names);
	if (r == 0 && unlinkat(dirfd, path->data, AT_REMOVEDIR) < 0 && errno != ENOENT)
		r = -errno;
	return r;
}

int rm_rf_at(int dirfd, const char *name)
{
	struct keel_buf path = KEEL_BUF_INIT;
	int r = keel_buf_puts(&path, name);
	if (r == 0)
		r = rm_rf_rel(dirfd, &path);
	keel_buf_free(&path);
	return r;
}

static uint64_t du_rel(int dirfd, struct keel_buf *path)
{
	struct stat st;
	if (fstatat(dirfd, path->data, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return 0;
	if (!S_ISDIR(st.st_mode))
		return S_ISREG(st.st_mode) ? (uint64_t)st.st_size : 0;
	char **names = NULL;
	if (list_dir(dirfd, path->data, &names) < 0)
		return 0;
	uint64_t total = 0;
	size_t len = path->len;
	for (size_t i = 0; names && names[i]; i++) {
		if (keel_buf_putc(path, '/') == 0 && keel_buf_puts(path, names[i]) == 0)
			total += du_rel(dirfd, path);
		keel_buf_truncate(path, len);
	}
	keel_strv_free(names);
	return total;
}

uint64_t du_at(int dirfd, const char *name)
{
	struct keel_buf path = KEEL_BUF_INIT;
	uint64_t total = keel_buf_puts(&path, name) == 0 ? du_rel(dirfd, &path) : 0;
	keel_buf_free(&path);
	return total;
}

int make_tmp_dir(struct keel_image_store *s, const char *prefix, char *out, size_t size,
		 struct keel_err *err)
{
	char path[4096];
	if ((size_t)snprintf(path, sizeof(path), "%s/" KEEL_IMAGE_TMP "/%sXXXXXX", s->root, prefix) >=
	    sizeof(path))
		return keel_err_set(err, -ENAMETOOLONG, "store root path too long");
	if (!mkdtemp(path))
		return keel_err_errno(err, -errno, "creating a temporary directory in %s/" KEEL_IMAGE_TMP,
				      s->root);
	size_t rl = strlen(s->root) + 1;
	if ((size_t)snprintf(out, size, "%s", path + rl) >= size) {
		rmdir(path);
		return keel_err_set(err, -ENAMETOOLONG, "temporary path too long");
	}
	return 0;
}

int image_json_dump(const json_t *v, size_t flags, char **ret, size_t *ret_len)
{
	size_t need = json_dumpb(v, NULL, 0, flags);
	if (need == 0)
		return -ENOMEM;
	char *buf = keel_malloc(need + 1);
	if (!buf)
		return -ENOMEM;
	if (json_dumpb(v, buf, need, flags) != need) {
		keel_free(buf);
		return -ENOMEM;
	}
	buf[need] = '\0';
	*ret = buf;
	if (ret_len)
		*ret_len = need;
	return 0;
}
