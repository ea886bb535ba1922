/* The typed unit model: what keel-init knows about a unit after loading its files. Parsing fills
 * it (unit_parse.c), the loader sets names, paths and load state (load.c), and the engine reads
 * it and keeps its runtime state behind `engine`. Every string is a pool string (pool.h), shared
 * between units; time spans are microseconds with KEEL_USEC_INFINITY for "infinity".
 *
 * Defaults are systemd's (systemd-system.conf(5) Default*= values) and are set by
 * keel_unit_new(); "unset" is marked where the engine must choose (TasksMax=, MemoryMax=).
 *
 * Implicit and default dependencies (systemd.unit(5) "Implicit Dependencies", "Default
 * Dependencies") are added by keel_unit_add_implicit_deps() after loading, tagged by origin so the
 * engine can tell them from the unit file's own:
 * - every type with DefaultDependencies=yes: Conflicts= and Before= shutdown.target (a target
 *   that is shutdown.target itself excepted);
 * - service: Requires= and After= sysinit.target, After= basic.target;
 * - socket: Requires= and After= sysinit.target, Before= sockets.target; Before= and Triggers=
 *   its service (Accept=no) whether or not DefaultDependencies= is set;
 * - timer: Requires= and After= sysinit.target, Before= timers.target, After= time-set.target and
 *   time-sync.target when it has OnCalendar=; Before= and Triggers= its unit always;
 * - target: After= every unit it Wants=/Requires=/Requisite=/BindsTo= that has
 *   DefaultDependencies=yes and is not itself ordered Before= the target. This one needs the other
 *   unit loaded, so the engine applies it with keel_target_orders_after().
 * keel leaves out what only concerns systemd's own machinery (slices, journald's socket, mount
 * units for RequiresMountsFor=). */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "base/macro.h"
#include "init/calendar.h"
#include "init/diag.h"
#include "init/name.h"
#include "init/pool.h"
#include "init/values.h"

/* systemd's load states. */
enum keel_load_state {
	KEEL_LOAD_STUB,        /* created, not loaded yet */
	KEEL_LOAD_LOADED,
	KEEL_LOAD_NOT_FOUND,
	KEEL_LOAD_BAD_SETTING, /* a setting without a safe default was wrong ("bad-setting") */
	KEEL_LOAD_ERROR,       /* the file could not be read or parsed (load_error says why) */
	KEEL_LOAD_MASKED,
	KEEL_LOAD_STATE_MAX,
};
const char *keel_load_state_to_string(enum keel_load_state s);

enum keel_dep_kind {
	KEEL_DEP_REQUIRES,
	KEEL_DEP_REQUISITE,
	KEEL_DEP_WANTS,
	KEEL_DEP_BINDS_TO,
	KEEL_DEP_PART_OF,
	KEEL_DEP_UPHOLDS,
	KEEL_DEP_CONFLICTS,
	KEEL_DEP_BEFORE,
	KEEL_DEP_AFTER,
	KEEL_DEP_ON_FAILURE,
	KEEL_DEP_ON_SUCCESS,
	KEEL_DEP_PROPAGATES_RELOAD_TO,
	KEEL_DEP_RELOAD_PROPAGATED_FROM,
	KEEL_DEP_PROPAGATES_STOP_TO,
	KEEL_DEP_STOP_PROPAGATED_FROM,
	KEEL_DEP_JOINS_NAMESPACE_OF,
	KEEL_DEP_TRIGGERS,     /* implicit only: socket -> service, timer -> unit */
	KEEL_DEP_KIND_MAX,
};
const char *keel_dep_kind_to_string(enum keel_dep_kind k); /* "Requires", ... */

enum keel_dep_origin {
	KEEL_DEP_FROM_FILE,     /* the unit file or a drop-in */
	KEEL_DEP_FROM_LINK,     /* a .wants/ or .requires/ directory (what enable creates) */
	KEEL_DEP_FROM_IMPLICIT, /* socket/timer triggers */
	KEEL_DEP_FROM_DEFAULT,  /* DefaultDependencies=yes */
};

struct keel_dep {
	const char *name; /* pool string, a valid unit name */
	uint8_t kind;     /* enum keel_dep_kind */
	uint8_t origin;   /* enum keel_dep_origin */
};

/* SuccessAction=/FailureAction= (systemd.unit(5)): what the manager does when the unit ends. */
enum keel_emergency_action {
	KEEL_ACTION_NONE, KEEL_ACTION_REBOOT, KEEL_ACTION_REBOOT_FORCE, KEEL_ACTION_REBOOT_IMMEDIATE,
	KEEL_ACTION_POWEROFF, KEEL_ACTION_POWEROFF_FORCE, KEEL_ACTION_POWEROFF_IMMEDIATE,
	KEEL_ACTION_EXIT, KEEL_ACTION_EXIT_FORCE, KEEL_ACTION_KEXEC, KEEL_ACTION_KEXEC_FORCE,
	KEEL_ACTION_HALT, KEEL_ACTION_HALT_FORCE, KEEL_ACTION_HALT_IMMEDIATE, KEEL_ACTION_MAX,
};
const char *keel_emergency_action_to_string(enum keel_emergency_action a);

/* OnFailureJobMode= (systemctl(1) --job-mode). */
enum keel_job_mode {
	KEEL_JOB_FAIL, KEEL_JOB_REPLACE, KEEL_JOB_REPLACE_IRREVERSIBLY, KEEL_JOB_ISOLATE,
	KEEL_JOB_FLUSH, KEEL_JOB_IGNORE_DEPENDENCIES, KEEL_JOB_IGNORE_REQUIREMENTS, KEEL_JOB_MODE_MAX,
};
const char *keel_job_mode_to_string(enum keel_job_mode m);

/* Condition*= and Assert*= (systemd.unit(5) "Conditions and Asserts"). */
enum keel_condition_kind {
	KEEL_COND_ARCHITECTURE, KEEL_COND_FIRMWARE, KEEL_COND_VIRTUALIZATION, KEEL_COND_HOST,
	KEEL_COND_KERNEL_COMMAND_LINE, KEEL_COND_KERNEL_VERSION, KEEL_COND_CREDENTIAL,
	KEEL_COND_SECURITY, KEEL_COND_CAPABILITY, KEEL_COND_AC_POWER, KEEL_COND_NEEDS_UPDATE,
	KEEL_COND_FIRST_BOOT, KEEL_COND_PATH_EXISTS, KEEL_COND_PATH_EXISTS_GLOB,
	KEEL_COND_PATH_IS_DIRECTORY, KEEL_COND_PATH_IS_SYMBOLIC_LINK, KEEL_COND_PATH_IS_MOUNT_POINT,
	KEEL_COND_PATH_IS_READ_WRITE, KEEL_COND_PATH_IS_ENCRYPTED, KEEL_COND_DIRECTORY_NOT_EMPTY,
	KEEL_COND_FILE_NOT_EMPTY, KEEL_COND_FILE_IS_EXECUTABLE, KEEL_COND_USER, KEEL_COND_GROUP,
	KEEL_COND_CONTROL_GROUP_CONTROLLER, KEEL_COND_CPUS, KEEL_COND_MEMORY, KEEL_COND_ENVIRONMENT,
	KEEL_COND_CPU_FEATURE, KEEL_COND_OS_RELEASE, KEEL_COND_MEMORY_PRESSURE,
	KEEL_COND_CPU_PRESSURE, KEEL_COND_IO_PRESSURE,
	KEEL_COND_KIND_MAX,
};
/* "PathExists" for the kind (the key is "Condition" or "Assert" + this). */
const char *keel_condition_kind_to_string(enum keel_condition_kind k);
/* Whether the argument is a path (checked absolute and normalised at parse time). */
bool keel_condition_kind_takes_path(enum keel_condition_kind k);

enum {
	KEEL_COND_NEGATE = 1 << 0,  /* "!" */
	KEEL_COND_TRIGGER = 1 << 1, /* "|": any one trigger condition must hold */
	KEEL_COND_ASSERT = 1 << 2,  /* Assert*= rather than Condition*= */
};

struct keel_condition {
	const char *param; /* specifiers resolved */
	uint8_t kind;      /* enum keel_condition_kind */
	uint8_t flags;
};

/* [Install]; only allocated when the unit has the section. */
struct keel_install {
	const char **wanted_by, **required_by, **alias, **also;
	const char *default_instance;
};

/* Settings of an [X-...] section, or of an X- key in a known section, verbatim (keel-fleet
 * reads [X-Fleet]). In file order, later drop-ins after the fragment. */
struct keel_xentry {
	const char *section, *key, *value;
};

/* Service */

enum keel_service_type {
	KEEL_SERVICE_SIMPLE, KEEL_SERVICE_EXEC, KEEL_SERVICE_FORKING, KEEL_SERVICE_ONESHOT,
	KEEL_SERVICE_DBUS, KEEL_SERVICE_NOTIFY, KEEL_SERVICE_IDLE, KEEL_SERVICE_TYPE_MAX,
};
enum keel_restart {
	KEEL_RESTART_NO, KEEL_RESTART_ON_SUCCESS, KEEL_RESTART_ON_FAILURE,
	KEEL_RESTART_ON_ABNORMAL, KEEL_RESTART_ON_WATCHDOG, KEEL_RESTART_ON_ABORT,
	KEEL_RESTART_ALWAYS, KEEL_RESTART_MAX,
};
enum keel_kill_mode {
	KEEL_KILL_CONTROL_GROUP, KEEL_KILL_PROCESS, KEEL_KILL_MIXED, KEEL_KILL_NONE,
	KEEL_KILL_MODE_MAX,
};
enum keel_notify_access {
	KEEL_NOTIFY_NONE, KEEL_NOTIFY_MAIN, KEEL_NOTIFY_EXEC, KEEL_NOTIFY_ALL, KEEL_NOTIFY_MAX,
};
enum keel_exec_output {
	KEEL_OUTPUT_INHERIT, KEEL_OUTPUT_NULL, KEEL_OUTPUT_TTY, KEEL_OUTPUT_KMSG,
	KEEL_OUTPUT_KMSG_AND_CONSOLE, KEEL_OUTPUT_JOURNAL, KEEL_OUTPUT_JOURNAL_AND_CONSOLE,
	KEEL_OUTPUT_SOCKET, KEEL_OUTPUT_NAMED_FD, KEEL_OUTPUT_FILE, KEEL_OUTPUT_FILE_APPEND,
	KEEL_OUTPUT_FILE_TRUNCATE, KEEL_OUTPUT_MAX,
};
enum keel_exec_input {
	KEEL_INPUT_NULL, KEEL_INPUT_TTY, KEEL_INPUT_TTY_FORCE, KEEL_INPUT_TTY_FAIL,
	KEEL_INPUT_SOCKET, KEEL_INPUT_NAMED_FD, KEEL_INPUT_DATA, KEEL_INPUT_FILE, KEEL_INPUT_MAX,
};
const char *keel_service_type_to_string(enum keel_service_type t);
const char *keel_restart_to_string(enum keel_restart r);
const char *keel_kill_mode_to_string(enum keel_kill_mode m);
const char *keel_notify_access_to_string(enum keel_notify_access a);
const char *keel_exec_output_to_string(enum keel_exec_output o);
const char *keel_exec_input_to_string(enum keel_exec_input i);

/* Command-line prefixes (systemd.service(5) table 1). */
enum {
	KEEL_EXEC_IGNORE_FAILURE = 1 << 0,  /* "-" */
	KEEL_EXEC_NO_ENV_EXPAND = 1 << 1,   /* ":" */
	KEEL_EXEC_FULLY_PRIVILEGED = 1 << 2, /* "+" */
	KEEL_EXEC_NO_SETUID = 1 << 3,       /* "!" */
	KEEL_EXEC_AMBIENT_MAGIC = 1 << 4,   /* "!!" */
};

/* One command line, in one allocation with its strings. `path` is what to execute (absolute, or
 * a bare name looked up in PATH at exec time); argv[0] is the path unless "@" gave another.
 * Specifiers are resolved; $VAR expansion happens at exec time (keel_exec_expand_argv). */
struct keel_exec_cmd {
	struct keel_exec_cmd *next;
	const char *path;
	char **argv;
	uint32_t argc;
	uint8_t flags;
};

enum keel_exec_slot {
	KEEL_EXEC_START_PRE, KEEL_EXEC_START, KEEL_EXEC_START_POST, KEEL_EXEC_RELOAD,
	KEEL_EXEC_STOP, KEEL_EXEC_STOP_POST,
	KEEL_EXEC_CONDITION, /* runs before ExecStartPre= (systemd 243) */
	KEEL_EXEC_SLOT_MAX,
};
const char *keel_exec_slot_to_string(enum keel_exec_slot s); /* "ExecStartPre" ... */

struct keel_rlimit {
	uint8_t resource; /* RLIMIT_* */
	uint64_t soft, hard; /* KEEL_RLIMIT_INFINITY for infinity */
};

/* Exit codes and signals that count as success (SuccessExitStatus=) or that force or prevent a
 * restart. */
struct keel_exit_status_set {
	uint8_t status[32]; /* bit per exit code 0-255 */
	uint8_t signal[8];  /* bit per signal 1-63 */
};
bool keel_exit_status_set_has_status(const struct keel_exit_status_set *s, int code);
bool keel_exit_status_set_has_signal(const struct keel_exit_status_set *s, int sig);

struct keel_exec_ctx;
/* The sandboxing and directory settings of systemd.exec(5), allocated on the first one set
 * (most units have none). Paths keep systemd's "-" (missing is fine) and "+" (below
 * RootDirectory=) prefixes. */
enum keel_protect_system {
	KEEL_PROTECT_SYSTEM_NO, KEEL_PROTECT_SYSTEM_YES, KEEL_PROTECT_SYSTEM_FULL,
	KEEL_PROTECT_SYSTEM_STRICT,
};
enum keel_protect_home {
	KEEL_PROTECT_HOME_NO, KEEL_PROTECT_HOME_YES, KEEL_PROTECT_HOME_READ_ONLY,
	KEEL_PROTECT_HOME_TMPFS,
};
enum keel_exec_dir { KEEL_DIR_RUNTIME, KEEL_DIR_STATE, KEEL_DIR_CACHE, KEEL_DIR_LOGS, KEEL_DIR_MAX };
enum keel_preserve { KEEL_PRESERVE_NO, KEEL_PRESERVE_YES, KEEL_PRESERVE_RESTART };
#define KEEL_SECCOMP_KILL (-1) /* SystemCallErrorNumber= unset or "kill" */

struct keel_exec_sandbox {
	uint64_t cap_bounding;             /* bit per capability; every bit by default */
	uint64_t cap_ambient;              /* 0 */
	const char **read_only_paths, **read_write_paths, **inaccessible_paths;
	const char **temporary_fs;         /* "PATH" or "PATH:OPTIONS" */
	const char **bind_paths, **bind_ro_paths; /* "[-]SRC:DST:rbind" or ":norbind" */
	const char **syscall_filter;       /* system call names, each "name" or "name:ERRNO" */
	const char **dirs[KEEL_DIR_MAX];   /* relative paths below /run, /var/lib, /var/cache, /var/log */
	uint16_t dir_mode[KEEL_DIR_MAX];   /* 0755 */
	int syscall_errno;                 /* KEEL_SECCOMP_KILL or an errno */
	uint32_t secure_bits;              /* SECBIT_* */
	uint8_t protect_system, protect_home, runtime_preserve;
	bool no_new_privileges : 1;
	bool private_devices : 1;
	bool private_network : 1;
	bool protect_kernel_tunables : 1;
	bool protect_kernel_modules : 1;
	bool protect_control_groups : 1;
	bool syscall_filter_set : 1;       /* a SystemCallFilter= is in force */
	bool syscall_allow_list : 1;       /* its list is what is allowed (else what is denied) */
	bool syscall_arch_native : 1;      /* SystemCallArchitectures=native */
};
/* The sandbox of ctx, allocated with the defaults on first use; NULL on ENOMEM. */
struct keel_exec_sandbox *keel_exec_sandbox(struct keel_exec_ctx *ctx);
/* "CAP_NET_ADMIN" -> 12 (also "net_admin"), -1 when unknown; and back (NULL beyond the table). */
int keel_capability_from_name(const char *name);
const char *keel_capability_to_name(int cap);

struct keel_exec_ctx {
	struct keel_exec_sandbox *sandbox; /* NULL: no sandboxing setting given */
	const char **environment;       /* "NAME=value", later assignments to a name replace */
	const char **environment_files; /* absolute paths, "-" prefix: missing is fine */
	const char *user, *group;       /* names or numeric ids, specifiers resolved */
	const char **supplementary_groups;
	const char *working_directory;  /* absolute; NULL = "/" (or ~ when working_directory_home) */
	const char *root_directory;
	const char *stdout_path, *stderr_path; /* file:/append:/truncate: paths, fd: names */
	const char *stdin_path;
	const char *syslog_identifier;
	struct keel_rlimit *rlimits;    /* n_rlimits entries, one per resource at most */
	uint16_t umask;                 /* 0022 */
	int8_t nice;
	uint8_t n_rlimits;
	uint8_t std_input, std_output, std_error; /* enum keel_exec_input/_output */
	bool nice_set : 1;
	bool working_directory_home : 1;
	bool working_directory_missing_ok : 1;
	bool private_tmp : 1;
	bool std_error_set : 1;         /* StandardError= given; else it follows StandardOutput= */
};

struct keel_kill_ctx {
	uint8_t kill_mode;    /* enum keel_kill_mode, control-group */
	uint8_t kill_signal;  /* SIGTERM */
	uint8_t final_kill_signal; /* SIGKILL */
	uint8_t watchdog_signal;   /* SIGABRT */
	bool send_sigkill;    /* yes */
	bool send_sighup;     /* no */
};

/* A resource limit that may be bytes/tasks, a share of the machine, or unlimited. */
enum keel_limit_kind { KEEL_LIMIT_UNSET, KEEL_LIMIT_VALUE, KEEL_LIMIT_PERMYRIAD, KEEL_LIMIT_INFINITY };
struct keel_limit {
	uint64_t value; /* bytes or tasks, or parts per 10000 of physical memory / pid_max */
	uint8_t kind;
};

#define KEEL_CGROUP_WEIGHT_UNSET UINT64_MAX
struct keel_cgroup_ctx {
	struct keel_limit memory_max, memory_limit, memory_high, tasks_max;
	uint64_t cpu_quota_per_sec_usec; /* KEEL_USEC_INFINITY when unset; 1s = 100% of one CPU */
	uint64_t cpu_weight, cpu_shares, io_weight, blockio_weight; /* _UNSET */
};

struct keel_service {
	struct keel_exec_cmd *exec[KEEL_EXEC_SLOT_MAX];
	struct keel_exec_ctx exec_ctx;
	struct keel_kill_ctx kill;
	struct keel_cgroup_ctx cgroup;
	struct keel_exit_status_set *success_status, *restart_prevent_status, *restart_force_status;
	const char *pid_file;
	const char *bus_name;          /* BusName= (kept for Type=dbus checks; keel has no D-Bus) */
	const char **sockets;          /* Sockets= */
	uint64_t restart_usec;         /* 100ms */
	uint64_t timeout_start_usec;   /* 90s; infinity for oneshot unless set */
	uint64_t timeout_stop_usec;    /* 90s */
	uint64_t timeout_abort_usec;   /* follows stop unless set */
	uint64_t watchdog_usec;        /* 0 = off */
	uint64_t runtime_max_usec;     /* infinity */
	uint8_t type;                  /* enum keel_service_type; simple/oneshot decided at load */
	uint8_t restart;               /* enum keel_restart */
	uint8_t notify_access;         /* enum keel_notify_access */
	bool type_set : 1;
	bool notify_access_set : 1;
	bool remain_after_exit : 1;
	bool guess_main_pid : 1;       /* yes */
	bool timeout_start_set : 1;
	bool timeout_abort_set : 1;
	bool root_directory_start_only : 1;
};

/* Socket */

enum keel_listen_kind {
	KEEL_LISTEN_STREAM, KEEL_LISTEN_DATAGRAM, KEEL_LISTEN_SEQPACKET, KEEL_LISTEN_FIFO,
	KEEL_LISTEN_SPECIAL, KEEL_LISTEN_MESSAGE_QUEUE, KEEL_LISTEN_NETLINK, KEEL_LISTEN_KIND_MAX,
};
const char *keel_listen_kind_to_string(enum keel_listen_kind k); /* "ListenStream" ... */

struct keel_listen {
	struct keel_sockaddr addr; /* sockets only */
	const char *path;          /* unix socket path ("@name" abstract), FIFO or special file */
	uint32_t netlink_group;    /* ListenNetlink= */
	uint16_t netlink_family;   /* NETLINK_* */
	uint8_t kind;              /* enum keel_listen_kind */
};

enum keel_bind_ipv6_only { KEEL_BIND_IPV6_DEFAULT, KEEL_BIND_IPV6_BOTH, KEEL_BIND_IPV6_ONLY };

struct keel_socket {
	struct keel_listen *listen;
	const char *service;         /* Service=; NULL = same name .service (Accept=no) */
	const char *fd_name;         /* FileDescriptorName=; NULL = the unit name */
	const char *socket_user, *socket_group;
	const char **symlinks;
	uint32_t backlog;            /* SOMAXCONN */
	uint32_t max_connections;    /* 64 */
	uint32_t max_connections_per_source; /* 0 = unlimited (systemd: max_connections) */
	uint16_t n_listen;
	uint16_t socket_mode;        /* 0666 */
	uint16_t directory_mode;     /* 0755 */
	uint8_t bind_ipv6_only;      /* enum keel_bind_ipv6_only */
	bool accept : 1;
	bool reuse_port : 1;
	bool remove_on_stop : 1;
	bool pass_credentials : 1;
	bool keep_alive : 1;
	bool no_delay : 1;
	bool free_bind : 1;
	bool broadcast : 1;
	bool writable : 1;
};

/* Timer */

enum keel_timer_base {
	KEEL_TIMER_ACTIVE, KEEL_TIMER_BOOT, KEEL_TIMER_STARTUP, KEEL_TIMER_UNIT_ACTIVE,
	KEEL_TIMER_UNIT_INACTIVE, KEEL_TIMER_CALENDAR, KEEL_TIMER_BASE_MAX,
};
const char *keel_timer_base_to_string(enum keel_timer_base b); /* "OnBootSec" ... */

struct keel_timer_value {
	struct keel_calendar *calendar; /* KEEL_TIMER_CALENDAR */
	uint64_t usec;                  /* the monotonic ones */
	uint8_t base;
};

struct keel_timer {
	struct keel_timer_value *values;
	const char *unit;              /* Unit=; NULL = same name .service */
	uint64_t accuracy_usec;        /* 1min */
	uint64_t randomized_delay_usec;/* 0 */
	uint16_t n_values;
	bool persistent : 1;
	bool wake_system : 1;
	bool remain_after_elapse : 1;  /* yes */
	bool on_clock_change : 1;
	bool on_timezone_change : 1;
	bool fixed_random_delay : 1;
};

struct keel_unit {
	struct keel_pool *pool;
	const char *id;                /* the name it was loaded as: "foo@bar.service" */
	const char **aliases;          /* other names of the same unit (symlinks) */
	const char *fragment_path;     /* the unit file; NULL when none (only drop-ins, or none) */
	const char **dropin_paths;     /* in the order they were applied */
	const char *description;
	const char **documentation;
	const char **requires_mounts_for; /* absolute paths (keel-init leaves mounts to the host) */
	struct keel_dep *deps;
	struct keel_condition *conditions; /* Condition*= and Assert*= (KEEL_COND_ASSERT) */
	struct keel_xentry *xentries;
	struct keel_install *install;
	void *engine;                  /* the engine's runtime state; never touched here */
	uint64_t start_limit_interval_usec; /* 10s */
	uint64_t job_timeout_usec;      /* infinity */
	uint64_t job_running_timeout_usec; /* infinity */
	uint32_t n_deps, n_conditions, n_xentries;
	uint32_t start_limit_burst;     /* 5 */
	int load_error;                 /* -errno for KEEL_LOAD_ERROR / BAD_SETTING */
	int16_t success_action_exit_status, failure_action_exit_status; /* -1: unset */
	uint8_t success_action, failure_action; /* enum keel_emergency_action */
	uint8_t on_failure_job_mode;    /* enum keel_job_mode, replace */
	uint8_t job_timeout_action;     /* enum keel_emergency_action, none */
	uint8_t type;                   /* enum keel_unit_type */
	uint8_t load_state;             /* enum keel_load_state */
	bool default_dependencies : 1;  /* yes */
	bool refuse_manual_start : 1;
	bool refuse_manual_stop : 1;
	bool stop_when_unneeded : 1;
	bool allow_isolate : 1;
	bool ignore_on_isolate : 1;
	/* the type's own settings follow in the same allocation; use keel_unit_service() & co. */
};

/* A unit of a supported type with systemd's defaults, named id (which must be valid), in state
 * STUB. The type comes from the name's suffix. -EINVAL (bad name or unsupported type) or
 * -ENOMEM. */
int keel_unit_new(struct keel_pool *pool, const char *id, struct keel_unit **ret) KEEL_WUR;
/* Frees everything the unit holds (not `engine`); accepts NULL. */
void keel_unit_free(struct keel_unit *u);
/* Drop every setting (back to the defaults of keel_unit_new) but keep id and paths: used before
 * re-parsing on daemon-reload, and for a masked unit. */
void keel_unit_reset(struct keel_unit *u);

/* The type-specific part; NULL when the unit is of another type. */
struct keel_service *keel_unit_service(struct keel_unit *u);
struct keel_socket *keel_unit_socket(struct keel_unit *u);
struct keel_timer *keel_unit_timer(struct keel_unit *u);
const struct keel_service *keel_unit_service_c(const struct keel_unit *u);
const struct keel_socket *keel_unit_socket_c(const struct keel_unit *u);
const struct keel_timer *keel_unit_timer_c(const struct keel_unit *u);

/* Add a dependency (deduplicated by kind and name; an existing one keeps its origin). 0 or
 * -ENOMEM. name must be a valid unit name. */
int keel_unit_add_dep(struct keel_unit *u, enum keel_dep_kind kind, const char *name,
		      enum keel_dep_origin origin) KEEL_WUR;
bool keel_unit_has_dep(const struct keel_unit *u, enum keel_dep_kind kind, const char *name);

/* The unit a socket (Accept=no: Service= or foo.service) or timer (Unit= or foo.service)
 * triggers, as a new string; NULL for other types or Accept=yes sockets, whose instances are
 * foo@<n>.service of the template foo@.service. */
char *keel_unit_triggered_name(const struct keel_unit *u);

/* After loading: the load-time checks of systemd (service_verify(), socket_verify(),
 * timer_verify()), settling defaults that depend on other settings (Type= of a service without
 * Type=, TimeoutStartSec= of oneshot services, StandardError=), then the implicit and default
 * dependencies above. A check that fails sets load state BAD_SETTING with a message to sink.
 * Returns 0, -ENOEXEC (bad setting) or -ENOMEM. */
int keel_unit_finish_load(struct keel_unit *u, const struct keel_diag_sink *sink) KEEL_WUR;

/* Whether target should be ordered After= other by systemd's default target dependency rule
 * (other is pulled in by target through Wants/Requires/Requisite/BindsTo, both have
 * DefaultDependencies=yes, both loaded, and other is not already ordered Before= target). */
bool keel_target_orders_after(const struct keel_unit *target, const struct keel_unit *other);
