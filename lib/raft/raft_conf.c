/* Membership: configurations, the conf-change entry format, and the leader's per-peer progress
 * that follows the configuration. A configuration takes effect as soon as its entry is in the
 * log, committed or not, and reverts if the entry is truncated (Raft thesis §4.1). */
#include <errno.h>
#include <string.h>

#include "base/buf.h"
#include "raft/raft-internal.h"

#define CONF_CHANGE_VERSION 1
#define CONF_CHANGE_HEADER 14 /* version, type, node (8), context length (4) */

size_t keel_raft_conf_change_encode(const struct keel_raft_conf_change *cc, void *out, size_t size)
{
	size_t need = CONF_CHANGE_HEADER + cc->context_len;
	if (size < need)
		return need;
	uint8_t *p = out;
	p[0] = CONF_CHANGE_VERSION;
	p[1] = (uint8_t)cc->type;
	for (int i = 0; i < 8; i++)
		p[2 + i] = (uint8_t)(cc->node >> (8 * i));
	for (int i = 0; i < 4; i++)
		p[10 + i] = (uint8_t)(cc->context_len >> (8 * i));
	if (cc->context_len)
		memcpy(p + CONF_CHANGE_HEADER, cc->context, cc->context_len);
	return need;
}

int keel_raft_conf_change_decode(const void *data, size_t len, struct keel_raft_conf_change *ret)
{
	const uint8_t *p = data;
	if (len < CONF_CHANGE_HEADER || p[0] != CONF_CHANGE_VERSION)
		return -EINVAL;
	struct keel_raft_conf_change cc = {
		.type = p[1],
		.node = keel_le64(p + 2),
		.context_len = keel_le32(p + 10),
	};
	if (cc.type < KEEL_RAFT_ADD_VOTER || cc.type > KEEL_RAFT_REMOVE_NODE || cc.node == 0 ||
	    cc.context_len != len - CONF_CHANGE_HEADER)
		return -EINVAL;
	cc.context = cc.context_len ? p + CONF_CHANGE_HEADER : NULL;
	*ret = cc;
	return 0;
}

static int find(const keel_raft_id *ids, uint32_t n, keel_raft_id id)
{
	for (uint32_t i = 0; i < n; i++)
		if (ids[i] == id)
			return (int)i;
	return -1;
}

bool keel_raft_conf_has_voter(const struct keel_raft_conf *c, keel_raft_id id)
{
	return find(c->voters, c->n_voters, id) >= 0;
}

bool keel_raft_conf_has_learner(const struct keel_raft_conf *c, keel_raft_id id)
{
	return find(c->learners, c->n_learners, id) >= 0;
}

static void remove_id(keel_raft_id *ids, uint32_t *n, keel_raft_id id)
{
	int i = find(ids, *n, id);
	if (i >= 0)
		ids[i] = ids[--*n];
}

/* Keep the id lists sorted: every node then derives the same configuration from the same log. */
static void insert_sorted(keel_raft_id *ids, uint32_t *n, keel_raft_id id)
{
	uint32_t i = *n;
	while (i > 0 && ids[i - 1] > id) {
		ids[i] = ids[i - 1];
		i--;
	}
	ids[i] = id;
	(*n)++;
}

static void sort_ids(keel_raft_id *ids, uint32_t n)
{
	for (uint32_t i = 1; i < n; i++) {
		keel_raft_id v = ids[i];
		uint32_t j = i;
		while (j > 0 && ids[j - 1] > v) {
			ids[j] = ids[j - 1];
			j--;
		}
		ids[j] = v;
	}
}

int raft_conf_check(const struct keel_raft_conf *c, const struct keel_raft_conf_change *cc)
{
	bool voter = keel_raft_conf_has_voter(c, cc->node);
	bool learner = keel_raft_conf_has_learner(c, cc->node);
	if (cc->node == 0)
		return -EINVAL;
	switch (cc->type) {
	case KEEL_RAFT_ADD_VOTER:
		if (voter)
			return -EINVAL;
		if (!learner && c->n_voters + c->n_learners >= KEEL_RAFT_MAX_NODES)
			return -EINVAL;
		return 0;
	case KEEL_RAFT_ADD_LEARNER:
		if (learner)
			return -EINVAL;
		if (voter && c->n_voters == 1)
			return -EINVAL; /* would leave no voter */
		if (!voter && c->n_voters + c->n_learners >= KEEL_RAFT_MAX_NODES)
			return -EINVAL;
		return 0;
	case KEEL_RAFT_REMOVE_NODE:
		if (!voter && !learner)
			return -EINVAL;
		if (voter && c->n_voters == 1)
			return -EINVAL;
		return 0;
	}
	return -EINVAL;
}

void raft_conf_apply(struct keel_raft_conf *c, const struct keel_raft_conf_change *cc)
{
	/* Entries that do not apply (a duplicate proposal that slipped through on another leader)
	 * change nothing, on every node alike. */
	if (raft_conf_check(c, cc) < 0)
		return;
	remove_id(c->voters, &c->n_voters, cc->node);
	remove_id(c->learners, &c->n_learners, cc->node);
	if (cc->type == KEEL_RAFT_ADD_VOTER)
		insert_sorted(c->voters, &c->n_voters, cc->node);
	else if (cc->type == KEEL_RAFT_ADD_LEARNER)
		insert_sorted(c->learners, &c->n_learners, cc->node);
}

unsigned raft_conf_quorum(const struct keel_raft_conf *c)
{
	return c->n_voters / 2 + 1;
}

bool raft_is_voter(const struct keel_raft *r, keel_raft_id id)
{
	return keel_raft_conf_has_voter(&r->conf, id);
}

void raft_rebuild_conf(struct keel_raft *r)
{
	r->conf = r->base_conf;
	sort_ids(r->conf.voters, r->conf.n_voters);
	sort_ids(r->conf.learners, r->conf.n_learners);
	r->pending_conf_index = 0;
	r->prev_conf = r->conf;
	for (uint64_t i = raft_log_mem_first(&r->log); i <= raft_log_last(&r->log); i++) {
		const struct keel_raft_entry *e = raft_log_at(&r->log, i);
		struct keel_raft_conf_change cc;
		if (e->type != KEEL_RAFT_ENTRY_CONF || keel_raft_conf_change_decode(e->data, e->len, &cc) < 0)
			continue;
		r->prev_conf = r->conf;
		raft_conf_apply(&r->conf, &cc);
		r->pending_conf_index = e->index;
	}
	raft_sync_progress(r);
}

struct progress *raft_progress(struct keel_raft *r, keel_raft_id id)
{
	for (unsigned i = 0; i < KEEL_RAFT_MAX_NODES; i++)
		if (r->prs[i].id == id && id != 0)
			return &r->prs[i];
	return NULL;
}

/* Give every member a progress slot and take it from those who left. New slots start probing
 * from the end of our log and count as recently active, so that check-quorum gives them an
 * election timeout to answer. */
void raft_sync_progress(struct keel_raft *r)
{
	const struct keel_raft_conf *c = &r->conf;
	for (unsigned i = 0; i < KEEL_RAFT_MAX_NODES; i++) {
		struct progress *p = &r->prs[i];
		if (p->id == 0)
			continue;
		bool voter = keel_raft_conf_has_voter(c, p->id);
		bool learner = keel_raft_conf_has_learner(c, p->id);
		if (!voter && !learner) {
			p->id = 0;
			r->n_prs--;
		} else {
			p->learner = learner;
		}
	}
	for (int pass = 0; pass < 2; pass++) {
		const keel_raft_id *ids = pass ? c->learners : c->voters;
		uint32_t n = pass ? c->n_learners : c->n_voters;
		for (uint32_t k = 0; k < n; k++) {
			if (raft_progress(r, ids[k]))
				continue;
			for (unsigned i = 0; i < KEEL_RAFT_MAX_NODES; i++) {
				struct progress *p = &r->prs[i];
				if (p->id != 0)
					continue;
				uint64_t *inflight = p->inflight;
				*p = (struct progress){
					.id = ids[k], .learner = pass == 1, .state = PR_PROBE,
					.next = raft_log_last(&r->log) + 1, .recent_active = true,
					.inflight = inflight,
				};
				if (ids[k] == r->cfg.id)
					p->match = r->log.stable;
				r->n_prs++;
				break;
			}
		}
	}
}
