/* Containers' state under the runtime root (--root, default /run/keel-run): one directory per
 * container holding state.json and, between create and start, exec.fifo. Separate keel-run
 * processes cooperate through flock() on the container's directory. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "base/buf.h"
#include "base/errors.h"

enum keel_cstatus {
	KEEL_CSTATUS_CREATING,
	KEEL_CSTATUS_CREATED,
	KEEL_CSTATUS_RUNNING,
	KEEL_CSTATUS_STOPPED,
	KEEL_CSTATUS_PAUSED,
};

const char *keel_cstatus_name(enum keel_cstatus s);

/* What keel-run remembers about a container between invocations. */
struct keel_cstate {
	char *id;
	pid_t pid;              /* the container's init, in keel-run's pid namespace */
	uint64_t pid_start;     /* its start time (/proc/<pid>/stat field 22), against pid reuse */
	char *bundle, *rootfs;
	int64_t created_ns;     /* wall clock */
	char *annotations;      /* a JSON object, or NULL */
	char *hooks;            /* {"poststart":[...],"poststop":[...]} from the config, or NULL */
	char **cgroup_dirs;     /* directories to remove on delete, in order (strv) */
	char *cgroup_procs;     /* a cgroup.procs file listing the container's processes */
	bool own_pidns;         /* killing init kills everything */
	int cgroup_mode;        /* enum keel_cgroup_mode */
	char **cgroup_names;    /* per hierarchy joined: "memory", "unified", "" (pure v2) ... */
	char **cgroup_paths;    /* ... and the container's directory in it (same order) */
};

void keel_cstate_free(struct keel_cstate *st);

/* Container ids: what runc accepts, [A-Za-z0-9_+.-], not "." or "..", at most 1024 bytes. */
bool keel_cstate_valid_id(const char *id);

/* Make <root>/<id> (and root, 0700) and lock it exclusively: -EEXIST when the container exists.
 * Returns the locked directory's fd. */
int keel_cstate_create_dir(const char *root, const char *id, struct keel_err *err);
/* Open and lock <root>/<id> (shared or exclusive): -ENOENT "container does not exist". */
int keel_cstate_lock(const char *root, const char *id, bool exclusive, struct keel_err *err);

/* Write state.json atomically into the locked directory. */
int keel_cstate_save(int dirfd, const struct keel_cstate *st, struct keel_err *err);
/* Read it back. -ENOENT when the container is still being created or is gone. */
int keel_cstate_load(int dirfd, const char *id, struct keel_cstate *st, struct keel_err *err);
/* creating.json: what a create has made so far (cgroups, no pid yet), written as soon as the
 * cgroups exist, so that `delete --force` can undo a create that was killed half way.
 * keel_cstate_save removes it once state.json is written. */
int keel_cstate_save_creating(int dirfd, const struct keel_cstate *st, struct keel_err *err);
int keel_cstate_load_creating(int dirfd, const char *id, struct keel_cstate *st,
			      struct keel_err *err);

/* created (init waits for start), running, paused (its freezer cgroup is frozen), or stopped
 * (init gone, a zombie, or another process now holds its pid). */
enum keel_cstatus keel_cstate_status(int dirfd, const struct keel_cstate *st);
/* The container's directory in hierarchy `name` ("freezer", "unified", "" for pure v2), or NULL. */
const char *keel_cstate_cgroup(const struct keel_cstate *st, const char *name);
/* True when the container's cgroup is frozen (v1 freezer.state FROZEN or FREEZING, v2
 * cgroup.freeze 1). */
bool keel_cstate_frozen(const struct keel_cstate *st);
/* True when pid is alive (not a zombie) and started at `start`. */
bool keel_pid_alive(pid_t pid, uint64_t start);
/* /proc/<pid>/stat's start time; 0 when the process is gone. */
uint64_t keel_pid_start_time(pid_t pid);

/* runc's state JSON (indented by two spaces, as `runc state` prints it). */
int keel_cstate_json(const struct keel_cstate *st, enum keel_cstatus status, bool indent,
		     struct keel_buf *out);

/* Remove what is in the directory, then the directory itself. */
int keel_cstate_remove_dir(const char *root, const char *id, int dirfd, struct keel_err *err);
