/* The manager: the unit table, loading and the dependency edges, state changes and what they
 * set off, process reaping, cgroups and log pipes. Jobs are in job.c, the unit types in
 * service.c, socket.c, timer.c and here (targets). */
#include "init/manager.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/log.h"
#include "base/mem.h"
#include "base/str.h"
#include "init/journal_sink.h"
#include "init/mgr-internal.h"

const char *keel_active_to_string(int a)
{
	static const char *const n[] = {"active", "reloading", "inactive", "failed", "activating", "deactivating"};
	return (unsigned)a < KEEL_ARRAY_SIZE(n) ? n[a] : "?";
}

const char *keel_edge_kind_to_string(int k)
{
	static const char *const n[] = {
		"Requires", "Requisite", "Wants", "BindsTo", "PartOf", "Conflicts", "Before", "After",
		"OnFailure", "Triggers", "PropagatesStopTo", "RequiredBy", "RequisiteOf", "WantedBy",
		"BoundBy", "ConsistsOf", "ConflictedBy", "OnFailureOf", "TriggeredBy", "StopPropagatedFrom",
		"Upholds", "UpheldBy"};
	return (unsigned)k < KEEL_ARRAY_SIZE(n) ? n[k] : "?";
}

const char *keel_svc_result_to_string(int r)
{
	static const char *const n[] = {"success", "resources", "protocol", "timeout", "exit-code", "signal",
					"core-dump", "watchdog", "start-limit-hit", "exec-condition"};
	return (unsigned)r < KEEL_ARRAY_SIZE(n) ? n[r] : "?";
}

/* ---- logging ---- */

void unit_log(struct mu *mu, int priority, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	enum keel_log_level lvl = priority <= 3 ? KEEL_LOG_ERROR : priority == 4 ? KEEL_LOG_WARN
				  : priority <= 6 ? KEEL_LOG_INFO : KEEL_LOG_DEBUG;
	if (keel_log_enabled(lvl))
		keel_logf(lvl, "%s: %s", mu->id, msg);
	if (priority <= 6) {
		struct keel_log_record rec = {.unit = mu->id, .priority = priority,
					      .realtime_usec = keel_now_real(), .msg = msg, .len = strlen(msg)};
		keel_logsink_write(&mu->m->sink, &rec);
	}
}

const char *unit_description(const struct mu *mu)
{
	return mu->u && mu->u->description ? mu->u->description : mu->id;
}

bool unit_is_loaded(const struct mu *mu)
{
	return mu->u && mu->u->load_state == KEEL_LOAD_LOADED;
}

const struct unit_vtable *unit_vtable_of(const struct mu *mu)
{
	switch (mu->type) {
	case KEEL_UNIT_SERVICE: return &svc_vtable;
	case KEEL_UNIT_SOCKET: return &sock_vtable;
	case KEEL_UNIT_TIMER: return &tmr_vtable;
	default: return &target_vtable;
	}
}

const char *unit_sub_state(const struct mu *mu)
{
	return unit_vtable_of(mu)->sub_name(mu->sub);
}

/* ---- targets: active as soon as started, no processes ---- */

static const char *target_sub_name(int sub) { return sub ? "active" : "dead"; }
static int target_start(struct mu *mu)
{
	unit_set_state(mu, KEEL_ACTIVE, 1);
	return 0;
}
static int target_stop(struct mu *mu)
{
	unit_set_state(mu, KEEL_INACTIVE, 0);
	return 0;
}
static void target_nop(struct mu *mu) { (void)mu; }
static bool target_may_gc(struct mu *mu) { (void)mu; return true; }

const struct unit_vtable target_vtable = {
	.start = target_start, .stop = target_stop, .sub_name = target_sub_name,
	.done = target_nop, .init = target_nop, .reset_failed = target_nop, .may_gc = target_may_gc,
};

/* ---- the unit table and loading ---- */

struct mu *mgr_get(struct keel_mgr *m, const char *name)
{
	return keel_hmap_get_str(&m->units, name);
}

/* What the standard targets of systemd.special(7) hold when no file provides them, so that
 * DefaultDependencies= (Requires=sysinit.target, After=basic.target, ...) work out of the box. */
static const char *builtin_target(const char *name)
{
	static const struct {
		const char *name, *text;
	} t[] = {
		{"sysinit.target", "[Unit]\nDescription=System Initialization\nDefaultDependencies=no\n"},
		{"basic.target", "[Unit]\nDescription=Basic System\nRequires=sysinit.target\n"
				 "Wants=sockets.target timers.target\nAfter=sysinit.target sockets.target timers.target\n"},
		{"sockets.target", "[Unit]\nDescription=Sockets\nDefaultDependencies=no\n"},
		{"timers.target", "[Unit]\nDescription=Timers\nDefaultDependencies=no\n"},
		{"shutdown.target", "[Unit]\nDescription=System Shutdown\nDefaultDependencies=no\nRefuseManualStart=yes\n"},
		{"multi-user.target", "[Unit]\nDescription=Multi-User System\nRequires=basic.target\nAfter=basic.target\n"},
		{"default.target", "[Unit]\nDescription=Default Target\nRequires=multi-user.target\nAfter=multi-user.target\n"},
		{"network.target", "[Unit]\nDescription=Network\n"},
		{"network-online.target", "[Unit]\nDescription=Network is Online\nAfter=network.target\n"},
		{"network-pre.target", "[Unit]\nDescription=Preparation for Network\n"},
		{"local-fs.target", "[Unit]\nDescription=Local File Systems\nDefaultDependencies=no\n"},
		{"remote-fs.target", "[Unit]\nDescription=Remote File Systems\n"},
		{"time-set.target", "[Unit]\nDescription=System Time Set\nDefaultDependencies=no\n"},
		{"time-sync.target", "[Unit]\nDescription=System Time Synchronized\nDefaultDependencies=no\n"},
		{"nss-lookup.target", "[Unit]\nDescription=Host and Network Name Lookups\n"},
		{"paths.target", "[Unit]\nDescription=Paths\nDefaultDependencies=no\n"},
		{"slices.target", "[Unit]\nDescription=Slices\nDefaultDependencies=no\n"},
		{"swap.target", "[Unit]\nDescription=Swaps\nDefaultDependencies=no\n"},
	};
	for (size_t i = 0; i < KEEL_ARRAY_SIZE(t); i++)
		if (strcmp(name, t[i].name) == 0)
			return t[i].text;
	return NULL;
}

static void mu_init_rt(struct mu *mu)
{
	memset(&mu->rt, 0, sizeof(mu->rt));
	unit_vtable_of(mu)->init(mu);
}

static int register_names(struct keel_mgr *m, struct mu *mu, const char *extra)
{
	int r = keel_hmap_put_str(&m->units, mu->id, mu);
	for (size_t i = 0; r == 0 && mu->u->aliases && mu->u->aliases[i]; i++)
		if (!keel_hmap_get_str(&m->units, mu->u->aliases[i]))
			r = keel_hmap_put_str(&m->units, mu->u->aliases[i], mu);
	(void)extra;
	return r;
}

static void unregister_names(struct keel_mgr *m, struct mu *mu)
{
	/* Keys are the model's strings or mu->id: drop every key that maps to mu. */
	size_t it = 0;
	const char *k;
	void *v;
	char **keys = NULL;
	while (keel_hmap_next(&m->units, &it, &k, NULL, &v))
		if (v == mu && keel_strv_push(&keys, k) < 0)
			break;
	for (size_t i = 0; keys && keys[i]; i++)
		keel_hmap_del_str(&m->units, keys[i]);
	keel_strv_free(keys);
}

static struct mu *mu_new(struct keel_mgr *m, struct keel_unit *u)
{
	struct mu *mu = keel_calloc(1, sizeof(*mu));
	if (!mu || !(mu->id = keel_strdup(u->id))) {
		keel_free(mu);
		return NULL;
	}
	mu->m = m;
	mu->u = u;
	mu->type = u->type;
	mu->active = KEEL_INACTIVE;
	mu->tr_idx = -1;
	mu->inotify_wd = -1;
	mu_init_rt(mu);
	if (register_names(m, mu, NULL) < 0) {
		unregister_names(m, mu);
		keel_free(mu->id);
		keel_free(mu);
		return NULL;
	}
	return mu;
}

static void mu_free(struct mu *mu)
{
	struct keel_mgr *m = mu->m;
	unit_vtable_of(mu)->done(mu);
	unit_cgroup_release(mu);
	unregister_names(m, mu);
	keel_free(mu->edges);
	keel_unit_free(mu->u);
	keel_free(mu->id);
	keel_free(mu);
}

/* Load one name: the unit, not its dependencies. Existing units are returned as they are. */
static struct mu *load_one(struct keel_mgr *m, const char *name, bool *ret_new)
{
	*ret_new = false;
	struct mu *mu = mgr_get(m, name);
	if (mu)
		return mu;
	struct keel_unit *u;
	int r = keel_loader_load(m->loader, name, &u);
	if (r < 0)
		return NULL;
	if (u->load_state == KEEL_LOAD_NOT_FOUND && builtin_target(u->id)) {
		const char *text = builtin_target(u->id);
		struct keel_unit *b;
		if (keel_loader_load_text(m->loader, u->id, NULL, text, strlen(text), &b) == 0) {
			keel_unit_free(u);
			u = b;
		}
	}
	mu = mgr_get(m, u->id);
	if (mu) {
		/* Reached under another name (an alias): remember that name too. */
		keel_unit_free(u);
		if (keel_hmap_put_str(&m->units, mu->id, mu) < 0)
			return NULL;
		return mu;
	}
	mu = mu_new(m, u);
	if (!mu) {
		keel_unit_free(u);
		return NULL;
	}
	*ret_new = true;
	return mu;
}

struct mu *mgr_load(struct keel_mgr *m, const char *name)
{
	bool fresh;
	struct mu *first = load_one(m, name, &fresh);
	if (!first || !fresh)
		return first;
	if (first->u->load_state != KEEL_LOAD_LOADED) {
		/* The name map must also hold what was asked for (an alias that did not resolve). */
		return first;
	}
	/* Dependencies, breadth first, with an explicit queue (graphs may be deep). */
	struct mu **q = NULL;
	size_t qn = 0, qcap = 0, qi = 0;
	q = keel_malloc(sizeof(*q) * 16);
	if (!q)
		return first;
	qcap = 16;
	q[qn++] = first;
	while (qi < qn) {
		struct mu *cur = q[qi++];
		for (uint32_t i = 0; i < cur->u->n_deps; i++) {
			struct mu *d = load_one(m, cur->u->deps[i].name, &fresh);
			if (!d || !fresh || d->u->load_state != KEEL_LOAD_LOADED)
				continue;
			if (qn == qcap) {
				struct mu **nq = keel_reallocarray(q, qcap * 2, sizeof(*q));
				if (!nq)
					continue;
				q = nq;
				qcap *= 2;
			}
			q[qn++] = d;
		}
	}
	keel_free(q);
	mgr_rebuild_edges(m);
	return first;
}

static int add_edge(struct mu *a, int kind, struct mu *b)
{
	for (uint32_t i = 0; i < a->n_edges; i++)
		if (a->edges[i].other == b && a->edges[i].kind == kind)
			return 0;
	if (a->n_edges == a->cap_edges) {
		uint32_t cap = a->cap_edges ? a->cap_edges * 2 : 4;
		struct edge *e = keel_reallocarray(a->edges, cap, sizeof(*e));
		if (!e)
			return -ENOMEM;
		a->edges = e;
		a->cap_edges = cap;
	}
	a->edges[a->n_edges++] = (struct edge){.other = b, .kind = (uint8_t)kind};
	return 0;
}

static void add_pair(struct mu *a, int kind, struct mu *b)
{
	static const int reverse[E_KIND_MAX] = {
		[E_REQUIRES] = E_REQUIRED_BY, [E_REQUISITE] = E_REQUISITE_OF, [E_WANTS] = E_WANTED_BY,
		[E_BINDS_TO] = E_BOUND_BY, [E_PART_OF] = E_CONSISTS_OF, [E_CONFLICTS] = E_CONFLICTED_BY,
		[E_BEFORE] = E_AFTER, [E_AFTER] = E_BEFORE, [E_ON_FAILURE] = E_ON_FAILURE_OF,
		[E_TRIGGERS] = E_TRIGGERED_BY, [E_PROPAGATES_STOP_TO] = E_STOP_PROPAGATED_FROM,
		[E_UPHOLDS] = E_UPHELD_BY,
	};
	if (a == b)
		return;
	(void)add_edge(a, kind, b);
	(void)add_edge(b, reverse[kind], a);
}

static int edge_of_dep(int k)
{
	switch (k) {
	case KEEL_DEP_REQUIRES: return E_REQUIRES;
	case KEEL_DEP_REQUISITE: return E_REQUISITE;
	case KEEL_DEP_WANTS: return E_WANTS;
	case KEEL_DEP_BINDS_TO: return E_BINDS_TO;
	case KEEL_DEP_PART_OF: return E_PART_OF;
	case KEEL_DEP_CONFLICTS: return E_CONFLICTS;
	case KEEL_DEP_BEFORE: return E_BEFORE;
	case KEEL_DEP_AFTER: return E_AFTER;
	case KEEL_DEP_ON_FAILURE: return E_ON_FAILURE;
	case KEEL_DEP_TRIGGERS: return E_TRIGGERS;
	case KEEL_DEP_PROPAGATES_STOP_TO: return E_PROPAGATES_STOP_TO;
	case KEEL_DEP_UPHOLDS: return E_UPHOLDS;
	case KEEL_DEP_STOP_PROPAGATED_FROM: return -2; /* added from the other side */
	default: return -1;
	}
}

void mgr_rebuild_edges(struct keel_mgr *m)
{
	size_t it = 0;
	const char *k;
	void *v;
	while (keel_hmap_next(&m->units, &it, &k, NULL, &v)) {
		struct mu *mu = v;
		mu->n_edges = 0;
	}
	it = 0;
	while (keel_hmap_next(&m->units, &it, &k, NULL, &v)) {
		struct mu *mu = v;
		if (strcmp(k, mu->id) != 0)
			continue; /* once per unit, not per alias */
		for (uint32_t i = 0; i < mu->u->n_deps; i++) {
			const struct keel_dep *d = &mu->u->deps[i];
			struct mu *o = mgr_get(m, d->name);
			if (!o)
				continue;
			int kind = edge_of_dep(d->kind);
			if (kind == -2)
				add_pair(o, E_PROPAGATES_STOP_TO, mu);
			else if (kind >= 0)
				add_pair(mu, kind, o);
		}
		/* Sockets= of a service: those sockets trigger it. */
		const struct keel_service *s = keel_unit_service_c(mu->u);
		for (size_t i = 0; s && s->sockets && s->sockets[i]; i++) {
			struct mu *o = mgr_get(m, s->sockets[i]);
			if (o) {
				add_pair(o, E_TRIGGERS, mu);
				add_pair(mu, E_AFTER, o);
			}
		}
	}
	/* Only then do state changes need the StopWhenUnneeded=/Upholds= scan (upkeep.c). */
	m->any_upkeep = false;
	it = 0;
	while (!m->any_upkeep && keel_hmap_next(&m->units, &it, &k, NULL, &v)) {
		struct mu *mu = v;
		m->any_upkeep = mu->u->stop_when_unneeded;
		for (uint32_t i = 0; i < mu->n_edges && !m->any_upkeep; i++)
			m->any_upkeep = mu->edges[i].kind == E_UPHOLDS;
	}
	/* Targets are ordered after what they pull in (systemd's default target dependency). */
	it = 0;
	while (keel_hmap_next(&m->units, &it, &k, NULL, &v)) {
		struct mu *mu = v;
		if (mu->type != KEEL_UNIT_TARGET || strcmp(k, mu->id) != 0)
			continue;
		uint32_t n = mu->n_edges;
		for (uint32_t i = 0; i < n; i++) {
			struct edge e = mu->edges[i];
			if ((e.kind == E_WANTS || e.kind == E_REQUIRES || e.kind == E_REQUISITE || e.kind == E_BINDS_TO) &&
			    keel_target_orders_after(mu->u, e.other->u))
				add_pair(mu, E_AFTER, e.other);
		}
	}
}

int mgr_load_text(struct keel_mgr *m, const char *name, const char *text, struct mu **ret,
		  struct keel_buf *diag)
{
	(void)diag;
	struct keel_unit *u;
	int r = keel_loader_load_text(m->loader, name, NULL, text, strlen(text), &u);
	if (r < 0)
		return r;
	struct mu *mu = mgr_get(m, u->id);
	if (mu) {
		if (mu->type != u->type) {
			keel_unit_free(u);
			return -EINVAL;
		}
		unregister_names(m, mu);
		keel_unit_free(mu->u);
		mu->u = u;
		mu->transient = true;
		if (register_names(m, mu, NULL) < 0) {
			return -ENOMEM;
		}
	} else {
		mu = mu_new(m, u);
		if (!mu) {
			keel_unit_free(u);
			return -ENOMEM;
		}
		mu->transient = true;
	}
	/* Its dependencies. */
	for (uint32_t i = 0; i < u->n_deps; i++)
		(void)mgr_load(m, u->deps[i].name);
	mgr_rebuild_edges(m);
	*ret = mu;
	return 0;
}

/* ---- state changes ---- */

void mgr_watch_pid(struct keel_mgr *m, pid_t pid, struct mu *mu)
{
	if (pid > 0)
		(void)!keel_hmap_put_int(&m->pids, pid, mu);
}

void mgr_unwatch_pid(struct keel_mgr *m, pid_t pid)
{
	if (pid > 0)
		keel_hmap_del_int(&m->pids, pid);
}

void unit_add_gc(struct mu *mu)
{
	if (mu->gc_queued)
		return;
	mu->gc_queued = true;
	mu->gc_next = mu->m->gcq;
	mu->m->gcq = mu;
}

void unit_set_state(struct mu *mu, int active, int sub)
{
	int old = mu->active;
	bool changed = old != active || mu->sub != sub;
	mu->active = (uint8_t)active;
	mu->sub = (uint8_t)sub;
	if (!changed)
		return;
	uint64_t now = keel_now_real();
	mu->state_change_real = now;
	if (old != active) {
		if (keel_inactive_or_failed(old) && !keel_inactive_or_failed(active))
			mu->inactive_exit_real = now;
		else if (!keel_inactive_or_failed(old) && keel_inactive_or_failed(active)) {
			mu->inactive_enter_real = now;
			mu->inactive_enter_mono = keel_now_mono();
		}
		if (!keel_active_or_reloading(old) && keel_active_or_reloading(active)) {
			mu->active_enter_real = now;
			mu->active_enter_mono = keel_now_mono();
		} else if (keel_active_or_reloading(old) && !keel_active_or_reloading(active)) {
			mu->active_exit_real = now;
		}
	}
	struct keel_mgr *m = mu->m;
	mgr_emit_unit_event(m, mu);
	if (old != active)
		m->upkeep_needed = true;
	if (old != active) {
		bool unexpected = !mu->job;
		job_unit_notify(mu, old, active, unexpected);
		/* A unit that stopped by itself takes the units bound to it along. */
		if (keel_inactive_or_failed(active) && !keel_inactive_or_failed(old)) {
			for (uint32_t i = 0; i < mu->n_edges; i++) {
				struct mu *o = mu->edges[i].other;
				if (mu->edges[i].kind != E_BOUND_BY || keel_inactive_or_failed(o->active))
					continue;
				if (o->job && o->job->type == JOB_STOP)
					continue;
				unit_log(o, 6, "Unit is bound to inactive unit %s. Stopping, too.", mu->id);
				struct keel_err e;
				(void)!job_enqueue(m, o, JOB_STOP, true, false, NULL, &e);
			}
		}
		if (active == KEEL_FAILED && old != KEEL_FAILED) {
			for (uint32_t i = 0; i < mu->n_edges; i++) {
				if (mu->edges[i].kind != E_ON_FAILURE)
					continue;
				struct mu *o = mu->edges[i].other;
				unit_log(mu, 6, "Triggering OnFailure= dependencies.");
				struct keel_err e;
				if (job_enqueue(m, o, JOB_START, true, false, NULL, &e) < 0)
					unit_log(mu, 3, "Failed to enqueue OnFailure= job for %s: %s", o->id, keel_err_msg(&e));
			}
		}
	}
	/* Sockets and timers follow the units they trigger. */
	for (uint32_t i = 0; i < mu->n_edges; i++) {
		if (mu->edges[i].kind != E_TRIGGERED_BY)
			continue;
		struct mu *o = mu->edges[i].other;
		const struct unit_vtable *vt = unit_vtable_of(o);
		if (vt->trigger_notify)
			vt->trigger_notify(o, mu);
	}
	if (keel_inactive_or_failed(active) && mu->accept_socket) {
		if (mu->accept_socket->rt.sock.n_connections > 0)
			mu->accept_socket->rt.sock.n_connections--;
		mu->accept_socket = NULL;
	}
	if (keel_inactive_or_failed(active) && !mu->job)
		unit_add_gc(mu);
}

/* ---- common start/stop checks ---- */

bool unit_start_limit_ok(struct mu *mu)
{
	uint64_t interval = mu->u->start_limit_interval_usec, burst = mu->u->start_limit_burst;
	if (interval == 0 || burst == 0)
		return true;
	uint64_t now = keel_now_mono();
	if (mu->sl_begin == 0 || now - mu->sl_begin > interval) {
		mu->sl_begin = now;
		mu->sl_count = 0;
	}
	if (mu->sl_count < burst) {
		mu->sl_count++;
		return true;
	}
	return false;
}

static const char *load_state_message(const struct mu *mu)
{
	switch (mu->u->load_state) {
	case KEEL_LOAD_NOT_FOUND: return "not found";
	case KEEL_LOAD_MASKED: return "masked";
	case KEEL_LOAD_BAD_SETTING: return "has a bad unit file setting";
	default: return "failed to load properly";
	}
}

int unit_start(struct mu *mu)
{
	if (!unit_is_loaded(mu)) {
		unit_log(mu, 3, "Unit %s %s.", mu->id, load_state_message(mu));
		return mu->u->load_state == KEEL_LOAD_NOT_FOUND ? -ENOENT : -ENOEXEC;
	}
	if (keel_active_or_reloading(mu->active))
		return -EALREADY;
	if (mu->active == KEEL_ACTIVATING && !(mu->type == KEEL_UNIT_SERVICE && mu->sub == S_AUTO_RESTART))
		return -EAGAIN; /* under way */
	if (mu->active == KEEL_INACTIVE || mu->active == KEEL_FAILED ||
	    (mu->type == KEEL_UNIT_SERVICE && mu->sub == S_AUTO_RESTART)) {
		const struct keel_condition *failed = NULL;
		mu->cond_real = keel_now_real();
		mu->cond_result = unit_test_conditions(mu, false, &failed) > 0;
		if (!mu->cond_result) {
			/* systemd logs the condition that failed, then the job's "Condition check
			 * resulted in X being skipped." (job.c) */
			unit_log(mu, 6, "Condition%s=%s%s%s failed.",
				 failed ? keel_condition_kind_to_string(failed->kind) : "?",
				 failed && (failed->flags & KEEL_COND_TRIGGER) ? "|" : "",
				 failed && (failed->flags & KEEL_COND_NEGATE) ? "!" : "", failed ? failed->param : "");
			return -EBADR;
		}
		mu->assert_result = unit_test_conditions(mu, true, &failed) > 0;
		if (!mu->assert_result) {
			unit_log(mu, 4, "Assertion failed for %s (Assert%s=%s).", unit_description(mu),
				 failed ? keel_condition_kind_to_string(failed->kind) : "?", failed ? failed->param : "");
			return -EPROTO;
		}
	}
	return unit_vtable_of(mu)->start(mu);
}

int unit_stop(struct mu *mu)
{
	if (keel_inactive_or_failed(mu->active))
		return -EALREADY;
	return unit_vtable_of(mu)->stop(mu);
}

bool unit_can_reload(const struct mu *mu)
{
	const struct keel_service *s = keel_unit_service_c(mu->u);
	return s && s->exec[KEEL_EXEC_RELOAD];
}

int unit_reload(struct mu *mu)
{
	const struct unit_vtable *vt = unit_vtable_of(mu);
	if (!vt->reload || !unit_can_reload(mu))
		return -EOPNOTSUPP;
	if (mu->active == KEEL_RELOADING)
		return -EAGAIN;
	if (mu->active != KEEL_ACTIVE)
		return -ENOEXEC;
	return vt->reload(mu);
}

void unit_reset_failed(struct mu *mu)
{
	unit_vtable_of(mu)->reset_failed(mu);
	mu->sl_begin = 0;
	mu->sl_count = 0;
}

/* ---- cgroups ---- */

static void cg_warn(void *ud, const char *msg)
{
	unit_log(ud, 4, "%s", msg);
}

int unit_cgroup_realize(struct mu *mu)
{
	struct keel_mgr *m = mu->m;
	if (mu->cgroup_made || m->cg->mode == KEEL_CG_NONE)
		return 0;
	const struct keel_service *s = keel_unit_service_c(mu->u);
	mu->cg_mask = keel_cg_mask(m->cg, s ? &s->cgroup : NULL);
	int r = keel_cg_create(m->cg, mu->id, mu->cg_mask, s ? &s->cgroup : NULL, cg_warn, mu);
	if (r < 0)
		return r;
	mu->cgroup_made = true;
	char path[4096];
	if (m->inotify_fd >= 0 && keel_cg_events_path(m->cg, mu->id, path, sizeof(path))) {
		int wd = inotify_add_watch(m->inotify_fd, path, IN_MODIFY);
		if (wd >= 0) {
			mu->inotify_wd = wd;
			(void)!keel_hmap_put_int(&m->wds, wd, mu);
		}
	}
	return 0;
}

bool unit_cgroup_empty(struct mu *mu)
{
	return !mu->cgroup_made || keel_cg_is_empty(mu->m->cg, mu->id);
}

void unit_cgroup_release(struct mu *mu)
{
	struct keel_mgr *m = mu->m;
	if (!mu->cgroup_made)
		return;
	if (mu->inotify_wd >= 0) {
		inotify_rm_watch(m->inotify_fd, mu->inotify_wd);
		keel_hmap_del_int(&m->wds, mu->inotify_wd);
		mu->inotify_wd = -1;
	}
	if (keel_cg_remove(m->cg, mu->id, mu->cg_mask) == 0)
		mu->cgroup_made = false;
}

int unit_kill(struct mu *mu, const char *who, int sig)
{
	if (mu->type != KEEL_UNIT_SERVICE)
		return -EOPNOTSUPP;
	struct svc_rt *s = &mu->rt.svc;
	int n = 0;
	if (!who || strcmp(who, "all") == 0) {
		if (mu->cgroup_made) {
			int r = keel_cg_kill(mu->m->cg, mu->id, sig, 0, false);
			if (r < 0)
				return r;
			n += r;
		}
		if (n == 0 && s->main_pid > 0 && kill(s->main_pid, sig) == 0)
			n++;
	} else if (strcmp(who, "main") == 0) {
		if (s->main_pid <= 0)
			return -ESRCH;
		if (kill(s->main_pid, sig) < 0)
			return -errno;
		n = 1;
	} else if (strcmp(who, "control") == 0) {
		if (s->control_pid <= 0)
			return -ESRCH;
		if (kill(s->control_pid, sig) < 0)
			return -errno;
		n = 1;
	} else {
		return -EINVAL;
	}
	return n ? 0 : -ESRCH;
}

static void check_cgroups(struct keel_mgr *m)
{
	size_t it = 0;
	const char *k;
	void *v;
	struct mu *list[64];
	size_t n = 0;
	/* Callbacks may change the table: collect first. */
	while (keel_hmap_next(&m->units, &it, &k, NULL, &v)) {
		struct mu *mu = v;
		if (!mu->want_empty_check || strcmp(k, mu->id) != 0)
			continue;
		if (n < KEEL_ARRAY_SIZE(list))
			list[n++] = mu;
		else
			m->cg_check_needed = true;
	}
	for (size_t i = 0; i < n; i++) {
		struct mu *mu = list[i];
		if (mu->want_empty_check && unit_cgroup_empty(mu)) {
			const struct unit_vtable *vt = unit_vtable_of(mu);
			if (vt->cgroup_empty)
				vt->cgroup_empty(mu);
		}
	}
}

static void on_inotify(struct keel_ev_io *io, uint32_t revents)
{
	struct keel_mgr *m = io->data;
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	ssize_t n;
	while ((n = read(m->inotify_fd, buf, sizeof(buf))) > 0) {
		for (char *p = buf; p < buf + n;) {
			struct inotify_event *e = (struct inotify_event *)p;
			struct mu *mu = keel_hmap_get_int(&m->wds, e->wd);
			if (mu && mu->want_empty_check)
				m->cg_check_needed = true;
			p += sizeof(*e) + e->len;
		}
	}
	(void)revents;
}

/* ---- reaping ---- */

void keel_mgr_sigchld(struct keel_mgr *m)
{
	for (;;) {
		siginfo_t si = {0};
		if (waitid(P_ALL, 0, &si, WEXITED | WNOHANG) < 0 || si.si_pid == 0)
			break;
		struct mu *mu = keel_hmap_get_int(&m->pids, si.si_pid);
		if (mu) {
			keel_hmap_del_int(&m->pids, si.si_pid);
			const struct unit_vtable *vt = unit_vtable_of(mu);
			if (vt->sigchld)
				vt->sigchld(mu, si.si_pid, si.si_code, si.si_status);
		}
	}
	m->cg_check_needed = true;
}

/* ---- log pipes ---- */

struct logpipe {
	struct keel_ev_io io;
	struct keel_mgr *m;
	char *unit, *ident;
	pid_t pid;
	struct keel_buf buf;
	struct logpipe *next;
};

static struct logpipe *logpipes;

static void logpipe_emit(struct logpipe *lp, const char *line, size_t len)
{
	const char *msg = line;
	int prio = keel_journal_prio_prefix(&msg, &len, 6);
	struct keel_log_record rec = {.unit = lp->unit, .identifier = lp->ident, .pid = lp->pid,
				      .priority = prio, .realtime_usec = keel_now_real(), .msg = msg, .len = len};
	keel_logsink_write(&lp->m->sink, &rec);
}

static void logpipe_free(struct logpipe *lp)
{
	for (struct logpipe **pp = &logpipes; *pp; pp = &(*pp)->next)
		if (*pp == lp) {
			*pp = lp->next;
			break;
		}
	keel_ev_io_stop(lp->m->ev, &lp->io);
	close(lp->io.fd);
	keel_buf_free(&lp->buf);
	keel_free(lp->unit);
	keel_free(lp->ident);
	keel_free(lp);
}

static void on_logpipe(struct keel_ev_io *io, uint32_t revents)
{
	struct logpipe *lp = io->data;
	char chunk[4096];
	ssize_t n = read(io->fd, chunk, sizeof(chunk));
	if (n > 0) {
		if (keel_buf_append(&lp->buf, chunk, (size_t)n) < 0)
			keel_buf_reset(&lp->buf);
		char *start = lp->buf.data;
		char *nl;
		while ((nl = memchr(start, '\n', lp->buf.len - (size_t)(start - lp->buf.data)))) {
			logpipe_emit(lp, start, (size_t)(nl - start));
			start = nl + 1;
		}
		keel_buf_consume(&lp->buf, (size_t)(start - lp->buf.data));
		if (lp->buf.len > 16384) { /* systemd's LINE_MAX-ish cut */
			logpipe_emit(lp, lp->buf.data, lp->buf.len);
			keel_buf_reset(&lp->buf);
		}
		return;
	}
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (lp->buf.len)
		logpipe_emit(lp, lp->buf.data, lp->buf.len);
	(void)revents;
	logpipe_free(lp);
}

struct logpipe *logpipe_open(struct mu *mu, const char *ident, int *ret_write_fd)
{
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0)
		return NULL;
	fcntl(p[0], F_SETFL, O_NONBLOCK);
	struct logpipe *lp = keel_calloc(1, sizeof(*lp));
	if (!lp || !(lp->unit = keel_strdup(mu->id)) || !(lp->ident = keel_strdup(ident))) {
		if (lp) {
			keel_free(lp->unit);
			keel_free(lp);
		}
		close(p[0]);
		close(p[1]);
		return NULL;
	}
	lp->m = mu->m;
	keel_ev_io_init(&lp->io, p[0], on_logpipe, lp);
	if (keel_ev_io_start(mu->m->ev, &lp->io, EPOLLIN) < 0) {
		close(p[1]);
		lp->next = NULL;
		logpipes = lp;
		logpipe_free(lp);
		return NULL;
	}
	lp->next = logpipes;
	logpipes = lp;
	*ret_write_fd = p[1];
	return lp;
}

void logpipe_set_pid(struct logpipe *lp, pid_t pid)
{
	if (lp)
		lp->pid = pid;
}

/* ---- spawn reports ---- */

struct spawn_report {
	struct keel_ev_io io;
	struct keel_mgr *m;
	char *unit, *path;
	pid_t pid;                 /* told to the service when the exec succeeded (Type=exec) */
	struct spawn_report *next;
};

static struct spawn_report *reports;

static void report_free(struct spawn_report *r)
{
	for (struct spawn_report **pp = &reports; *pp; pp = &(*pp)->next)
		if (*pp == r) {
			*pp = r->next;
			break;
		}
	keel_ev_io_stop(r->m->ev, &r->io);
	close(r->io.fd);
	keel_free(r->unit);
	keel_free(r->path);
	keel_free(r);
}

static void on_report(struct keel_ev_io *io, uint32_t revents)
{
	struct spawn_report *r = io->data;
	struct keel_spawn_error se;
	(void)revents;
	ssize_t n = read(io->fd, &se, sizeof(se));
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	struct mu *mu = n == (ssize_t)sizeof(se) ? mgr_get(r->m, r->unit) : NULL;
	if (mu && se.step) {
		if (se.step == KEEL_EXIT_EXEC)
			unit_log(mu, 3, "Failed to execute %s: %s", r->path, strerror(se.err));
		unit_log(mu, 3, "Failed at step %s spawning %s: %s", keel_spawn_step_name(se.step), r->path, strerror(se.err));
	}
	/* End of file without a report: the close-on-exec pipe closed in execve(). */
	if (n == 0 && r->pid > 0 && (mu = mgr_get(r->m, r->unit)) && mu->type == KEEL_UNIT_SERVICE)
		svc_exec_succeeded(mu, r->pid);
	report_free(r);
}

void spawn_watch(struct mu *mu, int fd, const char *path)
{
	spawn_watch_pid(mu, fd, path, 0);
}

void spawn_watch_pid(struct mu *mu, int fd, const char *path, pid_t pid)
{
	struct spawn_report *r = keel_calloc(1, sizeof(*r));
	if (!r || !(r->unit = keel_strdup(mu->id)) || !(r->path = keel_strdup(path))) {
		if (r) {
			keel_free(r->unit);
			keel_free(r);
		}
		close(fd);
		return;
	}
	r->m = mu->m;
	r->pid = pid;
	keel_ev_io_init(&r->io, fd, on_report, r);
	if (keel_ev_io_start(mu->m->ev, &r->io, EPOLLIN) < 0) {
		close(fd);
		keel_free(r->unit);
		keel_free(r->path);
		keel_free(r);
		return;
	}
	r->next = reports;
	reports = r;
}

/* ---- life cycle ---- */

static void diag_to_log(void *userdata, const struct keel_diag *d)
{
	(void)userdata;
	char line[2048];
	keel_diag_format(d, line, sizeof(line));
	enum keel_log_level lvl = d->level <= KEEL_DIAG_ERR ? KEEL_LOG_ERROR : d->level == KEEL_DIAG_WARNING ? KEEL_LOG_WARN
				  : d->level <= KEEL_DIAG_INFO ? KEEL_LOG_INFO : KEEL_LOG_DEBUG;
	keel_logf(lvl, "%s", line);
	struct keel_mgr *m = userdata;
	if (m && m->diag_capture) {
		if (keel_buf_puts(m->diag_capture, line) == 0)
			(void)!keel_buf_putc(m->diag_capture, '\n');
	}
}

static bool prepare(void *data)
{
	struct keel_mgr *m = data;
	bool more = false;
	for (int round = 0; round < 4; round++) {
		if (m->cg_check_needed) {
			m->cg_check_needed = false;
			check_cgroups(m);
		}
		more = job_dispatch(m);
		if (m->upkeep_needed && !m->shutting_down) {
			m->upkeep_needed = false;
			mgr_upkeep(m);
			more = job_dispatch(m) || more;
		}
		/* Free transient units that are done. */
		while (m->gcq) {
			struct mu *mu = m->gcq;
			m->gcq = mu->gc_next;
			mu->gc_queued = false;
			const struct unit_vtable *vt = unit_vtable_of(mu);
			if (mu->gc_when_dead && !mu->job && keel_inactive_or_failed(mu->active) &&
			    (!vt->may_gc || vt->may_gc(mu))) {
				/* drop it from the edges of others */
				for (uint32_t i = 0; i < mu->n_edges; i++) {
					struct mu *o = mu->edges[i].other;
					for (uint32_t j = 0; j < o->n_edges;)
						if (o->edges[j].other == mu)
							o->edges[j] = o->edges[--o->n_edges];
						else
							j++;
				}
				mu_free(mu);
			}
		}
		if (!m->cg_check_needed && !more && !(m->upkeep_needed && !m->shutting_down))
			break;
	}
	/* The lines of this iteration reach readers (keelctl journal -f) before the loop sleeps. */
	keel_logsink_flush(&m->sink);
	/* A finished shutdown must not wait for the next event to be noticed. */
	return more || m->cg_check_needed || (m->upkeep_needed && !m->shutting_down) || keel_mgr_done(m);
}

int keel_mgr_new(const struct keel_mgr_config *cfg, struct keel_ev *ev, struct keel_logsink *sink,
		 struct keel_mgr **ret, struct keel_err *err)
{
	struct keel_mgr *m = keel_calloc(1, sizeof(*m));
	if (!m)
		return keel_err_set(err, -ENOMEM, "out of memory");
	m->cfg = *cfg;
	m->ev = ev;
	m->inotify_fd = -1;
	m->notify_fd = -1;
	m->startup_mono = keel_now_mono();
	m->next_job_id = 1;
	keel_hmap_init(&m->units, true);
	keel_hmap_init(&m->pids, false);
	keel_hmap_init(&m->wds, false);
	int r;
	m->runtime_dir = keel_strdup(cfg->runtime_dir ? cfg->runtime_dir : "/run/keel");
	m->state_dir = keel_strdup(cfg->state_dir ? cfg->state_dir : "/var/lib/keel");
	m->default_target = cfg->default_target ? keel_strdup(cfg->default_target) : NULL;
	const char *cd = cfg->config_dir ? cfg->config_dir
			 : cfg->unit_path && cfg->unit_path[0] ? cfg->unit_path[0] : KEEL_UNIT_PATH_ETC;
	m->config_dir = keel_strdup(cd);
	if (!m->runtime_dir || !m->state_dir || !m->config_dir || (cfg->default_target && !m->default_target)) {
		r = keel_err_set(err, -ENOMEM, "out of memory");
		goto fail;
	}
	if (mkdir(m->runtime_dir, 0755) < 0 && errno != EEXIST) {
		r = keel_err_errno(err, -errno, "creating %s", m->runtime_dir);
		goto fail;
	}
	if (cfg->pid1) {
		/* systemd's first boot: /etc/machine-id missing, empty or "uninitialized" when PID 1
		 * starts (ConditionFirstBoot=, condition.c). */
		char id[64] = "";
		FILE *f = fopen("/etc/machine-id", "re");
		if (f) {
			if (!fgets(id, sizeof(id), f))
				id[0] = '\0';
			fclose(f);
		}
		id[strcspn(id, "\n")] = '\0';
		char flag[4096];
		snprintf(flag, sizeof(flag), "%s/first-boot", m->runtime_dir);
		if (!id[0] || strcmp(id, "uninitialized") == 0) {
			int fd = open(flag, O_WRONLY | O_CREAT | O_CLOEXEC, 0444);
			if (fd >= 0)
				close(fd);
		} else {
			(void)unlink(flag);
		}
	}
	/* The search path: --unit-path directories, then the preset's. */
	{
		static const char *const keel_dirs[] = {KEEL_UNIT_PATH_ETC, KEEL_UNIT_PATH_RUN, KEEL_UNIT_PATH_LIB, NULL};
		static const char *const systemd_dirs[] = {"/etc/systemd/system", "/run/systemd/system",
							   "/lib/systemd/system", "/usr/lib/systemd/system", NULL};
		char **path = NULL;
		r = 0;
		for (size_t i = 0; cfg->unit_path && cfg->unit_path[i] && r == 0; i++)
			r = keel_strv_push(&path, cfg->unit_path[i]);
		const char *const *preset = cfg->preset == KEEL_PATHS_SYSTEMD ? systemd_dirs : keel_dirs;
		for (size_t i = 0; !cfg->no_preset && preset[i] && r == 0; i++)
			r = keel_strv_push(&path, preset[i]);
		if (r == 0 && !path)
			r = keel_strv_push(&path, "/nonexistent-keel-unit-path");
		struct keel_loader_config lc = {.search_path = (const char *const *)path, .preset = cfg->preset,
						.sink = {.fn = diag_to_log, .userdata = m}};
		if (r == 0)
			r = keel_loader_new(&lc, &m->loader);
		keel_strv_free(path);
		if (r < 0) {
			keel_err_errno(err, r, "setting up the unit loader");
			goto fail;
		}
	}
	if ((r = keel_cg_open_v1(cfg->cgroup_root ? cfg->cgroup_root : "keel.slice", cfg->cgroup_v1_only, &m->cg, err)) < 0)
		goto fail;
	if (sink && sink->ops) {
		m->sink = *sink;
		*sink = (struct keel_logsink){0};
	} else {
		struct keel_journal_config jc = {
			.dir = cfg->journal_dir ? cfg->journal_dir : KEEL_JOURNAL_DEFAULT_DIR,
			.max_use = cfg->journal_max_use, .max_file_size = cfg->journal_max_file_size,
			.max_files = cfg->journal_max_files,
		};
		if (!(m->journal_dir = keel_strdup(jc.dir))) {
			r = keel_err_set(err, -ENOMEM, "out of memory");
			goto fail;
		}
		if ((r = keel_journal_sink_new(&jc, &m->sink, err)) < 0)
			goto fail;
		keel_journal_sink_set_batched(&m->sink, true);
	}
	m->inotify_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (m->inotify_fd >= 0) {
		keel_ev_io_init(&m->inotify_io, m->inotify_fd, on_inotify, m);
		if (keel_ev_io_start(ev, &m->inotify_io, EPOLLIN) < 0) {
			close(m->inotify_fd);
			m->inotify_fd = -1;
		}
	}
	if ((r = notify_open(m)) < 0) {
		keel_err_errno(err, r, "creating the notify socket in %s", m->runtime_dir);
		goto fail;
	}
	{
		char path[4096];
		snprintf(path, sizeof(path), "%s/keel-init.sock", m->runtime_dir);
		if ((r = control_open(m, path)) < 0) {
			keel_err_errno(err, r, "creating the control socket %s", path);
			goto fail;
		}
	}
	keel_ev_set_prepare(ev, prepare, m);
	*ret = m;
	return 0;
fail:
	keel_mgr_free(m);
	return r;
}

void keel_mgr_free(struct keel_mgr *m)
{
	if (!m)
		return;
	job_free_all(m);
	control_close(m);
	keel_sandbox_cache_clear();
	notify_close(m);
	/* Units: collect first, the table changes while freeing. */
	size_t it = 0;
	const char *k;
	void *v;
	struct mu **all = NULL;
	size_t n = 0, cap = 0;
	while (keel_hmap_next(&m->units, &it, &k, NULL, &v)) {
		struct mu *mu = v;
		if (strcmp(k, mu->id) != 0)
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 64;
			struct mu **na = keel_reallocarray(all, cap, sizeof(*all));
			if (!na)
				break;
			all = na;
		}
		all[n++] = mu;
	}
	for (size_t i = 0; i < n; i++)
		mu_free(all[i]);
	keel_free(all);
	while (logpipes)
		logpipe_free(logpipes);
	while (reports)
		report_free(reports);
	if (m->ev)
		keel_ev_set_prepare(m->ev, NULL, NULL);
	if (m->inotify_fd >= 0) {
		keel_ev_io_stop(m->ev, &m->inotify_io);
		close(m->inotify_fd);
	}
	keel_hmap_clear(&m->units);
	keel_hmap_clear(&m->pids);
	keel_hmap_clear(&m->wds);
	keel_cg_free(m->cg);
	keel_loader_free(m->loader);
	keel_logsink_free(&m->sink);
	keel_buf_free(&m->scratch);
	keel_free(m->runtime_dir);
	keel_free(m->state_dir);
	keel_free(m->journal_dir);
	keel_free(m->config_dir);
	keel_free(m->default_target);
	keel_free(m);
}

int keel_mgr_boot(struct keel_mgr *m)
{
	const char *name = m->default_target ? m->default_target : "default.target";
	struct mu *mu = mgr_load(m, name);
	if (!mu) {
		keel_logf(KEEL_LOG_ERROR, "Failed to load default target %s", name);
		return -ENOENT;
	}
	keel_logf(KEEL_LOG_INFO, "Starting default target %s", mu->id);
	struct keel_err e;
	int r = job_enqueue(m, mu, JOB_START, true, false, NULL, &e);
	if (r < 0)
		keel_logf(KEEL_LOG_ERROR, "Failed to start default target %s: %s", mu->id, keel_err_msg(&e));
	return r;
}

void keel_mgr_shutdown(struct keel_mgr *m)
{
	if (m->shutting_down)
		return;
	m->shutting_down = true;
	keel_logf(KEEL_LOG_INFO, "Shutting down: stopping all units");
	size_t it = 0;
	const char *k;
	void *v;
	struct mu **all = NULL;
	size_t n = 0, cap = 0;
	while (keel_hmap_next(&m->units, &it, &k, NULL, &v)) {
		struct mu *mu = v;
		if (strcmp(k, mu->id) != 0)
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 64;
			struct mu **na = keel_reallocarray(all, cap, sizeof(*all));
			if (!na)
				break;
			all = na;
		}
		all[n++] = mu;
	}
	/* One stop job per unit that runs; ordering (stop jobs run in reverse After= order) does
	 * the rest. */
	for (size_t i = 0; i < n; i++) {
		struct mu *mu = all[i];
		if (keel_inactive_or_failed(mu->active) && !(mu->job && mu->job->type != JOB_STOP))
			continue;
		struct keel_err e;
		(void)!job_enqueue(m, mu, JOB_STOP, true, false, NULL, &e);
	}
	keel_free(all);
}

bool keel_mgr_done(struct keel_mgr *m)
{
	if (!m->shutting_down)
		return false;
	if (m->n_jobs)
		return false;
	size_t it = 0;
	const char *k;
	void *v;
	while (keel_hmap_next(&m->units, &it, &k, NULL, &v)) {
		struct mu *mu = v;
		if (!keel_inactive_or_failed(mu->active) && !(mu->type == KEEL_UNIT_SERVICE && mu->sub == S_AUTO_RESTART))
			return false;
	}
	return true;
}

int keel_mgr_reload(struct keel_mgr *m)
{
	int r = keel_loader_scan(m->loader);
	if (r < 0)
		return r;
	size_t it = 0;
	const char *k;
	void *v;
	char **names = NULL;
	while (keel_hmap_next(&m->units, &it, &k, NULL, &v)) {
		struct mu *mu = v;
		if (strcmp(k, mu->id) == 0 && !(mu->transient && mu->u->load_state == KEEL_LOAD_LOADED && !mu->u->fragment_path))
			if (keel_strv_push(&names, mu->id) < 0)
				break;
	}
	for (size_t i = 0; names && names[i]; i++) {
		struct mu *mu = mgr_get(m, names[i]);
		if (!mu)
			continue;
		struct keel_unit *u;
		if (keel_loader_load(m->loader, mu->id, &u) < 0)
			continue;
		if (u->load_state == KEEL_LOAD_NOT_FOUND && builtin_target(u->id)) {
			const char *text = builtin_target(u->id);
			struct keel_unit *b;
			if (keel_loader_load_text(m->loader, u->id, NULL, text, strlen(text), &b) == 0) {
				keel_unit_free(u);
				u = b;
			}
		}
		if (u->type != mu->type || strcmp(u->id, mu->id) != 0) {
			keel_unit_free(u);
			continue;
		}
		unregister_names(m, mu);
		keel_unit_free(mu->u);
		mu->u = u;
		(void)register_names(m, mu, NULL);
	}
	/* New dependencies may name units not loaded yet. */
	for (size_t i = 0; names && names[i]; i++) {
		struct mu *mu = mgr_get(m, names[i]);
		for (uint32_t j = 0; mu && j < mu->u->n_deps; j++)
			(void)mgr_load(m, mu->u->deps[j].name);
	}
	keel_strv_free(names);
	mgr_rebuild_edges(m);
	keel_logf(KEEL_LOG_INFO, "Reloaded unit files");
	return 0;
}
