/* The peer transport of the consensus engine: carries keel_raft_msg values and snapshot files
 * between nodes over TCP (optionally TLS), on a libuv loop. It delivers what arrives and reports
 * what could not be sent; it never retries a message (Raft does, driven by its own timers).
 *
 * Shape (the wire format is frame.h; the whole story is docs/raftio.md, "Transport"):
 *  - Every node dials every peer it knows (keel_transport_set_peer) and uses that outgoing
 *    connection only to SEND. Connections accepted from others are only READ from. So there is
 *    one connection per direction per pair and nothing to negotiate. The dialer opens with a
 *    HELLO (cluster id, its node id, protocol version); the acceptor closes the connection if the
 *    cluster id differs, the sender id is 0 or the version is unknown, and closes an older
 *    connection from the same sender when a new one says HELLO (the old one is a leftover).
 *  - Outgoing messages are encoded at once into a per-peer queue (max_queue_bytes, counting
 *    what is written but not yet acknowledged by the kernel) and written in batches, with at
 *    most ~1 MiB handed to the socket at a time. A snapshot streams behind them from its file,
 *    64 KiB at a time, and only while no message is waiting, so heartbeats keep flowing during a
 *    long transfer.
 *  - When an outgoing connection fails or drops, its queue is dropped (a half-written stream
 *    cannot be resumed) and on_unreachable reports it if anything was queued or in flight; every
 *    snapshot transfer to that peer fails (on_snapshot_sent(false)). The transport reconnects by
 *    itself with exponential backoff and jitter, forever, as long as the peer is known; while it
 *    is not connected, messages still queue (up to max_queue_bytes) and go out once it is, or are
 *    dropped and reported if the attempt fails. A connection attempt (TCP + TLS) that takes
 *    longer than connect_timeout_ms counts as failed.
 *  - Addresses are numeric IPv4 or IPv6 addresses: the transport never resolves names (that
 *    would block, or need libuv's thread pool). Resolve them when reading configuration.
 *
 * TLS (cert_file and key_file set): both directions are TLS (1.2 or later) through OpenSSL with
 * memory BIOs driven by the loop. The acceptor presents its certificate; with verify_peer it
 * requires a client certificate that verifies against ca_file (like etcd
 * --peer-client-cert-auth). The dialer presents its certificate and, when ca_file is set,
 * verifies the acceptor's against it. There is no host name or IP check, and no mapping of a
 * certificate to a node id: any certificate the cluster CA signed is a member, as with etcd
 * peers without --peer-cert-allowed-cn. Without ca_file the dialer encrypts but does not
 * authenticate.
 *
 * Callbacks run on the loop, never from inside a keel_transport_* call, with one exception:
 * keel_transport_send() calls on_unreachable before it returns -ENOBUFS. Callbacks may call any
 * keel_transport_* function, keel_transport_close() included. After keel_transport_close() no
 * callback but the close callback runs. Peers removed with keel_transport_remove_peer() get no
 * more callbacks either.
 *
 * Blocking: nothing on the loop blocks except snapshot file I/O: the sender reads the file one
 * 64 KiB chunk at a time, the receiver writes chunks through keel_snap_writer and fsyncs once at
 * the end (keel_snap_writer_finish). Each is bounded and small next to a transfer's length; it
 * was judged better than handing file I/O to libuv's thread pool. No threads are started; every
 * descriptor is close-on-exec. Not thread-safe: one loop thread uses it. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "base/buf.h"
#include "base/errors.h"
#include "raft/raft.h"

#define KEEL_TRANSPORT_BACKOFF_MIN_MS 50
#define KEEL_TRANSPORT_BACKOFF_MAX_MS 2000
#define KEEL_TRANSPORT_CONNECT_TIMEOUT_MS 5000
#define KEEL_TRANSPORT_IO_TIMEOUT_MS 5000
#define KEEL_TRANSPORT_MAX_QUEUE_BYTES ((size_t)64 << 20)
/* Accepted connections beyond this many are closed at once (a node has a handful of peers;
 * more means something is wrong, and each may buffer up to a frame of 16 MiB). */
#define KEEL_TRANSPORT_MAX_INBOUND 256

/* One more address to listen on. */
struct keel_transport_listen {
	const char *host; /* numeric IPv4 or IPv6 address */
	uint16_t port;    /* 0: any free port */
};

struct keel_transport_config {
	keel_raft_id self;   /* nonzero */
	uint64_t cluster_id; /* peers with another one are refused */
	const char *listen_host; /* numeric IPv4 or IPv6 address to listen on ("0.0.0.0", "::") */
	uint16_t listen_port;    /* 0: any free port; keel_transport_port() tells which */
	/* More addresses to listen on, all alike (etcd's several --listen-peer-urls). */
	const struct keel_transport_listen *more_listen;
	size_t n_more_listen;
	/* Where incoming snapshots are written (keel_snap_writer_open creates it). NULL: incoming
	 * snapshots are refused (the connection carrying one is closed). */
	const char *snap_dir;

	/* TLS: all NULL for plain TCP. cert_file (PEM, may hold the chain) and key_file go
	 * together; verify_peer requires ca_file. See the top of this file for what is checked. */
	const char *cert_file, *key_file, *ca_file;
	bool verify_peer;

	unsigned backoff_min_ms, backoff_max_ms; /* reconnect backoff; 0: 50 / 2000 */
	unsigned connect_timeout_ms;             /* 0: 5000 */
	/* A connection whose written data stays unacknowledged this long is closed (and
	 * redialled): TCP_USER_TIMEOUT, so a peer behind a partition is given up in seconds rather
	 * than after TCP's retransmission backoff, which after 15 s lost waits ~10 s more before
	 * it tries again. 0: 5000 (etcd's peer read/write timeouts are 5 s). */
	unsigned io_timeout_ms;
	size_t max_queue_bytes; /* per peer; beyond it messages are dropped; 0: 64 MiB */

	/* A message arrived from a peer (its `from` is the sender its connection said HELLO as,
	 * its `to` is self). Entry data points into the transport's buffer: valid only during
	 * the call; keel_raft_step() copies what it keeps. */
	void (*on_message)(void *ud, const struct keel_raft_msg *m);
	/* A complete snapshot was received, checked (CRC of the data) and stored in snap_dir
	 * (keel_snap_writer_finish); path names the file, m is the MSG_SNAPSHOT that came with it.
	 * Both are valid only during the call. */
	void (*on_snapshot)(void *ud, const struct keel_raft_msg *m, const char *path);
	/* Messages to peer were lost: a send failed, the queue was full, or the connection broke
	 * (or could not be made) with data queued or in flight. */
	void (*on_unreachable)(void *ud, keel_raft_id peer);
	/* The outcome of a keel_transport_send_snapshot(): ok once the last byte was handed to the
	 * kernel (the follower's answer confirms the install), false when the connection broke,
	 * the file could not be read, or the transport stopped the transfer. */
	void (*on_snapshot_sent)(void *ud, keel_raft_id peer, bool ok);
	/* Optional: whether a node was removed from the cluster for good. A connection whose
	 * sender is (on its HELLO, or on any later message) gets one REMOVED frame back and is
	 * closed; nothing it sent after that is delivered. (etcd's peers answer HTTP 410 Gone.) */
	bool (*is_removed)(void *ud, keel_raft_id id);
	/* Optional: a peer told us (REMOVED) that we were removed from the cluster. The outgoing
	 * connection to it is closed (and redialled as usual: each redial may tell us again). */
	void (*on_removed)(void *ud, keel_raft_id told_by);
	/* Optional: a connection opened with a QUERY (keel_transport_query: a member joining the
	 * cluster asks who is in it). Append the answer to out (0), or fail (negative: the
	 * connection is closed unanswered). The answer goes back in one ANSWER frame. */
	int (*on_query)(void *ud, struct keel_buf *out);
	void *ud;
};

/* Ask a node what its on_query answers, synchronously (for a program about to start, before it
 * runs its loop). Dials host:port (numeric), over TLS when cert_file and key_file are set
 * (verifying the acceptor against ca_file when set), sends a QUERY with cluster_id and waits
 * for the ANSWER; the whole exchange is bounded by timeout_ms. The answer (NUL-terminated,
 * keel_malloc'd) goes to *ret and its length to *ret_len. -ETIMEDOUT, -ECONNREFUSED and other
 * -errno, -EPROTO (the acceptor closed without answering, or sent something else), -ENOMEM. */
struct keel_transport_query_opts {
	const char *host;
	uint16_t port;
	uint64_t cluster_id;
	const char *cert_file, *key_file, *ca_file;
	unsigned timeout_ms;
};
int keel_transport_query(const struct keel_transport_query_opts *o, char **ret, size_t *ret_len,
			 struct keel_err *err);

struct keel_transport;

/* Listen and get ready; cfg is copied (its strings too). The certificate files are loaded here,
 * so a bad one is reported now. The process must ignore SIGPIPE (libuv writes with write(2), and
 * a peer's reset would otherwise kill it): start checks. -EINVAL (bad configuration: the message
 * says which field; SIGPIPE not ignored),
 * -EADDRINUSE and other -errno from socket/bind/listen, -KEEL_EBAD_VALUE (a TLS file OpenSSL
 * refused), -ENOMEM. On failure nothing is left behind and *ret is not touched. */
int keel_transport_start(uv_loop_t *loop, const struct keel_transport_config *cfg,
			 struct keel_transport **ret, struct keel_err *err);

/* The port the transport listens on (the chosen one when listen_port was 0): the first
 * address's. */
uint16_t keel_transport_port(const struct keel_transport *t);

/* Add a peer, or change its address, and start connecting to it. Setting the address it already
 * has does nothing; a new address closes the current connection and dials the new one at once:
 * what was in flight on the old one is lost (reported through on_unreachable and
 * on_snapshot_sent(false)), what was still queued, transfers not yet begun included, goes to the
 * new address. -EINVAL (id 0 or self, host not a numeric address), -KEEL_ESTOPPED after close,
 * -ENOMEM. */
int keel_transport_set_peer(struct keel_transport *t, keel_raft_id id, const char *host,
			    uint16_t port);

/* Since when (loop time, uv_now) both directions with peer id are up: our connection to it
 * is established and it has said HELLO on one to us. 0 when either is missing (etcd's
 * ActiveSince, which --strict-reconfig-check consults). */
uint64_t keel_transport_active_since(const struct keel_transport *t, keel_raft_id id);

/* Forget a peer: its connection is closed and what was queued for it is dropped without any
 * callback. Unknown ids are ignored. */
void keel_transport_remove_peer(struct keel_transport *t, keel_raft_id id);

/* Queue m for m->to. It is encoded now: entries are copied, m may be freed on return.
 * -ENOENT (unknown peer), -EINVAL (m->from is not self, or a MSG_SNAPSHOT: those go through
 * keel_transport_send_snapshot), -EMSGSIZE (encodes to more than KEEL_FRAME_MAX_PAYLOAD),
 * -ENOBUFS (the peer's queue is full: the message is dropped and on_unreachable called before
 * this returns), -KEEL_ESTOPPED after close, -ENOMEM. 0 means queued, not delivered. */
int keel_transport_send(struct keel_transport *t, const struct keel_raft_msg *m);

/* Send the MSG_SNAPSHOT m with the data of the snapshot file snap_path (written by
 * keel_snap_writer), streamed in chunks behind a SNAP_BEGIN without ever holding it in memory.
 * The file is opened and its header checked now; it must describe the snapshot m names
 * (m->snapshot.index and .term), and stay in place until the outcome is reported through
 * on_snapshot_sent. Transfers to one peer run one after the other. Errors (no callback then):
 * -ENOENT (unknown peer), -EINVAL (m is not a MSG_SNAPSHOT from self, or names another snapshot
 * than the file holds), what keel_snap_reader_open() returns, -KEEL_ESTOPPED, -ENOMEM. */
int keel_transport_send_snapshot(struct keel_transport *t, const struct keel_raft_msg *m,
				 const char *snap_path);

/* Stop: close the listener, every connection and timer, abort snapshots being received (their
 * temp files are removed) and drop everything queued, without callbacks. cb (may be NULL) runs
 * from the loop once every handle is closed and the transport freed; t must not be used after
 * this call. A second call is ignored. */
void keel_transport_close(struct keel_transport *t, void (*cb)(void *ud), void *ud);
