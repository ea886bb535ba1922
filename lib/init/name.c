#include "init/name.h"

#include <errno.h>
#include <limits.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/mem.h"
#include "init/values.h"

static const char *const type_names[KEEL_UNIT_TYPE_MAX] = {
	[KEEL_UNIT_SERVICE] = "service", [KEEL_UNIT_SOCKET] = "socket",
	[KEEL_UNIT_TARGET] = "target", [KEEL_UNIT_TIMER] = "timer",
	[KEEL_UNIT_MOUNT] = "mount", [KEEL_UNIT_SWAP] = "swap",
	[KEEL_UNIT_DEVICE] = "device", [KEEL_UNIT_AUTOMOUNT] = "automount",
	[KEEL_UNIT_PATH] = "path", [KEEL_UNIT_SLICE] = "slice", [KEEL_UNIT_SCOPE] = "scope",
};

const char *keel_unit_type_to_string(enum keel_unit_type t)
{
	return t >= 0 && t < KEEL_UNIT_TYPE_MAX ? type_names[t] : NULL;
}

enum keel_unit_type keel_unit_type_from_string(const char *s)
{
	for (int i = 0; i < KEEL_UNIT_TYPE_MAX; i++)
		if (strcmp(s, type_names[i]) == 0)
			return (enum keel_unit_type)i;
	return KEEL_UNIT_TYPE_INVALID;
}

enum keel_unit_type keel_unit_name_type(const char *name)
{
	const char *dot = strrchr(name, '.');
	return dot ? keel_unit_type_from_string(dot + 1) : KEEL_UNIT_TYPE_INVALID;
}

bool keel_unit_type_supported(enum keel_unit_type t)
{
	return t == KEEL_UNIT_SERVICE || t == KEEL_UNIT_SOCKET || t == KEEL_UNIT_TARGET ||
	       t == KEEL_UNIT_TIMER;
}

static bool name_char_ok(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == ':' || c == '-' || c == '_' || c == '.' || c == '\\';
}

bool keel_unit_name_is_valid(const char *n, unsigned flags)
{
	if (!n || !*n || strlen(n) >= KEEL_UNIT_NAME_MAX || flags == 0)
		return false;
	const char *e = strrchr(n, '.');
	if (!e || e == n || keel_unit_type_from_string(e + 1) < 0)
		return false;
	const char *at = NULL;
	for (const char *i = n; i < e; i++) {
		if (*i == '@' && !at)
			at = i;
		if (*i != '@' && !name_char_ok(*i))
			return false;
	}
	if (at == n)
		return false;
	if ((flags & KEEL_NAME_PLAIN) && !at)
		return true;
	if ((flags & KEEL_NAME_INSTANCE) && at && e > at + 1)
		return true;
	if ((flags & KEEL_NAME_TEMPLATE) && at && e == at + 1)
		return true;
	return false;
}

static int dup_n(const char *s, size_t n, char **ret)
{
	*ret = keel_strndup(s, n);
	return *ret ? 0 : -ENOMEM;
}

int keel_unit_name_prefix(const char *name, char **ret)
{
	if (!keel_unit_name_is_valid(name, KEEL_NAME_ANY))
		return -EINVAL;
	const char *at = strchr(name, '@');
	size_t n = at ? (size_t)(at - name) : (size_t)(strrchr(name, '.') - name);
	return dup_n(name, n, ret);
}

int keel_unit_name_instance(const char *name, char **ret)
{
	if (!keel_unit_name_is_valid(name, KEEL_NAME_ANY))
		return -EINVAL;
	const char *at = strchr(name, '@');
	if (!at) {
		*ret = NULL;
		return 0;
	}
	const char *dot = strrchr(name, '.');
	int r = dup_n(at + 1, (size_t)(dot - at - 1), ret);
	return r < 0 ? r : 1;
}

int keel_unit_name_template(const char *name, char **ret)
{
	if (!keel_unit_name_is_valid(name, KEEL_NAME_INSTANCE | KEEL_NAME_TEMPLATE))
		return -EINVAL;
	const char *at = strchr(name, '@');
	const char *dot = strrchr(name, '.');
	char *s = keel_malloc((size_t)(at - name) + 1 + strlen(dot) + 1);
	if (!s)
		return -ENOMEM;
	memcpy(s, name, (size_t)(at - name) + 1);
	strcpy(s + (at - name) + 1, dot);
	*ret = s;
	return 0;
}

int keel_unit_name_replace_instance(const char *tmpl, const char *instance, char **ret)
{
	if (!keel_unit_name_is_valid(tmpl, KEEL_NAME_INSTANCE | KEEL_NAME_TEMPLATE))
		return -EINVAL;
	const char *at = strchr(tmpl, '@');
	const char *dot = strrchr(tmpl, '.');
	struct keel_buf b = KEEL_BUF_INIT;
	if (keel_buf_append(&b, tmpl, (size_t)(at - tmpl) + 1) < 0 || keel_buf_puts(&b, instance) < 0 ||
	    keel_buf_puts(&b, dot) < 0) {
		keel_buf_free(&b);
		return -ENOMEM;
	}
	if (!keel_unit_name_is_valid(b.data, KEEL_NAME_INSTANCE)) {
		keel_buf_free(&b);
		return -EINVAL;
	}
	*ret = keel_buf_steal(&b, NULL);
	return 0;
}

int keel_unit_name_change_suffix(const char *name, const char *suffix, char **ret)
{
	if (!keel_unit_name_is_valid(name, KEEL_NAME_ANY))
		return -EINVAL;
	const char *dot = strrchr(name, '.');
	struct keel_buf b = KEEL_BUF_INIT;
	if (keel_buf_append(&b, name, (size_t)(dot - name)) < 0 || keel_buf_puts(&b, suffix) < 0) {
		keel_buf_free(&b);
		return -ENOMEM;
	}
	*ret = keel_buf_steal(&b, NULL);
	return *ret ? 0 : -ENOMEM;
}

int keel_unit_name_escape(const char *s, char **ret)
{
	static const char hex[] = "0123456789abcdef";
	struct keel_buf b = KEEL_BUF_INIT;
	int r = 0;
	for (const char *f = s; *f && r == 0; f++) {
		unsigned char c = (unsigned char)*f;
		if (c == '/') {
			r = keel_buf_putc(&b, '-');
		} else if ((f == s && c == '.') || c == '-' || c == '\\' || !name_char_ok((char)c)) {
			char esc[4] = {'\\', 'x', hex[c >> 4], hex[c & 15]};
			r = keel_buf_append(&b, esc, 4);
		} else {
			r = keel_buf_putc(&b, (char)c);
		}
	}
	if (r == 0)
		r = keel_buf_reserve(&b, 0);
	if (r < 0) {
		keel_buf_free(&b);
		return r;
	}
	*ret = keel_buf_steal(&b, NULL);
	return 0;
}

static int unhex(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int keel_unit_name_unescape(const char *s, char **ret)
{
	char *out = keel_malloc(strlen(s) + 1), *t = out;
	if (!out)
		return -ENOMEM;
	for (const char *f = s; *f; f++) {
		if (*f == '-') {
			*t++ = '/';
		} else if (*f == '\\') {
			int a, b;
			if (f[1] != 'x' || (a = unhex(f[2])) < 0 || (b = unhex(f[3])) < 0) {
				keel_free(out);
				return -EINVAL;
			}
			*t++ = (char)(a << 4 | b);
			f += 3;
		} else {
			*t++ = *f;
		}
	}
	*t = '\0';
	*ret = out;
	return 0;
}

int keel_unit_name_path_unescape(const char *s, char **ret)
{
	if (!*s)
		return -EINVAL;
	if (strcmp(s, "-") == 0) {
		*ret = keel_strdup("/");
		return *ret ? 0 : -ENOMEM;
	}
	char *w;
	int r = keel_unit_name_unescape(s, &w);
	if (r < 0)
		return r;
	size_t n = strlen(w);
	if (n == 0 || w[0] == '/' || w[n - 1] == '/') {
		keel_free(w);
		return -EINVAL;
	}
	char *p = keel_malloc(n + 2);
	if (!p) {
		keel_free(w);
		return -ENOMEM;
	}
	p[0] = '/';
	memcpy(p + 1, w, n + 1);
	keel_free(w);
	if (!keel_path_is_normalized(p)) {
		keel_free(p);
		return -EINVAL;
	}
	*ret = p;
	return 0;
}

/* Host information */

static char *read_first_line(const char *path)
{
	FILE *f = fopen(path, "re");
	if (!f)
		return NULL;
	char line[512];
	char *r = NULL;
	if (fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\r\n")] = '\0';
		r = keel_strdup(line);
	}
	fclose(f);
	return r;
}

/* A 32-hex-digit id, without dashes (boot_id has them). */
static char *read_id128(const char *path)
{
	char *s = read_first_line(path);
	if (!s)
		return NULL;
	char *t = s;
	for (char *f = s; *f; f++)
		if (*f != '-')
			*t++ = *f;
	*t = '\0';
	if (strlen(s) != 32 || strspn(s, "0123456789abcdef") != 32) {
		keel_free(s);
		return NULL;
	}
	return s;
}

static char *os_release_field(const char *key)
{
	FILE *f = fopen("/etc/os-release", "re");
	if (!f)
		f = fopen("/usr/lib/os-release", "re");
	if (!f)
		return NULL;
	char line[1024];
	char *r = NULL;
	size_t kl = strlen(key);
	while (!r && fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\r\n")] = '\0';
		if (strncmp(line, key, kl) != 0 || line[kl] != '=')
			continue;
		char *v = line + kl + 1;
		size_t n = strlen(v);
		if (n >= 2 && (v[0] == '"' || v[0] == '\'') && v[n - 1] == v[0]) {
			v[n - 1] = '\0';
			v++;
		}
		r = keel_strdup(v);
	}
	fclose(f);
	return r;
}

static const char *arch_name(const char *machine)
{
	static const struct {
		const char *uname, *systemd;
	} map[] = {
		{"x86_64", "x86-64"}, {"i386", "x86"}, {"i486", "x86"}, {"i586", "x86"},
		{"i686", "x86"}, {"aarch64", "arm64"}, {"aarch64_be", "arm64-be"},
		{"armv7l", "arm"}, {"ppc64le", "ppc64-le"}, {"s390x", "s390x"},
		{"riscv64", "riscv64"},
	};
	for (size_t i = 0; i < KEEL_ARRAY_SIZE(map); i++)
		if (strcmp(machine, map[i].uname) == 0)
			return map[i].systemd;
	return machine;
}

int keel_host_info_load(struct keel_host_info *h)
{
	*h = (struct keel_host_info){0};
	char host[HOST_NAME_MAX + 1] = "";
	if (gethostname(host, sizeof(host)) < 0 || !host[0] || strcmp(host, "(none)") == 0)
		strcpy(host, "localhost");
	host[HOST_NAME_MAX] = '\0';
	struct utsname u;
	if (uname(&u) < 0)
		memset(&u, 0, sizeof(u));
	h->hostname = keel_strdup(host);
	h->pretty_hostname = NULL;
	FILE *mi = fopen("/etc/machine-info", "re");
	if (mi) {
		char line[512];
		while (!h->pretty_hostname && fgets(line, sizeof(line), mi)) {
			line[strcspn(line, "\r\n")] = '\0';
			const char *v = strncmp(line, "PRETTY_HOSTNAME=", 16) == 0 ? line + 16 : NULL;
			if (!v)
				continue;
			size_t n = strlen(v);
			if (n >= 2 && (v[0] == '"' || v[0] == '\'') && v[n - 1] == v[0])
				h->pretty_hostname = keel_strndup(v + 1, n - 2);
			else if (n > 0)
				h->pretty_hostname = keel_strdup(v);
		}
		fclose(mi);
	}
	h->machine_id = read_id128("/etc/machine-id");
	h->boot_id = read_id128("/proc/sys/kernel/random/boot_id");
	h->kernel_release = keel_strdup(u.release);
	h->architecture = keel_strdup(arch_name(u.machine));
	h->os_id = os_release_field("ID");
	h->os_version_id = os_release_field("VERSION_ID");
	h->os_variant_id = os_release_field("VARIANT_ID");
	h->os_build_id = os_release_field("BUILD_ID");
	h->os_image_id = os_release_field("IMAGE_ID");
	h->os_image_version = os_release_field("IMAGE_VERSION");
	/* The system manager runs as root and does not ask NSS about itself (systemd does the same:
	 * root's home and shell are fixed). */
	h->uid = getuid();
	h->gid = getgid();
	/* The manager's own user, from the user database like systemd; root's home stays /root. */
	struct passwd *pw = getpwuid(h->uid);
	char num[32];
	snprintf(num, sizeof(num), "%u", (unsigned)h->uid);
	h->user_name = keel_strdup(pw ? pw->pw_name : h->uid == 0 ? "root" : num);
	h->user_home = keel_strdup(h->uid == 0 ? "/root" : pw && pw->pw_dir ? pw->pw_dir : "/");
	h->user_shell = keel_strdup(pw && pw->pw_shell && *pw->pw_shell ? pw->pw_shell : "/bin/sh");
	struct group *gr = getgrgid(h->gid);
	snprintf(num, sizeof(num), "%u", (unsigned)h->gid);
	h->group_name = keel_strdup(gr ? gr->gr_name : h->gid == 0 ? "root" : num);
	if (!h->hostname || !h->kernel_release || !h->architecture || !h->user_name ||
	    !h->group_name || !h->user_home || !h->user_shell) {
		keel_host_info_clear(h);
		return -ENOMEM;
	}
	return 0;
}

void keel_host_info_clear(struct keel_host_info *h)
{
	char **fields[] = {
		&h->hostname, &h->pretty_hostname, &h->machine_id, &h->boot_id, &h->kernel_release,
		&h->architecture, &h->os_id, &h->os_version_id, &h->os_variant_id, &h->os_build_id,
		&h->os_image_id, &h->os_image_version, &h->user_name, &h->user_home, &h->user_shell,
		&h->group_name,
	};
	for (size_t i = 0; i < KEEL_ARRAY_SIZE(fields); i++) {
		keel_free(*fields[i]);
		*fields[i] = NULL;
	}
}

/* Specifiers */

static int set_str(const char *s, char **ret)
{
	*ret = keel_strdup(s ? s : "");
	return *ret ? 0 : -ENOMEM;
}

static int last_component(const char *unit_id, bool unescape, char **ret)
{
	char *prefix;
	int r = keel_unit_name_prefix(unit_id, &prefix);
	if (r < 0)
		return r;
	char *dash = strrchr(prefix, '-');
	if (unescape)
		r = keel_unit_name_unescape(dash ? dash + 1 : prefix, ret);
	else
		r = set_str(dash ? dash + 1 : prefix, ret);
	keel_free(prefix);
	return r;
}

static int spec_dir(char c, const struct keel_spec_ctx *ctx, char **ret)
{
	const char *d = NULL;
	switch (c) {
	case 'C': d = ctx->system ? "/var/cache" : "/root/.cache"; break;
	case 'E': d = ctx->system ? "/etc" : "/root/.config"; break;
	case 'L': d = ctx->system ? "/var/log" : "/root/.local/state/log"; break;
	case 'S': d = ctx->system ? "/var/lib" : "/root/.local/state"; break;
	case 't': d = "/run"; break;
	case 'T': d = "/tmp"; break;
	case 'V': d = "/var/tmp"; break;
	}
	return set_str(d, ret);
}

/* One specifier's value; 1 when the letter is not in the table. */
static int lookup(const struct keel_spec_ctx *ctx, enum keel_spec_table table, char c, char **ret,
		  bool *deprecated)
{
	const struct keel_host_info *h = ctx->host;
	char *tmp = NULL;
	int r;

	/* %n %N %p %i %j and the host/user ones are in every table. */
	switch (c) {
	case 'n':
		return set_str(ctx->unit_id, ret);
	case 'N': {
		const char *dot = strrchr(ctx->unit_id, '.');
		*ret = keel_strndup(ctx->unit_id, dot ? (size_t)(dot - ctx->unit_id) : strlen(ctx->unit_id));
		return *ret ? 0 : -ENOMEM;
	}
	case 'p':
		return keel_unit_name_prefix(ctx->unit_id, ret);
	case 'i':
		r = keel_unit_name_instance(ctx->unit_id, &tmp);
		if (r < 0)
			return r;
		if (!tmp)
			return set_str("", ret);
		*ret = tmp;
		return 0;
	case 'j':
		return last_component(ctx->unit_id, false, ret);
	case 'a': return set_str(h ? h->architecture : NULL, ret);
	case 'A': return set_str(h ? h->os_image_version : NULL, ret);
	case 'B': return set_str(h ? h->os_build_id : NULL, ret);
	case 'H': return set_str(h ? h->hostname : NULL, ret);
	case 'l':
		if (!h || !h->hostname)
			return set_str(NULL, ret);
		*ret = keel_strndup(h->hostname, strcspn(h->hostname, "."));
		return *ret ? 0 : -ENOMEM;
	case 'M': return set_str(h ? h->os_image_id : NULL, ret);
	case 'o': return set_str(h ? h->os_id : NULL, ret);
	case 'q':
		/* the pretty hostname, else the short one */
		if (h && h->pretty_hostname)
			return set_str(h->pretty_hostname, ret);
		if (!h || !h->hostname)
			return set_str(NULL, ret);
		*ret = keel_strndup(h->hostname, strcspn(h->hostname, "."));
		return *ret ? 0 : -ENOMEM;
	case 'v': return set_str(h ? h->kernel_release : NULL, ret);
	case 'w': return set_str(h ? h->os_version_id : NULL, ret);
	case 'W': return set_str(h ? h->os_variant_id : NULL, ret);
	case 'b':
		if (!h || !h->boot_id)
			return -ENOENT;
		return set_str(h->boot_id, ret);
	case 'm':
		if (!h || !h->machine_id)
			return -ENOMEDIUM;
		return set_str(h->machine_id, ret);
	case 'u': return set_str(h ? h->user_name : "root", ret);
	case 'g': return set_str(h ? h->group_name : "root", ret);
	case 'U':
	case 'G': {
		char num[24];
		snprintf(num, sizeof(num), "%u", h ? (unsigned)(c == 'U' ? h->uid : h->gid) : 0u);
		return set_str(num, ret);
	}
	}
	if (table != KEEL_SPEC_FULL)
		return 1;
	switch (c) {
	case 'I':
		r = keel_unit_name_instance(ctx->unit_id, &tmp);
		if (r < 0)
			return r;
		r = keel_unit_name_unescape(tmp ? tmp : "", ret);
		keel_free(tmp);
		return r;
	case 'J':
		return last_component(ctx->unit_id, true, ret);
	case 'P':
		r = keel_unit_name_prefix(ctx->unit_id, &tmp);
		if (r < 0)
			return r;
		r = keel_unit_name_unescape(tmp, ret);
		keel_free(tmp);
		return r;
	case 'f':
		r = keel_unit_name_instance(ctx->unit_id, &tmp);
		if (r < 0)
			return r;
		if (!tmp) {
			r = keel_unit_name_prefix(ctx->unit_id, &tmp);
			if (r < 0)
				return r;
		}
		r = keel_unit_name_path_unescape(tmp, ret);
		keel_free(tmp);
		return r;
	case 'y':
	case 'Y': {
		if (!ctx->fragment_path)
			return -ENOENT;
		char *real = realpath(ctx->fragment_path, NULL);
		const char *p = real ? real : ctx->fragment_path;
		if (c == 'Y') {
			const char *slash = strrchr(p, '/');
			size_t n = slash ? (size_t)(slash - p) : 0;
			*ret = n ? keel_strndup(p, n) : keel_strdup(slash ? "/" : ".");
		} else {
			*ret = keel_strdup(p);
		}
		free(real);
		return *ret ? 0 : -ENOMEM;
	}
	case 'c':
	case 'r':
	case 'R':
		if (deprecated)
			*deprecated = true;
		if (c == 'R')
			return set_str("/", ret);
		if (c == 'r')
			return set_str("/system.slice", ret);
		*ret = NULL;
		{
			struct keel_buf b = KEEL_BUF_INIT;
			if (keel_buf_printf(&b, "/system.slice/%s", ctx->unit_id) < 0) {
				keel_buf_free(&b);
				return -ENOMEM;
			}
			*ret = keel_buf_steal(&b, NULL);
		}
		return 0;
	case 'd': {
		struct keel_buf b = KEEL_BUF_INIT;
		if (keel_buf_printf(&b, "/run/credentials/%s", ctx->unit_id) < 0) {
			keel_buf_free(&b);
			return -ENOMEM;
		}
		*ret = keel_buf_steal(&b, NULL);
		return 0;
	}
	case 'C': case 'E': case 'L': case 'S': case 't': case 'T': case 'V':
		return spec_dir(c, ctx, ret);
	case 'h': return set_str(h ? h->user_home : "/root", ret);
	case 's': return set_str(h ? h->user_shell : "/bin/sh", ret);
	}
	return 1;
}

static bool alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

int keel_specifier_expand(const struct keel_spec_ctx *ctx, enum keel_spec_table table,
			  const char *text, size_t max_len, char **ret, bool *ret_deprecated)
{
	struct keel_buf b = KEEL_BUF_INIT;
	bool percent = false, deprecated = false;
	int r = 0;
	for (const char *f = text; *f; f++) {
		if (!percent) {
			if (*f == '%')
				percent = true;
			else
				r = keel_buf_putc(&b, *f);
		} else {
			percent = false;
			if (*f == '%') {
				r = keel_buf_putc(&b, '%');
			} else {
				char *w = NULL;
				r = lookup(ctx, table, *f, &w, &deprecated);
				if (r == 1) {
					/* Not in this table: unknown letters and digits are errors,
					 * other characters are kept with their %. */
					if (alnum(*f))
						r = -EBADSLT;
					else
						r = keel_buf_append(&b, f - 1, 2);
				} else if (r == 0) {
					r = keel_buf_puts(&b, w);
				}
				keel_free(w);
			}
		}
		if (r < 0)
			goto fail;
		if (b.len > max_len) {
			r = -ENAMETOOLONG;
			goto fail;
		}
	}
	if (percent && (r = keel_buf_putc(&b, '%')) < 0)
		goto fail;
	if ((r = keel_buf_reserve(&b, 0)) < 0)
		goto fail;
	if (b.len > max_len) {
		r = -ENAMETOOLONG;
		goto fail;
	}
	*ret = keel_buf_steal(&b, NULL);
	if (ret_deprecated)
		*ret_deprecated = deprecated;
	return 0;
fail:
	keel_buf_free(&b);
	return r;
}
