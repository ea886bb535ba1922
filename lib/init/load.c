#include "init/load.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/mem.h"
#include "base/str.h"
#include "init/load-internal.h"
#include "init/unit-internal.h"

#define FOLLOW_MAX 8

static const char *const keel_paths[] = {KEEL_UNIT_PATH_ETC, KEEL_UNIT_PATH_RUN, KEEL_UNIT_PATH_LIB, NULL};
static const char *const systemd_paths[] = {
	"/etc/systemd/system", "/run/systemd/system", "/lib/systemd/system", "/usr/lib/systemd/system", NULL,
};

struct keel_pool *keel_loader_pool(struct keel_loader *l)
{
	return l->pool;
}

const char *const *keel_loader_search_path(const struct keel_loader *l)
{
	return (const char *const *)l->active;
}

static void subdirs_clear(struct keel_loader *l)
{
	keel_strv_free(l->subdirs);
	l->subdirs = NULL;
	l->n_subdirs = 0;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

bool keel__subdir_exists(const struct keel_loader *l, const char *path)
{
	return l->n_subdirs && bsearch(&path, l->subdirs, l->n_subdirs, sizeof(char *), cmp_str);
}

static void map_clear(struct keel_loader *l)
{
	for (size_t i = 0; i < l->n_map; i++) {
		keel_pool_unref(l->pool, l->map[i].name);
		keel_pool_unref(l->pool, l->map[i].path);
		keel_pool_unref(l->pool, l->map[i].alias_of);
	}
	keel_free(l->map);
	l->map = NULL;
	l->n_map = 0;
}

void keel_loader_free(struct keel_loader *l)
{
	if (!l)
		return;
	map_clear(l);
	subdirs_clear(l);
	keel_pool_unref(l->pool, l->last_id);
	keel_pool_unref(l->pool, l->last_fragment);
	keel_strv_free(l->dirs);
	keel_free(l->active);
	keel_free(l->active_dev);
	keel_free(l->active_ino);
	keel_host_info_clear(&l->host_own);
	keel_pool_free(l->pool);
	keel_free(l);
}

/* The configured directories that exist, each directory once. */
static int compute_active(struct keel_loader *l)
{
	size_t n = keel_strv_len(l->dirs);
	char **act = keel_calloc(n + 1, sizeof(char *));
	dev_t *devs = keel_calloc(n + 1, sizeof(dev_t));
	ino_t *inos = keel_calloc(n + 1, sizeof(ino_t));
	if (!act || !devs || !inos) {
		keel_free(act);
		keel_free(devs);
		keel_free(inos);
		return -ENOMEM;
	}
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		struct stat st;
		if (stat(l->dirs[i], &st) < 0 || !S_ISDIR(st.st_mode))
			continue;
		bool dup = false;
		for (size_t j = 0; j < k; j++)
			if (devs[j] == st.st_dev && inos[j] == st.st_ino)
				dup = true;
		if (dup)
			continue;
		devs[k] = st.st_dev;
		inos[k] = st.st_ino;
		act[k++] = l->dirs[i];
	}
	keel_free(l->active);
	keel_free(l->active_dev);
	keel_free(l->active_ino);
	l->active = act;
	l->active_dev = devs;
	l->active_ino = inos;
	return 0;
}

bool keel__dir_in_search_path(const struct keel_loader *l, const char *dir)
{
	struct stat st;
	if (stat(dir, &st) < 0)
		return false;
	for (size_t i = 0; l->active[i]; i++)
		if (l->active_dev[i] == st.st_dev && l->active_ino[i] == st.st_ino)
			return true;
	return false;
}

int keel_loader_new(const struct keel_loader_config *cfg, struct keel_loader **ret)
{
	struct keel_loader *l = keel_calloc(1, sizeof(*l));
	if (!l)
		return -ENOMEM;
	int r = keel_pool_new(&l->pool);
	if (r < 0) {
		keel_free(l);
		return r;
	}
	l->sink = cfg->sink;
	const char *const *paths = cfg->search_path ? cfg->search_path
				   : cfg->preset == KEEL_PATHS_SYSTEMD ? systemd_paths : keel_paths;
	for (size_t i = 0; paths[i] && r == 0; i++) {
		char *p = keel_strdup(paths[i]);
		r = p ? keel_strv_consume(&l->dirs, keel_path_simplify(p)) : -ENOMEM;
	}
	if (r == 0 && !l->dirs)
		r = (l->dirs = keel_calloc(1, sizeof(char *))) ? 0 : -ENOMEM;
	if (r == 0) {
		if (cfg->host) {
			l->host = cfg->host;
		} else {
			r = keel_host_info_load(&l->host_own);
			l->host = &l->host_own;
		}
	}
	if (r == 0)
		r = keel_loader_scan(l);
	if (r < 0) {
		keel_loader_free(l);
		return r;
	}
	*ret = l;
	return 0;
}

int keel_loader_add_path(struct keel_loader *l, const char *dir, bool first)
{
	char *p = keel_strdup(dir);
	if (!p)
		return -ENOMEM;
	keel_path_simplify(p);
	size_t n = keel_strv_len(l->dirs);
	char **nd = keel_reallocarray(l->dirs, n + 2, sizeof(char *));
	if (!nd) {
		keel_free(p);
		return -ENOMEM;
	}
	l->dirs = nd;
	if (first) {
		memmove(nd + 1, nd, (n + 1) * sizeof(char *));
		nd[0] = p;
	} else {
		nd[n] = p;
		nd[n + 1] = NULL;
	}
	return keel_loader_scan(l);
}

static int cmp_entry(const void *a, const void *b)
{
	const struct keel__name_entry *x = a, *y = b;
	int r = strcmp(x->name, y->name);
	if (r)
		return r;
	return x->prio < y->prio ? -1 : x->prio > y->prio;
}

const struct keel__name_entry *keel__loader_find(const struct keel_loader *l, const char *name)
{
	size_t lo = 0, hi = l->n_map;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int r = strcmp(l->map[mid].name, name);
		if (r == 0)
			return &l->map[mid];
		if (r < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

static bool is_dev_null(const struct stat *st)
{
	return S_ISCHR(st->st_mode) && st->st_rdev == makedev(1, 3);
}

bool keel__hidden_or_backup(const char *name)
{
	static const char *const suffixes[] = {
		"~", ".rpmnew", ".rpmsave", ".rpmorig", ".dpkg-old", ".dpkg-new", ".dpkg-tmp",
		".dpkg-dist", ".dpkg-bak", ".dpkg-backup", ".dpkg-remove", ".ucf-new", ".ucf-old",
		".ucf-dist", ".swp", ".bak", ".old", ".new",
	};
	if (name[0] == '.')
		return true;
	for (size_t i = 0; i < KEEL_ARRAY_SIZE(suffixes); i++)
		if (keel_endswith(name, suffixes[i]))
			return true;
	return false;
}

bool keel__null_or_empty(const struct stat *st)
{
	return is_dev_null(st) || (S_ISREG(st->st_mode) && st->st_size == 0);
}

char *keel__readlink_abs(const char *link)
{
	char buf[PATH_MAX];
	ssize_t n = readlink(link, buf, sizeof(buf) - 1);
	if (n < 0)
		return NULL;
	buf[n] = '\0';
	struct keel_buf b = KEEL_BUF_INIT;
	int r;
	if (buf[0] == '/') {
		r = keel_buf_puts(&b, buf);
	} else {
		const char *slash = strrchr(link, '/');
		r = keel_buf_append(&b, link, slash ? (size_t)(slash - link) : 0);
		if (r == 0)
			r = keel_buf_printf(&b, "/%s", buf);
	}
	if (r < 0) {
		keel_buf_free(&b);
		return NULL;
	}
	char *s = keel_buf_steal(&b, NULL);
	return s ? keel_path_simplify(s) : NULL;
}

/* unit_validate_alias_symlink_or_warn(): same type, and template to template, instance to the
 * same instance or to a template, plain to plain. */
int keel__validate_alias(const struct keel_diag_sink *sink, const char *link, const char *src,
			 const char *dst)
{
	unsigned st = keel_unit_name_is_valid(src, KEEL_NAME_PLAIN) ? KEEL_NAME_PLAIN
		: keel_unit_name_is_valid(src, KEEL_NAME_INSTANCE) ? KEEL_NAME_INSTANCE : KEEL_NAME_TEMPLATE;
	if (!keel_unit_name_is_valid(dst, KEEL_NAME_ANY)) {
		keel_diag_emit(sink, KEEL_DIAG_NOTICE, NULL, NULL, 0,
			       "%s points to \"%s\" which is not a valid unit name: %s", link, dst, strerror(EXDEV));
		return -EXDEV;
	}
	enum keel_unit_type t = keel_unit_name_type(src);
	if (t == KEEL_UNIT_DEVICE || t == KEEL_UNIT_MOUNT || t == KEEL_UNIT_SWAP || t == KEEL_UNIT_SCOPE ||
	    t == KEEL_UNIT_SLICE) {
		keel_diag_emit(sink, KEEL_DIAG_NOTICE, NULL, NULL, 0,
			       "%s: symlinks are not allowed for units of this type, rejecting.", link);
		return -EINVAL;
	}
	unsigned dt = keel_unit_name_is_valid(dst, KEEL_NAME_PLAIN) ? KEEL_NAME_PLAIN
		: keel_unit_name_is_valid(dst, KEEL_NAME_INSTANCE) ? KEEL_NAME_INSTANCE : KEEL_NAME_TEMPLATE;
	if (!(dt == st || (st == KEEL_NAME_INSTANCE && dt == KEEL_NAME_TEMPLATE))) {
		keel_diag_emit(sink, KEEL_DIAG_NOTICE, NULL, NULL, 0,
			       "%s: symlink target name type \"%s\" does not match source, rejecting.", link, dst);
		return -EXDEV;
	}
	if (dt == KEEL_NAME_INSTANCE) {
		char *a = NULL, *b = NULL;
		int r = keel_unit_name_instance(src, &a);
		if (r >= 0)
			r = keel_unit_name_instance(dst, &b);
		bool same = r >= 0 && keel_streq(a, b);
		keel_free(a);
		keel_free(b);
		if (r == -ENOMEM)
			return r;
		if (!same) {
			keel_diag_emit(sink, KEEL_DIAG_NOTICE, NULL, NULL, 0,
				       "%s: unit symlink target \"%s\" instance name doesn't match, rejecting.", link, dst);
			return -EXDEV;
		}
	}
	if (keel_unit_name_type(dst) != t) {
		keel_diag_emit(sink, KEEL_DIAG_NOTICE, NULL, NULL, 0,
			       "%s: symlink target \"%s\" has incompatible suffix, rejecting.", link, dst);
		return -EXDEV;
	}
	return 0;
}

static int add_entry(struct keel_loader *l, struct keel__name_entry **v, size_t *n, size_t *cap,
		     struct keel__name_entry e)
{
	if (*n == *cap) {
		size_t nc = *cap ? *cap * 2 : 64;
		struct keel__name_entry *nv = keel_reallocarray(*v, nc, sizeof(*nv));
		if (!nv)
			return -ENOMEM;
		*v = nv;
		*cap = nc;
	}
	(*v)[(*n)++] = e;
	(void)l;
	return 0;
}

/* One directory entry of the search path, classified like systemd's unit name map. */
static int scan_entry(struct keel_loader *l, const char *dir, const char *name, unsigned prio,
		      struct keel__name_entry **v, size_t *n, size_t *cap)
{
	struct keel_buf full = KEEL_BUF_INIT;
	int r = keel_buf_printf(&full, "%s/%s", dir, name);
	if (r < 0)
		return r;
	struct keel__name_entry e = {.prio = prio};
	struct stat lst, st;
	if (lstat(full.data, &lst) < 0)
		goto skip;
	if (S_ISLNK(lst.st_mode)) {
		char *target = keel__readlink_abs(full.data);
		if (!target)
			goto skip;
		char *slash = strrchr(target, '/');
		const char *tname = slash + 1;
		*slash = '\0';
		bool inside = keel__dir_in_search_path(l, *target ? target : "/");
		*slash = '/';
		if (strcmp(target, "/dev/null") == 0) {
			e.masked = true;
		} else if (inside && strcmp(tname, name) != 0) {
			/* An alias: resolved by name, so a loop or a dangling alias shows at lookup. */
			r = keel__validate_alias(&l->sink, full.data, name, tname);
			if (r < 0) {
				keel_free(target);
				if (r == -ENOMEM)
					goto out;
				goto skip;
			}
			e.alias_of = keel_pool_intern(l->pool, tname);
			if (!e.alias_of) {
				keel_free(target);
				r = -ENOMEM;
				goto out;
			}
		} else if (stat(full.data, &st) < 0) {
			keel_free(target); /* a dangling link is ignored, as systemd does */
			goto skip;
		} else if (keel__null_or_empty(&st)) {
			e.masked = true;
		} else if (!S_ISREG(st.st_mode)) {
			keel_free(target);
			goto skip;
		}
		keel_free(target);
	} else if (S_ISREG(lst.st_mode)) {
		e.masked = lst.st_size == 0;
	} else if (is_dev_null(&lst)) {
		e.masked = true;
	} else {
		goto skip;
	}
	if (!e.masked && !e.alias_of && !(e.path = keel_pool_intern(l->pool, full.data))) {
		r = -ENOMEM;
		goto out;
	}
	if (!(e.name = keel_pool_intern(l->pool, name))) {
		keel_pool_unref(l->pool, e.path);
		keel_pool_unref(l->pool, e.alias_of);
		r = -ENOMEM;
		goto out;
	}
	r = add_entry(l, v, n, cap, e);
	if (r < 0) {
		keel_pool_unref(l->pool, e.name);
		keel_pool_unref(l->pool, e.path);
		keel_pool_unref(l->pool, e.alias_of);
	}
	goto out;
skip:
	r = 0;
out:
	keel_buf_free(&full);
	return r;
}

int keel_loader_scan(struct keel_loader *l)
{
	int r = compute_active(l);
	if (r < 0)
		return r;
	map_clear(l);
	subdirs_clear(l);
	struct keel__name_entry *v = NULL;
	size_t n = 0, cap = 0;
	for (unsigned i = 0; l->active[i] && r == 0; i++) {
		DIR *d = opendir(l->active[i]);
		if (!d)
			continue;
		struct dirent *de;
		while ((de = readdir(d)) && r == 0) {
			if (keel_endswith(de->d_name, ".d") || keel_endswith(de->d_name, ".wants") ||
			    keel_endswith(de->d_name, ".requires")) {
				struct keel_buf p = KEEL_BUF_INIT;
				struct stat st;
				r = keel_buf_printf(&p, "%s/%s", l->active[i], de->d_name);
				if (r == 0 && stat(p.data, &st) == 0 && S_ISDIR(st.st_mode))
					r = keel_strv_consume(&l->subdirs, keel_buf_steal(&p, NULL));
				keel_buf_free(&p);
				continue;
			}
			if (!keel_unit_name_is_valid(de->d_name, KEEL_NAME_ANY))
				continue;
			r = scan_entry(l, l->active[i], de->d_name, i, &v, &n, &cap);
		}
		closedir(d);
	}
	l->n_subdirs = keel_strv_len(l->subdirs);
	if (l->n_subdirs)
		qsort(l->subdirs, l->n_subdirs, sizeof(char *), cmp_str);
	if (r == 0 && n > 0) {
		/* Sorted by name, then priority: the first of equal names wins, the rest go. */
		qsort(v, n, sizeof(*v), cmp_entry);
		size_t k = 0;
		for (size_t i = 0; i < n; i++) {
			if (k > 0 && strcmp(v[k - 1].name, v[i].name) == 0) {
				keel_pool_unref(l->pool, v[i].name);
				keel_pool_unref(l->pool, v[i].path);
				keel_pool_unref(l->pool, v[i].alias_of);
				continue;
			}
			v[k++] = v[i];
		}
		n = k;
	}
	l->map = v;
	l->n_map = n;
	if (r < 0) {
		map_clear(l);
		subdirs_clear(l);
	}
	return r;
}

static int set_last(struct keel_loader *l, const char *id, const char *fragment)
{
	const char *i = keel_pool_intern(l->pool, id);
	const char *f = fragment ? keel_pool_ref(l->pool, fragment) : NULL;
	if (!i) {
		keel_pool_unref(l->pool, f);
		return -ENOMEM;
	}
	keel_pool_unref(l->pool, l->last_id);
	keel_pool_unref(l->pool, l->last_fragment);
	l->last_id = i;
	l->last_fragment = f;
	return 0;
}

int keel__loader_resolve(struct keel_loader *l, const char *name, struct keel_unit_lookup *ret,
			 char ***ret_names)
{
	if (!keel_unit_name_is_valid(name, KEEL_NAME_PLAIN | KEEL_NAME_INSTANCE))
		return -EINVAL;
	char *cur = keel_strdup(name), *instance = NULL;
	char **names = NULL;
	int r = cur ? keel_unit_name_instance(name, &instance) : -ENOMEM;
	if (r < 0)
		goto out;
	*ret = (struct keel_unit_lookup){0};
	for (int hop = 0;; hop++) {
		if (hop >= FOLLOW_MAX) {
			r = -ELOOP;
			goto out;
		}
		const struct keel__name_entry *e = keel__loader_find(l, cur);
		if (!e && instance) {
			char *tmpl;
			r = keel_unit_name_template(cur, &tmpl);
			if (r < 0)
				goto out;
			e = keel__loader_find(l, tmpl);
			keel_free(tmpl);
		}
		if (!e || e->masked || !e->alias_of) {
			r = set_last(l, cur, e && !e->masked ? e->path : NULL);
			if (r < 0)
				goto out;
			ret->id = l->last_id;
			ret->fragment = l->last_fragment;
			ret->masked = e && e->masked;
			ret->found = e && !e->masked;
			break;
		}
		/* An alias: the unit is known by the name the link points at. */
		if ((r = keel_strv_push(&names, cur)) < 0)
			goto out;
		char *next;
		if (instance && keel_unit_name_is_valid(e->alias_of, KEEL_NAME_TEMPLATE))
			r = keel_unit_name_replace_instance(e->alias_of, instance, &next);
		else
			r = (next = keel_strdup(e->alias_of)) ? 0 : -ENOMEM;
		if (r < 0)
			goto out;
		keel_free(cur);
		cur = next;
	}
	if (ret_names) {
		*ret_names = names;
		names = NULL;
	}
	r = 0;
out:
	keel_free(cur);
	keel_free(instance);
	keel_strv_free(names);
	return r;
}

int keel_loader_lookup(struct keel_loader *l, const char *name, struct keel_unit_lookup *ret)
{
	return keel__loader_resolve(l, name, ret, NULL);
}

int keel_loader_foreach_name(struct keel_loader *l,
			     int (*fn)(void *userdata, const char *name, const struct keel_unit_lookup *lu),
			     void *userdata)
{
	for (size_t i = 0; i < l->n_map; i++) {
		const char *name = l->map[i].name;
		struct keel_unit_lookup lu = {.id = name};
		if (keel_unit_name_is_valid(name, KEEL_NAME_TEMPLATE)) {
			lu.masked = l->map[i].masked;
			lu.found = !lu.masked;
			lu.fragment = l->map[i].path;
		} else {
			int r = keel_loader_lookup(l, name, &lu);
			if (r == -ENOMEM)
				return r;
			if (r < 0)
				continue;
		}
		int r = fn(userdata, name, &lu);
		if (r)
			return r;
	}
	return 0;
}
