#include "init/unit.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>

#include "base/mem.h"
#include "base/str.h"
#include "init/unit-internal.h"

static const char *const load_state_names[KEEL_LOAD_STATE_MAX] = {
	"stub", "loaded", "not-found", "bad-setting", "error", "masked",
};
static const char *const dep_names[KEEL_DEP_KIND_MAX] = {
	"Requires", "Requisite", "Wants", "BindsTo", "PartOf", "Upholds", "Conflicts", "Before",
	"After", "OnFailure", "OnSuccess", "PropagatesReloadTo", "ReloadPropagatedFrom",
	"PropagatesStopTo", "StopPropagatedFrom", "JoinsNamespaceOf", "Triggers",
};
static const char *const condition_names[KEEL_COND_KIND_MAX] = {
	"Architecture", "Firmware", "Virtualization", "Host", "KernelCommandLine", "KernelVersion",
	"Credential", "Security", "Capability", "ACPower", "NeedsUpdate", "FirstBoot",
	"PathExists", "PathExistsGlob", "PathIsDirectory", "PathIsSymbolicLink",
	"PathIsMountPoint", "PathIsReadWrite", "PathIsEncrypted", "DirectoryNotEmpty",
	"FileNotEmpty", "FileIsExecutable", "User", "Group", "ControlGroupController", "CPUs",
	"Memory", "Environment", "CPUFeature", "OSRelease", "MemoryPressure", "CPUPressure",
	"IOPressure",
};
static const char *const service_type_names[KEEL_SERVICE_TYPE_MAX] = {
	"simple", "exec", "forking", "oneshot", "dbus", "notify", "idle",
};
static const char *const restart_names[KEEL_RESTART_MAX] = {
	"no", "on-success", "on-failure", "on-abnormal", "on-watchdog", "on-abort", "always",
};
static const char *const kill_mode_names[KEEL_KILL_MODE_MAX] = {
	"control-group", "process", "mixed", "none",
};
static const char *const notify_access_names[KEEL_NOTIFY_MAX] = {"none", "main", "exec", "all"};
static const char *const output_names[KEEL_OUTPUT_MAX] = {
	"inherit", "null", "tty", "kmsg", "kmsg+console", "journal", "journal+console", "socket",
	"fd", "file", "append", "truncate",
};
static const char *const input_names[KEEL_INPUT_MAX] = {
	"null", "tty", "tty-force", "tty-fail", "socket", "fd", "data", "file",
};
static const char *const exec_slot_names[KEEL_EXEC_SLOT_MAX] = {
	"ExecStartPre", "ExecStart", "ExecStartPost", "ExecReload", "ExecStop", "ExecStopPost",
	"ExecCondition",
};
static const char *const listen_names[KEEL_LISTEN_KIND_MAX] = {
	"ListenStream", "ListenDatagram", "ListenSequentialPacket", "ListenFIFO", "ListenSpecial",
	"ListenMessageQueue", "ListenNetlink",
};
static const char *const action_names[KEEL_ACTION_MAX] = {
	"none", "reboot", "reboot-force", "reboot-immediate", "poweroff", "poweroff-force",
	"poweroff-immediate", "exit", "exit-force", "kexec", "kexec-force", "halt", "halt-force",
	"halt-immediate",
};
static const char *const job_mode_names[KEEL_JOB_MODE_MAX] = {
	"fail", "replace", "replace-irreversibly", "isolate", "flush", "ignore-dependencies",
	"ignore-requirements",
};
static const char *const timer_base_names[KEEL_TIMER_BASE_MAX] = {
	"OnActiveSec", "OnBootSec", "OnStartupSec", "OnUnitActiveSec", "OnUnitInactiveSec",
	"OnCalendar",
};

#define NAME_OF(table, v, max) ((int)(v) >= 0 && (int)(v) < (max) ? (table)[v] : NULL)

const char *keel_load_state_to_string(enum keel_load_state s) { return NAME_OF(load_state_names, s, KEEL_LOAD_STATE_MAX); }
const char *keel_dep_kind_to_string(enum keel_dep_kind k) { return NAME_OF(dep_names, k, KEEL_DEP_KIND_MAX); }
const char *keel_condition_kind_to_string(enum keel_condition_kind k) { return NAME_OF(condition_names, k, KEEL_COND_KIND_MAX); }
const char *keel_service_type_to_string(enum keel_service_type t) { return NAME_OF(service_type_names, t, KEEL_SERVICE_TYPE_MAX); }
const char *keel_restart_to_string(enum keel_restart r) { return NAME_OF(restart_names, r, KEEL_RESTART_MAX); }
const char *keel_kill_mode_to_string(enum keel_kill_mode m) { return NAME_OF(kill_mode_names, m, KEEL_KILL_MODE_MAX); }
const char *keel_notify_access_to_string(enum keel_notify_access a) { return NAME_OF(notify_access_names, a, KEEL_NOTIFY_MAX); }
const char *keel_exec_output_to_string(enum keel_exec_output o) { return NAME_OF(output_names, o, KEEL_OUTPUT_MAX); }
const char *keel_exec_input_to_string(enum keel_exec_input i) { return NAME_OF(input_names, i, KEEL_INPUT_MAX); }
const char *keel_exec_slot_to_string(enum keel_exec_slot s) { return NAME_OF(exec_slot_names, s, KEEL_EXEC_SLOT_MAX); }
const char *keel_listen_kind_to_string(enum keel_listen_kind k) { return NAME_OF(listen_names, k, KEEL_LISTEN_KIND_MAX); }
const char *keel_emergency_action_to_string(enum keel_emergency_action a) { return NAME_OF(action_names, a, KEEL_ACTION_MAX); }
const char *keel_job_mode_to_string(enum keel_job_mode m) { return NAME_OF(job_mode_names, m, KEEL_JOB_MODE_MAX); }
const char *keel_timer_base_to_string(enum keel_timer_base b) { return NAME_OF(timer_base_names, b, KEEL_TIMER_BASE_MAX); }

bool keel_condition_kind_takes_path(enum keel_condition_kind k)
{
	switch (k) {
	case KEEL_COND_PATH_EXISTS: case KEEL_COND_PATH_EXISTS_GLOB: case KEEL_COND_PATH_IS_DIRECTORY:
	case KEEL_COND_PATH_IS_SYMBOLIC_LINK: case KEEL_COND_PATH_IS_MOUNT_POINT:
	case KEEL_COND_PATH_IS_READ_WRITE: case KEEL_COND_PATH_IS_ENCRYPTED:
	case KEEL_COND_DIRECTORY_NOT_EMPTY: case KEEL_COND_FILE_NOT_EMPTY:
	case KEEL_COND_FILE_IS_EXECUTABLE: case KEEL_COND_NEEDS_UPDATE:
		return true;
	default:
		return false;
	}
}

bool keel_exit_status_set_has_status(const struct keel_exit_status_set *s, int code)
{
	return s && code >= 0 && code < 256 && (s->status[code / 8] & (1u << (code % 8)));
}

bool keel_exit_status_set_has_signal(const struct keel_exit_status_set *s, int sig)
{
	return s && sig > 0 && sig < 64 && (s->signal[sig / 8] & (1u << (sig % 8)));
}

struct keel_service *keel_unit_service(struct keel_unit *u)
{
	return u && u->type == KEEL_UNIT_SERVICE ? &((struct keel__unit_block *)u)->t.service : NULL;
}
struct keel_socket *keel_unit_socket(struct keel_unit *u)
{
	return u && u->type == KEEL_UNIT_SOCKET ? &((struct keel__unit_block *)u)->t.socket : NULL;
}
struct keel_timer *keel_unit_timer(struct keel_unit *u)
{
	return u && u->type == KEEL_UNIT_TIMER ? &((struct keel__unit_block *)u)->t.timer : NULL;
}
const struct keel_service *keel_unit_service_c(const struct keel_unit *u)
{
	return keel_unit_service((struct keel_unit *)u);
}
const struct keel_socket *keel_unit_socket_c(const struct keel_unit *u)
{
	return keel_unit_socket((struct keel_unit *)u);
}
const struct keel_timer *keel_unit_timer_c(const struct keel_unit *u)
{
	return keel_unit_timer((struct keel_unit *)u);
}

static size_t block_size(enum keel_unit_type t)
{
	size_t base = offsetof(struct keel__unit_block, t);
	switch (t) {
	case KEEL_UNIT_SERVICE:
		return base + sizeof(struct keel_service);
	case KEEL_UNIT_SOCKET:
		return base + sizeof(struct keel_socket);
	case KEEL_UNIT_TIMER:
		return base + sizeof(struct keel_timer);
	default:
		return sizeof(struct keel_unit);
	}
}

/* systemd's defaults (systemd-system.conf(5) and each type's _init()). */
static void set_defaults(struct keel_unit *u)
{
	u->default_dependencies = true;
	u->start_limit_interval_usec = 10 * KEEL_USEC_PER_SEC;
	u->start_limit_burst = 5;
	u->job_timeout_usec = KEEL_USEC_INFINITY;
	u->job_running_timeout_usec = KEEL_USEC_INFINITY;
	u->success_action_exit_status = u->failure_action_exit_status = -1;
	u->on_failure_job_mode = KEEL_JOB_REPLACE;
	struct keel_service *s = keel_unit_service(u);
	if (s) {
		s->restart_usec = 100 * KEEL_USEC_PER_MSEC;
		s->timeout_start_usec = 90 * KEEL_USEC_PER_SEC;
		s->timeout_stop_usec = 90 * KEEL_USEC_PER_SEC;
		s->timeout_abort_usec = 90 * KEEL_USEC_PER_SEC;
		s->runtime_max_usec = KEEL_USEC_INFINITY;
		s->type = KEEL_SERVICE_SIMPLE;
		s->guess_main_pid = true;
		s->exec_ctx.umask = 0022;
		s->exec_ctx.std_input = KEEL_INPUT_NULL;
		s->exec_ctx.std_output = KEEL_OUTPUT_JOURNAL;
		s->exec_ctx.std_error = KEEL_OUTPUT_INHERIT;
		s->kill.kill_mode = KEEL_KILL_CONTROL_GROUP;
		s->kill.kill_signal = SIGTERM;
		s->kill.final_kill_signal = SIGKILL;
		s->kill.watchdog_signal = SIGABRT;
		s->kill.send_sigkill = true;
		s->cgroup.cpu_quota_per_sec_usec = KEEL_USEC_INFINITY;
		s->cgroup.cpu_weight = s->cgroup.cpu_shares = KEEL_CGROUP_WEIGHT_UNSET;
		s->cgroup.io_weight = s->cgroup.blockio_weight = KEEL_CGROUP_WEIGHT_UNSET;
	}
	struct keel_socket *so = keel_unit_socket(u);
	if (so) {
		so->backlog = SOMAXCONN;
		so->max_connections = 64;
		so->socket_mode = 0666;
		so->directory_mode = 0755;
	}
	struct keel_timer *t = keel_unit_timer(u);
	if (t) {
		t->accuracy_usec = KEEL_USEC_PER_MINUTE;
		t->remain_after_elapse = true;
	}
}

int keel_unit_new(struct keel_pool *pool, const char *id, struct keel_unit **ret)
{
	if (!keel_unit_name_is_valid(id, KEEL_NAME_PLAIN | KEEL_NAME_INSTANCE))
		return -EINVAL;
	enum keel_unit_type t = keel_unit_name_type(id);
	if (!keel_unit_type_supported(t))
		return -EINVAL;
	struct keel_unit *u = keel_calloc(1, block_size(t));
	if (!u)
		return -ENOMEM;
	u->pool = pool;
	u->type = (uint8_t)t;
	u->load_state = KEEL_LOAD_STUB;
	u->id = keel_pool_intern(pool, id);
	if (!u->id) {
		keel_free(u);
		return -ENOMEM;
	}
	set_defaults(u);
	*ret = u;
	return 0;
}

void keel__exec_cmd_free_list(struct keel_exec_cmd *c)
{
	while (c) {
		struct keel_exec_cmd *n = c->next;
		keel_free(c);
		c = n;
	}
}

void keel__timer_values_clear(struct keel_pool *p, struct keel_timer *t)
{
	(void)p;
	for (uint16_t i = 0; i < t->n_values; i++)
		keel_calendar_free(t->values[i].calendar);
	keel_free(t->values);
	t->values = NULL;
	t->n_values = 0;
}

void keel__listen_clear(struct keel_pool *p, struct keel_socket *s)
{
	for (uint16_t i = 0; i < s->n_listen; i++)
		keel_pool_unref(p, s->listen[i].path);
	keel_free(s->listen);
	s->listen = NULL;
	s->n_listen = 0;
}

static void clear_settings(struct keel_unit *u)
{
	struct keel_pool *p = u->pool;
	keel_pool_unref(p, u->description);
	u->description = NULL;
	keel_pool_strv_clear(p, &u->documentation);
	keel_pool_strv_clear(p, &u->requires_mounts_for);
	for (uint32_t i = 0; i < u->n_deps; i++)
		keel_pool_unref(p, u->deps[i].name);
	keel_free(u->deps);
	u->deps = NULL;
	u->n_deps = 0;
	for (uint32_t i = 0; i < u->n_conditions; i++)
		keel_pool_unref(p, u->conditions[i].param);
	keel_free(u->conditions);
	u->conditions = NULL;
	u->n_conditions = 0;
	for (uint32_t i = 0; i < u->n_xentries; i++) {
		keel_pool_unref(p, u->xentries[i].section);
		keel_pool_unref(p, u->xentries[i].key);
		keel_pool_unref(p, u->xentries[i].value);
	}
	keel_free(u->xentries);
	u->xentries = NULL;
	u->n_xentries = 0;
	if (u->install) {
		keel_pool_strv_clear(p, &u->install->wanted_by);
		keel_pool_strv_clear(p, &u->install->required_by);
		keel_pool_strv_clear(p, &u->install->alias);
		keel_pool_strv_clear(p, &u->install->also);
		keel_pool_unref(p, u->install->default_instance);
		keel_free(u->install);
		u->install = NULL;
	}
	struct keel_service *s = keel_unit_service(u);
	if (s) {
		for (int i = 0; i < KEEL_EXEC_SLOT_MAX; i++)
			keel__exec_cmd_free_list(s->exec[i]);
		struct keel_exec_ctx *e = &s->exec_ctx;
		keel_pool_strv_clear(p, &e->environment);
		keel_pool_strv_clear(p, &e->environment_files);
		keel_pool_strv_clear(p, &e->supplementary_groups);
		const char *strs[] = {
			e->user, e->group, e->working_directory, e->root_directory, e->stdout_path,
			e->stderr_path, e->stdin_path, e->syslog_identifier, s->pid_file, s->bus_name,
		};
		for (size_t i = 0; i < KEEL_ARRAY_SIZE(strs); i++)
			keel_pool_unref(p, strs[i]);
		keel_free(e->rlimits);
		keel__exec_sandbox_free(p, e->sandbox);
		keel_pool_strv_clear(p, &s->sockets);
		keel_free(s->success_status);
		keel_free(s->restart_prevent_status);
		keel_free(s->restart_force_status);
		memset(s, 0, sizeof(*s));
	}
	struct keel_socket *so = keel_unit_socket(u);
	if (so) {
		keel__listen_clear(p, so);
		keel_pool_unref(p, so->service);
		keel_pool_unref(p, so->fd_name);
		keel_pool_unref(p, so->socket_user);
		keel_pool_unref(p, so->socket_group);
		keel_pool_strv_clear(p, &so->symlinks);
		memset(so, 0, sizeof(*so));
	}
	struct keel_timer *t = keel_unit_timer(u);
	if (t) {
		keel__timer_values_clear(p, t);
		keel_pool_unref(p, t->unit);
		memset(t, 0, sizeof(*t));
	}
	u->default_dependencies = u->refuse_manual_start = u->refuse_manual_stop = false;
	u->stop_when_unneeded = u->allow_isolate = u->ignore_on_isolate = false;
	u->load_error = 0;
}

void keel_unit_reset(struct keel_unit *u)
{
	clear_settings(u);
	set_defaults(u);
}

void keel_unit_free(struct keel_unit *u)
{
	if (!u)
		return;
	clear_settings(u);
	struct keel_pool *p = u->pool;
	keel_pool_unref(p, u->id);
	keel_pool_strv_clear(p, &u->aliases);
	keel_pool_unref(p, u->fragment_path);
	keel_pool_strv_clear(p, &u->dropin_paths);
	keel_free(u);
}

bool keel_unit_has_dep(const struct keel_unit *u, enum keel_dep_kind kind, const char *name)
{
	for (uint32_t i = 0; i < u->n_deps; i++)
		if (u->deps[i].kind == kind && strcmp(u->deps[i].name, name) == 0)
			return true;
	return false;
}

int keel_unit_add_dep(struct keel_unit *u, enum keel_dep_kind kind, const char *name,
		      enum keel_dep_origin origin)
{
	if (keel_unit_has_dep(u, kind, name))
		return 0;
	/* Grow in small steps: most units have a handful of dependencies. */
	if ((u->n_deps & 3) == 0) {
		struct keel_dep *nd = keel_reallocarray(u->deps, u->n_deps + 4, sizeof(*nd));
		if (!nd)
			return -ENOMEM;
		u->deps = nd;
	}
	const char *n = keel_pool_intern(u->pool, name);
	if (!n)
		return -ENOMEM;
	u->deps[u->n_deps++] = (struct keel_dep){n, (uint8_t)kind, (uint8_t)origin};
	return 0;
}

int keel__unit_add_xentry(struct keel_unit *u, const char *section, const char *key, const char *value)
{
	struct keel_xentry *nx = keel_reallocarray(u->xentries, u->n_xentries + 1, sizeof(*nx));
	if (!nx)
		return -ENOMEM;
	u->xentries = nx;
	struct keel_xentry x = {
		keel_pool_intern(u->pool, section), keel_pool_intern(u->pool, key),
		keel_pool_intern(u->pool, value),
	};
	if (!x.section || !x.key || !x.value) {
		keel_pool_unref(u->pool, x.section);
		keel_pool_unref(u->pool, x.key);
		keel_pool_unref(u->pool, x.value);
		return -ENOMEM;
	}
	u->xentries[u->n_xentries++] = x;
	return 0;
}

int keel__env_set(struct keel_pool *p, const char ***env, const char *assignment)
{
	size_t n = strcspn(assignment, "=");
	for (size_t i = 0; *env && (*env)[i]; i++) {
		if (strncmp((*env)[i], assignment, n) == 0 && (*env)[i][n] == '=') {
			const char *s = keel_pool_intern(p, assignment);
			if (!s)
				return -ENOMEM;
			keel_pool_unref(p, (*env)[i]);
			(*env)[i] = s;
			return 0;
		}
	}
	return keel_pool_strv_add(p, env, assignment);
}

char *keel_unit_triggered_name(const struct keel_unit *u)
{
	char *r = NULL;
	const struct keel_socket *so = keel_unit_socket_c(u);
	if (so) {
		if (so->service)
			return keel_strdup(so->service);
		if (so->accept)
			return NULL;
		return keel_unit_name_change_suffix(u->id, ".service", &r) < 0 ? NULL : r;
	}
	const struct keel_timer *t = keel_unit_timer_c(u);
	if (t) {
		if (t->unit)
			return keel_strdup(t->unit);
		return keel_unit_name_change_suffix(u->id, ".service", &r) < 0 ? NULL : r;
	}
	return NULL;
}

static int refuse(struct keel_unit *u, const struct keel_diag_sink *sink, const char *msg)
{
	keel__uwarn(u, sink, KEEL_DIAG_ERR, "%s", msg);
	u->load_state = KEEL_LOAD_BAD_SETTING;
	u->load_error = -ENOEXEC;
	return -ENOEXEC;
}

static int service_finish(struct keel_unit *u, const struct keel_diag_sink *sink)
{
	struct keel_service *s = keel_unit_service(u);
	if (!s->type_set)
		s->type = s->bus_name ? KEEL_SERVICE_DBUS
			: s->exec[KEEL_EXEC_START] ? KEEL_SERVICE_SIMPLE : KEEL_SERVICE_ONESHOT;
	if (s->type == KEEL_SERVICE_ONESHOT && !s->timeout_start_set)
		s->timeout_start_usec = KEEL_USEC_INFINITY;
	if (!s->timeout_abort_set)
		s->timeout_abort_usec = s->timeout_stop_usec;
	if (!s->notify_access_set && (s->type == KEEL_SERVICE_NOTIFY || s->watchdog_usec > 0))
		s->notify_access = KEEL_NOTIFY_MAIN;

	/* systemd's service_verify(), in its order and words. */
	bool success_action = u->success_action != KEEL_ACTION_NONE;
	if (!s->exec[KEEL_EXEC_START] && !s->exec[KEEL_EXEC_STOP] && !success_action)
		return refuse(u, sink, "Service has no ExecStart=, ExecStop=, or SuccessAction=. Refusing.");
	if (s->type != KEEL_SERVICE_ONESHOT && !s->exec[KEEL_EXEC_START])
		return refuse(u, sink, "Service has no ExecStart= setting, which is only allowed for Type=oneshot services. Refusing.");
	if (!s->remain_after_exit && !s->exec[KEEL_EXEC_START] && !success_action)
		return refuse(u, sink, "Service has no ExecStart= and no SuccessAction= settings and does not have RemainAfterExit=yes set. Refusing.");
	if (s->type != KEEL_SERVICE_ONESHOT && s->exec[KEEL_EXEC_START]->next)
		return refuse(u, sink, "Service has more than one ExecStart= setting, which is only allowed for Type=oneshot services. Refusing.");
	if (s->type == KEEL_SERVICE_ONESHOT &&
	    (s->restart == KEEL_RESTART_ALWAYS || s->restart == KEEL_RESTART_ON_SUCCESS))
		return refuse(u, sink, "Service has Restart= set to either always or on-success, which isn't allowed for Type=oneshot services. Refusing.");
	if (s->type == KEEL_SERVICE_DBUS && !s->bus_name)
		return refuse(u, sink, "Service is of type D-Bus but no D-Bus service name has been specified. Refusing.");
	if (s->runtime_max_usec != KEEL_USEC_INFINITY && s->type == KEEL_SERVICE_ONESHOT)
		keel__uwarn(u, sink, KEEL_DIAG_WARNING, "RuntimeMaxSec= has no effect in combination with Type=oneshot. Ignoring.");
	return 0;
}

static bool socket_has_non_accept_port(const struct keel_socket *s)
{
	for (uint16_t i = 0; i < s->n_listen; i++)
		if (s->listen[i].kind != KEEL_LISTEN_STREAM && s->listen[i].kind != KEEL_LISTEN_SEQPACKET)
			return true;
	return false;
}

static int socket_finish(struct keel_unit *u, const struct keel_diag_sink *sink)
{
	struct keel_socket *s = keel_unit_socket(u);
	if (s->n_listen == 0)
		return refuse(u, sink, "Unit has no Listen setting (ListenStream=, ListenDatagram=, ListenFIFO=, ...). Refusing.");
	if (s->accept && socket_has_non_accept_port(s))
		return refuse(u, sink, "Unit configured for accepting sockets, but sockets are non-accepting. Refusing.");
	if (s->accept && s->max_connections == 0)
		return refuse(u, sink, "MaxConnection= setting too small. Refusing.");
	if (s->accept && s->service)
		return refuse(u, sink, "Explicit service configuration for accepting socket units not supported. Refusing.");
	if (keel_pool_strv_len(s->symlinks) > 0) {
		/* Symlinks= needs exactly one file system node to point at. */
		int nodes = 0;
		for (uint16_t i = 0; i < s->n_listen; i++)
			if (s->listen[i].path && s->listen[i].path[0] == '/')
				nodes++;
		if (nodes != 1)
			return refuse(u, sink, "Unit has symlinks set but none or more than one node in the file system. Refusing.");
	}
	return 0;
}

static int timer_finish(struct keel_unit *u, const struct keel_diag_sink *sink)
{
	struct keel_timer *t = keel_unit_timer(u);
	if (t->n_values == 0 && !t->on_clock_change && !t->on_timezone_change)
		return refuse(u, sink, "Timer unit lacks value setting. Refusing.");
	return 0;
}

static int add_two(struct keel_unit *u, enum keel_dep_kind a, enum keel_dep_kind b, const char *name,
		   enum keel_dep_origin origin)
{
	if (keel_streq(u->id, name))
		return 0;
	int r = keel_unit_add_dep(u, a, name, origin);
	if (r == 0 && b != KEEL_DEP_KIND_MAX)
		r = keel_unit_add_dep(u, b, name, origin);
	return r;
}

static int add_implicit_deps(struct keel_unit *u)
{
	int r = 0;
	const struct keel_socket *so = keel_unit_socket_c(u);
	if (u->type == KEEL_UNIT_TIMER || (so && (!so->accept || socket_has_non_accept_port(so)))) {
		char *trig = keel_unit_triggered_name(u);
		if (!trig)
			return -ENOMEM;
		r = add_two(u, KEEL_DEP_BEFORE, KEEL_DEP_TRIGGERS, trig, KEEL_DEP_FROM_IMPLICIT);
		keel_free(trig);
		if (r < 0)
			return r;
	}
	if (!u->default_dependencies)
		return 0;
	const enum keel_dep_origin D = KEEL_DEP_FROM_DEFAULT;
	switch (u->type) {
	case KEEL_UNIT_SERVICE:
		if ((r = add_two(u, KEEL_DEP_AFTER, KEEL_DEP_REQUIRES, "sysinit.target", D)) < 0 ||
		    (r = add_two(u, KEEL_DEP_AFTER, KEEL_DEP_KIND_MAX, "basic.target", D)) < 0)
			return r;
		break;
	case KEEL_UNIT_SOCKET:
		if ((r = add_two(u, KEEL_DEP_BEFORE, KEEL_DEP_KIND_MAX, "sockets.target", D)) < 0 ||
		    (r = add_two(u, KEEL_DEP_AFTER, KEEL_DEP_REQUIRES, "sysinit.target", D)) < 0)
			return r;
		break;
	case KEEL_UNIT_TIMER: {
		if ((r = add_two(u, KEEL_DEP_BEFORE, KEEL_DEP_KIND_MAX, "timers.target", D)) < 0 ||
		    (r = add_two(u, KEEL_DEP_AFTER, KEEL_DEP_REQUIRES, "sysinit.target", D)) < 0)
			return r;
		const struct keel_timer *t = keel_unit_timer_c(u);
		for (uint16_t i = 0; i < t->n_values; i++) {
			if (t->values[i].base != KEEL_TIMER_CALENDAR)
				continue;
			if ((r = add_two(u, KEEL_DEP_AFTER, KEEL_DEP_KIND_MAX, "time-set.target", D)) < 0 ||
			    (r = add_two(u, KEEL_DEP_AFTER, KEEL_DEP_KIND_MAX, "time-sync.target", D)) < 0)
				return r;
			break;
		}
		break;
	}
	default:
		break;
	}
	if (strcmp(u->id, "shutdown.target") != 0)
		r = add_two(u, KEEL_DEP_BEFORE, KEEL_DEP_CONFLICTS, "shutdown.target", D);
	return r;
}

int keel_unit_finish_load(struct keel_unit *u, const struct keel_diag_sink *sink)
{
	if (u->load_state != KEEL_LOAD_LOADED)
		return 0;
	int r = 0;
	switch (u->type) {
	case KEEL_UNIT_SERVICE:
		r = service_finish(u, sink);
		break;
	case KEEL_UNIT_SOCKET:
		r = socket_finish(u, sink);
		break;
	case KEEL_UNIT_TIMER:
		r = timer_finish(u, sink);
		break;
	default:
		break;
	}
	if (r < 0)
		return r;
	return add_implicit_deps(u);
}

bool keel_target_orders_after(const struct keel_unit *target, const struct keel_unit *other)
{
	if (target->type != KEEL_UNIT_TARGET || target == other)
		return false;
	if (target->load_state != KEEL_LOAD_LOADED || other->load_state != KEEL_LOAD_LOADED)
		return false;
	if (!target->default_dependencies || !other->default_dependencies)
		return false;
	bool pulled = false;
	for (uint32_t i = 0; i < target->n_deps && !pulled; i++) {
		const struct keel_dep *d = &target->deps[i];
		if ((d->kind == KEEL_DEP_WANTS || d->kind == KEEL_DEP_REQUIRES ||
		     d->kind == KEEL_DEP_REQUISITE || d->kind == KEEL_DEP_BINDS_TO) &&
		    strcmp(d->name, other->id) == 0)
			pulled = true;
	}
	if (!pulled)
		return false;
	/* Don't create loops: the target already Before= other, or other already After= target. */
	if (keel_unit_has_dep(target, KEEL_DEP_BEFORE, other->id) ||
	    keel_unit_has_dep(other, KEEL_DEP_AFTER, target->id))
		return false;
	return true;
}
