#include "image_testutil.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "image/digest.h"

struct membuf {
	char *data;
	size_t len, cap;
};

static la_ssize_t mem_write(struct archive *a, void *ud, const void *buf, size_t n)
{
	(void)a;
	struct membuf *m = ud;
	if (m->len + n > m->cap) {
		m->cap = (m->len + n) * 2;
		m->data = realloc(m->data, m->cap);
	}
	memcpy(m->data + m->len, buf, n);
	m->len += n;
	return (la_ssize_t)n;
}

static int mem_open(struct archive *a, void *ud)
{
	(void)a;
	(void)ud;
	return ARCHIVE_OK;
}

static int mem_close(struct archive *a, void *ud)
{
	(void)a;
	(void)ud;
	return ARCHIVE_OK;
}

char *tu_tar(const struct tu_entry *e, size_t n, bool gzip, size_t *ret_len)
{
	struct membuf m = {0};
	struct archive *a = archive_write_new();
	archive_write_set_format_pax(a);
	if (gzip)
		archive_write_add_filter_gzip(a);
	archive_write_set_bytes_in_last_block(a, 1);
	archive_write_open(a, &m, mem_open, mem_write, mem_close);
	for (size_t i = 0; i < n; i++) {
		struct archive_entry *ae = archive_entry_new();
		archive_entry_set_pathname(ae, e[i].path);
		archive_entry_set_uid(ae, e[i].uid);
		archive_entry_set_gid(ae, e[i].gid);
		archive_entry_set_mtime(ae, 1700000000, 0);
		mode_t perm = e[i].mode ? e[i].mode : (e[i].type == 'd' ? 0755 : 0644);
		size_t size = 0;
		switch (e[i].type) {
		case 'f':
			archive_entry_set_filetype(ae, AE_IFREG);
			size = e[i].data ? strlen(e[i].data) : 0;
			break;
		case 'd':
			archive_entry_set_filetype(ae, AE_IFDIR);
			break;
		case 'l':
			archive_entry_set_filetype(ae, AE_IFLNK);
			archive_entry_set_symlink(ae, e[i].data);
			perm = 0777;
			break;
		case 'h':
			archive_entry_set_filetype(ae, AE_IFREG);
			archive_entry_set_hardlink(ae, e[i].data);
			break;
		case 'c':
			archive_entry_set_filetype(ae, AE_IFCHR);
			archive_entry_set_rdevmajor(ae, e[i].major);
			archive_entry_set_rdevminor(ae, e[i].minor);
			break;
		case 'p':
			archive_entry_set_filetype(ae, AE_IFIFO);
			break;
		}
		archive_entry_set_perm(ae, perm);
		archive_entry_set_size(ae, (la_int64_t)size);
		if (e[i].xattr)
			archive_entry_xattr_add_entry(ae, e[i].xattr, e[i].xattr_value,
						      strlen(e[i].xattr_value));
		archive_write_header(a, ae);
		if (size)
			archive_write_data(a, e[i].data, size);
		archive_entry_free(ae);
	}
	archive_write_close(a);
	archive_write_free(a);
	*ret_len = m.len;
	return m.data;
}

/* gzip a buffer (libarchive's raw format: one stream, no tar framing). */
static char *gzip_buf(const char *data, size_t len, size_t *ret_len)
{
	struct membuf m = {0};
	struct archive *a = archive_write_new();
	archive_write_set_format_raw(a);
	archive_write_add_filter_gzip(a);
	archive_write_open(a, &m, mem_open, mem_write, mem_close);
	struct archive_entry *ae = archive_entry_new();
	archive_entry_set_pathname(ae, "data");
	archive_entry_set_filetype(ae, AE_IFREG);
	archive_entry_set_size(ae, (la_int64_t)len);
	archive_write_header(a, ae);
	archive_write_data(a, data, len);
	archive_entry_free(ae);
	archive_write_close(a);
	archive_write_free(a);
	*ret_len = m.len;
	return m.data;
}

void tu_digest(const void *data, size_t len, char out[72])
{
	keel_sha256_buf(data, len, out);
}

int tu_write(const char *dir, const char *rel, const void *data, size_t len)
{
	char path[1024];
	mkdir(dir, 0755);
	snprintf(path, sizeof(path), "%s/%s", dir, rel);
	for (char *p = path + strlen(dir) + 1; (p = strchr(p, '/')); p++) {
		*p = '\0';
		mkdir(path, 0755);
		*p = '/';
	}
	FILE *f = fopen(path, "wb");
	if (!f)
		return -1;
	size_t w = fwrite(data, 1, len, f);
	fclose(f);
	return w == len ? 0 : -1;
}

static int blob(struct tu_layout *l, const void *data, size_t len, char digest[72])
{
	tu_digest(data, len, digest);
	char rel[128];
	snprintf(rel, sizeof(rel), "blobs/sha256/%s", digest + 7);
	return tu_write(l->dir, rel, data, len);
}

void tu_oci_begin(struct tu_layout *l, const char *dir)
{
	snprintf(l->dir, sizeof(l->dir), "%s", dir);
	l->index_entries = strdup("");
	tu_write(dir, "oci-layout", "{\"imageLayoutVersion\":\"1.0.0\"}", 30);
}

int tu_oci_image(struct tu_layout *l, const char *const *layers, const size_t *lens, size_t n,
		 bool gzip_layers, const char *arch, const char *ref_name, char manifest_digest[72],
		 char config_digest[72])
{
	char diff_ids[4096] = "", descs[8192] = "";
	for (size_t i = 0; i < n; i++) {
		char d[72], bd[72];
		tu_digest(layers[i], lens[i], d);
		size_t blen = lens[i];
		char *stored = (char *)layers[i], *gz = NULL;
		if (gzip_layers)
			stored = gz = gzip_buf(layers[i], lens[i], &blen);
		if (blob(l, stored, blen, bd) < 0)
			return -1;
		free(gz);
		snprintf(diff_ids + strlen(diff_ids), sizeof(diff_ids) - strlen(diff_ids), "%s\"%s\"",
			 i ? "," : "", d);
		snprintf(descs + strlen(descs), sizeof(descs) - strlen(descs),
			 "%s{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar%s\",\"digest\":\"%s\","
			 "\"size\":%zu}", i ? "," : "", gzip_layers ? "+gzip" : "", bd, blen);
	}
	char config[8192];
	int clen = snprintf(config, sizeof(config),
			    "{\"created\":\"2024-05-06T07:08:09Z\",\"architecture\":\"%s\",\"os\":\"linux\","
			    "\"config\":{\"Env\":[\"PATH=/bin\"],\"Cmd\":[\"/bin/sh\"],\"WorkingDir\":\"/\","
			    "\"Labels\":{\"test\":\"yes\"}},"
			    "\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[%s]}}", arch, diff_ids);
	if (blob(l, config, (size_t)clen, config_digest) < 0)
		return -1;
	char manifest[16384];
	int mlen = snprintf(manifest, sizeof(manifest),
			    "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\","
			    "\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\","
			    "\"digest\":\"%s\",\"size\":%d},\"layers\":[%s]}", config_digest, clen, descs);
	if (blob(l, manifest, (size_t)mlen, manifest_digest) < 0)
		return -1;
	char entry[1024], ann[300] = "";
	if (ref_name)
		snprintf(ann, sizeof(ann), ",\"annotations\":{\"org.opencontainers.image.ref.name\":\"%s\"}",
			 ref_name);
	snprintf(entry, sizeof(entry),
		 "%s{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"%s\","
		 "\"size\":%d%s}", *l->index_entries ? "," : "", manifest_digest, mlen, ann);
	char *joined = malloc(strlen(l->index_entries) + strlen(entry) + 1);
	strcpy(joined, l->index_entries);
	strcat(joined, entry);
	free(l->index_entries);
	l->index_entries = joined;
	return 0;
}

int tu_oci_finish(struct tu_layout *l)
{
	size_t n = strlen(l->index_entries) + 64;
	char *idx = malloc(n);
	int len = snprintf(idx, n, "{\"schemaVersion\":2,\"manifests\":[%s]}", l->index_entries);
	int r = tu_write(l->dir, "index.json", idx, (size_t)len);
	free(idx);
	free(l->index_entries);
	l->index_entries = NULL;
	return r;
}
