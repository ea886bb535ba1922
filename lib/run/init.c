/* The container's init between clone and exec: namespaces, the root file system (rootfs.c),
 * terminal, rlimits, user, capabilities, no_new_privs, seccomp, then waiting to be started.
 * It runs in a fork-like copy of keel-run (no re-exec), so it sees the parsed spec directly. */
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <termios.h>
#include <net/if.h>
#include <netinet/in.h>
#include <unistd.h>
#include <grp.h>

#include "base/buf.h"
#include "base/str.h"
#include "run/container-internal.h"
#include "run/hooks.h"

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

int keel__msg_send(int fd, enum keel__msg_type type, int32_t value, const char *text)
{
	struct keel__msg m = {.type = type, .value = value};
	size_t len = offsetof(struct keel__msg, text);
	if (text) {
		snprintf(m.text, sizeof(m.text), "%s", text);
		len += strlen(m.text) + 1;
	}
	while (send(fd, &m, len, MSG_NOSIGNAL) < 0)
		if (errno != EINTR)
			return -errno;
	return 0;
}

int keel__msg_recv(int fd, struct keel__msg *m)
{
	ssize_t n;
	memset(m, 0, sizeof(*m));
	while ((n = recv(fd, m, sizeof(*m), 0)) < 0)
		if (errno != EINTR)
			return -errno;
	if (n == 0)
		return -EPIPE;
	if ((size_t)n < offsetof(struct keel__msg, text))
		return -EPROTO;
	m->text[sizeof(m->text) - 1] = 0;
	return 0;
}

KEEL_NORETURN static void fail(struct keel__init *c, struct keel_err *err)
{
	const char *msg = keel_err_msg(err);
	if (keel__msg_send(c->sync_fd, KEEL__MSG_ERR, err->code, msg) < 0) {
		/* Nobody listens any more (the container was started): stderr is all there is. */
		dprintf(2, "keel-run: %s\n", msg);
	}
	_exit(127);
}

static int set_user_ns_root(struct keel_err *err)
{
	if (setresgid(0, 0, 0) < 0)
		return keel_err_errno(err, -errno, "setresgid(0) in the user namespace (is gid 0 mapped?)");
	if (setresuid(0, 0, 0) < 0)
		return keel_err_errno(err, -errno, "setresuid(0) in the user namespace (is uid 0 mapped?)");
	return 0;
}

static int join_namespaces(struct keel__init *c, struct keel_err *err)
{
	/* The user namespace first: the others are then entered (and made) with its powers. */
	static const enum keel_ns_kind order[] = {KEEL_NS_USER, KEEL_NS_IPC, KEEL_NS_UTS, KEEL_NS_NET,
						  KEEL_NS_CGROUP, KEEL_NS_TIME};
	for (size_t i = 0; i < KEEL_ARRAY_SIZE(order); i++) {
		enum keel_ns_kind k = order[i];
		if (c->ns_fd[k] < 0)
			continue;
		if (setns(c->ns_fd[k], keel_ns_clone_flag(k)) < 0)
			return keel_err_errno(err, -errno, "joining the %s namespace %s", keel_ns_name(k),
					      c->spec->ns_path[k]);
		close(c->ns_fd[k]);
		c->ns_fd[k] = -1;
		if (k == KEEL_NS_USER && set_user_ns_root(err) < 0)
			return err->code;
	}
	return 0;
}

/* Into the cgroups first, while our uid is still the host's root (before a user namespace maps
 * it away), and before anything is charged; then oomScoreAdj, which children inherit. */
static int enter_cgroups(struct keel__init *c, struct keel_err *err)
{
	const struct keel_spec *s = c->spec;
	if (keel_cgroup_enter_self(c->cg, c->in_v2_cgroup, err) < 0)
		return err->code;
	if (s->process.has_oom_score_adj) {
		char buf[16];
		int n = snprintf(buf, sizeof(buf), "%d", s->process.oom_score_adj);
		int fd = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);
		int r = fd < 0 || write(fd, buf, (size_t)n) != n ? -errno : 0;
		if (fd >= 0)
			close(fd);
		if (r < 0)
			return keel_err_errno(err, r, "setting process.oomScoreAdj to %s", buf);
	}
	return 0;
}

static void close_parent_fds(struct keel__init *c)
{
	for (size_t i = 0; i < KEEL_ARRAY_SIZE(c->close_fds); i++)
		if (c->close_fds[i] >= 0)
			close(c->close_fds[i]);
}

/* A joined user namespace owns the namespaces made from inside it, and a new pid namespace holds
 * only the children of whoever made it: so this helper, a child of keel-run, enters the cgroups
 * as the host's root, joins the user namespace and clones the init with the new namespaces and
 * CLONE_PARENT (the init is keel-run's child, pid 1 of its own pid namespace), then exits. */
KEEL_NORETURN void keel__init_helper(struct keel__init *c)
{
	struct keel_err err;
	keel_err_clear(&err);
	prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
	close_parent_fds(c);
	if (enter_cgroups(c, &err) < 0)
		fail(c, &err);
	int fd = c->ns_fd[KEEL_NS_USER];
	if (setns(fd, CLONE_NEWUSER) < 0) {
		keel_err_errno(&err, -errno, "joining the user namespace %s", c->spec->ns_path[KEEL_NS_USER]);
		fail(c, &err);
	}
	close(fd);
	c->ns_fd[KEEL_NS_USER] = -1;
	if (set_user_ns_root(&err) < 0)
		fail(c, &err);
	c->via_helper = true;
	pid_t pid = (pid_t)syscall(SYS_clone, c->helper_clone_flags | CLONE_PARENT | SIGCHLD, NULL, NULL,
				   NULL, 0);
	if (pid == 0)
		keel__init_main(c);
	if (pid < 0) {
		keel_err_errno(&err, -errno, "clone of the init inside the user namespace");
		fail(c, &err);
	}
	_exit(0);
}

int keel__setup_console(int *console_fd, const struct keel_spec *spec, bool dev_console,
			struct keel_err *err)
{
	char name[64];
	int master = open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (master < 0)
		return keel_err_errno(err, -errno, "opening /dev/ptmx (is devpts mounted on /dev/pts?)");
	int r = 0;
	if (unlockpt(master) < 0 || ptsname_r(master, name, sizeof(name)) != 0) {
		r = keel_err_errno(err, -errno, "setting up the pty");
		goto out;
	}
	int slave = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (slave < 0) {
		r = keel_err_errno(err, -errno, "opening %s", name);
		goto out;
	}
	if (spec->process.console_height || spec->process.console_width) {
		struct winsize ws = {.ws_row = (unsigned short)spec->process.console_height,
				     .ws_col = (unsigned short)spec->process.console_width};
		ioctl(slave, TIOCSWINSZ, &ws);
	}
	/* /dev/console is the terminal too (runtime-spec config-linux.md "Devices"). */
	int cf = dev_console ? open("/dev/console", O_CREAT | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0600) : -1;
	if (cf >= 0) {
		close(cf);
		if (mount(name, "/dev/console", NULL, MS_BIND, NULL) < 0) {
			r = keel_err_errno(err, -errno, "bind mounting %s on /dev/console", name);
			close(slave);
			goto out;
		}
	}
	/* Hand the master to whoever listens on --console-socket, as runc does (SCM_RIGHTS, the
	 * pty's name as the payload). */
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} u;
	struct iovec iov = {.iov_base = name, .iov_len = strlen(name)};
	struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
			     .msg_controllen = sizeof(u.buf)};
	struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &master, sizeof(int));
	if (sendmsg(*console_fd, &msg, MSG_NOSIGNAL) < 0) {
		r = keel_err_errno(err, -errno, "sending the pty to the console socket");
		close(slave);
		goto out;
	}
	close(*console_fd);
	*console_fd = -1;
	if (setsid() < 0 || ioctl(slave, TIOCSCTTY, 0) < 0) {
		r = keel_err_errno(err, -errno, "making the pty the controlling terminal");
		close(slave);
		goto out;
	}
	for (int fd = 0; fd < 3; fd++)
		if (dup2(slave, fd) < 0) {
			r = keel_err_errno(err, -errno, "dup2 of the pty");
			break;
		}
	close(slave);
out:
	close(master);
	return r;
}

int keel__set_rlimits(const struct keel_spec *s, struct keel_err *err)
{
	static const char *const names[] = {
		[RLIMIT_CPU] = "RLIMIT_CPU", [RLIMIT_FSIZE] = "RLIMIT_FSIZE", [RLIMIT_DATA] = "RLIMIT_DATA",
		[RLIMIT_STACK] = "RLIMIT_STACK", [RLIMIT_CORE] = "RLIMIT_CORE", [RLIMIT_RSS] = "RLIMIT_RSS",
		[RLIMIT_NPROC] = "RLIMIT_NPROC", [RLIMIT_NOFILE] = "RLIMIT_NOFILE",
		[RLIMIT_MEMLOCK] = "RLIMIT_MEMLOCK", [RLIMIT_AS] = "RLIMIT_AS", [RLIMIT_LOCKS] = "RLIMIT_LOCKS",
		[RLIMIT_SIGPENDING] = "RLIMIT_SIGPENDING", [RLIMIT_MSGQUEUE] = "RLIMIT_MSGQUEUE",
		[RLIMIT_NICE] = "RLIMIT_NICE", [RLIMIT_RTPRIO] = "RLIMIT_RTPRIO", [RLIMIT_RTTIME] = "RLIMIT_RTTIME",
	};
	for (size_t i = 0; i < s->process.n_rlimits; i++) {
		const struct keel_spec_rlimit *rl = &s->process.rlimits[i];
		struct rlimit v = {rl->soft, rl->hard};
		if (setrlimit(rl->resource, &v) == 0)
			continue;
		int e = errno;
		struct rlimit cur;
		getrlimit(rl->resource, &cur);
		if (e == EPERM && rl->hard > cur.rlim_max)
			return keel_err_set(err, -EPERM, "setrlimit %s: hard limit %llu is above the current "
					    "hard limit %llu, and raising it needs CAP_SYS_RESOURCE",
					    names[rl->resource], (unsigned long long)rl->hard,
					    (unsigned long long)cur.rlim_max);
		return keel_err_errno(err, -e, "setrlimit %s", names[rl->resource]);
	}
	return 0;
}

/* The executable, looked up in the container's PATH as execvp would, so that a missing binary
 * fails `create` rather than the later `start` (as runc). */
int keel__find_exec(const struct keel_spec *s, char *out, size_t size, struct keel_err *err)
{
	const char *arg0 = s->process.args[0];
	if (strchr(arg0, '/')) {
		if (access(arg0, X_OK) < 0)
			return keel_err_errno(err, -errno, "exec: \"%s\"", arg0);
		snprintf(out, size, "%s", arg0);
		return 0;
	}
	const char *path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
	for (size_t i = 0; s->process.env && s->process.env[i]; i++)
		if (keel_startswith(s->process.env[i], "PATH="))
			path = s->process.env[i] + 5;
	for (const char *p = path;;) {
		const char *e = strchrnul(p, ':');
		int n = snprintf(out, size, "%.*s%s%s", (int)(e - p), p, e == p ? "" : "/", arg0);
		struct stat st;
		if (n > 0 && (size_t)n < size && stat(out, &st) == 0 && S_ISREG(st.st_mode) &&
		    access(out, X_OK) == 0)
			return 0;
		if (!*e)
			break;
		p = e + 1;
	}
	return keel_err_set(err, -ENOENT, "exec: \"%s\": executable file not found in $PATH", arg0);
}

int keel__set_caps_and_user(const struct keel_spec *s, struct keel_err *err)
{
	const uint64_t *caps = s->process.caps;
	if (s->process.has_caps) {
		for (int cap = 0; cap < 64; cap++)
			if (!(caps[0] & (1ull << cap)) && prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0 &&
			    errno != EINVAL)
				return keel_err_errno(err, -errno, "dropping %s from the bounding set",
						      keel_cap_name(cap) ? keel_cap_name(cap) : "a capability");
		if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0)
			return keel_err_errno(err, -errno, "PR_SET_KEEPCAPS");
	}
	_Static_assert(sizeof(gid_t) == sizeof(uint32_t), "gid_t is 32 bits");
	if (setgroups(s->process.n_gids, (const gid_t *)s->process.gids) < 0)
		return keel_err_errno(err, -errno, "setgroups");
	if (setresgid(s->process.gid, s->process.gid, s->process.gid) < 0)
		return keel_err_errno(err, -errno, "setresgid(%u)", s->process.gid);
	if (setresuid(s->process.uid, s->process.uid, s->process.uid) < 0)
		return keel_err_errno(err, -errno, "setresuid(%u)", s->process.uid);
	if (!s->process.has_caps)
		return 0;
	if (prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) < 0)
		return keel_err_errno(err, -errno, "PR_SET_KEEPCAPS");
	struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
	struct __user_cap_data_struct data[2];
	for (int i = 0; i < 2; i++) {
		data[i].effective = (uint32_t)(caps[1] >> (32 * i));
		data[i].inheritable = (uint32_t)(caps[2] >> (32 * i));
		data[i].permitted = (uint32_t)(caps[3] >> (32 * i));
	}
	if (syscall(SYS_capset, &hdr, data) < 0)
		return keel_err_errno(err, -errno, "capset");
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
		return keel_err_errno(err, -errno, "clearing ambient capabilities");
	/* The kernel raises an ambient capability only if it is permitted and inheritable too;
	 * like runc, take the others as not raised (that grants less, never more). */
	for (int cap = 0; cap < 64; cap++)
		if ((caps[4] & (1ull << cap)) && prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap, 0, 0) < 0 &&
		    errno != EPERM)
			return keel_err_errno(err, -errno, "raising ambient %s", keel_cap_name(cap));
	return 0;
}

static int run_container_hooks(struct keel__init *c, enum keel_hook_kind kind, const char *status,
			       struct keel_err *err)
{
	const struct keel_spec_hooks *h = &c->spec->hooks[kind];
	if (!h->n)
		return 0;
	struct keel_buf b = KEEL_BUF_INIT;
	int r = keel_hook_state_json(c->id, status, c->host_pid, c->bundle, c->spec->annotations, &b);
	if (r < 0)
		r = keel_err_set(err, r, "building the hooks' state");
	else
		r = keel_hooks_run(h, kind, b.data, err);
	keel_buf_free(&b);
	return r;
}

/* A new network namespace gets its loopback interface up, as runc and crun do (podman's
 * --network none and pods rely on 127.0.0.1 working). */
static int loopback_up(struct keel_err *err)
{
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return keel_err_errno(err, -errno, "socket for bringing up lo");
	struct ifreq ifr;
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "lo");
	int r = 0;
	if (ioctl(fd, SIOCGIFFLAGS, &ifr) < 0) {
		r = keel_err_errno(err, -errno, "reading the flags of lo");
	} else if (!(ifr.ifr_flags & IFF_UP)) {
		ifr.ifr_flags |= IFF_UP;
		if (ioctl(fd, SIOCSIFFLAGS, &ifr) < 0)
			r = keel_err_errno(err, -errno, "bringing up lo");
	}
	close(fd);
	return r;
}

KEEL_NORETURN void keel__init_main(struct keel__init *c)
{
	const struct keel_spec *s = c->spec;
	struct keel_err err;
	struct keel__msg m;
	char exe[4096];
	keel_err_clear(&err);

	prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
	if (c->via_helper) {
		/* keel-run learns our pid from this message's credentials. */
		if (keel__msg_send(c->sync_fd, KEEL__MSG_HELLO, 0, NULL) < 0)
			_exit(1);
	} else {
		close_parent_fds(c);
	}
	if (keel__msg_recv(c->sync_fd, &m) < 0 || m.type != KEEL__MSG_GO)
		_exit(1); /* the parent failed: it reports and cleans up */
	c->host_pid = m.value;

	if (!c->via_helper && enter_cgroups(c, &err) < 0)
		fail(c, &err);
	if ((s->ns_new & (1u << KEEL_NS_USER)) && set_user_ns_root(&err) < 0)
		fail(c, &err);
	if (join_namespaces(c, &err) < 0)
		fail(c, &err);
	/* Made only now, so that its root is the container's cgroup. */
	if (c->new_cgroupns && unshare(CLONE_NEWCGROUP) < 0) {
		keel_err_errno(&err, -errno, "unshare(CLONE_NEWCGROUP)");
		fail(c, &err);
	}
	if ((s->ns_new & (1u << KEEL_NS_NET)) && loopback_up(&err) < 0)
		fail(c, &err);
	if (s->hostname && sethostname(s->hostname, strlen(s->hostname)) < 0) {
		keel_err_errno(&err, -errno, "sethostname");
		fail(c, &err);
	}
	if (s->domainname && setdomainname(s->domainname, strlen(s->domainname)) < 0) {
		keel_err_errno(&err, -errno, "setdomainname");
		fail(c, &err);
	}
	if (keel__rootfs_prepare(c, &err) < 0)
		fail(c, &err);
	if (s->hooks[KEEL_HOOK_PRESTART].n || s->hooks[KEEL_HOOK_CREATE_RUNTIME].n) {
		/* prestart and createRuntime run in the runtime's namespaces: the parent runs them
		 * while we wait, namespaces made and mounts done, before pivot_root. */
		if (keel__msg_send(c->sync_fd, KEEL__MSG_HOOKS, 0, NULL) < 0 ||
		    keel__msg_recv(c->sync_fd, &m) < 0 || m.type != KEEL__MSG_GO)
			_exit(1);
	}
	if (run_container_hooks(c, KEEL_HOOK_CREATE_CONTAINER, "created", &err) < 0)
		fail(c, &err);
	if (keel__rootfs_pivot(c, &err) < 0)
		fail(c, &err);
	if (s->process.terminal && keel__setup_console(&c->console_fd, s, true, &err) < 0)
		fail(c, &err);
	if (keel__rootfs_finish(c, &err) < 0)
		fail(c, &err);
	if (keel__set_rlimits(s, &err) < 0)
		fail(c, &err);
	if (keel__find_exec(s, exe, sizeof(exe), &err) < 0)
		fail(c, &err);
	if (chdir(s->process.cwd) < 0) {
		keel_err_errno(&err, -errno, "chdir to process.cwd %s", s->process.cwd);
		fail(c, &err);
	}
	if (s->process.no_new_privileges && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
		keel_err_errno(&err, -errno, "PR_SET_NO_NEW_PRIVS");
		fail(c, &err);
	}
	/* Without no_new_privs, loading a filter needs CAP_SYS_ADMIN: load it before the
	 * capabilities go. With it, as late as possible so the filter binds only the user's
	 * process (runc's order). */
	if (s->seccomp && !s->process.no_new_privileges && keel__seccomp_load(s->seccomp, &err) < 0)
		fail(c, &err);
	if (keel__set_caps_and_user(s, &err) < 0)
		fail(c, &err);
	if (s->process.has_umask)
		umask(s->process.umask);
	else
		umask(022);
	/* The process is the user's now: from here on nothing ties it to keel-run's lifetime. */
	prctl(PR_SET_PDEATHSIG, 0, 0, 0, 0);
	if (keel__msg_send(c->sync_fd, KEEL__MSG_READY, 0, NULL) < 0)
		_exit(1);
	if (c->run_mode) {
		if (keel__msg_recv(c->sync_fd, &m) < 0 || m.type != KEEL__MSG_START)
			_exit(1);
	} else {
		char byte;
		ssize_t n;
		while ((n = read(c->fifo_fd, &byte, 1)) < 0 && errno == EINTR)
			;
		if (n != 1)
			_exit(1);
		close(c->fifo_fd);
	}
	if (run_container_hooks(c, KEEL_HOOK_START_CONTAINER, "running", &err) < 0)
		fail(c, &err);
	if (s->seccomp && s->process.no_new_privileges && keel__seccomp_load(s->seccomp, &err) < 0)
		fail(c, &err);
	/* Only stdio and the --preserve-fds ones reach the process. */
	syscall(SYS_close_range, 3 + c->preserve_fds, ~0U, CLOSE_RANGE_CLOEXEC);
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	static char *const empty_env[] = {NULL};
	execve(exe, (char *const *)s->process.args, s->process.env ? (char *const *)s->process.env : empty_env);
	keel_err_errno(&err, -errno, "exec %s", exe);
	fail(c, &err);
}
