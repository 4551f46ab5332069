/* report: `chatmon report`'s figures over days: one day's aggregate (per agent: the SLA sums, the hours, rule hits, false positives, the worst waits), days merged, and the JSON, CSV and HTML a manager gets (pure). */
#ifndef CHATMON_REPORT_H
#define CHATMON_REPORT_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "chatmon/sla.h"
#include "chatmon/util.h"

/*
 * An aggregate holds sums only (counts, sums of milliseconds, the
 * response-time histogram, the hours), so that days merge exactly: the
 * figures of a range are those of its days' sums, computed by the SLA
 * engine's own sla_sums_figures, the dashboard's arithmetic to the unit.
 * docs/report.md has the definitions and the stored document.
 */

#define REPORT_WORST	20	/* worst waits kept, per agent and in the report */
#define REPORT_FAST_MS	30000	/* the 30-second reply rate (JD's) */

struct report;

/* cap_ms and rate_ms are sla.cap and sla.rate. NULL on ENOMEM; the caller's to report_free. */
struct report *report_new(uint64_t cap_ms, uint64_t rate_ms);
void	report_free(struct report *);

/*
 * The shops' and queues' own settings (sla_policies_from's; v and its
 * strings are copied): a shop's or queue's figures are read under its
 * sla.cap and sla.rate, others under report_new's. Set it before anything
 * is added. 0, or -1 on ENOMEM (nothing changed).
 */
int	report_set_policies(struct report *, const struct sla_policy *v, size_t n);
/* The settings of (shop, queue): the queue's, else the shop's; NULL: report_new's. */
const struct sla_config *report_policy(const struct report *, const char *shop,
	    const char *queue);

/*
 * An agent's SLA sums of a day in (shop, queue), as sla_agents_day gives
 * them, added to the agent's total, and to its figures in the shop and
 * in the queue when it has them ("" none; a queue needs a shop).
 * report_add_sums: no shop. 0, or -1 on ENOMEM.
 */
int	report_add_shop_sums(struct report *, const struct sla_account *,
	    const struct sla_day *);
int	report_add_sums(struct report *, const char *agent, const struct sla_day *);

/* A round closed (answered) or ended unanswered, for the worst waits of its agent, and in its shop and queue (NULL or "": none; first is not used). Strings are the caller's. */
int	report_add_wait(struct report *, const struct sla_round *);

/*
 * An alert (docs/alerts.md, parsed; anything may be missing): a rule.hit
 * counts as "count" alerts (a folded one) for its agent, under its
 * strongest category, a block when its action is; each rule of its hits
 * (v1: the top level) counts under its category and action. Other types
 * are ignored. fp: the alert was marked false_positive (handling hash),
 * counted under its agent and strongest category. Counted for the agent,
 * and in its "shop" and "queue" when the alert has them. 0, or -1 on
 * ENOMEM.
 */
int	report_add_alert(struct report *, const json_t *alert, int fp);

/* Drops every agent but agent (--agent), in every shop too. */
void	report_keep_agent(struct report *, const char *agent);
/*
 * Keeps only shop (--shop), and only its queue when queue is not NULL
 * (--queue; the shop's figures are then the queue's): the agents' figures
 * become theirs within it, under its settings; the days merged after are
 * its. The writers say which. 0, or -1 on ENOMEM.
 */
int	report_keep_shop(struct report *, const char *shop, const char *queue);

/*
 * Adds the aggregate day (of the local day dayname) into range, and one
 * row for that day (its team figures); partial: its logs had been trimmed
 * before it ended. 0, or -1 on ENOMEM.
 */
int	report_merge(struct report *range, const struct report *day,
	    const char *dayname, int partial);

/* The aggregate as the document stored for a finished day (docs/report.md); partial as report_merge's. 0, or -1 on ENOMEM. */
int	report_dump(struct sbuf *out, const struct report *, const char *day,
	    int32_t utc_offset_min, int partial);
/*
 * A stored document read back, under cap_ms and rate_ms; NULL when it is
 * not one (or on ENOMEM), with *partial its flag.
 */
struct report *report_load(const char *doc, size_t len, uint64_t cap_ms,
	    uint64_t rate_ms, int *partial);
/*
 * The same into r (new, its policies set: the shops are read under
 * them): 0, 1 when doc is not one (r unchanged), -1 on ENOMEM (r is
 * half read: the caller's to drop). A day stored before shops has none.
 */
int	report_load_into(struct report *r, const char *doc, size_t len,
	    int *partial);

/* What the writers say around the figures. Strings are the caller's. */
struct report_meta {
	const char	*from, *to;	/* YYYY-MM-DD, local days */
	const char	*agent;		/* --agent, or NULL */
	int32_t		 utc_offset_min;	/* sla.timezone */
	int64_t		 generated;	/* wall ms, shown */
};

/* The report as one JSON object, a CSV for Excel (BOM, header, a row per agent), one self-contained HTML page. 0, or -1 on ENOMEM. */
int	report_json(struct sbuf *out, const struct report *, const struct report_meta *);
int	report_csv(struct sbuf *out, const struct report *, const struct report_meta *);
int	report_html(struct sbuf *out, const struct report *, const struct report_meta *);

/*
 * "2026-11-22" to the wall ms its local day starts at UTC + off_min; -1
 * for anything else (a day that does not exist too).
 */
int	report_parse_day(const char *s, int32_t off_min, int64_t *start);

#endif
