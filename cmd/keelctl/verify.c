/* keelctl verify FILE...: load each file the way keel-init would (its directory searched
 * first, so its drop-ins apply), print every diagnostic in systemd's form, then check what
 * systemd-analyze verify checks after loading (that commands exist and are executable).
 * Exit status 1 when any file could not be loaded or a command is missing. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/mem.h"
#include "base/str.h"
#include "init/load.h"
#include "init/unit.h"
#include "keelctl.h"

static int level_of(const char *name)
{
	static const struct {
		const char *name;
		int level;
	} t[] = {{"err", KEEL_DIAG_ERR}, {"error", KEEL_DIAG_ERR}, {"warning", KEEL_DIAG_WARNING},
		 {"notice", KEEL_DIAG_NOTICE}, {"info", KEEL_DIAG_INFO}, {"debug", KEEL_DIAG_DEBUG}};
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		if (strcasecmp(name, t[i].name) == 0)
			return t[i].level;
	return KEEL_DIAG_NOTICE;
}

void keelctl_print_diag(void *userdata, const struct keel_diag *d)
{
	const struct keelctl *ctl = userdata;
	if ((int)d->level > level_of(ctl->log_level))
		return;
	char line[2048];
	keel_diag_format(d, line, sizeof(line));
	fprintf(stderr, "%s\n", line);
}

/* systemd looks bare command names up in a fixed path, not in $PATH. */
static const char *const exec_search[] = {
	"/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin", NULL,
};

static int check_executable(const char *path)
{
	struct stat st;
	if (stat(path, &st) < 0)
		return -errno;
	if (S_ISDIR(st.st_mode))
		return -EISDIR;
	if (!S_ISREG(st.st_mode))
		return -EACCES;
	if (access(path, X_OK) < 0)
		return -errno;
	return 0;
}

static int find_executable(const char *name)
{
	if (name[0] == '/')
		return check_executable(name);
	int last = -ENOENT;
	for (size_t i = 0; exec_search[i]; i++) {
		char buf[PATH_MAX];
		snprintf(buf, sizeof(buf), "%s/%s", exec_search[i], name);
		int r = check_executable(buf);
		if (r == 0)
			return 0;
		if (r != -ENOENT)
			last = r;
	}
	return last;
}

static int verify_executables(const struct keel_unit *u)
{
	const struct keel_service *s = keel_unit_service_c(u);
	int rc = 0;
	for (int slot = 0; s && slot < KEEL_EXEC_SLOT_MAX; slot++) {
		for (const struct keel_exec_cmd *c = s->exec[slot]; c; c = c->next) {
			if (c->flags & KEEL_EXEC_IGNORE_FAILURE)
				continue;
			int r = find_executable(c->path);
			if (r < 0) {
				fprintf(stderr, "%s: Command %s is not executable: %s\n", u->id, c->path, strerror(-r));
				rc = -1;
			}
		}
	}
	return rc;
}

/* The directory of a file, absolute. */
static char *dir_of(const char *file)
{
	char *copy = keel_strdup(file);
	if (!copy)
		return NULL;
	char *slash = strrchr(copy, '/');
	if (slash == copy) {
		copy[1] = '\0';
		return copy;
	}
	if (slash) {
		*slash = '\0';
	} else {
		copy[0] = '.';
		copy[1] = '\0';
	}
	if (copy[0] == '/')
		return copy;
	char cwd[PATH_MAX];
	if (!getcwd(cwd, sizeof(cwd))) {
		keel_free(copy);
		return NULL;
	}
	char *abs = keel_malloc(strlen(cwd) + strlen(copy) + 2);
	if (abs)
		sprintf(abs, "%s/%s", cwd, copy);
	keel_free(copy);
	return abs ? keel_path_simplify(abs) : NULL;
}

int keelctl_verify(struct keelctl *ctl, int argc, char **argv)
{
	static const char *const keel_dirs[] = {KEEL_UNIT_PATH_ETC, KEEL_UNIT_PATH_RUN, KEEL_UNIT_PATH_LIB, NULL};
	static const char *const systemd_dirs[] = {"/etc/systemd/system", "/run/systemd/system",
						   "/lib/systemd/system", "/usr/lib/systemd/system", NULL};
	char **path = NULL;
	int rc = KEELCTL_OK, r = 0;

	/* The files' own directories first, then --unit-path, then the preset. */
	for (int i = 0; i < argc && r == 0; i++) {
		char *d = dir_of(argv[i]);
		if (!d) {
			r = -ENOMEM;
			break;
		}
		r = keel_strv_contains(path, d) ? 0 : keel_strv_push(&path, d);
		keel_free(d);
	}
	for (size_t i = 0; ctl->unit_paths && ctl->unit_paths[i] && r == 0; i++)
		r = keel_strv_push(&path, ctl->unit_paths[i]);
	const char *const *preset = ctl->preset == KEEL_PATHS_SYSTEMD ? systemd_dirs : keel_dirs;
	for (size_t i = 0; preset[i] && r == 0; i++)
		r = keel_strv_push(&path, preset[i]);
	if (r < 0) {
		fprintf(stderr, "keelctl: %s\n", strerror(-r));
		keel_strv_free(path);
		return KEELCTL_FAILED;
	}

	struct keel_loader *l;
	struct keel_loader_config cfg = {
		.search_path = (const char *const *)path,
		.sink = {keelctl_print_diag, ctl},
	};
	r = keel_loader_new(&cfg, &l);
	keel_strv_free(path);
	if (r < 0) {
		fprintf(stderr, "Failed to set up the unit search path: %s\n", strerror(-r));
		return KEELCTL_FAILED;
	}

	for (int i = 0; i < argc; i++) {
		const char *base = strrchr(argv[i], '/') ? strrchr(argv[i], '/') + 1 : argv[i];
		if (!keel_unit_name_is_valid(base, KEEL_NAME_ANY)) {
			fprintf(stderr, "Failed to prepare filename %s: %s\n", argv[i], strerror(EINVAL));
			rc = KEELCTL_FAILED;
			continue;
		}
		enum keel_unit_type t = keel_unit_name_type(base);
		if (!keel_unit_type_supported(t)) {
			fprintf(stderr, "Unit %s: keel-init does not run .%s units.\n", base, keel_unit_type_to_string(t));
			rc = KEELCTL_FAILED;
			continue;
		}
		char *name = NULL;
		if (keel_unit_name_is_valid(base, KEEL_NAME_TEMPLATE))
			r = keel_unit_name_replace_instance(base, "i", &name);
		else
			r = (name = keel_strdup(base)) ? 0 : -ENOMEM;
		struct keel_unit *u = NULL;
		if (r == 0)
			r = keel_loader_load(l, name, &u);
		if (r < 0) {
			fprintf(stderr, "Failed to load %s: %s\n", argv[i], strerror(-r));
			keel_free(name);
			rc = KEELCTL_FAILED;
			continue;
		}
		switch (u->load_state) {
		case KEEL_LOAD_LOADED:
			if (verify_executables(u) < 0)
				rc = KEELCTL_FAILED;
			break;
		case KEEL_LOAD_NOT_FOUND:
			fprintf(stderr, "Unit %s not found.\n", name);
			rc = KEELCTL_FAILED;
			break;
		case KEEL_LOAD_MASKED:
			fprintf(stderr, "Unit %s is masked.\n", name);
			rc = KEELCTL_FAILED;
			break;
		case KEEL_LOAD_BAD_SETTING:
			fprintf(stderr, "Unit %s has a bad unit file setting.\n", u->id);
			rc = KEELCTL_FAILED;
			break;
		default:
			fprintf(stderr, "Unit %s failed to load properly, please adjust/correct and reload service manager: %s\n",
				u->id, strerror(-u->load_error));
			rc = KEELCTL_FAILED;
			break;
		}
		keel_unit_free(u);
		keel_free(name);
	}
	keel_loader_free(l);
	return rc;
}
