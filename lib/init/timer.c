/* Timer units (systemd.timer(5)): monotonic timers relative to keel-init's activation of the
 * timer (OnActiveSec=), the kernel's boot (OnBootSec=), keel-init's start (OnStartupSec=), and
 * the triggered unit's last activation or deactivation (OnUnitActiveSec=/OnUnitInactiveSec=),
 * and calendar timers (OnCalendar=, lib/init/calendar.c). The next elapse is the earliest of
 * them plus RandomizedDelaySec=; keel-init fires at that time (AccuracySec= allows systemd to
 * fire up to that much later to coalesce wake-ups; keel-init does not need to and fires on
 * time). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/mem.h"
#include "init/mgr-internal.h"

enum { T_DEAD, T_WAITING, T_RUNNING, T_ELAPSED, T_FAILED };

static const char *tmr_sub_name(int sub)
{
	static const char *const n[] = {"dead", "waiting", "running", "elapsed", "failed"};
	return (unsigned)sub < KEEL_ARRAY_SIZE(n) ? n[sub] : "?";
}

static struct keel_timer *T(struct mu *mu) { return keel_unit_timer(mu->u); }

static struct mu *target_unit(struct mu *mu)
{
	for (uint32_t i = 0; i < mu->n_edges; i++)
		if (mu->edges[i].kind == E_TRIGGERS)
			return mu->edges[i].other;
	return NULL;
}

static uint64_t random_delay(uint64_t max)
{
	if (!max || max == KEEL_USEC_INFINITY)
		return 0;
	uint64_t r = 0;
	if (getrandom(&r, sizeof(r), GRND_NONBLOCK) != sizeof(r))
		r = (uint64_t)random();
	return r % max;
}

static void on_elapse(struct keel_ev_timer *t);

/* Compute and arm the next elapse; false when nothing is left to wait for. */
static bool arm_next(struct mu *mu)
{
	struct tmr_rt *r = &mu->rt.tmr;
	struct keel_timer *t = T(mu);
	struct mu *target = target_unit(mu);
	uint64_t now_mono = keel_now_mono(), now_real = keel_now_real();
	uint64_t best = KEEL_USEC_INFINITY;
	r->next_real = 0;
	for (uint16_t i = 0; i < t->n_values; i++) {
		const struct keel_timer_value *v = &t->values[i];
		uint64_t base;
		switch (v->base) {
		case KEEL_TIMER_ACTIVE: base = r->activated_mono; break;
		case KEEL_TIMER_BOOT: base = 0; break;
		case KEEL_TIMER_STARTUP: base = mu->m->startup_mono; break;
		case KEEL_TIMER_UNIT_ACTIVE:
			if (!target || !target->active_enter_mono)
				continue;
			base = target->active_enter_mono;
			break;
		case KEEL_TIMER_UNIT_INACTIVE:
			if (!target || !target->inactive_enter_mono)
				continue;
			base = target->inactive_enter_mono;
			break;
		case KEEL_TIMER_CALENDAR: {
			uint64_t next;
			/* after the last trigger, so one elapse fires once; Persistent=: from the last
			 * trigger even before this start (the stamp), so a missed elapse fires now */
			uint64_t from = r->last_trigger_real > now_real ? r->last_trigger_real : now_real;
			if (t->persistent && r->last_trigger_real)
				from = r->last_trigger_real;
			if (keel_calendar_next(v->calendar, from, &next) < 0)
				continue;
			uint64_t mono = next <= now_real ? now_mono : now_mono + (next - now_real);
			if (mono < best) {
				best = mono;
				r->next_real = next;
			}
			continue;
		}
		default:
			continue;
		}
		uint64_t when = base + v->usec;
		/* A monotonic value fires once per base: skip one that already fired. */
		if (r->last_trigger_mono && when <= r->last_trigger_mono)
			continue;
		if (when < best) {
			best = when;
			r->next_real = 0;
		}
	}
	if (best == KEEL_USEC_INFINITY) {
		keel_ev_timer_stop(mu->m->ev, &r->timer);
		r->next_mono = KEEL_USEC_INFINITY;
		return false;
	}
	best += random_delay(t->randomized_delay_usec);
	r->next_mono = best;
	(void)!keel_ev_timer_start(mu->m->ev, &r->timer, best < now_mono ? now_mono : best);
	return true;
}

/* Persistent=: <state_dir>/timers/stamp-NAME, its mtime the last trigger (systemd keeps the
 * same in /var/lib/systemd/timers). */
static int stamp_path(struct mu *mu, char *buf, size_t size)
{
	int n = snprintf(buf, size, "%s/timers/stamp-%s", mu->m->state_dir, mu->id);
	return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

static int stamp_touch(struct mu *mu, uint64_t realtime)
{
	char path[4096], dir[4096];
	if (stamp_path(mu, path, sizeof(path)) < 0)
		return -ENAMETOOLONG;
	snprintf(dir, sizeof(dir), "%s", mu->m->state_dir);
	if (mkdir(dir, 0755) < 0 && errno != EEXIST)
		return -errno;
	snprintf(dir, sizeof(dir), "%s/timers", mu->m->state_dir);
	if (mkdir(dir, 0755) < 0 && errno != EEXIST)
		return -errno;
	int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOCTTY, 0644);
	if (fd < 0)
		return -errno;
	struct timespec ts[2];
	ts[0].tv_sec = (time_t)(realtime / KEEL_USEC_PER_SEC);
	ts[0].tv_nsec = (long)(realtime % KEEL_USEC_PER_SEC) * 1000;
	ts[1] = ts[0];
	int r = futimens(fd, realtime ? ts : NULL) < 0 ? -errno : 0;
	close(fd);
	return r;
}

/* At start: the last trigger from the stamp, or a new stamp (now) when there is none. */
static void stamp_load(struct mu *mu)
{
	char path[4096];
	struct stat st;
	if (stamp_path(mu, path, sizeof(path)) < 0)
		return;
	if (stat(path, &st) == 0) {
		uint64_t ft = (uint64_t)st.st_mtim.tv_sec * KEEL_USEC_PER_SEC + (uint64_t)st.st_mtim.tv_nsec / 1000;
		if (ft < keel_now_real())
			mu->rt.tmr.last_trigger_real = ft;
		else
			unit_log(mu, 4, "Not using persistent file timestamp %s as it is in the future.", path);
		return;
	}
	int r = errno == ENOENT ? stamp_touch(mu, 0) : -errno;
	if (r < 0)
		unit_log(mu, 4, "Failed to create timestamp file %s, ignoring: %s", path, strerror(-r));
}

static void enter_waiting(struct mu *mu)
{
	if (arm_next(mu)) {
		unit_set_state(mu, KEEL_ACTIVE, T_WAITING);
		return;
	}
	if (T(mu)->remain_after_elapse) {
		unit_set_state(mu, KEEL_ACTIVE, T_ELAPSED);
	} else {
		unit_set_state(mu, KEEL_INACTIVE, T_DEAD);
	}
}

static void on_elapse(struct keel_ev_timer *t)
{
	struct mu *mu = t->data;
	struct tmr_rt *r = &mu->rt.tmr;
	r->last_trigger_mono = keel_now_mono();
	r->last_trigger_real = keel_now_real();
	if (T(mu)->persistent) {
		int sr = stamp_touch(mu, r->last_trigger_real);
		if (sr < 0)
			unit_log(mu, 4, "Failed to update timestamp file, ignoring: %s", strerror(-sr));
	}
	struct mu *target = target_unit(mu);
	if (!target) {
		enter_waiting(mu);
		return;
	}
	unit_log(mu, 7, "Timer elapsed, starting %s.", target->id);
	if (target->type == KEEL_UNIT_SERVICE)
		svc_set_trigger(target, mu->id, r->last_trigger_real, r->last_trigger_mono);
	struct keel_err e;
	if (job_enqueue(mu->m, target, JOB_START, true, false, NULL, &e) < 0) {
		unit_log(mu, 4, "Failed to queue unit startup job: %s", keel_err_msg(&e));
		r->result = R_RESOURCES;
		keel_ev_timer_stop(mu->m->ev, &r->timer);
		unit_set_state(mu, KEEL_FAILED, T_FAILED);
		return;
	}
	unit_set_state(mu, KEEL_ACTIVE, T_RUNNING);
	/* When the unit finishes (or if it was already running), the next elapse is computed. */
	if (!target->job && !keel_active_or_activating(target->active))
		enter_waiting(mu);
}

static int tmr_start(struct mu *mu)
{
	struct tmr_rt *r = &mu->rt.tmr;
	struct mu *target = target_unit(mu);
	if (!target || !unit_is_loaded(target)) {
		unit_log(mu, 3, "Refusing to start, unit %s to trigger not loaded.", target ? target->id : "(none)");
		r->result = R_RESOURCES;
		unit_set_state(mu, KEEL_FAILED, T_FAILED);
		return -ENOENT;
	}
	if (!unit_start_limit_ok(mu)) {
		unit_log(mu, 3, "Start request repeated too quickly.");
		r->result = R_START_LIMIT_HIT;
		unit_set_state(mu, KEEL_FAILED, T_FAILED);
		return -ECANCELED;
	}
	r->result = R_SUCCESS;
	r->activated_mono = keel_now_mono();
	r->last_trigger_mono = 0;
	if (T(mu)->wake_system)
		unit_log(mu, 4, "WakeSystem= is not supported by keel-init (a supervisor does not program the machine's wake-up alarm), ignoring.");
	if (T(mu)->persistent)
		stamp_load(mu);
	enter_waiting(mu);
	return 0;
}

static int tmr_stop(struct mu *mu)
{
	keel_ev_timer_stop(mu->m->ev, &mu->rt.tmr.timer);
	mu->rt.tmr.next_mono = KEEL_USEC_INFINITY;
	unit_set_state(mu, KEEL_INACTIVE, T_DEAD);
	return 0;
}

static void tmr_trigger_notify(struct mu *mu, struct mu *other)
{
	if (mu->sub != T_RUNNING && mu->sub != T_WAITING && mu->sub != T_ELAPSED)
		return;
	/* The unit went back to inactive (or became active, for OnUnitActiveSec=): re-arm. */
	if (keel_inactive_or_failed(other->active) || keel_active_or_reloading(other->active)) {
		if (mu->sub == T_RUNNING && keel_active_or_reloading(other->active))
			return;
		enter_waiting(mu);
	}
}

static void tmr_init(struct mu *mu)
{
	keel_ev_timer_init(&mu->rt.tmr.timer, on_elapse, mu);
	mu->rt.tmr.next_mono = KEEL_USEC_INFINITY;
}

static void tmr_done(struct mu *mu) { keel_ev_timer_stop(mu->m->ev, &mu->rt.tmr.timer); }
static void tmr_reset_failed(struct mu *mu)
{
	if (mu->sub == T_FAILED) {
		mu->rt.tmr.result = R_SUCCESS;
		unit_set_state(mu, KEEL_INACTIVE, T_DEAD);
	}
}
static bool tmr_may_gc(struct mu *mu) { (void)mu; return true; }

const struct unit_vtable tmr_vtable = {
	.start = tmr_start, .stop = tmr_stop, .sub_name = tmr_sub_name, .init = tmr_init,
	.done = tmr_done, .reset_failed = tmr_reset_failed, .trigger_notify = tmr_trigger_notify,
	.may_gc = tmr_may_gc,
};
