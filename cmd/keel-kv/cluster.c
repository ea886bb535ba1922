#include "cluster.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/mem.h"
#include "base/str.h"
#include "kv/server.h"

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

uint64_t kv_member_id(char *const *sorted_urls, size_t n, const char *token)
{
	return keel_kv_member_id((const char *const *)sorted_urls, n, token);
}

uint64_t kv_cluster_id(const uint64_t *ids, size_t n)
{
	return keel_kv_cluster_id(ids, n);
}

const struct kv_member *kv_cluster_find_name(const struct kv_cluster *c, const char *name)
{
	for (size_t i = 0; i < c->n; i++)
		if (strcmp(c->members[i].name, name) == 0)
			return &c->members[i];
	return NULL;
}

void kv_cluster_free(struct kv_cluster *c)
{
	for (size_t i = 0; i < c->n; i++) {
		keel_free(c->members[i].name);
		for (size_t k = 0; k < c->members[i].n_peer_urls; k++)
			keel_free(c->members[i].peer_urls[k]);
	}
	memset(c, 0, sizeof(*c));
}

int kv_cluster_parse(char *const *initial_cluster, const char *token, struct kv_cluster *ret,
		     struct keel_err *err)
{
	struct kv_cluster c = {0};
	for (size_t i = 0; initial_cluster && initial_cluster[i]; i++) {
		const char *item = initial_cluster[i];
		const char *eq = strchr(item, '=');
		char scheme[8], host[256];
		uint16_t port;
		if (!eq || eq == item || keel_kv_parse_url(eq + 1, scheme, sizeof(scheme), host, sizeof(host), &port) < 0) {
			kv_cluster_free(&c);
			return keel_err_set(err, -EINVAL, "invalid --initial-cluster entry \"%s\" (want name=http://host:port)", item);
		}
		struct kv_member *m = NULL;
		for (size_t k = 0; k < c.n; k++)
			if (strlen(c.members[k].name) == (size_t)(eq - item) && !memcmp(c.members[k].name, item, (size_t)(eq - item)))
				m = &c.members[k];
		if (!m) {
			if (c.n == KV_MAX_MEMBERS) {
				kv_cluster_free(&c);
				return keel_err_set(err, -EINVAL, "--initial-cluster: at most %d members", KV_MAX_MEMBERS);
			}
			m = &c.members[c.n++];
			m->name = keel_strndup(item, (size_t)(eq - item));
			if (!m->name) {
				kv_cluster_free(&c);
				return keel_err_set(err, -ENOMEM, "out of memory");
			}
		}
		if (m->n_peer_urls == KV_MAX_URLS || !(m->peer_urls[m->n_peer_urls] = keel_strdup(eq + 1))) {
			kv_cluster_free(&c);
			return keel_err_set(err, -EINVAL, "--initial-cluster: too many URLs for %s", m->name);
		}
		m->n_peer_urls++;
	}
	if (c.n == 0)
		return keel_err_set(err, -EINVAL, "--initial-cluster is empty");
	uint64_t ids[KV_MAX_MEMBERS];
	for (size_t i = 0; i < c.n; i++) {
		struct kv_member *m = &c.members[i];
		qsort(m->peer_urls, m->n_peer_urls, sizeof(char *), cmp_str);
		m->id = kv_member_id(m->peer_urls, m->n_peer_urls, token);
		ids[i] = m->id;
		for (size_t k = 0; k < i; k++)
			if (ids[k] == m->id) {
				kv_cluster_free(&c);
				return keel_err_set(err, -EINVAL, "--initial-cluster: members %s and %s have the same peer URLs",
						    c.members[k].name, m->name);
			}
	}
	c.id = kv_cluster_id(ids, c.n);
	*ret = c;
	return 0;
}
