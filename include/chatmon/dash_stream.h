/* dash_stream: follows one Redis stream on an rconn for ever: XREAD BLOCK from an id, going on from the last entry read after a reconnect or a refused read (the dashboard's alerts and audit; `chatmon tail` could ride on it). */
#ifndef CHATMON_DASH_STREAM_H
#define CHATMON_DASH_STREAM_H

#include <stddef.h>

struct event_base;
struct redisReply;
struct rconn;
struct dash_stream;

#define DASH_STREAM_ID_MAX	48	/* "1795342899881-0" and room */

/*
 * One entry, in stream order: its id and its field-value array (hiredis's
 * reply, valid during the call). done is called once after every reply
 * that brought entries (a batch), so the owner can wake its readers once.
 */
typedef void	(*dash_stream_entry_cb)(void *arg, const char *sid,
		    const struct redisReply *fields);
typedef void	(*dash_stream_done_cb)(void *arg);

/*
 * A follower of key (copied) on rc (borrowed: the owner keeps it and tells
 * the follower when it comes back, dash_stream_resume). Nothing is read
 * until dash_stream_follow. NULL on ENOMEM.
 */
struct dash_stream *dash_stream_new(struct event_base *, struct rconn *rc,
		    const char *key, dash_stream_entry_cb, dash_stream_done_cb,
		    void *arg);
/* Pending replies are the rconn's: free the rconn first (they get NULL). NULL is fine. */
void		 dash_stream_free(struct dash_stream *);
/*
 * Follows from after id; NULL: from what is the last entry now (asked
 * first, so that a reconnect before the first new entry misses nothing).
 * Reads at once when the connection is up, else at dash_stream_resume.
 */
void		 dash_stream_follow(struct dash_stream *, const char *after);
/* The connection is up again: read on from the last id (nothing before dash_stream_follow). */
void		 dash_stream_resume(struct dash_stream *);
/* The last id read ("" before any); owned by the follower. */
const char	*dash_stream_last(const struct dash_stream *);
/* The key followed (prefix included); owned by the follower. */
const char	*dash_stream_key(const struct dash_stream *);

#endif
