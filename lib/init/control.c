/* The control socket: JSON lines over a unix stream socket (docs/init.md "Control API").
 * Each request is one object {"id":N,"method":"...",...}; each answer one object with the same
 * id and "ok". Jobs answer when they finish unless "no_block" is set; "subscribe" turns the
 * connection into a stream of unit and job events as well. */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "base/jw.h"
#include "base/log.h"
#include "base/mem.h"
#include "base/str.h"
#include "init/mgr-internal.h"
#include "init/values.h"

#define OUT_MAX (8u << 20)

struct client {
	struct keel_ev_io io;
	struct keel_mgr *m;
	struct keel_buf in, out;
	struct client *next;
	unsigned pending;  /* job waits in flight */
	bool subscribed;
	bool closed;
};

struct control_server {
	int fd;
	struct keel_ev_io io;
	char *path;
	struct client *clients;
};

static void client_free(struct client *c)
{
	struct control_server *s = c->m->ctl;
	for (struct client **pp = &s->clients; *pp; pp = &(*pp)->next)
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	keel_buf_free(&c->in);
	keel_buf_free(&c->out);
	keel_free(c);
}

static void client_close(struct client *c)
{
	if (c->closed)
		return;
	c->closed = true;
	keel_ev_io_stop(c->m->ev, &c->io);
	close(c->io.fd);
	c->io.fd = -1;
	if (!c->pending)
		client_free(c);
}

static void client_flush(struct client *c)
{
	while (c->out.len) {
		ssize_t n = send(c->io.fd, c->out.data, c->out.len, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				break;
			client_close(c);
			return;
		}
		keel_buf_consume(&c->out, (size_t)n);
	}
	(void)!keel_ev_io_start(c->m->ev, &c->io, EPOLLIN | (c->out.len ? EPOLLOUT : 0));
}

static void client_send(struct client *c, struct keel_buf *b)
{
	if (c->closed)
		return;
	/* What keel-init logged before this answer (a job's "Finished ...", "... being skipped")
	 * is readable once the client has the answer: `keelctl start X && keelctl journal -u X`
	 * must not race the batch that the loop would only write before it sleeps. */
	keel_logsink_flush(&c->m->sink);
	if (c->out.len + b->len > OUT_MAX) {
		keel_logf(KEEL_LOG_WARN, "control client too slow, disconnecting");
		client_close(c);
		return;
	}
	if (keel_buf_append(&c->out, b->data, b->len) < 0 || keel_buf_putc(&c->out, '\n') < 0) {
		client_close(c);
		return;
	}
	client_flush(c);
}

/* ---- answers ---- */

static void reply_err(struct client *c, json_int_t id, const char *code, const char *msg)
{
	struct keel_buf b = KEEL_BUF_INIT;
	struct keel_jw w;
	keel_jw_init(&w, &b, 0);
	keel_jw_obj_begin(&w);
	keel_jw_ki64(&w, "id", id);
	keel_jw_kbool(&w, "ok", false);
	keel_jw_kstr(&w, "code", code);
	keel_jw_kstr(&w, "error", msg);
	keel_jw_obj_end(&w);
	if (keel_jw_finish(&w) == 0)
		client_send(c, &b);
	keel_buf_free(&b);
}

static void begin_ok(struct keel_jw *w, struct keel_buf *b, json_int_t id)
{
	keel_jw_init(w, b, 0);
	keel_jw_obj_begin(w);
	keel_jw_ki64(w, "id", id);
	keel_jw_kbool(w, "ok", true);
}

static void end_send(struct client *c, struct keel_jw *w, struct keel_buf *b)
{
	keel_jw_obj_end(w);
	if (keel_jw_finish(w) == 0)
		client_send(c, b);
	keel_buf_free(b);
}

static void reply_ok(struct client *c, json_int_t id)
{
	struct keel_buf b = KEEL_BUF_INIT;
	struct keel_jw w;
	begin_ok(&w, &b, id);
	end_send(c, &w, &b);
}

/* ---- unit properties (systemctl show names) ---- */

static void fmt_ts(uint64_t usec, char *out, size_t size)
{
	if (!usec) {
		out[0] = '\0';
		return;
	}
	time_t t = (time_t)(usec / KEEL_USEC_PER_SEC);
	struct tm tm;
	localtime_r(&t, &tm);
	strftime(out, size, "%a %Y-%m-%d %H:%M:%S %Z", &tm);
}

static void prop(struct keel_jw *w, const char *k, const char *v) { keel_jw_kstr(w, k, v ? v : ""); }
static void prop_u(struct keel_jw *w, const char *k, uint64_t v)
{
	char b[32];
	snprintf(b, sizeof(b), "%llu", (unsigned long long)v);
	keel_jw_kstr(w, k, b);
}
static void prop_ts(struct keel_jw *w, const char *k, uint64_t v)
{
	char b[96];
	fmt_ts(v, b, sizeof(b));
	keel_jw_kstr(w, k, b);
	char mk[64];
	snprintf(mk, sizeof(mk), "%sUSec", k);
	prop_u(w, mk, v);
}
static void prop_span(struct keel_jw *w, const char *k, uint64_t v)
{
	char b[64];
	keel_jw_kstr(w, k, keel_format_timespan(b, sizeof(b), v, 1));
}
static void prop_edges(struct keel_jw *w, struct mu *mu, const char *k, int kind)
{
	struct keel_buf b = KEEL_BUF_INIT;
	for (uint32_t i = 0; i < mu->n_edges; i++) {
		if (mu->edges[i].kind != kind)
			continue;
		if (b.len)
			(void)!keel_buf_putc(&b, ' ');
		(void)!keel_buf_puts(&b, mu->edges[i].other->id);
	}
	keel_jw_kstr(w, k, b.data ? b.data : "");
	keel_buf_free(&b);
}

static const char *unit_file_state(struct keel_mgr *m, struct mu *mu)
{
	if (mu->u->load_state == KEEL_LOAD_MASKED)
		return "masked";
	if (mu->transient)
		return "transient";
	if (!unit_is_loaded(mu) || !mu->u->fragment_path)
		return mu->u->load_state == KEEL_LOAD_LOADED ? "static" : "";
	const struct keel_install *in = mu->u->install;
	if (!in || (!in->wanted_by && !in->required_by && !in->alias && !in->also))
		return "static";
	struct keel_install_plan p;
	if (keel_install_plan_enable(m->loader, mu->id, m->config_dir, &p) < 0)
		return "disabled";
	bool enabled = p.n == 0;
	keel_install_plan_free(&p);
	return enabled ? "enabled" : "disabled";
}

static void write_processes(struct keel_jw *w, struct mu *mu)
{
	keel_jw_key(w, "processes");
	keel_jw_arr_begin(w);
	pid_t *pids = NULL;
	size_t n = 0;
	if (mu->cgroup_made && keel_cg_pids(mu->m->cg, mu->id, &pids, &n) == 0) {
		for (size_t i = 0; i < n; i++) {
			char path[64], cmd[1024];
			snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pids[i]);
			int fd = open(path, O_RDONLY | O_CLOEXEC);
			ssize_t len = fd >= 0 ? read(fd, cmd, sizeof(cmd) - 1) : -1;
			if (fd >= 0)
				close(fd);
			if (len < 0)
				len = 0;
			for (ssize_t k = 0; k < len; k++)
				if (cmd[k] == '\0')
					cmd[k] = ' ';
			while (len > 0 && cmd[len - 1] == ' ')
				len--;
			cmd[len] = '\0';
			keel_jw_obj_begin(w);
			keel_jw_ki64(w, "pid", pids[i]);
			keel_jw_kstr(w, "cmdline", cmd);
			keel_jw_obj_end(w);
		}
	}
	keel_free(pids);
	keel_jw_arr_end(w);
}

static void write_unit_props(struct keel_jw *w, struct keel_mgr *m, struct mu *mu)
{
	const struct keel_unit *u = mu->u;
	keel_jw_key(w, "props");
	keel_jw_obj_begin(w);
	prop(w, "Id", mu->id);
	{
		struct keel_buf b = KEEL_BUF_INIT;
		(void)!keel_buf_puts(&b, mu->id);
		for (size_t i = 0; u->aliases && u->aliases[i]; i++) {
			(void)!keel_buf_putc(&b, ' ');
			(void)!keel_buf_puts(&b, u->aliases[i]);
		}
		prop(w, "Names", b.data);
		keel_buf_free(&b);
	}
	prop(w, "Description", unit_description(mu));
	prop(w, "LoadState", keel_load_state_to_string(u->load_state));
	prop(w, "ActiveState", keel_active_to_string(mu->active));
	prop(w, "SubState", unit_sub_state(mu));
	prop(w, "FragmentPath", u->fragment_path);
	{
		struct keel_buf b = KEEL_BUF_INIT;
		for (size_t i = 0; u->dropin_paths && u->dropin_paths[i]; i++) {
			if (b.len)
				(void)!keel_buf_putc(&b, ' ');
			(void)!keel_buf_puts(&b, u->dropin_paths[i]);
		}
		prop(w, "DropInPaths", b.data);
		keel_buf_free(&b);
	}
	prop(w, "UnitFileState", unit_file_state(m, mu));
	if (u->load_error)
		prop(w, "LoadError", keel_strerror(u->load_error));
	prop_ts(w, "StateChangeTimestamp", mu->state_change_real);
	prop_ts(w, "ActiveEnterTimestamp", mu->active_enter_real);
	prop_ts(w, "ActiveExitTimestamp", mu->active_exit_real);
	prop_ts(w, "InactiveEnterTimestamp", mu->inactive_enter_real);
	prop_ts(w, "InactiveExitTimestamp", mu->inactive_exit_real);
	prop(w, "ConditionResult", mu->cond_real ? (mu->cond_result ? "yes" : "no") : "no");
	prop(w, "AssertResult", mu->cond_real ? (mu->assert_result ? "yes" : "no") : "no");
	prop_ts(w, "ConditionTimestamp", mu->cond_real);
	prop_u(w, "Job", mu->job ? mu->job->id : 0);
	if (mu->job)
		prop(w, "JobType", keel_job_type_to_string(mu->job->type));
	static const struct {
		const char *name;
		int kind;
	} deps[] = {
		{"Requires", E_REQUIRES}, {"Requisite", E_REQUISITE}, {"Wants", E_WANTS}, {"BindsTo", E_BINDS_TO},
		{"PartOf", E_PART_OF}, {"Conflicts", E_CONFLICTS}, {"RequiredBy", E_REQUIRED_BY},
		{"RequisiteOf", E_REQUISITE_OF}, {"WantedBy", E_WANTED_BY}, {"BoundBy", E_BOUND_BY},
		{"ConsistsOf", E_CONSISTS_OF}, {"ConflictedBy", E_CONFLICTED_BY}, {"Before", E_BEFORE},
		{"After", E_AFTER}, {"OnFailure", E_ON_FAILURE}, {"Triggers", E_TRIGGERS}, {"TriggeredBy", E_TRIGGERED_BY},
		{"Upholds", E_UPHOLDS}, {"UpheldBy", E_UPHELD_BY},
	};
	for (size_t i = 0; i < KEEL_ARRAY_SIZE(deps); i++)
		prop_edges(w, mu, deps[i].name, deps[i].kind);
	prop(w, "RefuseManualStart", u->refuse_manual_start ? "yes" : "no");
	prop(w, "RefuseManualStop", u->refuse_manual_stop ? "yes" : "no");
	prop(w, "StopWhenUnneeded", u->stop_when_unneeded ? "yes" : "no");
	prop(w, "AllowIsolate", u->allow_isolate ? "yes" : "no");
	prop(w, "IgnoreOnIsolate", u->ignore_on_isolate ? "yes" : "no");
	prop_span(w, "JobTimeoutUSec", u->job_timeout_usec);
	prop_span(w, "JobRunningTimeoutUSec", u->job_running_timeout_usec);
	prop(w, "JobTimeoutAction", keel_emergency_action_to_string(u->job_timeout_action));
	prop_span(w, "StartLimitIntervalUSec", u->start_limit_interval_usec);
	prop_u(w, "StartLimitBurst", u->start_limit_burst);
	if (mu->cgroup_made) {
		char cgp[512];
		snprintf(cgp, sizeof(cgp), "/%s/%s", m->cg->root, mu->id);
		prop(w, "ControlGroup", cgp);
		char v[64];
		if (keel_cg_read_attr(m->cg, mu->id, KEEL_CGC_PIDS, "pids.current", "pids.current", v, sizeof(v)) == 0)
			prop(w, "TasksCurrent", v);
		if (keel_cg_read_attr(m->cg, mu->id, KEEL_CGC_MEMORY, "memory.usage_in_bytes", "memory.current", v, sizeof(v)) == 0)
			prop(w, "MemoryCurrent", v);
	} else {
		prop(w, "ControlGroup", "");
	}
	const struct keel_service *sv = keel_unit_service_c(u);
	if (sv) {
		const struct svc_rt *s = &mu->rt.svc;
		prop(w, "Type", keel_service_type_to_string(sv->type));
		prop(w, "Restart", keel_restart_to_string(sv->restart));
		prop(w, "Result", keel_svc_result_to_string(s->result));
		prop(w, "ReloadResult", keel_svc_result_to_string(s->reload_result));
		prop_u(w, "MainPID", (uint64_t)(s->main_pid > 0 ? s->main_pid : 0));
		prop_u(w, "ControlPID", (uint64_t)(s->control_pid > 0 ? s->control_pid : 0));
		prop_u(w, "ExecMainPID", (uint64_t)(s->main_pid > 0 ? s->main_pid : s->main_exit_pid));
		prop_u(w, "ExecMainCode", (uint64_t)s->main_code);
		prop_u(w, "ExecMainStatus", (uint64_t)s->main_status);
		prop_ts(w, "ExecMainStartTimestamp", s->main_start_real);
		prop_ts(w, "ExecMainExitTimestamp", s->main_exit_real);
		prop_u(w, "NRestarts", s->n_restarts);
		prop(w, "StatusText", s->status_text);
		prop(w, "PIDFile", sv->pid_file);
		prop(w, "RemainAfterExit", sv->remain_after_exit ? "yes" : "no");
		prop(w, "KillMode", keel_kill_mode_to_string(sv->kill.kill_mode));
		char sb[32];
		prop(w, "KillSignal", keel_signal_to_string(sv->kill.kill_signal, sb, sizeof(sb)));
		prop(w, "SendSIGKILL", sv->kill.send_sigkill ? "yes" : "no");
		prop_span(w, "TimeoutStartUSec", sv->timeout_start_usec);
		prop_span(w, "TimeoutStopUSec", sv->timeout_stop_usec);
		prop_span(w, "RestartUSec", sv->restart_usec);
		prop_span(w, "WatchdogUSec", sv->watchdog_usec);
		prop(w, "NotifyAccess", keel_notify_access_to_string(sv->notify_access_set ? sv->notify_access
								      : sv->type == KEEL_SERVICE_NOTIFY ? KEEL_NOTIFY_MAIN : KEEL_NOTIFY_NONE));
		struct keel_buf b = KEEL_BUF_INIT;
		for (const struct keel_exec_cmd *c = sv->exec[KEEL_EXEC_START]; c; c = c->next) {
			if (b.len)
				(void)!keel_buf_puts(&b, " ; ");
			(void)!keel_buf_printf(&b, "{ path=%s ; argv[]=", c->path);
			for (uint32_t i = 0; i < c->argc; i++)
				(void)!keel_buf_printf(&b, "%s%s", i ? " " : "", c->argv[i]);
			(void)!keel_buf_puts(&b, " }");
		}
		prop(w, "ExecStart", b.data);
		keel_buf_free(&b);
	}
	const struct keel_socket *so = keel_unit_socket_c(u);
	if (so) {
		struct keel_buf b = KEEL_BUF_INIT;
		for (uint16_t i = 0; i < so->n_listen; i++) {
			char a[300];
			keel_sockaddr_format(&so->listen[i].addr, so->listen[i].path, a, sizeof(a));
			(void)!keel_buf_printf(&b, "%s%s (%s)", b.len ? " " : "", a, keel_listen_kind_to_string(so->listen[i].kind));
		}
		prop(w, "Listen", b.data);
		keel_buf_free(&b);
		prop(w, "Accept", so->accept ? "yes" : "no");
		prop_u(w, "NAccepted", mu->rt.sock.n_accepted);
		prop_u(w, "NConnections", mu->rt.sock.n_connections);
		prop(w, "Result", keel_svc_result_to_string(mu->rt.sock.result));
	}
	const struct keel_timer *t = keel_unit_timer_c(u);
	if (t) {
		const struct tmr_rt *r = &mu->rt.tmr;
		uint64_t next_real = 0;
		if (r->next_mono != KEEL_USEC_INFINITY) {
			uint64_t nm = keel_now_mono(), nr = keel_now_real();
			next_real = r->next_real ? r->next_real : nr + (r->next_mono > nm ? r->next_mono - nm : 0);
		}
		prop_ts(w, "NextElapseUSecRealtime", next_real);
		prop_ts(w, "LastTriggerUSec", r->last_trigger_real);
		prop(w, "Result", keel_svc_result_to_string(r->result));
		prop_span(w, "AccuracyUSec", t->accuracy_usec);
		prop_span(w, "RandomizedDelayUSec", t->randomized_delay_usec);
		prop(w, "Persistent", t->persistent ? "yes" : "no");
		prop(w, "WakeSystem", t->wake_system ? "yes" : "no");
	}
	keel_jw_obj_end(w);
	write_processes(w, mu);
}

static void write_unit_row(struct keel_jw *w, struct mu *mu)
{
	keel_jw_obj_begin(w);
	keel_jw_kstr(w, "unit", mu->id);
	keel_jw_kstr(w, "load", keel_load_state_to_string(mu->u->load_state));
	keel_jw_kstr(w, "active", keel_active_to_string(mu->active));
	keel_jw_kstr(w, "sub", unit_sub_state(mu));
	keel_jw_kstr(w, "description", unit_description(mu));
	if (mu->job) {
		keel_jw_ku64(w, "job", mu->job->id);
		keel_jw_kstr(w, "job_type", keel_job_type_to_string(mu->job->type));
	}
	keel_jw_obj_end(w);
}

/* ---- events ---- */

static void broadcast(struct keel_mgr *m, struct keel_buf *b)
{
	if (!m->ctl)
		return;
	for (struct client *c = m->ctl->clients, *next; c; c = next) {
		next = c->next;
		if (c->subscribed && !c->closed)
			client_send(c, b);
	}
}

static bool any_subscriber(struct keel_mgr *m)
{
	if (!m->ctl)
		return false;
	for (struct client *c = m->ctl->clients; c; c = c->next)
		if (c->subscribed && !c->closed)
			return true;
	return false;
}

void mgr_emit_unit_event(struct keel_mgr *m, struct mu *mu)
{
	if (!any_subscriber(m))
		return;
	struct keel_buf b = KEEL_BUF_INIT;
	struct keel_jw w;
	keel_jw_init(&w, &b, 0);
	keel_jw_obj_begin(&w);
	keel_jw_kstr(&w, "event", "unit");
	keel_jw_kstr(&w, "unit", mu->id);
	keel_jw_kstr(&w, "load", keel_load_state_to_string(mu->u->load_state));
	keel_jw_kstr(&w, "active", keel_active_to_string(mu->active));
	keel_jw_kstr(&w, "sub", unit_sub_state(mu));
	keel_jw_ku64(&w, "time_usec", keel_now_real());
	keel_jw_obj_end(&w);
	if (keel_jw_finish(&w) == 0)
		broadcast(m, &b);
	keel_buf_free(&b);
}

void mgr_emit_job_event(struct keel_mgr *m, struct mu *mu, struct job *j, int result)
{
	if (!any_subscriber(m))
		return;
	struct keel_buf b = KEEL_BUF_INIT;
	struct keel_jw w;
	keel_jw_init(&w, &b, 0);
	keel_jw_obj_begin(&w);
	keel_jw_kstr(&w, "event", result < 0 ? "job-new" : "job-removed");
	keel_jw_kstr(&w, "unit", mu->id);
	keel_jw_ku64(&w, "job", j->id);
	keel_jw_kstr(&w, "type", keel_job_type_to_string(j->type));
	if (result >= 0)
		keel_jw_kstr(&w, "result", keel_job_result_to_string(result));
	keel_jw_obj_end(&w);
	if (keel_jw_finish(&w) == 0)
		broadcast(m, &b);
	keel_buf_free(&b);
}

/* ---- requests ---- */

struct wait_ctx {
	struct client *c;
	json_int_t id;
};

static const char *job_failure_hint(struct mu *mu, int result)
{
	if (result == JR_DEPENDENCY)
		return "dependency";
	if (result == JR_CANCELED)
		return "canceled";
	if (result == JR_TIMEOUT)
		return "timeout";
	if (mu->type == KEEL_UNIT_SERVICE) {
		switch (mu->rt.svc.result) {
		case R_EXIT_CODE: return "exit-code";
		case R_SIGNAL: return "signal";
		case R_CORE_DUMP: return "core-dump";
		case R_TIMEOUT: return "timeout";
		case R_START_LIMIT_HIT: return "start-limit-hit";
		case R_RESOURCES: return "resources";
		case R_PROTOCOL: return "protocol";
		case R_WATCHDOG: return "watchdog";
		}
	}
	return "failed";
}

static void job_done(void *ud, struct mu *mu, struct job *j, int result)
{
	struct wait_ctx *w = ud;
	struct client *c = w->c;
	c->pending--;
	if (!c->closed) {
		struct keel_buf b = KEEL_BUF_INIT;
		struct keel_jw jw;
		keel_jw_init(&jw, &b, 0);
		keel_jw_obj_begin(&jw);
		keel_jw_ki64(&jw, "id", w->id);
		keel_jw_kbool(&jw, "ok", result == JR_DONE);
		keel_jw_ku64(&jw, "job", j->id);
		keel_jw_kstr(&jw, "unit", mu->id);
		keel_jw_kstr(&jw, "result", keel_job_result_to_string(result));
		if (result != JR_DONE) {
			keel_jw_kstr(&jw, "code", "job-failed");
			keel_jw_kstr(&jw, "reason", job_failure_hint(mu, result));
			char msg[512];
			snprintf(msg, sizeof(msg), "Job for %s %s.", mu->id,
				 result == JR_DEPENDENCY ? "failed because a dependency failed"
				 : result == JR_CANCELED ? "canceled"
				 : result == JR_TIMEOUT ? "failed because a timeout was exceeded"
				 : result == JR_ASSERT ? "failed because an assertion failed"
				 : "failed");
			keel_jw_kstr(&jw, "error", msg);
		}
		keel_jw_obj_end(&jw);
		if (keel_jw_finish(&jw) == 0)
			client_send(c, &b);
		keel_buf_free(&b);
	} else if (!c->pending) {
		client_free(c);
	}
	keel_free(w);
}

static struct mu *need_unit(struct client *c, json_int_t id, json_t *req, bool load)
{
	const char *name = json_string_value(json_object_get(req, "unit"));
	if (!name) {
		reply_err(c, id, "invalid", "missing \"unit\"");
		return NULL;
	}
	char fixed[KEEL_UNIT_NAME_MAX + 16];
	/* systemctl appends ".service" to a name without a type */
	if (keel_unit_name_type(name) == KEEL_UNIT_TYPE_INVALID && !strchr(name, '.') && strlen(name) < KEEL_UNIT_NAME_MAX) {
		snprintf(fixed, sizeof(fixed), "%s.service", name);
		name = fixed;
	}
	if (!keel_unit_name_is_valid(name, KEEL_NAME_PLAIN | KEEL_NAME_INSTANCE) ||
	    !keel_unit_type_supported(keel_unit_name_type(name))) {
		char msg[400];
		snprintf(msg, sizeof(msg), "Unit name %s is not valid.", name);
		reply_err(c, id, "invalid", msg);
		return NULL;
	}
	struct mu *mu = load ? mgr_load(c->m, name) : mgr_get(c->m, name);
	if (!mu) {
		char msg[400];
		snprintf(msg, sizeof(msg), "Unit %s not loaded.", name);
		reply_err(c, id, load ? "internal" : "not-loaded", msg);
	}
	return mu;
}

static void do_job(struct client *c, json_int_t id, json_t *req, const char *method)
{
	struct mu *mu = need_unit(c, id, req, true);
	if (!mu)
		return;
	int type;
	bool isolate = strcmp(method, "isolate") == 0;
	if (strcmp(method, "start") == 0 || isolate)
		type = JOB_START;
	else if (strcmp(method, "stop") == 0)
		type = JOB_STOP;
	else if (strcmp(method, "restart") == 0)
		type = JOB_RESTART;
	else if (strcmp(method, "try-restart") == 0)
		type = JOB_TRY_RESTART;
	else if (strcmp(method, "reload") == 0)
		type = JOB_RELOAD;
	else /* reload-or-restart */
		type = unit_can_reload(mu) && keel_active_or_reloading(mu->active) ? JOB_RELOAD : JOB_RESTART;
	if (type != JOB_STOP && mu->u->load_state == KEEL_LOAD_NOT_FOUND) {
		char msg[400];
		snprintf(msg, sizeof(msg), "Unit %s not found.", mu->id);
		reply_err(c, id, "not-found", msg);
		return;
	}
	const char *mode = json_string_value(json_object_get(req, "mode"));
	bool replace = !mode || strcmp(mode, "fail") != 0;
	struct job *j;
	struct keel_err e;
	int r = isolate ? job_enqueue_isolate(c->m, mu, true, &j, &e) : job_enqueue(c->m, mu, type, replace, true, &j, &e);
	if (r < 0) {
		reply_err(c, id, r == -ENOENT ? "not-found" : r == -ESHUTDOWN && mu->u->load_state == KEEL_LOAD_MASKED ? "masked" : "refused",
			  keel_err_msg(&e));
		return;
	}
	if (!j || json_is_true(json_object_get(req, "no_block"))) {
		struct keel_buf b = KEEL_BUF_INIT;
		struct keel_jw w;
		begin_ok(&w, &b, id);
		keel_jw_ku64(&w, "job", j ? j->id : 0);
		keel_jw_kstr(&w, "unit", mu->id);
		if (!j)
			keel_jw_kstr(&w, "result", "done");
		end_send(c, &w, &b);
		return;
	}
	struct wait_ctx *wc = keel_calloc(1, sizeof(*wc));
	struct job_waiter *jw = keel_calloc(1, sizeof(*jw));
	if (!wc || !jw) {
		keel_free(wc);
		keel_free(jw);
		reply_err(c, id, "internal", "out of memory");
		return;
	}
	wc->c = c;
	wc->id = id;
	jw->fn = job_done;
	jw->ud = wc;
	jw->next = j->waiters;
	j->waiters = jw;
	c->pending++;
}

static int collect_units(struct keel_mgr *m, struct mu ***ret, size_t *n)
{
	size_t it = 0, cap = 0;
	const char *k;
	void *v;
	*ret = NULL;
	*n = 0;
	while (keel_hmap_next(&m->units, &it, &k, NULL, &v)) {
		struct mu *mu = v;
		if (strcmp(k, mu->id) != 0)
			continue;
		if (*n == cap) {
			cap = cap ? cap * 2 : 64;
			struct mu **nv = keel_reallocarray(*ret, cap, sizeof(**ret));
			if (!nv)
				return -ENOMEM;
			*ret = nv;
		}
		(*ret)[(*n)++] = mu;
	}
	return 0;
}

static int cmp_mu(const void *a, const void *b)
{
	return strcmp((*(struct mu *const *)a)->id, (*(struct mu *const *)b)->id);
}

struct lf_ctx {
	struct keel_jw *w;
	struct keel_mgr *m;
};

static int list_file(void *ud, const char *name, const struct keel_unit_lookup *lu)
{
	struct lf_ctx *x = ud;
	keel_jw_obj_begin(x->w);
	keel_jw_kstr(x->w, "unit", name);
	const char *state = "static";
	if (lu->masked) {
		state = "masked";
	} else if (strcmp(lu->id, name) != 0) {
		state = "alias";
	} else if (strchr(name, '@') && name[strlen(name) - strlen(strrchr(name, '.')) - 1] == '@') {
		state = "static";
		struct mu *mu = mgr_get(x->m, name);
		(void)mu;
	} else {
		struct keel_unit *u;
		if (keel_loader_load(x->m->loader, name, &u) == 0) {
			const struct keel_install *in = u->install;
			if (in && (in->wanted_by || in->required_by || in->alias || in->also)) {
				struct keel_install_plan p;
				state = "disabled";
				if (keel_install_plan_enable(x->m->loader, name, x->m->config_dir, &p) == 0) {
					if (p.n == 0)
						state = "enabled";
					keel_install_plan_free(&p);
				}
			}
			keel_unit_free(u);
		}
	}
	keel_jw_kstr(x->w, "state", state);
	keel_jw_obj_end(x->w);
	return 0;
}

static void do_install(struct client *c, json_int_t id, json_t *req, const char *method)
{
	const char *name = json_string_value(json_object_get(req, "unit"));
	if (!name) {
		reply_err(c, id, "invalid", "missing \"unit\"");
		return;
	}
	struct keel_mgr *m = c->m;
	struct keel_install_plan p = {0};
	int r;
	if (strcmp(method, "enable") == 0)
		r = keel_install_plan_enable(m->loader, name, m->config_dir, &p);
	else if (strcmp(method, "disable") == 0)
		r = keel_install_plan_disable(m->loader, name, m->config_dir, &p);
	else if (strcmp(method, "mask") == 0)
		r = keel_install_plan_mask(m->loader, name, m->config_dir, &p);
	else
		r = keel_install_plan_unmask(m->loader, name, m->config_dir, &p);
	if (r == 0)
		r = keel_install_apply(m->loader, &p);
	if (r < 0) {
		char msg[512];
		snprintf(msg, sizeof(msg), "Failed to %s unit: %s", method, r == -ENOENT ? "Unit file does not exist." : keel_strerror(r));
		reply_err(c, id, r == -ENOENT ? "not-found" : "failed", msg);
		keel_install_plan_free(&p);
		return;
	}
	struct keel_buf b = KEEL_BUF_INIT;
	struct keel_jw w;
	begin_ok(&w, &b, id);
	keel_jw_key(&w, "changes");
	keel_jw_arr_begin(&w);
	for (size_t i = 0; i < p.n; i++) {
		keel_jw_obj_begin(&w);
		keel_jw_kstr(&w, "type", p.v[i].op == KEEL_INSTALL_SYMLINK ? "symlink" : "unlink");
		keel_jw_kstr(&w, "path", p.v[i].path);
		if (p.v[i].target)
			keel_jw_kstr(&w, "target", p.v[i].target);
		keel_jw_obj_end(&w);
	}
	keel_jw_arr_end(&w);
	keel_install_plan_free(&p);
	(void)!keel_mgr_reload(m);
	end_send(c, &w, &b);
}

static void tail_line(void *ud, const struct keel_log_record *rec)
{
	struct keel_jw *w = ud;
	keel_jw_obj_begin(w);
	keel_jw_ku64(w, "time_usec", rec->realtime_usec);
	keel_jw_ki64(w, "priority", rec->priority);
	if (rec->identifier)
		keel_jw_kstr(w, "identifier", rec->identifier);
	keel_jw_ki64(w, "pid", rec->pid);
	keel_jw_key(w, "message");
	keel_jw_strn(w, rec->msg, rec->len);
	keel_jw_obj_end(w);
}

static void read_file_into(struct keel_jw *w, const char *path)
{
	FILE *f = fopen(path, "re");
	struct keel_buf b = KEEL_BUF_INIT;
	if (f) {
		char chunk[4096];
		size_t n;
		while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0 && b.len < (1u << 20))
			if (keel_buf_append(&b, chunk, n) < 0)
				break;
		fclose(f);
	}
	keel_jw_obj_begin(w);
	keel_jw_kstr(w, "path", path);
	keel_jw_kstr(w, "content", b.data ? b.data : "");
	keel_jw_obj_end(w);
	keel_buf_free(&b);
}

static void handle(struct client *c, json_t *req)
{
	struct keel_mgr *m = c->m;
	json_int_t id = json_integer_value(json_object_get(req, "id"));
	const char *method = json_string_value(json_object_get(req, "method"));
	if (!method) {
		reply_err(c, id, "invalid", "missing \"method\"");
		return;
	}
	if (strcmp(method, "ping") == 0) {
		struct keel_buf b = KEEL_BUF_INIT;
		struct keel_jw w;
		begin_ok(&w, &b, id);
		keel_jw_ki64(&w, "pid", getpid());
		keel_jw_kstr(&w, "version", "0.1.0");
		keel_jw_kstr(&w, "cgroup_mode", keel_cg_mode_to_string(m->cg->mode));
		keel_jw_ku64(&w, "jobs", m->n_jobs);
		if (m->journal_dir)
			keel_jw_kstr(&w, "journal_dir", m->journal_dir);
		end_send(c, &w, &b);
	} else if (!strcmp(method, "start") || !strcmp(method, "stop") || !strcmp(method, "restart") ||
		   !strcmp(method, "try-restart") || !strcmp(method, "reload") || !strcmp(method, "reload-or-restart") ||
		   !strcmp(method, "isolate")) {
		do_job(c, id, req, method);
	} else if (strcmp(method, "load") == 0) {
		const char *name = json_string_value(json_object_get(req, "unit"));
		const char *content = json_string_value(json_object_get(req, "content"));
		if (!name || !content) {
			reply_err(c, id, "invalid", "\"load\" needs \"unit\" and \"content\"");
			return;
		}
		struct keel_buf diag = KEEL_BUF_INIT;
		m->diag_capture = &diag;
		struct mu *mu;
		int r = mgr_load_text(m, name, content, &mu, &diag);
		m->diag_capture = NULL;
		if (r < 0) {
			reply_err(c, id, "invalid", r == -EINVAL ? "Invalid unit name or type change." : keel_strerror(r));
		} else {
			struct keel_buf b = KEEL_BUF_INIT;
			struct keel_jw w;
			begin_ok(&w, &b, id);
			keel_jw_kstr(&w, "unit", mu->id);
			keel_jw_kstr(&w, "load_state", keel_load_state_to_string(mu->u->load_state));
			keel_jw_kstr(&w, "diagnostics", diag.data ? diag.data : "");
			end_send(c, &w, &b);
		}
		keel_buf_free(&diag);
	} else if (strcmp(method, "get") == 0) {
		struct mu *mu = need_unit(c, id, req, true);
		if (!mu)
			return;
		struct keel_buf b = KEEL_BUF_INIT;
		struct keel_jw w;
		begin_ok(&w, &b, id);
		write_unit_props(&w, m, mu);
		json_t *n = json_object_get(req, "lines");
		if (json_is_integer(n) && json_integer_value(n) > 0 && m->sink.ops && m->sink.ops->tail) {
			keel_jw_key(&w, "log");
			keel_jw_arr_begin(&w);
			(void)m->sink.ops->tail(m->sink.impl, mu->id, (unsigned)json_integer_value(n), tail_line, &w);
			keel_jw_arr_end(&w);
		}
		end_send(c, &w, &b);
	} else if (strcmp(method, "list-units") == 0 || strcmp(method, "list-timers") == 0 ||
		   strcmp(method, "list-sockets") == 0) {
		bool all = json_is_true(json_object_get(req, "all"));
		struct mu **v;
		size_t n;
		if (collect_units(m, &v, &n) < 0) {
			keel_free(v);
			reply_err(c, id, "internal", "out of memory");
			return;
		}
		qsort(v, n, sizeof(*v), cmp_mu);
		struct keel_buf b = KEEL_BUF_INIT;
		struct keel_jw w;
		begin_ok(&w, &b, id);
		keel_jw_key(&w, "units");
		keel_jw_arr_begin(&w);
		int only = strcmp(method, "list-timers") == 0 ? KEEL_UNIT_TIMER
			   : strcmp(method, "list-sockets") == 0 ? KEEL_UNIT_SOCKET : -1;
		for (size_t i = 0; i < n; i++) {
			struct mu *mu = v[i];
			if (only >= 0 && mu->type != only)
				continue;
			if (!all && only < 0 && keel_inactive_or_failed(mu->active) && !mu->job && mu->active != KEEL_FAILED)
				continue;
			if (!all && only >= 0 && keel_inactive_or_failed(mu->active))
				continue;
			if (only < 0) {
				write_unit_row(&w, mu);
			} else {
				keel_jw_obj_begin(&w);
				keel_jw_kstr(&w, "unit", mu->id);
				keel_jw_kstr(&w, "active", keel_active_to_string(mu->active));
				keel_jw_kstr(&w, "sub", unit_sub_state(mu));
				struct keel_buf t = KEEL_BUF_INIT;
				for (uint32_t k = 0; k < mu->n_edges; k++)
					if (mu->edges[k].kind == E_TRIGGERS)
						(void)!keel_buf_printf(&t, "%s%s", t.len ? " " : "", mu->edges[k].other->id);
				keel_jw_kstr(&w, "activates", t.data ? t.data : "");
				keel_buf_free(&t);
				if (only == KEEL_UNIT_TIMER) {
					const struct tmr_rt *r = &mu->rt.tmr;
					uint64_t nm = keel_now_mono(), nr = keel_now_real(), next = 0;
					if (r->next_mono != KEEL_USEC_INFINITY && keel_active_or_reloading(mu->active))
						next = r->next_real ? r->next_real : nr + (r->next_mono > nm ? r->next_mono - nm : 0);
					keel_jw_ku64(&w, "next_usec", next);
					keel_jw_ku64(&w, "last_usec", r->last_trigger_real);
				} else {
					const struct keel_socket *so = keel_unit_socket_c(mu->u);
					keel_jw_key(&w, "listen");
					keel_jw_arr_begin(&w);
					for (uint16_t k = 0; so && k < so->n_listen; k++) {
						char a[300];
						keel_sockaddr_format(&so->listen[k].addr, so->listen[k].path, a, sizeof(a));
						keel_jw_obj_begin(&w);
						keel_jw_kstr(&w, "address", a);
						keel_jw_kstr(&w, "type", keel_listen_kind_to_string(so->listen[k].kind));
						keel_jw_obj_end(&w);
					}
					keel_jw_arr_end(&w);
				}
				keel_jw_obj_end(&w);
			}
		}
		keel_free(v);
		keel_jw_arr_end(&w);
		end_send(c, &w, &b);
	} else if (strcmp(method, "list-unit-files") == 0) {
		struct keel_buf b = KEEL_BUF_INIT;
		struct keel_jw w;
		begin_ok(&w, &b, id);
		keel_jw_key(&w, "units");
		keel_jw_arr_begin(&w);
		struct lf_ctx x = {.w = &w, .m = m};
		(void)!keel_loader_foreach_name(m->loader, list_file, &x);
		keel_jw_arr_end(&w);
		end_send(c, &w, &b);
	} else if (!strcmp(method, "enable") || !strcmp(method, "disable") || !strcmp(method, "mask") ||
		   !strcmp(method, "unmask")) {
		do_install(c, id, req, method);
	} else if (strcmp(method, "daemon-reload") == 0) {
		int r = keel_mgr_reload(m);
		if (r < 0)
			reply_err(c, id, "failed", keel_strerror(r));
		else
			reply_ok(c, id);
	} else if (strcmp(method, "cat") == 0) {
		struct mu *mu = need_unit(c, id, req, true);
		if (!mu)
			return;
		if (!mu->u->fragment_path && !mu->u->dropin_paths) {
			char msg[400];
			snprintf(msg, sizeof(msg), "No files found for %s.", mu->id);
			reply_err(c, id, "not-found", msg);
			return;
		}
		struct keel_buf b = KEEL_BUF_INIT;
		struct keel_jw w;
		begin_ok(&w, &b, id);
		keel_jw_key(&w, "files");
		keel_jw_arr_begin(&w);
		if (mu->u->fragment_path)
			read_file_into(&w, mu->u->fragment_path);
		for (size_t i = 0; mu->u->dropin_paths && mu->u->dropin_paths[i]; i++)
			read_file_into(&w, mu->u->dropin_paths[i]);
		keel_jw_arr_end(&w);
		end_send(c, &w, &b);
	} else if (strcmp(method, "kill") == 0) {
		struct mu *mu = need_unit(c, id, req, false);
		if (!mu)
			return;
		json_t *sj = json_object_get(req, "signal");
		int sig = json_is_integer(sj) ? (int)json_integer_value(sj) : SIGTERM;
		const char *who = json_string_value(json_object_get(req, "whom"));
		int r = unit_kill(mu, who, sig);
		if (r < 0) {
			char msg[400];
			snprintf(msg, sizeof(msg), "Failed to kill unit %s: %s", mu->id,
				 r == -ESRCH ? "No main process to kill" : keel_strerror(r));
			reply_err(c, id, "failed", msg);
		} else {
			reply_ok(c, id);
		}
	} else if (strcmp(method, "reset-failed") == 0) {
		if (json_object_get(req, "unit")) {
			struct mu *mu = need_unit(c, id, req, false);
			if (!mu)
				return;
			unit_reset_failed(mu);
		} else {
			struct mu **v;
			size_t n;
			if (collect_units(m, &v, &n) == 0)
				for (size_t i = 0; i < n; i++)
					unit_reset_failed(v[i]);
			keel_free(v);
		}
		reply_ok(c, id);
	} else if (strcmp(method, "subscribe") == 0) {
		c->subscribed = true;
		reply_ok(c, id);
	} else if (strcmp(method, "shutdown") == 0) {
		reply_ok(c, id);
		keel_mgr_shutdown(m);
	} else {
		char msg[300];
		snprintf(msg, sizeof(msg), "Unknown method \"%s\".", method);
		reply_err(c, id, "invalid", msg);
	}
}

static void on_client(struct keel_ev_io *io, uint32_t revents)
{
	struct client *c = io->data;
	if (revents & EPOLLOUT) {
		client_flush(c);
		if (c->closed)
			return;
	}
	if (!(revents & (EPOLLIN | EPOLLHUP | EPOLLERR)))
		return;
	char chunk[8192];
	ssize_t n = recv(io->fd, chunk, sizeof(chunk), MSG_DONTWAIT);
	if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
		client_close(c);
		return;
	}
	if (n < 0)
		return;
	if (keel_buf_append(&c->in, chunk, (size_t)n) < 0 || c->in.len > (16u << 20)) {
		client_close(c);
		return;
	}
	char *start = c->in.data, *nl;
	while (!c->closed && (nl = memchr(start, '\n', c->in.len - (size_t)(start - c->in.data)))) {
		json_error_t je;
		json_t *req = json_loadb(start, (size_t)(nl - start), 0, &je);
		start = nl + 1;
		if (!req || !json_is_object(req)) {
			reply_err(c, 0, "invalid", req ? "a request must be a JSON object" : je.text);
			json_decref(req);
			continue;
		}
		handle(c, req);
		json_decref(req);
	}
	if (!c->closed)
		keel_buf_consume(&c->in, (size_t)(start - c->in.data));
}

static void on_accept(struct keel_ev_io *io, uint32_t revents)
{
	struct keel_mgr *m = io->data;
	(void)revents;
	for (;;) {
		int fd = accept4(io->fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
		if (fd < 0)
			return;
		struct client *c = keel_calloc(1, sizeof(*c));
		if (!c) {
			close(fd);
			continue;
		}
		c->m = m;
		keel_ev_io_init(&c->io, fd, on_client, c);
		if (keel_ev_io_start(m->ev, &c->io, EPOLLIN) < 0) {
			close(fd);
			keel_free(c);
			continue;
		}
		c->next = m->ctl->clients;
		m->ctl->clients = c;
	}
}

int control_open(struct keel_mgr *m, const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	strcpy(sa.sun_path, path);
	struct control_server *s = keel_calloc(1, sizeof(*s));
	if (!s || !(s->path = keel_strdup(path))) {
		keel_free(s);
		return -ENOMEM;
	}
	s->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (s->fd < 0) {
		int r = -errno;
		keel_free(s->path);
		keel_free(s);
		return r;
	}
	unlink(path);
	mode_t old = umask(0077);
	int r = bind(s->fd, (struct sockaddr *)&sa, sizeof(sa));
	umask(old);
	if (r < 0 || listen(s->fd, 128) < 0) {
		r = -errno;
		close(s->fd);
		keel_free(s->path);
		keel_free(s);
		return r;
	}
	keel_ev_io_init(&s->io, s->fd, on_accept, m);
	m->ctl = s;
	r = keel_ev_io_start(m->ev, &s->io, EPOLLIN);
	if (r < 0) {
		control_close(m);
		return r;
	}
	return 0;
}

void control_close(struct keel_mgr *m)
{
	struct control_server *s = m->ctl;
	if (!s)
		return;
	while (s->clients) {
		struct client *c = s->clients;
		if (!c->closed) {
			keel_ev_io_stop(m->ev, &c->io);
			close(c->io.fd);
		}
		s->clients = c->next;
		keel_buf_free(&c->in);
		keel_buf_free(&c->out);
		keel_free(c);
	}
	keel_ev_io_stop(m->ev, &s->io);
	close(s->fd);
	unlink(s->path);
	keel_free(s->path);
	keel_free(s);
	m->ctl = NULL;
}
