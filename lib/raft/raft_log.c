/* The Raft log between the last snapshot and the newest entry: a window of it in memory, the terms
 * of the rest (which the driver's storage holds) as runs. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/mem.h"
#include "raft/raft-internal.h"

#define ENTS_MIN_CAP 64

void raft_log_init(struct raft_log *l)
{
	memset(l, 0, sizeof(*l));
	l->first = 1;
}

uint64_t raft_log_first(const struct raft_log *l)
{
	return l->prev_index + 1;
}

uint64_t raft_log_mem_first(const struct raft_log *l)
{
	return l->first;
}

uint64_t raft_log_last(const struct raft_log *l)
{
	return l->first + l->n - 1;
}

static struct keel_raft_entry *ent(const struct raft_log *l, uint64_t i)
{
	return &l->ents[l->off + (size_t)(i - l->first)];
}

uint64_t raft_log_last_term(const struct raft_log *l)
{
	if (l->n)
		return l->ents[l->off + l->n - 1].term;
	if (l->n_runs)
		return l->runs[l->n_runs - 1].term;
	return l->prev_term;
}

/* Term of an evicted entry i in (prev_index, first). */
static uint64_t run_term(const struct raft_log *l, uint64_t i)
{
	size_t lo = 0, hi = l->n_runs;
	while (hi - lo > 1) {
		size_t mid = lo + (hi - lo) / 2;
		if (l->runs[mid].index <= i)
			lo = mid;
		else
			hi = mid;
	}
	return l->runs[lo].term;
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
	return i >= l->first ? ent(l, i)->term : run_term(l, i);
}

struct keel_raft_entry *raft_log_at(const struct raft_log *l, uint64_t i)
{
	if (i < l->first || i > raft_log_last(l))
		return NULL;
	return ent(l, i);
}

bool raft_log_match(const struct raft_log *l, uint64_t i, uint64_t term)
{
	bool ok;
	uint64_t t = raft_log_term(l, i, &ok);
	return ok && t == term;
}

/* Room for `extra` more entries at the end: slide the live ones to the front when the dead head
 * is what is missing, grow otherwise. */
static int reserve(struct raft_log *l, size_t extra)
{
	if (l->off + l->n + extra <= l->cap)
		return 0;
	if (l->off && l->n + extra <= l->cap) {
		memmove(l->ents, l->ents + l->off, l->n * sizeof(*l->ents));
		l->off = 0;
		return 0;
	}
	size_t cap = l->cap ? l->cap * 2 : ENTS_MIN_CAP;
	while (cap < l->n + extra)
		cap *= 2;
	struct keel_raft_entry *e = keel_reallocarray(NULL, cap, sizeof(*e));
	if (!e)
		return -ENOMEM;
	if (l->n)
		memcpy(e, l->ents + l->off, l->n * sizeof(*e));
	keel_free(l->ents);
	l->ents = e;
	l->off = 0;
	l->cap = cap;
	return 0;
}

/* After entries left the front: give back an array much larger than what it holds (a burst of
 * uncommitted entries, or the whole log before eviction began, leaves a big one behind). */
static void shrink(struct raft_log *l)
{
	if (l->cap <= ENTS_MIN_CAP || l->n > l->cap / 4)
		return;
	size_t cap = l->cap;
	while (cap > ENTS_MIN_CAP && l->n <= cap / 4)
		cap /= 2;
	struct keel_raft_entry *e = keel_reallocarray(NULL, cap, sizeof(*e));
	if (!e)
		return; /* keep the big one */
	if (l->n)
		memcpy(e, l->ents + l->off, l->n * sizeof(*e));
	keel_free(l->ents);
	l->ents = e;
	l->off = 0;
	l->cap = cap;
}

int raft_log_append_own(struct raft_log *l, uint64_t term, uint8_t type, void *data, uint32_t len)
{
	if (reserve(l, 1) < 0) {
		keel_free(data);
		return -ENOMEM;
	}
	l->ents[l->off + l->n] = (struct keel_raft_entry){
		.term = term, .index = raft_log_last(l) + 1, .type = type, .len = len, .data = data,
	};
	l->n++;
	l->mem_bytes += len;
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

static int grave_reserve(struct raft_log *l, size_t extra)
{
	if (l->n_grave + extra <= l->cap_grave)
		return 0;
	size_t cap = l->cap_grave ? l->cap_grave * 2 : 64;
	while (cap < l->n_grave + extra)
		cap *= 2;
	void **g = keel_reallocarray(l->grave, cap, sizeof(void *));
	if (!g)
		return -ENOMEM;
	l->grave = g;
	l->cap_grave = cap;
	return 0;
}

void raft_log_free_data(struct raft_log *l, void *data)
{
	if (!data)
		return;
	if (grave_reserve(l, 1) < 0) {
		/* Leaking beats a use-after-free; memory is then so tight that the driver is
		 * failing everywhere else too. */
		return;
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

/* Drop the n_drop entries at the front of memory; their data goes to the grave. */
static void drop_front(struct raft_log *l, size_t n_drop)
{
	for (size_t k = 0; k < n_drop; k++) {
		struct keel_raft_entry *e = &l->ents[l->off + k];
		l->mem_bytes -= e->len;
		raft_log_free_data(l, e->data);
	}
	l->off += n_drop;
	l->n -= n_drop;
	l->first += n_drop;
	if (l->n == 0)
		l->off = 0;
	shrink(l);
}

void raft_log_truncate(struct raft_log *l, uint64_t i)
{
	keel_assert(i > l->prev_index && i >= l->first);
	while (raft_log_last(l) >= i) {
		l->n--;
		struct keel_raft_entry *e = &l->ents[l->off + l->n];
		l->mem_bytes -= e->len;
		raft_log_free_data(l, e->data);
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
	bool ok;
	uint64_t prev_term = raft_log_term(l, i - 1, &ok);
	keel_assert(ok);
	if (i <= l->first) {
		/* Only evicted entries go: drop the runs that end before i. */
		size_t drop = 0;
		while (drop + 1 < l->n_runs && l->runs[drop + 1].index <= i)
			drop++;
		memmove(l->runs, l->runs + drop, (l->n_runs - drop) * sizeof(*l->runs));
		l->n_runs -= drop;
		if (i == l->first)
			l->n_runs = 0;
		else if (l->n_runs)
			l->runs[0].index = i;
	} else {
		l->n_runs = 0;
		drop_front(l, (size_t)(i - l->first));
	}
	l->prev_index = i - 1;
	l->prev_term = prev_term;
}

int raft_log_evict(struct raft_log *l, uint64_t upto)
{
	if (upto < l->first)
		return 0;
	keel_assert(upto <= raft_log_last(l) && upto <= l->stable && upto <= l->applied);
	size_t n_drop = (size_t)(upto - l->first + 1);
	/* New runs: one per term change among the evicted entries, and one more if the first of
	 * them does not continue the last run. Reserve first so nothing changes on failure. */
	size_t need = l->n_runs;
	uint64_t last_term = l->n_runs ? l->runs[l->n_runs - 1].term : 0;
	for (size_t k = 0; k < n_drop; k++) {
		uint64_t t = l->ents[l->off + k].term;
		if (need == 0 || t != last_term)
			need++;
		last_term = t;
	}
	if (grave_reserve(l, n_drop) < 0)
		return -ENOMEM; /* rather than leak their data */
	if (need > l->cap_runs) {
		size_t cap = l->cap_runs ? l->cap_runs : 8;
		while (cap < need)
			cap *= 2;
		struct raft_term_run *runs = keel_reallocarray(l->runs, cap, sizeof(*runs));
		if (!runs)
			return -ENOMEM;
		l->runs = runs;
		l->cap_runs = cap;
	}
	for (size_t k = 0; k < n_drop; k++) {
		const struct keel_raft_entry *e = &l->ents[l->off + k];
		if (l->n_runs == 0 || l->runs[l->n_runs - 1].term != e->term)
			l->runs[l->n_runs++] = (struct raft_term_run){e->index, e->term};
	}
	drop_front(l, n_drop);
	return 0;
}

int raft_log_skip(struct raft_log *l, uint64_t term)
{
	keel_assert(l->n == 0);
	if (l->n_runs == 0 || l->runs[l->n_runs - 1].term != term) {
		if (l->n_runs == l->cap_runs) {
			size_t cap = l->cap_runs ? l->cap_runs * 2 : 8;
			struct raft_term_run *runs = keel_reallocarray(l->runs, cap, sizeof(*runs));
			if (!runs)
				return -ENOMEM;
			l->runs = runs;
			l->cap_runs = cap;
		}
		l->runs[l->n_runs++] = (struct raft_term_run){l->first, term};
	}
	l->first++;
	return 0;
}

void raft_log_reset(struct raft_log *l, uint64_t index, uint64_t term)
{
	while (l->n) {
		l->n--;
		raft_log_free_data(l, l->ents[l->off + l->n].data);
	}
	l->off = 0;
	l->mem_bytes = 0;
	l->n_runs = 0;
	l->first = index + 1;
	l->prev_index = index;
	l->prev_term = term;
	l->stable = index;
	l->committed = index;
	l->applied = index;
	shrink(l);
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
		if (i >= l->first) {
			if (ent(l, i)->term <= term)
				break;
			i--;
			continue;
		}
		/* Evicted: one step per run, not per entry. */
		size_t lo = 0, hi = l->n_runs;
		while (hi - lo > 1) {
			size_t mid = lo + (hi - lo) / 2;
			if (l->runs[mid].index <= i)
				lo = mid;
			else
				hi = mid;
		}
		if (l->runs[lo].term <= term)
			break;
		i = l->runs[lo].index - 1;
	}
	return i;
}

void raft_log_close(struct raft_log *l)
{
	raft_log_bury(l);
	raft_log_grave_rotate(l);
	raft_log_bury(l);
	for (size_t i = 0; i < l->n; i++)
		keel_free(l->ents[l->off + i].data);
	keel_free(l->ents);
	keel_free(l->runs);
	keel_free(l->grave);
	keel_free(l->grave_rd);
	memset(l, 0, sizeof(*l));
}
