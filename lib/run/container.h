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
