/* Commands on a container that runs, through its cgroups: pause/resume (freezer), update
 * (resources), ps (the processes), events --stats. */
#include "run/container.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/jw.h"
#include "base/mem.h"
#include "run/cgroup.h"
#include "run/state.h"

/* Lock, load and check the container; on success the caller owns dirfd, st and cg. */
static int open_running(const char *root, const char *id, bool exclusive, struct keel_cstate *st,
			struct keel_cgroup *cg, enum keel_cstatus *status, struct keel_err *err)
{
	int dirfd = keel_cstate_lock(root, id, exclusive, err);
	if (dirfd < 0)
		return dirfd;
	int r = keel_cstate_load(dirfd, id, st, err);
	if (r < 0) {
		close(dirfd);
		return r;
	}
	*status = keel_cstate_status(dirfd, st);
	if ((r = keel_cgroup_load(cg, st->cgroup_mode, st->cgroup_names, st->cgroup_paths, false, err)) < 0) {
		keel_cstate_free(st);
		close(dirfd);
		return r;
	}
	return dirfd;
}

static void close_running(int dirfd, struct keel_cstate *st, struct keel_cgroup *cg)
{
	keel_cgroup_free(cg);
	keel_cstate_free(st);
	close(dirfd);
}

int keel_container_pause(const char *root, const char *id, bool pause, struct keel_err *err)
{
	struct keel_cstate st;
	struct keel_cgroup cg;
	enum keel_cstatus status;
	int dirfd = open_running(root, id, true, &st, &cg, &status, err);
	if (dirfd < 0)
		return dirfd;
	int r;
	if (pause && status != KEEL_CSTATUS_RUNNING)
		r = keel_err_set(err, -EINVAL, "container not running");
	else if (!pause && status != KEEL_CSTATUS_PAUSED)
		r = keel_err_set(err, -EINVAL, "container not paused");
	else
		r = keel_cgroup_freeze(&cg, pause, err);
	close_running(dirfd, &st, &cg);
	return r;
}

int keel_container_update(const char *root, const char *id, json_t *resources, struct keel_err *err)
{
	struct keel_spec *spec = NULL;
	int r = keel_spec_parse_resources(resources ? resources : json_object(), &spec, err);
	if (r < 0)
		return r == -ENOMEM ? r : keel_err_wrap(err, "update");
	struct keel_cstate st;
	struct keel_cgroup cg;
	enum keel_cstatus status;
	int dirfd = open_running(root, id, true, &st, &cg, &status, err);
	if (dirfd < 0) {
		keel_spec_free(spec);
		return dirfd;
	}
	if (status == KEEL_CSTATUS_STOPPED)
		r = keel_err_set(err, -EINVAL, "container not running");
	else
		r = keel_cgroup_set_resources(&cg, &spec->resources, err);
	close_running(dirfd, &st, &cg);
	keel_spec_free(spec);
	return r;
}

int keel_container_pids(const char *root, const char *id, pid_t **ret, size_t *ret_n,
			struct keel_err *err)
{
	struct keel_cstate st;
	struct keel_cgroup cg;
	enum keel_cstatus status;
	*ret = NULL;
	*ret_n = 0;
	int dirfd = open_running(root, id, false, &st, &cg, &status, err);
	if (dirfd < 0)
		return dirfd;
	int r = 0;
	if (status == KEEL_CSTATUS_STOPPED) {
		r = keel_err_set(err, -EINVAL, "container not running");
		goto out;
	}
	if (!st.cgroup_procs) {
		r = keel_err_set(err, -ENOENT, "the container's cgroup is not known");
		goto out;
	}
	FILE *f = fopen(st.cgroup_procs, "re");
	if (!f) {
		r = keel_err_errno(err, -errno, "reading %s", st.cgroup_procs);
		goto out;
	}
	long v;
	pid_t *pids = NULL;
	size_t n = 0;
	while (fscanf(f, "%ld", &v) == 1) {
		pid_t *np = keel_reallocarray(pids, n + 1, sizeof(*pids));
		if (!np) {
			keel_free(pids);
			fclose(f);
			r = keel_err_set(err, -ENOMEM, "out of memory");
			goto out;
		}
		pids = np;
		pids[n++] = (pid_t)v;
	}
	fclose(f);
	*ret = pids;
	*ret_n = n;
out:
	close_running(dirfd, &st, &cg);
	return r;
}

int keel_container_stats(const char *root, const char *id, struct keel_buf *out, struct keel_err *err)
{
	struct keel_cstate st;
	struct keel_cgroup cg;
	enum keel_cstatus status;
	int dirfd = open_running(root, id, false, &st, &cg, &status, err);
	if (dirfd < 0)
		return dirfd;
	int r = 1;
	if (status != KEEL_CSTATUS_STOPPED) {
		struct keel_jw w;
		keel_jw_init(&w, out, 0);
		keel_jw_obj_begin(&w);
		keel_jw_kstr(&w, "type", "stats");
		keel_jw_kstr(&w, "id", id);
		keel_jw_key(&w, "data");
		keel_jw_obj_begin(&w);
		keel_cgroup_stats(&cg, &w);
		keel_jw_obj_end(&w);
		keel_jw_obj_end(&w);
		r = keel_jw_finish(&w);
		if (r < 0)
			keel_err_set(err, r, "out of memory");
	}
	close_running(dirfd, &st, &cg);
	return r;
}

int keel_container_oom_open(const char *root, const char *id, struct keel_cgroup_oom *o, struct keel_err *err)
{
	struct keel_cstate st;
	struct keel_cgroup cg;
	enum keel_cstatus status;
	o->fd = o->ctl_fd = -1;
	int dirfd = open_running(root, id, false, &st, &cg, &status, err);
	if (dirfd < 0)
		return dirfd;
	int r = status == KEEL_CSTATUS_STOPPED ? keel_err_set(err, -EINVAL, "container not running")
					       : keel_cgroup_oom_open(&cg, o, err);
	close_running(dirfd, &st, &cg);
	return r;
}
