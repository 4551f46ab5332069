/* history: each conversation's last chat turns, both sides, written to Redis for the dashboard's conversation view (issue 15's contract, section 2). */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
	int		 failing;	/* an error reply was logged: quiet until one works */
};

static void
history_on_state(void *arg, int up, int lost)
{
	struct history	*h = arg;

	(void)lost;
	if (up)
		log_info("history_on_state: redis %s connected: conversation "
		    "history is written", rconn_name(h->rc));
	else
		h->inflight = 0;	/* the callbacks of what was out came with NULL */
}

static void
history_on_exec(struct redisReply *reply, void *priv)
{
	struct history	*h = priv;

	if (h->inflight > 0)
		h->inflight--;
	if (reply != NULL && reply->type == REDIS_REPLY_ARRAY) {
		h->m->history_written++;
		h->failing = 0;
		return;
	}
	h->m->history_lost++;
	/* an error reply (EXECABORT, OOM, WRONGTYPE, NOPERM): once, not per turn */
	if (reply != NULL && !h->failing) {
		h->failing = 1;
		log_warnx("history_on_exec: redis %s refused a history write: %.*s",
		    rconn_name(h->rc), reply->type == REDIS_REPLY_ERROR ?
		    (int)reply->len : 7, reply->type == REDIS_REPLY_ERROR ?
		    reply->str : "no EXEC");
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

void
history_turn(struct history *h, const char *conv, size_t conv_len,
    const struct histfmt_turn *t)
{
	const char	*argv[4];
	size_t		 argvlen[4];

	if (h == NULL || h->turns == 0)
		return;
	if (!rconn_up(h->rc) || h->inflight >= HISTORY_INFLIGHT)
		goto lost;
	sbuf_reset(&h->item);
	sbuf_reset(&h->kbuf);
	if (histfmt_item(&h->item, t) == -1 ||
	    sbuf_append(&h->kbuf, h->key, h->keylen) == -1 ||
	    sbuf_append(&h->kbuf, conv, conv_len) == -1)
		goto lost;
	/*
	 * One MULTI: a reader never sees the list longer than history.turns
	 * or without its expiry, and the expiry moves with every turn, so a
	 * conversation's history outlives its last turn by history.ttl.
	 */
	argv[0] = "LPUSH";
	argv[1] = sbuf_str(&h->kbuf);
	argvlen[1] = h->kbuf.len;
	argv[2] = sbuf_str(&h->item);
	argvlen[2] = h->item.len;
	argvlen[0] = 5;
	if (rconn_command(h->rc, NULL, NULL, 0, "MULTI") == -1 ||
	    rconn_command_argv(h->rc, NULL, NULL, 0, 3, argv, argvlen) == -1)
		goto lost;
	argv[0] = "LTRIM";
	argvlen[0] = 5;
	argv[2] = "0";
	argvlen[2] = 1;
	argv[3] = h->stop;
	argvlen[3] = strlen(h->stop);
	if (rconn_command_argv(h->rc, NULL, NULL, 0, 4, argv, argvlen) == -1)
		goto lost;
	argv[0] = "PEXPIRE";
	argvlen[0] = 7;
	argv[2] = h->ttl;
	argvlen[2] = strlen(h->ttl);
	if (rconn_command_argv(h->rc, NULL, NULL, 0, 3, argv, argvlen) == -1 ||
	    rconn_command(h->rc, history_on_exec, h, 0, "EXEC") == -1)
		goto lost;	/* the connection was dropped: the MULTI went with it */
	h->inflight++;
	return;
lost:
	h->m->history_lost++;
}

void
history_free(struct history *h)
{
	if (h == NULL)
		return;
	rconn_free(h->rc);	/* the turns still out are counted lost by their callbacks */
	sbuf_free(&h->item);
	sbuf_free(&h->kbuf);
	free(h->key);
	free(h);
}
