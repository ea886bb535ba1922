/* The parent side of the lifecycle (runtime-spec runtime.md "Lifecycle"): create clones the init
 * with its namespaces, writes id maps, puts it into its cgroups, runs prestart/createRuntime hooks
 * when the init asks, and records the state once the init waits on exec.fifo; start, kill, state,
 * delete and list then work on that state under the container directory's lock. */
#include "run/container.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <linux/sched.h>
#include <time.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/json.h"
#include "base/mem.h"
#include "base/str.h"
#include "base/sys.h"
#include "run/container-internal.h"
#include "run/hooks.h"
#include "run/state.h"

#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif

static keel_run_warn_fn warn_fn;
static void *warn_ud;

void keel_run_set_warn(keel_run_warn_fn fn, void *userdata)
{
	warn_fn = fn;
	warn_ud = userdata;
}

static void warn(const char *msg)
{
	if (warn_fn)
		warn_fn(msg, warn_ud);
}

struct spawn {
	struct keel_spec *spec;
	struct keel_cgroup cg;
	bool have_cg;
	char bundle[PATH_MAX], rootfs[PATH_MAX];
	int dirfd;   /* the container's directory, locked */
	int sync_fd; /* our end of the socketpair with the init */
	pid_t pid;
	struct keel_cstate st;
};

static int pidfd_open(pid_t pid)
{
	int fd = (int)syscall(SYS_pidfd_open, pid, 0);
	return fd < 0 ? -errno : fd;
}

/* Wait until pid exits (it need not be our child); 0, or -ETIMEDOUT. */
static int wait_exit(pid_t pid, int timeout_ms)
{
	int fd = pidfd_open(pid);
	if (fd < 0)
		return 0; /* already gone */
	struct pollfd p = {.fd = fd, .events = POLLIN};
	int r;
	do
		r = poll(&p, 1, timeout_ms);
	while (r < 0 && errno == EINTR);
	close(fd);
	return r == 0 ? -ETIMEDOUT : 0;
}

/* Signal the process only if it is still the one the state names (no pid reuse races). */
static int signal_init(const struct keel_cstate *st, int sig)
{
	int fd = pidfd_open(st->pid);
	if (fd < 0)
		return fd == -ESRCH ? -ESRCH : fd;
	int r = 0;
	if (!keel_pid_alive(st->pid, st->pid_start))
		r = -ESRCH;
	else if (syscall(SYS_pidfd_send_signal, fd, sig, NULL, 0) < 0)
		r = -errno;
	close(fd);
	return r;
}

static int write_proc(pid_t pid, const char *file, const char *data, size_t len, struct keel_err *err)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, file);
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return keel_err_errno(err, -errno, "opening %s", path);
	ssize_t n = write(fd, data, len);
	int r = n < 0 ? -errno : (size_t)n != len ? -EIO : 0;
	close(fd);
	if (r < 0)
		return keel_err_errno(err, r, "writing %s", path);
	return 0;
}

static int write_idmap(pid_t pid, const char *file, const struct keel_spec_idmap *v, size_t n,
		       struct keel_err *err)
{
	char buf[340 * 36];
	size_t len = 0;
	for (size_t i = 0; i < n; i++)
		len += (size_t)snprintf(buf + len, sizeof(buf) - len, "%u %u %u\n", v[i].container,
					v[i].host, v[i].size);
	return write_proc(pid, file, buf, len, err);
}

static bool lsm_enabled(const char *path)
{
	char c = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	bool on = read(fd, &c, 1) == 1 && c == 'Y';
	close(fd);
	return on;
}

int keel__write_pid_file(const char *path, pid_t pid, struct keel_err *err)
{
	char tmp[PATH_MAX], buf[24];
	snprintf(tmp, sizeof(tmp), "%s.keel-tmp", path);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return keel_err_errno(err, -errno, "writing pid file %s", path);
	int n = snprintf(buf, sizeof(buf), "%d", (int)pid);
	int r = keel_sys_write_all(fd, buf, (size_t)n);
	close(fd);
	if (r == 0 && rename(tmp, path) < 0)
		r = -errno;
	if (r < 0) {
		unlink(tmp);
		return keel_err_errno(err, r, "writing pid file %s", path);
	}
	return 0;
}

static char *hooks_json(const struct keel_spec *spec)
{
	json_t *h = json_object_get(spec->json, "hooks");
	if (!json_is_object(h))
		return NULL;
	json_t *o = json_object();
	if (!o)
		return NULL;
	static const char *const keep[] = {"poststart", "poststop"};
	for (int i = 0; i < 2; i++) {
		json_t *a = json_object_get(h, keep[i]);
		if (json_is_array(a))
			json_object_set(o, keep[i], a);
	}
	char *s = json_object_size(o) ? json_dumps(o, JSON_COMPACT) : NULL;
	json_decref(o);
	return s;
}

/* Run one kind of hook kept in state.json; failures are warnings (poststart, poststop). */
static void run_state_hooks(const struct keel_cstate *st, const char *kind, enum keel_hook_kind k,
			    const char *status)
{
	if (!st->hooks)
		return;
	json_t *h = json_loads(st->hooks, 0, NULL);
	json_t *ann = st->annotations ? json_loads(st->annotations, 0, NULL) : NULL;
	struct keel_spec_hooks hooks = {0};
	struct keel_err err;
	struct keel_buf b = KEEL_BUF_INIT;
	keel_err_clear(&err);
	if (h && json_is_array(json_object_get(h, kind)) &&
	    keel_spec_parse_hook_array(json_object_get(h, kind), kind, &hooks, &err) == 0 &&
	    keel_hook_state_json(st->id, status, st->pid, st->bundle, ann, &b) == 0 &&
	    keel_hooks_run(&hooks, k, b.data, &err) == 0) {
		/* all ran */
	} else if (err.code) {
		warn(keel_err_msg(&err));
	}
	keel_buf_free(&b);
	keel_spec_hooks_free(&hooks);
	json_decref(h);
	json_decref(ann);
}

/* Everything a failed create leaves behind goes: the init, its cgroups, the state directory. */
static void spawn_abort(const char *root, const char *id, struct spawn *x)
{
	if (x->pid > 0) {
		kill(x->pid, SIGKILL);
		while (waitpid(x->pid, NULL, 0) < 0 && errno == EINTR)
			;
	}
	if (x->sync_fd >= 0)
		close(x->sync_fd);
	if (x->have_cg) {
		char procs[4096], **dirs = NULL;
		keel_cgroup_procs_path(&x->cg, procs, sizeof(procs));
		keel_cgroup_signal_all(procs, SIGKILL);
		if (keel_cgroup_dirs(&x->cg, &dirs) == 0)
			keel_cgroup_remove_dirs(dirs, NULL);
		keel_strv_free(dirs);
		keel_cgroup_free(&x->cg);
	}
	if (x->dirfd >= 0) {
		keel_cstate_remove_dir(root, id, x->dirfd, NULL);
		close(x->dirfd);
	}
	keel_cstate_free(&x->st);
	keel_spec_free(x->spec);
	memset(x, 0, sizeof(*x));
	x->dirfd = x->sync_fd = -1;
}

static void spawn_done(struct spawn *x)
{
	if (x->sync_fd >= 0)
		close(x->sync_fd);
	if (x->dirfd >= 0)
		close(x->dirfd);
	if (x->have_cg)
		keel_cgroup_free(&x->cg);
	keel_cstate_free(&x->st);
	keel_spec_free(x->spec);
}

static int load_bundle(const struct keel_run_opts *o, struct spawn *x, struct keel_err *err)
{
	const char *bundle = o->bundle && *o->bundle ? o->bundle : ".";
	char cfg[PATH_MAX + 16], root[PATH_MAX * 2];
	if (!realpath(bundle, x->bundle))
		return keel_err_errno(err, -errno, "bundle %s", bundle);
	snprintf(cfg, sizeof(cfg), "%s/config.json", x->bundle);
	int r = keel_spec_load(cfg, &x->spec, err);
	if (r < 0)
		return r == -KEEL_EPARSE || r == -KEEL_ETYPE || r == -KEEL_EMISSING || r == -KEEL_ERANGE
			       ? keel_err_wrap(err, "%s", cfg)
			       : r;
	const struct keel_spec *s = x->spec;
	if (!s->has_process)
		return keel_err_set(err, -KEEL_EMISSING, "%s: process is required", cfg);
	if (s->root_path[0] == '/')
		snprintf(root, sizeof(root), "%s", s->root_path);
	else
		snprintf(root, sizeof(root), "%s/%s", x->bundle, s->root_path);
	struct stat st;
	if (!realpath(root, x->rootfs) || stat(x->rootfs, &st) < 0)
		return keel_err_errno(err, -errno, "rootfs (%s) does not exist", root);
	if (!S_ISDIR(st.st_mode))
		return keel_err_set(err, -ENOTDIR, "rootfs (%s) is not a directory", root);
	if (s->process.terminal && !o->console_socket)
		return keel_err_set(err, -EINVAL, "process.terminal needs --console-socket (keel-run has "
				    "no terminal relay of its own yet)");
	if (s->process.apparmor && *s->process.apparmor &&
	    lsm_enabled("/sys/module/apparmor/parameters/enabled"))
		return keel_err_set(err, -ENOTSUP, "process.apparmorProfile: AppArmor is enabled here and "
				    "keel-run cannot apply profiles yet");
	if (s->process.selinux && *s->process.selinux && access("/sys/fs/selinux/enforce", F_OK) == 0)
		return keel_err_set(err, -ENOTSUP, "process.selinuxLabel: SELinux is enabled here and "
				    "keel-run cannot apply labels yet");
	return 0;
}

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

/* Talk to the init until it is ready (or failed), running the runtime-side hooks on request. */
static int await_ready(const char *id, struct spawn *x, struct keel_err *err)
{
	struct keel__msg m;
	for (;;) {
		int r = keel__msg_recv(x->sync_fd, &m);
		if (r < 0)
			return keel_err_set(err, -KEEL_EBASE, "container init exited during setup");
		if (m.type == KEEL__MSG_ERR)
			return keel_err_set(err, m.value < 0 ? m.value : -KEEL_EBASE, "%s", m.text);
		if (m.type == KEEL__MSG_READY)
			return 0;
		if (m.type != KEEL__MSG_HOOKS)
			return keel_err_set(err, -EPROTO, "unexpected message %u from the init", m.type);
		struct keel_buf b = KEEL_BUF_INIT;
		r = keel_hook_state_json(id, "creating", x->pid, x->bundle, x->spec->annotations, &b);
		if (r < 0)
			r = keel_err_set(err, r, "building the hooks' state");
		if (r == 0)
			r = keel_hooks_run(&x->spec->hooks[KEEL_HOOK_PRESTART], KEEL_HOOK_PRESTART, b.data, err);
		if (r == 0)
			r = keel_hooks_run(&x->spec->hooks[KEEL_HOOK_CREATE_RUNTIME], KEEL_HOOK_CREATE_RUNTIME,
					   b.data, err);
		keel_buf_free(&b);
		if (r < 0)
			return r;
		if (keel__msg_send(x->sync_fd, KEEL__MSG_GO, 0, NULL) < 0)
			return keel_err_set(err, -KEEL_EBASE, "container init exited during setup");
	}
}

/* Reap the helper of a joined user namespace and take the pid of the init it cloned (our child,
 * by CLONE_PARENT) from the credentials on the init's first message, which the kernel translates
 * into our pid namespace. */
static int await_helper(struct spawn *x, pid_t helper, pid_t *ret, struct keel_err *err)
{
	struct keel__msg m;
	union {
		char buf[CMSG_SPACE(sizeof(struct ucred))];
		struct cmsghdr align;
	} u;
	struct iovec iov = {.iov_base = &m, .iov_len = sizeof(m)};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
			    .msg_controllen = sizeof(u.buf)};
	memset(&m, 0, sizeof(m));
	ssize_t n;
	while ((n = recvmsg(x->sync_fd, &mh, MSG_CMSG_CLOEXEC)) < 0 && errno == EINTR)
		;
	while (waitpid(helper, NULL, 0) < 0 && errno == EINTR)
		;
	m.text[sizeof(m.text) - 1] = 0;
	if (n < (ssize_t)offsetof(struct keel__msg, text))
		return keel_err_set(err, -KEEL_EBASE, "container init exited during setup");
	if (m.type == KEEL__MSG_ERR)
		return keel_err_set(err, m.value < 0 ? m.value : -KEEL_EBASE, "%s", m.text);
	for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm)) {
		if (m.type == KEEL__MSG_HELLO && cm->cmsg_level == SOL_SOCKET &&
		    cm->cmsg_type == SCM_CREDENTIALS && cm->cmsg_len >= CMSG_LEN(sizeof(struct ucred))) {
			struct ucred uc;
			memcpy(&uc, CMSG_DATA(cm), sizeof(uc));
			if (uc.pid > 0) {
				*ret = uc.pid;
				return 0;
			}
		}
	}
	return keel_err_set(err, -EPROTO, "no pid from the container's init");
}

static int spawn(const struct keel_run_opts *o, bool run_mode, struct spawn *x, struct keel_err *err)
{
	int fifo_fd = -1, console_fd = -1, own_pid_fd = -1, own_time_fd = -1, sv[2] = {-1, -1};
	int ns_fd[KEEL_NS_KINDS];
	int r;
	memset(x, 0, sizeof(*x));
	x->dirfd = x->sync_fd = -1;
	for (int k = 0; k < KEEL_NS_KINDS; k++)
		ns_fd[k] = -1;
	if ((r = load_bundle(o, x, err)) < 0)
		goto fail;
	const struct keel_spec *s = x->spec;
	if ((r = x->dirfd = keel_cstate_create_dir(o->root, o->id, err)) < 0)
		goto fail;
	if ((r = keel_cgroup_create(&x->cg, s, o->id, err)) < 0)
		goto fail;
	x->have_cg = true;
	/* The cgroups go on record before anything runs in them: should keel-run die from here on
	 * (the init dies with it), `delete --force` finds them in creating.json. */
	struct keel_cstate *st = &x->st;
	char procs[4096];
	keel_cgroup_procs_path(&x->cg, procs, sizeof(procs));
	st->created_ns = keel_wall_ns();
	st->cgroup_mode = (int)x->cg.mode;
	if (!(st->id = keel_strdup(o->id)) || !(st->bundle = keel_strdup(x->bundle)) ||
	    !(st->rootfs = keel_strdup(x->rootfs)) || !(st->cgroup_procs = keel_strdup(procs)) ||
	    (s->annotations && !(st->annotations = json_dumps(s->annotations, JSON_COMPACT))) ||
	    keel_cgroup_dirs(&x->cg, &st->cgroup_dirs) < 0 ||
	    keel_cgroup_names_paths(&x->cg, &st->cgroup_names, &st->cgroup_paths) < 0) {
		r = keel_err_set(err, -ENOMEM, "out of memory");
		goto fail;
	}
	if ((r = keel_cstate_save_creating(x->dirfd, st, err)) < 0)
		goto fail;
	if (!run_mode) {
		if (mkfifoat(x->dirfd, "exec.fifo", 0600) < 0 ||
		    (fifo_fd = openat(x->dirfd, "exec.fifo", O_RDWR | O_CLOEXEC)) < 0) {
			r = keel_err_errno(err, -errno, "creating exec.fifo");
			goto fail;
		}
	}
	for (int k = 0; k < KEEL_NS_KINDS; k++) {
		if (!(s->ns_join & (1u << k)))
			continue;
		if ((ns_fd[k] = open(s->ns_path[k], O_RDONLY | O_CLOEXEC)) < 0) {
			r = keel_err_errno(err, -errno, "the %s namespace %s", keel_ns_name(k), s->ns_path[k]);
			goto fail;
		}
	}
	if (s->process.terminal && (r = console_fd = open_console(o->console_socket, err)) < 0)
		goto fail;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
		r = keel_err_errno(err, -errno, "socketpair");
		goto fail;
	}
	/* A pid namespace is entered by the children of whoever joins it, and a new time
	 * namespace's offsets must be written before anyone is in it: do both here, just for the
	 * clone, and come back after. */
	if (ns_fd[KEEL_NS_PID] >= 0) {
		if ((own_pid_fd = open("/proc/self/ns/pid", O_RDONLY | O_CLOEXEC)) < 0 ||
		    setns(ns_fd[KEEL_NS_PID], CLONE_NEWPID) < 0) {
			r = keel_err_errno(err, -errno, "joining the pid namespace %s", s->ns_path[KEEL_NS_PID]);
			goto fail;
		}
		close(ns_fd[KEEL_NS_PID]);
		ns_fd[KEEL_NS_PID] = -1;
	}
	if (s->ns_new & (1u << KEEL_NS_TIME)) {
		if ((own_time_fd = open("/proc/self/ns/time", O_RDONLY | O_CLOEXEC)) < 0 ||
		    unshare(CLONE_NEWTIME) < 0) {
			r = keel_err_errno(err, -errno, "creating a time namespace");
			goto fail;
		}
		if (s->time_offsets.set) {
			char buf[128];
			int n = snprintf(buf, sizeof(buf), "monotonic %lld %u\nboottime %lld %u\n",
					 (long long)s->time_offsets.mono_secs, s->time_offsets.mono_nanos,
					 (long long)s->time_offsets.boot_secs, s->time_offsets.boot_nanos);
			if ((r = write_proc(getpid(), "timens_offsets", buf, (size_t)n, err)) < 0)
				goto fail;
		}
	}
	unsigned long clone_flags = 0;
	bool join_user = s->ns_join & (1u << KEEL_NS_USER);
	for (int k = 0; k < KEEL_NS_KINDS; k++) {
		if (!(s->ns_new & (1u << k)) || k == KEEL_NS_TIME || k == KEEL_NS_CGROUP)
			continue;
		clone_flags |= (unsigned long)keel_ns_clone_flag(k);
	}
	unsigned long helper_flags = 0;
	if (join_user) {
		/* The namespaces are made by a helper inside the joined user namespace (see
		 * keel__init_helper); the init's pid comes with its first message. */
		helper_flags = clone_flags;
		clone_flags = 0;
		int one = 1;
		if (setsockopt(sv[0], SOL_SOCKET, SO_PASSCRED, &one, sizeof(one)) < 0) {
			r = keel_err_errno(err, -errno, "SO_PASSCRED");
			goto fail;
		}
	}
	struct keel__init ic = {
		.spec = s, .cg = &x->cg, .id = o->id, .bundle = x->bundle, .rootfs = x->rootfs,
		.sync_fd = sv[1], .fifo_fd = fifo_fd, .console_fd = console_fd,
		.helper_clone_flags = helper_flags,
		.new_cgroupns = s->ns_new & (1u << KEEL_NS_CGROUP),
		.preserve_fds = o->preserve_fds, .run_mode = run_mode, .no_pivot = o->no_pivot,
		.close_fds = {sv[0], x->dirfd, own_pid_fd, own_time_fd},
	};
	memcpy(ic.ns_fd, ns_fd, sizeof(ns_fd));
	/* A fork-like clone: the init continues from here in a copy of this process, with the
	 * parsed spec at hand, so there is no re-exec and nothing to pass over a pipe. clone3
	 * also places it in the v2 cgroup (CLONE_INTO_CGROUP takes no global lock); plain clone
	 * is the fallback for kernels without it. */
	pid_t pid = -1;
	int v2_fd = keel_cgroup_v2_fd(&x->cg);
	if (v2_fd >= 0) {
		struct clone_args ca = {
			.flags = clone_flags | CLONE_INTO_CGROUP,
			.exit_signal = SIGCHLD,
			.cgroup = (uint64_t)v2_fd,
		};
		ic.in_v2_cgroup = true;
		pid = (pid_t)syscall(SYS_clone3, &ca, sizeof(ca));
		if (pid == 0)
			join_user ? keel__init_helper(&ic) : keel__init_main(&ic);
		ic.in_v2_cgroup = false;
	}
	if (pid < 0 && (v2_fd < 0 || errno == ENOSYS || errno == E2BIG || errno == EINVAL)) {
		pid = (pid_t)syscall(SYS_clone, clone_flags | SIGCHLD, NULL, NULL, NULL, 0);
		if (pid == 0)
			join_user ? keel__init_helper(&ic) : keel__init_main(&ic);
	}
	int clone_errno = errno;
	if (own_pid_fd >= 0 && setns(own_pid_fd, CLONE_NEWPID) < 0)
		keel_assert(!"cannot return to our own pid namespace");
	if (own_time_fd >= 0 && setns(own_time_fd, CLONE_NEWTIME) < 0)
		keel_assert(!"cannot return to our own time namespace");
	if (pid < 0) {
		r = keel_err_errno(err, -clone_errno, "clone");
		goto fail;
	}
	x->sync_fd = sv[0];
	sv[0] = -1;
	/* Only the init holds this end now, so its death reads as end of file. */
	close(sv[1]);
	sv[1] = -1;
	if (join_user && (r = await_helper(x, pid, &pid, err)) < 0)
		goto fail;
	x->pid = pid;

	if ((s->ns_new & (1u << KEEL_NS_USER)) &&
	    ((r = write_idmap(pid, "gid_map", s->gid_map, s->n_gid_map, err)) < 0 ||
	     (r = write_idmap(pid, "uid_map", s->uid_map, s->n_uid_map, err)) < 0))
		goto fail;
	/* The init moves itself into its cgroups (see keel_cgroup_enter_self). */
	if (keel__msg_send(x->sync_fd, KEEL__MSG_GO, pid, NULL) < 0) {
		r = keel_err_set(err, -KEEL_EBASE, "container init exited during setup");
		goto fail;
	}
	if ((r = await_ready(o->id, x, err)) < 0)
		goto fail;

	st->pid = pid;
	st->pid_start = keel_pid_start_time(pid);
	st->created_ns = keel_wall_ns();
	st->own_pidns = s->ns_new & (1u << KEEL_NS_PID);
	st->hooks = hooks_json(s);
	if ((r = keel_cstate_save(x->dirfd, st, err)) < 0)
		goto fail;
	if (o->pid_file && (r = keel__write_pid_file(o->pid_file, pid, err)) < 0)
		goto fail;
	r = 0;
	goto out;
fail:
	spawn_abort(o->root, o->id, x);
out:
	for (int k = 0; k < KEEL_NS_KINDS; k++)
		if (ns_fd[k] >= 0)
			close(ns_fd[k]);
	int fds[] = {fifo_fd, console_fd, own_pid_fd, own_time_fd, sv[0], sv[1]};
	for (size_t i = 0; i < KEEL_ARRAY_SIZE(fds); i++)
		if (fds[i] >= 0)
			close(fds[i]);
	return r;
}

int keel_container_create(const struct keel_run_opts *o, struct keel_err *err)
{
	struct spawn x;
	int r = spawn(o, false, &x, err);
	if (r < 0)
		return r;
	spawn_done(&x);
	return 0;
}

/* Kill what is left of a stopped (or killed) container and remove all trace of it. */
static int destroy(const char *root, const char *id, int dirfd, struct keel_cstate *st,
		   struct keel_err *err)
{
	int r = 0;
	if (st->cgroup_procs) {
		/* Without a pid namespace of its own, the init's children outlive it. */
		for (int i = 0; i < 500 && keel_cgroup_signal_all(st->cgroup_procs, SIGKILL) > 0; i++) {
			struct timespec ts = {0, 2 * 1000 * 1000};
			nanosleep(&ts, NULL);
		}
	}
	r = keel_cgroup_remove_dirs(st->cgroup_dirs, err);
	run_state_hooks(st, "poststop", KEEL_HOOK_POSTSTOP, "stopped");
	int r2 = keel_cstate_remove_dir(root, id, dirfd, r < 0 ? NULL : err);
	return r < 0 ? r : r2;
}

int keel_container_start(const char *root, const char *id, struct keel_err *err)
{
	struct keel_cstate st;
	int dirfd = keel_cstate_lock(root, id, true, err);
	if (dirfd < 0)
		return dirfd;
	int r = keel_cstate_load(dirfd, id, &st, err);
	if (r < 0) {
		close(dirfd);
		return r;
	}
	switch (keel_cstate_status(dirfd, &st)) {
	case KEEL_CSTATUS_CREATED:
		break;
	case KEEL_CSTATUS_RUNNING:
		r = keel_err_set(err, -EINVAL, "cannot start an already running container");
		goto out;
	default:
		r = keel_err_set(err, -EINVAL, "cannot start a container that has stopped");
		goto out;
	}
	/* A read end of our own first: the init holds the fifo open (O_RDWR, close-on-exec) until
	 * it execs, so once it has taken our byte, the hang-up on this end means the user's
	 * process runs (or the init died): poststart hooks come after that, per runtime-spec. */
	int rfd = openat(dirfd, "exec.fifo", O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	int fd = rfd < 0 ? -1 : openat(dirfd, "exec.fifo", O_WRONLY | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		r = keel_err_errno(err, -errno, "opening exec.fifo (is the container's init gone?)");
		if (rfd >= 0)
			close(rfd);
		goto out;
	}
	ssize_t n = write(fd, "0", 1);
	int e = errno;
	close(fd);
	if (n != 1) {
		close(rfd);
		r = keel_err_errno(err, -e, "writing exec.fifo");
		goto out;
	}
	struct pollfd p = {.fd = rfd, .events = 0};
	int pr;
	do
		pr = poll(&p, 1, 10000);
	while (pr < 0 && errno == EINTR);
	close(rfd);
	unlinkat(dirfd, "exec.fifo", 0);
	if (pr == 0) {
		r = keel_err_set(err, -ETIMEDOUT, "the container did not start within 10 s");
		goto out;
	}
	run_state_hooks(&st, "poststart", KEEL_HOOK_POSTSTART, "running");
out:
	keel_cstate_free(&st);
	close(dirfd);
	return r;
}

static const int forwarded_signals[] = {SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2,
					SIGWINCH, SIGALRM, SIGCONT, SIGTSTP, SIGPIPE};

int keel_container_run(const struct keel_run_opts *o, int *ret_status, struct keel_err *err)
{
	sigset_t set, old;
	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	for (size_t i = 0; i < KEEL_ARRAY_SIZE(forwarded_signals); i++)
		sigaddset(&set, forwarded_signals[i]);
	if (!o->detach)
		sigprocmask(SIG_BLOCK, &set, &old);

	struct spawn x;
	int r = spawn(o, true, &x, err);
	if (r < 0)
		goto out_mask;
	/* Others may look at or signal the container while it runs. */
	flock(x.dirfd, LOCK_UN);
	struct keel__msg m;
	if (keel__msg_send(x.sync_fd, KEEL__MSG_START, 0, NULL) < 0) {
		r = keel_err_set(err, -KEEL_EBASE, "container init exited before it was started");
	} else if (keel__msg_recv(x.sync_fd, &m) == 0 && m.type == KEEL__MSG_ERR) {
		r = keel_err_set(err, m.value < 0 ? m.value : -KEEL_EBASE, "%s", m.text);
	}
	if (r < 0) {
		flock(x.dirfd, LOCK_EX);
		spawn_abort(o->root, o->id, &x);
		goto out_mask;
	}
	/* The socket closed on exec: the user's process runs. */
	run_state_hooks(&x.st, "poststart", KEEL_HOOK_POSTSTART, "running");
	*ret_status = 0;
	if (o->detach) {
		spawn_done(&x);
		return 0;
	}
	pid_t pid = x.pid;
	int status = 0;
	for (;;) {
		pid_t w = waitpid(pid, &status, WNOHANG);
		if (w == pid)
			break;
		siginfo_t si;
		int sig = sigwaitinfo(&set, &si);
		if (sig < 0 || sig == SIGCHLD)
			continue;
		kill(pid, sig);
	}
	*ret_status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
	if (!o->keep) {
		flock(x.dirfd, LOCK_EX);
		struct stat sst;
		/* Someone may have deleted it meanwhile (delete --force). */
		if (fstat(x.dirfd, &sst) == 0 && sst.st_nlink > 0)
			r = destroy(o->root, o->id, x.dirfd, &x.st, err);
	}
	spawn_done(&x);
out_mask:
	if (!o->detach)
		sigprocmask(SIG_SETMASK, &old, NULL);
	return r;
}

int keel_container_state(const char *root, const char *id, struct keel_buf *out, struct keel_err *err)
{
	struct keel_cstate st;
	int dirfd = keel_cstate_lock(root, id, false, err);
	if (dirfd < 0)
		return dirfd;
	int r = keel_cstate_load(dirfd, id, &st, err);
	if (r == 0) {
		r = keel_cstate_json(&st, keel_cstate_status(dirfd, &st), true, out);
		if (r < 0)
			keel_err_set(err, r, "out of memory");
		keel_cstate_free(&st);
	}
	close(dirfd);
	return r;
}

int keel_container_kill(const char *root, const char *id, int sig, bool all, struct keel_err *err)
{
	struct keel_cstate st;
	int dirfd = keel_cstate_lock(root, id, false, err);
	if (dirfd < 0)
		return dirfd;
	int r = keel_cstate_load(dirfd, id, &st, err);
	if (r < 0) {
		close(dirfd);
		return r;
	}
	if (keel_cstate_status(dirfd, &st) == KEEL_CSTATUS_STOPPED) {
		r = keel_err_set(err, -ESRCH, "container not running");
	} else if (all && st.cgroup_procs) {
		r = keel_cgroup_signal_all(st.cgroup_procs, sig);
		if (r < 0)
			keel_err_errno(err, r, "signalling the processes in %s", st.cgroup_procs);
		else
			r = 0;
	} else {
		r = signal_init(&st, sig);
		if (r == -ESRCH)
			keel_err_set(err, r, "container not running");
		else if (r < 0)
			keel_err_errno(err, r, "kill");
	}
	keel_cstate_free(&st);
	close(dirfd);
	return r;
}

int keel_container_delete(const char *root, const char *id, bool force, struct keel_err *err)
{
	struct keel_cstate st;
	int dirfd = keel_cstate_lock(root, id, true, err);
	if (dirfd < 0)
		return force && dirfd == -ENOENT ? 0 : dirfd;
	int r = keel_cstate_load(dirfd, id, &st, err);
	if (r == -ENOENT && force) {
		/* A create that died before writing its state: what it recorded in creating.json
		 * (cgroups) goes, with anything still in them, then the directory. Its init died with
		 * it (parent-death signal), taking its mount namespace along. */
		r = keel_cstate_load_creating(dirfd, id, &st, NULL);
		if (r == 0) {
			r = destroy(root, id, dirfd, &st, err);
			keel_cstate_free(&st);
		} else {
			r = keel_cstate_remove_dir(root, id, dirfd, err);
		}
		close(dirfd);
		return r;
	}
	if (r < 0) {
		close(dirfd);
		return r;
	}
	enum keel_cstatus status = keel_cstate_status(dirfd, &st);
	if ((status == KEEL_CSTATUS_RUNNING || status == KEEL_CSTATUS_PAUSED) && !force) {
		r = keel_err_set(err, -EBUSY, "cannot delete container %s that is not stopped: %s", id,
				 keel_cstatus_name(status));
		goto out;
	}
	if (status != KEEL_CSTATUS_STOPPED) {
		r = signal_init(&st, SIGKILL);
		if (r < 0 && r != -ESRCH) {
			keel_err_errno(err, r, "killing the container");
			goto out;
		}
		if (status == KEEL_CSTATUS_PAUSED) {
			/* Frozen tasks die only once thawed. */
			struct keel_cgroup cg;
			if (st.cgroup_procs)
				keel_cgroup_signal_all(st.cgroup_procs, SIGKILL);
			if (keel_cgroup_load(&cg, st.cgroup_mode, st.cgroup_names, st.cgroup_paths, false,
					     NULL) == 0) {
				keel_cgroup_freeze(&cg, false, NULL);
				keel_cgroup_free(&cg);
			}
		}
		if (wait_exit(st.pid, 10000) < 0) {
			r = keel_err_set(err, -ETIMEDOUT, "the container's init did not die within 10 s");
			goto out;
		}
	}
	r = destroy(root, id, dirfd, &st, err);
out:
	keel_cstate_free(&st);
	close(dirfd);
	return r;
}

int keel_container_list(const char *root, struct keel_container_info **ret, size_t *ret_n,
			struct keel_err *err)
{
	*ret = NULL;
	*ret_n = 0;
	DIR *d = opendir(root);
	if (!d)
		return errno == ENOENT ? 0 : keel_err_errno(err, -errno, "opening %s", root);
	struct dirent *e;
	struct keel_container_info *v = NULL;
	size_t n = 0;
	int r = 0;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.' || !keel_cstate_valid_id(e->d_name))
			continue;
		struct keel_err ignored;
		int dirfd = keel_cstate_lock(root, e->d_name, false, &ignored);
		if (dirfd < 0)
			continue;
		struct keel_cstate st;
		if (keel_cstate_load(dirfd, e->d_name, &st, &ignored) < 0) {
			close(dirfd);
			continue;
		}
		enum keel_cstatus status = keel_cstate_status(dirfd, &st);
		close(dirfd);
		struct keel_buf b = KEEL_BUF_INIT;
		struct keel_container_info *nv = keel_reallocarray(v, n + 1, sizeof(*v));
		if (!nv || keel_cstate_json(&st, status, false, &b) < 0) {
			if (nv)
				v = nv;
			keel_buf_free(&b);
			keel_cstate_free(&st);
			r = keel_err_set(err, -ENOMEM, "out of memory");
			break;
		}
		v = nv;
		v[n++] = (struct keel_container_info){
			.id = st.id, .pid = status == KEEL_CSTATUS_STOPPED ? 0 : st.pid,
			.status = keel_cstatus_name(status), .bundle = st.bundle,
			.created_ns = st.created_ns, .json = keel_buf_steal(&b, NULL),
		};
		st.id = st.bundle = NULL;
		keel_cstate_free(&st);
	}
	closedir(d);
	if (r < 0) {
		keel_container_list_free(v, n);
		return r;
	}
	*ret = v;
	*ret_n = n;
	return 0;
}

void keel_container_list_free(struct keel_container_info *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		keel_free(v[i].id);
		keel_free(v[i].bundle);
		keel_free(v[i].json);
	}
	keel_free(v);
}
