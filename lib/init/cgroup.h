/* keel-init's cgroup manager: every unit's processes in their own cgroup, on cgroup v1, v2 or
 * the hybrid layout (v1 controllers plus a cgroup2 mount at /sys/fs/cgroup/unified, as on this
 * machine). A unit's cgroup is <own>/<root>/<unit> in each hierarchy it joins, where <own> is
 * keel-init's own cgroup there (so a supervisor stays inside the limits it was given) and
 * <root> is configurable ("keel.slice").
 *
 * One hierarchy tracks processes: cgroup2 when mounted (its cgroup.events says when a cgroup
 * empties, watched with inotify), else name=systemd or the first v1 controller (emptiness is
 * re-checked on SIGCHLD). Resource settings (systemd.resource-control(5)) are written to
 * whichever hierarchy holds the controller: MemoryMax=/MemoryLimit= to memory.max or
 * memory.limit_in_bytes, CPUQuota= to cpu.max or cpu.cfs_quota_us, CPUWeight=/CPUShares= to
 * cpu.weight or cpu.shares (converted as systemd does), TasksMax= to pids.max,
 * IOWeight=/BlockIOWeight= to io.weight / io.bfq.weight or blkio.weight / blkio.bfq.weight. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "base/errors.h"
#include "base/macro.h"
#include "init/unit.h"

enum keel_cg_mode { KEEL_CG_NONE, KEEL_CG_V1, KEEL_CG_V2, KEEL_CG_HYBRID };
const char *keel_cg_mode_to_string(enum keel_cg_mode m);

enum {
	KEEL_CGC_CPU = 1 << 0,
	KEEL_CGC_CPUACCT = 1 << 1,
	KEEL_CGC_MEMORY = 1 << 2,
	KEEL_CGC_PIDS = 1 << 3,
	KEEL_CGC_BLKIO = 1 << 4, /* v1 */
	KEEL_CGC_IO = 1 << 5,    /* v2 */
};

#define KEEL_CG_MAX_HIER 12
/* Sized for the child: the fds it writes "0" into before exec. */
#define KEEL_CG_MAX_JOIN KEEL_CG_MAX_HIER

struct keel_cg_hier {
	char *mount;      /* "/sys/fs/cgroup/memory" */
	char *base;       /* mount + own + "/" + root: where unit cgroups are made */
	unsigned ctrls;   /* KEEL_CGC_* this hierarchy has (v2: those enabled for our subtree) */
	bool v2;
	bool join;        /* units' processes are put here */
};

struct keel_cg {
	struct keel_cg_hier h[KEEL_CG_MAX_HIER];
	unsigned n;
	int track;        /* index of the tracking hierarchy, -1 when none */
	enum keel_cg_mode mode;
	char *root;
};

/* Read /proc/self/mountinfo and /proc/self/cgroup, create <own>/<root> in every hierarchy that
 * units join. With no cgroup mounted at all the mode is NONE and every other call is a no-op
 * (processes are then tracked by PID only). 0, -ENOMEM, or -errno (reported in err). */
int keel_cg_open(const char *root, struct keel_cg **ret, struct keel_err *err) KEEL_WUR;
/* The same, leaving cgroup2 out (a hybrid machine then runs as pure v1: tests of the v1 path). */
int keel_cg_open_v1(const char *root, bool v1_only, struct keel_cg **ret, struct keel_err *err) KEEL_WUR;
/* Removes <own>/<root> where it is empty; accepts NULL. */
void keel_cg_free(struct keel_cg *cg);

/* The hierarchies (bit i = cg->h[i]) a unit with these settings joins: the tracking one, and a
 * v1 controller's only when a setting needs it. Moving a process between cgroups costs an RCU
 * grace period on v1 (cgroup_threadgroup_rwsem), several milliseconds each, so units without
 * resource settings join only the tracking hierarchy - where, on cgroup2, processes are born
 * with clone3(CLONE_INTO_CGROUP) and never move at all. */
unsigned keel_cg_mask(const struct keel_cg *cg, const struct keel_cgroup_ctx *res);
/* Create the unit's cgroups in the hierarchies of mask and apply its resource settings (values
 * a hierarchy cannot take are reported to warn() and skipped). 0 or -errno when a cgroup could
 * not be made. */
int keel_cg_create(struct keel_cg *cg, const char *unit, unsigned mask, const struct keel_cgroup_ctx *res,
		   void (*warn)(void *ud, const char *msg), void *ud) KEEL_WUR;
/* Open the cgroup.procs files of the hierarchies in mask that a new process of unit writes "0"
 * to (O_WRONLY|O_CLOEXEC). Returns the number of fds (close them after the spawn) or -errno. */
int keel_cg_open_procs(struct keel_cg *cg, const char *unit, unsigned mask, int fds[KEEL_CG_MAX_JOIN]) KEEL_WUR;
/* The unit's cgroup2 directory (O_PATH) for clone3(CLONE_INTO_CGROUP), or -ENOENT when the
 * tracking hierarchy is not cgroup2. */
int keel_cg_open_dir(struct keel_cg *cg, const char *unit) KEEL_WUR;
/* The processes of the unit (tracking hierarchy), as a new array. 0 or -errno (ENOENT: no
 * cgroup). */
int keel_cg_pids(struct keel_cg *cg, const char *unit, pid_t **ret, size_t *n) KEEL_WUR;
/* Whether the unit's cgroup holds no process (true also when it does not exist). */
bool keel_cg_is_empty(struct keel_cg *cg, const char *unit);
/* Send sig to every process in the cgroup, except `except` (0: none), repeating until no new
 * process shows up; SIGCONT follows other signals than SIGKILL/SIGCONT when `cont`. Returns the
 * number of processes signalled, or -errno. */
int keel_cg_kill(struct keel_cg *cg, const char *unit, int sig, pid_t except, bool cont);
/* Remove the unit's cgroups in the hierarchies of mask (and any it made below). 0 or -EBUSY
 * when processes remain. */
int keel_cg_remove(struct keel_cg *cg, const char *unit, unsigned mask);
/* The tracking hierarchy's cgroup.events of unit, for an inotify watch (v2 only); NULL when
 * there is none. A static buffer. */
const char *keel_cg_events_path(struct keel_cg *cg, const char *unit, char *buf, size_t size);
/* Which unit a process belongs to, from /proc/PID/cgroup: copies the unit name into out.
 * 0, -ENOENT (not in one of ours) or -errno. */
int keel_cg_unit_of_pid(struct keel_cg *cg, pid_t pid, char *out, size_t size);
/* Read one attribute of the unit from the hierarchy holding ctrl (e.g. "pids.current"). */
int keel_cg_read_attr(struct keel_cg *cg, const char *unit, unsigned ctrl, const char *v1name,
		      const char *v2name, char *out, size_t size);
