/* keel-init: a service manager for systemd unit files (docs/init.md). As PID 1 of a machine or
 * of a pid namespace it mounts /proc, /sys and /run when they are missing and reaps every
 * orphan; under another init it makes itself a child subreaper so that daemons' orphans still
 * come back to it. SIGTERM and SIGINT stop every unit in order and exit; SIGHUP reloads. */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/log.h"
#include "base/str.h"
#include <sys/epoll.h>

#include "init/ev.h"
#include "init/journal.h"
#include "init/manager.h"
#include "init/values.h"

static void usage(FILE *f)
{
	fprintf(f, "Usage: keel-init [OPTIONS...]\n\n"
		   "  --unit-path DIR        Search DIR for unit files before the default paths (repeatable)\n"
		   "  --no-default-paths     Search only the --unit-path directories\n"
		   "  --systemd-paths        Use systemd's unit directories as the default paths\n"
		   "  --default-target UNIT  Start UNIT at boot (default: default.target, else multi-user.target)\n"
		   "  --no-boot              Start nothing until asked through the control socket\n"
		   "  --runtime-dir DIR      Control and notify sockets (default /run/keel)\n"
		   "  --journal-dir DIR      The journal of unit output (default " KEEL_JOURNAL_DEFAULT_DIR ")\n"
		   "  --journal-max-use SIZE The journal's files together stay below SIZE (K, M, G; default\n"
		   "                         10%% of its file system, within 16M..1G); oldest files go first\n"
		   "  --journal-max-file-size SIZE  Start a new file past SIZE (default max-use/8, 1M..128M)\n"
		   "  --journal-max-files N  Keep at most N files (default 100)\n"
		   "  --state-dir DIR        Persistent state: timer stamps (default /var/lib/keel)\n"
		   "  --cgroup-root NAME     Units' cgroups go under NAME (default keel.slice)\n"
		   "  --config-dir DIR       Where enable/disable/mask write links\n"
		   "  --cgroup-v1            Ignore cgroup2 (run a hybrid host as cgroup v1)\n"
		   "  --log-level LEVEL      debug, info (default), warn, error\n"
		   "  -h --help              Show this help\n");
}

static bool is_mount_point(const char *path)
{
	struct stat a, b;
	char parent[512];
	if (stat(path, &a) < 0)
		return false;
	snprintf(parent, sizeof(parent), "%s/..", path);
	if (stat(parent, &b) < 0)
		return false;
	return a.st_dev != b.st_dev;
}

static bool dir_empty(const char *path)
{
	DIR *d = opendir(path);
	if (!d)
		return true;
	struct dirent *de;
	bool empty = true;
	while (empty && (de = readdir(d)))
		empty = strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0;
	closedir(d);
	return empty;
}

/* PID 1 of a machine or a namespace: the API file systems, if nobody mounted them. */
static void mount_api(void)
{
	if (access("/proc/self", F_OK) != 0) {
		mkdir("/proc", 0555);
		if (mount("proc", "/proc", "proc", MS_NOSUID | MS_NOEXEC | MS_NODEV, NULL) < 0)
			keel_logf(KEEL_LOG_WARN, "Failed to mount /proc: %s", strerror(errno));
	}
	if (access("/sys/kernel", F_OK) != 0) {
		mkdir("/sys", 0555);
		if (mount("sysfs", "/sys", "sysfs", MS_NOSUID | MS_NOEXEC | MS_NODEV, NULL) < 0)
			keel_logf(KEEL_LOG_WARN, "Failed to mount /sys: %s", strerror(errno));
	}
	if (access("/run", F_OK) != 0 || (!is_mount_point("/run") && dir_empty("/run"))) {
		mkdir("/run", 0755);
		if (mount("tmpfs", "/run", "tmpfs", MS_NOSUID | MS_NODEV | MS_STRICTATIME, "mode=755") < 0)
			keel_logf(KEEL_LOG_WARN, "Failed to mount /run: %s", strerror(errno));
	}
}

static void on_signal(struct keel_ev_io *io, uint32_t revents)
{
	struct keel_mgr *m = io->data;
	struct signalfd_siginfo si;
	(void)revents;
	while (read(io->fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		switch (si.ssi_signo) {
		case SIGCHLD:
			keel_mgr_sigchld(m);
			break;
		case SIGTERM:
		case SIGINT:
			keel_mgr_shutdown(m);
			break;
		case SIGHUP:
			(void)keel_mgr_reload(m);
			break;
		default:
			break;
		}
	}
}

int main(int argc, char **argv)
{
	struct keel_mgr_config cfg = {.preset = KEEL_PATHS_KEEL};
	char **unit_paths = NULL;
	bool boot = true;
	enum keel_log_level level = KEEL_LOG_INFO;
	enum { O_UNIT_PATH = 256, O_NO_DEFAULT, O_SYSTEMD, O_TARGET, O_NO_BOOT, O_RUNTIME, O_JOURNAL, O_CGROOT,
	       O_CONFIG, O_LEVEL, O_CGV1, O_JMAXUSE, O_JMAXFILE, O_JMAXFILES, O_STATE };
	static const struct option opts[] = {
		{"unit-path", required_argument, NULL, O_UNIT_PATH},
		{"no-default-paths", no_argument, NULL, O_NO_DEFAULT},
		{"systemd-paths", no_argument, NULL, O_SYSTEMD},
		{"default-target", required_argument, NULL, O_TARGET},
		{"no-boot", no_argument, NULL, O_NO_BOOT},
		{"runtime-dir", required_argument, NULL, O_RUNTIME},
		{"journal-dir", required_argument, NULL, O_JOURNAL},
		{"journal-max-use", required_argument, NULL, O_JMAXUSE},
		{"journal-max-file-size", required_argument, NULL, O_JMAXFILE},
		{"journal-max-files", required_argument, NULL, O_JMAXFILES},
		{"state-dir", required_argument, NULL, O_STATE},
		{"cgroup-root", required_argument, NULL, O_CGROOT},
		{"config-dir", required_argument, NULL, O_CONFIG},
		{"cgroup-v1", no_argument, NULL, O_CGV1},
		{"log-level", required_argument, NULL, O_LEVEL},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	int c;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) >= 0) {
		switch (c) {
		case O_UNIT_PATH:
			if (keel_strv_push(&unit_paths, optarg) < 0)
				return 1;
			break;
		case O_NO_DEFAULT: cfg.no_preset = true; break;
		case O_SYSTEMD: cfg.preset = KEEL_PATHS_SYSTEMD; break;
		case O_TARGET: cfg.default_target = optarg; break;
		case O_NO_BOOT: boot = false; break;
		case O_RUNTIME: cfg.runtime_dir = optarg; break;
		case O_JOURNAL: cfg.journal_dir = optarg; break;
		case O_JMAXUSE:
		case O_JMAXFILE:
		case O_JMAXFILES: {
			uint64_t v;
			if ((c == O_JMAXFILES ? keel_safe_atou64(optarg, &v) : keel_parse_size(optarg, 1024, &v)) < 0 ||
			    v == 0 || (c == O_JMAXFILES && v > 100000)) {
				fprintf(stderr, "keel-init: invalid --%s: %s\n",
					c == O_JMAXUSE ? "journal-max-use" : c == O_JMAXFILE ? "journal-max-file-size" : "journal-max-files",
					optarg);
				return 2;
			}
			if (c == O_JMAXUSE)
				cfg.journal_max_use = v;
			else if (c == O_JMAXFILE)
				cfg.journal_max_file_size = v;
			else
				cfg.journal_max_files = (unsigned)v;
			break;
		}
		case O_STATE: cfg.state_dir = optarg; break;
		case O_CGROOT: cfg.cgroup_root = optarg; break;
		case O_CONFIG: cfg.config_dir = optarg; break;
		case O_CGV1: cfg.cgroup_v1_only = true; break;
		case O_LEVEL:
			if (keel_log_parse_level(optarg, &level) < 0) {
				fprintf(stderr, "keel-init: invalid --log-level: %s\n", optarg);
				return 2;
			}
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		usage(stderr);
		return 2;
	}
	keel_log_setup("keel-init", level, KEEL_LOG_TEXT, 2);
	cfg.unit_path = (const char *const *)unit_paths;
	cfg.pid1 = getpid() == 1;
	if (cfg.pid1)
		mount_api();
	else if (prctl(PR_SET_CHILD_SUBREAPER, 1) < 0)
		keel_logf(KEEL_LOG_WARN, "Failed to become a child subreaper: %s", strerror(errno));

	/* Services may need many fds; the soft limit can go up to the hard one, never past it. */
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}

	sigset_t mask;
	sigemptyset(&mask);
	int sigs[] = {SIGCHLD, SIGTERM, SIGINT, SIGHUP, SIGUSR1, SIGUSR2};
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		sigaddset(&mask, sigs[i]);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN);
	int sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	if (sfd < 0) {
		keel_logf(KEEL_LOG_ERROR, "signalfd: %s", strerror(errno));
		return 1;
	}

	struct keel_ev *ev;
	int r = keel_ev_new(&ev);
	if (r < 0) {
		keel_logf(KEEL_LOG_ERROR, "event loop: %s", strerror(-r));
		return 1;
	}
	struct keel_mgr *m;
	struct keel_err err = {0};
	r = keel_mgr_new(&cfg, ev, NULL, &m, &err);
	keel_strv_free(unit_paths);
	if (r < 0) {
		keel_logf(KEEL_LOG_ERROR, "%s", keel_err_msg(&err));
		keel_ev_free(ev);
		return 1;
	}
	struct keel_ev_io sio;
	keel_ev_io_init(&sio, sfd, on_signal, m);
	if ((r = keel_ev_io_start(ev, &sio, EPOLLIN)) < 0) {
		keel_logf(KEEL_LOG_ERROR, "event loop: %s", strerror(-r));
		return 1;
	}

	keel_logf(KEEL_LOG_INFO, "keel-init %s (pid %d)", "0.1.0", (int)getpid());
	if (boot)
		(void)keel_mgr_boot(m);
	int rc = 0;
	for (;;) {
		if (keel_mgr_done(m))
			break;
		r = keel_ev_run_once(ev, 250 * 1000);
		if (r < 0) {
			keel_logf(KEEL_LOG_ERROR, "event loop: %s", strerror(-r));
			rc = 1;
			break;
		}
	}
	keel_logf(KEEL_LOG_INFO, "All units stopped, exiting.");
	keel_ev_io_stop(ev, &sio);
	keel_mgr_free(m);
	keel_ev_free(ev);
	close(sfd);
	return rc;
}
