/* The JSON documents of container images, parsed into plain structs: OCI image indexes and
 * manifests (image-spec 1.1, and Docker's schema 2 equivalents), docker-archive manifest.json,
 * and the image configuration. Pure parsing without I/O; every document comes from an
 * untrusted archive, so each parser checks types, digests and sizes and names the offending
 * field in its error (tests/fuzz/fuzz_image_json.c runs them on arbitrary input). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/errors.h"
#include "image/digest.h"

/* Largest manifest, index or config Keel reads into memory (the distribution spec's limit for
 * manifests is 4 MiB; configs with long histories can be bigger). */
#define KEEL_IMAGE_JSON_MAX (8u << 20)

/* Media types, by what Keel does with them. */
enum keel_media_kind {
	KEEL_MEDIA_UNKNOWN,
	KEEL_MEDIA_INDEX,        /* OCI image index, Docker manifest list */
	KEEL_MEDIA_MANIFEST,     /* OCI image manifest, Docker schema 2 manifest */
	KEEL_MEDIA_SCHEMA1,      /* Docker schema 1 (signed or not): refused */
	KEEL_MEDIA_CONFIG,       /* OCI image config, Docker container image config */
	KEEL_MEDIA_LAYER_TAR,    /* uncompressed tar layer */
	KEEL_MEDIA_LAYER_GZIP,
	KEEL_MEDIA_LAYER_ZSTD,
};

#define KEEL_MT_OCI_INDEX "application/vnd.oci.image.index.v1+json"
#define KEEL_MT_OCI_MANIFEST "application/vnd.oci.image.manifest.v1+json"
#define KEEL_MT_OCI_CONFIG "application/vnd.oci.image.config.v1+json"
#define KEEL_MT_OCI_LAYER "application/vnd.oci.image.layer.v1.tar"
#define KEEL_MT_OCI_LAYER_GZIP "application/vnd.oci.image.layer.v1.tar+gzip"
#define KEEL_MT_OCI_LAYER_ZSTD "application/vnd.oci.image.layer.v1.tar+zstd"

enum keel_media_kind keel_media_kind(const char *media_type);

struct keel_oci_platform {
	char *os;
	char *arch;
	char *variant; /* NULL when absent */
};

/* A content descriptor (image-spec descriptor.md), with the two annotations Keel reads. */
struct keel_oci_descriptor {
	char *media_type; /* NULL when absent (allowed for index entries of old writers) */
	char digest[KEEL_DIGEST_MAX];
	uint64_t size;
	bool has_platform;
	struct keel_oci_platform platform;
	char *ref_name;   /* org.opencontainers.image.ref.name, or NULL */
	char *image_name; /* io.containerd.image.name (docker save >= 25), or NULL */
};

struct keel_oci_index {
	size_t n_manifests;
	struct keel_oci_descriptor *manifests;
};

struct keel_oci_manifest {
	char *media_type; /* NULL when the document does not say */
	struct keel_oci_descriptor config;
	size_t n_layers;
	struct keel_oci_descriptor *layers;
	enum keel_media_kind *layer_kinds; /* KEEL_MEDIA_LAYER_* per layer */
};

/* One image of a docker-archive's manifest.json. Paths are as written in the archive
 * (relative to its root, unchecked: open them with a resolver that stays beneath the root). */
struct keel_docker_entry {
	char *config;
	char **repo_tags; /* NULL-terminated, may be NULL */
	size_t n_layers;
	char **layers;
};

struct keel_docker_manifest {
	size_t n_entries;
	struct keel_docker_entry *entries;
};

struct keel_image_label {
	char *key;
	char *value;
};

/* What a runtime needs from an image configuration (image-spec config.md). Vectors are
 * NULL-terminated; NULL means the field was absent (or null), a non-NULL empty vector that it
 * was present and empty, which matters for Entrypoint/Cmd overrides. */
struct keel_image_config {
	char *os;
	char *arch;
	char *variant;
	int64_t created_ns; /* 0 when absent or unparseable */
	char **env;         /* "NAME=value" */
	char **entrypoint;
	char **cmd;
	char *working_dir;
	char *user;
	char *stop_signal;
	char **exposed_ports; /* "80/tcp", sorted */
	char **volumes;       /* "/data", sorted */
	size_t n_labels;
	struct keel_image_label *labels; /* sorted by key */
	char **diff_ids;      /* rootfs.diff_ids, base layer first */
};

/* Each parser: 0 with *ret owned by the caller, or -KEEL_EPARSE (not JSON), -KEEL_ETYPE,
 * -KEEL_EMISSING, -EINVAL (bad digest, size or value), -ENOTSUP (a valid document Keel does not
 * handle: schema 1, a non-image artifact, a digest algorithm other than sha256), -ENOMEM. */
int keel_oci_index_parse(const char *data, size_t len, struct keel_oci_index **ret, struct keel_err *err);
void keel_oci_index_free(struct keel_oci_index *idx);

int keel_oci_manifest_parse(const char *data, size_t len, struct keel_oci_manifest **ret,
			    struct keel_err *err);
void keel_oci_manifest_free(struct keel_oci_manifest *m);

int keel_docker_manifest_parse(const char *data, size_t len, struct keel_docker_manifest **ret,
			       struct keel_err *err);
void keel_docker_manifest_free(struct keel_docker_manifest *m);

int keel_image_config_parse(const char *data, size_t len, struct keel_image_config **ret,
			    struct keel_err *err);
void keel_image_config_free(struct keel_image_config *c);

/* Does a descriptor's platform match os/arch[/variant]? An absent variant on either side
 * matches any. */
bool keel_oci_platform_match(const struct keel_oci_platform *p, const char *os, const char *arch,
			     const char *variant);
