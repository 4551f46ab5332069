/* reportlog: `chatmon report --log`'s days: a chat log's rounds, SLA events and alerts, as the replay engine gives them, charged per local day the way reportdb charges Redis's logs (pure). */
#include <stdlib.h>
#include <string.h>

#include "chatmon/report.h"
#include "chatmon/reportlog.h"
#include "chatmon/sla.h"
#include "chatmon/state.h"

/* A day is made when the first thing falls on it: a long range of a short log costs its days only. */
struct reportlog_day {
	struct report	*rep;	/* worst waits and rule hits */
	struct sla	*figs;	/* its rounds and events, charged as reportdb does */
};

struct reportlog {
	struct sla_config	 cfg;
	const struct sla_policy	*pol;		/* the caller's: the shops' own settings */
	size_t			 npol;
	int64_t			 from;		/* the first day starts */
	size_t			 ndays;
	struct reportlog_day	*days;
};

struct reportlog *
reportlog_new(const struct sla_config *cfg, int64_t from_start, int64_t to_start)
{
	struct reportlog	*rl;

	if (to_start < from_start || (rl = calloc(1, sizeof(*rl))) == NULL)
		return NULL;
	rl->cfg = *cfg;
	rl->from = from_start;
	rl->ndays = (size_t)((to_start - from_start) / STATE_DAY_MS) + 1;
	if ((rl->days = calloc(rl->ndays, sizeof(*rl->days))) == NULL) {
		free(rl);
		return NULL;
	}
	return rl;
}

void
reportlog_set_policies(struct reportlog *rl, const struct sla_policy *v, size_t n)
{
	rl->pol = v;
	rl->npol = n;
}

/* A report of rl's settings, each shop's own too; NULL on ENOMEM. */
static struct report *
reportlog_new_report(const struct reportlog *rl)
{
	struct report	*r;

	if ((r = report_new(rl->cfg.cap_ms, rl->cfg.rate_ms)) == NULL)
		return NULL;
	if (report_set_policies(r, rl->pol, rl->npol) == -1) {
		report_free(r);
		return NULL;
	}
	return r;
}

void
reportlog_free(struct reportlog *rl)
{
	size_t	i;

	if (rl == NULL)
		return;
	for (i = 0; i < rl->ndays; i++) {
		report_free(rl->days[i].rep);
		sla_free(rl->days[i].figs);
	}
	free(rl->days);
	free(rl);
}

/* The day t falls on, made if need be: 0 with *d (NULL outside the days), or -1 on ENOMEM. */
static int
reportlog_day(struct reportlog *rl, int64_t t, struct reportlog_day **d)
{
	struct reportlog_day	*x;
	int64_t			 i;

	*d = NULL;
	if (t < rl->from)
		return 0;
	if ((i = (t - rl->from) / STATE_DAY_MS) >= (int64_t)rl->ndays)
		return 0;
	x = &rl->days[i];
	if (x->rep == NULL && (x->rep = reportlog_new_report(rl)) == NULL)
		return -1;
	/* each shop's rounds judged by its own settings, as the replay engine's */
	if (x->figs == NULL && ((x->figs = sla_new(&rl->cfg, NULL, NULL, NULL)) ==
	    NULL || sla_set_policies(x->figs, rl->pol, rl->npol) == -1))
		return -1;
	*d = x;
	return 0;
}

int
reportlog_round(struct reportlog *rl, const struct sla_round *r)
{
	struct reportlog_day	*d;

	if (reportlog_day(rl, r->at, &d) == -1)
		return -1;
	if (d == NULL)
		return 0;
	/* one in no figure is in no list of the worst waits either */
	return sla_charge_round(d->figs, r) ? report_add_wait(d->rep, r) : 0;
}

int
reportlog_event(struct reportlog *rl, const struct sla_event *e)
{
	struct reportlog_day	*d;

	if (e->type == SLA_WARN)
		return 0;
	if (reportlog_day(rl, e->due, &d) == -1)
		return -1;
	if (d != NULL)
		sla_charge_event(d->figs, e->agent, e->shop, e->queue, e->type,
		    e->due);
	return 0;
}

int
reportlog_alert(struct reportlog *rl, const json_t *alert, int64_t at)
{
	struct reportlog_day	*d;

	if (reportlog_day(rl, at, &d) == -1)
		return -1;
	return d != NULL ? report_add_alert(d->rep, alert, 0) : 0;
}

static void
reportlog_add_sums(const struct sla_account *w, const struct sla_day *sd,
    void *arg)
{
	struct report	**rep = arg;

	/* the agent's total, and its figures in the shop and queue */
	if (*rep != NULL && report_add_shop_sums(*rep, w, sd) == -1) {
		report_free(*rep);
		*rep = NULL;	/* ENOMEM, said by the caller */
	}
}

struct report *
reportlog_report(const struct reportlog *rl, const char *agent)
{
	return reportlog_report_shop(rl, agent, NULL, NULL);
}

struct report *
reportlog_report_shop(const struct reportlog *rl, const char *agent,
    const char *shop, const char *queue)
{
	struct report	*range, *day = NULL;
	char		 name[16];
	int64_t		 start;
	size_t		 i;

	if ((range = reportlog_new_report(rl)) == NULL)
		return NULL;
	if (shop != NULL && report_keep_shop(range, shop, queue) == -1)
		goto err;
	for (i = 0; i < rl->ndays; i++) {
		start = rl->from + (int64_t)i * STATE_DAY_MS;
		state_day(name, start, rl->cfg.utc_offset_min);
		/*
		 * A fresh copy of the day, as reportdb reads one: its sums
		 * are added once, and the days stay as they were.
		 */
		if ((day = reportlog_new_report(rl)) == NULL)
			goto err;
		if (rl->days[i].rep != NULL && report_merge(day, rl->days[i].rep,
		    name, 0) == -1)
			goto err;
		if (rl->days[i].figs != NULL) {
			sla_agents_day(rl->days[i].figs, start, reportlog_add_sums, &day);
			if (day == NULL)
				goto err;
		}
		if (agent != NULL)
			report_keep_agent(day, agent);
		if (shop != NULL && report_keep_shop(day, shop, queue) == -1)
			goto err;
		if (report_merge(range, day, name, 0) == -1)
			goto err;
		report_free(day);
		day = NULL;
	}
	return range;
err:
	report_free(day);
	report_free(range);
	return NULL;
}
