/* dash_audit: the dashboard's view of what supervisors did: the handling hash kept in memory, the audit stream followed (every dashboard's actions, the agents' note acks), and the handling and note messages pushed to the pages. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <hiredis/hiredis.h>
#include <jansson.h>

#include "chatmon/xfollow.h"
#include "chatmon/handling.h"
#include "chatmon/jsonw.h"
#include "chatmon/log.h"
#include "chatmon/note.h"
#include "chatmon/rconn.h"
#include "dash_int.h"

/*
 * Redis holds the truth (P chatmon:alerts:handling, P chatmon:note:ID);
 * the audit stream only says what changed. So an entry is not applied as
 * it reads: the value it names is read again, and a dashboard that missed
 * entries while Redis was away reads the whole hash when it is back. The
 * same value twice (this dashboard's own action, then its audit entry) is
 * pushed once.
 */

#define DASH_PRUNE_MS	(10 * 60 * 1000)	/* handling of alerts gone from the stream */
#define DASH_HDEL_PAGE	500			/* fields per HDEL */
/*
 * An alert's id says when it was raised, its stream entry when Redis got
 * it: later by the outbox's or the spool's delay after an outage. Only
 * ids this much older than the oldest entry are known to be gone.
 */
#define DASH_PRUNE_SLACK_MS	(60 * 60 * 1000)

struct dash_audit_ctx {		/* an HGET or HMGET under way */
	struct dash	*d;
	char		 id[];
};

static struct dash_audit_ctx *
dash_audit_ctx(struct dash *d, const char *id)
{
	struct dash_audit_ctx	*x;
	size_t			 n = strlen(id) + 1;

	if ((x = malloc(sizeof(*x) + n)) == NULL)
		return NULL;
	x->d = d;
	memcpy(x->id, id, n);
	return x;
}

/* A message to every page (msg is stolen, may be NULL); 0 or -1 (ENOMEM: the pages miss it). */
static int
dash_audit_push(struct dash *d, json_t *msg)
{
	struct sbuf	 b;
	char		**slot;

	sbuf_init(&b);
	if (jsonw_dump(&b, msg) == -1) {
		sbuf_free(&b);
		return -1;
	}
	slot = &d->ev[d->evnext % DASH_EVENTS];
	free(*slot);
	*slot = b.s;		/* the sbuf's buffer, NUL-terminated: ours now */
	d->evnext++;
	dash_feed_notify(d);
	return 0;
}

json_t *
dash_audit_handling(struct dash *d, const char *id)
{
	return json_object_get(d->handling, id);
}

int
dash_audit_set(struct dash *d, const char *id, json_t *value)
{
	json_t	*old = json_object_get(d->handling, id), *msg;

	if (old != NULL && json_equal(old, value)) {
		json_decref(value);
		return 0;
	}
	if (json_object_set_new(d->handling, id, value) == -1)
		return -1;
	msg = json_pack("{s:s, s:b, s:{s:O}}", "type", "handling", "reset", 0,
	    "alerts", id, value);
	return dash_audit_push(d, msg);
}

/* --- the hash read whole, and pruned ---------------------------------------- */

/*
 * 1 when the field can be a key of the map: no U+0000 (a C string would
 * stand for a shorter id) and well-formed UTF-8 (jansson refuses others).
 * Any Redis client may write the hash; one field must not cost the rest.
 */
static int
dash_audit_field_ok(const redisReply *f)
{
	return f->type == REDIS_REPLY_STRING &&
	    memchr(f->str, '\0', f->len) == NULL &&
	    util_utf8_valid(f->str, f->len);
}

static void
dash_audit_on_hgetall(redisReply *r, void *priv)
{
	struct dash	*d = priv;
	json_t		*map, *v;
	size_t		 i, bad = 0;

	if (r == NULL)
		return;
	if (r->type != REDIS_REPLY_ARRAY) {
		log_warnx("dash_audit_on_hgetall: redis %s: %s", d->handling_key,
		    r->type == REDIS_REPLY_ERROR ? r->str : "an unexpected reply");
		return;
	}
	if ((map = json_object()) == NULL)
		goto oom;
	for (i = 0; i + 1 < r->elements; i += 2) {
		if (!dash_audit_field_ok(r->element[i]) ||
		    r->element[i + 1]->type != REDIS_REPLY_STRING ||
		    (v = json_loadb(r->element[i + 1]->str, r->element[i + 1]->len,
		    0, NULL)) == NULL) {
			bad++;
			continue;
		}
		/* the field checked: only ENOMEM fails (v is dropped then) */
		if (json_object_set_new(map, r->element[i]->str, v) == -1) {
			json_decref(map);
			goto oom;
		}
	}
	if (bad > 0)
		log_warnx("dash_audit_on_hgetall: %zu fields of %s skipped: a name "
		    "that is not UTF-8 or holds U+0000, or a value that is not "
		    "JSON", bad, d->handling_key);
	json_decref(d->handling);
	d->handling = map;
	d->handling_v++;
	log_info("dash_audit_on_hgetall: %zu alerts handled, from %s",
	    json_object_size(map), d->handling_key);
	dash_feed_notify(d);
	return;
oom:
	log_warnx("dash_audit_on_hgetall: out of memory, the handling kept as it was");
}

struct dash_prune {
	struct dash	*d;
	int64_t		 oldest;
};

/*
 * 1 when r is an error of Redis (a NOPERM of an ACL user that lacks the
 * command, say), logged the first time only: the prune runs every ten
 * minutes, and a refused one only keeps handling longer.
 */
static int
dash_audit_prune_refused(struct dash *d, const redisReply *r, const char *cmd)
{
	if (r == NULL || r->type != REDIS_REPLY_ERROR)
		return 0;
	if (!d->prune_refused)
		log_warnx("dash_audit_prune: redis %s %s: %s; the handling of alerts "
		    "gone from the stream is not pruned (said once)", cmd,
		    d->handling_key, r->str);
	d->prune_refused = 1;
	return 1;
}

static void
dash_audit_on_hdel(redisReply *r, void *priv)
{
	(void)dash_audit_prune_refused(priv, r, "HDEL");
}

static void
dash_audit_on_hkeys(redisReply *r, void *priv)
{
	struct dash_prune	*p = priv;
	struct dash		*d = p->d;
	const char		*argv[2 + DASH_HDEL_PAGE];
	size_t			 argvlen[2 + DASH_HDEL_PAGE], i, n = 2, gone = 0;
	int64_t			 ms;

	if (r == NULL || dash_audit_prune_refused(d, r, "HKEYS") ||
	    r->type != REDIS_REPLY_ARRAY) {
		free(p);
		return;
	}
	argv[0] = "HDEL";
	argvlen[0] = 4;
	argv[1] = d->handling_key;
	argvlen[1] = strlen(d->handling_key);
	for (i = 0; i < r->elements; i++) {
		if (r->element[i]->type != REDIS_REPLY_STRING ||
		    (ms = handling_id_ms(r->element[i]->str)) < 0 || ms >= p->oldest)
			continue;	/* ids of another form are not ours to judge */
		/*
		 * older than the stream, and in it still: one a spool held
		 * past the hour, or of an instance whose clock is behind (found
		 * by review: a supervisor's answered action deleted)
		 */
		if (dash_feed_find(d, r->element[i]->str) != NULL)
			continue;
		json_object_del(d->handling, r->element[i]->str);
		argv[n] = r->element[i]->str;
		argvlen[n++] = r->element[i]->len;
		gone++;
		if (n == UTIL_NELEM(argv)) {
			(void)rconn_command_argv(d->wr, dash_audit_on_hdel, d, 0,
			    (int)n, argv, argvlen);
			n = 2;
		}
	}
	if (n > 2)
		(void)rconn_command_argv(d->wr, dash_audit_on_hdel, d, 0, (int)n,
		    argv, argvlen);
	if (gone > 0)
		log_info("dash_audit_on_hkeys: the handling of %zu alerts gone from "
		    "the stream pruned", gone);
	free(p);
}

static void
dash_audit_on_oldest(redisReply *r, void *priv)
{
	struct dash_prune	*p = priv;
	const redisReply	*e;

	if (r == NULL || dash_audit_prune_refused(p->d, r, "XRANGE") ||
	    r->type != REDIS_REPLY_ARRAY || r->elements == 0 ||
	    (e = r->element[0])->type != REDIS_REPLY_ARRAY || e->elements != 2 ||
	    e->element[0]->type != REDIS_REPLY_STRING) {
		/* no stream (or a wrong key): nothing is known to be gone */
		free(p);
		return;
	}
	p->oldest = strtoll(e->element[0]->str, NULL, 10) - DASH_PRUNE_SLACK_MS;
	if (rconn_command(p->d->wr, dash_audit_on_hkeys, p, 0, "HKEYS %s",
	    p->d->handling_key) == -1)
		free(p);
}

/* Handling of alerts older than the alert stream's oldest entry goes (issue 15, section 4). */
static void
dash_audit_prune(struct dash *d)
{
	struct dash_prune	*p;

	/* the alerts held say which old ones are in the stream still: not before */
	if (!rconn_up(d->wr) || !d->loaded || (p = calloc(1, sizeof(*p))) == NULL)
		return;
	p->d = d;
	if (rconn_command(d->wr, dash_audit_on_oldest, p, 0,
	    "XRANGE %s - + COUNT 1", d->key) == -1)
		free(p);
}

void
dash_audit_on_prune(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	dash_audit_prune(arg);
}

void
dash_audit_on_wr(void *arg, int up, int lost)
{
	struct dash	*d = arg;
	struct timeval	 tv = { DASH_PRUNE_MS / 1000, 0 };

	(void)lost;
	if (!up)
		return;
	dash_audit_prune(d);
	if (!evtimer_pending(d->ev_prune, NULL))
		event_add(d->ev_prune, &tv);
}

/*
 * The handling and the notes are read on the state poll's connection,
 * which a replica named by redis.url serves (the API's, d->wr, comes up
 * on a master only: read there, a replica's pages never saw a handling
 * nor a note), and which never blocks (the followers' XREAD BLOCK would
 * hold each read up to its timeout).
 */
void
dash_audit_on_read(struct dash *d)
{
	log_info("dash_audit_on_read: redis %s connected, reading %s",
	    rconn_name(d->state), d->handling_key);
	/* whatever was missed meanwhile: the whole hash again */
	(void)rconn_command(d->state, dash_audit_on_hgetall, d, 0, "HGETALL %s",
	    d->handling_key);
}

/* --- the audit stream -------------------------------------------------------- */

void
dash_audit_on_conn(void *arg, int up, int lost)
{
	struct dash	*d = arg;

	(void)lost;
	if (!up)
		return;
	log_info("dash_audit_on_conn: redis %s connected, following %s",
	    rconn_name(d->auditc), d->audit_key);
	if (!d->audit_following) {
		d->audit_following = 1;
		xfollow_follow(d->audit, NULL);	/* the hash says what came before */
	} else
		xfollow_resume(d->audit);
}

static void
dash_audit_on_hget(redisReply *r, void *priv)
{
	struct dash_audit_ctx	*x = priv;
	json_t			*v;

	if (r != NULL && r->type == REDIS_REPLY_STRING) {
		if ((v = json_loadb(r->str, r->len, 0, NULL)) == NULL)
			log_warnx("dash_audit_on_hget: the handling of %s is not JSON",
			    x->id);
		else if (dash_audit_set(x->d, x->id, v) == -1)
			log_warnx("dash_audit_on_hget: out of memory, a handling "
			    "change not pushed");
	}
	free(x);
}

static void
dash_audit_on_note(redisReply *r, void *priv)
{
	struct dash_audit_ctx	*x = priv;
	const char		*f[4] = { NULL, NULL, NULL, NULL };
	json_t			*note, *msg;
	size_t			 i;

	if (r != NULL && r->type == REDIS_REPLY_ARRAY && r->elements == 4) {
		for (i = 0; i < 4; i++)
			if (r->element[i]->type == REDIS_REPLY_STRING)
				f[i] = r->element[i]->str;
		if (f[0] != NULL && (note = note_view(f[0], r->element[0]->len,
		    f[1], f[2], f[3])) != NULL) {
			msg = json_pack("{s:s, s:o}", "type", "note", "note", note);
			if (dash_audit_push(x->d, msg) == -1)
				log_warnx("dash_audit_on_note: out of memory, a note "
				    "change not pushed");
		}
	}
	free(x);
}

/* The note's hash, read whole, pushed to the pages. */
static void
dash_audit_note(struct dash *d, const char *id)
{
	struct dash_audit_ctx	*x;

	if ((x = dash_audit_ctx(d, id)) == NULL)
		return;
	if (rconn_command(d->state, dash_audit_on_note, x, 0,
	    "HMGET %schatmon:note:%s json state delivered_at read_at", d->prefix,
	    id) == -1)
		free(x);
}

void
dash_audit_entry(void *arg, const char *sid, const redisReply *fields)
{
	struct dash		*d = arg;
	struct dash_audit_ctx	*x;
	const char		*what, *id;
	json_t			*e = NULL;
	size_t			 k;

	(void)sid;
	/*
	 * The first "e" only: a stream entry may repeat a field name (any
	 * Redis client can XADD one); ours write exactly one.
	 */
	for (k = 0; k + 1 < fields->elements; k += 2)
		if (fields->element[k]->type == REDIS_REPLY_STRING &&
		    strcmp(fields->element[k]->str, "e") == 0) {
			if (fields->element[k + 1]->type == REDIS_REPLY_STRING)
				e = json_loadb(fields->element[k + 1]->str,
				    fields->element[k + 1]->len, 0, NULL);
			break;
		}
	what = json_string_value(json_object_get(e, "what"));
	if (what == NULL) {
		json_decref(e);
		return;		/* not an entry of ours: Redis holds what anyone put there */
	}
	if (strcmp(what, "alert.state") == 0 &&
	    (id = json_string_value(json_object_get(e, "alert"))) != NULL) {
		if ((x = dash_audit_ctx(d, id)) != NULL &&
		    rconn_command(d->state, dash_audit_on_hget, x, 0, "HGET %s %s",
		    d->handling_key, id) == -1)
			free(x);
	} else if ((strcmp(what, "note.send") == 0 ||
	    strcmp(what, "note.state") == 0) &&
	    (id = json_string_value(json_object_get(e, "note"))) != NULL)
		dash_audit_note(d, id);
	json_decref(e);
}

void
dash_audit_clear(struct dash *d)
{
	size_t	i;

	for (i = 0; d->ev != NULL && i < DASH_EVENTS; i++)
		free(d->ev[i]);
	free(d->ev);
	d->ev = NULL;
	json_decref(d->handling);
	d->handling = NULL;
	free(d->audit_key);
	free(d->handling_key);
}
