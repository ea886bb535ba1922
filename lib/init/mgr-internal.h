/* What the engine's files share (manager.c, job.c, service.c, socket.c, timer.c, condition.c,
 * notify.c, control.c). Not for use outside lib/init. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "base/buf.h"
#include "init/cgroup.h"
#include "init/ev.h"
#include "init/exec.h"
#include "init/hmap.h"
#include "init/load.h"
#include "init/logsink.h"
#include "init/manager.h"
#include "init/unit.h"

enum keel_active {
	KEEL_ACTIVE, KEEL_RELOADING, KEEL_INACTIVE, KEEL_FAILED, KEEL_ACTIVATING, KEEL_DEACTIVATING,
	KEEL_ACTIVE_MAX,
};
const char *keel_active_to_string(int a);
static inline bool keel_active_or_reloading(int a) { return a == KEEL_ACTIVE || a == KEEL_RELOADING; }
static inline bool keel_inactive_or_failed(int a) { return a == KEEL_INACTIVE || a == KEEL_FAILED; }
static inline bool keel_active_or_activating(int a)
{
	return a == KEEL_ACTIVE || a == KEEL_RELOADING || a == KEEL_ACTIVATING;
}

/* The relations between loaded units, both directions. */
enum edge_kind {
	E_REQUIRES, E_REQUISITE, E_WANTS, E_BINDS_TO, E_PART_OF, E_CONFLICTS, E_BEFORE, E_AFTER,
	E_ON_FAILURE, E_TRIGGERS, E_PROPAGATES_STOP_TO,
	E_REQUIRED_BY, E_REQUISITE_OF, E_WANTED_BY, E_BOUND_BY, E_CONSISTS_OF, E_CONFLICTED_BY,
	E_ON_FAILURE_OF, E_TRIGGERED_BY, E_STOP_PROPAGATED_FROM,
	E_UPHOLDS, E_UPHELD_BY,
	E_KIND_MAX,
};
const char *keel_edge_kind_to_string(int k);

struct mu;
struct edge {
	struct mu *other;
	uint8_t kind;
};

/* Service results (systemd's ServiceResult), also used as a unit's Result=. */
enum svc_result {
	R_SUCCESS, R_RESOURCES, R_PROTOCOL, R_TIMEOUT, R_EXIT_CODE, R_SIGNAL, R_CORE_DUMP,
	R_WATCHDOG, R_START_LIMIT_HIT, R_EXEC_CONDITION, R_MAX,
};
const char *keel_svc_result_to_string(int r);

enum svc_state {
	S_DEAD, S_CONDITION, S_START_PRE, S_START, S_START_POST, S_RUNNING, S_EXITED, S_RELOAD,
	S_STOP, S_STOP_WATCHDOG, S_STOP_SIGTERM, S_STOP_SIGKILL, S_STOP_POST, S_FINAL_SIGTERM,
	S_FINAL_SIGKILL, S_FAILED, S_AUTO_RESTART, S_MAX,
};

struct logpipe;

struct svc_rt {
	pid_t main_pid, control_pid;
	uint8_t control_slot;     /* enum keel_exec_slot of the running control command */
	uint16_t control_idx;     /* its index in that list */
	uint16_t main_idx;        /* ExecStart= index (oneshot runs them in turn) */
	uint8_t result, reload_result;
	bool main_pid_alien;      /* from PIDFile=/MAINPID=: not our child, watched by kill(0) */
	bool forbid_restart;      /* a stop job ran: no Restart= */
	bool notify_ready;
	bool wd_override;
	struct keel_ev_timer timer;    /* state timeouts, RestartSec=, PIDFile= polling */
	struct keel_ev_timer wd_timer; /* WatchdogSec= */
	uint64_t wd_usec;
	uint64_t timer_started;
	int main_code, main_status;     /* CLD_EXITED/KILLED/DUMPED and the status, of the last main */
	uint64_t main_start_real, main_exit_real;
	pid_t main_exit_pid;
	uint32_t n_restarts;
	char *status_text;        /* STATUS= */
	char *private_tmp;        /* the PrivateTmp= directory while the unit runs */
	int netns_fd;             /* PrivateNetwork=: the unit's namespace, when netns_made */
	bool netns_made;
	int accept_fd;            /* Accept=yes: the connection (-1) */
	char *trigger_unit;       /* the timer that started this activation: $TRIGGER_UNIT & co. */
	uint64_t trigger_real, trigger_mono; /* when it elapsed (µs) */
};

struct sock_rt {
	int *fds;
	struct keel_ev_io *ios;
	uint16_t n_fds;
	uint8_t result;
	uint32_t n_accepted, n_connections;
	bool listening_paused;
};

struct tmr_rt {
	struct keel_ev_timer timer;
	uint64_t next_mono;       /* when armed; KEEL_USEC_INFINITY when not */
	uint64_t next_real;       /* OnCalendar= next, realtime, for list-timers */
	uint64_t activated_mono;  /* OnActiveSec= base */
	uint64_t last_trigger_mono, last_trigger_real;
	uint8_t result;
};

enum job_type { JOB_START, JOB_VERIFY_ACTIVE, JOB_STOP, JOB_RELOAD, JOB_RESTART, JOB_TRY_RESTART, JOB_TYPE_MAX };
enum job_result {
	JR_DONE, JR_CANCELED, JR_TIMEOUT, JR_FAILED, JR_DEPENDENCY, JR_SKIPPED, JR_INVALID, JR_ASSERT,
	JR_UNSUPPORTED, JR_MAX,
};
const char *keel_job_type_to_string(int t);
const char *keel_job_result_to_string(int r);

struct job_waiter;

struct job {
	uint32_t id;
	uint8_t type;   /* enum job_type */
	bool running;
	bool in_runq;
	bool manual;    /* asked for by a client (RefuseManualStart= applies) */
	bool timer_running;   /* the timer is armed for JobRunningTimeoutSec= */
	struct mu *unit;
	struct job *runq_next;
	struct job_waiter *waiters;
	struct keel_ev_timer timer; /* JobTimeoutSec= / JobRunningTimeoutSec= */
};

/* Called when a job ends (control clients waiting for it). */
struct job_waiter {
	struct job_waiter *next;
	void (*fn)(void *ud, struct mu *u, struct job *j, int result);
	void *ud;
};

struct mu {
	struct keel_mgr *m;
	struct keel_unit *u;       /* the model; replaced on daemon-reload */
	char *id;
	struct edge *edges;
	uint32_t n_edges, cap_edges;
	struct job *job;
	uint8_t type;              /* enum keel_unit_type */
	uint8_t active;            /* enum keel_active */
	uint8_t sub;               /* the type's sub-state */
	bool transient;            /* loaded from given text, or an Accept=yes instance */
	bool gc_queued;
	bool want_empty_check;     /* waiting for its cgroup to empty */
	bool cond_result, assert_result;
	bool cgroup_made;
	unsigned cg_mask;          /* hierarchies the unit's cgroup exists in */
	bool gc_when_dead;         /* an Accept=yes instance: freed once inactive */
	int tr_idx;                /* index in the transaction being built, -1 */
	uint32_t tr_mark;
	uint64_t active_enter_real, active_exit_real, inactive_enter_real, inactive_exit_real;
	uint64_t active_enter_mono, inactive_enter_mono;
	uint64_t state_change_real;
	uint64_t cond_real;
	uint64_t sl_begin;         /* start rate limit window (monotonic) */
	uint32_t sl_count;
	uint64_t auto_rl_begin;    /* StopWhenUnneeded=/Upholds= rate limit (upkeep.c) */
	uint32_t auto_rl_count;
	int inotify_wd;
	struct mu *gc_next;
	struct mu *accept_socket;  /* an Accept=yes instance: the socket counting it */
	union {
		struct svc_rt svc;
		struct sock_rt sock;
		struct tmr_rt tmr;
	} rt;
};

struct control_server;

struct keel_mgr {
	struct keel_mgr_config cfg;
	char *runtime_dir, *config_dir, *default_target;
	char *state_dir;           /* timers/stamp-NAME.timer for Persistent= */
	char *journal_dir;         /* the journal it opened (NULL when given another sink) */
	struct keel_ev *ev;
	struct keel_loader *loader;
	struct keel_cg *cg;
	struct keel_logsink sink;
	struct keel_hmap units;    /* every name (aliases too) -> struct mu */
	struct keel_hmap pids;     /* main and control PIDs -> struct mu */
	struct keel_hmap wds;      /* inotify watch descriptor -> struct mu */
	struct job *runq;
	struct mu *gcq;
	uint32_t next_job_id;
	uint32_t n_jobs;
	uint32_t tr_mark;
	uint64_t startup_mono;
	int inotify_fd;
	struct keel_ev_io inotify_io;
	int notify_fd;
	struct keel_ev_io notify_io;
	char *notify_path;
	struct control_server *ctl;
	bool shutting_down;
	bool cg_check_needed;
	bool upkeep_needed;        /* a state changed: check StopWhenUnneeded= and Upholds= */
	bool any_upkeep;           /* some unit has StopWhenUnneeded= or Upholds= (else no scan) */
	struct keel_buf scratch;
	struct keel_buf *diag_capture; /* loader messages also go here (control API "load") */
};

/* manager.c */
struct mu *mgr_get(struct keel_mgr *m, const char *name);
/* Find or load a unit by name (loading its dependencies' names as stubs). NULL on ENOMEM or an
 * invalid name. */
struct mu *mgr_load(struct keel_mgr *m, const char *name);
/* Load from given text (control API). Replaces the model of an existing unit. */
int mgr_load_text(struct keel_mgr *m, const char *name, const char *text, struct mu **ret,
		  struct keel_buf *diag);
void mgr_rebuild_edges(struct keel_mgr *m);
/* State change: notifies jobs, dependencies, triggers, subscribers. */
void unit_set_state(struct mu *mu, int active, int sub);
void unit_log(struct mu *mu, int priority, const char *fmt, ...) KEEL_PRINTF(3, 4);
const char *unit_sub_state(const struct mu *mu);
const char *unit_description(const struct mu *mu);
bool unit_is_loaded(const struct mu *mu);
void unit_add_gc(struct mu *mu);
void mgr_watch_pid(struct keel_mgr *m, pid_t pid, struct mu *mu);
void mgr_unwatch_pid(struct keel_mgr *m, pid_t pid);
/* Make and watch the unit's cgroup (idempotent). */
int unit_cgroup_realize(struct mu *mu);
void unit_cgroup_release(struct mu *mu);
bool unit_cgroup_empty(struct mu *mu);
/* Start/stop/reload with the type's vtable, after the common checks (load state,
 * conditions, start limit). 0: under way; -EALREADY: already there; other -errno: failed. */
int unit_start(struct mu *mu);
int unit_stop(struct mu *mu);
int unit_reload(struct mu *mu);
int unit_kill(struct mu *mu, const char *who, int sig);
void unit_reset_failed(struct mu *mu);
bool unit_can_reload(const struct mu *mu);
/* Counted start attempt; false when StartLimitBurst= within StartLimitIntervalSec= is exceeded. */
bool unit_start_limit_ok(struct mu *mu);
/* Events for control subscribers. */
void mgr_emit_unit_event(struct keel_mgr *m, struct mu *mu);
void mgr_emit_job_event(struct keel_mgr *m, struct mu *mu, struct job *j, int result);

/* job.c */
/* Build and install a transaction for (type, anchor). mode "replace" or "fail". On error the
 * message is put in err. Returns the anchor job (may be NULL when it completed at once). */
int job_enqueue(struct keel_mgr *m, struct mu *anchor, int type, bool replace, bool manual,
		struct job **ret, struct keel_err *err);
/* systemctl isolate: start anchor (AllowIsolate=) and stop everything it does not pull in. */
int job_enqueue_isolate(struct keel_mgr *m, struct mu *anchor, bool manual, struct job **ret, struct keel_err *err);
void job_finish(struct job *j, int result);
void job_add_to_runq(struct job *j);
/* Put the jobs of units ordered around mu in the run queue. */
void job_queue_neighbours(struct mu *mu);
bool job_dispatch(struct keel_mgr *m);
/* The unit changed state: complete or fail its job (systemd's unit_notify job part). */
void job_unit_notify(struct mu *mu, int old, int new_state, bool unexpected);
void job_free_all(struct keel_mgr *m);

/* upkeep.c: StopWhenUnneeded= and Upholds= (systemd's stop-when-unneeded and
 * start-when-upheld queues), checked over every unit after state changes. */
void mgr_upkeep(struct keel_mgr *m);

/* condition.c: 1 pass, 0 fail; kind name and parameter of the failed one in *failed. */
int unit_test_conditions(struct mu *mu, bool asserts, const struct keel_condition **failed);

/* The type vtables. */
struct unit_vtable {
	int (*start)(struct mu *mu);
	int (*stop)(struct mu *mu);
	int (*reload)(struct mu *mu);
	void (*sigchld)(struct mu *mu, pid_t pid, int code, int status);
	void (*cgroup_empty)(struct mu *mu);
	void (*reset_failed)(struct mu *mu);
	void (*trigger_notify)(struct mu *mu, struct mu *other); /* a unit it triggers changed */
	const char *(*sub_name)(int sub);
	void (*done)(struct mu *mu);  /* free runtime state */
	void (*init)(struct mu *mu);
	bool (*may_gc)(struct mu *mu);
};
extern const struct unit_vtable svc_vtable, sock_vtable, tmr_vtable, target_vtable;
const struct unit_vtable *unit_vtable_of(const struct mu *mu);

/* service.c */
void svc_notify_message(struct mu *mu, pid_t pid, char *msg);
/* For Accept=yes instances: take the connection. */
void svc_set_accept_fd(struct mu *mu, int fd);
int svc_spawn(struct mu *mu, const struct keel_exec_cmd *cmd, int slot, bool is_main, pid_t *ret);
/* svc_sandbox.c: before a spawn, the unit's RuntimeDirectory= & co. (made, owned by the
 * spawn's user, $RUNTIME_DIRECTORY & co. added to *env), its network namespace and the
 * sandbox plan for sp (sp->sandbox = plan, free it after the spawn). 0 or -errno (logged). */
int svc_sandbox_prepare(struct mu *mu, struct keel_spawn *sp, bool privileged, char ***env,
			struct keel_sandbox_plan *plan);
/* When the unit's processes are gone: RuntimeDirectory= removed (unless preserved, or
 * restarting with RuntimeDirectoryPreserve=restart) and the network namespace released. */
void svc_sandbox_stop(struct mu *mu, bool restarting);
/* A spawned process of the service got through execve() (Type=exec waits for this). */
void svc_exec_succeeded(struct mu *mu, pid_t pid);
/* A timer elapsed for this service: its commands get $TRIGGER_UNIT, $TRIGGER_TIMER_REALTIME_USEC
 * and $TRIGGER_TIMER_MONOTONIC_USEC until the activation ends (the newest trigger wins, as
 * systemd coalesces them). */
void svc_set_trigger(struct mu *mu, const char *timer, uint64_t real, uint64_t mono);

/* socket.c: the fds to pass to a service (LISTEN_FDS) and their names. */
int sock_collect_fds(struct mu *svc, int *fds, int max, struct keel_buf *names);
/* timer.c / socket.c: the triggered unit changed. */

/* notify.c */
int notify_open(struct keel_mgr *m);
void notify_close(struct keel_mgr *m);

/* control.c */
int control_open(struct keel_mgr *m, const char *path);
void control_close(struct keel_mgr *m);
void control_emit(struct keel_mgr *m, const char *line, size_t len);

/* logpipes (manager.c): the read end of a pipe for a spawned process's output. */
struct logpipe *logpipe_open(struct mu *mu, const char *ident, int *ret_write_fd);
void logpipe_set_pid(struct logpipe *lp, pid_t pid);
/* Watch a spawn's report pipe (keel_spawn_start) and log a failed setup step for the unit. */
void spawn_watch(struct mu *mu, int fd, const char *path);
/* The same, telling svc_exec_succeeded() about pid when its execve() succeeded. */
void spawn_watch_pid(struct mu *mu, int fd, const char *path, pid_t pid);
