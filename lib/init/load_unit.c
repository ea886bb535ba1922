/* Loading one unit: the fragment, its drop-ins, .wants/.requires, and the final checks. */
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/mem.h"
#include "base/str.h"
#include "init/load-internal.h"
#include "init/unit-internal.h"


/* systemd's unit_file_find_dirs(): DIR/NAME<suffix>, then the template's, then for
 * "foo-bar-baz.service" the prefix directories "foo-bar-.service<suffix>" and
 * "foo-.service<suffix>" (more specific ones first). */
static int find_dirs(const struct keel_loader *l, const char *dir, const char *name,
		     const char *suffix, char ***dirs)
{
	struct keel_buf b = KEEL_BUF_INIT;
	int r = keel_buf_printf(&b, "%s/%s%s", dir, name, suffix);
	if (r < 0)
		return r;
	if (keel__subdir_exists(l, b.data) && !keel_strv_contains(*dirs, b.data))
		r = keel_strv_push(dirs, b.data);
	keel_buf_free(&b);
	if (r < 0)
		return r;
	bool instance = keel_unit_name_is_valid(name, KEEL_NAME_INSTANCE);
	if (instance) {
		char *tmpl;
		if ((r = keel_unit_name_template(name, &tmpl)) < 0)
			return r;
		r = find_dirs(l, dir, tmpl, suffix, dirs);
		keel_free(tmpl);
		if (r < 0)
			return r;
	}
	if (keel_unit_type_from_string(name) >= 0)
		return 0; /* the type-level directory ("service.d") has no prefixes */
	char *prefix;
	if ((r = keel_unit_name_prefix(name, &prefix)) < 0)
		return r;
	bool chopped = false;
	for (;;) {
		char *dash = strrchr(prefix, '-');
		if (!dash || dash == prefix) {
			keel_free(prefix);
			return 0;
		}
		if (dash[1] != '\0' || chopped) {
			dash[1] = '\0';
			break;
		}
		*dash = '\0'; /* a trailing dash: chop it, but only once */
		chopped = true;
	}
	struct keel_buf built = KEEL_BUF_INIT;
	r = keel_buf_printf(&built, "%s%s.%s", prefix, instance ? "@" : "",
			    keel_unit_type_to_string(keel_unit_name_type(name)));
	keel_free(prefix);
	if (r == 0 && keel_unit_name_is_valid(built.data, KEEL_NAME_ANY))
		r = find_dirs(l, dir, built.data, suffix, dirs);
	keel_buf_free(&built);
	return r;
}

static int cmp_base(const void *a, const void *b)
{
	const char *x = strrchr(*(char *const *)a, '/') + 1, *y = strrchr(*(char *const *)b, '/') + 1;
	return strcmp(x, y);
}

/* The files of the drop-in directories of all the unit's names (suffix ".d" with files ending in
 * file_suffix, or ".wants"/".requires" with every entry), a file name in an earlier directory
 * hiding the same name later, sorted by file name. */
static int find_dropins(struct keel_loader *l, char *const *names, const char *dir_suffix,
			const char *file_suffix, char ***ret)
{
	char **dirs = NULL, **files = NULL;
	int r = 0;
	for (size_t i = 0; names && names[i] && r == 0; i++)
		for (size_t j = 0; l->active[j] && r == 0; j++)
			r = find_dirs(l, l->active[j], names[i], dir_suffix, &dirs);
	if (r == 0 && names && names[0]) {
		const char *type = keel_unit_type_to_string(keel_unit_name_type(names[0]));
		for (size_t j = 0; l->active[j] && r == 0; j++)
			r = find_dirs(l, l->active[j], type, dir_suffix, &dirs);
	}
	for (size_t i = 0; dirs && dirs[i] && r == 0; i++) {
		DIR *d = opendir(dirs[i]);
		if (!d)
			continue;
		struct dirent *de;
		while ((de = readdir(d)) && r == 0) {
			if (keel__hidden_or_backup(de->d_name))
				continue;
			if (file_suffix && !keel_endswith(de->d_name, file_suffix))
				continue;
			bool seen = false;
			for (size_t k = 0; files && files[k] && !seen; k++)
				seen = strcmp(strrchr(files[k], '/') + 1, de->d_name) == 0;
			if (seen)
				continue;
			struct keel_buf p = KEEL_BUF_INIT;
			r = keel_buf_printf(&p, "%s/%s", dirs[i], de->d_name);
			if (r == 0) {
				struct stat st;
				/* Files, links to files and masks (links to /dev/null); not directories. */
				if (stat(p.data, &st) == 0 && S_ISDIR(st.st_mode) && file_suffix) {
					keel_buf_free(&p);
					continue;
				}
				r = keel_strv_consume(&files, keel_buf_steal(&p, NULL));
			}
			keel_buf_free(&p);
		}
		closedir(d);
	}
	keel_strv_free(dirs);
	if (r < 0) {
		keel_strv_free(files);
		return r;
	}
	if (files)
		qsort(files, keel_strv_len(files), sizeof(char *), cmp_base);
	*ret = files;
	return 0;
}

/* Parse one file's text into the unit. */
static int parse_text(struct keel_loader *l, struct keel_unit *u, const char *file, const char *text,
		      size_t len, bool dropin)
{
	struct keel__pctx c = {
		.u = u, .sink = &l->sink, .host = l->host, .in_dropin = dropin, .system = true,
	};
	return keel_syntax_parse(file, u->id, text, len, &keel__unit_syntax_ops, &c, &l->sink);
}

static int parse_file(struct keel_loader *l, struct keel_unit *u, const char *path, bool dropin)
{
	struct stat st;
	if (stat(path, &st) == 0 && keel__null_or_empty(&st))
		return 0; /* a masked drop-in */
	char *text;
	size_t len;
	int r = keel_syntax_read_file(path, &text, &len);
	if (r < 0) {
		if (r != -ENOMEM)
			keel__uwarn(u, &l->sink, KEEL_DIAG_ERR, "Failed to read %s: %s", path, strerror(-r));
		return r;
	}
	r = parse_text(l, u, path, text, len, dropin);
	keel_free(text);
	return r;
}

/* .wants/ and .requires/ entries: symlinks named after the units to pull in. */
static int load_link_deps(struct keel_loader *l, struct keel_unit *u, char *const *names,
			  const char *suffix, enum keel_dep_kind kind)
{
	char **files = NULL;
	int r = find_dropins(l, names, suffix, NULL, &files);
	if (r < 0)
		return r;
	const char *kname = keel_dep_kind_to_string(kind);
	for (size_t i = 0; files && files[i] && r == 0; i++) {
		const char *entry = strrchr(files[i], '/') + 1;
		struct stat lst, st;
		if (stat(files[i], &st) == 0 && keel__null_or_empty(&st))
			continue; /* masked */
		if (lstat(files[i], &lst) < 0 || !S_ISLNK(lst.st_mode)) {
			keel__uwarn(u, &l->sink, KEEL_DIAG_WARNING, "%s dependency dropin %s is not a symlink, ignoring.",
				    kname, files[i]);
			continue;
		}
		if (!keel_unit_name_is_valid(entry, KEEL_NAME_ANY)) {
			keel__uwarn(u, &l->sink, KEEL_DIAG_WARNING,
				    "%s dependency dropin %s is not a valid unit name, ignoring.", kname, files[i]);
			continue;
		}
		char *dep = NULL;
		if (keel_unit_name_is_valid(entry, KEEL_NAME_TEMPLATE)) {
			char *inst = NULL;
			r = keel_unit_name_instance(u->id, &inst);
			if (r >= 0 && !inst)
				r = keel_unit_name_prefix(u->id, &inst);
			if (r >= 0)
				r = keel_unit_name_replace_instance(entry, inst, &dep);
			keel_free(inst);
			if (r == -ENOMEM)
				break;
			if (r < 0) {
				keel__uwarn(u, &l->sink, KEEL_DIAG_WARNING, "Cannot add %s dependency on %s, ignoring: %s",
					    kname, entry, strerror(-r));
				r = 0;
				continue;
			}
		} else if (!(dep = keel_strdup(entry))) {
			r = -ENOMEM;
			break;
		}
		if (strcmp(dep, u->id) != 0)
			r = keel_unit_add_dep(u, kind, dep, KEEL_DEP_FROM_LINK);
		keel_free(dep);
	}
	keel_strv_free(files);
	return r;
}

/* Names that are links to this unit, from the map (so their drop-ins apply too). */
static int reverse_aliases(struct keel_loader *l, const char *id, char ***names)
{
	char *tmpl = NULL, *inst = NULL;
	int r = 0;
	if (keel_unit_name_is_valid(id, KEEL_NAME_INSTANCE)) {
		if ((r = keel_unit_name_template(id, &tmpl)) < 0 || (r = keel_unit_name_instance(id, &inst)) < 0)
			goto out;
	}
	for (size_t i = 0; i < l->n_map && r == 0; i++) {
		const struct keel__name_entry *e = &l->map[i];
		if (!e->alias_of)
			continue;
		if (strcmp(e->alias_of, id) == 0) {
			if (!keel_strv_contains(*names, e->name))
				r = keel_strv_push(names, e->name);
		} else if (tmpl && strcmp(e->alias_of, tmpl) == 0 &&
			   keel_unit_name_is_valid(e->name, KEEL_NAME_TEMPLATE)) {
			char *n;
			r = keel_unit_name_replace_instance(e->name, inst, &n);
			if (r == 0 && !keel_strv_contains(*names, n))
				r = keel_strv_consume(names, n);
			else if (r == 0)
				keel_free(n);
			else if (r == -EINVAL)
				r = 0;
		}
	}
out:
	keel_free(tmpl);
	keel_free(inst);
	return r;
}

static int set_aliases(struct keel_loader *l, struct keel_unit *u, char *const *names)
{
	for (size_t i = 0; names && names[i]; i++) {
		if (strcmp(names[i], u->id) == 0 || keel_strv_contains((char *const *)u->aliases, names[i]))
			continue;
		int r = keel_pool_strv_add(l->pool, &u->aliases, names[i]);
		if (r < 0)
			return r;
	}
	return 0;
}

/* Map a parse failure onto the load state, as systemd does. */
static int parse_failed(struct keel_loader *l, struct keel_unit *u, int r)
{
	if (r == -ENOMEM)
		return r;
	u->load_error = r;
	if (r == -ENOEXEC) {
		u->load_state = KEEL_LOAD_BAD_SETTING;
		keel__uwarn(u, &l->sink, KEEL_DIAG_NOTICE,
			    "Unit configuration has fatal error, unit will not be started.");
	} else {
		u->load_state = KEEL_LOAD_ERROR;
	}
	return 0;
}

static int load(struct keel_loader *l, const char *name, const char *text_path, const char *text,
		size_t len, struct keel_unit **ret)
{
	if (!keel_unit_name_is_valid(name, KEEL_NAME_PLAIN | KEEL_NAME_INSTANCE) ||
	    !keel_unit_type_supported(keel_unit_name_type(name)))
		return -EINVAL;
	struct keel_unit_lookup lu;
	char **names = NULL, **dropins = NULL;
	struct keel_unit *u = NULL;
	int r = keel__loader_resolve(l, name, &lu, &names);
	if (r == -ELOOP) {
		/* An alias loop: the unit cannot be found under this name. */
		r = keel_unit_new(l->pool, name, &u);
		if (r < 0)
			goto fail;
		keel__uwarn(u, &l->sink, KEEL_DIAG_ERR, "Unit file alias loop, refusing to load.");
		u->load_state = KEEL_LOAD_ERROR;
		u->load_error = -ELOOP;
		goto done;
	}
	if (r < 0)
		goto fail;
	if (!keel_unit_type_supported(keel_unit_name_type(lu.id))) {
		r = -EINVAL;
		goto fail;
	}
	if ((r = keel_unit_new(l->pool, lu.id, &u)) < 0)
		goto fail;
	if ((r = reverse_aliases(l, lu.id, &names)) < 0 || (r = set_aliases(l, u, names)) < 0)
		goto fail;
	if (lu.masked && !text) {
		u->load_state = KEEL_LOAD_MASKED;
		goto done;
	}
	if (!lu.found && !text) {
		u->load_state = KEEL_LOAD_NOT_FOUND;
		u->load_error = -ENOENT;
		goto done;
	}
	if (text) {
		if (text_path && !(u->fragment_path = keel_pool_intern(l->pool, text_path))) {
			r = -ENOMEM;
			goto fail;
		}
		r = parse_text(l, u, text_path ? text_path : u->id, text, len, false);
	} else {
		u->fragment_path = keel_pool_ref(l->pool, lu.fragment);
		r = parse_file(l, u, lu.fragment, false);
	}
	if (r < 0) {
		if ((r = parse_failed(l, u, r)) < 0)
			goto fail;
		goto done;
	}

	/* The unit's own name first, then its aliases. */
	char **all = NULL;
	if ((r = keel_strv_push(&all, u->id)) < 0)
		goto fail;
	for (size_t i = 0; u->aliases && u->aliases[i] && r == 0; i++)
		r = keel_strv_push(&all, u->aliases[i]);
	if (r == 0)
		r = find_dropins(l, all, ".d", ".conf", &dropins);
	for (size_t i = 0; r == 0 && dropins && dropins[i]; i++) {
		r = keel_pool_strv_add(l->pool, &u->dropin_paths, dropins[i]);
		if (r == 0)
			r = parse_file(l, u, dropins[i], true);
		if (r < 0 && r != -ENOMEM) {
			r = parse_failed(l, u, r);
			keel_strv_free(all);
			if (r < 0)
				goto fail;
			goto done;
		}
	}
	if (r == 0)
		r = load_link_deps(l, u, all, ".wants", KEEL_DEP_WANTS);
	if (r == 0)
		r = load_link_deps(l, u, all, ".requires", KEEL_DEP_REQUIRES);
	keel_strv_free(all);
	if (r < 0)
		goto fail;
	u->load_state = KEEL_LOAD_LOADED;
	r = keel_unit_finish_load(u, &l->sink);
	if (r == -ENOMEM)
		goto fail;
done:
	keel_strv_free(names);
	keel_strv_free(dropins);
	*ret = u;
	return 0;
fail:
	keel_strv_free(names);
	keel_strv_free(dropins);
	keel_unit_free(u);
	return r;
}

int keel_loader_load(struct keel_loader *l, const char *name, struct keel_unit **ret)
{
	return load(l, name, NULL, NULL, 0, ret);
}

int keel_loader_load_text(struct keel_loader *l, const char *name, const char *path,
			  const char *text, size_t len, struct keel_unit **ret)
{
	return load(l, name, path, text ? text : "", text ? len : 0, ret);
}
