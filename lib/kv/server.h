/* keel-kv's server: the etcd v2 HTTP API over the v2 store (store.h), replicated with keel_node.
 * Writes (and quorum reads of the old kind) become Raft entries carrying a request id; every
 * member applies them to its store in log order and the member that took the request answers it
 * when its entry is applied there. Plain GETs and watches are served from the local store.
 * The layout follows etcd 3.4: keys live under /1, membership under /0 (so indexes match
 * etcd's: a fresh single-member store's first user write gets index 4). */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "base/errors.h"

#define KEEL_KV_MAX_MEMBERS 16
#define KEEL_KV_MAX_URLS 8

struct keel_kv_member_cfg {
	uint64_t id;
	const char *name;
	const char *peer_urls[KEEL_KV_MAX_URLS];
	size_t n_peer_urls;
};

/* A numeric address and port to listen on. */
struct keel_kv_addr {
	const char *host;
	uint16_t port;
};

struct keel_kv_server_config {
	const char *name;
	uint64_t member_id, cluster_id;
	const char *cluster_token;       /* --initial-cluster-token: part of new members' ids */
	const char *data_dir;
	const char *wal_dir;              /* --wal-dir; NULL: inside data_dir */
	unsigned max_snapshots, max_wals; /* --max-snapshots, --max-wals: files kept, 0 = all */
	size_t wal_segment_size;          /* 0: 64 MiB */
	/* The initial cluster, this member included (every member is started with the same). */
	const struct keel_kv_member_cfg *members;
	size_t n_members;
	bool join;                        /* --initial-cluster-state existing */
	const char *const *client_urls;   /* listen */
	size_t n_client_urls;
	const char *const *advertise_client_urls;
	size_t n_advertise_client_urls;
	const char *peer_listen_host;
	uint16_t peer_listen_port;
	const struct keel_kv_addr *more_peer_listen; /* the other --listen-peer-urls */
	size_t n_more_peer_listen;
	const char *cert_file, *key_file, *trusted_ca_file; /* clients */
	bool client_cert_auth;
	const char *peer_cert_file, *peer_key_file, *peer_trusted_ca_file;
	bool peer_client_cert_auth;
	unsigned heartbeat_ms, election_ms;
	uint64_t snapshot_count;
	size_t max_request_bytes;
	uint64_t watch_timeout_ms;       /* 0: etcd's 5 minutes */
	/* --strict-reconfig-check: refuse a member add or remove that would leave too few
	 * members started and connected to this one (etcd's mayAddMember, mayRemoveMember). */
	bool strict_reconfig_check;
	/* Optional: the node stopped for good (its disk failed). */
	void (*on_fatal)(void *ud, const char *why);
	/* Optional: this member was removed from the cluster (it applied its own removal, or a
	 * peer told it so). It has stopped taking part; the program should stop the server and
	 * exit, as etcd does (status 0, "the member has been permanently removed from the
	 * cluster"). how says how it learned it. Runs from the loop, outside any other server
	 * call. */
	void (*on_removed)(void *ud, const char *how);
	void *ud;
};

struct keel_kv_server;

/* etcd's computeMemberId: the first 8 bytes, big-endian, of SHA-1(the peer URLs, sorted, joined,
 * then the cluster token). */
uint64_t keel_kv_member_id(const char *const *sorted_urls, size_t n, const char *token);
/* Split "http://host:port" (or https, "[v6]:port", an optional trailing "/") into its parts:
 * a host and a numeric port. -EINVAL otherwise. */
int keel_kv_parse_url(const char *url, char *scheme, size_t ssize, char *host, size_t hsize, uint16_t *port);

/* etcd's cluster id: SHA-1 over the sorted member ids (8 bytes big-endian each). */
uint64_t keel_kv_cluster_id(const uint64_t *ids, size_t n);

int keel_kv_server_start(uv_loop_t *loop, const struct keel_kv_server_config *cfg,
			 struct keel_kv_server **ret, struct keel_err *err);
/* The ids this member runs with: from its flags, or (a member that joined) from its peers. */
uint64_t keel_kv_server_member_id(const struct keel_kv_server *s);
uint64_t keel_kv_server_cluster_id(const struct keel_kv_server *s);
void keel_kv_server_stop(struct keel_kv_server *s, void (*cb)(void *ud), void *ud);
