#include "init/values.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>

#include "base/macro.h"

#define WHITESPACE " \t\n\r"
#define DIGITS "0123456789"

static const char *const true_words[] = {"1", "yes", "y", "true", "t", "on"};
static const char *const false_words[] = {"0", "no", "n", "false", "f", "off"};

int keel_parse_boolean(const char *s)
{
	for (size_t i = 0; i < KEEL_ARRAY_SIZE(true_words); i++)
		if (strcasecmp(s, true_words[i]) == 0)
			return 1;
	for (size_t i = 0; i < KEEL_ARRAY_SIZE(false_words); i++)
		if (strcasecmp(s, false_words[i]) == 0)
			return 0;
	return -EINVAL;
}

/* The unit words, longest first where one is a prefix of another, as parse_time() tries them. */
static const struct {
	const char *suffix;
	uint64_t usec;
} time_units[] = {
	{"seconds", KEEL_USEC_PER_SEC}, {"second", KEEL_USEC_PER_SEC}, {"sec", KEEL_USEC_PER_SEC},
	{"s", KEEL_USEC_PER_SEC}, {"minutes", KEEL_USEC_PER_MINUTE}, {"minute", KEEL_USEC_PER_MINUTE},
	{"min", KEEL_USEC_PER_MINUTE}, {"months", KEEL_USEC_PER_MONTH}, {"month", KEEL_USEC_PER_MONTH},
	{"M", KEEL_USEC_PER_MONTH}, {"msec", KEEL_USEC_PER_MSEC}, {"ms", KEEL_USEC_PER_MSEC},
	{"m", KEEL_USEC_PER_MINUTE}, {"hours", KEEL_USEC_PER_HOUR}, {"hour", KEEL_USEC_PER_HOUR},
	{"hr", KEEL_USEC_PER_HOUR}, {"h", KEEL_USEC_PER_HOUR}, {"days", KEEL_USEC_PER_DAY},
	{"day", KEEL_USEC_PER_DAY}, {"d", KEEL_USEC_PER_DAY}, {"weeks", KEEL_USEC_PER_WEEK},
	{"week", KEEL_USEC_PER_WEEK}, {"w", KEEL_USEC_PER_WEEK}, {"years", KEEL_USEC_PER_YEAR},
	{"year", KEEL_USEC_PER_YEAR}, {"y", KEEL_USEC_PER_YEAR}, {"usec", 1}, {"us", 1},
	{"\xce\xbcs", 1} /* U+03BC */, {"\xc2\xb5s", 1} /* U+00B5 */,
};

static const char *time_unit(const char *p, uint64_t *mult)
{
	for (size_t i = 0; i < KEEL_ARRAY_SIZE(time_units); i++) {
		size_t n = strlen(time_units[i].suffix);
		if (strncmp(p, time_units[i].suffix, n) == 0) {
			*mult = time_units[i].usec;
			return p + n;
		}
	}
	return p;
}

int keel_parse_time(const char *t, uint64_t default_unit, uint64_t *ret_usec)
{
	const char *p = t + strspn(t, WHITESPACE);
	if (strncmp(p, "infinity", 8) == 0) {
		const char *s = p + 8;
		s += strspn(s, WHITESPACE);
		if (*s)
			return -EINVAL;
		*ret_usec = KEEL_USEC_INFINITY;
		return 0;
	}
	uint64_t r = 0;
	bool something = false;
	for (;;) {
		uint64_t mult = default_unit;
		p += strspn(p, WHITESPACE);
		if (!*p) {
			if (!something)
				return -EINVAL;
			break;
		}
		if (*p == '-')
			return -ERANGE;
		char *e;
		errno = 0;
		long long l = strtoll(p, &e, 10);
		if (errno > 0)
			return -errno;
		if (l < 0)
			return -ERANGE;
		const char *frac = NULL;
		if (*e == '.') {
			frac = e + 1;
			p = frac + strspn(frac, DIGITS);
		} else if (e == p) {
			return -EINVAL;
		} else {
			p = e;
		}
		const char *s = time_unit(p + strspn(p, WHITESPACE), &mult);
		if (s == p && *s)
			return -EINVAL; /* "12.34.56" or "5x" */
		p = s;
		if ((uint64_t)l >= KEEL_USEC_INFINITY / mult)
			return -ERANGE;
		uint64_t k = (uint64_t)l * mult;
		if (k >= KEEL_USEC_INFINITY - r)
			return -ERANGE;
		r += k;
		something = true;
		if (frac) {
			uint64_t m = mult / 10;
			const char *b = frac;
			for (; *b >= '0' && *b <= '9'; b++, m /= 10) {
				k = (uint64_t)(*b - '0') * m;
				if (k >= KEEL_USEC_INFINITY - r)
					return -ERANGE;
				r += k;
			}
			if (b == frac)
				return -EINVAL; /* "3." or "3.sec" */
		}
	}
	*ret_usec = r;
	return 0;
}

int keel_parse_sec(const char *s, uint64_t *ret_usec)
{
	return keel_parse_time(s, KEEL_USEC_PER_SEC, ret_usec);
}

int keel_parse_sec_fix_0(const char *s, uint64_t *ret_usec)
{
	uint64_t v;
	int r = keel_parse_sec(s, &v);
	if (r < 0)
		return r;
	*ret_usec = v == 0 ? KEEL_USEC_INFINITY : v;
	return 0;
}

char *keel_format_timespan(char *out, size_t size, uint64_t t, uint64_t accuracy)
{
	static const struct {
		const char *suffix;
		uint64_t usec;
	} table[] = {
		{"y", KEEL_USEC_PER_YEAR}, {"month", KEEL_USEC_PER_MONTH}, {"w", KEEL_USEC_PER_WEEK},
		{"d", KEEL_USEC_PER_DAY}, {"h", KEEL_USEC_PER_HOUR}, {"min", KEEL_USEC_PER_MINUTE},
		{"s", KEEL_USEC_PER_SEC}, {"ms", KEEL_USEC_PER_MSEC}, {"us", 1},
	};
	if (size == 0)
		return out;
	if (t == KEEL_USEC_INFINITY || t == 0) {
		snprintf(out, size, "%s", t ? "infinity" : "0");
		return out;
	}
	size_t len = 0;
	bool something = false;
	out[0] = '\0';
	for (size_t i = 0; i < KEEL_ARRAY_SIZE(table) && t > 0; i++) {
		if (t < accuracy && something)
			break;
		if (t < table[i].usec)
			continue;
		uint64_t a = t / table[i].usec, b = t % table[i].usec;
		int k = -1;
		/* Below a minute a remainder is shown as a fraction ("5.500s"), to the accuracy. */
		if (t < KEEL_USEC_PER_MINUTE && b > 0) {
			int j = 0;
			for (uint64_t cc = table[i].usec; cc > 1; cc /= 10)
				j++;
			for (uint64_t cc = accuracy; cc > 1; cc /= 10) {
				b /= 10;
				j--;
			}
			if (j > 0) {
				k = snprintf(out + len, size - len, "%s%llu.%0*llu%s", len ? " " : "",
					     (unsigned long long)a, j, (unsigned long long)b, table[i].suffix);
				t = 0;
			}
		}
		if (k < 0) {
			k = snprintf(out + len, size - len, "%s%llu%s", len ? " " : "",
				     (unsigned long long)a, table[i].suffix);
			t = b;
		}
		len += KEEL_MIN((size_t)k, size - len - 1);
		something = true;
		if (len + 1 >= size)
			break;
	}
	return out;
}

int keel_parse_size(const char *t, uint64_t base, uint64_t *ret)
{
	static const char *const suffixes[] = {"E", "P", "T", "G", "M", "K", "B", ""};
	uint64_t factors[8];
	uint64_t f = 1;
	for (int i = 5; i >= 0; i--) {
		f *= base;
		factors[i] = f;
	}
	factors[6] = factors[7] = 1;

	const char *p = t;
	uint64_t r = 0;
	size_t start = 0;
	do {
		p += strspn(p, WHITESPACE);
		char *e;
		errno = 0;
		unsigned long long l = strtoull(p, &e, 10);
		if (errno > 0)
			return -errno;
		if (e == p)
			return -EINVAL;
		if (*p == '-')
			return -ERANGE;
		double frac = 0;
		if (*e == '.') {
			e++;
			if (*e >= '0' && *e <= '9') {
				char *e2;
				unsigned long long l2 = strtoull(e, &e2, 10);
				if (errno > 0)
					return -errno;
				frac = (double)l2;
				for (; e < e2; e++)
					frac /= 10;
			}
		}
		e += strspn(e, WHITESPACE);
		size_t i;
		for (i = start; i < KEEL_ARRAY_SIZE(suffixes); i++)
			if (strncmp(e, suffixes[i], strlen(suffixes[i])) == 0)
				break;
		if (i >= KEEL_ARRAY_SIZE(suffixes))
			return -EINVAL;
		if (l + (frac > 0) > UINT64_MAX / factors[i])
			return -ERANGE;
		uint64_t tmp = (uint64_t)l * factors[i] + (uint64_t)(frac * (double)factors[i]);
		if (tmp > UINT64_MAX - r)
			return -ERANGE;
		r += tmp;
		p = e + strlen(suffixes[i]);
		start = i + 1;
	} while (*p);
	*ret = r;
	return 0;
}

int keel_safe_atoi(const char *s, int *ret)
{
	s += strspn(s, WHITESPACE);
	char *x;
	errno = 0;
	long l = strtol(s, &x, 10);
	if (errno > 0)
		return -errno;
	if (x == s || *x)
		return -EINVAL;
	if ((long)(int)l != l)
		return -ERANGE;
	*ret = (int)l;
	return 0;
}

int keel_safe_atou64(const char *s, uint64_t *ret)
{
	s += strspn(s, WHITESPACE);
	char *x;
	errno = 0;
	unsigned long long l = strtoull(s, &x, 10);
	if (errno > 0)
		return -errno;
	if (x == s || *x)
		return -EINVAL;
	if (l != 0 && s[0] == '-')
		return -ERANGE;
	*ret = l;
	return 0;
}

/* The number before symbol (which must end p), with up to `places` decimals, scaled by 10^places. */
static int parse_parts(const char *p, const char *symbol, int places)
{
	size_t n = strlen(p), sl = strlen(symbol);
	if (n < sl || strcmp(p + n - sl, symbol) != 0)
		return -EINVAL;
	size_t numlen = n - sl;
	char num[64];
	if (numlen >= sizeof(num))
		return -ERANGE;
	memcpy(num, p, numlen);
	num[numlen] = '\0';
	int q = 0, scale = 1;
	for (int i = 0; i < places; i++)
		scale *= 10;
	char *dot = places > 0 ? strchr(num, '.') : NULL;
	if (dot) {
		size_t digits = strlen(dot + 1);
		if (digits == 0 || digits > (size_t)places)
			return -EINVAL;
		int mul = scale;
		for (size_t i = 0; i < digits; i++) {
			if (dot[1 + i] < '0' || dot[1 + i] > '9')
				return -EINVAL;
			mul /= 10;
			q += (dot[1 + i] - '0') * mul;
		}
		*dot = '\0';
	}
	int v;
	int r = keel_safe_atoi(num, &v);
	if (r < 0)
		return r;
	if (v < 0)
		return -ERANGE;
	if (v > (INT_MAX - q) / scale)
		return -ERANGE;
	return v * scale + q;
}

static bool ends_with(const char *s, const char *suffix)
{
	size_t a = strlen(s), b = strlen(suffix);
	return a >= b && strcmp(s + a - b, suffix) == 0;
}

int keel_parse_permyriad_unbounded(const char *s)
{
	if (ends_with(s, "\xe2\x80\xb1")) /* ‱ */
		return parse_parts(s, "\xe2\x80\xb1", 0);
	if (ends_with(s, "\xe2\x80\xb0")) /* ‰ */
		return parse_parts(s, "\xe2\x80\xb0", 1);
	return parse_parts(s, "%", 2);
}

int keel_parse_permyriad(const char *s)
{
	int v = keel_parse_permyriad_unbounded(s);
	if (v > 10000)
		return -ERANGE;
	return v;
}

static const char *const signal_names[] = {
	[SIGHUP] = "HUP", [SIGINT] = "INT", [SIGQUIT] = "QUIT", [SIGILL] = "ILL",
	[SIGTRAP] = "TRAP", [SIGABRT] = "ABRT", [SIGBUS] = "BUS", [SIGFPE] = "FPE",
	[SIGKILL] = "KILL", [SIGUSR1] = "USR1", [SIGSEGV] = "SEGV", [SIGUSR2] = "USR2",
	[SIGPIPE] = "PIPE", [SIGALRM] = "ALRM", [SIGTERM] = "TERM", [SIGSTKFLT] = "STKFLT",
	[SIGCHLD] = "CHLD", [SIGCONT] = "CONT", [SIGSTOP] = "STOP", [SIGTSTP] = "TSTP",
	[SIGTTIN] = "TTIN", [SIGTTOU] = "TTOU", [SIGURG] = "URG", [SIGXCPU] = "XCPU",
	[SIGXFSZ] = "XFSZ", [SIGVTALRM] = "VTALRM", [SIGPROF] = "PROF", [SIGWINCH] = "WINCH",
	[SIGIO] = "IO", [SIGPWR] = "PWR", [SIGSYS] = "SYS",
};

static bool signal_valid(int sig)
{
	return sig > 0 && sig < _NSIG;
}

int keel_signal_from_string(const char *s)
{
	int n;
	if (keel_safe_atoi(s, &n) == 0)
		return signal_valid(n) ? n : -ERANGE;
	if (strncmp(s, "SIG", 3) == 0)
		s += 3;
	for (size_t i = 1; i < KEEL_ARRAY_SIZE(signal_names); i++)
		if (signal_names[i] && strcmp(s, signal_names[i]) == 0)
			return (int)i;
	/* Aliases glibc defines. */
	if (strcmp(s, "IOT") == 0)
		return SIGABRT;
	if (strcmp(s, "POLL") == 0)
		return SIGIO;
	if (strcmp(s, "CLD") == 0)
		return SIGCHLD;
	const char *p;
	if ((p = strncmp(s, "RTMIN", 5) == 0 ? s + 5 : NULL)) {
		if (!*p)
			return SIGRTMIN;
		if (*p != '+')
			return -EINVAL;
		int k;
		if (keel_safe_atoi(p + 1, &k) < 0 || p[1] < '0' || p[1] > '9')
			return -EINVAL;
		if (k < 0 || k > SIGRTMAX - SIGRTMIN)
			return -ERANGE;
		return SIGRTMIN + k;
	}
	if ((p = strncmp(s, "RTMAX", 5) == 0 ? s + 5 : NULL)) {
		if (!*p)
			return SIGRTMAX;
		if (*p != '-')
			return -EINVAL;
		int k;
		if (keel_safe_atoi(p + 1, &k) < 0 || p[1] < '0' || p[1] > '9')
			return -EINVAL;
		if (k < 0 || k > SIGRTMAX - SIGRTMIN)
			return -ERANGE;
		return SIGRTMAX - k;
	}
	return -EINVAL;
}

const char *keel_signal_to_string(int sig, char *buf, size_t size)
{
	if (sig > 0 && (size_t)sig < KEEL_ARRAY_SIZE(signal_names) && signal_names[sig])
		return signal_names[sig];
	if (sig >= SIGRTMIN && sig <= SIGRTMAX) {
		if (sig == SIGRTMIN)
			snprintf(buf, size, "RTMIN");
		else
			snprintf(buf, size, "RTMIN+%d", sig - SIGRTMIN);
		return buf;
	}
	return NULL;
}

static const struct {
	uint8_t code;
	const char *name;
} exit_names[] = {
	{0, "SUCCESS"}, {1, "FAILURE"}, {2, "INVALIDARGUMENT"}, {3, "NOTIMPLEMENTED"},
	{4, "NOPERMISSION"}, {5, "NOTINSTALLED"}, {6, "NOTCONFIGURED"}, {7, "NOTRUNNING"},
	{64, "USAGE"}, {65, "DATAERR"}, {66, "NOINPUT"}, {67, "NOUSER"}, {68, "NOHOST"},
	{69, "UNAVAILABLE"}, {70, "SOFTWARE"}, {71, "OSERR"}, {72, "OSFILE"}, {73, "CANTCREAT"},
	{74, "IOERR"}, {75, "TEMPFAIL"}, {76, "PROTOCOL"}, {77, "NOPERM"}, {78, "CONFIG"},
	{200, "CHDIR"}, {201, "NICE"}, {202, "FDS"}, {203, "EXEC"}, {204, "MEMORY"},
	{205, "LIMITS"}, {206, "OOM_ADJUST"}, {207, "SIGNAL_MASK"}, {208, "STDIN"},
	{209, "STDOUT"}, {210, "CHROOT"}, {211, "IOPRIO"}, {212, "TIMERSLACK"},
	{213, "SECUREBITS"}, {214, "SETSCHEDULER"}, {215, "CPUAFFINITY"}, {216, "GROUP"},
	{217, "USER"}, {218, "CAPABILITIES"}, {219, "CGROUP"}, {220, "SETSID"},
	{221, "CONFIRM"}, {222, "STDERR"}, {224, "PAM"}, {225, "NETWORK"}, {226, "NAMESPACE"},
	{227, "NO_NEW_PRIVILEGES"}, {228, "SECCOMP"}, {229, "SELINUX_CONTEXT"},
	{230, "PERSONALITY"}, {231, "APPARMOR"}, {232, "ADDRESS_FAMILIES"},
	{233, "RUNTIME_DIRECTORY"}, {235, "CHOWN"}, {236, "SMACK_PROCESS_LABEL"},
	{237, "KEYRING"}, {238, "STATE_DIRECTORY"}, {239, "CACHE_DIRECTORY"},
	{240, "LOGS_DIRECTORY"}, {241, "CONFIGURATION_DIRECTORY"}, {242, "NUMA_POLICY"},
	{243, "CREDENTIALS"}, {244, "BPF"}, {255, "EXCEPTION"},
};

int keel_exit_status_from_string(const char *s)
{
	for (size_t i = 0; i < KEEL_ARRAY_SIZE(exit_names); i++)
		if (strcmp(s, exit_names[i].name) == 0)
			return exit_names[i].code;
	uint64_t v;
	int r = keel_safe_atou64(s, &v);
	if (r < 0)
		return r;
	if (v > 255)
		return -ERANGE;
	return (int)v;
}

const char *keel_exit_status_to_string(int status)
{
	for (size_t i = 0; i < KEEL_ARRAY_SIZE(exit_names); i++)
		if (exit_names[i].code == status)
			return exit_names[i].name;
	return NULL;
}

int keel_parse_mode(const char *s, mode_t *ret)
{
	s += strspn(s, WHITESPACE);
	if (*s == '-' || *s == '+' || !*s)
		return -EINVAL; /* strtol would take a sign; a mode has none */
	char *x;
	errno = 0;
	long l = strtol(s, &x, 8);
	if (errno > 0)
		return -errno;
	if (x == s || *x)
		return -EINVAL;
	if (l < 0 || l > 07777)
		return -ERANGE;
	*ret = (mode_t)l;
	return 0;
}

int keel_parse_nice(const char *s, int *ret)
{
	int n;
	int r = keel_safe_atoi(s, &n);
	if (r < 0)
		return r;
	if (n < PRIO_MIN || n >= PRIO_MAX)
		return -ERANGE;
	*ret = n;
	return 0;
}

static const char *const rlimit_names[RLIM_NLIMITS] = {
	[RLIMIT_CPU] = "CPU", [RLIMIT_FSIZE] = "FSIZE", [RLIMIT_DATA] = "DATA",
	[RLIMIT_STACK] = "STACK", [RLIMIT_CORE] = "CORE", [RLIMIT_RSS] = "RSS",
	[RLIMIT_NOFILE] = "NOFILE", [RLIMIT_AS] = "AS", [RLIMIT_NPROC] = "NPROC",
	[RLIMIT_MEMLOCK] = "MEMLOCK", [RLIMIT_LOCKS] = "LOCKS", [RLIMIT_SIGPENDING] = "SIGPENDING",
	[RLIMIT_MSGQUEUE] = "MSGQUEUE", [RLIMIT_NICE] = "NICE", [RLIMIT_RTPRIO] = "RTPRIO",
	[RLIMIT_RTTIME] = "RTTIME",
};

int keel_rlimit_from_name(const char *name)
{
	for (int i = 0; i < RLIM_NLIMITS; i++)
		if (rlimit_names[i] && strcmp(name, rlimit_names[i]) == 0)
			return i;
	return -EINVAL;
}

const char *keel_rlimit_name(int resource)
{
	return resource >= 0 && resource < RLIM_NLIMITS ? rlimit_names[resource] : NULL;
}

static int rlimit_parse_one(int resource, const char *s, uint64_t *ret)
{
	if (strcmp(s, "infinity") == 0) {
		*ret = KEEL_RLIMIT_INFINITY;
		return 0;
	}
	uint64_t v;
	int r;
	switch (resource) {
	case RLIMIT_CPU:
		r = keel_parse_sec(s, &v);
		if (r < 0)
			return r;
		if (v != KEEL_USEC_INFINITY)
			v = (v + KEEL_USEC_PER_SEC - 1) / KEEL_USEC_PER_SEC;
		break;
	case RLIMIT_RTTIME:
		r = keel_parse_time(s, 1, &v);
		if (r < 0)
			return r;
		break;
	case RLIMIT_FSIZE: case RLIMIT_DATA: case RLIMIT_STACK: case RLIMIT_CORE:
	case RLIMIT_RSS: case RLIMIT_AS: case RLIMIT_MEMLOCK: case RLIMIT_MSGQUEUE:
		r = keel_parse_size(s, 1024, &v);
		if (r < 0)
			return r;
		break;
	case RLIMIT_NICE:
		if (s[0] == '+' || s[0] == '-') {
			uint64_t n;
			r = keel_safe_atou64(s + 1, &n);
			if (r < 0)
				return r;
			if (s[0] == '+') {
				if (n >= PRIO_MAX)
					return -ERANGE;
				v = 20 - n;
			} else {
				if (n > (uint64_t)-PRIO_MIN)
					return -ERANGE;
				v = 20 + n;
			}
		} else {
			r = keel_safe_atou64(s, &v);
			if (r < 0)
				return r;
			if (v > (uint64_t)(20 - PRIO_MIN))
				return -ERANGE;
		}
		break;
	default:
		r = keel_safe_atou64(s, &v);
		if (r < 0)
			return r;
	}
	*ret = v;
	return 0;
}

int keel_rlimit_parse(int resource, const char *s, uint64_t *ret_soft, uint64_t *ret_hard)
{
	if (resource < 0 || resource >= RLIM_NLIMITS)
		return -EINVAL;
	const char *colon = strchr(s, ':');
	uint64_t soft, hard;
	int r;
	if (colon) {
		char buf[256];
		size_t n = (size_t)(colon - s);
		if (n >= sizeof(buf))
			return -EINVAL;
		memcpy(buf, s, n);
		buf[n] = '\0';
		r = rlimit_parse_one(resource, buf, &soft);
		if (r < 0)
			return r;
		r = rlimit_parse_one(resource, colon + 1, &hard);
		if (r < 0)
			return r;
		if (soft > hard)
			return -EILSEQ;
	} else {
		r = rlimit_parse_one(resource, s, &soft);
		if (r < 0)
			return r;
		hard = soft;
	}
	*ret_soft = soft;
	*ret_hard = hard;
	return 0;
}

static int parse_ranged(const char *s, uint64_t min, uint64_t max, uint64_t *ret)
{
	uint64_t v;
	int r = keel_safe_atou64(s, &v);
	if (r < 0)
		return r;
	if (v < min || v > max)
		return -ERANGE;
	*ret = v;
	return 0;
}

int keel_cg_weight_parse(const char *s, uint64_t *ret)
{
	return parse_ranged(s, 1, 10000, ret);
}

int keel_cg_cpu_weight_parse(const char *s, uint64_t *ret)
{
	if (strcmp(s, "idle") == 0) {
		*ret = 0;
		return 0;
	}
	return parse_ranged(s, 1, 10000, ret);
}

int keel_cg_cpu_shares_parse(const char *s, uint64_t *ret)
{
	return parse_ranged(s, 2, 262144, ret);
}

int keel_cg_blkio_weight_parse(const char *s, uint64_t *ret)
{
	return parse_ranged(s, 10, 1000, ret);
}

bool keel_path_is_absolute(const char *p)
{
	return p && p[0] == '/';
}

char *keel_path_simplify(char *p)
{
	bool absolute = p[0] == '/';
	char *out = p;
	const char *in = p;
	if (absolute)
		*out++ = '/';
	bool first = true;
	while (*in) {
		while (*in == '/')
			in++;
		if (!*in)
			break;
		size_t n = strcspn(in, "/");
		if (n == 1 && in[0] == '.') {
			in += n;
			continue;
		}
		if (!first)
			*out++ = '/';
		memmove(out, in, n);
		out += n;
		in += n;
		first = false;
	}
	if (out == p)
		*out++ = '.';
	*out = '\0';
	return p;
}

bool keel_path_is_valid(const char *p)
{
	if (!p || !*p)
		return false;
	if (strlen(p) >= PATH_MAX)
		return false;
	for (const char *c = p; *c;) {
		size_t n = strcspn(c, "/");
		if (n > NAME_MAX)
			return false;
		c += n;
		c += strspn(c, "/");
	}
	return true;
}

bool keel_path_is_normalized(const char *p)
{
	if (!keel_path_is_valid(p))
		return false;
	if (strstr(p, "//"))
		return false;
	for (const char *c = p; *c;) {
		c += strspn(c, "/");
		size_t n = strcspn(c, "/");
		if ((n == 1 && c[0] == '.') || (n == 2 && c[0] == '.' && c[1] == '.'))
			return false;
		c += n;
	}
	return true;
}

bool keel_filename_is_valid(const char *p)
{
	if (!p || !*p || strcmp(p, ".") == 0 || strcmp(p, "..") == 0)
		return false;
	if (strchr(p, '/'))
		return false;
	return strlen(p) <= NAME_MAX;
}

/* systemd's parse_ip_port(): no leading whitespace or zero, 1-65535. */
static int parse_port(const char *s, uint16_t *ret)
{
	uint64_t v;
	const char *d = s[0] == '+' ? s + 1 : s;
	if (!*s || s[0] == ' ' || s[0] == '\t' || s[0] == '-' || (d[0] == '0' && d[1]))
		return -EINVAL;
	int r = keel_safe_atou64(s, &v);
	if (r < 0)
		return r;
	if (v == 0)
		return -EINVAL;
	if (v > 65535)
		return -ERANGE;
	*ret = (uint16_t)v;
	return 0;
}

int keel_sockaddr_parse(const char *s, struct keel_sockaddr *ret)
{
	struct keel_sockaddr a = {0};
	if (s[0] == '/' || s[0] == '@') {
		/* sun_path is 108 bytes with its NUL; an abstract name also loses its NUL byte. */
		if (strlen(s) >= 108)
			return -ENAMETOOLONG;
		a.kind = s[0] == '/' ? KEEL_SOCKADDR_UNIX : KEEL_SOCKADDR_ABSTRACT;
		*ret = a;
		return 0;
	}
	if (strncmp(s, "vsock:", 6) == 0)
		return -EAFNOSUPPORT;
	int r = parse_port(s, &a.port);
	if (r == -ERANGE)
		return r;
	if (r == 0) {
		a.kind = KEEL_SOCKADDR_PORT;
		*ret = a;
		return 0;
	}
	char buf[128];
	if (strlen(s) >= sizeof(buf))
		return -EINVAL;
	strcpy(buf, s);
	char *pct = strchr(buf, '%');
	if (pct) {
		*pct = '\0';
		const char *ifn = pct + 1;
		if (!*ifn || strlen(ifn) >= sizeof(a.ifname) || strchr(ifn, '/') || strchr(ifn, ':'))
			return -EINVAL;
		strcpy(a.ifname, ifn);
	}
	char *colon = strrchr(buf, ':');
	if (!colon)
		return -EINVAL; /* an address without a port cannot be listened on */
	if (buf[0] == '[') {
		if (colon == buf || colon[-1] != ']')
			return -EINVAL;
		r = parse_port(colon + 1, &a.port);
		if (r < 0)
			return r;
		colon[-1] = '\0';
		if (inet_pton(AF_INET6, buf + 1, a.addr) != 1)
			return -EINVAL;
		a.kind = KEEL_SOCKADDR_INET6;
	} else {
		struct in6_addr tmp;
		if (inet_pton(AF_INET6, buf, &tmp) == 1)
			return -EINVAL; /* a bare IPv6 address has no port */
		*colon = '\0';
		if (inet_pton(AF_INET, buf, a.addr) != 1)
			return -EINVAL;
		r = parse_port(colon + 1, &a.port);
		if (r < 0)
			return r;
		a.kind = KEEL_SOCKADDR_INET;
	}
	*ret = a;
	return 0;
}

int keel_sockaddr_format(const struct keel_sockaddr *a, const char *path, char *out, size_t size)
{
	char ip[INET6_ADDRSTRLEN];
	int n;
	switch (a->kind) {
	case KEEL_SOCKADDR_UNIX:
	case KEEL_SOCKADDR_ABSTRACT:
		n = snprintf(out, size, "%s", path ? path : "");
		break;
	case KEEL_SOCKADDR_PORT:
		n = snprintf(out, size, "%u", a->port);
		break;
	case KEEL_SOCKADDR_INET:
		inet_ntop(AF_INET, a->addr, ip, sizeof(ip));
		n = snprintf(out, size, "%s:%u%s%s", ip, a->port, a->ifname[0] ? "%" : "", a->ifname);
		break;
	case KEEL_SOCKADDR_INET6:
		inet_ntop(AF_INET6, a->addr, ip, sizeof(ip));
		n = snprintf(out, size, "[%s]:%u%s%s", ip, a->port, a->ifname[0] ? "%" : "", a->ifname);
		break;
	default:
		return -EINVAL;
	}
	return n < 0 || (size_t)n >= size ? -ENOBUFS : 0;
}
