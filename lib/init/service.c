/* Services (systemd.service(5)): the state machine of service.c in systemd, with the same
 * sub-states (start-pre, start, start-post, running, exited, reload, stop, stop-sigterm,
 * stop-sigkill, stop-post, final-sigterm, final-sigkill, dead, failed, auto-restart), results
 * and log lines. */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/mem.h"
#include "base/sys.h"
#include "base/str.h"
#include "init/mgr-internal.h"
#include "init/values.h"
#include "init/words.h"

static const char *const state_names[S_MAX] = {
	"dead", "condition", "start-pre", "start", "start-post", "running", "exited", "reload", "stop",
	"stop-watchdog", "stop-sigterm", "stop-sigkill", "stop-post", "final-sigterm", "final-sigkill",
	"failed", "auto-restart",
};

static const char *svc_sub_name(int sub) { return (unsigned)sub < S_MAX ? state_names[sub] : "?"; }

static int active_of(int s)
{
	switch (s) {
	case S_DEAD: return KEEL_INACTIVE;
	case S_FAILED: return KEEL_FAILED;
	case S_RUNNING: case S_EXITED: return KEEL_ACTIVE;
	case S_RELOAD: return KEEL_RELOADING;
	case S_CONDITION: case S_START_PRE: case S_START: case S_START_POST: case S_AUTO_RESTART:
		return KEEL_ACTIVATING;
	default: return KEEL_DEACTIVATING;
	}
}

static struct keel_service *S(struct mu *mu) { return keel_unit_service(mu->u); }

static const struct keel_exec_cmd *cmd_at(struct mu *mu, int slot, unsigned idx)
{
	const struct keel_exec_cmd *c = S(mu)->exec[slot];
	while (c && idx--)
		c = c->next;
	return c;
}

static void enter_dead(struct mu *mu, int f, bool allow_restart);
static void enter_stop(struct mu *mu, int f);
static void enter_stop_post(struct mu *mu, int f);
static void enter_signal(struct mu *mu, int state, int f);
static void enter_running(struct mu *mu, int f);
static void enter_start(struct mu *mu);
static void enter_start_pre(struct mu *mu);
static void enter_start_post(struct mu *mu);

static void set_result(struct mu *mu, int f)
{
	if (mu->rt.svc.result == R_SUCCESS)
		mu->rt.svc.result = (uint8_t)f;
}

static void arm(struct mu *mu, uint64_t usec)
{
	struct svc_rt *s = &mu->rt.svc;
	s->timer_started = keel_now_mono();
	if (usec == KEEL_USEC_INFINITY || usec == 0)
		keel_ev_timer_stop(mu->m->ev, &s->timer);
	else
		(void)!keel_ev_timer_start(mu->m->ev, &s->timer, s->timer_started + usec);
}

static bool is_waiting_state(int st)
{
	return st == S_STOP_SIGTERM || st == S_STOP_SIGKILL || st == S_STOP_WATCHDOG ||
	       st == S_FINAL_SIGTERM || st == S_FINAL_SIGKILL;
}

static void set_state(struct mu *mu, int st)
{
	struct svc_rt *s = &mu->rt.svc;
	if (!(st == S_CONDITION || st == S_START_PRE || st == S_START || st == S_START_POST || st == S_RELOAD || st == S_STOP ||
	      is_waiting_state(st) || st == S_STOP_POST || st == S_AUTO_RESTART))
		keel_ev_timer_stop(mu->m->ev, &s->timer);
	if (!(st == S_START_POST || st == S_RUNNING || st == S_RELOAD || st == S_START))
		keel_ev_timer_stop(mu->m->ev, &s->wd_timer);
	mu->want_empty_check = is_waiting_state(st) || (st == S_RUNNING && s->main_pid == 0);
	if (mu->want_empty_check)
		mu->m->cg_check_needed = true;
	unit_set_state(mu, active_of(st), st);
}

static void start_watchdog(struct mu *mu)
{
	struct svc_rt *s = &mu->rt.svc;
	uint64_t usec = s->wd_override ? s->wd_usec : S(mu)->watchdog_usec;
	if (usec == 0 || usec == KEEL_USEC_INFINITY)
		keel_ev_timer_stop(mu->m->ev, &s->wd_timer);
	else
		(void)!keel_ev_timer_start(mu->m->ev, &s->wd_timer, keel_now_mono() + usec);
}

/* ---- spawning ---- */

static int open_output(const char *path, int how)
{
	int flags = O_WRONLY | O_CREAT | O_CLOEXEC | O_NOCTTY;
	if (how == KEEL_OUTPUT_FILE_APPEND)
		flags |= O_APPEND;
	else if (how == KEEL_OUTPUT_FILE_TRUNCATE)
		flags |= O_TRUNC;
	int fd = open(path, flags, 0644);
	return fd < 0 ? -errno : fd;
}

struct spawn_fds {
	int close[8];
	int n_close;
};

static int keep(struct spawn_fds *f, int fd)
{
	if (fd >= 0 && f->n_close < (int)KEEL_ARRAY_SIZE(f->close))
		f->close[f->n_close++] = fd;
	return fd;
}

static int output_fd(struct mu *mu, int how, const char *path, int stdin_fd, int journal_fd,
		     struct spawn_fds *f, struct logpipe **lp, const char *ident, int *journal_out)
{
	switch (how) {
	case KEEL_OUTPUT_NULL:
		return -1;
	case KEEL_OUTPUT_INHERIT:
		return stdin_fd;
	case KEEL_OUTPUT_TTY:
		return 1;
	case KEEL_OUTPUT_FILE:
	case KEEL_OUTPUT_FILE_APPEND:
	case KEEL_OUTPUT_FILE_TRUNCATE:
		if (path) {
			int fd = open_output(path, how);
			if (fd >= 0)
				return keep(f, fd);
			unit_log(mu, 4, "Failed to open %s for output: %s, using the journal", path, strerror(-fd));
		}
		break;
	case KEEL_OUTPUT_SOCKET:
		if (mu->rt.svc.accept_fd >= 0)
			return mu->rt.svc.accept_fd;
		break;
	default:
		break;
	}
	/* journal, kmsg, console and the rest: the log pipe */
	if (journal_fd >= 0)
		return journal_fd;
	int w;
	*lp = logpipe_open(mu, ident, &w);
	if (!*lp)
		return -1;
	*journal_out = w;
	return keep(f, w);
}

static void add_env(char ***env, const char *fmt, ...) KEEL_PRINTF(2, 3);
static void add_env(char ***env, const char *fmt, ...)
{
	char buf[4096];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	(void)!keel_env_set(env, buf);
}

static const char *code_name(int code)
{
	return code == CLD_EXITED ? "exited" : code == CLD_KILLED ? "killed" : code == CLD_DUMPED ? "dumped" : "unknown";
}

static void format_status(int code, int status, char *out, size_t size)
{
	if (code == CLD_EXITED) {
		const char *n = keel_exit_status_to_string(status);
		snprintf(out, size, "%d/%s", status, n ? n : "n/a");
	} else {
		char sb[32];
		const char *n = keel_signal_to_string(status, sb, sizeof(sb));
		snprintf(out, size, "%d/%s", status, n ? n : "n/a");
	}
}

static int private_tmp_make(struct mu *mu)
{
	struct svc_rt *s = &mu->rt.svc;
	if (s->private_tmp)
		return 0;
	char tmpl[512];
	snprintf(tmpl, sizeof(tmpl), "/tmp/keel-private-%s-XXXXXX", mu->id);
	if (!mkdtemp(tmpl))
		return -errno;
	char a[600];
	snprintf(a, sizeof(a), "%s/tmp", tmpl);
	if (mkdir(a, 01777) < 0 || chmod(a, 01777) < 0)
		return -errno;
	snprintf(a, sizeof(a), "%s/var-tmp", tmpl);
	if (mkdir(a, 01777) < 0 || chmod(a, 01777) < 0)
		return -errno;
	s->private_tmp = keel_strdup(tmpl);
	return s->private_tmp ? 0 : -ENOMEM;
}

static void private_tmp_remove(struct mu *mu)
{
	struct svc_rt *s = &mu->rt.svc;
	if (!s->private_tmp)
		return;
	(void)keel_sys_rmtree(s->private_tmp);
	keel_free(s->private_tmp);
	s->private_tmp = NULL;
}

/* Users and groups, looked up before the fork (NSS is not safe in the child). */
static int resolve_creds(struct mu *mu, const struct keel_exec_ctx *ctx, struct keel_spawn *sp,
			 gid_t *groups, int max_groups, char ***env, const char **home)
{
	if (!ctx->user && !ctx->group && !ctx->supplementary_groups)
		return 0;
	uid_t uid = 0;
	gid_t gid = 0;
	const char *uname = NULL;
	if (ctx->user) {
		struct passwd *pw = NULL;
		char *end;
		unsigned long v = strtoul(ctx->user, &end, 10);
		pw = *end || end == ctx->user ? getpwnam(ctx->user) : getpwuid((uid_t)v);
		if (!pw) {
			if (*end || end == ctx->user) {
				unit_log(mu, 3, "Failed to determine user credentials: No such process");
				return -ESRCH;
			}
			uid = (uid_t)v;
			gid = (gid_t)v;
		} else {
			uid = pw->pw_uid;
			gid = pw->pw_gid;
			uname = pw->pw_name;
			*home = pw->pw_dir;
			add_env(env, "HOME=%s", pw->pw_dir);
			add_env(env, "USER=%s", pw->pw_name);
			add_env(env, "LOGNAME=%s", pw->pw_name);
			add_env(env, "SHELL=%s", pw->pw_shell && *pw->pw_shell ? pw->pw_shell : "/bin/sh");
		}
	}
	if (ctx->group) {
		char *end;
		unsigned long v = strtoul(ctx->group, &end, 10);
		if (*end || end == ctx->group) {
			struct group *gr = getgrnam(ctx->group);
			if (!gr) {
				unit_log(mu, 3, "Failed to determine group credentials: No such process");
				return -ESRCH;
			}
			gid = gr->gr_gid;
		} else {
			gid = (gid_t)v;
		}
	}
	int n = 0;
	if (uname) {
		int cnt = max_groups;
		if (getgrouplist(uname, gid, groups, &cnt) >= 0)
			n = cnt;
	}
	for (size_t i = 0; ctx->supplementary_groups && ctx->supplementary_groups[i] && n < max_groups; i++) {
		const char *g = ctx->supplementary_groups[i];
		char *end;
		unsigned long v = strtoul(g, &end, 10);
		if (*end || end == g) {
			struct group *gr = getgrnam(g);
			if (!gr) {
				unit_log(mu, 3, "Failed to determine supplementary group %s: No such process", g);
				return -ESRCH;
			}
			groups[n++] = gr->gr_gid;
		} else {
			groups[n++] = (gid_t)v;
		}
	}
	if (n == 0)
		groups[n++] = gid;
	sp->set_creds = true;
	sp->uid = uid;
	sp->gid = gid;
	sp->groups = groups;
	sp->n_groups = n;
	return 0;
}

int svc_spawn(struct mu *mu, const struct keel_exec_cmd *cmd, int slot, bool is_main, pid_t *ret)
{
	struct keel_mgr *m = mu->m;
	struct keel_service *sv = S(mu);
	const struct keel_exec_ctx *ctx = &sv->exec_ctx;
	struct svc_rt *s = &mu->rt.svc;
	bool privileged = cmd->flags & KEEL_EXEC_FULLY_PRIVILEGED;
	bool no_setuid = privileged || (cmd->flags & (KEEL_EXEC_NO_SETUID | KEEL_EXEC_AMBIENT_MAGIC));
	char **env = NULL;
	char **argv = NULL;
	char *path = NULL;
	struct spawn_fds fds = {0};
	struct logpipe *lp_out = NULL, *lp_err = NULL;
	int cg_fds[KEEL_CG_MAX_JOIN];
	int n_cg = 0;
	int r = 0;
	struct keel_spawn sp = {.stdio = {-1, -1, -1}, .umask = ctx->umask, .cgroup_fd = -1};
	gid_t groups[64];
	const char *home = NULL;
	struct keel_sandbox_plan plan = {.netns_fd = -1};

	add_env(&env, "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
	if (!no_setuid && (r = resolve_creds(mu, ctx, &sp, groups, (int)KEEL_ARRAY_SIZE(groups), &env, &home)) < 0) {
		keel_strv_free(env);
		return r;
	}
	int na = sv->notify_access_set ? sv->notify_access : sv->type == KEEL_SERVICE_NOTIFY ? KEEL_NOTIFY_MAIN : KEEL_NOTIFY_NONE;
	if (na != KEEL_NOTIFY_NONE && m->notify_path)
		add_env(&env, "NOTIFY_SOCKET=%s", m->notify_path);
	if (!is_main && s->main_pid > 0)
		add_env(&env, "MAINPID=%d", (int)s->main_pid);
	if (s->trigger_unit) {
		add_env(&env, "TRIGGER_UNIT=%s", s->trigger_unit);
		add_env(&env, "TRIGGER_TIMER_REALTIME_USEC=%llu", (unsigned long long)s->trigger_real);
		add_env(&env, "TRIGGER_TIMER_MONOTONIC_USEC=%llu", (unsigned long long)s->trigger_mono);
	}
	if (slot == KEEL_EXEC_STOP || slot == KEEL_EXEC_STOP_POST) {
		add_env(&env, "SERVICE_RESULT=%s", keel_svc_result_to_string(s->result));
		if (s->main_code) {
			char st[64];
			add_env(&env, "EXIT_CODE=%s", code_name(s->main_code));
			if (s->main_code == CLD_EXITED) {
				add_env(&env, "EXIT_STATUS=%d", s->main_status);
			} else {
				const char *n = keel_signal_to_string(s->main_status, st, sizeof(st));
				add_env(&env, "EXIT_STATUS=%s", n ? n : "?");
			}
		}
	}
	/* Environment=, then EnvironmentFile= (which wins), then what keel-init must set. */
	for (size_t i = 0; ctx->environment && ctx->environment[i]; i++)
		(void)!keel_env_set(&env, ctx->environment[i]);
	for (size_t i = 0; ctx->environment_files && ctx->environment_files[i]; i++) {
		const char *f = ctx->environment_files[i];
		bool optional = f[0] == '-';
		r = keel_env_file_load(optional ? f + 1 : f, &env);
		if (r < 0 && !(optional && r == -ENOENT)) {
			unit_log(mu, 3, "Failed to load environment files: %s", strerror(-r));
			r = -r == ENOMEM ? -ENOMEM : -EINVAL;
			goto out;
		}
		r = 0;
	}
	if ((r = svc_sandbox_prepare(mu, &sp, privileged, &env, &plan)) < 0)
		goto out;
	int pass[KEEL_SPAWN_MAX_FDS];
	int n_pass = 0;
	if (is_main) {
		struct keel_buf names = KEEL_BUF_INIT;
		if (s->accept_fd >= 0) {
			pass[n_pass++] = s->accept_fd;
			(void)!keel_buf_puts(&names, "connection");
		} else {
			n_pass = sock_collect_fds(mu, pass, KEEL_SPAWN_MAX_FDS, &names);
			if (n_pass < 0)
				n_pass = 0;
		}
		if (n_pass > 0) {
			add_env(&env, "LISTEN_FDS=%d", n_pass);
			add_env(&env, "LISTEN_FDNAMES=%s", names.data ? names.data : "");
			add_env(&env, "LISTEN_PID=%020d", 0);
		}
		keel_buf_free(&names);
		uint64_t wd = s->wd_override ? s->wd_usec : sv->watchdog_usec;
		if (wd && wd != KEEL_USEC_INFINITY) {
			add_env(&env, "WATCHDOG_USEC=%llu", (unsigned long long)wd);
			add_env(&env, "WATCHDOG_PID=%020d", 0);
		}
	}
	for (size_t i = 0; env && env[i]; i++) {
		if (keel_startswith(env[i], "LISTEN_PID=") && is_main && n_pass > 0)
			sp.pid_slots[0] = env[i];
		else if (keel_startswith(env[i], "WATCHDOG_PID=") && is_main)
			sp.pid_slots[1] = env[i];
	}
	if (cmd->flags & KEEL_EXEC_NO_ENV_EXPAND) {
		for (uint32_t i = 0; i < cmd->argc && r == 0; i++)
			r = keel_strv_push(&argv, cmd->argv[i]);
		if (r == 0 && !argv)
			r = keel_strv_push(&argv, cmd->path);
	} else {
		r = keel_exec_expand_argv(cmd->argv, env, &argv);
	}
	if (r < 0)
		goto out;
	path = keel_exec_resolve_path(cmd->path);
	if (!path) {
		r = -ENOMEM;
		goto out;
	}
	const char *base = strrchr(path, '/');
	const char *ident = ctx->syslog_identifier ? ctx->syslog_identifier : base ? base + 1 : path;

	/* stdin, stdout, stderr */
	int in_fd = -1;
	if (ctx->std_input == KEEL_INPUT_SOCKET && s->accept_fd >= 0) {
		in_fd = s->accept_fd;
	} else if (ctx->std_input == KEEL_INPUT_FILE && ctx->stdin_path) {
		in_fd = open(ctx->stdin_path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
		if (in_fd < 0)
			unit_log(mu, 4, "Failed to open %s for input: %s", ctx->stdin_path, strerror(errno));
		keep(&fds, in_fd);
	}
	int journal_fd = -1;
	sp.stdio[0] = in_fd;
	sp.stdio[1] = output_fd(mu, ctx->std_output, ctx->stdout_path, in_fd, -1, &fds, &lp_out, ident, &journal_fd);
	if (ctx->std_error == KEEL_OUTPUT_INHERIT)
		sp.stdio[2] = sp.stdio[1];
	else
		sp.stdio[2] = output_fd(mu, ctx->std_error, ctx->stderr_path, in_fd, journal_fd, &fds, &lp_err, ident, &journal_fd);

	sp.path = path;
	sp.argv = argv;
	sp.envp = env;
	sp.pass_fds = pass;
	sp.n_pass_fds = n_pass;
	sp.cgroup_fd = -1;
	if (mu->cgroup_made) {
		unsigned mask = mu->cg_mask;
		int dfd = keel_cg_open_dir(m->cg, mu->id);
		if (dfd >= 0) {
			sp.cgroup_fd = dfd;
			keep(&fds, dfd);
			mask &= ~(1u << m->cg->track);
		}
		n_cg = keel_cg_open_procs(m->cg, mu->id, mask, cg_fds);
		if (n_cg < 0) {
			unit_log(mu, 4, "Failed to open the unit's cgroup: %s", strerror(-n_cg));
			n_cg = 0;
		}
	}
	sp.cg_fds = cg_fds;
	sp.n_cg_fds = n_cg;
	sp.workdir = ctx->working_directory_home ? (home ? home : "/root") : ctx->working_directory;
	sp.workdir_missing_ok = ctx->working_directory_missing_ok;
	if (!privileged) {
		sp.rootdir = ctx->root_directory;
		if (ctx->private_tmp) {
			if ((r = private_tmp_make(mu)) < 0) {
				unit_log(mu, 3, "Failed to set up PrivateTmp=: %s", strerror(-r));
				goto out;
			}
			sp.private_tmp = s->private_tmp;
		}
	}
	if (ctx->nice_set) {
		sp.nice_set = true;
		sp.nice = ctx->nice;
	}
	for (unsigned i = 0; i < ctx->n_rlimits && sp.n_rlimits < RLIM_NLIMITS; i++) {
		/* Never above the hard limit keel-init has: raising it needs CAP_SYS_RESOURCE. */
		struct rlimit cur;
		int res = ctx->rlimits[i].resource;
		if (getrlimit(res, &cur) < 0)
			continue;
		rlim_t hard = ctx->rlimits[i].hard == KEEL_RLIMIT_INFINITY ? RLIM_INFINITY : (rlim_t)ctx->rlimits[i].hard;
		rlim_t soft = ctx->rlimits[i].soft == KEEL_RLIMIT_INFINITY ? RLIM_INFINITY : (rlim_t)ctx->rlimits[i].soft;
		if (cur.rlim_max != RLIM_INFINITY && (hard == RLIM_INFINITY || hard > cur.rlim_max)) {
			unit_log(mu, 4, "Limit%s= above the hard limit %llu, using that", keel_rlimit_name(res),
				 (unsigned long long)cur.rlim_max);
			hard = cur.rlim_max;
		}
		if (soft == RLIM_INFINITY ? hard != RLIM_INFINITY : (hard != RLIM_INFINITY && soft > hard))
			soft = hard;
		sp.rlimits[sp.n_rlimits].resource = res;
		sp.rlimits[sp.n_rlimits].lim = (struct rlimit){.rlim_cur = soft, .rlim_max = hard};
		sp.n_rlimits++;
	}

	pid_t pid;
	int err_fd;
	/* keel-init does not wait for the exec (a child waiting for a CPU would stall every other
	 * unit); a failed setup step is reported through the pipe when it happens. */
	r = keel_spawn_start(&sp, &pid, &err_fd);
	if (r < 0) {
		unit_log(mu, 3, "Failed to spawn '%s' task: %s", keel_exec_slot_to_string(slot), strerror(-r));
		goto out;
	}
	spawn_watch_pid(mu, err_fd, path, pid);
	logpipe_set_pid(lp_out, pid);
	logpipe_set_pid(lp_err, pid);
	mgr_watch_pid(m, pid, mu);
	*ret = pid;
out:
	for (int i = 0; i < n_cg; i++)
		close(cg_fds[i]);
	for (int i = 0; i < fds.n_close; i++)
		close(fds.close[i]);
	keel_sandbox_plan_free(&plan);
	keel_strv_free(env);
	keel_strv_free(argv);
	keel_free(path);
	return r;
}

/* ---- the state machine ---- */

/* Start control command idx of slot; false when there is none. On a spawn failure the
 * command counts as failed with result "resources". */
static bool run_control(struct mu *mu, int slot, unsigned idx, int state, uint64_t timeout, int *ret_fail)
{
	struct svc_rt *s = &mu->rt.svc;
	const struct keel_exec_cmd *c = cmd_at(mu, slot, idx);
	*ret_fail = R_SUCCESS;
	if (!c)
		return false;
	s->control_slot = (uint8_t)slot;
	s->control_idx = (uint16_t)idx;
	pid_t pid;
	int r = svc_spawn(mu, c, slot, false, &pid);
	if (r < 0) {
		*ret_fail = R_RESOURCES;
		return false;
	}
	s->control_pid = pid;
	set_state(mu, state);
	arm(mu, timeout);
	return true;
}

static void enter_dead(struct mu *mu, int f, bool allow_restart)
{
	struct svc_rt *s = &mu->rt.svc;
	struct keel_service *sv = S(mu);
	set_result(mu, f);
	if (s->result == R_EXEC_CONDITION)
		unit_log(mu, 6, "Skipped due to '%s'.", keel_svc_result_to_string(s->result));
	else if (s->result != R_SUCCESS)
		unit_log(mu, 4, "Failed with result '%s'.", keel_svc_result_to_string(s->result));
	else if (mu->active != KEEL_INACTIVE)
		unit_log(mu, 6, "Deactivated successfully.");
	bool restart = false;
	if (allow_restart && !s->forbid_restart && !mu->m->shutting_down && s->result != R_START_LIMIT_HIT &&
	    s->result != R_EXEC_CONDITION) {
		int r = s->result;
		bool by_status = s->main_code == CLD_EXITED;
		if (sv->restart_prevent_status &&
		    (by_status ? keel_exit_status_set_has_status(sv->restart_prevent_status, s->main_status)
			       : keel_exit_status_set_has_signal(sv->restart_prevent_status, s->main_status)) && s->main_code) {
			restart = false;
		} else if (sv->restart_force_status && s->main_code &&
			   (by_status ? keel_exit_status_set_has_status(sv->restart_force_status, s->main_status)
				      : keel_exit_status_set_has_signal(sv->restart_force_status, s->main_status))) {
			restart = true;
		} else {
			switch (sv->restart) {
			case KEEL_RESTART_ALWAYS: restart = true; break;
			case KEEL_RESTART_ON_SUCCESS: restart = r == R_SUCCESS; break;
			case KEEL_RESTART_ON_FAILURE: restart = r != R_SUCCESS; break;
			case KEEL_RESTART_ON_ABNORMAL:
				restart = r == R_SIGNAL || r == R_CORE_DUMP || r == R_TIMEOUT || r == R_WATCHDOG;
				break;
			case KEEL_RESTART_ON_WATCHDOG: restart = r == R_WATCHDOG; break;
			case KEEL_RESTART_ON_ABORT: restart = r == R_SIGNAL || r == R_CORE_DUMP; break;
			default: restart = false;
			}
		}
	}
	mgr_unwatch_pid(mu->m, s->main_pid);
	mgr_unwatch_pid(mu->m, s->control_pid);
	s->main_pid = s->control_pid = 0;
	unit_cgroup_release(mu);
	private_tmp_remove(mu);
	svc_sandbox_stop(mu, restart);
	if (!restart) {
		keel_free(s->trigger_unit);
		s->trigger_unit = NULL;
	}
	if (restart) {
		set_state(mu, S_AUTO_RESTART);
		arm(mu, sv->restart_usec ? sv->restart_usec : 1);
		if (!keel_ev_timer_armed(&s->timer))
			(void)!keel_ev_timer_start(mu->m->ev, &s->timer, keel_now_mono());
		return;
	}
	if (s->accept_fd >= 0) {
		close(s->accept_fd);
		s->accept_fd = -1;
	}
	set_state(mu, s->result == R_SUCCESS || s->result == R_EXEC_CONDITION ? S_DEAD : S_FAILED);
}

static bool stop_wait_done(struct mu *mu)
{
	struct svc_rt *s = &mu->rt.svc;
	int km = S(mu)->kill.kill_mode;
	if (s->main_pid > 0 || s->control_pid > 0)
		return false;
	if (km == KEEL_KILL_CONTROL_GROUP || km == KEEL_KILL_MIXED)
		return unit_cgroup_empty(mu);
	return true;
}

static void enter_signal(struct mu *mu, int state, int f)
{
	struct svc_rt *s = &mu->rt.svc;
	const struct keel_kill_ctx *k = &S(mu)->kill;
	set_result(mu, f);
	bool term = state == S_STOP_SIGTERM || state == S_FINAL_SIGTERM || state == S_STOP_WATCHDOG;
	int sig = state == S_STOP_WATCHDOG ? k->watchdog_signal : term ? k->kill_signal : k->final_kill_signal;
	if (k->kill_mode != KEEL_KILL_NONE) {
		if (s->main_pid > 0) {
			kill(s->main_pid, sig);
			if (sig != SIGKILL && sig != SIGCONT)
				kill(s->main_pid, SIGCONT);
		}
		if (s->control_pid > 0) {
			kill(s->control_pid, sig);
			if (sig != SIGKILL && sig != SIGCONT)
				kill(s->control_pid, SIGCONT);
		}
		if (mu->cgroup_made && (k->kill_mode == KEEL_KILL_CONTROL_GROUP || (k->kill_mode == KEEL_KILL_MIXED && !term)))
			(void)!keel_cg_kill(mu->m->cg, mu->id, sig, 0, true);
		if (term && k->send_sighup) {
			if (s->main_pid > 0)
				kill(s->main_pid, SIGHUP);
			if (mu->cgroup_made && k->kill_mode == KEEL_KILL_CONTROL_GROUP)
				(void)!keel_cg_kill(mu->m->cg, mu->id, SIGHUP, 0, false);
		}
	}
	bool wait = k->kill_mode != KEEL_KILL_NONE && !stop_wait_done(mu);
	if (k->kill_mode == KEEL_KILL_NONE)
		wait = s->control_pid > 0;
	if (wait) {
		set_state(mu, state);
		arm(mu, S(mu)->timeout_stop_usec);
		return;
	}
	if (state == S_STOP_SIGTERM || state == S_STOP_SIGKILL || state == S_STOP_WATCHDOG)
		enter_stop_post(mu, R_SUCCESS);
	else
		enter_dead(mu, R_SUCCESS, true);
}

static void enter_stop_post(struct mu *mu, int f)
{
	set_result(mu, f);
	int fail;
	if (run_control(mu, KEEL_EXEC_STOP_POST, 0, S_STOP_POST, S(mu)->timeout_stop_usec, &fail))
		return;
	enter_signal(mu, S_FINAL_SIGTERM, fail);
}

static void enter_stop(struct mu *mu, int f)
{
	set_result(mu, f);
	int fail;
	if (run_control(mu, KEEL_EXEC_STOP, 0, S_STOP, S(mu)->timeout_stop_usec, &fail))
		return;
	enter_signal(mu, S_STOP_SIGTERM, fail);
}

static void enter_running(struct mu *mu, int f)
{
	struct svc_rt *s = &mu->rt.svc;
	struct keel_service *sv = S(mu);
	if (f != R_SUCCESS) {
		enter_stop(mu, f);
		return;
	}
	if (s->main_pid > 0 || (sv->type == KEEL_SERVICE_FORKING && s->main_pid == 0 && !unit_cgroup_empty(mu) &&
				mu->sub != S_RUNNING)) {
		set_state(mu, S_RUNNING);
		start_watchdog(mu);
		return;
	}
	if (sv->remain_after_exit) {
		set_state(mu, S_EXITED);
		return;
	}
	enter_stop(mu, R_SUCCESS);
}

static void enter_start_post(struct mu *mu)
{
	int fail;
	if (mu->rt.svc.main_pid > 0)
		start_watchdog(mu);
	if (run_control(mu, KEEL_EXEC_START_POST, 0, S_START_POST, S(mu)->timeout_start_usec, &fail))
		return;
	if (fail != R_SUCCESS)
		enter_stop(mu, fail);
	else
		enter_running(mu, R_SUCCESS);
}

static int read_pid_file(struct mu *mu)
{
	struct svc_rt *s = &mu->rt.svc;
	const char *path = S(mu)->pid_file;
	char buf[64];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -ENODATA;
	buf[n] = '\0';
	char *end;
	long pid = strtol(buf, &end, 10);
	while (*end == '\n' || *end == ' ')
		end++;
	if (pid <= 1 || *end)
		return -EBADMSG;
	if (kill((pid_t)pid, 0) < 0 && errno == ESRCH)
		return -ESRCH;
	s->main_pid = (pid_t)pid;
	s->main_pid_alien = true;
	s->main_start_real = keel_now_real();
	mgr_watch_pid(mu->m, s->main_pid, mu);
	return 0;
}

/* Forking services without PIDFile=: the only process left in the cgroup is the main one. */
static void guess_main_pid(struct mu *mu)
{
	pid_t *pids;
	size_t n;
	if (!S(mu)->guess_main_pid || !mu->cgroup_made || keel_cg_pids(mu->m->cg, mu->id, &pids, &n) < 0)
		return;
	if (n == 1) {
		mu->rt.svc.main_pid = pids[0];
		mu->rt.svc.main_pid_alien = true;
		mgr_watch_pid(mu->m, pids[0], mu);
	}
	keel_free(pids);
}

static bool spawn_main(struct mu *mu, unsigned idx)
{
	struct svc_rt *s = &mu->rt.svc;
	struct keel_service *sv = S(mu);
	const struct keel_exec_cmd *c = cmd_at(mu, KEEL_EXEC_START, idx);
	if (!c)
		return false;
	s->main_idx = (uint16_t)idx;
	pid_t pid;
	int r = svc_spawn(mu, c, KEEL_EXEC_START, sv->type != KEEL_SERVICE_FORKING, &pid);
	if (r < 0) {
		enter_signal(mu, S_STOP_SIGTERM, R_RESOURCES);
		return true;
	}
	if (sv->type == KEEL_SERVICE_FORKING) {
		s->control_pid = pid;
		s->control_slot = KEEL_EXEC_START;
		s->control_idx = (uint16_t)idx;
	} else {
		s->main_pid = pid;
		s->main_pid_alien = false;
		s->main_start_real = keel_now_real();
	}
	switch (sv->type) {
	case KEEL_SERVICE_FORKING:
	case KEEL_SERVICE_ONESHOT:
	case KEEL_SERVICE_NOTIFY:
	case KEEL_SERVICE_EXEC: /* until execve() succeeded: svc_exec_succeeded() */
		set_state(mu, S_START);
		arm(mu, sv->timeout_start_usec);
		break;
	default: /* simple, idle, dbus (keel has no D-Bus: treated as simple) */
		enter_start_post(mu);
		break;
	}
	return true;
}

static void enter_start(struct mu *mu)
{
	if (!spawn_main(mu, 0)) {
		/* oneshot without ExecStart= */
		enter_start_post(mu);
	}
}

/* ExecCondition= (systemd 243): runs first; exit 1-254 skips the unit, 255 or a signal fails it. */
static void enter_condition(struct mu *mu)
{
	int fail;
	if (run_control(mu, KEEL_EXEC_CONDITION, 0, S_CONDITION, S(mu)->timeout_start_usec, &fail))
		return;
	if (fail != R_SUCCESS)
		enter_signal(mu, S_STOP_SIGTERM, fail);
	else
		enter_start_pre(mu);
}

static void enter_start_pre(struct mu *mu)
{
	int fail;
	if (run_control(mu, KEEL_EXEC_START_PRE, 0, S_START_PRE, S(mu)->timeout_start_usec, &fail))
		return;
	if (fail != R_SUCCESS)
		enter_signal(mu, S_FINAL_SIGTERM, fail);
	else
		enter_start(mu);
}

static int svc_start(struct mu *mu)
{
	struct svc_rt *s = &mu->rt.svc;
	switch (mu->sub) {
	case S_STOP: case S_STOP_WATCHDOG: case S_STOP_SIGTERM: case S_STOP_SIGKILL: case S_STOP_POST:
	case S_FINAL_SIGTERM: case S_FINAL_SIGKILL:
		return -EAGAIN;
	case S_CONDITION: case S_START_PRE: case S_START: case S_START_POST:
		return 0;
	case S_RUNNING: case S_EXITED: case S_RELOAD:
		return -EALREADY;
	}
	bool auto_restart = mu->sub == S_AUTO_RESTART;
	if (!unit_start_limit_ok(mu)) {
		unit_log(mu, 3, "Start request repeated too quickly.");
		s->result = R_START_LIMIT_HIT;
		keel_ev_timer_stop(mu->m->ev, &s->timer);
		unit_log(mu, 4, "Failed with result '%s'.", keel_svc_result_to_string(s->result));
		set_state(mu, S_FAILED);
		return -ECANCELED;
	}
	if (!auto_restart)
		s->n_restarts = 0;
	s->result = R_SUCCESS;
	s->reload_result = R_SUCCESS;
	s->main_pid = s->control_pid = 0;
	s->forbid_restart = false;
	s->notify_ready = false;
	s->wd_override = false;
	s->main_code = s->main_status = 0;
	keel_free(s->status_text);
	s->status_text = NULL;
	int r = unit_cgroup_realize(mu);
	if (r < 0) {
		unit_log(mu, 3, "Failed to create cgroup: %s", strerror(-r));
		enter_dead(mu, R_RESOURCES, false);
		return -EIO;
	}
	mu->cond_result = true;
	enter_condition(mu);
	return 0;
}

static int svc_stop(struct mu *mu)
{
	struct svc_rt *s = &mu->rt.svc;
	s->forbid_restart = true;
	switch (mu->sub) {
	case S_STOP: case S_STOP_SIGTERM: case S_STOP_SIGKILL: case S_STOP_POST: case S_FINAL_SIGTERM:
	case S_FINAL_SIGKILL: case S_STOP_WATCHDOG:
		return 0;
	case S_AUTO_RESTART:
		keel_ev_timer_stop(mu->m->ev, &s->timer);
		set_state(mu, S_DEAD);
		return 0;
	case S_CONDITION: case S_START_PRE: case S_START: case S_START_POST: case S_RELOAD:
		enter_signal(mu, S_STOP_SIGTERM, R_SUCCESS);
		return 0;
	case S_RUNNING: case S_EXITED:
		enter_stop(mu, R_SUCCESS);
		return 0;
	default:
		return -EALREADY;
	}
}

static int svc_reload(struct mu *mu)
{
	struct svc_rt *s = &mu->rt.svc;
	s->reload_result = R_SUCCESS;
	int fail;
	if (run_control(mu, KEEL_EXEC_RELOAD, 0, S_RELOAD, S(mu)->timeout_start_usec, &fail))
		return 0;
	s->reload_result = (uint8_t)(fail != R_SUCCESS ? fail : R_SUCCESS);
	enter_running(mu, R_SUCCESS);
	return 0;
}

static int exit_result(struct mu *mu, int code, int status, bool main_process)
{
	const struct keel_exit_status_set *ok = S(mu)->success_status;
	if (code == CLD_EXITED)
		return status == 0 || (ok && keel_exit_status_set_has_status(ok, status)) ? R_SUCCESS : R_EXIT_CODE;
	if (code == CLD_KILLED) {
		/* systemd's EXIT_CLEAN_DAEMON: a main process killed by these stopped cleanly. */
		if (main_process && (status == SIGHUP || status == SIGINT || status == SIGTERM || status == SIGPIPE))
			return R_SUCCESS;
		if (ok && keel_exit_status_set_has_signal(ok, status))
			return R_SUCCESS;
		return R_SIGNAL;
	}
	if (code == CLD_DUMPED)
		return R_CORE_DUMP;
	return R_SUCCESS;
}

static void control_finished(struct mu *mu, int f)
{
	struct svc_rt *s = &mu->rt.svc;
	struct keel_service *sv = S(mu);
	int slot = s->control_slot;
	unsigned next = s->control_idx + 1u;
	int fail;
	switch (mu->sub) {
	case S_CONDITION:
		if (f != R_SUCCESS)
			enter_signal(mu, S_STOP_SIGTERM, f);
		else if (!run_control(mu, slot, next, S_CONDITION, sv->timeout_start_usec, &fail))
			fail != R_SUCCESS ? enter_signal(mu, S_STOP_SIGTERM, fail) : enter_start_pre(mu);
		break;
	case S_START_PRE:
		if (f != R_SUCCESS)
			enter_signal(mu, S_FINAL_SIGTERM, f);
		else if (!run_control(mu, slot, next, S_START_PRE, sv->timeout_start_usec, &fail))
			fail != R_SUCCESS ? enter_signal(mu, S_FINAL_SIGTERM, fail) : enter_start(mu);
		break;
	case S_START:
		/* forking: the ExecStart= process */
		if (f != R_SUCCESS) {
			enter_signal(mu, S_STOP_SIGTERM, f);
		} else if (sv->pid_file) {
			int r = read_pid_file(mu);
			if (r == 0) {
				enter_start_post(mu);
			} else {
				unit_log(mu, 5, "PID file %s not readable (yet?) after start: %s", sv->pid_file, strerror(-r));
				/* poll until the start timeout */
				(void)!keel_ev_timer_start(mu->m->ev, &s->timer, keel_now_mono() + 50 * KEEL_USEC_PER_MSEC);
			}
		} else {
			guess_main_pid(mu);
			enter_start_post(mu);
		}
		break;
	case S_START_POST:
		if (f != R_SUCCESS)
			enter_stop(mu, f);
		else if (!run_control(mu, slot, next, S_START_POST, sv->timeout_start_usec, &fail))
			enter_running(mu, fail);
		break;
	case S_RELOAD:
		if (f != R_SUCCESS) {
			s->reload_result = (uint8_t)f;
			enter_running(mu, R_SUCCESS);
		} else if (!run_control(mu, slot, next, S_RELOAD, sv->timeout_start_usec, &fail)) {
			s->reload_result = (uint8_t)fail;
			enter_running(mu, R_SUCCESS);
		}
		break;
	case S_STOP:
		if (f != R_SUCCESS || !run_control(mu, slot, next, S_STOP, sv->timeout_stop_usec, &fail))
			enter_signal(mu, S_STOP_SIGTERM, f);
		break;
	case S_STOP_SIGTERM: case S_STOP_SIGKILL: case S_STOP_WATCHDOG:
		set_result(mu, f);
		if (stop_wait_done(mu))
			enter_stop_post(mu, R_SUCCESS);
		break;
	case S_STOP_POST:
		if (f != R_SUCCESS || !run_control(mu, slot, next, S_STOP_POST, sv->timeout_stop_usec, &fail))
			enter_signal(mu, S_FINAL_SIGTERM, f);
		break;
	case S_FINAL_SIGTERM: case S_FINAL_SIGKILL:
		set_result(mu, f);
		if (stop_wait_done(mu))
			enter_dead(mu, R_SUCCESS, true);
		break;
	default:
		break;
	}
}

static void main_finished(struct mu *mu, int f)
{
	struct svc_rt *s = &mu->rt.svc;
	struct keel_service *sv = S(mu);
	switch (mu->sub) {
	case S_START:
		if (sv->type == KEEL_SERVICE_ONESHOT) {
			if (f != R_SUCCESS)
				enter_signal(mu, S_STOP_SIGTERM, f);
			else if (!spawn_main(mu, s->main_idx + 1u))
				enter_start_post(mu);
		} else if (sv->type == KEEL_SERVICE_EXEC && f == R_SUCCESS) {
			/* exited (successfully) before its exec report was read */
			enter_start_post(mu);
		} else if (sv->type == KEEL_SERVICE_NOTIFY) {
			if (f == R_SUCCESS) {
				unit_log(mu, 4, "Main process exited before sending READY=1.");
				f = R_PROTOCOL;
			}
			enter_signal(mu, S_STOP_SIGTERM, f);
		} else {
			enter_signal(mu, S_STOP_SIGTERM, f);
		}
		break;
	case S_START_POST: case S_RELOAD: case S_STOP:
		set_result(mu, f);
		break;
	case S_RUNNING:
		enter_running(mu, f);
		break;
	case S_STOP_SIGTERM: case S_STOP_SIGKILL: case S_STOP_WATCHDOG:
		set_result(mu, f);
		if (stop_wait_done(mu))
			enter_stop_post(mu, R_SUCCESS);
		break;
	case S_FINAL_SIGTERM: case S_FINAL_SIGKILL:
		if (stop_wait_done(mu))
			enter_dead(mu, f, true);
		break;
	default:
		break;
	}
}

static void svc_sigchld(struct mu *mu, pid_t pid, int code, int status)
{
	struct svc_rt *s = &mu->rt.svc;
	char st[64];
	format_status(code, status, st, sizeof(st));
	if (pid == s->main_pid) {
		s->main_pid = 0;
		s->main_code = code;
		s->main_status = status;
		s->main_exit_pid = pid;
		s->main_exit_real = keel_now_real();
		int f = exit_result(mu, code, status, true);
		const struct keel_exec_cmd *c = cmd_at(mu, KEEL_EXEC_START, s->main_idx);
		if (f != R_SUCCESS && c && (c->flags & KEEL_EXEC_IGNORE_FAILURE))
			f = R_SUCCESS;
		if (f != R_SUCCESS)
			unit_log(mu, 5, "Main process exited, code=%s, status=%s", code_name(code), st);
		else
			unit_log(mu, 7, "Main process exited, code=%s, status=%s", code_name(code), st);
		if (mu->sub == S_RUNNING || mu->sub == S_START_POST)
			mu->want_empty_check = false;
		main_finished(mu, f);
	} else if (pid == s->control_pid) {
		s->control_pid = 0;
		int f = exit_result(mu, code, status, false);
		const struct keel_exec_cmd *c = cmd_at(mu, s->control_slot, s->control_idx);
		if (f != R_SUCCESS && c && (c->flags & KEEL_EXEC_IGNORE_FAILURE))
			f = R_SUCCESS;
		if (f != R_SUCCESS)
			unit_log(mu, 5, "Control process exited, code=%s, status=%s", code_name(code), st);
		if (mu->sub == S_CONDITION && f == R_EXIT_CODE && code == CLD_EXITED && status < 255) {
			/* ExecCondition= said no: the unit is skipped, not failed. */
			mu->cond_result = false;
			f = R_EXEC_CONDITION;
		}
		control_finished(mu, f);
	}
}

void svc_exec_succeeded(struct mu *mu, pid_t pid)
{
	if (S(mu)->type == KEEL_SERVICE_EXEC && mu->sub == S_START && pid == mu->rt.svc.main_pid)
		enter_start_post(mu);
}

static void svc_cgroup_empty(struct mu *mu)
{
	struct svc_rt *s = &mu->rt.svc;
	switch (mu->sub) {
	case S_STOP_SIGTERM: case S_STOP_SIGKILL: case S_STOP_WATCHDOG:
		if (stop_wait_done(mu))
			enter_stop_post(mu, R_SUCCESS);
		break;
	case S_FINAL_SIGTERM: case S_FINAL_SIGKILL:
		if (stop_wait_done(mu))
			enter_dead(mu, R_SUCCESS, true);
		break;
	case S_RUNNING:
		if (s->main_pid == 0)
			enter_running(mu, R_SUCCESS);
		break;
	default:
		break;
	}
}

static void on_timer(struct keel_ev_timer *t)
{
	struct mu *mu = t->data;
	struct svc_rt *s = &mu->rt.svc;
	struct keel_service *sv = S(mu);
	switch (mu->sub) {
	case S_START:
		if (sv->type == KEEL_SERVICE_FORKING && s->control_pid == 0 && sv->pid_file &&
		    keel_now_mono() < s->timer_started + sv->timeout_start_usec) {
			if (read_pid_file(mu) == 0)
				enter_start_post(mu);
			else
				(void)!keel_ev_timer_start(mu->m->ev, &s->timer, keel_now_mono() + 50 * KEEL_USEC_PER_MSEC);
			return;
		}
		/* fall through */
	case S_START_PRE: case S_CONDITION:
		unit_log(mu, 4, "%s operation timed out. Terminating.",
			 mu->sub == S_START ? "Start" : mu->sub == S_CONDITION ? "Condition" : "Start-pre");
		enter_signal(mu, S_STOP_SIGTERM, R_TIMEOUT);
		break;
	case S_START_POST:
		unit_log(mu, 4, "Start-post operation timed out. Stopping.");
		enter_stop(mu, R_TIMEOUT);
		break;
	case S_RELOAD:
		unit_log(mu, 4, "Reload operation timed out. Killing reload process.");
		if (s->control_pid > 0)
			kill(s->control_pid, SIGKILL);
		s->reload_result = R_TIMEOUT;
		enter_running(mu, R_SUCCESS);
		break;
	case S_STOP:
		unit_log(mu, 4, "Stopping timed out. Terminating.");
		enter_signal(mu, S_STOP_SIGTERM, R_TIMEOUT);
		break;
	case S_STOP_SIGTERM: case S_STOP_WATCHDOG:
		if (sv->kill.send_sigkill) {
			unit_log(mu, 4, "State '%s' timed out. Killing.", state_names[mu->sub]);
			enter_signal(mu, S_STOP_SIGKILL, R_TIMEOUT);
		} else {
			unit_log(mu, 4, "State '%s' timed out. Skipping SIGKILL.", state_names[mu->sub]);
			enter_stop_post(mu, R_TIMEOUT);
		}
		break;
	case S_STOP_SIGKILL:
		unit_log(mu, 4, "Processes still around after SIGKILL. Ignoring.");
		enter_stop_post(mu, R_TIMEOUT);
		break;
	case S_STOP_POST:
		unit_log(mu, 4, "State 'stop-post' timed out. Terminating.");
		enter_signal(mu, S_FINAL_SIGTERM, R_TIMEOUT);
		break;
	case S_FINAL_SIGTERM:
		if (sv->kill.send_sigkill) {
			unit_log(mu, 4, "State 'final-sigterm' timed out. Killing.");
			enter_signal(mu, S_FINAL_SIGKILL, R_TIMEOUT);
		} else {
			enter_dead(mu, R_TIMEOUT, true);
		}
		break;
	case S_FINAL_SIGKILL:
		unit_log(mu, 4, "Processes still around after final SIGKILL. Entering failed mode.");
		enter_dead(mu, R_TIMEOUT, true);
		break;
	case S_AUTO_RESTART: {
		s->n_restarts++;
		unit_log(mu, 6, "Scheduled restart job, restart counter is at %u.", s->n_restarts);
		struct keel_err e;
		if (job_enqueue(mu->m, mu, JOB_START, true, false, NULL, &e) < 0) {
			unit_log(mu, 3, "Failed to schedule restart job: %s", keel_err_msg(&e));
			s->forbid_restart = true;
			set_state(mu, s->result == R_SUCCESS ? S_DEAD : S_FAILED);
		}
		break;
	}
	default:
		break;
	}
}

static void on_watchdog(struct keel_ev_timer *t)
{
	struct mu *mu = t->data;
	struct svc_rt *s = &mu->rt.svc;
	uint64_t usec = s->wd_override ? s->wd_usec : S(mu)->watchdog_usec;
	char span[64];
	unit_log(mu, 3, "Watchdog timeout (limit %s)!", keel_format_timespan(span, sizeof(span), usec, 1));
	enter_signal(mu, S_STOP_WATCHDOG, R_WATCHDOG);
}

void svc_notify_message(struct mu *mu, pid_t pid, char *msg)
{
	struct svc_rt *s = &mu->rt.svc;
	struct keel_service *sv = S(mu);
	int na = sv->notify_access_set ? sv->notify_access : sv->type == KEEL_SERVICE_NOTIFY ? KEEL_NOTIFY_MAIN : KEEL_NOTIFY_NONE;
	if (na == KEEL_NOTIFY_NONE) {
		unit_log(mu, 4, "Got notification message from PID %d, but reception is disabled.", (int)pid);
		return;
	}
	if (na == KEEL_NOTIFY_MAIN && pid != s->main_pid) {
		unit_log(mu, 4, "Got notification message from PID %d, but reception only permitted for main PID %d",
			 (int)pid, (int)s->main_pid);
		return;
	}
	if (na == KEEL_NOTIFY_EXEC && pid != s->main_pid && pid != s->control_pid) {
		unit_log(mu, 4, "Got notification message from PID %d, but reception only permitted for main PID and control PID",
			 (int)pid);
		return;
	}
	bool ready = false, stopping = false, reloading = false, watchdog = false;
	for (char *save = NULL, *line = strtok_r(msg, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		const char *v;
		if (strcmp(line, "READY=1") == 0) {
			ready = true;
		} else if (strcmp(line, "STOPPING=1") == 0) {
			stopping = true;
		} else if (strcmp(line, "RELOADING=1") == 0) {
			reloading = true;
		} else if (strcmp(line, "WATCHDOG=1") == 0) {
			watchdog = true;
		} else if (strcmp(line, "WATCHDOG=trigger") == 0) {
			keel_ev_timer_stop(mu->m->ev, &s->wd_timer);
			on_watchdog(&s->wd_timer);
			return;
		} else if ((v = keel_startswith(line, "STATUS="))) {
			keel_free(s->status_text);
			s->status_text = *v ? keel_strdup(v) : NULL;
			mgr_emit_unit_event(mu->m, mu);
		} else if ((v = keel_startswith(line, "MAINPID="))) {
			char *end;
			long p = strtol(v, &end, 10);
			if (*end || p <= 0) {
				unit_log(mu, 4, "Failed to parse MAINPID=%s field in notification message, ignoring.", v);
			} else if (p != s->main_pid && (mu->sub == S_START || mu->sub == S_START_POST || mu->sub == S_RUNNING ||
							 mu->sub == S_RELOAD)) {
				mgr_unwatch_pid(mu->m, s->main_pid);
				s->main_pid = (pid_t)p;
				s->main_pid_alien = true;
				mgr_watch_pid(mu->m, s->main_pid, mu);
			}
		} else if ((v = keel_startswith(line, "WATCHDOG_USEC="))) {
			uint64_t u;
			if (keel_safe_atou64(v, &u) == 0) {
				s->wd_usec = u;
				s->wd_override = true;
				watchdog = true;
			}
		} else if ((v = keel_startswith(line, "EXTEND_TIMEOUT_USEC="))) {
			uint64_t u;
			if (keel_safe_atou64(v, &u) == 0 && keel_ev_timer_armed(&s->timer))
				(void)!keel_ev_timer_start(mu->m->ev, &s->timer, keel_now_mono() + u);
		}
	}
	if (watchdog && (mu->sub == S_RUNNING || mu->sub == S_START_POST || mu->sub == S_RELOAD || mu->sub == S_START))
		start_watchdog(mu);
	if (stopping && (mu->sub == S_RUNNING || mu->sub == S_RELOAD)) {
		/* the service stops by itself: wait for it, as in stop-sigterm, without a signal */
		set_state(mu, S_STOP_SIGTERM);
		arm(mu, sv->timeout_stop_usec);
		return;
	}
	if (reloading && mu->sub == S_RUNNING) {
		s->reload_result = R_SUCCESS;
		set_state(mu, S_RELOAD);
		arm(mu, sv->timeout_start_usec);
	}
	if (ready) {
		s->notify_ready = true;
		if (mu->sub == S_START && sv->type == KEEL_SERVICE_NOTIFY)
			enter_start_post(mu);
		else if (mu->sub == S_RELOAD && s->control_pid == 0)
			enter_running(mu, R_SUCCESS);
	}
}

void svc_set_accept_fd(struct mu *mu, int fd)
{
	if (mu->rt.svc.accept_fd >= 0)
		close(mu->rt.svc.accept_fd);
	mu->rt.svc.accept_fd = fd;
}

static void svc_init(struct mu *mu)
{
	struct svc_rt *s = &mu->rt.svc;
	keel_ev_timer_init(&s->timer, on_timer, mu);
	keel_ev_timer_init(&s->wd_timer, on_watchdog, mu);
	s->accept_fd = -1;
	s->netns_fd = -1;
}

static void svc_done(struct mu *mu)
{
	struct svc_rt *s = &mu->rt.svc;
	keel_ev_timer_stop(mu->m->ev, &s->timer);
	keel_ev_timer_stop(mu->m->ev, &s->wd_timer);
	mgr_unwatch_pid(mu->m, s->main_pid);
	mgr_unwatch_pid(mu->m, s->control_pid);
	keel_free(s->status_text);
	s->status_text = NULL;
	private_tmp_remove(mu);
	svc_sandbox_stop(mu, false);
	if (s->accept_fd >= 0)
		close(s->accept_fd);
	s->accept_fd = -1;
	keel_free(s->trigger_unit);
	s->trigger_unit = NULL;
}

void svc_set_trigger(struct mu *mu, const char *timer, uint64_t real, uint64_t mono)
{
	struct svc_rt *s = &mu->rt.svc;
	char *copy = keel_strdup(timer);
	if (!copy)
		return; /* best effort, as systemd says of these variables */
	keel_free(s->trigger_unit);
	s->trigger_unit = copy;
	s->trigger_real = real;
	s->trigger_mono = mono;
}

static void svc_reset_failed(struct mu *mu)
{
	if (mu->sub == S_FAILED) {
		mu->rt.svc.result = R_SUCCESS;
		set_state(mu, S_DEAD);
	}
	mu->rt.svc.n_restarts = 0;
}

static bool svc_may_gc(struct mu *mu)
{
	return mu->sub == S_DEAD || mu->sub == S_FAILED;
}

const struct unit_vtable svc_vtable = {
	.start = svc_start,
	.stop = svc_stop,
	.reload = svc_reload,
	.sigchld = svc_sigchld,
	.cgroup_empty = svc_cgroup_empty,
	.reset_failed = svc_reset_failed,
	.sub_name = svc_sub_name,
	.done = svc_done,
	.init = svc_init,
	.may_gc = svc_may_gc,
};
