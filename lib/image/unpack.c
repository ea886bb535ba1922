/* Unpacked layers for overlayfs: layers/<diff_id hex>, one directory per distinct layer content,
 * made on first use and shared by every image with that layer. */
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

/* Unpack one layer into tmp/, then rename it into place: the directory appears whole or not at
 * all, and two processes unpacking the same layer at once both end with the same result. */
static int unpack_one(struct keel_image_store *s, const struct keel_image_layer *L, const char *rel,
		      struct keel_err *err)
{
	char tmp[128], blob[128], full[4200];
	int r = make_tmp_dir(s, "unpack-", tmp, sizeof(tmp), err);
	if (r < 0)
		return r;
	snprintf(full, sizeof(full), "%s/%s", s->root, tmp);
	/* mkdtemp made it 0700; a layer without a "./" entry keeps what a root directory has. */
	if (fchmodat(s->root_fd, tmp, 0755, 0) < 0) {
		r = keel_err_errno(err, -errno, "chmod %s", full);
		goto out;
	}
	snprintf(blob, sizeof(blob), KEEL_IMAGE_BLOBS "/%s", keel_digest_hex(L->digest));
	int fd = open_beneath(s->root_fd, blob, O_RDONLY, 0, 0);
	if (fd < 0) {
		r = keel_err_set(err, fd == -ENOENT ? -KEEL_ECORRUPT : fd, "layer blob %s: %s", L->digest,
				 fd == -ENOENT ? "missing from the store" : keel_strerror(fd));
		goto out;
	}
	r = keel_image_unpack_layer(fd, full, err);
	close(fd);
	if (r < 0) {
		keel_err_wrap(err, "unpacking layer %.19s", L->diff_id);
		goto out;
	}
	/* The files are not fsynced one by one: one syncfs before the rename publishes them. */
	if (syncfs(s->root_fd) < 0) {
		r = keel_err_errno(err, -errno, "syncfs %s", s->root);
		goto out;
	}
	if (renameat(s->root_fd, tmp, s->root_fd, rel) < 0) {
		if (errno != EEXIST && errno != ENOTEMPTY) {
			r = keel_err_errno(err, -errno, "renaming %s to %s/%s", full, s->root, rel);
			goto out;
		}
		/* Someone else finished the same layer first: theirs is as good as ours. */
	} else {
		int dfd = open_beneath(s->root_fd, KEEL_IMAGE_LAYERS, O_RDONLY | O_DIRECTORY, 0, 0);
		if (dfd >= 0) {
			fsync(dfd);
			close(dfd);
		}
	}
out:
	rm_rf_at(s->root_fd, tmp);
	return r;
}

int keel_image_layer_dirs(struct keel_image_store *s, const struct keel_image *img, char ***ret_dirs,
			  struct keel_err *err)
{
	/* Shared with other unpacks and imports; gc waits until we are done. */
	int lk = store_lock(s, KEEL_IMAGE_GC_LOCK, LOCK_SH, err);
	if (lk < 0)
		return lk;
	int r = 0;
	/* An image without layers still gets an (empty) vector, not NULL. */
	char **dirs = keel_calloc(1, sizeof(*dirs));
	if (!dirs) {
		r = keel_err_set(err, -ENOMEM, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < img->n_layers; i++) {
		const struct keel_image_layer *L = &img->layers[i];
		if ((r = keel_digest_check(L->diff_id, "layer diff_id", err)) < 0 ||
		    (r = keel_digest_check(L->digest, "layer digest", err)) < 0)
			goto out;
		char rel[128];
		snprintf(rel, sizeof(rel), KEEL_IMAGE_LAYERS "/%s", keel_digest_hex(L->diff_id));
		struct stat st;
		if (fstatat(s->root_fd, rel, &st, AT_SYMLINK_NOFOLLOW) < 0) {
			if (errno != ENOENT) {
				r = keel_err_errno(err, -errno, "%s/%s", s->root, rel);
				goto out;
			}
			if ((r = unpack_one(s, L, rel, err)) < 0)
				goto out;
		} else if (!S_ISDIR(st.st_mode)) {
			r = keel_err_set(err, -KEEL_ECORRUPT, "%s/%s is not a directory", s->root, rel);
			goto out;
		}
		char *path = keel_malloc(strlen(s->root) + strlen(rel) + 2);
		if (!path) {
			r = keel_err_set(err, -ENOMEM, "out of memory");
			goto out;
		}
		sprintf(path, "%s/%s", s->root, rel);
		if ((r = keel_strv_consume(&dirs, path)) < 0) {
			r = keel_err_set(err, -ENOMEM, "out of memory");
			goto out;
		}
	}
	*ret_dirs = dirs;
	dirs = NULL;
out:
	keel_strv_free(dirs);
	store_unlock(lk);
	return r;
}
