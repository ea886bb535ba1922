/* Reading a WAL segment for replay in bounded chunks: the records are parsed and checked as
 * wal_parse() checks a whole image, but never more than `chunk` bytes of the file are held, so a
 * restart does not need a 64 MiB buffer per segment (docs/raftio.md, "Recovery rules"). */
#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#include "base/crc32c.h"
#include "base/mem.h"
#include "base/sys.h"
#include "raftio/wal-internal.h"

/* Up to the record's type and the 24 bytes that hold a hard state, a snapshot point or an
 * entry's head: enough to judge a record's shape without its data. */
#define WAL_PEEK (WAL_FRAME + 1 + WAL_SNAP_PAYLOAD)

int wal_win_open(struct wal_win *v, int fd, size_t chunk)
{
	struct stat st;
	*v = (struct wal_win){.fd = fd};
	if (fstat(fd, &st) < 0)
		return -errno;
	if (st.st_size < 0)
		return -EIO;
	chunk = chunk ? chunk : WAL_REPLAY_CHUNK_DEFAULT;
	chunk = KEEL_MAX(chunk, (size_t)WAL_REPLAY_CHUNK_MIN) & ~(size_t)7;
	v->size = (uint64_t)st.st_size;
	v->chunk = chunk;
	v->buf = keel_malloc(chunk);
	return v->buf ? 0 : -ENOMEM;
}

void wal_win_free(struct wal_win *v)
{
	keel_free(v->buf);
	v->buf = NULL;
}

int wal_win_get(struct wal_win *v, uint64_t off, size_t n, const uint8_t **ret)
{
	if (n > v->chunk || off > v->size || n > v->size - off)
		return -EINVAL;
	if (off >= v->base && off + n <= v->base + v->len) {
		*ret = v->buf + (off - v->base);
		return 0;
	}
	size_t want = (size_t)KEEL_MIN((uint64_t)v->chunk, v->size - off);
	v->len = 0;
	ssize_t got = keel_sys_pread_all(v->fd, v->buf, want, (off_t)off);
	if (got < 0)
		return (int)got;
	if ((size_t)got < n)
		return -EIO; /* the file is shorter than fstat said: nobody else may write it */
	v->base = off;
	v->len = (size_t)got;
	*ret = v->buf;
	return 0;
}

/* CRC32C of [off, off + len), a chunk at a time. */
static int wal_win_crc(struct wal_win *v, uint64_t off, uint64_t len, uint32_t *ret)
{
	uint32_t crc = 0;
	while (len) {
		size_t n = (size_t)KEEL_MIN(len, (uint64_t)v->chunk);
		const uint8_t *p;
		int r = wal_win_get(v, off, n, &p);
		if (r < 0)
			return r;
		crc = keel_crc32c(crc, p, n);
		off += n;
		len -= n;
	}
	*ret = crc;
	return 0;
}

int wal_win_parse(struct wal_win *v, uint64_t off, struct wal_srec *rec, const char **why)
{
	uint64_t avail = v->size - off;
	const uint8_t *p;
	int r;
	if (avail < WAL_FRAME) {
		r = wal_win_get(v, off, (size_t)avail, &p);
		if (r < 0)
			return r;
		for (size_t i = 0; i < avail; i++)
			if (p[i]) {
				*why = "truncated record frame";
				return WAL_REC_BAD;
			}
		return WAL_REC_END;
	}
	r = wal_win_get(v, off, (size_t)KEEL_MIN(avail, (uint64_t)WAL_PEEK), &p);
	if (r < 0)
		return r;
	uint32_t len = keel_le32(p);
	if (len == 0)
		return WAL_REC_END;
	if (len > avail - WAL_FRAME || WAL_ALIGN(WAL_FRAME + (uint64_t)len) > avail) {
		*why = "record length runs past the end of the segment";
		return WAL_REC_BAD;
	}
	/* Shape before checksum, as wal_parse: the scan after damage tries every 8-aligned offset. */
	const uint8_t *body = p + WAL_FRAME;
	uint8_t type = body[0]; /* body is gone once the window moves below */
	size_t plen = len - 1;
	if (!wal_rec_shape_ok(body, plen)) {
		*why = "record of unknown type or malformed payload";
		return WAL_REC_BAD;
	}
	uint32_t want = keel_le32(p + 4);
	memcpy(rec->head, body + 1, KEEL_MIN(plen, sizeof(rec->head)));
	uint32_t crc;
	rec->payload = NULL;
	if (WAL_FRAME + (size_t)len <= v->chunk) {
		r = wal_win_get(v, off, WAL_FRAME + (size_t)len, &p);
		if (r < 0)
			return r;
		crc = keel_crc32c(0, p + WAL_FRAME, len);
		rec->payload = p + WAL_FRAME + 1;
	} else {
		r = wal_win_crc(v, off + WAL_FRAME, len, &crc);
		if (r < 0)
			return r;
	}
	if (crc != want) {
		rec->payload = NULL;
		*why = "record checksum mismatch";
		return WAL_REC_BAD;
	}
	rec->type = type;
	rec->plen = plen;
	rec->total = WAL_ALIGN(WAL_FRAME + (size_t)len);
	return WAL_REC_OK;
}

int wal_win_checksum_ok(struct wal_win *v, uint64_t off)
{
	if (v->size - off < WAL_FRAME)
		return 0;
	const uint8_t *p;
	int r = wal_win_get(v, off, WAL_FRAME, &p);
	if (r < 0)
		return r;
	uint32_t len = keel_le32(p), want = keel_le32(p + 4), crc;
	if (len == 0 || len > v->size - off - WAL_FRAME)
		return 0;
	r = wal_win_crc(v, off + WAL_FRAME, len, &crc);
	if (r < 0)
		return r;
	return crc == want;
}

int wal_win_scan_tail(struct wal_win *v, uint64_t from, uint64_t *ret_valid, uint64_t *ret_nz_end)
{
	uint64_t nz = from;
	*ret_valid = 0;
	for (uint64_t o = from; o < v->size;) {
		size_t n = (size_t)KEEL_MIN((uint64_t)v->chunk, v->size - o);
		const uint8_t *p;
		int r = wal_win_get(v, o, n, &p);
		if (r < 0)
			return r;
		size_t i = 0;
		for (; i + 8 <= n; i += 8) {
			uint64_t word;
			memcpy(&word, p + i, 8);
			if (!word)
				continue;
			nz = o + i + 8;
			if (o + i < from + WAL_FRAME || keel_le32(p + i) == 0)
				continue;
			struct wal_srec rec;
			const char *why;
			r = wal_win_parse(v, o + i, &rec, &why);
			if (r < 0)
				return r;
			if (r == WAL_REC_OK) {
				*ret_valid = o + i;
				*ret_nz_end = v->size;
				return 0;
			}
			r = wal_win_get(v, o, n, &p); /* the parse may have moved the window */
			if (r < 0)
				return r;
		}
		for (; i < n; i++)
			if (p[i])
				nz = v->size; /* a partial word at the very end */
		o += n;
	}
	*ret_nz_end = KEEL_MIN(nz, v->size);
	return 0;
}
