/* keel-kv's command line: etcd's flags and ETCD_* variables, from one table. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "base/config.h"

struct kv_flags {
	char *name;
	char *data_dir;
	char *wal_dir;
	uint64_t snapshot_count;
	uint64_t heartbeat_interval; /* ms */
	uint64_t election_timeout;   /* ms */
	uint64_t max_snapshots, max_wals;
	uint64_t wal_segment_size;
	char **listen_peer_urls, **listen_client_urls;
	char **initial_advertise_peer_urls, **advertise_client_urls;
	char **initial_cluster;
	int initial_cluster_state; /* 0 new, 1 existing */
	char *initial_cluster_token;
	char *cert_file, *key_file, *trusted_ca_file;
	char *ca_file; /* deprecated spelling of trusted_ca_file */
	bool client_cert_auth;
	char *peer_cert_file, *peer_key_file, *peer_trusted_ca_file;
	bool peer_client_cert_auth;
	bool enable_v2;
	bool strict_reconfig_check;
	bool debug;
	char *log_level;
	char *logger;
	uint64_t quota_backend_bytes;
	uint64_t max_request_bytes;
	int64_t watch_timeout_ns;
};

extern const struct keel_config_spec kv_flags_spec;

/* Parse argv and the environment into f (etcd's precedence: flag over ETCD_* over default),
 * then fill the defaults that depend on other flags (--data-dir defaults to <name>.etcd).
 * Returns 0, or what keel_config_parse returns (-KEEL_EHELP, -KEEL_EVERSION included). */
int kv_flags_parse(struct kv_flags *f, int argc, char **argv, struct keel_err *err);
void kv_flags_free(struct kv_flags *f);
