/* The notify socket (sd_notify(3)): a datagram socket whose path services get in
 * $NOTIFY_SOCKET. SO_PASSCRED makes the kernel attach the sender's credentials, so each message
 * is attributed to a unit by PID - the main or control process, or any process in the unit's
 * cgroup - and NotifyAccess= decides whether it is heard. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "base/log.h"
#include "base/mem.h"
#include "init/mgr-internal.h"

static void on_notify(struct keel_ev_io *io, uint32_t revents)
{
	struct keel_mgr *m = io->data;
	(void)revents;
	for (int i = 0; i < 64; i++) {
		char buf[4097];
		union {
			struct cmsghdr h;
			char b[CMSG_SPACE(sizeof(struct ucred)) + CMSG_SPACE(sizeof(int) * 16)];
		} ctl;
		struct iovec iov = {.iov_base = buf, .iov_len = sizeof(buf) - 1};
		struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = &ctl, .msg_controllen = sizeof(ctl)};
		ssize_t n = recvmsg(m->notify_fd, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
		if (n < 0)
			return;
		buf[n] = '\0';
		struct ucred *cred = NULL;
		for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
			if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_CREDENTIALS)
				cred = (struct ucred *)CMSG_DATA(c);
			else if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
				/* FDSTORE= is not supported: close what was passed */
				int *fds = (int *)CMSG_DATA(c);
				size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
				for (size_t j = 0; j < k; j++)
					close(fds[j]);
			}
		}
		if (!cred || cred->pid <= 0) {
			keel_logf(KEEL_LOG_WARN, "Received notify message without valid credentials. Ignoring.");
			continue;
		}
		struct mu *mu = keel_hmap_get_int(&m->pids, cred->pid);
		if (!mu) {
			char name[KEEL_UNIT_NAME_MAX];
			if (keel_cg_unit_of_pid(m->cg, cred->pid, name, sizeof(name)) == 0)
				mu = mgr_get(m, name);
		}
		if (!mu || mu->type != KEEL_UNIT_SERVICE) {
			keel_logf(KEEL_LOG_DEBUG, "Cannot find unit for notify message of PID %d, ignoring.", (int)cred->pid);
			continue;
		}
		svc_notify_message(mu, cred->pid, buf);
	}
}

int notify_open(struct keel_mgr *m)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/notify", m->runtime_dir);
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	strcpy(sa.sun_path, path);
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	unlink(path);
	int one = 1;
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &one, sizeof(one)) < 0) {
		int r = -errno;
		close(fd);
		return r;
	}
	int size = 8 * 1024 * 1024;
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
	m->notify_fd = fd;
	m->notify_path = keel_strdup(path);
	keel_ev_io_init(&m->notify_io, fd, on_notify, m);
	int r = keel_ev_io_start(m->ev, &m->notify_io, EPOLLIN);
	if (r < 0 || !m->notify_path) {
		notify_close(m);
		return r < 0 ? r : -ENOMEM;
	}
	return 0;
}

void notify_close(struct keel_mgr *m)
{
	if (m->notify_fd >= 0) {
		keel_ev_io_stop(m->ev, &m->notify_io);
		close(m->notify_fd);
		m->notify_fd = -1;
	}
	if (m->notify_path) {
		unlink(m->notify_path);
		keel_free(m->notify_path);
		m->notify_path = NULL;
	}
}
