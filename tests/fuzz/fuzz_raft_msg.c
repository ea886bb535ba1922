/* Fuzz the peer wire format and the core behind it: any bytes either fail to decode, or decode
 * to a message that re-encodes to the same bytes and that a live node may be stepped with
 * without crashing (what a peer sends can never bring a node down). */
#include <stdlib.h>
#include <string.h>

#include "raft/raft.h"
#include "raftio/codec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct keel_raft *node(void)
{
	struct keel_raft *r;
	struct keel_raft_config cfg;
	keel_raft_config_default(&cfg, 2);
	struct keel_raft_conf conf = {.n_voters = 3, .voters = {1, 2, 3}};
	struct keel_err err;
	if (keel_raft_new(&cfg, &conf, &r, &err) < 0)
		abort();
	return r;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct keel_raft_msg m;
	if (keel_raft_msg_decode(data, size, &m) < 0)
		return 0;
	struct keel_buf b = KEEL_BUF_INIT;
	if (keel_raft_msg_encode(&m, &b) < 0 || b.len != size || memcmp(b.data, data, size) != 0)
		abort();
	keel_buf_free(&b);

	struct keel_raft *r = node();
	m.to = 2; /* aim it at the node, so it gets past the addressing check */
	keel_raft_step(r, &m);
	keel_raft_tick(r);
	struct keel_raft_ready rd;
	if (keel_raft_ready(r, &rd)) {
		if (rd.hard_state.commit > keel_raft_last_index(r))
			abort();
		keel_raft_advance(r, &rd);
	}
	keel_raft_free(r);
	keel_raft_msg_decoded_free(&m);
	return 0;
}
