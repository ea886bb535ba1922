/* The table of every setting keel-init parses: section, key, parser, the parser's ltype, and
 * where the value goes. Everything systemd accepts beyond this is listed in known_keys.c. */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "init/unit-internal.h"

#define U(key, fn, lt, field) {"Unit", key, fn, lt, KEEL__BASE_UNIT, offsetof(struct keel_unit, field)}
#define UB(key, lt) {"Unit", key, keel__parse_bool, lt, KEEL__BASE_UNIT, 0}
#define DEP(key, kind) {"Unit", key, keel__parse_deps, kind, KEEL__BASE_UNIT, 0}
#define COND(name, kind) \
	{"Unit", "Condition" name, keel__parse_condition, kind, KEEL__BASE_UNIT, 0}, \
	{"Unit", "Assert" name, keel__parse_condition, (kind) | 0x100, KEEL__BASE_UNIT, 0}
#define SV(key, fn, lt, field) {"Service", key, fn, lt, KEEL__BASE_TYPE, offsetof(struct keel_service, field)}
#define SVB(key, lt) {"Service", key, keel__parse_bool, lt, KEEL__BASE_TYPE, 0}
#define SVS(key, fn, lt) {"Service", key, fn, lt, KEEL__BASE_TYPE, 0} /* the whole struct */
#define SVU(key, fn, lt, field) {"Service", key, fn, lt, KEEL__BASE_UNIT, offsetof(struct keel_unit, field)}
#define SB(key, lt) {"Service", key, keel__parse_sandbox, lt, KEEL__BASE_TYPE, offsetof(struct keel_service, exec_ctx)}
#define LIM(name, res) {"Service", "Limit" name, keel__parse_rlimit, res, KEEL__BASE_TYPE, offsetof(struct keel_service, exec_ctx)}
#define SO(key, fn, lt, field) {"Socket", key, fn, lt, KEEL__BASE_TYPE, offsetof(struct keel_socket, field)}
#define SOS(key, fn, lt) {"Socket", key, fn, lt, KEEL__BASE_TYPE, 0}
#define SOB(key, lt) {"Socket", key, keel__parse_bool, lt, KEEL__BASE_TYPE, 0}
#define TM(key, fn, lt, field) {"Timer", key, fn, lt, KEEL__BASE_TYPE, offsetof(struct keel_timer, field)}
#define TMS(key, fn, lt) {"Timer", key, fn, lt, KEEL__BASE_TYPE, 0}
#define TMB(key, lt) {"Timer", key, keel__parse_bool, lt, KEEL__BASE_TYPE, 0}
#define IN(key, fn, lt, field) {"Install", key, fn, lt, KEEL__BASE_INSTALL, offsetof(struct keel_install, field)}

static const struct keel__option options[] = {
	U("Description", keel__parse_string_printf, 0, description),
	U("Documentation", keel__parse_documentation, 0, documentation),
	DEP("Requires", KEEL_DEP_REQUIRES),
	DEP("Requisite", KEEL_DEP_REQUISITE),
	DEP("Wants", KEEL_DEP_WANTS),
	DEP("BindsTo", KEEL_DEP_BINDS_TO),
	DEP("BindTo", KEEL_DEP_BINDS_TO),
	DEP("PartOf", KEEL_DEP_PART_OF),
	DEP("Upholds", KEEL_DEP_UPHOLDS),
	DEP("Conflicts", KEEL_DEP_CONFLICTS),
	DEP("Before", KEEL_DEP_BEFORE),
	DEP("After", KEEL_DEP_AFTER),
	DEP("OnFailure", KEEL_DEP_ON_FAILURE),
	DEP("OnSuccess", KEEL_DEP_ON_SUCCESS),
	DEP("PropagatesReloadTo", KEEL_DEP_PROPAGATES_RELOAD_TO),
	DEP("PropagateReloadTo", KEEL_DEP_PROPAGATES_RELOAD_TO),
	DEP("ReloadPropagatedFrom", KEEL_DEP_RELOAD_PROPAGATED_FROM),
	DEP("PropagateReloadFrom", KEEL_DEP_RELOAD_PROPAGATED_FROM),
	DEP("PropagatesStopTo", KEEL_DEP_PROPAGATES_STOP_TO),
	DEP("StopPropagatedFrom", KEEL_DEP_STOP_PROPAGATED_FROM),
	DEP("JoinsNamespaceOf", KEEL_DEP_JOINS_NAMESPACE_OF),
	UB("DefaultDependencies", KEEL__B_DEFAULT_DEPENDENCIES),
	UB("RefuseManualStart", KEEL__B_REFUSE_MANUAL_START),
	UB("RefuseManualStop", KEEL__B_REFUSE_MANUAL_STOP),
	UB("StopWhenUnneeded", KEEL__B_STOP_WHEN_UNNEEDED),
	UB("AllowIsolate", KEEL__B_ALLOW_ISOLATE),
	UB("IgnoreOnIsolate", KEEL__B_IGNORE_ON_ISOLATE),
	U("StartLimitIntervalSec", keel__parse_sec, 0, start_limit_interval_usec),
	U("StartLimitInterval", keel__parse_sec, 0, start_limit_interval_usec),
	U("StartLimitBurst", keel__parse_unsigned, 0, start_limit_burst),
	U("JobTimeoutSec", keel__parse_job_timeout, 0, job_timeout_usec),
	U("JobRunningTimeoutSec", keel__parse_job_timeout, 0, job_running_timeout_usec),
	U("JobTimeoutAction", keel__parse_emergency_action, 0, job_timeout_action),
	U("SuccessAction", keel__parse_emergency_action, 0, success_action),
	U("FailureAction", keel__parse_emergency_action, 0, failure_action),
	U("SuccessActionExitStatus", keel__parse_exit_code, 0, success_action_exit_status),
	U("FailureActionExitStatus", keel__parse_exit_code, 0, failure_action_exit_status),
	U("OnFailureJobMode", keel__parse_job_mode, 0, on_failure_job_mode),
	U("RequiresMountsFor", keel__parse_path_strv, 0, requires_mounts_for),
	COND("Architecture", KEEL_COND_ARCHITECTURE),
	/* systemd 252 has ConditionFirmware= but no AssertFirmware= */
	{"Unit", "ConditionFirmware", keel__parse_condition, KEEL_COND_FIRMWARE, KEEL__BASE_UNIT, 0},
	COND("Virtualization", KEEL_COND_VIRTUALIZATION),
	COND("Host", KEEL_COND_HOST),
	COND("KernelCommandLine", KEEL_COND_KERNEL_COMMAND_LINE),
	COND("KernelVersion", KEEL_COND_KERNEL_VERSION),
	COND("Credential", KEEL_COND_CREDENTIAL),
	COND("Security", KEEL_COND_SECURITY),
	COND("Capability", KEEL_COND_CAPABILITY),
	COND("ACPower", KEEL_COND_AC_POWER),
	COND("NeedsUpdate", KEEL_COND_NEEDS_UPDATE),
	COND("FirstBoot", KEEL_COND_FIRST_BOOT),
	COND("PathExists", KEEL_COND_PATH_EXISTS),
	COND("PathExistsGlob", KEEL_COND_PATH_EXISTS_GLOB),
	COND("PathIsDirectory", KEEL_COND_PATH_IS_DIRECTORY),
	COND("PathIsSymbolicLink", KEEL_COND_PATH_IS_SYMBOLIC_LINK),
	COND("PathIsMountPoint", KEEL_COND_PATH_IS_MOUNT_POINT),
	COND("PathIsReadWrite", KEEL_COND_PATH_IS_READ_WRITE),
	COND("PathIsEncrypted", KEEL_COND_PATH_IS_ENCRYPTED),
	COND("DirectoryNotEmpty", KEEL_COND_DIRECTORY_NOT_EMPTY),
	COND("FileNotEmpty", KEEL_COND_FILE_NOT_EMPTY),
	COND("FileIsExecutable", KEEL_COND_FILE_IS_EXECUTABLE),
	COND("User", KEEL_COND_USER),
	COND("Group", KEEL_COND_GROUP),
	COND("ControlGroupController", KEEL_COND_CONTROL_GROUP_CONTROLLER),
	COND("CPUs", KEEL_COND_CPUS),
	COND("Memory", KEEL_COND_MEMORY),
	COND("Environment", KEEL_COND_ENVIRONMENT),
	COND("CPUFeature", KEEL_COND_CPU_FEATURE),
	COND("OSRelease", KEEL_COND_OS_RELEASE),
	COND("MemoryPressure", KEEL_COND_MEMORY_PRESSURE),
	COND("CPUPressure", KEEL_COND_CPU_PRESSURE),
	COND("IOPressure", KEEL_COND_IO_PRESSURE),

	SVS("Type", keel__parse_service_type, 0),
	SV("ExecCondition", keel__parse_exec, KEEL_EXEC_CONDITION, exec[KEEL_EXEC_CONDITION]),
	SV("ExecStartPre", keel__parse_exec, KEEL_EXEC_START_PRE, exec[KEEL_EXEC_START_PRE]),
	SV("ExecStart", keel__parse_exec, KEEL_EXEC_START, exec[KEEL_EXEC_START]),
	SV("ExecStartPost", keel__parse_exec, KEEL_EXEC_START_POST, exec[KEEL_EXEC_START_POST]),
	SV("ExecReload", keel__parse_exec, KEEL_EXEC_RELOAD, exec[KEEL_EXEC_RELOAD]),
	SV("ExecStop", keel__parse_exec, KEEL_EXEC_STOP, exec[KEEL_EXEC_STOP]),
	SV("ExecStopPost", keel__parse_exec, KEEL_EXEC_STOP_POST, exec[KEEL_EXEC_STOP_POST]),
	SVB("RemainAfterExit", KEEL__B_REMAIN_AFTER_EXIT),
	SVB("GuessMainPID", KEEL__B_GUESS_MAIN_PID),
	SV("PIDFile", keel__parse_pid_file, 0, pid_file),
	SV("BusName", keel__parse_bus_name, 0, bus_name),
	SVS("Sockets", keel__parse_service_sockets, 0),
	SVS("Restart", keel__parse_restart, 0),
	SV("RestartSec", keel__parse_sec, 0, restart_usec),
	SVS("TimeoutSec", keel__parse_service_timeout, 0),
	SVS("TimeoutStartSec", keel__parse_service_timeout, 1),
	SVS("TimeoutStopSec", keel__parse_service_timeout, 2),
	SVS("TimeoutAbortSec", keel__parse_service_timeout, 3),
	SV("WatchdogSec", keel__parse_sec, 0, watchdog_usec),
	SV("RuntimeMaxSec", keel__parse_sec, 0, runtime_max_usec),
	SV("SuccessExitStatus", keel__parse_exit_status, 0, success_status),
	SV("RestartPreventExitStatus", keel__parse_exit_status, 0, restart_prevent_status),
	SV("RestartForceExitStatus", keel__parse_exit_status, 0, restart_force_status),
	SVS("NotifyAccess", keel__parse_notify_access, 0),
	SVU("StartLimitInterval", keel__parse_sec, 0, start_limit_interval_usec),
	SVU("StartLimitBurst", keel__parse_unsigned, 0, start_limit_burst),
	SV("KillMode", keel__parse_kill_mode, 0, kill),
	SV("KillSignal", keel__parse_signal, 0, kill.kill_signal),
	SV("FinalKillSignal", keel__parse_signal, 0, kill.final_kill_signal),
	SV("WatchdogSignal", keel__parse_signal, 0, kill.watchdog_signal),
	SVB("SendSIGKILL", KEEL__B_SEND_SIGKILL),
	SVB("SendSIGHUP", KEEL__B_SEND_SIGHUP),
	SV("Environment", keel__parse_environ, 0, exec_ctx.environment),
	SV("EnvironmentFile", keel__parse_env_file, 0, exec_ctx.environment_files),
	SV("User", keel__parse_user_group, 0, exec_ctx.user),
	SV("Group", keel__parse_user_group, 0, exec_ctx.group),
	SV("SupplementaryGroups", keel__parse_supplementary_groups, 0, exec_ctx.supplementary_groups),
	SV("WorkingDirectory", keel__parse_working_directory, 0, exec_ctx),
	SV("RootDirectory", keel__parse_unit_path, 1, exec_ctx.root_directory),
	SVB("RootDirectoryStartOnly", KEEL__B_ROOT_DIRECTORY_START_ONLY),
	SV("UMask", keel__parse_umask, 0, exec_ctx.umask),
	SV("Nice", keel__parse_nice, 0, exec_ctx),
	LIM("CPU", RLIMIT_CPU), LIM("FSIZE", RLIMIT_FSIZE), LIM("DATA", RLIMIT_DATA),
	LIM("STACK", RLIMIT_STACK), LIM("CORE", RLIMIT_CORE), LIM("RSS", RLIMIT_RSS),
	LIM("NOFILE", RLIMIT_NOFILE), LIM("AS", RLIMIT_AS), LIM("NPROC", RLIMIT_NPROC),
	LIM("MEMLOCK", RLIMIT_MEMLOCK), LIM("LOCKS", RLIMIT_LOCKS),
	LIM("SIGPENDING", RLIMIT_SIGPENDING), LIM("MSGQUEUE", RLIMIT_MSGQUEUE),
	LIM("NICE", RLIMIT_NICE), LIM("RTPRIO", RLIMIT_RTPRIO), LIM("RTTIME", RLIMIT_RTTIME),
	SV("StandardInput", keel__parse_input, 0, exec_ctx),
	SV("StandardOutput", keel__parse_output, 1, exec_ctx),
	SV("StandardError", keel__parse_output, 2, exec_ctx),
	SV("SyslogIdentifier", keel__parse_string_printf, 0, exec_ctx.syslog_identifier),
	SVB("PrivateTmp", KEEL__B_PRIVATE_TMP),
	/* sandboxing and directories (unit_parse_sandbox.c) */
	SB("NoNewPrivileges", KEEL__SB_NO_NEW_PRIVILEGES),
	SB("CapabilityBoundingSet", KEEL__SB_CAP_BOUNDING),
	SB("AmbientCapabilities", KEEL__SB_CAP_AMBIENT),
	SB("SecureBits", KEEL__SB_SECURE_BITS),
	SB("ProtectSystem", KEEL__SB_PROTECT_SYSTEM),
	SB("ProtectHome", KEEL__SB_PROTECT_HOME),
	SB("ReadOnlyPaths", KEEL__SB_READ_ONLY_PATHS),
	SB("ReadOnlyDirectories", KEEL__SB_READ_ONLY_PATHS),
	SB("ReadWritePaths", KEEL__SB_READ_WRITE_PATHS),
	SB("ReadWriteDirectories", KEEL__SB_READ_WRITE_PATHS),
	SB("InaccessiblePaths", KEEL__SB_INACCESSIBLE_PATHS),
	SB("InaccessibleDirectories", KEEL__SB_INACCESSIBLE_PATHS),
	SB("TemporaryFileSystem", KEEL__SB_TEMPORARY_FS),
	SB("BindPaths", KEEL__SB_BIND_PATHS),
	SB("BindReadOnlyPaths", KEEL__SB_BIND_RO_PATHS),
	SB("PrivateDevices", KEEL__SB_PRIVATE_DEVICES),
	SB("PrivateNetwork", KEEL__SB_PRIVATE_NETWORK),
	SB("ProtectKernelTunables", KEEL__SB_PROTECT_KERNEL_TUNABLES),
	SB("ProtectKernelModules", KEEL__SB_PROTECT_KERNEL_MODULES),
	SB("ProtectControlGroups", KEEL__SB_PROTECT_CONTROL_GROUPS),
	SB("SystemCallFilter", KEEL__SB_SYSCALL_FILTER),
	SB("SystemCallErrorNumber", KEEL__SB_SYSCALL_ERRNO),
	SB("SystemCallArchitectures", KEEL__SB_SYSCALL_ARCHS),
	SB("RuntimeDirectory", KEEL__SB_RUNTIME_DIR),
	SB("StateDirectory", KEEL__SB_STATE_DIR),
	SB("CacheDirectory", KEEL__SB_CACHE_DIR),
	SB("LogsDirectory", KEEL__SB_LOGS_DIR),
	SB("RuntimeDirectoryMode", KEEL__SB_RUNTIME_DIR_MODE),
	SB("StateDirectoryMode", KEEL__SB_STATE_DIR_MODE),
	SB("CacheDirectoryMode", KEEL__SB_CACHE_DIR_MODE),
	SB("LogsDirectoryMode", KEEL__SB_LOGS_DIR_MODE),
	SB("RuntimeDirectoryPreserve", KEEL__SB_RUNTIME_DIR_PRESERVE),
	SV("MemoryMax", keel__parse_memory_limit, 0, cgroup.memory_max),
	SV("MemoryHigh", keel__parse_memory_limit, 0, cgroup.memory_high),
	SV("MemoryLimit", keel__parse_memory_limit, 0, cgroup.memory_limit),
	SV("TasksMax", keel__parse_tasks_max, 0, cgroup.tasks_max),
	SV("CPUQuota", keel__parse_cpu_quota, 0, cgroup.cpu_quota_per_sec_usec),
	SV("CPUWeight", keel__parse_cg_weight, 0, cgroup.cpu_weight),
	SV("IOWeight", keel__parse_cg_weight, 1, cgroup.io_weight),
	SV("CPUShares", keel__parse_cg_weight, 2, cgroup.cpu_shares),
	SV("BlockIOWeight", keel__parse_cg_weight, 3, cgroup.blockio_weight),

	SOS("ListenStream", keel__parse_listen, KEEL_LISTEN_STREAM),
	SOS("ListenDatagram", keel__parse_listen, KEEL_LISTEN_DATAGRAM),
	SOS("ListenSequentialPacket", keel__parse_listen, KEEL_LISTEN_SEQPACKET),
	SOS("ListenFIFO", keel__parse_listen, KEEL_LISTEN_FIFO),
	SOS("ListenSpecial", keel__parse_listen, KEEL_LISTEN_SPECIAL),
	SOS("ListenMessageQueue", keel__parse_listen, KEEL_LISTEN_MESSAGE_QUEUE),
	SOS("ListenNetlink", keel__parse_listen, KEEL_LISTEN_NETLINK),
	SO("SocketMode", keel__parse_mode, 0, socket_mode),
	SO("DirectoryMode", keel__parse_mode, 0, directory_mode),
	SOB("Accept", KEEL__B_ACCEPT),
	SOS("Service", keel__parse_socket_service, 0),
	SO("Backlog", keel__parse_unsigned, 0, backlog),
	SO("MaxConnections", keel__parse_unsigned, 0, max_connections),
	SO("MaxConnectionsPerSource", keel__parse_unsigned, 0, max_connections_per_source),
	SOS("BindIPv6Only", keel__parse_bind_ipv6_only, 0),
	SOB("ReusePort", KEEL__B_REUSE_PORT),
	SOB("RemoveOnStop", KEEL__B_REMOVE_ON_STOP),
	SOB("PassCredentials", KEEL__B_PASS_CREDENTIALS),
	SOB("KeepAlive", KEEL__B_KEEP_ALIVE),
	SOB("NoDelay", KEEL__B_NO_DELAY),
	SOB("FreeBind", KEEL__B_FREE_BIND),
	SOB("Broadcast", KEEL__B_BROADCAST),
	SOB("Writable", KEEL__B_WRITABLE),
	SO("FileDescriptorName", keel__parse_fd_name, 0, fd_name),
	SO("SocketUser", keel__parse_user_group, 0, socket_user),
	SO("SocketGroup", keel__parse_user_group, 0, socket_group),
	SO("Symlinks", keel__parse_path_strv, 1, symlinks),

	TMS("OnActiveSec", keel__parse_timer_value, KEEL_TIMER_ACTIVE),
	TMS("OnBootSec", keel__parse_timer_value, KEEL_TIMER_BOOT),
	TMS("OnStartupSec", keel__parse_timer_value, KEEL_TIMER_STARTUP),
	TMS("OnUnitActiveSec", keel__parse_timer_value, KEEL_TIMER_UNIT_ACTIVE),
	TMS("OnUnitInactiveSec", keel__parse_timer_value, KEEL_TIMER_UNIT_INACTIVE),
	TMS("OnCalendar", keel__parse_timer_value, KEEL_TIMER_CALENDAR),
	TMB("OnClockChange", KEEL__B_ON_CLOCK_CHANGE),
	TMB("OnTimezoneChange", KEEL__B_ON_TIMEZONE_CHANGE),
	TMB("Persistent", KEEL__B_PERSISTENT),
	TMB("WakeSystem", KEEL__B_WAKE_SYSTEM),
	TMB("RemainAfterElapse", KEEL__B_REMAIN_AFTER_ELAPSE),
	TMB("FixedRandomDelay", KEEL__B_FIXED_RANDOM_DELAY),
	TM("AccuracySec", keel__parse_sec, 0, accuracy_usec),
	TM("RandomizedDelaySec", keel__parse_sec, 0, randomized_delay_usec),
	TMS("Unit", keel__parse_trigger_unit, 0),

	IN("WantedBy", keel__parse_install_strv, 0, wanted_by),
	IN("RequiredBy", keel__parse_install_strv, 0, required_by),
	IN("Alias", keel__parse_install_strv, 0, alias),
	IN("Also", keel__parse_install_strv, 1, also),
	IN("DefaultInstance", keel__parse_install_string, 0, default_instance),
};

#define N_OPTIONS (sizeof(options) / sizeof(options[0]))

/* Sorted once on first use; lib/init is used from one thread (keel-init does not start threads). */
static const struct keel__option *sorted[N_OPTIONS];
static bool sorted_ready;

static int cmp_opt(const void *a, const void *b)
{
	const struct keel__option *x = *(const struct keel__option *const *)a;
	const struct keel__option *y = *(const struct keel__option *const *)b;
	int r = strcmp(x->section, y->section);
	return r ? r : strcmp(x->key, y->key);
}

static void sort_once(void)
{
	if (sorted_ready)
		return;
	for (size_t i = 0; i < N_OPTIONS; i++)
		sorted[i] = &options[i];
	qsort(sorted, N_OPTIONS, sizeof(sorted[0]), cmp_opt);
	sorted_ready = true;
}

const struct keel__option *keel__option_find(const char *section, const char *key)
{
	sort_once();
	struct keel__option probe = {.section = section, .key = key};
	const struct keel__option *pp = &probe;
	const struct keel__option *const *hit =
		bsearch(&pp, sorted, N_OPTIONS, sizeof(sorted[0]), cmp_opt);
	return hit ? *hit : NULL;
}

size_t keel__options(const struct keel__option **ret)
{
	*ret = options;
	return N_OPTIONS;
}
