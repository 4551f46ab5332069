/* history: each conversation's last chat turns, both sides, written to Redis for the dashboard's conversation view (issue 15's contract, section 2). */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <hiredis/hiredis.h>

#include "chatmon/history.h"
#include "chatmon/log.h"
#include "chatmon/rconn.h"

/*
 * Turns sent and not answered yet, at most: past it Redis is slow or hung
 * (rconn drops a hung connection after redis.timeout), and what hiredis
 * would buffer meanwhile is chat text in this process's memory for nothing.
 */
#define HISTORY_INFLIGHT	4096
/*
 * And their bytes, at most: a turn's text may be up to limits.max_message,
 * so 4096 of them could be gigabytes waiting on a slow Redis.
 */
#define HISTORY_INFLIGHT_BYTES	((size_t)64 << 20)

/*
 * Turns are gathered this long and go to Redis together, in one write and
 * one read: one at a time, each cost a write, a read and the epoll_ctl
 * around them, as much CPU as everything else chatmond does for a turn
 * (docs/benchmarks.md, 2026-12-05). The conversation view can wait 5 ms.
 */
#define HISTORY_GATHER_MS	5

/*
 * A refused write is logged at most this often: one bad key among many
 * good ones would otherwise log for each of its turns, between successes.
 */
#define HISTORY_WARN_NS		(60ULL * 1000000000)

struct history {
	struct rconn	*rc;
	struct metrics	*m;
	char		*key;		/* redis.prefix + "chatmon:hist:", the conversation after it */
	size_t		 keylen;
	uint64_t	 turns;		/* 0: off */
	char		 stop[24];	/* LTRIM's last index: turns - 1 */
	char		 ttl[24];	/* PEXPIRE's milliseconds */
	struct sbuf	 item;		/* reused: one turn's JSON */
	struct sbuf	 kbuf;		/* reused: the list's key */
	size_t		 inflight;
	size_t		 inflight_bytes;	/* their items' and keys' */
	size_t		 sizes[HISTORY_INFLIGHT];	/* ring: each one's, in order */
	size_t		 size_head;
	int		 failing;	/* an error reply was logged: quiet until one works */
	uint64_t	 warned_ns;	/* when (monotonic); 0: never */
	struct event	*gather;	/* sends what pend holds */
	struct sbuf	 pend;		/* turns gathered: key length, key, item length, item */
	size_t		 npend;
};

static void	history_on_gather(evutil_socket_t, short, void *);

static void
history_on_state(void *arg, int up, int lost)
{
	struct history	*h = arg;

	(void)lost;
	if (up)
		log_info("history_on_state: redis %s connected: conversation "
		    "history is written", rconn_name(h->rc));
	else	/* the callbacks of what was out came with NULL */
		h->inflight = h->inflight_bytes = h->size_head = 0;
}

/*
 * EXEC answers an array even when a command in it failed: LPUSH on a key
 * that is not a list answers WRONGTYPE in its place and nothing is
 * written. The error, the reply's own or its commands' first; NULL when
 * the turn was written.
 */
static const struct redisReply *
history_refused(const struct redisReply *reply)
{
	size_t	i;

	if (reply->type != REDIS_REPLY_ARRAY)
		return reply;
	for (i = 0; i < reply->elements; i++)
		if (reply->element[i]->type == REDIS_REPLY_ERROR)
			return reply->element[i];
	return NULL;
}

static void
history_on_exec(struct redisReply *reply, void *priv)
{
	struct history			*h = priv;
	const struct redisReply		*err = NULL;
	uint64_t			 now;

	if (h->inflight > 0) {
		h->inflight--;
		h->inflight_bytes -= h->sizes[h->size_head];
		h->size_head = (h->size_head + 1) % HISTORY_INFLIGHT;
	}
	if (reply != NULL && (err = history_refused(reply)) == NULL) {
		h->m->history_written++;
		h->failing = 0;
		return;
	}
	h->m->history_lost++;
	/*
	 * An error reply (EXECABORT, OOM, NOPERM) or a command's (WRONGTYPE):
	 * once, not per turn, and not more than once a minute. Redis's error
	 * names no value: no chat text.
	 */
	now = util_mono_ns();
	if (err != NULL && !h->failing &&
	    (h->warned_ns == 0 || now - h->warned_ns >= HISTORY_WARN_NS)) {
		h->failing = 1;
		h->warned_ns = now;
		log_warnx("history_on_exec: redis %s refused a history write: %.*s",
		    rconn_name(h->rc), err->type == REDIS_REPLY_ERROR ?
		    (int)err->len : 7, err->type == REDIS_REPLY_ERROR ?
		    err->str : "no EXEC");
	}
}

static int
history_settings(struct history *h, const struct config *cfg)
{
	char	*k;

	if (asprintf(&k, "%schatmon:hist:", cfg->redis.prefix != NULL ?
	    cfg->redis.prefix : "") == -1)
		return -1;
	free(h->key);
	h->key = k;
	h->keylen = strlen(k);
	h->turns = cfg->history.turns;
	snprintf(h->stop, sizeof(h->stop), "%" PRIu64,
	    h->turns > 0 ? h->turns - 1 : 0);
	snprintf(h->ttl, sizeof(h->ttl), "%" PRIu64, cfg->history.ttl_ms);
	return 0;
}

struct history *
history_new(struct event_base *base, const struct config *cfg,
    struct metrics *m, struct sbuf *errs)
{
	struct history	*h;

	if ((h = calloc(1, sizeof(*h))) == NULL)
		goto oom;
	h->m = m;
	if (history_settings(h, cfg) == -1 ||
	    (h->gather = evtimer_new(base, history_on_gather, h)) == NULL ||
	    (h->rc = rconn_new(base, "history", history_on_state, h)) == NULL)
		goto oom;
	if (h->turns > 0 && rconn_set_target(h->rc, &cfg->redis, 0) == -1)
		goto oom;
	return h;
oom:
	sbuf_line(errs, "history_new: out of memory");
	history_free(h);
	return NULL;
}

void
history_set_config(struct history *h, const struct config *cfg)
{
	if (history_settings(h, cfg) == -1 ||
	    (h->turns > 0 && rconn_set_target(h->rc, &cfg->redis, 0) == -1))
		log_warnx("history_set_config: out of memory, settings kept");
}

/* Sends one gathered turn; 0, or -1 when the connection was dropped. */
static int
history_send(struct history *h, const char *key, size_t keylen,
    const char *item, size_t itemlen)
{
	const char	*argv[4];
	size_t		 argvlen[4];

	/*
	 * One MULTI: a reader never sees the list longer than history.turns
	 * or without its expiry, and the expiry moves with every turn, so a
	 * conversation's history outlives its last turn by history.ttl.
	 */
	argv[0] = "LPUSH";
	argvlen[0] = 5;
	argv[1] = key;
	argvlen[1] = keylen;
	argv[2] = item;
	argvlen[2] = itemlen;
	if (rconn_command(h->rc, NULL, NULL, 0, "MULTI") == -1 ||
	    rconn_command_argv(h->rc, NULL, NULL, 0, 3, argv, argvlen) == -1)
		return -1;
	argv[0] = "LTRIM";
	argvlen[0] = 5;
	argv[2] = "0";
	argvlen[2] = 1;
	argv[3] = h->stop;
	argvlen[3] = strlen(h->stop);
	if (rconn_command_argv(h->rc, NULL, NULL, 0, 4, argv, argvlen) == -1)
		return -1;
	argv[0] = "PEXPIRE";
	argvlen[0] = 7;
	argv[2] = h->ttl;
	argvlen[2] = strlen(h->ttl);
	if (rconn_command_argv(h->rc, NULL, NULL, 0, 3, argv, argvlen) == -1 ||
	    rconn_command(h->rc, history_on_exec, h, 0, "EXEC") == -1)
		return -1;	/* the connection was dropped: the MULTI went with it */
	h->sizes[(h->size_head + h->inflight) % HISTORY_INFLIGHT] = keylen + itemlen;
	h->inflight++;
	h->inflight_bytes += keylen + itemlen;
	return 0;
}

/* A field of pend: its length, then its bytes. */
static int
history_pend_field(struct sbuf *pend, const char *s, size_t len)
{
	return sbuf_append(pend, (const char *)&len, sizeof(len)) == -1 ||
	    sbuf_append(pend, s, len) == -1 ? -1 : 0;
}

static const char *
history_pend_next(const char **p, size_t *len)
{
	const char	*s;

	memcpy(len, *p, sizeof(*len));
	s = *p + sizeof(*len);
	*p = s + *len;
	return s;
}

/* The gathering time is over: every turn gathered goes out, in order. */
static void
history_on_gather(evutil_socket_t fd, short what, void *arg)
{
	struct history	*h = arg;
	const char	*p, *key, *item;
	size_t		 keylen, itemlen, k;

	(void)fd;
	(void)what;
	p = h->pend.s;
	for (k = 0; k < h->npend; k++) {
		key = history_pend_next(&p, &keylen);
		item = history_pend_next(&p, &itemlen);
		if (history_send(h, key, keylen, item, itemlen) == -1) {
			h->m->history_lost += h->npend - k;
			break;
		}
	}
	sbuf_reset(&h->pend);
	h->npend = 0;
}

void
history_turn(struct history *h, const char *conv, size_t conv_len,
    const struct histfmt_turn *t)
{
	struct timeval	 tv = { 0, HISTORY_GATHER_MS * 1000 };
	size_t		 mark;

	if (h == NULL || h->turns == 0)
		return;
	if (!rconn_up(h->rc) || h->inflight + h->npend >= HISTORY_INFLIGHT ||
	    h->inflight_bytes + h->pend.len > HISTORY_INFLIGHT_BYTES)
		goto lost;
	sbuf_reset(&h->item);
	sbuf_reset(&h->kbuf);
	if (histfmt_item(&h->item, t) == -1 ||
	    sbuf_append(&h->kbuf, h->key, h->keylen) == -1 ||
	    sbuf_append(&h->kbuf, conv, conv_len) == -1)
		goto lost;
	mark = h->pend.len;
	if (history_pend_field(&h->pend, sbuf_str(&h->kbuf), h->kbuf.len) == -1 ||
	    history_pend_field(&h->pend, sbuf_str(&h->item), h->item.len) == -1) {
		h->pend.len = mark;
		goto lost;
	}
	if (h->npend++ == 0 && evtimer_add(h->gather, &tv) == -1)
		history_on_gather(-1, 0, h);	/* cannot wait: send it now */
	return;
lost:
	h->m->history_lost++;
}

void
history_free(struct history *h)
{
	if (h == NULL)
		return;
	h->m->history_lost += h->npend;	/* gathered, never sent */
	if (h->gather != NULL)
		event_free(h->gather);
	rconn_free(h->rc);	/* the turns still out are counted lost by their callbacks */
	sbuf_free(&h->pend);
	sbuf_free(&h->item);
	sbuf_free(&h->kbuf);
	free(h->key);
	free(h);
}
