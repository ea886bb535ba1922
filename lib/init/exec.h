/* Starting one process of a unit: the parent prepares everything (argv after $VAR expansion,
 * the environment, users and groups looked up, rlimits clamped to the hard limits, the fds to
 * pass, the cgroup to be born in and the cgroup.procs files to join), then the child does only
 * system calls before execve(). The child is made with clone3(CLONE_INTO_CGROUP) where the
 * tracking hierarchy is cgroup2 (it never migrates: a move costs an RCU grace period), else
 * fork(); keel-init's few MiB make the copy-on-write cheap, and keel-init does not wait for the
 * exec (with vfork semantics one child waiting for a CPU on a busy machine stalled every other
 * unit: measured 1.6x slower). A step that fails makes the child exit with systemd's code for
 * it (200 CHDIR, 203 EXEC, 216 GROUP, 217 USER, 219 CGROUP, ...) and report the step and errno
 * through a close-on-exec pipe, so keel-init can log "Failed at step EXEC spawning /x: No such
 * file or directory". */
#pragma once

#include <stdbool.h>
#include <sys/resource.h>
#include <sys/types.h>

#include "base/macro.h"
#include "init/cgroup.h"
#include "init/sandbox.h"
#include "init/unit.h"

/* systemd's exit codes for the steps of process setup (systemd.exec(5) "Process Exit Codes"). */
enum {
	KEEL_EXIT_CHDIR = 200, KEEL_EXIT_NICE = 201, KEEL_EXIT_FDS = 202, KEEL_EXIT_EXEC = 203,
	KEEL_EXIT_MEMORY = 204, KEEL_EXIT_LIMITS = 205, KEEL_EXIT_SIGNAL_MASK = 207,
	KEEL_EXIT_STDIN = 208, KEEL_EXIT_STDOUT = 209, KEEL_EXIT_CHROOT = 210, KEEL_EXIT_GROUP = 216,
	KEEL_EXIT_USER = 217, KEEL_EXIT_CGROUP = 219, KEEL_EXIT_SETSID = 220, KEEL_EXIT_STDERR = 222,
	KEEL_EXIT_SECUREBITS = 213, KEEL_EXIT_CAPABILITIES = 218, KEEL_EXIT_NETWORK = 225,
	KEEL_EXIT_NAMESPACE = 226, KEEL_EXIT_NO_NEW_PRIVILEGES = 227, KEEL_EXIT_SECCOMP = 228,
};

#define KEEL_SPAWN_MAX_FDS 64

struct keel_spawn {
	const char *path;        /* what to execute (absolute, or as given when not found) */
	char **argv;
	char **envp;
	int stdio[3];            /* fds for 0, 1, 2; -1: /dev/null */
	const int *pass_fds;     /* become 3, 4, ... (LISTEN_FDS) */
	int n_pass_fds;
	const int *cg_fds;       /* cgroup.procs files to write "0" to */
	int n_cg_fds;
	int cgroup_fd;           /* a cgroup2 directory to be born in (clone3 CLONE_INTO_CGROUP);
				    -1: none */
	bool set_creds;
	uid_t uid;
	gid_t gid;
	const gid_t *groups;
	int n_groups;
	const char *workdir;     /* NULL: "/" */
	bool workdir_missing_ok;
	const char *rootdir;     /* NULL: none */
	const char *private_tmp; /* a directory holding tmp/ and var-tmp/, bound on /tmp and /var/tmp */
	const struct keel_sandbox_plan *sandbox; /* NULL: none (sandbox.h) */
	mode_t umask;
	bool nice_set;
	int nice;
	struct { int resource; struct rlimit lim; } rlimits[RLIM_NLIMITS];
	int n_rlimits;
	char *pid_slots[2];      /* "LISTEN_PID=" / "WATCHDOG_PID=" entries of envp, each with room
				    for 20 digits: the child writes its own PID into them */
};

struct keel_spawn_error {
	int step; /* KEEL_EXIT_*; 0 when the exec happened */
	int err;  /* errno */
};

/* Start the process; keel-init goes on at once. *ret_err_fd is the non-blocking read end of the
 * report pipe: a struct keel_spawn_error if a setup step failed, EOF once the program runs.
 * 0, or -errno when no child could be made. */
int keel_spawn_start(const struct keel_spawn *sp, pid_t *ret_pid, int *ret_err_fd) KEEL_WUR;

/* "EXEC", "CHDIR", ... for a step. */
const char *keel_spawn_step_name(int step);

/* The path to execute for a command of a unit file: absolute paths as they are, bare names
 * looked up in systemd's fixed list (/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:
 * /sbin:/bin), the first executable one; the name itself when none is. New string or NULL. */
char *keel_exec_resolve_path(const char *name);

/* Read an EnvironmentFile= (systemd's syntax: KEY=VALUE lines, # and ; comments, quotes,
 * backslash continuations, "export " accepted) and set its assignments into *env (a
 * keel_strv, later ones replacing). 0, -errno (ENOENT when missing), -ENOMEM. */
int keel_env_file_load(const char *path, char ***env) KEEL_WUR;
/* Set NAME=VALUE in *env, replacing an earlier NAME. 0 or -ENOMEM. */
int keel_env_set(char ***env, const char *assignment) KEEL_WUR;
