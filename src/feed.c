/* feed: the dashboard's alerts: the last N of the stream (repeats dropped), today's rule hits per agent and category (and blocks per agent), and the feed messages made of them (pure). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "chatmon/feed.h"
#include "chatmon/jsonw.h"
#include "chatmon/seen.h"
#include "chatmon/users.h"

/* Repeats come soon after the original: a few histories' worth of ids is plenty. */
#define FEED_SEEN_MIN	10000

struct feed_entry {
	struct feed_item it;		/* its strings are sid, json and meta's */
	char		 sid[FEED_SID_MAX];
	char		*json;		/* owned; the alert object as it came */
	char		*meta;		/* owned; the item's id, shop, ... one after another */
};

struct feed {
	struct feed_entry *ring;	/* entry seq lives at ring[seq % cap] */
	size_t		 cap, n;	/* cap: keep */
	size_t		 history;	/* what a new page gets */
	uint64_t	 next;		/* the sequence number of the next alert */
	struct seen	*seen;
	char		 last_sid[FEED_SID_MAX];
	uint64_t	 last_ms, last_seq;
	uint64_t	 bad;
	char		 day[16];
	int64_t		 day_start, day_end;
	json_t		*hits;		/* {key: {category: n}} of the day (feed_key) */
	json_t		*blocks;	/* {key: n}: of those, the blocked turns */
	json_t		*next_hits;	/* the same of the next day, until it begins */
	json_t		*next_blocks;
};

struct feed *
feed_new(size_t history, size_t keep)
{
	struct feed	*f;

	if (history == 0 || keep < history || (f = calloc(1, sizeof(*f))) == NULL)
		return NULL;
	f->cap = keep;
	f->history = history;
	if ((f->ring = calloc(keep, sizeof(*f->ring))) == NULL ||
	    (f->seen = seen_new(keep > FEED_SEEN_MIN ? keep :
	    FEED_SEEN_MIN)) == NULL || (f->hits = json_object()) == NULL ||
	    (f->blocks = json_object()) == NULL ||
	    (f->next_hits = json_object()) == NULL ||
	    (f->next_blocks = json_object()) == NULL) {
		feed_free(f);
		return NULL;
	}
	return f;
}

void
feed_free(struct feed *f)
{
	size_t	i;

	if (f == NULL)
		return;
	for (i = 0; f->ring != NULL && i < f->cap; i++) {
		free(f->ring[i].json);
		free(f->ring[i].meta);
	}
	free(f->ring);
	seen_free(f->seen);
	json_decref(f->hits);
	json_decref(f->blocks);
	json_decref(f->next_hits);
	json_decref(f->next_blocks);
	free(f);
}

int
feed_set_day(struct feed *f, const char *day, int64_t start, int64_t end)
{
	json_t	*h, *b;

	if (strcmp(f->day, day) == 0)
		return 0;
	if (f->day[0] != '\0' && start == f->day_end) {
		/* the next day begun: what was counted ahead for it is its own */
		h = f->hits;
		b = f->blocks;
		f->hits = f->next_hits;
		f->blocks = f->next_blocks;
		f->next_hits = h;
		f->next_blocks = b;
	} else if (json_object_clear(f->hits) == -1 ||
	    json_object_clear(f->blocks) == -1)
		return -1;
	if (json_object_clear(f->next_hits) == -1 ||
	    json_object_clear(f->next_blocks) == -1)
		return -1;
	snprintf(f->day, sizeof(f->day), "%s", day);
	f->day_start = start;
	f->day_end = end;
	return 0;
}

/* "1795342899881-0" into its parts; 0 or -1. */
static int
feed_sid(const char *sid, uint64_t *ms, uint64_t *seq)
{
	char	*end;

	if (*sid < '0' || *sid > '9')
		return -1;
	*ms = strtoull(sid, &end, 10);
	if (*end != '-' || end[1] < '0' || end[1] > '9')
		return -1;
	*seq = strtoull(end + 1, &end, 10);
	return *end == '\0' && strlen(sid) < FEED_SID_MAX ? 0 : -1;
}

/*
 * The hits' key of (shop, queue, agent): "shop\x1fqueue\x1fagent", so that
 * an agent's hits in two shops stay apart as its figures do. 0 or -1.
 */
static int
feed_key(struct sbuf *k, const char *shop, const char *queue, const char *agent)
{
	sbuf_reset(k);
	return sbuf_printf(k, "%s\x1f%s\x1f%s", shop, queue, agent);
}

/* Keys in the figures' order: shop, then queue, then agent (the separator below all else). */
static int
feed_key_cmp_str(const char *a, const char *b)
{
	unsigned char	x, y;

	for (;; a++, b++) {
		x = *a == '\x1f' ? 1 : (unsigned char)*a;
		y = *b == '\x1f' ? 1 : (unsigned char)*b;
		if (x != y || x == 0)
			return (int)x - (int)y;
	}
}

/*
 * A rule.hit alert of the day: one more (or "count" more, when folded) for
 * its agent under its category, the strongest rule's: a turn that broke
 * several rules is one alert (v2 "hits"), one violation, not one per rule.
 */
static int
feed_count_hit(struct feed *f, const json_t *a)
{
	const char	*type, *agent, *cat, *act, *shop, *queue;
	struct sbuf	 key;
	json_t		*per, *n, *hits = f->hits, *blocks = f->blocks;
	json_int_t	 c = 1;
	int64_t		 t;
	int		 rc = -1;

	type = json_string_value(json_object_get(a, "type"));
	if (type == NULL || strcmp(type, "rule.hit") != 0 ||
	    (cat = json_string_value(json_object_get(a, "category"))) == NULL)
		return 0;
	t = util_ts_ms(json_string_value(json_object_get(a, "ts")));
	/*
	 * An alert of the next day is counted for it, apart, until the
	 * caller's clock moves the day (its next look): the hits of the first
	 * seconds after midnight are not lost, and an instance whose clock runs
	 * ahead does not end today early, wiping its hits. Only the next day:
	 * a ts days ahead (a wrong clock) is not counted.
	 */
	if (f->day[0] != '\0' && t >= f->day_end &&
	    t < f->day_end + STATE_DAY_MS) {
		hits = f->next_hits;
		blocks = f->next_blocks;
	} else if (t < f->day_start || t >= f->day_end)
		return 0;
	if ((agent = json_string_value(json_object_get(a, "agent"))) == NULL)
		agent = "";
	if ((shop = json_string_value(json_object_get(a, "shop"))) == NULL)
		shop = "";
	if ((queue = json_string_value(json_object_get(a, "queue"))) == NULL ||
	    shop[0] == '\0')
		queue = "";
	if (json_integer_value(json_object_get(a, "count")) > 1)
		c = json_integer_value(json_object_get(a, "count"));
	sbuf_init(&key);
	if (feed_key(&key, shop, queue, agent) == -1)
		goto out;
	if ((per = json_object_get(hits, sbuf_str(&key))) == NULL) {
		if ((per = json_object()) == NULL ||
		    json_object_set_new(hits, sbuf_str(&key), per) == -1)
			goto out;
	}
	n = json_object_get(per, cat);
	if (json_object_set_new(per, cat, json_integer(json_integer_value(n) + c)) == -1)
		goto out;
	/* the action is the strongest hit's: a blocked turn is one block */
	if ((act = json_string_value(json_object_get(a, "action"))) == NULL ||
	    strcmp(act, "block") != 0) {
		rc = 0;
		goto out;
	}
	n = json_object_get(blocks, sbuf_str(&key));
	rc = json_object_set_new(blocks, sbuf_str(&key),
	    json_integer(json_integer_value(n) + c));
out:
	sbuf_free(&key);
	return rc;
}

int
feed_add(struct feed *f, const char *sid, const char *json, size_t len)
{
	/* the item's fields, in the order meta holds them */
	static const char *const keys[] = { "id", "shop", "queue", "agent",
	    "conversation", "severity" };
	const char		*v[UTIL_NELEM(keys)];
	size_t			 vlen[UTIL_NELEM(keys)], size = 0, k;
	struct feed_entry	*e;
	struct feed_item	*it;
	json_t			*a;
	uint64_t		 ms, seq;
	const char		**field[UTIL_NELEM(keys)];
	char			*copy = NULL, *meta = NULL, *m;
	int			 rc;

	if (feed_sid(sid, &ms, &seq) == -1) {
		f->bad++;
		return 0;
	}
	if (f->last_sid[0] != '\0' && (ms < f->last_ms ||
	    (ms == f->last_ms && seq <= f->last_seq)))
		return 0;	/* read before */
	snprintf(f->last_sid, sizeof(f->last_sid), "%s", sid);
	f->last_ms = ms;
	f->last_seq = seq;
	/* chat text may hold U+0000, and chatmond keeps it whole (as tail does) */
	if ((a = json_loadb(json, len, JSON_ALLOW_NUL, NULL)) == NULL ||
	    !json_is_object(a) || jsonw_cstr(a, "id") == NULL) {
		json_decref(a);
		f->bad++;
		return 0;
	}
	for (k = 0; k < UTIL_NELEM(keys); k++) {
		v[k] = jsonw_cstr(a, keys[k]);
		vlen[k] = v[k] != NULL ? strlen(v[k]) : 0;
		size += vlen[k] + 1;
	}
	if (v[1] != NULL && v[1][0] == '\0')
		v[1] = NULL;	/* no shop */
	if ((rc = seen_add(f->seen, v[0])) != 0 ||
	    (copy = malloc(len + 1)) == NULL || (meta = malloc(size)) == NULL ||
	    feed_count_hit(f, a) == -1) {
		json_decref(a);
		if (rc == 1)
			return 0;
		free(copy);
		free(meta);
		return -1;
	}
	e = &f->ring[f->next % f->cap];
	free(e->json);		/* the oldest, when full */
	free(e->meta);
	it = &e->it;
	field[0] = &it->id;
	field[1] = &it->shop;
	field[2] = &it->queue;
	field[3] = &it->agent;
	field[4] = &it->conversation;
	field[5] = &it->severity;
	for (m = meta, k = 0; k < UTIL_NELEM(keys); k++) {
		*field[k] = v[k] != NULL ? memcpy(m, v[k], vlen[k] + 1) : NULL;
		m += vlen[k] + 1;
	}
	json_decref(a);
	memcpy(copy, json, len);
	copy[len] = '\0';
	snprintf(e->sid, sizeof(e->sid), "%s", sid);
	e->json = copy;
	e->meta = meta;
	it->sid = e->sid;
	it->json = copy;
	it->len = len;
	f->next++;
	if (f->n < f->cap)
		f->n++;
	return 1;
}

const char *
feed_last_sid(const struct feed *f)
{
	return f->last_sid;
}

size_t
feed_size(const struct feed *f)
{
	return f->n;
}

const struct feed_item *
feed_item(const struct feed *f, size_t i)
{
	return i < f->n ? &f->ring[(f->next - f->n + i) % f->cap].it : NULL;
}

uint64_t
feed_bad(const struct feed *f)
{
	return f->bad;
}

uint64_t
feed_position(const struct feed *f, const char *since)
{
	uint64_t	seq;

	if (since == NULL || since[0] == '\0')
		return FEED_NEW;
	for (seq = f->next; seq > f->next - f->n; seq--)
		if (strcmp(f->ring[(seq - 1) % f->cap].sid, since) == 0)
			return seq;
	/* the last id read may have been no alert: the page has seen all */
	return strcmp(since, f->last_sid) == 0 ? f->next : FEED_NEW;
}

int
feed_pending(const struct feed *f, uint64_t pos)
{
	return pos == FEED_NEW || pos < f->next;
}

int
feed_alerts_msg(const struct feed *f, uint64_t *pos, const char *scope,
    struct sbuf *out)
{
	const struct feed_entry	*e;
	uint64_t		 first = f->next - f->n, seq;
	int			 reset = *pos == FEED_NEW || *pos < first;
	size_t			 k, start = out->len;

	if (reset && f->n > f->history)
		first = f->next - f->history;
	seq = reset ? first : *pos;
	if (sbuf_printf(out, "{\"type\":\"alerts\",\"reset\":%s,\"alerts\":[",
	    reset ? "true" : "false") == -1)
		return -1;
	for (k = 0; k < FEED_BATCH_MAX && seq < f->next; seq++) {
		e = &f->ring[seq % f->cap];
		if (!users_scope_has(scope, e->it.shop))
			continue;	/* another shop's: not this page's to see */
		/* a stream id is digits and a '-', and the alert was parsed: as is */
		if (sbuf_printf(out, "%s{\"sid\":\"%s\",\"alert\":", k ? "," : "",
		    e->sid) == -1 || sbuf_append(out, e->json, e->it.len) == -1 ||
		    sbuf_append(out, "}", 1) == -1)
			return -1;
		k++;
	}
	*pos = seq;
	/*
	 * An empty batch that resets nothing would tell a login of some shops
	 * only that another shop had an alert: not sent
	 */
	if (k == 0 && !reset) {
		out->len = start;
		out->s[start] = '\0';
		return 0;
	}
	if (sbuf_append(out, "]}", 2) == -1)
		return -1;
	return 1;
}

static int
feed_str_cmp(const void *a, const void *b)
{
	return feed_key_cmp_str(*(const char *const *)a, *(const char *const *)b);
}

/* One row of the message; a is NULL for an agent with hits only. */
static json_t *
feed_agent(const char *shop, const char *queue, const char *agent,
    const struct state_agent *a, json_t *hits, json_int_t blocks)
{
	struct state_agent	 none;
	json_t			*o, *hours;
	size_t			 h;

	if (a == NULL) {
		memset(&none, 0, sizeof(none));
		a = &none;
	}
	if ((o = json_pack("{s:s}", "agent", agent)) == NULL ||
	    /* as alerts carry them: only when set */
	    (shop[0] != '\0' && json_object_set_new(o, "shop",
	    json_string(shop)) == -1) ||
	    (queue[0] != '\0' && json_object_set_new(o, "queue",
	    json_string(queue)) == -1) ||
	    json_object_update_new(o, state_figures_json(&a->f)) == -1 ||
	    json_object_set(o, "hits", hits) == -1 ||
	    json_object_set_new(o, "blocks", json_integer(blocks)) == -1 ||
	    json_object_set_new(o, "hours", hours = json_array()) == -1) {
		json_decref(o);
		return NULL;
	}
	for (h = 0; h < 24; h++)
		if (a->hour_rounds[h] > 0)
			json_array_append_new(hours, json_pack("{s:I, s:I, s:I}",
			    "hour", (json_int_t)h,
			    "rounds", (json_int_t)a->hour_rounds[h],
			    "mean_ms", (json_int_t)a->hour_mean_ms[h]));
	return o;
}

int
feed_agents_msg(const struct feed *f, const struct state_agent *agents,
    size_t n, struct sbuf *out)
{
	const char	**names = NULL, *name;
	json_t		*list, *none, *hits, *o;
	struct sbuf	 key, split;
	char		*shop, *queue, *agent;
	size_t		 i = 0, k = 0, nn = 0;
	void		*it;
	int		 c, rc = -1;

	sbuf_init(&key);
	sbuf_init(&split);
	if ((list = json_array()) == NULL || (none = json_object()) == NULL) {
		json_decref(list);
		return -1;
	}
	if (json_object_size(f->hits) > 0 &&
	    (names = calloc(json_object_size(f->hits), sizeof(*names))) == NULL)
		goto out;
	for (it = json_object_iter(f->hits); it != NULL;
	    it = json_object_iter_next(f->hits, it))
		names[nn++] = json_object_iter_key(it);
	if (nn > 1)			/* qsort(NULL, 0) is undefined */
		qsort(names, nn, sizeof(*names), feed_str_cmp);
	/* both lists are in (shop, queue, agent) order: walk them together */
	while (i < n || k < nn) {
		/* NULL shop or queue: none (a caller that knows no shops) */
		if (i < n && feed_key(&key, agents[i].shop != NULL ?
		    agents[i].shop : "", agents[i].queue != NULL ?
		    agents[i].queue : "", agents[i].agent) == -1)
			goto out;
		c = i == n ? 1 : k == nn ? -1 : feed_key_cmp_str(sbuf_str(&key),
		    names[k]);
		name = c <= 0 ? sbuf_str(&key) : names[k];
		/* the row's shop, queue and agent from its key */
		sbuf_reset(&split);
		if (sbuf_printf(&split, "%s", name) == -1)
			goto out;
		shop = split.s;
		queue = strchr(shop, '\x1f');
		agent = queue != NULL ? strchr(queue + 1, '\x1f') : NULL;
		if (queue == NULL || agent == NULL)
			goto next;	/* not a key of ours */
		*queue++ = '\0';
		*agent++ = '\0';
		if ((hits = json_object_get(f->hits, name)) == NULL)
			hits = none;
		if ((o = feed_agent(shop, queue, agent, c <= 0 ? &agents[i] : NULL,
		    hits, json_integer_value(json_object_get(f->blocks,
		    name)))) == NULL || json_array_append_new(list, o) == -1)
			goto out;
next:
		if (c <= 0)
			i++;
		if (c >= 0)
			k++;
	}
	rc = jsonw_dump(out, json_pack("{s:s, s:s, s:O}", "type", "agents",
	    "day", f->day, "agents", list));
out:
	sbuf_free(&key);
	sbuf_free(&split);
	free(names);
	json_decref(list);
	json_decref(none);
	return rc;
}

int
feed_scope_msg(const char *msg, size_t len, const char *scope,
    struct sbuf *out)
{
	json_t		*m, *list, *kept, *row, *shops, *mine = NULL, *v;
	const char	*key, *shop;
	json_int_t	 total = 0;
	size_t		 i;
	int		 rc = -1, waiting;

	/* a conversation id from a chat frame may hold U+0000 */
	if ((m = json_loadb(msg, len, JSON_ALLOW_NUL, NULL)) == NULL)
		return -1;
	waiting = json_is_array(json_object_get(m, "rounds"));
	key = waiting ? "rounds" : "agents";
	if ((list = json_object_get(m, key)) == NULL || !json_is_array(list) ||
	    (kept = json_array()) == NULL)
		goto out;
	/* a waiting message holds the longest of each shop: a page gets the longest of its own */
	json_array_foreach(list, i, row)
		if ((!waiting || json_array_size(kept) < STATE_FEED_WAITING_MAX) &&
		    users_scope_has(scope, json_string_value(json_object_get(row,
		    "shop"))) && json_array_append(kept, row) == -1) {
			json_decref(kept);
			goto out;
		}
	if (json_object_set_new(m, key, kept) == -1)
		goto out;
	/*
	 * The others' customers are not counted either, nor named: the total
	 * is of its shops, all of them (the message's count by shop), not
	 * only of the rows it lists
	 */
	if (waiting && scope != NULL) {
		if ((mine = json_object()) == NULL)
			goto out;
		shops = json_object_get(m, "shops");
		json_object_foreach(shops, shop, v)
			if (users_scope_has(scope, shop)) {
				total += json_integer_value(v);
				if (json_object_set(mine, shop, v) == -1)
					goto out;
			}
		if (!json_is_object(shops))	/* a message of before: its rows */
			total = (json_int_t)json_array_size(kept);
		if (json_object_set_new(m, "total", json_integer(total)) == -1 ||
		    json_object_set(m, "shops", mine) == -1)
			goto out;
	}
	rc = jsonw_dump(out, json_incref(m));
out:
	json_decref(mine);
	json_decref(m);
	return rc;
}
