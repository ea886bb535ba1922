/* A member that joins an existing cluster (--initial-cluster-state existing) learns who it is
 * from its peers, as etcd's does (GetClusterFromRemotePeers over the peers' GET /members): it
 * asks them (a QUERY on the peer transport, keel_transport_query), finds itself among the
 * members by its peer URLs, and takes its member id, the other members' ids and the cluster id
 * from the answer. What it learned is kept in <data-dir>/keel-member.json (etcd keeps it in the
 * WAL's metadata), so a restart needs no peer and reports the same ids. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <time.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/jw.h"
#include "base/log.h"
#include "base/mem.h"
#include "base/str.h"
#include "kv/server-internal.h"
#include "raftio/transport.h"

#define IDENTITY_FILE "keel-member.json"
#define QUERY_TIMEOUT_MS 2000  /* one peer */
#define JOIN_DEADLINE_MS 15000 /* all of them, retried: a follower may not have applied the add yet */

/* The answer to a peer's QUERY: this member's view of the cluster. */
int kv_answer_query(void *ud, struct keel_buf *out)
{
	struct keel_kv_server *s = ud;
	struct keel_buf members = KEEL_BUF_INIT;
	int r = kv_members_json(s, &members);
	/* {"clusterID":"...","members":[...]}: the members object with the id put in front. */
	if (r == 0 && (members.len < 2 || members.data[0] != '{'))
		r = -EINVAL;
	if (r == 0)
		r = keel_buf_printf(out, "{\"clusterID\":\"%s\",", s->cluster_id_hex);
	if (r == 0)
		r = keel_buf_append(out, members.data + 1, members.len - 1);
	keel_buf_free(&members);
	return r;
}

static char *identity_path(const struct keel_kv_server *s)
{
	size_t len = strlen(s->cfg.data_dir) + sizeof(IDENTITY_FILE) + 2;
	char *p = keel_malloc(len);
	if (p)
		snprintf(p, len, "%s/%s", s->cfg.data_dir, IDENTITY_FILE);
	return p;
}

static bool same_urls(json_t *arr, const struct keel_kv_member_cfg *m)
{
	if (!json_is_array(arr) || json_array_size(arr) != m->n_peer_urls)
		return false;
	for (size_t i = 0; i < m->n_peer_urls; i++) {
		bool found = false;
		size_t k;
		json_t *u;
		json_array_foreach(arr, k, u)
			found = found || keel_streq(json_string_value(u), m->peer_urls[i]);
		if (!found)
			return false;
	}
	return true;
}

static uint64_t hex_id(json_t *v)
{
	const char *t = json_string_value(v);
	char *end;
	uint64_t id = t && *t ? strtoull(t, &end, 16) : 0;
	return id && !*end ? id : 0;
}

/* Take the ids out of an answer (or the identity file): the cluster's id, this member's (by
 * its peer URLs, or memberID when the file names it), and every member for the transport.
 * Keeps root (the strings point into it). -ENOENT when this member is not in the list. */
static int adopt(struct keel_kv_server *s, json_t *root, const struct keel_kv_member_cfg *self)
{
	uint64_t cid = hex_id(json_object_get(root, "clusterID"));
	uint64_t mine = hex_id(json_object_get(root, "memberID"));
	json_t *list = json_object_get(root, "members");
	if (!cid || !json_is_array(list))
		return -EINVAL;
	size_t n = 0, i;
	json_t *m;
	bool found = false;
	json_array_foreach(list, i, m) {
		uint64_t id = hex_id(json_object_get(m, "id"));
		json_t *urls = json_object_get(m, "peerURLs");
		if (!id || !json_is_array(urls) || json_array_size(urls) == 0 || n == KEEL_KV_MAX_MEMBERS)
			return -EINVAL;
		if (!mine && self && same_urls(urls, self))
			mine = id;
		struct keel_kv_member_cfg *c = &s->joined[n++];
		*c = (struct keel_kv_member_cfg){.id = id, .name = ""};
		size_t k;
		json_t *u;
		json_array_foreach(urls, k, u)
			if (json_is_string(u) && c->n_peer_urls < KEEL_KV_MAX_URLS)
				c->peer_urls[c->n_peer_urls++] = json_string_value(u);
		found = found || id == mine;
	}
	if (!mine || !found)
		return -ENOENT;
	s->cfg.member_id = mine;
	s->cfg.cluster_id = cid;
	snprintf(s->cluster_id_hex, sizeof(s->cluster_id_hex), "%" PRIx64, cid);
	s->cfg.members = s->joined;
	s->cfg.n_members = n;
	json_decref(s->joined_root);
	s->joined_root = json_incref(root);
	return 0;
}

/* Write the identity: the answer with memberID added, through a synced temp file. */
static int save_identity(struct keel_kv_server *s, json_t *root, struct keel_err *err)
{
	char hex[17];
	snprintf(hex, sizeof(hex), "%" PRIx64, s->cfg.member_id);
	json_object_set_new(root, "memberID", json_string(hex));
	char *text = json_dumps(root, JSON_COMPACT);
	char *path = identity_path(s);
	char *tmp = path ? keel_malloc(strlen(path) + 5) : NULL;
	int r = text && tmp ? 0 : -ENOMEM;
	if (r == 0) {
		snprintf(tmp, strlen(path) + 5, "%s.tmp", path);
		int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		size_t len = strlen(text);
		if (fd < 0 || write(fd, text, len) != (ssize_t)len || fsync(fd) < 0)
			r = -errno;
		if (fd >= 0)
			close(fd);
		if (r == 0 && rename(tmp, path) < 0)
			r = -errno;
		int dfd = r == 0 ? open(s->cfg.data_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
		if (dfd >= 0) {
			fsync(dfd);
			close(dfd);
		}
		if (r < 0)
			unlink(tmp);
	}
	if (r < 0)
		keel_err_errno(err, r, "writing %s", path ? path : IDENTITY_FILE);
	free(text);
	keel_free(tmp);
	keel_free(path);
	return r;
}

/* Whether the WAL directory already holds segments (a member that joined before identity
 * files existed: its id came from its flags, keep it that way). */
static bool has_wal(const struct keel_kv_server *s)
{
	char buf[4096];
	const char *dir = s->cfg.wal_dir;
	if (!dir) {
		snprintf(buf, sizeof(buf), "%s/wal", s->cfg.data_dir);
		dir = buf;
	}
	DIR *d = opendir(dir);
	if (!d)
		return false;
	bool found = false;
	struct dirent *e;
	while (!found && (e = readdir(d)))
		found = keel_endswith(e->d_name, ".wal");
	closedir(d);
	return found;
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000};
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Ask the other members of --initial-cluster, in turn, until one lists this member. */
static int ask_peers(struct keel_kv_server *s, const struct keel_kv_member_cfg *self, struct keel_err *err)
{
	int64_t deadline = mono_ms() + JOIN_DEADLINE_MS;
	struct keel_err last;
	keel_err_set(&last, -ENOENT, "no other member in --initial-cluster to ask");
	do {
		for (size_t i = 0; i < s->cfg.n_members; i++) {
			const struct keel_kv_member_cfg *m = &s->cfg.members[i];
			if (m == self)
				continue;
			for (size_t u = 0; u < m->n_peer_urls; u++) {
				char scheme[8], host[256];
				uint16_t port;
				if (keel_kv_parse_url(m->peer_urls[u], scheme, sizeof(scheme), host, sizeof(host), &port) < 0)
					continue;
				struct keel_transport_query_opts o = {
					.host = host, .port = port, .timeout_ms = QUERY_TIMEOUT_MS,
					.cluster_id = keel_kv_member_id(NULL, 0, s->cfg.cluster_token),
					.cert_file = s->cfg.peer_cert_file, .key_file = s->cfg.peer_key_file,
					.ca_file = s->cfg.peer_trusted_ca_file,
				};
				char *answer = NULL;
				size_t len = 0;
				if (keel_transport_query(&o, &answer, &len, &last) < 0)
					continue;
				json_error_t jerr;
				json_t *root = json_loadb(answer, len, 0, &jerr);
				keel_free(answer);
				int r = root ? adopt(s, root, self) : -EINVAL;
				if (r == 0)
					r = save_identity(s, root, err);
				json_decref(root);
				if (r == 0) {
					keel_log(KEEL_LOG_INFO, "joined the cluster as its peers know it",
						 KEEL_LF_STR("asked", m->peer_urls[u]), KEEL_LF_STR("cluster-id",
						 s->cluster_id_hex));
					return 0;
				}
				if (r != -ENOENT && r != -EINVAL)
					return r;
				keel_err_set(&last, r, "%s does not list a member with this member's peer URLs",
					     m->peer_urls[u]);
			}
		}
		sleep_ms(300);
	} while (mono_ms() < deadline);
	return keel_err_set(err, last.code ? last.code : -ENOENT,
			    "cannot fetch cluster info from peer urls (add this member first with \"etcdctl member "
			    "add\", and give it the --initial-cluster that prints): %s", last.msg);
}

int kv_identity_setup(struct keel_kv_server *s, struct keel_err *err)
{
	char *path = identity_path(s);
	if (!path)
		return keel_err_set(err, -ENOMEM, "out of memory");
	json_error_t jerr;
	json_t *root = json_load_file(path, 0, &jerr);
	int r = 0;
	if (root) {
		r = adopt(s, root, NULL);
		json_decref(root);
		if (r < 0)
			r = keel_err_set(err, -KEEL_ECORRUPT, "%s: not a member identity this version wrote", path);
	} else if (access(path, F_OK) == 0) {
		r = keel_err_set(err, -KEEL_ECORRUPT, "%s: %s", path, jerr.text);
	} else if (s->cfg.join && !has_wal(s)) {
		const struct keel_kv_member_cfg *self = NULL;
		for (size_t i = 0; i < s->cfg.n_members; i++)
			if (s->cfg.members[i].id == s->cfg.member_id)
				self = &s->cfg.members[i];
		r = self ? ask_peers(s, self, err) : keel_err_set(err, -EINVAL, "this member is not in --initial-cluster");
	}
	keel_free(path);
	return r;
}
