#include "init/exec.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <linux/sched.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/mem.h"
#include "base/str.h"
#include "init/words.h"

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

const char *keel_spawn_step_name(int step)
{
	switch (step) {
	case KEEL_EXIT_CHDIR: return "CHDIR";
	case KEEL_EXIT_NICE: return "NICE";
	case KEEL_EXIT_FDS: return "FDS";
	case KEEL_EXIT_EXEC: return "EXEC";
	case KEEL_EXIT_MEMORY: return "MEMORY";
	case KEEL_EXIT_LIMITS: return "LIMITS";
	case KEEL_EXIT_SIGNAL_MASK: return "SIGNAL_MASK";
	case KEEL_EXIT_STDIN: return "STDIN";
	case KEEL_EXIT_STDOUT: return "STDOUT";
	case KEEL_EXIT_CHROOT: return "CHROOT";
	case KEEL_EXIT_GROUP: return "GROUP";
	case KEEL_EXIT_USER: return "USER";
	case KEEL_EXIT_CGROUP: return "CGROUP";
	case KEEL_EXIT_SETSID: return "SETSID";
	case KEEL_EXIT_STDERR: return "STDERR";
	case KEEL_EXIT_NAMESPACE: return "NAMESPACE";
	case KEEL_EXIT_SECUREBITS: return "SECUREBITS";
	case KEEL_EXIT_CAPABILITIES: return "CAPABILITIES";
	case KEEL_EXIT_NETWORK: return "NETWORK";
	case KEEL_EXIT_NO_NEW_PRIVILEGES: return "NO_NEW_PRIVILEGES";
	case KEEL_EXIT_SECCOMP: return "SECCOMP";
	default: return "UNKNOWN";
	}
}

struct child_args {
	const struct keel_spawn *sp;
	int err_fd;
	bool born_in_cgroup; /* clone3(CLONE_INTO_CGROUP) put it there */
};

/* Everything below runs in the child between clone() and execve(): system calls only, no
 * allocation, no locks, nothing that touches keel-init's data except the PID slots. */

static KEEL_NORETURN void child_fail(int err_fd, int step, int err)
{
	struct keel_spawn_error e = {.step = step, .err = err};
	ssize_t n = write(err_fd, &e, sizeof(e));
	(void)n;
	_exit(step);
}

static void put_pid(char *slot, pid_t pid)
{
	char *eq = strchr(slot, '=');
	if (!eq)
		return;
	char digits[24];
	int n = 0;
	unsigned v = (unsigned)pid;
	do {
		digits[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	char *p = eq + 1;
	while (n)
		*p++ = digits[--n];
	*p = '\0';
}

static int child_main(void *arg)
{
	const struct child_args *a = arg;
	const struct keel_spawn *sp = a->sp;
	int err_fd = a->err_fd;

	sigset_t none;
	sigemptyset(&none);
	for (int sig = 1; sig < _NSIG; sig++) {
		if (sig == SIGKILL || sig == SIGSTOP)
			continue;
		struct sigaction sa = {.sa_handler = SIG_DFL};
		sigaction(sig, &sa, NULL);
	}
	if (sigprocmask(SIG_SETMASK, &none, NULL) < 0)
		child_fail(err_fd, KEEL_EXIT_SIGNAL_MASK, errno);
	if (setsid() < 0)
		child_fail(err_fd, KEEL_EXIT_SETSID, errno);
	for (int i = 0; i < sp->n_cg_fds; i++)
		if (write(sp->cg_fds[i], "0", 1) < 0)
			child_fail(err_fd, KEEL_EXIT_CGROUP, errno);
	if (sp->cgroup_fd >= 0 && !a->born_in_cgroup) {
		int fd = openat(sp->cgroup_fd, "cgroup.procs", O_WRONLY | O_CLOEXEC);
		if (fd < 0 || write(fd, "0", 1) < 0)
			child_fail(err_fd, KEEL_EXIT_CGROUP, errno);
		close(fd);
	}

	/* Move every fd we hand on above the range they go to, so that dup2() into place cannot
	 * clobber one not placed yet. */
	int n_pass = sp->n_pass_fds;
	int high = 3 + n_pass + 3;
	int src[3 + KEEL_SPAWN_MAX_FDS];
	for (int i = 0; i < 3; i++) {
		int fd = sp->stdio[i];
		if (fd < 0) {
			fd = open("/dev/null", (i == 0 ? O_RDONLY : O_WRONLY) | O_CLOEXEC);
			if (fd < 0)
				child_fail(err_fd, i == 0 ? KEEL_EXIT_STDIN : i == 1 ? KEEL_EXIT_STDOUT : KEEL_EXIT_STDERR, errno);
		}
		src[i] = fcntl(fd, F_DUPFD_CLOEXEC, high);
		if (src[i] < 0)
			child_fail(err_fd, KEEL_EXIT_FDS, errno);
	}
	for (int i = 0; i < n_pass; i++) {
		src[3 + i] = fcntl(sp->pass_fds[i], F_DUPFD_CLOEXEC, high);
		if (src[3 + i] < 0)
			child_fail(err_fd, KEEL_EXIT_FDS, errno);
	}
	if (err_fd < high) {
		int e = fcntl(err_fd, F_DUPFD_CLOEXEC, high);
		if (e < 0)
			child_fail(err_fd, KEEL_EXIT_FDS, errno);
		err_fd = e;
	}
	for (int i = 0; i < 3 + n_pass; i++) {
		if (dup2(src[i], i) < 0)
			child_fail(err_fd, i < 3 ? KEEL_EXIT_STDIN + (i == 2 ? 14 : i) : KEEL_EXIT_FDS, errno);
	}
	/* Whatever keel-init inherited without O_CLOEXEC must not leak into services. */
	syscall(SYS_close_range, 3 + n_pass, ~0U, CLOSE_RANGE_CLOEXEC);

	const struct keel_sandbox_plan *sb = sp->sandbox;
	if (sb && sb->netns_fd >= 0 && setns(sb->netns_fd, CLONE_NEWNET) < 0)
		child_fail(err_fd, KEEL_EXIT_NETWORK, errno);
	if (sp->private_tmp || (sb && sb->mount_ns)) {
		/* A mount namespace of our own, a slave of the host's: mounts propagate in, never
		 * out. */
		if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_SLAVE, NULL) < 0)
			child_fail(err_fd, KEEL_EXIT_NAMESPACE, errno);
	}
	if (sp->private_tmp) {
		char a_tmp[4096], a_var[4096];
		size_t l = strlen(sp->private_tmp);
		if (l + 10 > sizeof(a_tmp))
			child_fail(err_fd, KEEL_EXIT_NAMESPACE, ENAMETOOLONG);
		memcpy(a_tmp, sp->private_tmp, l);
		memcpy(a_tmp + l, "/tmp", 5);
		memcpy(a_var, sp->private_tmp, l);
		memcpy(a_var + l, "/var-tmp", 9);
		/* /var/tmp first: both directories live under the host's /tmp, which the second
		 * bind mount hides. */
		if (access("/var/tmp", F_OK) == 0 && mount(a_var, "/var/tmp", NULL, MS_BIND, NULL) < 0)
			child_fail(err_fd, KEEL_EXIT_NAMESPACE, errno);
		if (mount(a_tmp, "/tmp", NULL, MS_BIND, NULL) < 0)
			child_fail(err_fd, KEEL_EXIT_NAMESPACE, errno);
	}
	if (sb && sb->mount_ns) {
		int e = keel_sandbox_child_mounts(sb);
		if (e)
			child_fail(err_fd, KEEL_EXIT_NAMESPACE, e);
	}
	for (int i = 0; i < sp->n_rlimits; i++)
		if (setrlimit(sp->rlimits[i].resource, &sp->rlimits[i].lim) < 0)
			child_fail(err_fd, KEEL_EXIT_LIMITS, errno);
	if (sp->nice_set && setpriority(PRIO_PROCESS, 0, sp->nice) < 0)
		child_fail(err_fd, KEEL_EXIT_NICE, errno);
	umask(sp->umask);
	if (sp->rootdir && (chroot(sp->rootdir) < 0 || chdir("/") < 0))
		child_fail(err_fd, KEEL_EXIT_CHROOT, errno);
	if (chdir(sp->workdir ? sp->workdir : "/") < 0 && !sp->workdir_missing_ok)
		child_fail(err_fd, KEEL_EXIT_CHDIR, errno);
	bool changing_user = sp->set_creds && sp->uid != 0;
	if (sb) {
		int e = keel_sandbox_child_caps_before(sb, changing_user);
		if (e)
			child_fail(err_fd, e == EPERM && sb->secure_bits_set ? KEEL_EXIT_SECUREBITS : KEEL_EXIT_CAPABILITIES, e);
	}
	if (sp->set_creds) {
		/* Raw system calls: glibc's wrappers would try to apply them to every thread of the
		 * process whose memory this child shares. */
		if (syscall(SYS_setgroups, (size_t)sp->n_groups, sp->groups) < 0 ||
		    syscall(SYS_setresgid, sp->gid, sp->gid, sp->gid) < 0)
			child_fail(err_fd, KEEL_EXIT_GROUP, errno);
		if (syscall(SYS_setresuid, sp->uid, sp->uid, sp->uid) < 0)
			child_fail(err_fd, KEEL_EXIT_USER, errno);
	}
	if (sb) {
		int e = keel_sandbox_child_caps_after(sb, changing_user);
		if (e)
			child_fail(err_fd, e == EINVAL && sb->no_new_privs ? KEEL_EXIT_NO_NEW_PRIVILEGES : KEEL_EXIT_CAPABILITIES, e);
	}
	pid_t self = (pid_t)syscall(SYS_getpid);
	for (int i = 0; i < 2; i++)
		if (sp->pid_slots[i])
			put_pid(sp->pid_slots[i], self);
	if (sb) {
		int e = keel_sandbox_child_seccomp(sb);
		if (e)
			child_fail(err_fd, KEEL_EXIT_SECCOMP, e);
	}
	execve(sp->path, sp->argv, sp->envp);
	child_fail(err_fd, KEEL_EXIT_EXEC, errno);
}

int keel_spawn_start(const struct keel_spawn *sp, pid_t *ret_pid, int *ret_err_fd)
{
	if (sp->n_pass_fds > KEEL_SPAWN_MAX_FDS)
		return -E2BIG;
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0)
		return -errno;
	struct child_args a = {.sp = sp, .err_fd = p[1]};
	pid_t pid = -1;
	static bool no_clone3;
	if (sp->cgroup_fd >= 0 && !no_clone3) {
		struct clone_args ca = {.flags = CLONE_INTO_CGROUP, .exit_signal = SIGCHLD, .cgroup = (uint64_t)sp->cgroup_fd};
		a.born_in_cgroup = true;
		pid = (pid_t)syscall(SYS_clone3, &ca, sizeof(ca));
		if (pid == 0)
			_exit(child_main(&a));
		a.born_in_cgroup = false;
		if (pid < 0 && (errno == ENOSYS || errno == E2BIG || errno == EINVAL))
			no_clone3 = true;
	}
	if (pid < 0) {
		pid = fork();
		if (pid == 0)
			_exit(child_main(&a));
	}
	int e = errno;
	close(p[1]);
	if (pid < 0) {
		close(p[0]);
		return -e;
	}
	fcntl(p[0], F_SETFL, O_NONBLOCK);
	*ret_pid = pid;
	*ret_err_fd = p[0];
	return 0;
}

char *keel_exec_resolve_path(const char *name)
{
	static const char *const dirs[] = {"/usr/local/sbin", "/usr/local/bin", "/usr/sbin",
					   "/usr/bin", "/sbin", "/bin"};
	if (name[0] == '/')
		return keel_strdup(name);
	for (size_t i = 0; i < KEEL_ARRAY_SIZE(dirs); i++) {
		char buf[4096];
		snprintf(buf, sizeof(buf), "%s/%s", dirs[i], name);
		if (access(buf, X_OK) == 0)
			return keel_strdup(buf);
	}
	return keel_strdup(name);
}

int keel_env_set(char ***env, const char *assignment)
{
	const char *eq = strchr(assignment, '=');
	size_t n = eq ? (size_t)(eq - assignment) : strlen(assignment);
	for (size_t i = 0; *env && (*env)[i]; i++) {
		if (strncmp((*env)[i], assignment, n) == 0 && (*env)[i][n] == '=') {
			char *copy = keel_strdup(assignment);
			if (!copy)
				return -ENOMEM;
			keel_free((*env)[i]);
			(*env)[i] = copy;
			return 0;
		}
	}
	return keel_strv_push(env, assignment);
}

/* One value of an environment file: quotes removed, escapes in double quotes applied. */
static int env_value(const char *s, struct keel_buf *out)
{
	while (*s == ' ' || *s == '\t')
		s++;
	char q = 0;
	int r = 0;
	for (; *s && r == 0; s++) {
		if (q) {
			if (*s == q) {
				q = 0;
			} else if (q == '"' && *s == '\\' && s[1] && strchr("\"\\`$\n", s[1])) {
				s++;
				if (*s != '\n')
					r = keel_buf_putc(out, *s);
			} else {
				r = keel_buf_putc(out, *s);
			}
		} else if (*s == '"' || *s == '\'') {
			q = *s;
		} else if (*s == '\\' && s[1]) {
			s++;
			if (*s != '\n')
				r = keel_buf_putc(out, *s);
		} else if (*s == '#' && (out->len == 0)) {
			break;
		} else {
			r = keel_buf_putc(out, *s);
		}
	}
	/* unquoted trailing whitespace goes */
	while (r == 0 && out->len && (out->data[out->len - 1] == ' ' || out->data[out->len - 1] == '\t'))
		keel_buf_truncate(out, out->len - 1);
	return r;
}

int keel_env_file_load(const char *path, char ***env)
{
	FILE *f = fopen(path, "re");
	if (!f)
		return -errno;
	struct keel_buf logical = KEEL_BUF_INIT;
	char line[8192];
	int r = 0;
	bool more = true;
	while (r == 0 && more) {
		more = fgets(line, sizeof(line), f) != NULL;
		if (more) {
			size_t l = strlen(line);
			if (l && line[l - 1] == '\n')
				line[--l] = '\0';
			if (l && line[l - 1] == '\\') {
				/* continuation: keep a newline the value parser drops */
				line[l - 1] = '\0';
				r = keel_buf_puts(&logical, line);
				continue;
			}
			r = keel_buf_puts(&logical, line);
			if (r < 0)
				break;
		} else if (logical.len == 0) {
			break;
		}
		char *s = logical.data ? logical.data : (char *)"";
		while (*s == ' ' || *s == '\t')
			s++;
		if (*s && *s != '#' && *s != ';') {
			const char *rest = keel_startswith(s, "export ");
			if (rest)
				s = (char *)rest;
			char *eq = strchr(s, '=');
			if (eq) {
				char *key_end = eq;
				while (key_end > s && (key_end[-1] == ' ' || key_end[-1] == '\t'))
					key_end--;
				if (keel_env_name_is_valid(s, (size_t)(key_end - s))) {
					struct keel_buf a = KEEL_BUF_INIT;
					r = keel_buf_append(&a, s, (size_t)(key_end - s));
					if (r == 0)
						r = keel_buf_putc(&a, '=');
					if (r == 0)
						r = env_value(eq + 1, &a);
					if (r == 0)
						r = keel_env_set(env, a.data);
					keel_buf_free(&a);
				}
			}
		}
		keel_buf_reset(&logical);
	}
	keel_buf_free(&logical);
	fclose(f);
	return r;
}
