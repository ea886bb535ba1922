/* Finding and loading unit files (systemd.unit(5) "Unit File Load Path", "Description"): a
 * search path in priority order, a name map built from its directories (unit files, alias
 * symlinks, masks), templates and instances, drop-in directories, and the .wants/.requires
 * directories that enabling creates. The loader owns the string pool its units use. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "base/macro.h"
#include "init/diag.h"
#include "init/name.h"
#include "init/unit.h"

/* keel-init's own search path, highest priority first. */
#define KEEL_UNIT_PATH_ETC "/etc/keel/system"
#define KEEL_UNIT_PATH_RUN "/run/keel/system"
#define KEEL_UNIT_PATH_LIB "/usr/lib/keel/system"

enum keel_paths_preset {
	KEEL_PATHS_KEEL,    /* /etc/keel/system /run/keel/system /usr/lib/keel/system */
	KEEL_PATHS_SYSTEMD, /* /etc/systemd/system /run/systemd/system /lib/systemd/system
			       /usr/lib/systemd/system */
};

struct keel_loader_config {
	const char *const *search_path; /* NULL-terminated, highest priority first; NULL: preset */
	enum keel_paths_preset preset;
	const struct keel_host_info *host; /* specifier values; NULL: read from this system */
	struct keel_diag_sink sink;
};

struct keel_loader;

/* Directories that do not exist are skipped; the same directory reached twice (as /lib and
 * /usr/lib are here) is searched once. 0, -ENOMEM, or an error reading the host information. */
int keel_loader_new(const struct keel_loader_config *cfg, struct keel_loader **ret) KEEL_WUR;
/* Frees the loader and its pool: free the units it loaded first. Accepts NULL. */
void keel_loader_free(struct keel_loader *l);
struct keel_pool *keel_loader_pool(struct keel_loader *l);
/* The directories searched, highest priority first (NULL-terminated). */
const char *const *keel_loader_search_path(const struct keel_loader *l);
/* Add a directory at the front (highest priority) or the end; rescans. */
int keel_loader_add_path(struct keel_loader *l, const char *dir, bool first) KEEL_WUR;
/* Re-read the directories (daemon-reload). 0 or -ENOMEM. */
int keel_loader_scan(struct keel_loader *l) KEEL_WUR;

/* Where a name leads. */
struct keel_unit_lookup {
	const char *id;       /* the unit's own name (an alias resolved, an instance kept) */
	const char *fragment; /* the file to read; NULL when masked or not found */
	bool masked;
	bool found;
};
/* Resolve a valid name through aliases and templates. Strings point into the loader (valid
 * until the next scan). -EINVAL for an invalid name, -ELOOP for an alias loop. */
int keel_loader_lookup(struct keel_loader *l, const char *name, struct keel_unit_lookup *ret) KEEL_WUR;

/* Load the unit `name`: resolve it, read the fragment and every drop-in (NAME.d/, the template's,
 * the "foo-.service.d/" prefixes', the type's "service.d/", sorted by file name, later ones
 * overriding), add .wants/.requires dependencies, then keel_unit_finish_load(). A unit is
 * returned whatever its load state (not-found, masked, bad-setting, error); problems go to
 * the sink. -EINVAL for a name that is not a valid name of a supported type, -ENOMEM. */
int keel_loader_load(struct keel_loader *l, const char *name, struct keel_unit **ret) KEEL_WUR;
/* Load with the fragment given as text (the control API's "load this content"); drop-ins
 * still come from the search path. path (may be NULL) names the text in messages. */
int keel_loader_load_text(struct keel_loader *l, const char *name, const char *path,
			  const char *text, size_t len, struct keel_unit **ret) KEEL_WUR;

/* Every name in the search path with what it resolves to, sorted (list-unit-files). Calls
 * fn(userdata, name, &lookup) for each; stops when fn returns non-zero and returns that. */
int keel_loader_foreach_name(struct keel_loader *l,
			     int (*fn)(void *userdata, const char *name, const struct keel_unit_lookup *lu),
			     void *userdata);

/* [Install]: the symlinks enable, disable, mask and unmask create or remove
 * (systemctl(1), systemd.unit(5) "[Install] Section Options"). Paths are absolute. */
enum keel_install_op { KEEL_INSTALL_SYMLINK, KEEL_INSTALL_UNLINK };
struct keel_install_change {
	enum keel_install_op op;
	char *path;   /* the link */
	char *target; /* what it points to (SYMLINK only) */
};
struct keel_install_plan {
	struct keel_install_change *v;
	size_t n;
};
void keel_install_plan_free(struct keel_install_plan *p);

/* The links that enabling `name` (and its Also= units) needs in config_dir: NAME.wants/ and
 * NAME.requires/ entries for WantedBy=/RequiredBy=, Alias= links; specifiers expanded,
 * DefaultInstance= used for templates. Links that already exist as wanted are left out; one
 * that exists but points elsewhere is an error (-EEXIST, reported). */
int keel_install_plan_enable(struct keel_loader *l, const char *name, const char *config_dir,
			     struct keel_install_plan *ret) KEEL_WUR;
/* The links in config_dir (two levels deep) that name the unit, its Alias= names or its Also=
 * units, or point at their files. */
int keel_install_plan_disable(struct keel_loader *l, const char *name, const char *config_dir,
			      struct keel_install_plan *ret) KEEL_WUR;
/* config_dir/NAME -> /dev/null; unmask removes such a link (only a link to /dev/null). */
int keel_install_plan_mask(struct keel_loader *l, const char *name, const char *config_dir,
			   struct keel_install_plan *ret) KEEL_WUR;
int keel_install_plan_unmask(struct keel_loader *l, const char *name, const char *config_dir,
			     struct keel_install_plan *ret) KEEL_WUR;
/* Carry out a plan: create parent directories, links, remove links. Stops at the first failure
 * (-errno, reported). */
int keel_install_apply(struct keel_loader *l, const struct keel_install_plan *p) KEEL_WUR;
