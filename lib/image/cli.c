/* `keel-run image ...`: import, list, inspect, rm, gc, layers. One table row per subcommand;
 * each parses its own flags (Go syntax, flags before arguments) with base/config. */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/config.h"
#include "base/json.h"
#include "base/mem.h"
#include "base/str.h"
#include "image/image-internal.h"

struct cli {
	char *image_root;
	char *platform;
	char *format;
	bool quiet;
	bool force;
	bool lowerdir;
	const char *prog;
};

#define OPT_ROOT                                                                                     \
	{.name = "image-root", .type = KEEL_OPT_STRING, .offset = offsetof(struct cli, image_root),  \
	 .help = "image store directory (default " KEEL_IMAGE_DEFAULT_ROOT ")", .metavar = "DIR",     \
	 .env = KEEL_IMAGE_ROOT_ENV}

static const struct keel_opt global_opts[] = {OPT_ROOT};

static const struct keel_opt import_opts[] = {
	OPT_ROOT,
	{.name = "platform", .type = KEEL_OPT_STRING, .offset = offsetof(struct cli, platform),
	 .help = "platform to pick from multi-platform images (default: the host's)",
	 .metavar = "OS/ARCH[/VARIANT]", .flags = KEEL_OPT_NOENV},
	{.name = "quiet", .short_name = 'q', .type = KEEL_OPT_BOOL, .offset = offsetof(struct cli, quiet),
	 .help = "print only the ids of the imported images", .flags = KEEL_OPT_NOENV},
};

static const struct keel_opt list_opts[] = {
	OPT_ROOT,
	{.name = "format", .type = KEEL_OPT_STRING, .offset = offsetof(struct cli, format), .def = "table",
	 .help = "table or json", .metavar = "FORMAT", .flags = KEEL_OPT_NOENV},
	{.name = "quiet", .short_name = 'q', .type = KEEL_OPT_BOOL, .offset = offsetof(struct cli, quiet),
	 .help = "print only image ids", .flags = KEEL_OPT_NOENV},
};

static const struct keel_opt rm_opts[] = {
	OPT_ROOT,
	{.name = "force", .short_name = 'f', .type = KEEL_OPT_BOOL, .offset = offsetof(struct cli, force),
	 .help = "remove an image with several names by id (never one in use)", .flags = KEEL_OPT_NOENV},
};

static const struct keel_opt layers_opts[] = {
	OPT_ROOT,
	{.name = "lowerdir", .type = KEEL_OPT_BOOL, .offset = offsetof(struct cli, lowerdir),
	 .help = "print the overlayfs lowerdir= value (top layer first) instead", .flags = KEEL_OPT_NOENV},
};

static const struct keel_opt root_only_opts[] = {OPT_ROOT};

static int fail(struct cli *c, const struct keel_err *err)
{
	fprintf(stderr, "%s: %s\n", c->prog, keel_err_msg(err));
	return 1;
}

/* go-units' HumanDuration, which podman's CREATED column uses. */
static void human_ago(int64_t then_ns, char *out, size_t size)
{
	if (then_ns <= 0) {
		snprintf(out, size, "unknown");
		return;
	}
	int64_t s = (keel_wall_ns() - then_ns) / KEEL_NSEC_PER_SEC;
	int64_t m = s / 60, h = m / 60;
	if (s < 1)
		snprintf(out, size, "Less than a second ago");
	else if (s == 1)
		snprintf(out, size, "1 second ago");
	else if (s < 60)
		snprintf(out, size, "%lld seconds ago", (long long)s);
	else if (m == 1)
		snprintf(out, size, "About a minute ago");
	else if (m < 60)
		snprintf(out, size, "%lld minutes ago", (long long)m);
	else if (h == 1)
		snprintf(out, size, "About an hour ago");
	else if (h < 48)
		snprintf(out, size, "%lld hours ago", (long long)h);
	else if (h < 24 * 7 * 2)
		snprintf(out, size, "%lld days ago", (long long)(h / 24));
	else if (h < 24 * 30 * 2)
		snprintf(out, size, "%lld weeks ago", (long long)(h / 24 / 7));
	else if (h < 24 * 365 * 2)
		snprintf(out, size, "%lld months ago", (long long)(h / 24 / 30));
	else
		snprintf(out, size, "%lld years ago", (long long)(h / 24 / 365));
}

/* go-units' HumanSizeWithPrecision(size, 3): decimal units, as podman's SIZE column. */
static void human_size(uint64_t bytes, char *out, size_t size)
{
	static const char *const units[] = {"B", "kB", "MB", "GB", "TB", "PB", "EB"};
	double v = (double)bytes;
	size_t u = 0;
	while (v >= 1000.0 && u + 1 < KEEL_ARRAY_SIZE(units)) {
		v /= 1000.0;
		u++;
	}
	snprintf(out, size, "%.3g %s", v, units[u]);
}

static void rfc3339(int64_t ns, char *out, size_t size)
{
	if (ns <= 0 || keel_fmt_rfc3339(ns, 1, out, size) == 0)
		snprintf(out, size, "0001-01-01T00:00:00Z");
}

/* "name:tag" split at the tag's colon (the last one after the last '/'). */
static void split_name(const char *full, char *name, size_t nsize, const char **tag)
{
	const char *colon = strrchr(full, ':');
	const char *slash = strrchr(full, '/');
	if (!colon || (slash && colon < slash)) {
		snprintf(name, nsize, "%s", full);
		*tag = "";
		return;
	}
	snprintf(name, nsize, "%.*s", (int)(colon - full), full);
	*tag = colon + 1;
}

static int dump_json(json_t *v)
{
	char *text;
	if (!v || image_json_dump(v, JSON_INDENT(4) | JSON_PRESERVE_ORDER, &text, NULL) < 0) {
		json_decref(v);
		return -ENOMEM;
	}
	fputs(text, stdout);
	fputc('\n', stdout);
	keel_free(text);
	json_decref(v);
	return 0;
}

static json_t *strv_json(char *const *v)
{
	json_t *a = json_array();
	for (size_t i = 0; a && v && v[i]; i++)
		json_array_append_new(a, json_string(v[i]));
	return a;
}

static int cmd_list(struct cli *c, struct keel_image_store *s, int argc, char **argv)
{
	(void)argv;
	bool json = keel_streq(c->format, "json");
	if (!json && !keel_streq(c->format, "table")) {
		fprintf(stderr, "%s: --format must be table or json\n", c->prog);
		return 2;
	}
	if (argc > 0) {
		fprintf(stderr, "%s: list takes no arguments\n", c->prog);
		return 2;
	}
	struct keel_err err;
	struct keel_image_list *l;
	if (keel_image_list(s, &l, &err) < 0)
		return fail(c, &err);
	int r = 0;
	if (c->quiet) {
		for (size_t i = 0; i < l->n; i++)
			printf("%.12s\n", keel_digest_hex(l->images[i]->id));
	} else if (json) {
		json_t *arr = json_array();
		for (size_t i = 0; arr && i < l->n; i++) {
			const struct keel_image *img = l->images[i];
			char created[KEEL_RFC3339_MAX];
			rfc3339(img->created_ns, created, sizeof(created));
			json_array_append_new(arr, json_pack("{s:s, s:o, s:s, s:I, s:s, s:I, s:s?, s:s?}", "Id",
							     keel_digest_hex(img->id), "Names", strv_json(img->names),
							     "Digest", img->manifest, "Created",
							     (json_int_t)(img->created_ns / KEEL_NSEC_PER_SEC),
							     "CreatedAt", created, "Size", (json_int_t)img->size,
							     "Os", img->os, "Architecture", img->arch));
		}
		r = dump_json(arr);
	} else {
		/* One row per name, like podman images; unnamed images show <none>. */
		size_t wn = 4, wt = 3, wc = 7;
		char name[512], ago[64];
		const char *tag;
		for (size_t i = 0; i < l->n; i++) {
			const struct keel_image *img = l->images[i];
			human_ago(img->created_ns, ago, sizeof(ago));
			wc = KEEL_MAX(wc, strlen(ago));
			for (size_t k = 0; img->names && img->names[k]; k++) {
				split_name(img->names[k], name, sizeof(name), &tag);
				wn = KEEL_MAX(wn, strlen(name));
				wt = KEEL_MAX(wt, strlen(tag));
			}
			wn = KEEL_MAX(wn, img->names && img->names[0] ? wn : 6);
			wt = KEEL_MAX(wt, img->names && img->names[0] ? wt : 6);
		}
		printf("%-*s  %-*s  %-12s  %-*s  %s\n", (int)wn, "NAME", (int)wt, "TAG", "ID", (int)wc,
		       "CREATED", "SIZE");
		for (size_t i = 0; i < l->n; i++) {
			const struct keel_image *img = l->images[i];
			char sz[32];
			human_ago(img->created_ns, ago, sizeof(ago));
			human_size(img->size, sz, sizeof(sz));
			size_t k = 0;
			do {
				if (img->names && img->names[k]) {
					split_name(img->names[k], name, sizeof(name), &tag);
				} else {
					snprintf(name, sizeof(name), "<none>");
					tag = "<none>";
				}
				printf("%-*s  %-*s  %.12s  %-*s  %s\n", (int)wn, name, (int)wt, tag,
				       keel_digest_hex(img->id), (int)wc, ago, sz);
			} while (img->names && img->names[k] && img->names[++k]);
		}
	}
	keel_image_list_free(l);
	if (r < 0) {
		fprintf(stderr, "%s: out of memory\n", c->prog);
		return 1;
	}
	return 0;
}

static json_t *inspect_one(struct keel_image_store *s, const struct keel_image *img, struct keel_err *err)
{
	char *cdata;
	size_t clen;
	json_t *config = NULL, *doc = NULL;
	if (keel_image_read_blob(s, img->id, KEEL_IMAGE_JSON_MAX, &cdata, &clen, err) < 0)
		return NULL;
	int r = keel_json_parse(cdata, clen, false, &doc, err);
	keel_free(cdata);
	if (r < 0)
		return NULL;
	config = json_object_get(doc, "config");
	if (!json_is_object(config))
		config = NULL;
	char created[KEEL_RFC3339_MAX], imported[KEEL_RFC3339_MAX];
	rfc3339(img->created_ns, created, sizeof(created));
	rfc3339(img->imported_ns, imported, sizeof(imported));
	json_t *diff_ids = json_array(), *layers = json_array();
	for (size_t i = 0; diff_ids && layers && i < img->n_layers; i++) {
		const struct keel_image_layer *L = &img->layers[i];
		json_array_append_new(diff_ids, json_string(L->diff_id));
		json_array_append_new(layers, json_pack("{s:s, s:s, s:s, s:I, s:I}", "Digest", L->digest,
							"DiffID", L->diff_id, "MediaType", L->media_type,
							"Size", (json_int_t)L->size, "TarSize",
							(json_int_t)L->tar_size));
	}
	json_t *cfgv = config ? json_incref(config) : json_object();
	json_t *o = json_pack("{s:s, s:s, s:s?, s:o, s:s, s:s, s:s?, s:s?, s:s*, s:I, s:o, s:{s:s, s:o}, s:o}",
			      "Id", keel_digest_hex(img->id), "Digest", img->manifest, "ManifestMediaType",
			      img->manifest_media_type, "RepoTags", strv_json(img->names), "Created", created,
			      "Imported", imported, "Os", img->os, "Architecture", img->arch, "Variant",
			      img->variant, "Size", (json_int_t)img->size, "Config", cfgv, "RootFS", "Type",
			      "layers", "Layers", diff_ids, "Layers", layers);
	json_decref(doc);
	if (!o)
		keel_err_set(err, -ENOMEM, "out of memory");
	return o;
}

static int cmd_inspect(struct cli *c, struct keel_image_store *s, int argc, char **argv)
{
	if (argc == 0) {
		fprintf(stderr, "%s: inspect needs at least one image\n", c->prog);
		return 2;
	}
	int status = 0;
	json_t *arr = json_array();
	for (int i = 0; i < argc; i++) {
		struct keel_err err;
		struct keel_image *img;
		if (keel_image_lookup(s, argv[i], &img, &err) < 0) {
			status = fail(c, &err);
			continue;
		}
		json_t *o = inspect_one(s, img, &err);
		keel_image_free(img);
		if (!o) {
			status = fail(c, &err);
			continue;
		}
		json_array_append_new(arr, o);
	}
	if (dump_json(arr) < 0)
		return fail(c, &(struct keel_err){.code = -ENOMEM, .msg = "out of memory"});
	return status;
}

static int parse_platform(const char *p, char **os, char **arch, char **variant)
{
	char **parts = NULL;
	if (keel_strv_split(p, "/", &parts) < 0)
		return -ENOMEM;
	size_t n = keel_strv_len(parts);
	if (n < 2 || n > 3 || strstr(p, "//") || p[0] == '/' || p[strlen(p) - 1] == '/') {
		keel_strv_free(parts);
		return -EINVAL;
	}
	*os = parts[0];
	*arch = parts[1];
	*variant = n == 3 ? parts[2] : NULL;
	keel_free(parts);
	return 0;
}

static int cmd_import(struct cli *c, struct keel_image_store *s, int argc, char **argv)
{
	if (argc < 1 || argc > 2) {
		fprintf(stderr, "%s: usage: import [--platform OS/ARCH[/VARIANT]] PATH [NAME[:TAG]]\n", c->prog);
		return 2;
	}
	struct keel_image_import_opts opts = {0};
	char *os = NULL, *arch = NULL, *variant = NULL;
	if (c->platform) {
		int r = parse_platform(c->platform, &os, &arch, &variant);
		if (r < 0) {
			fprintf(stderr, "%s: invalid --platform \"%s\": want OS/ARCH[/VARIANT]\n", c->prog,
				c->platform);
			return 2;
		}
		opts = (struct keel_image_import_opts){.os = os, .arch = arch, .variant = variant};
	}
	struct keel_err err;
	struct keel_image_list *l = NULL;
	int r = keel_image_import(s, argv[0], argc > 1 ? argv[1] : NULL, &opts, &l, &err);
	keel_free(os);
	keel_free(arch);
	keel_free(variant);
	if (r < 0)
		return fail(c, &err);
	for (size_t i = 0; i < l->n; i++) {
		const struct keel_image *img = l->images[i];
		if (c->quiet)
			printf("%s\n", img->id);
		else if (!img->names || !img->names[0])
			printf("Loaded image: %s\n", img->id);
		for (size_t k = 0; !c->quiet && img->names && img->names[k]; k++)
			printf("Loaded image: %s\n", img->names[k]);
	}
	keel_image_list_free(l);
	return 0;
}

static int cmd_rm(struct cli *c, struct keel_image_store *s, int argc, char **argv)
{
	if (argc == 0) {
		fprintf(stderr, "%s: rm needs at least one image\n", c->prog);
		return 2;
	}
	int status = 0;
	for (int i = 0; i < argc; i++) {
		struct keel_err err;
		char **untagged = NULL, deleted[KEEL_DIGEST_MAX];
		if (keel_image_remove(s, argv[i], c->force ? KEEL_IMAGE_RM_FORCE : 0, &untagged, deleted,
				      &err) < 0) {
			status = fail(c, &err);
			continue;
		}
		for (size_t k = 0; untagged && untagged[k]; k++)
			printf("Untagged: %s\n", untagged[k]);
		if (deleted[0])
			printf("Deleted: %s\n", keel_digest_hex(deleted));
		keel_strv_free(untagged);
	}
	return status;
}

static int cmd_gc(struct cli *c, struct keel_image_store *s, int argc, char **argv)
{
	(void)argv;
	if (argc > 0) {
		fprintf(stderr, "%s: gc takes no arguments\n", c->prog);
		return 2;
	}
	struct keel_err err;
	struct keel_image_gc_stats st;
	if (keel_image_gc(s, &st, &err) < 0)
		return fail(c, &err);
	char b1[32], b2[32];
	human_size(st.blob_bytes, b1, sizeof(b1));
	human_size(st.layer_bytes, b2, sizeof(b2));
	printf("Removed %u blobs (%s), %u unpacked layers (%s), %u temporary leftovers\n", st.blobs, b1,
	       st.layers, b2, st.tmp);
	return 0;
}

static int cmd_layers(struct cli *c, struct keel_image_store *s, int argc, char **argv)
{
	if (argc != 1) {
		fprintf(stderr, "%s: layers needs exactly one image\n", c->prog);
		return 2;
	}
	struct keel_err err;
	struct keel_image *img;
	char **dirs = NULL;
	if (keel_image_lookup(s, argv[0], &img, &err) < 0)
		return fail(c, &err);
	int r = keel_image_layer_dirs(s, img, &dirs, &err);
	keel_image_free(img);
	if (r < 0)
		return fail(c, &err);
	if (c->lowerdir) {
		char *ld = NULL;
		r = keel_image_lowerdir(dirs, &ld);
		if (r < 0) {
			keel_strv_free(dirs);
			fprintf(stderr, "%s: no overlayfs lowerdir for this image: %s\n", c->prog,
				keel_strerror(r));
			return 1;
		}
		printf("%s\n", ld);
		keel_free(ld);
	} else {
		for (size_t i = 0; dirs[i]; i++)
			printf("%s\n", dirs[i]);
	}
	keel_strv_free(dirs);
	return 0;
}

struct subcommand {
	const char *name;
	const char *usage;
	const char *summary;
	const struct keel_opt *opts;
	size_t n_opts;
	int (*run)(struct cli *c, struct keel_image_store *s, int argc, char **argv);
};

#define OPTS(a) a, KEEL_ARRAY_SIZE(a)
static const struct subcommand subcommands[] = {
	{"import", "[flags] PATH [NAME[:TAG]]",
	 "Import the images of an OCI image layout directory, an oci-archive or a docker-archive "
	 "(podman save, docker save, skopeo copy) into the store, checking every digest.",
	 OPTS(import_opts), cmd_import},
	{"list", "[flags]", "List the images in the store.", OPTS(list_opts), cmd_list},
	{"inspect", "[flags] IMAGE...", "Show images as JSON.", OPTS(root_only_opts), cmd_inspect},
	{"rm", "[flags] IMAGE...",
	 "Remove images by name (that name only) or by id. Blobs stay until `gc`. An image that a "
	 "container or pod holds is never removed.",
	 OPTS(rm_opts), cmd_rm},
	{"gc", "[flags]", "Remove the blobs and unpacked layers no image references.",
	 OPTS(root_only_opts), cmd_gc},
	{"layers", "[flags] IMAGE",
	 "Unpack an image's layers (once; they are cached) and print their directories, base first.",
	 OPTS(layers_opts), cmd_layers},
};

static void usage(FILE *out, const char *prog)
{
	fprintf(out, "Usage: %s [--image-root DIR] COMMAND [flags] [ARG...]\n\nCommands:\n", prog);
	for (size_t i = 0; i < KEEL_ARRAY_SIZE(subcommands); i++)
		fprintf(out, "  %-8s %s\n", subcommands[i].name, subcommands[i].usage);
	fprintf(out, "\nThe store is --image-root, $" KEEL_IMAGE_ROOT_ENV ", or " KEEL_IMAGE_DEFAULT_ROOT
		".\n`%s COMMAND --help` describes each command.\n", prog);
}

int keel_image_cli(int argc, char **argv)
{
	struct cli c = {.prog = argc > 0 ? argv[0] : "keel-image"};
	struct keel_err err;
	int argi;
	struct keel_config_spec gspec = {.prog = c.prog, .usage = "COMMAND [flags] [ARG...]",
					 .opts = global_opts, .n_opts = KEEL_ARRAY_SIZE(global_opts)};
	int r = keel_config_parse(&gspec, &c, argc, argv, NULL, &argi, &err);
	if (r == -KEEL_EHELP) {
		usage(stdout, c.prog);
		keel_config_free(&gspec, &c);
		return 0;
	}
	if (r < 0 || argi >= argc) {
		if (r < 0)
			fprintf(stderr, "%s: %s\n", c.prog, err.msg);
		usage(stderr, c.prog);
		keel_config_free(&gspec, &c);
		return 2;
	}
	const struct subcommand *sub = NULL;
	for (size_t i = 0; i < KEEL_ARRAY_SIZE(subcommands); i++)
		if (strcmp(subcommands[i].name, argv[argi]) == 0)
			sub = &subcommands[i];
	if (!sub) {
		fprintf(stderr, "%s: unknown command \"%s\"\n", c.prog, argv[argi]);
		usage(stderr, c.prog);
		keel_config_free(&gspec, &c);
		return 2;
	}
	/* The subcommand's flags (image-root again, so it may come either side of the command). */
	char *global_root = c.image_root;
	c.image_root = NULL;
	char prog[128];
	snprintf(prog, sizeof(prog), "%s %s", c.prog, sub->name);
	struct keel_config_spec spec = {.prog = prog, .usage = sub->usage, .summary = sub->summary,
					.opts = sub->opts, .n_opts = sub->n_opts};
	int sargi;
	r = keel_config_parse(&spec, &c, argc - argi, argv + argi, NULL, &sargi, &err);
	int status;
	if (r == -KEEL_EHELP) {
		keel_config_help(&spec, stdout);
		status = 0;
	} else if (r < 0) {
		fprintf(stderr, "%s: %s\n", prog, err.msg);
		status = 2;
	} else {
		struct keel_image_store *s;
		const char *root = c.image_root ? c.image_root : global_root;
		if (keel_image_store_open(root, &s, &err) < 0) {
			status = fail(&c, &err);
		} else {
			status = sub->run(&c, s, argc - argi - sargi, argv + argi + sargi);
			keel_image_store_free(s);
		}
	}
	keel_config_free(&spec, &c);
	keel_free(global_root);
	return status;
}
