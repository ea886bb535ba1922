/* keelctl's side of keel-init's control socket: JSON lines (docs/init.md "Control API"). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/mem.h"
#include "keelctl.h"

const char *keelctl_socket_path(const struct keelctl *ctl)
{
	if (ctl->socket)
		return ctl->socket;
	const char *e = getenv("KEEL_INIT_SOCKET");
	return e && *e ? e : "/run/keel/keel-init.sock";
}

static int connect_to(const char *path, struct keelctl_conn *c, bool quiet)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	memset(c, 0, sizeof(*c));
	c->fd = -1;
	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	strcpy(sa.sun_path, path);
	c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c->fd < 0)
		return -errno;
	if (connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int r = -errno;
		if (!quiet)
			fprintf(stderr, "Failed to connect to keel-init at %s: %s\n", path, strerror(-r));
		close(c->fd);
		c->fd = -1;
		return r;
	}
	c->next_id = 1;
	return 0;
}

int keelctl_connect(const struct keelctl *ctl, struct keelctl_conn *c)
{
	return connect_to(keelctl_socket_path(ctl), c, false);
}

char *keelctl_journal_dir(const struct keelctl *ctl)
{
	struct keelctl_conn c;
	if (connect_to(keelctl_socket_path(ctl), &c, true) < 0)
		return NULL;
	/* A keel-init that does not answer within seconds is not worth waiting for here. */
	struct timeval tv = {.tv_sec = 5};
	setsockopt(c.fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	char *dir = NULL;
	json_t *req = json_pack("{s:s}", "method", "ping");
	int id = req ? keelctl_send(&c, req) : -ENOMEM;
	json_decref(req);
	json_t *v = id > 0 ? keelctl_wait(&c, id) : NULL;
	const char *d = json_string_value(json_object_get(v, "journal_dir"));
	if (d)
		dir = strdup(d);
	json_decref(v);
	keelctl_disconnect(&c);
	return dir;
}

void keelctl_disconnect(struct keelctl_conn *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	keel_buf_free(&c->in);
}

int keelctl_send(struct keelctl_conn *c, json_t *req)
{
	int id = c->next_id++;
	json_object_set_new(req, "id", json_integer(id));
	char *text = json_dumps(req, JSON_COMPACT);
	if (!text)
		return -ENOMEM;
	size_t n = strlen(text);
	text[n] = '\n';
	ssize_t off = 0;
	int r = id;
	while ((size_t)off < n + 1) {
		ssize_t w = send(c->fd, text + off, n + 1 - (size_t)off, MSG_NOSIGNAL);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			r = -errno;
			break;
		}
		off += w;
	}
	free(text);
	return r;
}

json_t *keelctl_read(struct keelctl_conn *c)
{
	for (;;) {
		char *nl = c->in.len ? memchr(c->in.data, '\n', c->in.len) : NULL;
		if (nl) {
			json_t *v = json_loadb(c->in.data, (size_t)(nl - c->in.data), 0, NULL);
			keel_buf_consume(&c->in, (size_t)(nl - c->in.data) + 1);
			if (v)
				return v;
			continue;
		}
		char chunk[65536];
		ssize_t n = recv(c->fd, chunk, sizeof(chunk), 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return NULL;
		if (keel_buf_append(&c->in, chunk, (size_t)n) < 0)
			return NULL;
	}
}

json_t *keelctl_wait(struct keelctl_conn *c, int id)
{
	for (;;) {
		json_t *v = keelctl_read(c);
		if (!v)
			return NULL;
		if (json_integer_value(json_object_get(v, "id")) == id && !json_object_get(v, "event"))
			return v;
		json_decref(v);
	}
}

json_t *keelctl_call(struct keelctl_conn *c, json_t *req)
{
	int id = keelctl_send(c, req);
	json_decref(req);
	if (id < 0) {
		fprintf(stderr, "Failed to talk to keel-init: %s\n", strerror(-id));
		return NULL;
	}
	json_t *v = keelctl_wait(c, id);
	if (!v)
		fprintf(stderr, "keel-init closed the connection\n");
	return v;
}
