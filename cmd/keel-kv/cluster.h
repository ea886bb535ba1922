/* The initial cluster as etcd describes it (--initial-cluster name=url,...) and etcd's member
 * and cluster ids, computed the way etcd computes them so that ids look the same to clients. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "base/errors.h"

#define KV_MAX_MEMBERS 16
#define KV_MAX_URLS 8

struct kv_member {
	uint64_t id;
	char *name;
	char *peer_urls[KV_MAX_URLS]; /* sorted, as etcd sorts them before hashing */
	size_t n_peer_urls;
};

struct kv_cluster {
	struct kv_member members[KV_MAX_MEMBERS];
	size_t n;
	uint64_t id;
};

/* Parse "name=url,name=url,..." (a name may repeat, giving a member several peer URLs), compute
 * member ids from the URLs and the cluster token and the cluster id from the member ids.
 * -EINVAL with a message naming the bad entry; -ENOMEM. */
int kv_cluster_parse(char *const *initial_cluster, const char *token, struct kv_cluster *ret,
		     struct keel_err *err);
void kv_cluster_free(struct kv_cluster *c);
const struct kv_member *kv_cluster_find_name(const struct kv_cluster *c, const char *name);

/* etcd's computeMemberId: the first 8 bytes, big-endian, of SHA-1(peer URLs sorted and joined,
 * then the cluster token). */
uint64_t kv_member_id(char *const *sorted_urls, size_t n, const char *token);
/* etcd's cluster id: SHA-1 over the sorted member ids (8 bytes big-endian each). */
uint64_t kv_cluster_id(const uint64_t *ids, size_t n);
