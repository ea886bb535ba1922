/* A container's cgroups on any of the three layouts: v1 (one hierarchy per controller), v2 (the
 * unified hierarchy) and hybrid (v1 controllers plus a cgroup2 mount at /sys/fs/cgroup/unified that
 * only tracks processes). The layout-specific parts sit behind a small table of operations. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "base/errors.h"
#include "run/spec.h"

enum keel_cgroup_mode { KEEL_CGROUP_V1, KEEL_CGROUP_V2, KEEL_CGROUP_HYBRID };

#define KEEL_CGROUP_MAX_DIRS 16

struct keel_cgroup {
	enum keel_cgroup_mode mode;
	const char *mnt_root;  /* "/sys/fs/cgroup" unless a test points elsewhere */
	unsigned n;            /* hierarchies joined */
	int v2_fd;             /* unified directory for CLONE_INTO_CGROUP, -1 if none */
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
/* The unified (v2) directory opened for clone3's CLONE_INTO_CGROUP, or -1 on pure v1. */
int keel_cgroup_v2_fd(const struct keel_cgroup *cg);
/* Called by the container's init (single-threaded) to move itself into every hierarchy; the
 * v2 one too unless clone3 already put it there (in_v2). On v1 it writes "0" to `tasks`:
 * moving the caller's only thread skips the kernel's global threadgroup lock, whose write side
 * waits for an RCU grace period (~5-15 ms here) on every cgroup.procs write. */
int keel_cgroup_enter_self(const struct keel_cgroup *cg, bool in_v2, struct keel_err *err);
/* The cgroup.procs file to list the container's processes from (into out, 4096 bytes). */
void keel_cgroup_procs_path(const struct keel_cgroup *cg, char *out, size_t size);
/* Directories to remove on delete, leaf first then the parents this container created. */
int keel_cgroup_dirs(const struct keel_cgroup *cg, char ***ret);
void keel_cgroup_free(struct keel_cgroup *cg);
/* Each hierarchy's name and the container's directory in it (two strv in the same order), for
 * state.json; keel_cgroup_load rebuilds the struct from them (opening the v2 directory for
 * CLONE_INTO_CGROUP when open_v2). */
int keel_cgroup_names_paths(const struct keel_cgroup *cg, char ***names, char ***paths);
int keel_cgroup_load(struct keel_cgroup *cg, int mode, char *const *names, char *const *paths,
		     bool open_v2, struct keel_err *err);

/* `update`: write the resources that are set in res (runtime-spec linux.resources). */
int keel_cgroup_set_resources(const struct keel_cgroup *cg, const struct keel_spec_resources *res,
			      struct keel_err *err);
/* `pause`/`resume`: the v1 freezer (hybrid, v1) or cgroup.freeze (v2); waits until the state is
 * reached (up to ~2 s). */
int keel_cgroup_freeze(const struct keel_cgroup *cg, bool freeze, struct keel_err *err);
/* `events --stats`: cpu, memory and pids figures as the members of runc's stats "data" object
 * (written into an open object of w). */
struct keel_jw;
void keel_cgroup_stats(const struct keel_cgroup *cg, struct keel_jw *w);

/* `events`: OOM notifications from the container's memory cgroup. fd becomes readable on an
 * OOM (v1: an eventfd registered on memory.oom_control through cgroup.event_control; v2: inotify
 * on memory.events, whose oom_kill counter is compared with the last one seen). */
struct keel_cgroup_oom {
	int fd, ctl_fd;
	bool v2;
	uint64_t count;   /* v2: oom_kill seen so far */
	char path[4096];  /* memory.oom_control (v1) or memory.events (v2) */
};
int keel_cgroup_oom_open(const struct keel_cgroup *cg, struct keel_cgroup_oom *o, struct keel_err *err);
/* After fd polled readable: how many OOMs happened (0: none), -ENOENT once the cgroup is gone. */
int keel_cgroup_oom_read(struct keel_cgroup_oom *o);
void keel_cgroup_oom_close(struct keel_cgroup_oom *o);

/* Signal every process listed in procs_path; returns how many were signalled, or -errno. */
int keel_cgroup_signal_all(const char *procs_path, int sig);
/* Remove the directories (waiting for the kernel to let go of exiting tasks, up to ~2 s). */
int keel_cgroup_remove_dirs(char *const *dirs, struct keel_err *err);
