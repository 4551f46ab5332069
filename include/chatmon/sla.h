/* sla: response-time rounds per conversation, their deadlines and per-agent figures (pure; the caller passes the time). */
#ifndef CHATMON_SLA_H
#define CHATMON_SLA_H

#include <stddef.h>
#include <stdint.h>

/*
 * Times are wall-clock milliseconds since the epoch (int64_t). The engine
 * never reads a clock: the daemon passes the real time, `chatmon replay` a
 * virtual one, the tests a fake one.
 *
 * A round opens at the first customer turn after the agent's last reply in
 * a conversation (later customer turns of the same burst do not restart it)
 * and closes at the next agent turn that counts as a reply. Its wait is the
 * service time between open and close: outside the service hours the clock
 * does not run. The first round of a conversation is judged against
 * first_response_ms, the others against reply_ms. Events per round, each at
 * most once, in this order, a reply cancelling those still to come:
 *   warn      at warn_at * threshold of service time,
 *   breach    at the threshold,
 *   escalate  at escalate_ms.
 */

#define SLA_MAX_HOURS	8

struct sla_hours {			/* a daily service window, local time */
	uint16_t	from_min;	/* minutes after midnight, 0..1439 */
	uint16_t	to_min;		/* 1..1440; to < from: runs past midnight */
};

/*
 * What the N-minute reply rate is the share of (docs/sla.md, "Platform
 * measures"): every round (Taobao), the first round of each conversation
 * (JD's first question), or each buyer's day, within only when every
 * round of it was (Pinduoduo).
 */
enum sla_rate_scope {
	SLA_RATE_ROUNDS,
	SLA_RATE_FIRST,
	SLA_RATE_BUYER_DAY,
};

struct sla_config {
	uint64_t	 first_response_ms;
	uint64_t	 reply_ms;
	double		 warn_at;	/* 0 < warn_at < 1 */
	uint64_t	 escalate_ms;	/* > reply_ms */
	uint64_t	 idle_ms;	/* a conversation with no turn this long ends */
	uint64_t	 cap_ms;	/* a round counts at most this in the figures (600 s) */
	uint64_t	 rate_ms;	/* the N-minute reply rate's N (180 s) */
	int		 rate_scope;	/* enum sla_rate_scope */
	struct sla_hours hours[SLA_MAX_HOURS];
	size_t		 nhours;	/* 0: always in service */
	/*
	 * Local time = UTC + this: the clock of the service hours and of a
	 * buyer's day (a shop's own zone). The engine's own settings' (sla_new,
	 * sla_set_config: the top level's sla.timezone) also place the figures
	 * of every shop on their days and hours (sla_agents_day).
	 */
	int32_t		 utc_offset_min;
};

enum sla_event_type {
	SLA_WARN,
	SLA_BREACH,
	SLA_ESCALATE,
};

/* What the engine reports; strings are the engine's, valid during the callback. */
struct sla_event {
	enum sla_event_type	 type;
	const char		*conversation;
	size_t			 conversation_len;
	const char		*agent;		/* the conversation's agent ("" unknown) */
	const char		*shop;		/* the conversation's shop ("" none) */
	const char		*queue;		/* and queue ("" none) */
	int			 first;		/* the first round of the conversation */
	uint64_t		 waited_ms;	/* service time waited so far */
	uint64_t		 threshold_ms;	/* the round's threshold (escalate: escalate_ms) */
	int64_t			 due;		/* when it was due (wall ms) */
	int64_t			 opened;	/* when the round opened */
	struct sla_conv		*conv;		/* the conversation (its udata is the caller's) */
};

struct sla;
struct sla_conv;	/* one conversation, owned by the engine */

/*
 * Callbacks: emit for every event; release when a conversation is freed
 * (ended, idle, or sla_free), so the caller can drop what it attached with
 * sla_conv_set_udata. Neither may call back into the engine.
 */
typedef void (*sla_emit_cb)(const struct sla_event *, void *arg);
typedef void (*sla_release_cb)(struct sla_conv *, void *udata, void *arg);

/* cfg is copied. NULL on ENOMEM. */
struct sla *sla_new(const struct sla_config *cfg, sla_emit_cb emit,
	    sla_release_cb release, void *arg);
/*
 * Applies to rounds that open from now on; open rounds keep their
 * deadlines, and are measured, capped and rated when they close or end by
 * the settings they opened with.
 */
void	sla_set_config(struct sla *, const struct sla_config *cfg);

/*
 * Shops and queues with settings of their own. A conversation keeps the
 * shop and queue of its first turn and is judged by the policy of (shop,
 * queue), else of (shop, ""), else by the engine's cfg; its rounds are
 * charged to its agent within (shop, queue), so the figures of one agent
 * in two shops stay apart. The first 1 023 (shop, queue) pairs seen are
 * told apart; later ones count as no shop.
 */
struct sla_policy {
	const char		*shop;		/* not "" */
	const char		*queue;		/* "": the shop's own */
	struct sla_config	 cfg;
};
/* v is copied; applies as sla_set_config does. 0, or -1 on ENOMEM (nothing changed). */
int	sla_set_policies(struct sla *, const struct sla_policy *v, size_t n);

struct config;
/* Policies held with their strings: what sla_set_policies keeps (zeroed: none). */
struct sla_policies {
	struct sla_policy	*v;
	size_t			 n;
	char			*str;	/* every shop and queue string, one block */
};
/* Replaces p's with a copy of v; 0, or -1 on ENOMEM (p as it was). */
int	sla_policies_set(struct sla_policies *p, const struct sla_policy *v,
	    size_t n);
/* Replaces p's with the policies of a configuration's shops (sla_policies_from); 0 or -1. */
int	sla_policies_load(struct sla_policies *p, const struct config *);
void	sla_policies_clear(struct sla_policies *);
/* The settings of (shop, queue) among v: the queue's policy, else the shop's; NULL when none. */
const struct sla_config *sla_policy_find(const struct sla_policy *v, size_t n,
	    const char *shop, const char *queue);
/*
 * The policies of a configuration's shops and queues, their strings the
 * configuration's: *v is the caller's to free(). 0, or -1 on ENOMEM.
 */
int	sla_policies_from(const struct config *, struct sla_policy **v,
	    size_t *n);
/* Frees every conversation (release is called for each) and the engine. */
void	sla_free(struct sla *);

/*
 * A turn in conversation conv (len bytes) at now. customer: 1 for the
 * customer's turn, 0 for the agent's; counts: 0 for a robot's or an
 * auto-reply's turn, which neither closes a round (the agent's side) nor
 * opens one (the backend's: the platform's greeting or rating invite is no
 * buyer waiting). agent
 * is the session's agent id ("" unknown), copied; shop and queue (NULL or
 * "": none) are taken only when the turn creates the conversation. Events
 * that were due at or before now are emitted first. Returns the
 * conversation (created on its first turn), or NULL on ENOMEM.
 */
struct sla_conv *sla_turn(struct sla *, const char *conv, size_t len,
	    const char *agent, const char *shop, const char *queue,
	    int customer, int counts, int64_t now);
/* The conversation by id, or NULL. */
struct sla_conv *sla_find(struct sla *, const char *conv, size_t len);

/*
 * When the caller must next call sla_expire for conv: the earliest of its
 * next event and its idle end (wall ms); INT64_MAX when none.
 */
int64_t	sla_conv_deadline(const struct sla_conv *);
/*
 * Emits every event of conv due at or before now; ends conv if it has been
 * idle for idle_ms (its open round then counts as unanswered; it ended at
 * its idle deadline, so nothing due after that is emitted). Returns 1
 * when conv was ended and freed, else 0.
 */
int	sla_expire(struct sla *, struct sla_conv *, int64_t now);
/* Ends conv now (an end frame); an open round counts as unanswered. Frees conv. */
void	sla_end(struct sla *, struct sla_conv *, int64_t now);
/* Ends every conversation of agent (its connection closed). */
void	sla_end_agent(struct sla *, const char *agent, int64_t now);

void	sla_conv_set_udata(struct sla_conv *, void *);
void	*sla_conv_udata(const struct sla_conv *);
/* The customer's current wait in service time (0 when no round is open). */
uint64_t sla_conv_wait(const struct sla *, const struct sla_conv *, int64_t now);
const char *sla_conv_id(const struct sla_conv *, size_t *len);
/* The conversation's agent ("" unknown); the engine's string. */
const char *sla_conv_agent(const struct sla *, const struct sla_conv *);
/* The conversation's shop ("" none), and its queue in *queue; the engine's strings. */
const char *sla_conv_shop(const struct sla *, const struct sla_conv *,
	    const char **queue);

/*
 * A conversation's round as a shared store holds it (design.md: Redis is
 * the source of truth for it, each engine a cache). Times are wall ms;
 * INT64_MAX is "never". fired has bit 1 << SLA_WARN etc. for each event
 * already emitted for the open round.
 */
struct sla_conv_state {
	int		 open;		/* a round is open */
	int		 first;		/* the open round is the first */
	int		 had_round;	/* a round was ever opened (first response remembered) */
	unsigned	 fired;
	int64_t		 opened;	/* the open round's start */
	int64_t		 due[3];	/* by enum sla_event_type */
	uint64_t	 ms[3];		/* service time after opened; 0 off */
	int64_t		 idle_at;	/* the conversation ends here unless a turn comes */
};

/* conv's state now. */
void	sla_conv_get(const struct sla_conv *, struct sla_conv_state *);
/*
 * Makes conv (found, or created) hold st and its agent as sla_turn takes
 * it; a shop (NULL or "": keep the conversation's) is the store's word on
 * the conversation's shop and queue and replaces what a turn seen here
 * said. Nothing is emitted or charged, the caller re-arms its timer. NULL
 * on ENOMEM.
 */
struct sla_conv *sla_conv_put(struct sla *, const char *conv, size_t len,
	    const char *agent, const char *shop, const char *queue,
	    const struct sla_conv_state *st);
/* The round that a customer turn at now would open in conv (first or not), and the idle end. */
void	sla_round_plan(const struct sla *, const struct sla_conv *, int first,
	    int64_t now, struct sla_conv_state *);
/*
 * When conv, its last turn at now, ends idle; INT64_MAX never. open: a
 * round is open after that turn: idle then counts in service time (a
 * buyer waiting while the shop is closed is not written off); with none
 * open, in wall time (a buyer back the next morning starts a new
 * conversation, as a platform's session does).
 */
int64_t	sla_idle_at(const struct sla *, const struct sla_conv *, int open,
	    int64_t now);
/*
 * Charging off: rounds closed or ended and breaches and escalations
 * emitted are not counted in the figures by the engine; the caller
 * charges what the shared store says happened once (sla_charge_*).
 * On by default.
 */
void	sla_set_charging(struct sla *, int on);
/*
 * One round into the figures of its agent in its shop and queue (NULL or
 * "": none), as the round callback reports it: answered at `at`, or ended
 * unanswered at `at` (waited_ms is not read: it is measured here). Its
 * conversation (NULL: not known) is what a per-buyer-per-day rate counts.
 * It is measured, capped and rated by the settings the engine held it
 * with when the engine holds that conversation with that round (same
 * shop, same open time, open or closed here), else by its shop's now.
 */
struct sla_round;
/* 0 when the round is in no figure (its whole wait outside service hours), else 1. */
int	sla_charge_round(struct sla *, const struct sla_round *);
/* A breach or escalation (a warning is not charged), due at `at`. */
void	sla_charge_event(struct sla *, const char *agent, const char *shop,
	    const char *queue, enum sla_event_type, int64_t at);

/*
 * A round as it closes (a reply) or ends unanswered (an end, idle, the
 * agent gone), charged or not: what a log of rounds keeps (chatmon report
 * --log). Strings are the engine's, valid during the callback.
 */
struct sla_round {
	const char	*agent;		/* charged to, as the figures are ("" unknown) */
	const char	*shop;		/* the conversation's ("" none) */
	const char	*queue;
	const char	*conversation;
	size_t		 conversation_len;
	int64_t		 opened;
	int64_t		 at;		/* when it closed or ended */
	uint64_t	 waited_ms;	/* service time opened..at, uncapped */
	int		 answered;
	int		 first;
};

typedef void (*sla_round_cb)(const struct sla_round *, void *arg);
/* Calls cb with arg for every round that closes or ends from now on; NULL stops. cb may not call back into the engine. */
void	sla_set_round_cb(struct sla *, sla_round_cb cb, void *arg);

/* Per-agent figures, over every round closed or ended so far. */
struct sla_figures {
	uint64_t	rounds;		/* closed or ended rounds */
	uint64_t	answered;
	uint64_t	mean_ms;	/* each round capped at cap_ms, unanswered = cap_ms */
	uint64_t	p90_ms;		/* same rule, to the second */
	uint64_t	first_rounds;
	uint64_t	first_mean_ms;	/* first rounds only, same rule */
	uint64_t	breaches;
	uint64_t	escalations;
	uint64_t	within_rate;	/* of rate_base, answered within rate_ms */
	uint64_t	rate_base;	/* what the rate counts (enum sla_rate_scope) */
	double		rate;		/* within_rate / rate_base; 0 when none */
};

/* Whose figures: an agent within a shop and queue ("" none). The engine's strings. */
struct sla_account {
	const char	*agent;
	const char	*shop;
	const char	*queue;
};

/*
 * Calls cb for every agent with rounds or events, in order of shop, queue
 * and agent id (no shop first).
 */
void	sla_agents(const struct sla *, void (*cb)(const struct sla_account *,
	    const struct sla_figures *, void *), void *arg);

/*
 * The sums the figures are made of. They add up, so the sums of several
 * engines (several chatmond instances) make one agent's figures.
 */
struct sla_sums {
	uint64_t	 rounds;
	uint64_t	 answered;
	uint64_t	 sum_ms;	/* each round capped, unanswered = cap */
	uint64_t	 first_rounds;
	uint64_t	 first_sum_ms;
	uint64_t	 breaches;
	uint64_t	 escalations;
	uint64_t	 within_rate;	/* of rate_base */
	uint64_t	 rate_base;	/* rounds, first rounds or buyer-days */
	uint32_t	*hist;		/* rounds by slot of their whole seconds (rounded up) */
	size_t		 nhist;		/* the last counts the cap and above */
};

/*
 * The most whole seconds a round counted in histogram slot took: a slot a
 * second up to 1 024 s, then 64 slots to each power of two (each within
 * 1.6 % of its rounds' times).
 */
uint64_t	sla_hist_seconds(size_t slot);
/* The histogram slot of a round of sec whole seconds. */
size_t		sla_hist_slot(uint64_t sec);

/* The figures of sums, as sla_agents gives them; p90 never above cap_ms. */
void	sla_sums_figures(const struct sla_sums *, uint64_t cap_ms,
	    struct sla_figures *);

/* One agent's day: its sums and, per local hour, the rounds closed and their sum. */
struct sla_day {
	const struct sla_sums	*sums;
	const uint32_t		*hour_rounds;	/* [24] */
	const uint64_t		*hour_sum_ms;	/* [24] */
};

/*
 * Calls cb for every agent with rounds or events on the local day (UTC +
 * the engine's own utc_offset_min, every shop's alike) of now (an agent's
 * latest day charged or the one before it; an older day is gone), in
 * sla_agents' order: what was charged that day,
 * rounds by when they closed, events by when they were due.
 */
void	sla_agents_day(const struct sla *, int64_t now, void (*cb)(const
	    struct sla_account *, const struct sla_day *, void *), void *arg);

enum sla_round_state {
	SLA_ROUND_OPEN,		/* no event yet */
	SLA_ROUND_WARNED,
	SLA_ROUND_BREACHED,
	SLA_ROUND_ESCALATED,
};

/* An open round: a customer waiting. Strings are the engine's, valid during the callback. */
struct sla_waiting {
	const char		*conversation;
	size_t			 conversation_len;
	const char		*agent;		/* the conversation's agent now ("" unknown) */
	const char		*shop;		/* "" none */
	const char		*queue;
	int64_t			 opened;
	uint64_t		 waited_ms;	/* service time until now */
	uint64_t		 threshold_ms;	/* 0: no threshold */
	int			 first;
	enum sla_round_state	 state;		/* the last event emitted */
};

/* Calls cb for every open round, in no particular order. */
void	sla_waiting(const struct sla *, int64_t now, void (*cb)(const
	    struct sla_waiting *, void *), void *arg);
/*
 * Every agent's rounds as one histogram (response times as in the figures:
 * capped, unanswered = cap, rounded up to the second): counts[i] is the
 * number of rounds of at most bounds_ms[i] (cumulative), *sum_ms and *total
 * over all rounds.
 */
void	sla_histogram(const struct sla *, const uint64_t *bounds_ms, size_t n,
	    uint64_t *counts, uint64_t *sum_ms, uint64_t *total);

/* Open conversations and open rounds, for metrics. */
size_t	sla_conversations(const struct sla *);
/*
 * Figures kept, an (agent, shop, queue) each, the no-agent ones included;
 * at SLA_MAX_AGENTS a new agent counts as no agent of its shop and queue.
 */
#define SLA_MAX_AGENTS	20000
size_t	sla_agent_entries(const struct sla *);
size_t	sla_open_rounds(const struct sla *);

/* The engine's settings from the configuration's sla.* keys. */
struct config_sla;
void	sla_config_from(struct sla_config *, const struct config_sla *);

/*
 * t within +-2^61 ms (73 million years), the range the engine keeps every
 * time in so that no sum or difference of two overflows. Times read from
 * outside (a chat log, Redis) go through it once, where they are read.
 */
int64_t	sla_clamp(int64_t t);

/* Service-time arithmetic under cfg (exported for the tests and replay). */
uint64_t sla_service_ms(const struct sla_config *, int64_t from, int64_t to);
/* The wall time at which ms of service time have passed since from. */
int64_t	sla_service_add(const struct sla_config *, int64_t from, uint64_t ms);

#endif
