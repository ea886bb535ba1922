/* What the parent side (container.c) and the container's init before exec (init.c, rootfs.c,
 * seccomp.c) share: the setup context and the messages on the sync socket between them. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "base/errors.h"
#include "run/cgroup.h"
#include "run/spec.h"

enum keel__msg_type {
	KEEL__MSG_GO = 1,    /* parent -> init: go on (first: id maps written, value: the init's
			      * pid; later: runtime hooks done) */
	KEEL__MSG_HOOKS,     /* init -> parent: namespaces made, run prestart/createRuntime now */
	KEEL__MSG_READY,     /* init -> parent: all set up, waiting to be started */
	KEEL__MSG_START,     /* parent -> init (run): exec now */
	KEEL__MSG_ERR,       /* init -> parent: setup failed, text says why */
	KEEL__MSG_HELLO,     /* init -> parent, after a helper cloned it: its pid travels in the
			      * message's SCM_CREDENTIALS (translated into the parent's pid namespace) */
};

struct keel__msg {
	uint32_t type;
	int32_t value;
	char text[KEEL_ERR_MSG_SIZE];
};

struct keel__init {
	const struct keel_spec *spec;
	const struct keel_cgroup *cg;
	const char *id, *bundle, *rootfs;
	int sync_fd;                 /* the init's end of the socketpair */
	int fifo_fd;                 /* create: exec.fifo, opened O_RDWR; -1 for run */
	int console_fd;              /* connected --console-socket, or -1 */
	int ns_fd[KEEL_NS_KINDS];    /* namespaces the init joins with setns, or -1 */
	unsigned long helper_clone_flags; /* with a joined user namespace: a helper enters the
			      * cgroups, joins the user namespace and clones the init with these
			      * (new namespaces) plus CLONE_PARENT */
	bool via_helper;             /* this is that init: cgroups, oomScoreAdj, user ns done */
	bool new_cgroupns;           /* unshared after the init moved into its cgroups */
	bool in_v2_cgroup;           /* clone3 put the init into the v2 cgroup already */
	unsigned preserve_fds;
	bool run_mode, no_pivot;
	pid_t host_pid;              /* from KEEL__MSG_GO, for hooks' state */
	int close_fds[4];            /* the parent's fds the init must not keep (-1 unused) */
};

/* The init: never returns (execs the user process or _exits after reporting an error). */
KEEL_NORETURN void keel__init_main(struct keel__init *c);
/* The helper for a joined user namespace (see helper_clone_flags): never returns; clones the init
 * as a sibling (a child of keel-run) and exits. */
KEEL_NORETURN void keel__init_helper(struct keel__init *c);

int keel__msg_send(int fd, enum keel__msg_type type, int32_t value, const char *text);
/* 0, or -EPIPE when the peer closed the socket. */
int keel__msg_recv(int fd, struct keel__msg *m);

/* rootfs.c, run by the init: everything up to and including pivot_root, then the parts that
 * need the container's own /proc and /dev (terminal, sysctl, masks, read-only paths and root). */
int keel__rootfs_prepare(struct keel__init *c, struct keel_err *err);
int keel__rootfs_pivot(struct keel__init *c, struct keel_err *err);
int keel__rootfs_finish(struct keel__init *c, struct keel_err *err);

/* seccomp.c: build and load the filter. */
int keel__seccomp_load(const struct keel_spec_seccomp *sc, struct keel_err *err);

/* init.c's steps that `exec` repeats for its process. */
int keel__set_rlimits(const struct keel_spec *s, struct keel_err *err);
/* process.args[0] looked up in the process's PATH, as execvp would. */
int keel__find_exec(const struct keel_spec *s, char *out, size_t size, struct keel_err *err);
int keel__set_caps_and_user(const struct keel_spec *s, struct keel_err *err);
/* A new pty, its master sent to the --console-socket (closed and set to -1 after), the slave
 * made stdio and the controlling terminal; bound on /dev/console too when dev_console. */
int keel__setup_console(int *console_fd, const struct keel_spec *spec, bool dev_console,
			struct keel_err *err);

/* --pid-file of create/run and exec: the pid written to PATH.keel-tmp and renamed over PATH, so
 * a reader never sees a partial file. */
int keel__write_pid_file(const char *path, pid_t pid, struct keel_err *err);
