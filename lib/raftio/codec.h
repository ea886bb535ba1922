/* The wire form of consensus messages: a fixed little-endian layout, versioned, that peers
 * exchange inside transport frames. Decoding checks every length against the input, so a peer
 * (or an attacker on the network) cannot make us read outside what arrived. */
#pragma once

#include <stddef.h>

#include "base/buf.h"
#include "raft/raft.h"

#define KEEL_RAFT_CODEC_VERSION 1
/* A decoded message may not claim more entries than this (the sender's max_msg_bytes bounds
 * real ones far lower). */
#define KEEL_RAFT_CODEC_MAX_ENTRIES (1u << 20)

/* Append the encoding of m to out. 0 or -ENOMEM. */
int keel_raft_msg_encode(const struct keel_raft_msg *m, struct keel_buf *out);

/* Decode one message from exactly len bytes. Entry data points into `data` (no copy), so data
 * must outlive the message; the entries array is allocated: release it with
 * keel_raft_msg_decoded_free(). -EINVAL (malformed: the message names what), -ENOMEM. */
int keel_raft_msg_decode(const void *data, size_t len, struct keel_raft_msg *ret);
void keel_raft_msg_decoded_free(struct keel_raft_msg *m);
