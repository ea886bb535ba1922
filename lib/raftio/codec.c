#include "raftio/codec.h"

#include <errno.h>
#include <string.h>

#include "base/mem.h"

enum {
	FLAG_REJECT = 1 << 0,
	FLAG_TRANSFER = 1 << 1,
};

#define HEADER_LEN (4 + 8 * 8 + 4) /* version/type/flags/pad, 8 u64 fields, entry count */
#define ENTRY_HEADER_LEN (8 + 8 + 1 + 4)

static int put_conf(struct keel_buf *b, const struct keel_raft_conf *c)
{
	int r = keel_buf_put_le32(b, c->n_voters);
	r = r ? r : keel_buf_put_le32(b, c->n_learners);
	for (uint32_t i = 0; !r && i < c->n_voters; i++)
		r = keel_buf_put_le64(b, c->voters[i]);
	for (uint32_t i = 0; !r && i < c->n_learners; i++)
		r = keel_buf_put_le64(b, c->learners[i]);
	return r;
}

int keel_raft_msg_encode(const struct keel_raft_msg *m, struct keel_buf *out)
{
	size_t start = out->len;
	uint8_t head[4] = {KEEL_RAFT_CODEC_VERSION, (uint8_t)m->type,
			   (uint8_t)((m->reject ? FLAG_REJECT : 0) | (m->transfer ? FLAG_TRANSFER : 0)), 0};
	int r = keel_buf_append(out, head, sizeof(head));
	const uint64_t fields[8] = {m->from, m->to, m->term, m->log_term, m->index, m->commit,
				    m->reject_hint, m->context};
	for (int i = 0; !r && i < 8; i++)
		r = keel_buf_put_le64(out, fields[i]);
	r = r ? r : keel_buf_put_le32(out, m->n_entries);
	for (uint32_t i = 0; !r && i < m->n_entries; i++) {
		const struct keel_raft_entry *e = &m->entries[i];
		r = keel_buf_put_le64(out, e->term);
		r = r ? r : keel_buf_put_le64(out, e->index);
		r = r ? r : keel_buf_append(out, &e->type, 1);
		r = r ? r : keel_buf_put_le32(out, e->len);
		r = r ? r : keel_buf_append(out, e->data, e->len);
	}
	if (!r && m->type == KEEL_RAFT_MSG_SNAPSHOT) {
		r = keel_buf_put_le64(out, m->snapshot.index);
		r = r ? r : keel_buf_put_le64(out, m->snapshot.term);
		r = r ? r : put_conf(out, &m->snapshot.conf);
	}
	if (r)
		keel_buf_truncate(out, start);
	return r;
}

/* A cursor that refuses to read past the end. */
struct cur {
	const uint8_t *p;
	size_t left;
	bool bad;
};

static const uint8_t *take(struct cur *c, size_t n)
{
	if (c->bad || c->left < n) {
		c->bad = true;
		return NULL;
	}
	const uint8_t *p = c->p;
	c->p += n;
	c->left -= n;
	return p;
}

static uint64_t get64(struct cur *c)
{
	const uint8_t *p = take(c, 8);
	return p ? keel_le64(p) : 0;
}

static uint32_t get32(struct cur *c)
{
	const uint8_t *p = take(c, 4);
	return p ? keel_le32(p) : 0;
}

static int get_conf(struct cur *c, struct keel_raft_conf *conf)
{
	conf->n_voters = get32(c);
	conf->n_learners = get32(c);
	if (c->bad || conf->n_voters > KEEL_RAFT_MAX_NODES || conf->n_learners > KEEL_RAFT_MAX_NODES)
		return -EINVAL;
	for (uint32_t i = 0; i < conf->n_voters; i++)
		conf->voters[i] = get64(c);
	for (uint32_t i = 0; i < conf->n_learners; i++)
		conf->learners[i] = get64(c);
	return c->bad ? -EINVAL : 0;
}

int keel_raft_msg_decode(const void *data, size_t len, struct keel_raft_msg *ret)
{
	struct cur c = {data, len, false};
	const uint8_t *head = take(&c, 4);
	if (!head || head[0] != KEEL_RAFT_CODEC_VERSION || head[1] == 0 || head[1] >= KEEL_RAFT_MSG__MAX ||
	    (head[2] & ~(FLAG_REJECT | FLAG_TRANSFER)) || head[3] != 0)
		return -EINVAL;
	struct keel_raft_msg m = {
		.type = head[1],
		.reject = head[2] & FLAG_REJECT,
		.transfer = head[2] & FLAG_TRANSFER,
	};
	m.from = get64(&c);
	m.to = get64(&c);
	m.term = get64(&c);
	m.log_term = get64(&c);
	m.index = get64(&c);
	m.commit = get64(&c);
	m.reject_hint = get64(&c);
	m.context = get64(&c);
	m.n_entries = get32(&c);
	if (c.bad || m.n_entries > KEEL_RAFT_CODEC_MAX_ENTRIES ||
	    (size_t)m.n_entries * ENTRY_HEADER_LEN > c.left)
		return -EINVAL;
	if (m.n_entries) {
		m.entries = keel_calloc(m.n_entries, sizeof(*m.entries));
		if (!m.entries)
			return -ENOMEM;
	}
	for (uint32_t i = 0; i < m.n_entries; i++) {
		struct keel_raft_entry *e = &m.entries[i];
		e->term = get64(&c);
		e->index = get64(&c);
		const uint8_t *t = take(&c, 1);
		e->type = t ? *t : 0;
		e->len = get32(&c);
		e->data = e->len ? (void *)take(&c, e->len) : NULL;
		if (c.bad)
			break;
	}
	if (!c.bad && m.type == KEEL_RAFT_MSG_SNAPSHOT) {
		m.snapshot.index = get64(&c);
		m.snapshot.term = get64(&c);
		if (get_conf(&c, &m.snapshot.conf) < 0)
			c.bad = true;
	}
	if (c.bad || c.left != 0) {
		keel_free(m.entries);
		return -EINVAL;
	}
	*ret = m;
	return 0;
}

void keel_raft_msg_decoded_free(struct keel_raft_msg *m)
{
	keel_free(m->entries);
	m->entries = NULL;
	m->n_entries = 0;
}
