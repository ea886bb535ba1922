/* keel-run's image store: a content-addressed store of OCI/Docker image blobs with an index of
 * images by name:tag and by id, import from OCI layouts, oci-archives and docker-archives,
 * per-layer unpacked directories for overlayfs, and garbage collection. docs/run.md "Images"
 * describes the layout on disk and the locking.
 *
 * Every function takes a caller-owned struct keel_err (may be NULL) and returns 0 or a negative
 * code: -ENOENT (no such image), -EINVAL (bad argument or reference), -EBUSY (image in use),
 * -KEEL_ECORRUPT (a digest or size does not match, or the store's index is damaged), -ENOTSUP
 * (a valid input Keel does not handle), -EPERM (an archive entry that would escape its
 * directory), or -errno from the system. Functions that change the store are safe against
 * concurrent keel-run processes (file locks); a store handle is for one thread. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/errors.h"
#include "image/digest.h"
#include "image/spec.h"

#define KEEL_IMAGE_DEFAULT_ROOT "/var/lib/keel-run/images"
#define KEEL_IMAGE_ROOT_ENV "KEEL_IMAGE_ROOT"

struct keel_image_layer {
	char digest[KEEL_DIGEST_MAX];  /* the blob as stored (compressed or not) */
	char diff_id[KEEL_DIGEST_MAX]; /* digest of the uncompressed tar: names the unpacked dir */
	char *media_type;
	uint64_t size;     /* blob bytes */
	uint64_t tar_size; /* uncompressed tar bytes */
};

struct keel_image {
	char id[KEEL_DIGEST_MAX];       /* the config blob's digest, as podman and docker use it */
	char manifest[KEEL_DIGEST_MAX]; /* the manifest blob (synthesised for docker-archives) */
	char *manifest_media_type;
	char **names;                   /* "name:tag", NULL-terminated, may be NULL */
	char *os;
	char *arch;
	char *variant;                  /* NULL when the config has none */
	int64_t created_ns;             /* from the config; 0 when unknown */
	int64_t imported_ns;
	uint64_t size;                  /* sum of the layers' tar sizes */
	size_t n_layers;
	struct keel_image_layer *layers; /* base layer first */
};

struct keel_image_list {
	size_t n;
	struct keel_image **images;
};

struct keel_image_store;

/* $KEEL_IMAGE_ROOT when set and not empty, else KEEL_IMAGE_DEFAULT_ROOT. */
const char *keel_image_default_root(void);

/* Open (creating when missing, mode 0700) the store at root (NULL: keel_image_default_root()). */
int keel_image_store_open(const char *root, struct keel_image_store **ret, struct keel_err *err);
void keel_image_store_free(struct keel_image_store *s);
/* The absolute, symlink-free path of the store's root. */
const char *keel_image_store_root(const struct keel_image_store *s);

struct keel_image_import_opts {
	/* Platform picked from multi-platform indexes; NULL fields mean the host's
	 * (linux/amd64 on x86-64). */
	const char *os;
	const char *arch;
	const char *variant;
};

/* Import every image of the archive or directory at path: an OCI image layout directory, an
 * oci-archive (a tar of one, optionally gzip/zstd-compressed), or a docker-archive (docker save
 * / podman save; a tarball or its unpacked directory). Every blob is checked against its digest
 * and size before it enters the store; a failed import leaves nothing behind but what was there.
 * With name ("name[:tag]", tag defaulting to latest) the archive must hold exactly one image,
 * which gets that name; otherwise images are named from the archive (RepoTags, OCI
 * ref.name/io.containerd.image.name annotations that hold a full reference). A name already
 * on another image moves to the imported one. *ret lists what was imported (free with
 * keel_image_list_free); may be NULL. */
int keel_image_import(struct keel_image_store *s, const char *path, const char *name,
		      const struct keel_image_import_opts *opts, struct keel_image_list **ret,
		      struct keel_err *err);

/* All images, newest first. */
int keel_image_list(struct keel_image_store *s, struct keel_image_list **ret, struct keel_err *err);
void keel_image_list_free(struct keel_image_list *l);

/* Find one image by reference: "name[:tag]" (exact, tag defaulting to latest), "sha256:<hex>",
 * or a unique prefix of the id's hex (any length >= 1). -ENOENT when none matches, -EINVAL when
 * a prefix matches several images. */
int keel_image_lookup(struct keel_image_store *s, const char *ref, struct keel_image **ret,
		      struct keel_err *err);
void keel_image_free(struct keel_image *img);

enum {
	/* Remove an image with several names by id (all names go). */
	KEEL_IMAGE_RM_FORCE = 1 << 0,
};

/* Remove by reference. By name, only that name goes; the image goes with its last name. By id,
 * the image goes with all its names, which needs KEEL_IMAGE_RM_FORCE when it has more than
 * one. Refused (-EBUSY) while any holder holds the image (keel_image_hold), force or not.
 * Blobs and unpacked layers stay until keel_image_gc. *ret_untagged gets the names removed
 * (may be NULL), ret_deleted the id when the image itself went, else "". */
int keel_image_remove(struct keel_image_store *s, const char *ref, unsigned flags, char ***ret_untagged,
		      char ret_deleted[KEEL_DIGEST_MAX], struct keel_err *err);

/* Record that `holder` (a container or pod id: [A-Za-z0-9_.-], 1-128 chars, not starting with
 * '.') uses the image ref resolves to, so that it cannot be removed. A holder holds one image;
 * holding again replaces the old one. Take the hold before keel_image_layer_dirs and release
 * it only after the overlay mounts are gone. */
int keel_image_hold(struct keel_image_store *s, const char *ref, const char *holder,
		    char ret_id[KEEL_DIGEST_MAX], struct keel_err *err);
/* 0, or -ENOENT when the holder held nothing. */
int keel_image_release(struct keel_image_store *s, const char *holder, struct keel_err *err);

struct keel_image_gc_stats {
	unsigned blobs;       /* blob files removed */
	uint64_t blob_bytes;  /* their size */
	unsigned layers;      /* unpacked layer directories removed */
	uint64_t layer_bytes; /* the size of the files they held */
	unsigned tmp;         /* leftovers of interrupted imports and unpacks removed */
};

/* Remove every blob and unpacked layer no image references, and what interrupted operations
 * left in tmp/. Waits for running imports and unpacks to finish first. */
int keel_image_gc(struct keel_image_store *s, struct keel_image_gc_stats *ret, struct keel_err *err);

/* The unpacked layer directories of img, base layer first (the reverse of overlayfs' lowerdir
 * order), unpacking each layer on first use into layers/<diff_id hex> (shared by every image
 * with that layer). Whiteouts are converted for overlayfs (docs/run.md). An image without
 * layers gives an empty vector. *ret_dirs is a NULL-terminated vector of absolute paths. */
int keel_image_layer_dirs(struct keel_image_store *s, const struct keel_image *img, char ***ret_dirs,
			  struct keel_err *err);

/* The overlayfs "lowerdir=" value for dirs as keel_image_layer_dirs returns them: top layer
 * first, joined with ':'. -EINVAL when dirs is empty or a path holds ':' or ','. */
int keel_image_lowerdir(char *const *dirs, char **ret);

/* The parsed configuration of img (Env, Cmd, Entrypoint, WorkingDir, User, ...). */
int keel_image_read_config(struct keel_image_store *s, const struct keel_image *img,
			   struct keel_image_config **ret, struct keel_err *err);

/* A whole blob read into memory (at most max bytes, else -EFBIG), NUL-terminated. */
int keel_image_read_blob(struct keel_image_store *s, const char *digest, size_t max, char **ret,
			 size_t *ret_len, struct keel_err *err);

/* "name[:tag]" into the stored form "name:tag" (tag defaulting to latest). The name is
 * lowercase letters, digits and . _ - / with an optional registry host[:port] first; the tag
 * [A-Za-z0-9_.-], at most 128, not starting with '.' or '-'. -EINVAL otherwise; "@digest"
 * references are not names. */
int keel_image_name_normalize(const char *in, char **ret, struct keel_err *err);

/* The CLI: argv[0] is the name usage messages show ("keel-image", or "image" when keel-run
 * dispatches `keel-run image ...` here), argv[1] the subcommand: import, list, inspect, rm, gc,
 * layers. Returns the process exit status (0, 1 on failure, 2 on a usage error). */
int keel_image_cli(int argc, char **argv);
