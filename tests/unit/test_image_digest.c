/* Digests, and the import's digest verification: a blob whose content does not match its
 * digest, size or diff_id is refused, and a refused import leaves nothing in the store. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "image/image-internal.h"
#include "image_testutil.h"
#include "testutil.h"

struct fx {
	char dir[64];
	char layout[128];
	char store_dir[128];
	struct keel_image_store *s;
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	if (test_make_tmpdir("image-digest", f->dir, sizeof(f->dir)) < 0)
		return -1;
	snprintf(f->layout, sizeof(f->layout), "%s/layout", f->dir);
	snprintf(f->store_dir, sizeof(f->store_dir), "%s/store", f->dir);
	if (keel_image_store_open(f->store_dir, &f->s, NULL) < 0)
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

static size_t count_entries(const char *dir)
{
	DIR *d = opendir(dir);
	size_t n = 0;
	struct dirent *e;
	while (d && (e = readdir(d)))
		n += e->d_name[0] != '.';
	if (d)
		closedir(d);
	return n;
}

static size_t store_count(struct fx *f, const char *sub)
{
	char p[256];
	snprintf(p, sizeof(p), "%s/%s", f->store_dir, sub);
	return count_entries(p);
}

static void image_digest_check_accepts_only_sha256_hex(void **state)
{
	(void)state;
	struct keel_err err;
	const char *good = "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
	assert_int_equal(keel_digest_check(good, "x", &err), 0);
	assert_int_equal(keel_digest_check("sha256:BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD",
					   "x", &err), -EINVAL);
	assert_int_equal(keel_digest_check("sha256:ba78", "layers[0].digest", &err), -EINVAL);
	assert_non_null(strstr(err.msg, "layers[0].digest"));
	assert_int_equal(keel_digest_check("sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad0",
					   "x", &err), -EINVAL);
	assert_int_equal(keel_digest_check("sha512:abcd", "x", &err), -ENOTSUP);
	assert_int_equal(keel_digest_check("sha256+b64u:LCa0a2j_xo_5m0U8HTBBNBNCLXBkg7-g-YpeiGJm564", "x", &err),
			 -ENOTSUP);
	assert_int_equal(keel_digest_check("nocolon", "x", &err), -EINVAL);
	assert_int_equal(keel_digest_check(":abc", "x", &err), -EINVAL);
	assert_int_equal(keel_digest_check(NULL, "x", &err), -EINVAL);
	assert_true(keel_is_hex_prefix("ba78"));
	assert_false(keel_is_hex_prefix("BA78"));
	assert_false(keel_is_hex_prefix(""));
}

static void image_sha256_matches_known_vectors(void **state)
{
	struct fx *f = *state;
	char d[KEEL_DIGEST_MAX];
	assert_int_equal(keel_sha256_buf("abc", 3, d), 0);
	assert_string_equal(d, "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	assert_int_equal(keel_sha256_buf("", 0, d), 0);
	assert_string_equal(d, "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	/* Streaming over a file gives the same as one buffer, across the read chunk size. */
	size_t n = 300 * 1024;
	char *big = malloc(n);
	for (size_t i = 0; i < n; i++)
		big[i] = (char)(i * 7);
	assert_int_equal(tu_write(f->dir, "big", big, n), 0);
	char path[128], d2[KEEL_DIGEST_MAX];
	snprintf(path, sizeof(path), "%s/big", f->dir);
	int fd = open(path, O_RDONLY);
	uint64_t size;
	assert_int_equal(keel_sha256_fd(fd, d2, &size), 0);
	close(fd);
	assert_int_equal(size, n);
	keel_sha256_buf(big, n, d);
	assert_string_equal(d, d2);
	free(big);
}

/* One small image with two layers in f->layout. */
static void make_layout(struct fx *f, bool gzip, char manifest[72], char config[72])
{
	struct tu_entry l1[] = {{"bin", 'd'}, {"bin/hello", 'f', "hello\n", 0755}};
	struct tu_entry l2[] = {{"etc", 'd'}, {"etc/motd", 'f', "welcome\n"}};
	size_t n1, n2;
	char *t1 = tu_tar(l1, 2, false, &n1), *t2 = tu_tar(l2, 2, false, &n2);
	const char *layers[] = {t1, t2};
	size_t lens[] = {n1, n2};
	struct tu_layout l;
	tu_oci_begin(&l, f->layout);
	assert_int_equal(tu_oci_image(&l, layers, lens, 2, gzip, "amd64", "example.com/app:v1", manifest,
				      config), 0);
	assert_int_equal(tu_oci_finish(&l), 0);
	free(t1);
	free(t2);
}

static void assert_store_empty(struct fx *f)
{
	assert_int_equal(store_count(f, "blobs/sha256"), 0);
	assert_int_equal(store_count(f, "tmp"), 0);
	struct keel_image_list *l;
	assert_int_equal(keel_image_list(f->s, &l, NULL), 0);
	assert_int_equal(l->n, 0);
	keel_image_list_free(l);
}

static void image_import_verified_layout_stores_every_blob(void **state)
{
	struct fx *f = *state;
	char manifest[72], config[72];
	make_layout(f, true, manifest, config);
	struct keel_err err;
	struct keel_image_list *l;
	assert_int_equal(keel_image_import(f->s, f->layout, NULL, NULL, &l, &err), 0);
	assert_int_equal(l->n, 1);
	assert_string_equal(l->images[0]->id, config);
	assert_string_equal(l->images[0]->manifest, manifest);
	assert_string_equal(l->images[0]->names[0], "example.com/app:v1");
	assert_int_equal(l->images[0]->n_layers, 2);
	/* gzip layers: the diff_id is the uncompressed tar's digest, not the blob's. */
	assert_string_not_equal(l->images[0]->layers[0].digest, l->images[0]->layers[0].diff_id);
	assert_string_equal(l->images[0]->layers[0].media_type, "application/vnd.oci.image.layer.v1.tar+gzip");
	keel_image_list_free(l);
	assert_int_equal(store_count(f, "blobs/sha256"), 4); /* manifest, config, 2 layers */
	assert_int_equal(store_count(f, "tmp"), 0);
}

/* Flip one byte in the middle of the blob named by digest. */
static void tamper(struct fx *f, const char *digest)
{
	char path[256];
	snprintf(path, sizeof(path), "%s/blobs/sha256/%s", f->layout, digest + 7);
	int fd = open(path, O_RDWR);
	assert_true(fd >= 0);
	off_t size = lseek(fd, 0, SEEK_END);
	char c;
	assert_int_equal(pread(fd, &c, 1, size / 2), 1);
	c ^= 0x20;
	assert_int_equal(pwrite(fd, &c, 1, size / 2), 1);
	close(fd);
}

static char *layer_digest(struct fx *f, const char *manifest, int i, char out[72])
{
	char path[256], *data;
	size_t len;
	snprintf(path, sizeof(path), "%s/blobs/sha256/%s", f->layout, manifest + 7);
	FILE *fp = fopen(path, "rb");
	data = calloc(1, 65536);
	len = fread(data, 1, 65535, fp);
	fclose(fp);
	struct keel_oci_manifest *m;
	assert_int_equal(keel_oci_manifest_parse(data, len, &m, NULL), 0);
	strcpy(out, m->layers[i].digest);
	keel_oci_manifest_free(m);
	free(data);
	return out;
}

static void image_import_refuses_a_tampered_layer_and_leaves_nothing(void **state)
{
	struct fx *f = *state;
	char manifest[72], config[72], layer[72];
	make_layout(f, false, manifest, config);
	tamper(f, layer_digest(f, manifest, 1, layer));
	struct keel_err err;
	assert_int_equal(keel_image_import(f->s, f->layout, NULL, NULL, NULL, &err), -KEEL_ECORRUPT);
	assert_non_null(strstr(err.msg, "digest mismatch"));
	assert_non_null(strstr(err.msg, layer + 7));
	assert_store_empty(f);
}

static void image_import_refuses_a_tampered_config_or_manifest(void **state)
{
	struct fx *f = *state;
	char manifest[72], config[72];
	make_layout(f, false, manifest, config);
	tamper(f, config);
	struct keel_err err;
	assert_int_equal(keel_image_import(f->s, f->layout, NULL, NULL, NULL, &err), -KEEL_ECORRUPT);
	assert_non_null(strstr(err.msg, config + 7));
	assert_store_empty(f);
	tamper(f, config); /* back as it was */
	tamper(f, manifest);
	assert_int_equal(keel_image_import(f->s, f->layout, NULL, NULL, NULL, &err), -KEEL_ECORRUPT);
	assert_non_null(strstr(err.msg, manifest + 7));
	assert_store_empty(f);
}

static void image_import_refuses_a_size_mismatch(void **state)
{
	struct fx *f = *state;
	char manifest[72], config[72], layer[72], path[256];
	make_layout(f, false, manifest, config);
	snprintf(path, sizeof(path), "%s/blobs/sha256/%s", f->layout, layer_digest(f, manifest, 0, layer) + 7);
	FILE *fp = fopen(path, "ab");
	fputc('x', fp);
	fclose(fp);
	struct keel_err err;
	assert_int_equal(keel_image_import(f->s, f->layout, NULL, NULL, NULL, &err), -KEEL_ECORRUPT);
	assert_non_null(strstr(err.msg, "size mismatch"));
	assert_store_empty(f);
}

/* A config whose diff_ids do not describe the layers: every digest in the manifest is right,
 * but the image would unpack to something else than it claims. */
static void image_import_refuses_wrong_diff_ids(void **state)
{
	struct fx *f = *state;
	struct tu_entry l1[] = {{"a", 'f', "a\n"}};
	size_t n1;
	char *t1 = tu_tar(l1, 1, false, &n1);
	char ld[72];
	tu_digest(t1, n1, ld);
	char rel[128];
	snprintf(rel, sizeof(rel), "blobs/sha256/%s", ld + 7);
	assert_int_equal(tu_write(f->layout, rel, t1, n1), 0);
	char config[512], cd[72];
	int clen = snprintf(config, sizeof(config),
			    "{\"architecture\":\"amd64\",\"os\":\"linux\",\"rootfs\":{\"type\":\"layers\","
			    "\"diff_ids\":[\"sha256:%064d\"]}}", 0);
	tu_digest(config, (size_t)clen, cd);
	snprintf(rel, sizeof(rel), "blobs/sha256/%s", cd + 7);
	assert_int_equal(tu_write(f->layout, rel, config, (size_t)clen), 0);
	char manifest[1024], md[72];
	int mlen = snprintf(manifest, sizeof(manifest),
			    "{\"schemaVersion\":2,\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\","
			    "\"digest\":\"%s\",\"size\":%d},\"layers\":[{\"mediaType\":"
			    "\"application/vnd.oci.image.layer.v1.tar\",\"digest\":\"%s\",\"size\":%zu}]}",
			    cd, clen, ld, n1);
	tu_digest(manifest, (size_t)mlen, md);
	snprintf(rel, sizeof(rel), "blobs/sha256/%s", md + 7);
	assert_int_equal(tu_write(f->layout, rel, manifest, (size_t)mlen), 0);
	char index[512];
	int ilen = snprintf(index, sizeof(index), "{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":"
			    "\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"%s\",\"size\":%d}]}",
			    md, mlen);
	assert_int_equal(tu_write(f->layout, "index.json", index, (size_t)ilen), 0);
	assert_int_equal(tu_write(f->layout, "oci-layout", "{\"imageLayoutVersion\":\"1.0.0\"}", 30), 0);
	struct keel_err err;
	assert_int_equal(keel_image_import(f->s, f->layout, "x", NULL, NULL, &err), -KEEL_ECORRUPT);
	assert_non_null(strstr(err.msg, "diff_id"));
	assert_store_empty(f);
	free(t1);
}

static void image_import_refuses_a_missing_blob(void **state)
{
	struct fx *f = *state;
	char manifest[72], config[72], layer[72], path[256];
	make_layout(f, false, manifest, config);
	snprintf(path, sizeof(path), "%s/blobs/sha256/%s", f->layout, layer_digest(f, manifest, 0, layer) + 7);
	assert_int_equal(unlink(path), 0);
	struct keel_err err;
	assert_int_equal(keel_image_import(f->s, f->layout, NULL, NULL, NULL, &err), -KEEL_ECORRUPT);
	assert_non_null(strstr(err.msg, "missing"));
	assert_store_empty(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(image_digest_check_accepts_only_sha256_hex, setup, teardown),
		cmocka_unit_test_setup_teardown(image_sha256_matches_known_vectors, setup, teardown),
		cmocka_unit_test_setup_teardown(image_import_verified_layout_stores_every_blob, setup, teardown),
		cmocka_unit_test_setup_teardown(image_import_refuses_a_tampered_layer_and_leaves_nothing, setup,
						teardown),
		cmocka_unit_test_setup_teardown(image_import_refuses_a_tampered_config_or_manifest, setup,
						teardown),
		cmocka_unit_test_setup_teardown(image_import_refuses_a_size_mismatch, setup, teardown),
		cmocka_unit_test_setup_teardown(image_import_refuses_wrong_diff_ids, setup, teardown),
		cmocka_unit_test_setup_teardown(image_import_refuses_a_missing_blob, setup, teardown),
	};
	return cmocka_run_group_tests_name("image/digest", tests, NULL, NULL);
}
