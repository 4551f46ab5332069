/* slaclock: the SLA engine on the loop and in Redis: turns in, deadlines on one precise timer, due events handed back. */
#include <sys/timerfd.h>

#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "chatmon/convstore.h"
#include "chatmon/dueheap.h"
#include "chatmon/log.h"
#include "chatmon/sla.h"
#include "chatmon/slaclock.h"

/*
 * Each conversation the engine holds has its next deadline in a heap
 * (dueheap), and one timerfd is armed at the earliest of them, as an
 * absolute time on the wall clock the deadlines are written in: never a
 * polling scan. The timer is set again only when a deadline comes before
 * the one it is set for, or when it fires; a deadline that moves later or
 * goes away leaves it be (it then fires once for nothing and is set to the
 * next). libevent's loop runs on its coarse clock (src/main.c): its own
 * precise timer re-arms a timerfd at every turn of the loop, one system
 * call per relayed frame, and SLA deadlines are the only timers whose
 * milliseconds matter.
 *
 * The clock says when an event is due and who raises it; the caller makes
 * the alert (src/pipeline.c) and carries it out. A conversation remembers
 * the session it was last seen on, so that the caller can tell that agent
 * of sla.warn and sla.breach. A disconnect or a shutdown ends nothing: the
 * customer still waits, and whoever serves the conversation next (this
 * instance or another) finds its round open.
 *
 * With the store up (convstore: Redis is the source of truth), the engine
 * is a cache: each turn, end and event also goes to Redis, whose answer
 * is written back into the engine, and only what Redis says this instance
 * closed, ended or raised is charged to the figures and published, so
 * that instances sharing conversations count each round once. Should
 * Redis not answer, what the engine did alone counts (fail open).
 */

struct slaclock_conv {
	struct slaclock		*clk;
	struct sla_conv		*conv;
	struct dueheap_node	 due;		/* in clk->heap while it has a deadline */
	struct slaclock_peer	*peer;		/* weak: unlinked when the session closes */
	int			 overdue;	/* taken over: its deadline was past when it came */
	struct slaclock_conv	*prev, *next;	/* the peer's conversations */
};

struct slaclock {
	struct event_base	*base;
	struct sla		*sla;
	struct metrics		*metrics;
	slaclock_due_cb		 due;
	slaclock_idle_cb	 idle;
	void			*arg;
	struct dueheap		 heap;		/* the held conversations' deadlines */
	int			 tfd;		/* timerfd on CLOCK_REALTIME, or -1 */
	struct event		*tev;
	int64_t			 armed;		/* wall ms tfd is set for; INT64_MAX: not set */
	struct convstore	*store;
	int			 shared;	/* the engine's current call: the store decides */
};

enum slaclock_op_kind {
	SLACLOCK_OP_TURN,
	SLACLOCK_OP_END,
	SLACLOCK_OP_FIRE,	/* raise the event if Redis says it is ours */
	SLACLOCK_OP_MARK,	/* raised while Redis was away: only tell Redis */
};

/* A call to the store in flight, and what the engine did alone meanwhile. */
struct slaclock_op {
	struct slaclock		*clk;
	enum slaclock_op_kind	 kind;
	int			 shared;	/* made with Redis up: its answer is charged */
	int			 charge;	/* a round the engine closed or ended, not charged */
	int			 unheld;	/* a round the engine did not hold: Redis's is charged */
	int			 answered, first;
	int64_t			 opened, at;
	struct sla_event	 ev;		/* FIRE: its strings point below */
	char			*agent;		/* into buf */
	char			*shop;		/* the conversation's, into buf */
	char			*queue;
	size_t			 len;
	char			 buf[];		/* the id, agent, shop and queue, each NUL-ended */
};

static void	slaclock_arm(struct slaclock_conv *);
static int	slaclock_finish(struct slaclock *, struct sla_conv *, int64_t now,
		    int idle);
static void	slaclock_claim(const char *, size_t,
		    const struct convstore_reply *, void *);

static void
slaclock_unlink(struct slaclock_conv *c)
{
	if (c->peer == NULL)
		return;
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		c->peer->convs = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	c->prev = c->next = NULL;
	c->peer = NULL;
}

static void
slaclock_link(struct slaclock_conv *c, struct slaclock_peer *peer)
{
	if (c->peer == peer || peer == NULL)
		return;
	slaclock_unlink(c);
	c->peer = peer;
	c->next = peer->convs;
	if (c->next != NULL)
		c->next->prev = c;
	peer->convs = c;
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
	dueheap_del(&c->clk->heap, &c->due);
	free(c);
}

/*
 * Hands e back to the caller; the agent can only be told while the
 * conversation is held here and its session is connected.
 */
static void
slaclock_hand(struct slaclock *clk, const struct sla_event *e, unsigned how)
{
	struct sla_conv		*conv;
	struct slaclock_conv	*c = NULL;

	if (how & SLACLOCK_TELL) {
		if ((conv = sla_find(clk->sla, e->conversation,
		    e->conversation_len)) != NULL)
			c = sla_conv_udata(conv);
		if (c == NULL || c->peer == NULL)
			how &= ~(unsigned)SLACLOCK_TELL;
	}
	if (how != 0)
		clk->due(e, how, c != NULL ? c->peer : NULL, clk->arg);
}

/* Before each call into the engine: whether the store decides this one. */
static void
slaclock_begin(struct slaclock *clk)
{
	clk->shared = convstore_up(clk->store);
	sla_set_charging(clk->sla, !clk->shared);
}

static struct slaclock_op *
slaclock_op_new(struct slaclock *clk, enum slaclock_op_kind kind,
    const char *id, size_t len, const char *agent, const char *shop,
    const char *queue)
{
	struct slaclock_op	*op;
	size_t			 alen = strlen(agent), slen = strlen(shop);
	size_t			 qlen = strlen(queue);

	if ((op = calloc(1, sizeof(*op) + len + alen + slen + qlen + 4)) ==
	    NULL) {
		log_warnx("slaclock_op_new: out of memory, counted here alone");
		return NULL;
	}
	op->clk = clk;
	op->kind = kind;
	op->shared = clk->shared;
	op->len = len;
	memcpy(op->buf, id, len);
	op->agent = op->buf + len + 1;
	memcpy(op->agent, agent, alen);
	op->shop = op->agent + alen + 1;
	memcpy(op->shop, shop, slen);
	op->queue = op->shop + slen + 1;
	memcpy(op->queue, queue, qlen);
	return op;
}

static void	slaclock_on_store(const struct convstore_reply *, void *);

/* A round of op's conversation into the figures, once. */
static void
slaclock_charge(struct slaclock *clk, const struct slaclock_op *op,
    const char *agent, const char *shop, const char *queue, int answered,
    int64_t opened, int64_t at, int first)
{
	struct sla_round	r;

	memset(&r, 0, sizeof(r));
	r.agent = agent;
	r.shop = shop;
	r.queue = queue;
	r.conversation = op->buf;
	r.conversation_len = op->len;
	r.opened = opened;
	r.at = at;
	r.answered = answered;
	r.first = first;
	sla_charge_round(clk->sla, &r);
}

/* What the engine did alone counts: the store never answered op. */
static void
slaclock_op_alone(struct slaclock_op *op)
{
	struct slaclock	*clk = op->clk;

	if (op->kind == SLACLOCK_OP_FIRE) {
		/* the agent was told already */
		slaclock_hand(clk, &op->ev, SLACLOCK_PUBLISH);
		sla_charge_event(clk->sla, op->ev.agent, op->shop, op->queue,
		    op->ev.type, op->ev.due);
	} else if (op->kind != SLACLOCK_OP_MARK && op->charge)
		slaclock_charge(clk, op, op->agent, op->shop, op->queue,
		    op->answered, op->opened, op->at, op->first);
}

/* Sends op (made by the caller for kind): on failure what the engine did counts now. */
static void
slaclock_op_sent(struct slaclock_op *op, int rc)
{
	if (rc == 0)
		return;
	slaclock_op_alone(op);
	free(op);
}

/*
 * The engine emits e. The agent held here is told at once: a warning that
 * waited for Redis would come late, and its id is the same whoever raises
 * it. With Redis up, Redis first says who raises it to the supervisors;
 * while it is away, an alert cannot wait: it is raised here, and Redis is
 * told when it is back, so that nobody raises it again.
 */
static void
slaclock_emit(const struct sla_event *e, void *arg)
{
	struct slaclock		*clk = arg;
	struct slaclock_op	*op;
	struct sla_conv_state	 held;

	/* without Redis deciding, the engine charged it */
	slaclock_hand(clk, e, SLACLOCK_TELL | (clk->shared ? 0 : SLACLOCK_PUBLISH));
	if (!convstore_on(clk->store))
		return;
	if ((op = slaclock_op_new(clk, clk->shared ? SLACLOCK_OP_FIRE :
	    SLACLOCK_OP_MARK, e->conversation, e->conversation_len,
	    e->agent, e->shop, e->queue)) == NULL) {
		if (clk->shared) {
			slaclock_hand(clk, e, SLACLOCK_PUBLISH);
			sla_charge_event(clk->sla, e->agent, e->shop, e->queue,
			    e->type, e->due);
		}
		return;
	}
	op->ev = *e;
	op->ev.conversation = op->buf;
	op->ev.agent = op->agent;
	op->ev.shop = op->shop;
	op->ev.queue = op->queue;
	op->ev.conv = NULL;
	sla_conv_get(e->conv, &held);
	held.opened = e->opened;
	slaclock_op_sent(op, convstore_fire(clk->store, op->buf, op->len,
	    e->type, &held, e->agent, e->shop, e->queue, slaclock_on_store, op));
}

/* c's deadline has come (it is out of the heap). */
static void
slaclock_fire(struct slaclock_conv *c, int64_t now_us)
{
	struct metrics		*m = c->clk->metrics;
	int64_t			 now = now_us / 1000;
	int64_t			 d = sla_conv_deadline(c->conv);
	/* d came due (d <= now): its microseconds cannot overflow */
	int64_t			 late = d >= 0 && d <= now ? now_us - d * 1000 : 0;

	/*
	 * How late the loop runs the timers: the figure the SLA promise rests
	 * on. A deadline taken over from a dead instance was late before it
	 * came here, and says nothing about this loop.
	 */
	if (late < 0)
		late = 0;
	if (!c->overdue) {
		m->sla_timer_fires++;
		m->sla_timer_late_sum_us += (uint64_t)late;
		if ((uint64_t)late > m->sla_timer_late_max_us)
			m->sla_timer_late_max_us = (uint64_t)late;
		if (late > 10000)
			m->sla_timer_late_over_10ms++;
	}
	c->overdue = 0;
	slaclock_begin(c->clk);
	if (slaclock_finish(c->clk, c->conv, now, 1) == 0)
		slaclock_arm(c);	/* else it ended and c is gone */
}

/* Sets the timer for wall time ms (a past one fires at once). */
static void
slaclock_timer_set(struct slaclock *clk, int64_t ms)
{
	struct itimerspec	its;

	memset(&its, 0, sizeof(its));
	its.it_value.tv_sec = (time_t)(ms / 1000);
	its.it_value.tv_nsec = (long)(ms % 1000 * 1000000);
	if (ms <= 0)
		its.it_value.tv_nsec = 1;	/* 0 would disarm it */
	if (timerfd_settime(clk->tfd, TFD_TIMER_ABSTIME, &its, NULL) == -1) {
		log_warn("slaclock: timerfd_settime");
		return;
	}
	clk->armed = ms;
}

/* The earliest deadline has come: every conversation due now, then the timer again. */
static void
slaclock_tick(evutil_socket_t fd, short what, void *arg)
{
	struct slaclock		*clk = arg;
	struct dueheap_node	*top;
	struct slaclock_conv	*c;
	uint64_t		 expirations;
	int64_t			 now_us = util_wall_us();
	size_t			 budget = dueheap_size(&clk->heap);

	(void)what;
	if (read(fd, &expirations, sizeof(expirations)) == -1 &&
	    errno != EAGAIN)
		log_warn("slaclock: timerfd read");
	clk->armed = INT64_MAX;
	/*
	 * One pass over what is due now: a conversation set again at a time
	 * already past (taken over, late) fires on the next turn of the loop,
	 * as a timer of 0 would, not in a loop here.
	 */
	/* in ms: a due time from Redis may be anywhere in the engine's range */
	while ((top = dueheap_top(&clk->heap)) != NULL &&
	    top->due <= now_us / 1000 && budget-- > 0) {
		c = (struct slaclock_conv *)((char *)top -
		    offsetof(struct slaclock_conv, due));
		dueheap_del(&clk->heap, top);
		slaclock_fire(c, now_us);
	}
	if ((top = dueheap_top(&clk->heap)) != NULL && top->due < clk->armed)
		slaclock_timer_set(clk, top->due);
}

static void
slaclock_arm(struct slaclock_conv *c)
{
	struct slaclock	*clk = c->clk;
	int64_t		 d = sla_conv_deadline(c->conv);

	if (d == INT64_MAX) {
		dueheap_del(&clk->heap, &c->due);
		return;
	}
	if (dueheap_set(&clk->heap, &c->due, d) == -1) {
		log_warnx("slaclock_arm: out of memory, conversation not timed");
		return;
	}
	if (d < clk->armed)
		slaclock_timer_set(clk, d);
}

/* The shops' and queues' settings into the engine. */
static int
slaclock_policies(struct slaclock *clk, const struct config *cfg)
{
	struct sla_policy	*v;
	size_t			 n;
	int			 rc;

	if (sla_policies_from(cfg, &v, &n) == -1)
		return -1;
	rc = sla_set_policies(clk->sla, v, n);
	free(v);
	return rc;
}

struct slaclock *
slaclock_new(struct event_base *base, const struct config *cfg,
    struct metrics *m, uint32_t instance, slaclock_due_cb due,
    slaclock_idle_cb idle, void *arg, struct sbuf *errs)
{
	struct slaclock		*clk;
	struct sla_config	 s;

	if ((clk = calloc(1, sizeof(*clk))) == NULL)
		goto oom;
	clk->base = base;
	clk->metrics = m;
	clk->due = due;
	clk->idle = idle;
	clk->arg = arg;
	dueheap_init(&clk->heap);
	clk->armed = INT64_MAX;
	if ((clk->tfd = timerfd_create(CLOCK_REALTIME, TFD_NONBLOCK |
	    TFD_CLOEXEC)) == -1) {
		sbuf_line(errs, "slaclock_new: timerfd_create: %s",
		    strerror(errno));
		goto err;
	}
	if ((clk->tev = event_new(base, clk->tfd, EV_READ | EV_PERSIST,
	    slaclock_tick, clk)) == NULL || event_add(clk->tev, NULL) == -1)
		goto oom;
	sla_config_from(&s, &cfg->sla);
	if ((clk->sla = sla_new(&s, slaclock_emit, slaclock_release, clk)) == NULL)
		goto oom;
	if ((clk->store = convstore_new(base, cfg, instance, slaclock_claim,
	    clk, errs)) == NULL)
		goto err;
	if (slaclock_policies(clk, cfg) == -1)
		goto oom;
	return clk;
oom:
	sbuf_line(errs, "slaclock_new: out of memory");
err:
	slaclock_free(clk);
	return NULL;
}

void
slaclock_set_config(struct slaclock *clk, const struct config *cfg)
{
	struct sla_config	s;

	sla_config_from(&s, &cfg->sla);
	sla_set_config(clk->sla, &s);
	if (slaclock_policies(clk, cfg) == -1)
		log_warnx("slaclock_set_config: out of memory, the shops keep "
		    "their settings");
	convstore_set_config(clk->store, cfg);
}

/* c's record and timer, made on first sight; NULL on ENOMEM (conv then ends). */
static struct slaclock_conv *
slaclock_hold(struct slaclock *clk, struct sla_conv *conv, int64_t now)
{
	struct slaclock_conv	*c;

	if ((c = sla_conv_udata(conv)) != NULL)
		return c;
	if ((c = calloc(1, sizeof(*c))) == NULL) {
		log_warnx("slaclock_hold: out of memory, conversation not timed");
		sla_set_charging(clk->sla, 1);
		sla_end(clk->sla, conv, now);
		return NULL;
	}
	c->clk = clk;
	c->conv = conv;
	sla_conv_set_udata(conv, c);
	return c;
}

/*
 * Writes what the store answered about conversation id into the engine:
 * a turn's answer makes the conversation held here; other answers only
 * update one held here, or end it when Redis says it is over.
 */
static void
slaclock_sync(struct slaclock *clk, const char *id, size_t len, int turn,
    const struct convstore_reply *r)
{
	struct sla_conv		*conv = sla_find(clk->sla, id, len);
	struct slaclock_conv	*c;
	struct sla_conv_state	 st, held;
	int64_t			 now = util_wall_ms();

	slaclock_begin(clk);
	if (!r->exists) {
		if (conv != NULL) {
			sla_set_charging(clk->sla, 0);	/* charged where it ended */
			sla_end(clk->sla, conv, now);
		}
		return;
	}
	if (conv == NULL && !turn)
		return;
	st = r->st;
	if (conv != NULL) {
		/*
		 * An event raised here whose call is still on its way to Redis
		 * is raised all the same: an answer made before it came (a
		 * turn's, a sweep's under load) must not raise it again.
		 */
		sla_conv_get(conv, &held);
		if (held.open && st.open && held.opened == st.opened)
			st.fired |= held.fired;
	}
	if ((conv = sla_conv_put(clk->sla, id, len, r->agent, r->shop, r->queue,
	    &st)) == NULL) {
		log_warnx("slaclock_sync: out of memory, conversation not timed");
		return;
	}
	if ((c = slaclock_hold(clk, conv, now)) != NULL)
		slaclock_arm(c);
}

/*
 * A turn opened a round of another shop's conversation without deadlines
 * (convstore_plan): the engine, which took the record and its shop, plans
 * it by that shop, keeps the plan and gives it to Redis. The instance that
 * claims such a round, its turn's instance dead before it could plan it,
 * does the same.
 */
static void
slaclock_plan(struct slaclock *clk, const char *id, size_t len,
    const struct convstore_reply *r)
{
	struct sla_conv		*conv;
	struct slaclock_conv	*c;
	struct slaclock_op	*op;
	struct sla_conv_state	 st, plan;

	if ((conv = sla_find(clk->sla, id, len)) == NULL)
		return;
	sla_conv_get(conv, &st);
	if (!st.open || st.opened != r->st.opened)
		return;
	sla_round_plan(clk->sla, conv, st.first, st.opened, &plan);
	memcpy(st.due, plan.due, sizeof(st.due));
	memcpy(st.ms, plan.ms, sizeof(st.ms));
	/* the turn's idle end was by its connection's shop: no sooner than this */
	if (plan.idle_at > st.idle_at)
		st.idle_at = plan.idle_at;
	if ((conv = sla_conv_put(clk->sla, id, len, NULL, NULL, NULL, &st)) ==
	    NULL)
		return;
	if ((c = sla_conv_udata(conv)) != NULL)
		slaclock_arm(c);
	plan.opened = st.opened;
	if ((op = slaclock_op_new(clk, SLACLOCK_OP_TURN, id, len, "", "",
	    "")) != NULL)
		slaclock_op_sent(op, convstore_plan(clk->store, op->buf, op->len,
		    &plan, slaclock_on_store, op));
}

/*
 * A turn or an end closed or ended a round whose events fell due before
 * it and were never raised (no instance ran then, or none had swept it
 * yet: a conversation this instance never held, after a restart): Redis
 * marked them raised by this call, so they are raised here, once, to the
 * supervisors, with the ids and contents the sweep would have given them
 * (the agent who held the conversation then), and charged. An event the
 * engine raised itself was marked by its own call, sent before this one,
 * and is not among them.
 */
static void
slaclock_raised(struct slaclock *clk, const struct slaclock_op *op,
    const struct convstore_reply *r)
{
	struct sla_event	ev;
	size_t			i;

	for (i = 0; i < r->nraised; i++) {
		ev = r->raised[i];
		ev.conversation = op->buf;
		ev.conversation_len = op->len;
		ev.conv = NULL;		/* the record's shop and agent, as the sweep's */
		slaclock_hand(clk, &ev, SLACLOCK_PUBLISH);
		sla_charge_event(clk->sla, ev.agent, ev.shop, ev.queue, ev.type,
		    ev.due);
	}
}

static void
slaclock_on_store(const struct convstore_reply *r, void *priv)
{
	struct slaclock_op	*op = priv;
	struct slaclock		*clk = op->clk;

	if (!r->ok) {
		slaclock_op_alone(op);
		free(op);
		return;
	}
	if (op->kind == SLACLOCK_OP_FIRE && r->done && !r->stale) {
		/*
		 * the agent was told already; stale: below. Published and
		 * charged under the record's agent, as Redis logged it: the
		 * conversation may have gone to another agent through another
		 * instance since this one last saw it (a transfer), and a
		 * breach due after it is the new agent's.
		 */
		if (r->agent != NULL && *r->agent != '\0')
			op->ev.agent = r->agent;
		if (r->shop != NULL && *r->shop != '\0') {
			op->ev.shop = r->shop;
			op->ev.queue = r->queue != NULL ? r->queue : "";
		}
		slaclock_hand(clk, &op->ev, SLACLOCK_PUBLISH);
		sla_charge_event(clk->sla, op->ev.agent, op->ev.shop,
		    op->ev.queue, op->ev.type, op->ev.due);
	}
	slaclock_raised(clk, op, r);
	/*
	 * what happened while Redis was away was charged as it happened, but
	 * not what the engine never held
	 */
	if (r->charged && (op->shared || op->unheld))
		slaclock_charge(clk, op, r->charged_agent, r->charged_shop,
		    r->charged_queue, r->answered, r->opened, r->at, r->first);
	/*
	 * Redis ran it before, and its answer went with the connection: what
	 * the engine did counts, once (Redis logged the same round, or the
	 * same breach or escalation, then), if that run closed or ended the
	 * round (a fire is answered 2 only when its run raised the event): a
	 * reply whose round another instance's call had closed charges nothing
	 */
	if (r->stale && op->shared &&
	    (op->kind == SLACLOCK_OP_FIRE || r->stale_closed))
		slaclock_op_alone(op);
	slaclock_sync(clk, op->buf, op->len, op->kind == SLACLOCK_OP_TURN, r);
	if (r->other_shop)
		slaclock_plan(clk, op->buf, op->len, r);
	free(op);
}

/* Another instance left conversation id behind: take it over. */
static void
slaclock_claim(const char *id, size_t len, const struct convstore_reply *r,
    void *arg)
{
	struct slaclock		*clk = arg;
	struct sla_conv		*conv;
	struct slaclock_conv	*c;

	log_debug("slaclock_claim: a deadline left by its owner taken over");
	slaclock_sync(clk, id, len, 1, r);
	if ((conv = sla_find(clk->sla, id, len)) != NULL &&
	    (c = sla_conv_udata(conv)) != NULL)
		c->overdue = 1;
	if (r->unplanned)
		slaclock_plan(clk, id, len, r);
}

void
slaclock_turn(struct slaclock *clk, const struct pipeline_turn *t,
    struct slaclock_peer *where)
{
	struct sla_conv		*conv;
	struct slaclock_conv	*c;
	struct slaclock_op	*op = NULL;
	struct sla_conv_state	 before, first, later;
	const char		*shop, *queue;
	int64_t			 now = t->now_ms;
	int			 customer = t->customer, robot = t->robot;

	slaclock_begin(clk);
	before.open = 0;
	if ((conv = sla_find(clk->sla, t->conversation,
	    t->conversation_len)) != NULL)
		sla_conv_get(conv, &before);
	conv = sla_turn(clk->sla, t->conversation, t->conversation_len,
	    t->agent, t->shop, t->queue, customer, !robot, now);
	if (conv == NULL) {
		log_warnx("slaclock_turn: out of memory, turn not timed");
		return;
	}
	if ((c = slaclock_hold(clk, conv, now)) == NULL)
		return;
	slaclock_link(c, where);
	slaclock_arm(c);
	shop = sla_conv_shop(clk->sla, conv, &queue);
	if (!convstore_on(clk->store) || (op = slaclock_op_new(clk,
	    SLACLOCK_OP_TURN, t->conversation, t->conversation_len,
	    t->agent, shop, queue)) == NULL)
		return;
	if (!customer && !robot && before.open && clk->shared) {
		op->charge = op->answered = 1;
		op->opened = before.opened;
		op->first = before.first;
		op->at = now;
	}
	/*
	 * With Redis away the engine charges the rounds it closes; a round it
	 * did not hold (opened through another instance, or before a restart)
	 * only Redis closes, once the call goes: its answer is charged.
	 */
	if (!clk->shared && !before.open)
		op->unheld = 1;
	sla_round_plan(clk->sla, conv, 1, now, &first);
	sla_round_plan(clk->sla, conv, 0, now, &later);
	slaclock_op_sent(op, convstore_turn(clk->store, t->conversation,
	    t->conversation_len, t->agent, shop, queue,
	    robot ? CONVSTORE_OTHER :
	    customer ? CONVSTORE_CUSTOMER : CONVSTORE_REPLY,
	    util_fnv1a64(t->text, t->text_len),
	    &first, &later, sla_idle_at(clk->sla, conv, 0, now), now,
	    op->charge, slaclock_on_store, op));
}

/*
 * conv ends at `at` (an end frame, or idle when idle is set); with the
 * store up, Redis ends it too and says what to charge.
 */
static int
slaclock_finish(struct slaclock *clk, struct sla_conv *conv, int64_t now,
    int idle)
{
	struct slaclock_op	*op = NULL;
	struct sla_conv_state	 st;
	const char		*id, *shop, *queue;
	size_t			 len;
	int64_t			 at;
	int			 ended;

	sla_conv_get(conv, &st);
	at = idle || st.idle_at < now ? st.idle_at : now;
	if (convstore_on(clk->store) && (!idle || st.idle_at <= now)) {
		id = sla_conv_id(conv, &len);
		shop = sla_conv_shop(clk->sla, conv, &queue);
		if ((op = slaclock_op_new(clk, SLACLOCK_OP_END, id, len,
		    sla_conv_agent(clk->sla, conv), shop, queue)) != NULL &&
		    st.open &&
		    clk->shared) {
			op->charge = 1;
			op->opened = st.opened;
			op->first = st.first;
			op->at = at;
		}
	}
	if (idle && now >= st.idle_at && clk->idle != NULL) {
		id = sla_conv_id(conv, &len);	/* sla_expire ends it: told first */
		clk->idle(id, len, clk->arg);
	}
	if (idle)
		ended = sla_expire(clk->sla, conv, now);
	else {
		sla_end(clk->sla, conv, now);
		ended = 1;
	}
	if (op != NULL) {
		if (ended)
			slaclock_op_sent(op, convstore_end(clk->store, op->buf,
			    op->len, at, idle, op->charge, slaclock_on_store, op));
		else
			free(op);
	}
	return ended;
}

void
slaclock_end(struct slaclock *clk, const struct pipeline_turn *t)
{
	struct sla_conv		*conv;
	struct slaclock_op	*op;

	slaclock_begin(clk);
	if ((conv = sla_find(clk->sla, t->conversation, t->conversation_len)) != NULL) {
		(void)slaclock_finish(clk, conv, t->now_ms, 0);
		return;
	}
	/*
	 * Not held here (this instance restarted, or the conversation's turns
	 * came through another): Redis may hold it, a round open with its
	 * deadlines. It ends there, and its answer says what to charge.
	 */
	if (!convstore_on(clk->store) || (op = slaclock_op_new(clk,
	    SLACLOCK_OP_END, t->conversation, t->conversation_len, t->agent,
	    t->shop != NULL ? t->shop : "", t->queue != NULL ? t->queue : "")) == NULL)
		return;
	op->unheld = 1;
	slaclock_op_sent(op, convstore_end(clk->store, op->buf, op->len,
	    t->now_ms, 0, 0, slaclock_on_store, op));
}

void
slaclock_peer_closed(struct slaclock *clk, struct slaclock_peer *peer)
{
	(void)clk;
	/* the conversations go on without a session to tell */
	while (peer->convs != NULL)
		slaclock_unlink(peer->convs);
}

size_t
slaclock_inflight(const struct slaclock *clk)
{
	return convstore_pending(clk->store);
}

size_t
slaclock_connecting(const struct slaclock *clk)
{
	return convstore_connecting(clk->store);
}

size_t
slaclock_waiting(const struct slaclock *clk)
{
	return convstore_waiting(clk->store);
}

void
slaclock_hurry(struct slaclock *clk)
{
	convstore_hurry(clk->store);
}

static void
slaclock_figure(const struct sla_account *w, const struct sla_figures *f,
    void *arg)
{
	(void)arg;
	/* shop= and queue= only for a shop's: the line stays as it was without */
	log_info("slaclock: %s%s%s%s%s%sagent=%s rounds=%llu answered=%llu "
	    "mean_ms=%llu p90_ms=%llu first_mean_ms=%llu breaches=%llu "
	    "escalations=%llu rate=%.3f", w->shop[0] ? "shop=" : "", w->shop,
	    w->shop[0] ? " " : "", w->queue[0] ? "queue=" : "", w->queue,
	    w->queue[0] ? " " : "", w->agent[0] ? w->agent : "-",
	    (unsigned long long)f->rounds,
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

/*
 * Every agent's figures and its labels, made once a scrape (eight
 * families read them): the scrape runs on the loop every chat waits for.
 */
struct slaclock_row {
	struct sla_figures	 f;
	size_t			 lab, lablen;	/* its {shop=..,queue=..,agent=..} in labels */
};

struct slaclock_rows {
	struct slaclock_row	*v;
	size_t			 n, cap;
	struct sbuf		 labels;
	int			 err;
};

/* How a figure is written: exactly, whatever its size (%g kept six digits). */
enum slaclock_unit { SLACLOCK_COUNT, SLACLOCK_MS, SLACLOCK_SHARE };

static const struct {
	const char	*name, *kind, *help;
	enum slaclock_unit unit;
} slaclock_figures[] = {
	{ "agent_rounds_total", "counter", "Rounds closed or ended, per agent", SLACLOCK_COUNT },
	{ "agent_answered_total", "counter", "Rounds answered, per agent", SLACLOCK_COUNT },
	{ "agent_response_mean_seconds", "gauge", "Mean response time (capped; unanswered = cap), per agent", SLACLOCK_MS },
	{ "agent_response_p90_seconds", "gauge", "p90 response time (capped; unanswered = cap), per agent", SLACLOCK_MS },
	{ "agent_first_response_mean_seconds", "gauge", "Mean first response time, per agent", SLACLOCK_MS },
	{ "agent_breaches_total", "counter", "SLA breaches, per agent", SLACLOCK_COUNT },
	{ "agent_escalations_total", "counter", "SLA escalations, per agent", SLACLOCK_COUNT },
	{ "agent_reply_rate", "gauge", "Share of rounds answered within sla.rate, per agent", SLACLOCK_SHARE },
};

/* Milliseconds as seconds, every digit kept. */
static int
slaclock_seconds(struct sbuf *out, uint64_t ms)
{
	return sbuf_printf(out, "%" PRIu64 ".%03" PRIu64, ms / 1000, ms % 1000);
}

static void
slaclock_row_add(const struct sla_account *w, const struct sla_figures *f,
    void *arg)
{
	struct slaclock_rows	*r = arg;
	struct slaclock_row	*nv;

	if (r->err)
		return;
	if (r->n == r->cap) {
		if ((nv = reallocarray(r->v, r->cap ? r->cap * 2 : 64,
		    sizeof(*nv))) == NULL) {
			r->err = 1;
			return;
		}
		r->v = nv;
		r->cap = r->cap ? r->cap * 2 : 64;
	}
	r->v[r->n].f = *f;
	r->v[r->n].lab = r->labels.len;
	if (sbuf_append(&r->labels, "{", 1) == -1 ||
	    (w->shop[0] != '\0' && (sbuf_append(&r->labels, "shop=\"", 6) == -1 ||
	    slaclock_label(&r->labels, w->shop) == -1 ||
	    sbuf_append(&r->labels, "\",", 2) == -1)) ||
	    (w->queue[0] != '\0' && (sbuf_append(&r->labels, "queue=\"", 7) == -1 ||
	    slaclock_label(&r->labels, w->queue) == -1 ||
	    sbuf_append(&r->labels, "\",", 2) == -1)) ||
	    sbuf_append(&r->labels, "agent=\"", 7) == -1 ||
	    slaclock_label(&r->labels, w->agent) == -1 ||
	    sbuf_append(&r->labels, "\"} ", 3) == -1) {
		r->err = 1;
		return;
	}
	r->v[r->n].lablen = r->labels.len - r->v[r->n].lab;
	r->n++;
}

/* One agent's figure `field` as a line (name: chatmon_NAME, its length); -1 on ENOMEM. */
static int
slaclock_prom_agent(struct sbuf *out, const struct slaclock_rows *rows,
    const struct slaclock_row *r, int field, const char *name, size_t nlen)
{
	const struct sla_figures *f = &r->f;
	const uint64_t		 v[] = { f->rounds, f->answered, f->mean_ms,
				    f->p90_ms, f->first_mean_ms, f->breaches,
				    f->escalations, 0 };
	enum slaclock_unit	 u = slaclock_figures[field].unit;

	if (sbuf_append(out, name, nlen) == -1 ||
	    sbuf_append(out, rows->labels.s + r->lab, r->lablen) == -1 ||
	    (u == SLACLOCK_SHARE ? sbuf_printf(out, "%.6f\n", f->rate) :
	    u == SLACLOCK_MS ? sbuf_printf(out, "%" PRIu64 ".%03" PRIu64 "\n",
	    v[field] / 1000, v[field] % 1000) :
	    sbuf_printf(out, "%" PRIu64 "\n", v[field])) == -1)
		return -1;
	return 0;
}

int
slaclock_metrics(const struct slaclock *clk, struct sbuf *out)
{
	static const uint64_t	 bounds[] = { 5000, 10000, 15000, 30000, 60000,
				    120000, 180000, 300000, 600000 };
	uint64_t		 counts[UTIL_NELEM(bounds)], sum, total;
	struct slaclock_rows	 rows;
	char			 name[64];
	size_t			 i, k, nlen;
	int			 field, rc = -1;

	if (sbuf_printf(out, "# HELP chatmon_sla_open_rounds Rounds waiting for a reply\n"
	    "# TYPE chatmon_sla_open_rounds gauge\nchatmon_sla_open_rounds %zu\n"
	    "# HELP chatmon_sla_conversations Conversations being timed\n"
	    "# TYPE chatmon_sla_conversations gauge\nchatmon_sla_conversations %zu\n"
	    "# HELP chatmon_sla_agents Agents (by shop and queue) whose figures are kept, "
	    "at most %d\n"
	    "# TYPE chatmon_sla_agents gauge\nchatmon_sla_agents %zu\n"
	    "# HELP chatmon_redis_state_calls_waiting Turns, ends and events waiting "
	    "for Redis to reach the conversations' state\n"
	    "# TYPE chatmon_redis_state_calls_waiting gauge\n"
	    "chatmon_redis_state_calls_waiting %zu\n",
	    sla_open_rounds(clk->sla), sla_conversations(clk->sla),
	    SLA_MAX_AGENTS, sla_agent_entries(clk->sla),
	    convstore_waiting(clk->store)) == -1)
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
	    "\nchatmon_sla_response_seconds_sum ", total) == -1 ||
	    slaclock_seconds(out, sum) == -1 ||
	    sbuf_printf(out, "\nchatmon_sla_response_seconds_count %" PRIu64 "\n",
	    total) == -1)
		return -1;
	/*
	 * each agent's figures once (a p90 walks its histogram), not once a
	 * family: the scrape runs on the loop every chat waits for
	 */
	memset(&rows, 0, sizeof(rows));
	sbuf_init(&rows.labels);
	sla_agents(clk->sla, slaclock_row_add, &rows);
	if (rows.err)
		goto out;
	for (field = 0; (size_t)field < UTIL_NELEM(slaclock_figures); field++) {
		if (sbuf_printf(out, "# HELP chatmon_%s %s\n# TYPE chatmon_%s %s\n",
		    slaclock_figures[field].name, slaclock_figures[field].help,
		    slaclock_figures[field].name, slaclock_figures[field].kind) == -1)
			goto out;
		nlen = (size_t)snprintf(name, sizeof(name), "chatmon_%s",
		    slaclock_figures[field].name);
		for (k = 0; k < rows.n; k++)
			if (slaclock_prom_agent(out, &rows, &rows.v[k], field, name,
			    nlen) == -1)
				goto out;
	}
	rc = 0;
out:
	free(rows.v);
	sbuf_free(&rows.labels);
	return rc;
}

int
slaclock_conv_shop(const struct slaclock *clk, const char *id, size_t len,
    const char **shop, const char **queue)
{
	struct sla_conv	*conv;

	if ((conv = sla_find(clk->sla, id, len)) == NULL)
		return 0;
	*shop = sla_conv_shop(clk->sla, conv, queue);
	return 1;
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
	/* calls still in flight count as the engine did them, while it is here */
	convstore_free(clk->store);
	sla_free(clk->sla);	/* releases every conversation and its deadline; charges nothing */
	dueheap_free(&clk->heap);
	if (clk->tev != NULL)
		event_free(clk->tev);
	if (clk->tfd != -1)
		close(clk->tfd);
	free(clk);
}
