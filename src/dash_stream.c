/* dash_stream: follows one Redis stream on an rconn for ever: XREAD BLOCK from an id, going on from the last entry read after a reconnect or a refused read. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <hiredis/hiredis.h>

#include "chatmon/dash_stream.h"
#include "chatmon/log.h"
#include "chatmon/rconn.h"

#define DASH_STREAM_BLOCK_MS	5000
#define DASH_STREAM_PAGE	1000	/* entries per XREAD */
#define DASH_STREAM_RETRY_MS	1000	/* after Redis refused a read */

struct dash_stream {
	struct rconn		*rc;		/* borrowed */
	char			*key;
	dash_stream_entry_cb	 entry;
	dash_stream_done_cb	 done;
	void			*arg;
	int			 following;	/* dash_stream_follow was called */
	int			 asking;	/* the last id is being asked (follow NULL) */
	int			 reading;	/* a command is out: one at a time */
	char			 last[DASH_STREAM_ID_MAX];
	struct event		*ev_retry;
};

static void	dash_stream_read(struct dash_stream *);

static void
dash_stream_on_retry(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	dash_stream_read(arg);
}

struct dash_stream *
dash_stream_new(struct event_base *base, struct rconn *rc, const char *key,
    dash_stream_entry_cb entry, dash_stream_done_cb done, void *arg)
{
	struct dash_stream	*s;

	if ((s = calloc(1, sizeof(*s))) == NULL)
		return NULL;
	s->rc = rc;
	s->entry = entry;
	s->done = done;
	s->arg = arg;
	if ((s->key = strdup(key)) == NULL ||
	    (s->ev_retry = evtimer_new(base, dash_stream_on_retry, s)) == NULL) {
		dash_stream_free(s);
		return NULL;
	}
	return s;
}

void
dash_stream_free(struct dash_stream *s)
{
	if (s == NULL)
		return;
	if (s->ev_retry != NULL)
		event_free(s->ev_retry);
	free(s->key);
	free(s);
}

const char *
dash_stream_last(const struct dash_stream *s)
{
	return s->last;
}

const char *
dash_stream_key(const struct dash_stream *s)
{
	return s->key;
}

/* Redis refused a read (a key that is not a stream, say): try again later. */
static void
dash_stream_later(struct dash_stream *s, const redisReply *r)
{
	struct timeval	tv = { DASH_STREAM_RETRY_MS / 1000,
	    DASH_STREAM_RETRY_MS % 1000 * 1000 };

	log_warnx("dash_stream_later: redis %s: %s", s->key,
	    r->type == REDIS_REPLY_ERROR ? r->str : "an unexpected reply");
	evtimer_add(s->ev_retry, &tv);
}

/* Entries of one stream's reply, oldest first; 1 when there was one. */
static int
dash_stream_entries(struct dash_stream *s, const redisReply *list)
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
dash_stream_on_xread(redisReply *r, void *priv)
{
	struct dash_stream	*s = priv;
	size_t			 i;
	int			 any = 0;

	if (r == NULL)
		return;		/* the connection went: the owner resumes */
	s->reading = 0;
	if (r->type == REDIS_REPLY_ARRAY) {
		for (i = 0; i < r->elements; i++)
			if (r->element[i]->type == REDIS_REPLY_ARRAY &&
			    r->element[i]->elements == 2 &&
			    r->element[i]->element[1]->type == REDIS_REPLY_ARRAY)
				any |= dash_stream_entries(s, r->element[i]->element[1]);
		if (any && s->done != NULL)
			s->done(s->arg);
	} else if (r->type != REDIS_REPLY_NIL) {	/* NIL: BLOCK timed out */
		dash_stream_later(s, r);
		return;
	}
	dash_stream_read(s);
}

/* The last entry now (follow from "now"): nothing after it is missed. */
static void
dash_stream_on_last(redisReply *r, void *priv)
{
	struct dash_stream	*s = priv;
	const redisReply	*e;

	if (r == NULL)
		return;
	s->reading = 0;
	if (r->type != REDIS_REPLY_ARRAY) {
		dash_stream_later(s, r);
		return;
	}
	s->asking = 0;
	snprintf(s->last, sizeof(s->last), "0-0");	/* no stream yet: all of it is news */
	if (r->elements > 0 && (e = r->element[0])->type == REDIS_REPLY_ARRAY &&
	    e->elements == 2 && e->element[0]->type == REDIS_REPLY_STRING &&
	    e->element[0]->len < sizeof(s->last))
		snprintf(s->last, sizeof(s->last), "%s", e->element[0]->str);
	dash_stream_read(s);
}

static void
dash_stream_read(struct dash_stream *s)
{
	int	rc;

	if (!s->following || s->reading || !rconn_up(s->rc))
		return;
	if (s->asking)
		rc = rconn_command(s->rc, dash_stream_on_last, s, 0,
		    "XREVRANGE %s + - COUNT 1", s->key);
	else
		rc = rconn_command(s->rc, dash_stream_on_xread, s,
		    DASH_STREAM_BLOCK_MS, "XREAD COUNT %d BLOCK %d STREAMS %s %s",
		    DASH_STREAM_PAGE, DASH_STREAM_BLOCK_MS, s->key,
		    s->last[0] ? s->last : "0-0");
	s->reading = rc == 0;
}

void
dash_stream_follow(struct dash_stream *s, const char *after)
{
	s->following = 1;
	s->asking = after == NULL;
	snprintf(s->last, sizeof(s->last), "%s", after != NULL ? after : "");
	evtimer_del(s->ev_retry);
	dash_stream_read(s);
}

void
dash_stream_resume(struct dash_stream *s)
{
	/* what was out went with the old connection */
	s->reading = 0;
	evtimer_del(s->ev_retry);
	dash_stream_read(s);
}
