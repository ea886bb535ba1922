/* The engine's side of a service's sandbox: RuntimeDirectory=/StateDirectory=/CacheDirectory=/
 * LogsDirectory= made before each spawn and RuntimeDirectory= removed at stop, the
 * PrivateNetwork= namespace kept while the unit runs, and the plan (sandbox.h) for the child. */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/mem.h"
#include "base/sys.h"
#include "init/mgr-internal.h"
#include "init/sandbox.h"

static const char *const dir_base[KEEL_DIR_MAX] = {"/run", "/var/lib", "/var/cache", "/var/log"};
static const char *const dir_env[KEEL_DIR_MAX] = {
	"RUNTIME_DIRECTORY", "STATE_DIRECTORY", "CACHE_DIRECTORY", "LOGS_DIRECTORY",
};
static const char *const dir_key[KEEL_DIR_MAX] = {
	"RuntimeDirectory", "StateDirectory", "CacheDirectory", "LogsDirectory",
};

static int mkdir_parents(char *path)
{
	for (char *p = path + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		int r = mkdir(path, 0755);
		*p = '/';
		if (r < 0 && errno != EEXIST)
			return -errno;
	}
	return 0;
}

/* systemd hands a directory's contents over too when its owner is not the unit's user (a
 * changed User=, or a directory made by a "+" command): nftw has no user data, hence these. */
static uid_t chown_uid;
static gid_t chown_gid;

static int chown_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)flag;
	(void)ftw;
	if ((st->st_uid != chown_uid || st->st_gid != chown_gid) && lchown(path, chown_uid, chown_gid) < 0)
		return -errno;
	return 0;
}

static void warn_cb(void *ud, const char *msg)
{
	unit_log(ud, 4, "%s", msg);
}

int svc_sandbox_prepare(struct mu *mu, struct keel_spawn *sp, bool privileged, char ***env,
			struct keel_sandbox_plan *plan)
{
	struct keel_service *sv = keel_unit_service(mu->u);
	const struct keel_exec_sandbox *sb = sv->exec_ctx.sandbox;
	struct svc_rt *s = &mu->rt.svc;
	*plan = (struct keel_sandbox_plan){.netns_fd = -1};
	if (!sb)
		return 0;

	/* The directories: made for every command ("+" ones too, as systemd does), the last
	 * component with the *DirectoryMode= and owned by User=/Group= when known. */
	for (int d = 0; d < KEEL_DIR_MAX; d++) {
		struct keel_buf val = KEEL_BUF_INIT;
		for (size_t i = 0; sb->dirs[d] && sb->dirs[d][i]; i++) {
			char path[PATH_MAX];
			snprintf(path, sizeof(path), "%s/%s", dir_base[d], sb->dirs[d][i]);
			int r = mkdir_parents(path);
			if (r == 0 && mkdir(path, sb->dir_mode[d]) < 0 && errno != EEXIST)
				r = -errno;
			if (r == 0 && chmod(path, sb->dir_mode[d]) < 0)
				r = -errno;
			struct stat st;
			if (r == 0 && sp->set_creds && stat(path, &st) == 0 &&
			    (st.st_uid != sp->uid || st.st_gid != sp->gid)) {
				chown_uid = sp->uid;
				chown_gid = sp->gid;
				r = nftw(path, chown_one, 16, FTW_PHYS | FTW_MOUNT);
				if (r > 0)
					r = -EIO;
			}
			if (r < 0) {
				unit_log(mu, 3, "Failed to set up %s= %s: %s", dir_key[d], path, strerror(-r));
				keel_buf_free(&val);
				return r;
			}
			if ((r = keel_buf_printf(&val, "%s%s", val.len ? ":" : "", path)) < 0) {
				keel_buf_free(&val);
				return r;
			}
		}
		if (val.len) {
			struct keel_buf a = KEEL_BUF_INIT;
			int r = keel_buf_printf(&a, "%s=%s", dir_env[d], val.data);
			if (r == 0)
				r = keel_env_set(env, a.data);
			keel_buf_free(&a);
			if (r < 0) {
				keel_buf_free(&val);
				return r;
			}
		}
		keel_buf_free(&val);
	}
	/* "+" commands run without the sandbox (systemd.service(5), table 1) */
	if (privileged)
		return 0;
	if (sb->private_network && !s->netns_made) {
		int fd = keel_sandbox_netns_new();
		if (fd < 0) {
			unit_log(mu, 3, "Failed to set up PrivateNetwork=: %s", strerror(-fd));
			return fd;
		}
		s->netns_fd = fd;
		s->netns_made = true;
	}
	char inacc[PATH_MAX];
	snprintf(inacc, sizeof(inacc), "%s/inaccessible", mu->m->runtime_dir ? mu->m->runtime_dir : "/run/keel");
	int r = keel_sandbox_plan_make(sb, sv->exec_ctx.private_tmp, sp->set_creds, sp->uid,
				       sv->exec_ctx.root_directory, inacc, warn_cb, mu, plan);
	if (r < 0) {
		unit_log(mu, 3, "Failed to prepare the sandbox: %s", strerror(-r));
		return r;
	}
	if (sb->private_network)
		plan->netns_fd = s->netns_fd;
	sp->sandbox = plan;
	return 0;
}

void svc_sandbox_stop(struct mu *mu, bool restarting)
{
	struct keel_service *sv = keel_unit_service(mu->u);
	struct svc_rt *s = &mu->rt.svc;
	if (s->netns_made && !restarting) {
		close(s->netns_fd);
		s->netns_made = false;
		s->netns_fd = -1;
	}
	const struct keel_exec_sandbox *sb = sv ? sv->exec_ctx.sandbox : NULL;
	if (!sb || !sb->dirs[KEEL_DIR_RUNTIME] || sb->runtime_preserve == KEEL_PRESERVE_YES ||
	    (restarting && sb->runtime_preserve == KEEL_PRESERVE_RESTART))
		return;
	for (size_t i = 0; sb->dirs[KEEL_DIR_RUNTIME][i]; i++) {
		char path[PATH_MAX];
		snprintf(path, sizeof(path), "/run/%s", sb->dirs[KEEL_DIR_RUNTIME][i]);
		(void)keel_sys_rmtree(path);
	}
}
