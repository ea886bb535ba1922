/* A container's cgroups on any of the three layouts: v1 (one hierarchy per controller), v2 (the
 * unified hierarchy) and hybrid (v1 controllers plus a cgroup2 mount at /sys/fs/cgroup/unified that
 * only tracks processes). The layout-specific parts sit behind a small table of operations. */
#pragma once

#include <stdbool.h>
#include <sys/types.h>

#include "base/errors.h"
#include "run/spec.h"

enum keel_cgroup_mode { KEEL_CGROUP_V1, KEEL_CGROUP_V2, KEEL_CGROUP_HYBRID };

#define KEEL_CGROUP_MAX_DIRS 16

struct keel_cgroup {
	enum keel_cgroup_mode mode;
	const char *mnt_root;  /* "/sys/fs/cgroup" unless a test points elsewhere */
	unsigned n;            /* hierarchies joined */
	struct keel_cgroup_dir {
		char name[16];  /* "memory", "unified", ... ("" for pure v2) */
		char *path;     /* absolute directory of the container's cgroup */
		unsigned created; /* how many levels, from the leaf up, this container created */
	} dirs[KEEL_CGROUP_MAX_DIRS];
};

/* Which layout the machine has (statfs of /sys/fs/cgroup and of .../unified). */
enum keel_cgroup_mode keel_cgroup_detect(void);

/* The container's cgroup path per runtime-spec: an absolute cgroupsPath is below each hierarchy's
 * root, a relative one (or the id when none is given) below keel-run's own cgroup. Creates the
 * directories, then writes the resources; on failure removes what it made. */
int keel_cgroup_create(struct keel_cgroup *cg, const struct keel_spec *spec, const char *id,
		       struct keel_err *err);
/* Move pid into every hierarchy. */
int keel_cgroup_add(const struct keel_cgroup *cg, pid_t pid, struct keel_err *err);
/* The cgroup.procs file to list the container's processes from (into out, 4096 bytes). */
void keel_cgroup_procs_path(const struct keel_cgroup *cg, char *out, size_t size);
/* Directories to remove on delete, leaf first then the parents this container created. */
int keel_cgroup_dirs(const struct keel_cgroup *cg, char ***ret);
void keel_cgroup_free(struct keel_cgroup *cg);

/* Signal every process listed in procs_path; returns how many were signalled, or -errno. */
int keel_cgroup_signal_all(const char *procs_path, int sig);
/* Remove the directories (waiting for the kernel to let go of exiting tasks, up to ~2 s). */
int keel_cgroup_remove_dirs(char *const *dirs, struct keel_err *err);
