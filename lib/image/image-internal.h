/* What the files of lib/image share: the store handle, locks, the index, and file helpers that
 * resolve paths without leaving a directory. Not for use outside lib/image (and its tests). */
#pragma once

#include <stdint.h>
#include <sys/types.h>

#include <jansson.h>

#include "image/image.h"

struct keel_image_store {
	char *root; /* realpath of the root */
	int root_fd;
};

/* Store layout, relative to root (docs/run.md "Images"). */
#define KEEL_IMAGE_BLOBS "blobs/sha256"
#define KEEL_IMAGE_LAYERS "layers"
#define KEEL_IMAGE_TMP "tmp"
#define KEEL_IMAGE_HOLDS "holds"
#define KEEL_IMAGE_INDEX "images.json"
/* Held shared by imports and unpacks, exclusively by gc: gc never sees half an import. */
#define KEEL_IMAGE_GC_LOCK "gc.lock"
/* Held exclusively by whoever rewrites images.json or the holds, shared by readers. */
#define KEEL_IMAGE_INDEX_LOCK "index.lock"

/* flock() a lock file under the root; op is LOCK_SH or LOCK_EX. Returns the fd to pass to
 * store_unlock, or -errno. Blocks until the lock is free. */
int store_lock(struct keel_image_store *s, const char *name, int op, struct keel_err *err);
void store_unlock(int fd);

/* The images of images.json. */
struct image_index {
	size_t n;
	struct keel_image **images;
};

/* Load images.json (an absent file is an empty index). -KEEL_ECORRUPT when it does not parse. */
int index_load(struct keel_image_store *s, struct image_index *idx, struct keel_err *err);
/* Replace images.json atomically (temp file, fsync, rename, fsync of the directory). */
int index_save(struct keel_image_store *s, const struct image_index *idx, struct keel_err *err);
void index_clear(struct image_index *idx);
/* Position of the image ref names; -ENOENT or -EINVAL (ambiguous or malformed). When ref
 * matched a name, *ret_name (may be NULL) gets that name as stored, else NULL. */
int index_find(const struct image_index *idx, const char *ref, size_t *ret_pos, char **ret_name,
	       struct keel_err *err);
/* Add img (taking ownership, also on failure) or, when its id is already there, merge its names
 * into that image. Names img carries are taken away from any other image first. */
int index_add(struct image_index *idx, struct keel_image *img, struct keel_err *err);
/* Remove position pos, freeing the image. */
void index_drop(struct image_index *idx, size_t pos);
/* A deep copy, or NULL when out of memory. */
struct keel_image *image_dup(const struct keel_image *img);

/* Serialise a JSON value into a keel_malloc'ed, NUL-terminated string (whichever allocator
 * jansson uses). 0 or -ENOMEM. */
int image_json_dump(const json_t *v, size_t flags, char **ret, size_t *ret_len);

/* openat2(dirfd, path, flags, RESOLVE_BENEATH | extra): a path that leaves dirfd, through ".."
 * or a symlink, fails with -EXDEV. Returns the fd or -errno. */
int open_beneath(int dirfd, const char *path, int flags, mode_t mode, uint64_t extra_resolve);
/* Read a regular file beneath dirfd into a NUL-terminated buffer of at most max bytes (-EFBIG). */
int read_file_beneath(int dirfd, const char *path, size_t max, char **ret, size_t *ret_len,
		      struct keel_err *err);
/* Write data to dirfd/path atomically: a temp file beside it, fsync, rename, fsync of dirfd. */
int write_file_atomic(int dirfd, const char *path, const void *data, size_t len, struct keel_err *err);
/* Remove dirfd/name and everything below it, never following symlinks. Gone already is fine. */
int rm_rf_at(int dirfd, const char *name);
/* Sum of the sizes of the regular files below dirfd/name (for gc's report). */
uint64_t du_at(int dirfd, const char *name);
/* mkdtemp under root/tmp: writes "tmp/<prefix>XXXXXX" into out. */
int make_tmp_dir(struct keel_image_store *s, const char *prefix, char *out, size_t size,
		 struct keel_err *err);

/* The digest of the uncompressed content of a layer blob open at fd (its diff_id) and its
 * size; *ret_kind says which compression was found (KEEL_MEDIA_LAYER_TAR for none). Reads fd
 * from offset 0. */
int layer_diff_id(int fd, char ret[KEEL_DIGEST_MAX], uint64_t *ret_size, enum keel_media_kind *ret_kind,
		  struct keel_err *err);

/* Extract an image archive (a tar, optionally compressed, of an OCI layout or a docker-archive)
 * into the existing empty directory dest: regular files, directories, symlinks and hardlinks
 * only, nothing outside dest. */
int extract_archive(int fd, const char *dest, struct keel_err *err);

/* Unpack one layer tar (any supported compression) from fd into the existing empty directory
 * dest, converting OCI whiteouts to overlayfs ones: ".wh.NAME" becomes a 0/0 character device
 * NAME, ".wh..wh..opq" the xattr trusted.overlay.opaque=y on its directory. Ownership, modes,
 * times, xattrs (except trusted.overlay.*), symlinks, hardlinks and device nodes are kept.
 * An entry with ".." in its path, a hardlink to outside dest, or a path through a symlink is
 * refused with -EPERM. On failure dest holds a partial tree for the caller to remove. */
int keel_image_unpack_layer(int fd, const char *dest, struct keel_err *err);
