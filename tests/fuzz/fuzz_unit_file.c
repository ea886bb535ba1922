/* Fuzz lib/init's unit-file loading end to end: the line grammar, word splitting and escapes,
 * every option parser, specifiers, the typed model and the load-time checks. The first input
 * byte picks the unit's name (service, socket, timer, target, an instance); the rest is the
 * unit file. No file system is touched (the search path is empty).
 *
 * Properties: nothing crashes, reads out of bounds or leaks (ASan/LSan); the load state is one
 * of systemd's; a loaded unit satisfies what the checks promise (a service has ExecStart= or
 * ExecStop=, a non-oneshot service exactly one ExecStart=, a socket a listener, a timer a
 * value); every command has a path and a NULL-terminated argv of argc entries; every calendar
 * value prints; every diagnostic has a message. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "init/load.h"
#include "init/unit.h"
#include "init/words.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_diag(void *userdata, const struct keel_diag *d)
{
	char line[2048];
	if (!d->msg || !d->msg[0] || keel_diag_format(d, line, sizeof(line)) == 0)
		abort();
	(void)userdata;
}

static struct keel_host_info host = {
	.hostname = "fuzz", .machine_id = "0123456789abcdef0123456789abcdef",
	.boot_id = "fedcba9876543210fedcba9876543210", .kernel_release = "6", .architecture = "x86-64",
	.user_name = "root", .user_home = "/root", .user_shell = "/bin/sh", .group_name = "root",
};

static void check_exec(const struct keel_exec_cmd *c)
{
	static char *const env[] = {"A=1", "B=two words", NULL};
	for (; c; c = c->next) {
		if (!c->path || !c->argv || c->argv[c->argc] || c->argc == 0)
			abort();
		for (uint32_t i = 0; i < c->argc; i++)
			if (!c->argv[i])
				abort();
		char **out;
		if (keel_exec_expand_argv(c->argv, env, &out) == 0) {
			for (size_t i = 0; out[i]; i++)
				free(out[i]);
			free(out);
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct keel_loader *l;
	if (!l) {
		static const char *const none[] = {"/nonexistent/keel-fuzz", NULL};
		struct keel_loader_config cfg = {.search_path = none, .host = &host, .sink = {check_diag, NULL}};
		if (keel_loader_new(&cfg, &l) < 0)
			abort();
	}
	if (size < 1 || size > 256 * 1024)
		return 0;
	static const char *const names[] = {"fuzz.service", "fuzz.socket", "fuzz.timer", "fuzz.target",
					    "fuzz@in-st\\x2dance.service"};
	const char *name = names[data[0] % 5];
	struct keel_unit *u;
	int r = keel_loader_load_text(l, name, "/fuzz/unit", (const char *)data + 1, size - 1, &u);
	if (r == -ENOMEM)
		return 0;
	if (r < 0)
		abort();
	if (u->load_state >= KEEL_LOAD_STATE_MAX || u->load_state == KEEL_LOAD_STUB)
		abort();
	if (u->load_state == KEEL_LOAD_LOADED) {
		const struct keel_service *s = keel_unit_service(u);
		if (s) {
			if (!s->exec[KEEL_EXEC_START] && !s->exec[KEEL_EXEC_STOP] &&
			    u->success_action == KEEL_ACTION_NONE)
				abort();
			if (s->type != KEEL_SERVICE_ONESHOT && s->exec[KEEL_EXEC_START] &&
			    s->exec[KEEL_EXEC_START]->next)
				abort();
			for (int i = 0; i < KEEL_EXEC_SLOT_MAX; i++)
				check_exec(s->exec[i]);
		}
		const struct keel_socket *so = keel_unit_socket(u);
		if (so && so->n_listen == 0)
			abort();
		const struct keel_timer *t = keel_unit_timer(u);
		if (t) {
			if (t->n_values == 0 && !t->on_clock_change && !t->on_timezone_change)
				abort();
			for (uint16_t i = 0; i < t->n_values; i++) {
				char *str;
				if (t->values[i].base == KEEL_TIMER_CALENDAR &&
				    keel_calendar_to_string(t->values[i].calendar, &str) == 0)
					free(str);
			}
		}
		for (uint32_t i = 0; i < u->n_deps; i++)
			if (!keel_unit_name_is_valid(u->deps[i].name, KEEL_NAME_PLAIN | KEEL_NAME_INSTANCE))
				abort();
		char *trig = keel_unit_triggered_name(u);
		free(trig);
	}
	keel_unit_free(u);
	return 0;
}
