/* Where keel-init hands the output of its units: the engine reads each unit's stdout/stderr
 * pipe on its event loop, splits it into lines, takes a leading "<N>" as the syslog priority
 * (sd-daemon(3)), and passes each line here with the unit's name and a timestamp. keel-init's own
 * messages about a unit ("Started ...", "Main process exited ...") go through the same sink, so
 * that `keelctl status` can show them beside the unit's output.
 *
 * A sink is a small vtable; the journal (lib/init/journal_sink.c) implements it, and keel-init
 * opens it unless it is given another sink. */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "base/macro.h"

struct keel_log_record {
	const char *unit;       /* "foo.service" */
	const char *identifier; /* SyslogIdentifier=, else the process name; NULL for keel-init's own */
	pid_t pid;              /* 0 for keel-init's own messages about the unit */
	int priority;           /* 0 (emerg) .. 7 (debug); output without "<N>" is 6 (info) */
	uint64_t realtime_usec; /* when the line was read */
	const char *msg;        /* the line, without its newline and "<N>" prefix; not NUL-terminated */
	size_t len;
};

/* Called with the last lines of a unit, oldest first. */
typedef void (*keel_logsink_tail_fn)(void *userdata, const struct keel_log_record *rec);

struct keel_logsink_ops {
	/* Store one line. Must not block for long: it runs on keel-init's loop. */
	void (*write)(void *impl, const struct keel_log_record *rec);
	/* The last n lines of unit (for status). Optional (NULL: none shown). 0 or -errno. */
	int (*tail)(void *impl, const char *unit, unsigned n, keel_logsink_tail_fn fn, void *userdata);
	/* Make what write() stored visible to readers. Optional; the engine calls it once per loop
	 * iteration, before the loop sleeps, so a sink may batch the lines of one iteration. */
	void (*flush)(void *impl);
	void (*free)(void *impl);
};

struct keel_logsink {
	const struct keel_logsink_ops *ops;
	void *impl;
};

static inline void keel_logsink_write(const struct keel_logsink *s, const struct keel_log_record *r)
{
	if (s->ops)
		s->ops->write(s->impl, r);
}

static inline void keel_logsink_flush(const struct keel_logsink *s)
{
	if (s->ops && s->ops->flush)
		s->ops->flush(s->impl);
}

/* Free the sink (it may be zeroed) and zero it. */
static inline void keel_logsink_free(struct keel_logsink *s)
{
	if (s && s->ops && s->ops->free)
		s->ops->free(s->impl);
	if (s)
		*s = (struct keel_logsink){0};
}
