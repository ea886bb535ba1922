/* A unit's sandbox for the process it spawns (systemd.exec(5) "Sandboxing", "Capabilities",
 * "Security", "System Call Filtering"): the parent turns the unit's struct keel_exec_sandbox
 * into a plan - a sorted list of mounts for a private mount namespace, the capability sets, a
 * seccomp BPF program - and the child between fork and exec carries it out with system calls
 * only (keel_sandbox_child_*). Nothing is mounted outside the child's own mount namespace, which
 * is a slave of the host's: host mounts propagate in, none propagate out. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <linux/filter.h>

#include "init/unit.h"

enum keel_mnt_kind {
	/* ordered by precedence when two entries name the same path (the higher wins) */
	KEEL_MNT_READ_WRITE_IMPLICIT, KEEL_MNT_READ_WRITE, KEEL_MNT_READ_ONLY, KEEL_MNT_BIND,
	KEEL_MNT_BIND_RO, KEEL_MNT_TMPFS, KEEL_MNT_INACCESSIBLE, KEEL_MNT_PRIVATE_DEV,
};

struct keel_sandbox_mount {
	char *path;              /* where */
	char *source;            /* BIND*: what; TMPFS: mount options (may be NULL) */
	uint8_t kind;            /* enum keel_mnt_kind */
	bool ignore_missing;     /* "-": skip when path (or source) does not exist */
	bool recursive;          /* BIND*: rbind (not norbind) */
	bool read_only;          /* TMPFS with "ro" */
};

struct keel_sandbox_plan {
	struct keel_sandbox_mount *mounts; /* sorted by path, parents first */
	int n_mounts;
	bool mount_ns;           /* a private mount namespace is needed */
	const char *inaccessible_dir, *inaccessible_reg; /* mode-0 nodes to bind over paths */
	int netns_fd;            /* PrivateNetwork=: the unit's network namespace; -1: none */
	bool no_new_privs;
	bool caps;               /* apply cap_bounding / cap_ambient */
	uint64_t cap_bounding, cap_ambient;
	bool secure_bits_set;
	uint32_t secure_bits;
	struct sock_fprog seccomp; /* .len 0: no filter */
};

typedef void (*keel_sandbox_warn_fn)(void *userdata, const char *msg);

/* Build the plan for sb (NULL: nothing) for a process running as uid (with_user: User= is in
 * effect) below root_directory (NULL: none). inaccessible_dir is where keel-init keeps its
 * mode-0 nodes (created here when missing). Settings that cannot be applied are reported
 * through warn ("..., ignoring"). 0 or -errno; release the plan with keel_sandbox_plan_free. */
int keel_sandbox_plan_make(const struct keel_exec_sandbox *sb, bool private_tmp, bool with_user,
			   uid_t uid, const char *root_directory, const char *inaccessible_dir,
			   keel_sandbox_warn_fn warn, void *userdata, struct keel_sandbox_plan *ret);
void keel_sandbox_plan_free(struct keel_sandbox_plan *p);
/* Free the cache of compiled seccomp programs (at exit, for leak checkers). */
void keel_sandbox_cache_clear(void);

/* A new network namespace with only "lo", up; keel-init stays in its own. fd or -errno. */
int keel_sandbox_netns_new(void);

/* Child side, in this order around keel-init's other steps. Each returns 0 or an errno. */
/* After unshare(CLONE_NEWNS) and PrivateTmp='s binds: every mount of the plan. */
int keel_sandbox_child_mounts(const struct keel_sandbox_plan *p);
/* Before the user change: the bounding set, secure bits, keep-caps for the ambient set. */
int keel_sandbox_child_caps_before(const struct keel_sandbox_plan *p, bool changing_user);
/* After the user change: the ambient set; then no_new_privs. */
int keel_sandbox_child_caps_after(const struct keel_sandbox_plan *p, bool changing_user);
/* Last before execve: the seccomp filter. */
int keel_sandbox_child_seccomp(const struct keel_sandbox_plan *p);
