/* `exec`: a new process inside a container that runs. keel-run joins the pid namespace for its
 * children, clones the process (straight into the v2 cgroup with clone3), and the child enters
 * the v1 cgroups and the other namespaces of the container's init, then repeats the init's last
 * steps with the exec's process object: terminal, rlimits, cwd, no_new_privs, seccomp from the
 * container's config, user and capabilities. A close-on-exec socket tells the parent whether
 * the exec happened or why not. */
#include "run/container.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/sched.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/json.h"
#include "base/mem.h"
#include "base/str.h"
#include "base/sys.h"
#include "run/container-internal.h"
#include "run/state.h"

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

/* /proc/<pid>/ns/<name> for each kind, and the order the child joins them in: the user
 * namespace first (its powers then apply), mnt last (paths change with it). pid is the
 * parent's (setns on pid only affects children). */
static const struct {
	enum keel_ns_kind kind;
	const char *proc;
} ns_order[] = {
	{KEEL_NS_USER, "user"}, {KEEL_NS_IPC, "ipc"}, {KEEL_NS_UTS, "uts"}, {KEEL_NS_NET, "net"},
	{KEEL_NS_CGROUP, "cgroup"}, {KEEL_NS_TIME, "time"}, {KEEL_NS_MNT, "mnt"},
};

struct exec_child {
	const struct keel_spec *spec;
	const struct keel_cgroup *cg;
	bool in_v2;
	int sync_fd, console_fd;
	int ns_fd[KEEL_ARRAY_SIZE(ns_order)];
	unsigned preserve_fds;
};

KEEL_NORETURN static void child_fail(struct exec_child *c, struct keel_err *err)
{
	keel_err_wrap(err, "unable to start container process");
	if (keel__msg_send(c->sync_fd, KEEL__MSG_ERR, err->code, keel_err_msg(err)) < 0)
		dprintf(2, "keel-run: %s\n", keel_err_msg(err));
	_exit(127);
}

KEEL_NORETURN static void exec_child_main(struct exec_child *c)
{
	const struct keel_spec *s = c->spec;
	struct keel_err err;
	char exe[4096];
	keel_err_clear(&err);
	prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
	if (keel_cgroup_enter_self(c->cg, c->in_v2, &err) < 0)
		child_fail(c, &err);
	for (size_t i = 0; i < KEEL_ARRAY_SIZE(ns_order); i++) {
		if (c->ns_fd[i] < 0)
			continue;
		enum keel_ns_kind k = ns_order[i].kind;
		if (setns(c->ns_fd[i], keel_ns_clone_flag(k)) < 0) {
			keel_err_errno(&err, -errno, "joining the container's %s namespace", keel_ns_name(k));
			child_fail(c, &err);
		}
		close(c->ns_fd[i]);
		if (k == KEEL_NS_USER && (setresgid(0, 0, 0) < 0 || setresuid(0, 0, 0) < 0)) {
			keel_err_errno(&err, -errno, "becoming root in the container's user namespace");
			child_fail(c, &err);
		}
	}
	if (s->process.has_oom_score_adj) {
		char buf[16];
		int n = snprintf(buf, sizeof(buf), "%d", s->process.oom_score_adj);
		int fd = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);
		if (fd < 0 || write(fd, buf, (size_t)n) != n) {
			keel_err_errno(&err, -errno, "setting process.oomScoreAdj to %s", buf);
			child_fail(c, &err);
		}
		close(fd);
	}
	if (s->process.terminal && keel__setup_console(&c->console_fd, s, false, &err) < 0)
		child_fail(c, &err);
	if (keel__set_rlimits(s, &err) < 0 || keel__find_exec(s, exe, sizeof(exe), &err) < 0)
		child_fail(c, &err);
	if (chdir(s->process.cwd) < 0) {
		keel_err_errno(&err, -errno, "chdir to process.cwd %s", s->process.cwd);
		child_fail(c, &err);
	}
	if (s->process.no_new_privileges && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
		keel_err_errno(&err, -errno, "PR_SET_NO_NEW_PRIVS");
		child_fail(c, &err);
	}
	if (s->seccomp && !s->process.no_new_privileges && keel__seccomp_load(s->seccomp, &err) < 0)
		child_fail(c, &err);
	if (keel__set_caps_and_user(s, &err) < 0)
		child_fail(c, &err);
	umask(s->process.has_umask ? s->process.umask : 022);
	if (s->seccomp && s->process.no_new_privileges && keel__seccomp_load(s->seccomp, &err) < 0)
		child_fail(c, &err);
	prctl(PR_SET_PDEATHSIG, 0, 0, 0, 0);
	syscall(SYS_close_range, 3 + c->preserve_fds, ~0U, CLOSE_RANGE_CLOEXEC);
	/* The sync socket is above the preserved ones (moved there by the parent's layout) or
	 * close-on-exec anyway: make sure. */
	fcntl(c->sync_fd, F_SETFD, FD_CLOEXEC);
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	static char *const empty_env[] = {NULL};
	execve(exe, (char *const *)s->process.args, s->process.env ? (char *const *)s->process.env : empty_env);
	keel_err_errno(&err, -errno, "exec %s", exe);
	child_fail(c, &err);
}

/* ---- the process object ---- */

static int json_set_strv(json_t *obj, const char *key, char *const *v)
{
	json_t *a = json_array();
	for (size_t i = 0; a && v && v[i]; i++)
		if (json_array_append_new(a, json_string(v[i])) < 0) {
			json_decref(a);
			return -ENOMEM;
		}
	return a && json_object_set_new(obj, key, a) == 0 ? 0 : -ENOMEM;
}

/* runc's `exec` flags applied to a copy of the config's process. */
static int process_from_flags(const struct keel_exec_opts *o, json_t *doc, struct keel_err *err)
{
	json_t *cfg = json_object_get(doc, "process");
	json_t *p = json_is_object(cfg) ? json_deep_copy(cfg) : json_pack("{s{sisi}ss}", "user", "uid", 0, "gid", 0, "cwd", "/");
	if (!p)
		return keel_err_set(err, -ENOMEM, "out of memory");
	int r = 0;
	if (!o->args || !o->args[0]) {
		r = keel_err_set(err, -EINVAL, "exec: no command given (args or --process)");
		goto out;
	}
	if (json_set_strv(p, "args", o->args) < 0)
		goto nomem;
	json_object_set_new(p, "terminal", json_boolean(o->tty));
	json_object_del(p, "consoleSize");
	if (o->cwd)
		json_object_set_new(p, "cwd", json_string(o->cwd));
	json_t *env = json_object_get(p, "env");
	if (!json_is_array(env)) {
		env = json_array();
		json_object_set_new(p, "env", env);
	}
	for (size_t i = 0; o->env && o->env[i]; i++) {
		const char *eq = strchr(o->env[i], '=');
		size_t klen = eq ? (size_t)(eq - o->env[i]) + 1 : strlen(o->env[i]);
		size_t k;
		json_t *v;
		bool replaced = false;
		json_array_foreach(env, k, v)
			if (json_is_string(v) && strncmp(json_string_value(v), o->env[i], klen) == 0) {
				json_array_set_new(env, k, json_string(o->env[i]));
				replaced = true;
				break;
			}
		if (!replaced)
			json_array_append_new(env, json_string(o->env[i]));
	}
	if (o->user || o->gids) {
		json_t *u = json_object_get(p, "user");
		if (!json_is_object(u)) {
			u = json_pack("{sisi}", "uid", 0, "gid", 0);
			json_object_set_new(p, "user", u);
		}
		if (o->user) {
			uint64_t uid, gid;
			char buf[64];
			snprintf(buf, sizeof(buf), "%s", o->user);
			char *colon = strchr(buf, ':');
			if (colon)
				*colon++ = 0;
			if (keel_parse_u64(buf, &uid) < 0 || uid >= UINT32_MAX ||
			    (colon && (keel_parse_u64(colon, &gid) < 0 || gid >= UINT32_MAX))) {
				r = keel_err_set(err, -EINVAL, "exec --user: \"%s\" is not UID[:GID] (names are not "
						 "looked up)", o->user);
				goto out;
			}
			json_object_set_new(u, "uid", json_integer((json_int_t)uid));
			if (colon)
				json_object_set_new(u, "gid", json_integer((json_int_t)gid));
		}
		if (o->gids) {
			json_t *a = json_array();
			for (size_t i = 0; o->gids[i]; i++) {
				uint64_t g;
				if (keel_parse_u64(o->gids[i], &g) < 0 || g >= UINT32_MAX) {
					json_decref(a);
					r = keel_err_set(err, -EINVAL, "exec --additional-gids: \"%s\" is not a gid",
							 o->gids[i]);
					goto out;
				}
				json_array_append_new(a, json_integer((json_int_t)g));
			}
			json_object_set_new(u, "additionalGids", a);
		}
	}
	if (o->caps && o->caps[0]) {
		json_t *caps = json_object_get(p, "capabilities");
		if (!json_is_object(caps)) {
			caps = json_object();
			json_object_set_new(p, "capabilities", caps);
		}
		static const char *const sets[] = {"bounding", "effective", "permitted", "ambient"};
		for (size_t s = 0; s < KEEL_ARRAY_SIZE(sets); s++) {
			json_t *a = json_object_get(caps, sets[s]);
			if (!json_is_array(a)) {
				a = json_array();
				json_object_set_new(caps, sets[s], a);
			}
			for (size_t i = 0; o->caps[i]; i++)
				json_array_append_new(a, json_string(o->caps[i]));
		}
	}
	if (o->no_new_privs)
		json_object_set_new(p, "noNewPrivileges", json_true());
	if (o->apparmor)
		json_object_set_new(p, "apparmorProfile", json_string(o->apparmor));
	if (o->label)
		json_object_set_new(p, "selinuxLabel", json_string(o->label));
	if (json_object_set(doc, "process", p) < 0)
		goto nomem;
	goto out;
nomem:
	r = keel_err_set(err, -ENOMEM, "out of memory");
out:
	json_decref(p);
	return r;
}

static int exec_spec(const struct keel_exec_opts *o, const struct keel_cstate *st,
		     struct keel_spec **ret, struct keel_err *err)
{
	char cfg[PATH_MAX + 16];
	json_t *doc, *proc = NULL;
	snprintf(cfg, sizeof(cfg), "%s/config.json", st->bundle);
	int r = keel_json_load_file(cfg, &doc, err);
	if (r < 0)
		return keel_err_wrap(err, "the container's config");
	if (o->process_file) {
		json_error_t je;
		proc = strcmp(o->process_file, "-") == 0 ? json_loadf(stdin, 0, &je)
							 : json_load_file(o->process_file, 0, &je);
		if (!proc) {
			json_decref(doc);
			return keel_err_set(err, -KEEL_EPARSE, "exec --process %s: %s (line %d)",
					    o->process_file, je.text, je.line);
		}
		if (!json_is_object(proc)) {
			json_decref(proc);
			json_decref(doc);
			return keel_err_set(err, -KEEL_ETYPE, "exec --process %s: must hold a process object",
					    o->process_file);
		}
		if (o->tty)
			json_object_set_new(proc, "terminal", json_true());
		json_object_set_new(doc, "process", proc);
	} else if ((r = process_from_flags(o, doc, err)) < 0) {
		json_decref(doc);
		return r;
	}
	r = keel_spec_parse_json(doc, ret, err);
	if (r < 0 && o->process_file && r != -ENOMEM)
		return keel_err_wrap(err, "exec --process %s", o->process_file);
	return r;
}

/* ---- the parent ---- */

static int open_console(const char *path, struct keel_err *err)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	if (strlen(path) >= sizeof(sa.sun_path))
		return keel_err_set(err, -ENAMETOOLONG, "console socket path too long");
	strcpy(sa.sun_path, path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return keel_err_errno(err, -errno, "console socket");
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int r = -errno;
		close(fd);
		return keel_err_errno(err, r, "connecting to console socket %s", path);
	}
	return fd;
}

static bool same_ns(pid_t pid, const char *name)
{
	char path[64];
	struct stat a, b;
	snprintf(path, sizeof(path), "/proc/%d/ns/%s", (int)pid, name);
	if (stat(path, &a) < 0)
		return true;
	snprintf(path, sizeof(path), "/proc/self/ns/%s", name);
	return stat(path, &b) == 0 && a.st_ino == b.st_ino && a.st_dev == b.st_dev;
}

static const int forwarded[] = {SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2,
				SIGWINCH, SIGALRM, SIGCONT, SIGTSTP, SIGPIPE};

int keel_container_exec(const struct keel_exec_opts *o, int *ret_status, struct keel_err *err)
{
	struct keel_cstate st = {0};
	struct keel_spec *spec = NULL;
	struct keel_cgroup cg = {.v2_fd = -1};
	struct exec_child c = {.sync_fd = -1, .console_fd = -1, .preserve_fds = o->preserve_fds};
	int sv[2] = {-1, -1}, pid_ns = -1, own_pid_ns = -1, r;
	bool have_cg = false;
	pid_t pid = -1;
	sigset_t set, old;
	sigemptyset(&set);
	sigemptyset(&old);
	for (size_t i = 0; i < KEEL_ARRAY_SIZE(c.ns_fd); i++)
		c.ns_fd[i] = -1;
	*ret_status = 0;

	int dirfd = keel_cstate_lock(o->root, o->id, false, err);
	if (dirfd < 0)
		return dirfd;
	if ((r = keel_cstate_load(dirfd, o->id, &st, err)) < 0)
		goto out;
	switch (keel_cstate_status(dirfd, &st)) {
	case KEEL_CSTATUS_STOPPED:
		r = keel_err_set(err, -ESRCH, "cannot exec in a stopped container");
		goto out;
	case KEEL_CSTATUS_PAUSED:
		r = keel_err_set(err, -EBUSY, "cannot exec in a paused container");
		goto out;
	default:
		break;
	}
	if ((r = exec_spec(o, &st, &spec, err)) < 0)
		goto out;
	if (spec->process.terminal && !o->console_socket) {
		r = keel_err_set(err, -EINVAL, "exec --tty needs --console-socket (keel-run has no terminal "
				 "relay of its own yet)");
		goto out;
	}
	if ((r = keel_cgroup_load(&cg, st.cgroup_mode, st.cgroup_names, st.cgroup_paths, true, err)) < 0)
		goto out;
	have_cg = true;
	for (size_t i = 0; i < KEEL_ARRAY_SIZE(ns_order); i++) {
		if (same_ns(st.pid, ns_order[i].proc))
			continue;
		char path[64];
		snprintf(path, sizeof(path), "/proc/%d/ns/%s", (int)st.pid, ns_order[i].proc);
		if ((c.ns_fd[i] = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
			r = keel_err_errno(err, -errno, "opening %s", path);
			goto out;
		}
	}
	if (!same_ns(st.pid, "pid")) {
		char path[64];
		snprintf(path, sizeof(path), "/proc/%d/ns/pid", (int)st.pid);
		if ((pid_ns = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
			r = keel_err_errno(err, -errno, "opening %s", path);
			goto out;
		}
	}
	/* The init must still be the one the state names, now that its namespaces are open. */
	if (!keel_pid_alive(st.pid, st.pid_start)) {
		r = keel_err_set(err, -ESRCH, "cannot exec in a stopped container");
		goto out;
	}
	if (spec->process.terminal && (r = c.console_fd = open_console(o->console_socket, err)) < 0)
		goto out;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
		r = keel_err_errno(err, -errno, "socketpair");
		goto out;
	}
	/* Keep the child's end clear of the fds it must pass on (3 .. 3+preserve_fds-1). */
	if ((unsigned)sv[1] < 3 + o->preserve_fds) {
		int fd = fcntl(sv[1], F_DUPFD_CLOEXEC, 3 + (int)o->preserve_fds);
		if (fd < 0) {
			r = keel_err_errno(err, -errno, "fcntl");
			goto out;
		}
		close(sv[1]);
		sv[1] = fd;
	}
	/* Only for the clone: children made later (LeakSanitizer's tracer, for one) must stay in
	 * keel-run's own pid namespace, where they can see it. */
	if (pid_ns >= 0 && ((own_pid_ns = open("/proc/self/ns/pid", O_RDONLY | O_CLOEXEC)) < 0 ||
			    setns(pid_ns, CLONE_NEWPID) < 0)) {
		r = keel_err_errno(err, -errno, "joining the container's pid namespace");
		goto out;
	}
	c.spec = spec;
	c.cg = &cg;
	c.sync_fd = sv[1];
	if (!o->detach) {
		sigemptyset(&set);
		sigaddset(&set, SIGCHLD);
		for (size_t i = 0; i < KEEL_ARRAY_SIZE(forwarded); i++)
			sigaddset(&set, forwarded[i]);
		sigprocmask(SIG_BLOCK, &set, &old);
	}
	if (cg.v2_fd >= 0) {
		struct clone_args ca = {.flags = CLONE_INTO_CGROUP, .exit_signal = SIGCHLD,
					.cgroup = (uint64_t)cg.v2_fd};
		c.in_v2 = true;
		pid = (pid_t)syscall(SYS_clone3, &ca, sizeof(ca));
		if (pid == 0) {
			close(sv[0]);
			close(dirfd);
			if (own_pid_ns >= 0)
				close(own_pid_ns);
			exec_child_main(&c);
		}
		c.in_v2 = false;
	}
	if (pid < 0 && (cg.v2_fd < 0 || errno == ENOSYS || errno == E2BIG || errno == EINVAL)) {
		pid = fork();
		if (pid == 0) {
			close(sv[0]);
			close(dirfd);
			if (own_pid_ns >= 0)
				close(own_pid_ns);
			exec_child_main(&c);
		}
	}
	int clone_errno = errno;
	if (own_pid_ns >= 0 && setns(own_pid_ns, CLONE_NEWPID) < 0)
		keel_assert(!"cannot return to our own pid namespace");
	if (pid < 0) {
		r = keel_err_errno(err, -clone_errno, "clone");
		goto out_mask;
	}
	close(sv[1]);
	sv[1] = -1;
	/* Others may now work on the container; we only wait. */
	flock(dirfd, LOCK_UN);
	struct keel__msg m;
	if (keel__msg_recv(sv[0], &m) == 0 && m.type == KEEL__MSG_ERR) {
		r = keel_err_set(err, m.value < 0 ? m.value : -KEEL_EBASE, "%s", m.text);
		kill(pid, SIGKILL);
		while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
			;
		goto out_mask;
	}
	if (o->pid_file && (r = keel__write_pid_file(o->pid_file, pid, err)) < 0) {
		kill(pid, SIGKILL);
		while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
			;
		goto out_mask;
	}
	if (o->detach) {
		r = 0;
		goto out;
	}
	int status = 0;
	for (;;) {
		pid_t w = waitpid(pid, &status, WNOHANG);
		if (w == pid)
			break;
		if (w < 0 && errno != EINTR)
			break;
		siginfo_t si;
		int sig = sigwaitinfo(&set, &si);
		if (sig < 0 || sig == SIGCHLD)
			continue;
		kill(pid, sig);
	}
	*ret_status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
	r = 0;
out_mask:
	if (!o->detach)
		sigprocmask(SIG_SETMASK, &old, NULL);
out:
	for (size_t i = 0; i < KEEL_ARRAY_SIZE(c.ns_fd); i++)
		if (c.ns_fd[i] >= 0)
			close(c.ns_fd[i]);
	int fds[] = {pid_ns, own_pid_ns, c.console_fd, sv[0], sv[1], dirfd};
	for (size_t i = 0; i < KEEL_ARRAY_SIZE(fds); i++)
		if (fds[i] >= 0)
			close(fds[i]);
	if (have_cg)
		keel_cgroup_free(&cg);
	keel_spec_free(spec);
	keel_cstate_free(&st);
	return r;
}
