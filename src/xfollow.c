/* xfollow: follows one Redis stream on an rconn for ever: XREAD BLOCK from an id, going on from the last entry read after a reconnect or a refused read. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <hiredis/hiredis.h>

#include "chatmon/log.h"
#include "chatmon/rconn.h"
#include "chatmon/xfollow.h"

/*
 * One reader for every follower of a stream (the dashboard's alerts and
 * audit, chatmond's notes, chatmon tail): one command out at a time, the
 * position kept here, so that what the connection loses is read again
 * from the last id after it comes back. XREAD BLOCK holds its connection:
 * an owner that also asks other things gives the follower an rconn of its
 * own, or its questions wait behind the block.
 */

#define XFOLLOW_BLOCK_MS	5000
#define XFOLLOW_PAGE		1000	/* entries per XREAD */
#define XFOLLOW_RETRY_MS	1000	/* after Redis refused a read */

struct xfollow {
	struct rconn		*rc;		/* borrowed */
	char			*key;
	xfollow_entry_cb	 entry;
	xfollow_done_cb		 done;
	xfollow_error_cb	 error;
	void			*arg;
	uint64_t		 block_ms;
	size_t			 page;
	int			 following;	/* xfollow_follow was called */
	int			 asking;	/* the last id is being asked (follow NULL) */
	int			 reading;	/* a command is out: one at a time */
	int			 failing;	/* a failure was logged: quiet until a read works */
	char			 last[XFOLLOW_ID_MAX];
	struct event		*ev_retry;
};

static void	xfollow_read(struct xfollow *);

static void
xfollow_on_retry(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	xfollow_read(arg);
}

struct xfollow *
xfollow_new(struct event_base *base, struct rconn *rc, const char *key,
    xfollow_entry_cb entry, xfollow_done_cb done, void *arg)
{
	struct xfollow	*s;

	if ((s = calloc(1, sizeof(*s))) == NULL)
		return NULL;
	s->rc = rc;
	s->entry = entry;
	s->done = done;
	s->arg = arg;
	s->block_ms = XFOLLOW_BLOCK_MS;
	s->page = XFOLLOW_PAGE;
	if ((s->key = strdup(key)) == NULL ||
	    (s->ev_retry = evtimer_new(base, xfollow_on_retry, s)) == NULL) {
		xfollow_free(s);
		return NULL;
	}
	return s;
}

void
xfollow_set_read(struct xfollow *s, uint64_t block_ms, size_t page)
{
	if (block_ms > 0)
		s->block_ms = block_ms;
	if (page > 0)
		s->page = page;
}

void
xfollow_set_error(struct xfollow *s, xfollow_error_cb error)
{
	s->error = error;
}

void
xfollow_free(struct xfollow *s)
{
	if (s == NULL)
		return;
	if (s->ev_retry != NULL)
		event_free(s->ev_retry);
	free(s->key);
	free(s);
}

const char *
xfollow_last(const struct xfollow *s)
{
	return s->last;
}

const char *
xfollow_key(const struct xfollow *s)
{
	return s->key;
}

/*
 * Redis refused a read (a key that is not a stream, say): the owner's
 * call, else try again later, logged once for a run of failures (a
 * misconfigured key must not fill the log once a second).
 */
static void
xfollow_later(struct xfollow *s, const redisReply *r)
{
	struct timeval	tv = { XFOLLOW_RETRY_MS / 1000,
	    XFOLLOW_RETRY_MS % 1000 * 1000 };

	if (s->error != NULL) {
		if (s->error(s->arg, r) == -1)
			return;
	} else if (!s->failing)
		log_warnx("xfollow_later: redis %s: cannot read %s: %s",
		    rconn_name(s->rc), s->key, r->type == REDIS_REPLY_ERROR ?
		    r->str : "an unexpected reply");
	s->failing = 1;
	evtimer_add(s->ev_retry, &tv);
}

/* Entries of one stream's reply, oldest first; 1 when there was one. */
static int
xfollow_entries(struct xfollow *s, const redisReply *list)
{
	const redisReply	*e;
	size_t			 i;
	int			 any = 0;

	for (i = 0; i < list->elements; i++) {
		e = list->element[i];
		if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 ||
		    e->element[0]->type != REDIS_REPLY_STRING ||
		    e->element[0]->len >= sizeof(s->last) ||
		    e->element[1]->type != REDIS_REPLY_ARRAY)
			continue;
		/* an entry the owner cannot use still moves the reading on */
		snprintf(s->last, sizeof(s->last), "%s", e->element[0]->str);
		s->entry(s->arg, e->element[0]->str, e->element[1]);
		any = 1;
	}
	return any;
}

static void
xfollow_on_xread(redisReply *r, void *priv)
{
	struct xfollow	*s = priv;
	size_t		 i;
	int		 any = 0;

	if (r == NULL)
		return;		/* the connection went: the owner resumes */
	s->reading = 0;
	if (r->type == REDIS_REPLY_ARRAY) {
		s->failing = 0;
		for (i = 0; i < r->elements; i++)
			if (r->element[i]->type == REDIS_REPLY_ARRAY &&
			    r->element[i]->elements == 2 &&
			    r->element[i]->element[1]->type == REDIS_REPLY_ARRAY)
				any |= xfollow_entries(s, r->element[i]->element[1]);
		if (any && s->done != NULL)
			s->done(s->arg);
	} else if (r->type == REDIS_REPLY_NIL)	/* BLOCK timed out */
		s->failing = 0;
	else {
		xfollow_later(s, r);
		return;
	}
	xfollow_read(s);
}

/* The last entry now (follow from "now"): nothing after it is missed. */
static void
xfollow_on_last(redisReply *r, void *priv)
{
	struct xfollow		*s = priv;
	const redisReply	*e;

	if (r == NULL)
		return;
	s->reading = 0;
	if (r->type != REDIS_REPLY_ARRAY) {
		xfollow_later(s, r);
		return;
	}
	s->asking = 0;
	s->failing = 0;
	snprintf(s->last, sizeof(s->last), "0-0");	/* no stream yet: all of it is news */
	if (r->elements > 0 && (e = r->element[0])->type == REDIS_REPLY_ARRAY &&
	    e->elements == 2 && e->element[0]->type == REDIS_REPLY_STRING &&
	    e->element[0]->len < sizeof(s->last))
		snprintf(s->last, sizeof(s->last), "%s", e->element[0]->str);
	xfollow_read(s);
}

static void
xfollow_read(struct xfollow *s)
{
	int	rc;

	if (!s->following || s->reading || !rconn_up(s->rc))
		return;
	if (s->asking)
		rc = rconn_command(s->rc, xfollow_on_last, s, 0,
		    "XREVRANGE %s + - COUNT 1", s->key);
	else
		rc = rconn_command(s->rc, xfollow_on_xread, s, s->block_ms,
		    "XREAD COUNT %lld BLOCK %lld STREAMS %s %s",
		    (long long)s->page, (long long)s->block_ms, s->key,
		    s->last[0] ? s->last : "0-0");
	s->reading = rc == 0;
}

void
xfollow_follow(struct xfollow *s, const char *after)
{
	s->following = 1;
	s->asking = after == NULL;
	snprintf(s->last, sizeof(s->last), "%s", after != NULL ? after : "");
	evtimer_del(s->ev_retry);
	xfollow_read(s);
}

void
xfollow_resume(struct xfollow *s)
{
	/* what was out went with the old connection */
	s->reading = 0;
	evtimer_del(s->ev_retry);
	xfollow_read(s);
}
