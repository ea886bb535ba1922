/* keelctl's systemctl verbs, answered by keel-init over its control socket. Output and exit
 * statuses follow systemctl's (0 ok, 1 failed, 3 not active for status/is-active, 4 no such
 * unit for status, 5 unit not found for start & co.). */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/str.h"
#include "init/name.h"
#include "init/values.h"
#include "keelctl.h"

static const char *jstr(json_t *o, const char *k)
{
	const char *s = json_string_value(json_object_get(o, k));
	return s ? s : "";
}

/* "foo" -> "foo.service", as systemctl does. */
static const char *arg_suffix = "service"; /* "target" for isolate, as systemctl */

static void unit_arg(const char *in, char *out, size_t size)
{
	if (keel_unit_name_type(in) == KEEL_UNIT_TYPE_INVALID && !strchr(in, '.'))
		snprintf(out, size, "%s.%s", in, arg_suffix);
	else
		snprintf(out, size, "%s", in);
}

static json_t *req_unit(const char *method, const char *unit)
{
	json_t *r = json_object();
	json_object_set_new(r, "method", json_string(method));
	if (unit)
		json_object_set_new(r, "unit", json_string(unit));
	return r;
}

static const char *verb_gerund(const char *verb)
{
	if (!strcmp(verb, "start"))
		return "start";
	if (!strcmp(verb, "stop"))
		return "stop";
	if (!strcmp(verb, "reload"))
		return "reload";
	if (!strcmp(verb, "isolate"))
		return "start"; /* systemctl isolate is StartUnit in mode isolate */
	return "restart";
}

static const char *reason_text(const char *reason)
{
	if (!strcmp(reason, "exit-code"))
		return "because the control process exited with error code";
	if (!strcmp(reason, "signal"))
		return "because a fatal signal was delivered to the control process";
	if (!strcmp(reason, "core-dump"))
		return "because a fatal signal was delivered causing the control process to dump core";
	if (!strcmp(reason, "timeout"))
		return "because a timeout was exceeded";
	if (!strcmp(reason, "start-limit-hit"))
		return "because start of the service was attempted too often";
	if (!strcmp(reason, "resources"))
		return "because of unavailable resources or another system error";
	if (!strcmp(reason, "protocol"))
		return "because the service did not take the steps required by its unit configuration";
	if (!strcmp(reason, "watchdog"))
		return "because the service watchdog timed out";
	return "";
}

static int do_jobs(struct keelctl *ctl, struct keelctl_conn *c, int argc, char **argv)
{
	int *ids = calloc((size_t)argc, sizeof(int));
	if (!ids)
		return KEELCTL_FAILED;
	for (int i = 0; i < argc; i++) {
		char u[300];
		unit_arg(argv[i], u, sizeof(u));
		json_t *r = req_unit(ctl->verb, u);
		if (ctl->no_block)
			json_object_set_new(r, "no_block", json_true());
		ids[i] = keelctl_send(c, r);
		json_decref(r);
	}
	/* The jobs run in parallel, so their answers come in any order: keep each by its id. */
	json_t **answers = calloc((size_t)argc, sizeof(*answers));
	if (!answers) {
		free(ids);
		return KEELCTL_FAILED;
	}
	int left = 0;
	for (int i = 0; i < argc; i++)
		left += ids[i] > 0;
	while (left > 0) {
		json_t *v = keelctl_read(c);
		if (!v)
			break; /* the connection ended: the missing answers are reported below */
		json_int_t id = json_integer_value(json_object_get(v, "id"));
		int at = -1;
		for (int j = 0; j < argc && !json_object_get(v, "event"); j++)
			if (ids[j] > 0 && ids[j] == id && !answers[j])
				at = j;
		if (at < 0) {
			json_decref(v);
			continue;
		}
		answers[at] = v;
		left--;
	}
	int rc = KEELCTL_OK;
	for (int i = 0; i < argc; i++) {
		char u[300];
		unit_arg(argv[i], u, sizeof(u));
		json_t *v = answers[i];
		if (!v) {
			fprintf(stderr, "Failed to %s %s: connection to keel-init lost\n", verb_gerund(ctl->verb), u);
			rc = KEELCTL_FAILED;
			continue;
		}
		if (!json_is_true(json_object_get(v, "ok"))) {
			const char *code = jstr(v, "code");
			if (!strcmp(code, "job-failed")) {
				const char *result = jstr(v, "result");
				if (!strcmp(result, "dependency"))
					fprintf(stderr, "A dependency job for %s failed. See 'keelctl journal -u %s' for details.\n", u, u);
				else if (!strcmp(result, "canceled"))
					fprintf(stderr, "Job for %s canceled.\n", u);
				else if (!strcmp(result, "timeout")) /* JobTimeoutSec= */
					fprintf(stderr, "Job for %s timed out.\n", u);
				else if (!strcmp(result, "assert"))
					fprintf(stderr, "Assertion failed on job for %s.\n", u);
				else
					fprintf(stderr, "Job for %s failed%s%s.\nSee \"keelctl status %s\" and \"keelctl journal -u %s\" for details.\n",
						u, *reason_text(jstr(v, "reason")) ? " " : "", reason_text(jstr(v, "reason")), u, u);
				rc = KEELCTL_FAILED;
			} else {
				fprintf(stderr, "Failed to %s %s: %s\n", verb_gerund(ctl->verb), u, jstr(v, "error"));
				if (!strcmp(code, "not-found") && rc == KEELCTL_OK)
					rc = KEELCTL_NOT_INSTALLED;
				else
					rc = KEELCTL_FAILED;
			}
		}
		json_decref(v);
	}
	free(answers);
	free(ids);
	return rc;
}

static void fmt_usec_ts(uint64_t usec, char *out, size_t size)
{
	if (!usec) {
		snprintf(out, size, "n/a");
		return;
	}
	time_t t = (time_t)(usec / 1000000);
	struct tm tm;
	localtime_r(&t, &tm);
	strftime(out, size, "%a %Y-%m-%d %H:%M:%S %Z", &tm);
}

static void fmt_ago(uint64_t usec, char *out, size_t size, bool future)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	uint64_t now = (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
	if (!usec) {
		snprintf(out, size, "n/a");
		return;
	}
	uint64_t d = future ? (usec > now ? usec - now : 0) : (now > usec ? now - usec : 0);
	char span[64];
	keel_format_timespan(span, sizeof(span), d, 1000000);
	snprintf(out, size, future ? "%s left" : "%s ago", span);
}

static uint64_t prop_u64(json_t *props, const char *k)
{
	return strtoull(jstr(props, k), NULL, 10);
}

static const char *bullet(const char *active)
{
	if (!strcmp(active, "active") || !strcmp(active, "reloading"))
		return "\xe2\x97\x8f"; /* ● */
	if (!strcmp(active, "failed"))
		return "\xc3\x97"; /* × */
	if (!strcmp(active, "activating") || !strcmp(active, "deactivating"))
		return "\xe2\x97\x8f";
	return "\xe2\x97\x8b"; /* ○ */
}

static int do_status(struct keelctl *ctl, struct keelctl_conn *c, int argc, char **argv)
{
	int rc = KEELCTL_OK;
	for (int i = 0; i < argc; i++) {
		char u[300];
		unit_arg(argv[i], u, sizeof(u));
		json_t *r = req_unit("get", u);
		json_object_set_new(r, "lines", json_integer(ctl->lines));
		json_t *v = keelctl_call(c, r);
		if (!v)
			return KEELCTL_FAILED;
		if (!json_is_true(json_object_get(v, "ok"))) {
			fprintf(stderr, "%s\n", jstr(v, "error"));
			json_decref(v);
			rc = KEELCTL_NO_SUCH_UNIT;
			continue;
		}
		json_t *p = json_object_get(v, "props");
		const char *load = jstr(p, "LoadState"), *active = jstr(p, "ActiveState");
		if (!strcmp(load, "not-found") && !strcmp(active, "inactive")) {
			fprintf(stderr, "Unit %s could not be found.\n", u);
			json_decref(v);
			rc = KEELCTL_NO_SUCH_UNIT;
			continue;
		}
		if (i > 0)
			printf("\n");
		printf("%s %s - %s\n", bullet(active), jstr(p, "Id"), jstr(p, "Description"));
		const char *frag = jstr(p, "FragmentPath"), *ufs = jstr(p, "UnitFileState");
		if (*frag)
			printf("     Loaded: %s (%s%s%s)\n", load, frag, *ufs ? "; " : "", ufs);
		else
			printf("     Loaded: %s%s%s%s\n", load, *ufs ? " (" : "", ufs, *ufs ? ")" : "");
		if (*jstr(p, "DropInPaths"))
			printf("    Drop-In: %s\n", jstr(p, "DropInPaths"));
		char ts[96], ago[96];
		uint64_t since = !strcmp(active, "active") || !strcmp(active, "reloading") ? prop_u64(p, "ActiveEnterTimestampUSec")
				 : !strcmp(active, "inactive") || !strcmp(active, "failed") ? prop_u64(p, "InactiveEnterTimestampUSec")
				 : prop_u64(p, "StateChangeTimestampUSec");
		fmt_usec_ts(since, ts, sizeof(ts));
		fmt_ago(since, ago, sizeof(ago), false);
		const char *result = jstr(p, "Result");
		if (!strcmp(active, "failed"))
			printf("     Active: failed (Result: %s) since %s; %s\n", result, ts, ago);
		else
			printf("     Active: %s (%s) since %s; %s\n", active, jstr(p, "SubState"), ts, ago);
		if (*jstr(p, "TriggeredBy"))
			printf("TriggeredBy: %s\n", jstr(p, "TriggeredBy"));
		if (*jstr(p, "Listen"))
			printf("     Listen: %s\n", jstr(p, "Listen"));
		if (*jstr(p, "NextElapseUSecRealtime") && prop_u64(p, "NextElapseUSecRealtimeUSec")) {
			fmt_ago(prop_u64(p, "NextElapseUSecRealtimeUSec"), ago, sizeof(ago), true);
			printf("    Trigger: %s; %s\n", jstr(p, "NextElapseUSecRealtime"), ago);
		}
		if (*jstr(p, "Triggers"))
			printf("   Triggers: %s\n", jstr(p, "Triggers"));
		uint64_t mainpid = prop_u64(p, "MainPID");
		json_t *procs = json_object_get(v, "processes");
		if (mainpid) {
			const char *comm = "";
			size_t k;
			json_t *pr;
			json_array_foreach(procs, k, pr)
				if ((uint64_t)json_integer_value(json_object_get(pr, "pid")) == mainpid)
					comm = jstr(pr, "cmdline");
			char name[256];
			snprintf(name, sizeof(name), "%s", comm);
			char *sp = strchr(name, ' ');
			if (sp)
				*sp = '\0';
			const char *base = strrchr(name, '/');
			printf("   Main PID: %llu (%s)\n", (unsigned long long)mainpid, base ? base + 1 : name);
		} else if (prop_u64(p, "ExecMainPID") && *jstr(p, "ExecMainCode") && prop_u64(p, "ExecMainCode")) {
			uint64_t code = prop_u64(p, "ExecMainCode"), st = prop_u64(p, "ExecMainStatus");
			char sb[32] = "";
			const char *n = code == 1 ? keel_exit_status_to_string((int)st) : keel_signal_to_string((int)st, sb, sizeof(sb));
			printf("    Process: %llu (code=%s, status=%llu/%s)\n", (unsigned long long)prop_u64(p, "ExecMainPID"),
			       code == 1 ? "exited" : code == 2 ? "killed" : "dumped", (unsigned long long)st, n ? n : "n/a");
		}
		if (*jstr(p, "StatusText"))
			printf("     Status: \"%s\"\n", jstr(p, "StatusText"));
		if (*jstr(p, "TasksCurrent"))
			printf("      Tasks: %s\n", jstr(p, "TasksCurrent"));
		if (*jstr(p, "MemoryCurrent")) {
			uint64_t mem = prop_u64(p, "MemoryCurrent");
			printf("     Memory: %.1fM\n", (double)mem / (1024.0 * 1024.0));
		}
		if (*jstr(p, "ControlGroup")) {
			printf("     CGroup: %s\n", jstr(p, "ControlGroup"));
			size_t k, n = json_array_size(procs);
			json_t *pr;
			json_array_foreach(procs, k, pr)
				printf("             %s%lld %s\n", k + 1 == n ? "\xe2\x94\x94\xe2\x94\x80" : "\xe2\x94\x9c\xe2\x94\x80",
				       (long long)json_integer_value(json_object_get(pr, "pid")), jstr(pr, "cmdline"));
		}
		json_t *log = json_object_get(v, "log");
		if (json_array_size(log)) {
			printf("\n");
			size_t k;
			json_t *l;
			json_array_foreach(log, k, l) {
				uint64_t t = (uint64_t)json_integer_value(json_object_get(l, "time_usec"));
				time_t tt = (time_t)(t / 1000000);
				struct tm tm;
				char tb[64];
				localtime_r(&tt, &tm);
				strftime(tb, sizeof(tb), "%b %d %H:%M:%S", &tm);
				json_int_t pid = json_integer_value(json_object_get(l, "pid"));
				if (pid > 0)
					printf("%s %s[%lld]: %s\n", tb, jstr(l, "identifier"), (long long)pid, jstr(l, "message"));
				else
					printf("%s keel-init: %s: %s\n", tb, jstr(p, "Id"), jstr(l, "message"));
			}
		}
		if (strcmp(active, "active") != 0 && strcmp(active, "reloading") != 0 && rc == KEELCTL_OK)
			rc = KEELCTL_NOT_RUNNING;
		json_decref(v);
	}
	return rc;
}

static int do_is(struct keelctl *ctl, struct keelctl_conn *c, int argc, char **argv)
{
	bool any = false;
	bool want_failed = !strcmp(ctl->verb, "is-failed");
	for (int i = 0; i < argc; i++) {
		char u[300];
		unit_arg(argv[i], u, sizeof(u));
		json_t *v = keelctl_call(c, req_unit("get", u));
		if (!v)
			return KEELCTL_FAILED;
		const char *active = "inactive";
		json_t *p = json_object_get(v, "props");
		if (json_is_true(json_object_get(v, "ok")))
			active = jstr(p, "ActiveState");
		if (!ctl->quiet)
			printf("%s\n", active);
		if (want_failed ? !strcmp(active, "failed") : !strcmp(active, "active") || !strcmp(active, "reloading"))
			any = true;
		json_decref(v);
	}
	if (want_failed)
		return any ? KEELCTL_OK : KEELCTL_FAILED;
	return any ? KEELCTL_OK : KEELCTL_NOT_RUNNING;
}

static int do_is_enabled(struct keelctl *ctl, struct keelctl_conn *c, int argc, char **argv)
{
	bool any = false;
	int rc = KEELCTL_OK;
	for (int i = 0; i < argc; i++) {
		char u[300];
		unit_arg(argv[i], u, sizeof(u));
		json_t *v = keelctl_call(c, req_unit("get", u));
		if (!v)
			return KEELCTL_FAILED;
		json_t *p = json_object_get(v, "props");
		const char *load = jstr(p, "LoadState");
		if (!json_is_true(json_object_get(v, "ok")) || !strcmp(load, "not-found")) {
			fprintf(stderr, "Failed to get unit file state for %s: No such file or directory\n", u);
			rc = KEELCTL_FAILED;
			json_decref(v);
			continue;
		}
		const char *st = jstr(p, "UnitFileState");
		if (!ctl->quiet)
			printf("%s\n", st);
		if (!strcmp(st, "enabled") || !strcmp(st, "static") || !strcmp(st, "alias") || !strcmp(st, "indirect") ||
		    !strcmp(st, "transient") || !strcmp(st, "enabled-runtime"))
			any = true;
		json_decref(v);
	}
	return rc != KEELCTL_OK ? rc : any ? KEELCTL_OK : KEELCTL_FAILED;
}

static int do_show(struct keelctl *ctl, struct keelctl_conn *c, int argc, char **argv)
{
	for (int i = 0; i < argc; i++) {
		char u[300];
		unit_arg(argv[i], u, sizeof(u));
		json_t *v = keelctl_call(c, req_unit("get", u));
		if (!v)
			return KEELCTL_FAILED;
		if (!json_is_true(json_object_get(v, "ok"))) {
			fprintf(stderr, "%s\n", jstr(v, "error"));
			json_decref(v);
			return KEELCTL_FAILED;
		}
		if (i > 0)
			printf("\n");
		json_t *p = json_object_get(v, "props");
		if (ctl->properties) {
			for (size_t k = 0; ctl->properties[k]; k++) {
				json_t *val = json_object_get(p, ctl->properties[k]);
				if (!val)
					continue;
				if (ctl->value_only)
					printf("%s\n", json_string_value(val));
				else
					printf("%s=%s\n", ctl->properties[k], json_string_value(val));
			}
		} else {
			const char *k;
			json_t *val;
			json_object_foreach(p, k, val) {
				if (keel_endswith(k, "TimestampUSec") || keel_endswith(k, "RealtimeUSec") || !strcmp(k, "LastTriggerUSecUSec"))
					continue;
				if (ctl->value_only)
					printf("%s\n", json_string_value(val));
				else
					printf("%s=%s\n", k, json_string_value(val));
			}
		}
		json_decref(v);
	}
	return KEELCTL_OK;
}

static int do_list(struct keelctl *ctl, struct keelctl_conn *c)
{
	const char *verb = ctl->verb;
	json_t *r = req_unit(verb, NULL);
	if (ctl->all)
		json_object_set_new(r, "all", json_true());
	json_t *v = keelctl_call(c, r);
	if (!v)
		return KEELCTL_FAILED;
	json_t *units = json_object_get(v, "units");
	size_t k, n = json_array_size(units);
	json_t *e;
	if (!strcmp(verb, "list-units")) {
		size_t w = 4;
		json_array_foreach(units, k, e) w = KEEL_MAX(w, strlen(jstr(e, "unit")));
		printf("  %-*s %-9s %-8s %-9s %s\n", (int)w, "UNIT", "LOAD", "ACTIVE", "SUB", "DESCRIPTION");
		json_array_foreach(units, k, e) {
			const char *a = jstr(e, "active");
			printf("%s %-*s %-9s %-8s %-9s %s\n", !strcmp(a, "failed") ? "\xe2\x97\x8f" : " ", (int)w, jstr(e, "unit"),
			       jstr(e, "load"), a, jstr(e, "sub"), jstr(e, "description"));
		}
		printf("\n%zu loaded units listed.%s\n", n, ctl->all ? "" : " Pass --all to see loaded but inactive units, too.");
	} else if (!strcmp(verb, "list-unit-files")) {
		size_t w = 9;
		json_array_foreach(units, k, e) w = KEEL_MAX(w, strlen(jstr(e, "unit")));
		printf("%-*s STATE\n", (int)w, "UNIT FILE");
		json_array_foreach(units, k, e) printf("%-*s %s\n", (int)w, jstr(e, "unit"), jstr(e, "state"));
		printf("\n%zu unit files listed.\n", n);
	} else if (!strcmp(verb, "list-timers")) {
		printf("%-32s %-16s %-32s %-16s %-24s %s\n", "NEXT", "LEFT", "LAST", "PASSED", "UNIT", "ACTIVATES");
		json_array_foreach(units, k, e) {
			char nx[96], left[64], last[96], passed[64];
			uint64_t next = (uint64_t)json_integer_value(json_object_get(e, "next_usec"));
			uint64_t lt = (uint64_t)json_integer_value(json_object_get(e, "last_usec"));
			fmt_usec_ts(next, nx, sizeof(nx));
			fmt_ago(next, left, sizeof(left), true);
			fmt_usec_ts(lt, last, sizeof(last));
			fmt_ago(lt, passed, sizeof(passed), false);
			printf("%-32s %-16s %-32s %-16s %-24s %s\n", nx, left, last, passed, jstr(e, "unit"), jstr(e, "activates"));
		}
		printf("\n%zu timers listed.\n", n);
	} else {
		printf("%-40s %-24s %s\n", "LISTEN", "UNIT", "ACTIVATES");
		size_t total = 0;
		json_array_foreach(units, k, e) {
			json_t *ls = json_object_get(e, "listen");
			size_t j;
			json_t *l;
			json_array_foreach(ls, j, l) {
				printf("%-40s %-24s %s\n", jstr(l, "address"), jstr(e, "unit"), jstr(e, "activates"));
				total++;
			}
		}
		printf("\n%zu sockets listed.\n", total);
	}
	json_decref(v);
	return KEELCTL_OK;
}

static int do_install(struct keelctl *ctl, struct keelctl_conn *c, int argc, char **argv)
{
	int rc = KEELCTL_OK;
	for (int i = 0; i < argc; i++) {
		char u[300];
		unit_arg(argv[i], u, sizeof(u));
		json_t *v = keelctl_call(c, req_unit(ctl->verb, u));
		if (!v)
			return KEELCTL_FAILED;
		if (!json_is_true(json_object_get(v, "ok"))) {
			fprintf(stderr, "%s\n", jstr(v, "error"));
			rc = KEELCTL_FAILED;
		}
		size_t k;
		json_t *ch;
		json_array_foreach(json_object_get(v, "changes"), k, ch) {
			if (!strcmp(jstr(ch, "type"), "symlink"))
				printf("Created symlink %s \xe2\x86\x92 %s.\n", jstr(ch, "path"), jstr(ch, "target"));
			else
				printf("Removed \"%s\".\n", jstr(ch, "path"));
		}
		json_decref(v);
	}
	return rc;
}

static int simple(struct keelctl_conn *c, json_t *req)
{
	json_t *v = keelctl_call(c, req);
	if (!v)
		return KEELCTL_FAILED;
	int rc = KEELCTL_OK;
	if (!json_is_true(json_object_get(v, "ok"))) {
		fprintf(stderr, "%s\n", jstr(v, "error"));
		rc = KEELCTL_FAILED;
	}
	json_decref(v);
	return rc;
}

static int do_cat(struct keelctl_conn *c, int argc, char **argv)
{
	int rc = KEELCTL_OK;
	for (int i = 0; i < argc; i++) {
		char u[300];
		unit_arg(argv[i], u, sizeof(u));
		json_t *v = keelctl_call(c, req_unit("cat", u));
		if (!v)
			return KEELCTL_FAILED;
		if (!json_is_true(json_object_get(v, "ok"))) {
			fprintf(stderr, "%s\n", jstr(v, "error"));
			rc = KEELCTL_FAILED;
		}
		size_t k;
		json_t *f;
		json_array_foreach(json_object_get(v, "files"), k, f) {
			if (i > 0 || k > 0)
				printf("\n");
			printf("# %s\n%s", jstr(f, "path"), jstr(f, "content"));
		}
		json_decref(v);
	}
	return rc;
}

static int do_load(struct keelctl_conn *c, int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "keelctl load: usage: keelctl load UNIT FILE\n");
		return KEELCTL_USAGE;
	}
	FILE *f = strcmp(argv[1], "-") ? fopen(argv[1], "re") : stdin;
	if (!f) {
		fprintf(stderr, "Failed to open %s: %s\n", argv[1], strerror(errno));
		return KEELCTL_FAILED;
	}
	struct keel_buf b = KEEL_BUF_INIT;
	char chunk[4096];
	size_t n;
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		if (keel_buf_append(&b, chunk, n) < 0)
			break;
	if (f != stdin)
		fclose(f);
	json_t *r = req_unit("load", argv[0]);
	json_object_set_new(r, "content", json_string(b.data ? b.data : ""));
	keel_buf_free(&b);
	json_t *v = keelctl_call(c, r);
	if (!v)
		return KEELCTL_FAILED;
	int rc = KEELCTL_OK;
	fputs(jstr(v, "diagnostics"), stderr);
	if (!json_is_true(json_object_get(v, "ok"))) {
		fprintf(stderr, "%s\n", jstr(v, "error"));
		rc = KEELCTL_FAILED;
	} else if (strcmp(jstr(v, "load_state"), "loaded") != 0) {
		fprintf(stderr, "%s: %s\n", jstr(v, "unit"), jstr(v, "load_state"));
		rc = KEELCTL_FAILED;
	}
	json_decref(v);
	return rc;
}

static int do_monitor(struct keelctl_conn *c)
{
	json_t *v = keelctl_call(c, req_unit("subscribe", NULL));
	if (!v)
		return KEELCTL_FAILED;
	json_decref(v);
	while ((v = keelctl_read(c))) {
		char *s = json_dumps(v, JSON_COMPACT);
		if (s) {
			printf("%s\n", s);
			fflush(stdout);
			free(s);
		}
		json_decref(v);
	}
	return KEELCTL_OK;
}

int keelctl_unit_verb(struct keelctl *ctl, int argc, char **argv)
{
	struct keelctl_conn c;
	if (keelctl_connect(ctl, &c) < 0)
		return KEELCTL_FAILED;
	const char *verb = ctl->verb;
	int rc;
	if (!strcmp(verb, "isolate"))
		arg_suffix = "target";
	if (!strcmp(verb, "start") || !strcmp(verb, "stop") || !strcmp(verb, "restart") || !strcmp(verb, "reload") ||
	    !strcmp(verb, "try-restart") || !strcmp(verb, "reload-or-restart") || !strcmp(verb, "isolate")) {
		rc = do_jobs(ctl, &c, argc, argv);
	} else if (!strcmp(verb, "status")) {
		rc = do_status(ctl, &c, argc, argv);
	} else if (!strcmp(verb, "is-active") || !strcmp(verb, "is-failed")) {
		rc = do_is(ctl, &c, argc, argv);
	} else if (!strcmp(verb, "is-enabled")) {
		rc = do_is_enabled(ctl, &c, argc, argv);
	} else if (!strcmp(verb, "show")) {
		rc = do_show(ctl, &c, argc, argv);
	} else if (!strncmp(verb, "list-", 5)) {
		rc = do_list(ctl, &c);
	} else if (!strcmp(verb, "enable") || !strcmp(verb, "disable") || !strcmp(verb, "mask") || !strcmp(verb, "unmask")) {
		rc = do_install(ctl, &c, argc, argv);
	} else if (!strcmp(verb, "daemon-reload")) {
		rc = simple(&c, req_unit("daemon-reload", NULL));
	} else if (!strcmp(verb, "cat")) {
		rc = do_cat(&c, argc, argv);
	} else if (!strcmp(verb, "kill")) {
		rc = KEELCTL_OK;
		for (int i = 0; i < argc; i++) {
			char u[300];
			unit_arg(argv[i], u, sizeof(u));
			json_t *r = req_unit("kill", u);
			json_object_set_new(r, "signal", json_integer(ctl->signal ? ctl->signal : SIGTERM));
			json_object_set_new(r, "whom", json_string(ctl->kill_whom ? ctl->kill_whom : "all"));
			if (simple(&c, r) != KEELCTL_OK)
				rc = KEELCTL_FAILED;
		}
	} else if (!strcmp(verb, "reset-failed")) {
		rc = KEELCTL_OK;
		if (argc == 0)
			rc = simple(&c, req_unit("reset-failed", NULL));
		for (int i = 0; i < argc; i++) {
			char u[300];
			unit_arg(argv[i], u, sizeof(u));
			if (simple(&c, req_unit("reset-failed", u)) != KEELCTL_OK)
				rc = KEELCTL_FAILED;
		}
	} else if (!strcmp(verb, "load")) {
		rc = do_load(&c, argc, argv);
	} else if (!strcmp(verb, "monitor")) {
		rc = do_monitor(&c);
	} else if (!strcmp(verb, "shutdown")) {
		rc = simple(&c, req_unit("shutdown", NULL));
	} else {
		rc = KEELCTL_USAGE;
	}
	keelctl_disconnect(&c);
	return rc;
}
