/* msgq: a FIFO of whole WebSocket messages in one reusable buffer, with writable headroom before each. */
#include <stdlib.h>
#include <string.h>

#include "chatmon/msgq.h"

/*
 * Layout: records packed from `head` to `tail`, each
 *	[struct msgq_rec][headroom][payload][pad to 8]
 * The open (uncommitted) message is the last record when `open` is set.
 * When the queue empties, head and tail go back to 0; when the tail would
 * pass the end, live records are moved to the front before growing, so the
 * buffer only grows to the peak backlog. When the queue empties its buffer
 * goes: a small one back to the pool the queue was made with (the next
 * message of any queue takes it, so a steady flow allocates nothing), a
 * large one to free(); an idle session holds no buffer.
 */
struct msgq_rec {
	size_t		len;
	size_t		done;	/* bytes consumed (head only) */
	unsigned	flags;
};

struct msgq {
	struct msgq_pool *pool;		/* NULL: the queue keeps a small buffer */
	char	*buf;
	size_t	 cap;
	size_t	 head;		/* offset of the first record */
	size_t	 tail;		/* offset past the last record */
	size_t	 open_off;	/* offset of the open record, if open */
	int	 open;
	size_t	 headroom;
	size_t	 bytes;		/* payload bytes, committed and open */
	size_t	 count;		/* committed records */
};

#define MSGQ_ALIGN		8
#define MSGQ_KEEP		(64 * 1024)	/* capacity kept when idle, without a pool */
#define MSGQ_SMALL		4096		/* a buffer's first size; what a pool holds */

/* Idle small buffers, shared by the queues made with the pool. */
struct msgq_pool {
	char	**buf;
	size_t	  n, max;
};

struct msgq_pool *
msgq_pool_new(size_t max)
{
	struct msgq_pool	*p;

	if ((p = calloc(1, sizeof(*p))) == NULL ||
	    (p->buf = calloc(max > 0 ? max : 1, sizeof(*p->buf))) == NULL) {
		free(p);
		return NULL;
	}
	p->max = max;
	return p;
}

void
msgq_pool_free(struct msgq_pool *p)
{
	if (p == NULL)
		return;
	while (p->n > 0)
		free(p->buf[--p->n]);
	free(p->buf);
	free(p);
}

size_t
msgq_pool_count(const struct msgq_pool *p)
{
	return p->n;
}

static size_t
msgq_round(size_t n)
{
	return (n + MSGQ_ALIGN - 1) & ~(size_t)(MSGQ_ALIGN - 1);
}

static size_t
msgq_hdr(const struct msgq *q)
{
	return msgq_round(sizeof(struct msgq_rec) + q->headroom);
}

static struct msgq_rec *
msgq_rec(const struct msgq *q, size_t off)
{
	return (struct msgq_rec *)(void *)(q->buf + off);
}

struct msgq *
msgq_new(size_t headroom, struct msgq_pool *pool)
{
	struct msgq	*q;

	if ((q = calloc(1, sizeof(*q))) == NULL)
		return NULL;
	q->headroom = headroom;
	q->pool = pool;
	return q;
}

/* Drops q's buffer: a small one to the pool while it has room. */
static void
msgq_release(struct msgq *q)
{
	if (q->pool != NULL && q->cap == MSGQ_SMALL && q->pool->n < q->pool->max)
		q->pool->buf[q->pool->n++] = q->buf;
	else
		free(q->buf);
	q->buf = NULL;
	q->cap = 0;
}

void
msgq_free(struct msgq *q)
{
	if (q == NULL)
		return;
	msgq_release(q);
	free(q);
}

/* Makes room for `more` bytes past the tail, moving or growing the buffer. */
static int
msgq_reserve(struct msgq *q, size_t more)
{
	size_t	 live, need, cap;
	char	*nb;

	if (q->tail + more <= q->cap)
		return 0;
	live = q->tail - q->head;
	if (more > SIZE_MAX / 4 - live)
		return -1;
	need = live + more;
	if (need <= q->cap && q->head >= q->cap / 2) {
		/* enough room once the consumed front is reclaimed */
		memmove(q->buf, q->buf + q->head, live);
	} else if (q->cap == 0 && need <= MSGQ_SMALL && q->pool != NULL &&
	    q->pool->n > 0) {
		q->buf = q->pool->buf[--q->pool->n];
		q->cap = MSGQ_SMALL;
	} else {
		cap = q->cap ? q->cap : MSGQ_SMALL;
		while (cap < need)
			cap *= 2;
		if ((nb = malloc(cap)) == NULL)
			return -1;
		if (live)
			memcpy(nb, q->buf + q->head, live);
		msgq_release(q);
		q->buf = nb;
		q->cap = cap;
	}
	if (q->open)
		q->open_off -= q->head;
	q->tail = live;
	q->head = 0;
	return 0;
}

int
msgq_append(struct msgq *q, const void *p, size_t n)
{
	struct msgq_rec	*r;
	size_t		 hdr = msgq_hdr(q), len = 0;

	if (q->open)
		len = msgq_rec(q, q->open_off)->len;
	if (msgq_reserve(q, (q->open ? 0 : hdr) + msgq_round(len + n) -
	    msgq_round(len)) == -1)
		return -1;
	if (!q->open) {
		q->open_off = q->tail;
		r = msgq_rec(q, q->open_off);
		r->len = 0;
		r->done = 0;
		r->flags = 0;
		q->tail += hdr;
		q->open = 1;
	}
	r = msgq_rec(q, q->open_off);
	if (n)
		memcpy(q->buf + q->open_off + hdr + r->len, p, n);
	r->len += n;
	q->tail = q->open_off + hdr + msgq_round(r->len);
	q->bytes += n;
	return 0;
}

char *
msgq_open(struct msgq *q, size_t *len)
{
	if (!q->open) {
		*len = 0;
		return NULL;
	}
	*len = msgq_rec(q, q->open_off)->len;
	return q->buf + q->open_off + msgq_hdr(q);
}

int
msgq_has_open(const struct msgq *q)
{
	return q->open;
}

void
msgq_commit(struct msgq *q, unsigned flags)
{
	if (!q->open && msgq_append(q, NULL, 0) == -1)
		return;	/* an empty record needs room only for its header */
	msgq_rec(q, q->open_off)->flags = flags;
	q->open = 0;
	q->count++;
}

static void
msgq_settle(struct msgq *q)
{
	if (q->head != q->tail)
		return;
	q->head = q->tail = 0;
	if (q->pool != NULL || q->cap > MSGQ_KEEP)
		msgq_release(q);
}

void
msgq_discard(struct msgq *q)
{
	if (!q->open)
		return;
	q->bytes -= msgq_rec(q, q->open_off)->len;
	q->tail = q->open_off;
	q->open = 0;
	msgq_settle(q);
}

void
msgq_clear(struct msgq *q)
{
	q->head = q->tail = 0;
	q->open = 0;
	q->bytes = 0;
	q->count = 0;
	msgq_settle(q);
}

int
msgq_head(struct msgq *q, char **data, size_t *len, unsigned *flags,
    size_t *done)
{
	struct msgq_rec	*r;

	if (q->count == 0)
		return -1;
	r = msgq_rec(q, q->head);
	*data = q->buf + q->head + msgq_hdr(q);
	*len = r->len;
	*flags = r->flags;
	*done = r->done;
	return 0;
}

void
msgq_consume(struct msgq *q, size_t n)
{
	struct msgq_rec	*r;

	if (q->count == 0)
		return;
	r = msgq_rec(q, q->head);
	if (n > r->len - r->done)
		n = r->len - r->done;
	r->done += n;
	q->bytes -= n;
	if (r->done < r->len)
		return;
	q->head += msgq_hdr(q) + msgq_round(r->len);
	q->count--;
	msgq_settle(q);
}

size_t
msgq_bytes(const struct msgq *q)
{
	return q->bytes;
}

size_t
msgq_committed_bytes(const struct msgq *q)
{
	return q->bytes - (q->open ? msgq_rec(q, q->open_off)->len : 0);
}

size_t
msgq_count(const struct msgq *q)
{
	return q->count;
}

size_t
msgq_capacity(const struct msgq *q)
{
	return q->cap;
}
