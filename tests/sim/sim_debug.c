/* Peeks into the core's private state for failure reports: the leader's view of each peer. */
#include <stdio.h>

#include "raft/raft-internal.h"
#include "sim-internal.h"

void sim_dump_progress(struct keel_raft *r, FILE *out)
{
	static const char *const states[] = {"probe", "replicate", "snapshot"};
	for (int i = 0; i < KEEL_RAFT_MAX_NODES; i++) {
		const struct progress *p = &r->prs[i];
		if (!p->id)
			continue;
		fprintf(out, "    peer %llu: %s match=%llu next=%llu probe_sent=%d pending_snapshot=%llu "
			     "inflight=%u active=%d\n",
			(unsigned long long)p->id, states[p->state], (unsigned long long)p->match,
			(unsigned long long)p->next, p->probe_sent, (unsigned long long)p->pending_snapshot,
			p->in_count, p->recent_active);
	}
}
