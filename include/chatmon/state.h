/* state: what chatmond publishes for dashboards (who waits now, the day's sums per agent): written by chatmond, merged by the dashboard (pure). */
#ifndef CHATMON_STATE_H
#define CHATMON_STATE_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "chatmon/sla.h"
#include "chatmon/util.h"

/*
 * The documents and the feed messages are those of docs/dashboard.md.
 * Each chatmond instance writes two documents; the dashboard reads those
 * of every instance and merges them. Documents are read defensively: they
 * come from Redis, where anything may have put anything.
 */

#define STATE_FEED_WAITING_MAX	200	/* rounds of a shop in the feed's message and in an instance's document */

struct state_origin {
	const char	*instance;	/* "8ebe0f0b" */
	const char	*host;
	long		 pid;
};

/*
 * "2026-11-22": the day of wall time now at UTC + off_min. Returns when
 * that day starts, in wall ms (it lasts STATE_DAY_MS).
 */
#define STATE_DAY_MS	86400000LL
/*
 * How far either side of a day its logs and alerts are read (chatmon
 * report, the dashboard): a round closed at 23:59:59.9 is logged a moment
 * later, alerts spooled during an outage reach the stream late, and an
 * instance whose clock runs ahead of Redis's stamps its entries before
 * the stream's ids say.
 */
#define STATE_LATE_MS	3600000LL
int64_t	state_day(char out[16], int64_t now, int32_t off_min);

/*
 * An agent's figures (docs/sla.md) as a new JSON object, the caller's,
 * in the order chatmon replay prints them; NULL on ENOMEM.
 */
json_t	*state_figures_json(const struct sla_figures *);

/*
 * The settings (shop, queue) is judged by, as the engine picks them among
 * the policies pol (n of them, as given to sla_set_policies): (shop,
 * queue), else (shop, ""), else cfg. Borrowed from the arguments.
 */
const struct sla_config *state_policy(const struct sla_config *cfg,
	    const struct sla_policy *pol, size_t n, const char *shop,
	    const char *queue);

/*
 * The instance's waiting document: the open rounds of s at now, longest
 * wait first, the longest STATE_FEED_WAITING_MAX of each shop (all counted
 * in "total", and by shop in "shops", {SHOP: n}, "" for none). 0, or -1 on
 * ENOMEM.
 */
int	state_waiting_doc(struct sbuf *out, const struct sla *s, int64_t now,
	    const struct state_origin *);
/*
 * n more rounds of shop (NULL or "": none, counted under "") into shops
 * ({SHOP: n}): the waiting documents' per-shop counts. 0, or -1 on ENOMEM.
 */
int	state_shops_add(json_t *shops, const char *shop, uint64_t n);
/*
 * An open round as Redis holds it (convstore's record: docs/operations.md,
 * "Running many instances"). Strings are the caller's.
 */
struct state_open {
	const char	*conversation;
	size_t		 conversation_len;
	const char	*agent;
	const char	*shop;		/* "" or NULL: none */
	const char	*queue;
	const char	*instance;	/* the one that served it last; "" unknown */
	int64_t		 opened;
	uint64_t	 threshold_ms;
	int		 first;
	unsigned	 fired;		/* bit 1 << SLA_WARN etc. */
};

/*
 * A waiting document of the rounds v (n of them, of total open in Redis,
 * shops those counted by shop as state_shops_add does: borrowed, NULL none)
 * under instance STATE_REDIS, each round naming its own instance (and its
 * shop and queue when it has them); waits are in service time at now under
 * the settings of its shop (state_policy). 0, or -1 on ENOMEM.
 */
#define STATE_REDIS	"redis"
int	state_open_doc(struct sbuf *out, const struct state_open *v, size_t n,
	    uint64_t total, json_t *shops, int64_t now, const struct sla_config *cfg,
	    const struct sla_policy *pol, size_t npol);

/*
 * One agent's day as an agents document holds it (docs/dashboard.md):
 * the sums, "hist" as [seconds, rounds] and "hours" as [hour, rounds,
 * sum_ms]; the dashboard and the report's stored days share the form.
 * NULL on ENOMEM.
 */
json_t	*state_day_json(const struct sla_day *);
/*
 * The same read back and added into u (its hist as sized by the caller;
 * none, nhist 0: "hist" is left to the caller) and the hours; what is
 * malformed is skipped.
 */
void	state_day_add(const json_t *o, struct sla_sums *u,
	    uint32_t hour_rounds[24], uint64_t hour_sum_ms[24]);
/*
 * The instance's agents document: the sums of the local day of now.
 * "agents" holds the agents' days of conversations without a shop; when
 * some had one, "shops":{SHOP:{"cap_ms","rate_ms","agents":{...},
 * "queues":{Q:{"cap_ms","rate_ms","agents":{...}}}}} the others' (the
 * shop's "agents": its conversations without a queue), each group with
 * the cap and rate of its settings (state_policy of cfg and pol) so that
 * the merge makes its figures as its own engine would.
 */
int	state_agents_doc(struct sbuf *out, const struct sla *s, int64_t now,
	    const struct state_origin *, const struct sla_config *cfg,
	    const struct sla_policy *pol, size_t npol);

/*
 * The feed's "waiting" message from the instances' documents (docs[i] of
 * lens[i] bytes) and Redis's (state_open_doc): every round, its wait
 * carried on to now, the longest STATE_FEED_WAITING_MAX of each shop (of
 * none too), so that a login of some shops finds its own there whoever
 * else waits longer (feed_scope_msg makes a page's message of it);
 * "shops" counts every round by shop, "" none; "instances" is
 * how many instances these rounds and documents name. Documents that
 * cannot be read are skipped and counted in *bad. 0, or -1 on ENOMEM.
 */
int	state_waiting_msg(struct sbuf *out, const char *const *docs,
	    const size_t *lens, size_t n, int64_t now, size_t *bad);

/* One agent's day in one shop and queue over every instance. */
struct state_agent {
	char			*shop;		/* "": none */
	char			*queue;		/* "": none */
	char			*agent;
	struct sla_figures	 f;
	uint32_t		 hour_rounds[24];	/* local hours */
	uint64_t		 hour_mean_ms[24];
};

/*
 * The agents documents of day (others are skipped) summed per (shop,
 * queue, agent), in that order (no shop first), each with the figures of
 * its group's cap: *agents (*nagents of them) is the caller's to free with
 * state_agents_free. 0, or -1 on ENOMEM; unreadable documents count in
 * *bad.
 */
int	state_agents_merge(const char *const *docs, const size_t *lens,
	    size_t n, const char *day, struct state_agent **agents,
	    size_t *nagents, size_t *bad);
void	state_agents_free(struct state_agent *, size_t n);

#endif
