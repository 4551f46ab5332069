/* xfollow: follows one Redis stream on an rconn for ever: XREAD BLOCK from an id, going on from the last entry read after a reconnect or a refused read (the dashboard's alerts and audit, chatmond's notes, chatmon tail). */
#ifndef CHATMON_XFOLLOW_H
#define CHATMON_XFOLLOW_H

#include <stddef.h>
#include <stdint.h>

struct event_base;
struct redisReply;
struct rconn;
struct xfollow;

#define XFOLLOW_ID_MAX	48	/* "1795342899881-0" and room */

/*
 * One entry, in stream order: its id and its field-value array (hiredis's
 * reply, valid during the call). done is called once after every reply
 * that brought entries (a batch), so the owner can wake its readers once.
 */
typedef void	(*xfollow_entry_cb)(void *arg, const char *sid,
		    const struct redisReply *fields);
typedef void	(*xfollow_done_cb)(void *arg);
/*
 * Redis answered a read with an error, or with something that is not a
 * stream's answer (reply, valid during the call). 0: try again in a
 * second; -1: the owner takes it from here (drops the connection, or
 * stops), and nothing is read until xfollow_follow or xfollow_resume.
 */
typedef int	(*xfollow_error_cb)(void *arg, const struct redisReply *reply);

/*
 * A follower of key (copied) on rc (borrowed: the owner keeps it and tells
 * the follower when it comes back, xfollow_resume). Nothing is read
 * until xfollow_follow. NULL on ENOMEM.
 */
struct xfollow *xfollow_new(struct event_base *, struct rconn *rc,
		    const char *key, xfollow_entry_cb, xfollow_done_cb,
		    void *arg);
/*
 * How long one XREAD waits (block_ms, 0 keeps the default of 5 s) and how
 * many entries it takes (page, 0 keeps 1000). For the next read.
 */
void		 xfollow_set_read(struct xfollow *, uint64_t block_ms,
		    size_t page);
/*
 * Who hears of a refused read; without one (NULL), the first of a run of
 * failures is logged and the read is tried again every second.
 */
void		 xfollow_set_error(struct xfollow *, xfollow_error_cb);
/* Pending replies are the rconn's: free the rconn first (they get NULL). NULL is fine. */
void		 xfollow_free(struct xfollow *);
/*
 * Follows from after id; NULL: from what is the last entry now (asked
 * first, so that a reconnect before the first new entry misses nothing).
 * Reads at once when the connection is up, else at xfollow_resume.
 */
void		 xfollow_follow(struct xfollow *, const char *after);
/* The connection is up again: read on from the last id (nothing before xfollow_follow). */
void		 xfollow_resume(struct xfollow *);
/* The last id read ("" before any); owned by the follower. */
const char	*xfollow_last(const struct xfollow *);
/* The key followed (prefix included); owned by the follower. */
const char	*xfollow_key(const struct xfollow *);

#endif
