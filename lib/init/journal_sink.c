/* The journal as keel-init's log sink (init/logsink.h): write() appends a line, tail() reads the
 * last lines of a unit back for `keelctl status`, flush() writes the batch.
 *
 * By default each write is written through to the file (one write(2), no fsync), so readers such
 * as `keelctl journal -f` see it at once even if nobody calls flush(). keel-init's engine calls
 * flush() before its loop sleeps, so it turns batching on with keel_journal_sink_set_batched()
 * and saves the system call per line. */
#include "init/journal_sink.h"

#include <errno.h>
#include <unistd.h>

#include "base/mem.h"
#include "base/str.h"

struct jsink {
	struct keel_journal *j;
	char *dir;
	bool batched;
};

static void sink_write(void *impl, const struct keel_log_record *rec)
{
	struct jsink *s = impl;
	/* keel-init's own messages about a unit: journald records systemd's as "systemd[1]" */
	const char *ident = rec->identifier ? rec->identifier : "keel-init";
	pid_t pid = rec->identifier || rec->pid ? rec->pid : getpid();
	int prio = rec->priority >= 0 && rec->priority <= 7 ? rec->priority : 6;
	if (keel_journal_append_ident(s->j, rec->unit, ident, prio, pid, rec->realtime_usec, 0,
				      rec->msg, rec->len) == 0 &&
	    !s->batched)
		keel_journal_flush(s->j);
}

static int sink_tail(void *impl, const char *unit, unsigned n, keel_logsink_tail_fn fn, void *userdata)
{
	struct jsink *s = impl;
	int r = keel_journal_flush(s->j);
	if (r < 0)
		return r;
	char *units[] = {(char *)unit, NULL};
	struct keel_journal_filter flt = {.units = units, .max_priority = -1};
	struct keel_journal_reader *rd;
	r = keel_journal_reader_open(s->dir, &flt, false, &rd, NULL);
	if (r < 0)
		return r;
	r = keel_journal_reader_tail(rd, n);
	struct keel_journal_entry e;
	for (unsigned i = 0; r == 0 && i < n && (r = keel_journal_reader_next(rd, &e)) == 1; i++) {
		struct keel_log_record rec = {
			.unit = e.unit,
			.identifier = e.identifier[0] ? e.identifier : NULL,
			.pid = e.pid,
			.priority = e.priority,
			.realtime_usec = e.realtime_usec,
			.msg = e.msg,
			.len = e.len,
		};
		fn(userdata, &rec);
		r = 0;
	}
	keel_journal_reader_free(rd);
	return r < 0 ? r : 0;
}

static void sink_flush(void *impl)
{
	struct jsink *s = impl;
	/* A failed write stays in the batch and is retried by the next flush. */
	(void)keel_journal_flush(s->j);
}

static void sink_free(void *impl)
{
	struct jsink *s = impl;
	keel_journal_close(s->j);
	keel_free(s->dir);
	keel_free(s);
}

static const struct keel_logsink_ops journal_ops = {
	.write = sink_write,
	.tail = sink_tail,
	.flush = sink_flush,
	.free = sink_free,
};

int keel_journal_sink_new(const struct keel_journal_config *cfg, struct keel_logsink *ret,
			  struct keel_err *err)
{
	struct jsink *s = keel_calloc(1, sizeof(*s));
	if (!s)
		return keel_err_set(err, -ENOMEM, "out of memory");
	int r = keel_journal_open(cfg, &s->j, err);
	if (r < 0) {
		keel_free(s);
		return r;
	}
	if (!(s->dir = keel_strdup(keel_journal_limits(s->j)->dir))) {
		keel_journal_close(s->j);
		keel_free(s);
		return keel_err_set(err, -ENOMEM, "out of memory");
	}
	ret->ops = &journal_ops;
	ret->impl = s;
	return 0;
}

struct keel_journal *keel_journal_sink_journal(const struct keel_logsink *sink)
{
	return sink->ops == &journal_ops ? ((struct jsink *)sink->impl)->j : NULL;
}

void keel_journal_sink_set_batched(struct keel_logsink *sink, bool batched)
{
	if (sink->ops == &journal_ops)
		((struct jsink *)sink->impl)->batched = batched;
}
