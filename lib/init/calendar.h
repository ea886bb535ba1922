/* Calendar event expressions of OnCalendar= (systemd.time(7) "Calendar Events"):
 * "[WEEKDAYS] [[YEAR-]MONTH-DAY] [HOUR:MINUTE[:SECOND]] [UTC|ZONE]" with "*", lists "a,b",
 * ranges "a..b", repetitions "a/b" and "a..b/c", "~" for days counted from the month's end,
 * fractional seconds, the shorthands minutely hourly daily weekly monthly quarterly
 * semiannually yearly/annually, and "@EPOCH". Normalised and printed like systemd-analyze
 * calendar; the next elapse is computed in UTC, in the local zone, or in a named zone. */
#pragma once

#include <stdint.h>

#include "base/macro.h"

struct keel_calendar;

/* 0, -EINVAL (not a calendar expression) or -ENOMEM. */
int keel_calendar_parse(const char *s, struct keel_calendar **ret) KEEL_WUR;
void keel_calendar_free(struct keel_calendar *c);
/* The normalised form ("Mon..Fri *-*-* 09:30:00"), a new string. 0 or -ENOMEM. */
int keel_calendar_to_string(const struct keel_calendar *c, char **ret) KEEL_WUR;
/* The first elapse strictly after `after` (realtime, µs since the epoch) in *ret. -ENOENT when
 * the expression never elapses again (before the year 2200), -EINVAL for a time past that.
 * For an expression with a zone name, TZ is switched for the call and restored: not for use
 * from several threads at once. */
int keel_calendar_next(const struct keel_calendar *c, uint64_t after, uint64_t *ret) KEEL_WUR;
/* Bytes the expression holds (for memory accounting). */
size_t keel_calendar_size(const struct keel_calendar *c);
