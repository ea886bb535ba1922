/* The store handle, its locks, and the operations on the index: list, lookup, remove, holds,
 * reading configs and blobs. Import, unpack and gc live in their own files. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/mem.h"
#include "base/str.h"
#include "base/sys.h"
#include "image/image-internal.h"

const char *keel_image_default_root(void)
{
	const char *env = getenv(KEEL_IMAGE_ROOT_ENV);
	return env && *env ? env : KEEL_IMAGE_DEFAULT_ROOT;
}

/* mkdir -p, the last component with `mode`, missing parents 0755. */
static int mkdir_p(const char *path, mode_t mode)
{
	if (mkdir(path, mode) == 0 || errno == EEXIST)
		return 0;
	if (errno != ENOENT)
		return -errno;
	char *parent = keel_strdup(path);
	if (!parent)
		return -ENOMEM;
	char *slash = strrchr(parent, '/');
	int r = 0;
	if (slash && slash != parent) {
		*slash = '\0';
		r = mkdir_p(parent, 0755);
	}
	keel_free(parent);
	if (r < 0)
		return r;
	return mkdir(path, mode) == 0 || errno == EEXIST ? 0 : -errno;
}

int keel_image_store_open(const char *root, struct keel_image_store **ret, struct keel_err *err)
{
	if (!root)
		root = keel_image_default_root();
	int r = mkdir_p(root, 0700);
	if (r < 0)
		return keel_err_errno(err, r, "creating the image store %s", root);
	struct keel_image_store *s = keel_calloc(1, sizeof(*s));
	if (!s)
		return keel_err_set(err, -ENOMEM, "out of memory");
	s->root_fd = -1;
	/* Layer extraction refuses paths through symlinks, the root's own included: resolve it. */
	s->root = realpath(root, NULL);
	if (!s->root) {
		r = keel_err_errno(err, -errno, "image store %s", root);
		goto fail;
	}
	s->root_fd = keel_sys_open(s->root, O_RDONLY | O_DIRECTORY, 0);
	if (s->root_fd < 0) {
		r = keel_err_errno(err, s->root_fd, "opening the image store %s", s->root);
		goto fail;
	}
	static const char *const dirs[] = {"blobs", KEEL_IMAGE_BLOBS, KEEL_IMAGE_LAYERS, KEEL_IMAGE_TMP,
					   KEEL_IMAGE_HOLDS};
	for (size_t i = 0; i < KEEL_ARRAY_SIZE(dirs); i++) {
		if (mkdirat(s->root_fd, dirs[i], 0700) < 0 && errno != EEXIST) {
			r = keel_err_errno(err, -errno, "creating %s/%s", s->root, dirs[i]);
			goto fail;
		}
	}
	*ret = s;
	return 0;
fail:
	keel_image_store_free(s);
	return r;
}

void keel_image_store_free(struct keel_image_store *s)
{
	if (!s)
		return;
	if (s->root_fd >= 0)
		close(s->root_fd);
	free(s->root); /* from realpath() */
	keel_free(s);
}

const char *keel_image_store_root(const struct keel_image_store *s)
{
	return s->root;
}

int store_lock(struct keel_image_store *s, const char *name, int op, struct keel_err *err)
{
	int fd = keel_sys_openat(s->root_fd, name, O_RDWR | O_CREAT | O_NOFOLLOW, 0600);
	if (fd < 0)
		return keel_err_errno(err, fd, "opening %s/%s", s->root, name);
	while (flock(fd, op) < 0) {
		if (errno == EINTR)
			continue;
		int e = -errno;
		close(fd);
		return keel_err_errno(err, e, "locking %s/%s", s->root, name);
	}
	return fd;
}

void store_unlock(int fd)
{
	if (fd >= 0)
		close(fd); /* drops the flock */
}

void keel_image_list_free(struct keel_image_list *l)
{
	if (!l)
		return;
	for (size_t i = 0; i < l->n; i++)
		keel_image_free(l->images[i]);
	keel_free(l->images);
	keel_free(l);
}

static int newest_first(const void *a, const void *b)
{
	const struct keel_image *x = *(struct keel_image *const *)a, *y = *(struct keel_image *const *)b;
	if (x->created_ns != y->created_ns)
		return x->created_ns > y->created_ns ? -1 : 1;
	return strcmp(x->id, y->id);
}

/* Load the index under the shared index lock. */
static int load_shared(struct keel_image_store *s, struct image_index *idx, struct keel_err *err)
{
	int lk = store_lock(s, KEEL_IMAGE_INDEX_LOCK, LOCK_SH, err);
	if (lk < 0)
		return lk;
	int r = index_load(s, idx, err);
	store_unlock(lk);
	return r;
}

int keel_image_list(struct keel_image_store *s, struct keel_image_list **ret, struct keel_err *err)
{
	struct image_index idx;
	int r = load_shared(s, &idx, err);
	if (r < 0)
		return r;
	struct keel_image_list *l = keel_calloc(1, sizeof(*l));
	if (!l) {
		index_clear(&idx);
		return keel_err_set(err, -ENOMEM, "out of memory");
	}
	/* The list takes the index's images over. */
	l->images = idx.images;
	l->n = idx.n;
	if (l->n)
		qsort(l->images, l->n, sizeof(*l->images), newest_first);
	*ret = l;
	return 0;
}

int keel_image_lookup(struct keel_image_store *s, const char *ref, struct keel_image **ret,
		      struct keel_err *err)
{
	struct image_index idx;
	int r = load_shared(s, &idx, err);
	if (r < 0)
		return r;
	size_t pos;
	r = index_find(&idx, ref, &pos, NULL, err);
	if (r == 0) {
		*ret = idx.images[pos];
		idx.images[pos] = idx.images[--idx.n];
	}
	index_clear(&idx);
	return r;
}

static bool holder_ok(const char *h)
{
	size_t n = strlen(h);
	if (n == 0 || n > 128 || h[0] == '.')
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = h[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
		      c == '.' || c == '-'))
			return false;
	}
	return true;
}

/* The holders of image id, as a vector (NULL when none). Caller holds the index lock. */
static int holders_of(struct keel_image_store *s, const char *id, char ***ret, struct keel_err *err)
{
	*ret = NULL;
	int fd = open_beneath(s->root_fd, KEEL_IMAGE_HOLDS, O_RDONLY | O_DIRECTORY, 0, 0);
	if (fd < 0)
		return keel_err_errno(err, fd, "%s/" KEEL_IMAGE_HOLDS, s->root);
	DIR *d = fdopendir(fd);
	if (!d) {
		close(fd);
		return keel_err_errno(err, -errno, "%s/" KEEL_IMAGE_HOLDS, s->root);
	}
	struct dirent *e;
	int r = 0;
	while ((e = readdir(d)) && r == 0) {
		if (e->d_name[0] == '.' || !holder_ok(e->d_name))
			continue;
		char *data;
		size_t len;
		if (read_file_beneath(dirfd(d), e->d_name, 256, &data, &len, NULL) < 0)
			continue;
		keel_strstrip(data);
		if (strcmp(data, id) == 0 && keel_strv_push(ret, e->d_name) < 0)
			r = keel_err_set(err, -ENOMEM, "out of memory");
		keel_free(data);
	}
	closedir(d);
	if (r < 0) {
		keel_strv_free(*ret);
		*ret = NULL;
	}
	return r;
}

int keel_image_remove(struct keel_image_store *s, const char *ref, unsigned flags, char ***ret_untagged,
		      char ret_deleted[KEEL_DIGEST_MAX], struct keel_err *err)
{
	if (ret_untagged)
		*ret_untagged = NULL;
	if (ret_deleted)
		ret_deleted[0] = '\0';
	int lk = store_lock(s, KEEL_IMAGE_INDEX_LOCK, LOCK_EX, err);
	if (lk < 0)
		return lk;
	struct image_index idx;
	char *name = NULL, **holders = NULL, **untagged = NULL;
	int r = index_load(s, &idx, err);
	if (r < 0)
		goto out;
	size_t pos;
	if ((r = index_find(&idx, ref, &pos, &name, err)) < 0)
		goto out;
	struct keel_image *img = idx.images[pos];
	size_t n_names = keel_strv_len(img->names);
	bool last = name ? n_names <= 1 : true;
	if (!name && n_names > 1 && !(flags & KEEL_IMAGE_RM_FORCE)) {
		r = keel_err_set(err, -EBUSY, "image %.12s has %zu names (%s, ...): remove them by name, or "
				 "by id with --force", keel_digest_hex(img->id), n_names, img->names[0]);
		goto out;
	}
	if (last) {
		if ((r = holders_of(s, img->id, &holders, err)) < 0)
			goto out;
		if (holders) {
			r = keel_err_set(err, -EBUSY, "image %.12s is in use by %s%s",
					 keel_digest_hex(img->id), holders[0], holders[1] ? " and others" : "");
			goto out;
		}
	}
	if (name) {
		if ((r = keel_strv_push(&untagged, name)) < 0) {
			r = keel_err_set(err, -ENOMEM, "out of memory");
			goto out;
		}
		size_t j = 0;
		for (size_t i = 0; img->names[i]; i++) {
			if (strcmp(img->names[i], name) == 0)
				keel_free(img->names[i]);
			else
				img->names[j++] = img->names[i];
		}
		img->names[j] = NULL;
	} else {
		untagged = img->names;
		img->names = NULL;
	}
	char id[KEEL_DIGEST_MAX];
	memcpy(id, img->id, sizeof(id));
	if (last)
		index_drop(&idx, pos);
	if ((r = index_save(s, &idx, err)) < 0)
		goto out;
	if (last && ret_deleted)
		memcpy(ret_deleted, id, KEEL_DIGEST_MAX);
	if (ret_untagged) {
		*ret_untagged = untagged;
		untagged = NULL;
	}
out:
	keel_strv_free(untagged);
	keel_strv_free(holders);
	keel_free(name);
	index_clear(&idx);
	store_unlock(lk);
	return r;
}

int keel_image_hold(struct keel_image_store *s, const char *ref, const char *holder,
		    char ret_id[KEEL_DIGEST_MAX], struct keel_err *err)
{
	if (!holder || !holder_ok(holder))
		return keel_err_set(err, -EINVAL, "invalid holder name \"%.130s\"", holder ? holder : "");
	int lk = store_lock(s, KEEL_IMAGE_INDEX_LOCK, LOCK_EX, err);
	if (lk < 0)
		return lk;
	struct image_index idx;
	int r = index_load(s, &idx, err);
	size_t pos;
	if (r == 0 && (r = index_find(&idx, ref, &pos, NULL, err)) == 0) {
		char path[256], line[KEEL_DIGEST_MAX + 1];
		snprintf(path, sizeof(path), KEEL_IMAGE_HOLDS "/%s", holder);
		int n = snprintf(line, sizeof(line), "%s\n", idx.images[pos]->id);
		r = write_file_atomic(s->root_fd, path, line, (size_t)n, err);
		if (r == 0 && ret_id)
			memcpy(ret_id, idx.images[pos]->id, KEEL_DIGEST_MAX);
	}
	index_clear(&idx);
	store_unlock(lk);
	return r;
}

int keel_image_release(struct keel_image_store *s, const char *holder, struct keel_err *err)
{
	if (!holder || !holder_ok(holder))
		return keel_err_set(err, -EINVAL, "invalid holder name \"%.130s\"", holder ? holder : "");
	int lk = store_lock(s, KEEL_IMAGE_INDEX_LOCK, LOCK_EX, err);
	if (lk < 0)
		return lk;
	char path[256];
	snprintf(path, sizeof(path), KEEL_IMAGE_HOLDS "/%s", holder);
	int r = 0;
	if (unlinkat(s->root_fd, path, 0) < 0)
		r = errno == ENOENT ? keel_err_set(err, -ENOENT, "%s holds no image", holder)
				    : keel_err_errno(err, -errno, "removing %s/%s", s->root, path);
	store_unlock(lk);
	return r;
}

int keel_image_read_blob(struct keel_image_store *s, const char *digest, size_t max, char **ret,
			 size_t *ret_len, struct keel_err *err)
{
	int r = keel_digest_check(digest, "blob", err);
	if (r < 0)
		return r;
	char path[128];
	snprintf(path, sizeof(path), KEEL_IMAGE_BLOBS "/%s", keel_digest_hex(digest));
	r = read_file_beneath(s->root_fd, path, max, ret, ret_len, err);
	if (r == -ENOENT)
		return keel_err_set(err, -KEEL_ECORRUPT, "blob %s is missing from the store", digest);
	return r;
}

int keel_image_read_config(struct keel_image_store *s, const struct keel_image *img,
			   struct keel_image_config **ret, struct keel_err *err)
{
	char *data;
	size_t len;
	int r = keel_image_read_blob(s, img->id, KEEL_IMAGE_JSON_MAX, &data, &len, err);
	if (r < 0)
		return r;
	r = keel_image_config_parse(data, len, ret, err);
	keel_free(data);
	return r;
}

int keel_image_lowerdir(char *const *dirs, char **ret)
{
	size_t n = keel_strv_len(dirs), len = 0;
	if (n == 0)
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		if (strpbrk(dirs[i], ":,\\"))
			return -EINVAL;
		len += strlen(dirs[i]) + 1;
	}
	char *out = keel_malloc(len);
	if (!out)
		return -ENOMEM;
	char *p = out;
	for (size_t i = n; i-- > 0;) {
		size_t l = strlen(dirs[i]);
		memcpy(p, dirs[i], l);
		p += l;
		*p++ = i ? ':' : '\0';
	}
	*ret = out;
	return 0;
}
