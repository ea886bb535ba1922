/* keel_image_import: OCI image layouts, oci-archives and docker-archives into the store.
 *
 * Everything an import writes goes first to a staging directory under tmp/, each blob checked
 * against its digest and size (layers also against the config's diff_ids) and fsynced; only
 * then, under the index lock, are the blobs renamed into blobs/sha256/ and the index rewritten.
 * An import that fails leaves the store as it was; one interrupted between the renames and the
 * index leaves complete blobs that gc removes. The whole import holds gc.lock shared, so gc
 * cannot take staged or just-committed blobs away. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/clock.h"
#include "base/json.h"
#include "base/mem.h"
#include "base/str.h"
#include "base/sys.h"
#include "image/image-internal.h"

#if defined(__x86_64__)
#define HOST_ARCH "amd64"
#elif defined(__aarch64__)
#define HOST_ARCH "arm64"
#elif defined(__i386__)
#define HOST_ARCH "386"
#elif defined(__powerpc64__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define HOST_ARCH "ppc64le"
#elif defined(__s390x__)
#define HOST_ARCH "s390x"
#elif defined(__riscv) && __riscv_xlen == 64
#define HOST_ARCH "riscv64"
#else
#define HOST_ARCH "unknown"
#endif

/* How deep image indexes may nest (an index.json pointing at a manifest list is depth 1). */
#define MAX_INDEX_DEPTH 3

struct import {
	struct keel_image_store *s;
	const char *os, *arch, *variant;
	int src_fd;
	bool src_ours;           /* src is our own extraction: blobs may be hardlinked */
	char extract_rel[128];   /* tmp/archive-XXXXXX, or "" */
	char stage_rel[128];     /* tmp/stage-XXXXXX */
	int stage_fd;
	unsigned tmp_seq;
	struct image_index known; /* the store's index when the import began */
	struct image_index found; /* what this import adds */
	struct keel_buf platforms; /* platforms seen and skipped, for the error message */
};

static bool blob_staged(struct import *im, const char *digest, uint64_t *ret_size)
{
	struct stat st;
	if (fstatat(im->stage_fd, keel_digest_hex(digest), &st, AT_SYMLINK_NOFOLLOW) < 0)
		return false;
	*ret_size = (uint64_t)st.st_size;
	return true;
}

static bool blob_stored(struct import *im, const char *digest, uint64_t *ret_size)
{
	char rel[128];
	struct stat st;
	snprintf(rel, sizeof(rel), KEEL_IMAGE_BLOBS "/%s", keel_digest_hex(digest));
	if (fstatat(im->s->root_fd, rel, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode))
		return false;
	*ret_size = (uint64_t)st.st_size;
	return true;
}

static int open_blob(struct import *im, const char *digest)
{
	int fd = open_beneath(im->stage_fd, keel_digest_hex(digest), O_RDONLY, 0, 0);
	if (fd != -ENOENT)
		return fd;
	char rel[128];
	snprintf(rel, sizeof(rel), KEEL_IMAGE_BLOBS "/%s", keel_digest_hex(digest));
	return open_beneath(im->s->root_fd, rel, O_RDONLY, 0, 0);
}

/* `what` is a path that holds the expected digest (blobs/sha256/<hex>, <hex>.json). */
static int mismatch(struct keel_err *err, const char *what, const char *got)
{
	return keel_err_set(err, -KEEL_ECORRUPT, "%.100s: digest mismatch: the content hashes to %.71s",
			    what, got);
}

/* Stage bytes we hold in memory (a verified JSON document, a synthesised manifest). */
static int stage_bytes(struct import *im, const void *data, size_t len, const char *digest,
		       struct keel_err *err)
{
	uint64_t size;
	if (blob_staged(im, digest, &size) || blob_stored(im, digest, &size))
		return 0;
	char tmp[32];
	snprintf(tmp, sizeof(tmp), ".in-%u", im->tmp_seq++);
	int fd = keel_sys_openat(im->stage_fd, tmp, O_WRONLY | O_CREAT | O_EXCL, 0644);
	if (fd < 0)
		return keel_err_errno(err, fd, "staging %s", digest);
	int r = keel_sys_write_all(fd, data, len);
	if (r == 0)
		r = keel_sys_fsync(fd);
	int rc = keel_sys_close(fd);
	if (r == 0)
		r = rc;
	if (r == 0 && renameat(im->stage_fd, tmp, im->stage_fd, keel_digest_hex(digest)) < 0)
		r = -errno;
	if (r < 0) {
		unlinkat(im->stage_fd, tmp, 0);
		return keel_err_errno(err, r, "staging %s", digest);
	}
	return 0;
}

static int open_src(struct import *im, const char *rel, struct stat *st, struct keel_err *err)
{
	int fd = open_beneath(im->src_fd, rel, O_RDONLY | O_NOCTTY, 0, 0);
	if (fd == -ENOENT)
		return keel_err_set(err, -KEEL_ECORRUPT, "%.200s: missing from the image archive", rel);
	if (fd == -EXDEV)
		return keel_err_set(err, -EPERM, "%.200s: resolves outside the image archive", rel);
	if (fd < 0)
		return keel_err_errno(err, fd, "%.200s", rel);
	if (fstat(fd, st) < 0 || !S_ISREG(st->st_mode)) {
		close(fd);
		return keel_err_set(err, -KEEL_ECORRUPT, "%.200s: not a regular file", rel);
	}
	return fd;
}

/* A JSON document of the archive, checked against its descriptor when there is one (expect
 * may be NULL: then *ret_digest gets the computed one). */
static int read_doc(struct import *im, const char *rel, const char *expect, int64_t expect_size,
		    char **ret, size_t *ret_len, char ret_digest[KEEL_DIGEST_MAX], struct keel_err *err)
{
	char *data;
	size_t len;
	int r = read_file_beneath(im->src_fd, rel, KEEL_IMAGE_JSON_MAX, &data, &len, err);
	if (r == -ENOENT)
		return keel_err_set(err, -KEEL_ECORRUPT, "%.200s: missing from the image archive", rel);
	if (r == -EXDEV)
		return keel_err_set(err, -EPERM, "%.200s: resolves outside the image archive", rel);
	if (r < 0)
		return r;
	if (expect_size >= 0 && (uint64_t)expect_size != len) {
		keel_free(data);
		return keel_err_set(err, -KEEL_ECORRUPT, "%.200s: size mismatch: expected %lld bytes, file "
				    "has %zu", rel, (long long)expect_size, len);
	}
	char digest[KEEL_DIGEST_MAX];
	if ((r = keel_sha256_buf(data, len, digest)) < 0) {
		keel_free(data);
		return keel_err_set(err, r, "out of memory");
	}
	if (expect && strcmp(expect, digest) != 0) {
		keel_free(data);
		return mismatch(err, rel, digest);
	}
	if (ret_digest)
		memcpy(ret_digest, digest, KEEL_DIGEST_MAX);
	*ret = data;
	*ret_len = len;
	return 0;
}

/* Stage a (large) blob from the archive by streaming it: hashed in place and hardlinked when the
 * archive is our own extraction, else copied. */
static int stage_file(struct import *im, const char *rel, const char *expect, int64_t expect_size,
		      char ret_digest[KEEL_DIGEST_MAX], uint64_t *ret_size, struct keel_err *err)
{
	uint64_t have;
	if (expect && (blob_staged(im, expect, &have) || blob_stored(im, expect, &have))) {
		/* Content-addressed: what we hold under this digest was checked when it came in. */
		if (expect_size >= 0 && have != (uint64_t)expect_size)
			return keel_err_set(err, -KEEL_ECORRUPT, "%.200s: size mismatch: expected %lld "
					    "bytes, blob %.19s has %llu", rel, (long long)expect_size,
					    expect, (unsigned long long)have);
		memcpy(ret_digest, expect, KEEL_DIGEST_MAX);
		*ret_size = have;
		return 0;
	}
	struct stat st;
	int fd = open_src(im, rel, &st, err);
	if (fd < 0)
		return fd;
	int r = 0, out = -1;
	char tmp[32] = "", digest[KEEL_DIGEST_MAX];
	uint64_t size = 0;
	if (expect_size >= 0 && (uint64_t)st.st_size != (uint64_t)expect_size) {
		r = keel_err_set(err, -KEEL_ECORRUPT, "%.200s: size mismatch: expected %lld bytes, file has "
				 "%lld", rel, (long long)expect_size, (long long)st.st_size);
		goto done;
	}
	if (im->src_ours) {
		if ((r = keel_sha256_fd(fd, digest, &size)) < 0) {
			r = keel_err_errno(err, r, "reading %.200s", rel);
			goto done;
		}
	} else {
		struct keel_sha256 *h = keel_sha256_new();
		char *buf = keel_malloc(128 * 1024);
		snprintf(tmp, sizeof(tmp), ".in-%u", im->tmp_seq++);
		out = keel_sys_openat(im->stage_fd, tmp, O_WRONLY | O_CREAT | O_EXCL, 0644);
		if (!h || !buf || out < 0) {
			r = out < 0 ? keel_err_errno(err, out, "staging %.200s", rel)
				    : keel_err_set(err, -ENOMEM, "out of memory");
		}
		while (r == 0) {
			ssize_t n = keel_sys_read(fd, buf, 128 * 1024);
			if (n < 0)
				r = keel_err_errno(err, (int)n, "reading %.200s", rel);
			if (n <= 0)
				break;
			keel_sha256_update(h, buf, (size_t)n);
			size += (uint64_t)n;
			int w = keel_sys_write_all(out, buf, (size_t)n);
			if (w < 0)
				r = keel_err_errno(err, w, "staging %.200s", rel);
		}
		if (r == 0)
			keel_sha256_final(h, digest);
		keel_sha256_free(h);
		keel_free(buf);
		if (r < 0)
			goto done;
	}
	if (expect && strcmp(expect, digest) != 0) {
		r = mismatch(err, rel, digest);
		goto done;
	}
	if (expect_size >= 0 && size != (uint64_t)expect_size) {
		r = keel_err_set(err, -KEEL_ECORRUPT, "%.200s: size changed while reading", rel);
		goto done;
	}
	if (blob_staged(im, digest, &have) || blob_stored(im, digest, &have))
		goto done; /* the same content under another path: keep the one we have */
	if (im->src_ours) {
		/* A hardlink to the extracted file (through /proc: it may have been reached through a
		 * symlink of the archive, as docker-archive's <id>/layer.tar are). */
		char proc[64];
		snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
		int s1 = keel_sys_fsync(fd);
		if (s1 == 0 && linkat(AT_FDCWD, proc, im->stage_fd, keel_digest_hex(digest), AT_SYMLINK_FOLLOW) < 0 &&
		    errno != EEXIST)
			s1 = -errno;
		if (s1 < 0)
			r = keel_err_errno(err, s1, "staging %.200s", rel);
	} else {
		int s1 = keel_sys_fsync(out);
		if (s1 < 0 || renameat(im->stage_fd, tmp, im->stage_fd, keel_digest_hex(digest)) < 0)
			r = keel_err_errno(err, s1 < 0 ? s1 : -errno, "staging %.200s", rel);
		else
			tmp[0] = '\0';
	}
done:
	if (out >= 0)
		close(out);
	if (tmp[0])
		unlinkat(im->stage_fd, tmp, 0);
	close(fd);
	if (r == 0) {
		memcpy(ret_digest, digest, KEEL_DIGEST_MAX);
		*ret_size = size;
	}
	return r;
}

static const struct keel_image_layer *known_layer(struct import *im, const char *digest)
{
	for (size_t i = 0; i < im->known.n; i++)
		for (size_t k = 0; k < im->known.images[i]->n_layers; k++)
			if (strcmp(im->known.images[i]->layers[k].digest, digest) == 0)
				return &im->known.images[i]->layers[k];
	return NULL;
}

static const char *kind_media_type(enum keel_media_kind k)
{
	return k == KEEL_MEDIA_LAYER_GZIP ? KEEL_MT_OCI_LAYER_GZIP
	       : k == KEEL_MEDIA_LAYER_ZSTD ? KEEL_MT_OCI_LAYER_ZSTD : KEEL_MT_OCI_LAYER;
}

/* Fill layer i of img for a staged blob, checking its uncompressed digest against the config.
 * media_type NULL: name it after the compression found (docker-archives say nothing). */
static int add_layer(struct import *im, struct keel_image *img, size_t i, const char *digest,
		     uint64_t size, const char *want_diff_id, const char *media_type, struct keel_err *err)
{
	struct keel_image_layer *L = &img->layers[i];
	memcpy(L->digest, digest, KEEL_DIGEST_MAX);
	L->size = size;
	enum keel_media_kind kind = KEEL_MEDIA_LAYER_TAR;
	const struct keel_image_layer *k = known_layer(im, digest);
	if (k) {
		memcpy(L->diff_id, k->diff_id, KEEL_DIGEST_MAX);
		L->tar_size = k->tar_size;
		kind = keel_media_kind(k->media_type);
	} else if (strcmp(digest, want_diff_id) == 0) {
		/* The blob hashes to the diff_id: it is the uncompressed tar itself. */
		memcpy(L->diff_id, digest, KEEL_DIGEST_MAX);
		L->tar_size = size;
	} else {
		int fd = open_blob(im, digest);
		if (fd < 0)
			return keel_err_errno(err, fd, "opening staged layer %s", digest);
		int r = layer_diff_id(fd, L->diff_id, &L->tar_size, &kind, err);
		close(fd);
		if (r < 0)
			return keel_err_wrap(err, "layer %zu (%.19s)", i, digest);
	}
	if (strcmp(L->diff_id, want_diff_id) != 0)
		return keel_err_set(err, -KEEL_ECORRUPT, "layer %zu (%.19s): uncompressed digest %.71s does "
				    "not match the config's diff_id %.71s", i, digest, L->diff_id, want_diff_id);
	L->media_type = keel_strdup(media_type ? media_type : kind_media_type(kind));
	if (!L->media_type)
		return keel_err_set(err, -ENOMEM, "out of memory");
	return 0;
}

/* A new image record for a parsed config with n layers. */
static int new_image(const char *config_digest, const struct keel_image_config *cfg, size_t n,
		     struct keel_image **ret, struct keel_err *err)
{
	if (keel_strv_len(cfg->diff_ids) != n)
		return keel_err_set(err, -KEEL_ECORRUPT, "the manifest has %zu layers, the config %zu diff_ids",
				    n, keel_strv_len(cfg->diff_ids));
	struct keel_image *img = keel_calloc(1, sizeof(*img));
	if (!img)
		return keel_err_set(err, -ENOMEM, "out of memory");
	memcpy(img->id, config_digest, KEEL_DIGEST_MAX);
	img->created_ns = cfg->created_ns;
	img->imported_ns = keel_wall_ns();
	img->layers = keel_calloc(n + 1, sizeof(*img->layers));
	img->os = keel_strdup(cfg->os);
	img->arch = keel_strdup(cfg->arch);
	img->variant = cfg->variant ? keel_strdup(cfg->variant) : NULL;
	img->n_layers = img->layers ? n : 0;
	if (!img->layers || !img->os || !img->arch || (cfg->variant && !img->variant)) {
		keel_image_free(img);
		return keel_err_set(err, -ENOMEM, "out of memory");
	}
	*ret = img;
	return 0;
}

/* A name from an archive, normalised; names Keel cannot use are dropped (the image stays). */
static int add_name(struct keel_image *img, const char *name)
{
	char *n = NULL;
	if (!name || keel_image_name_normalize(name, &n, NULL) < 0)
		return 0;
	if (keel_strv_contains(img->names, n)) {
		keel_free(n);
		return 0;
	}
	return keel_strv_consume(&img->names, n);
}

static int oci_image(struct import *im, const struct keel_oci_descriptor *d, const char *data, size_t len,
		     const struct keel_oci_descriptor *named_by, struct keel_err *err)
{
	struct keel_oci_manifest *m = NULL;
	struct keel_image_config *cfg = NULL;
	struct keel_image *img = NULL;
	char *cdata = NULL, rel[128];
	size_t clen;
	int r = keel_oci_manifest_parse(data, len, &m, err);
	if (r < 0)
		goto out;
	snprintf(rel, sizeof(rel), "blobs/sha256/%s", keel_digest_hex(m->config.digest));
	if ((r = read_doc(im, rel, m->config.digest, (int64_t)m->config.size, &cdata, &clen, NULL, err)) < 0 ||
	    (r = keel_image_config_parse(cdata, clen, &cfg, err)) < 0 ||
	    (r = stage_bytes(im, cdata, clen, m->config.digest, err)) < 0 ||
	    (r = new_image(m->config.digest, cfg, m->n_layers, &img, err)) < 0)
		goto out;
	memcpy(img->manifest, d->digest, KEEL_DIGEST_MAX);
	const char *mt = m->media_type ? m->media_type : d->media_type ? d->media_type : KEEL_MT_OCI_MANIFEST;
	if (!(img->manifest_media_type = keel_strdup(mt))) {
		r = keel_err_set(err, -ENOMEM, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < m->n_layers; i++) {
		const struct keel_oci_descriptor *L = &m->layers[i];
		char digest[KEEL_DIGEST_MAX];
		uint64_t size;
		snprintf(rel, sizeof(rel), "blobs/sha256/%s", keel_digest_hex(L->digest));
		if ((r = stage_file(im, rel, L->digest, (int64_t)L->size, digest, &size, err)) < 0 ||
		    (r = add_layer(im, img, i, digest, size, cfg->diff_ids[i], L->media_type, err)) < 0)
			goto out;
		img->size += img->layers[i].tar_size;
	}
	if ((r = stage_bytes(im, data, len, d->digest, err)) < 0)
		goto out;
	/* A full reference names the image; a bare tag ("latest", what skopeo's oci:DIR:TAG
	 * writes) does not say which repository, so it is left for the NAME argument. */
	const char *ref = named_by->ref_name;
	if ((r = add_name(img, named_by->image_name)) < 0 ||
	    (ref && (strchr(ref, '/') || strchr(ref, ':')) && (r = add_name(img, ref)) < 0)) {
		r = keel_err_set(err, -ENOMEM, "out of memory");
		goto out;
	}
	r = index_add(&im->found, img, err);
	img = NULL;
out:
	keel_image_free(img);
	keel_image_config_free(cfg);
	keel_oci_manifest_free(m);
	keel_free(cdata);
	if (r < 0)
		keel_err_wrap(err, "manifest %.19s", d->digest);
	return r;
}

/* Does a JSON document without a mediaType look like an index? */
static bool looks_like_index(const char *data, size_t len)
{
	json_t *doc;
	if (keel_json_parse(data, len, false, &doc, NULL) < 0)
		return false;
	bool yes = json_is_object(doc) && json_object_get(doc, "manifests");
	json_decref(doc);
	return yes;
}

static int oci_collect(struct import *im, const struct keel_oci_descriptor *d,
		       const struct keel_oci_descriptor *named_by, int depth, struct keel_err *err)
{
	if (d->has_platform && !keel_oci_platform_match(&d->platform, im->os, im->arch, im->variant)) {
		if (im->platforms.len < 400 &&
		    keel_buf_printf(&im->platforms, "%s%s/%s%s%s", im->platforms.len ? ", " : "",
				    d->platform.os, d->platform.arch, d->platform.variant ? "/" : "",
				    d->platform.variant ? d->platform.variant : "") < 0)
			return keel_err_set(err, -ENOMEM, "out of memory");
		return 0;
	}
	enum keel_media_kind kind = keel_media_kind(d->media_type);
	if (kind == KEEL_MEDIA_SCHEMA1)
		return keel_err_set(err, -ENOTSUP, "manifest %.19s: Docker schema 1 manifests are not "
				    "supported", d->digest);
	if (d->media_type && kind != KEEL_MEDIA_INDEX && kind != KEEL_MEDIA_MANIFEST)
		return 0; /* an artifact, a signature, an attestation: not an image */
	char rel[128], *data;
	size_t len;
	snprintf(rel, sizeof(rel), "blobs/sha256/%s", keel_digest_hex(d->digest));
	int r = read_doc(im, rel, d->digest, (int64_t)d->size, &data, &len, NULL, err);
	if (r < 0)
		return r;
	if (kind == KEEL_MEDIA_UNKNOWN)
		kind = looks_like_index(data, len) ? KEEL_MEDIA_INDEX : KEEL_MEDIA_MANIFEST;
	if (kind == KEEL_MEDIA_MANIFEST) {
		r = oci_image(im, d, data, len, named_by, err);
		keel_free(data);
		return r;
	}
	struct keel_oci_index *sub = NULL;
	if (depth >= MAX_INDEX_DEPTH)
		r = keel_err_set(err, -ENOTSUP, "index %.19s: indexes nested deeper than %d", d->digest,
				 MAX_INDEX_DEPTH);
	else
		r = keel_oci_index_parse(data, len, &sub, err);
	keel_free(data);
	if (r < 0)
		return r;
	/* A nested index is one image for several platforms: the first that fits is it. */
	size_t before = im->found.n;
	for (size_t i = 0; i < sub->n_manifests && im->found.n == before && r == 0; i++)
		r = oci_collect(im, &sub->manifests[i], named_by, depth + 1, err);
	keel_oci_index_free(sub);
	return r;
}

static int oci_import(struct import *im, struct keel_err *err)
{
	char *data;
	size_t len;
	int r = read_file_beneath(im->src_fd, "oci-layout", 4096, &data, &len, err);
	if (r < 0)
		return keel_err_wrap(err, "not an OCI image layout");
	json_t *doc;
	const char *version = NULL;
	r = keel_json_parse(data, len, false, &doc, err);
	keel_free(data);
	if (r < 0)
		return keel_err_wrap(err, "oci-layout");
	r = keel_json_get_str(doc, "", "imageLayoutVersion", true, &version, err);
	if (r == 0 && !keel_startswith(version, "1."))
		r = keel_err_set(err, -ENOTSUP, "oci-layout: imageLayoutVersion \"%.20s\" is not 1.x", version);
	json_decref(doc);
	if (r < 0)
		return keel_err_wrap(err, "oci-layout");

	if ((r = read_file_beneath(im->src_fd, "index.json", KEEL_IMAGE_JSON_MAX, &data, &len, err)) < 0)
		return r;
	struct keel_oci_index *idx;
	r = keel_oci_index_parse(data, len, &idx, err);
	keel_free(data);
	if (r < 0)
		return keel_err_wrap(err, "index.json");
	for (size_t i = 0; i < idx->n_manifests && r == 0; i++)
		r = oci_collect(im, &idx->manifests[i], &idx->manifests[i], 0, err);
	keel_oci_index_free(idx);
	if (r == 0 && im->found.n == 0)
		r = keel_err_set(err, -ENOENT, "no image for %s/%s%s%s in the archive%s%s%s", im->os, im->arch,
				 im->variant ? "/" : "", im->variant ? im->variant : "",
				 im->platforms.len ? " (it has: " : "", im->platforms.len ? im->platforms.data : "",
				 im->platforms.len ? ")" : "");
	return r;
}

static int docker_manifest_json(const struct keel_image *img, const char *config_digest, uint64_t config_size,
				char **ret, size_t *ret_len)
{
	json_t *m = json_pack("{s:i, s:s, s:{s:s, s:s, s:I}}", "schemaVersion", 2, "mediaType",
			      KEEL_MT_OCI_MANIFEST, "config", "mediaType", KEEL_MT_OCI_CONFIG, "digest",
			      config_digest, "size", (json_int_t)config_size);
	json_t *layers = json_array();
	int bad = !m || !layers;
	for (size_t i = 0; !bad && i < img->n_layers; i++) {
		const struct keel_image_layer *L = &img->layers[i];
		bad |= json_array_append_new(layers, json_pack("{s:s, s:s, s:I}", "mediaType", L->media_type,
								"digest", L->digest, "size",
								(json_int_t)L->size));
	}
	bad |= json_object_set(m, "layers", layers);
	json_decref(layers);
	int r = bad ? -ENOMEM : image_json_dump(m, JSON_COMPACT, ret, ret_len);
	json_decref(m);
	return r;
}

static int docker_image(struct import *im, const struct keel_docker_entry *e, size_t pos, struct keel_err *err)
{
	struct keel_image_config *cfg = NULL;
	struct keel_image *img = NULL;
	char *cdata = NULL, *mdata = NULL, config_digest[KEEL_DIGEST_MAX];
	size_t clen, mlen;
	int r;
	if ((r = read_doc(im, e->config, NULL, -1, &cdata, &clen, config_digest, err)) < 0 ||
	    (r = keel_image_config_parse(cdata, clen, &cfg, err)) < 0 ||
	    (r = stage_bytes(im, cdata, clen, config_digest, err)) < 0 ||
	    (r = new_image(config_digest, cfg, e->n_layers, &img, err)) < 0)
		goto out;
	/* Where the archive names its config by digest (<hex>.json, blobs/sha256/<hex>), that name
	 * is one more check. */
	const char *base = strrchr(e->config, '/') ? strrchr(e->config, '/') + 1 : e->config;
	if (strlen(base) >= KEEL_DIGEST_HEX_LEN && (base[64] == '\0' || !strcmp(base + 64, ".json"))) {
		bool hexname = true;
		for (size_t i = 0; i < KEEL_DIGEST_HEX_LEN; i++)
			hexname &= (base[i] >= '0' && base[i] <= '9') || (base[i] >= 'a' && base[i] <= 'f');
		if (hexname && strncmp(base, keel_digest_hex(config_digest), KEEL_DIGEST_HEX_LEN) != 0) {
			r = mismatch(err, e->config, config_digest);
			goto out;
		}
	}
	for (size_t i = 0; i < e->n_layers; i++) {
		char digest[KEEL_DIGEST_MAX];
		uint64_t size;
		if ((r = stage_file(im, e->layers[i], NULL, -1, digest, &size, err)) < 0 ||
		    (r = add_layer(im, img, i, digest, size, cfg->diff_ids[i], NULL, err)) < 0)
			goto out;
		img->size += img->layers[i].tar_size;
	}
	/* docker-archives have no manifest: write the OCI manifest that describes what we stored. */
	if ((r = docker_manifest_json(img, config_digest, clen, &mdata, &mlen)) < 0 ||
	    (r = keel_sha256_buf(mdata, mlen, img->manifest)) < 0) {
		r = keel_err_set(err, r, "out of memory");
		goto out;
	}
	if ((r = stage_bytes(im, mdata, mlen, img->manifest, err)) < 0)
		goto out;
	if (!(img->manifest_media_type = keel_strdup(KEEL_MT_OCI_MANIFEST))) {
		r = keel_err_set(err, -ENOMEM, "out of memory");
		goto out;
	}
	for (size_t i = 0; e->repo_tags && e->repo_tags[i]; i++)
		if ((r = add_name(img, e->repo_tags[i])) < 0) {
			r = keel_err_set(err, -ENOMEM, "out of memory");
			goto out;
		}
	r = index_add(&im->found, img, err);
	img = NULL;
out:
	keel_image_free(img);
	keel_image_config_free(cfg);
	keel_free(cdata);
	keel_free(mdata);
	if (r < 0)
		keel_err_wrap(err, "manifest.json[%zu]", pos);
	return r;
}

static int docker_import(struct import *im, struct keel_err *err)
{
	char *data;
	size_t len;
	int r = read_file_beneath(im->src_fd, "manifest.json", KEEL_IMAGE_JSON_MAX, &data, &len, err);
	if (r < 0)
		return r;
	struct keel_docker_manifest *m;
	r = keel_docker_manifest_parse(data, len, &m, err);
	keel_free(data);
	if (r < 0)
		return r;
	for (size_t i = 0; i < m->n_entries && r == 0; i++)
		r = docker_image(im, &m->entries[i], i, err);
	keel_docker_manifest_free(m);
	return r;
}

/* Move the staged blobs into blobs/sha256 and add the images to the index. */
static int commit(struct import *im, struct keel_image_list **ret, struct keel_err *err)
{
	struct keel_image_store *s = im->s;
	int lk = store_lock(s, KEEL_IMAGE_INDEX_LOCK, LOCK_EX, err);
	if (lk < 0)
		return lk;
	struct image_index idx = {0};
	int r = 0;
	DIR *d = fdopendir(fcntl(im->stage_fd, F_DUPFD_CLOEXEC, 3));
	if (!d) {
		r = keel_err_errno(err, -errno, "reading %s/%s", s->root, im->stage_rel);
		goto out;
	}
	struct dirent *e;
	while ((e = readdir(d)) && r == 0) {
		if (strlen(e->d_name) != KEEL_DIGEST_HEX_LEN || !keel_is_hex_prefix(e->d_name))
			continue;
		char to[128];
		snprintf(to, sizeof(to), KEEL_IMAGE_BLOBS "/%s", e->d_name);
		if (renameat2(im->stage_fd, e->d_name, s->root_fd, to, RENAME_NOREPLACE) < 0 && errno != EEXIST)
			r = keel_err_errno(err, -errno, "moving blob %s into the store", e->d_name);
	}
	closedir(d);
	if (r < 0)
		goto out;
	int bfd = open_beneath(s->root_fd, KEEL_IMAGE_BLOBS, O_RDONLY | O_DIRECTORY, 0, 0);
	if (bfd < 0 || fsync(bfd) < 0) {
		r = keel_err_errno(err, bfd < 0 ? bfd : -errno, "fsync %s/" KEEL_IMAGE_BLOBS, s->root);
		if (bfd >= 0)
			close(bfd);
		goto out;
	}
	close(bfd);
	if ((r = index_load(s, &idx, err)) < 0)
		goto out;
	for (size_t i = 0; i < im->found.n && r == 0; i++) {
		struct keel_image *c = image_dup(im->found.images[i]);
		r = c ? index_add(&idx, c, err) : keel_err_set(err, -ENOMEM, "out of memory");
	}
	if (r == 0)
		r = index_save(s, &idx, err);
	if (r == 0 && ret) {
		/* The report is what this import did: its images with the names it gave them. */
		struct keel_image_list *l = keel_calloc(1, sizeof(*l));
		if (l)
			l->images = keel_calloc(im->found.n + 1, sizeof(*l->images));
		for (size_t i = 0; l && l->images && i < im->found.n; i++) {
			if (!(l->images[l->n] = image_dup(im->found.images[i])))
				break;
			l->n++;
		}
		if (!l || !l->images || l->n != im->found.n) {
			keel_image_list_free(l);
			/* The import itself is done; only the report failed. */
			r = keel_err_set(err, -ENOMEM, "out of memory");
		} else {
			*ret = l;
		}
	}
out:
	index_clear(&idx);
	store_unlock(lk);
	return r;
}

static int open_source(struct import *im, const char *path, struct keel_err *err)
{
	struct stat st;
	if (stat(path, &st) < 0)
		return keel_err_errno(err, -errno, "%s", path);
	if (S_ISDIR(st.st_mode)) {
		im->src_fd = keel_sys_open(path, O_RDONLY | O_DIRECTORY, 0);
		return im->src_fd < 0 ? keel_err_errno(err, im->src_fd, "%s", path) : 0;
	}
	if (!S_ISREG(st.st_mode))
		return keel_err_set(err, -EINVAL, "%s: neither a directory nor an archive file", path);
	int fd = keel_sys_open(path, O_RDONLY | O_NOCTTY, 0);
	if (fd < 0)
		return keel_err_errno(err, fd, "%s", path);
	int r = make_tmp_dir(im->s, "archive-", im->extract_rel, sizeof(im->extract_rel), err);
	if (r == 0) {
		char full[4200];
		snprintf(full, sizeof(full), "%s/%s", im->s->root, im->extract_rel);
		r = extract_archive(fd, full, err);
		if (r < 0)
			keel_err_wrap(err, "%s", path);
	}
	close(fd);
	if (r < 0)
		return r;
	im->src_ours = true;
	im->src_fd = open_beneath(im->s->root_fd, im->extract_rel, O_RDONLY | O_DIRECTORY, 0, 0);
	return im->src_fd < 0 ? keel_err_errno(err, im->src_fd, "%s", im->extract_rel) : 0;
}

int keel_image_import(struct keel_image_store *s, const char *path, const char *name,
		      const struct keel_image_import_opts *opts, struct keel_image_list **ret,
		      struct keel_err *err)
{
	if (!s || !path)
		return keel_err_set(err, -EINVAL, "no path to import");
	struct import im = {
		.s = s,
		.os = opts && opts->os ? opts->os : "linux",
		.arch = opts && opts->arch ? opts->arch : HOST_ARCH,
		.variant = opts ? opts->variant : NULL,
		.src_fd = -1,
		.stage_fd = -1,
		.platforms = KEEL_BUF_INIT,
	};
	char *norm = NULL;
	int r = 0;
	if (name && (r = keel_image_name_normalize(name, &norm, err)) < 0)
		return r;
	int lk = store_lock(s, KEEL_IMAGE_GC_LOCK, LOCK_SH, err);
	if (lk < 0) {
		keel_free(norm);
		return lk;
	}
	if ((r = make_tmp_dir(s, "stage-", im.stage_rel, sizeof(im.stage_rel), err)) < 0)
		goto out;
	im.stage_fd = open_beneath(s->root_fd, im.stage_rel, O_RDONLY | O_DIRECTORY, 0, 0);
	if (im.stage_fd < 0) {
		r = keel_err_errno(err, im.stage_fd, "%s/%s", s->root, im.stage_rel);
		goto out;
	}
	if ((r = index_load(s, &im.known, err)) < 0 || (r = open_source(&im, path, err)) < 0)
		goto out;
	struct stat st;
	if (fstatat(im.src_fd, "index.json", &st, 0) == 0)
		r = oci_import(&im, err);
	else if (fstatat(im.src_fd, "manifest.json", &st, 0) == 0)
		r = docker_import(&im, err);
	else
		r = keel_err_set(err, -EINVAL, "%s: neither an OCI image layout (no index.json) nor a "
				 "docker-archive (no manifest.json)", path);
	if (r < 0)
		goto out;
	if (norm) {
		if (im.found.n != 1) {
			r = keel_err_set(err, -EINVAL, "%s holds %zu images: import it without a name to "
					 "keep the names it has", path, im.found.n);
			goto out;
		}
		struct keel_image *img = im.found.images[0];
		keel_strv_free(img->names);
		img->names = NULL;
		if ((r = keel_strv_push(&img->names, norm)) < 0) {
			r = keel_err_set(err, -ENOMEM, "out of memory");
			goto out;
		}
	}
	r = commit(&im, ret, err);
out:
	if (im.src_fd >= 0)
		close(im.src_fd);
	if (im.stage_fd >= 0)
		close(im.stage_fd);
	if (im.stage_rel[0])
		rm_rf_at(s->root_fd, im.stage_rel);
	if (im.extract_rel[0])
		rm_rf_at(s->root_fd, im.extract_rel);
	index_clear(&im.known);
	index_clear(&im.found);
	keel_buf_free(&im.platforms);
	keel_free(norm);
	store_unlock(lk);
	return r;
}
