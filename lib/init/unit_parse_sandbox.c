/* Parsers of systemd.exec(5)'s sandboxing settings: capabilities, NoNewPrivileges=, SecureBits=,
 * the file-system protections (ProtectSystem=, ProtectHome=, ReadOnlyPaths= & co., BindPaths=,
 * TemporaryFileSystem=), PrivateDevices=/PrivateNetwork=, the Protect*Kernel* settings,
 * SystemCallFilter= and its companions, and RuntimeDirectory= & co. Values land in the unit's
 * struct keel_exec_sandbox (unit.h), allocated on the first such setting. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>

#include <seccomp.h>

#include "base/buf.h"
#include "base/mem.h"
#include "base/str.h"
#include "init/syscall_groups.h"
#include "init/unit-internal.h"
#include "init/words.h"

/* The capability names of <linux/capability.h>, by number (0..40 on Linux 6.x). */
static const char *const cap_names[] = {
	"cap_chown", "cap_dac_override", "cap_dac_read_search", "cap_fowner", "cap_fsetid",
	"cap_kill", "cap_setgid", "cap_setuid", "cap_setpcap", "cap_linux_immutable",
	"cap_net_bind_service", "cap_net_broadcast", "cap_net_admin", "cap_net_raw", "cap_ipc_lock",
	"cap_ipc_owner", "cap_sys_module", "cap_sys_rawio", "cap_sys_chroot", "cap_sys_ptrace",
	"cap_sys_pacct", "cap_sys_admin", "cap_sys_boot", "cap_sys_nice", "cap_sys_resource",
	"cap_sys_time", "cap_sys_tty_config", "cap_mknod", "cap_lease", "cap_audit_write",
	"cap_audit_control", "cap_setfcap", "cap_mac_override", "cap_mac_admin", "cap_syslog",
	"cap_wake_alarm", "cap_block_suspend", "cap_audit_read", "cap_perfmon", "cap_bpf",
	"cap_checkpoint_restore",
};

int keel_capability_from_name(const char *name)
{
	for (size_t i = 0; i < KEEL_ARRAY_SIZE(cap_names); i++)
		if (strcasecmp(name, cap_names[i]) == 0)
			return (int)i;
	/* systemd's capability_from_name(): the full name in any case, or a number */
	int v;
	if (keel_safe_atoi(name, &v) == 0 && v >= 0 && v < 63)
		return v;
	return -1;
}

const char *keel_capability_to_name(int cap)
{
	return cap >= 0 && (size_t)cap < KEEL_ARRAY_SIZE(cap_names) ? cap_names[cap] : NULL;
}

struct keel_exec_sandbox *keel_exec_sandbox(struct keel_exec_ctx *ctx)
{
	if (!ctx->sandbox) {
		struct keel_exec_sandbox *sb = keel_calloc(1, sizeof(*sb));
		if (!sb)
			return NULL;
		sb->cap_bounding = UINT64_MAX;
		sb->syscall_errno = KEEL_SECCOMP_KILL;
		for (int i = 0; i < KEEL_DIR_MAX; i++)
			sb->dir_mode[i] = 0755;
		ctx->sandbox = sb;
	}
	return ctx->sandbox;
}

static int bool_value(struct keel__pctx *c, const char *v, bool *ok)
{
	int b = keel_parse_boolean(v);
	*ok = b >= 0;
	if (b < 0)
		keel__pwarn(c, KEEL_DIAG_WARNING, "Failed to parse boolean value, ignoring: %s", v);
	return b;
}

/* CapabilityBoundingSet= (ltype 0), AmbientCapabilities= (1): config_parse_capability_set(). */
static int parse_caps(struct keel__pctx *c, struct keel_exec_sandbox *sb, const char *v, int which)
{
	uint64_t *set = which == 0 ? &sb->cap_bounding : &sb->cap_ambient;
	uint64_t initial = which == 0 ? UINT64_MAX : 0;
	bool invert = v[0] == '~';
	if (invert)
		v++;
	uint64_t sum = 0;
	for (const char *p = v;;) {
		char *word;
		int r = keel_extract_word(&p, &word, NULL, KEEL_EXTRACT_UNQUOTE);
		if (r == -ENOMEM)
			return r;
		if (r < 0) {
			keel__pwarn(c, KEEL_DIAG_WARNING, "Invalid syntax, ignoring: %s", v);
			return 0;
		}
		if (r == 0)
			break;
		int cap = keel_capability_from_name(word);
		if (cap < 0) /* systemd says this only at debug level */
			keel__pwarn(c, KEEL_DIAG_DEBUG, "Failed to parse capability '%s' in %s=, ignoring", word, c->key);
		else
			sum |= 1ULL << cap;
		keel_free(word);
	}
	if (sum == 0 || *set == initial)
		*set = invert ? ~sum : sum;
	else if (invert)
		*set &= ~sum;
	else
		*set |= sum;
	return 0;
}

static int parse_secure_bits(struct keel__pctx *c, struct keel_exec_sandbox *sb, const char *v)
{
	static const char *const names[] = {"noroot", "noroot-locked", "no-setuid-fixup",
					    "no-setuid-fixup-locked", "keep-caps", "keep-caps-locked"};
	if (!*v) {
		sb->secure_bits = 0;
		return 0;
	}
	uint32_t bits = 0;
	for (const char *p = v;;) {
		char *word;
		int r = keel_extract_word(&p, &word, NULL, KEEL_EXTRACT_UNQUOTE);
		if (r == -ENOMEM)
			return r;
		if (r <= 0) {
			if (r < 0) {
				keel__pwarn(c, KEEL_DIAG_WARNING, "Invalid syntax, ignoring: %s", v);
				return 0;
			}
			break;
		}
		size_t i = 0;
		while (i < KEEL_ARRAY_SIZE(names) && strcmp(word, names[i]) != 0)
			i++;
		/* systemd's secure_bits_from_string() skips unknown words (at debug level) */
		if (i == KEEL_ARRAY_SIZE(names))
			keel__pwarn(c, KEEL_DIAG_DEBUG, "Unknown secure bit '%s', ignoring", word);
		else
			bits |= 1u << i; /* SECBIT_NOROOT is bit 0, ... SECBIT_KEEP_CAPS_LOCKED bit 5 */
		keel_free(word);
	}
	sb->secure_bits = bits;
	return 0;
}

/* The path-list settings: an empty value empties the list; otherwise each unquoted word, its
 * specifiers expanded (a word that cannot be is warned about and skipped), goes to one(), which
 * adds what it accepts to the list. Syntax errors end the value with a warning, as systemd. */
typedef int (*path_word_fn)(struct keel__pctx *c, const char ***list, char *word);

static int each_path_word(struct keel__pctx *c, const char ***list, const char *v, path_word_fn one)
{
	if (!*v) {
		keel_pool_strv_clear(c->u->pool, list);
		return 0;
	}
	for (const char *p = v;;) {
		char *word, *k;
		int r = keel_extract_word(&p, &word, NULL, KEEL_EXTRACT_UNQUOTE);
		if (r == -ENOMEM)
			return r;
		if (r < 0) {
			keel__pwarn(c, KEEL_DIAG_WARNING, "Invalid syntax, ignoring: %s", v);
			return 0;
		}
		if (r == 0)
			return 0;
		r = keel__expand_or_ignore(c, KEEL_SPEC_FULL, word, PATH_MAX, &k);
		keel_free(word);
		if (r < 0)
			return r;
		if (r > 0)
			continue;
		r = one(c, list, k);
		keel_free(k);
		if (r < 0)
			return r;
	}
}

/* ReadOnlyPaths=, ReadWritePaths=, InaccessiblePaths=: each path with optional "-" and "+". */
static int ns_path_word(struct keel__pctx *c, const char ***list, char *k)
{
	char *path = k;
	if (*path == '-')
		path++;
	if (*path == '+')
		path++;
	return keel__path_check(c, path, true, false) == 0 ? keel_pool_strv_add(c->u->pool, list, k) : 0;
}

/* TemporaryFileSystem=PATH[:OPTIONS] */
static int tmpfs_word(struct keel__pctx *c, const char ***list, char *k)
{
	char *colon = strchr(k, ':');
	if (colon)
		*colon = '\0';
	if (keel__path_check(c, k, true, false) != 0)
		return 0;
	if (colon)
		*colon = ':';
	return keel_pool_strv_add(c->u->pool, list, k);
}

/* BindPaths=/BindReadOnlyPaths= [-]SRC[:DST[:rbind|norbind]], kept as "[-]SRC:DST:OPT". */
static int bind_word(struct keel__pctx *c, const char ***list, char *k)
{
	bool ignore = k[0] == '-';
	char *src = k + ignore;
	char *dst = strchr(src, ':');
	char *opt = NULL;
	if (dst) {
		*dst++ = '\0';
		opt = strchr(dst, ':');
		if (opt)
			*opt++ = '\0';
	}
	if (!dst || !*dst)
		dst = src;
	if (keel__path_check(c, src, true, false) != 0 || keel__path_check(c, dst, true, false) != 0)
		return 0;
	if (opt && *opt && strcmp(opt, "rbind") != 0 && strcmp(opt, "norbind") != 0) {
		keel__pwarn(c, KEEL_DIAG_WARNING, "Invalid option string, ignoring setting: %s", opt);
		return 0;
	}
	struct keel_buf b = KEEL_BUF_INIT;
	int r = keel_buf_printf(&b, "%s%s:%s:%s", ignore ? "-" : "", src, dst, opt && *opt ? opt : "rbind");
	if (r == 0)
		r = keel_pool_strv_add(c->u->pool, list, b.data);
	keel_buf_free(&b);
	return r;
}

/* An errno name or number for SystemCallErrorNumber= and "name:ERRNO". */
static int errno_value(const char *s)
{
	int v;
	if (keel_safe_atoi(s, &v) == 0)
		return v > 0 && v < 4096 ? v : -1;
	for (int e = 1; e < 200; e++) {
		const char *n = strerrorname_np(e);
		if (n && strcmp(n, s) == 0)
			return e;
	}
	return -1;
}

static const struct keel_syscall_group *group_find(const char *name)
{
	for (unsigned i = 0; i < keel_n_syscall_groups; i++)
		if (strcmp(keel_syscall_groups[i].name, name) == 0)
			return &keel_syscall_groups[i];
	return NULL;
}

/* Remove name (with or without a ":ERRNO") from the list. */
static void filter_remove(struct keel_pool *pool, const char **list, const char *name)
{
	size_t n = strlen(name);
	size_t j = 0;
	for (size_t i = 0; list && list[i]; i++) {
		if (strncmp(list[i], name, n) == 0 && (list[i][n] == '\0' || list[i][n] == ':'))
			keel_pool_unref(pool, list[i]);
		else
			list[j++] = list[i];
	}
	if (list)
		list[j] = NULL;
}

static int filter_apply(struct keel__pctx *c, struct keel_exec_sandbox *sb, const char *name,
			int err, bool add, int depth)
{
	if (name[0] == '@') {
		const struct keel_syscall_group *g = group_find(name);
		if (!g || depth > 4) {
			keel__pwarn(c, KEEL_DIAG_WARNING, "Unknown system call group, ignoring: %s", name);
			return 0;
		}
		for (const char *p = g->members; *p;) {
			size_t l = strcspn(p, " ");
			char one[64];
			if (l < sizeof(one)) {
				memcpy(one, p, l);
				one[l] = '\0';
				int r = filter_apply(c, sb, one, err, add, depth + 1);
				if (r < 0)
					return r;
			}
			p += l;
			p += *p == ' ';
		}
		return 0;
	}
	if (depth == 0 && seccomp_syscall_resolve_name(name) == __NR_SCMP_ERROR) {
		keel__pwarn(c, KEEL_DIAG_WARNING, "Failed to parse system call, ignoring: %s", name);
		return 0;
	}
	filter_remove(c->u->pool, sb->syscall_filter, name);
	if (!add)
		return 0;
	char buf[96];
	if (err > 0)
		snprintf(buf, sizeof(buf), "%s:%d", name, err);
	else
		snprintf(buf, sizeof(buf), "%s", name);
	return keel_pool_strv_add(c->u->pool, &sb->syscall_filter, buf);
}

/* SystemCallFilter=: config_parse_syscall_filter(). The first assignment decides whether the
 * list is what is allowed (an allow list starts with @default) or, with "~", what is denied;
 * later ones add to that list, or with the opposite sense take names out of it. */
static int parse_syscall_filter(struct keel__pctx *c, struct keel_exec_sandbox *sb, const char *v)
{
	if (!*v) {
		keel_pool_strv_clear(c->u->pool, &sb->syscall_filter);
		sb->syscall_filter_set = false;
		sb->syscall_allow_list = false;
		return 0;
	}
	bool invert = v[0] == '~';
	if (invert)
		v++;
	int r;
	if (!sb->syscall_filter_set) {
		sb->syscall_filter_set = true;
		sb->syscall_allow_list = !invert;
		if (!invert && (r = filter_apply(c, sb, "@default", 0, true, 0)) < 0)
			return r;
	}
	bool add = sb->syscall_allow_list ? !invert : invert;
	for (const char *p = v;;) {
		char *word;
		r = keel_extract_word(&p, &word, NULL, KEEL_EXTRACT_UNQUOTE);
		if (r == -ENOMEM)
			return r;
		if (r < 0) {
			keel__pwarn(c, KEEL_DIAG_WARNING, "Invalid syntax, ignoring: %s", v);
			return 0;
		}
		if (r == 0)
			return 0;
		int err = 0;
		char *colon = strchr(word, ':');
		if (colon) {
			*colon = '\0';
			err = errno_value(colon + 1);
			if (err < 0 || sb->syscall_allow_list) {
				keel__pwarn(c, KEEL_DIAG_WARNING, "Failed to parse errno, ignoring: %s", colon + 1);
				keel_free(word);
				continue;
			}
		}
		r = filter_apply(c, sb, word, err, add, 0);
		keel_free(word);
		if (r < 0)
			return r;
	}
}

static int parse_syscall_archs(struct keel__pctx *c, struct keel_exec_sandbox *sb, const char *v)
{
	if (!*v) {
		sb->syscall_arch_native = false;
		return 0;
	}
	for (const char *p = v;;) {
		char *word;
		int r = keel_extract_word(&p, &word, NULL, KEEL_EXTRACT_UNQUOTE);
		if (r == -ENOMEM)
			return r;
		if (r <= 0)
			return 0;
		uint32_t native = seccomp_arch_native();
		uint32_t a = strcmp(word, "native") == 0 ? native : seccomp_arch_resolve_name(word);
		/* systemd spells x86-64 with a dash, libseccomp with an underscore */
		if (!a && strcmp(word, "x86-64") == 0)
			a = seccomp_arch_resolve_name("x86_64");
		if (a == native)
			sb->syscall_arch_native = true;
		else if (a)
			keel__pwarn(c, KEEL_DIAG_WARNING,
				    "SystemCallArchitectures=%s is not supported by keel-init (only native), ignoring", word);
		else
			keel__pwarn(c, KEEL_DIAG_WARNING, "Failed to parse system call architecture \"%s\", ignoring: Invalid argument", word);
		keel_free(word);
	}
}

/* RuntimeDirectory= & co.: relative, normalised paths without "..". */
static int dir_word(struct keel__pctx *c, const char ***list, char *k)
{
	keel_path_simplify(k);
	if (keel_path_is_absolute(k))
		keel__pwarn(c, KEEL_DIAG_ERR, "%s= path is absolute, ignoring: %s", c->key, k);
	else if (!*k || !keel_path_is_normalized(k) || strcmp(k, ".") == 0)
		keel__pwarn(c, KEEL_DIAG_ERR, "%s= path is not normalized, ignoring: %s", c->key, k);
	else
		return keel_pool_strv_add(c->u->pool, list, k);
	return 0;
}

int keel__parse_sandbox(struct keel__pctx *c, const char *v, void *data, int ltype)
{
	struct keel_exec_sandbox *sb = keel_exec_sandbox(data);
	if (!sb)
		return -ENOMEM;
	bool ok;
	int b;
	switch (ltype) {
	case KEEL__SB_NO_NEW_PRIVILEGES:
	case KEEL__SB_PRIVATE_DEVICES:
	case KEEL__SB_PRIVATE_NETWORK:
	case KEEL__SB_PROTECT_KERNEL_TUNABLES:
	case KEEL__SB_PROTECT_KERNEL_MODULES:
	case KEEL__SB_PROTECT_CONTROL_GROUPS:
		b = bool_value(c, v, &ok);
		if (!ok)
			return 0;
		if (ltype == KEEL__SB_NO_NEW_PRIVILEGES) sb->no_new_privileges = b;
		else if (ltype == KEEL__SB_PRIVATE_DEVICES) sb->private_devices = b;
		else if (ltype == KEEL__SB_PRIVATE_NETWORK) sb->private_network = b;
		else if (ltype == KEEL__SB_PROTECT_KERNEL_TUNABLES) sb->protect_kernel_tunables = b;
		else if (ltype == KEEL__SB_PROTECT_KERNEL_MODULES) sb->protect_kernel_modules = b;
		else sb->protect_control_groups = b;
		return 0;
	case KEEL__SB_CAP_BOUNDING:
	case KEEL__SB_CAP_AMBIENT:
		return parse_caps(c, sb, v, ltype == KEEL__SB_CAP_AMBIENT);
	case KEEL__SB_SECURE_BITS:
		return parse_secure_bits(c, sb, v);
	case KEEL__SB_PROTECT_SYSTEM:
		b = keel_parse_boolean(v);
		if (b >= 0)
			sb->protect_system = b ? KEEL_PROTECT_SYSTEM_YES : KEEL_PROTECT_SYSTEM_NO;
		else if (strcmp(v, "full") == 0)
			sb->protect_system = KEEL_PROTECT_SYSTEM_FULL;
		else if (strcmp(v, "strict") == 0)
			sb->protect_system = KEEL_PROTECT_SYSTEM_STRICT;
		else
			keel__pwarn(c, KEEL_DIAG_WARNING, "Failed to parse protect system value, ignoring: %s", v);
		return 0;
	case KEEL__SB_PROTECT_HOME:
		b = keel_parse_boolean(v);
		if (b >= 0)
			sb->protect_home = b ? KEEL_PROTECT_HOME_YES : KEEL_PROTECT_HOME_NO;
		else if (strcmp(v, "read-only") == 0)
			sb->protect_home = KEEL_PROTECT_HOME_READ_ONLY;
		else if (strcmp(v, "tmpfs") == 0)
			sb->protect_home = KEEL_PROTECT_HOME_TMPFS;
		else
			keel__pwarn(c, KEEL_DIAG_WARNING, "Failed to parse protect home value, ignoring: %s", v);
		return 0;
	case KEEL__SB_READ_ONLY_PATHS:
		return each_path_word(c, &sb->read_only_paths, v, ns_path_word);
	case KEEL__SB_READ_WRITE_PATHS:
		return each_path_word(c, &sb->read_write_paths, v, ns_path_word);
	case KEEL__SB_INACCESSIBLE_PATHS:
		return each_path_word(c, &sb->inaccessible_paths, v, ns_path_word);
	case KEEL__SB_TEMPORARY_FS:
		return each_path_word(c, &sb->temporary_fs, v, tmpfs_word);
	case KEEL__SB_BIND_PATHS:
		return each_path_word(c, &sb->bind_paths, v, bind_word);
	case KEEL__SB_BIND_RO_PATHS:
		return each_path_word(c, &sb->bind_ro_paths, v, bind_word);
	case KEEL__SB_SYSCALL_FILTER:
		return parse_syscall_filter(c, sb, v);
	case KEEL__SB_SYSCALL_ERRNO:
		if (!*v || strcmp(v, "kill") == 0) {
			sb->syscall_errno = KEEL_SECCOMP_KILL;
		} else if ((b = errno_value(v)) > 0) {
			sb->syscall_errno = b;
		} else {
			keel__pwarn(c, KEEL_DIAG_WARNING, "Failed to parse error number, ignoring: %s", v);
		}
		return 0;
	case KEEL__SB_SYSCALL_ARCHS:
		return parse_syscall_archs(c, sb, v);
	case KEEL__SB_RUNTIME_DIR:
	case KEEL__SB_STATE_DIR:
	case KEEL__SB_CACHE_DIR:
	case KEEL__SB_LOGS_DIR:
		return each_path_word(c, &sb->dirs[ltype - KEEL__SB_RUNTIME_DIR], v, dir_word);
	case KEEL__SB_RUNTIME_DIR_MODE:
	case KEEL__SB_STATE_DIR_MODE:
	case KEEL__SB_CACHE_DIR_MODE:
	case KEEL__SB_LOGS_DIR_MODE:
		return keel__parse_mode(c, v, &sb->dir_mode[ltype - KEEL__SB_RUNTIME_DIR_MODE], 0);
	case KEEL__SB_RUNTIME_DIR_PRESERVE:
		b = keel_parse_boolean(v);
		if (b >= 0)
			sb->runtime_preserve = b ? KEEL_PRESERVE_YES : KEEL_PRESERVE_NO;
		else if (strcmp(v, "restart") == 0)
			sb->runtime_preserve = KEEL_PRESERVE_RESTART;
		else
			keel__pwarn(c, KEEL_DIAG_WARNING, "Failed to parse runtime directory preserve mode, ignoring: %s", v);
		return 0;
	default:
		return 0;
	}
}

void keel__exec_sandbox_free(struct keel_pool *p, struct keel_exec_sandbox *sb)
{
	if (!sb)
		return;
	const char ***lists[] = {
		&sb->read_only_paths, &sb->read_write_paths, &sb->inaccessible_paths, &sb->temporary_fs,
		&sb->bind_paths, &sb->bind_ro_paths, &sb->syscall_filter, &sb->dirs[0], &sb->dirs[1],
		&sb->dirs[2], &sb->dirs[3],
	};
	for (size_t i = 0; i < KEEL_ARRAY_SIZE(lists); i++)
		keel_pool_strv_clear(p, lists[i]);
	keel_free(sb);
}
