/* reportdb: a report's days read from Redis on the caller's loop: a finished day's stored aggregate, or the SLA logs, the alert stream and the handling hash, the aggregate then stored for the next time. */
#ifndef CHATMON_REPORTDB_H
#define CHATMON_REPORTDB_H

#include <stdint.h>

#include "chatmon/config.h"
#include "chatmon/report.h"

struct rconn;
struct reportdb;

/*
 * Called once, when the report is made: rep (the caller's, to
 * report_free) on success; NULL with why in err (Redis went away, an
 * error reply, ENOMEM). Not called after reportdb_cancel.
 */
typedef void	(*reportdb_done_cb)(struct report *rep, const char *err, void *arg);

/*
 * Starts reading days from..to (local days in sla.timezone, YYYY-MM-DD,
 * checked by the caller: from <= to) for agent (NULL: everyone) over rc,
 * which must be up; now is the wall clock, which says which days are
 * finished. One command is out at a time, so a long range never holds
 * the loop. cfg, rc and the strings are borrowed until done or cancel.
 * NULL on ENOMEM or when the command cannot be sent.
 */
struct reportdb *reportdb_start(struct rconn *rc, const struct config *cfg,
	    const char *from, const char *to, const char *agent, int64_t now,
	    reportdb_done_cb done, void *arg);
/*
 * The same, only shop's figures (--shop), and only its queue's when
 * queue is not NULL (--queue): report_keep_shop on every day. Days are
 * read and stored whole, every shop's, either way.
 */
struct reportdb *reportdb_start_shop(struct rconn *rc, const struct config *cfg,
	    const char *from, const char *to, const char *agent, const char *shop,
	    const char *queue, int64_t now, reportdb_done_cb done, void *arg);
/*
 * The caller no longer wants it (its client went): done is not called;
 * the reader is freed when Redis answers the command that is out.
 */
void	reportdb_cancel(struct reportdb *);

#endif
