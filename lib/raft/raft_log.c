/* The in-memory Raft log between the last snapshot and the newest entry. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/mem.h"
#include "raft/raft-internal.h"

uint64_t raft_log_first(const struct raft_log *l)
{
	return l->prev_index + 1;
}

uint64_t raft_log_last(const struct raft_log *l)
{
	return l->prev_index + l->n;
}

uint64_t raft_log_last_term(const struct raft_log *l)
{
	return l->n ? l->ents[l->n - 1].term : l->prev_term;
}

uint64_t raft_log_term(const struct raft_log *l, uint64_t i, bool *ok)
{
	if (i == l->prev_index) {
		*ok = true;
		return l->prev_term;
	}
	if (i < l->prev_index || i > raft_log_last(l)) {
		*ok = false;
		return 0;
	}
	*ok = true;
	return l->ents[i - l->prev_index - 1].term;
}

struct keel_raft_entry *raft_log_at(const struct raft_log *l, uint64_t i)
{
	if (i <= l->prev_index || i > raft_log_last(l))
		return NULL;
	return &l->ents[i - l->prev_index - 1];
}

bool raft_log_match(const struct raft_log *l, uint64_t i, uint64_t term)
{
	bool ok;
	uint64_t t = raft_log_term(l, i, &ok);
	return ok && t == term;
}

static int reserve(struct raft_log *l, size_t extra)
{
	if (l->n + extra <= l->cap)
		return 0;
	size_t cap = l->cap ? l->cap * 2 : 64;
	while (cap < l->n + extra)
		cap *= 2;
	struct keel_raft_entry *e = keel_reallocarray(l->ents, cap, sizeof(*e));
	if (!e)
		return -ENOMEM;
	l->ents = e;
	l->cap = cap;
	return 0;
}

int raft_log_append_own(struct raft_log *l, uint64_t term, uint8_t type, void *data, uint32_t len)
{
	if (reserve(l, 1) < 0) {
		keel_free(data);
		return -ENOMEM;
	}
	l->ents[l->n] = (struct keel_raft_entry){
		.term = term, .index = raft_log_last(l) + 1, .type = type, .len = len, .data = data,
	};
	l->n++;
	return 0;
}

int raft_log_append_copy(struct raft_log *l, const struct keel_raft_entry *e)
{
	keel_assert(e->index == raft_log_last(l) + 1);
	void *data = NULL;
	if (e->len) {
		data = keel_memdup(e->data, e->len);
		if (!data)
			return -ENOMEM;
	}
	return raft_log_append_own(l, e->term, e->type, data, e->len);
}

void raft_log_free_data(struct raft_log *l, void *data)
{
	if (!data)
		return;
	if (l->n_grave == l->cap_grave) {
		size_t cap = l->cap_grave ? l->cap_grave * 2 : 64;
		void **g = keel_reallocarray(l->grave, cap, sizeof(void *));
		if (!g) {
			/* Leaking beats a use-after-free; memory is then so tight that the driver
			 * is failing everywhere else too. */
			return;
		}
		l->grave = g;
		l->cap_grave = cap;
	}
	l->grave[l->n_grave++] = data;
}

void raft_log_grave_rotate(struct raft_log *l)
{
	keel_assert(l->n_grave_rd == 0);
	void **g = l->grave_rd;
	size_t cap = l->cap_grave_rd;
	l->grave_rd = l->grave;
	l->cap_grave_rd = l->cap_grave;
	l->n_grave_rd = l->n_grave;
	l->grave = g;
	l->cap_grave = cap;
	l->n_grave = 0;
}

void raft_log_bury(struct raft_log *l)
{
	for (size_t i = 0; i < l->n_grave_rd; i++)
		keel_free(l->grave_rd[i]);
	l->n_grave_rd = 0;
}

void raft_log_truncate(struct raft_log *l, uint64_t i)
{
	keel_assert(i > l->prev_index);
	while (raft_log_last(l) >= i) {
		l->n--;
		raft_log_free_data(l, l->ents[l->n].data);
	}
	if (l->stable >= i)
		l->stable = i - 1;
	keel_assert(l->committed < i); /* committed entries are never truncated (§3.5) */
}

void raft_log_drop_before(struct raft_log *l, uint64_t i)
{
	if (i <= raft_log_first(l))
		return;
	keel_assert(i <= raft_log_last(l) + 1);
	size_t drop = (size_t)(i - raft_log_first(l));
	l->prev_term = l->ents[drop - 1].term;
	for (size_t k = 0; k < drop; k++)
		raft_log_free_data(l, l->ents[k].data);
	memmove(l->ents, l->ents + drop, (l->n - drop) * sizeof(*l->ents));
	l->n -= drop;
	l->prev_index = i - 1;
}

void raft_log_reset(struct raft_log *l, uint64_t index, uint64_t term)
{
	while (l->n) {
		l->n--;
		raft_log_free_data(l, l->ents[l->n].data);
	}
	l->prev_index = index;
	l->prev_term = term;
	l->stable = index;
	l->committed = index;
	l->applied = index;
}

bool raft_log_up_to_date(const struct raft_log *l, uint64_t index, uint64_t term)
{
	uint64_t lt = raft_log_last_term(l);
	return term > lt || (term == lt && index >= raft_log_last(l));
}

uint64_t raft_log_find_conflict_by_term(const struct raft_log *l, uint64_t i, uint64_t term)
{
	if (i > raft_log_last(l))
		i = raft_log_last(l);
	while (i > l->prev_index) {
		bool ok;
		uint64_t t = raft_log_term(l, i, &ok);
		if (!ok || t <= term)
			break;
		i--;
	}
	return i;
}

void raft_log_close(struct raft_log *l)
{
	raft_log_bury(l);
	raft_log_grave_rotate(l);
	raft_log_bury(l);
	for (size_t i = 0; i < l->n; i++)
		keel_free(l->ents[i].data);
	keel_free(l->ents);
	keel_free(l->grave);
	keel_free(l->grave_rd);
	memset(l, 0, sizeof(*l));
}
