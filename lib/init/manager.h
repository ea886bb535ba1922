/* keel-init's engine: units loaded from the search path, their runtime state, jobs over the
 * dependency graph (systemd's transactions), services, sockets, timers and targets, cgroups,
 * the notify socket and the control socket. One struct keel_mgr per keel-init, driven by a
 * keel_ev loop; docs/init.md describes the behaviour. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "base/errors.h"
#include "base/macro.h"
#include "init/ev.h"
#include "init/load.h"
#include "init/logsink.h"

struct keel_mgr;

struct keel_mgr_config {
	const char *const *unit_path;   /* searched before the preset (NULL-terminated), may be NULL */
	enum keel_paths_preset preset;
	bool no_preset;                  /* search only unit_path */
	const char *runtime_dir;         /* control and notify sockets, private /tmp dirs: /run/keel */
	const char *journal_dir;         /* unit output: KEEL_JOURNAL_DEFAULT_DIR (/var/log/keel/journal) */
	uint64_t journal_max_use;        /* the journal's limits (struct keel_journal_config); 0: defaults */
	uint64_t journal_max_file_size;
	unsigned journal_max_files;
	const char *state_dir;           /* Persistent= timer stamps (timers/stamp-NAME): /var/lib/keel */
	const char *cgroup_root;         /* "keel.slice" */
	const char *default_target;      /* NULL: default.target, else multi-user.target */
	const char *config_dir;          /* where enable/mask write links: first of unit_path or
					    /etc/keel/system */
	bool pid1;
	bool cgroup_v1_only;             /* ignore cgroup2 (exercise the v1 path on a hybrid host) */
};

/* Load the default target's graph later with keel_mgr_boot(). The logsink is taken over (freed
 * with the manager); NULL or a zeroed sink means the journal in journal_dir, opened here (its
 * writer lock makes a second keel-init on the same directory fail). The sink is flushed before
 * the loop sleeps. 0 or -errno with a message in err. */
int keel_mgr_new(const struct keel_mgr_config *cfg, struct keel_ev *ev, struct keel_logsink *sink,
		 struct keel_mgr **ret, struct keel_err *err) KEEL_WUR;
void keel_mgr_free(struct keel_mgr *m);
/* Enqueue the start of the default target. 0 or -errno (logged). */
int keel_mgr_boot(struct keel_mgr *m);
/* Handle SIGCHLD: reap every child that exited (orphans included). */
void keel_mgr_sigchld(struct keel_mgr *m);
/* Begin the ordered shutdown: stop every unit, in reverse start order. */
void keel_mgr_shutdown(struct keel_mgr *m);
/* True once a shutdown was asked for and no unit is left running. */
bool keel_mgr_done(struct keel_mgr *m);
/* daemon-reload. */
int keel_mgr_reload(struct keel_mgr *m);
