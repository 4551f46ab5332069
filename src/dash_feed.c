/* dash_feed: the pages' live feed (/feed): who may open it, hello, status, alerts, waiting and agents messages, one write at a time. */
#include <stdio.h>
#include <string.h>

#include <jansson.h>
#include <libwebsockets.h>

#include "chatmon/access.h"
#include "chatmon/feed.h"
#include "chatmon/jsonw.h"
#include "chatmon/log.h"
#include "chatmon/logrepeat.h"
#include "chatmon/lwsctx.h"
#include "dash_int.h"

void
dash_feed_notify(struct dash *d)
{
	if (d->ctx != NULL && d->clients != NULL)
		lws_callback_on_writable_all_protocol(d->ctx, &dash_protocols[0]);
}

/*
 * The configured shops the page's login sees, for its shop and queue
 * filters: [{"id","name"?,"queues":[ids]}]; NULL on ENOMEM.
 */
static json_t *
dash_hello_shops(struct dash *d, const char *scope)
{
	const struct config_shop	*sh;
	json_t				*list, *o, *qs;
	size_t				 i, k;

	if ((list = json_array()) == NULL)
		return NULL;
	for (i = 0; i < d->cfg->nshops; i++) {
		sh = &d->cfg->shops[i];
		if (!users_scope_has(scope, sh->id))
			continue;
		if ((o = json_pack("{s:s, s:[]}", "id", sh->id, "queues")) == NULL ||
		    (sh->name != NULL && json_object_set_new(o, "name",
		    json_string(sh->name)) == -1) ||
		    json_array_append_new(list, o) == -1)
			goto err;
		qs = json_object_get(o, "queues");
		for (k = 0; k < sh->nqueues; k++)
			if (json_array_append_new(qs, json_string(sh->queues[k].id)) == -1)
				goto err;
	}
	return list;
err:
	json_decref(list);
	return NULL;
}

static int
dash_hello(struct dash *d, const char *scope, struct sbuf *out)
{
	const struct config_sla	*s = &d->cfg->sla;
	json_t			*shops;

	if ((shops = dash_hello_shops(d, scope)) == NULL)
		return -1;
	return jsonw_dump(out, json_pack("{s:s, s:i, s:I, s:s, s:i, "
	    "s:{s:I, s:I, s:f, s:I, s:I, s:I}, s:I, s:o}",
	    "type", "hello", "v", 1, "now", (json_int_t)util_wall_ms(),
	    "day", d->day, "tz_offset_min", (int)s->utc_offset_min,
	    "sla",
	    "first_response_ms", (json_int_t)s->first_response_ms,
	    "reply_ms", (json_int_t)s->reply_ms,
	    "warn_at", s->warn_at,
	    "escalate_ms", (json_int_t)s->escalate_ms,
	    "rate_ms", (json_int_t)s->rate_ms,
	    "cap_ms", (json_int_t)s->cap_ms,
	    "history", (json_int_t)d->cfg->dashboard.history,
	    "shops", shops));
}

/*
 * Alerts for the page: its first batch (the history) as soon as it is in,
 * new ones once it has been told that Redis is up. The dashboard's
 * connections come up one by one: an alert read live on the first must
 * not reach a page before the status that says the data is live again
 * (the page would show it as stale). The history may: it is the past,
 * and can be in a moment before the status.
 */
static int
dash_feed_alerts_due(const struct dash_client *c)
{
	const struct dash	*d = c->d;

	/*
	 * Not before the history is in: a page would get the day's first
	 * alerts as they are read (more than dashboard.history), and one
	 * coming back (since=) would not find its place
	 */
	return d->loaded && feed_pending(d->feed, c->pos) &&
	    (c->pos == FEED_NEW || (d->redis_up && c->status_v == d->status_v));
}

void
dash_feed_loaded(struct dash *d)
{
	struct dash_client	*c;

	for (c = d->clients; c != NULL; c = c->next) {
		if (c->unplaced) {
			c->pos = feed_position(d->feed, c->since);
			c->unplaced = 0;
		}
		lws_callback_on_writable(c->wsi);
	}
}

const struct feed_item *
dash_feed_find(struct dash *d, const char *want)
{
	const struct feed_item	*it;
	size_t			 i;

	for (i = feed_size(d->feed); i > 0; i--)
		if ((it = feed_item(d->feed, i - 1)) != NULL &&
		    strcmp(it->id, want) == 0)
			return it;
	return NULL;
}

/* The handling reset: every alert the feed holds that has a value (and the page's login may see). */
static int
dash_feed_handling_reset(struct dash *d, const char *scope, struct sbuf *out)
{
	const struct feed_item	*it;
	json_t			*all, *v;
	size_t			 i;

	if ((all = json_object()) == NULL)
		return -1;
	for (i = 0; (it = feed_item(d->feed, i)) != NULL; i++)
		if (users_scope_has(scope, it->shop) &&
		    (v = json_object_get(d->handling, it->id)) != NULL &&
		    json_object_set(all, it->id, v) == -1) {
			json_decref(all);
			return -1;
		}
	return jsonw_dump(out, json_pack("{s:s, s:b, s:o}", "type", "handling",
	    "reset", 1, "alerts", all));
}

/* The next handling or note message for the page (NULL: none); a page too far behind gets a reset. */
static const char *
dash_feed_event(struct dash *d, struct dash_client *c)
{
	if (d->evnext - c->evpos > DASH_EVENTS) {
		/* too far behind: the handling starts over; the notes it missed, it asks for */
		c->handling_v = 0;
		c->evpos = d->evnext - DASH_EVENTS;
	}
	if (c->evpos >= d->evnext)
		return NULL;
	return d->ev[c->evpos++ % DASH_EVENTS];
}

/* What a page has still to be sent, in order: 0 nothing. */
static int
dash_due(struct dash_client *c)
{
	const struct dash	*d = c->d;

	return !c->hello || c->status_v != d->status_v ||
	    c->handling_v != d->handling_v || c->evpos != d->evnext ||
	    dash_feed_alerts_due(c) ||
	    (c->waiting_v != d->waiting_v && d->waiting.len > 0) ||
	    (c->agents_v != d->agents_v && d->agents.len > 0);
}

/* One message to the page (lws: one write per WRITEABLE); -1 closes it. */
static int
dash_send(struct dash_client *c)
{
	static const char	 pad[LWS_PRE];
	struct dash		*d = c->d;
	struct sbuf		*o = &d->out;
	const char		*ev, *scope;
	int			 rc;

	if (c->ended) {
		lws_close_reason(c->wsi, LWS_CLOSE_STATUS_POLICY_VIOLATION,
		    (unsigned char *)"logged out", 10);
		return -1;
	}
	sbuf_reset(o);
	if (sbuf_append(o, pad, LWS_PRE) == -1)
		return -1;
	/* looked up each time: the users file may have changed the login's shops */
	scope = dashauth_sid_scope(d->auth, c->sid);
	if (!c->hello) {
		rc = dash_hello(d, scope, o);
		c->hello = 1;
	} else if (c->status_v != d->status_v) {
		rc = sbuf_printf(o, "{\"type\":\"status\",\"redis\":%s}",
		    d->redis_up ? "true" : "false");
		c->status_v = d->status_v;
	} else if (c->handling_v != d->handling_v) {
		/* after hello, and again when the hash was read whole */
		rc = dash_feed_handling_reset(d, scope, o);
		c->handling_v = d->handling_v;
	} else if (dash_feed_alerts_due(c)) {
		if ((rc = feed_alerts_msg(d->feed, &c->pos, scope, o)) == 0) {
			/* other shops' alerts only: on to what comes next */
			if (dash_due(c))
				lws_callback_on_writable(c->wsi);
			return 0;
		}
	} else if (c->evpos != d->evnext) {
		if ((ev = dash_feed_event(d, c)) == NULL)
			return 0;
		if ((rc = dash_scope_event(d, scope, ev, o)) == 0) {
			/* not the page's: on to what comes next */
			if (dash_due(c))
				lws_callback_on_writable(c->wsi);
			return 0;
		}
	}
	else if (c->waiting_v != d->waiting_v && d->waiting.len > 0) {
		rc = scope == NULL ? sbuf_append(o, d->waiting.s, d->waiting.len) :
		    feed_scope_msg(d->waiting_all.s, d->waiting_all.len, scope, o);
		c->waiting_v = d->waiting_v;
	} else if (c->agents_v != d->agents_v && d->agents.len > 0) {
		rc = scope == NULL ? sbuf_append(o, d->agents.s, d->agents.len) :
		    feed_scope_msg(d->agents.s, d->agents.len, scope, o);
		c->agents_v = d->agents_v;
	} else
		return 0;
	if (rc == -1) {
		log_warnx("dash_send: out of memory, closing a page's feed");
		return -1;
	}
	if (lws_write(c->wsi, (unsigned char *)o->s + LWS_PRE, o->len - LWS_PRE,
	    LWS_WRITE_TEXT) < 0)
		return -1;
	if (dash_due(c))
		lws_callback_on_writable(c->wsi);
	return 0;
}

/*
 * A browser sends Origin with every WebSocket upgrade: a page of another
 * site open in a supervisor's browser could otherwise read every alert,
 * chat text included (cross-site WebSocket hijacking). The page's own
 * origin (the Host it was loaded from, which dash_files_host_ok checked
 * names the dashboard: DNS rebinding), the origin of dashboard.public_url
 * and dashboard.allowed_origins pass; a request without Origin is not
 * from a browser's page, and passes.
 */
int
dash_feed_origin_ok(struct dash *d, struct lws *wsi)
{
	const char	*pub = d->cfg->dashboard.public_url;
	char		 origin[256], host[256], own[300], puborig[300];
	int		 n;

	if ((n = lws_hdr_total_length(wsi, WSI_TOKEN_ORIGIN)) <= 0)
		return 1;
	if ((size_t)n >= sizeof(origin) ||
	    lws_hdr_copy(wsi, origin, sizeof(origin), WSI_TOKEN_ORIGIN) < 0)
		return 0;
	own[0] = '\0';
	if (lws_hdr_copy(wsi, host, sizeof(host), WSI_TOKEN_HOST) > 0)
		snprintf(own, sizeof(own), "%s://%s", lws_is_ssl(wsi) ?
		    "https" : "http", host);
	/* the agents' side checks with the same function (session.c) */
	if (access_origin_ok(&d->cfg->dashboard.allowed_origins, origin, own))
		return 1;
	/*
	 * Behind a TLS reverse proxy the page is https://NAME while lws
	 * speaks plain http, and the proxy passes Host or rewrites it to
	 * the listener's address: the origin made of Host is never the
	 * page's. dashboard.public_url is where people open the page, so
	 * its origin is the page's own as well.
	 */
	return pub != NULL &&
	    access_url_origin(pub, puborig, sizeof(puborig)) == 0 &&
	    access_origin_ok(&d->cfg->dashboard.allowed_origins, origin, puborig);
}

/* Only /feed upgrades; with logins only with a session, with dashboard.token with the token. */
static int
dash_confirm_upgrade(struct dash *d, struct lws *wsi)
{
	char		 uri[64], sid[DASHAUTH_SID_MAX];
	int		 st;

	if (!dash_files_host_ok(d, wsi))
		return 1;
	if (lws_hdr_copy(wsi, uri, sizeof(uri), WSI_TOKEN_GET_URI) <= 0 ||
	    strcmp(uri, "/feed") != 0) {
		lws_return_http_status(wsi, HTTP_STATUS_NOT_FOUND, NULL);
		return 1;
	}
	if (!dash_args_fit(wsi)) {
		/* since= or token= after it would be read as absent */
		log_info("dash_confirm_upgrade: a feed with a query argument "
		    "too long refused");
		lws_return_http_status(wsi, HTTP_STATUS_BAD_REQUEST, NULL);
		return 1;
	}
	if (!dash_feed_origin_ok(d, wsi)) {
		log_warnx("dash_confirm_upgrade: a feed from a foreign origin "
		    "refused (dashboard.allowed_origins)");
		lws_return_http_status(wsi, HTTP_STATUS_FORBIDDEN, NULL);
		return 1;
	}
	if ((st = dashauth_feed(d->auth, wsi, sid)) != 0) {
		log_info("dash_confirm_upgrade: a feed without %s refused",
		    dashauth_logins(d->auth) ? "a login (or the right token)" :
		    "the right token");
		lws_return_http_status(wsi, (unsigned)st, NULL);
		return 1;
	}
	return 0;
}


/*
 * An accepted connection into the spare descriptors: 503 and closed at
 * once (lws closes it when this returns 1), so that accept() never fails
 * and spins. Logged once per DASH_REFUSED_LOG_MS with the count since: a
 * flood of connections must not become a flood of lines.
 */
static int
dash_fd_check(struct dash *d, int fd)
{
	static const char	line[] = "dash_fd_check: no file descriptors left: "
	    "connection refused (503)";
	uint64_t		held = 0;

	if (!lwsctx_fd_refuse(fd, d->fd_floor))
		return 0;
	if (d->refused_log != NULL && !logrepeat_check(d->refused_log, line,
	    sizeof(line) - 1, util_mono_ns() / 1000000, &held))
		return 1;
	if (held > 0)
		log_warnx("%s (RLIMIT_NOFILE %d, %d kept spare; and %llu more "
		    "since it was last logged)", line, d->fd_floor + DASH_FD_SPARE,
		    DASH_FD_SPARE, (unsigned long long)held);
	else
		log_warnx("%s (RLIMIT_NOFILE %d, %d kept spare)", line,
		    d->fd_floor + DASH_FD_SPARE, DASH_FD_SPARE);
	return 1;
}

int
dash_feed_cb(struct lws *wsi, enum lws_callback_reasons reason, void *user,
    void *in, size_t len)
{
	struct dash		*d = lws_context_user(lws_get_context(wsi));
	struct dash_client	*c = user;
	char			 buf[FEED_SID_MAX + 16];
	const char		*since;

	switch (reason) {
	case LWS_CALLBACK_OPENSSL_LOAD_EXTRA_SERVER_VERIFY_CERTS:
		/* dashboard.tls: the listener's SSL_CTX, empty until now */
		return d->tlsc == NULL || lwsctx_tls_use(d->tlsc, user) == -1;
	case LWS_CALLBACK_FILTER_NETWORK_CONNECTION:
		/* every connection, before anything is read: in is its fd */
		return dash_fd_check(d, (int)(lws_intptr_t)in);
	case LWS_CALLBACK_HTTP_CONFIRM_UPGRADE:
		return dash_confirm_upgrade(d, wsi);
	case LWS_CALLBACK_FILTER_HTTP_CONNECTION:
		/* every other request, before its mount: the files and /api/ */
		return !dash_files_host_ok(d, wsi);
	case LWS_CALLBACK_ADD_HEADERS:
		return dash_files_headers(wsi, in);
	case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
		memset(c, 0, sizeof(*c));
		c->d = d;
		since = lws_get_urlarg_by_name(wsi, "since=", buf, sizeof(buf));
		c->pos = feed_position(d->feed, since);
		if (!d->loaded && since != NULL && since[0] != '\0' &&
		    strlen(since) < sizeof(c->since)) {
			memcpy(c->since, since, strlen(since) + 1);
			c->unplaced = 1;
		}
		/* which session it rides on, to close it when that ends */
		return dashauth_feed(d->auth, wsi, c->sid) != 0;
	case LWS_CALLBACK_ESTABLISHED:
		c->wsi = wsi;
		c->evpos = d->evnext;	/* what came before is in the handling reset */
		c->next = d->clients;
		if (d->clients != NULL)
			d->clients->prev = c;
		d->clients = c;
		log_debug("dash_feed_cb: a page connected");
		lws_callback_on_writable(wsi);
		return 0;
	case LWS_CALLBACK_SERVER_WRITEABLE:
		return dash_send(c);
	case LWS_CALLBACK_RECEIVE:
		return 0;		/* the page has nothing to say */
	case LWS_CALLBACK_CLOSED:
		if (c->wsi == NULL)
			return 0;
		if (c->prev != NULL)
			c->prev->next = c->next;
		else
			d->clients = c->next;
		if (c->next != NULL)
			c->next->prev = c->prev;
		c->wsi = NULL;
		log_debug("dash_feed_cb: a page left");
		return 0;
	default:
		return lws_callback_http_dummy(wsi, reason, user, in, len);
	}
}

/* Sessions swept; the feeds whose login ended (logout, expiry, user gone) closed. */
void
dash_feed_on_auth(evutil_socket_t fd, short what, void *arg)
{
	struct dash		*d = arg;
	struct dash_client	*c;

	(void)fd;
	(void)what;
	dashauth_tick(d->auth);
	for (c = d->clients; c != NULL; c = c->next)
		if (!c->ended && !dashauth_feed_live(d->auth, c->sid)) {
			log_info("dash_feed_on_auth: a page's login ended: closing its feed");
			c->ended = 1;
			lws_callback_on_writable(c->wsi);
		}
}
