/* dash_alerts: the alert stream into the dashboard's feed: the history first, then the stream followed (xfollow). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <hiredis/hiredis.h>

#include "chatmon/xfollow.h"
#include "chatmon/feed.h"
#include "chatmon/log.h"
#include "chatmon/rconn.h"
#include "dash_int.h"

static void	dash_alerts_read(struct dash *);

/* One stream entry into the feed; 1 when it was a new alert. */
static int
dash_alerts_add(struct dash *d, const char *sid, const redisReply *f)
{
	const char	*json = "";
	size_t		 k, len = 0;
	int		 rc;

	for (k = 0; k + 1 < f->elements; k += 2)
		if (f->element[k]->type == REDIS_REPLY_STRING &&
		    strcmp(f->element[k]->str, "alert") == 0 &&
		    f->element[k + 1]->type == REDIS_REPLY_STRING) {
			json = f->element[k + 1]->str;
			len = f->element[k + 1]->len;
		}
	/* an entry that is not an alert still moves the reading on */
	if ((rc = feed_add(d->feed, sid, json, len)) == -1)
		log_warnx("dash_alerts_add: out of memory, an alert lost");
	return rc == 1;
}

/* XRANGE entries into the feed, oldest first; 1 when one was new. */
static int
dash_alerts_entries(struct dash *d, const redisReply *list)
{
	const redisReply	*e;
	size_t			 i;
	int			 added = 0;

	for (i = 0; i < list->elements; i++) {
		e = list->element[i];
		if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 ||
		    e->element[0]->type != REDIS_REPLY_STRING ||
		    e->element[1]->type != REDIS_REPLY_ARRAY)
			continue;
		added |= dash_alerts_add(d, e->element[0]->str, e->element[1]);
	}
	return added;
}

void
dash_alerts_entry(void *arg, const char *sid, const redisReply *fields)
{
	(void)dash_alerts_add(arg, sid, fields);
}

/* New alerts: wake the pages soon, not at once, so a burst goes out in batches. */
void
dash_alerts_came(void *arg)
{
	struct dash	*d = arg;
	struct timeval	 tv = { 0, DASH_FLUSH_MS * 1000 };

	if (!evtimer_pending(d->ev_flush, NULL))
		evtimer_add(d->ev_flush, &tv);
}

void
dash_alerts_on_flush(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	dash_feed_notify(arg);
}

/* Redis refused a read (a key that is not a stream, say): try again later. */
static void
dash_alerts_later(struct dash *d, const redisReply *r)
{
	struct timeval	tv = { DASH_RETRY_MS / 1000, DASH_RETRY_MS % 1000 * 1000 };

	log_warnx("dash_read: redis %s: %s", d->key, r->type == REDIS_REPLY_ERROR ?
	    r->str : "an unexpected reply");
	evtimer_add(d->ev_stream, &tv);
}

void
dash_alerts_on_retry(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	dash_alerts_read(arg);
}

/* The history is in: from now on, follow the stream. */
static void
dash_alerts_loaded(struct dash *d)
{
	d->loaded = 1;
	log_info("dash_loaded: history read up to %s, following %s",
	    feed_last_sid(d->feed)[0] ? feed_last_sid(d->feed) : "(none)", d->key);
	xfollow_follow(d->alerts, feed_last_sid(d->feed));
	dash_feed_loaded(d);
	dash_audit_on_prune(-1, 0, d);	/* it waited for the alerts held */
}

static void
dash_alerts_on_range(redisReply *r, void *priv)
{
	struct dash	*d = priv;
	char		 from[FEED_SID_MAX + 1];

	if (r == NULL)
		return;
	if (r->type != REDIS_REPLY_ARRAY) {
		dash_alerts_later(d, r);
		return;
	}
	if (dash_alerts_entries(d, r))
		dash_alerts_came(d);
	if (r->elements < DASH_PAGE) {
		dash_alerts_loaded(d);
		return;
	}
	snprintf(from, sizeof(from), "(%s", feed_last_sid(d->feed));
	rconn_command(d->stream, dash_alerts_on_range, d, 0,
	    "XRANGE %s %s + COUNT %d", d->key, from, DASH_PAGE);
}

/*
 * The newest `history` entries give where the history starts; the day's
 * rule hits may need earlier ones: from whichever is older, read on.
 */
static void
dash_alerts_on_revrange(redisReply *r, void *priv)
{
	struct dash	*d = priv;
	char		 from[FEED_SID_MAX], daystart[32];
	const redisReply *oldest;

	if (r == NULL)
		return;
	if (r->type != REDIS_REPLY_ARRAY) {
		dash_alerts_later(d, r);
		return;
	}
	snprintf(daystart, sizeof(daystart), "%lld-0", (long long)d->day_start);
	if (r->elements == 0) {
		dash_alerts_loaded(d);	/* no stream yet: all of it is news */
		return;
	}
	oldest = r->element[r->elements - 1];
	snprintf(from, sizeof(from), "%s", daystart);
	if (oldest->type == REDIS_REPLY_ARRAY && oldest->elements == 2 &&
	    oldest->element[0]->type == REDIS_REPLY_STRING &&
	    strtoll(oldest->element[0]->str, NULL, 10) < d->day_start)
		snprintf(from, sizeof(from), "%s", oldest->element[0]->str);
	rconn_command(d->stream, dash_alerts_on_range, d, 0,
	    "XRANGE %s %s + COUNT %d", d->key, from, DASH_PAGE);
}

/* The next read of the stream: the history until it is in, then the follower. */
static void
dash_alerts_read(struct dash *d)
{
	if (!d->loaded)
		rconn_command(d->stream, dash_alerts_on_revrange, d, 0,
		    "XREVRANGE %s + - COUNT %llu", d->key,
		    (unsigned long long)d->cfg->dashboard.history);
	else
		xfollow_resume(d->alerts);
}

void
dash_alerts_on_conn(void *arg, int up, int lost)
{
	struct dash	*d = arg;

	(void)lost;
	if (up) {
		log_info("dash_on_stream: redis %s connected, reading %s",
		    rconn_name(d->stream), d->key);
		evtimer_del(d->ev_stream);
		dash_alerts_read(d);
	}
	dash_state_status(d);
}
