/* slaclock: the SLA engine on the loop: turns in, deadlines as libevent timers, events out to the agent and the alert sink. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "chatmon/log.h"
#include "chatmon/sla.h"
#include "chatmon/slaclock.h"

/*
 * Each conversation the engine holds gets one libevent timer, armed at the
 * engine's next deadline for it: never a polling scan. Most deadlines are
 * the same few durations after a turn (warn_at * threshold, the rest of the
 * threshold, the escalation, the idle end), so those go through libevent's
 * common timeouts, O(1) queues instead of the heap; a deadline moved by the
 * service hours takes the heap.
 *
 * A conversation also remembers the session it was last seen on, so that
 * sla.warn and sla.breach reach that agent, and so that the agent's
 * disconnect ends it.
 */

#define SLACLOCK_NCOMMON	8

struct slaclock_conv {
	struct slaclock		*clk;
	struct sla_conv		*conv;
	struct event		*ev;
	struct relay_peer	*peer;		/* weak: unlinked when the session closes */
	struct slaclock_conv	*prev, *next;	/* the peer's conversations */
};

struct slaclock {
	struct event_base	*base;
	struct sla		*sla;
	struct metrics		*metrics;
	struct alertfmt_ids	*ids;
	slaclock_publish_cb	 publish;
	void			*arg;
	struct sbuf		 alert, frame;	/* scratch, reused */
	uint64_t		 common_ms[SLACLOCK_NCOMMON];
	const struct timeval	*common[SLACLOCK_NCOMMON];
	size_t			 ncommon;
};

static void	slaclock_arm(struct slaclock_conv *, int64_t now);

/* The durations most timers are armed with, as common timeouts. */
static void
slaclock_common(struct slaclock *clk, const struct sla_config *s)
{
	/* the engine rounds warn_at * threshold to the nearest millisecond */
	uint64_t	wf = (uint64_t)(s->warn_at * (double)s->first_response_ms + 0.5);
	uint64_t	wr = (uint64_t)(s->warn_at * (double)s->reply_ms + 0.5);
	uint64_t	want[] = {
		wf,
		s->first_response_ms - wf,
		wr,
		s->reply_ms - wr,
		s->escalate_ms > s->first_response_ms ?
		    s->escalate_ms - s->first_response_ms : 0,
		s->escalate_ms > s->reply_ms ? s->escalate_ms - s->reply_ms : 0,
		s->idle_ms,
	};
	struct timeval	tv;
	size_t		i, k;

	for (i = 0; i < UTIL_NELEM(want); i++) {
		for (k = 0; k < clk->ncommon; k++)
			if (clk->common_ms[k] == want[i])
				break;
		if (k < clk->ncommon || clk->ncommon == SLACLOCK_NCOMMON ||
		    want[i] == 0)
			continue;
		tv.tv_sec = (time_t)(want[i] / 1000);
		tv.tv_usec = (suseconds_t)(want[i] % 1000 * 1000);
		/* libevent keeps them for the base's life: a reload only adds */
		if ((clk->common[clk->ncommon] =
		    event_base_init_common_timeout(clk->base, &tv)) != NULL)
			clk->common_ms[clk->ncommon++] = want[i];
	}
}

static void
slaclock_unlink(struct slaclock_conv *c)
{
	if (c->peer == NULL)
		return;
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		c->peer->sla_convs = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	c->prev = c->next = NULL;
	c->peer = NULL;
}

static void
slaclock_link(struct slaclock_conv *c, struct relay_peer *peer)
{
	if (c->peer == peer)
		return;
	slaclock_unlink(c);
	c->peer = peer;
	c->next = peer->sla_convs;
	if (c->next != NULL)
		c->next->prev = c;
	peer->sla_convs = c;
}

/* The engine frees a conversation: drop its timer and our record. */
static void
slaclock_release(struct sla_conv *conv, void *udata, void *arg)
{
	struct slaclock_conv	*c = udata;

	(void)conv;
	(void)arg;
	if (c == NULL)
		return;
	slaclock_unlink(c);
	event_free(c->ev);	/* safe in its own callback: libevent allows it */
	free(c);
}

static void
slaclock_emit(const struct sla_event *e, void *arg)
{
	struct slaclock		*clk = arg;
	struct slaclock_conv	*c = sla_conv_udata(e->conv);

	switch (e->type) {
	case SLA_WARN:
		clk->metrics->sla_warnings++;
		break;
	case SLA_BREACH:
		clk->metrics->sla_breaches++;
		break;
	case SLA_ESCALATE:
		clk->metrics->sla_escalations++;
		break;
	}
	sbuf_reset(&clk->alert);
	if (alertfmt_sla(&clk->alert, clk->ids, e) == -1) {
		log_warnx("slaclock_emit: out of memory, %s lost",
		    alertfmt_sla_type(e));
		return;
	}
	clk->publish(clk->alert.s, clk->alert.len, (int)e->type,
	    alertfmt_sla_type(e), e->agent,
	    e->conversation, e->conversation_len, clk->arg);
	/* warn and breach tell the agent; escalation is for supervisors */
	if (e->type == SLA_ESCALATE || c == NULL || c->peer == NULL ||
	    c->peer->inject == NULL)
		return;
	sbuf_reset(&clk->frame);
	if (alertfmt_warning(&clk->frame, e->conversation, e->conversation_len,
	    clk->alert.s, clk->alert.len, 0) == -1)
		return;
	c->peer->inject(c->peer->ctx, clk->frame.s, clk->frame.len, 1);
}

static void
slaclock_fire(evutil_socket_t fd, short what, void *arg)
{
	struct slaclock_conv	*c = arg;
	struct metrics		*m = c->clk->metrics;
	int64_t			 now_us = util_wall_us(), now = now_us / 1000;
	int64_t			 late = now_us - sla_conv_deadline(c->conv) * 1000;

	(void)fd;
	(void)what;
	/* how late the loop runs the timers: the figure the SLA promise rests on */
	if (late < 0)
		late = 0;
	m->sla_timer_fires++;
	m->sla_timer_late_sum_us += (uint64_t)late;
	if ((uint64_t)late > m->sla_timer_late_max_us)
		m->sla_timer_late_max_us = (uint64_t)late;
	if (late > 10000)
		m->sla_timer_late_over_10ms++;
	if (sla_expire(c->clk->sla, c->conv, now) == 0)
		slaclock_arm(c, now);	/* else it ended and c is gone */
}

static void
slaclock_arm(struct slaclock_conv *c, int64_t now)
{
	struct slaclock	*clk = c->clk;
	struct timeval	 tv;
	int64_t		 d = sla_conv_deadline(c->conv);
	uint64_t	 ms;
	size_t		 k;

	if (d == INT64_MAX) {
		evtimer_del(c->ev);
		return;
	}
	/*
	 * libevent counts a timeout from the time it cached when this loop
	 * iteration began, not from now: measured from there, the timer does
	 * not wake before the deadline however long the iteration has run.
	 */
	if (event_base_gettimeofday_cached(clk->base, &tv) == 0)
		now = (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
	ms = d > now ? (uint64_t)(d - now) : 0;
	for (k = 0; k < clk->ncommon; k++)
		if (clk->common_ms[k] == ms) {
			evtimer_add(c->ev, clk->common[k]);
			return;
		}
	tv.tv_sec = (time_t)(ms / 1000);
	tv.tv_usec = (suseconds_t)(ms % 1000 * 1000);
	evtimer_add(c->ev, &tv);
}

struct slaclock *
slaclock_new(struct event_base *base, const struct config *cfg,
    struct metrics *m, struct alertfmt_ids *ids, slaclock_publish_cb publish,
    void *arg, struct sbuf *errs)
{
	struct slaclock		*clk;
	struct sla_config	 s;

	if ((clk = calloc(1, sizeof(*clk))) == NULL)
		goto oom;
	clk->base = base;
	clk->metrics = m;
	clk->ids = ids;
	clk->publish = publish;
	clk->arg = arg;
	sla_config_from(&s, &cfg->sla);
	if ((clk->sla = sla_new(&s, slaclock_emit, slaclock_release, clk)) == NULL)
		goto oom;
	slaclock_common(clk, &s);
	return clk;
oom:
	sbuf_line(errs, "slaclock_new: out of memory");
	free(clk);
	return NULL;
}

void
slaclock_set_config(struct slaclock *clk, const struct config *cfg)
{
	struct sla_config	s;

	sla_config_from(&s, &cfg->sla);
	sla_set_config(clk->sla, &s);
	slaclock_common(clk, &s);
}

void
slaclock_turn(struct slaclock *clk, const struct relay_turn *t, int robot)
{
	struct sla_conv		*conv;
	struct slaclock_conv	*c;
	int64_t			 now = t->wall_ms;

	conv = sla_turn(clk->sla, t->conversation, t->conversation_len,
	    t->peer->agent, t->role == RELAY_ROLE_CUSTOMER, !robot, now);
	if (conv == NULL) {
		log_warnx("slaclock_turn: out of memory, turn not timed");
		return;
	}
	if ((c = sla_conv_udata(conv)) == NULL) {
		if ((c = calloc(1, sizeof(*c))) == NULL ||
		    (c->ev = evtimer_new(clk->base, slaclock_fire, c)) == NULL) {
			free(c);
			log_warnx("slaclock_turn: out of memory, conversation "
			    "not timed");
			sla_end(clk->sla, conv, now);
			return;
		}
		c->clk = clk;
		c->conv = conv;
		sla_conv_set_udata(conv, c);
	}
	slaclock_link(c, (struct relay_peer *)t->peer);
	slaclock_arm(c, now);
}

void
slaclock_end(struct slaclock *clk, const struct relay_turn *t)
{
	struct sla_conv	*conv;

	if ((conv = sla_find(clk->sla, t->conversation, t->conversation_len)) != NULL)
		sla_end(clk->sla, conv, t->wall_ms);
}

void
slaclock_peer_closed(struct slaclock *clk, struct relay_peer *peer)
{
	struct slaclock_conv	*c;
	int64_t			 now = util_wall_ms();

	/* sla_end releases c, which unlinks it: the head moves on */
	while ((c = peer->sla_convs) != NULL)
		sla_end(clk->sla, c->conv, now);
}

static void
slaclock_figure(const char *agent, const struct sla_figures *f, void *arg)
{
	(void)arg;
	log_info("slaclock: agent=%s rounds=%llu answered=%llu mean_ms=%llu "
	    "p90_ms=%llu first_mean_ms=%llu breaches=%llu escalations=%llu "
	    "rate=%.3f", agent[0] ? agent : "-", (unsigned long long)f->rounds,
	    (unsigned long long)f->answered, (unsigned long long)f->mean_ms,
	    (unsigned long long)f->p90_ms, (unsigned long long)f->first_mean_ms,
	    (unsigned long long)f->breaches, (unsigned long long)f->escalations,
	    f->rate);
}

void
slaclock_log_figures(const struct slaclock *clk)
{
	sla_agents(clk->sla, slaclock_figure, NULL);
}

/* A Prometheus label value: backslash, quote and newline escaped. */
static int
slaclock_label(struct sbuf *out, const char *v)
{
	for (; *v; v++) {
		if ((*v == '\\' || *v == '"') && sbuf_append(out, "\\", 1) == -1)
			return -1;
		if (*v == '\n') {
			if (sbuf_append(out, "\\n", 2) == -1)
				return -1;
			continue;
		}
		if (sbuf_append(out, v, 1) == -1)
			return -1;
	}
	return 0;
}

struct slaclock_prom {
	struct sbuf	*out;
	int		 field;	/* which figure this pass prints */
	int		 err;
};

static const struct {
	const char	*name, *kind, *help;
} slaclock_figures[] = {
	{ "agent_rounds_total", "counter", "Rounds closed or ended, per agent" },
	{ "agent_answered_total", "counter", "Rounds answered, per agent" },
	{ "agent_response_mean_seconds", "gauge", "Mean response time (capped; unanswered = cap), per agent" },
	{ "agent_response_p90_seconds", "gauge", "p90 response time (capped; unanswered = cap), per agent" },
	{ "agent_first_response_mean_seconds", "gauge", "Mean first response time, per agent" },
	{ "agent_breaches_total", "counter", "SLA breaches, per agent" },
	{ "agent_escalations_total", "counter", "SLA escalations, per agent" },
	{ "agent_reply_rate", "gauge", "Share of rounds answered within sla.rate, per agent" },
};

static void
slaclock_prom_agent(const char *agent, const struct sla_figures *f, void *arg)
{
	struct slaclock_prom	*p = arg;
	double			 v[] = { (double)f->rounds, (double)f->answered,
				    (double)f->mean_ms / 1000, (double)f->p90_ms / 1000,
				    (double)f->first_mean_ms / 1000, (double)f->breaches,
				    (double)f->escalations, f->rate };

	if (p->err || sbuf_printf(p->out, "chatmon_%s{agent=\"",
	    slaclock_figures[p->field].name) == -1 ||
	    slaclock_label(p->out, agent) == -1 ||
	    sbuf_printf(p->out, "\"} %g\n", v[p->field]) == -1)
		p->err = 1;
}

int
slaclock_metrics(const struct slaclock *clk, struct sbuf *out)
{
	static const uint64_t	 bounds[] = { 5000, 10000, 15000, 30000, 60000,
				    120000, 180000, 300000, 600000 };
	uint64_t		 counts[UTIL_NELEM(bounds)], sum, total;
	struct slaclock_prom	 p = { out, 0, 0 };
	size_t			 i;

	if (sbuf_printf(out, "# HELP chatmon_sla_open_rounds Rounds waiting for a reply\n"
	    "# TYPE chatmon_sla_open_rounds gauge\nchatmon_sla_open_rounds %zu\n"
	    "# HELP chatmon_sla_conversations Conversations being timed\n"
	    "# TYPE chatmon_sla_conversations gauge\nchatmon_sla_conversations %zu\n",
	    sla_open_rounds(clk->sla), sla_conversations(clk->sla)) == -1)
		return -1;
	sla_histogram(clk->sla, bounds, UTIL_NELEM(bounds), counts, &sum, &total);
	if (sbuf_printf(out, "# HELP chatmon_sla_response_seconds Response time of "
	    "rounds closed or ended (capped at sla.cap; unanswered = the cap)\n"
	    "# TYPE chatmon_sla_response_seconds histogram\n") == -1)
		return -1;
	for (i = 0; i < UTIL_NELEM(bounds); i++)
		if (sbuf_printf(out, "chatmon_sla_response_seconds_bucket{le=\"%g\"} "
		    "%" PRIu64 "\n", (double)bounds[i] / 1000, counts[i]) == -1)
			return -1;
	if (sbuf_printf(out, "chatmon_sla_response_seconds_bucket{le=\"+Inf\"} %" PRIu64
	    "\nchatmon_sla_response_seconds_sum %g\n"
	    "chatmon_sla_response_seconds_count %" PRIu64 "\n", total,
	    (double)sum / 1000, total) == -1)
		return -1;
	for (p.field = 0; (size_t)p.field < UTIL_NELEM(slaclock_figures); p.field++) {
		if (sbuf_printf(out, "# HELP chatmon_%s %s\n# TYPE chatmon_%s %s\n",
		    slaclock_figures[p.field].name, slaclock_figures[p.field].help,
		    slaclock_figures[p.field].name, slaclock_figures[p.field].kind) == -1)
			return -1;
		sla_agents(clk->sla, slaclock_prom_agent, &p);
		if (p.err)
			return -1;
	}
	return 0;
}

const struct sla *
slaclock_engine(const struct slaclock *clk)
{
	return clk->sla;
}

size_t
slaclock_conversations(const struct slaclock *clk)
{
	return sla_conversations(clk->sla);
}

size_t
slaclock_open_rounds(const struct slaclock *clk)
{
	return sla_open_rounds(clk->sla);
}

void
slaclock_free(struct slaclock *clk)
{
	if (clk == NULL)
		return;
	sla_free(clk->sla);	/* releases every conversation and its timer */
	sbuf_free(&clk->alert);
	sbuf_free(&clk->frame);
	free(clk);
}
