/* Time: a monotonic clock for timeouts and latency, the wall clock for timestamps and TTLs, and
 * the RFC 3339 text that etcd and runc put in their JSON. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#define KEEL_NSEC_PER_SEC 1000000000ll
#define KEEL_NSEC_PER_MSEC 1000000ll
#define KEEL_NSEC_PER_USEC 1000ll

/* Nanoseconds of CLOCK_MONOTONIC: only differences mean anything. */
int64_t keel_mono_ns(void);
/* Nanoseconds since the Unix epoch (CLOCK_REALTIME). */
int64_t keel_wall_ns(void);

/* Format a Unix time in ns as UTC RFC 3339. With `nano`, Go's RFC3339Nano form: fractional seconds
 * with trailing zeros removed ("2013-07-17T21:10:44.108563358Z", "…:44Z" when whole) — what etcd
 * puts in "expiration". Without, milliseconds always shown ("…:44.108Z"), for logs. Needs 36
 * bytes; returns the length written, or 0 if out is too small or the time is out of range. */
#define KEEL_RFC3339_MAX 36
size_t keel_fmt_rfc3339(int64_t unix_ns, int nano, char *out, size_t size);

/* Parse RFC 3339 ("2006-01-02T15:04:05[.frac](Z|±hh:mm)") into Unix ns. 0 or -EINVAL/-ERANGE. */
int keel_parse_rfc3339(const char *s, int64_t *ret_ns);
