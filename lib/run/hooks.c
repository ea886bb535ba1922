/* OCI hooks: fork, state on stdin, wait with a timeout. */
#include "run/hooks.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/jw.h"

int keel_hook_state_json(const char *id, const char *status, pid_t pid, const char *bundle,
			 const json_t *annotations, struct keel_buf *out)
{
	struct keel_jw w;
	keel_jw_init(&w, out, 0);
	keel_jw_obj_begin(&w);
	keel_jw_kstr(&w, "ociVersion", "1.1.0");
	keel_jw_kstr(&w, "id", id);
	keel_jw_kstr(&w, "status", status);
	if (pid > 0)
		keel_jw_ki64(&w, "pid", pid);
	keel_jw_kstr(&w, "bundle", bundle);
	if (annotations && json_object_size(annotations)) {
		const char *k;
		json_t *v;
		keel_jw_key(&w, "annotations");
		keel_jw_obj_begin(&w);
		json_object_foreach((json_t *)annotations, k, v)
			keel_jw_kstr(&w, k, json_string_value(v));
		keel_jw_obj_end(&w);
	}
	keel_jw_obj_end(&w);
	return keel_jw_finish(&w);
}

static int run_one(const struct keel_spec_hook *h, const char *kind, const char *state,
		   struct keel_err *err)
{
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return keel_err_errno(err, -errno, "%s hook %s", kind, h->path);
	pid_t pid = fork();
	if (pid < 0) {
		int e = errno;
		close(sv[0]);
		close(sv[1]);
		return keel_err_errno(err, -e, "%s hook %s: fork", kind, h->path);
	}
	if (pid == 0) {
		static char *const empty[] = {NULL};
		char *argv0[] = {(char *)h->path, NULL};
		if (dup2(sv[1], 0) < 0)
			_exit(127);
		sigset_t all;
		sigemptyset(&all);
		sigprocmask(SIG_SETMASK, &all, NULL);
		execve(h->path, h->args && h->args[0] ? (char *const *)h->args : argv0,
		       h->env ? (char *const *)h->env : empty);
		_exit(127);
	}
	close(sv[1]);
	size_t len = strlen(state);
	for (size_t off = 0; off < len;) {
		ssize_t n = send(sv[0], state + off, len - off, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			break; /* the hook does not read its input: not an error */
		}
		off += (size_t)n;
	}
	close(sv[0]);

	int status = 0;
	if (h->timeout > 0) {
		int pfd = (int)syscall(SYS_pidfd_open, pid, 0);
		if (pfd >= 0) {
			struct pollfd p = {.fd = pfd, .events = POLLIN};
			int r;
			do
				r = poll(&p, 1, h->timeout * 1000);
			while (r < 0 && errno == EINTR);
			close(pfd);
			if (r == 0) {
				kill(pid, SIGKILL);
				while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
					;
				return keel_err_set(err, -ETIMEDOUT, "%s hook %s timed out after %d s", kind,
						    h->path, h->timeout);
			}
		}
	}
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return keel_err_errno(err, -errno, "%s hook %s: waitpid", kind, h->path);
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return 0;
	if (WIFEXITED(status))
		return keel_err_set(err, -KEEL_EBASE, "%s hook %s exited with status %d", kind, h->path,
				    WEXITSTATUS(status));
	return keel_err_set(err, -KEEL_EBASE, "%s hook %s was killed by signal %d", kind, h->path,
			    WTERMSIG(status));
}

int keel_hooks_run(const struct keel_spec_hooks *hooks, enum keel_hook_kind kind,
		   const char *state_json, struct keel_err *err)
{
	for (size_t i = 0; i < hooks->n; i++) {
		int r = run_one(&hooks->v[i], keel_hook_name(kind), state_json, err);
		if (r < 0)
			return r;
	}
	return 0;
}
