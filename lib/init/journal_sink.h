/* The journal behind keel-init's log sink interface (init/logsink.h, defined by the engine):
 * keel-init opens it once with keel_journal_sink_new() and hands every unit line to it. */
#pragma once

#include <stdbool.h>

#include "init/journal.h"
#include "init/logsink.h"

/* Open the journal (keel_journal_open: creates the directory, takes the writer lock) as a sink.
 * Free it with keel_logsink_free(). 0 or -errno with a message in err. */
int keel_journal_sink_new(const struct keel_journal_config *cfg, struct keel_logsink *ret,
			  struct keel_err *err) KEEL_WUR;
/* The journal behind a sink made by keel_journal_sink_new (NULL for other sinks), for flush and
 * sync from the engine's loop and timer. */
struct keel_journal *keel_journal_sink_journal(const struct keel_logsink *sink);
/* With batched, write() only adds to the journal's batch and the owner must call
 * keel_logsink_flush() before its loop sleeps; without (the default), each line is written at
 * once. */
void keel_journal_sink_set_batched(struct keel_logsink *sink, bool batched);
