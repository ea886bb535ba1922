/* Helpers for the image unit tests: tar streams made in memory with libarchive, and OCI image
 * layouts written to a directory, so that each test builds exactly the archive it needs. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct tu_entry {
	const char *path;
	char type;        /* 'f' file, 'd' dir, 'l' symlink, 'h' hardlink, 'c' char dev, 'p' fifo */
	const char *data; /* file content, or the symlink/hardlink target */
	mode_t mode;      /* permission bits; 0 picks 0644 (0755 for dirs) */
	uid_t uid;
	gid_t gid;
	unsigned major, minor;
	const char *xattr; /* one xattr name (value xattr_value), or NULL */
	const char *xattr_value;
};

/* A tar (pax) of the entries; with gzip, compressed. Returns a malloc'ed buffer. */
char *tu_tar(const struct tu_entry *e, size_t n, bool gzip, size_t *ret_len);

/* sha256:<hex> of a buffer. */
void tu_digest(const void *data, size_t len, char out[72]);

/* Write data to dir/rel (creating parents). 0 or -1. */
int tu_write(const char *dir, const char *rel, const void *data, size_t len);

/* An OCI layout image: layers are uncompressed tars; each is stored gzip-compressed when
 * gzip_layers. Adds a manifest to the layout's index (ref_name annotation unless NULL) and
 * returns the digests of the manifest and config. The index.json is written by tu_oci_finish. */
struct tu_layout {
	char dir[256];
	char *index_entries; /* JSON text of the manifests array so far */
};
void tu_oci_begin(struct tu_layout *l, const char *dir);
int tu_oci_image(struct tu_layout *l, const char *const *layers, const size_t *lens, size_t n,
		 bool gzip_layers, const char *arch, const char *ref_name, char manifest_digest[72],
		 char config_digest[72]);
int tu_oci_finish(struct tu_layout *l);
