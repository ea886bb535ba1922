/* [Install]: which links enable/disable/mask/unmask make or remove (systemctl(1)). */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/mem.h"
#include "base/str.h"
#include "init/load-internal.h"
#include "init/unit-internal.h"

void keel_install_plan_free(struct keel_install_plan *p)
{
	for (size_t i = 0; i < p->n; i++) {
		keel_free(p->v[i].path);
		keel_free(p->v[i].target);
	}
	keel_free(p->v);
	p->v = NULL;
	p->n = 0;
}

static int plan_add(struct keel_install_plan *p, enum keel_install_op op, const char *path,
		    const char *target)
{
	for (size_t i = 0; i < p->n; i++)
		if (p->v[i].op == op && strcmp(p->v[i].path, path) == 0)
			return 0;
	struct keel_install_change *nv = keel_reallocarray(p->v, p->n + 1, sizeof(*nv));
	if (!nv)
		return -ENOMEM;
	p->v = nv;
	struct keel_install_change c = {op, keel_strdup(path), target ? keel_strdup(target) : NULL};
	if (!c.path || (target && !c.target)) {
		keel_free(c.path);
		keel_free(c.target);
		return -ENOMEM;
	}
	p->v[p->n++] = c;
	return 0;
}

static char *join(const char *a, const char *b, const char *c)
{
	struct keel_buf buf = KEEL_BUF_INIT;
	if (keel_buf_printf(&buf, "%s/%s%s", a, b, c ? c : "") < 0) {
		keel_buf_free(&buf);
		return NULL;
	}
	return keel_buf_steal(&buf, NULL);
}

/* Plan a link unless it already exists as wanted; a different file in the way is -EEXIST. */
static int want_link(struct keel_loader *l, struct keel_install_plan *p, const char *path,
		     const char *target)
{
	struct stat st;
	if (lstat(path, &st) == 0) {
		char *cur = S_ISLNK(st.st_mode) ? keel__readlink_abs(path) : NULL;
		bool same = cur && strcmp(cur, target) == 0;
		keel_free(cur);
		if (same)
			return 0;
		keel_diag_emit(&l->sink, KEEL_DIAG_ERR, NULL, NULL, 0,
			       "Failed to create symlink %s: File exists, and is not a link to %s.", path, target);
		return -EEXIST;
	}
	return plan_add(p, KEEL_INSTALL_SYMLINK, path, target);
}

/* An [Install] value with the install specifiers of unit_id expanded. */
static int expand_install(struct keel_loader *l, const char *unit_id, const char *fragment,
			  const char *value, char **ret)
{
	struct keel_spec_ctx ctx = {.unit_id = unit_id, .fragment_path = fragment, .host = l->host, .system = true};
	int r = keel_specifier_expand(&ctx, KEEL_SPEC_INSTALL, value, SIZE_MAX, ret, NULL);
	if (r < 0 && r != -ENOMEM)
		keel_diag_emit(&l->sink, KEEL_DIAG_WARNING, unit_id, NULL, 0,
			       "Failed to resolve specifiers in %s, ignoring: %s", value, strerror(-r));
	return r;
}

/* Load a unit for its [Install] section; templates are read through a placeholder instance. */
static int load_for_install(struct keel_loader *l, const char *name, struct keel_unit **ret)
{
	char *probe = NULL;
	if (keel_unit_name_is_valid(name, KEEL_NAME_TEMPLATE)) {
		int r = keel_unit_name_replace_instance(name, "keel-install-probe", &probe);
		if (r < 0)
			return r;
		name = probe;
	}
	int r = keel_loader_load(l, name, ret);
	keel_free(probe);
	if (r < 0)
		return r;
	struct keel_unit *u = *ret;
	if (u->load_state == KEEL_LOAD_MASKED || u->load_state == KEEL_LOAD_NOT_FOUND) {
		keel_diag_emit(&l->sink, KEEL_DIAG_ERR, NULL, NULL, 0, "Unit %s %s.", name,
			       u->load_state == KEEL_LOAD_MASKED ? "is masked" : "does not exist");
		r = u->load_state == KEEL_LOAD_MASKED ? -ERFKILL : -ENOENT;
		keel_unit_free(u);
		*ret = NULL;
		return r;
	}
	return 0;
}

static int enable_one(struct keel_loader *l, const char *name, const char *config_dir,
		      struct keel_install_plan *p, char ***queue)
{
	struct keel_unit *u;
	int r = load_for_install(l, name, &u);
	if (r < 0)
		return r;
	const struct keel_install *in = u->install;
	const char *file = u->fragment_path;
	char *unit_name = NULL;
	bool is_template = keel_unit_name_is_valid(name, KEEL_NAME_TEMPLATE);
	if (is_template) {
		if (in && in->default_instance)
			r = keel_unit_name_replace_instance(name, in->default_instance, &unit_name);
		else
			r = (unit_name = keel_strdup(name)) ? 0 : -ENOMEM;
	} else {
		r = (unit_name = keel_strdup(u->id)) ? 0 : -ENOMEM;
	}
	if (r < 0)
		goto out;
	if (!in || (!in->wanted_by && !in->required_by && !in->alias && !in->also)) {
		keel_diag_emit(&l->sink, KEEL_DIAG_NOTICE, NULL, NULL, 0,
			       "The unit files have no installation config (WantedBy=, RequiredBy=, Also=, Alias= settings in the [Install] section, and DefaultInstance= for template units). This means they are not meant to be enabled using keelctl.");
		goto out;
	}
	bool need_instance = keel_unit_name_is_valid(unit_name, KEEL_NAME_TEMPLATE);
	for (int kind = 0; kind < 2 && r == 0; kind++) {
		const char **list = kind == 0 ? in->wanted_by : in->required_by;
		const char *suffix = kind == 0 ? ".wants" : ".requires";
		for (size_t i = 0; list && list[i] && r == 0; i++) {
			if (need_instance) {
				keel_diag_emit(&l->sink, KEEL_DIAG_NOTICE, unit_name, NULL, 0,
					       "Unit %s is a template unit without DefaultInstance=; %s= needs an instance, ignoring.",
					       unit_name, kind == 0 ? "WantedBy" : "RequiredBy");
				break;
			}
			char *t;
			r = expand_install(l, unit_name, file, list[i], &t);
			if (r == -ENOMEM)
				break;
			if (r < 0) {
				r = 0;
				continue;
			}
			if (!keel_unit_name_is_valid(t, KEEL_NAME_PLAIN | KEEL_NAME_INSTANCE)) {
				keel_diag_emit(&l->sink, KEEL_DIAG_WARNING, unit_name, NULL, 0,
					       "Invalid unit name %s in %s=, ignoring.", t, kind == 0 ? "WantedBy" : "RequiredBy");
				keel_free(t);
				continue;
			}
			struct keel_buf dir = KEEL_BUF_INIT;
			r = keel_buf_printf(&dir, "%s%s", t, suffix);
			char *link = r == 0 ? join(config_dir, dir.data, NULL) : NULL;
			char *link2 = link ? join(link, unit_name, NULL) : NULL;
			r = link2 ? want_link(l, p, link2, file) : -ENOMEM;
			keel_buf_free(&dir);
			keel_free(link);
			keel_free(link2);
			keel_free(t);
		}
	}
	for (size_t i = 0; in->alias && in->alias[i] && r == 0; i++) {
		char *a;
		r = expand_install(l, unit_name, file, in->alias[i], &a);
		if (r < 0) {
			r = r == -ENOMEM ? r : 0;
			continue;
		}
		char *link = join(config_dir, a, NULL);
		if (!link)
			r = -ENOMEM;
		else if (keel__validate_alias(&l->sink, link, a, unit_name) == 0)
			r = want_link(l, p, link, file);
		keel_free(link);
		keel_free(a);
	}
	for (size_t i = 0; in->also && in->also[i] && r == 0; i++) {
		char *a;
		r = expand_install(l, unit_name, file, in->also[i], &a);
		if (r < 0) {
			r = r == -ENOMEM ? r : 0;
			continue;
		}
		r = keel_strv_consume(queue, a);
	}
out:
	keel_free(unit_name);
	keel_unit_free(u);
	return r;
}

int keel_install_plan_enable(struct keel_loader *l, const char *name, const char *config_dir,
			     struct keel_install_plan *ret)
{
	struct keel_install_plan p = {0};
	char **queue = NULL, **done = NULL;
	int r = keel_strv_push(&queue, name);
	for (size_t i = 0; r == 0 && queue[i]; i++) {
		if (keel_strv_contains(done, queue[i]))
			continue;
		if ((r = keel_strv_push(&done, queue[i])) < 0)
			break;
		r = enable_one(l, queue[i], config_dir, &p, &queue);
	}
	keel_strv_free(queue);
	keel_strv_free(done);
	if (r < 0) {
		keel_install_plan_free(&p);
		return r;
	}
	*ret = p;
	return 0;
}

/* The names and files enabling touched: the unit, its Alias= names, its Also= units. */
static int collect_names(struct keel_loader *l, const char *name, char ***names, char ***files)
{
	char **queue = NULL;
	int r = keel_strv_push(&queue, name);
	for (size_t i = 0; r == 0 && queue[i]; i++) {
		if (keel_strv_contains(*names, queue[i]))
			continue;
		if ((r = keel_strv_push(names, queue[i])) < 0)
			break;
		struct keel_unit *u;
		r = load_for_install(l, queue[i], &u);
		if (r < 0)
			break;
		if (!keel_unit_name_is_valid(queue[i], KEEL_NAME_TEMPLATE) && !keel_strv_contains(*names, u->id))
			r = keel_strv_push(names, u->id);
		if (r == 0 && u->fragment_path && !keel_strv_contains(*files, u->fragment_path))
			r = keel_strv_push(files, u->fragment_path);
		for (size_t k = 0; r == 0 && u->install && u->install->alias && u->install->alias[k]; k++) {
			char *a;
			r = expand_install(l, u->id, u->fragment_path, u->install->alias[k], &a);
			if (r == 0)
				r = keel_strv_consume(names, a);
			else if (r != -ENOMEM)
				r = 0;
		}
		for (size_t k = 0; r == 0 && u->install && u->install->also && u->install->also[k]; k++) {
			char *a;
			r = expand_install(l, u->id, u->fragment_path, u->install->also[k], &a);
			if (r == 0)
				r = keel_strv_consume(&queue, a);
			else if (r != -ENOMEM)
				r = 0;
		}
		keel_unit_free(u);
	}
	keel_strv_free(queue);
	return r;
}

static int disable_scan(const char *dir, int depth, char *const *names, char *const *files,
			struct keel_install_plan *p)
{
	DIR *d = opendir(dir);
	if (!d)
		return 0;
	int r = 0;
	struct dirent *de;
	while ((de = readdir(d)) && r == 0) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		char *path = join(dir, de->d_name, NULL);
		if (!path) {
			r = -ENOMEM;
			break;
		}
		struct stat st;
		if (lstat(path, &st) == 0) {
			if (S_ISDIR(st.st_mode) && depth < 1) {
				r = disable_scan(path, depth + 1, names, files, p);
			} else if (S_ISLNK(st.st_mode)) {
				char *t = keel__readlink_abs(path);
				if (t && strcmp(t, "/dev/null") != 0) {
					const char *tb = strrchr(t, '/') + 1;
					if (keel_strv_contains(names, de->d_name) || keel_strv_contains(files, t) ||
					    keel_strv_contains(names, tb))
						r = plan_add(p, KEEL_INSTALL_UNLINK, path, NULL);
				}
				keel_free(t);
			}
		}
		keel_free(path);
	}
	closedir(d);
	return r;
}

int keel_install_plan_disable(struct keel_loader *l, const char *name, const char *config_dir,
			      struct keel_install_plan *ret)
{
	struct keel_install_plan p = {0};
	char **names = NULL, **files = NULL;
	int r = collect_names(l, name, &names, &files);
	if (r == 0)
		r = disable_scan(config_dir, 0, names, files, &p);
	keel_strv_free(names);
	keel_strv_free(files);
	if (r < 0) {
		keel_install_plan_free(&p);
		return r;
	}
	*ret = p;
	return 0;
}

int keel_install_plan_mask(struct keel_loader *l, const char *name, const char *config_dir,
			   struct keel_install_plan *ret)
{
	if (!keel_unit_name_is_valid(name, KEEL_NAME_ANY))
		return -EINVAL;
	struct keel_install_plan p = {0};
	char *link = join(config_dir, name, NULL);
	if (!link)
		return -ENOMEM;
	int r = want_link(l, &p, link, "/dev/null");
	keel_free(link);
	if (r < 0) {
		keel_install_plan_free(&p);
		return r;
	}
	*ret = p;
	return 0;
}

int keel_install_plan_unmask(struct keel_loader *l, const char *name, const char *config_dir,
			     struct keel_install_plan *ret)
{
	if (!keel_unit_name_is_valid(name, KEEL_NAME_ANY))
		return -EINVAL;
	struct keel_install_plan p = {0};
	char *link = join(config_dir, name, NULL);
	if (!link)
		return -ENOMEM;
	int r = 0;
	char *t = keel__readlink_abs(link);
	if (t && strcmp(t, "/dev/null") == 0)
		r = plan_add(&p, KEEL_INSTALL_UNLINK, link, NULL);
	keel_free(t);
	keel_free(link);
	(void)l;
	if (r < 0) {
		keel_install_plan_free(&p);
		return r;
	}
	*ret = p;
	return 0;
}

static int mkdir_parents(const char *path)
{
	char buf[PATH_MAX];
	if (strlen(path) >= sizeof(buf))
		return -ENAMETOOLONG;
	strcpy(buf, path);
	for (char *s = buf + 1; *s; s++) {
		if (*s != '/')
			continue;
		*s = '\0';
		if (mkdir(buf, 0755) < 0 && errno != EEXIST)
			return -errno;
		*s = '/';
	}
	return 0;
}

int keel_install_apply(struct keel_loader *l, const struct keel_install_plan *p)
{
	for (size_t i = 0; i < p->n; i++) {
		const struct keel_install_change *c = &p->v[i];
		int r = 0;
		if (c->op == KEEL_INSTALL_SYMLINK) {
			r = mkdir_parents(c->path);
			if (r == 0 && symlink(c->target, c->path) < 0)
				r = -errno;
		} else if (unlink(c->path) < 0 && errno != ENOENT) {
			r = -errno;
		} else {
			/* An emptied .wants/ or .requires/ directory goes too. */
			char dir[PATH_MAX];
			snprintf(dir, sizeof(dir), "%s", c->path);
			char *slash = strrchr(dir, '/');
			if (slash) {
				*slash = '\0';
				if (keel_endswith(dir, ".wants") || keel_endswith(dir, ".requires"))
					(void)rmdir(dir);
			}
		}
		if (r < 0) {
			keel_diag_emit(&l->sink, KEEL_DIAG_ERR, NULL, NULL, 0, "Failed to %s %s: %s",
				       c->op == KEEL_INSTALL_SYMLINK ? "create symlink" : "remove", c->path,
				       strerror(-r));
			return r;
		}
	}
	return 0;
}
