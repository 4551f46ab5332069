/* alert: the alert sink: every alert to Redis (PUBLISH + XADD) on the one loop, kept in a bounded outbox and an optional disk spool while Redis is away. */
#ifndef CHATMON_ALERT_H
#define CHATMON_ALERT_H

#include <stddef.h>

#include "chatmon/config.h"
#include "chatmon/metrics.h"

struct event_base;
struct alert;

enum alert_severity {
	ALERT_INFO,
	ALERT_WARN,
	ALERT_CRITICAL,
};

/*
 * base and m are borrowed and must outlive the sink; cfg is copied. The
 * spool (redis.spool), if any, is opened and what an earlier run left in it
 * is delivered first. Connecting is not waited for: NULL only on ENOMEM or
 * a spool that cannot be opened, with the reason in errs.
 */
struct alert *alert_new(struct event_base *base, const struct config *cfg,
	    struct metrics *m, struct sbuf *errs);
/*
 * A reloaded configuration: a new Redis target reconnects; the spool path
 * is kept. A lower redis.wait_replicas applies to the alerts in flight too
 * (to 0: those Redis stored are delivered at once).
 */
void	alert_set_config(struct alert *, const struct config *cfg);
/*
 * Whether alert_new could open cfg's spool (read and write, or create it
 * in its directory), without creating or locking it: for chatmond -t. 0,
 * or -1 with "PATH: cannot open the alert spool: why" appended to errs.
 */
int	alert_spool_check(const struct config *cfg, struct sbuf *errs);
/*
 * Queues one alert (json is copied) for PUBLISH and XADD, in the order
 * given. agent, what (rule id or event type) and conversation make the key
 * of redis.fold: the same key within the window is folded into one alert
 * with a "count". Never blocks.
 */
void	alert_publish(struct alert *, const char *json, size_t len,
	    enum alert_severity, const char *agent, const char *what,
	    const char *conversation, size_t conversation_len);
/* 1 when Redis is connected, or a spool keeps what waits. */
int	alert_ready(const struct alert *);
/*
 * Sends the folded alerts still owed now instead of at the end of their
 * redis.fold window: a shutdown hands them to Redis, not to the spool for
 * a next start that may never come.
 */
void	alert_flush(struct alert *);
/*
 * 1 while alerts are on their way to a connected Redis (sent, not yet
 * acknowledged): shutdown waits for their answers within its grace, so
 * that an alert Redis holds is not counted, or spooled, as undelivered.
 */
int	alert_in_flight(const struct alert *);
/*
 * Alerts in memory for Redis while it is down between attempts: one now
 * (a shutdown: without redis.spool they would be lost); 1 while that
 * connection is being made with alerts waiting for it.
 */
void	alert_hurry(struct alert *);
int	alert_connecting(const struct alert *);
/*
 * Before the event base goes: drops the connection, and writes what was not
 * delivered to the spool when there is one (counted as dropped otherwise),
 * after taking the spool's delivered lines out of it, so that the next
 * start sends only the rest.
 */
void	alert_free(struct alert *);

#endif
