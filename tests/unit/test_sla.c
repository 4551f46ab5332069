/* test_sla: rounds, deadlines in service time and per-agent figures, on a fake clock. */
#include <malloc.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include "allocfail.h"

#include "chatmon/sla.h"

#define SEC	1000LL
#define MIN	(60 * SEC)
#define HOUR	(60 * MIN)
#define DAY	(24 * HOUR)
#define T0	1795305600000LL		/* 2026-11-22 00:00:00 UTC, a midnight */
#define NELEM(a)	(sizeof(a) / sizeof((a)[0]))
#define HM(h, m) ((uint16_t)((h) * 60 + (m)))

/* What the callbacks saw. */
struct rec_ev {
	enum sla_event_type	type;
	char			conv[64];
	size_t			conv_len;
	char			agent[32];
	char			shop[32];
	char			queue[32];
	int			first;
	uint64_t		waited;
	uint64_t		threshold;
	int64_t			due;
	int64_t			opened;
};

#define MAXEV	256
#define MAXREL	200000

static struct rec_ev	evs[MAXEV];
static size_t		nev;
static size_t		nrelease;
static void		*last_udata;
static unsigned char	released[MAXREL + 1];	/* by udata, 1..MAXREL */

static void
on_emit(const struct sla_event *e, void *arg)
{
	struct rec_ev	*r;
	size_t		 n;

	(void)arg;
	assert_non_null(e->conv);
	if (nev == MAXEV)
		return;
	r = &evs[nev++];
	memset(r, 0, sizeof(*r));
	r->type = e->type;
	n = e->conversation_len < sizeof(r->conv) ? e->conversation_len :
	    sizeof(r->conv);
	memcpy(r->conv, e->conversation, n);
	r->conv_len = e->conversation_len;
	snprintf(r->agent, sizeof(r->agent), "%s", e->agent);
	snprintf(r->shop, sizeof(r->shop), "%s", e->shop);
	snprintf(r->queue, sizeof(r->queue), "%s", e->queue);
	r->first = e->first;
	r->waited = e->waited_ms;
	r->threshold = e->threshold_ms;
	r->due = e->due;
	r->opened = e->opened;
}

static void
on_release(struct sla_conv *c, void *udata, void *arg)
{
	uintptr_t	u = (uintptr_t)udata;

	(void)arg;
	assert_non_null(c);
	assert_ptr_equal(sla_conv_udata(c), udata);
	nrelease++;
	last_udata = udata;
	if (u >= 1 && u <= MAXREL) {
		assert_int_equal(released[u], 0);	/* once per conversation */
		released[u] = 1;
	}
}

static int
reset(void **state)
{
	(void)state;
	nev = 0;
	nrelease = 0;
	last_udata = NULL;
	memset(released, 0, sizeof(released));
	allocfail_after = -1;
	return 0;
}

/* The defaults of a shop without service hours. */
static void
base_cfg(struct sla_config *c)
{
	memset(c, 0, sizeof(*c));
	c->first_response_ms = 15 * SEC;
	c->reply_ms = 30 * SEC;
	c->warn_at = 0.8;
	c->escalate_ms = 180 * SEC;
	c->idle_ms = 30 * MIN;
	c->cap_ms = 600 * SEC;
	c->rate_ms = 180 * SEC;
}

static void
add_hours(struct sla_config *c, uint16_t from, uint16_t to)
{
	c->hours[c->nhours].from_min = from;
	c->hours[c->nhours].to_min = to;
	c->nhours++;
}

static struct sla *
new_sla(const struct sla_config *c)
{
	struct sla	*s = sla_new(c, on_emit, on_release, NULL);

	assert_non_null(s);
	return s;
}

static struct sla_conv *
turn(struct sla *s, const char *id, const char *agent, int customer,
    int counts, int64_t t)
{
	struct sla_conv	*c;

	c = sla_turn(s, id, strlen(id), agent, NULL, NULL, customer, counts, t);
	assert_non_null(c);
	return c;
}

#define CUST(s, id, t)		turn(s, id, "", 1, 1, t)
#define REPLY(s, id, a, t)	turn(s, id, a, 0, 1, t)
#define ROBOT(s, id, a, t)	turn(s, id, a, 0, 0, t)

static struct sla_conv *
find(struct sla *s, const char *id)
{
	return sla_find(s, id, strlen(id));
}

/* A timely daemon: calls sla_expire at every deadline up to t. 1 if c ended. */
static int
run_until(struct sla *s, struct sla_conv *c, int64_t t)
{
	int64_t	 d;

	while ((d = sla_conv_deadline(c)) <= t)
		if (sla_expire(s, c, d))
			return 1;
	return 0;
}

/* The figures sla_agents reports, collected. */
struct rec_fig {
	char			agent[32];
	char			shop[32];
	char			queue[32];
	struct sla_figures	f;
};
static struct rec_fig	figs[64];
static size_t		nfigs;

static void
on_agent(const struct sla_account *w, const struct sla_figures *f, void *arg)
{
	const char	*agent = w->agent;
	(void)arg;
	assert_true(nfigs < NELEM(figs));
	snprintf(figs[nfigs].agent, sizeof(figs[nfigs].agent), "%s", agent);
	snprintf(figs[nfigs].shop, sizeof(figs[nfigs].shop), "%s", w->shop);
	snprintf(figs[nfigs].queue, sizeof(figs[nfigs].queue), "%s", w->queue);
	figs[nfigs++].f = *f;
}

static struct sla_figures
fig(const struct sla *s, const char *agent)
{
	struct sla_figures	none;
	size_t			i;

	nfigs = 0;
	sla_agents(s, on_agent, NULL);
	for (i = 0; i < nfigs; i++)
		if (strcmp(figs[i].agent, agent) == 0)
			return figs[i].f;
	memset(&none, 0, sizeof(none));
	return none;
}

static void
check_ev(size_t i, enum sla_event_type type, const char *conv,
    const char *agent, int first, uint64_t waited, uint64_t threshold,
    int64_t due, int64_t opened)
{
	assert_true(i < nev);
	assert_int_equal(evs[i].type, type);
	assert_int_equal(evs[i].conv_len, strlen(conv));
	assert_memory_equal(evs[i].conv, conv, strlen(conv));
	assert_string_equal(evs[i].agent, agent);
	assert_int_equal(evs[i].first, first);
	assert_int_equal(evs[i].waited, waited);
	assert_int_equal(evs[i].threshold, threshold);
	assert_int_equal(evs[i].due, due);
	assert_int_equal(evs[i].opened, opened);
}

/* --- rounds ------------------------------------------------------------- */

static void
test_burst_is_one_round(void **state)
{
	struct sla_config	 cfg;
	struct sla		*s;
	struct sla_conv		*c;
	struct sla_figures	 f;

	(void)state;
	base_cfg(&cfg);
	s = new_sla(&cfg);
	c = CUST(s, "c-1", T0);
	assert_int_equal(sla_open_rounds(s), 1);
	/* later turns of the burst neither restart the round nor add one */
	assert_ptr_equal(CUST(s, "c-1", T0 + 4 * SEC), c);
	assert_ptr_equal(CUST(s, "c-1", T0 + 9 * SEC), c);
	assert_int_equal(sla_conv_wait(s, c, T0 + 10 * SEC), 10 * SEC);
	assert_int_equal(sla_open_rounds(s), 1);
	REPLY(s, "c-1", "alice", T0 + 11 * SEC);
	assert_int_equal(sla_open_rounds(s), 0);
	assert_int_equal(sla_conv_wait(s, c, T0 + 12 * SEC), 0);
	/* the second burst is one more round, a later one */
	CUST(s, "c-1", T0 + 20 * SEC);
	CUST(s, "c-1", T0 + 25 * SEC);
	REPLY(s, "c-1", "alice", T0 + 40 * SEC);
	assert_int_equal(nev, 0);

	f = fig(s, "alice");
	assert_int_equal(f.rounds, 2);
	assert_int_equal(f.answered, 2);
	assert_int_equal(f.mean_ms, (11 * SEC + 20 * SEC) / 2);
	assert_int_equal(f.first_rounds, 1);
	assert_int_equal(f.first_mean_ms, 11 * SEC);
	assert_int_equal(f.within_rate, 2);
	assert_int_equal(sla_conversations(s), 1);
	sla_free(s);
	assert_int_equal(nrelease, 1);
}

/* Deadlines of the first and of a later round: warn, breach, escalate. */
static void
test_first_vs_later(void **state)
{
	static const struct {
		int		later;
		uint64_t	first_ms, reply_ms;
		int64_t		warn, breach;	/* after the open */
	} tab[] = {
		{ 0, 15 * SEC, 30 * SEC, 12 * SEC, 15 * SEC },
		{ 1, 15 * SEC, 30 * SEC, 24 * SEC, 30 * SEC },
		{ 0, 10 * SEC, 60 * SEC, 8 * SEC, 10 * SEC },
		{ 1, 10 * SEC, 60 * SEC, 48 * SEC, 60 * SEC },
	};
	struct sla_config	 cfg;
	struct sla		*s;
	struct sla_conv		*c;
	int64_t			 t;
	size_t			 i;

	(void)state;
	for (i = 0; i < NELEM(tab); i++) {
		reset(NULL);
		base_cfg(&cfg);
		cfg.first_response_ms = tab[i].first_ms;
		cfg.reply_ms = tab[i].reply_ms;
		s = new_sla(&cfg);
		t = T0;
		if (tab[i].later) {
			CUST(s, "c", t);
			REPLY(s, "c", "a", t + SEC);
			t += MIN;
		}
		c = turn(s, "c", "a", 1, 1, t);
		assert_int_equal(sla_conv_deadline(c), t + tab[i].warn);
		assert_int_equal(run_until(s, c, t + 10 * MIN), 0);
		assert_int_equal(nev, 3);
		check_ev(0, SLA_WARN, "c", "a", !tab[i].later,
		    (uint64_t)tab[i].warn, tab[i].later ? tab[i].reply_ms :
		    tab[i].first_ms, t + tab[i].warn, t);
		check_ev(1, SLA_BREACH, "c", "a", !tab[i].later,
		    (uint64_t)tab[i].breach, (uint64_t)tab[i].breach,
		    t + tab[i].breach, t);
		check_ev(2, SLA_ESCALATE, "c", "a", !tab[i].later, 180 * SEC,
		    180 * SEC, t + 180 * SEC, t);
		sla_free(s);
	}
}

/* Each event once, in order, at its deadline; then only the idle end is left. */
static void
test_events_in_order_once(void **state)
{
	struct sla_config	 cfg;
	struct sla		*s;
	struct sla_conv		*c;

	(void)state;
	base_cfg(&cfg);
	s = new_sla(&cfg);
	c = turn(s, "c-9", "bob", 1, 1, T0);
	sla_conv_set_udata(c, (void *)(uintptr_t)7);
	assert_int_equal(sla_conv_deadline(c), T0 + 12 * SEC);
	/* early: nothing */
	assert_int_equal(sla_expire(s, c, T0 + 12 * SEC - 1), 0);
	assert_int_equal(nev, 0);
	assert_int_equal(sla_expire(s, c, T0 + 12 * SEC), 0);
	assert_int_equal(nev, 1);
	assert_int_equal(sla_expire(s, c, T0 + 12 * SEC), 0);
	assert_int_equal(sla_expire(s, c, T0 + 14 * SEC), 0);
	assert_int_equal(nev, 1);
	assert_int_equal(sla_conv_deadline(c), T0 + 15 * SEC);
	assert_int_equal(sla_expire(s, c, T0 + 15 * SEC), 0);
	assert_int_equal(sla_conv_deadline(c), T0 + 180 * SEC);
	assert_int_equal(sla_expire(s, c, T0 + 180 * SEC), 0);
	assert_int_equal(nev, 3);
	check_ev(0, SLA_WARN, "c-9", "bob", 1, 12 * SEC, 15 * SEC,
	    T0 + 12 * SEC, T0);
	check_ev(1, SLA_BREACH, "c-9", "bob", 1, 15 * SEC, 15 * SEC,
	    T0 + 15 * SEC, T0);
	check_ev(2, SLA_ESCALATE, "c-9", "bob", 1, 180 * SEC, 180 * SEC,
	    T0 + 180 * SEC, T0);
	/* the idle end is the last deadline */
	assert_int_equal(sla_conv_deadline(c), T0 + 30 * MIN);
	assert_int_equal(sla_expire(s, c, T0 + 30 * MIN - 1), 0);
	assert_int_equal(sla_expire(s, c, T0 + 30 * MIN), 1);
	assert_int_equal(nev, 3);
	assert_int_equal(nrelease, 1);
	assert_ptr_equal(last_udata, (void *)(uintptr_t)7);
	assert_int_equal(fig(s, "bob").breaches, 1);
	assert_int_equal(fig(s, "bob").escalations, 1);
	sla_free(s);
	assert_int_equal(nrelease, 1);

	/* a first response slower than the escalation: time order wins */
	reset(NULL);
	cfg.first_response_ms = 200 * SEC;
	s = new_sla(&cfg);
	c = turn(s, "slow", "bob", 1, 1, T0);
	assert_int_equal(sla_expire(s, c, T0 + 10 * MIN), 0);
	assert_int_equal(nev, 3);
	check_ev(0, SLA_WARN, "slow", "bob", 1, 160 * SEC, 200 * SEC,
	    T0 + 160 * SEC, T0);
	check_ev(1, SLA_ESCALATE, "slow", "bob", 1, 180 * SEC, 180 * SEC,
	    T0 + 180 * SEC, T0);
	check_ev(2, SLA_BREACH, "slow", "bob", 1, 200 * SEC, 200 * SEC,
	    T0 + 200 * SEC, T0);
	sla_free(s);
}

/* A reply cancels what is still to come, whether the caller was timely or not. */
static void
test_reply_cancels(void **state)
{
	static const struct {
		int64_t		reply;
		size_t		nev;
		uint64_t	breaches, escalations;
	} tab[] = {
		{ 5 * SEC, 0, 0, 0 },
		{ 12 * SEC - 1, 0, 0, 0 },
		{ 12 * SEC, 1, 0, 0 },		/* due at now: emitted first */
		{ 13 * SEC, 1, 0, 0 },
		{ 15 * SEC - 1, 1, 0, 0 },
		{ 20 * SEC, 2, 1, 0 },
		{ 179 * SEC, 2, 1, 0 },
		{ 200 * SEC, 3, 1, 1 },
	};
	struct sla_config	 cfg;
	struct sla		*s;
	struct sla_conv		*c;
	struct sla_figures	 f;
	size_t			 i;
	int			 timely;

	(void)state;
	base_cfg(&cfg);
	for (timely = 0; timely < 2; timely++)
		for (i = 0; i < NELEM(tab); i++) {
			reset(NULL);
			s = new_sla(&cfg);
			c = turn(s, "c", "alice", 1, 1, T0);
			if (timely)
				assert_int_equal(run_until(s, c,
				    T0 + tab[i].reply - 1), 0);
			REPLY(s, "c", "alice", T0 + tab[i].reply);
			assert_int_equal(nev, tab[i].nev);
			assert_int_equal(sla_conv_deadline(c), T0 + tab[i].reply +
			    30 * MIN);
			assert_int_equal(run_until(s, c, T0 + 29 * MIN), 0);
			assert_int_equal(nev, tab[i].nev);	/* cancelled */
			f = fig(s, "alice");
			assert_int_equal(f.rounds, 1);
			assert_int_equal(f.mean_ms, (uint64_t)tab[i].reply);
			assert_int_equal(f.breaches, tab[i].breaches);
			assert_int_equal(f.escalations, tab[i].escalations);
			sla_free(s);
		}
}

/*
 * A robot's turn from the backend's side (the platform's greeting) opens
 * no round: the buyer's own message does, and is timed from itself.
 */
static void
test_robot_greeting_opens_nothing(void **state)
{
	struct sla_config	 cfg;
	struct sla		*s;
	struct sla_conv		*c;
	struct sla_figures	 f;

	(void)state;
	base_cfg(&cfg);
	s = new_sla(&cfg);
	c = turn(s, "c", "alice", 1, 0, T0);
	assert_int_equal(sla_open_rounds(s), 0);
	assert_int_equal(run_until(s, c, T0 + 20 * SEC), 0);
	assert_int_equal(nev, 0);
	CUST(s, "c", T0 + 30 * SEC);
	assert_int_equal(sla_open_rounds(s), 1);
	REPLY(s, "c", "alice", T0 + 35 * SEC);
	f = fig(s, "alice");
	assert_int_equal(f.rounds, 1);
	assert_int_equal(f.first_rounds, 1);
	assert_int_equal(f.mean_ms, 5 * SEC);
	sla_free(s);
}

/* A robot's or auto-reply's turn keeps the round open. */
static void
test_robot_reply_does_not_close(void **state)
{
	struct sla_config	 cfg;
	struct sla		*s;
	struct sla_conv		*c;
	struct sla_figures	 f;

	(void)state;
	base_cfg(&cfg);
	s = new_sla(&cfg);
	c = CUST(s, "c", T0);
	ROBOT(s, "c", "alice", T0 + 1 * SEC);
	assert_int_equal(sla_open_rounds(s), 1);
	assert_int_equal(sla_conv_wait(s, c, T0 + 5 * SEC), 5 * SEC);
	assert_int_equal(run_until(s, c, T0 + 16 * SEC), 0);
	assert_int_equal(nev, 2);
	check_ev(1, SLA_BREACH, "c", "alice", 1, 15 * SEC, 15 * SEC,
	    T0 + 15 * SEC, T0);
	REPLY(s, "c", "alice", T0 + 20 * SEC);
	assert_int_equal(sla_open_rounds(s), 0);
	f = fig(s, "alice");
	assert_int_equal(f.rounds, 1);
	assert_int_equal(f.mean_ms, 20 * SEC);
	assert_int_equal(f.breaches, 1);
	sla_free(s);
}

/* An agent turn with no open round changes no figure, but is the last reply. */
static void
test_agent_turn_without_round(void **state)
{
	struct sla_config	 cfg;
	struct sla		*s;
	struct sla_conv		*c;

	(void)state;
	base_cfg(&cfg);
	s = new_sla(&cfg);
	c = REPLY(s, "c", "alice", T0);		/* a greeting opens nothing */
	REPLY(s, "c", "alice", T0 + SEC);
	ROBOT(s, "c", "alice", T0 + 2 * SEC);
	assert_int_equal(sla_open_rounds(s), 0);
	assert_int_equal(sla_conv_deadline(c), T0 + 2 * SEC + 30 * MIN);
	nfigs = 0;
	sla_agents(s, on_agent, NULL);
	assert_int_equal(nfigs, 0);
	/* the customer's turn after it opens the first round */
	CUST(s, "c", T0 + MIN);
	assert_int_equal(sla_conv_deadline(c), T0 + MIN + 12 * SEC);
	REPLY(s, "c", "alice", T0 + MIN + 5 * SEC);
	/* and a second reply with nothing open adds nothing */
	REPLY(s, "c", "alice", T0 + MIN + 6 * SEC);
	assert_int_equal(fig(s, "alice").rounds, 1);
	assert_int_equal(fig(s, "alice").first_rounds, 1);
	assert_int_equal(fig(s, "alice").mean_ms, 5 * SEC);
	sla_free(s);
}

/* The round goes to the agent who replied; events to the conversation's agent. */
static void
test_agent_attribution(void **state)
{
	struct sla_config	 cfg;
	struct sla		*s;
	struct sla_conv		*c;

	(void)state;
	base_cfg(&cfg);
	s = new_sla(&cfg);
	c = turn(s, "c", "alice", 1, 1, T0);	/* arrives on alice's session */
	assert_int_equal(run_until(s, c, T0 + 13 * SEC), 0);
	check_ev(0, SLA_WARN, "c", "alice", 1, 12 * SEC, 15 * SEC,
	    T0 + 12 * SEC, T0);
	turn(s, "c", "bob", 1, 1, T0 + 14 * SEC);	/* transferred */
	assert_int_equal(run_until(s, c, T0 + 16 * SEC), 0);
	check_ev(1, SLA_BREACH, "c", "bob", 1, 15 * SEC, 15 * SEC,
	    T0 + 15 * SEC, T0);
	turn(s, "c", "", 0, 1, T0 + 20 * SEC);	/* unknown: stays bob's */
	assert_int_equal(fig(s, "bob").rounds, 1);
	assert_int_equal(fig(s, "bob").breaches, 1);
	assert_int_equal(fig(s, "alice").rounds, 0);
	/* an unanswered round with no agent ever known goes to "" */
	c = CUST(s, "anon", T0);
	sla_end(s, c, T0 + SEC);
	assert_int_equal(fig(s, "").rounds, 1);
	assert_int_equal(fig(s, "").answered, 0);
	sla_free(s);
}

/* --- service hours ------------------------------------------------------ */

static void
test_hours_across_midnight(void **state)
{
	struct sla_config	 cfg;
	struct sla		*s;
	struct sla_conv		*c;
	int64_t			 day1 = T0 + DAY;

	(void)state;
	base_cfg(&cfg);
	cfg.idle_ms = 2 * DAY;	/* overnight waits outlive the default 30 min */
	add_hours(&cfg, HM(8, 0), HM(23, 0));
	s = new_sla(&cfg);
	/* opened at 23:30: the clock starts at 08:00 the next day */
	c = CUST(s, "late", T0 + HM(23, 30) * MIN);
	assert_int_equal(sla_conv_deadline(c), day1 + HM(8, 0) * MIN + 12 * SEC);
	assert_int_equal(sla_conv_wait(s, c, day1 + HM(7, 59) * MIN), 0);
	assert_int_equal(sla_conv_wait(s, c, day1 + HM(8, 0) * MIN + 5 * SEC),
	    5 * SEC);
	REPLY(s, "late", "alice", day1 + HM(8, 0) * MIN + 10 * SEC);
	assert_int_equal(nev, 0);
	assert_int_equal(fig(s, "alice").mean_ms, 10 * SEC);

	/* 5 s before closing, 10 s after opening */
	c = CUST(s, "edge", T0 + HM(22, 59) * MIN + 55 * SEC);
	assert_int_equal(run_until(s, c, day1 + HM(8, 0) * MIN + 10 * SEC), 0);
	assert_int_equal(nev, 2);
	check_ev(0, SLA_WARN, "edge", "", 1, 12 * SEC, 15 * SEC,
	    day1 + HM(8, 0) * MIN + 7 * SEC, T0 + HM(22, 59) * MIN + 55 * SEC);
	check_ev(1, SLA_BREACH, "edge", "", 1, 15 * SEC, 15 * SEC,
	    day1 + HM(8, 0) * MIN + 10 * SEC, T0 + HM(22, 59) * MIN + 55 * SEC);
	sla_free(s);

	/* a window past midnight, 22:00-02:00 */
	reset(NULL);
	base_cfg(&cfg);
	cfg.idle_ms = 2 * DAY;
	add_hours(&cfg, HM(22, 0), HM(2, 0));
	s = new_sla(&cfg);
	c = CUST(s, "night", T0 + HM(1, 59) * MIN + 50 * SEC);
	assert_int_equal(run_until(s, c, T0 + DAY), 0);
	assert_int_equal(nev, 3);
	assert_int_equal(evs[0].due, T0 + HM(22, 0) * MIN + 2 * SEC);
	assert_int_equal(evs[1].due, T0 + HM(22, 0) * MIN + 5 * SEC);
	assert_int_equal(evs[2].due, T0 + HM(22, 2) * MIN + 50 * SEC);
	/* before midnight and after it count alike */
	assert_int_equal(sla_service_ms(&cfg, T0 + HM(23, 0) * MIN,
	    day1 + HM(1, 0) * MIN), 2 * HOUR);
	assert_int_equal(sla_service_ms(&cfg, T0, day1), 4 * HOUR);
	assert_int_equal(sla_service_ms(&cfg, T0 + HM(2, 0) * MIN,
	    T0 + HM(22, 0) * MIN), 0);
	sla_free(s);
}

static void
test_hours_several_days_and_windows(void **state)
{
	struct sla_config	 cfg;
	struct sla		*s;
	struct sla_conv		*c;

	(void)state;
	/* one hour a day: an escalation of 3.5 h ends three days on */
	base_cfg(&cfg);
	cfg.escalate_ms = 3 * HOUR + 30 * MIN;
	cfg.idle_ms = 7 * DAY;
	add_hours(&cfg, HM(9, 0), HM(10, 0));
	s = new_sla(&cfg);
	c = CUST(s, "slow", T0 + HM(9, 30) * MIN);
	assert_int_equal(run_until(s, c, T0 + 6 * DAY), 0);
	assert_int_equal(nev, 3);
	assert_int_equal(evs[2].type, SLA_ESCALATE);
	assert_int_equal(evs[2].due, T0 + 3 * DAY + HM(10, 0) * MIN);
	assert_int_equal(sla_conv_wait(s, c, T0 + 10 * DAY), 9 * HOUR +
	    30 * MIN);
	assert_int_equal(sla_service_ms(&cfg, T0, T0 + 10 * DAY), 10 * HOUR);
	sla_free(s);

	/* overlapping, nested and touching windows merge: 09-13 and 14-19 */
	base_cfg(&cfg);
	add_hours(&cfg, HM(9, 0), HM(12, 0));
	add_hours(&cfg, HM(17, 30), HM(18, 0));
	add_hours(&cfg, HM(11, 0), HM(13, 0));
	add_hours(&cfg, HM(14, 0), HM(18, 0));
	add_hours(&cfg, HM(10, 0), HM(10, 30));
	add_hours(&cfg, HM(18, 0), HM(19, 0));
	assert_int_equal(sla_service_ms(&cfg, T0, T0 + DAY), 9 * HOUR);
	assert_int_equal(sla_service_ms(&cfg, T0, T0 + 3 * DAY), 27 * HOUR);
	assert_int_equal(sla_service_ms(&cfg, T0 + HM(12, 59) * MIN,
	    T0 + HM(14, 1) * MIN), 2 * MIN);
	assert_int_equal(sla_service_add(&cfg, T0 + HM(12, 59) * MIN +
	    59 * SEC, 2 * SEC), T0 + HM(14, 0) * MIN + SEC);
	/* the end of a day's service is that evening, not the next morning */
	assert_int_equal(sla_service_add(&cfg, T0, 9 * HOUR), T0 +
	    HM(19, 0) * MIN);
	assert_int_equal(sla_service_add(&cfg, T0, 9 * HOUR + 1), T0 + DAY +
	    HM(9, 0) * MIN + 1);
	assert_int_equal(sla_service_add(&cfg, T0 + HM(20, 0) * MIN, 0),
	    T0 + HM(20, 0) * MIN);
}

/* Local time is UTC + offset: +08:00 (China) and -05:00. */
static void
test_utc_offset(void **state)
{
	struct sla_config	 cfg;
	struct sla		*s;
	struct sla_conv		*c;
	int64_t			 lt0 = T0 - 8 * HOUR;	/* 00:00 +08:00 */

	(void)state;
	base_cfg(&cfg);
	cfg.utc_offset_min = 480;
	cfg.idle_ms = DAY;
	add_hours(&cfg, HM(8, 0), HM(23, 0));
	s = new_sla(&cfg);
	/* 23:30 in Shanghai is 15:30 UTC; service resumes at 00:00 UTC */
	c = CUST(s, "sh", T0 + HM(15, 30) * MIN);
	assert_int_equal(sla_conv_deadline(c), T0 + DAY + 12 * SEC);
	assert_int_equal(sla_service_ms(&cfg, lt0 + HM(7, 0) * MIN,
	    lt0 + HM(9, 0) * MIN), HOUR);
	assert_int_equal(sla_service_ms(&cfg, lt0, lt0 + DAY), 15 * HOUR);
	sla_free(s);

	/* at -05:00, 08:00-23:00 is 13:00-04:00 UTC */
	cfg.utc_offset_min = -300;
	assert_int_equal(sla_service_add(&cfg, T0 + 5 * HOUR, 1),
	    T0 + 13 * HOUR + 1);
	assert_int_equal(sla_service_add(&cfg, T0, 1), T0 + 1);
	assert_int_equal(sla_service_ms(&cfg, T0, T0 + 14 * HOUR), 5 * HOUR);
	/* offsets of a day or more only shift the day number */
	cfg.utc_offset_min = -300 + 1440 * 3;
	assert_int_equal(sla_service_add(&cfg, T0 + 5 * HOUR, 1),
	    T0 + 13 * HOUR + 1);
}

/* --- service time against a per-second reference --------------------------- */

static uint64_t rng = 0x9e3779b97f4a7c15ULL;

static uint64_t
rnd(uint64_t n)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return n ? rng % n : 0;
}

/* Straight from the raw windows, one second at a time: nothing shared. */
static int
ref_in_service(const struct sla_config *c, int64_t sec_start)
{
	int64_t	 l, m;
	size_t	 i;
	int	 f, t;

	if (c->nhours == 0)
		return 1;
	l = sec_start + (int64_t)c->utc_offset_min * MIN;
	m = ((l % DAY) + DAY) % DAY / MIN;
	for (i = 0; i < c->nhours; i++) {
		f = c->hours[i].from_min;
		t = c->hours[i].to_min;
		if (f < t && m >= f && m < t)
			return 1;
		if (f > t && (m >= f || m < t))
			return 1;
	}
	return 0;
}

static int64_t
ref_floor_sec(int64_t t)
{
	return t >= 0 ? t / SEC * SEC : -((-t + SEC - 1) / SEC) * SEC;
}

static uint64_t
ref_service_ms(const struct sla_config *c, int64_t from, int64_t to)
{
	uint64_t v = 0;
	int64_t	 s, a, b;

	for (s = ref_floor_sec(from); s < to; s += SEC) {
		if (!ref_in_service(c, s))
			continue;
		a = from > s ? from : s;
		b = to < s + SEC ? to : s + SEC;
		if (b > a)
			v += (uint64_t)(b - a);
	}
	return v;
}

static int64_t
ref_service_add(const struct sla_config *c, int64_t from, uint64_t ms)
{
	uint64_t acc = 0, avail;
	int64_t	 s, a;

	if (ms == 0)
		return from;
	for (s = ref_floor_sec(from);; s += SEC) {
		if (!ref_in_service(c, s))
			continue;
		a = from > s ? from : s;
		if (a >= s + SEC)
			continue;
		avail = (uint64_t)(s + SEC - a);
		if (acc + avail >= ms)
			return a + (int64_t)(ms - acc);
		acc += avail;
	}
}

static void
random_cfg(struct sla_config *c)
{
	size_t	 i, n;
	int	 f, t;

	base_cfg(c);
	n = rnd(6);	/* 0: always */
	for (i = 0; i < n; i++) {
		f = (int)rnd(1440);
		t = 1 + (int)rnd(1440);
		if (t == f)
			t = f + 1;
		if (rnd(8) == 0) {
			f = 0;
			t = 1440;
		}
		add_hours(c, (uint16_t)f, (uint16_t)t);
	}
	c->utc_offset_min = (int32_t)rnd(1561) - 720;
}

static int64_t
random_time(void)
{
	switch (rnd(4)) {
	case 0:		/* around the epoch: negative times round down */
		return (int64_t)rnd(4 * DAY) - 2 * DAY;
	case 1:		/* on a second */
		return T0 + (int64_t)rnd(30 * DAY) / SEC * SEC;
	default:
		return T0 + (int64_t)rnd(30 * DAY);
	}
}

static void
test_service_vs_reference(void **state)
{
	struct sla_config	 cfg;
	int64_t			 from, to, got, want;
	uint64_t		 per_day, ms;
	int			 i;

	(void)state;
	for (i = 0; i < 250; i++) {
		random_cfg(&cfg);
		from = random_time();
		to = from + (int64_t)rnd(2 * DAY + 1);
		if (rnd(10) == 0)
			to = from - (int64_t)rnd(HOUR);		/* backwards: 0 */
		want = (int64_t)(to > from ? ref_service_ms(&cfg, from, to) : 0);
		got = (int64_t)sla_service_ms(&cfg, from, to);
		if (got != want)
			fail_msg("case %d: service_ms(%lld, %lld) = %lld, want %lld",
			    i, (long long)from, (long long)to, (long long)got,
			    (long long)want);

		per_day = ref_service_ms(&cfg, T0, T0 + DAY);
		ms = rnd(2 * per_day + 2);
		if (per_day == 0) {
			assert_int_equal(sla_service_add(&cfg, from, 5), INT64_MAX);
			continue;
		}
		want = ref_service_add(&cfg, from, ms);
		got = sla_service_add(&cfg, from, ms);
		if (got != want)
			fail_msg("case %d: service_add(%lld, %llu) = %lld, want %lld",
			    i, (long long)from, (unsigned long long)ms,
			    (long long)got, (long long)want);
	}
}

/* Long spans are whole days of arithmetic, and add inverts ms exactly. */
static void
test_service_long_spans(void **state)
{
	struct sla_config	 cfg;
	int64_t			 from, t;
	uint64_t		 per_day, ms, n;
	struct timespec		 a, b;
	int			 i;

	(void)state;
	clock_gettime(CLOCK_MONOTONIC, &a);
	for (i = 0; i < 20000; i++) {
		random_cfg(&cfg);
		from = random_time();
		per_day = sla_service_ms(&cfg, T0, T0 + DAY);
		n = rnd(40000);			/* up to a century */
		assert_int_equal(sla_service_ms(&cfg, from,
		    from + (int64_t)n * DAY), n * per_day);
		if (per_day == 0)
			continue;
		ms = rnd((uint64_t)1 << 42);	/* up to 139 years of service */
		if (rnd(3) == 0)
			ms = n * per_day;	/* a whole number of days */
		if (ms == 0)
			ms = 1;
		t = sla_service_add(&cfg, from, ms);
		assert_true(t > from);
		/* exact, and the earliest such instant */
		assert_int_equal(sla_service_ms(&cfg, from, t), ms);
		assert_int_equal(sla_service_ms(&cfg, from, t - 1), ms - 1);
	}
	clock_gettime(CLOCK_MONOTONIC, &b);
	print_message("service arithmetic: %.0f ns per check (4 calls)\n",
	    ((double)(b.tv_sec - a.tv_sec) * 1e9 + (double)(b.tv_nsec -
	    a.tv_nsec)) / 20000);
	/* absurd inputs saturate rather than overflow */
	base_cfg(&cfg);
	add_hours(&cfg, HM(8, 0), HM(23, 0));
	assert_int_equal(sla_service_add(&cfg, T0, UINT64_MAX), INT64_MAX);
	assert_int_equal(sla_service_add(&cfg, INT64_MAX - 5, 10), INT64_MAX);
	assert_true(sla_service_ms(&cfg, INT64_MIN, INT64_MAX) > 0);
	cfg.nhours = 0;
	assert_int_equal(sla_service_ms(&cfg, T0, T0 + 5), 5);
	assert_int_equal(sla_service_add(&cfg, T0, 5), T0 + 5);
}

/* --- figures ------------------------------------------------------------ */

/* Taobao/Tmall: 08:00-23:00 Beijing time, 600 s cap, 3-minute rate. */
static void
test_taobao_profile(void **state)
{
	struct sla_config	 cfg;
	struct sla		*s;
	struct sla_figures	 f;
	int64_t			 lt0 = T0 - 8 * HOUR;	/* local midnight */
	int			 timely;

#define L(h, m, sec)	(lt0 + HM(h, m) * MIN + (sec) * SEC)
	(void)state;
	base_cfg(&cfg);
	cfg.utc_offset_min = 480;
	cfg.idle_ms = DAY;	/* tb-3 waits overnight */
	add_hours(&cfg, HM(8, 0), HM(23, 0));
	for (timely = 0; timely < 2; timely++) {
		reset(NULL);
		s = new_sla(&cfg);
		/* 10 s, a first round with a burst */
		turn(s, "tb-1", "alice", 1, 1, L(10, 0, 0));
		turn(s, "tb-1", "alice", 1, 1, L(10, 0, 3));
		turn(s, "tb-1", "alice", 0, 1, L(10, 0, 10));
		/* 200 s: past the rate, breached and escalated */
		turn(s, "tb-1", "alice", 1, 1, L(10, 5, 0));
		if (timely)
			run_until(s, find(s, "tb-1"), L(10, 8, 19));
		turn(s, "tb-1", "alice", 0, 1, L(10, 8, 20));
		/* 700 s, counted as 600 */
		turn(s, "tb-1", "alice", 1, 1, L(11, 0, 0));
		if (timely)
			run_until(s, find(s, "tb-1"), L(11, 11, 39));
		turn(s, "tb-1", "alice", 0, 1, L(11, 11, 40));
		/* unanswered first round: 600 */
		turn(s, "tb-2", "alice", 1, 1, L(12, 0, 0));
		sla_end(s, find(s, "tb-2"), L(12, 0, 5));
		/* 60 s before closing and 60 s after opening: 120 */
		turn(s, "tb-3", "alice", 1, 1, L(22, 59, 0));
		if (timely)
			run_until(s, find(s, "tb-3"), L(22, 59, 59));
		turn(s, "tb-3", "alice", 0, 1, L(24 + 8, 1, 0));

		assert_int_equal(nev, 8);
		assert_int_equal(evs[6].type, SLA_WARN);
		assert_int_equal(evs[7].type, SLA_BREACH);
		assert_int_equal(evs[7].due, L(22, 59, 15));
		f = fig(s, "alice");
		assert_int_equal(f.rounds, 5);
		assert_int_equal(f.answered, 4);
		assert_int_equal(f.mean_ms, (10 + 200 + 600 + 600 + 120) * SEC / 5);
		assert_int_equal(f.p90_ms, 600 * SEC);
		assert_int_equal(f.first_rounds, 3);
		assert_int_equal(f.first_mean_ms, 243333);	/* 730 s / 3 */
		assert_int_equal(f.breaches, 3);
		assert_int_equal(f.escalations, 2);
		assert_int_equal(f.within_rate, 2);
		assert_true(f.rate > 0.3999 && f.rate < 0.4001);
		sla_free(s);
	}
#undef L
}

/*
 * The histogram's slots: a second each up to 1 024 s, then within 1.6 %;
 * a slot's seconds are the most its rounds took, so "<= p90" holds.
 */
static void
test_hist_slots(void **state)
{
	uint64_t	sec, up;
	size_t		slot, last = 0;

	(void)state;
	for (sec = 0; sec <= 7 * 86400; sec++) {
		slot = sla_hist_slot(sec);
		assert_true(slot >= last && slot <= last + 1);
		last = slot;
		up = sla_hist_seconds(slot);
		assert_true(up >= sec);
		if (sec < 1024)
			assert_int_equal(up, sec);
		else
			assert_true((up - sec) * 64 < sec + 64);	/* within 1/64 */
		assert_int_equal(sla_hist_slot(up), slot);
	}
	assert_int_equal(sla_hist_slot(86400) + 1, 1429);
}

/* Past 1 024 s the p90 is its slot's most, within 1.6 %, never above the cap. */
static void
test_p90_coarse(void **state)
{
	struct sla_config	 c;
	struct sla		*s;
	struct sla_round	 w = { 0 };
	struct sla_figures	 f;

	(void)state;
	base_cfg(&c);
	c.cap_ms = 86400 * SEC;
	assert_non_null(s = sla_new(&c, NULL, NULL, NULL));
	w.agent = "ann";
	w.conversation = "c";
	w.conversation_len = 1;
	w.answered = 1;
	w.opened = T0;
	w.at = T0 + 5000 * SEC;
	sla_charge_round(s, &w);
	f = fig(s, "ann");
	assert_true(f.p90_ms >= 5000 * SEC && f.p90_ms <= 5000 * SEC * 1016 / 1000);
	w.answered = 0;		/* unanswered: the cap, and no more */
	sla_charge_round(s, &w);
	sla_charge_round(s, &w);
	f = fig(s, "ann");
	assert_int_equal(f.p90_ms, 86400 * SEC);
	sla_free(s);
}

/*
 * /metrics' histogram of every agent's rounds, from the engine's own sums
 * (a scrape walked each agent's histogram: seconds of a stalled loop with
 * thousands of agents, found by review).
 */
static void
test_histogram_all_agents(void **state)
{
	static const uint64_t	 bounds[] = { 5000, 30000, 600000 };
	struct sla_config	 c;
	struct sla		*s;
	struct sla_round	 w = { 0 };
	uint64_t		 counts[3], sum, total;
	const char		*who[] = { "ann", "bob", "", "ann" };
	const int64_t		 took[] = { 3 * SEC, 20 * SEC, 4 * SEC, -1 };
	size_t			 i;

	(void)state;
	base_cfg(&c);
	assert_non_null(s = sla_new(&c, NULL, NULL, NULL));
	for (i = 0; i < 4; i++) {
		w.agent = who[i];
		w.conversation = "c";
		w.conversation_len = 1;
		w.answered = took[i] >= 0;
		w.opened = T0;
		w.at = T0 + (took[i] >= 0 ? took[i] : 900 * SEC);
		sla_charge_round(s, &w);
	}
	sla_histogram(s, bounds, 3, counts, &sum, &total);
	assert_int_equal(total, 4);
	assert_int_equal(sum, 3 * SEC + 20 * SEC + 4 * SEC + c.cap_ms);
	assert_int_equal(counts[0], 2);		/* 3 s, 4 s */
	assert_int_equal(counts[1], 3);
	assert_int_equal(counts[2], 4);		/* the unanswered one at the cap */
	sla_free(s);
}

static void
count_agent(const struct sla_account *w, const struct sla_figures *f, void *arg)
{
	uint64_t	*v = arg;

	v[0]++;
	if (w->agent[0] == '\0')
		v[1] += f->rounds;
}

/*
 * Names a peer makes up cannot grow the engine without end: past
 * SLA_MAX_AGENTS a new agent's rounds count as no agent's (found by
 * review: each name kept its figures for good).
 */
static void
test_agents_bounded(void **state)
{
	struct sla_config	 c;
	struct sla		*s;
	struct sla_round	 w = { 0 };
	char			 id[32];
	uint64_t		 v[2] = { 0, 0 };
	size_t			 i;

	(void)state;
	base_cfg(&c);
	assert_non_null(s = sla_new(&c, NULL, NULL, NULL));
	w.conversation = "c";
	w.conversation_len = 1;
	w.answered = 1;
	w.opened = T0;
	w.at = T0 + 3 * SEC;
	for (i = 0; i < SLA_MAX_AGENTS + 10; i++) {
		snprintf(id, sizeof(id), "a%zu", i);
		w.agent = id;
		sla_charge_round(s, &w);
	}
	assert_int_equal(sla_agent_entries(s), SLA_MAX_AGENTS);
	w.agent = "a7";			/* one kept goes on counting as itself */
	sla_charge_round(s, &w);
	sla_agents(s, count_agent, v);
	assert_int_equal(v[0], SLA_MAX_AGENTS);		/* "" and 19 999 names */
	assert_int_equal(v[1], 11);			/* a19999 .. a20009 */
	sla_free(s);
}

/*
 * A round whose whole wait lay outside service hours is in no figure
 * (found by review: rounds of 23:10 answered at 23:30 counted as answered
 * in 0 s, flattering the mean and the rate); one that waited into the
 * hours counts its service time, and an unanswered one ended before the
 * shop opened is not charged the cap either.
 */
static void
test_rounds_outside_hours(void **state)
{
	struct sla_config	 cfg;
	struct sla		*s;
	struct sla_figures	 f;
	int64_t			 t23 = T0 + HM(23, 0) * MIN, t8 = T0 + 86400 * SEC + HM(8, 0) * MIN;

	(void)state;
	base_cfg(&cfg);
	add_hours(&cfg, HM(8, 0), HM(23, 0));
	s = new_sla(&cfg);
	turn(s, "day", "amy", 1, 1, t23 - 240 * SEC);
	REPLY(s, "day", "amy", t23 - 0 * SEC);			/* 240 s */
	turn(s, "n1", "amy", 1, 1, t23 + 10 * MIN);
	REPLY(s, "n1", "amy", t23 + 30 * MIN);			/* wholly outside */
	turn(s, "n2", "amy", 1, 1, t23 + 11 * MIN);
	sla_end(s, find(s, "n2"), t23 + 50 * MIN);		/* unanswered, outside */
	turn(s, "n3", "amy", 1, 1, t23 + 12 * MIN);
	REPLY(s, "n3", "amy", t8 + 30 * SEC);			/* 30 s of service */
	f = fig(s, "amy");
	assert_int_equal(f.rounds, 2);
	assert_int_equal(f.answered, 2);
	assert_int_equal(f.mean_ms, 135 * SEC);
	sla_free(s);
	/* the same rounds charged by the caller (state in Redis, a report) */
	s = new_sla(&cfg);
	sla_set_charging(s, 0);
	sla_charge_round(s, &(struct sla_round){ .agent = "bob", .shop = "",
	    .queue = "", .opened = t23 + 10 * MIN, .at = t23 + 30 * MIN,
	    .answered = 1, .first = 1 });
	sla_charge_round(s, &(struct sla_round){ .agent = "bob", .shop = "",
	    .queue = "", .opened = t23 + 11 * MIN, .at = t23 + 50 * MIN,
	    .answered = 0, .first = 1 });
	sla_charge_round(s, &(struct sla_round){ .agent = "bob", .shop = "",
	    .queue = "", .opened = t23 + 12 * MIN, .at = t8 + 30 * SEC,
	    .answered = 1, .first = 1 });
	f = fig(s, "bob");
	assert_int_equal(f.rounds, 1);
	assert_int_equal(f.mean_ms, 30 * SEC);
	/*
	 * closed in the millisecond it opened (a message and an end in one
	 * go, found by review: charged the whole cap at night): in no figure
	 * outside the hours, answered in 0 ms within them
	 */
	assert_int_equal(sla_charge_round(s, &(struct sla_round){ .agent = "cy",
	    .shop = "", .queue = "", .opened = t23 + 20 * MIN, .at = t23 + 20 * MIN,
	    .answered = 0, .first = 1 }), 0);
	assert_int_equal(sla_charge_round(s, &(struct sla_round){ .agent = "cy",
	    .shop = "", .queue = "", .opened = t8 + MIN, .at = t8 + MIN,
	    .answered = 1, .first = 1 }), 1);
	f = fig(s, "cy");
	assert_int_equal(f.rounds, 1);
	assert_int_equal(f.answered, 1);
	assert_int_equal(f.mean_ms, 0);
	sla_free(s);
	/* the same in memory */
	s = new_sla(&cfg);
	turn(s, "z1", "dee", 1, 1, t23 + 20 * MIN);
	sla_end(s, find(s, "z1"), t23 + 20 * MIN);
	f = fig(s, "dee");
	assert_int_equal(f.rounds, 0);
	sla_free(s);
}

/* p90 and mean on known samples; -1 is a round left unanswered. */
static void
test_p90_and_mean_exact(void **state)
{
	static const struct {
		const char	*name;
		int64_t		 ms[24];
		size_t		 n;
		uint64_t	 p90, mean, within;
	} tab[] = {
		{ "1..10 s", { 1000, 2000, 3000, 4000, 5000, 6000, 7000, 8000,
		    9000, 10000 }, 10, 9000, 5500, 10 },
		{ "1..20 s", { 1000, 2000, 3000, 4000, 5000, 6000, 7000, 8000,
		    9000, 10000, 11000, 12000, 13000, 14000, 15000, 16000,
		    17000, 18000, 19000, 20000 }, 20, 18000, 10500, 20 },
		{ "rounded up", { 1200 }, 1, 2000, 1200, 1 },
		{ "zero", { 0 }, 1, 0, 0, 1 },
		{ "10 fast, 1 slow", { 1000, 1000, 1000, 1000, 1000, 1000,
		    1000, 1000, 1000, 1000, 100000 }, 11, 1000, 10000, 11 },
		{ "9 fast, 1 slow", { 1000, 1000, 1000, 1000, 1000, 1000,
		    1000, 1000, 1000, 100000 }, 10, 1000, 10900, 10 },
		{ "8 fast, 2 slow", { 1000, 1000, 1000, 1000, 1000, 1000,
		    1000, 1000, 100000, 100000 }, 10, 100000, 20800, 10 },
		{ "capped", { 700000, 5000 }, 2, 600000, 302500, 1 },
		{ "exactly the cap", { 600000 }, 1, 600000, 600000, 0 },
		{ "unanswered", { -1, -1, 1000 }, 3, 600000, 400333, 1 },
		{ "half rounds up", { 1000, 1001 }, 2, 2000, 1001, 2 },
		{ "rate edge", { 180000, 180001 }, 2, 181000, 180001, 1 },
	};
	struct sla_config	 cfg;
	struct sla		*s;
	struct sla_conv		*c;
	struct sla_figures	 f;
	char			 id[32];
	size_t			 i, k, unanswered;

	(void)state;
	base_cfg(&cfg);
	for (i = 0; i < NELEM(tab); i++) {
		s = new_sla(&cfg);
		unanswered = 0;
		for (k = 0; k < tab[i].n; k++) {
			snprintf(id, sizeof(id), "p%zu", k);
			c = turn(s, id, "carol", 1, 1, T0 + (int64_t)k * HOUR);
			if (tab[i].ms[k] < 0) {
				sla_end(s, c, T0 + (int64_t)k * HOUR + SEC);
				unanswered++;
			} else
				turn(s, id, "carol", 0, 1, T0 + (int64_t)k * HOUR +
				    tab[i].ms[k]);
		}
		f = fig(s, "carol");
		if (f.p90_ms != tab[i].p90 || f.mean_ms != tab[i].mean ||
		    f.within_rate != tab[i].within)
			fail_msg("%s: p90 %llu mean %llu within %llu", tab[i].name,
			    (unsigned long long)f.p90_ms,
			    (unsigned long long)f.mean_ms,
			    (unsigned long long)f.within_rate);
		assert_int_equal(f.rounds, tab[i].n);
		assert_int_equal(f.answered, tab[i].n - unanswered);
		assert_int_equal(f.first_rounds, tab[i].n);
		assert_int_equal(f.first_mean_ms, f.mean_ms);
		sla_free(s);
	}
}

static void
test_first_mean_and_rate(void **state)
{
	struct sla_config	 cfg;
	struct sla		*s;
	struct sla_figures	 f;

	(void)state;
	base_cfg(&cfg);
	s = new_sla(&cfg);
	/* a: first 10 s, then 40 s and 50 s; b: first 20 s, then unanswered */
	CUST(s, "a", T0);
	REPLY(s, "a", "dave", T0 + 10 * SEC);
	CUST(s, "a", T0 + MIN);
	REPLY(s, "a", "dave", T0 + MIN + 40 * SEC);
	CUST(s, "a", T0 + 2 * MIN);
	REPLY(s, "a", "dave", T0 + 2 * MIN + 50 * SEC);
	CUST(s, "b", T0);
	REPLY(s, "b", "dave", T0 + 20 * SEC);
	CUST(s, "b", T0 + MIN);
	sla_end(s, find(s, "b"), T0 + MIN + SEC);
	f = fig(s, "dave");
	assert_int_equal(f.rounds, 5);
	assert_int_equal(f.answered, 4);
	assert_int_equal(f.first_rounds, 2);
	assert_int_equal(f.first_mean_ms, 15 * SEC);
	assert_int_equal(f.mean_ms, (10 + 40 + 50 + 20 + 600) * SEC / 5);
	assert_int_equal(f.within_rate, 4);
	assert_true(f.rate > 0.7999 && f.rate < 0.8001);
	sla_free(s);
}

/* --- ending ------------------------------------------------------------- */

static void
test_idle_expiry(void **state)
{
	struct sla_config	 cfg;
	struct sla		*s;
	struct sla_conv		*c, *c2;
	struct sla_conv_state	 st;

	(void)state;
	base_cfg(&cfg);
	s = new_sla(&cfg);
	c = CUST(s, "idle", T0);
	sla_conv_set_udata(c, (void *)(uintptr_t)1);
	CUST(s, "idle", T0 + 10 * MIN);		/* any turn pushes the idle end */
	assert_int_equal(run_until(s, c, T0 + 40 * MIN - 1), 0);
	assert_int_equal(nev, 3);
	assert_int_equal(nrelease, 0);
	assert_int_equal(sla_conv_deadline(c), T0 + 40 * MIN);
	assert_int_equal(sla_expire(s, c, T0 + 40 * MIN), 1);
	assert_int_equal(nrelease, 1);
	assert_int_equal(released[1], 1);
	assert_null(find(s, "idle"));
	assert_int_equal(sla_conversations(s), 0);
	assert_int_equal(sla_open_rounds(s), 0);
	assert_int_equal(fig(s, "").rounds, 1);
	assert_int_equal(fig(s, "").answered, 0);
	assert_int_equal(fig(s, "").mean_ms, 600 * SEC);

	/* a quiet conversation with no open round ends the same way */
	c = REPLY(s, "quiet", "erin", T0);
	assert_int_equal(sla_conv_deadline(c), T0 + 30 * MIN);
	assert_int_equal(sla_expire(s, c, T0 + 2 * HOUR), 1);
	assert_int_equal(nrelease, 2);

	/* a turn after the idle end, with nobody calling expire: a new conversation */
	reset(NULL);
	c = turn(s, "again", "erin", 1, 1, T0);
	sla_conv_set_udata(c, (void *)(uintptr_t)2);
	c2 = turn(s, "again", "erin", 1, 1, T0 + 31 * MIN);
	assert_int_equal(nrelease, 1);
	assert_int_equal(released[2], 1);
	assert_null(sla_conv_udata(c2));
	assert_int_equal(nev, 3);	/* the old round's events, then its end */
	assert_int_equal(sla_conv_deadline(c2), T0 + 31 * MIN + 12 * SEC);
	assert_int_equal(fig(s, "erin").first_rounds, 1);
	sla_free(s);
	assert_int_equal(nrelease, 2);

	/*
	 * Idle is service time too: a buyer who wrote ten seconds before
	 * closing is timed from the morning, and is not written off at night.
	 */
	reset(NULL);
	add_hours(&cfg, HM(8, 0), HM(23, 0));
	s = new_sla(&cfg);
	c = CUST(s, "night", T0 + HM(22, 59) * MIN + 50 * SEC);
	/* warn at 12 s of service: 10 s tonight, 2 s tomorrow */
	assert_int_equal(sla_conv_deadline(c), T0 + DAY + HM(8, 0) * MIN + 2 * SEC);
	assert_int_equal(sla_expire(s, c, T0 + DAY + HM(8, 29) * MIN), 0);
	assert_int_equal(nev, 3);	/* warn, breach, escalate, all in the morning */
	assert_int_equal(sla_conv_deadline(c), T0 + DAY + HM(8, 29) * MIN + 50 * SEC);
	assert_int_equal(sla_expire(s, c, T0 + DAY + HM(9, 0) * MIN), 1);
	assert_int_equal(fig(s, "").rounds, 1);
	assert_int_equal(fig(s, "").breaches, 1);

	/*
	 * Answered, the chat ends by the clock: the buyer who comes back the
	 * next morning asks a first question again (JD's session is 10
	 * minutes), not a later one of a chat 8 service minutes old.
	 */
	c = turn(s, "jd", "alice", 1, 1, T0 + HM(22, 54) * MIN + 50 * SEC);
	REPLY(s, "jd", "alice", T0 + HM(22, 55) * MIN);
	assert_int_equal(sla_conv_deadline(c), T0 + HM(23, 25) * MIN);
	c = turn(s, "jd", "alice", 1, 1, T0 + DAY + HM(9, 3) * MIN);
	sla_conv_get(c, &st);
	assert_true(st.open && st.first);
	REPLY(s, "jd", "alice", T0 + DAY + HM(9, 3) * MIN + 40 * SEC);
	assert_int_equal(fig(s, "alice").first_rounds, 2);
	/* while a round is open the idle end still moves in service time */
	c = turn(s, "jd", "alice", 1, 1, T0 + DAY + HM(22, 59) * MIN + 50 * SEC);
	assert_int_equal(sla_conv_deadline(c), T0 + 2 * DAY + HM(8, 0) * MIN +
	    2 * SEC);
	sla_free(s);
}

/* An unanswered round after a transfer stays with the agent who had it (domain.md). */
static void
test_transfer_unanswered(void **state)
{
	struct sla_config	 cfg;
	struct sla		*s;
	struct sla_conv		*c;

	(void)state;
	base_cfg(&cfg);
	s = new_sla(&cfg);
	turn(s, "t", "alice", 1, 1, T0);		/* on alice's session */
	c = turn(s, "t", "bob", 1, 1, T0 + 5 * SEC);	/* moved to bob's */
	sla_end(s, c, T0 + 60 * SEC);
	assert_int_equal(fig(s, "alice").rounds, 1);
	assert_int_equal(fig(s, "alice").answered, 0);
	assert_int_equal(fig(s, "bob").rounds, 0);
	/* answered after the transfer: the one who answered gets it */
	turn(s, "u", "alice", 1, 1, T0);
	turn(s, "u", "bob", 0, 1, T0 + 8 * SEC);
	assert_int_equal(fig(s, "bob").rounds, 1);
	assert_int_equal(fig(s, "bob").answered, 1);
	sla_free(s);
}

static void
test_end_agent(void **state)
{
	struct sla_config	 cfg;
	struct sla		*s;
	struct sla_conv		*c;
	static const struct {
		const char	*conv, *agent;
		uintptr_t	 udata;
	} tab[] = {
		{ "a1", "alice", 1 }, { "a2", "alice", 2 }, { "b1", "bob", 3 },
		{ "u1", "", 4 }, { "t1", "alice", 5 }, { "a3", "alice", 6 },
	};
	size_t			 i;

	(void)state;
	base_cfg(&cfg);
	s = new_sla(&cfg);
	for (i = 0; i < NELEM(tab); i++) {
		c = turn(s, tab[i].conv, tab[i].agent, 1, 1, T0);
		sla_conv_set_udata(c, (void *)tab[i].udata);
	}
	turn(s, "t1", "bob", 1, 1, T0 + SEC);	/* transferred to bob */
	REPLY(s, "a3", "alice", T0 + 2 * SEC);	/* answered, still open */
	sla_end_agent(s, "nobody", T0 + 5 * SEC);
	sla_end_agent(s, "", T0 + 5 * SEC);
	assert_int_equal(nrelease, 0);
	sla_end_agent(s, "alice", T0 + 13 * SEC);
	assert_int_equal(nrelease, 3);
	assert_true(released[1] && released[2] && released[6]);
	assert_null(find(s, "a1"));
	assert_non_null(find(s, "b1"));
	assert_non_null(find(s, "u1"));
	assert_non_null(find(s, "t1"));
	assert_int_equal(sla_conversations(s), 3);
	/* due events first, then the unanswered rounds */
	assert_int_equal(nev, 2);
	assert_string_equal(evs[0].agent, "alice");
	assert_int_equal(fig(s, "alice").rounds, 3);
	assert_int_equal(fig(s, "alice").answered, 1);
	sla_end_agent(s, "alice", T0 + 14 * SEC);
	assert_int_equal(nrelease, 3);
	sla_end_agent(s, "bob", T0 + 14 * SEC);
	assert_int_equal(nrelease, 5);
	assert_int_equal(sla_conversations(s), 1);
	sla_free(s);
	assert_int_equal(nrelease, 6);
	assert_true(released[4]);
}

/* A caller long late: every event once, in order, before anything else. */
static void
test_late_caller(void **state)
{
	struct sla_config	 cfg;
	struct sla		*s;
	struct sla_conv		*c;

	(void)state;
	base_cfg(&cfg);
	s = new_sla(&cfg);
	c = turn(s, "late", "fay", 1, 1, T0);
	assert_int_equal(sla_expire(s, c, T0 + 2 * HOUR), 1);
	assert_int_equal(nev, 3);
	check_ev(0, SLA_WARN, "late", "fay", 1, 12 * SEC, 15 * SEC,
	    T0 + 12 * SEC, T0);
	check_ev(1, SLA_BREACH, "late", "fay", 1, 15 * SEC, 15 * SEC,
	    T0 + 15 * SEC, T0);
	check_ev(2, SLA_ESCALATE, "late", "fay", 1, 180 * SEC, 180 * SEC,
	    T0 + 180 * SEC, T0);
	assert_int_equal(nrelease, 1);

	/* an end frame late: the breach that was due still comes first */
	reset(NULL);
	c = turn(s, "end", "fay", 1, 1, T0);
	sla_end(s, c, T0 + 20 * SEC);
	assert_int_equal(nev, 2);
	assert_int_equal(evs[1].type, SLA_BREACH);
	assert_int_equal(nrelease, 1);

	/* a late reply: all three, then the round closes */
	reset(NULL);
	turn(s, "reply", "fay", 1, 1, T0);
	c = turn(s, "reply", "fay", 0, 1, T0 + 20 * MIN);
	assert_int_equal(nev, 3);
	assert_int_equal(sla_conv_deadline(c), T0 + 50 * MIN);
	assert_int_equal(fig(s, "fay").breaches, 3);
	assert_int_equal(fig(s, "fay").escalations, 2);
	sla_free(s);
}

/* New thresholds reach new rounds only; open rounds keep their deadlines. */
static void
test_set_config(void **state)
{
	struct sla_config	 cfg, cfg2;
	struct sla		*s;
	struct sla_conv		*c, *d;

	(void)state;
	base_cfg(&cfg);
	s = new_sla(&cfg);
	c = turn(s, "old", "gus", 1, 1, T0);
	cfg2 = cfg;
	cfg2.first_response_ms = 60 * SEC;
	cfg2.reply_ms = 100 * SEC;
	cfg2.escalate_ms = 300 * SEC;
	cfg2.cap_ms = 1200 * SEC;
	cfg2.idle_ms = DAY;
	add_hours(&cfg2, HM(8, 0), HM(9, 0));	/* T0 is midnight: out of hours */
	sla_set_config(s, &cfg2);
	assert_int_equal(sla_conv_deadline(c), T0 + 12 * SEC);
	assert_int_equal(run_until(s, c, T0 + 200 * SEC), 0);
	assert_int_equal(nev, 3);
	assert_int_equal(evs[1].threshold, 15 * SEC);
	assert_int_equal(evs[2].due, T0 + 180 * SEC);
	/* the next round of the same conversation uses the new values */
	REPLY(s, "old", "gus", T0 + 200 * SEC);
	c = turn(s, "old", "gus", 1, 1, T0 + HM(8, 0) * MIN);
	assert_int_equal(sla_conv_deadline(c), T0 + HM(8, 0) * MIN + 80 * SEC);
	d = turn(s, "new", "gus", 1, 1, T0 + HM(8, 0) * MIN);
	assert_int_equal(sla_conv_deadline(d), T0 + HM(8, 0) * MIN + 48 * SEC);
	/* and the longer cap: 1000 s counts in full */
	REPLY(s, "new", "gus", T0 + HM(8, 0) * MIN + 1000 * SEC);
	assert_int_equal(fig(s, "gus").p90_ms, 1000 * SEC);
	sla_free(s);
}

/* --- scale and robustness ----------------------------------------------- */

#define NCONV	100000

static void
make_id(char *id, size_t i)
{
	uint32_t	v = (uint32_t)i;

	/* binary on purpose: a NUL, then the number's bytes */
	id[0] = 'c';
	id[1] = '\0';
	memcpy(id + 2, &v, sizeof(v));
}

static void
test_many_conversations(void **state)
{
	static const char *const agents[] = { "a0", "a1", "a2", "a3", "a4" };
	struct sla_config	 cfg;
	struct sla		*s;
	struct sla_conv		*c;
	char			 id[6];
	const char		*p;
	size_t			 i, len;
	uint64_t		 rounds;

	(void)state;
	base_cfg(&cfg);
	s = new_sla(&cfg);
	for (i = 0; i < NCONV; i++) {
		make_id(id, i);
		c = sla_turn(s, id, sizeof(id), agents[i % 5], NULL, NULL, 1, 1, T0 +
		    (int64_t)i);
		assert_non_null(c);
		sla_conv_set_udata(c, (void *)(uintptr_t)(i + 1));
	}
	assert_int_equal(sla_conversations(s), NCONV);
	assert_int_equal(sla_open_rounds(s), NCONV);
	for (i = 0; i < NCONV; i++) {
		make_id(id, i);
		c = sla_find(s, id, sizeof(id));
		assert_non_null(c);
		assert_ptr_equal(sla_conv_udata(c), (void *)(uintptr_t)(i + 1));
		p = sla_conv_id(c, &len);
		assert_int_equal(len, sizeof(id));
		assert_memory_equal(p, id, sizeof(id));
	}
	/* half by end frames, the rest with their agents' connections */
	for (i = 0; i < NCONV; i += 2) {
		make_id(id, i);
		sla_end(s, sla_find(s, id, sizeof(id)), T0 + SEC);
	}
	assert_int_equal(sla_conversations(s), NCONV / 2);
	for (i = 0; i < 5; i++)
		sla_end_agent(s, agents[i], T0 + SEC);
	assert_int_equal(sla_conversations(s), 0);
	assert_int_equal(sla_open_rounds(s), 0);
	assert_int_equal(nrelease, NCONV);
	for (i = 1; i <= NCONV; i++)
		assert_int_equal(released[i], 1);
	nfigs = 0;
	sla_agents(s, on_agent, NULL);
	rounds = 0;
	for (i = 0; i < nfigs; i++)
		rounds += figs[i].f.rounds;
	assert_int_equal(rounds, NCONV);
	/* the table still works once emptied */
	make_id(id, 42);
	assert_null(sla_find(s, id, sizeof(id)));
	assert_non_null(sla_turn(s, id, sizeof(id), "a0", NULL, NULL, 1, 1, T0 + HOUR));
	sla_free(s);
	assert_int_equal(nrelease, NCONV + 1);
}

/* Ids are bytes: NULs inside, prefixes and the empty id are all distinct. */
static void
test_binary_ids(void **state)
{
	static const struct {
		const char	*id;
		size_t		 len;
	} ids[] = {
		{ "a\0b", 3 }, { "a\0c", 3 }, { "a", 1 }, { "a\0", 2 },
		{ "", 0 }, { "\xff\xfe", 2 }, { "会话-1", 8 },
	};
	struct sla_config	 cfg;
	struct sla		*s;
	struct sla_conv		*c[NELEM(ids)];
	const char		*p;
	size_t			 i, len;

	(void)state;
	base_cfg(&cfg);
	s = new_sla(&cfg);
	for (i = 0; i < NELEM(ids); i++) {
		c[i] = sla_turn(s, ids[i].id, ids[i].len, "", NULL, NULL, 1, 1, T0);
		assert_non_null(c[i]);
	}
	assert_int_equal(sla_conversations(s), NELEM(ids));
	for (i = 0; i < NELEM(ids); i++) {
		assert_ptr_equal(sla_find(s, ids[i].id, ids[i].len), c[i]);
		p = sla_conv_id(c[i], &len);
		assert_int_equal(len, ids[i].len);
		assert_memory_equal(p, ids[i].id, len);
		assert_int_equal(p[len], '\0');
	}
	assert_null(sla_find(s, "a\0d", 3));
	assert_null(sla_find(s, "b", 1));
	assert_int_equal(run_until(s, c[0], T0 + 13 * SEC), 0);
	assert_int_equal(evs[0].conv_len, 3);
	assert_memory_equal(evs[0].conv, "a\0b", 3);
	sla_free(s);
	sla_free(NULL);
	assert_int_equal(nrelease, NELEM(ids));
}

/* sla_agents: strcmp order, whatever the order agents came in. */
static void
test_agents_order(void **state)
{
	static const char *const in[] = { "zed", "alice", "Bob", "张三", "mike",
	    "alice2", "李四", "0day", "bob" };
	static const char *const want[] = { "0day", "Bob", "alice", "alice2",
	    "bob", "mike", "zed", "张三", "李四" };
	struct sla_config	 cfg;
	struct sla		*s;
	char			 id[32];
	size_t			 i;

	(void)state;
	assert_true(strcmp("张三", "李四") < 0);	/* by bytes */
	base_cfg(&cfg);
	s = new_sla(&cfg);
	for (i = 0; i < NELEM(in); i++) {
		snprintf(id, sizeof(id), "c%zu", i);
		turn(s, id, in[i], 1, 1, T0);
		turn(s, id, in[i], 0, 1, T0 + (int64_t)(i + 1) * SEC);
	}
	turn(s, "x", "quiet", 0, 1, T0);	/* no rounds: not listed */
	nfigs = 0;
	sla_agents(s, on_agent, NULL);
	assert_int_equal(nfigs, NELEM(want));
	for (i = 0; i < nfigs; i++)
		assert_string_equal(figs[i].agent, want[i]);
	sla_free(s);
}

/* What an open conversation costs, and that turns on it allocate nothing. */
static void
test_memory_per_conversation(void **state)
{
	struct sla_config	 cfg;
	struct sla		*s;
	struct mallinfo2	 a, b;
	char			 id[32];
	size_t			 i, before;
	enum { N = 100000 };

	(void)state;
	base_cfg(&cfg);
	s = new_sla(&cfg);
	turn(s, "warm", "agent-007", 1, 1, T0);	/* the agent is interned */
	a = mallinfo2();
	for (i = 0; i < N; i++) {
		/* a typical 16-byte id */
		snprintf(id, sizeof(id), "conv-%011zu", i);
		turn(s, id, "agent-007", 1, 1, T0);
	}
	b = mallinfo2();
	if (b.uordblks > a.uordblks)
		print_message("bytes per open conversation (16-byte id, "
		    "malloc overhead and hash buckets included): %.1f\n",
		    (double)(b.uordblks - a.uordblks) / N);
	else
		print_message("bytes per open conversation: not measurable "
		    "under this allocator\n");
	if (allocfail_active()) {
		/* the agent's histograms grow with its first rounds, then stay */
		turn(s, "conv-warm", "agent-007", 1, 1, T0);
		turn(s, "conv-warm", "agent-007", 0, 1, T0 + SEC);
		before = allocfail_calls;
		for (i = 0; i < N; i += 7) {
			snprintf(id, sizeof(id), "conv-%011zu", i);
			turn(s, id, "agent-007", 0, 1, T0 + SEC);
			turn(s, id, "agent-007", 1, 1, T0 + 2 * SEC);
			turn(s, id, "agent-007", 0, 0, T0 + 3 * SEC);
		}
		assert_int_equal(allocfail_calls, before);
	}
	sla_free(s);
}

/* Each allocation may fail: NULL out, nothing half-done, no leak, no crash. */
static void
test_alloc_failure(void **state)
{
	struct sla_config	 cfg;
	struct sla		*s;
	struct sla_conv		*c;
	char			 id[32], agent[32];
	size_t			 i, made;
	uint64_t		 rounds;
	long			 n;
	int			 done;

	(void)state;
	if (!allocfail_active())
		skip();
	base_cfg(&cfg);
	for (n = 0;; n++) {
		reset(NULL);
		allocfail_injected = 0;
		allocfail_after = n;
		if ((s = sla_new(&cfg, on_emit, on_release, NULL)) == NULL) {
			allocfail_after = -1;
			assert_true(allocfail_injected);
			continue;
		}
		made = 0;
		for (i = 0; i < 300; i++) {
			snprintf(id, sizeof(id), "c%zu", i);
			snprintf(agent, sizeof(agent), "ag%zu", i % 40);
			c = sla_turn(s, id, strlen(id), agent, NULL, NULL, 1, 1, T0);
			if (c != NULL) {
				made++;
				assert_ptr_equal(find(s, id), c);
			} else
				assert_null(find(s, id));
		}
		allocfail_after = -1;
		assert_int_equal(sla_conversations(s), made);
		assert_int_equal(sla_open_rounds(s), made);
		/* whatever failed, the engine works again */
		for (i = 0; i < 300; i++) {
			snprintf(id, sizeof(id), "c%zu", i);
			snprintf(agent, sizeof(agent), "ag%zu", i % 40);
			assert_non_null(sla_turn(s, id, strlen(id), agent, NULL, NULL, 0, 1,
			    T0 + SEC));
		}
		nfigs = 0;
		sla_agents(s, on_agent, NULL);
		for (rounds = 0, i = 0; i < nfigs; i++)
			rounds += figs[i].f.answered;
		assert_int_equal(rounds, made);
		assert_int_equal(sla_conversations(s), 300);
		done = !allocfail_injected;
		/* a longer cap grows every histogram; failing that is harmless */
		allocfail_after = n % 7;
		cfg.cap_ms = 900 * SEC;
		sla_set_config(s, &cfg);
		allocfail_after = -1;
		cfg.cap_ms = 600 * SEC;
		for (i = 0; i < 300; i++) {
			snprintf(id, sizeof(id), "c%zu", i);
			turn(s, id, "ag0", 1, 1, T0 + 2 * SEC);
			turn(s, id, "ag0", 0, 1, T0 + 2 * SEC + 800 * SEC);
		}
		assert_true(fig(s, "ag0").p90_ms >= 600 * SEC);
		sla_free(s);
		assert_int_equal(nrelease, 300);
		if (done)
			break;
	}
	print_message("allocation failure allocfail_injected at each of %ld points\n", n);
}


/* --- the day's figures and the waiting list (for dashboards) --------------- */

struct rec_day {
	char		agent[32];
	struct sla_sums	sums;
	uint32_t	hour_rounds[24];
	uint64_t	hour_sum_ms[24];
};
static struct rec_day	days[16];
static size_t		ndays;

static void
on_day(const struct sla_account *w, const struct sla_day *d, void *arg)
{
	const char	*agent = w->agent;
	(void)arg;
	assert_true(ndays < NELEM(days));
	snprintf(days[ndays].agent, sizeof(days[ndays].agent), "%s", agent);
	days[ndays].sums = *d->sums;
	memcpy(days[ndays].hour_rounds, d->hour_rounds, sizeof(days[0].hour_rounds));
	memcpy(days[ndays].hour_sum_ms, d->hour_sum_ms, sizeof(days[0].hour_sum_ms));
	ndays++;
}

static const struct rec_day *
day_of(const struct sla *s, int64_t now, const char *agent)
{
	size_t	i;

	ndays = 0;
	sla_agents_day(s, now, on_day, NULL);
	for (i = 0; i < ndays; i++)
		if (strcmp(days[i].agent, agent) == 0)
			return &days[i];
	return NULL;
}

/*
 * Rounds count on the local day they close (China: UTC+8), events on the
 * day they were due; a new day starts from zero and the sums make the
 * same figures as sla_agents.
 */
static void
test_day_figures(void **state)
{
	struct sla_config	 cfg;
	struct sla		*s;
	const struct rec_day	*d;
	struct sla_figures	 f, all;
	/* 2026-11-22 23:00 in Beijing is 15:00 UTC */
	int64_t			 eve = T0 + 15 * HOUR;

	(void)state;
	base_cfg(&cfg);
	cfg.utc_offset_min = 480;
	s = new_sla(&cfg);

	CUST(s, "a", eve);			/* 23:00 local */
	REPLY(s, "a", "alice", eve + 10 * SEC);
	CUST(s, "a", eve + 20 * MIN);		/* 23:20, reply at 23:20:40: breach */
	REPLY(s, "a", "alice", eve + 20 * MIN + 40 * SEC);
	d = day_of(s, eve + 55 * MIN, "alice");
	assert_non_null(d);
	assert_int_equal(d->sums.rounds, 2);
	assert_int_equal(d->sums.breaches, 1);
	assert_int_equal(d->sums.sum_ms, 50 * SEC);
	assert_int_equal(d->hour_rounds[23], 2);
	assert_int_equal(d->hour_sum_ms[23], 50 * SEC);

	/* opened 23:59:50, answered 00:00:05 the next day: it is tomorrow's */
	CUST(s, "b", eve + 59 * MIN + 50 * SEC);
	REPLY(s, "b", "alice", eve + HOUR + 5 * SEC);
	d = day_of(s, eve + HOUR + 10 * SEC, "alice");
	assert_non_null(d);
	assert_int_equal(d->sums.rounds, 1);
	assert_int_equal(d->sums.breaches, 0);
	assert_int_equal(d->hour_rounds[0], 1);
	assert_int_equal(d->hour_rounds[23], 0);
	assert_int_equal(d->sums.hist[15], 1);
	sla_sums_figures(&d->sums, cfg.cap_ms, &f);
	assert_int_equal(f.rounds, 1);
	assert_int_equal(f.mean_ms, 15 * SEC);
	assert_int_equal(f.p90_ms, 15 * SEC);

	/*
	 * asked about yesterday after the day turned: yesterday's, whole (a
	 * snapshot after midnight still writes its last seconds), and a late
	 * charge of it, an escalation due at 23:59, counts there
	 */
	sla_charge_event(s, "alice", NULL, NULL, SLA_ESCALATE, eve + 59 * MIN);
	d = day_of(s, eve + 30 * MIN, "alice");
	assert_non_null(d);
	assert_int_equal(d->sums.rounds, 2);
	assert_int_equal(d->sums.breaches, 1);
	assert_int_equal(d->sums.escalations, 1);
	assert_int_equal(d->sums.sum_ms, 50 * SEC);
	assert_int_equal(d->hour_rounds[23], 2);
	assert_int_equal(day_of(s, eve + HOUR + 10 * SEC, "alice")->sums.escalations, 0);
	/* and since the start, all three */
	all = fig(s, "alice");
	assert_int_equal(all.rounds, 3);
	assert_int_equal(all.breaches, 1);
	/* two days on: the day before that is gone */
	CUST(s, "b", eve + DAY + HOUR);
	REPLY(s, "b", "alice", eve + DAY + HOUR + 5 * SEC);
	assert_null(day_of(s, eve + 30 * MIN, "alice"));
	d = day_of(s, eve + HOUR + 10 * SEC, "alice");
	assert_non_null(d);
	assert_int_equal(d->sums.rounds, 1);
	assert_int_equal(d->hour_rounds[0], 1);

	/* an agent quiet today is not listed */
	CUST(s, "c", eve + HOUR + 20 * SEC);
	REPLY(s, "c", "bob", eve + HOUR + 21 * SEC);
	assert_null(day_of(s, eve + 2 * DAY, "bob"));
	assert_non_null(day_of(s, eve + HOUR + 30 * SEC, "bob"));
	sla_free(s);
}

/* Sums of two engines merge into the figures of one. */
static void
test_sums_merge(void **state)
{
	struct sla_config	 cfg;
	struct sla		*one, *two, *both;
	struct rec_day		 a, b;
	struct sla_sums		 m;
	struct sla_figures	 fm, fb;
	uint32_t		 hist[601];
	size_t			 i;
	int64_t			 t = T0 + 10 * HOUR;

	(void)state;
	base_cfg(&cfg);
	one = new_sla(&cfg);
	two = new_sla(&cfg);
	both = new_sla(&cfg);
	for (i = 0; i < 20; i++) {
		struct sla	*s = i % 3 ? one : two;
		char		 id[16];

		snprintf(id, sizeof(id), "c-%zu", i);
		CUST(s, id, t + (int64_t)i * MIN);
		CUST(both, id, t + (int64_t)i * MIN);
		if (i % 5 != 4) {
			REPLY(s, id, "alice", t + (int64_t)i * MIN + (int64_t)i * 2 * SEC);
			REPLY(both, id, "alice", t + (int64_t)i * MIN + (int64_t)i * 2 * SEC);
		} else {
			sla_end(s, find(s, id), t + (int64_t)i * MIN + 5 * SEC);
			sla_end(both, find(both, id), t + (int64_t)i * MIN + 5 * SEC);
		}
	}
	a = *day_of(one, t + HOUR, "alice");
	b = *day_of(two, t + HOUR, "alice");
	memset(&m, 0, sizeof(m));
	memset(hist, 0, sizeof(hist));
	m.hist = hist;
	m.nhist = NELEM(hist);
	m.rounds = a.sums.rounds + b.sums.rounds;
	m.answered = a.sums.answered + b.sums.answered;
	m.sum_ms = a.sums.sum_ms + b.sums.sum_ms;
	m.first_rounds = a.sums.first_rounds + b.sums.first_rounds;
	m.first_sum_ms = a.sums.first_sum_ms + b.sums.first_sum_ms;
	m.within_rate = a.sums.within_rate + b.sums.within_rate;
	m.rate_base = a.sums.rate_base + b.sums.rate_base;
	m.breaches = a.sums.breaches + b.sums.breaches;
	/* each histogram as long as its longest round needs, at most the cap's */
	assert_true(a.sums.nhist <= NELEM(hist) && b.sums.nhist <= NELEM(hist));
	for (i = 0; i < a.sums.nhist; i++)
		hist[i] += a.sums.hist[i];
	for (i = 0; i < b.sums.nhist; i++)
		hist[i] += b.sums.hist[i];
	sla_sums_figures(&m, cfg.cap_ms, &fm);
	fb = fig(both, "alice");
	assert_int_equal(fm.rounds, 16);	/* four ended unanswered went to "" */
	assert_int_equal(fm.rounds, fb.rounds);
	assert_int_equal(fm.mean_ms, fb.mean_ms);
	assert_int_equal(fm.p90_ms, fb.p90_ms);
	assert_int_equal(fm.first_mean_ms, fb.first_mean_ms);
	assert_true(fm.rate == fb.rate);
	assert_int_equal(fm.breaches, fb.breaches);
	sla_free(one);
	sla_free(two);
	sla_free(both);
}

struct rec_wait {
	char			conv[16];
	char			agent[16];
	uint64_t		waited, threshold;
	int			first;
	enum sla_round_state	state;
};
static struct rec_wait	waits[8];
static size_t		nwaits;

static void
on_wait(const struct sla_waiting *w, void *arg)
{
	(void)arg;
	assert_true(nwaits < NELEM(waits));
	snprintf(waits[nwaits].conv, sizeof(waits[0].conv), "%.*s",
	    (int)w->conversation_len, w->conversation);
	snprintf(waits[nwaits].agent, sizeof(waits[0].agent), "%s", w->agent);
	waits[nwaits].waited = w->waited_ms;
	waits[nwaits].threshold = w->threshold_ms;
	waits[nwaits].first = w->first;
	waits[nwaits].state = w->state;
	nwaits++;
}

static const struct rec_wait *
wait_of(const struct sla *s, int64_t now, const char *conv)
{
	size_t	i;

	nwaits = 0;
	sla_waiting(s, now, on_wait, NULL);
	for (i = 0; i < nwaits; i++)
		if (strcmp(waits[i].conv, conv) == 0)
			return &waits[i];
	return NULL;
}

/* Open rounds only, with their wait in service time and the last event. */
static void
test_waiting(void **state)
{
	struct sla_config	 cfg;
	struct sla		*s;
	struct sla_conv		*c;
	const struct rec_wait	*w;

	(void)state;
	base_cfg(&cfg);
	s = new_sla(&cfg);
	c = CUST(s, "w-1", T0);
	REPLY(s, "w-1", "alice", T0 + SEC);		/* answered: not waiting */
	CUST(s, "w-2", T0);
	assert_null(wait_of(s, T0 + 2 * SEC, "w-1"));
	w = wait_of(s, T0 + 2 * SEC, "w-2");
	assert_non_null(w);
	assert_int_equal(nwaits, 1);
	assert_int_equal(w->waited, 2 * SEC);
	assert_int_equal(w->threshold, 15 * SEC);
	assert_int_equal(w->first, 1);
	assert_int_equal(w->state, SLA_ROUND_OPEN);

	CUST(s, "w-1", T0 + 10 * SEC);		/* a later round: reply threshold */
	c = find(s, "w-1");
	run_until(s, c, T0 + 35 * SEC);		/* warned at 24 s of 30 */
	w = wait_of(s, T0 + 35 * SEC, "w-1");
	assert_int_equal(w->first, 0);
	assert_int_equal(w->threshold, 30 * SEC);
	assert_string_equal(w->agent, "alice");
	assert_int_equal(w->state, SLA_ROUND_WARNED);
	run_until(s, c, T0 + 41 * SEC);
	assert_int_equal(wait_of(s, T0 + 41 * SEC, "w-1")->state, SLA_ROUND_BREACHED);
	run_until(s, c, T0 + 200 * SEC);
	assert_int_equal(wait_of(s, T0 + 200 * SEC, "w-1")->state, SLA_ROUND_ESCALATED);
	/* not yet run: what the engine has emitted, not what is due */
	assert_int_equal(wait_of(s, T0 + 200 * SEC, "w-2")->state, SLA_ROUND_OPEN);
	sla_free(s);
}


/*
 * The store's side (convstore): a state read from one engine and put into
 * another carries the round over (its open time, its first-ness, what was
 * raised); with charging off nothing is counted until the caller says so.
 */
static void
test_state_put_and_charging(void **state)
{
	struct sla_config	 cfg;
	struct sla		*a, *b;
	struct sla_conv		*c;
	struct sla_conv_state	 st, plan;
	struct sla_figures	 f;

	(void)state;
	base_cfg(&cfg);
	a = new_sla(&cfg);
	b = new_sla(&cfg);
	c = CUST(a, "c-1", T0);
	assert_int_equal(run_until(a, c, T0 + cfg.first_response_ms), 0);
	assert_int_equal(nev, 2);		/* warn and breach */
	sla_conv_get(c, &st);
	assert_true(st.open && st.first && st.had_round);
	assert_int_equal(st.opened, T0);
	assert_int_equal(st.fired, (1u << SLA_WARN) | (1u << SLA_BREACH));
	sla_round_plan(a, c, 1, T0, &plan);
	assert_memory_equal(plan.due, st.due, sizeof(st.due));
	assert_memory_equal(plan.ms, st.ms, sizeof(st.ms));
	assert_int_equal(plan.idle_at, st.idle_at);

	/* the other engine takes over: only the escalation is still to come */
	sla_set_charging(b, 0);
	c = sla_conv_put(b, "c-1", 3, "alice", NULL, NULL, &st);
	assert_non_null(c);
	assert_int_equal(sla_open_rounds(b), 1);
	assert_int_equal(sla_conv_deadline(c), st.due[SLA_ESCALATE]);
	nev = 0;
	assert_int_equal(run_until(b, c, st.due[SLA_ESCALATE]), 0);
	assert_int_equal(nev, 1);
	assert_int_equal(evs[0].type, SLA_ESCALATE);
	assert_int_equal(evs[0].opened, T0);
	/* a re-sent customer turn does not restart the round */
	CUST(b, "c-1", T0 + 200 * SEC);
	assert_int_equal(sla_conv_wait(b, c, T0 + 200 * SEC), 200 * SEC);
	REPLY(b, "c-1", "alice", T0 + 201 * SEC);
	assert_int_equal(fig(b, "alice").rounds, 0);	/* charging is off */
	sla_charge_round(b, &(struct sla_round){ .agent = "alice",
	    .conversation = "c-1", .conversation_len = 3, .opened = T0,
	    .at = T0 + 201 * SEC, .answered = 1, .first = 1 });
	sla_charge_event(b, "alice", NULL, NULL, SLA_ESCALATE, st.due[SLA_ESCALATE]);
	sla_charge_event(b, "alice", NULL, NULL, SLA_WARN, T0);	/* never charged */
	f = fig(b, "alice");
	assert_int_equal(f.rounds, 1);
	assert_int_equal(f.answered, 1);
	assert_int_equal(f.first_mean_ms, 201 * SEC);
	assert_int_equal(f.escalations, 1);
	assert_int_equal(f.breaches, 0);
	/* the first response is remembered: the next round is a later one */
	sla_conv_get(c, &st);
	assert_false(st.open);
	CUST(b, "c-1", T0 + 300 * SEC);
	sla_conv_get(c, &st);
	assert_true(st.open && !st.first);
	assert_int_equal(st.ms[SLA_BREACH], cfg.reply_ms);
	/* putting a closed state closes the round */
	st.open = 0;
	assert_ptr_equal(sla_conv_put(b, "c-1", 3, "", NULL, NULL, &st), c);
	assert_int_equal(sla_open_rounds(b), 0);
	assert_string_equal(sla_conv_agent(b, c), "alice");
	sla_free(a);
	sla_free(b);
}

/* What the round callback saw, and an engine charged from it alone. */
struct rec_rounds {
	struct sla_round	r[16];
	char			agent[16][32];
	char			conv[16][32];
	size_t			n;
	struct sla		*charged;
};

static void
on_round(const struct sla_round *r, void *arg)
{
	struct rec_rounds	*rr = arg;

	assert_true(rr->n < NELEM(rr->r));
	rr->r[rr->n] = *r;
	snprintf(rr->agent[rr->n], sizeof(rr->agent[0]), "%s", r->agent);
	snprintf(rr->conv[rr->n], sizeof(rr->conv[0]), "%.*s",
	    (int)r->conversation_len, r->conversation);
	sla_charge_round(rr->charged, r);
	rr->n++;
}

/*
 * The rounds as they close or end, charging on or off, make the engine's
 * own figures when charged elsewhere (chatmon report --log), and each says
 * who, which conversation, when and how long.
 */
static void
test_round_callback(void **state)
{
	struct sla_config	 cfg;
	struct sla		*s;
	struct sla_conv		*c;
	struct rec_rounds	 rr;
	struct sla_figures	 a, b;
	int			 charging;

	(void)state;
	base_cfg(&cfg);
	for (charging = 1; charging >= 0; charging--) {
		memset(&rr, 0, sizeof(rr));
		s = new_sla(&cfg);
		sla_set_charging(s, charging);
		assert_non_null(rr.charged = sla_new(&cfg, NULL, NULL, NULL));
		sla_set_round_cb(s, on_round, &rr);
		CUST(s, "c-1", T0);
		REPLY(s, "c-1", "alice", T0 + 4 * SEC);		/* first, answered */
		CUST(s, "c-1", T0 + 10 * SEC);
		ROBOT(s, "c-1", "alice", T0 + 11 * SEC);	/* leaves it open */
		REPLY(s, "c-1", "alice", T0 + 50 * SEC);	/* later, slow */
		CUST(s, "c-2", T0 + 60 * SEC);
		c = REPLY(s, "c-2", "bob", T0 + 61 * SEC);
		CUST(s, "c-2", T0 + 70 * SEC);
		sla_end(s, c, T0 + 100 * SEC);			/* unanswered */
		assert_int_equal(rr.n, 4);
		assert_string_equal(rr.agent[0], "alice");
		assert_string_equal(rr.conv[0], "c-1");
		assert_int_equal(rr.r[0].opened, T0);
		assert_int_equal(rr.r[0].at, T0 + 4 * SEC);
		assert_int_equal(rr.r[0].waited_ms, 4 * SEC);
		assert_true(rr.r[0].answered && rr.r[0].first);
		assert_int_equal(rr.r[1].waited_ms, 40 * SEC);
		assert_true(rr.r[1].answered && !rr.r[1].first);
		assert_string_equal(rr.agent[3], "bob");
		assert_string_equal(rr.conv[3], "c-2");
		assert_int_equal(rr.r[3].opened, T0 + 70 * SEC);
		assert_int_equal(rr.r[3].at, T0 + 100 * SEC);
		assert_int_equal(rr.r[3].waited_ms, 30 * SEC);	/* uncapped, unanswered */
		assert_false(rr.r[3].answered);
		if (charging) {
			a = fig(s, "alice");
			b = fig(rr.charged, "alice");
			/* events are not rounds: the caller charges those itself */
			assert_int_equal(a.breaches, 1);
			assert_int_equal(b.breaches, 0);
			b.breaches = a.breaches;
			assert_memory_equal(&a, &b, sizeof(a));
			a = fig(s, "bob");
			b = fig(rr.charged, "bob");
			assert_int_equal(a.breaches, 1);	/* due at the end */
			b.breaches = a.breaches;
			assert_memory_equal(&a, &b, sizeof(a));
			assert_int_equal(b.rounds, 2);
			assert_int_equal(b.answered, 1);
		}
		/* off again: nothing more is said */
		sla_set_round_cb(s, NULL, NULL);
		CUST(s, "c-3", T0 + 200 * SEC);
		REPLY(s, "c-3", "alice", T0 + 201 * SEC);
		assert_int_equal(rr.n, 4);
		sla_free(s);
		sla_free(rr.charged);
	}
}

/* A turn of a shop's conversation. */
static struct sla_conv *
shop_turn(struct sla *s, const char *id, const char *agent, const char *shop,
    const char *queue, int customer, int64_t t)
{
	struct sla_conv	*c;

	c = sla_turn(s, id, strlen(id), agent, shop, queue, customer, 1, t);
	assert_non_null(c);
	return c;
}

/* The figures of agent in (shop, queue), as sla_agents reports them (rounds 0: none). */
static struct sla_figures
shop_fig(const struct sla *s, const char *shop, const char *queue,
    const char *agent)
{
	struct sla_figures	none;
	size_t			i;

	nfigs = 0;
	sla_agents(s, on_agent, NULL);
	for (i = 0; i < nfigs; i++)
		if (strcmp(figs[i].agent, agent) == 0 &&
		    strcmp(figs[i].shop, shop) == 0 &&
		    strcmp(figs[i].queue, queue) == 0)
			return figs[i].f;
	memset(&none, 0, sizeof(none));
	return none;
}

/*
 * Two shops and a queue on one engine: each conversation is judged by its
 * own shop's (or queue's) thresholds and hours, keeps the shop of its first
 * turn, and is charged to its agent within that shop: one agent serving
 * both shops has two sets of figures that add up to what happened.
 */
static void
test_shops(void **state)
{
	struct sla_config	 def, tb, jd, pre;
	struct sla_policy	 pol[3];
	struct sla		*s;
	struct sla_conv		*c;
	const char		*q;
	struct sla_figures	 f;

	(void)state;
	base_cfg(&def);
	tb = jd = pre = def;
	tb.first_response_ms = 10 * SEC;
	tb.reply_ms = 20 * SEC;
	jd.first_response_ms = 30 * SEC;
	jd.reply_ms = 30 * SEC;
	jd.rate_ms = 30 * SEC;
	add_hours(&jd, HM(9, 0), HM(23, 0));	/* JD opens at 09:00 */
	pre.first_response_ms = 5 * SEC;
	pol[0] = (struct sla_policy){ "tmall", "", tb };
	pol[1] = (struct sla_policy){ "jd", "", jd };
	pol[2] = (struct sla_policy){ "tmall", "presale", pre };
	s = new_sla(&def);
	assert_int_equal(sla_set_policies(s, pol, 3), 0);

	/* 10:00 (UTC: no zone here): both shops open */
	shop_turn(s, "t-1", "alice", "tmall", "", 1, T0 + 10 * HOUR);
	shop_turn(s, "j-1", "alice", "jd", "", 1, T0 + 10 * HOUR);
	shop_turn(s, "p-1", "alice", "tmall", "presale", 1, T0 + 10 * HOUR);
	shop_turn(s, "x-1", "alice", "tmall", "aftersale", 1, T0 + 10 * HOUR);
	shop_turn(s, "u-1", "alice", "nowhere", "", 1, T0 + 10 * HOUR);
	shop_turn(s, "n-1", "alice", NULL, NULL, 1, T0 + 10 * HOUR);
	c = find(s, "p-1");
	assert_string_equal(sla_conv_shop(s, c, &q), "tmall");
	assert_string_equal(q, "presale");
	/* each breach at its own threshold: presale 5 s, tmall 10 s (and its
	 * unknown queue), the defaults 15 s (an unknown shop too), jd 30 s */
	assert_int_equal(run_until(s, find(s, "p-1"), T0 + 10 * HOUR + 40 * SEC), 0);
	assert_int_equal(run_until(s, find(s, "t-1"), T0 + 10 * HOUR + 40 * SEC), 0);
	assert_int_equal(run_until(s, find(s, "x-1"), T0 + 10 * HOUR + 40 * SEC), 0);
	assert_int_equal(run_until(s, find(s, "u-1"), T0 + 10 * HOUR + 40 * SEC), 0);
	assert_int_equal(run_until(s, find(s, "n-1"), T0 + 10 * HOUR + 40 * SEC), 0);
	assert_int_equal(run_until(s, find(s, "j-1"), T0 + 10 * HOUR + 40 * SEC), 0);
	assert_int_equal(nev, 12);
	assert_int_equal(evs[1].type, SLA_BREACH);
	assert_string_equal(evs[1].shop, "tmall");
	assert_string_equal(evs[1].queue, "presale");
	assert_int_equal(evs[1].threshold, 5 * SEC);
	assert_int_equal(evs[3].threshold, 10 * SEC);
	assert_string_equal(evs[3].shop, "tmall");
	assert_string_equal(evs[3].queue, "");
	assert_int_equal(evs[5].threshold, 10 * SEC);
	assert_string_equal(evs[5].queue, "aftersale");
	assert_int_equal(evs[7].threshold, 15 * SEC);
	assert_string_equal(evs[7].shop, "nowhere");
	assert_int_equal(evs[9].threshold, 15 * SEC);
	assert_string_equal(evs[9].shop, "");
	assert_int_equal(evs[11].threshold, 30 * SEC);
	assert_string_equal(evs[11].shop, "jd");

	/* a later turn naming another shop does not move the conversation */
	shop_turn(s, "t-1", "alice", "jd", "", 0, T0 + 10 * HOUR + 41 * SEC);
	shop_turn(s, "j-1", "alice", "jd", "", 0, T0 + 10 * HOUR + 20 * SEC + 41 * SEC);
	f = shop_fig(s, "tmall", "", "alice");
	assert_int_equal(f.rounds, 1);
	assert_int_equal(f.mean_ms, 41 * SEC);
	assert_int_equal(f.breaches, 1);
	f = shop_fig(s, "jd", "", "alice");
	assert_int_equal(f.rounds, 1);
	assert_int_equal(f.mean_ms, 61 * SEC);
	assert_int_equal(f.within_rate, 0);	/* JD's rate is 30 s */
	assert_int_equal(f.breaches, 1);
	/* no round charged anywhere else yet */
	assert_int_equal(shop_fig(s, "", "", "alice").rounds, 0);
	assert_int_equal(shop_fig(s, "tmall", "presale", "alice").rounds, 0);
	/* the order: no shop first, then by shop, queue and agent */
	nfigs = 0;
	sla_agents(s, on_agent, NULL);
	assert_int_equal(nfigs, 6);
	assert_string_equal(figs[0].shop, "");
	assert_string_equal(figs[1].shop, "jd");
	assert_string_equal(figs[2].shop, "nowhere");
	assert_string_equal(figs[3].shop, "tmall");
	assert_string_equal(figs[3].queue, "");
	assert_string_equal(figs[4].queue, "aftersale");
	assert_string_equal(figs[5].queue, "presale");

	/* JD's hours: a customer at 08:00 waits from 09:00 */
	c = shop_turn(s, "j-2", "bob", "jd", "", 1, T0 + DAY + 8 * HOUR);
	assert_int_equal(sla_conv_deadline(c), T0 + DAY + 9 * HOUR + 24 * SEC);
	shop_turn(s, "j-2", "bob", "", "", 0, T0 + DAY + 9 * HOUR + 10 * SEC);
	f = shop_fig(s, "jd", "", "bob");
	assert_int_equal(f.rounds, 1);
	assert_int_equal(f.mean_ms, 10 * SEC);
	/* an agent's conversations of every shop end with it */
	sla_end_agent(s, "alice", T0 + 2 * DAY);
	assert_null(find(s, "p-1"));
	assert_null(find(s, "x-1"));
	assert_null(find(s, "u-1"));
	assert_non_null(find(s, "j-2"));
	sla_free(s);
}

/*
 * A reload that changes one shop: its new rounds take the new settings,
 * its open round and every other shop's keep theirs.
 */
static void
test_shops_reload(void **state)
{
	struct sla_config	 def, a, b;
	struct sla_policy	 pol[2];
	struct sla		*s;
	struct sla_conv		*ca, *cb;
	struct sla_conv_state	 st;
	int64_t			 da, db;

	(void)state;
	base_cfg(&def);
	a = b = def;
	a.first_response_ms = 10 * SEC;
	b.first_response_ms = 20 * SEC;
	pol[0] = (struct sla_policy){ "a", "", a };
	pol[1] = (struct sla_policy){ "b", "", b };
	s = new_sla(&def);
	assert_int_equal(sla_set_policies(s, pol, 2), 0);
	ca = shop_turn(s, "a-1", "x", "a", "", 1, T0);
	cb = shop_turn(s, "b-1", "x", "b", "", 1, T0);
	da = sla_conv_deadline(ca);
	db = sla_conv_deadline(cb);
	pol[1].cfg.first_response_ms = 40 * SEC;
	assert_int_equal(sla_set_policies(s, pol, 2), 0);
	assert_int_equal(sla_conv_deadline(ca), da);
	assert_int_equal(sla_conv_deadline(cb), db);
	cb = shop_turn(s, "b-2", "x", "b", "", 1, T0 + SEC);
	assert_int_equal(sla_conv_deadline(cb), T0 + SEC + 32 * SEC);
	ca = shop_turn(s, "a-2", "x", "a", "", 1, T0 + SEC);
	assert_int_equal(sla_conv_deadline(ca), T0 + SEC + 8 * SEC);
	/* the store's word on a conversation's shop wins over a turn seen here */
	cb = shop_turn(s, "m-1", "y", "b", "", 1, T0 + 3 * SEC);
	sla_conv_get(cb, &st);
	assert_ptr_equal(sla_conv_put(s, "m-1", 3, "", "a", "", &st), cb);
	assert_string_equal(sla_conv_shop(s, cb, NULL), "a");
	assert_string_equal(sla_conv_agent(s, cb), "y");
	shop_turn(s, "m-1", "y", "b", "", 0, T0 + 4 * SEC);
	assert_int_equal(shop_fig(s, "a", "", "y").rounds, 1);
	assert_int_equal(shop_fig(s, "b", "", "y").rounds, 0);
	/* a shop gone from the configuration: its new rounds take the defaults */
	assert_int_equal(sla_set_policies(s, pol, 1), 0);
	cb = shop_turn(s, "b-3", "x", "b", "", 1, T0 + 2 * SEC);
	assert_int_equal(sla_conv_deadline(cb), T0 + 2 * SEC + 12 * SEC);
	sla_free(s);
}

/*
 * A reload changes the rounds that open afterwards only: a round open
 * across it is measured, capped and rated at its close (or end) by the
 * hours, cap and rate it opened with, whether the engine charges it or the
 * caller does (sla_charge_round, the daemon with Redis), and whether the
 * settings are the top level's or a shop's.
 */
static void
test_reload_keeps_open_rounds(void **state)
{
	struct sla_config	 cfg, cfg2;
	struct sla_policy	 pol[1];
	struct sla		*s;
	struct sla_conv		*c;
	struct sla_conv_state	 st;
	struct sla_figures	 f;
	int64_t			 t8 = T0 + HM(8, 0) * MIN;

	(void)state;
	base_cfg(&cfg);
	cfg.rate_ms = 20 * SEC;
	cfg2 = cfg;
	cfg2.rate_ms = 60 * SEC;
	cfg2.cap_ms = 10 * SEC;
	add_hours(&cfg2, HM(8, 0), HM(9, 0));	/* not at T0, midnight */
	pol[0] = (struct sla_policy){ "a", "", cfg };
	s = new_sla(&cfg);
	assert_int_equal(sla_set_policies(s, pol, 1), 0);
	turn(s, "old", "amy", 1, 1, T0);
	turn(s, "gone", "cy", 1, 1, T0);
	c = turn(s, "wait", "cy", 1, 1, T0);
	shop_turn(s, "shop", "amy", "a", "", 1, T0);
	sla_set_config(s, &cfg2);
	pol[0].cfg = cfg2;
	assert_int_equal(sla_set_policies(s, pol, 1), 0);
	/* still waiting in the old hours: 50 s, not 0 */
	assert_int_equal(sla_conv_wait(s, c, T0 + 50 * SEC), 50 * SEC);
	/* 40 s by the old settings: not 0, not capped at 10 s, not within */
	REPLY(s, "old", "amy", T0 + 40 * SEC);
	f = fig(s, "amy");
	assert_int_equal(f.rounds, 1);
	assert_int_equal(f.mean_ms, 40 * SEC);
	assert_int_equal(f.within_rate, 0);
	shop_turn(s, "shop", "amy", "a", "", 0, T0 + 40 * SEC);
	f = shop_fig(s, "a", "", "amy");
	assert_int_equal(f.mean_ms, 40 * SEC);
	assert_int_equal(f.within_rate, 0);
	/* unanswered: the old cap, 600 s, not the new 10 s */
	sla_end(s, find(s, "gone"), T0 + 100 * SEC);
	assert_int_equal(fig(s, "cy").mean_ms, 600 * SEC);
	/* a round opened after the reload: its hours, cap and rate */
	turn(s, "new", "bob", 1, 1, t8 - MIN);
	REPLY(s, "new", "bob", t8 + 30 * SEC);
	f = fig(s, "bob");
	assert_int_equal(f.mean_ms, 10 * SEC);	/* 30 s of service, capped */
	assert_int_equal(f.within_rate, 1);
	/* the same round of a conversation held here opens with the new ones */
	turn(s, "old", "amy", 1, 1, t8 - MIN);
	REPLY(s, "old", "amy", t8 + 30 * SEC);
	f = fig(s, "amy");
	assert_int_equal(f.rounds, 2);
	assert_int_equal(f.mean_ms, 25 * SEC);	/* (40 + 10) / 2 */
	assert_int_equal(f.within_rate, 1);
	sla_free(s);

	/* the caller charges (Redis): the round held here keeps its settings */
	s = new_sla(&cfg);
	sla_set_charging(s, 0);
	c = turn(s, "r-1", "dee", 1, 1, T0);
	sla_conv_get(c, &st);
	assert_ptr_equal(sla_conv_put(s, "r-1", 3, "dee", NULL, NULL, &st), c);
	sla_set_config(s, &cfg2);
	assert_ptr_equal(sla_conv_put(s, "r-1", 3, "dee", NULL, NULL, &st), c);
	REPLY(s, "r-1", "dee", T0 + 40 * SEC);
	assert_int_equal(fig(s, "dee").rounds, 0);
	sla_charge_round(s, &(struct sla_round){ .agent = "dee", .shop = "",
	    .queue = "", .conversation = "r-1", .conversation_len = 3,
	    .opened = T0, .at = T0 + 40 * SEC, .answered = 1, .first = 1 });
	f = fig(s, "dee");
	assert_int_equal(f.rounds, 1);
	assert_int_equal(f.mean_ms, 40 * SEC);
	assert_int_equal(f.within_rate, 0);
	/* a round not held here: its shop's settings now */
	sla_charge_round(s, &(struct sla_round){ .agent = "eve", .shop = "",
	    .queue = "", .conversation = "r-2", .conversation_len = 3,
	    .opened = T0, .at = t8 + 30 * SEC, .answered = 1, .first = 1 });
	f = fig(s, "eve");
	assert_int_equal(f.mean_ms, 10 * SEC);
	assert_int_equal(f.within_rate, 1);
	/*
	 * a round taken from the store, opened elsewhere: the settings when
	 * it was taken here (cfg2's hours: no service time before 08:00, so
	 * its whole wait was outside them and it is in no figure)
	 */
	st.opened = T0 - SEC;
	assert_non_null(sla_conv_put(s, "r-3", 3, "fay", NULL, NULL, &st));
	sla_set_config(s, &cfg);
	sla_charge_round(s, &(struct sla_round){ .agent = "fay", .shop = "",
	    .queue = "", .conversation = "r-3", .conversation_len = 3,
	    .opened = T0 - SEC, .at = T0 + 39 * SEC, .answered = 1 });
	f = fig(s, "fay");
	assert_int_equal(f.rounds, 0);
	sla_free(s);
}

/*
 * Every shop's figures fall on the engine's days and hours (the top
 * level's sla.timezone: what a report and the dashboard name), while a
 * shop's own zone keeps its service hours and its buyers' days; and ids
 * a peer makes up cannot grow the engine: past 1 023 (shop, queue)
 * pairs, new ones count as no shop.
 */
static void
test_shops_day_and_limit(void **state)
{
	struct sla_config	 def, east, west;
	struct sla_policy	 pol[2];
	struct sla		*s;
	const struct rec_day	*d;
	char			 id[32], shop[32];
	const char		*q;
	size_t			 i;

	(void)state;
	base_cfg(&def);
	east = def;
	east.utc_offset_min = 8 * 60;
	west = def;
	west.utc_offset_min = -5 * 60;
	west.rate_scope = SLA_RATE_BUYER_DAY;
	pol[0] = (struct sla_policy){ "cn", "", east };
	pol[1] = (struct sla_policy){ "us", "", west };
	s = new_sla(&def);
	assert_int_equal(sla_set_policies(s, pol, 2), 0);
	/* 20:00 UTC is 04:00 the next day at +08:00: still the engine's day */
	shop_turn(s, "c-1", "amy", "cn", "", 1, T0 + 20 * HOUR);
	shop_turn(s, "c-1", "amy", "", "", 0, T0 + 20 * HOUR + SEC);
	shop_turn(s, "d-1", "amy", "", "", 1, T0 + 20 * HOUR);
	shop_turn(s, "d-1", "amy", "", "", 0, T0 + 20 * HOUR + SEC);
	ndays = 0;
	sla_agents_day(s, T0 + 21 * HOUR, on_day, NULL);
	assert_int_equal(ndays, 2);	/* amy in cn and amy with no shop */
	assert_int_equal(days[0].hour_rounds[20] + days[1].hour_rounds[20], 2);
	ndays = 0;
	sla_agents_day(s, T0 + DAY + 1 * HOUR, on_day, NULL);
	assert_int_equal(ndays, 0);	/* the engine's day is over for both */

	/*
	 * A buyer of us (-05:00) on two of its days, 22:50 and 08:10 there,
	 * one day of the engine (UTC): two buyer days, the first within the
	 * 3-minute rate, the second not.
	 */
	shop_turn(s, "u-1", "bob", "us", "", 1, T0 + DAY + 3 * HOUR + 50 * MIN);
	shop_turn(s, "u-1", "bob", "us", "", 0, T0 + DAY + 3 * HOUR + 50 * MIN +
	    5 * SEC);
	shop_turn(s, "u-1", "bob", "us", "", 1, T0 + DAY + 13 * HOUR + 10 * MIN);
	shop_turn(s, "u-1", "bob", "us", "", 0, T0 + DAY + 13 * HOUR + 14 * MIN);
	assert_non_null(d = day_of(s, T0 + DAY + 14 * HOUR, "bob"));
	assert_int_equal(d->sums.rounds, 2);
	assert_int_equal(d->sums.rate_base, 2);
	assert_int_equal(d->sums.within_rate, 1);
	assert_int_equal(d->hour_rounds[3] + d->hour_rounds[13], 2);
	/*
	 * A buyer day that spans two of the engine's days: its first round
	 * counted on the first; a late round the next day spoils it, and the
	 * next day's own buyer day (u-3) keeps its count.
	 */
	shop_turn(s, "u-2", "bob", "us", "", 1, T0 + DAY + 23 * HOUR);
	shop_turn(s, "u-2", "bob", "us", "", 0, T0 + DAY + 23 * HOUR + 5 * SEC);
	shop_turn(s, "u-3", "bob", "us", "", 1, T0 + 2 * DAY + 30 * MIN);
	shop_turn(s, "u-3", "bob", "us", "", 0, T0 + 2 * DAY + 30 * MIN + 5 * SEC);
	shop_turn(s, "u-2", "bob", "us", "", 1, T0 + 2 * DAY + 1 * HOUR);
	shop_turn(s, "u-2", "bob", "us", "", 0, T0 + 2 * DAY + 1 * HOUR + 4 * MIN);
	assert_non_null(d = day_of(s, T0 + 2 * DAY + 2 * HOUR, "bob"));
	assert_int_equal(d->sums.rounds, 2);
	assert_int_equal(d->sums.rate_base, 1);
	assert_int_equal(d->sums.within_rate, 1);

	for (i = 0; i < 1100; i++) {
		snprintf(id, sizeof(id), "z-%zu", i);
		snprintf(shop, sizeof(shop), "s%zu", i);
		shop_turn(s, id, "amy", shop, "", 1, T0);
	}
	assert_string_equal(sla_conv_shop(s, find(s, "z-1020"), &q), "s1020");
	assert_string_equal(sla_conv_shop(s, find(s, "z-1099"), &q), "");
	assert_string_equal(q, "");
	sla_free(s);
}

/*
 * Buyers' days of shops whose zones are far apart (+14:00 and -12:00, the
 * widest a configuration takes): at 11:30 UTC the first is two local days
 * ahead of the second, and the second's buyer's day still counts.
 */
static void
test_buyer_days_far_apart(void **state)
{
	struct sla_config	 def, east, west;
	struct sla_policy	 pol[2];
	struct sla		*s;
	const struct rec_day	*d;

	(void)state;
	base_cfg(&def);
	east = def;
	east.utc_offset_min = 14 * 60;
	east.rate_scope = SLA_RATE_BUYER_DAY;
	west = def;
	west.utc_offset_min = -12 * 60;
	west.rate_scope = SLA_RATE_BUYER_DAY;
	pol[0] = (struct sla_policy){ "east", "", east };
	pol[1] = (struct sla_policy){ "west", "", west };
	s = new_sla(&def);
	assert_int_equal(sla_set_policies(s, pol, 2), 0);
	shop_turn(s, "e-1", "amy", "east", "", 1, T0 + 11 * HOUR + 30 * MIN);
	shop_turn(s, "e-1", "amy", "east", "", 0, T0 + 11 * HOUR + 30 * MIN + 5 * SEC);
	shop_turn(s, "w-1", "bob", "west", "", 1, T0 + 11 * HOUR + 30 * MIN + 6 * SEC);
	shop_turn(s, "w-1", "bob", "west", "", 0, T0 + 11 * HOUR + 30 * MIN + 10 * SEC);
	assert_non_null(d = day_of(s, T0 + 12 * HOUR, "amy"));
	assert_int_equal(d->sums.rate_base, 1);
	assert_int_equal(d->sums.within_rate, 1);
	assert_non_null(d = day_of(s, T0 + 12 * HOUR, "bob"));
	assert_int_equal(d->sums.rounds, 1);
	assert_int_equal(d->sums.rate_base, 1);
	assert_int_equal(d->sums.within_rate, 1);
	sla_free(s);
}

/*
 * The platforms' rates: every round (Taobao), the first question only
 * (JD), each buyer's day within only when all its rounds were
 * (Pinduoduo), counted for the agent of the day's first round.
 */
static void
test_rate_scopes(void **state)
{
	struct sla_config	 def, jd, pdd;
	struct sla_policy	 pol[2];
	struct sla		*s;
	struct sla_figures	 f;

	(void)state;
	base_cfg(&def);
	def.rate_ms = 30 * SEC;
	jd = pdd = def;
	jd.rate_scope = SLA_RATE_FIRST;
	pdd.rate_scope = SLA_RATE_BUYER_DAY;
	pol[0] = (struct sla_policy){ "jd", "", jd };
	pol[1] = (struct sla_policy){ "pdd", "", pdd };
	s = new_sla(&def);
	assert_int_equal(sla_set_policies(s, pol, 2), 0);
	/* each shop: a conversation answered in 10 s then 40 s, one in 40 s then 10 s */
	static const char *const shops[] = { "", "jd", "pdd" };
	for (size_t k = 0; k < 3; k++) {
		char	a[16], b[16];

		snprintf(a, sizeof(a), "%s-a", shops[k]);
		snprintf(b, sizeof(b), "%s-b", shops[k]);
		shop_turn(s, a, "amy", shops[k], "", 1, T0);
		shop_turn(s, a, "amy", shops[k], "", 0, T0 + 10 * SEC);
		shop_turn(s, a, "amy", shops[k], "", 1, T0 + MIN);
		shop_turn(s, a, "amy", shops[k], "", 0, T0 + MIN + 40 * SEC);
		shop_turn(s, b, "amy", shops[k], "", 1, T0);
		shop_turn(s, b, "amy", shops[k], "", 0, T0 + 40 * SEC);
		shop_turn(s, b, "amy", shops[k], "", 1, T0 + MIN);
		shop_turn(s, b, "bob", shops[k], "", 0, T0 + MIN + 10 * SEC);
	}
	f = shop_fig(s, "", "", "amy");
	assert_int_equal(f.rate_base, 3);		/* every round */
	assert_int_equal(f.within_rate, 1);
	f = shop_fig(s, "jd", "", "amy");
	assert_int_equal(f.rate_base, 2);		/* the first questions */
	assert_int_equal(f.within_rate, 1);
	assert_true(f.rate == 0.5);
	f = shop_fig(s, "pdd", "", "amy");
	assert_int_equal(f.rounds, 3);
	assert_int_equal(f.rate_base, 2);		/* two buyers today, both amy's first */
	assert_int_equal(f.within_rate, 0);		/* each had a slow round */
	f = shop_fig(s, "pdd", "", "bob");
	assert_int_equal(f.rounds, 1);
	assert_int_equal(f.rate_base, 0);		/* bob had no buyer's first round */
	/* the next day is a new day for the same buyer */
	shop_turn(s, "pdd-a", "bob", "pdd", "", 1, T0 + DAY);
	shop_turn(s, "pdd-a", "bob", "pdd", "", 0, T0 + DAY + 5 * SEC);
	f = shop_fig(s, "pdd", "", "bob");
	assert_int_equal(f.rate_base, 1);
	assert_int_equal(f.within_rate, 1);
	/* a round of a day already let go changes nothing */
	sla_charge_round(s, &(struct sla_round){ .agent = "bob", .shop = "pdd",
	    .queue = "", .conversation = "pdd-z", .conversation_len = 5,
	    .opened = T0 - 2 * DAY, .at = T0 - 2 * DAY + SEC, .answered = 1 });
	f = shop_fig(s, "pdd", "", "bob");
	assert_int_equal(f.rate_base, 1);
	assert_int_equal(f.rounds, 3);
	sla_free(s);
}

/*
 * p90 is never above the cap when the cap is in its slot (a round counted
 * as a cap of a fraction of a second); rounds above a cap a reload lowered
 * since keep their time (found by review: a 2.5 s round's p90 read 1 s).
 */
static void
test_p90_and_a_lowered_cap(void **state)
{
	uint32_t		 hist[8] = { 0 };
	struct sla_sums		 u = { 0 };
	struct sla_figures	 f;

	(void)state;
	u.hist = hist;
	u.nhist = 8;
	u.rounds = u.answered = 1;
	u.sum_ms = 2500;
	hist[sla_hist_slot(3)] = 1;		/* 2.5 s: the 3 s slot */
	sla_sums_figures(&u, 600000, &f);
	assert_int_equal(f.p90_ms, 3000);
	sla_sums_figures(&u, 1000, &f);		/* the cap lowered since */
	assert_int_equal(f.p90_ms, 3000);
	sla_sums_figures(&u, 2500, &f);		/* counted as a 2.5 s cap */
	assert_int_equal(f.p90_ms, 2500);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_p90_and_a_lowered_cap, reset),
		cmocka_unit_test_setup(test_burst_is_one_round, reset),
		cmocka_unit_test_setup(test_first_vs_later, reset),
		cmocka_unit_test_setup(test_events_in_order_once, reset),
		cmocka_unit_test_setup(test_reply_cancels, reset),
		cmocka_unit_test_setup(test_robot_reply_does_not_close, reset),
		cmocka_unit_test_setup(test_robot_greeting_opens_nothing, reset),
		cmocka_unit_test_setup(test_agent_turn_without_round, reset),
		cmocka_unit_test_setup(test_agent_attribution, reset),
		cmocka_unit_test_setup(test_hours_across_midnight, reset),
		cmocka_unit_test_setup(test_hours_several_days_and_windows, reset),
		cmocka_unit_test_setup(test_utc_offset, reset),
		cmocka_unit_test_setup(test_service_vs_reference, reset),
		cmocka_unit_test_setup(test_service_long_spans, reset),
		cmocka_unit_test_setup(test_taobao_profile, reset),
		cmocka_unit_test_setup(test_p90_and_mean_exact, reset),
		cmocka_unit_test_setup(test_hist_slots, reset),
		cmocka_unit_test_setup(test_rounds_outside_hours, reset),
		cmocka_unit_test_setup(test_agents_bounded, reset),
		cmocka_unit_test_setup(test_histogram_all_agents, reset),
		cmocka_unit_test_setup(test_p90_coarse, reset),
		cmocka_unit_test_setup(test_first_mean_and_rate, reset),
		cmocka_unit_test_setup(test_idle_expiry, reset),
		cmocka_unit_test_setup(test_transfer_unanswered, reset),
		cmocka_unit_test_setup(test_round_callback, reset),
		cmocka_unit_test_setup(test_end_agent, reset),
		cmocka_unit_test_setup(test_late_caller, reset),
		cmocka_unit_test_setup(test_set_config, reset),
		cmocka_unit_test_setup(test_many_conversations, reset),
		cmocka_unit_test_setup(test_binary_ids, reset),
		cmocka_unit_test_setup(test_agents_order, reset),
		cmocka_unit_test_setup(test_memory_per_conversation, reset),
		cmocka_unit_test_setup(test_day_figures, reset),
		cmocka_unit_test_setup(test_sums_merge, reset),
		cmocka_unit_test_setup(test_waiting, reset),
		cmocka_unit_test_setup(test_alloc_failure, reset),
		cmocka_unit_test_setup(test_state_put_and_charging, reset),
		cmocka_unit_test_setup(test_shops, reset),
		cmocka_unit_test_setup(test_shops_reload, reset),
		cmocka_unit_test_setup(test_reload_keeps_open_rounds, reset),
		cmocka_unit_test_setup(test_shops_day_and_limit, reset),
		cmocka_unit_test_setup(test_rate_scopes, reset),
		cmocka_unit_test_setup(test_buyer_days_far_apart, reset),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
