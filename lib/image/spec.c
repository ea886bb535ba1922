#include "image/spec.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/json.h"
#include "base/mem.h"
#include "base/str.h"

static const struct {
	const char *type;
	enum keel_media_kind kind;
} media_types[] = {
	{KEEL_MT_OCI_INDEX, KEEL_MEDIA_INDEX},
	{"application/vnd.docker.distribution.manifest.list.v2+json", KEEL_MEDIA_INDEX},
	{KEEL_MT_OCI_MANIFEST, KEEL_MEDIA_MANIFEST},
	{"application/vnd.docker.distribution.manifest.v2+json", KEEL_MEDIA_MANIFEST},
	{"application/vnd.docker.distribution.manifest.v1+json", KEEL_MEDIA_SCHEMA1},
	{"application/vnd.docker.distribution.manifest.v1+prettyjws", KEEL_MEDIA_SCHEMA1},
	{KEEL_MT_OCI_CONFIG, KEEL_MEDIA_CONFIG},
	{"application/vnd.docker.container.image.v1+json", KEEL_MEDIA_CONFIG},
	{KEEL_MT_OCI_LAYER, KEEL_MEDIA_LAYER_TAR},
	{KEEL_MT_OCI_LAYER_GZIP, KEEL_MEDIA_LAYER_GZIP},
	{KEEL_MT_OCI_LAYER_ZSTD, KEEL_MEDIA_LAYER_ZSTD},
	/* Non-distributable layers are ordinary layers once they are in a local archive. */
	{"application/vnd.oci.image.layer.nondistributable.v1.tar", KEEL_MEDIA_LAYER_TAR},
	{"application/vnd.oci.image.layer.nondistributable.v1.tar+gzip", KEEL_MEDIA_LAYER_GZIP},
	{"application/vnd.oci.image.layer.nondistributable.v1.tar+zstd", KEEL_MEDIA_LAYER_ZSTD},
	{"application/vnd.docker.image.rootfs.diff.tar", KEEL_MEDIA_LAYER_TAR},
	{"application/vnd.docker.image.rootfs.diff.tar.gzip", KEEL_MEDIA_LAYER_GZIP},
	{"application/vnd.docker.image.rootfs.diff.tar.zstd", KEEL_MEDIA_LAYER_ZSTD},
	{"application/vnd.docker.image.rootfs.foreign.diff.tar.gzip", KEEL_MEDIA_LAYER_GZIP},
};

enum keel_media_kind keel_media_kind(const char *media_type)
{
	if (!media_type)
		return KEEL_MEDIA_UNKNOWN;
	for (size_t i = 0; i < KEEL_ARRAY_SIZE(media_types); i++)
		if (strcmp(media_types[i].type, media_type) == 0)
			return media_types[i].kind;
	return KEEL_MEDIA_UNKNOWN;
}

/* A string member copied out, refusing embedded NULs (a name or path cut short at a NUL would
 * mean something else than what the document said). 1 when absent and optional. */
static int dup_str(const json_t *obj, const char *where, const char *key, bool required, char **ret,
		   struct keel_err *err)
{
	const char *s;
	int r = keel_json_get_str(obj, where, key, required, &s, err);
	if (r)
		return r;
	json_t *v = json_object_get(obj, key);
	if (strlen(s) != json_string_length(v))
		return keel_err_set(err, -EINVAL, "%s%s%s contains a NUL byte", where, *where ? "." : "",
				    key);
	char *copy = keel_strdup(s);
	if (!copy)
		return keel_err_set(err, -ENOMEM, "out of memory");
	keel_free(*ret);
	*ret = copy;
	return 0;
}

/* An array of strings into a vector (NULL-terminated, allocated even when empty). */
static int str_array(const json_t *arr, const char *where, char ***ret, struct keel_err *err)
{
	size_t n = json_array_size(arr);
	char **v = keel_calloc(n + 1, sizeof(*v));
	if (!v)
		return keel_err_set(err, -ENOMEM, "out of memory");
	for (size_t i = 0; i < n; i++) {
		json_t *e = json_array_get(arr, i);
		if (!json_is_string(e)) {
			keel_strv_free(v);
			return keel_err_set(err, -KEEL_ETYPE, "%s[%zu] must be a string", where, i);
		}
		if (strlen(json_string_value(e)) != json_string_length(e)) {
			keel_strv_free(v);
			return keel_err_set(err, -EINVAL, "%s[%zu] contains a NUL byte", where, i);
		}
		v[i] = keel_strdup(json_string_value(e));
		if (!v[i]) {
			keel_strv_free(v);
			return keel_err_set(err, -ENOMEM, "out of memory");
		}
	}
	*ret = v;
	return 0;
}

static int opt_str_array(const json_t *obj, const char *where, const char *key, char ***ret,
			 struct keel_err *err)
{
	json_t *arr;
	int r = keel_json_get_arr(obj, where, key, false, &arr, err);
	if (r)
		return r < 0 ? r : 0;
	char name[96];
	snprintf(name, sizeof(name), "%s%s%s", where, *where ? "." : "", key);
	return str_array(arr, name, ret, err);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The keys of an object used as a set ({"80/tcp": {}}), sorted. */
static int opt_key_set(const json_t *obj, const char *where, const char *key, char ***ret,
		       struct keel_err *err)
{
	json_t *set;
	int r = keel_json_get_obj(obj, where, key, false, &set, err);
	if (r)
		return r < 0 ? r : 0;
	size_t n = json_object_size(set), i = 0;
	char **v = keel_calloc(n + 1, sizeof(*v));
	if (!v)
		return keel_err_set(err, -ENOMEM, "out of memory");
	const char *k;
	size_t klen;
	json_t *m;
	json_object_keylen_foreach(set, k, klen, m) {
		if (strlen(k) != klen) {
			keel_strv_free(v);
			return keel_err_set(err, -EINVAL, "%s.%s: a key contains a NUL byte", where, key);
		}
		v[i] = keel_strdup(k);
		if (!v[i]) {
			keel_strv_free(v);
			return keel_err_set(err, -ENOMEM, "out of memory");
		}
		i++;
	}
	qsort(v, n, sizeof(*v), cmp_str);
	*ret = v;
	return 0;
}

static void platform_free(struct keel_oci_platform *p)
{
	keel_free(p->os);
	keel_free(p->arch);
	keel_free(p->variant);
	memset(p, 0, sizeof(*p));
}

static void descriptor_free(struct keel_oci_descriptor *d)
{
	keel_free(d->media_type);
	keel_free(d->ref_name);
	keel_free(d->image_name);
	platform_free(&d->platform);
	memset(d, 0, sizeof(*d));
}

static int parse_descriptor(const json_t *obj, const char *where, bool media_required,
			    struct keel_oci_descriptor *d, struct keel_err *err)
{
	if (!json_is_object(obj))
		return keel_err_set(err, -KEEL_ETYPE, "%s must be an object", where);
	int r = dup_str(obj, where, "mediaType", media_required, &d->media_type, err);
	if (r < 0)
		return r;
	const char *digest;
	r = keel_json_get_str(obj, where, "digest", true, &digest, err);
	if (r < 0)
		return r;
	char what[96];
	snprintf(what, sizeof(what), "%s.digest", where);
	r = keel_digest_check(digest, what, err);
	if (r < 0)
		return r;
	memcpy(d->digest, digest, strlen(digest) + 1);
	r = keel_json_get_u64(obj, where, "size", true, &d->size, err);
	if (r < 0)
		return r;

	json_t *plat;
	snprintf(what, sizeof(what), "%s.platform", where);
	r = keel_json_get_obj(obj, where, "platform", false, &plat, err);
	if (r < 0)
		return r;
	if (r == 0) {
		d->has_platform = true;
		if ((r = dup_str(plat, what, "os", true, &d->platform.os, err)) < 0 ||
		    (r = dup_str(plat, what, "architecture", true, &d->platform.arch, err)) < 0 ||
		    (r = dup_str(plat, what, "variant", false, &d->platform.variant, err)) < 0)
			return r;
	}
	json_t *ann;
	snprintf(what, sizeof(what), "%s.annotations", where);
	r = keel_json_get_obj(obj, where, "annotations", false, &ann, err);
	if (r < 0)
		return r;
	if (r == 0) {
		const char *k;
		json_t *v;
		json_object_foreach(ann, k, v) {
			if (!json_is_string(v))
				return keel_err_set(err, -KEEL_ETYPE, "%s.%s must be a string", what, k);
		}
		if ((r = dup_str(ann, what, "org.opencontainers.image.ref.name", false, &d->ref_name,
				 err)) < 0 ||
		    (r = dup_str(ann, what, "io.containerd.image.name", false, &d->image_name, err)) < 0)
			return r;
	}
	return 0;
}

static int check_schema_version(const json_t *doc, const char *what, struct keel_err *err)
{
	int64_t v;
	int r = keel_json_get_i64(doc, "", "schemaVersion", true, &v, err);
	if (r < 0)
		return keel_err_wrap(err, "%s", what);
	if (v == 1)
		return keel_err_set(err, -ENOTSUP,
				    "%s: Docker schema 1 manifests are not supported (convert the image "
				    "with skopeo copy first)", what);
	if (v != 2)
		return keel_err_set(err, -EINVAL, "%s: schemaVersion %lld, want 2", what, (long long)v);
	return 0;
}

static int parse_doc(const char *data, size_t len, const char *what, json_t **ret, struct keel_err *err)
{
	if (len > KEEL_IMAGE_JSON_MAX)
		return keel_err_set(err, -EFBIG, "%s: %zu bytes is too large", what, len);
	int r = keel_json_parse(data, len, false, ret, err);
	if (r < 0)
		return keel_err_wrap(err, "%s", what);
	if (!json_is_object(*ret)) {
		json_decref(*ret);
		return keel_err_set(err, -KEEL_ETYPE, "%s must be a JSON object", what);
	}
	return 0;
}

void keel_oci_index_free(struct keel_oci_index *idx)
{
	if (!idx)
		return;
	for (size_t i = 0; i < idx->n_manifests; i++)
		descriptor_free(&idx->manifests[i]);
	keel_free(idx->manifests);
	keel_free(idx);
}

int keel_oci_index_parse(const char *data, size_t len, struct keel_oci_index **ret, struct keel_err *err)
{
	json_t *doc;
	int r = parse_doc(data, len, "index", &doc, err);
	if (r < 0)
		return r;
	struct keel_oci_index *idx = keel_calloc(1, sizeof(*idx));
	json_t *arr;
	if (!idx) {
		r = keel_err_set(err, -ENOMEM, "out of memory");
		goto out;
	}
	if ((r = check_schema_version(doc, "index", err)) < 0)
		goto out;
	const char *mt;
	r = keel_json_get_str(doc, "", "mediaType", false, &mt, err);
	if (r < 0)
		goto out;
	if (r == 0 && keel_media_kind(mt) != KEEL_MEDIA_INDEX) {
		r = keel_err_set(err, -EINVAL, "index: mediaType is \"%.80s\", not an image index", mt);
		goto out;
	}
	if ((r = keel_json_get_arr(doc, "", "manifests", true, &arr, err)) < 0)
		goto out;
	idx->manifests = keel_calloc(json_array_size(arr) + 1, sizeof(*idx->manifests));
	if (!idx->manifests) {
		r = keel_err_set(err, -ENOMEM, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < json_array_size(arr); i++) {
		char where[48];
		snprintf(where, sizeof(where), "manifests[%zu]", i);
		idx->n_manifests++;
		r = parse_descriptor(json_array_get(arr, i), where, false, &idx->manifests[i], err);
		if (r < 0)
			goto out;
	}
	r = 0;
out:
	json_decref(doc);
	if (r < 0)
		keel_oci_index_free(idx);
	else
		*ret = idx;
	return r;
}

void keel_oci_manifest_free(struct keel_oci_manifest *m)
{
	if (!m)
		return;
	keel_free(m->media_type);
	descriptor_free(&m->config);
	for (size_t i = 0; i < m->n_layers; i++)
		descriptor_free(&m->layers[i]);
	keel_free(m->layers);
	keel_free(m->layer_kinds);
	keel_free(m);
}

int keel_oci_manifest_parse(const char *data, size_t len, struct keel_oci_manifest **ret,
			    struct keel_err *err)
{
	json_t *doc;
	int r = parse_doc(data, len, "manifest", &doc, err);
	if (r < 0)
		return r;
	struct keel_oci_manifest *m = keel_calloc(1, sizeof(*m));
	json_t *cfg, *arr;
	if (!m) {
		r = keel_err_set(err, -ENOMEM, "out of memory");
		goto out;
	}
	if ((r = check_schema_version(doc, "manifest", err)) < 0)
		goto out;
	if ((r = dup_str(doc, "", "mediaType", false, &m->media_type, err)) < 0)
		goto out;
	if (m->media_type && keel_media_kind(m->media_type) != KEEL_MEDIA_MANIFEST) {
		r = keel_err_set(err, -ENOTSUP, "manifest: unsupported mediaType \"%.80s\"", m->media_type);
		goto out;
	}
	if (json_object_get(doc, "manifests")) {
		r = keel_err_set(err, -EINVAL, "manifest: has \"manifests\": an index, not a manifest");
		goto out;
	}
	if ((r = keel_json_get_obj(doc, "", "config", true, &cfg, err)) < 0 ||
	    (r = parse_descriptor(cfg, "config", true, &m->config, err)) < 0)
		goto out;
	if (keel_media_kind(m->config.media_type) != KEEL_MEDIA_CONFIG) {
		r = keel_err_set(err, -ENOTSUP,
				 "manifest: config.mediaType \"%.80s\" is not a container image config "
				 "(an artifact, not an image?)", m->config.media_type);
		goto out;
	}
	if ((r = keel_json_get_arr(doc, "", "layers", true, &arr, err)) < 0)
		goto out;
	size_t n = json_array_size(arr);
	m->layers = keel_calloc(n + 1, sizeof(*m->layers));
	m->layer_kinds = keel_calloc(n + 1, sizeof(*m->layer_kinds));
	if (!m->layers || !m->layer_kinds) {
		r = keel_err_set(err, -ENOMEM, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		char where[48];
		snprintf(where, sizeof(where), "layers[%zu]", i);
		m->n_layers++;
		r = parse_descriptor(json_array_get(arr, i), where, true, &m->layers[i], err);
		if (r < 0)
			goto out;
		enum keel_media_kind k = keel_media_kind(m->layers[i].media_type);
		if (k != KEEL_MEDIA_LAYER_TAR && k != KEEL_MEDIA_LAYER_GZIP && k != KEEL_MEDIA_LAYER_ZSTD) {
			r = keel_err_set(err, -ENOTSUP, "manifest: %s.mediaType \"%.80s\" is not a supported "
					 "layer type", where, m->layers[i].media_type);
			goto out;
		}
		m->layer_kinds[i] = k;
	}
	r = 0;
out:
	json_decref(doc);
	if (r < 0)
		keel_oci_manifest_free(m);
	else
		*ret = m;
	return r;
}

void keel_docker_manifest_free(struct keel_docker_manifest *m)
{
	if (!m)
		return;
	for (size_t i = 0; i < m->n_entries; i++) {
		keel_free(m->entries[i].config);
		keel_strv_free(m->entries[i].repo_tags);
		keel_strv_free(m->entries[i].layers);
	}
	keel_free(m->entries);
	keel_free(m);
}

int keel_docker_manifest_parse(const char *data, size_t len, struct keel_docker_manifest **ret,
			       struct keel_err *err)
{
	if (len > KEEL_IMAGE_JSON_MAX)
		return keel_err_set(err, -EFBIG, "manifest.json: %zu bytes is too large", len);
	json_t *doc;
	int r = keel_json_parse(data, len, false, &doc, err);
	if (r < 0)
		return keel_err_wrap(err, "manifest.json");
	struct keel_docker_manifest *m = keel_calloc(1, sizeof(*m));
	if (!m) {
		r = keel_err_set(err, -ENOMEM, "out of memory");
		goto out;
	}
	if (!json_is_array(doc)) {
		r = keel_err_set(err, -KEEL_ETYPE, "manifest.json must be a JSON array");
		goto out;
	}
	if (json_array_size(doc) == 0) {
		r = keel_err_set(err, -EINVAL, "manifest.json lists no image");
		goto out;
	}
	m->entries = keel_calloc(json_array_size(doc), sizeof(*m->entries));
	if (!m->entries) {
		r = keel_err_set(err, -ENOMEM, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < json_array_size(doc); i++) {
		json_t *e = json_array_get(doc, i), *arr;
		struct keel_docker_entry *d = &m->entries[i];
		char where[64];
		snprintf(where, sizeof(where), "manifest.json[%zu]", i);
		m->n_entries++;
		if (!json_is_object(e)) {
			r = keel_err_set(err, -KEEL_ETYPE, "%s must be an object", where);
			goto out;
		}
		if ((r = dup_str(e, where, "Config", true, &d->config, err)) < 0 ||
		    (r = opt_str_array(e, where, "RepoTags", &d->repo_tags, err)) < 0)
			goto out;
		if ((r = keel_json_get_arr(e, where, "Layers", true, &arr, err)) < 0)
			goto out;
		char lw[80];
		snprintf(lw, sizeof(lw), "%s.Layers", where);
		if ((r = str_array(arr, lw, &d->layers, err)) < 0)
			goto out;
		d->n_layers = keel_strv_len(d->layers);
	}
	r = 0;
out:
	json_decref(doc);
	if (r < 0)
		keel_docker_manifest_free(m);
	else
		*ret = m;
	return r;
}

static int cmp_label(const void *a, const void *b)
{
	return strcmp(((const struct keel_image_label *)a)->key, ((const struct keel_image_label *)b)->key);
}

static int parse_labels(const json_t *cfg, struct keel_image_config *c, struct keel_err *err)
{
	json_t *labels;
	int r = keel_json_get_obj(cfg, "config", "Labels", false, &labels, err);
	if (r)
		return r < 0 ? r : 0;
	c->labels = keel_calloc(json_object_size(labels) + 1, sizeof(*c->labels));
	if (!c->labels)
		return keel_err_set(err, -ENOMEM, "out of memory");
	const char *k;
	size_t klen;
	json_t *v;
	json_object_keylen_foreach(labels, k, klen, v) {
		if (!json_is_string(v))
			return keel_err_set(err, -KEEL_ETYPE, "config.Labels.%s must be a string", k);
		if (strlen(k) != klen || strlen(json_string_value(v)) != json_string_length(v))
			return keel_err_set(err, -EINVAL, "config.Labels: a label contains a NUL byte");
		struct keel_image_label *l = &c->labels[c->n_labels];
		l->key = keel_strdup(k);
		l->value = keel_strdup(json_string_value(v));
		c->n_labels++;
		if (!l->key || !l->value)
			return keel_err_set(err, -ENOMEM, "out of memory");
	}
	qsort(c->labels, c->n_labels, sizeof(*c->labels), cmp_label);
	return 0;
}

void keel_image_config_free(struct keel_image_config *c)
{
	if (!c)
		return;
	keel_free(c->os);
	keel_free(c->arch);
	keel_free(c->variant);
	keel_strv_free(c->env);
	keel_strv_free(c->entrypoint);
	keel_strv_free(c->cmd);
	keel_free(c->working_dir);
	keel_free(c->user);
	keel_free(c->stop_signal);
	keel_strv_free(c->exposed_ports);
	keel_strv_free(c->volumes);
	for (size_t i = 0; i < c->n_labels; i++) {
		keel_free(c->labels[i].key);
		keel_free(c->labels[i].value);
	}
	keel_free(c->labels);
	keel_strv_free(c->diff_ids);
	keel_free(c);
}

int keel_image_config_parse(const char *data, size_t len, struct keel_image_config **ret,
			    struct keel_err *err)
{
	json_t *doc;
	int r = parse_doc(data, len, "image config", &doc, err);
	if (r < 0)
		return r;
	struct keel_image_config *c = keel_calloc(1, sizeof(*c));
	json_t *cfg, *rootfs;
	if (!c) {
		r = keel_err_set(err, -ENOMEM, "out of memory");
		goto out;
	}
	/* The image-spec makes os and architecture required; Docker wrote them from 1.10 on. */
	if ((r = dup_str(doc, "", "os", true, &c->os, err)) < 0 ||
	    (r = dup_str(doc, "", "architecture", true, &c->arch, err)) < 0 ||
	    (r = dup_str(doc, "", "variant", false, &c->variant, err)) < 0)
		goto out;
	const char *created;
	r = keel_json_get_str(doc, "", "created", false, &created, err);
	if (r < 0)
		goto out;
	/* A created time Keel cannot read only loses the CREATED column, not the image. */
	if (r == 0 && keel_parse_rfc3339(created, &c->created_ns) < 0)
		c->created_ns = 0;

	r = keel_json_get_obj(doc, "", "config", false, &cfg, err);
	if (r < 0)
		goto out;
	if (r == 0) {
		if ((r = opt_str_array(cfg, "config", "Env", &c->env, err)) < 0 ||
		    (r = opt_str_array(cfg, "config", "Entrypoint", &c->entrypoint, err)) < 0 ||
		    (r = opt_str_array(cfg, "config", "Cmd", &c->cmd, err)) < 0 ||
		    (r = dup_str(cfg, "config", "WorkingDir", false, &c->working_dir, err)) < 0 ||
		    (r = dup_str(cfg, "config", "User", false, &c->user, err)) < 0 ||
		    (r = dup_str(cfg, "config", "StopSignal", false, &c->stop_signal, err)) < 0 ||
		    (r = opt_key_set(cfg, "config", "ExposedPorts", &c->exposed_ports, err)) < 0 ||
		    (r = opt_key_set(cfg, "config", "Volumes", &c->volumes, err)) < 0 ||
		    (r = parse_labels(cfg, c, err)) < 0)
			goto out;
	}
	if ((r = keel_json_get_obj(doc, "", "rootfs", true, &rootfs, err)) < 0)
		goto out;
	const char *type;
	if ((r = keel_json_get_str(rootfs, "rootfs", "type", true, &type, err)) < 0)
		goto out;
	if (strcmp(type, "layers") != 0) {
		r = keel_err_set(err, -ENOTSUP, "rootfs.type \"%.40s\" is not supported (want \"layers\")", type);
		goto out;
	}
	json_t *ids;
	if ((r = keel_json_get_arr(rootfs, "rootfs", "diff_ids", true, &ids, err)) < 0 ||
	    (r = str_array(ids, "rootfs.diff_ids", &c->diff_ids, err)) < 0)
		goto out;
	for (size_t i = 0; c->diff_ids[i]; i++) {
		char what[48];
		snprintf(what, sizeof(what), "rootfs.diff_ids[%zu]", i);
		if ((r = keel_digest_check(c->diff_ids[i], what, err)) < 0)
			goto out;
	}
	r = 0;
out:
	json_decref(doc);
	if (r < 0) {
		keel_err_wrap(err, "image config");
		keel_image_config_free(c);
	} else {
		*ret = c;
	}
	return r;
}

bool keel_oci_platform_match(const struct keel_oci_platform *p, const char *os, const char *arch,
			     const char *variant)
{
	if (!keel_streq(p->os, os) || !keel_streq(p->arch, arch))
		return false;
	return !p->variant || !variant || strcmp(p->variant, variant) == 0;
}
