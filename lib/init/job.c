/* Jobs and transactions, after systemd's (src/core/transaction.c, job.c): a request to start or
 * stop a unit becomes a set of jobs over the dependency graph - requirements pulled in,
 * conflicts stopped, stop propagated to units that require or are part of the stopped one -
 * checked for ordering cycles (broken by deleting a job that does not matter to the request,
 * with systemd's log lines), merged with the jobs already installed, and run as soon as the
 * jobs they are ordered after are gone. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "base/log.h"
#include "base/mem.h"
#include "init/mgr-internal.h"

const char *keel_job_type_to_string(int t)
{
	static const char *const n[] = {"start", "verify-active", "stop", "reload", "restart", "try-restart"};
	return (unsigned)t < KEEL_ARRAY_SIZE(n) ? n[t] : "?";
}

const char *keel_job_result_to_string(int r)
{
	static const char *const n[] = {"done", "canceled", "timeout", "failed", "dependency", "skipped",
					"invalid", "assert", "unsupported"};
	return (unsigned)r < KEEL_ARRAY_SIZE(n) ? n[r] : "?";
}

static bool is_stop_type(int t)
{
	return t == JOB_STOP || t == JOB_RESTART || t == JOB_TRY_RESTART;
}

/* systemd's job_type_merge(): -1 when the two cannot be merged (a conflict). */
static int merge_types(int a, int b)
{
	if (a == b)
		return a;
	if (a > b) {
		int t = a;
		a = b;
		b = t;
	}
	/* now a < b in enum order: START, VERIFY, STOP, RELOAD, RESTART, TRY_RESTART */
	if (a == JOB_START && b == JOB_VERIFY_ACTIVE)
		return JOB_START;
	if (a == JOB_STOP || b == JOB_STOP)
		return -1;
	if (b == JOB_RESTART || b == JOB_TRY_RESTART)
		return JOB_RESTART; /* start/verify/reload + restart */
	if (a == JOB_START && b == JOB_RELOAD)
		return JOB_RESTART;
	if (a == JOB_VERIFY_ACTIVE && b == JOB_RELOAD)
		return JOB_RELOAD;
	return -1;
}

/* ---- transactions ---- */

struct tjob {
	struct mu *u;
	uint8_t type;
	bool matters;
	bool deleted;
	uint8_t color;
};

struct tr {
	struct keel_mgr *m;
	struct tjob *v;
	size_t n, cap;
	struct keel_err *err;
	struct mu *anchor;
	bool manual;
};

static struct tjob *tr_find(struct tr *tr, struct mu *mu)
{
	if (mu->tr_mark != tr->m->tr_mark || mu->tr_idx < 0)
		return NULL;
	return &tr->v[mu->tr_idx];
}

static int tr_add(struct tr *tr, struct mu *mu, int type, bool matters, int depth);

static int expand(struct tr *tr, size_t idx, int depth)
{
	struct mu *mu = tr->v[idx].u;
	int type = tr->v[idx].type;
	bool matters = tr->v[idx].matters;
	/* Edges may be long; the transaction array may move: use indexes, re-read. */
	for (uint32_t i = 0; i < mu->n_edges; i++) {
		struct edge e = mu->edges[i];
		int r = 0;
		if (type == JOB_START || type == JOB_RESTART || type == JOB_VERIFY_ACTIVE) {
			if (type == JOB_VERIFY_ACTIVE)
				continue;
			switch (e.kind) {
			case E_REQUIRES:
			case E_BINDS_TO:
				r = tr_add(tr, e.other, JOB_START, matters, depth + 1);
				break;
			case E_WANTS:
				(void)tr_add(tr, e.other, JOB_START, false, depth + 1);
				keel_err_clear(tr->err);
				break;
			case E_REQUISITE:
				r = tr_add(tr, e.other, JOB_VERIFY_ACTIVE, matters, depth + 1);
				break;
			case E_CONFLICTS:
				r = tr_add(tr, e.other, JOB_STOP, true, depth + 1);
				break;
			case E_CONFLICTED_BY:
				(void)tr_add(tr, e.other, JOB_STOP, false, depth + 1);
				keel_err_clear(tr->err);
				break;
			}
		}
		if (r == 0 && (type == JOB_STOP || type == JOB_RESTART)) {
			switch (e.kind) {
			case E_REQUIRED_BY:
			case E_BOUND_BY:
			case E_CONSISTS_OF:
			case E_PROPAGATES_STOP_TO:
				if (!keel_inactive_or_failed(e.other->active) || e.other->job)
					r = tr_add(tr, e.other, type == JOB_RESTART ? JOB_TRY_RESTART : JOB_STOP, matters, depth + 1);
				break;
			}
		}
		if (r < 0)
			return r;
	}
	return 0;
}

static int tr_add(struct tr *tr, struct mu *mu, int type, bool matters, int depth)
{
	if (depth > 10000)
		return keel_err_set(tr->err, -ELOOP, "Dependency chain too deep at %s.", mu->id);
	if (!unit_is_loaded(mu)) {
		if (is_stop_type(type) || !matters)
			return 0;
		switch (mu->u->load_state) {
		case KEEL_LOAD_NOT_FOUND:
			return keel_err_set(tr->err, -ENOENT, "Unit %s not found.", mu->id);
		case KEEL_LOAD_MASKED:
			return keel_err_set(tr->err, -ESHUTDOWN, "Unit %s is masked.", mu->id);
		case KEEL_LOAD_BAD_SETTING:
			return keel_err_set(tr->err, -ENOEXEC, "Unit %s has a bad unit file setting.", mu->id);
		default:
			return keel_err_set(tr->err, -ENOEXEC, "Unit %s failed to load properly, please adjust/correct and reload service manager: %s",
					    mu->id, keel_strerror(mu->u->load_error));
		}
	}
	struct tjob *t = tr_find(tr, mu);
	if (t) {
		int merged = merge_types(t->type, type);
		if (merged < 0) {
			if (!t->matters && matters) {
				t->type = (uint8_t)type;
				t->matters = true;
				return expand(tr, (size_t)mu->tr_idx, depth);
			}
			if (!matters)
				return 0;
			return keel_err_set(tr->err, -EEXIST,
					    "Transaction contains conflicting jobs '%s' and '%s' for %s. Probably contradicting requirement dependencies configured.",
					    keel_job_type_to_string(t->type), keel_job_type_to_string(type), mu->id);
		}
		bool widened = merged != t->type;
		t->type = (uint8_t)merged;
		bool gained = matters && !t->matters;
		t->matters |= matters;
		return widened || gained ? expand(tr, (size_t)mu->tr_idx, depth) : 0;
	}
	if (tr->n == tr->cap) {
		size_t cap = tr->cap ? tr->cap * 2 : 16;
		struct tjob *v = keel_reallocarray(tr->v, cap, sizeof(*v));
		if (!v)
			return keel_err_set(tr->err, -ENOMEM, "out of memory");
		tr->v = v;
		tr->cap = cap;
	}
	size_t idx = tr->n++;
	tr->v[idx] = (struct tjob){.u = mu, .type = (uint8_t)type, .matters = matters};
	mu->tr_mark = tr->m->tr_mark;
	mu->tr_idx = (int)idx;
	return expand(tr, idx, depth);
}

/* Does job a (in the transaction) have to wait for b? (systemd's job_compare) */
static bool waits_for(int a_type, int kind, int b_type)
{
	if (kind == E_AFTER)
		return !is_stop_type(a_type);
	if (kind == E_BEFORE)
		return is_stop_type(b_type);
	return false;
}

/* DFS over "waits for"; returns the index of a job to delete when a cycle was found and broken,
 * -1 when none was found, -2 when a cycle holds only jobs that matter. */
static long find_cycle(struct tr *tr, size_t i, size_t *stack, size_t depth)
{
	struct tjob *a = &tr->v[i];
	a->color = 1;
	stack[depth] = i;
	struct mu *mu = a->u;
	for (uint32_t k = 0; k < mu->n_edges; k++) {
		struct edge e = mu->edges[k];
		if (e.kind != E_AFTER && e.kind != E_BEFORE)
			continue;
		struct tjob *b = tr_find(tr, e.other);
		if (!b || b->deleted || !waits_for(a->type, e.kind, b->type))
			continue;
		size_t bi = (size_t)(b - tr->v);
		if (b->color == 1) {
			/* A cycle: stack from bi to i. */
			size_t from = depth;
			while (stack[from] != bi)
				from--;
			struct mu *anchor = tr->anchor;
			keel_logf(KEEL_LOG_WARN, "%s: Found ordering cycle on %s/%s", tr->v[bi].u->id, tr->v[bi].u->id,
				  keel_job_type_to_string(tr->v[bi].type));
			unit_log(tr->v[bi].u, 4, "Found ordering cycle on %s/%s", tr->v[bi].u->id,
				 keel_job_type_to_string(tr->v[bi].type));
			for (size_t s = from + 1; s <= depth; s++)
				unit_log(tr->v[bi].u, 4, "Found dependency on %s/%s", tr->v[stack[s]].u->id,
					 keel_job_type_to_string(tr->v[stack[s]].type));
			unit_log(tr->v[bi].u, 4, "Found dependency on %s/%s", tr->v[bi].u->id,
				 keel_job_type_to_string(tr->v[bi].type));
			for (size_t s = from; s <= depth; s++) {
				struct tjob *c = &tr->v[stack[s]];
				if (!c->matters && c->u != anchor) {
					unit_log(tr->v[bi].u, 3, "Breaking ordering cycle by deleting job %s/%s", c->u->id,
						 keel_job_type_to_string(c->type));
					return (long)stack[s];
				}
			}
			unit_log(tr->v[bi].u, 3, "Unable to break cycle starting with %s/%s", tr->v[bi].u->id,
				 keel_job_type_to_string(tr->v[bi].type));
			return -2;
		}
		if (b->color == 0) {
			long r = find_cycle(tr, bi, stack, depth + 1);
			if (r != -1)
				return r;
		}
	}
	a->color = 2;
	return -1;
}

static int verify_order(struct tr *tr)
{
	size_t *stack = keel_calloc(tr->n + 1, sizeof(*stack));
	if (!stack)
		return keel_err_set(tr->err, -ENOMEM, "out of memory");
	for (int rounds = 0; rounds < 1000; rounds++) {
		for (size_t i = 0; i < tr->n; i++)
			tr->v[i].color = 0;
		long found = -1;
		for (size_t i = 0; i < tr->n && found == -1; i++)
			if (!tr->v[i].deleted && tr->v[i].color == 0)
				found = find_cycle(tr, i, stack, 0);
		if (found == -1)
			break;
		if (found == -2) {
			keel_free(stack);
			return keel_err_set(tr->err, -ENOLINK, "Transaction order is cyclic. See system logs for details.");
		}
		tr->v[found].deleted = true;
	}
	keel_free(stack);
	return 0;
}

/* Jobs that would change nothing (starting what runs, stopping what does not) are left out,
 * except the one asked for. */
static void drop_redundant(struct tr *tr)
{
	for (size_t i = 0; i < tr->n; i++) {
		struct tjob *t = &tr->v[i];
		if (t->u == tr->anchor || t->u->job)
			continue;
		int a = t->u->active;
		if ((t->type == JOB_START || t->type == JOB_VERIFY_ACTIVE) && keel_active_or_reloading(a))
			t->deleted = true;
		else if ((t->type == JOB_STOP || t->type == JOB_TRY_RESTART) && keel_inactive_or_failed(a) &&
			 !(t->u->type == KEEL_UNIT_SERVICE && t->u->sub == S_AUTO_RESTART))
			t->deleted = true;
	}
}

/* JobTimeoutSec=/JobRunningTimeoutSec= elapsed: the job is cancelled with result "timeout"; the
 * unit itself keeps its state (systemd.unit(5)). Then JobTimeoutAction=. */
static void on_job_timer(struct keel_ev_timer *t)
{
	struct job *j = t->data;
	struct mu *mu = j->unit;
	struct keel_mgr *m = mu->m;
	int action = mu->u->job_timeout_action;
	unit_log(mu, 4, "Job %s/%s timed out.", mu->id, keel_job_type_to_string(j->type));
	job_finish(j, JR_TIMEOUT);
	switch (action) {
	case KEEL_ACTION_NONE:
		break;
	case KEEL_ACTION_EXIT:
	case KEEL_ACTION_EXIT_FORCE:
		/* The manager exits: for keel-init as a supervisor, its ordered shutdown. */
		unit_log(mu, 5, "Job timed out, exiting keel-init (JobTimeoutAction=%s).",
			 keel_emergency_action_to_string(action));
		keel_mgr_shutdown(m);
		break;
	default:
		/* reboot/poweroff/halt/kexec act on the machine, which a supervisor does not own. */
		unit_log(mu, 4, "JobTimeoutAction=%s is not supported by keel-init, ignoring.",
			 keel_emergency_action_to_string(action));
		break;
	}
}

/* Arm (or bring forward) the job's timer: JobTimeoutSec= from when it is installed,
 * JobRunningTimeoutSec= from when it starts running; the earlier one wins (systemd's rule). */
static void job_arm_timer(struct job *j, bool running)
{
	const struct keel_unit *u = j->unit->u;
	uint64_t span = running ? u->job_running_timeout_usec : u->job_timeout_usec;
	if (span == 0 || span == KEEL_USEC_INFINITY)
		return;
	if (running && j->timer_running)
		return;
	uint64_t when = keel_now_mono() + span;
	if (keel_ev_timer_armed(&j->timer) && j->timer.when <= when)
		return;
	if (running)
		j->timer_running = true;
	keel_ev_timer_stop(j->unit->m->ev, &j->timer);
	(void)!keel_ev_timer_start(j->unit->m->ev, &j->timer, when);
}

static struct job *job_new(struct keel_mgr *m, struct mu *mu, int type)
{
	struct job *j = keel_calloc(1, sizeof(*j));
	if (!j)
		return NULL;
	j->id = m->next_job_id++;
	j->type = (uint8_t)type;
	j->unit = mu;
	mu->job = j;
	m->n_jobs++;
	keel_ev_timer_init(&j->timer, on_job_timer, j);
	job_arm_timer(j, false);
	return j;
}

static void runq_remove(struct job *j)
{
	if (!j->in_runq)
		return;
	for (struct job **pp = &j->unit->m->runq; *pp; pp = &(*pp)->runq_next)
		if (*pp == j) {
			*pp = j->runq_next;
			break;
		}
	j->in_runq = false;
}

void job_add_to_runq(struct job *j)
{
	if (j->in_runq || j->running)
		return;
	struct keel_mgr *m = j->unit->m;
	j->in_runq = true;
	j->runq_next = m->runq;
	m->runq = j;
}

void job_queue_neighbours(struct mu *mu)
{
	if (mu->job)
		job_add_to_runq(mu->job);
	for (uint32_t i = 0; i < mu->n_edges; i++) {
		struct edge e = mu->edges[i];
		if ((e.kind == E_AFTER || e.kind == E_BEFORE) && e.other->job)
			job_add_to_runq(e.other->job);
	}
}

/* Isolate (systemd's transaction_add_isolate_jobs): stop every unit that runs and is not in the
 * transaction, except IgnoreOnIsolate= units and those triggered by a unit in it. */
static void add_isolate_jobs(struct tr *tr)
{
	size_t it = 0;
	const char *k;
	void *v;
	while (keel_hmap_next(&tr->m->units, &it, &k, NULL, &v)) {
		struct mu *mu = v;
		if (strcmp(k, mu->id) != 0 || tr_find(tr, mu))
			continue; /* an alias, or pulled in by the target */
		if (mu->u->ignore_on_isolate)
			continue;
		if (keel_inactive_or_failed(mu->active) || mu->active == KEEL_DEACTIVATING)
			continue;
		bool triggered = false;
		for (uint32_t i = 0; i < mu->n_edges && !triggered; i++) {
			struct tjob *t = mu->edges[i].kind == E_TRIGGERED_BY ? tr_find(tr, mu->edges[i].other) : NULL;
			triggered = t && !t->deleted;
		}
		if (triggered)
			continue;
		(void)tr_add(tr, mu, JOB_STOP, false, 0);
		keel_err_clear(tr->err);
	}
}

static int enqueue(struct keel_mgr *m, struct mu *anchor, int type, bool replace, bool isolate, bool manual,
		   struct job **ret, struct keel_err *err);

int job_enqueue(struct keel_mgr *m, struct mu *anchor, int type, bool replace, bool manual,
		struct job **ret, struct keel_err *err)
{
	return enqueue(m, anchor, type, replace, false, manual, ret, err);
}

int job_enqueue_isolate(struct keel_mgr *m, struct mu *anchor, bool manual, struct job **ret, struct keel_err *err)
{
	struct keel_err dummy;
	if (!err)
		err = &dummy;
	if (unit_is_loaded(anchor) && !anchor->u->allow_isolate)
		return keel_err_set(err, -EPERM, "Operation refused, unit may not be isolated.");
	return enqueue(m, anchor, JOB_START, true, true, manual, ret, err);
}

static int enqueue(struct keel_mgr *m, struct mu *anchor, int type, bool replace, bool isolate, bool manual,
		   struct job **ret, struct keel_err *err)
{
	struct keel_err dummy;
	if (!err)
		err = &dummy;
	keel_err_clear(err);
	if (ret)
		*ret = NULL;
	if (manual && anchor->u) {
		if ((type == JOB_START || type == JOB_RESTART) && anchor->u->refuse_manual_start)
			return keel_err_set(err, -EPERM, "Operation refused, unit %s may be requested by dependency only (it is configured to refuse manual start/stop).", anchor->id);
		if (type == JOB_STOP && anchor->u->refuse_manual_stop)
			return keel_err_set(err, -EPERM, "Operation refused, unit %s may be requested by dependency only (it is configured to refuse manual start/stop).", anchor->id);
	}
	if (type == JOB_TRY_RESTART && keel_inactive_or_failed(anchor->active) && !anchor->job)
		return 0;
	if (type == JOB_RELOAD && !unit_can_reload(anchor))
		return keel_err_set(err, -EOPNOTSUPP, "Job type reload is not applicable for unit %s.", anchor->id);
	if (type == JOB_START && m->shutting_down)
		return keel_err_set(err, -ESHUTDOWN, "Transaction for %s/start is destructive (shutdown is in progress).", anchor->id);

	struct tr tr = {.m = m, .err = err, .anchor = anchor, .manual = manual};
	m->tr_mark++;
	int r;
	if (type == JOB_RELOAD) {
		r = tr_add(&tr, anchor, JOB_RELOAD, true, 0);
		/* no dependencies for reload */
	} else {
		r = tr_add(&tr, anchor, type, true, 0);
	}
	if (r == 0 && isolate)
		add_isolate_jobs(&tr);
	if (r == 0) {
		drop_redundant(&tr);
		r = verify_order(&tr);
	}
	/* Mode "fail": refuse to replace installed jobs of another kind. */
	for (size_t i = 0; r == 0 && !replace && i < tr.n; i++) {
		struct tjob *t = &tr.v[i];
		if (t->deleted || !t->u->job)
			continue;
		if (merge_types(t->u->job->type, t->type) < 0)
			r = keel_err_set(err, -EBUSY, "Transaction for %s/%s is destructive (%s has '%s' job queued, but '%s' is included in transaction).",
					 anchor->id, keel_job_type_to_string(type), t->u->id,
					 keel_job_type_to_string(t->u->job->type), keel_job_type_to_string(t->type));
	}
	if (r < 0) {
		for (size_t i = 0; i < tr.n; i++)
			tr.v[i].u->tr_idx = -1;
		keel_free(tr.v);
		return r;
	}
	if (isolate) {
		/* Installed jobs of units outside the transaction are canceled (JOB_ISOLATE). */
		size_t it = 0;
		const char *k;
		void *v;
		while (keel_hmap_next(&m->units, &it, &k, NULL, &v)) {
			struct mu *mu = v;
			if (strcmp(k, mu->id) == 0 && mu->job && !tr_find(&tr, mu))
				job_finish(mu->job, JR_CANCELED);
		}
	}
	struct job *anchor_job = NULL;
	for (size_t i = 0; i < tr.n; i++) {
		struct tjob *t = &tr.v[i];
		t->u->tr_idx = -1;
		if (t->deleted)
			continue;
		struct job *j = t->u->job;
		if (j) {
			int merged = merge_types(j->type, t->type);
			if (merged >= 0 && (!j->running || merged == j->type)) {
				j->type = (uint8_t)merged;
			} else {
				/* Replace: the old job is canceled. */
				job_finish(j, JR_CANCELED);
				j = NULL;
			}
		}
		if (!j) {
			j = job_new(m, t->u, t->type);
			if (!j) {
				r = keel_err_set(err, -ENOMEM, "out of memory");
				continue;
			}
		}
		if (t->u == anchor) {
			anchor_job = j;
			j->manual |= manual;
		}
		job_add_to_runq(j);
		mgr_emit_job_event(m, t->u, j, -1);
	}
	keel_free(tr.v);
	if (ret)
		*ret = anchor_job;
	return r;
}

/* ---- running ---- */

static bool runnable(struct job *j)
{
	struct mu *mu = j->unit;
	for (uint32_t i = 0; i < mu->n_edges; i++) {
		struct edge e = mu->edges[i];
		if ((e.kind != E_AFTER && e.kind != E_BEFORE) || !e.other->job)
			continue;
		if (waits_for(j->type, e.kind, e.other->job->type))
			return false;
	}
	return true;
}

static const char *done_message(struct mu *mu, int type, int result)
{
	bool target = mu->type == KEEL_UNIT_TARGET;
	switch (type) {
	case JOB_START:
		switch (result) {
		case JR_DONE:
			if (mu->cond_real && !mu->cond_result)
				return "Condition check resulted in %s being skipped.";
			if (target)
				return "Reached target %s.";
			if (mu->type == KEEL_UNIT_SERVICE && keel_inactive_or_failed(mu->active))
				return "Finished %s.";
			if (mu->type == KEEL_UNIT_SOCKET)
				return "Listening on %s.";
			return "Started %s.";
		case JR_FAILED: return "Failed to start %s.";
		case JR_DEPENDENCY: return "Dependency failed for %s.";
		case JR_TIMEOUT: return "Timed out starting %s.";
		case JR_ASSERT: return "Assertion failed for %s.";
		default: return NULL;
		}
	case JOB_STOP:
		if (result == JR_DONE)
			return target ? "Stopped target %s." : "Stopped %s.";
		if (result == JR_FAILED)
			return "Stopped (with error) %s.";
		if (result == JR_TIMEOUT)
			return "Timed out stopping %s.";
		return NULL;
	case JOB_RELOAD:
		return result == JR_DONE ? "Reloaded %s." : result == JR_FAILED ? "Reload failed for %s." : NULL;
	case JOB_VERIFY_ACTIVE:
		return result == JR_DEPENDENCY || result == JR_FAILED ? "Dependency failed for %s." : NULL;
	default:
		return NULL;
	}
}

static void fail_dependents(struct mu *mu, int k1, int k2, int k3, bool start_side)
{
	for (uint32_t i = 0; i < mu->n_edges; i++) {
		struct edge e = mu->edges[i];
		if (e.kind != k1 && e.kind != k2 && e.kind != k3)
			continue;
		struct job *oj = e.other->job;
		if (!oj)
			continue;
		if (start_side && oj->type != JOB_START && oj->type != JOB_VERIFY_ACTIVE)
			continue;
		job_finish(oj, JR_DEPENDENCY);
	}
}

void job_finish(struct job *j, int result)
{
	struct mu *mu = j->unit;
	struct keel_mgr *m = mu->m;
	keel_assert(mu->job == j);
	mu->job = NULL;
	m->n_jobs--;
	runq_remove(j);
	keel_ev_timer_stop(m->ev, &j->timer);
	m->upkeep_needed = true; /* a unit without a job may now be unneeded or upheld */
	int type = j->type;
	const char *fmt = done_message(mu, type, result);
	if (fmt) {
		char msg[600];
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
		snprintf(msg, sizeof(msg), fmt, unit_description(mu)); /* one of done_message()'s */
#pragma GCC diagnostic pop
		unit_log(mu, result == JR_DONE ? 6 : 3, "%s", msg);
	}
	mgr_emit_job_event(m, mu, j, result);
	for (struct job_waiter *w = j->waiters, *next; w; w = next) {
		next = w->next;
		w->fn(w->ud, mu, j, result);
		keel_free(w);
	}
	j->waiters = NULL;
	if (result != JR_DONE && result != JR_CANCELED) {
		if (type == JOB_START || type == JOB_VERIFY_ACTIVE)
			fail_dependents(mu, E_REQUIRED_BY, E_BOUND_BY, E_REQUISITE_OF, true);
		else if (type == JOB_STOP)
			fail_dependents(mu, E_CONFLICTED_BY, -1, -1, true);
	}
	keel_free(j);
	job_queue_neighbours(mu);
	if (keel_inactive_or_failed(mu->active))
		unit_add_gc(mu);
}

static void job_run(struct job *j)
{
	struct mu *mu = j->unit;
	uint32_t id = j->id;
	j->running = true;
	job_arm_timer(j, true);
	int r;
	switch (j->type) {
	case JOB_START:
		r = unit_start(mu);
		if (!mu->job || mu->job->id != id)
			return; /* finished from inside (a target, a state change) */
		if (r == -EAGAIN)
			j->running = false; /* waits for the unit's next state change */
		if (r == 0 || r == -EAGAIN)
			return;
		job_finish(j, r == -EALREADY || r == -EBADR ? JR_DONE : r == -EPROTO ? JR_ASSERT : JR_FAILED);
		return;
	case JOB_VERIFY_ACTIVE:
		if (keel_active_or_reloading(mu->active))
			job_finish(j, JR_DONE);
		else if (mu->active != KEEL_ACTIVATING)
			job_finish(j, JR_DEPENDENCY);
		return;
	case JOB_STOP:
		r = unit_stop(mu);
		if (!mu->job || mu->job->id != id)
			return;
		if (r == -EAGAIN)
			j->running = false;
		if (r == 0 || r == -EAGAIN)
			return;
		job_finish(j, r == -EALREADY ? JR_DONE : JR_FAILED);
		return;
	case JOB_TRY_RESTART:
		if (keel_inactive_or_failed(mu->active)) {
			job_finish(j, JR_DONE);
			return;
		}
		j->type = JOB_RESTART;
		/* fall through */
	case JOB_RESTART:
		if (keel_inactive_or_failed(mu->active)) {
			j->type = JOB_START;
			j->running = false;
			job_run(j);
			return;
		}
		r = unit_stop(mu);
		if (!mu->job || mu->job->id != id)
			return;
		if (r == -EALREADY) {
			j->type = JOB_START;
			j->running = false;
			job_run(j);
		} else if (r == -EAGAIN) {
			j->running = false;
		} else if (r < 0) {
			job_finish(j, JR_FAILED);
		}
		return;
	case JOB_RELOAD:
		r = unit_reload(mu);
		if (!mu->job || mu->job->id != id)
			return;
		if (r == -EAGAIN)
			j->running = false;
		else if (r < 0)
			job_finish(j, r == -EOPNOTSUPP ? JR_UNSUPPORTED : JR_INVALID);
		return;
	}
}

bool job_dispatch(struct keel_mgr *m)
{
	int budget = 4096;
	while (m->runq && budget-- > 0) {
		struct job *j = m->runq;
		m->runq = j->runq_next;
		j->in_runq = false;
		if (!j->running && runnable(j))
			job_run(j);
	}
	return m->runq != NULL;
}

void job_unit_notify(struct mu *mu, int old, int ns, bool unexpected)
{
	(void)old;
	(void)unexpected;
	struct job *j = mu->job;
	if (j && j->running) {
		switch (j->type) {
		case JOB_START:
		case JOB_VERIFY_ACTIVE:
			if (keel_active_or_reloading(ns))
				job_finish(j, JR_DONE);
			else if (keel_inactive_or_failed(ns))
				job_finish(j, ns == KEEL_FAILED ? JR_FAILED : JR_DONE);
			break;
		case JOB_STOP:
			if (keel_inactive_or_failed(ns))
				job_finish(j, JR_DONE);
			else if (ns != KEEL_DEACTIVATING)
				job_finish(j, JR_FAILED);
			break;
		case JOB_RESTART:
			if (keel_inactive_or_failed(ns)) {
				j->type = JOB_START;
				j->running = false;
				job_add_to_runq(j);
			} else if (ns != KEEL_DEACTIVATING && ns != KEEL_ACTIVATING) {
				job_finish(j, JR_FAILED);
			}
			break;
		case JOB_RELOAD:
			if (ns == KEEL_ACTIVE)
				job_finish(j, mu->type == KEEL_UNIT_SERVICE && mu->rt.svc.reload_result != R_SUCCESS ? JR_FAILED : JR_DONE);
			else if (ns != KEEL_RELOADING)
				job_finish(j, JR_FAILED);
			break;
		}
	} else if (j && j->type == JOB_VERIFY_ACTIVE) {
		job_add_to_runq(j);
	}
	job_queue_neighbours(mu);
}

void job_free_all(struct keel_mgr *m)
{
	size_t it = 0;
	const char *k;
	void *v;
	while (keel_hmap_next(&m->units, &it, &k, NULL, &v)) {
		struct mu *mu = v;
		struct job *j = mu->job;
		if (!j)
			continue;
		mu->job = NULL;
		keel_ev_timer_stop(m->ev, &j->timer);
		for (struct job_waiter *w = j->waiters, *next; w; w = next) {
			next = w->next;
			w->fn(w->ud, mu, j, JR_CANCELED);
			keel_free(w);
		}
		keel_free(j);
	}
	m->runq = NULL;
	m->n_jobs = 0;
}
