/* msgq: a FIFO of whole WebSocket messages in one reusable buffer, with writable headroom before each. */
#ifndef CHATMON_MSGQ_H
#define CHATMON_MSGQ_H

#include <stddef.h>
#include <stdint.h>

/*
 * A message is built at the tail (msgq_append until msgq_commit, or
 * msgq_discard) while committed messages are consumed at the head. Every
 * message has `headroom` writable bytes in front of it (libwebsockets writes
 * its frame header there: LWS_PRE), so nothing is copied to send it. The one
 * buffer is reused, so a steady flow allocates nothing per message.
 *
 * Pointers returned by msgq_open and msgq_head are valid until the next
 * msgq_append on the same queue.
 */
struct msgq;
/*
 * Idle small buffers shared by many queues: a queue that empties gives its
 * buffer back, the next message of any queue takes one, so idle sessions
 * hold none and a steady flow allocates nothing. At most max are kept.
 * Single-threaded, like the queues. NULL on ENOMEM.
 */
struct msgq_pool;
struct msgq_pool *msgq_pool_new(size_t max);
void	msgq_pool_free(struct msgq_pool *);	/* after every queue made with it */
size_t	msgq_pool_count(const struct msgq_pool *);	/* buffers idle in it */

/* Caller owns; pool may be NULL (the queue keeps a small buffer when idle). NULL on ENOMEM. */
struct msgq *msgq_new(size_t headroom, struct msgq_pool *pool);
void	msgq_free(struct msgq *);

/* Appends to the open message, opening one when none is; -1 on ENOMEM. */
int	msgq_append(struct msgq *, const void *, size_t);
/* The open message so far (data may be NULL when len is 0). */
char	*msgq_open(struct msgq *, size_t *len);
int	msgq_has_open(const struct msgq *);
/* Closes the open message (an empty one too) and queues it with flags. */
void	msgq_commit(struct msgq *, unsigned flags);
void	msgq_discard(struct msgq *);
/* Drops every message, committed and open. */
void	msgq_clear(struct msgq *);

/*
 * The head message: data, total length, flags, and how many bytes of it
 * were already consumed. 0, or -1 when no committed message is queued.
 */
int	msgq_head(struct msgq *, char **data, size_t *len, unsigned *flags,
	    size_t *done);
/* Marks n more bytes of the head as sent; the head is popped when all are. */
void	msgq_consume(struct msgq *, size_t n);

/* Payload bytes queued, committed and open. */
size_t	msgq_bytes(const struct msgq *);
/* Payload bytes of the committed messages only (not the one still open). */
size_t	msgq_committed_bytes(const struct msgq *);
size_t	msgq_count(const struct msgq *);	/* committed messages */
/* Bytes of memory held (for the backpressure tests and metrics). */
size_t	msgq_capacity(const struct msgq *);

#endif
