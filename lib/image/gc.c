/* Garbage collection: blobs and unpacked layers that no image references, and the leftovers
 * of interrupted imports and unpacks. gc.lock taken exclusively means no import or unpack is
 * running, so everything in tmp/ is stale. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/mem.h"
#include "base/str.h"
#include "image/image-internal.h"

static bool referenced_blob(const struct image_index *idx, const char *hex)
{
	for (size_t i = 0; i < idx->n; i++) {
		const struct keel_image *img = idx->images[i];
		if (!strcmp(keel_digest_hex(img->id), hex) || !strcmp(keel_digest_hex(img->manifest), hex))
			return true;
		for (size_t k = 0; k < img->n_layers; k++)
			if (!strcmp(keel_digest_hex(img->layers[k].digest), hex))
				return true;
	}
	return false;
}

static bool referenced_layer(const struct image_index *idx, const char *hex)
{
	for (size_t i = 0; i < idx->n; i++)
		for (size_t k = 0; k < idx->images[i]->n_layers; k++)
			if (!strcmp(keel_digest_hex(idx->images[i]->layers[k].diff_id), hex))
				return true;
	return false;
}

/* Entries of a directory under the root, by name. */
static int entries(struct keel_image_store *s, const char *rel, char ***ret, struct keel_err *err)
{
	*ret = NULL;
	int fd = open_beneath(s->root_fd, rel, O_RDONLY | O_DIRECTORY, 0, 0);
	if (fd < 0)
		return keel_err_errno(err, fd, "%s/%s", s->root, rel);
	DIR *d = fdopendir(fd);
	if (!d) {
		close(fd);
		return keel_err_errno(err, -errno, "%s/%s", s->root, rel);
	}
	struct dirent *e;
	int r = 0;
	while ((e = readdir(d)) && r == 0) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		if (keel_strv_push(ret, e->d_name) < 0)
			r = keel_err_set(err, -ENOMEM, "out of memory");
	}
	closedir(d);
	return r;
}

static bool is_digest_hex(const char *name)
{
	return strlen(name) == KEEL_DIGEST_HEX_LEN && keel_is_hex_prefix(name);
}

int keel_image_gc(struct keel_image_store *s, struct keel_image_gc_stats *ret, struct keel_err *err)
{
	struct keel_image_gc_stats st = {0};
	int gl = store_lock(s, KEEL_IMAGE_GC_LOCK, LOCK_EX, err);
	if (gl < 0)
		return gl;
	int il = store_lock(s, KEEL_IMAGE_INDEX_LOCK, LOCK_EX, err);
	if (il < 0) {
		store_unlock(gl);
		return il;
	}
	struct image_index idx;
	char **names = NULL;
	int r = index_load(s, &idx, err);
	if (r < 0)
		goto out;

	if ((r = entries(s, KEEL_IMAGE_BLOBS, &names, err)) < 0)
		goto out;
	for (size_t i = 0; names && names[i]; i++) {
		if (!is_digest_hex(names[i]) || referenced_blob(&idx, names[i]))
			continue;
		char rel[128];
		struct stat sb;
		snprintf(rel, sizeof(rel), KEEL_IMAGE_BLOBS "/%s", names[i]);
		if (fstatat(s->root_fd, rel, &sb, AT_SYMLINK_NOFOLLOW) < 0)
			continue;
		if (unlinkat(s->root_fd, rel, 0) < 0) {
			r = keel_err_errno(err, -errno, "removing %s/%s", s->root, rel);
			goto out;
		}
		st.blobs++;
		st.blob_bytes += S_ISREG(sb.st_mode) ? (uint64_t)sb.st_size : 0;
	}
	keel_strv_free(names);
	names = NULL;

	if ((r = entries(s, KEEL_IMAGE_LAYERS, &names, err)) < 0)
		goto out;
	for (size_t i = 0; names && names[i]; i++) {
		if (!is_digest_hex(names[i]) || referenced_layer(&idx, names[i]))
			continue;
		char rel[128];
		snprintf(rel, sizeof(rel), KEEL_IMAGE_LAYERS "/%s", names[i]);
		st.layer_bytes += du_at(s->root_fd, rel);
		if ((r = rm_rf_at(s->root_fd, rel)) < 0) {
			r = keel_err_errno(err, r, "removing %s/%s", s->root, rel);
			goto out;
		}
		st.layers++;
	}
	keel_strv_free(names);
	names = NULL;

	if ((r = entries(s, KEEL_IMAGE_TMP, &names, err)) < 0)
		goto out;
	for (size_t i = 0; names && names[i]; i++) {
		char rel[512];
		snprintf(rel, sizeof(rel), KEEL_IMAGE_TMP "/%s", names[i]);
		if ((r = rm_rf_at(s->root_fd, rel)) < 0) {
			r = keel_err_errno(err, r, "removing %s/%s", s->root, rel);
			goto out;
		}
		st.tmp++;
	}
	if (ret)
		*ret = st;
out:
	keel_strv_free(names);
	index_clear(&idx);
	store_unlock(il);
	store_unlock(gl);
	return r;
}
