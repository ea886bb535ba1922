/* Socket units (systemd.socket(5)): listening sockets made by keel-init and handed to services
 * with the LISTEN_FDS protocol (sd_listen_fds(3)). Accept=no starts the service on the first
 * traffic and passes it every listening fd; Accept=yes accepts each connection and starts an
 * instance of the template foo@.service with that connection as fd 3 (and as stdin/stdout with
 * StandardInput=socket/StandardOutput=socket). */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "base/mem.h"
#include "base/str.h"
#include "init/mgr-internal.h"

enum { SO_DEAD, SO_LISTENING, SO_RUNNING, SO_FAILED };

static const char *sock_sub_name(int sub)
{
	static const char *const n[] = {"dead", "listening", "running", "failed"};
	return (unsigned)sub < KEEL_ARRAY_SIZE(n) ? n[sub] : "?";
}

static struct keel_socket *SO(struct mu *mu) { return keel_unit_socket(mu->u); }

static void close_fds(struct mu *mu)
{
	struct sock_rt *s = &mu->rt.sock;
	struct keel_socket *so = SO(mu);
	for (uint16_t i = 0; i < s->n_fds; i++) {
		keel_ev_io_stop(mu->m->ev, &s->ios[i]);
		if (s->fds[i] >= 0)
			close(s->fds[i]);
		const struct keel_listen *l = i < so->n_listen ? &so->listen[i] : NULL;
		if (l && so->remove_on_stop && l->path && l->path[0] == '/')
			unlink(l->path);
	}
	keel_free(s->fds);
	keel_free(s->ios);
	s->fds = NULL;
	s->ios = NULL;
	s->n_fds = 0;
}

static void mkdir_parents(const char *path, mode_t mode)
{
	char buf[4096];
	snprintf(buf, sizeof(buf), "%s", path);
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		mkdir(buf, mode);
		*p = '/';
	}
}

static int open_listen(struct mu *mu, const struct keel_listen *l)
{
	struct keel_socket *so = SO(mu);
	int type = l->kind == KEEL_LISTEN_DATAGRAM ? SOCK_DGRAM : l->kind == KEEL_LISTEN_SEQPACKET ? SOCK_SEQPACKET : SOCK_STREAM;
	if (l->kind == KEEL_LISTEN_FIFO) {
		mkdir_parents(l->path, so->directory_mode);
		if (mkfifo(l->path, so->socket_mode) < 0 && errno != EEXIST)
			return -errno;
		int fd = open(l->path, O_RDWR | O_CLOEXEC | O_NONBLOCK);
		return fd < 0 ? -errno : fd;
	}
	if (l->kind != KEEL_LISTEN_STREAM && l->kind != KEEL_LISTEN_DATAGRAM && l->kind != KEEL_LISTEN_SEQPACKET)
		return -EOPNOTSUPP;
	struct sockaddr_storage ss = {0};
	socklen_t len = 0;
	int family;
	const struct keel_sockaddr *a = &l->addr;
	if (a->kind == KEEL_SOCKADDR_UNIX || a->kind == KEEL_SOCKADDR_ABSTRACT) {
		struct sockaddr_un *un = (struct sockaddr_un *)&ss;
		un->sun_family = AF_UNIX;
		size_t n = strlen(l->path);
		if (n >= sizeof(un->sun_path))
			return -ENAMETOOLONG;
		memcpy(un->sun_path, l->path, n);
		if (a->kind == KEEL_SOCKADDR_ABSTRACT)
			un->sun_path[0] = '\0';
		len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + (a->kind == KEEL_SOCKADDR_UNIX));
		family = AF_UNIX;
	} else if (a->kind == KEEL_SOCKADDR_INET) {
		struct sockaddr_in *in = (struct sockaddr_in *)&ss;
		in->sin_family = AF_INET;
		in->sin_port = htons(a->port);
		memcpy(&in->sin_addr, a->addr, 4);
		len = sizeof(*in);
		family = AF_INET;
	} else {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons(a->port);
		if (a->kind == KEEL_SOCKADDR_INET6)
			memcpy(&in6->sin6_addr, a->addr, 16);
		else
			in6->sin6_addr = in6addr_any;
		len = sizeof(*in6);
		family = AF_INET6;
	}
	int fd = socket(family, type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0 && family == AF_INET6 && a->kind == KEEL_SOCKADDR_PORT) {
		/* no IPv6: every IPv4 address */
		struct sockaddr_in *in = (struct sockaddr_in *)&ss;
		memset(&ss, 0, sizeof(ss));
		in->sin_family = AF_INET;
		in->sin_port = htons(a->port);
		len = sizeof(*in);
		family = AF_INET;
		fd = socket(family, type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	}
	if (fd < 0)
		return -errno;
	int one = 1;
	if (family != AF_UNIX) {
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (so->reuse_port)
			setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
		if (family == AF_INET6 && so->bind_ipv6_only != KEEL_BIND_IPV6_DEFAULT) {
			int v = so->bind_ipv6_only == KEEL_BIND_IPV6_ONLY;
			setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v, sizeof(v));
		}
		if (so->free_bind)
			setsockopt(fd, IPPROTO_IP, IP_FREEBIND, &one, sizeof(one));
		if (so->broadcast)
			setsockopt(fd, SOL_SOCKET, SO_BROADCAST, &one, sizeof(one));
	} else if (a->kind == KEEL_SOCKADDR_UNIX) {
		mkdir_parents(l->path, so->directory_mode);
		unlink(l->path);
	}
	if (so->pass_credentials)
		setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &one, sizeof(one));
	if (so->keep_alive)
		setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, len) < 0) {
		int e = -errno;
		close(fd);
		return e;
	}
	if (a->kind == KEEL_SOCKADDR_UNIX)
		chmod(l->path, so->socket_mode);
	if (type != SOCK_DGRAM && listen(fd, (int)so->backlog) < 0) {
		int e = -errno;
		close(fd);
		return e;
	}
	/* Services get the listening socket blocking, as from systemd; keel-init accepts itself
	 * (Accept=yes) only on non-blocking ones, so a connection gone before accept() cannot
	 * block its loop. */
	if (!so->accept) {
		int fl = fcntl(fd, F_GETFL);
		if (fl >= 0)
			fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
	}
	return fd;
}

static void on_traffic(struct keel_ev_io *io, uint32_t revents);

static void watch(struct mu *mu, bool on)
{
	struct sock_rt *s = &mu->rt.sock;
	for (uint16_t i = 0; i < s->n_fds; i++) {
		if (on)
			(void)!keel_ev_io_start(mu->m->ev, &s->ios[i], EPOLLIN);
		else
			keel_ev_io_stop(mu->m->ev, &s->ios[i]);
	}
	s->listening_paused = !on;
}

static struct mu *triggered(struct mu *mu)
{
	for (uint32_t i = 0; i < mu->n_edges; i++)
		if (mu->edges[i].kind == E_TRIGGERS)
			return mu->edges[i].other;
	return NULL;
}

static int sock_start(struct mu *mu)
{
	struct sock_rt *s = &mu->rt.sock;
	struct keel_socket *so = SO(mu);
	if (mu->sub == SO_LISTENING || mu->sub == SO_RUNNING)
		return -EALREADY;
	if (!unit_start_limit_ok(mu)) {
		unit_log(mu, 3, "Start request repeated too quickly.");
		s->result = R_START_LIMIT_HIT;
		unit_set_state(mu, KEEL_FAILED, SO_FAILED);
		return -ECANCELED;
	}
	if (!so->accept) {
		struct mu *svc = triggered(mu);
		if (!svc || !unit_is_loaded(svc)) {
			unit_log(mu, 3, "Socket service %s not loaded, refusing.", svc ? svc->id : "(none)");
			s->result = R_RESOURCES;
			unit_set_state(mu, KEEL_FAILED, SO_FAILED);
			return -ENOENT;
		}
	}
	s->result = R_SUCCESS;
	s->fds = keel_calloc(so->n_listen ? so->n_listen : 1, sizeof(int));
	s->ios = keel_calloc(so->n_listen ? so->n_listen : 1, sizeof(struct keel_ev_io));
	if (!s->fds || !s->ios) {
		close_fds(mu);
		return -ENOMEM;
	}
	for (uint16_t i = 0; i < so->n_listen; i++) {
		int fd = open_listen(mu, &so->listen[i]);
		if (fd < 0) {
			char addr[256];
			keel_sockaddr_format(&so->listen[i].addr, so->listen[i].path, addr, sizeof(addr));
			unit_log(mu, 3, "Failed to create listening socket (%s): %s", addr, strerror(-fd));
			s->n_fds = i;
			close_fds(mu);
			s->result = R_RESOURCES;
			unit_set_state(mu, KEEL_FAILED, SO_FAILED);
			return fd;
		}
		s->fds[i] = fd;
		keel_ev_io_init(&s->ios[i], fd, on_traffic, mu);
	}
	s->n_fds = so->n_listen;
	s->n_connections = 0;
	watch(mu, true);
	unit_set_state(mu, KEEL_ACTIVE, SO_LISTENING);
	return 0;
}

static int sock_stop(struct mu *mu)
{
	close_fds(mu);
	unit_set_state(mu, KEEL_INACTIVE, SO_DEAD);
	return 0;
}

/* "3-127.0.0.1:8080-127.0.0.1:54321" (or "3-PID-UID" for unix peers), systemd's instance names. */
static void instance_name(struct mu *mu, int cfd, char *out, size_t size)
{
	struct sock_rt *s = &mu->rt.sock;
	struct sockaddr_storage local = {0}, peer = {0};
	socklen_t ll = sizeof(local), pl = sizeof(peer);
	getsockname(cfd, (struct sockaddr *)&local, &ll);
	getpeername(cfd, (struct sockaddr *)&peer, &pl);
	unsigned nr = s->n_accepted++;
	if (local.ss_family == AF_UNIX) {
		struct ucred cred = {0};
		socklen_t cl = sizeof(cred);
		getsockopt(cfd, SOL_SOCKET, SO_PEERCRED, &cred, &cl);
		snprintf(out, size, "%u-%d-%u", nr, (int)cred.pid, (unsigned)cred.uid);
		return;
	}
	char a[INET6_ADDRSTRLEN], b[INET6_ADDRSTRLEN];
	unsigned lp = 0, pp = 0;
	if (local.ss_family == AF_INET) {
		inet_ntop(AF_INET, &((struct sockaddr_in *)&local)->sin_addr, a, sizeof(a));
		inet_ntop(AF_INET, &((struct sockaddr_in *)&peer)->sin_addr, b, sizeof(b));
		lp = ntohs(((struct sockaddr_in *)&local)->sin_port);
		pp = ntohs(((struct sockaddr_in *)&peer)->sin_port);
		snprintf(out, size, "%u-%s:%u-%s:%u", nr, a, lp, b, pp);
	} else {
		inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&local)->sin6_addr, a, sizeof(a));
		inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&peer)->sin6_addr, b, sizeof(b));
		lp = ntohs(((struct sockaddr_in6 *)&local)->sin6_port);
		pp = ntohs(((struct sockaddr_in6 *)&peer)->sin6_port);
		snprintf(out, size, "%u-[%s]:%u-[%s]:%u", nr, a, lp, b, pp);
	}
	/* unit names may not hold '%' (scoped IPv6) */
	for (char *p = out; *p; p++)
		if (*p == '%')
			*p = '_';
}

static void accept_one(struct mu *mu, int lfd)
{
	struct sock_rt *s = &mu->rt.sock;
	struct keel_socket *so = SO(mu);
	int cfd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	if (cfd < 0)
		return;
	if (so->max_connections && s->n_connections >= so->max_connections) {
		unit_log(mu, 4, "Too many incoming connections (%u), dropping connection.", s->n_connections);
		close(cfd);
		return;
	}
	char inst[200], *prefix = NULL, *tmpl = NULL, *name = NULL;
	instance_name(mu, cfd, inst, sizeof(inst));
	const char *svc_tmpl = so->service;
	int r = 0;
	if (svc_tmpl) {
		r = keel_unit_name_template(svc_tmpl, &tmpl);
		if (r < 0)
			tmpl = keel_strdup(svc_tmpl);
	} else if ((r = keel_unit_name_prefix(mu->id, &prefix)) == 0) {
		size_t n = strlen(prefix) + 16;
		tmpl = keel_malloc(n);
		if (tmpl)
			snprintf(tmpl, n, "%s@.service", prefix);
	}
	if (tmpl)
		r = keel_unit_name_replace_instance(tmpl, inst, &name);
	struct mu *inst_mu = name ? mgr_load(mu->m, name) : NULL;
	keel_free(prefix);
	keel_free(tmpl);
	if (!inst_mu || !unit_is_loaded(inst_mu) || inst_mu->type != KEEL_UNIT_SERVICE) {
		unit_log(mu, 3, "Failed to load connection service %s: %s", name ? name : "?",
			 inst_mu ? "unit not loaded" : strerror(r < 0 ? -r : ENOMEM));
		keel_free(name);
		close(cfd);
		return;
	}
	keel_free(name);
	inst_mu->gc_when_dead = true;
	inst_mu->transient = true;
	svc_set_accept_fd(inst_mu, cfd);
	inst_mu->accept_socket = mu;
	s->n_connections++;
	struct keel_err e;
	if (job_enqueue(mu->m, inst_mu, JOB_START, true, false, NULL, &e) < 0) {
		unit_log(mu, 3, "Failed to queue service startup job: %s", keel_err_msg(&e));
		s->n_connections--;
		inst_mu->accept_socket = NULL;
		unit_add_gc(inst_mu);
	}
}

static void on_traffic(struct keel_ev_io *io, uint32_t revents)
{
	struct mu *mu = io->data;
	struct keel_socket *so = SO(mu);
	(void)revents;
	if (mu->sub != SO_LISTENING && mu->sub != SO_RUNNING)
		return;
	if (so->accept) {
		accept_one(mu, io->fd);
		return;
	}
	struct mu *svc = triggered(mu);
	if (!svc)
		return;
	/* The service takes over; listening resumes when it stops. */
	watch(mu, false);
	unit_set_state(mu, KEEL_ACTIVE, SO_RUNNING);
	if (keel_active_or_activating(svc->active) && !(svc->sub == S_AUTO_RESTART))
		return;
	struct keel_err e;
	if (job_enqueue(mu->m, svc, JOB_START, true, false, NULL, &e) < 0) {
		unit_log(mu, 3, "Failed to queue service startup job (Maybe the service file is missing or not a template unit?): %s",
			 keel_err_msg(&e));
		watch(mu, true);
		unit_set_state(mu, KEEL_ACTIVE, SO_LISTENING);
	}
}

static void sock_trigger_notify(struct mu *mu, struct mu *other)
{
	struct keel_socket *so = SO(mu);
	if (mu->sub != SO_LISTENING && mu->sub != SO_RUNNING)
		return;
	if (so->accept)
		return;
	if (keel_inactive_or_failed(other->active)) {
		if (other->active == KEEL_FAILED && other->type == KEEL_UNIT_SERVICE &&
		    other->rt.svc.result == R_START_LIMIT_HIT) {
			unit_log(mu, 3, "Service %s has entered the failed state after too many restarts; stopping the socket.", other->id);
			close_fds(mu);
			mu->rt.sock.result = R_START_LIMIT_HIT;
			unit_set_state(mu, KEEL_FAILED, SO_FAILED);
			return;
		}
		if (mu->sub == SO_RUNNING) {
			watch(mu, true);
			unit_set_state(mu, KEEL_ACTIVE, SO_LISTENING);
		}
	} else if (keel_active_or_activating(other->active) && mu->sub == SO_LISTENING &&
		   !(other->type == KEEL_UNIT_SERVICE && other->sub == S_AUTO_RESTART)) {
		watch(mu, false);
		unit_set_state(mu, KEEL_ACTIVE, SO_RUNNING);
	}
}

int sock_collect_fds(struct mu *svc, int *fds, int max, struct keel_buf *names)
{
	int n = 0;
	for (uint32_t i = 0; i < svc->n_edges; i++) {
		if (svc->edges[i].kind != E_TRIGGERED_BY)
			continue;
		struct mu *so = svc->edges[i].other;
		if (so->type != KEEL_UNIT_SOCKET || (so->sub != SO_LISTENING && so->sub != SO_RUNNING))
			continue;
		const struct keel_socket *sc = keel_unit_socket(so->u);
		const char *name = sc->fd_name ? sc->fd_name : so->id;
		for (uint16_t k = 0; k < so->rt.sock.n_fds && n < max; k++) {
			fds[n++] = so->rt.sock.fds[k];
			if (names->len && keel_buf_putc(names, ':') < 0)
				return -ENOMEM;
			if (keel_buf_puts(names, name) < 0)
				return -ENOMEM;
		}
	}
	return n;
}

static void sock_init(struct mu *mu) { (void)mu; }
static void sock_done(struct mu *mu) { close_fds(mu); }
static void sock_reset_failed(struct mu *mu)
{
	if (mu->sub == SO_FAILED) {
		mu->rt.sock.result = R_SUCCESS;
		unit_set_state(mu, KEEL_INACTIVE, SO_DEAD);
	}
}
static bool sock_may_gc(struct mu *mu) { (void)mu; return true; }

const struct unit_vtable sock_vtable = {
	.start = sock_start, .stop = sock_stop, .sub_name = sock_sub_name, .init = sock_init,
	.done = sock_done, .reset_failed = sock_reset_failed, .trigger_notify = sock_trigger_notify,
	.may_gc = sock_may_gc,
};
