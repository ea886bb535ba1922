/* systemd's value syntaxes, one strict parser each (systemd.time(7), systemd.exec(5),
 * systemd.resource-control(5), systemd.socket(5)). All return 0 (or the value) on success and
 * -EINVAL / -ERANGE / -ENOMEM on failure, never touching their outputs then. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define KEEL_USEC_INFINITY UINT64_MAX
#define KEEL_USEC_PER_SEC UINT64_C(1000000)
#define KEEL_USEC_PER_MSEC UINT64_C(1000)
#define KEEL_USEC_PER_MINUTE (60 * KEEL_USEC_PER_SEC)
#define KEEL_USEC_PER_HOUR (60 * KEEL_USEC_PER_MINUTE)
#define KEEL_USEC_PER_DAY (24 * KEEL_USEC_PER_HOUR)
#define KEEL_USEC_PER_WEEK (7 * KEEL_USEC_PER_DAY)
#define KEEL_USEC_PER_MONTH (2629800 * KEEL_USEC_PER_SEC) /* 30.44 days */
#define KEEL_USEC_PER_YEAR (31557600 * KEEL_USEC_PER_SEC) /* 365.25 days */

/* yes/no/y/n/true/false/t/f/on/off/1/0, any case: 1, 0 or -EINVAL. */
int keel_parse_boolean(const char *s);

/* Time spans: "5min 20s", "1.5h", "2 weeks", "infinity"; units us/µs/ms/s/min/h/d/w/M/y and their
 * long forms; a number without unit counts default_unit microseconds. Sums of parts. */
int keel_parse_time(const char *s, uint64_t default_unit, uint64_t *ret_usec);
/* keel_parse_time in seconds. */
int keel_parse_sec(const char *s, uint64_t *ret_usec);
/* Same, but 0 means infinity (TimeoutStartSec=0 disables the timeout). */
int keel_parse_sec_fix_0(const char *s, uint64_t *ret_usec);
/* systemd's format_timespan(): "1h 30min", "5.500s", "infinity", "0". Returns out. */
char *keel_format_timespan(char *out, size_t size, uint64_t usec, uint64_t accuracy);

/* Sizes with base-1024 (K M G T P E, B) or base-1000 suffixes, decimal fractions, sums ("1G 512M"). */
int keel_parse_size(const char *s, uint64_t base, uint64_t *ret);
/* "N%" (0-100, two decimals), "N‰", "N‱" as parts per 10000; -EINVAL/-ERANGE. */
int keel_parse_permyriad(const char *s);
int keel_parse_permyriad_unbounded(const char *s);

/* systemd's safe_atoi/atou64: optional leading whitespace and sign, decimal, whole string. */
int keel_safe_atoi(const char *s, int *ret);
int keel_safe_atou64(const char *s, uint64_t *ret);

/* "SIGTERM", "TERM", "15", "RTMIN+3", "SIGRTMAX-1": the signal number, or -EINVAL/-ERANGE. */
int keel_signal_from_string(const char *s);
/* "TERM" (without SIG), "RTMIN+3"; NULL if not a signal. */
const char *keel_signal_to_string(int sig, char *buf, size_t size);

/* Exit status names of systemd-analyze exit-status ("SUCCESS", "CHDIR", ...) or 0-255. */
int keel_exit_status_from_string(const char *s);
const char *keel_exit_status_to_string(int status);

/* Octal file mode, at most 07777. */
int keel_parse_mode(const char *s, mode_t *ret);
/* Nice level -20..19. */
int keel_parse_nice(const char *s, int *ret);

/* Resource limits. LimitCPU= is in seconds (time span syntax), LimitRTTIME= in microseconds,
 * sizes (FSIZE DATA STACK CORE RSS AS MEMLOCK MSGQUEUE) take K/M/G suffixes, LimitNICE= takes
 * "+N"/"-N" nice levels or a raw 0-40; "infinity" everywhere; "soft:hard" sets both.
 * -EILSEQ when soft is above hard. */
#define KEEL_RLIMIT_INFINITY UINT64_MAX
int keel_rlimit_from_name(const char *name); /* "NOFILE" -> RLIMIT_NOFILE, or -EINVAL */
const char *keel_rlimit_name(int resource);
int keel_rlimit_parse(int resource, const char *s, uint64_t *ret_soft, uint64_t *ret_hard);

/* Cgroup weights: CPUWeight=/IOWeight= 1-10000 ("idle" is 0 for CPUWeight), CPUShares= 2-262144,
 * BlockIOWeight= 10-1000. */
int keel_cg_weight_parse(const char *s, uint64_t *ret);
int keel_cg_cpu_weight_parse(const char *s, uint64_t *ret);
int keel_cg_cpu_shares_parse(const char *s, uint64_t *ret);
int keel_cg_blkio_weight_parse(const char *s, uint64_t *ret);

/* Paths as systemd checks them. */
bool keel_path_is_absolute(const char *p);
/* Collapse "//", drop "." components and a trailing slash, in place. */
char *keel_path_simplify(char *p);
/* Non-empty, below PATH_MAX, no component above NAME_MAX. */
bool keel_path_is_valid(const char *p);
/* Valid, and no ".", ".." or "//". */
bool keel_path_is_normalized(const char *p);
/* A single file name: not empty, not "." or "..", no '/', at most NAME_MAX bytes. */
bool keel_filename_is_valid(const char *p);

/* A listening address of ListenStream=/ListenDatagram=/ListenSequentialPacket=. */
enum keel_sockaddr_kind {
	KEEL_SOCKADDR_UNIX,     /* path: "/run/foo.sock" */
	KEEL_SOCKADDR_ABSTRACT, /* path: "@name" (leading @ kept) */
	KEEL_SOCKADDR_INET,     /* 127.0.0.1:80 */
	KEEL_SOCKADDR_INET6,    /* [::1]:80 */
	KEEL_SOCKADDR_PORT,     /* "80": every address; IPv6 dual-stack when the host has IPv6 */
};

struct keel_sockaddr {
	enum keel_sockaddr_kind kind;
	uint16_t port;
	uint8_t addr[16];   /* network order; 4 bytes used for INET */
	char ifname[16];    /* from "addr:port%ifname"; empty when none */
};

/* Parse a socket address (not the path; paths are returned as kind UNIX/ABSTRACT and the caller
 * keeps the string). -EINVAL for bad syntax, -ERANGE for a port out of range. */
int keel_sockaddr_parse(const char *s, struct keel_sockaddr *ret);
/* "0.0.0.0:80", "[::1]:80", "80", "/path", "@name" (path from the caller). */
int keel_sockaddr_format(const struct keel_sockaddr *a, const char *path, char *out, size_t size);
