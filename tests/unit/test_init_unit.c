/* The typed unit model (lib/init/unit*.c): every supported option lands in its field with
 * systemd's value syntax, bad values are reported in systemd's words, and the load-time checks
 * and implicit dependencies are systemd's. Units are parsed from text through the loader. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>

#include "base/mem.h"
#include "init/load.h"
#include "init/unit-internal.h"
#include "init/unit.h"
#include "test_init_util.h"

static struct keel_host_info host = {
	.hostname = "node1.example.com", .machine_id = "0123456789abcdef0123456789abcdef",
	.boot_id = "fedcba9876543210fedcba9876543210", .kernel_release = "6.1.0-test",
	.architecture = "x86-64", .os_id = "debian", .os_version_id = "12",
	.user_name = "root", .user_home = "/root", .user_shell = "/bin/sh", .group_name = "root",
};

struct fixture {
	struct keel_loader *l;
	struct keel_unit *u;
	struct diag_log log;
};

static int setup(void **state)
{
	struct fixture *f = keel_calloc(1, sizeof(*f));
	static const char *const none[] = {"/nonexistent-keel-test-dir", NULL};
	struct keel_loader_config cfg = {.search_path = none, .host = &host, .sink = {diag_collect, &f->log}};
	assert_int_equal(keel_loader_new(&cfg, &f->l), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	keel_unit_free(f->u);
	keel_loader_free(f->l);
	keel_free(f);
	return 0;
}

/* Load text as unit `name`; the unit goes to f->u (the previous one is freed). */
static struct keel_unit *load(struct fixture *f, const char *name, const char *text)
{
	keel_unit_free(f->u);
	f->u = NULL;
	memset(&f->log, 0, sizeof(f->log));
	assert_int_equal(keel_loader_load_text(f->l, name, "/test/unit", text, strlen(text), &f->u), 0);
	return f->u;
}

static const struct keel_dep *dep(const struct keel_unit *u, enum keel_dep_kind k, const char *name)
{
	for (uint32_t i = 0; i < u->n_deps; i++)
		if (u->deps[i].kind == k && strcmp(u->deps[i].name, name) == 0)
			return &u->deps[i];
	return NULL;
}

static void unit_service_defaults_are_systemds(void **state)
{
	struct fixture *f = *state;
	struct keel_unit *u = load(f, "a.service", "[Service]\nExecStart=/bin/true\n");
	assert_int_equal(u->load_state, KEEL_LOAD_LOADED);
	const struct keel_service *s = keel_unit_service(u);
	assert_int_equal(s->type, KEEL_SERVICE_SIMPLE);
	assert_int_equal(s->restart, KEEL_RESTART_NO);
	assert_int_equal(s->restart_usec, 100000);
	assert_int_equal(s->timeout_start_usec, 90 * KEEL_USEC_PER_SEC);
	assert_int_equal(s->timeout_stop_usec, 90 * KEEL_USEC_PER_SEC);
	assert_int_equal(s->timeout_abort_usec, 90 * KEEL_USEC_PER_SEC);
	assert_int_equal(s->kill.kill_mode, KEEL_KILL_CONTROL_GROUP);
	assert_int_equal(s->kill.kill_signal, SIGTERM);
	assert_true(s->kill.send_sigkill);
	assert_int_equal(s->exec_ctx.umask, 0022);
	assert_int_equal(s->exec_ctx.std_output, KEEL_OUTPUT_JOURNAL);
	assert_int_equal(s->exec_ctx.std_error, KEEL_OUTPUT_INHERIT);
	assert_int_equal(s->notify_access, KEEL_NOTIFY_NONE);
	assert_true(s->cgroup.cpu_quota_per_sec_usec == KEEL_USEC_INFINITY);
	assert_int_equal(s->cgroup.tasks_max.kind, KEEL_LIMIT_UNSET);
	assert_true(u->default_dependencies);
	assert_int_equal(u->start_limit_burst, 5);
	assert_int_equal(u->start_limit_interval_usec, 10 * KEEL_USEC_PER_SEC);
	assert_string_equal(u->fragment_path, "/test/unit");
	/* no ExecStart and no Type: oneshot, whose start timeout is off */
	u = load(f, "b.service", "[Service]\nExecStop=/bin/true\nRemainAfterExit=yes\n");
	assert_int_equal(u->load_state, KEEL_LOAD_LOADED);
	assert_int_equal(keel_unit_service(u)->type, KEEL_SERVICE_ONESHOT);
	assert_true(keel_unit_service(u)->timeout_start_usec == KEEL_USEC_INFINITY);
	/* notify services get NotifyAccess=main */
	u = load(f, "c.service", "[Service]\nType=notify\nExecStart=/bin/true\n");
	assert_int_equal(keel_unit_service(u)->notify_access, KEEL_NOTIFY_MAIN);
}

static void unit_section_options(void **state)
{
	struct fixture *f = *state;
	struct keel_unit *u = load(f, "x@inst.service",
		"[Unit]\n"
		"Description=Unit %n on %H (%i)\n"
		"Documentation=man:foo(8) https://example.com bogus\n"
		"Requires=a.service b.service\nWants=c.service\nBindTo=d.service\nPartOf=e.target\n"
		"Conflicts=f.service\nBefore=g.service\nAfter=h.service a.service\nOnFailure=fail@%i.service\n"
		"Requisite=r.service\nWants=tmpl@.service\nAfter=x@inst.service\n"
		"DefaultDependencies=no\nRefuseManualStart=yes\nRefuseManualStop=on\n"
		"StartLimitIntervalSec=1min\nStartLimitBurst=3\nJobTimeoutSec=0\n"
		"SuccessAction=reboot-force\nFailureActionExitStatus=7\nOnFailureJobMode=isolate\n"
		"ConditionPathExists=|!/etc/x\nAssertUser=root\nConditionHost=%H\n"
		"RequiresMountsFor=/var/lib /srv\n"
		"[Service]\nExecStart=/bin/true\n");
	assert_int_equal(u->load_state, KEEL_LOAD_LOADED);
	assert_string_equal(u->description, "Unit x@inst.service on node1.example.com (inst)");
	assert_int_equal(keel_pool_strv_len(u->documentation), 2);
	assert_true(diag_has(&f->log, "/test/unit:3: Invalid URL, ignoring: bogus"));
	assert_non_null(dep(u, KEEL_DEP_REQUIRES, "a.service"));
	assert_non_null(dep(u, KEEL_DEP_REQUIRES, "b.service"));
	assert_non_null(dep(u, KEEL_DEP_WANTS, "c.service"));
	assert_non_null(dep(u, KEEL_DEP_BINDS_TO, "d.service"));
	assert_non_null(dep(u, KEEL_DEP_PART_OF, "e.target"));
	assert_non_null(dep(u, KEEL_DEP_CONFLICTS, "f.service"));
	assert_non_null(dep(u, KEEL_DEP_BEFORE, "g.service"));
	assert_non_null(dep(u, KEEL_DEP_AFTER, "h.service"));
	assert_non_null(dep(u, KEEL_DEP_ON_FAILURE, "fail@inst.service"));
	assert_non_null(dep(u, KEEL_DEP_REQUISITE, "r.service"));
	assert_non_null(dep(u, KEEL_DEP_WANTS, "tmpl@inst.service")); /* template gets the instance */
	assert_null(dep(u, KEEL_DEP_AFTER, "x@inst.service"));        /* itself: dropped */
	assert_true(diag_has(&f->log, "x@inst.service: Dependency After=x@inst.service is dropped."));
	assert_int_equal(dep(u, KEEL_DEP_AFTER, "a.service")->origin, KEEL_DEP_FROM_FILE);
	assert_false(u->default_dependencies);
	assert_null(dep(u, KEEL_DEP_REQUIRES, "sysinit.target")); /* no default deps */
	assert_true(u->refuse_manual_start && u->refuse_manual_stop);
	assert_int_equal(u->start_limit_interval_usec, 60 * KEEL_USEC_PER_SEC);
	assert_int_equal(u->start_limit_burst, 3);
	assert_true(u->job_timeout_usec == KEEL_USEC_INFINITY);
	assert_int_equal(u->success_action, KEEL_ACTION_REBOOT_FORCE);
	assert_int_equal(u->failure_action_exit_status, 7);
	assert_int_equal(u->on_failure_job_mode, KEEL_JOB_ISOLATE);
	assert_int_equal(u->n_conditions, 3);
	assert_int_equal(u->conditions[0].kind, KEEL_COND_PATH_EXISTS);
	assert_int_equal(u->conditions[0].flags, KEEL_COND_NEGATE | KEEL_COND_TRIGGER);
	assert_string_equal(u->conditions[0].param, "/etc/x");
	assert_int_equal(u->conditions[1].kind, KEEL_COND_USER);
	assert_int_equal(u->conditions[1].flags, KEEL_COND_ASSERT);
	assert_string_equal(u->conditions[2].param, "node1.example.com");
	assert_int_equal(keel_pool_strv_len(u->requires_mounts_for), 2);
}

/* The settings keel-init acts on since ExecCondition=/JobRunningTimeoutSec=/JobTimeoutAction=. */
static void unit_job_timeouts_and_exec_condition(void **state)
{
	struct fixture *f = *state;
	struct keel_unit *u = load(f, "jt.service",
		"[Unit]\nJobTimeoutSec=5s\nJobRunningTimeoutSec=2min\nJobTimeoutAction=exit-force\n"
		"StopWhenUnneeded=yes\nAllowIsolate=yes\nIgnoreOnIsolate=true\nUpholds=up.service\n"
		"[Service]\nExecCondition=/bin/test -e /x\nExecCondition=-/bin/false\nExecStart=/bin/true\n");
	assert_int_equal(u->load_state, KEEL_LOAD_LOADED);
	assert_int_equal(u->job_timeout_usec, 5 * KEEL_USEC_PER_SEC);
	assert_int_equal(u->job_running_timeout_usec, 120 * KEEL_USEC_PER_SEC);
	assert_int_equal(u->job_timeout_action, KEEL_ACTION_EXIT_FORCE);
	assert_true(u->stop_when_unneeded && u->allow_isolate && u->ignore_on_isolate);
	assert_non_null(dep(u, KEEL_DEP_UPHOLDS, "up.service"));
	const struct keel_exec_cmd *c = keel_unit_service(u)->exec[KEEL_EXEC_CONDITION];
	assert_non_null(c);
	assert_string_equal(c->path, "/bin/test");
	assert_int_equal(c->argc, 3);
	assert_non_null(c->next);
	assert_int_equal(c->next->flags, KEEL_EXEC_IGNORE_FAILURE);
	assert_string_equal(keel_exec_slot_to_string(KEEL_EXEC_CONDITION), "ExecCondition");
	assert_false(diag_has(&f->log, "not supported by keel-init"));
	/* defaults, and systemd's messages for bad values */
	u = load(f, "jt2.service", "[Unit]\nJobRunningTimeoutSec=soon\nJobTimeoutAction=explode\n"
				   "[Service]\nExecCondition=\nExecStart=/bin/true\n");
	assert_true(u->job_timeout_usec == KEEL_USEC_INFINITY);
	assert_true(u->job_running_timeout_usec == KEEL_USEC_INFINITY);
	assert_int_equal(u->job_timeout_action, KEEL_ACTION_NONE);
	assert_null(keel_unit_service(u)->exec[KEEL_EXEC_CONDITION]);
	assert_true(diag_has(&f->log, "Failed to parse JobRunningTimeoutSec= parameter, ignoring: soon"));
	assert_true(diag_has(&f->log, "Failed to parse JobTimeoutAction=, ignoring: explode"));
}

static void unit_empty_condition_resets_its_kind_only(void **state)
{
	struct fixture *f = *state;
	struct keel_unit *u = load(f, "a.service",
		"[Unit]\nConditionPathExists=/a\nConditionHost=h\nAssertPathExists=/b\nConditionUser=\n"
		"ConditionFileNotEmpty=/c\n[Service]\nExecStart=/bin/true\n");
	assert_int_equal(u->n_conditions, 2);
	assert_int_equal(u->conditions[0].flags, KEEL_COND_ASSERT);
	assert_string_equal(u->conditions[1].param, "/c");
}

static void unit_exec_command_lines(void **state)
{
	struct fixture *f = *state;
	struct keel_unit *u = load(f, "a@b-c.service",
		"[Service]\nType=oneshot\n"
		"ExecStart=-@/bin/echo argv0 'quoted arg' \"x\\ty\" %i %I \\; ; /bin/true two ;\n"
		"ExecStart=:+/usr//bin/env $HOME ${X}\n"
		"ExecStartPre=!!/bin/true\nExecStartPost=!/bin/true\nExecStop=true\n"
		"ExecReload=/bin/false\nExecReload=\nExecReload=/bin/kill -HUP $MAINPID\n");
	assert_int_equal(u->load_state, KEEL_LOAD_LOADED);
	const struct keel_service *s = keel_unit_service(u);
	const struct keel_exec_cmd *c = s->exec[KEEL_EXEC_START];
	assert_non_null(c);
	assert_string_equal(c->path, "/bin/echo");
	assert_int_equal(c->flags, KEEL_EXEC_IGNORE_FAILURE);
	assert_int_equal(c->argc, 6);
	assert_string_equal(c->argv[0], "argv0");
	assert_string_equal(c->argv[1], "quoted arg");
	assert_string_equal(c->argv[2], "x\ty");
	assert_string_equal(c->argv[3], "b-c");
	assert_string_equal(c->argv[4], "b/c");
	assert_string_equal(c->argv[5], ";");
	assert_null(c->argv[6]);
	c = c->next;
	assert_string_equal(c->path, "/bin/true");
	assert_int_equal(c->argc, 2);
	c = c->next;
	assert_string_equal(c->path, "/usr/bin/env"); /* simplified; argv[0] as written */
	assert_string_equal(c->argv[0], "/usr//bin/env");
	assert_string_equal(c->argv[1], "$HOME"); /* expanded at exec time, not here */
	assert_int_equal(c->flags, KEEL_EXEC_NO_ENV_EXPAND | KEEL_EXEC_FULLY_PRIVILEGED);
	assert_null(c->next);
	assert_int_equal(s->exec[KEEL_EXEC_START_PRE]->flags, KEEL_EXEC_AMBIENT_MAGIC);
	assert_int_equal(s->exec[KEEL_EXEC_START_POST]->flags, KEEL_EXEC_NO_SETUID);
	assert_string_equal(s->exec[KEEL_EXEC_STOP]->path, "true"); /* looked up at exec time */
	assert_string_equal(s->exec[KEEL_EXEC_RELOAD]->argv[0], "/bin/kill");
	assert_null(s->exec[KEEL_EXEC_RELOAD]->next); /* the empty assignment reset the list */
	assert_int_equal(f->log.n, 0);
}

static void unit_exec_errors_follow_the_dash(void **state)
{
	struct fixture *f = *state;
	struct keel_unit *u = load(f, "a.service", "[Service]\nExecStart=/bin/\n");
	assert_int_equal(u->load_state, KEEL_LOAD_BAD_SETTING);
	assert_int_equal(u->load_error, -ENOEXEC);
	assert_true(diag_has(&f->log, "/test/unit:2: Executable path specifies a directory: /bin/"));
	assert_true(diag_has(&f->log, "a.service: Unit configuration has fatal error, unit will not be started."));
	u = load(f, "a.service", "[Service]\nExecStart=-/bin/\nExecStart=/bin/true\n");
	assert_int_equal(u->load_state, KEEL_LOAD_LOADED);
	assert_true(diag_has(&f->log, "Executable path specifies a directory, ignoring: /bin/"));
	u = load(f, "a.service", "[Service]\nExecStart=@/bin/true\n");
	assert_true(diag_has(&f->log, "Empty executable name or zeroeth argument: @/bin/true"));
	u = load(f, "a.service", "[Service]\nExecStart=/bin/true \"open\n");
	assert_int_equal(u->load_state, KEEL_LOAD_BAD_SETTING);
	assert_true(diag_has(&f->log, "Unbalanced quoting, ignoring: \"/bin/true \"open\""));
	u = load(f, "a.service", "[Service]\nExecStart=/bin/true \\q\n");
	assert_int_equal(u->load_state, KEEL_LOAD_LOADED);
	assert_true(diag_has(&f->log, "Ignoring unknown escape sequences: \"\\q\""));
	assert_string_equal(keel_unit_service(u)->exec[KEEL_EXEC_START]->argv[1], "\\q");
}

static void unit_service_options(void **state)
{
	struct fixture *f = *state;
	struct keel_unit *u = load(f, "a.service",
		"[Service]\nType=forking\nExecStart=/bin/true\nPIDFile=a.pid\nRemainAfterExit=yes\n"
		"Restart=on-abnormal\nRestartSec=1.5\nTimeoutSec=0\nTimeoutStopSec=20s\nWatchdogSec=30\n"
		"SuccessExitStatus=75 SIGUSR1 TEMPFAIL\nRestartPreventExitStatus=1\n"
		"KillMode=mixed\nKillSignal=SIGINT\nFinalKillSignal=9\nSendSIGKILL=no\nSendSIGHUP=yes\n"
		"Environment=A=1 \"B=two words\" C=3\nEnvironment=A=replaced\nEnvironmentFile=-/etc/default/%p\n"
		"User=daemon\nGroup=1000\nSupplementaryGroups=adm wheel\nSupplementaryGroups=\nSupplementaryGroups=x\n"
		"WorkingDirectory=-~\nRootDirectory=/srv/root\nUMask=0077\nNice=-5\n"
		"LimitNOFILE=1024:4096\nLimitCORE=infinity\nLimitNOFILE=2048\nLimitCPU=1h\n"
		"StandardInput=null\nStandardOutput=append:/var/log/a.log\nStandardError=fd:err\n"
		"SyslogIdentifier=ident-%N\nNotifyAccess=all\nPrivateTmp=yes\n"
		"MemoryMax=512M\nMemoryHigh=25%\nTasksMax=100\nCPUQuota=150%\nCPUWeight=200\nIOWeight=50\n"
		"Sockets=a.socket\n");
	assert_int_equal(u->load_state, KEEL_LOAD_LOADED);
	const struct keel_service *s = keel_unit_service(u);
	assert_int_equal(s->type, KEEL_SERVICE_FORKING);
	assert_string_equal(s->pid_file, "/run/a.pid");
	assert_true(s->remain_after_exit);
	assert_int_equal(s->restart, KEEL_RESTART_ON_ABNORMAL);
	assert_int_equal(s->restart_usec, 1500000);
	assert_true(s->timeout_start_usec == KEEL_USEC_INFINITY); /* TimeoutSec=0: off */
	assert_int_equal(s->timeout_stop_usec, 20 * KEEL_USEC_PER_SEC); /* set after TimeoutSec */
	assert_int_equal(s->timeout_abort_usec, 20 * KEEL_USEC_PER_SEC);
	assert_int_equal(s->watchdog_usec, 30 * KEEL_USEC_PER_SEC);
	assert_int_equal(s->notify_access, KEEL_NOTIFY_ALL);
	assert_true(keel_exit_status_set_has_status(s->success_status, 75));
	assert_true(keel_exit_status_set_has_signal(s->success_status, SIGUSR1));
	assert_false(keel_exit_status_set_has_status(s->success_status, 0));
	assert_true(keel_exit_status_set_has_status(s->restart_prevent_status, 1));
	assert_int_equal(s->kill.kill_mode, KEEL_KILL_MIXED);
	assert_int_equal(s->kill.kill_signal, SIGINT);
	assert_int_equal(s->kill.final_kill_signal, SIGKILL);
	assert_false(s->kill.send_sigkill);
	assert_true(s->kill.send_sighup);
	const struct keel_exec_ctx *e = &s->exec_ctx;
	assert_int_equal(keel_pool_strv_len(e->environment), 3);
	assert_string_equal(e->environment[0], "A=replaced");
	assert_string_equal(e->environment[1], "B=two words");
	assert_string_equal(e->environment_files[0], "-/etc/default/a");
	assert_string_equal(e->user, "daemon");
	assert_string_equal(e->group, "1000");
	assert_int_equal(keel_pool_strv_len(e->supplementary_groups), 1);
	assert_true(e->working_directory_home && e->working_directory_missing_ok);
	assert_string_equal(e->root_directory, "/srv/root");
	assert_int_equal(e->umask, 0077);
	assert_true(e->nice_set);
	assert_int_equal(e->nice, -5);
	assert_int_equal(e->n_rlimits, 3);
	assert_int_equal(e->rlimits[0].resource, RLIMIT_NOFILE);
	assert_int_equal(e->rlimits[0].soft, 2048);
	assert_int_equal(e->rlimits[0].hard, 2048);
	assert_true(e->rlimits[1].soft == KEEL_RLIMIT_INFINITY);
	assert_int_equal(e->rlimits[2].soft, 3600);
	assert_int_equal(e->std_output, KEEL_OUTPUT_FILE_APPEND);
	assert_string_equal(e->stdout_path, "/var/log/a.log");
	assert_int_equal(e->std_error, KEEL_OUTPUT_NAMED_FD);
	assert_string_equal(e->stderr_path, "err");
	assert_string_equal(e->syslog_identifier, "ident-a");
	assert_true(e->private_tmp);
	assert_int_equal(s->cgroup.memory_max.kind, KEEL_LIMIT_VALUE);
	assert_int_equal(s->cgroup.memory_max.value, 512ull << 20);
	assert_int_equal(s->cgroup.memory_high.kind, KEEL_LIMIT_PERMYRIAD);
	assert_int_equal(s->cgroup.memory_high.value, 2500);
	assert_int_equal(s->cgroup.tasks_max.value, 100);
	assert_int_equal(s->cgroup.cpu_quota_per_sec_usec, 1500000);
	assert_int_equal(s->cgroup.cpu_weight, 200);
	assert_int_equal(s->cgroup.io_weight, 50);
	assert_non_null(dep(u, KEEL_DEP_WANTS, "a.socket"));
	assert_non_null(dep(u, KEEL_DEP_AFTER, "a.socket"));
	assert_int_equal(f->log.n, 0);
}

static void unit_bad_values_are_reported_and_ignored(void **state)
{
	struct fixture *f = *state;
	struct keel_unit *u = load(f, "a.service",
		"[Service]\nExecStart=/bin/true\nRestart=sometimes\nTimeoutStartSec=5x\nNice=30\n"
		"LimitNOFILE=10:5\nMemoryMax=0\nTasksMax=1K\nCPUQuota=5\nKillSignal=TERMX\n"
		"Environment=1BAD=x\nUMask=0999\nStandardOutput=bogus\nFoo=bar\nProtectClock=yes\n");
	assert_int_equal(u->load_state, KEEL_LOAD_LOADED);
	const char *want[] = {
		"/test/unit:3: Failed to parse service restart specifier, ignoring: sometimes",
		"/test/unit:4: Failed to parse TimeoutStartSec= parameter, ignoring: 5x",
		"/test/unit:5: Nice priority out of range, ignoring: 30",
		"/test/unit:6: Soft resource limit chosen higher than hard limit, ignoring: 10:5",
		"/test/unit:7: Memory limit '0' out of range, ignoring.",
		"/test/unit:8: Invalid maximum tasks value '1K', ignoring: Invalid argument",
		"/test/unit:9: Invalid CPU quota '5', ignoring.",
		"/test/unit:10: Failed to parse signal name, ignoring: TERMX",
		"/test/unit:11: Invalid environment assignment, ignoring: 1BAD=x",
		"/test/unit:12: Failed to parse mode value, ignoring: 0999",
		"/test/unit:13: Failed to parse output specifier, ignoring: bogus",
		"/test/unit:14: Unknown key 'Foo' in section [Service], ignoring.",
		"/test/unit:15: Key 'ProtectClock' in section [Service] is not supported by keel-init, ignoring.",
	};
	assert_int_equal(f->log.n, (int)(sizeof(want) / sizeof(want[0])));
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		assert_string_equal(f->log.lines[i], want[i]);
	/* and the fields kept their defaults */
	const struct keel_service *s = keel_unit_service(u);
	assert_int_equal(s->restart, KEEL_RESTART_NO);
	assert_int_equal(s->kill.kill_signal, SIGTERM);
	assert_int_equal(s->exec_ctx.umask, 0022);
}

static void unit_fatal_settings_make_bad_setting(void **state)
{
	struct fixture *f = *state;
	const char *cases[] = {
		"[Service]\nExecStart=/bin/true\nUser=foo:bar\n",
		"[Service]\nExecStart=/bin/true\nSupplementaryGroups=ok a/b\n",
		"[Service]\nExecStart=/bin/true\nWorkingDirectory=relative\n",
		"[Service]\nExecStart=/bin/true\nRootDirectory=relative\n",
		"[Service]\nExecStart=%z\n",
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct keel_unit *u = load(f, "a.service", cases[i]);
		assert_int_equal(u->load_state, KEEL_LOAD_BAD_SETTING);
	}
	/* ... and malformed files fail to load with the errno systemd reports */
	struct keel_unit *u = load(f, "a.service", "[Service\n");
	assert_int_equal(u->load_state, KEEL_LOAD_ERROR);
	assert_int_equal(u->load_error, -EBADMSG);
	u = load(f, "a.service", "[Service]\nExecStart=/bin/true\nPIDFile=/run/../x\n");
	assert_int_equal(u->load_state, KEEL_LOAD_ERROR);
	assert_int_equal(u->load_error, -EINVAL);
}

static void unit_service_verification(void **state)
{
	struct fixture *f = *state;
	static const struct {
		const char *text, *msg;
	} cases[] = {
		{"[Service]\n", "Service has no ExecStart=, ExecStop=, or SuccessAction=. Refusing."},
		{"[Service]\nType=simple\nExecStop=/bin/true\n",
		 "Service has no ExecStart= setting, which is only allowed for Type=oneshot services. Refusing."},
		{"[Service]\nType=oneshot\nExecStop=/bin/true\n",
		 "Service has no ExecStart= and no SuccessAction= settings and does not have RemainAfterExit=yes set. Refusing."},
		{"[Service]\nExecStart=/bin/true\nExecStart=/bin/true\n",
		 "Service has more than one ExecStart= setting, which is only allowed for Type=oneshot services. Refusing."},
		{"[Service]\nType=oneshot\nExecStart=/bin/true\nRestart=always\n",
		 "Service has Restart= set to either always or on-success, which isn't allowed for Type=oneshot services. Refusing."},
		{"[Service]\nType=dbus\nExecStart=/bin/true\n",
		 "Service is of type D-Bus but no D-Bus service name has been specified. Refusing."},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct keel_unit *u = load(f, "v.service", cases[i].text);
		assert_int_equal(u->load_state, KEEL_LOAD_BAD_SETTING);
		char want[512];
		snprintf(want, sizeof(want), "v.service: %s", cases[i].msg);
		assert_string_equal(f->log.lines[0], want);
	}
	struct keel_unit *u = load(f, "v.service", "[Unit]\nSuccessAction=exit\n[Service]\nType=oneshot\n");
	assert_int_equal(u->load_state, KEEL_LOAD_LOADED);
}

static void unit_default_and_implicit_dependencies(void **state)
{
	struct fixture *f = *state;
	struct keel_unit *u = load(f, "s.service", "[Service]\nExecStart=/bin/true\n");
	assert_int_equal(dep(u, KEEL_DEP_REQUIRES, "sysinit.target")->origin, KEEL_DEP_FROM_DEFAULT);
	assert_non_null(dep(u, KEEL_DEP_AFTER, "sysinit.target"));
	assert_non_null(dep(u, KEEL_DEP_AFTER, "basic.target"));
	assert_null(dep(u, KEEL_DEP_REQUIRES, "basic.target"));
	assert_non_null(dep(u, KEEL_DEP_CONFLICTS, "shutdown.target"));
	assert_non_null(dep(u, KEEL_DEP_BEFORE, "shutdown.target"));

	u = load(f, "s.socket", "[Socket]\nListenStream=80\n");
	assert_non_null(dep(u, KEEL_DEP_BEFORE, "sockets.target"));
	assert_non_null(dep(u, KEEL_DEP_REQUIRES, "sysinit.target"));
	assert_int_equal(dep(u, KEEL_DEP_TRIGGERS, "s.service")->origin, KEEL_DEP_FROM_IMPLICIT);
	assert_non_null(dep(u, KEEL_DEP_BEFORE, "s.service"));

	u = load(f, "t.timer", "[Unit]\nDefaultDependencies=no\n[Timer]\nOnCalendar=daily\nUnit=x.target\n");
	assert_non_null(dep(u, KEEL_DEP_TRIGGERS, "x.target")); /* implicit even without defaults */
	assert_null(dep(u, KEEL_DEP_AFTER, "time-sync.target"));
	u = load(f, "t.timer", "[Timer]\nOnCalendar=daily\n");
	assert_non_null(dep(u, KEEL_DEP_TRIGGERS, "t.service"));
	assert_non_null(dep(u, KEEL_DEP_BEFORE, "timers.target"));
	assert_non_null(dep(u, KEEL_DEP_AFTER, "time-sync.target"));
	assert_non_null(dep(u, KEEL_DEP_AFTER, "time-set.target"));

	u = load(f, "shutdown.target", "[Unit]\nDescription=Shutdown\n");
	assert_null(dep(u, KEEL_DEP_CONFLICTS, "shutdown.target"));

	/* a target is ordered after what it pulls in, unless that would loop */
	struct keel_unit *t = NULL, *a = NULL, *b = NULL;
	const char *tt = "[Unit]\nWants=a.service b.service\nBefore=b.service\n";
	assert_int_equal(keel_loader_load_text(f->l, "m.target", NULL, tt, strlen(tt), &t), 0);
	const char *st = "[Service]\nExecStart=/bin/true\n";
	assert_int_equal(keel_loader_load_text(f->l, "a.service", NULL, st, strlen(st), &a), 0);
	assert_int_equal(keel_loader_load_text(f->l, "b.service", NULL, st, strlen(st), &b), 0);
	assert_true(keel_target_orders_after(t, a));
	assert_false(keel_target_orders_after(t, b));
	a->default_dependencies = false;
	assert_false(keel_target_orders_after(t, a));
	keel_unit_free(t);
	keel_unit_free(a);
	keel_unit_free(b);
}

static void unit_socket_options(void **state)
{
	struct fixture *f = *state;
	struct keel_unit *u = load(f, "web.socket",
		"[Socket]\nListenStream=8080\nListenStream=127.0.0.1:81\nListenStream=[::1]:82\n"
		"ListenDatagram=/run/%p.dgram\nListenSequentialPacket=@seq\nListenFIFO=/run/fifo\n"
		"ListenNetlink=kobject-uevent 1\nSocketMode=0600\nDirectoryMode=0700\nBacklog=16\n"
		"BindIPv6Only=ipv6-only\nReusePort=yes\nService=srv.service\nFileDescriptorName=web\n"
		"SocketUser=www\nMaxConnections=10\n");
	assert_int_equal(u->load_state, KEEL_LOAD_LOADED);
	const struct keel_socket *s = keel_unit_socket(u);
	assert_int_equal(s->n_listen, 7);
	assert_int_equal(s->listen[0].kind, KEEL_LISTEN_STREAM);
	assert_int_equal(s->listen[0].addr.kind, KEEL_SOCKADDR_PORT);
	assert_int_equal(s->listen[0].addr.port, 8080);
	assert_null(s->listen[0].path);
	assert_int_equal(s->listen[1].addr.kind, KEEL_SOCKADDR_INET);
	assert_int_equal(s->listen[2].addr.kind, KEEL_SOCKADDR_INET6);
	assert_int_equal(s->listen[3].kind, KEEL_LISTEN_DATAGRAM);
	assert_string_equal(s->listen[3].path, "/run/web.dgram");
	assert_int_equal(s->listen[4].addr.kind, KEEL_SOCKADDR_ABSTRACT);
	assert_string_equal(s->listen[4].path, "@seq");
	assert_int_equal(s->listen[5].kind, KEEL_LISTEN_FIFO);
	assert_int_equal(s->listen[6].netlink_family, 15);
	assert_int_equal(s->listen[6].netlink_group, 1);
	assert_int_equal(s->socket_mode, 0600);
	assert_int_equal(s->directory_mode, 0700);
	assert_int_equal(s->backlog, 16);
	assert_int_equal(s->bind_ipv6_only, KEEL_BIND_IPV6_ONLY);
	assert_true(s->reuse_port);
	assert_string_equal(s->service, "srv.service");
	assert_string_equal(s->fd_name, "web");
	assert_string_equal(s->socket_user, "www");
	assert_int_equal(s->max_connections, 10);
	char *trig = keel_unit_triggered_name(u);
	assert_string_equal(trig, "srv.service");
	keel_free(trig);
	/* the empty assignment drops every listener */
	u = load(f, "a.socket", "[Socket]\nListenStream=80\nListenStream=\nListenStream=81\n");
	assert_int_equal(keel_unit_socket(u)->n_listen, 1);
	/* Accept=yes: no fixed service to trigger */
	u = load(f, "a.socket", "[Socket]\nListenStream=80\nAccept=yes\n");
	assert_null(keel_unit_triggered_name(u));
	assert_null(dep(u, KEEL_DEP_TRIGGERS, "a.service"));
}

static void unit_timer_options(void **state)
{
	struct fixture *f = *state;
	struct keel_unit *u = load(f, "t.timer",
		"[Timer]\nOnBootSec=5min\nOnUnitActiveSec=1h\nOnCalendar=Mon..Fri 9:30\nOnCalendar=bad\n"
		"AccuracySec=1s\nRandomizedDelaySec=30\nPersistent=true\nRemainAfterElapse=no\nUnit=job.service\n");
	assert_int_equal(u->load_state, KEEL_LOAD_LOADED);
	const struct keel_timer *t = keel_unit_timer(u);
	assert_int_equal(t->n_values, 3);
	assert_int_equal(t->values[0].base, KEEL_TIMER_BOOT);
	assert_int_equal(t->values[0].usec, 300 * KEEL_USEC_PER_SEC);
	assert_int_equal(t->values[1].base, KEEL_TIMER_UNIT_ACTIVE);
	assert_int_equal(t->values[2].base, KEEL_TIMER_CALENDAR);
	char *s;
	assert_int_equal(keel_calendar_to_string(t->values[2].calendar, &s), 0);
	assert_string_equal(s, "Mon..Fri *-*-* 09:30:00");
	keel_free(s);
	assert_true(diag_has(&f->log, "/test/unit:5: Failed to parse calendar specification, ignoring: bad"));
	assert_int_equal(t->accuracy_usec, KEEL_USEC_PER_SEC);
	assert_int_equal(t->randomized_delay_usec, 30 * KEEL_USEC_PER_SEC);
	assert_true(t->persistent);
	assert_false(t->remain_after_elapse);
	assert_string_equal(t->unit, "job.service");
	/* OnActiveSec= empty drops all values, of every kind */
	u = load(f, "t.timer", "[Timer]\nOnBootSec=1\nOnCalendar=daily\nOnActiveSec=\n");
	assert_int_equal(u->load_state, KEEL_LOAD_BAD_SETTING);
	assert_true(diag_has(&f->log, "t.timer: Timer unit lacks value setting. Refusing."));
}

static void unit_x_sections_and_keys_are_kept(void **state)
{
	struct fixture *f = *state;
	struct keel_unit *u = load(f, "a.service",
		"[Unit]\nX-Custom=%n stays\n[Service]\nExecStart=/bin/true\n"
		"[X-Fleet]\nMachineOf=db.service\nConflicts=a*.service\nConflicts=b*.service\n");
	assert_int_equal(u->n_xentries, 4);
	assert_string_equal(u->xentries[0].section, "Unit");
	assert_string_equal(u->xentries[0].key, "X-Custom");
	assert_string_equal(u->xentries[0].value, "%n stays"); /* verbatim */
	assert_string_equal(u->xentries[1].section, "X-Fleet");
	assert_string_equal(u->xentries[3].value, "b*.service");
	assert_int_equal(f->log.n, 0);
}

static void unit_install_section_is_parsed(void **state)
{
	struct fixture *f = *state;
	/* a template itself cannot be loaded, only its instances */
	assert_int_equal(keel_loader_load_text(f->l, "a@.service", NULL, "", 0, &f->u), -EINVAL);
	struct keel_unit *u = load(f, "a@tty1.service",
		"[Service]\nExecStart=/bin/true\n[Install]\nWantedBy=multi-user.target getty.target\n"
		"RequiredBy=x.target\nAlias=b@.service\nAlso=a.socket\nDefaultInstance=tty1\n");
	assert_non_null(u->install);
	assert_int_equal(keel_pool_strv_len(u->install->wanted_by), 2);
	assert_string_equal(u->install->required_by[0], "x.target");
	assert_string_equal(u->install->alias[0], "b@.service");
	assert_string_equal(u->install->also[0], "a.socket");
	assert_string_equal(u->install->default_instance, "tty1");
}

static void unit_reset_restores_defaults(void **state)
{
	struct fixture *f = *state;
	struct keel_unit *u = load(f, "a.service",
		"[Unit]\nAfter=x.service\n[Service]\nExecStart=/bin/true\nRestart=always\nEnvironment=A=1\n");
	keel_unit_reset(u);
	const struct keel_service *s = keel_unit_service(u);
	assert_int_equal(u->n_deps, 0);
	assert_null(s->exec[KEEL_EXEC_START]);
	assert_int_equal(s->restart, KEEL_RESTART_NO);
	assert_null(s->exec_ctx.environment);
	assert_int_equal(s->timeout_stop_usec, 90 * KEEL_USEC_PER_SEC);
	assert_string_equal(u->id, "a.service");
}

static void unit_names_and_specifiers(void **state)
{
	assert_true(keel_unit_name_is_valid("foo.service", KEEL_NAME_PLAIN));
	assert_true(keel_unit_name_is_valid("foo@bar@baz.service", KEEL_NAME_INSTANCE));
	assert_true(keel_unit_name_is_valid("foo@.socket", KEEL_NAME_TEMPLATE));
	assert_false(keel_unit_name_is_valid("foo@.socket", KEEL_NAME_PLAIN | KEEL_NAME_INSTANCE));
	assert_false(keel_unit_name_is_valid("@foo.service", KEEL_NAME_ANY));
	assert_false(keel_unit_name_is_valid("foo.bar", KEEL_NAME_ANY));
	assert_false(keel_unit_name_is_valid("fo!o.service", KEEL_NAME_ANY));
	assert_true(keel_unit_name_is_valid("dev-sda1.device", KEEL_NAME_ANY));
	assert_false(keel_unit_type_supported(KEEL_UNIT_MOUNT));
	char *s;
	assert_int_equal(keel_unit_name_escape("/dev/sda-1 x", &s), 0);
	assert_string_equal(s, "-dev-sda\\x2d1\\x20x");
	keel_free(s);
	assert_int_equal(keel_unit_name_path_unescape("dev-sda\\x2d1", &s), 0);
	assert_string_equal(s, "/dev/sda-1");
	keel_free(s);
	assert_int_equal(keel_unit_name_path_unescape("-", &s), 0);
	assert_string_equal(s, "/");
	keel_free(s);
	assert_int_equal(keel_unit_name_path_unescape("a-", &s), -EINVAL);

	struct keel_spec_ctx ctx = {.unit_id = "getty@tty-1.service", .host = &host, .system = true};
	static const struct {
		const char *in, *out;
	} full[] = {
		{"%n|%N|%p|%i|%I|%j|%J|%f", "getty@tty-1.service|getty@tty-1|getty|tty-1|tty/1|getty|getty|/tty/1"},
		{"%H|%l|%m|%b|%v|%a|%o|%w", "node1.example.com|node1|0123456789abcdef0123456789abcdef|fedcba9876543210fedcba9876543210|6.1.0-test|x86-64|debian|12"},
		{"%t|%S|%C|%L|%E|%T|%V|%h|%s|%u|%U|%g|%G", "/run|/var/lib|/var/cache|/var/log|/etc|/tmp|/var/tmp|/root|/bin/sh|root|0|root|0"},
		{"100%%|%-|%", "100%|%-|%"},
	};
	for (size_t i = 0; i < sizeof(full) / sizeof(full[0]); i++) {
		assert_int_equal(keel_specifier_expand(&ctx, KEEL_SPEC_FULL, full[i].in, SIZE_MAX, &s, NULL), 0);
		assert_string_equal(s, full[i].out);
		keel_free(s);
	}
	assert_int_equal(keel_specifier_expand(&ctx, KEEL_SPEC_FULL, "%z", SIZE_MAX, &s, NULL), -EBADSLT);
	assert_int_equal(keel_specifier_expand(&ctx, KEEL_SPEC_FULL, "%9", SIZE_MAX, &s, NULL), -EBADSLT);
	/* names only know the name-safe specifiers */
	assert_int_equal(keel_specifier_expand(&ctx, KEEL_SPEC_UNIT_NAME, "%I", SIZE_MAX, &s, NULL), -EBADSLT);
	assert_int_equal(keel_specifier_expand(&ctx, KEEL_SPEC_FULL, "%n%n%n", 20, &s, NULL), -ENAMETOOLONG);
	bool dep = false;
	assert_int_equal(keel_specifier_expand(&ctx, KEEL_SPEC_FULL, "%c", SIZE_MAX, &s, &dep), 0);
	assert_true(dep);
	keel_free(s);
	struct keel_host_info nohost = {0};
	ctx.host = &nohost;
	assert_int_equal(keel_specifier_expand(&ctx, KEEL_SPEC_FULL, "%m", SIZE_MAX, &s, NULL), -ENOMEDIUM);
	assert_int_equal(keel_specifier_expand(&ctx, KEEL_SPEC_FULL, "[%o]", SIZE_MAX, &s, NULL), 0);
	assert_string_equal(s, "[]");
	keel_free(s);
}

static void unit_pool_shares_strings(void **state)
{
	struct keel_pool *p;
	assert_int_equal(keel_pool_new(&p), 0);
	const char *a = keel_pool_intern(p, "network.target");
	const char *b = keel_pool_intern_n(p, "network.targetXYZ", 14);
	assert_ptr_equal(a, b);
	struct keel_pool_stats st;
	keel_pool_stats(p, &st);
	assert_int_equal(st.strings, 1);
	assert_int_equal(st.refs, 2);
	keel_pool_unref(p, a);
	keel_pool_unref(p, b);
	keel_pool_stats(p, &st);
	assert_int_equal(st.strings, 0);
	/* many strings, many drops: the table keeps working through growth and tombstones */
	char name[32];
	const char *keep[2000];
	for (int i = 0; i < 2000; i++) {
		snprintf(name, sizeof(name), "u%d.service", i);
		keep[i] = keel_pool_intern(p, name);
	}
	for (int i = 0; i < 2000; i += 2)
		keel_pool_unref(p, keep[i]);
	for (int i = 1; i < 2000; i += 2) {
		snprintf(name, sizeof(name), "u%d.service", i);
		const char *again = keel_pool_intern(p, name);
		assert_ptr_equal(again, keep[i]);
		keel_pool_unref(p, again);
	}
	keel_pool_stats(p, &st);
	assert_int_equal(st.strings, 1000);
	keel_pool_free(p);
}

/* Every key keel-init parses is a key systemd 252 accepts (no typo can hide a setting), and
 * the table has no duplicate. */
static void unit_table_keys_are_systemds(void **state)
{
	const struct keel__option *opts;
	size_t n = keel__options(&opts);
	assert_true(n > 150);
	for (size_t i = 0; i < n; i++) {
		if (!keel__systemd_knows_key(opts[i].section, opts[i].key))
			fail_msg("%s.%s is not a systemd key", opts[i].section, opts[i].key);
		assert_ptr_equal(keel__option_find(opts[i].section, opts[i].key), &opts[i]);
		for (size_t j = i + 1; j < n; j++)
			if (strcmp(opts[i].section, opts[j].section) == 0 && strcmp(opts[i].key, opts[j].key) == 0)
				fail_msg("%s.%s twice", opts[i].section, opts[i].key);
	}
	assert_null(keel__option_find("Service", "NoSuchKey"));
	assert_false(keel__systemd_knows_key("Service", "NoSuchKey"));
	assert_true(keel__systemd_knows_key("Service", "ProtectSystem"));
	/* every condition kind has both of its keys where systemd has them */
	char key[64];
	for (int k = 0; k < KEEL_COND_KIND_MAX; k++) {
		const char *kind = keel_condition_kind_to_string((enum keel_condition_kind)k);
		snprintf(key, sizeof(key), "Condition%s", kind);
		assert_non_null(keel__option_find("Unit", key));
		snprintf(key, sizeof(key), "Assert%s", kind);
		assert_true((keel__option_find("Unit", key) != NULL) == keel__systemd_knows_key("Unit", key));
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(unit_service_defaults_are_systemds, setup, teardown),
		cmocka_unit_test_setup_teardown(unit_section_options, setup, teardown),
		cmocka_unit_test_setup_teardown(unit_job_timeouts_and_exec_condition, setup, teardown),
		cmocka_unit_test_setup_teardown(unit_empty_condition_resets_its_kind_only, setup, teardown),
		cmocka_unit_test_setup_teardown(unit_exec_command_lines, setup, teardown),
		cmocka_unit_test_setup_teardown(unit_exec_errors_follow_the_dash, setup, teardown),
		cmocka_unit_test_setup_teardown(unit_service_options, setup, teardown),
		cmocka_unit_test_setup_teardown(unit_bad_values_are_reported_and_ignored, setup, teardown),
		cmocka_unit_test_setup_teardown(unit_fatal_settings_make_bad_setting, setup, teardown),
		cmocka_unit_test_setup_teardown(unit_service_verification, setup, teardown),
		cmocka_unit_test_setup_teardown(unit_default_and_implicit_dependencies, setup, teardown),
		cmocka_unit_test_setup_teardown(unit_socket_options, setup, teardown),
		cmocka_unit_test_setup_teardown(unit_timer_options, setup, teardown),
		cmocka_unit_test_setup_teardown(unit_x_sections_and_keys_are_kept, setup, teardown),
		cmocka_unit_test_setup_teardown(unit_install_section_is_parsed, setup, teardown),
		cmocka_unit_test_setup_teardown(unit_reset_restores_defaults, setup, teardown),
		cmocka_unit_test(unit_names_and_specifiers),
		cmocka_unit_test(unit_pool_shares_strings),
		cmocka_unit_test(unit_table_keys_are_systemds),
	};
	return cmocka_run_group_tests_name("init/unit", tests, NULL, NULL);
}
