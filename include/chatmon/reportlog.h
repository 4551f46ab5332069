/* reportlog: `chatmon report --log`'s days: a chat log's rounds, SLA events and alerts, as the replay engine gives them, charged per local day the way reportdb charges Redis's logs (pure). */
#ifndef CHATMON_REPORTLOG_H
#define CHATMON_REPORTLOG_H

#include <stdint.h>

#include <jansson.h>

#include "chatmon/report.h"
#include "chatmon/sla.h"

/*
 * Each local day gets what reportdb gives a day read from Redis: a fresh
 * SLA engine charged with the day's rounds (sla_charge_round, by when
 * they closed or ended) and breaches and escalations (sla_charge_event, by
 * when they fell due), its sums (sla_agents_day) into the day's report,
 * every round a worst-wait candidate, every rule hit of the day counted.
 * So a log's day has the figures Redis's logs of the same rounds would
 * give, and `chatmon replay`'s summary of a one-day log. A log has no
 * handling: no false positives; and no day of it is partial.
 */

struct reportlog;

/*
 * The local days starting at from_start..to_start (wall ms, as
 * report_parse_day gives them; from_start <= to_start) under cfg
 * (copied: cap_ms, rate_ms, the hours and utc_offset_min count). What
 * falls outside them is ignored. NULL on ENOMEM; the caller's, to
 * reportlog_free.
 */
struct reportlog *reportlog_new(const struct sla_config *cfg, int64_t from_start,
	    int64_t to_start);
void	reportlog_free(struct reportlog *);
/*
 * The shops' and queues' own settings (sla_policies_from's), for the days
 * made after: each shop's rounds are judged and its figures read by them.
 * v and its strings are borrowed until reportlog_free.
 */
void	reportlog_set_policies(struct reportlog *, const struct sla_policy *v,
	    size_t n);

/* A round closed or ended, on the day of its `at`. 0, or -1 on ENOMEM. */
int	reportlog_round(struct reportlog *, const struct sla_round *);
/* A breach or an escalation, on the day it fell due; a warning is not counted. 0, or -1 on ENOMEM. */
int	reportlog_event(struct reportlog *, const struct sla_event *);
/* An alert object (docs/alerts.md) of time at, on that day: report_add_alert's count (rule.hit only). 0, or -1 on ENOMEM. */
int	reportlog_alert(struct reportlog *, const json_t *alert, int64_t at);

/*
 * The days as one report, a row per day (empty days too), only agent's
 * figures when agent is not NULL (--agent). NULL on ENOMEM; the caller's,
 * to report_free. The days stay: it can be asked again.
 */
struct report *reportlog_report(const struct reportlog *, const char *agent);
/* The same, only shop's (--shop) and its queue's when queue is not NULL (--queue): report_keep_shop. */
struct report *reportlog_report_shop(const struct reportlog *, const char *agent,
	    const char *shop, const char *queue);

#endif
