/* Everything lib/image does with libarchive: extracting an image archive, unpacking a layer for
 * overlayfs (with OCI whiteouts converted), and the digest of a layer's uncompressed content.
 *
 * Entries are checked before libarchive writes them: paths are cleaned ("./", "//", a leading
 * "/" dropped) and refused with "..", parent directories are created component by component
 * with openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS), so no entry reaches outside its
 * directory or through a symlink an earlier entry made, and hardlink targets must already be
 * inside. libarchive's own checks (ARCHIVE_EXTRACT_SECURE_SYMLINKS, _SECURE_NODOTDOT) stay on
 * as a second line. */
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/mem.h"
#include "base/str.h"
#include "image/image-internal.h"

#define READ_BLOCK (64 * 1024)

/* Clean an entry path into out: drop a leading "/", "." components and empty ones. "" is the
 * root. -EPERM for "..", -ENAMETOOLONG past PATH_MAX. */
static int clean_path(const char *in, struct keel_buf *out)
{
	keel_buf_reset(out);
	const char *p = in;
	while (*p) {
		while (*p == '/')
			p++;
		const char *end = strchrnul(p, '/');
		size_t n = (size_t)(end - p);
		if (n == 2 && p[0] == '.' && p[1] == '.')
			return -EPERM;
		if (n > 0 && !(n == 1 && p[0] == '.')) {
			if ((out->len && keel_buf_putc(out, '/') < 0) || keel_buf_append(out, p, n) < 0)
				return -ENOMEM;
		}
		p = end;
	}
	if (out->len >= 4096)
		return -ENAMETOOLONG;
	if (!out->data && keel_buf_reserve(out, 1) < 0)
		return -ENOMEM;
	return 0;
}

/* Open directory rel below rootfd (O_RDONLY), creating missing components with mode 0755 and
 * refusing (-EPERM) to pass through a symlink. Returns the fd or a negative code. */
static int ensure_dir(int rootfd, const char *rel)
{
	int cur = fcntl(rootfd, F_DUPFD_CLOEXEC, 3);
	if (cur < 0)
		return -errno;
	const char *p = rel;
	char comp[256];
	while (*p) {
		const char *end = strchrnul(p, '/');
		size_t n = (size_t)(end - p);
		if (n >= sizeof(comp)) {
			close(cur);
			return -ENAMETOOLONG;
		}
		memcpy(comp, p, n);
		comp[n] = '\0';
		int fd = open_beneath(cur, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW, 0, RESOLVE_NO_SYMLINKS);
		if (fd == -ENOENT) {
			if (mkdirat(cur, comp, 0755) < 0 && errno != EEXIST) {
				fd = -errno;
			} else {
				fd = open_beneath(cur, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW, 0,
						  RESOLVE_NO_SYMLINKS);
			}
		}
		struct stat st;
		if (fd == -ENOTDIR && fstatat(cur, comp, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode))
			fd = -ELOOP;
		close(cur);
		if (fd == -ELOOP || fd == -EXDEV)
			return -EPERM;
		if (fd < 0)
			return fd;
		cur = fd;
		p = *end ? end + 1 : end;
	}
	return cur;
}

/* The parent part of a cleaned path ("a/b/c" -> "a/b", "c" -> ""), into out. */
static int parent_of(const char *rel, struct keel_buf *out)
{
	keel_buf_reset(out);
	const char *slash = strrchr(rel, '/');
	if (slash && keel_buf_append(out, rel, (size_t)(slash - rel)) < 0)
		return -ENOMEM;
	return keel_buf_reserve(out, 1);
}

static const char *base_of(const char *rel)
{
	const char *slash = strrchr(rel, '/');
	return slash ? slash + 1 : rel;
}

static const char *entry_path(struct archive_entry *e)
{
	const char *p = archive_entry_pathname(e);
	return p ? p : archive_entry_pathname_utf8(e);
}

static int copy_data(struct archive *a, struct archive *w, struct keel_err *err, const char *rel)
{
	for (;;) {
		const void *buf;
		size_t size;
		la_int64_t off;
		int r = archive_read_data_block(a, &buf, &size, &off);
		if (r == ARCHIVE_EOF)
			return 0;
		if (r < ARCHIVE_OK)
			return keel_err_set(err, -KEEL_ECORRUPT, "%s: %s", rel, archive_error_string(a));
		if (archive_write_data_block(w, buf, size, off) < ARCHIVE_OK)
			return keel_err_set(err, -EIO, "%s: %s", rel, archive_error_string(w));
	}
}

/* Read side for both extractions: tar (ustar, pax, GNU) with the compressions images use. The
 * filters are built in (zlib, libzstd, liblzma, libbz2), never external programs. */
static struct archive *open_tar(int fd, bool archive_filters, struct keel_err *err)
{
	struct archive *a = archive_read_new();
	if (!a) {
		keel_err_set(err, -ENOMEM, "out of memory");
		return NULL;
	}
	archive_read_support_filter_gzip(a);
	archive_read_support_filter_zstd(a);
	if (archive_filters) {
		archive_read_support_filter_xz(a);
		archive_read_support_filter_bzip2(a);
	}
	archive_read_support_format_tar(a);
	archive_read_support_format_gnutar(a);
	if (archive_read_open_fd(a, fd, READ_BLOCK) != ARCHIVE_OK) {
		keel_err_set(err, -KEEL_ECORRUPT, "not a tar archive: %s", archive_error_string(a));
		archive_read_free(a);
		return NULL;
	}
	return a;
}

/* Drop the xattrs overlayfs interprets (trusted.overlay.*): an image must not be able to make
 * its own whiteouts, opaque directories or redirects except through the OCI markers. */
static int filter_xattrs(struct archive_entry *e)
{
	if (archive_entry_xattr_count(e) == 0)
		return 0;
	struct kept {
		char *name;
		void *value;
		size_t size;
	} *keep = keel_calloc((size_t)archive_entry_xattr_count(e), sizeof(*keep));
	if (!keep)
		return -ENOMEM;
	size_t n = 0;
	bool dropped = false;
	const char *name;
	const void *value;
	size_t size;
	int r = 0;
	archive_entry_xattr_reset(e);
	while (archive_entry_xattr_next(e, &name, &value, &size) == ARCHIVE_OK) {
		if (keel_startswith(name, "trusted.overlay.")) {
			dropped = true;
			continue;
		}
		keep[n].name = keel_strdup(name);
		keep[n].value = keel_memdup(value ? value : "", size ? size : 1);
		keep[n].size = size;
		if (!keep[n].name || !keep[n].value) {
			keel_free(keep[n].name);
			keel_free(keep[n].value);
			r = -ENOMEM;
			break;
		}
		n++;
	}
	if (r == 0 && dropped) {
		archive_entry_xattr_clear(e);
		for (size_t i = 0; i < n; i++)
			archive_entry_xattr_add_entry(e, keep[i].name, keep[i].value, keep[i].size);
	}
	for (size_t i = 0; i < n; i++) {
		keel_free(keep[i].name);
		keel_free(keep[i].value);
	}
	keel_free(keep);
	return r;
}

struct extract {
	struct archive *a, *w;
	char *root;     /* realpath of the destination */
	int rootfd;
	bool layer;     /* unpacking a layer (whiteouts, ownership, devices) */
	struct keel_buf rel, parent, full, link;
};

static int set_full(struct extract *x, const char *rel)
{
	keel_buf_reset(&x->full);
	if (keel_buf_puts(&x->full, x->root) < 0 || (*rel && (keel_buf_putc(&x->full, '/') < 0 ||
							      keel_buf_puts(&x->full, rel) < 0)))
		return -ENOMEM;
	return 0;
}

/* ".wh..wh..opq" and ".wh.NAME" (image-spec layer.md "Whiteouts") as overlayfs spells them. */
static int apply_whiteout(struct extract *x, const char *rel, const char *base, struct keel_err *err)
{
	int r = parent_of(rel, &x->parent);
	if (r < 0)
		return keel_err_set(err, r, "out of memory");
	int dfd = ensure_dir(x->rootfd, x->parent.data);
	if (dfd == -EPERM)
		return keel_err_set(err, -EPERM, "whiteout \"%.200s\": path goes through a symlink", rel);
	if (dfd < 0)
		return keel_err_errno(err, dfd, "whiteout \"%.200s\": cannot open its directory", rel);
	if (strcmp(base, ".wh..wh..opq") == 0) {
		if (fsetxattr(dfd, "trusted.overlay.opaque", "y", 1, 0) < 0)
			r = keel_err_errno(err, -errno, "%s: setting trusted.overlay.opaque", rel);
	} else if (!keel_startswith(base, ".wh..wh.")) {
		/* Other ".wh..wh." names are aufs bookkeeping with no meaning here. */
		const char *victim = base + 4;
		if (!*victim || !strcmp(victim, ".") || !strcmp(victim, "..")) {
			r = keel_err_set(err, -EPERM, "%s: invalid whiteout", rel);
		} else {
			/* Whatever this layer itself put there goes (the whiteout is the later entry). */
			int rr = rm_rf_at(dfd, victim);
			if (rr < 0)
				r = keel_err_errno(err, rr, "%s: removing %s", rel, victim);
			else if (mknodat(dfd, victim, S_IFCHR | 0, makedev(0, 0)) < 0)
				r = keel_err_errno(err, -errno, "%s: creating the overlay whiteout", rel);
		}
	}
	close(dfd);
	return r;
}

static int extract_entry(struct extract *x, struct archive_entry *e, struct keel_err *err)
{
	const char *path = entry_path(e);
	if (!path)
		return keel_err_set(err, -KEEL_ECORRUPT, "an entry has no usable path name");
	int r = clean_path(path, &x->rel);
	if (r == -EPERM)
		return keel_err_set(err, -EPERM, "entry \"%.200s\": path leaves the extraction directory", path);
	if (r < 0)
		return keel_err_set(err, r, "entry \"%.200s\": %s", path, keel_strerror(r));
	const char *rel = x->rel.data;
	const char *base = base_of(rel);
	mode_t type = archive_entry_filetype(e);
	const char *hardlink = archive_entry_hardlink(e);

	if (x->layer && keel_startswith(base, ".wh."))
		return apply_whiteout(x, rel, base, err);

	if (!x->layer && !hardlink && type != AE_IFREG && type != AE_IFDIR && type != AE_IFLNK)
		return keel_err_set(err, -EPERM, "entry \"%.200s\": not a file, directory or symlink", path);
	if (!*rel && type != AE_IFDIR)
		return keel_err_set(err, -EPERM, "entry \"%.200s\": the root must be a directory", path);

	if (*rel) {
		if ((r = parent_of(rel, &x->parent)) < 0)
			return keel_err_set(err, r, "out of memory");
		int dfd = ensure_dir(x->rootfd, x->parent.data);
		if (dfd == -EPERM)
			return keel_err_set(err, -EPERM, "entry \"%.200s\": path goes through a symlink", path);
		if (dfd < 0)
			return keel_err_errno(err, dfd, "entry \"%.200s\": cannot create its directory", path);
		close(dfd);
	}
	if (hardlink) {
		r = clean_path(hardlink, &x->link);
		if (r == 0 && !*x->link.data)
			r = -EPERM;
		if (r < 0)
			return keel_err_set(err, r == -EPERM ? -EPERM : r,
					    "entry \"%.200s\": hardlink target \"%.200s\" is outside", path, hardlink);
		int tfd = open_beneath(x->rootfd, x->link.data, O_PATH | O_NOFOLLOW, 0, RESOLVE_NO_SYMLINKS);
		struct stat st;
		if (tfd < 0 || fstat(tfd, &st) < 0 || S_ISDIR(st.st_mode)) {
			if (tfd >= 0)
				close(tfd);
			return keel_err_set(err, -EPERM,
					    "entry \"%.200s\": hardlink target \"%.200s\" is not a file extracted "
					    "before it", path, hardlink);
		}
		close(tfd);
		keel_buf_reset(&x->full);
		if (keel_buf_puts(&x->full, x->root) < 0 || keel_buf_putc(&x->full, '/') < 0 ||
		    keel_buf_puts(&x->full, x->link.data) < 0)
			return keel_err_set(err, -ENOMEM, "out of memory");
		archive_entry_copy_hardlink(e, x->full.data);
	}
	if (x->layer && (r = filter_xattrs(e)) < 0)
		return keel_err_set(err, r, "out of memory");
	if (set_full(x, rel) < 0)
		return keel_err_set(err, -ENOMEM, "out of memory");
	archive_entry_copy_pathname(e, x->full.data);
	if (archive_write_header(x->w, e) != ARCHIVE_OK)
		return keel_err_set(err, -EPERM, "entry \"%.200s\": %s", path, archive_error_string(x->w));
	if (archive_entry_size(e) > 0 && (r = copy_data(x->a, x->w, err, path)) < 0)
		return r;
	if (archive_write_finish_entry(x->w) != ARCHIVE_OK)
		return keel_err_set(err, -EIO, "entry \"%.200s\": %s", path, archive_error_string(x->w));
	return 0;
}

static int extract(int fd, const char *dest, bool layer, struct keel_err *err)
{
	struct extract x = {.rootfd = -1, .layer = layer, .rel = KEEL_BUF_INIT, .parent = KEEL_BUF_INIT,
			    .full = KEEL_BUF_INIT, .link = KEEL_BUF_INIT};
	int r = 0;
	/* libarchive's symlink check looks at every component, the destination's too. */
	x.root = realpath(dest, NULL);
	if (!x.root)
		return keel_err_errno(err, -errno, "%s", dest);
	x.rootfd = open(x.root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (x.rootfd < 0) {
		r = keel_err_errno(err, -errno, "%s", x.root);
		goto out;
	}
	if (lseek(fd, 0, SEEK_SET) < 0) {
		r = keel_err_errno(err, -errno, "seeking");
		goto out;
	}
	if (!(x.a = open_tar(fd, !layer, err))) {
		r = err ? err->code : -KEEL_ECORRUPT;
		goto out;
	}
	x.w = archive_write_disk_new();
	if (!x.w) {
		r = keel_err_set(err, -ENOMEM, "out of memory");
		goto out;
	}
	int flags = ARCHIVE_EXTRACT_SECURE_SYMLINKS | ARCHIVE_EXTRACT_SECURE_NODOTDOT;
	if (layer)
		flags |= ARCHIVE_EXTRACT_OWNER | ARCHIVE_EXTRACT_PERM | ARCHIVE_EXTRACT_TIME |
			 ARCHIVE_EXTRACT_XATTR;
	/* No archive_write_disk_set_standard_lookup: ownership stays numeric, as the image says,
	 * never mapped through the host's user names. */
	archive_write_disk_set_options(x.w, flags);
	for (;;) {
		struct archive_entry *e;
		int rr = archive_read_next_header(x.a, &e);
		if (rr == ARCHIVE_EOF)
			break;
		if (rr < ARCHIVE_WARN) {
			r = keel_err_set(err, -KEEL_ECORRUPT, "reading the tar stream: %s",
					 archive_error_string(x.a));
			goto out;
		}
		if ((r = extract_entry(&x, e, err)) < 0)
			goto out;
	}
	/* Closing applies directory modes and times deferred until their contents were written. */
	if (archive_write_close(x.w) != ARCHIVE_OK)
		r = keel_err_set(err, -EIO, "finishing the extraction: %s", archive_error_string(x.w));
out:
	if (x.w)
		archive_write_free(x.w);
	if (x.a)
		archive_read_free(x.a);
	if (x.rootfd >= 0)
		close(x.rootfd);
	free(x.root);
	keel_buf_free(&x.rel);
	keel_buf_free(&x.parent);
	keel_buf_free(&x.full);
	keel_buf_free(&x.link);
	return r;
}

int extract_archive(int fd, const char *dest, struct keel_err *err)
{
	int r = extract(fd, dest, false, err);
	return r < 0 ? keel_err_wrap(err, "extracting the image archive") : 0;
}

int keel_image_unpack_layer(int fd, const char *dest, struct keel_err *err)
{
	return extract(fd, dest, true, err);
}

int layer_diff_id(int fd, char ret[KEEL_DIGEST_MAX], uint64_t *ret_size, enum keel_media_kind *ret_kind,
		  struct keel_err *err)
{
	if (lseek(fd, 0, SEEK_SET) < 0)
		return keel_err_errno(err, -errno, "seeking");
	struct archive *a = archive_read_new();
	struct keel_sha256 *h = keel_sha256_new();
	int r = 0;
	uint64_t total = 0;
	if (!a || !h) {
		r = keel_err_set(err, -ENOMEM, "out of memory");
		goto out;
	}
	archive_read_support_filter_gzip(a);
	archive_read_support_filter_zstd(a);
	archive_read_support_format_raw(a);
	struct archive_entry *e;
	if (archive_read_open_fd(a, fd, READ_BLOCK) != ARCHIVE_OK) {
		r = keel_err_set(err, -KEEL_ECORRUPT, "%s", archive_error_string(a));
		goto out;
	}
	int rr = archive_read_next_header(a, &e);
	if (rr < ARCHIVE_WARN && rr != ARCHIVE_EOF) {
		r = keel_err_set(err, -KEEL_ECORRUPT, "%s", archive_error_string(a));
		goto out;
	}
	while (rr != ARCHIVE_EOF) {
		const void *buf;
		size_t size;
		la_int64_t off;
		rr = archive_read_data_block(a, &buf, &size, &off);
		if (rr == ARCHIVE_EOF)
			break;
		if (rr < ARCHIVE_OK) {
			r = keel_err_set(err, -KEEL_ECORRUPT, "decompressing: %s", archive_error_string(a));
			goto out;
		}
		keel_sha256_update(h, buf, size);
		total += size;
	}
	switch (archive_filter_code(a, 0)) {
	case ARCHIVE_FILTER_GZIP: *ret_kind = KEEL_MEDIA_LAYER_GZIP; break;
	case ARCHIVE_FILTER_ZSTD: *ret_kind = KEEL_MEDIA_LAYER_ZSTD; break;
	default: *ret_kind = KEEL_MEDIA_LAYER_TAR; break;
	}
	keel_sha256_final(h, ret);
	*ret_size = total;
out:
	keel_sha256_free(h);
	if (a)
		archive_read_free(a);
	return r;
}
