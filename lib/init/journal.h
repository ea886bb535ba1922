/* keel-init's journal: the output of every unit, stored as CRC32C-framed records in a directory of
 * size-bounded, rotated files, read back by unit, priority and time (docs/init.md, "Logs").
 *
 * One writer (keel-init) appends; any number of readers (keelctl journal) read at the same time
 * without locks: a file is only ever appended to, and deleted whole when the size limits say so.
 *
 * Durability (what survives what):
 *   - keel_journal_append() only copies the record into an in-memory batch. Records of priority
 *     crit (2) or more urgent are written and fdatasync'ed at once, as journald does.
 *   - keel_journal_flush() write()s the batch: from then on readers see it and it survives a crash
 *     of the writing process (it is in the page cache). The batch is also written when it passes
 *     flush_bytes. The owner calls flush once per event-loop iteration, before it sleeps.
 *   - keel_journal_sync() flushes and fdatasync()s: it survives power loss. It happens on every
 *     rotation, on close, and from append/flush once sync_interval has passed since the last one
 *     (the owner's timer may call it too). So a power cut loses at most sync_interval of logs.
 *   - A record torn by a crash is detected by its length + CRC32C and skipped by readers; a writer
 *     that opens the directory always starts a new file, so it never appends after a torn tail.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "base/errors.h"
#include "base/macro.h"

#define KEEL_JOURNAL_DEFAULT_DIR "/var/log/keel/journal"
#define KEEL_JOURNAL_LINE_MAX_DEFAULT (48 * 1024) /* journald's LineMax= */

struct keel_journal_config {
	const char *dir;         /* NULL: KEEL_JOURNAL_DEFAULT_DIR; created (with parents) if missing */
	uint64_t max_use;        /* all files together; 0: 10% of the file system, within 16M..1G */
	uint64_t max_file_size;  /* rotate past this; 0: max_use / 8, within 1M..128M */
	unsigned max_files;      /* 0: 100 (journald's SystemMaxFiles=) */
	size_t line_max;         /* longer messages are split into records of this size; 0: 48K */
	size_t flush_bytes;      /* write the batch once it holds this much; 0: 64K; 1: every record */
	uint64_t sync_interval_usec; /* 0: 5 min (journald's SyncIntervalSec=) */
	uint64_t index_every;    /* one seek point per this many bytes of records; 0: 64K */
};

struct keel_journal;

/* Open dir for appending: takes dir/.lock (a second writer gets -EBUSY), starts a new file after
 * the existing ones and applies the size limits. 0 or -errno, with a message in err. */
int keel_journal_open(const struct keel_journal_config *cfg, struct keel_journal **ret,
		      struct keel_err *err) KEEL_WUR;
/* Sync and close. Accepts NULL. */
void keel_journal_close(struct keel_journal *j);

/* Append one message of unit's output. msg may hold any byte; it is split at each '\n' (a final
 * '\n' adds no empty record) and into pieces of at most line_max bytes. identifier (SyslogIdentifier=
 * or the process name) and pid may be NULL / 0; unit must be a non-empty name. realtime_usec 0
 * means now; mono_usec 0 means now. priority outside 0..7 is -EINVAL. 0, -EINVAL, -ENOMEM or the
 * -errno of a failed write (the record stays in the batch and is retried by the next flush). */
int keel_journal_append(struct keel_journal *j, const char *unit, int priority, pid_t pid,
			uint64_t realtime_usec, uint64_t mono_usec, const char *msg, size_t len);
/* As keel_journal_append with a SYSLOG_IDENTIFIER. */
int keel_journal_append_ident(struct keel_journal *j, const char *unit, const char *identifier,
			      int priority, pid_t pid, uint64_t realtime_usec, uint64_t mono_usec,
			      const char *msg, size_t len);
int keel_journal_flush(struct keel_journal *j);
int keel_journal_sync(struct keel_journal *j);
/* True when records wait in the batch (the owner should call flush before sleeping). */
bool keel_journal_pending(const struct keel_journal *j);
/* The limits in force after defaults were applied (for status and tests). */
const struct keel_journal_config *keel_journal_limits(const struct keel_journal *j);

/* The "<N>" syslog priority prefix of sd-daemon(3) (SD_ERR is "<3>"), as journald parses it on
 * stdout streams with SyslogLevelPrefix=yes: one to three digits whose value is 0..7 ("<3>",
 * "<03>"); anything else ("<13>", "<x>", "<3") is left in the message. Returns the priority and
 * moves *msg and *len past the prefix, or returns def and changes nothing. */
int keel_journal_prio_prefix(const char **msg, size_t *len, int def);

/* One record as a reader sees it. Pointers stay valid until the next call on the reader. */
struct keel_journal_entry {
	uint64_t realtime_usec;
	uint64_t mono_usec;
	const char *unit;        /* NUL-terminated */
	const char *identifier;  /* NUL-terminated; "" when none was given */
	const char *hostname;    /* of the writer that wrote the file */
	const char *boot_id;     /* 32 hex digits */
	pid_t pid;               /* 0 when unknown */
	int priority;
	const char *msg;         /* len bytes, not NUL-terminated, may hold any byte but '\n' */
	size_t len;
	uint64_t file_seq;       /* where it is: together a cursor */
	uint64_t offset;
};

struct keel_journal_filter {
	char **units;            /* NULL-terminated; NULL or empty: every unit */
	int max_priority;        /* show priority <= this; -1 or 7: all */
	uint64_t since_usec;     /* 0: no lower bound (realtime) */
	uint64_t until_usec;     /* 0: no upper bound; iteration ends at the first record past it */
};

struct keel_journal_reader;

/* Open dir for reading. A missing directory is -ENOENT. With follow, an inotify watch is set up
 * so keel_journal_reader_wait() can sleep until the writer adds records or files. */
int keel_journal_reader_open(const char *dir, const struct keel_journal_filter *filter, bool follow,
			     struct keel_journal_reader **ret, struct keel_err *err) KEEL_WUR;
void keel_journal_reader_free(struct keel_journal_reader *r);
/* Position so that next() returns the last n matching records (n = 0: only new ones). Without
 * this call the reader starts at the first matching record (using seek points for since).
 * 0 or -errno. Reads the files newest first, one seek-point chunk at a time, until n matched. */
int keel_journal_reader_tail(struct keel_journal_reader *r, uint64_t n);
/* The next matching record: 1 and *ret filled, 0 at the (current) end, -errno on I/O errors.
 * Corrupt or torn records are skipped (counted in keel_journal_reader_skipped). */
int keel_journal_reader_next(struct keel_journal_reader *r, struct keel_journal_entry *ret);
/* After next() returned 0, wait up to timeout_ms (-1: forever) for the directory to change.
 * 1 if it changed (call next() again), 0 on timeout, -errno. Needs follow. */
int keel_journal_reader_wait(struct keel_journal_reader *r, int timeout_ms);
/* The inotify fd (for poll loops), or -1 without follow. */
int keel_journal_reader_fd(const struct keel_journal_reader *r);
/* Bytes skipped as damaged so far (torn tails, bad CRCs). */
uint64_t keel_journal_reader_skipped(const struct keel_journal_reader *r);

/* What the journal files of dir take on disk (allocated blocks), as journalctl --disk-usage
 * counts. 0 or -errno. */
int keel_journal_disk_usage(const char *dir, uint64_t *ret_bytes);
/* journalctl --vacuum-size=: delete the oldest files until the directory takes at most
 * max_bytes, never the newest one (a running writer's). *ret_freed: bytes deleted. 0 or -errno. */
int keel_journal_vacuum_size(const char *dir, uint64_t max_bytes, uint64_t *ret_freed);

/* journalctl's --since/--until syntax, in local time: "2026-11-27 21:00:00", "2026-11-27 21:00",
 * "2026-11-27", "21:00:00", "21:00", each optionally followed by " UTC"; "now", "today",
 * "yesterday", "tomorrow"; "-5min", "+1h", "1 hour ago", "5min ago"; "@1700000000". now_usec is
 * the realtime clock to count from. 0 or -EINVAL. */
int keel_journal_parse_time(const char *s, uint64_t now_usec, uint64_t *ret_usec);
