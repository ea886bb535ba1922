/* What the pieces of the unit model share: the allocation layout, the parse context, the option
 * table and the parsers it names. Not for use outside lib/init. */
#pragma once

#include "init/syntax.h"
#include "init/unit.h"

/* A unit and its type's settings in one allocation. */
struct keel__unit_block {
	struct keel_unit unit;
	union {
		struct keel_service service;
		struct keel_socket socket;
		struct keel_timer timer;
	} t;
};

/* One assignment being parsed. */
struct keel__pctx {
	struct keel_unit *u;
	const struct keel_diag_sink *sink;
	const struct keel_host_info *host;
	const char *file;
	unsigned line;
	const char *section, *key;
	bool in_dropin;   /* [Install] is read from the unit file only, as systemctl enable does */
	bool system;
};

typedef int (*keel__parse_fn)(struct keel__pctx *c, const char *value, void *data, int ltype);

enum { KEEL__BASE_UNIT, KEEL__BASE_TYPE, KEEL__BASE_INSTALL };

struct keel__option {
	const char *section, *key;
	keel__parse_fn parse;
	int ltype;
	uint8_t base;
	uint16_t offset;
};

/* The option table (unit_table.c), sorted by section then key. */
const struct keel__option *keel__option_find(const char *section, const char *key);
size_t keel__options(const struct keel__option **ret);
bool keel__systemd_knows_key(const char *section, const char *key);

/* The syntax callbacks that feed the table (unit_parse.c). userdata is a struct keel__pctx. */
extern const struct keel_syntax_ops keel__unit_syntax_ops;

/* Messages: about the current line, or about the unit. */
void keel__pwarn(struct keel__pctx *c, enum keel_diag_level level, const char *fmt, ...) KEEL_PRINTF(3, 4);
void keel__uwarn(const struct keel_unit *u, const struct keel_diag_sink *sink,
		 enum keel_diag_level level, const char *fmt, ...) KEEL_PRINTF(4, 5);
/* Specifier expansion for the unit being parsed; reports a deprecated %c/%r/%R once. */
int keel__expand(struct keel__pctx *c, enum keel_spec_table table, const char *text, size_t max,
		 char **ret);
/* keel__expand for a setting systemd ignores when its specifiers do not resolve: 0 with *ret
 * set, -ENOMEM, or 1 after the "Failed to resolve unit specifiers ..., ignoring" warning. */
int keel__expand_or_ignore(struct keel__pctx *c, enum keel_spec_table table, const char *text, size_t max,
			   char **ret);
/* systemd's path_simplify_and_warn(): absolute (when asked), simplified, valid, normalised;
 * fatal decides between "..., ignoring" and a bare message. 0 or -EINVAL (reported). */
int keel__path_check(struct keel__pctx *c, char *path, bool absolute, bool fatal);
/* A relaxed user/group name or numeric id, as systemd accepts for User=/Group=. */
bool keel__user_group_name_is_valid(const char *s);

/* Parsers (unit_parse.c) */
int keel__parse_bool(struct keel__pctx *c, const char *v, void *data, int ltype);
int keel__parse_sec(struct keel__pctx *c, const char *v, void *data, int ltype);
int keel__parse_unsigned(struct keel__pctx *c, const char *v, void *data, int ltype);
int keel__parse_string_printf(struct keel__pctx *c, const char *v, void *data, int ltype);
int keel__parse_documentation(struct keel__pctx *c, const char *v, void *data, int ltype);
int keel__parse_deps(struct keel__pctx *c, const char *v, void *data, int ltype);
int keel__parse_condition(struct keel__pctx *c, const char *v, void *data, int ltype);
int keel__parse_job_timeout(struct keel__pctx *c, const char *v, void *data, int ltype);
int keel__parse_emergency_action(struct keel__pctx *c, const char *v, void *data, int ltype);
int keel__parse_exit_code(struct keel__pctx *c, const char *v, void *data, int ltype);
int keel__parse_job_mode(struct keel__pctx *c, const char *v, void *data, int ltype);
int keel__parse_install_strv(struct keel__pctx *c, const char *v, void *data, int ltype);
int keel__parse_install_string(struct keel__pctx *c, const char *v, void *data, int ltype);
int keel__parse_mode(struct keel__pctx *c, const char *v, void *data, int ltype);
int keel__parse_path_strv(struct keel__pctx *c, const char *v, void *data, int ltype);
int keel__parse_user_group(struct keel__pctx *c, const char *v, void *data, int ltype);
/* (unit_parse_exec.c) */
int keel__parse_service_type(struct keel__pctx *c, const char *v, void *data, int ltype);
int keel__parse_exec(struct keel__pctx *c, const char *v, void *data, int ltype);
int keel__parse_pid_file(struct keel__pctx *c, const char *v, void *data, int ltype);
int keel__parse_restart(struct keel__pctx *c, const char *v, void *data, int ltype);
int keel__parse_service_timeout(struct keel__pctx *c, const char *v, void *data, int ltype);
int keel__parse_exit_status(struct keel__pctx *c, const char *v, void *data, int ltype);
int keel__parse_kill_mode(struct keel__pctx *c, const char *v, void *data, int ltype);
int keel__parse_signal(struct keel__pctx *c, const char *v, void *data, int ltype);
int keel__parse_environ(struct keel__pctx *c, const char *v, void *data, int ltype);
int keel__parse_env_file(struct keel__pctx *c, const char *v, void *data, int ltype);
int keel__parse_supplementary_groups(struct keel__pctx *c, const char *v, void *data, int ltype);
int keel__parse_working_directory(struct keel__pctx *c, const char *v, void *data, int ltype);
int keel__parse_unit_path(struct keel__pctx *c, const char *v, void *data, int ltype);
int keel__parse_umask(struct keel__pctx *c, const char *v, void *data, int ltype);
int keel__parse_nice(struct keel__pctx *c, const char *v, void *data, int ltype);
int keel__parse_rlimit(struct keel__pctx *c, const char *v, void *data, int ltype);
int keel__parse_input(struct keel__pctx *c, const char *v, void *data, int ltype);
int keel__parse_output(struct keel__pctx *c, const char *v, void *data, int ltype);
int keel__parse_notify_access(struct keel__pctx *c, const char *v, void *data, int ltype);
int keel__parse_memory_limit(struct keel__pctx *c, const char *v, void *data, int ltype);
int keel__parse_tasks_max(struct keel__pctx *c, const char *v, void *data, int ltype);
int keel__parse_cpu_quota(struct keel__pctx *c, const char *v, void *data, int ltype);
int keel__parse_cg_weight(struct keel__pctx *c, const char *v, void *data, int ltype);
int keel__parse_service_sockets(struct keel__pctx *c, const char *v, void *data, int ltype);
int keel__parse_bus_name(struct keel__pctx *c, const char *v, void *data, int ltype);
/* (unit_parse_sandbox.c) data is the struct keel_exec_ctx; ltype a KEEL__SB_* */
int keel__parse_sandbox(struct keel__pctx *c, const char *v, void *data, int ltype);
void keel__exec_sandbox_free(struct keel_pool *p, struct keel_exec_sandbox *sb);
enum keel__sandbox_field {
	KEEL__SB_NO_NEW_PRIVILEGES, KEEL__SB_PRIVATE_DEVICES, KEEL__SB_PRIVATE_NETWORK,
	KEEL__SB_PROTECT_KERNEL_TUNABLES, KEEL__SB_PROTECT_KERNEL_MODULES,
	KEEL__SB_PROTECT_CONTROL_GROUPS, KEEL__SB_CAP_BOUNDING, KEEL__SB_CAP_AMBIENT,
	KEEL__SB_SECURE_BITS, KEEL__SB_PROTECT_SYSTEM, KEEL__SB_PROTECT_HOME,
	KEEL__SB_READ_ONLY_PATHS, KEEL__SB_READ_WRITE_PATHS, KEEL__SB_INACCESSIBLE_PATHS,
	KEEL__SB_TEMPORARY_FS, KEEL__SB_BIND_PATHS, KEEL__SB_BIND_RO_PATHS,
	KEEL__SB_SYSCALL_FILTER, KEEL__SB_SYSCALL_ERRNO, KEEL__SB_SYSCALL_ARCHS,
	KEEL__SB_RUNTIME_DIR, KEEL__SB_STATE_DIR, KEEL__SB_CACHE_DIR, KEEL__SB_LOGS_DIR,
	KEEL__SB_RUNTIME_DIR_MODE, KEEL__SB_STATE_DIR_MODE, KEEL__SB_CACHE_DIR_MODE,
	KEEL__SB_LOGS_DIR_MODE, KEEL__SB_RUNTIME_DIR_PRESERVE,
};
/* (unit_parse_socket.c) */
int keel__parse_listen(struct keel__pctx *c, const char *v, void *data, int ltype);
int keel__parse_socket_service(struct keel__pctx *c, const char *v, void *data, int ltype);
int keel__parse_bind_ipv6_only(struct keel__pctx *c, const char *v, void *data, int ltype);
int keel__parse_fd_name(struct keel__pctx *c, const char *v, void *data, int ltype);
int keel__parse_timer_value(struct keel__pctx *c, const char *v, void *data, int ltype);
int keel__parse_calendar(struct keel__pctx *c, const char *v, void *data, int ltype);
int keel__parse_trigger_unit(struct keel__pctx *c, const char *v, void *data, int ltype);

/* ltype of keel__parse_bool: which bit-field to set (bit-fields have no address). */
enum keel__bool_field {
	KEEL__B_DEFAULT_DEPENDENCIES, KEEL__B_REFUSE_MANUAL_START, KEEL__B_REFUSE_MANUAL_STOP,
	KEEL__B_STOP_WHEN_UNNEEDED, KEEL__B_ALLOW_ISOLATE, KEEL__B_IGNORE_ON_ISOLATE,
	KEEL__B_REMAIN_AFTER_EXIT, KEEL__B_GUESS_MAIN_PID, KEEL__B_ROOT_DIRECTORY_START_ONLY,
	KEEL__B_SEND_SIGKILL, KEEL__B_SEND_SIGHUP, KEEL__B_PRIVATE_TMP,
	KEEL__B_ACCEPT, KEEL__B_REUSE_PORT, KEEL__B_REMOVE_ON_STOP, KEEL__B_PASS_CREDENTIALS,
	KEEL__B_KEEP_ALIVE, KEEL__B_NO_DELAY, KEEL__B_FREE_BIND, KEEL__B_BROADCAST, KEEL__B_WRITABLE,
	KEEL__B_PERSISTENT, KEEL__B_WAKE_SYSTEM, KEEL__B_REMAIN_AFTER_ELAPSE,
	KEEL__B_ON_CLOCK_CHANGE, KEEL__B_ON_TIMEZONE_CHANGE, KEEL__B_FIXED_RANDOM_DELAY,
};

/* Freeing pieces of the model (unit.c). */
void keel__exec_cmd_free_list(struct keel_exec_cmd *c);
void keel__timer_values_clear(struct keel_pool *p, struct keel_timer *t);
void keel__listen_clear(struct keel_pool *p, struct keel_socket *s);
/* Add an X- entry (unit.c). */
int keel__unit_add_xentry(struct keel_unit *u, const char *section, const char *key, const char *value);
/* Replace or append NAME=value in a pool vector. */
int keel__env_set(struct keel_pool *p, const char ***env, const char *assignment);
