/* StopWhenUnneeded= and Upholds= (systemd.unit(5)), after systemd's stop-when-unneeded and
 * start-when-upheld queues: after state changes, a running StopWhenUnneeded= unit that no
 * active or activating unit requires, wants, binds to or has as requisite (and that no such unit
 * has a job for) is stopped; a unit that is not running and has no job is started while an
 * active unit Upholds= it. Both go through a rate limit (16 in 10 s, systemd's
 * auto_start_stop_ratelimit) so a unit that fails at once is not started over and over. */
#include <string.h>

#include "base/log.h"
#include "init/mgr-internal.h"

#define AUTO_INTERVAL_USEC (10 * KEEL_USEC_PER_SEC)
#define AUTO_BURST 16

static bool ratelimit_ok(struct mu *mu)
{
	uint64_t now = keel_now_mono();
	if (mu->auto_rl_begin == 0 || now - mu->auto_rl_begin > AUTO_INTERVAL_USEC) {
		mu->auto_rl_begin = now;
		mu->auto_rl_count = 0;
	}
	if (mu->auto_rl_count >= AUTO_BURST)
		return false;
	mu->auto_rl_count++;
	return true;
}

/* systemd's unit_is_unneeded(). */
static bool is_unneeded(const struct mu *mu)
{
	if (!mu->u->stop_when_unneeded || mu->job || !keel_active_or_reloading(mu->active))
		return false;
	for (uint32_t i = 0; i < mu->n_edges; i++) {
		struct edge e = mu->edges[i];
		if (e.kind != E_REQUIRED_BY && e.kind != E_REQUISITE_OF && e.kind != E_WANTED_BY && e.kind != E_BOUND_BY)
			continue;
		if (e.other->job || !keel_inactive_or_failed(e.other->active))
			return false;
	}
	return true;
}

/* systemd's unit_is_upheld_by_active(): the active unit that upholds mu, or NULL. */
static struct mu *upheld_by(const struct mu *mu)
{
	if (keel_active_or_activating(mu->active) || mu->job || !unit_is_loaded(mu))
		return NULL;
	for (uint32_t i = 0; i < mu->n_edges; i++) {
		struct edge e = mu->edges[i];
		if (e.kind == E_UPHELD_BY && !e.other->job && keel_active_or_reloading(e.other->active))
			return e.other;
	}
	return NULL;
}

void mgr_upkeep(struct keel_mgr *m)
{
	if (!m->any_upkeep)
		return;
	size_t it = 0;
	const char *k;
	void *v;
	while (keel_hmap_next(&m->units, &it, &k, NULL, &v)) {
		struct mu *mu = v;
		if (strcmp(k, mu->id) != 0)
			continue; /* an alias */
		struct keel_err e;
		if (is_unneeded(mu)) {
			unit_log(mu, 7, "Unit is not needed anymore.");
			if (!ratelimit_ok(mu)) {
				unit_log(mu, 4, "Unit not needed anymore, but not stopping since we tried this too often recently.");
				continue;
			}
			if (job_enqueue(m, mu, JOB_STOP, false, false, NULL, &e) < 0)
				unit_log(mu, 4, "Failed to enqueue stop job, ignoring: %s", keel_err_msg(&e));
			continue;
		}
		struct mu *culprit = upheld_by(mu);
		if (culprit) {
			unit_log(mu, 7, "Unit is started because upheld by active unit %s.", culprit->id);
			if (!ratelimit_ok(mu)) {
				unit_log(mu, 4, "Unit needs to be started because active unit %s upholds it, but not starting since we tried this too often recently.",
					 culprit->id);
				continue;
			}
			if (job_enqueue(m, mu, JOB_START, false, false, NULL, &e) < 0)
				unit_log(mu, 4, "Failed to enqueue start job, ignoring: %s", keel_err_msg(&e));
		}
	}
}
