/* The loader's insides, shared by load.c, load_unit.c and install.c. */
#pragma once

#include <sys/stat.h>

#include "init/load.h"

/* One name of the search path: a file, an alias (a symlink to another name inside the search
 * path), or a mask. */
struct keel__name_entry {
	const char *name;     /* pool */
	const char *path;     /* pool: the file to read (a symlink out of the search path stays
				 the link's own path); NULL for aliases and masks */
	const char *alias_of; /* pool: the name an alias points at */
	unsigned prio;        /* index of its directory in the search path */
	bool masked;
};

struct keel_loader {
	struct keel_pool *pool;
	char **dirs;        /* as configured */
	char **active;      /* the ones that exist, each once (pointers into dirs) */
	dev_t *active_dev;
	ino_t *active_ino;
	struct keel__name_entry *map; /* sorted by name */
	size_t n_map;
	char **subdirs;     /* sorted paths of the search path's *.d, *.wants, *.requires
			       directories, so loading does not probe for ones that do not exist */
	size_t n_subdirs;
	const char *last_id, *last_fragment; /* keel_loader_lookup()'s answer */
	struct keel_host_info host_own;
	const struct keel_host_info *host;
	struct keel_diag_sink sink;
};

const struct keel__name_entry *keel__loader_find(const struct keel_loader *l, const char *name);
/* Resolve like keel_loader_lookup; *ret_names (may be NULL) gets the alias names passed through. */
int keel__loader_resolve(struct keel_loader *l, const char *name, struct keel_unit_lookup *ret,
			 char ***ret_names);
/* Whether a directory is one of the search path's (by inode, so /lib and /usr/lib match). */
bool keel__dir_in_search_path(const struct keel_loader *l, const char *dir);
bool keel__null_or_empty(const struct stat *st);
/* Whether path is one of the drop-in or .wants/.requires directories found by the last scan. */
bool keel__subdir_exists(const struct keel_loader *l, const char *path);
/* The target of a symlink as an absolute, simplified path (new string), or NULL. */
char *keel__readlink_abs(const char *link);
int keel__validate_alias(const struct keel_diag_sink *sink, const char *link, const char *src,
			 const char *dst);
/* Names ending in ~, .rpmnew, .dpkg-old and the like, or starting with '.'. */
bool keel__hidden_or_backup(const char *name);
