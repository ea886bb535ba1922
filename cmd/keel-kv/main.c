/* keel-kv: an etcd-compatible (v2 API) replicated key-value store. This file only turns the
 * command line into a server configuration and runs the loop; lib/kv does the work. */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <uv.h>

#include "base/fault.h"
#include "base/log.h"
#include "base/mem.h"
#include "base/str.h"
#include "cluster.h"
#include "flags.h"
#include "kv/server.h"

static uv_loop_t *loop;
static struct keel_kv_server *server;
static const char *data_dir;

static void on_fatal(void *ud, const char *why)
{
	(void)ud;
	keel_log(KEEL_LOG_ERROR, "stopping", KEEL_LF_STR("reason", why));
	exit(1);
}

static void stopped(void *ud)
{
	(void)ud;
	uv_stop(loop);
}

/* etcd's words when its member learns it was removed; it then exits with status 0. */
static void on_removed(void *ud, const char *how)
{
	(void)ud;
	keel_log(KEEL_LOG_ERROR, "the member has been permanently removed from the cluster", KEEL_LF_STR("how", how));
	keel_log(KEEL_LOG_INFO, "the data-dir used by this member must be removed", KEEL_LF_STR("data-dir", data_dir));
	if (server) {
		struct keel_kv_server *s = server;
		server = NULL;
		keel_kv_server_stop(s, stopped, NULL);
	}
}

/* mkdir -p for the directories etcd creates as needed (--data-dir, --wal-dir). */
static int mkdir_parents(const char *path)
{
	char buf[4096];
	if (snprintf(buf, sizeof(buf), "%s", path) >= (int)sizeof(buf))
		return -ENAMETOOLONG;
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, 0700) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(buf, 0700) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

/* --listen-peer-urls: all http or all https (the peer transport is TLS for all or none), each
 * a numeric address. The first goes to host/port, the others to more[]. */
static int parse_peer_listen(char *const *urls, bool *tls, char (*hosts)[256], struct keel_kv_addr *more,
			     size_t *n_more, uint16_t *port, struct keel_err *err)
{
	*n_more = 0;
	if (!urls || !urls[0])
		return keel_err_set(err, -EINVAL, "--listen-peer-urls is empty");
	for (size_t i = 0; urls[i]; i++) {
		char scheme[8];
		uint16_t p;
		if (i > KEEL_KV_MAX_URLS - 1)
			return keel_err_set(err, -EINVAL, "--listen-peer-urls: at most %d URLs", KEEL_KV_MAX_URLS);
		if (keel_kv_parse_url(urls[i], scheme, sizeof(scheme), hosts[i], sizeof(hosts[i]), &p) < 0)
			return keel_err_set(err, -EINVAL, "invalid --listen-peer-urls entry \"%s\"", urls[i]);
		bool https = keel_streq(scheme, "https");
		if (i > 0 && https != *tls)
			return keel_err_set(err, -EINVAL, "--listen-peer-urls mixes http and https URLs");
		*tls = https;
		if (i == 0)
			*port = p;
		else
			more[(*n_more)++] = (struct keel_kv_addr){hosts[i], p};
	}
	return 0;
}

static void on_signal(uv_signal_t *h, int sig)
{
	keel_log(KEEL_LOG_INFO, "received signal; shutting down", KEEL_LF_INT("signal", sig));
	uv_signal_stop(h);
	if (server)
		keel_kv_server_stop(server, stopped, NULL);
	else
		uv_stop(loop);
}

static void setup_logging(const struct kv_flags *f)
{
	enum keel_log_level lvl = KEEL_LOG_INFO;
	enum keel_log_format fmt = KEEL_LOG_TEXT;
	keel_log_parse_level(f->log_level, &lvl);
	if (f->debug)
		lvl = KEEL_LOG_DEBUG;
	if (keel_streq(f->logger, "json") || keel_streq(f->logger, "zap"))
		fmt = KEEL_LOG_JSON;
	keel_log_setup("keel-kv", lvl, fmt, 2);
}

int main(int argc, char **argv)
{
	struct kv_flags f = {0};
	struct keel_err err;
	keel_log_setup("keel-kv", KEEL_LOG_INFO, KEEL_LOG_TEXT, 2);
	int r = kv_flags_parse(&f, argc, argv, &err);
	if (r == -KEEL_EHELP || r == -KEEL_EVERSION) {
		if (r == -KEEL_EHELP)
			keel_config_help(&kv_flags_spec, stdout);
		else
			printf("%s\n", kv_flags_spec.version);
		kv_flags_free(&f);
		return 0;
	}
	if (r < 0) {
		fprintf(stderr, "keel-kv: %s\n", err.msg);
		kv_flags_free(&f);
		return 2;
	}
	setup_logging(&f);
	keel_mem_use_for_jansson();
	/* Fault injection for tests (lib/base/fault.h), as tests/raftd: e.g. KEEL_FAULT=rename:1:-1:EACCES. */
	if (keel_fault_parse(getenv("KEEL_FAULT")) < 0) {
		fprintf(stderr, "keel-kv: bad KEEL_FAULT spec\n");
		kv_flags_free(&f);
		return 2;
	}

	struct kv_cluster cluster = {0};
	int rc = 0;
	if (kv_cluster_parse(f.initial_cluster, f.initial_cluster_token, &cluster, &err) < 0) {
		fprintf(stderr, "keel-kv: %s\n", err.msg);
		rc = 2;
		goto out;
	}
	const struct kv_member *self = kv_cluster_find_name(&cluster, f.name);
	if (!self) {
		fprintf(stderr, "keel-kv: couldn't find local name \"%s\" in the initial cluster configuration\n", f.name);
		rc = 2;
		goto out;
	}
	/* Peers listen on every --listen-peer-urls address. */
	char peer_hosts[KEEL_KV_MAX_URLS][256];
	struct keel_kv_addr more_peer[KEEL_KV_MAX_URLS];
	size_t n_more_peer = 0;
	uint16_t peer_port = 0;
	bool peer_tls = false;
	if (parse_peer_listen(f.listen_peer_urls, &peer_tls, peer_hosts, more_peer, &n_more_peer, &peer_port, &err) < 0) {
		fprintf(stderr, "keel-kv: %s\n", err.msg);
		rc = 2;
		goto out;
	}
	if (peer_tls && (!f.peer_cert_file || !f.peer_key_file)) {
		fprintf(stderr, "keel-kv: TLS key/cert (--peer-cert-file, --peer-key-file) must be provided "
				"for peer URL %s with HTTPS scheme\n", f.listen_peer_urls[0]);
		rc = 2;
		goto out;
	}
	if (!peer_tls && (f.peer_cert_file || f.peer_key_file))
		keel_log(KEEL_LOG_WARN, "scheme is http while peer key and cert files are present; ignoring key and cert files",
			 KEEL_LF_STR("url", f.listen_peer_urls[0]));
	/* etcd creates the data and WAL directories as needed. */
	data_dir = f.data_dir;
	const char *dirs[2] = {f.data_dir, f.wal_dir};
	for (size_t i = 0; i < 2; i++) {
		int e = dirs[i] ? mkdir_parents(dirs[i]) : 0;
		if (e < 0) {
			fprintf(stderr, "keel-kv: cannot create %s: %s\n", dirs[i], strerror(-e));
			rc = 1;
			goto out;
		}
	}

	struct keel_kv_member_cfg members[KV_MAX_MEMBERS];
	for (size_t i = 0; i < cluster.n; i++) {
		members[i] = (struct keel_kv_member_cfg){.id = cluster.members[i].id, .name = cluster.members[i].name,
							  .n_peer_urls = cluster.members[i].n_peer_urls};
		for (size_t k = 0; k < cluster.members[i].n_peer_urls; k++)
			members[i].peer_urls[k] = cluster.members[i].peer_urls[k];
	}
	struct keel_kv_server_config sc = {
		.name = f.name, .member_id = self->id, .cluster_id = cluster.id, .data_dir = f.data_dir,
		.wal_dir = f.wal_dir, .max_snapshots = (unsigned)f.max_snapshots, .max_wals = (unsigned)f.max_wals,
		.wal_segment_size = (size_t)f.wal_segment_size,
		.cluster_token = f.initial_cluster_token,
		.members = members, .n_members = cluster.n, .join = f.initial_cluster_state == 1,
		.client_urls = (const char *const *)f.listen_client_urls,
		.n_client_urls = keel_strv_len(f.listen_client_urls),
		.advertise_client_urls = (const char *const *)f.advertise_client_urls,
		.n_advertise_client_urls = keel_strv_len(f.advertise_client_urls),
		.peer_listen_host = peer_hosts[0], .peer_listen_port = peer_port,
		.more_peer_listen = more_peer, .n_more_peer_listen = n_more_peer,
		.cert_file = f.cert_file, .key_file = f.key_file, .trusted_ca_file = f.trusted_ca_file,
		.client_cert_auth = f.client_cert_auth,
		.peer_cert_file = peer_tls ? f.peer_cert_file : NULL, .peer_key_file = peer_tls ? f.peer_key_file : NULL,
		.peer_trusted_ca_file = peer_tls ? f.peer_trusted_ca_file : NULL,
		.peer_client_cert_auth = peer_tls && f.peer_client_cert_auth,
		.heartbeat_ms = (unsigned)f.heartbeat_interval, .election_ms = (unsigned)f.election_timeout,
		.snapshot_count = f.snapshot_count, .max_request_bytes = f.max_request_bytes,
		.watch_timeout_ms = (uint64_t)(f.watch_timeout_ns / 1000000),
		.strict_reconfig_check = f.strict_reconfig_check,
		.on_fatal = on_fatal, .on_removed = on_removed,
	};
	signal(SIGPIPE, SIG_IGN);
	/* Every watcher holds a connection: use all the descriptors we may (Go programs such as
	 * etcd get this from their runtime). Never above the hard limit. */
	struct rlimit nofile;
	if (getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < nofile.rlim_max) {
		nofile.rlim_cur = nofile.rlim_max;
		setrlimit(RLIMIT_NOFILE, &nofile);
	}
	loop = uv_default_loop();
	r = keel_kv_server_start(loop, &sc, &server, &err);
	if (r < 0) {
		keel_log(KEEL_LOG_ERROR, "cannot start", KEEL_LF_STR("error", err.msg));
		rc = 1;
		goto out;
	}
	char idhex[17], cidhex[17];
	snprintf(idhex, sizeof(idhex), "%" PRIx64, keel_kv_server_member_id(server));
	snprintf(cidhex, sizeof(cidhex), "%" PRIx64, keel_kv_server_cluster_id(server));
	keel_log(KEEL_LOG_INFO, "serving", KEEL_LF_STR("name", f.name), KEEL_LF_STR("member-id", idhex),
		 KEEL_LF_STR("cluster-id", cidhex), KEEL_LF_STR("data-dir", f.data_dir),
		 KEEL_LF_STR("client-url", f.listen_client_urls[0]));
	uv_signal_t sigterm, sigint;
	uv_signal_init(loop, &sigterm);
	uv_signal_init(loop, &sigint);
	uv_signal_start(&sigterm, on_signal, SIGTERM);
	uv_signal_start(&sigint, on_signal, SIGINT);
	uv_run(loop, UV_RUN_DEFAULT);
out:
	kv_cluster_free(&cluster);
	kv_flags_free(&f);
	return rc;
}
