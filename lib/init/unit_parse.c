/* The assignment dispatcher and the parsers of [Unit], [Install] and the generic value types.
 * Each parser reports what systemd reports, in its words, and returns 0 to go on (also after
 * "..., ignoring"), -ENOEXEC for a bad setting that makes the unit unloadable, or another
 * negative errno that fails the file. */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "base/mem.h"
#include "base/str.h"
#include "init/unit-internal.h"
#include "init/words.h"

void keel__pwarn(struct keel__pctx *c, enum keel_diag_level level, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	keel_diag_vemit(c->sink, level, c->u->id, c->file, c->line, fmt, ap);
	va_end(ap);
}

void keel__uwarn(const struct keel_unit *u, const struct keel_diag_sink *sink,
		 enum keel_diag_level level, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	keel_diag_vemit(sink, level, u->id, NULL, 0, fmt, ap);
	va_end(ap);
}

int keel__expand(struct keel__pctx *c, enum keel_spec_table table, const char *text, size_t max,
		 char **ret)
{
	struct keel_spec_ctx ctx = {
		.unit_id = c->u->id, .fragment_path = c->u->fragment_path, .host = c->host,
		.system = c->system,
	};
	bool deprecated = false;
	int r = keel_specifier_expand(&ctx, table, text, max, ret, &deprecated);
	if (deprecated) {
		/* systemd warns each time one of these is resolved */
		for (const char *p = text; *p; p++) {
			if (p[0] != '%' || !p[1])
				continue;
			if (strchr("crR", p[1]))
				keel__uwarn(c->u, c->sink, KEEL_DIAG_WARNING,
					    "Specifier '%%%c' used in unit configuration, which is deprecated. Please update your unit file, as it does not work as intended.",
					    p[1]);
			p++;
		}
	}
	return r;
}

int keel__expand_or_ignore(struct keel__pctx *c, enum keel_spec_table table, const char *text, size_t max,
			   char **ret)
{
	int r = keel__expand(c, table, text, max, ret);
	if (r == 0 || r == -ENOMEM)
		return r;
	keel__pwarn(c, KEEL_DIAG_WARNING, "Failed to resolve unit specifiers in '%s', ignoring: %s", text,
		    strerror(-r));
	return 1;
}

int keel__path_check(struct keel__pctx *c, char *path, bool absolute, bool fatal)
{
	const char *ign = fatal ? "" : ", ignoring";
	if (!keel_utf8_is_valid(path)) {
		char *e = keel_utf8_escape_invalid(path);
		keel__pwarn(c, KEEL_DIAG_ERR, "String is not UTF-8 clean, ignoring assignment: %s", e ? e : "");
		keel_free(e);
		return -EINVAL;
	}
	if (absolute && !keel_path_is_absolute(path)) {
		keel__pwarn(c, KEEL_DIAG_ERR, "%s= path is not absolute%s: %s", c->key, ign, path);
		return -EINVAL;
	}
	keel_path_simplify(path);
	if (!keel_path_is_valid(path)) {
		keel__pwarn(c, KEEL_DIAG_ERR, "%s= path has invalid length (%zu bytes)%s.", c->key,
			    strlen(path), ign);
		return -EINVAL;
	}
	if (!keel_path_is_normalized(path)) {
		keel__pwarn(c, KEEL_DIAG_ERR, "%s= path is not normalized%s: %s", c->key, ign, path);
		return -EINVAL;
	}
	return 0;
}

bool keel__user_group_name_is_valid(const char *u)
{
	if (!*u)
		return false;
	/* A numeric id, but not the two that mean "none" */
	if (strspn(u, "0123456789") == strlen(u)) {
		uint64_t v;
		if (keel_safe_atou64(u, &v) < 0 || v >= UINT32_MAX || v == 65535)
			return false;
		return true;
	}
	size_t n = strlen(u);
	if (u[0] == ' ' || u[n - 1] == ' ' || u[0] == '-')
		return false;
	if (!keel_utf8_is_valid(u))
		return false;
	for (const unsigned char *p = (const unsigned char *)u; *p; p++)
		if (*p < ' ' || *p == 0x7f || *p == ':' || *p == '/')
			return false;
	if (strcmp(u, ".") == 0 || strcmp(u, "..") == 0)
		return false;
	return true;
}

/* Intern s into *slot, dropping the old value. */
static int set_pool_string(struct keel__pctx *c, const char **slot, const char *s)
{
	const char *n = NULL;
	if (s) {
		n = keel_pool_intern(c->u->pool, s);
		if (!n)
			return -ENOMEM;
	}
	keel_pool_unref(c->u->pool, *slot);
	*slot = n;
	return 0;
}

static void set_bool_field(struct keel_unit *u, int field, bool b)
{
	struct keel_service *s = keel_unit_service(u);
	struct keel_socket *so = keel_unit_socket(u);
	struct keel_timer *t = keel_unit_timer(u);
	switch ((enum keel__bool_field)field) {
	case KEEL__B_DEFAULT_DEPENDENCIES: u->default_dependencies = b; break;
	case KEEL__B_REFUSE_MANUAL_START: u->refuse_manual_start = b; break;
	case KEEL__B_REFUSE_MANUAL_STOP: u->refuse_manual_stop = b; break;
	case KEEL__B_STOP_WHEN_UNNEEDED: u->stop_when_unneeded = b; break;
	case KEEL__B_ALLOW_ISOLATE: u->allow_isolate = b; break;
	case KEEL__B_IGNORE_ON_ISOLATE: u->ignore_on_isolate = b; break;
	case KEEL__B_REMAIN_AFTER_EXIT: if (s) s->remain_after_exit = b; break;
	case KEEL__B_GUESS_MAIN_PID: if (s) s->guess_main_pid = b; break;
	case KEEL__B_ROOT_DIRECTORY_START_ONLY: if (s) s->root_directory_start_only = b; break;
	case KEEL__B_SEND_SIGKILL: if (s) s->kill.send_sigkill = b; break;
	case KEEL__B_SEND_SIGHUP: if (s) s->kill.send_sighup = b; break;
	case KEEL__B_PRIVATE_TMP: if (s) s->exec_ctx.private_tmp = b; break;
	case KEEL__B_ACCEPT: if (so) so->accept = b; break;
	case KEEL__B_REUSE_PORT: if (so) so->reuse_port = b; break;
	case KEEL__B_REMOVE_ON_STOP: if (so) so->remove_on_stop = b; break;
	case KEEL__B_PASS_CREDENTIALS: if (so) so->pass_credentials = b; break;
	case KEEL__B_KEEP_ALIVE: if (so) so->keep_alive = b; break;
	case KEEL__B_NO_DELAY: if (so) so->no_delay = b; break;
	case KEEL__B_FREE_BIND: if (so) so->free_bind = b; break;
	case KEEL__B_BROADCAST: if (so) so->broadcast = b; break;
	case KEEL__B_WRITABLE: if (so) so->writable = b; break;
	case KEEL__B_PERSISTENT: if (t) t->persistent = b; break;
	case KEEL__B_WAKE_SYSTEM: if (t) t->wake_system = b; break;
	case KEEL__B_REMAIN_AFTER_ELAPSE: if (t) t->remain_after_elapse = b; break;
	case KEEL__B_ON_CLOCK_CHANGE: if (t) t->on_clock_change = b; break;
	case KEEL__B_ON_TIMEZONE_CHANGE: if (t) t->on_timezone_change = b; break;
	case KEEL__B_FIXED_RANDOM_DELAY: if (t) t->fixed_random_delay = b; break;
	}
}

int keel__parse_bool(struct keel__pctx *c, const char *v, void *data, int ltype)
{
	int b = keel_parse_boolean(v);
	if (b < 0) {
		keel__pwarn(c, KEEL_DIAG_WARNING, "Failed to parse boolean value, ignoring: %s", v);
		return 0;
	}
	set_bool_field(c->u, ltype, b);
	return 0;
}

int keel__parse_sec(struct keel__pctx *c, const char *v, void *data, int ltype)
{
	uint64_t usec;
	if (keel_parse_sec(v, &usec) < 0) {
		keel__pwarn(c, KEEL_DIAG_WARNING, "Failed to parse sec value, ignoring: %s", v);
		return 0;
	}
	*(uint64_t *)data = usec;
	return 0;
}

int keel__parse_unsigned(struct keel__pctx *c, const char *v, void *data, int ltype)
{
	uint64_t n;
	const char *s = v + strspn(v, " \t\n\r");
	if (keel_safe_atou64(v, &n) < 0 || s[0] == '-' || n > UINT_MAX) {
		keel__pwarn(c, KEEL_DIAG_WARNING, "Failed to parse unsigned value, ignoring: %s", v);
		return 0;
	}
	*(uint32_t *)data = (uint32_t)n;
	return 0;
}

int keel__parse_mode(struct keel__pctx *c, const char *v, void *data, int ltype)
{
	mode_t m;
	if (keel_parse_mode(v, &m) < 0) {
		keel__pwarn(c, KEEL_DIAG_WARNING, "Failed to parse mode value, ignoring: %s", v);
		return 0;
	}
	*(uint16_t *)data = (uint16_t)m;
	return 0;
}

int keel__parse_string_printf(struct keel__pctx *c, const char *v, void *data, int ltype)
{
	char *k;
	int r = keel__expand_or_ignore(c, KEEL_SPEC_FULL, v, SIZE_MAX, &k);
	if (r != 0)
		return r < 0 ? r : 0;
	r = set_pool_string(c, data, *k ? k : NULL);
	keel_free(k);
	return r;
}

static bool ascii_printable(const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		if (*p < ' ' || *p >= 127)
			return false;
	return true;
}

static bool documentation_url_is_valid(const char *url)
{
	const char *p;
	if ((p = keel_startswith(url, "http://")) || (p = keel_startswith(url, "https://")) ||
	    (p = keel_startswith(url, "file:/")) || (p = keel_startswith(url, "info:")) ||
	    (p = keel_startswith(url, "man:")))
		return *p && ascii_printable(p);
	return false;
}

int keel__parse_documentation(struct keel__pctx *c, const char *v, void *data, int ltype)
{
	const char ***list = data;
	if (!*v) {
		keel_pool_strv_clear(c->u->pool, list);
		return 0;
	}
	for (const char *p = v;;) {
		char *word, *k;
		int r = keel_extract_word(&p, &word, NULL, KEEL_EXTRACT_UNQUOTE);
		if (r == 0)
			return 0;
		if (r == -ENOMEM)
			return r;
		if (r < 0) {
			keel__pwarn(c, KEEL_DIAG_WARNING, "Invalid syntax, ignoring: %s", v);
			return 0;
		}
		r = keel__expand_or_ignore(c, KEEL_SPEC_FULL, word, SIZE_MAX, &k);
		if (r != 0) {
			keel_free(word);
			return r < 0 ? r : 0;
		}
		keel_free(word);
		if (!documentation_url_is_valid(k)) {
			keel__pwarn(c, KEEL_DIAG_ERR, "Invalid URL, ignoring: %s", k);
			keel_free(k);
			continue;
		}
		r = keel_pool_strv_add(c->u->pool, list, k);
		keel_free(k);
		if (r < 0)
			return r;
	}
}

/* systemd drops a dependency on the unit itself, and says so for these kinds. */
static bool warn_about_self_dep(enum keel_dep_kind k)
{
	return k == KEEL_DEP_CONFLICTS || k == KEEL_DEP_BEFORE || k == KEEL_DEP_AFTER ||
	       k == KEEL_DEP_ON_SUCCESS || k == KEEL_DEP_ON_FAILURE || k == KEEL_DEP_TRIGGERS;
}

/* A template name gets the unit's instance, or its prefix when it has none (resolve_template). */
static int resolve_template(struct keel_unit *u, const char *name, char **ret)
{
	if (!keel_unit_name_is_valid(name, KEEL_NAME_TEMPLATE)) {
		*ret = keel_strdup(name);
		return *ret ? 0 : -ENOMEM;
	}
	char *inst = NULL;
	int r = keel_unit_name_instance(u->id, &inst);
	if (r < 0)
		return r;
	if (!inst) {
		r = keel_unit_name_prefix(u->id, &inst);
		if (r < 0)
			return r;
	}
	r = keel_unit_name_replace_instance(name, inst, ret);
	keel_free(inst);
	return r;
}

static bool is_own_name(const struct keel_unit *u, const char *name)
{
	if (strcmp(u->id, name) == 0)
		return true;
	for (size_t i = 0; u->aliases && u->aliases[i]; i++)
		if (strcmp(u->aliases[i], name) == 0)
			return true;
	return false;
}

int keel__parse_deps(struct keel__pctx *c, const char *v, void *data, int ltype)
{
	enum keel_dep_kind kind = (enum keel_dep_kind)ltype;
	for (const char *p = v;;) {
		char *word, *k, *name;
		int r = keel_extract_word(&p, &word, NULL, KEEL_EXTRACT_RETAIN_ESCAPE);
		if (r == 0)
			return 0;
		if (r == -ENOMEM)
			return r;
		if (r < 0) {
			keel__pwarn(c, KEEL_DIAG_WARNING, "Invalid syntax, ignoring: %s", v);
			return 0;
		}
		r = keel__expand_or_ignore(c, KEEL_SPEC_UNIT_NAME, word, SIZE_MAX, &k);
		if (r != 0) {
			keel_free(word);
			if (r < 0)
				return r;
			continue;
		}
		keel_free(word);
		if (!keel_unit_name_is_valid(k, KEEL_NAME_ANY)) {
			keel__pwarn(c, KEEL_DIAG_WARNING, "Failed to add dependency on %s, ignoring: %s", k,
				    strerror(EINVAL));
			keel_free(k);
			continue;
		}
		r = resolve_template(c->u, k, &name);
		if (r < 0) {
			if (r != -ENOMEM)
				keel__pwarn(c, KEEL_DIAG_WARNING, "Failed to add dependency on %s, ignoring: %s", k,
					    strerror(-r));
			keel_free(k);
			if (r == -ENOMEM)
				return r;
			continue;
		}
		keel_free(k);
		if (is_own_name(c->u, name)) {
			if (warn_about_self_dep(kind))
				keel__uwarn(c->u, c->sink, KEEL_DIAG_WARNING, "Dependency %s=%s is dropped.",
					    keel_dep_kind_to_string(kind), c->u->id);
			keel_free(name);
			continue;
		}
		r = keel_unit_add_dep(c->u, kind, name, KEEL_DEP_FROM_FILE);
		keel_free(name);
		if (r < 0)
			return r;
	}
}

int keel__parse_condition(struct keel__pctx *c, const char *v, void *data, int ltype)
{
	struct keel_unit *u = c->u;
	enum keel_condition_kind kind = (enum keel_condition_kind)(ltype & 0xff);
	uint8_t flags = (ltype & 0x100) ? KEEL_COND_ASSERT : 0;
	if (!*v) {
		/* An empty assignment resets every Condition (or every Assert) of any kind. */
		uint32_t k = 0;
		for (uint32_t i = 0; i < u->n_conditions; i++) {
			if ((u->conditions[i].flags & KEEL_COND_ASSERT) == flags)
				keel_pool_unref(u->pool, u->conditions[i].param);
			else
				u->conditions[k++] = u->conditions[i];
		}
		u->n_conditions = k;
		return 0;
	}
	if (*v == '|') {
		flags |= KEEL_COND_TRIGGER;
		v++;
		v += strspn(v, " \t\n\r");
	}
	if (*v == '!') {
		flags |= KEEL_COND_NEGATE;
		v++;
		v += strspn(v, " \t\n\r");
	}
	char *s;
	int r = keel__expand_or_ignore(c, KEEL_SPEC_FULL, v, keel_condition_kind_takes_path(kind) ? PATH_MAX : SIZE_MAX, &s);
	if (r != 0)
		return r < 0 ? r : 0;
	if (keel_condition_kind_takes_path(kind) && keel__path_check(c, s, true, false) < 0) {
		keel_free(s);
		return 0;
	}
	struct keel_condition *nc = keel_reallocarray(u->conditions, u->n_conditions + 1, sizeof(*nc));
	if (!nc) {
		keel_free(s);
		return -ENOMEM;
	}
	u->conditions = nc;
	const char *param = keel_pool_intern(u->pool, s);
	keel_free(s);
	if (!param)
		return -ENOMEM;
	u->conditions[u->n_conditions++] = (struct keel_condition){param, (uint8_t)kind, flags};
	return 0;
}

int keel__parse_job_timeout(struct keel__pctx *c, const char *v, void *data, int ltype)
{
	uint64_t usec;
	if (keel_parse_sec_fix_0(v, &usec) < 0) {
		keel__pwarn(c, KEEL_DIAG_WARNING, "Failed to parse %s= parameter, ignoring: %s", c->key, v);
		return 0;
	}
	*(uint64_t *)data = usec;
	return 0;
}

int keel__parse_emergency_action(struct keel__pctx *c, const char *v, void *data, int ltype)
{
	for (int i = 0; i < KEEL_ACTION_MAX; i++) {
		if (strcmp(v, keel_emergency_action_to_string((enum keel_emergency_action)i)) == 0) {
			*(uint8_t *)data = (uint8_t)i;
			return 0;
		}
	}
	keel__pwarn(c, KEEL_DIAG_WARNING, "Failed to parse %s=, ignoring: %s", c->key, v);
	return 0;
}

int keel__parse_exit_code(struct keel__pctx *c, const char *v, void *data, int ltype)
{
	int16_t *code = data;
	if (!*v) {
		*code = -1;
		return 0;
	}
	uint64_t n;
	int r = keel_safe_atou64(v, &n);
	if (r == 0 && n > 255)
		r = -ERANGE;
	if (r < 0) {
		keel__pwarn(c, KEEL_DIAG_WARNING, "Failed to parse exit status '%s', ignoring: %s", v, strerror(-r));
		return 0;
	}
	*code = (int16_t)n;
	return 0;
}

int keel__parse_job_mode(struct keel__pctx *c, const char *v, void *data, int ltype)
{
	for (int i = 0; i < KEEL_JOB_MODE_MAX; i++) {
		if (strcmp(v, keel_job_mode_to_string((enum keel_job_mode)i)) == 0) {
			*(uint8_t *)data = (uint8_t)i;
			return 0;
		}
	}
	keel__pwarn(c, KEEL_DIAG_WARNING, "Failed to parse job mode, ignoring: %s", v);
	return 0;
}

int keel__parse_install_strv(struct keel__pctx *c, const char *v, void *data, int ltype)
{
	const char ***list = data;
	if (!*v) {
		keel_pool_strv_clear(c->u->pool, list);
		return 0;
	}
	for (const char *p = v;;) {
		char *word;
		int r = keel_extract_word(&p, &word, NULL, ltype ? 0 : KEEL_EXTRACT_UNQUOTE | KEEL_EXTRACT_RETAIN_ESCAPE);
		if (r == 0)
			return 0;
		if (r == -ENOMEM)
			return r;
		if (r < 0) {
			keel__pwarn(c, KEEL_DIAG_WARNING, "Invalid syntax, ignoring: %s", v);
			return 0;
		}
		r = keel_pool_strv_add(c->u->pool, list, word);
		keel_free(word);
		if (r < 0)
			return r;
	}
}

int keel__parse_install_string(struct keel__pctx *c, const char *v, void *data, int ltype)
{
	return set_pool_string(c, data, *v ? v : NULL);
}

int keel__parse_path_strv(struct keel__pctx *c, const char *v, void *data, int ltype)
{
	const char ***list = data;
	if (!*v) {
		keel_pool_strv_clear(c->u->pool, list);
		return 0;
	}
	for (const char *p = v;;) {
		char *word, *k;
		int r = keel_extract_word(&p, &word, NULL, KEEL_EXTRACT_UNQUOTE);
		if (r == 0)
			return 0;
		if (r == -ENOMEM)
			return r;
		if (r < 0) {
			keel__pwarn(c, KEEL_DIAG_WARNING, "Invalid syntax, ignoring: %s", v);
			return 0;
		}
		r = keel__expand_or_ignore(c, KEEL_SPEC_FULL, word, PATH_MAX, &k);
		if (r != 0) {
			keel_free(word);
			if (r < 0)
				return r;
			continue;
		}
		keel_free(word);
		if (keel__path_check(c, k, true, false) < 0) {
			keel_free(k);
			if (ltype)
				return 0; /* Symlinks= drops the rest of the line, RequiresMountsFor= not */
			continue;
		}
		r = keel_pool_strv_add(c->u->pool, list, k);
		keel_free(k);
		if (r < 0)
			return r;
	}
}

int keel__parse_user_group(struct keel__pctx *c, const char *v, void *data, int ltype)
{
	if (!*v)
		return set_pool_string(c, data, NULL);
	char *k;
	int r = keel__expand(c, KEEL_SPEC_FULL, v, SIZE_MAX, &k);
	if (r < 0) {
		if (r == -ENOMEM)
			return r;
		keel__pwarn(c, KEEL_DIAG_ERR, "Failed to resolve unit specifiers in %s: %s", v, strerror(-r));
		return -ENOEXEC;
	}
	if (!keel__user_group_name_is_valid(k)) {
		keel__pwarn(c, KEEL_DIAG_ERR, "Invalid user/group name or numeric ID: %s", k);
		keel_free(k);
		return -ENOEXEC;
	}
	r = set_pool_string(c, data, k);
	keel_free(k);
	return r;
}

/* The syntax callbacks */

static enum keel_section_kind section_kind(void *userdata, const char *name)
{
	struct keel__pctx *c = userdata;
	if (keel_startswith(name, "X-"))
		return KEEL_SECTION_KNOWN;
	if (strcmp(name, "Unit") == 0 || strcmp(name, "Install") == 0)
		return KEEL_SECTION_KNOWN;
	switch (c->u->type) {
	case KEEL_UNIT_SERVICE:
		return strcmp(name, "Service") == 0 ? KEEL_SECTION_KNOWN : KEEL_SECTION_UNKNOWN;
	case KEEL_UNIT_SOCKET:
		return strcmp(name, "Socket") == 0 ? KEEL_SECTION_KNOWN : KEEL_SECTION_UNKNOWN;
	case KEEL_UNIT_TIMER:
		return strcmp(name, "Timer") == 0 ? KEEL_SECTION_KNOWN : KEEL_SECTION_UNKNOWN;
	default:
		return KEEL_SECTION_UNKNOWN;
	}
}

static void *option_data(struct keel__pctx *c, const struct keel__option *o)
{
	struct keel_unit *u = c->u;
	switch (o->base) {
	case KEEL__BASE_UNIT:
		return (char *)u + o->offset;
	case KEEL__BASE_TYPE:
		return (char *)&((struct keel__unit_block *)u)->t + o->offset;
	case KEEL__BASE_INSTALL:
		if (!u->install) {
			u->install = keel_calloc(1, sizeof(*u->install));
			if (!u->install)
				return NULL;
		}
		return (char *)u->install + o->offset;
	}
	return NULL;
}

static int assign(void *userdata, const struct keel_syntax_item *it)
{
	struct keel__pctx *c = userdata;
	c->file = it->file;
	c->line = it->line;
	c->section = it->section;
	c->key = it->key;
	if (keel_startswith(it->section, "X-"))
		return keel__unit_add_xentry(c->u, it->section, it->key, it->value);
	const struct keel__option *o = keel__option_find(it->section, it->key);
	if (o) {
		if (o->base == KEEL__BASE_INSTALL && c->in_dropin)
			return 0;
		void *data = option_data(c, o);
		if (!data)
			return -ENOMEM;
		return o->parse(c, it->value, data, o->ltype);
	}
	if (keel_startswith(it->key, "X-"))
		return keel__unit_add_xentry(c->u, it->section, it->key, it->value);
	if (keel__systemd_knows_key(it->section, it->key)) {
		keel__pwarn(c, KEEL_DIAG_NOTICE, "Key '%s' in section [%s] is not supported by keel-init, ignoring.",
			    it->key, it->section);
		return 0;
	}
	keel__pwarn(c, KEEL_DIAG_WARNING, "Unknown key '%s' in section [%s], ignoring.", it->key,
		    it->section);
	return 0;
}

const struct keel_syntax_ops keel__unit_syntax_ops = {
	.section = section_kind,
	.assign = assign,
};
