/* Fuzz the journal reader over damaged files. Input: one flag byte, a 16-bit little-endian length
 * L, L bytes of seek-point file, then the data file's bytes. With flag bit 0 a valid file header
 * is put in front of the data (so mutations land in records, not in the header CRC); with bit 1
 * the CRC of every frame that parses is recomputed first, so mutations reach the field checks;
 * bit 2 adds a second, intact file after the damaged one.
 *
 * Properties: the reader never crashes, hangs or leaks, whatever the files hold; each record it
 * returns has a non-empty unit, a priority 0..7 and lies inside the file; reading all, reading
 * the last few (-n) and reading with a unit, priority and --since filter all finish, and the intact
 * second file is always read completely. */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/crc32c.h"
#include "init/journal-internal.h"
#include "init/journal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char dir[64];

static void write_file(uint64_t seq, int index, const uint8_t *a, size_t an, const uint8_t *b,
		       size_t bn)
{
	char name[KEEL_JNAME_MAX], path[160];
	keel__jname(name, seq, index);
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		abort();
	if ((an && write(fd, a, an) != (ssize_t)an) || (bn && write(fd, b, bn) != (ssize_t)bn))
		abort();
	close(fd);
}

static void remove_file(uint64_t seq, int index)
{
	char name[KEEL_JNAME_MAX], path[160];
	keel__jname(name, seq, index);
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	unlink(path);
}

/* Recompute the CRC of each frame whose magic and length fit, walking frame by frame. */
static void fix_crcs(uint8_t *p, size_t n)
{
	size_t off = 0;
	while (off + KEEL_JREC_FRAME <= n) {
		if (keel__get32(p + off) != KEEL_JREC_MAGIC) {
			off++;
			continue;
		}
		uint32_t len = keel__get32(p + off + 4);
		if (len > n - off - KEEL_JREC_FRAME) {
			off++;
			continue;
		}
		uint32_t crc = keel_crc32c(keel_crc32c(0, p + off + 4, 4), p + off + KEEL_JREC_FRAME, len);
		keel__put32(p + off + 8, crc);
		off += KEEL_JREC_FRAME + len;
	}
}

static size_t read_all(struct keel_journal_reader *r, size_t limit, int *second)
{
	struct keel_journal_entry e;
	size_t n = 0;
	int rc;
	while ((rc = keel_journal_reader_next(r, &e)) == 1) {
		if (!e.unit[0] || e.priority < 0 || e.priority > 7 || strlen(e.identifier) > 0xffff)
			abort();
		if (e.file_seq == 2)
			(*second)++;
		if (++n > limit)
			abort(); /* more records than bytes could hold */
	}
	if (rc < 0)
		abort();
	return n;
}

static void cleanup(void)
{
	remove_file(1, 0);
	remove_file(1, 1);
	remove_file(2, 0);
	rmdir(dir);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!dir[0]) {
		snprintf(dir, sizeof(dir), "/tmp/keel-fuzz-journal-XXXXXX");
		if (!mkdtemp(dir))
			abort();
		atexit(cleanup);
	}
	if (size < 3)
		return 0;
	uint8_t flags = data[0];
	size_t ilen = (size_t)data[1] | (size_t)data[2] << 8;
	data += 3;
	size -= 3;
	if (ilen > size)
		ilen = size;
	const uint8_t *idx = data;
	uint8_t *body = malloc(size - ilen + 1);
	if (!body)
		return 0;
	size_t blen = size - ilen;
	memcpy(body, data + ilen, blen);
	if (flags & 2)
		fix_crcs(body, blen);

	uint8_t hdr[KEEL_JHDR_SIZE];
	struct keel_jhdr h = {.seq = 1, .created_usec = 1000, .hostname = "fuzz"};
	keel__jhdr_encode(&h, hdr);
	write_file(1, 0, (flags & 1) ? hdr : NULL, (flags & 1) ? sizeof(hdr) : 0, body, blen);
	write_file(1, 1, idx, ilen, NULL, 0);
	int want_second = 0;
	if (flags & 4) {
		uint8_t second[KEEL_JHDR_SIZE + 2 * 64];
		h.seq = 2;
		keel__jhdr_encode(&h, second);
		size_t off = KEEL_JHDR_SIZE;
		for (int i = 0; i < 2; i++)
			off += keel__jrec_encode(second + off, 6, 1, 5000 + (uint64_t)i, 1, "ok.service", 10,
						 "", 0, "fine", 4);
		write_file(2, 0, second, off, NULL, 0);
		want_second = 2;
	} else {
		remove_file(2, 0);
	}
	size_t limit = (blen + sizeof(hdr)) / (KEEL_JREC_FRAME + KEEL_JREC_FIXED + 1) + 3;

	struct keel_journal_reader *r;
	int second = 0;
	if (keel_journal_reader_open(dir, NULL, false, &r, NULL) == 0) {
		read_all(r, limit, &second);
		if (second != want_second)
			abort();
		keel_journal_reader_free(r);
	}
	second = 0;
	if (keel_journal_reader_open(dir, NULL, false, &r, NULL) == 0) {
		if (keel_journal_reader_tail(r, 3) < 0)
			abort();
		read_all(r, limit, &second);
		keel_journal_reader_free(r);
	}
	char *units[] = {"a*", "ok.service", NULL};
	struct keel_journal_filter flt = {.units = units, .max_priority = 6, .since_usec = 1000};
	second = 0;
	if (keel_journal_reader_open(dir, &flt, false, &r, NULL) == 0) {
		read_all(r, limit, &second);
		if (second != want_second)
			abort();
		keel_journal_reader_free(r);
	}
	free(body);
	return 0;
}
