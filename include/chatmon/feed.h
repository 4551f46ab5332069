/* feed: the dashboard's alerts: the last N of the stream (repeats dropped), today's rule hits per agent and category, and the feed messages made of them (pure). */
#ifndef CHATMON_FEED_H
#define CHATMON_FEED_H

#include <stddef.h>
#include <stdint.h>

#include "chatmon/state.h"
#include "chatmon/util.h"

/*
 * Every alert that comes in gets the next sequence number; the feed keeps
 * the last `keep` of them. A page's place in it is the sequence number of
 * the next alert it needs: new alerts are what lies at or after it. A new
 * page gets the last `history`; so does a page that fell more than `keep`
 * behind (reset). keep > history lets a page that keeps up on the whole
 * ride out a burst bigger than the history.
 */
#define FEED_NEW	UINT64_MAX	/* a page that has nothing yet */
#define FEED_BATCH_MAX	500		/* alerts in one message */
#define FEED_SID_MAX	48		/* a stream id, "1795342899881-0" */

struct feed;

/* 1 <= history <= keep. NULL on ENOMEM or bad sizes. */
struct feed *feed_new(size_t history, size_t keep);
void	feed_free(struct feed *);

/*
 * The local day whose rule hits are counted, [start, end) in wall ms, as
 * "2026-11-22". The hits of the day after it are counted apart meanwhile:
 * they are the day's when it is set next (start the old end); any other
 * day clears both.
 */
int	feed_set_day(struct feed *, const char *day, int64_t start, int64_t end);

/*
 * One stream entry in stream order: its id and its alert object (json,
 * len bytes). 1 when added, 0 when it is a repeat (an alert id seen
 * already), not an alert, or not after the last stream id, -1 on ENOMEM.
 */
int	feed_add(struct feed *, const char *sid, const char *json, size_t len);
/* The last stream id added or passed over ("" before any): where to read on. */
const char *feed_last_sid(const struct feed *);
/* The alerts kept (at most keep). */
size_t	feed_size(const struct feed *);
/*
 * One alert kept, and what a filter or a login's scope needs of it, read
 * once when it was added, so that looking through them parses nothing.
 * A field is NULL when the alert has no such string, or when the string
 * holds U+0000: no C string (a URL's argument, a login's shops) can name
 * it, so it must match no filter and put the alert in no shop's scope
 * rather than pass for the shorter id before the U+0000.
 */
struct feed_item {
	const char	*sid;		/* its stream id */
	const char	*id;		/* the alert's id: never NULL */
	const char	*json;		/* the alert object as it came, len bytes */
	size_t		 len;
	const char	*shop;		/* NULL also when "" */
	const char	*queue;
	const char	*agent;
	const char	*conversation;
	const char	*severity;
};
/*
 * The i-th alert kept, oldest first (0 .. feed_size - 1), owned by the
 * feed until the next feed_add; NULL past the end.
 */
const struct feed_item *feed_item(const struct feed *, size_t i);
/* Stream entries that were not alerts. */
uint64_t feed_bad(const struct feed *);

/* Where a page that saw up to stream id since goes on (FEED_NEW when the feed does not hold since). */
uint64_t feed_position(const struct feed *, const char *since);
/* 1 when a page at pos has something to be sent (a reset counts). */
int	feed_pending(const struct feed *, uint64_t pos);
/*
 * The next "alerts" message for a page at *pos: at most FEED_BATCH_MAX
 * alerts, "reset":true when the page must drop what it has. *pos moves on.
 * 1 appended, 0 nothing of it is the page's (out as it was), -1 on ENOMEM.
 * scope: a login's shops (users_shops; NULL every shop): the alerts of
 * other shops, and without a shop, are passed over; a batch of none of
 * its alerts is no message (a reset still is).
 */
int	feed_alerts_msg(const struct feed *, uint64_t *pos, const char *scope,
	    struct sbuf *out);

/*
 * The "agents" message: the agents' merged day (state_agents_merge) with
 * today's rule hits by category, a row for every (shop, queue, agent)
 * with either, in that order (no shop first); a row has "shop" and
 * "queue" when set, as alerts do, and the hits of its shop's alerts.
 */
int	feed_agents_msg(const struct feed *, const struct state_agent *agents,
	    size_t n, struct sbuf *out);
/*
 * A "waiting" or "agents" message (msg, len bytes) as a login of scope
 * (users_shops; NULL every shop) sees it: only the rows of its shops; of
 * a waiting message (state_waiting_msg: the longest of each shop) the
 * longest STATE_FEED_WAITING_MAX of those, with "total" and "shops" of its
 * shops only (every round of them, listed or not). 0, or -1 on ENOMEM or
 * a message that is none.
 */
int	feed_scope_msg(const char *msg, size_t len, const char *scope,
	    struct sbuf *out);

#endif
