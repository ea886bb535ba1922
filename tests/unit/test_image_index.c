/* The image index: names, lookups by name, id and prefix, names moving between images, rm's
 * rules, holds, persistence, a damaged index, and gc of what nothing references. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/mem.h"
#include "base/str.h"
#include "image/image-internal.h"
#include "image_testutil.h"
#include "testutil.h"

struct fx {
	char dir[64];
	struct keel_image_store *s;
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	if (test_make_tmpdir("image-index", f->dir, sizeof(f->dir)) < 0)
		return -1;
	if (keel_image_store_open(f->dir, &f->s, NULL) < 0)
		return -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	keel_image_store_free(f->s);
	test_remove_tree(f->dir);
	free(f);
	return 0;
}

/* An image record whose id is sha256 of `seed`, with one layer of its own and one shared. */
static struct keel_image *make_image(const char *seed, const char *const *names, int64_t created)
{
	struct keel_image *img = keel_calloc(1, sizeof(*img));
	keel_sha256_buf(seed, strlen(seed), img->id);
	char m[64];
	snprintf(m, sizeof(m), "manifest-%s", seed);
	keel_sha256_buf(m, strlen(m), img->manifest);
	img->manifest_media_type = keel_strdup(KEEL_MT_OCI_MANIFEST);
	img->os = keel_strdup("linux");
	img->arch = keel_strdup("amd64");
	img->created_ns = created;
	img->imported_ns = created + 1;
	img->n_layers = 2;
	img->layers = keel_calloc(3, sizeof(*img->layers));
	keel_sha256_buf("shared", 6, img->layers[0].digest);
	keel_sha256_buf("shared-diff", 11, img->layers[0].diff_id);
	snprintf(m, sizeof(m), "layer-%s", seed);
	keel_sha256_buf(m, strlen(m), img->layers[1].digest);
	memcpy(img->layers[1].diff_id, img->layers[1].digest, KEEL_DIGEST_MAX);
	for (int i = 0; i < 2; i++) {
		img->layers[i].media_type = keel_strdup(KEEL_MT_OCI_LAYER);
		img->layers[i].size = img->layers[i].tar_size = 1000 * (uint64_t)(i + 1);
	}
	img->size = 3000;
	for (size_t i = 0; names && names[i]; i++)
		assert_int_equal(keel_strv_push(&img->names, names[i]), 0);
	return img;
}

static void save(struct fx *f, struct keel_image **imgs, size_t n)
{
	struct image_index idx = {0};
	for (size_t i = 0; i < n; i++)
		assert_int_equal(index_add(&idx, imgs[i], NULL), 0);
	assert_int_equal(index_save(f->s, &idx, NULL), 0);
	index_clear(&idx);
}

static void image_names_normalize(void **state)
{
	(void)state;
	static const struct {
		const char *in, *out;
	} good[] = {
		{"busybox", "busybox:latest"},
		{"localhost/bb", "localhost/bb:latest"},
		{"localhost/bb:1.36", "localhost/bb:1.36"},
		{"registry.example.com:5000/team/app", "registry.example.com:5000/team/app:latest"},
		{"registry.example.com:5000/team/app:v2_rc-1", "registry.example.com:5000/team/app:v2_rc-1"},
		{"Example.COM/app:TAG", "Example.COM/app:TAG"},
	};
	for (size_t i = 0; i < KEEL_ARRAY_SIZE(good); i++) {
		char *out = NULL;
		assert_int_equal(keel_image_name_normalize(good[i].in, &out, NULL), 0);
		assert_string_equal(out, good[i].out);
		keel_free(out);
	}
	static const char *const bad[] = {"", "UPPER", "a//b", "/abs", "trail/", "bb:", "bb:.x", "bb:-x",
					  "bb@sha256:abcd", "sp ace", "bb:t/ag", "host:/x"};
	for (size_t i = 0; i < KEEL_ARRAY_SIZE(bad); i++) {
		char *out = NULL;
		struct keel_err err;
		assert_int_equal(keel_image_name_normalize(bad[i], &out, &err), -EINVAL);
		assert_null(out);
	}
}

static void image_index_finds_by_name_short_name_id_and_prefix(void **state)
{
	struct fx *f = *state;
	struct keel_image *imgs[] = {
		make_image("one", (const char *const[]){"localhost/bb:latest", "example.com/x:1", NULL}, 10),
		make_image("two", (const char *const[]){"example.com/x:2", NULL}, 20),
	};
	char id1[KEEL_DIGEST_MAX], id2[KEEL_DIGEST_MAX];
	strcpy(id1, imgs[0]->id);
	strcpy(id2, imgs[1]->id);
	save(f, imgs, 2);
	struct keel_image *img;
	struct keel_err err;
	assert_int_equal(keel_image_lookup(f->s, "localhost/bb", &img, &err), 0);
	assert_string_equal(img->id, id1);
	assert_int_equal(img->n_layers, 2);
	assert_int_equal(img->layers[1].tar_size, 2000);
	keel_image_free(img);
	assert_int_equal(keel_image_lookup(f->s, "bb", &img, &err), 0); /* localhost/ short name */
	assert_string_equal(img->id, id1);
	keel_image_free(img);
	assert_int_equal(keel_image_lookup(f->s, "example.com/x:2", &img, &err), 0);
	assert_string_equal(img->id, id2);
	keel_image_free(img);
	assert_int_equal(keel_image_lookup(f->s, id2, &img, &err), 0);
	assert_string_equal(img->id, id2);
	keel_image_free(img);
	char prefix[16];
	snprintf(prefix, sizeof(prefix), "%.12s", id1 + 7);
	assert_int_equal(keel_image_lookup(f->s, prefix, &img, &err), 0);
	assert_string_equal(img->id, id1);
	keel_image_free(img);
	assert_int_equal(keel_image_lookup(f->s, "example.com/x", &img, &err), -ENOENT); /* :latest */
	assert_int_equal(keel_image_lookup(f->s, "nope", &img, &err), -ENOENT);
	assert_non_null(strstr(err.msg, "nope"));
	/* A prefix both ids share (the empty-ish one every id has can't be given: use a 1-char
	 * prefix only when the two ids start alike). */
	if (id1[7] == id2[7]) {
		char one[2] = {id1[7], 0};
		assert_int_equal(keel_image_lookup(f->s, one, &img, &err), -EINVAL);
	}
	/* Newest first. */
	struct keel_image_list *l;
	assert_int_equal(keel_image_list(f->s, &l, &err), 0);
	assert_int_equal(l->n, 2);
	assert_string_equal(l->images[0]->id, id2);
	keel_image_list_free(l);
}

static void image_index_ambiguous_prefix_is_refused(void **state)
{
	struct fx *f = *state;
	/* Find two seeds whose ids share a first hex digit. */
	struct keel_image *a = make_image("s0", NULL, 1), *b = NULL;
	for (int i = 1; !b; i++) {
		char seed[16];
		snprintf(seed, sizeof(seed), "s%d", i);
		struct keel_image *c = make_image(seed, NULL, 1);
		if (c->id[7] == a->id[7])
			b = c;
		else
			keel_image_free(c);
	}
	char one[2] = {a->id[7], 0};
	struct keel_image *imgs[] = {a, b};
	save(f, imgs, 2);
	struct keel_image *img;
	struct keel_err err;
	assert_int_equal(keel_image_lookup(f->s, one, &img, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "ambiguous"));
}

static void image_index_name_moves_to_the_newly_added_image(void **state)
{
	(void)state;
	struct image_index idx = {0};
	assert_int_equal(index_add(&idx, make_image("old", (const char *const[]){"app:latest", "app:v1", NULL}, 1),
				   NULL), 0);
	assert_int_equal(index_add(&idx, make_image("new", (const char *const[]){"app:latest", NULL}, 2), NULL), 0);
	assert_int_equal(idx.n, 2);
	assert_int_equal(keel_strv_len(idx.images[0]->names), 1);
	assert_string_equal(idx.images[0]->names[0], "app:v1");
	assert_string_equal(idx.images[1]->names[0], "app:latest");
	/* The same image again merges names rather than duplicating the record. */
	assert_int_equal(index_add(&idx, make_image("new", (const char *const[]){"app:v2", "app:latest", NULL}, 2),
				   NULL), 0);
	assert_int_equal(idx.n, 2);
	assert_int_equal(keel_strv_len(idx.images[1]->names), 2);
	assert_true(keel_strv_contains(idx.images[1]->names, "app:v2"));
	index_clear(&idx);
}

static void image_rm_by_name_untags_and_by_id_needs_force(void **state)
{
	struct fx *f = *state;
	struct keel_image *imgs[] = {make_image("one", (const char *const[]){"a:1", "b:1", NULL}, 1)};
	char id[KEEL_DIGEST_MAX];
	strcpy(id, imgs[0]->id);
	save(f, imgs, 1);
	char **untagged, deleted[KEEL_DIGEST_MAX];
	struct keel_err err;
	assert_int_equal(keel_image_remove(f->s, id, 0, &untagged, deleted, &err), -EBUSY);
	assert_non_null(strstr(err.msg, "--force"));
	assert_int_equal(keel_image_remove(f->s, "a:1", 0, &untagged, deleted, &err), 0);
	assert_string_equal(untagged[0], "a:1");
	assert_null(untagged[1]);
	assert_string_equal(deleted, "");
	keel_strv_free(untagged);
	struct keel_image *img;
	assert_int_equal(keel_image_lookup(f->s, "a:1", &img, &err), -ENOENT);
	assert_int_equal(keel_image_lookup(f->s, "b:1", &img, &err), 0);
	keel_image_free(img);
	/* The last name takes the image with it. */
	assert_int_equal(keel_image_remove(f->s, "b:1", 0, &untagged, deleted, &err), 0);
	assert_string_equal(deleted, id);
	keel_strv_free(untagged);
	assert_int_equal(keel_image_lookup(f->s, id, &img, &err), -ENOENT);
	assert_int_equal(keel_image_remove(f->s, "b:1", 0, &untagged, deleted, &err), -ENOENT);

	struct keel_image *again[] = {make_image("one", (const char *const[]){"a:1", "b:1", NULL}, 1)};
	save(f, again, 1);
	assert_int_equal(keel_image_remove(f->s, id, KEEL_IMAGE_RM_FORCE, &untagged, deleted, &err), 0);
	assert_int_equal(keel_strv_len(untagged), 2);
	assert_string_equal(deleted, id);
	keel_strv_free(untagged);
}

static void image_holds_block_rm_until_released(void **state)
{
	struct fx *f = *state;
	struct keel_image *imgs[] = {make_image("one", (const char *const[]){"a:1", "b:1", NULL}, 1)};
	char id[KEEL_DIGEST_MAX], held[KEEL_DIGEST_MAX];
	strcpy(id, imgs[0]->id);
	save(f, imgs, 1);
	struct keel_err err;
	assert_int_equal(keel_image_hold(f->s, "a:1", "pod-web_1", held, &err), 0);
	assert_string_equal(held, id);
	assert_int_equal(keel_image_hold(f->s, "a:1", "../escape", held, &err), -EINVAL);
	assert_int_equal(keel_image_hold(f->s, "nope", "pod2", held, &err), -ENOENT);
	char **untagged, deleted[KEEL_DIGEST_MAX];
	/* Dropping one of two names is fine; the image stays. */
	assert_int_equal(keel_image_remove(f->s, "a:1", 0, &untagged, deleted, &err), 0);
	keel_strv_free(untagged);
	assert_int_equal(keel_image_remove(f->s, "b:1", 0, &untagged, deleted, &err), -EBUSY);
	assert_non_null(strstr(err.msg, "pod-web_1"));
	assert_int_equal(keel_image_remove(f->s, id, KEEL_IMAGE_RM_FORCE, &untagged, deleted, &err), -EBUSY);
	/* gc keeps what a held image references. */
	struct keel_image_gc_stats st;
	assert_int_equal(keel_image_gc(f->s, &st, &err), 0);
	assert_int_equal(keel_image_release(f->s, "pod-web_1", &err), 0);
	assert_int_equal(keel_image_release(f->s, "pod-web_1", &err), -ENOENT);
	assert_int_equal(keel_image_remove(f->s, "b:1", 0, &untagged, deleted, &err), 0);
	assert_string_equal(deleted, id);
	keel_strv_free(untagged);
}

static void image_index_survives_reopen_and_reports_damage(void **state)
{
	struct fx *f = *state;
	struct keel_image *imgs[] = {make_image("one", (const char *const[]){"a:1", NULL}, 1234567890123)};
	save(f, imgs, 1);
	keel_image_store_free(f->s);
	assert_int_equal(keel_image_store_open(f->dir, &f->s, NULL), 0);
	struct keel_image *img;
	struct keel_err err;
	assert_int_equal(keel_image_lookup(f->s, "a:1", &img, &err), 0);
	assert_int_equal(img->created_ns, 1234567890123);
	assert_string_equal(img->layers[0].media_type, KEEL_MT_OCI_LAYER);
	keel_image_free(img);
	assert_int_equal(tu_write(f->dir, "images.json", "{\"version\":1,\"images\":[{\"id\":\"x\"}]}", 35), 0);
	assert_int_equal(keel_image_lookup(f->s, "a:1", &img, &err), -KEEL_ECORRUPT);
	assert_non_null(strstr(err.msg, "images.json"));
	assert_int_equal(tu_write(f->dir, "images.json", "{not json", 9), 0);
	assert_int_equal(keel_image_lookup(f->s, "a:1", &img, &err), -KEEL_ECORRUPT);
	assert_int_equal(tu_write(f->dir, "images.json", "{\"version\":99,\"images\":[]}", 26), 0);
	assert_int_equal(keel_image_lookup(f->s, "a:1", &img, &err), -KEEL_ECORRUPT);
	assert_non_null(strstr(err.msg, "version"));
}

static void put(struct fx *f, const char *rel, const char *data)
{
	assert_int_equal(tu_write(f->dir, rel, data, strlen(data)), 0);
}

static bool there(struct fx *f, const char *rel)
{
	char p[512];
	struct stat st;
	snprintf(p, sizeof(p), "%s/%s", f->dir, rel);
	return lstat(p, &st) == 0;
}

static void image_gc_removes_only_what_no_image_references(void **state)
{
	struct fx *f = *state;
	struct keel_image *a = make_image("a", (const char *const[]){"a:1", NULL}, 1);
	struct keel_image *b = make_image("b", (const char *const[]){"b:1", NULL}, 2);
	char blob[160], layer[160];
	/* Every blob both images reference, and one stray blob and unpacked layer. */
	struct keel_image *both[] = {a, b};
	for (int i = 0; i < 2; i++) {
		const struct keel_image *img = both[i];
		const char *digests[] = {img->id, img->manifest, img->layers[0].digest, img->layers[1].digest};
		for (int k = 0; k < 4; k++) {
			snprintf(blob, sizeof(blob), "blobs/sha256/%s", digests[k] + 7);
			put(f, blob, "blob");
		}
		for (int k = 0; k < 2; k++) {
			snprintf(layer, sizeof(layer), "layers/%s/etc/file", img->layers[k].diff_id + 7);
			put(f, layer, "unpacked");
		}
	}
	char a_layer[KEEL_DIGEST_MAX], a_diff[KEEL_DIGEST_MAX], shared[KEEL_DIGEST_MAX];
	strcpy(a_layer, a->layers[1].digest);
	strcpy(a_diff, a->layers[1].diff_id);
	strcpy(shared, a->layers[0].digest);
	put(f, "blobs/sha256/0000000000000000000000000000000000000000000000000000000000000000", "stray");
	put(f, "tmp/stage-abc/leftover", "x");
	save(f, both, 2);

	struct keel_image_gc_stats st;
	struct keel_err err;
	assert_int_equal(keel_image_gc(f->s, &st, &err), 0);
	assert_int_equal(st.blobs, 1);
	assert_int_equal(st.layers, 0);
	assert_int_equal(st.tmp, 1);
	assert_false(there(f, "tmp/stage-abc"));

	char **untagged, deleted[KEEL_DIGEST_MAX];
	assert_int_equal(keel_image_remove(f->s, "a:1", 0, &untagged, deleted, &err), 0);
	keel_strv_free(untagged);
	assert_int_equal(keel_image_gc(f->s, &st, &err), 0);
	assert_int_equal(st.blobs, 3); /* a's config, manifest and own layer */
	assert_int_equal(st.blob_bytes, 12);
	assert_int_equal(st.layers, 1);
	assert_int_equal(st.layer_bytes, 8);
	snprintf(blob, sizeof(blob), "blobs/sha256/%s", a_layer + 7);
	assert_false(there(f, blob));
	snprintf(layer, sizeof(layer), "layers/%s", a_diff + 7);
	assert_false(there(f, layer));
	snprintf(blob, sizeof(blob), "blobs/sha256/%s", shared + 7);
	assert_true(there(f, blob)); /* b still uses the shared layer */

	assert_int_equal(keel_image_remove(f->s, "b:1", 0, &untagged, deleted, &err), 0);
	keel_strv_free(untagged);
	assert_int_equal(keel_image_gc(f->s, &st, &err), 0);
	assert_int_equal(st.blobs, 4);
	assert_int_equal(st.layers, 2);
	assert_false(there(f, blob));
}

static void image_lowerdir_is_top_first(void **state)
{
	(void)state;
	char *dirs[] = {"/s/layers/base", "/s/layers/mid", "/s/layers/top", NULL};
	char *ld;
	assert_int_equal(keel_image_lowerdir(dirs, &ld), 0);
	assert_string_equal(ld, "/s/layers/top:/s/layers/mid:/s/layers/base");
	keel_free(ld);
	char *empty[] = {NULL};
	assert_int_equal(keel_image_lowerdir(empty, &ld), -EINVAL);
	char *colon[] = {"/a:b", NULL};
	assert_int_equal(keel_image_lowerdir(colon, &ld), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(image_names_normalize),
		cmocka_unit_test_setup_teardown(image_index_finds_by_name_short_name_id_and_prefix, setup,
						teardown),
		cmocka_unit_test_setup_teardown(image_index_ambiguous_prefix_is_refused, setup, teardown),
		cmocka_unit_test(image_index_name_moves_to_the_newly_added_image),
		cmocka_unit_test_setup_teardown(image_rm_by_name_untags_and_by_id_needs_force, setup, teardown),
		cmocka_unit_test_setup_teardown(image_holds_block_rm_until_released, setup, teardown),
		cmocka_unit_test_setup_teardown(image_index_survives_reopen_and_reports_damage, setup, teardown),
		cmocka_unit_test_setup_teardown(image_gc_removes_only_what_no_image_references, setup, teardown),
		cmocka_unit_test(image_lowerdir_is_top_first),
	};
	return cmocka_run_group_tests_name("image/index", tests, NULL, NULL);
}
