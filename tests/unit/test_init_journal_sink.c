/* The journal as keel-init's log sink (lib/init/journal_sink.c): lines written through the
 * logsink interface are in the journal at once, keel-init's own messages carry its identifier,
 * tail() gives back the last lines of one unit, and a batched sink holds lines until flush(). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "init/journal_sink.h"

struct seen {
	int n;
	char msgs[8][64];
	int pids[8];
};

static void collect(void *userdata, const struct keel_log_record *rec)
{
	struct seen *s = userdata;
	if (s->n < 8) {
		snprintf(s->msgs[s->n], sizeof(s->msgs[0]), "%s|%s|%d|%.*s", rec->unit,
			 rec->identifier ? rec->identifier : "-", rec->priority, (int)rec->len, rec->msg);
		s->pids[s->n] = rec->pid;
	}
	s->n++;
}

static void test_sink_write_and_tail(void **state)
{
	(void)state;
	char dir[64];
	assert_int_equal(test_make_tmpdir("jsink", dir, sizeof(dir)), 0);
	struct keel_journal_config cfg = {.dir = dir, .max_use = 1 << 20};
	struct keel_logsink sink;
	assert_int_equal(keel_journal_sink_new(&cfg, &sink, NULL), 0);
	assert_non_null(keel_journal_sink_journal(&sink));
	for (int i = 0; i < 5; i++) {
		char line[32];
		int n = snprintf(line, sizeof(line), "out %d", i);
		struct keel_log_record rec = {.unit = i % 2 ? "a.service" : "b.service",
					      .identifier = "srv", .pid = 100 + i, .priority = 6,
					      .realtime_usec = 1000 + (uint64_t)i, .msg = line,
					      .len = (size_t)n};
		keel_logsink_write(&sink, &rec);
	}
	struct keel_log_record own = {.unit = "a.service", .priority = 5, .msg = "Started a.",
				      .len = 10};
	keel_logsink_write(&sink, &own);
	/* written through: a separate reader sees it without a flush */
	assert_false(keel_journal_pending(keel_journal_sink_journal(&sink)));

	struct seen s = {0};
	assert_int_equal(sink.ops->tail(sink.impl, "a.service", 2, collect, &s), 0);
	assert_int_equal(s.n, 2);
	assert_string_equal(s.msgs[0], "a.service|srv|6|out 3");
	assert_int_equal(s.pids[0], 103);
	assert_string_equal(s.msgs[1], "a.service|keel-init|5|Started a.");
	assert_int_equal(s.pids[1], getpid());
	s = (struct seen){0};
	assert_int_equal(sink.ops->tail(sink.impl, "none.service", 3, collect, &s), 0);
	assert_int_equal(s.n, 0);
	sink.ops->free(sink.impl);
	test_remove_tree(dir);
}

/* keel-init's mode: lines wait in the batch until the engine flushes before its loop sleeps. */
static void test_sink_batched_until_flush(void **state)
{
	(void)state;
	char dir[64];
	assert_int_equal(test_make_tmpdir("jsinkb", dir, sizeof(dir)), 0);
	struct keel_journal_config cfg = {.dir = dir, .max_use = 1 << 20};
	struct keel_logsink sink;
	assert_int_equal(keel_journal_sink_new(&cfg, &sink, NULL), 0);
	keel_journal_sink_set_batched(&sink, true);
	struct keel_log_record rec = {.unit = "a.service", .identifier = "srv", .pid = 7, .priority = 6,
				      .msg = "batched", .len = 7};
	keel_logsink_write(&sink, &rec);
	assert_true(keel_journal_pending(keel_journal_sink_journal(&sink)));
	/* a reader of its own sees nothing before the flush ... */
	char *units[] = {"a.service", NULL};
	struct keel_journal_filter flt = {.units = units, .max_priority = -1};
	struct keel_journal_reader *rd;
	struct keel_journal_entry e;
	assert_int_equal(keel_journal_reader_open(dir, &flt, false, &rd, NULL), 0);
	assert_int_equal(keel_journal_reader_next(rd, &e), 0);
	keel_logsink_flush(&sink);
	assert_false(keel_journal_pending(keel_journal_sink_journal(&sink)));
	/* ... and the line after it */
	assert_int_equal(keel_journal_reader_next(rd, &e), 1);
	assert_int_equal((int)e.len, 7);
	assert_memory_equal(e.msg, "batched", 7);
	keel_journal_reader_free(rd);
	keel_logsink_free(&sink);
	assert_null(sink.ops);
	test_remove_tree(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sink_write_and_tail),
		cmocka_unit_test(test_sink_batched_until_flush),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
