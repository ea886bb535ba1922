/* Parsing the JSON documents of images: OCI/Docker indexes and manifests, docker-archive
 * manifest.json, the image config; errors name the field. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "image/spec.h"

#define D1 "sha256:3dfe32a32e62f9c686ab56b75818387d8c2927bacf9a229b389c3b229e066488"
#define D2 "sha256:cb84a3a19e31e53ef1fcd156d0fd1ffe7414246f3e7d2ff8cd5870e6eb64f7db"
#define D3 "sha256:ccebfe4cefe52c951e1ffa3de764c4d831695f962fe5d0cd253ba8d93d67ee6d"

static int parse_index(const char *s, struct keel_oci_index **ret, struct keel_err *err)
{
	return keel_oci_index_parse(s, strlen(s), ret, err);
}

static int parse_manifest(const char *s, struct keel_oci_manifest **ret, struct keel_err *err)
{
	return keel_oci_manifest_parse(s, strlen(s), ret, err);
}

static int parse_config(const char *s, struct keel_image_config **ret, struct keel_err *err)
{
	return keel_image_config_parse(s, strlen(s), ret, err);
}

static void image_spec_index_with_platforms_and_names(void **state)
{
	(void)state;
	const char *doc =
		"{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.index.v1+json\",\"manifests\":["
		"{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"" D1 "\",\"size\":348,"
		"\"platform\":{\"architecture\":\"arm64\",\"os\":\"linux\",\"variant\":\"v8\"}},"
		"{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"" D2 "\",\"size\":7,"
		"\"platform\":{\"architecture\":\"amd64\",\"os\":\"linux\"},\"annotations\":{"
		"\"org.opencontainers.image.ref.name\":\"localhost/kbase:latest\","
		"\"io.containerd.image.name\":\"docker.io/library/kbase:latest\",\"other\":\"x\"}}]}";
	struct keel_oci_index *idx;
	struct keel_err err;
	assert_int_equal(parse_index(doc, &idx, &err), 0);
	assert_int_equal(idx->n_manifests, 2);
	assert_true(idx->manifests[0].has_platform);
	assert_string_equal(idx->manifests[0].platform.variant, "v8");
	assert_false(keel_oci_platform_match(&idx->manifests[0].platform, "linux", "amd64", NULL));
	assert_true(keel_oci_platform_match(&idx->manifests[0].platform, "linux", "arm64", NULL));
	assert_false(keel_oci_platform_match(&idx->manifests[0].platform, "linux", "arm64", "v7"));
	assert_true(keel_oci_platform_match(&idx->manifests[1].platform, "linux", "amd64", NULL));
	assert_string_equal(idx->manifests[1].ref_name, "localhost/kbase:latest");
	assert_string_equal(idx->manifests[1].image_name, "docker.io/library/kbase:latest");
	assert_int_equal(idx->manifests[1].size, 7);
	assert_int_equal(keel_media_kind(idx->manifests[1].media_type), KEEL_MEDIA_MANIFEST);
	keel_oci_index_free(idx);
}

static void image_spec_index_errors_name_the_field(void **state)
{
	(void)state;
	struct keel_oci_index *idx;
	struct keel_err err;
	assert_int_equal(parse_index("{\"schemaVersion\":2,\"manifests\":[{\"digest\":\"sha256:12\",\"size\":1}]}",
				     &idx, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "manifests[0].digest"));
	assert_int_equal(parse_index("{\"schemaVersion\":2,\"manifests\":[{\"digest\":\"" D1 "\",\"size\":-1}]}",
				     &idx, &err), -KEEL_ERANGE);
	assert_int_equal(parse_index("{\"schemaVersion\":2,\"manifests\":[{\"digest\":\"" D1 "\"}]}", &idx, &err),
			 -KEEL_EMISSING);
	assert_non_null(strstr(err.msg, "manifests[0].size"));
	assert_int_equal(parse_index("{\"schemaVersion\":3,\"manifests\":[]}", &idx, &err), -EINVAL);
	assert_int_equal(parse_index("{\"manifests\":[]}", &idx, &err), -KEEL_EMISSING);
	assert_int_equal(parse_index("[]", &idx, &err), -KEEL_ETYPE);
	assert_int_equal(parse_index("{\"schemaVersion\":2,\"manifests\":[{\"digest\":\"" D1 "\",\"size\":1,"
				     "\"annotations\":{\"a\":1}}]}", &idx, &err), -KEEL_ETYPE);
	assert_int_equal(parse_index("{\"schemaVersion\":2,\"manifests\":[{\"digest\":\"sha512:ab\",\"size\":1}]}",
				     &idx, &err), -ENOTSUP);
	assert_int_equal(parse_index("{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\","
				     "\"manifests\":[]}", &idx, &err), -EINVAL);
	assert_int_equal(parse_index("{\"schemaVersion\":2,\"manifests\":[]", &idx, &err), -KEEL_EPARSE);
}

static void image_spec_manifest_layers_and_refusals(void **state)
{
	(void)state;
	struct keel_oci_manifest *m;
	struct keel_err err;
	const char *ok = "{\"schemaVersion\":2,\"config\":{\"mediaType\":\"application/vnd.docker.container.image.v1+json\","
			 "\"digest\":\"" D2 "\",\"size\":426},\"layers\":["
			 "{\"mediaType\":\"application/vnd.docker.image.rootfs.diff.tar.gzip\",\"digest\":\"" D3 "\",\"size\":5},"
			 "{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+zstd\",\"digest\":\"" D1 "\",\"size\":6},"
			 "{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar\",\"digest\":\"" D1 "\",\"size\":6}]}";
	assert_int_equal(parse_manifest(ok, &m, &err), 0);
	assert_null(m->media_type);
	assert_int_equal(m->n_layers, 3);
	assert_int_equal(m->layer_kinds[0], KEEL_MEDIA_LAYER_GZIP);
	assert_int_equal(m->layer_kinds[1], KEEL_MEDIA_LAYER_ZSTD);
	assert_int_equal(m->layer_kinds[2], KEEL_MEDIA_LAYER_TAR);
	assert_string_equal(m->config.digest, D2);
	keel_oci_manifest_free(m);

	assert_int_equal(parse_manifest("{\"schemaVersion\":1,\"name\":\"x\",\"fsLayers\":[]}", &m, &err), -ENOTSUP);
	assert_non_null(strstr(err.msg, "schema 1"));
	/* An OCI artifact (a Helm chart) is not an image. */
	assert_int_equal(parse_manifest("{\"schemaVersion\":2,\"config\":{\"mediaType\":"
					"\"application/vnd.cncf.helm.config.v1+json\",\"digest\":\"" D2 "\",\"size\":1},"
					"\"layers\":[]}", &m, &err), -ENOTSUP);
	assert_non_null(strstr(err.msg, "helm"));
	assert_int_equal(parse_manifest("{\"schemaVersion\":2,\"config\":{\"mediaType\":"
					"\"application/vnd.oci.image.config.v1+json\",\"digest\":\"" D2 "\",\"size\":1},"
					"\"layers\":[{\"mediaType\":\"application/x-foreign\",\"digest\":\"" D1 "\","
					"\"size\":1}]}", &m, &err), -ENOTSUP);
	assert_non_null(strstr(err.msg, "layers[0]"));
	assert_int_equal(parse_manifest("{\"schemaVersion\":2,\"manifests\":[],\"config\":{}}", &m, &err), -EINVAL);
	assert_int_equal(parse_manifest("{\"schemaVersion\":2,\"config\":{\"mediaType\":"
					"\"application/vnd.oci.image.config.v1+json\",\"digest\":\"" D2 "\",\"size\":1}}",
					&m, &err), -KEEL_EMISSING);
}

static void image_spec_docker_manifest_json(void **state)
{
	(void)state;
	const char *doc = "[{\"Config\":\"cb84.json\",\"RepoTags\":[\"localhost/kbase:latest\"],\"Layers\":"
			  "[\"a/layer.tar\",\"b.tar\"]},{\"Config\":\"x.json\",\"RepoTags\":null,\"Layers\":[]}]";
	struct keel_docker_manifest *m;
	struct keel_err err;
	assert_int_equal(keel_docker_manifest_parse(doc, strlen(doc), &m, &err), 0);
	assert_int_equal(m->n_entries, 2);
	assert_string_equal(m->entries[0].layers[1], "b.tar");
	assert_int_equal(m->entries[0].n_layers, 2);
	assert_string_equal(m->entries[0].repo_tags[0], "localhost/kbase:latest");
	assert_null(m->entries[1].repo_tags);
	keel_docker_manifest_free(m);
	assert_int_equal(keel_docker_manifest_parse("[]", 2, &m, &err), -EINVAL);
	const char *nul = "[{\"Config\":\"a\\u0000b\",\"Layers\":[]}]";
	/* A path cut short at a NUL would name another file: refused (jansson already does). */
	assert_true(keel_docker_manifest_parse(nul, strlen(nul), &m, &err) < 0);
	const char *bad = "[{\"Config\":\"a\",\"Layers\":[1]}]";
	assert_int_equal(keel_docker_manifest_parse(bad, strlen(bad), &m, &err), -KEEL_ETYPE);
	assert_non_null(strstr(err.msg, "manifest.json[0].Layers[0]"));
}

static void image_spec_config_fields_for_the_runtime(void **state)
{
	(void)state;
	const char *doc =
		"{\"created\":\"2026-11-27T21:09:53.742737845Z\",\"architecture\":\"arm64\",\"variant\":\"v8\","
		"\"os\":\"linux\",\"config\":{\"User\":\"1000:1000\",\"ExposedPorts\":{\"8080/tcp\":{},\"53/udp\":{}},"
		"\"Env\":[\"PATH=/bin\",\"A=b=c\"],\"Entrypoint\":[\"/bin/app\"],\"Cmd\":[],\"Volumes\":{\"/data\":{}},"
		"\"WorkingDir\":\"/srv\",\"Labels\":{\"z\":\"last\",\"a\":\"first\"},\"StopSignal\":\"SIGINT\"},"
		"\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[\"" D1 "\",\"" D2 "\"]},\"history\":[]}";
	struct keel_image_config *c;
	struct keel_err err;
	assert_int_equal(parse_config(doc, &c, &err), 0);
	assert_string_equal(c->arch, "arm64");
	assert_string_equal(c->variant, "v8");
	assert_int_equal(c->created_ns, 1795813793742737845LL);
	assert_string_equal(c->user, "1000:1000");
	assert_string_equal(c->exposed_ports[0], "53/udp"); /* sorted */
	assert_string_equal(c->exposed_ports[1], "8080/tcp");
	assert_string_equal(c->env[1], "A=b=c");
	assert_string_equal(c->entrypoint[0], "/bin/app");
	assert_non_null(c->cmd); /* present and empty: not the same as absent */
	assert_null(c->cmd[0]);
	assert_string_equal(c->volumes[0], "/data");
	assert_string_equal(c->working_dir, "/srv");
	assert_int_equal(c->n_labels, 2);
	assert_string_equal(c->labels[0].key, "a");
	assert_string_equal(c->labels[1].value, "last");
	assert_string_equal(c->stop_signal, "SIGINT");
	assert_string_equal(c->diff_ids[1], D2);
	keel_image_config_free(c);

	/* Docker writes nulls for what it does not set. */
	const char *nulls = "{\"architecture\":\"amd64\",\"os\":\"linux\",\"config\":{\"Cmd\":null,\"Entrypoint\":null,"
			    "\"Env\":null,\"Labels\":null},\"container_config\":null,\"rootfs\":{\"type\":\"layers\","
			    "\"diff_ids\":[]}}";
	assert_int_equal(parse_config(nulls, &c, &err), 0);
	assert_null(c->cmd);
	assert_null(c->entrypoint);
	assert_int_equal(c->created_ns, 0);
	keel_image_config_free(c);

	assert_int_equal(parse_config("{\"architecture\":\"amd64\",\"os\":\"linux\",\"config\":{\"Env\":\"A=b\"},"
				      "\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[]}}", &c, &err), -KEEL_ETYPE);
	assert_non_null(strstr(err.msg, "config.Env"));
	assert_int_equal(parse_config("{\"architecture\":\"amd64\",\"os\":\"linux\",\"rootfs\":{\"type\":\"layers\","
				      "\"diff_ids\":[\"md5:abc\"]}}", &c, &err), -ENOTSUP);
	assert_int_equal(parse_config("{\"architecture\":\"amd64\",\"os\":\"linux\"}", &c, &err), -KEEL_EMISSING);
	assert_non_null(strstr(err.msg, "rootfs"));
	assert_int_equal(parse_config("{\"architecture\":\"amd64\",\"os\":\"linux\",\"config\":{\"Labels\":{\"a\":1}},"
				      "\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[]}}", &c, &err), -KEEL_ETYPE);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(image_spec_index_with_platforms_and_names),
		cmocka_unit_test(image_spec_index_errors_name_the_field),
		cmocka_unit_test(image_spec_manifest_layers_and_refusals),
		cmocka_unit_test(image_spec_docker_manifest_json),
		cmocka_unit_test(image_spec_config_fields_for_the_runtime),
	};
	return cmocka_run_group_tests_name("image/spec", tests, NULL, NULL);
}
