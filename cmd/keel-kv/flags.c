#include "flags.h"

#include <errno.h>
#include <stdio.h>
#include <stddef.h>

#include "base/mem.h"
#include "base/str.h"

#define F(field) offsetof(struct kv_flags, field)

static const char *const cluster_states[] = {"new", "existing", NULL};

/* Defaults follow etcd 3.4 with the v2 API, plus etcd 2's legacy ports (4001, 7001), which
 * CoreOS-era clients still use. */
static const struct keel_opt opts[] = {
	{.name = "name", .type = KEEL_OPT_STRING, .offset = F(name), .def = "default",
	 .help = "Human-readable name for this member."},
	{.name = "data-dir", .type = KEEL_OPT_STRING, .offset = F(data_dir), .metavar = "DIR",
	 .help = "Path to the data directory (default: ${name}.etcd)."},
	{.name = "wal-dir", .type = KEEL_OPT_STRING, .offset = F(wal_dir), .metavar = "DIR",
	 .help = "Path to a dedicated WAL directory (default: inside --data-dir)."},
	{.name = "snapshot-count", .type = KEEL_OPT_UINT, .offset = F(snapshot_count), .def = "100000",
	 .min = 1, .max = UINT32_MAX, .help = "Number of committed transactions to trigger a snapshot to disk."},
	{.name = "heartbeat-interval", .type = KEEL_OPT_UINT, .offset = F(heartbeat_interval), .def = "100",
	 .min = 1, .max = 60000, .help = "Time (in milliseconds) of a heartbeat interval."},
	{.name = "election-timeout", .type = KEEL_OPT_UINT, .offset = F(election_timeout), .def = "1000",
	 .min = 1, .max = 600000, .help = "Time (in milliseconds) for an election to timeout."},
	{.name = "max-snapshots", .type = KEEL_OPT_UINT, .offset = F(max_snapshots), .def = "5", .max = 1000000,
	 .help = "Maximum number of snapshot files to retain (0 is unlimited)."},
	{.name = "max-wals", .type = KEEL_OPT_UINT, .offset = F(max_wals), .def = "5", .max = 1000000,
	 .help = "Maximum number of wal files to retain (0 is unlimited)."},
	{.name = "listen-peer-urls", .type = KEEL_OPT_LIST, .offset = F(listen_peer_urls),
	 .def = "http://127.0.0.1:2380,http://127.0.0.1:7001", .metavar = "URLS",
	 .help = "List of URLs to listen on for peer traffic."},
	{.name = "listen-client-urls", .type = KEEL_OPT_LIST, .offset = F(listen_client_urls),
	 .def = "http://127.0.0.1:2379,http://127.0.0.1:4001", .metavar = "URLS",
	 .help = "List of URLs to listen on for client traffic."},
	{.name = "initial-advertise-peer-urls", .type = KEEL_OPT_LIST, .offset = F(initial_advertise_peer_urls),
	 .def = "http://127.0.0.1:2380", .metavar = "URLS",
	 .help = "List of this member's peer URLs to advertise to the rest of the cluster."},
	{.name = "advertise-client-urls", .type = KEEL_OPT_LIST, .offset = F(advertise_client_urls),
	 .def = "http://127.0.0.1:2379", .metavar = "URLS",
	 .help = "List of this member's client URLs to advertise to the public."},
	{.name = "initial-cluster", .type = KEEL_OPT_LIST, .offset = F(initial_cluster),
	 .def = "default=http://127.0.0.1:2380", .metavar = "NAME=URL,...",
	 .help = "Initial cluster configuration for bootstrapping."},
	{.name = "initial-cluster-state", .type = KEEL_OPT_ENUM, .offset = F(initial_cluster_state),
	 .def = "new", .choices = cluster_states,
	 .help = "Initial cluster state ('new' or 'existing')."},
	{.name = "initial-cluster-token", .type = KEEL_OPT_STRING, .offset = F(initial_cluster_token),
	 .def = "etcd-cluster", .help = "Initial cluster token for the etcd cluster during bootstrap."},
	{.name = "cert-file", .type = KEEL_OPT_STRING, .offset = F(cert_file), .metavar = "FILE",
	 .help = "Path to the client server TLS cert file."},
	{.name = "key-file", .type = KEEL_OPT_STRING, .offset = F(key_file), .metavar = "FILE",
	 .help = "Path to the client server TLS key file."},
	{.name = "client-cert-auth", .type = KEEL_OPT_BOOL, .offset = F(client_cert_auth),
	 .help = "Enable client cert authentication."},
	{.name = "trusted-ca-file", .type = KEEL_OPT_STRING, .offset = F(trusted_ca_file), .metavar = "FILE",
	 .help = "Path to the client server TLS trusted CA cert file."},
	{.name = "ca-file", .type = KEEL_OPT_STRING, .offset = F(ca_file), .metavar = "FILE",
	 .help = "DEPRECATED: path to the client server TLS CA file.", .flags = KEEL_OPT_HIDDEN},
	{.name = "peer-cert-file", .type = KEEL_OPT_STRING, .offset = F(peer_cert_file), .metavar = "FILE",
	 .help = "Path to the peer server TLS cert file."},
	{.name = "peer-key-file", .type = KEEL_OPT_STRING, .offset = F(peer_key_file), .metavar = "FILE",
	 .help = "Path to the peer server TLS key file."},
	{.name = "peer-client-cert-auth", .type = KEEL_OPT_BOOL, .offset = F(peer_client_cert_auth),
	 .help = "Enable peer client cert authentication."},
	{.name = "peer-trusted-ca-file", .type = KEEL_OPT_STRING, .offset = F(peer_trusted_ca_file),
	 .metavar = "FILE", .help = "Path to the peer server TLS trusted CA file."},
	{.name = "strict-reconfig-check", .type = KEEL_OPT_BOOL, .offset = F(strict_reconfig_check), .def = "true",
	 .help = "Reject reconfiguration requests that would cause quorum loss."},
	{.name = "enable-v2", .type = KEEL_OPT_BOOL, .offset = F(enable_v2), .def = "true",
	 .help = "Accept etcd V2 client requests (always on: keel-kv serves the v2 API)."},
	{.name = "debug", .type = KEEL_OPT_BOOL, .offset = F(debug),
	 .help = "Enable debug-level logging."},
	{.name = "log-level", .type = KEEL_OPT_STRING, .offset = F(log_level), .def = "info",
	 .help = "Configures log level: debug, info, warn, error."},
	{.name = "logger", .type = KEEL_OPT_STRING, .offset = F(logger), .def = "text",
	 .help = "Log format: text or json (etcd's 'zap' is accepted as json, 'capnslog' as text)."},
	{.name = "quota-backend-bytes", .type = KEEL_OPT_UINT, .offset = F(quota_backend_bytes),
	 .help = "Accepted for etcd compatibility; the v2 store has no backend quota.", .flags = KEEL_OPT_HIDDEN},
	{.name = "watch-timeout", .type = KEEL_OPT_DURATION, .offset = F(watch_timeout_ns), .def = "5m",
	 .help = "How long a watch may wait before the server ends it with an empty answer (etcd: 5m).",
	 .flags = KEEL_OPT_HIDDEN},
	{.name = "wal-segment-size", .type = KEEL_OPT_UINT, .offset = F(wal_segment_size), .def = "67108864",
	 .min = 65536, .max = (uint64_t)1 << 40,
	 .help = "Bytes per WAL segment file (etcd's fixed 64 MiB; smaller ones make --max-wals testable).",
	 .flags = KEEL_OPT_HIDDEN},
	{.name = "max-request-bytes", .type = KEEL_OPT_UINT, .offset = F(max_request_bytes), .def = "1572864",
	 .min = 1, .max = 64u << 20, .help = "Maximum client request size in bytes the server will accept."},
};

static void warn(const char *msg, void *ud)
{
	(void)ud;
	fprintf(stderr, "keel-kv: warning: %s\n", msg);
}

const struct keel_config_spec kv_flags_spec = {
	.prog = "keel-kv",
	.usage = "[flags]",
	.summary = "keel-kv is an etcd-compatible replicated key-value store (etcd v2 API), built on "
		   "Keel's Raft engine. Flags and ETCD_* variables are etcd's.",
	.version = "keel-kv 0.1.0 (etcd API 2.3.0 compatible)",
	.env_prefix = "ETCD",
	.opts = opts,
	.n_opts = sizeof(opts) / sizeof(opts[0]),
	.warn = warn,
};

int kv_flags_parse(struct kv_flags *f, int argc, char **argv, struct keel_err *err)
{
	int argi;
	int r = keel_config_parse(&kv_flags_spec, f, argc, argv, NULL, &argi, err);
	if (r < 0)
		return r;
	if (argi < argc)
		return keel_err_set(err, -KEEL_EUNKNOWN_FLAG, "'%s' is not a valid flag", argv[argi]);
	if (f->ca_file && !f->trusted_ca_file) {
		f->trusted_ca_file = f->ca_file; /* etcd: --ca-file is the old --trusted-ca-file */
		f->ca_file = NULL;
	}
	if (!f->data_dir) {
		char buf[4096];
		snprintf(buf, sizeof(buf), "%s.etcd", f->name);
		if (keel_config_set(&kv_flags_spec, f, "data-dir", buf, err) < 0)
			return err->code;
	}
	return 0;
}

void kv_flags_free(struct kv_flags *f)
{
	keel_config_free(&kv_flags_spec, f);
}
