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

struct msgq *msgq_new(size_t headroom);		/* caller owns; NULL on ENOMEM */
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
size_t	msgq_count(const struct msgq *);	/* committed messages */
/* Bytes of memory held (for the backpressure tests and metrics). */
size_t	msgq_capacity(const struct msgq *);

#endif
