/* Fuzz the image JSON parsers (OCI index and manifest, docker-archive manifest.json, image
 * config), all on each input: whatever they accept must be internally consistent (checked
 * digests, a known kind for every layer, vectors that end), and whatever they refuse must come
 * with a message. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "image/spec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(bool ok)
{
	if (!ok)
		abort();
}

static void check_descriptor(const struct keel_oci_descriptor *d)
{
	check(keel_digest_check(d->digest, "fuzz", NULL) == 0);
	if (d->has_platform)
		check(d->platform.os && d->platform.arch);
}

static void refused(int r, const struct keel_err *err)
{
	check(r < 0 && err->code == r && err->msg[0]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *text = (const char *)data;
	struct keel_err err = {0};

	struct keel_oci_index *idx;
	int r = keel_oci_index_parse(text, size, &idx, &err);
	if (r == 0) {
		for (size_t i = 0; i < idx->n_manifests; i++) {
			check_descriptor(&idx->manifests[i]);
			keel_oci_platform_match(&idx->manifests[i].platform, "linux", "amd64", NULL);
		}
		keel_oci_index_free(idx);
	} else {
		refused(r, &err);
	}

	struct keel_oci_manifest *m;
	err = (struct keel_err){0};
	r = keel_oci_manifest_parse(text, size, &m, &err);
	if (r == 0) {
		check_descriptor(&m->config);
		check(keel_media_kind(m->config.media_type) == KEEL_MEDIA_CONFIG);
		for (size_t i = 0; i < m->n_layers; i++) {
			check_descriptor(&m->layers[i]);
			check(m->layer_kinds[i] == keel_media_kind(m->layers[i].media_type));
			check(m->layer_kinds[i] >= KEEL_MEDIA_LAYER_TAR);
		}
		keel_oci_manifest_free(m);
	} else {
		refused(r, &err);
	}

	struct keel_docker_manifest *dm;
	err = (struct keel_err){0};
	r = keel_docker_manifest_parse(text, size, &dm, &err);
	if (r == 0) {
		check(dm->n_entries > 0);
		for (size_t i = 0; i < dm->n_entries; i++) {
			check(dm->entries[i].config != NULL);
			size_t n = 0;
			while (dm->entries[i].layers[n])
				n++;
			check(n == dm->entries[i].n_layers);
		}
		keel_docker_manifest_free(dm);
	} else {
		refused(r, &err);
	}

	struct keel_image_config *c;
	err = (struct keel_err){0};
	r = keel_image_config_parse(text, size, &c, &err);
	if (r == 0) {
		check(c->os && c->arch && c->diff_ids);
		for (size_t i = 0; c->diff_ids[i]; i++)
			check(keel_digest_check(c->diff_ids[i], "fuzz", NULL) == 0);
		for (size_t i = 1; i < c->n_labels; i++)
			check(strcmp(c->labels[i - 1].key, c->labels[i].key) < 0);
		keel_image_config_free(c);
	} else {
		refused(r, &err);
	}
	return 0;
}
