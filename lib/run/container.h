/* The container lifecycle behind keel-run's runc-compatible commands (runtime-spec runtime.md):
 * create, start, run, state, kill, delete, list. Each call is one short-lived operation on the
 * state under opts->root; separate processes cooperate through locks on the container's
 * directory. */
#pragma once

#include <stdbool.h>
#include <sys/types.h>

#include "base/buf.h"
#include "base/errors.h"

#define KEEL_RUN_DEFAULT_ROOT "/run/keel-run"

struct keel_run_opts {
	const char *root;           /* state root (--root) */
	const char *id;
	const char *bundle;         /* --bundle, default "." */
	const char *pid_file;       /* --pid-file or NULL */
	const char *console_socket; /* --console-socket or NULL */
	unsigned preserve_fds;      /* --preserve-fds */
	bool no_pivot;              /* --no-pivot: MS_MOVE + chroot instead of pivot_root */
	bool detach;                /* run --detach */
	bool keep;                  /* run --keep: leave the stopped container for `delete` */
};

/* Warnings the lifecycle wants the CLI to log (a failing poststart/poststop hook does not fail
 * the operation, per runtime-spec); a callback so the library itself never logs. */
typedef void (*keel_run_warn_fn)(const char *msg, void *userdata);
void keel_run_set_warn(keel_run_warn_fn fn, void *userdata);

/* `create`: set the container up and leave its init waiting for `start`. */
int keel_container_create(const struct keel_run_opts *opts, struct keel_err *err);
/* `start`: let a created container's init exec the user process, then run poststart hooks. */
int keel_container_start(const char *root, const char *id, struct keel_err *err);
/* `run`: create and start; unless detached, forward signals, wait, delete, and put the
 * container's exit status in *ret_status (128+n for signal n). */
int keel_container_run(const struct keel_run_opts *opts, int *ret_status, struct keel_err *err);
/* `state`: runc's JSON for one container into out. */
int keel_container_state(const char *root, const char *id, struct keel_buf *out, struct keel_err *err);
/* `kill`: send sig to the init (all processes of the container with `all`). */
int keel_container_kill(const char *root, const char *id, int sig, bool all, struct keel_err *err);
/* `delete`: stopped or created containers; running ones only with force (killed first). */
int keel_container_delete(const char *root, const char *id, bool force, struct keel_err *err);

/* `exec`: a new process in a running (or created) container: its namespaces, cgroups, and the
 * process's user, capabilities, rlimits, no_new_privs; seccomp from the container's config. */
struct keel_exec_opts {
	const char *root, *id;
	const char *process_file;   /* --process: a runtime-spec process object (or "-": stdin) */
	char *const *args;          /* the command when no --process (NULL-terminated) */
	char *const *env;           /* --env NAME=VALUE, added to (or replacing in) the config's */
	const char *cwd;            /* --cwd */
	const char *user;           /* --user UID[:GID] */
	char *const *caps;          /* --cap CAP_X, added to all sets but ambient */
	char *const *gids;          /* --additional-gids */
	bool no_new_privs, tty, detach;
	const char *apparmor, *label;
	const char *console_socket, *pid_file;
	unsigned preserve_fds;
};
int keel_container_exec(const struct keel_exec_opts *opts, int *ret_status, struct keel_err *err);

/* `pause`/`resume`: freeze or thaw every process of a running container. */
int keel_container_pause(const char *root, const char *id, bool pause, struct keel_err *err);
/* `update`: new limits from a linux.resources JSON document (taken; may be NULL for none). */
struct json_t;
int keel_container_update(const char *root, const char *id, struct json_t *resources,
			  struct keel_err *err);
/* `ps`: the pids of the container's processes (keel_free the array). */
int keel_container_pids(const char *root, const char *id, pid_t **ret, size_t *ret_n,
			struct keel_err *err);
/* `events --stats`: runc's stats event for one container into out. 1 when the container has
 * stopped (nothing written). */
int keel_container_stats(const char *root, const char *id, struct keel_buf *out, struct keel_err *err);
/* `events`: watch the container's memory cgroup for OOMs (see keel_cgroup_oom_open). */
struct keel_cgroup_oom;
int keel_container_oom_open(const char *root, const char *id, struct keel_cgroup_oom *o, struct keel_err *err);

/* `list`: one entry per container with a state. */
struct keel_container_info {
	char *id;
	pid_t pid;
	const char *status;
	char *bundle;
	int64_t created_ns;
	char *json; /* the state document (compact) */
};
int keel_container_list(const char *root, struct keel_container_info **ret, size_t *ret_n,
			struct keel_err *err);
void keel_container_list_free(struct keel_container_info *v, size_t n);
