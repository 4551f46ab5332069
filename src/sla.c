/*
 * sla: response-time rounds per conversation, their deadlines and per-agent
 * figures (pure; no clock, no I/O: the caller passes the time).
 *
 * The daemon may hold a million open rounds, so a conversation is one
 * allocation (the record with its id after it), found through a chained
 * hash table that doubles when it holds more records than buckets. Agent
 * ids are interned once in a table of their own, with their figures; a
 * conversation holds the agent's index and sits on the agent's list, so
 * ending an agent's conversations costs what that agent has, not a scan.
 * A round's three deadlines are wall times computed when it opens, so the
 * next deadline is a minimum of three, and a configuration change only
 * reaches rounds that open later. What the round is judged by when it
 * closes (service hours, cap, rate) is held the same way: an open round
 * points at its tag's settings as they were when it opened, one shared,
 * reference-counted copy per tag and configuration, not a copy per round.
 *
 * Conversations of many shops share the engine: a conversation keeps the
 * (shop, queue) tag of its first turn, each tag carries the settings its
 * rounds are judged by (sla_set_policies), and an agent's figures are kept
 * per tag, so one agent serving two shops is two sets of figures. A
 * per-buyer-per-day rate (Pinduoduo) keeps each buyer's day of the last
 * two days in a small table of its own.
 *
 * Service hours are the same every local day (fixed UTC offset, no daylight
 * saving: China has none), so service time is counted as whole days times
 * the service in a day plus the service before the time of day at both
 * ends: a few windows per call, however long the span.
 *
 * Where the header leaves room, this is what the engine does:
 * - An event due exactly at `now` is emitted before the turn applies, so
 *   a reply at the breach instant still breaches: the outcome is the same
 *   whether the daemon's timer or the turn ran first.
 * - A zero threshold, escalate_ms or idle_ms, or a warn_at outside (0, 1),
 *   turns that event off; warn is round(warn_at * threshold).
 * - An event's waited_ms is its offset (the service time at its due
 *   time), whatever the time the caller got round to it.
 * - A round is charged when it closes, to the agent given with the reply
 *   (or the conversation's agent when that is ""), or when it ends, to
 *   the conversation's agent; breaches and escalations when emitted, to
 *   the conversation's agent then. Rounds no known agent held go to "".
 * - mean is rounded to the nearest ms. p90 is the smallest whole second v
 *   such that at least 90 % of the rounds took at most v seconds, each
 *   round's time rounded up to the second, reported as v * 1000 ms (never
 *   above the cap): an upper bound for 90 % of the real times.
 * - A round's wait is measured, capped and rated under the settings it
 *   opened with, whatever a reload changed meanwhile (docs/sla.md, "Many
 *   shops"); a conversation's idle end moves with each turn, under the
 *   idle_ms in force at that turn, in service time while a round is open
 *   and in wall time while none is (sla_idle_at).
 */
#include <stdlib.h>
#include <string.h>

#include "chatmon/config.h"
#include "chatmon/sla.h"

#define SLA_DAY_MS	86400000LL
/* A window past midnight counts as two. */
#define SLA_NWIN	(2 * SLA_MAX_HOURS)
/* Times are clamped to +-2^61 ms (73 million years): no overflow below. */
#define SLA_TIME_MAX	((int64_t)1 << 61)
#define SLA_NEVER	INT64_MAX
/* Histogram seconds kept per agent at most; longer caps share the last. */
#define SLA_HIST_MAX	86400
/*
 * A histogram has a slot a second up to SLA_HIST_FINE s, then
 * SLA_HIST_SUB slots for each power of two (each within 1.6 % of its
 * rounds' times): a day's cap takes 1 429 slots, not 86 401 (345 KiB an
 * agent and a histogram: review, 600 agents' names took 400 MB).
 */
#define SLA_HIST_FINE	1024
#define SLA_HIST_SUB	64
#define SLA_HIST_FINE_LOG 10	/* log2 SLA_HIST_FINE */
#define SLA_HIST_SUB_LOG 6	/* log2 SLA_HIST_SUB */
#define SLA_BUCKETS0	64
#define SLA_NOAGENT	UINT32_MAX
/*
 * (shop, queue) pairs told apart at most; later pairs are counted with
 * conversations of no shop, so ids a peer makes up cannot grow the engine.
 */
#define SLA_MAX_TAGS	1024

enum {
	SLA_EV_WARN,
	SLA_EV_BREACH,
	SLA_EV_ESCALATE,
	SLA_NEV
};

/* The service hours as sorted, disjoint intervals of one local day (ms). */
struct sla_days {
	int64_t		off_ms;		/* local = UTC + off_ms, within a day */
	int64_t		per_day;	/* service ms in one day */
	int		always;		/* no hours, or the whole day */
	size_t		n;
	int64_t		from[SLA_NWIN], to[SLA_NWIN];
};

/*
 * A tag's settings as rounds opened under them: immutable, shared by the
 * tag (while they are its settings) and by every conversation whose round
 * opened under them, and freed with the last of these. A reload gives the
 * tag new settings and lets go of its reference; the rounds already open
 * keep theirs.
 */
struct sla_terms {
	size_t		 refs;
	struct sla_config cfg;
	struct sla_days	 days;
};

/*
 * A (shop, queue) that conversations belong to, with the settings their
 * rounds are judged by: the policy of (shop, queue), else of (shop, ""),
 * else the engine's own. Tag 0 is ("", ""), the engine's own settings.
 */
struct sla_tag {
	struct sla_config cfg;
	struct sla_days	 days;
	struct sla_terms *terms;	/* cfg and days, shared; or NULL */
	uint32_t	 hash;
	const char	*queue;		/* in name, after the shop's NUL */
	char		 shop[];
};

struct sla_conv {
	struct sla_conv	*hnext;		/* hash chain */
	struct sla_conv	*anext;		/* the agent's conversations */
	struct sla_conv	*aprev;
	void		*udata;
	struct sla_terms *terms;	/* its last round's (NULL: the tag's) */
	int64_t		 idle_at;	/* ends here unless a turn comes */
	int64_t		 opened;	/* the open round's start */
	int64_t		 due[SLA_NEV];	/* the open round's events (wall) */
	uint64_t	 ms[SLA_NEV];	/* their service time after opened */
	uint32_t	 hash;
	uint32_t	 agent;		/* index in sla.agents; 0 is "" */
	uint32_t	 ragent;	/* the agent holding it when the round opened */
	uint32_t	 len;
	uint8_t		 pending;	/* bit per SLA_EV_* still to emit */
	uint8_t		 open;		/* a round is open */
	uint8_t		 first;		/* the open round is the first */
	uint8_t		 had_round;	/* some round was ever opened */
	uint16_t	 tag;		/* its (shop, queue), kept from its first turn */
	char		 id[];		/* len bytes, then a NUL for printing */
};

/*
 * A million open rounds must stay small: the record, without its id (a
 * pointer to its round's settings, shared, costs 8 bytes, not a copy).
 */
_Static_assert(sizeof(struct sla_conv) <= 128, "sla_conv grew");

/* An agent's figures of one local day (the figures' zone). */
struct sla_aday {
	struct sla_sums	 sums;
	int64_t		 no;		/* which day; INT64_MIN: none */
	uint32_t	 hour_rounds[24];	/* by local hour */
	uint64_t	 hour_sum_ms[24];
};

/* An agent within one (shop, queue): what the figures are kept by. */
struct sla_agent {
	struct sla_conv	*convs;		/* conversations whose agent this is */
	struct sla_sums	 all;		/* since the engine started */
	/*
	 * The latest day charged [0] and the one it followed [1]: after
	 * midnight the day before is still read whole (the snapshot of the
	 * rounds closed in its last seconds) and a late charge of it, an
	 * event due before midnight, still counts on it.
	 */
	struct sla_aday	 day[2];
	uint32_t	 hash;
	uint16_t	 tag;
	char		 id[];
};

/* A buyer's day under a per-buyer-per-day rate: who it counts for, and whether it is within. */
struct sla_bday {
	uint64_t	 key;		/* conversation, day and tag hashed; 0 free */
	int64_t		 day;		/* the buyer's day: local to the shop */
	int64_t		 fday;		/* the figures' day it was counted on (sla_agent_day) */
	uint32_t	 agent;		/* the account of its first round */
	uint8_t		 within;
};

struct sla {
	struct sla_tag		**tags;		/* 0 is ("", ""): the engine's own settings */
	size_t			 ntags;
	struct sla_policies	 pol;		/* the shops' settings, copied */
	sla_emit_cb		 emit;
	sla_release_cb		 release;
	void			*arg;
	struct util_hkey	 hkey;	/* of every hash table here */

	struct sla_conv		**buckets;
	size_t			 nbuckets;	/* a power of two */
	size_t			 nconv;
	size_t			 nopen;

	struct sla_agent	**agents;	/* by index; 0 is "" */
	uint32_t		*order;		/* indices by id (strcmp) */
	size_t			 nagents;
	size_t			 agentcap;
	uint32_t		*aslots;	/* probing: index + 1; 0 free */
	size_t			 naslots;	/* a power of two */
	size_t			 nhist;		/* histogram size for the cap */
	struct sla_sums		 all;		/* every agent's rounds (sla_histogram) */
	int			 charging;	/* 0: the caller charges (sla_charge_*) */
	struct sla_bday		*bdays;		/* open addressing, a power of two */
	size_t			 nbdays;
	size_t			 nbday_used;
	int64_t			 bday_max;	/* the latest day seen: older than its eve go */
	sla_round_cb		 round_cb;	/* each round as it closes or ends */
	void			*round_arg;
};

/* Service time */

int64_t
sla_clamp(int64_t t)
{
	if (t > SLA_TIME_MAX)
		return SLA_TIME_MAX;
	if (t < -SLA_TIME_MAX)
		return -SLA_TIME_MAX;
	return t;
}

static int64_t
sla_floordiv(int64_t a, int64_t b)
{
	int64_t	 q = a / b;

	if ((a % b != 0) && ((a < 0) != (b < 0)))
		q--;
	return q;
}

static void
sla_days_init(struct sla_days *d, const struct sla_config *cfg)
{
	int64_t	 f, t, cf, ct;
	size_t	 i, j, n, nh;

	memset(d, 0, sizeof(*d));
	/* only the time of day matters, so any offset reduces to one day */
	d->off_ms = ((int64_t)cfg->utc_offset_min % 1440 + 1440) % 1440 * 60000;
	d->always = 1;
	d->per_day = SLA_DAY_MS;
	if (cfg->nhours == 0)
		return;

	n = 0;
	nh = cfg->nhours < SLA_MAX_HOURS ? cfg->nhours : SLA_MAX_HOURS;
	for (i = 0; i < nh; i++) {
		f = cfg->hours[i].from_min;
		t = cfg->hours[i].to_min > 1440 ? 1440 : cfg->hours[i].to_min;
		if (f >= 1440 || f == t)	/* nothing to count */
			continue;
		if (f < t) {
			d->from[n] = f * 60000;
			d->to[n++] = t * 60000;
			continue;
		}
		d->from[n] = f * 60000;		/* runs past midnight */
		d->to[n++] = SLA_DAY_MS;
		if (t > 0) {
			d->from[n] = 0;
			d->to[n++] = t * 60000;
		}
	}
	/* insertion sort: at most 16 */
	for (i = 1; i < n; i++) {
		f = d->from[i];
		t = d->to[i];
		for (j = i; j > 0 && d->from[j - 1] > f; j--) {
			d->from[j] = d->from[j - 1];
			d->to[j] = d->to[j - 1];
		}
		d->from[j] = f;
		d->to[j] = t;
	}
	/* merge overlapping and touching windows */
	d->n = 0;
	d->per_day = 0;
	for (i = 0; i < n; i++) {
		cf = d->from[i];
		ct = d->to[i];
		if (d->n > 0 && cf <= d->to[d->n - 1]) {
			if (ct > d->to[d->n - 1])
				d->to[d->n - 1] = ct;
			continue;
		}
		d->from[d->n] = cf;
		d->to[d->n++] = ct;
	}
	for (i = 0; i < d->n; i++)
		d->per_day += d->to[i] - d->from[i];
	d->always = d->per_day == SLA_DAY_MS;
}

/* Splits a wall time into a local day number and the ms into that day. */
static void
sla_days_locate(const struct sla_days *d, int64_t t, int64_t *day,
    int64_t *pos)
{
	int64_t	 l = sla_clamp(t) + d->off_ms;

	*day = sla_floordiv(l, SLA_DAY_MS);
	*pos = l - *day * SLA_DAY_MS;
}

/* Service ms of a day before pos. */
static int64_t
sla_days_before(const struct sla_days *d, int64_t pos)
{
	int64_t	 w = 0;
	size_t	 i;

	for (i = 0; i < d->n && pos > d->from[i]; i++)
		w += (pos < d->to[i] ? pos : d->to[i]) - d->from[i];
	return w;
}

/* The earliest time of day with r service ms before it, 0 < r <= per_day. */
static int64_t
sla_days_find(const struct sla_days *d, int64_t r)
{
	int64_t	 cum = 0, len;
	size_t	 i;

	for (i = 0; i < d->n; i++) {
		len = d->to[i] - d->from[i];
		if (r <= cum + len)
			return d->from[i] + (r - cum);
		cum += len;
	}
	return SLA_DAY_MS;	/* not reached for a valid r */
}

static uint64_t
sla_days_ms(const struct sla_days *d, int64_t from, int64_t to)
{
	int64_t	 d0, p0, d1, p1;
	uint64_t v;

	from = sla_clamp(from);
	to = sla_clamp(to);
	if (to <= from)
		return 0;
	if (d->always)
		return (uint64_t)to - (uint64_t)from;
	if (d->per_day == 0)
		return 0;
	sla_days_locate(d, from, &d0, &p0);
	sla_days_locate(d, to, &d1, &p1);
	/* the sum is never below the part subtracted: unsigned is safe */
	v = (uint64_t)(d1 - d0) * (uint64_t)d->per_day +
	    (uint64_t)sla_days_before(d, p1);
	return v - (uint64_t)sla_days_before(d, p0);
}

static int64_t
sla_days_add(const struct sla_days *d, int64_t from, uint64_t ms)
{
	int64_t	 day, pos;
	uint64_t total, k;

	if (ms == 0)
		return from;
	if (from >= SLA_TIME_MAX || ms >= (uint64_t)SLA_TIME_MAX)
		return SLA_NEVER;
	from = sla_clamp(from);
	if (d->always)
		return from + (int64_t)ms;
	if (d->per_day == 0)
		return SLA_NEVER;
	sla_days_locate(d, from, &day, &pos);
	/*
	 * Count from the start of from's day: the target is `total` service
	 * ms into it, i.e. k whole days on and then r ms into a day, where
	 * 0 < r <= per_day so that the earliest such instant is found (a
	 * target at the end of a day's service is that day's last window
	 * end, not the next day's first window start).
	 */
	total = (uint64_t)sla_days_before(d, pos) + ms;
	k = (total - 1) / (uint64_t)d->per_day;
	if (k > (uint64_t)(SLA_TIME_MAX / SLA_DAY_MS))
		return SLA_NEVER;
	day += (int64_t)k;
	pos = sla_days_find(d, (int64_t)(total - k * (uint64_t)d->per_day));
	return day * SLA_DAY_MS + pos - d->off_ms;
}

uint64_t
sla_service_ms(const struct sla_config *cfg, int64_t from, int64_t to)
{
	struct sla_days	 d;

	sla_days_init(&d, cfg);
	return sla_days_ms(&d, from, to);
}

int64_t
sla_service_add(const struct sla_config *cfg, int64_t from, uint64_t ms)
{
	struct sla_days	 d;

	sla_days_init(&d, cfg);
	return sla_days_add(&d, from, ms);
}

/* Hashing: the keyed hash of util, so ids chosen by peers cannot collide at will */

static uint32_t
sla_hash(const struct sla *s, const void *p, size_t len)
{
	return (uint32_t)util_hash(&s->hkey, p, len);
}

/* Agents */

size_t
sla_hist_slot(uint64_t sec)
{
	unsigned	k;

	if (sec < SLA_HIST_FINE)
		return (size_t)sec;
	k = 63u - (unsigned)__builtin_clzll(sec);	/* >= SLA_HIST_FINE_LOG */
	return SLA_HIST_FINE + (size_t)(k - SLA_HIST_FINE_LOG) * SLA_HIST_SUB +
	    (size_t)((sec >> (k - SLA_HIST_SUB_LOG)) & (SLA_HIST_SUB - 1));
}

uint64_t
sla_hist_seconds(size_t slot)
{
	size_t	k, j;

	if (slot < SLA_HIST_FINE)
		return slot;
	k = SLA_HIST_FINE_LOG + (slot - SLA_HIST_FINE) / SLA_HIST_SUB;
	j = (slot - SLA_HIST_FINE) % SLA_HIST_SUB;
	return ((uint64_t)(SLA_HIST_SUB + j + 1) << (k - SLA_HIST_SUB_LOG)) - 1;
}

static size_t
sla_hist_size(uint64_t cap_ms)
{
	uint64_t s = cap_ms / 1000 + (cap_ms % 1000 != 0);

	return sla_hist_slot(s < SLA_HIST_MAX ? s : SLA_HIST_MAX) + 1;
}

static uint32_t
sla_agent_hash(const struct sla *s, const char *id, size_t len, uint16_t tag)
{
	return sla_hash(s, id, len) ^ (uint32_t)tag * 0x9e3779b1u;
}

/* The index of agent id in tag, or SLA_NOAGENT. */
static uint32_t
sla_agent_find(const struct sla *s, const char *id, uint16_t tag, uint32_t h)
{
	const struct sla_agent	*a;
	size_t			 i, mask = s->naslots - 1;
	uint32_t		 v;

	for (i = h & mask; (v = s->aslots[i]) != 0; i = (i + 1) & mask) {
		a = s->agents[v - 1];
		if (a->hash == h && a->tag == tag && strcmp(a->id, id) == 0)
			return v - 1;
	}
	return SLA_NOAGENT;
}

/* The order of the figures: by shop, queue, then agent id. */
static int
sla_agent_cmp(const struct sla *s, const struct sla_agent *a, const char *id,
    uint16_t tag)
{
	const struct sla_tag	*x = s->tags[a->tag], *y = s->tags[tag];
	int			 c;

	if (a->tag != tag && ((c = strcmp(x->shop, y->shop)) != 0 ||
	    (c = strcmp(x->queue, y->queue)) != 0))
		return c;
	return strcmp(a->id, id);
}

static void
sla_aslot_put(uint32_t *slots, size_t nslots, uint32_t h, uint32_t idx)
{
	size_t	 i, mask = nslots - 1;

	for (i = h & mask; slots[i] != 0; i = (i + 1) & mask)
		;
	slots[i] = idx + 1;
}

/*
 * The index of agent id in tag, added on first sight; SLA_NOAGENT on
 * ENOMEM, with the tables as they were (whatever grew stays grown, unused).
 */
static uint32_t
sla_agent_intern(struct sla *s, const char *id, uint16_t tag)
{
	struct sla_agent	*a = NULL, **na;
	uint32_t		*no, *ns, h, idx;
	size_t			 len = strlen(id), cap, lo, hi, mid, i;

	h = sla_agent_hash(s, id, len, tag);
	if (s->naslots > 0 && (idx = sla_agent_find(s, id, tag, h)) !=
	    SLA_NOAGENT)
		return idx;
	/*
	 * An agent's figures are kept until the engine ends, and a name is
	 * whatever a peer says it is (query:agent without auth): past
	 * SLA_MAX_AGENTS a new one counts as no agent of its shop, so names
	 * made up cannot grow the engine without end (review: 6 000 names,
	 * 63 MB, and a /metrics scrape that stalled the loop).
	 */
	if (s->nagents >= SLA_MAX_AGENTS)
		return id[0] != '\0' ? sla_agent_intern(s, "", tag) : 0;

	if (s->nagents == s->agentcap) {
		cap = s->agentcap ? s->agentcap * 2 : 16;
		if ((na = realloc(s->agents, cap * sizeof(*na))) == NULL)
			return SLA_NOAGENT;
		s->agents = na;
		if ((no = realloc(s->order, cap * sizeof(*no))) == NULL)
			return SLA_NOAGENT;
		s->order = no;
		s->agentcap = cap;
	}
	/* keep the probe table at most half full */
	if ((s->nagents + 1) * 2 > s->naslots) {
		cap = s->naslots ? s->naslots * 2 : 32;
		if ((ns = calloc(cap, sizeof(*ns))) == NULL)
			return SLA_NOAGENT;
		for (i = 0; i < s->nagents; i++)
			sla_aslot_put(ns, cap, s->agents[i]->hash, (uint32_t)i);
		free(s->aslots);
		s->aslots = ns;
		s->naslots = cap;
	}
	/* the histograms grow with the rounds (sla_sums_add) */
	if ((a = calloc(1, sizeof(*a) + len + 1)) == NULL)
		goto err;
	a->day[0].no = a->day[1].no = INT64_MIN;
	a->hash = h;
	a->tag = tag;
	memcpy(a->id, id, len + 1);

	idx = (uint32_t)s->nagents++;
	s->agents[idx] = a;
	sla_aslot_put(s->aslots, s->naslots, h, idx);
	/* agents come rarely: an insertion keeps sla_agents free of sorting */
	lo = 0;
	hi = idx;
	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if (sla_agent_cmp(s, s->agents[s->order[mid]], id, tag) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	memmove(s->order + lo + 1, s->order + lo,
	    (idx - lo) * sizeof(*s->order));
	s->order[lo] = idx;
	return idx;

 err:
	free(a);
	return SLA_NOAGENT;
}

/*
 * The agent's sums for the local day of t, started afresh when t is a
 * later day; NULL when t is on a day already past (a late event). The
 * figures' days and hours are the engine's own zone (the top level's
 * sla.timezone), whatever the shop's, so that the figures of every shop
 * fall on the days and hours a report and the dashboard name.
 */
static struct sla_aday *
sla_agent_day(const struct sla *s, struct sla_agent *a, int64_t t,
    size_t *hour)
{
	int64_t	 l = sla_clamp(t) +
	    (int64_t)s->tags[0]->cfg.utc_offset_min * 60000;
	int64_t	 day = sla_floordiv(l, SLA_DAY_MS);
	uint32_t *hist;
	size_t	 nhist;
	struct sla_aday *d = NULL;

	if (day > a->day[0].no) {
		/* a new day: the latest becomes the one before; the older's histogram is reused */
		hist = a->day[1].sums.hist;
		nhist = a->day[1].sums.nhist;
		a->day[1] = a->day[0];
		memset(&a->day[0], 0, sizeof(a->day[0]));
		if (nhist > 0)
			memset(hist, 0, nhist * sizeof(*hist));
		a->day[0].sums.hist = hist;
		a->day[0].sums.nhist = nhist;
		a->day[0].no = day;
	}
	if (day == a->day[0].no)
		d = &a->day[0];
	else if (day == a->day[1].no)
		d = &a->day[1];
	else
		return NULL;
	*hour = (size_t)((l - day * SLA_DAY_MS) / 3600000);
	return d;
}

static void	sla_sums_grow(struct sla_sums *, size_t);

/*
 * One round into u; v is its time as the figures count it (capped). The
 * reply rate counts every round, or the first ones only (JD); per buyer
 * and day (Pinduoduo) it is counted by sla_buyer_day instead. The
 * histogram holds max seconds at most (the last counts the cap and
 * above) and grows to the longest round it has counted: an agent's
 * rounds are mostly seconds long, and a dense array to the cap for each
 * agent (two, 2.4 KiB at the 600 s cap, 345 KiB at a day's) made a log of
 * many agents cost gigabytes in chatmon replay and report.
 */
static void
sla_sums_add(struct sla_sums *u, const struct sla_config *cfg, int answered,
    uint64_t ms, uint64_t v, int first, size_t max)
{
	uint64_t sec;
	size_t	 n;
	int	 within = answered && ms <= cfg->rate_ms;

	u->rounds++;
	u->sum_ms += v;
	u->answered += answered != 0;
	if (cfg->rate_scope == SLA_RATE_ROUNDS ||
	    (cfg->rate_scope == SLA_RATE_FIRST && first)) {
		u->rate_base++;
		u->within_rate += within;
	}
	if (first) {
		u->first_rounds++;
		u->first_sum_ms += v;
	}
	/* up to the second, so "<= p90" holds for the rounds' real times */
	sec = sla_hist_slot(v / 1000 + (v % 1000 != 0));
	if (sec >= max)
		sec = max - 1;
	if (sec >= u->nhist) {
		n = u->nhist * 2 > 16 ? u->nhist * 2 : 16;
		if (n <= sec)
			n = sec + 1;
		sla_sums_grow(u, n < max ? n : max);
	}
	if (u->nhist > 0)	/* on ENOMEM the longest share the last */
		u->hist[sec < u->nhist ? sec : u->nhist - 1]++;
}

/* The slot of key in the buyer-day table (a free one when absent). */
static struct sla_bday *
sla_bday_slot(struct sla_bday *t, size_t n, uint64_t key)
{
	size_t	 i, mask = n - 1;

	for (i = (size_t)key & mask; t[i].key != 0 && t[i].key != key;
	    i = (i + 1) & mask)
		;
	return &t[i];
}

/*
 * Room for one more buyer-day: the days more than two before the latest
 * are dropped (their counts are in the figures already; two, as shops'
 * zones can be that far apart), and the table doubles only when what is
 * left still fills half of it. -1 on ENOMEM.
 */
static int
sla_bday_room(struct sla *s)
{
	struct sla_bday	*t, *old = s->bdays;
	size_t		 n = s->nbdays, i, live = 0;

	if (n > 0 && (s->nbday_used + 1) * 2 <= n)
		return 0;
	for (i = 0; i < n; i++)
		live += old[i].key != 0 && old[i].day + 2 >= s->bday_max;
	if (n == 0 || (live + 1) * 2 > n)
		n = n ? n * 2 : 64;
	if ((t = calloc(n, sizeof(*t))) == NULL)
		return -1;
	for (i = 0; i < s->nbdays; i++)
		if (old[i].key != 0 && old[i].day + 2 >= s->bday_max)
			*sla_bday_slot(t, n, old[i].key) = old[i];
	free(old);
	s->bdays = t;
	s->nbdays = n;
	s->nbday_used = live;
	return 0;
}

/*
 * A round of conversation cid under a per-buyer-per-day rate (Pinduoduo):
 * a buyer's day counts once, to the agent of its first round, and is
 * within the rate only while every round of it is. Nothing without the
 * conversation (a charge that did not say it) or on ENOMEM.
 */
static void
sla_buyer_day(struct sla *s, uint32_t ai, const char *cid, size_t clen,
    int within, int64_t at)
{
	struct sla_agent	*a = s->agents[ai];
	const struct sla_config	*cfg = &s->tags[a->tag]->cfg;
	struct sla_agent	*o;
	struct sla_bday		*b;
	struct sla_aday		*d;
	int64_t			 day, l;
	uint64_t		 key;
	size_t			 h;

	if (cid == NULL)
		return;
	l = sla_clamp(at) + (int64_t)cfg->utc_offset_min * 60000;
	day = sla_floordiv(l, SLA_DAY_MS);
	/*
	 * bday_max is the latest day of any shop, each in its own zone: at one
	 * instant a shop at +14:00 is up to two days ahead of one at -12:00
	 */
	if (day + 2 < s->bday_max)
		return;		/* a late round of a day already let go */
	if (day > s->bday_max)
		s->bday_max = day;
	key = util_hash(&s->hkey, cid, clen) ^ (uint64_t)day *
	    0x9e3779b97f4a7c15ull ^ (uint64_t)a->tag << 48;
	key += key == 0;
	if (s->nbdays > 0 && (b = sla_bday_slot(s->bdays, s->nbdays,
	    key))->key == key) {
		if (!b->within || within)
			return;
		/* a late round spoils the buyer's day for whoever had it */
		b->within = 0;
		o = s->agents[b->agent];
		o->all.within_rate--;
		for (h = 0; h < 2; h++)
			if (o->day[h].no == b->fday && o->day[h].sums.within_rate > 0)
				o->day[h].sums.within_rate--;
		return;
	}
	if (sla_bday_room(s) == -1)
		return;
	b = sla_bday_slot(s->bdays, s->nbdays, key);
	b->key = key;
	b->day = day;
	b->fday = INT64_MIN;
	b->agent = ai;
	b->within = within != 0;
	s->nbday_used++;
	a->all.rate_base++;
	a->all.within_rate += within != 0;
	if ((d = sla_agent_day(s, a, at, &h)) != NULL) {
		d->sums.rate_base++;
		d->sums.within_rate += within != 0;
		b->fday = d->no;
	}
}

/*
 * One round of conversation cid (NULL: not known), closed or ended at
 * `at`, into an agent's figures and its day's, capped and rated by cfg
 * (the settings the round opened with); unanswered rounds count as the
 * cap.
 */
static void
sla_agent_record(struct sla *s, uint32_t ai, const struct sla_config *cfg,
    int answered, uint64_t ms, int first, int64_t at, const char *cid,
    size_t clen)
{
	struct sla_agent	*a = s->agents[ai];
	struct sla_aday		*d;
	uint64_t		 v = cfg->cap_ms;
	size_t			 h;

	if (answered && ms < v)
		v = ms;
	sla_sums_add(&s->all, cfg, answered, ms, v, first, s->nhist);
	sla_sums_add(&a->all, cfg, answered, ms, v, first, s->nhist);
	if ((d = sla_agent_day(s, a, at, &h)) != NULL) {
		sla_sums_add(&d->sums, cfg, answered, ms, v, first, s->nhist);
		d->hour_rounds[h]++;
		d->hour_sum_ms[h] += v;
	}
	if (cfg->rate_scope == SLA_RATE_BUYER_DAY)
		sla_buyer_day(s, ai, cid, clen, answered && ms <= cfg->rate_ms,
		    at);
}

/* A breach or an escalation, due at `at`. */
static void
sla_agent_event(struct sla *s, struct sla_agent *a, int escalation,
    int64_t at)
{
	struct sla_aday	*d;
	size_t		 h;

	d = sla_agent_day(s, a, at, &h);

	if (escalation) {
		a->all.escalations++;
		if (d != NULL)
			d->sums.escalations++;
	} else {
		a->all.breaches++;
		if (d != NULL)
			d->sums.breaches++;
	}
}

void
sla_sums_figures(const struct sla_sums *u, uint64_t cap_ms,
    struct sla_figures *f)
{
	uint64_t cum = 0;
	size_t	 v;

	memset(f, 0, sizeof(*f));
	f->rounds = u->rounds;
	f->answered = u->answered;
	f->first_rounds = u->first_rounds;
	f->breaches = u->breaches;
	f->escalations = u->escalations;
	f->within_rate = u->within_rate;
	f->rate_base = u->rate_base;
	if (u->rounds > 0) {
		f->mean_ms = (u->sum_ms + u->rounds / 2) / u->rounds;
		f->rate = u->rate_base > 0 ?
		    (double)u->within_rate / (double)u->rate_base : 0;
		/*
		 * p90: the smallest whole second v such that at least 90 %
		 * of the rounds took at most v s (each rounded up to the
		 * second), reported as v * 1000 ms, and never above the cap
		 * when the cap is in v's slot (a round counted as the cap: a
		 * cap of a fraction of a second rounds up, and past
		 * SLA_HIST_FINE s the most of v's slot is past it). A slot
		 * above the cap's holds rounds counted under a cap a reload
		 * lowered since: they keep their time (found by review: the
		 * p90 of a 2.5 s round read 1 s after a reload to cap: 1s).
		 */
		for (v = 0; v < u->nhist; v++) {
			cum += u->hist[v];
			if (cum * 10 >= u->rounds * 9)
				break;
		}
		f->p90_ms = sla_hist_seconds(v) * 1000;
		if (f->p90_ms > cap_ms && sla_hist_slot((cap_ms + 999) / 1000) >= v)
			f->p90_ms = cap_ms;
	}
	if (u->first_rounds > 0)
		f->first_mean_ms = (u->first_sum_ms + u->first_rounds / 2) /
		    u->first_rounds;
}

/* Conversations */

static void
sla_conv_link_agent(struct sla *s, struct sla_conv *c, uint32_t idx)
{
	struct sla_agent	*a = s->agents[idx];

	c->agent = idx;
	c->aprev = NULL;
	c->anext = a->convs;
	if (a->convs != NULL)
		a->convs->aprev = c;
	a->convs = c;
}

static void
sla_conv_unlink_agent(struct sla *s, struct sla_conv *c)
{
	if (c->aprev != NULL)
		c->aprev->anext = c->anext;
	else
		s->agents[c->agent]->convs = c->anext;
	if (c->anext != NULL)
		c->anext->aprev = c->aprev;
	c->anext = c->aprev = NULL;
}

/* Doubles the buckets; on ENOMEM the chains just get longer. */
static void
sla_grow(struct sla *s)
{
	struct sla_conv	**nb, *c, *next;
	size_t		  n = s->nbuckets * 2, i;

	if (n > SIZE_MAX / sizeof(*nb) || (nb = calloc(n, sizeof(*nb))) == NULL)
		return;
	for (i = 0; i < s->nbuckets; i++)
		for (c = s->buckets[i]; c != NULL; c = next) {
			next = c->hnext;
			c->hnext = nb[c->hash & (n - 1)];
			nb[c->hash & (n - 1)] = c;
		}
	free(s->buckets);
	s->buckets = nb;
	s->nbuckets = n;
}

static struct sla_conv *
sla_conv_lookup(const struct sla *s, const char *id, size_t len, uint32_t h)
{
	struct sla_conv	*c;

	for (c = s->buckets[h & (s->nbuckets - 1)]; c != NULL; c = c->hnext)
		if (c->hash == h && c->len == len &&
		    (len == 0 || memcmp(c->id, id, len) == 0))
			return c;
	return NULL;
}

/* A new conversation of tag, held by the tag's unknown agent for now. */
static struct sla_conv *
sla_conv_new(struct sla *s, const char *id, size_t len, uint32_t h,
    uint16_t tag)
{
	struct sla_conv	*c;
	size_t		 slot;
	uint32_t	 ai = 0;

	if (tag != 0 && (ai = sla_agent_intern(s, "", tag)) == SLA_NOAGENT)
		return NULL;
	if (len > UINT32_MAX || (c = calloc(1, sizeof(*c) + len + 1)) == NULL)
		return NULL;
	c->hash = h;
	c->tag = tag;
	c->len = (uint32_t)len;
	if (len > 0)
		memcpy(c->id, id, len);
	c->idle_at = SLA_NEVER;
	if (s->nconv >= s->nbuckets)
		sla_grow(s);
	slot = h & (s->nbuckets - 1);
	c->hnext = s->buckets[slot];
	s->buckets[slot] = c;
	s->nconv++;
	sla_conv_link_agent(s, c, ai);
	return c;
}

/* The next event to come (earliest; warn, breach, escalate on a tie), or -1. */
static int
sla_conv_next(const struct sla_conv *c)
{
	int	 i, best = -1;

	for (i = 0; i < SLA_NEV; i++)
		if ((c->pending & (1u << i)) &&
		    (best == -1 || c->due[i] < c->due[best]))
			best = i;
	return best;
}

/* Emits, in time order, every pending event due at or before limit. */
static void
sla_conv_flush(struct sla *s, struct sla_conv *c, int64_t limit)
{
	static const enum sla_event_type types[SLA_NEV] = {
		SLA_WARN, SLA_BREACH, SLA_ESCALATE
	};
	struct sla_agent	*a;
	struct sla_event	 ev;
	int			 i;

	while ((i = sla_conv_next(c)) != -1 && c->due[i] <= limit) {
		c->pending &= (uint8_t)~(1u << i);
		a = s->agents[c->agent];
		if (i != SLA_EV_WARN && s->charging)
			sla_agent_event(s, a, i == SLA_EV_ESCALATE, c->due[i]);
		if (s->emit == NULL)
			continue;
		memset(&ev, 0, sizeof(ev));
		ev.type = types[i];
		ev.conv = c;
		ev.conversation = c->id;
		ev.conversation_len = c->len;
		ev.agent = a->id;
		ev.shop = s->tags[c->tag]->shop;
		ev.queue = s->tags[c->tag]->queue;
		ev.first = c->first;
		/* as at the due time: a late caller changes no alert */
		ev.waited_ms = c->ms[i];
		ev.threshold_ms = i == SLA_EV_WARN ? c->ms[SLA_EV_BREACH] :
		    c->ms[i];
		ev.due = c->due[i];
		ev.opened = c->opened;
		s->emit(&ev, s->arg);
	}
}

void
sla_round_plan(const struct sla *s, const struct sla_conv *c, int first,
    int64_t now, struct sla_conv_state *st)
{
	const struct sla_tag	*tg = s->tags[c->tag];
	const struct sla_config	*cfg = &tg->cfg;
	uint64_t		 thr = first ? cfg->first_response_ms : cfg->reply_ms;
	double			 w = cfg->warn_at;
	int			 i;

	memset(st, 0, sizeof(*st));
	st->open = 1;
	st->first = first;
	st->had_round = 1;
	st->opened = now;
	/* a zero threshold, or a warn_at out of (0, 1), turns that event off */
	if (w > 0 && w < 1 && thr > 0)
		st->ms[SLA_EV_WARN] = (uint64_t)(w * (double)thr + 0.5);
	st->ms[SLA_EV_BREACH] = thr;
	st->ms[SLA_EV_ESCALATE] = cfg->escalate_ms;
	for (i = 0; i < SLA_NEV; i++)
		st->due[i] = st->ms[i] == 0 ? SLA_NEVER :
		    sla_days_add(&tg->days, now, st->ms[i]);
	st->idle_at = sla_idle_at(s, c, 1, now);
}

/* Makes c's round the one st describes (the open count follows). */
static void
sla_round_set(struct sla *s, struct sla_conv *c, const struct sla_conv_state *st)
{
	int	 i;

	s->nopen -= c->open;
	c->open = st->open != 0;
	c->first = st->first != 0;
	c->had_round = st->had_round != 0;
	c->opened = st->opened;
	c->pending = 0;
	for (i = 0; i < SLA_NEV; i++) {
		c->ms[i] = st->ms[i];
		c->due[i] = st->due[i];
		if (c->open && c->ms[i] != 0 && c->due[i] != SLA_NEVER &&
		    !(st->fired & (1u << i)))
			c->pending |= (uint8_t)(1u << i);
	}
	s->nopen += c->open;
}

/* Lets go of a reference to x (NULL: none); the last frees it. */
static void
sla_terms_unref(struct sla_terms *x)
{
	if (x != NULL && --x->refs == 0)
		free(x);
}

/*
 * A reference to tag t's settings as they are now, shared by every round
 * that opens under them (made by the first); NULL on ENOMEM.
 */
static struct sla_terms *
sla_terms_ref(struct sla_tag *t)
{
	if (t->terms == NULL) {
		if ((t->terms = malloc(sizeof(*t->terms))) == NULL)
			return NULL;
		t->terms->refs = 1;	/* the tag's own */
		t->terms->cfg = t->cfg;
		t->terms->days = t->days;
	}
	t->terms->refs++;
	return t->terms;
}

/*
 * c's round is judged by its tag's settings as they are now. On ENOMEM it
 * holds none and is judged by its tag's settings at its close (what a
 * reload meanwhile changed then counts).
 */
static void
sla_conv_take_terms(struct sla *s, struct sla_conv *c)
{
	struct sla_terms	*x = sla_terms_ref(s->tags[c->tag]);

	sla_terms_unref(c->terms);
	c->terms = x;
}

/* The settings c's round is judged by: those it opened with. */
static const struct sla_config *
sla_conv_cfg(const struct sla *s, const struct sla_conv *c)
{
	return c->terms != NULL ? &c->terms->cfg : &s->tags[c->tag]->cfg;
}

static const struct sla_days *
sla_conv_days(const struct sla *s, const struct sla_conv *c)
{
	return c->terms != NULL ? &c->terms->days : &s->tags[c->tag]->days;
}

static void
sla_round_open(struct sla *s, struct sla_conv *c, int64_t now)
{
	struct sla_conv_state	 st;

	sla_round_plan(s, c, !c->had_round, now, &st);
	/* an unanswered transfer stays with the agent who had it (domain.md) */
	c->ragent = c->agent;
	sla_round_set(s, c, &st);
	sla_conv_take_terms(s, c);
}

/* c's open round, closed or ended at `at` by agent ai, to the round callback. */
static void
sla_round_report(const struct sla *s, const struct sla_conv *c, uint32_t ai,
    int answered, uint64_t waited, int64_t at)
{
	struct sla_round	r;

	if (s->round_cb == NULL)
		return;
	memset(&r, 0, sizeof(r));
	r.agent = s->agents[ai]->id;
	r.shop = s->tags[c->tag]->shop;
	r.queue = s->tags[c->tag]->queue;
	r.conversation = c->id;
	r.conversation_len = c->len;
	r.opened = c->opened;
	r.at = at;
	r.waited_ms = waited;
	r.answered = answered;
	r.first = c->first;
	s->round_cb(&r, s->round_arg);
}

/*
 * A round whose whole wait lay outside service hours (it opened after
 * closing and was answered or ended before opening) is in no figure: the
 * platforms judge the hours they judge (found by review: four rounds of
 * 23:10 answered at 23:30 counted as answered in 0 s, flattering the mean
 * and the rate). ms is its wait in service time. One closed in the
 * millisecond it opened waited nothing either way: it is served when that
 * millisecond is (found by review: a message and an end together at
 * night were charged the whole cap).
 */
static int
sla_round_unserved(const struct sla_days *days, int64_t opened, int64_t at,
    uint64_t ms)
{
	int64_t	o = sla_clamp(opened);	/* anyone's logs: no overflow past INT64_MAX */

	/* one "closed before it opened" (clocks apart, a log's junk) is as before */
	return ms == 0 && (at > opened ||
	    (at == opened && sla_days_ms(days, o, o + 1) == 0));
}

/* Charged to the conversation's agent: the one who replied, when known. */
static void
sla_round_close(struct sla *s, struct sla_conv *c, int64_t now)
{
	uint64_t	ms;

	/* the daemon in Redis mode does neither: nothing to count then */
	if (s->charging || s->round_cb != NULL) {
		ms = sla_days_ms(sla_conv_days(s, c), c->opened, now);
		if (s->charging && !sla_round_unserved(sla_conv_days(s, c),
		    c->opened, now, ms))
			sla_agent_record(s, c->agent, sla_conv_cfg(s, c), 1, ms,
			    c->first, now, c->id, c->len);
		sla_round_report(s, c, c->agent, 1, ms, now);
	}
	c->open = 0;
	c->pending = 0;
	s->nopen--;
}

/*
 * Ends c at `at`: what was due by then is emitted, an open round goes to
 * the conversation's agent as unanswered, the caller's release runs, and
 * the record is freed.
 */
static void
sla_conv_finish(struct sla *s, struct sla_conv *c, int64_t at)
{
	struct sla_conv	**pp;

	sla_conv_flush(s, c, at);
	if (c->open) {
		if (s->charging && !sla_round_unserved(sla_conv_days(s, c),
		    c->opened, at, sla_days_ms(sla_conv_days(s, c), c->opened, at)))
			sla_agent_record(s, c->ragent, sla_conv_cfg(s, c), 0,
			    0, c->first, at, c->id, c->len);
		if (s->round_cb != NULL)
			sla_round_report(s, c, c->ragent, 0,
			    sla_days_ms(sla_conv_days(s, c), c->opened, at), at);
		s->nopen--;
	}
	for (pp = &s->buckets[c->hash & (s->nbuckets - 1)]; *pp != c;
	    pp = &(*pp)->hnext)
		;
	*pp = c->hnext;
	sla_conv_unlink_agent(s, c);
	s->nconv--;
	if (s->release != NULL)
		s->release(c, c->udata, s->arg);
	sla_terms_unref(c->terms);
	free(c);
}

/* A conversation left idle ended at its idle deadline, not later. */
static int64_t
sla_conv_end_at(const struct sla_conv *c, int64_t now)
{
	return now < c->idle_at ? now : c->idle_at;
}

/* Engine */

static void
sla_sums_grow(struct sla_sums *u, size_t n)
{
	uint32_t	*h;

	if ((h = realloc(u->hist, n * sizeof(*h))) == NULL)
		return;
	memset(h + u->nhist, 0, (n - u->nhist) * sizeof(*h));
	u->hist = h;
	u->nhist = n;
}

/* New settings for t's rounds to open with; those open keep theirs. */
static void
sla_tag_set(struct sla_tag *t, const struct sla_config *cfg)
{
	sla_terms_unref(t->terms);
	t->terms = NULL;
	t->cfg = *cfg;
	if (t->cfg.nhours > SLA_MAX_HOURS)
		t->cfg.nhours = SLA_MAX_HOURS;
	sla_days_init(&t->days, &t->cfg);
}

const struct sla_config *
sla_policy_find(const struct sla_policy *v, size_t n, const char *shop,
    const char *queue)
{
	const struct sla_config	*best = NULL;
	size_t			 i;

	if (shop == NULL || *shop == '\0')
		return NULL;
	if (queue == NULL)
		queue = "";
	for (i = 0; i < n; i++) {
		if (strcmp(v[i].shop, shop) != 0)
			continue;
		if (strcmp(v[i].queue, queue) == 0)
			return &v[i].cfg;
		if (v[i].queue[0] == '\0')
			best = &v[i].cfg;
	}
	return best;
}

int
sla_policies_set(struct sla_policies *p, const struct sla_policy *v, size_t n)
{
	struct sla_policy	*np = NULL;
	char			*str = NULL, *at;
	size_t			 i, len = 0;

	for (i = 0; i < n; i++)
		len += strlen(v[i].shop) + strlen(v[i].queue) + 2;
	if (n > 0 && ((np = calloc(n, sizeof(*np))) == NULL ||
	    (str = malloc(len)) == NULL)) {
		free(np);
		return -1;
	}
	for (i = 0, at = str; i < n; i++) {
		np[i] = v[i];
		np[i].shop = strcpy(at, v[i].shop);
		at += strlen(at) + 1;
		np[i].queue = strcpy(at, v[i].queue);
		at += strlen(at) + 1;
	}
	sla_policies_clear(p);
	p->v = np;
	p->n = n;
	p->str = str;
	return 0;
}

int
sla_policies_load(struct sla_policies *p, const struct config *cfg)
{
	struct sla_policy	*v;
	size_t			 n;
	int			 rc;

	if (sla_policies_from(cfg, &v, &n) == -1)
		return -1;
	rc = sla_policies_set(p, v, n);
	free(v);
	return rc;
}

void
sla_policies_clear(struct sla_policies *p)
{
	free(p->v);
	free(p->str);
	memset(p, 0, sizeof(*p));
}

/* The settings of (shop, queue): its policy, else its shop's, else the engine's. */
static const struct sla_config *
sla_policy_for(const struct sla *s, const char *shop, const char *queue)
{
	const struct sla_config	*c = sla_policy_find(s->pol.v, s->pol.n, shop,
				    queue);

	return c != NULL ? c : &s->tags[0]->cfg;
}

/*
 * Every tag's settings again (after sla_set_config or sla_set_policies),
 * and room in the histograms for the longest cap.
 */
static void
sla_retag(struct sla *s)
{
	uint64_t		 cap = 0;
	size_t			 i, n;

	for (i = 1; i < s->ntags; i++)
		sla_tag_set(s->tags[i], sla_policy_for(s, s->tags[i]->shop,
		    s->tags[i]->queue));
	for (i = 0; i < s->ntags; i++)
		if (s->tags[i]->cfg.cap_ms > cap)
			cap = s->tags[i]->cfg.cap_ms;
	for (i = 0; i < s->pol.n; i++)
		if (s->pol.v[i].cfg.cap_ms > cap)
			cap = s->pol.v[i].cfg.cap_ms;
	/* a longer cap: the agents' histograms grow to it as rounds need */
	if ((n = sla_hist_size(cap)) > s->nhist)
		s->nhist = n;
}

/*
 * The tag of (shop, queue), added on first sight; 0 for no shop, and
 * when the table is full or memory ran out.
 */
static uint16_t
sla_tag_intern(struct sla *s, const char *shop, const char *queue)
{
	struct sla_tag	*t, **nt;
	size_t		 ls, lq, i;
	uint32_t	 h;

	if (shop == NULL || *shop == '\0')
		return 0;
	if (queue == NULL)
		queue = "";
	ls = strlen(shop);
	lq = strlen(queue);
	h = sla_hash(s, shop, ls) ^ sla_hash(s, queue, lq) * 31u;
	for (i = 1; i < s->ntags; i++)
		if (s->tags[i]->hash == h && strcmp(s->tags[i]->shop, shop) == 0 &&
		    strcmp(s->tags[i]->queue, queue) == 0)
			return (uint16_t)i;
	if (s->ntags >= SLA_MAX_TAGS || (nt = realloc(s->tags,
	    (s->ntags + 1) * sizeof(*nt))) == NULL)
		return 0;
	s->tags = nt;
	if ((t = calloc(1, sizeof(*t) + ls + lq + 2)) == NULL)
		return 0;
	memcpy(t->shop, shop, ls + 1);
	t->queue = t->shop + ls + 1;
	memcpy(t->shop + ls + 1, queue, lq + 1);
	t->hash = h;
	sla_tag_set(t, sla_policy_for(s, shop, queue));
	s->tags[s->ntags] = t;
	return (uint16_t)s->ntags++;
}

struct sla *
sla_new(const struct sla_config *cfg, sla_emit_cb emit, sla_release_cb release,
    void *arg)
{
	struct sla	*s;

	if (cfg == NULL || (s = calloc(1, sizeof(*s))) == NULL)
		return NULL;
	s->emit = emit;
	s->release = release;
	s->charging = 1;
	s->arg = arg;
	s->bday_max = INT64_MIN;
	util_hkey_random(&s->hkey);
	if ((s->tags = calloc(1, sizeof(*s->tags))) == NULL ||
	    (s->tags[0] = calloc(1, sizeof(*s->tags[0]) + 2)) == NULL)
		goto err;
	s->tags[0]->queue = s->tags[0]->shop + 1;
	s->ntags = 1;
	sla_tag_set(s->tags[0], cfg);
	sla_retag(s);
	if ((s->buckets = calloc(SLA_BUCKETS0, sizeof(*s->buckets))) == NULL)
		goto err;
	s->nbuckets = SLA_BUCKETS0;
	/* index 0 is the unknown agent, so a conversation always has one */
	if (sla_agent_intern(s, "", 0) != 0)
		goto err;
	return s;

 err:
	sla_free(s);
	return NULL;
}

void
sla_set_config(struct sla *s, const struct sla_config *cfg)
{
	if (s == NULL || cfg == NULL)
		return;
	sla_tag_set(s->tags[0], cfg);
	sla_retag(s);
}

int
sla_set_policies(struct sla *s, const struct sla_policy *v, size_t n)
{
	if (sla_policies_set(&s->pol, v, n) == -1)
		return -1;
	sla_retag(s);
	return 0;
}

void
sla_free(struct sla *s)
{
	struct sla_conv	*c, *next;
	size_t		 i;

	if (s == NULL)
		return;
	for (i = 0; i < s->nbuckets; i++)
		for (c = s->buckets[i]; c != NULL; c = next) {
			next = c->hnext;
			if (s->release != NULL)
				s->release(c, c->udata, s->arg);
			sla_terms_unref(c->terms);
			free(c);
		}
	free(s->buckets);
	for (i = 0; i < s->nagents; i++) {
		free(s->agents[i]->all.hist);
		free(s->agents[i]->day[0].sums.hist);
		free(s->agents[i]->day[1].sums.hist);
		free(s->agents[i]);
	}
	free(s->all.hist);
	free(s->agents);
	free(s->order);
	free(s->aslots);
	for (i = 0; s->tags != NULL && i < s->ntags; i++) {
		sla_terms_unref(s->tags[i]->terms);
		free(s->tags[i]);
	}
	free(s->tags);
	sla_policies_clear(&s->pol);
	free(s->bdays);
	free(s);
}

struct sla_conv *
sla_turn(struct sla *s, const char *conv, size_t len, const char *agent,
    const char *shop, const char *queue, int customer, int counts, int64_t now)
{
	struct sla_conv	*c;
	uint32_t	 h, ai = 0;
	uint16_t	 tag;

	if (conv == NULL && len > 0)
		return NULL;
	h = sla_hash(s, conv, len);
	if ((c = sla_conv_lookup(s, conv, len, h)) != NULL) {
		if (now >= c->idle_at) {
			/* it ended unseen: this turn starts anew */
			sla_conv_finish(s, c, c->idle_at);
			c = NULL;
		} else
			sla_conv_flush(s, c, now);
	}
	/* a conversation keeps the shop and queue of its first turn */
	tag = c != NULL ? c->tag : sla_tag_intern(s, shop, queue);
	if (agent != NULL && agent[0] != '\0' &&
	    (ai = sla_agent_intern(s, agent, tag)) == SLA_NOAGENT)
		return NULL;
	if (c == NULL && (c = sla_conv_new(s, conv, len, h, tag)) == NULL)
		return NULL;
	if (ai != 0 && ai != c->agent) {
		sla_conv_unlink_agent(s, c);
		sla_conv_link_agent(s, c, ai);
	}
	if (!counts)
		;	/* a robot's: the conversation lives on, its round as it was */
	else if (customer) {
		if (!c->open)
			sla_round_open(s, c, now);
	} else if (c->open)
		sla_round_close(s, c, now);
	c->idle_at = sla_idle_at(s, c, c->open, now);
	return c;
}

int64_t
sla_idle_at(const struct sla *s, const struct sla_conv *c, int open,
    int64_t now)
{
	const struct sla_tag	*t = s->tags[c->tag];

	if (t->cfg.idle_ms == 0 || t->cfg.idle_ms >= (uint64_t)SLA_TIME_MAX)
		return SLA_NEVER;
	/*
	 * While a buyer waits, idle is service time: one who writes at 23:10
	 * is not written off at 23:40 while the shop is closed. Answered, a
	 * chat within idle of the last one is the same session by the clock
	 * (JD's 10 minutes): the next morning's question is a first one.
	 */
	now = sla_clamp(now);
	return open ? sla_days_add(&t->days, now, t->cfg.idle_ms) :
	    sla_clamp(now + (int64_t)t->cfg.idle_ms);
}

/* An event already emitted for the open round of c. */
static int
sla_conv_emitted(const struct sla_conv *c, int i)
{
	return c->ms[i] != 0 && c->due[i] != SLA_NEVER &&
	    !(c->pending & (1u << i));
}

void
sla_conv_get(const struct sla_conv *c, struct sla_conv_state *st)
{
	int	 i;

	memset(st, 0, sizeof(*st));
	st->open = c->open;
	st->first = c->first;
	st->had_round = c->had_round;
	st->opened = c->opened;
	st->idle_at = c->idle_at;
	for (i = 0; i < SLA_NEV; i++) {
		st->ms[i] = c->ms[i];
		st->due[i] = c->due[i];
		if (c->open && sla_conv_emitted(c, i))
			st->fired |= 1u << i;
	}
}

struct sla_conv *
sla_conv_put(struct sla *s, const char *conv, size_t len, const char *agent,
    const char *shop, const char *queue, const struct sla_conv_state *st)
{
	struct sla_conv	*c;
	uint32_t	 h, ai = 0;
	uint16_t	 tag;
	int		 keep;

	if (conv == NULL && len > 0)
		return NULL;
	h = sla_hash(s, conv, len);
	c = sla_conv_lookup(s, conv, len, h);
	/*
	 * The store's shop wins over a turn's seen here first: it is the shop
	 * of the conversation's first turn, wherever that came in.
	 */
	if (shop != NULL && *shop != '\0')
		tag = sla_tag_intern(s, shop, queue);
	else
		tag = c != NULL ? c->tag : 0;
	if (agent == NULL || *agent == '\0')
		agent = c != NULL ? s->agents[c->agent]->id : "";
	if ((ai = sla_agent_intern(s, agent, tag)) == SLA_NOAGENT)
		return NULL;
	/*
	 * The round this engine opened keeps the settings it opened with; one
	 * opened elsewhere, or that turned out another shop's, is judged by
	 * its shop's settings from here on.
	 */
	keep = c != NULL && c->terms != NULL && c->tag == tag &&
	    c->opened == st->opened;
	if (c == NULL && (c = sla_conv_new(s, conv, len, h, tag)) == NULL)
		return NULL;
	c->tag = tag;
	if (ai != c->agent) {
		sla_conv_unlink_agent(s, c);
		sla_conv_link_agent(s, c, ai);
	}
	c->ragent = c->agent;
	c->idle_at = st->idle_at;
	sla_round_set(s, c, st);
	if (!keep && st->open)
		sla_conv_take_terms(s, c);
	else if (!keep) {
		sla_terms_unref(c->terms);
		c->terms = NULL;
	}
	return c;
}

void
sla_set_round_cb(struct sla *s, sla_round_cb cb, void *arg)
{
	s->round_cb = cb;
	s->round_arg = arg;
}

void
sla_set_charging(struct sla *s, int on)
{
	s->charging = on != 0;
}

/* The figures of agent in (shop, queue), added on first sight; SLA_NOAGENT on ENOMEM. */
static uint32_t
sla_account(struct sla *s, const char *agent, const char *shop,
    const char *queue)
{
	return sla_agent_intern(s, agent != NULL ? agent : "",
	    sla_tag_intern(s, shop, queue));
}

int
sla_charge_round(struct sla *s, const struct sla_round *r)
{
	const struct sla_config	*cfg;
	const struct sla_days	*days;
	const struct sla_conv	*c = NULL;
	uint64_t		 ms;
	uint32_t		 ai;
	uint16_t		 tag;

	if ((ai = sla_account(s, r->agent, r->shop, r->queue)) == SLA_NOAGENT)
		return 1;
	tag = s->agents[ai]->tag;
	/*
	 * The very round this engine holds (the same open time, in the same
	 * shop) is judged by the settings it opened with; any other by its
	 * shop's now: the store does not keep a round's settings.
	 */
	if (r->conversation != NULL)
		c = sla_find(s, r->conversation, r->conversation_len);
	if (c != NULL && c->tag == tag && c->opened == r->opened) {
		cfg = sla_conv_cfg(s, c);
		days = sla_conv_days(s, c);
	} else {
		cfg = &s->tags[tag]->cfg;
		days = &s->tags[tag]->days;
	}
	ms = sla_days_ms(days, r->opened, r->at);
	if (sla_round_unserved(days, r->opened, r->at, ms))
		return 0;
	sla_agent_record(s, ai, cfg, r->answered, r->answered ? ms : 0,
	    r->first, r->at, r->conversation, r->conversation_len);
	return 1;
}

void
sla_charge_event(struct sla *s, const char *agent, const char *shop,
    const char *queue, enum sla_event_type type, int64_t at)
{
	uint32_t	 ai;

	if (type == SLA_WARN ||
	    (ai = sla_account(s, agent, shop, queue)) == SLA_NOAGENT)
		return;
	sla_agent_event(s, s->agents[ai], type == SLA_ESCALATE, at);
}

struct sla_conv *
sla_find(struct sla *s, const char *conv, size_t len)
{
	if (s == NULL || (conv == NULL && len > 0))
		return NULL;
	return sla_conv_lookup(s, conv, len, sla_hash(s, conv, len));
}

int64_t
sla_conv_deadline(const struct sla_conv *c)
{
	int	 i = sla_conv_next(c);

	if (i != -1 && c->due[i] < c->idle_at)
		return c->due[i];
	return c->idle_at;
}

int
sla_expire(struct sla *s, struct sla_conv *c, int64_t now)
{
	if (now >= c->idle_at) {
		sla_conv_finish(s, c, c->idle_at);
		return 1;
	}
	sla_conv_flush(s, c, now);
	return 0;
}

void
sla_end(struct sla *s, struct sla_conv *c, int64_t now)
{
	if (c == NULL)
		return;
	sla_conv_finish(s, c, sla_conv_end_at(c, now));
}

void
sla_end_agent(struct sla *s, const char *agent, int64_t now)
{
	struct sla_agent	*a;
	size_t			 len, t;
	uint32_t		 idx;

	/* "" is every session without an id, not one: idle ends those */
	if (agent == NULL || agent[0] == '\0')
		return;
	len = strlen(agent);
	for (t = 0; t < s->ntags; t++) {
		if ((idx = sla_agent_find(s, agent, (uint16_t)t,
		    sla_agent_hash(s, agent, len, (uint16_t)t))) == SLA_NOAGENT)
			continue;
		a = s->agents[idx];
		while (a->convs != NULL)
			sla_conv_finish(s, a->convs,
			    sla_conv_end_at(a->convs, now));
	}
}

void
sla_conv_set_udata(struct sla_conv *c, void *udata)
{
	c->udata = udata;
}

void *
sla_conv_udata(const struct sla_conv *c)
{
	return c->udata;
}

uint64_t
sla_conv_wait(const struct sla *s, const struct sla_conv *c, int64_t now)
{
	if (!c->open)
		return 0;
	return sla_days_ms(sla_conv_days(s, c), c->opened, now);
}

const char *
sla_conv_agent(const struct sla *s, const struct sla_conv *c)
{
	return s->agents[c->agent]->id;
}

const char *
sla_conv_shop(const struct sla *s, const struct sla_conv *c, const char **queue)
{
	if (queue != NULL)
		*queue = s->tags[c->tag]->queue;
	return s->tags[c->tag]->shop;
}

const char *
sla_conv_id(const struct sla_conv *c, size_t *len)
{
	if (len != NULL)
		*len = c->len;
	return c->id;
}

static void
sla_who(const struct sla *s, const struct sla_agent *a, struct sla_account *w)
{
	w->agent = a->id;
	w->shop = s->tags[a->tag]->shop;
	w->queue = s->tags[a->tag]->queue;
}

void
sla_agents(const struct sla *s, void (*cb)(const struct sla_account *,
    const struct sla_figures *, void *), void *arg)
{
	const struct sla_agent	*a;
	struct sla_account	 w;
	struct sla_figures	 f;
	size_t			 i;

	for (i = 0; i < s->nagents; i++) {
		a = s->agents[s->order[i]];
		if (a->all.rounds == 0 && a->all.breaches == 0 &&
		    a->all.escalations == 0)
			continue;
		sla_sums_figures(&a->all, s->tags[a->tag]->cfg.cap_ms, &f);
		sla_who(s, a, &w);
		cb(&w, &f, arg);
	}
}

void
sla_agents_day(const struct sla *s, int64_t now, void (*cb)(const struct
    sla_account *, const struct sla_day *, void *), void *arg)
{
	const struct sla_agent	*a;
	const struct sla_aday	*ad;
	struct sla_account	 w;
	struct sla_day		 d;
	int64_t			 l, today;
	size_t			 i;

	/* the day of now in the figures' zone (sla_agent_day) */
	l = sla_clamp(now) + (int64_t)s->tags[0]->cfg.utc_offset_min * 60000;
	today = sla_floordiv(l, SLA_DAY_MS);
	for (i = 0; i < s->nagents; i++) {
		a = s->agents[s->order[i]];
		ad = a->day[0].no == today ? &a->day[0] :
		    a->day[1].no == today ? &a->day[1] : NULL;
		if (ad == NULL || (ad->sums.rounds == 0 &&
		    ad->sums.breaches == 0 && ad->sums.escalations == 0))
			continue;
		d.sums = &ad->sums;
		d.hour_rounds = ad->hour_rounds;
		d.hour_sum_ms = ad->hour_sum_ms;
		sla_who(s, a, &w);
		cb(&w, &d, arg);
	}
}

void
sla_waiting(const struct sla *s, int64_t now, void (*cb)(const
    struct sla_waiting *, void *), void *arg)
{
	const struct sla_conv	*c;
	struct sla_waiting	 w;
	size_t			 i;

	for (i = 0; i < s->nbuckets; i++)
		for (c = s->buckets[i]; c != NULL; c = c->hnext) {
			if (!c->open)
				continue;
			w.conversation = c->id;
			w.conversation_len = c->len;
			w.agent = s->agents[c->agent]->id;
			w.shop = s->tags[c->tag]->shop;
			w.queue = s->tags[c->tag]->queue;
			w.opened = c->opened;
			w.waited_ms = sla_conv_wait(s, c, now);
			w.threshold_ms = c->ms[SLA_EV_BREACH];
			w.first = c->first;
			w.state = sla_conv_emitted(c, SLA_EV_ESCALATE) ?
			    SLA_ROUND_ESCALATED : sla_conv_emitted(c,
			    SLA_EV_BREACH) ? SLA_ROUND_BREACHED :
			    sla_conv_emitted(c, SLA_EV_WARN) ?
			    SLA_ROUND_WARNED : SLA_ROUND_OPEN;
			cb(&w, arg);
		}
}

size_t
sla_agent_entries(const struct sla *s)
{
	return s->nagents;
}

size_t
sla_conversations(const struct sla *s)
{
	return s->nconv;
}

size_t
sla_open_rounds(const struct sla *s)
{
	return s->nopen;
}

void
sla_config_from(struct sla_config *s, const struct config_sla *c)
{
	size_t	i;

	memset(s, 0, sizeof(*s));
	s->first_response_ms = c->first_response_ms;
	s->reply_ms = c->reply_ms;
	s->warn_at = c->warn_at;
	s->escalate_ms = c->escalate_ms;
	s->idle_ms = c->idle_ms;
	s->cap_ms = c->cap_ms;
	s->rate_ms = c->rate_ms;
	s->rate_scope = c->rate_scope;
	for (i = 0; i < c->nhours && i < SLA_MAX_HOURS; i++) {
		s->hours[i].from_min = c->hours[i].from_min;
		s->hours[i].to_min = c->hours[i].to_min;
	}
	s->nhours = i;
	s->utc_offset_min = c->utc_offset_min;
}

void
sla_histogram(const struct sla *s, const uint64_t *bounds_ms, size_t n,
    uint64_t *counts, uint64_t *sum_ms, uint64_t *total)
{
	size_t	k, slot;

	/* the engine's own sums: a scrape walks one histogram, not an agent's each */
	memset(counts, 0, n * sizeof(*counts));
	*sum_ms = s->all.sum_ms;
	*total = s->all.rounds;
	for (slot = 0; slot < s->all.nhist; slot++) {
		if (s->all.hist[slot] == 0)
			continue;
		for (k = 0; k < n; k++)
			if (sla_hist_seconds(slot) * 1000 <= bounds_ms[k])
				counts[k] += s->all.hist[slot];
	}
}

int
sla_policies_from(const struct config *cfg, struct sla_policy **v, size_t *n)
{
	const struct config_shop	*sh;
	struct sla_policy		*p;
	size_t				 i, j, k = 0, cnt = 0;

	*v = NULL;
	*n = 0;
	for (i = 0; i < cfg->nshops; i++)
		cnt += 1 + cfg->shops[i].nqueues;
	if (cnt == 0)
		return 0;
	if ((p = calloc(cnt, sizeof(*p))) == NULL)
		return -1;
	for (i = 0; i < cfg->nshops; i++) {
		sh = &cfg->shops[i];
		p[k].shop = sh->id;
		p[k].queue = "";
		sla_config_from(&p[k++].cfg, &sh->sla);
		for (j = 0; j < sh->nqueues; j++) {
			p[k].shop = sh->id;
			p[k].queue = sh->queues[j].id;
			sla_config_from(&p[k++].cfg, &sh->queues[j].sla);
		}
	}
	*v = p;
	*n = cnt;
	return 0;
}
