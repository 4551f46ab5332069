/* dashboard: `chatmon dashboard`: the supervisors' page and its live feed, from what chatmond keeps in Redis (lws and hiredis on one libevent loop): start, stop and the wiring of the dash_* files (src/dash_int.h). */
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <libwebsockets.h>

#include "chatmon/cliconf.h"
#include "chatmon/config.h"
#include "chatmon/xfollow.h"
#include "chatmon/dashauth.h"
#include "chatmon/dashboard.h"
#include "chatmon/feed.h"
#include "chatmon/log.h"
#include "chatmon/logrepeat.h"
#include "chatmon/lwsctx.h"
#include "chatmon/rconn.h"
#include "chatmon/sla.h"
#include "dash_int.h"

/* not const: the /api/ entry's space is said at start (dash_start) */
struct lws_protocols dash_protocols[] = {
	/* first: a page offers no subprotocol and gets the first */
	{ DASH_PROTOCOL, dash_feed_cb, sizeof(struct dash_client), 4096, 0, NULL, 0 },
	{ DASHAUTH_PROTOCOL, dash_api_cb, 0, 4096, 0, NULL, 0 },
	{ NULL, NULL, 0, 0, 0, NULL, 0 }
};

/* --- start and stop ------------------------------------------------------------ */

static void
dash_on_signal(evutil_socket_t sig, short what, void *arg)
{
	struct dash	*d = arg;

	(void)what;
	log_info("dash_on_signal: signal %d, stopping", (int)sig);
	event_base_loopbreak(d->base);
}

static int
dash_usage(FILE *f)
{
	fprintf(f,
	    "usage: chatmon dashboard [-c FILE] [-o key.path=value]... "
	    "[--listen ADDR] [--redis URL]\n"
	    "\n"
	    "Serves the supervisors' page (dashboard.root) and its live feed on\n"
	    "dashboard.listen: the alerts of every chatmond instance, who is\n"
	    "waiting now and each agent's day, read from Redis (docs/dashboard.md).\n"
	    "--listen  HOST:PORT instead of dashboard.listen\n"
	    "--redis   redis://host[:port][/db] or unix:/path, instead of redis.url\n");
	return f == stdout ? 0 : 2;
}

/*
 * What the API and the handling need: the audit stream followed on a
 * connection of its own, the master for the API, the handling map.
 */
static int
dash_start_audit(struct dash *d)
{
	size_t	n = strlen(d->prefix) + 32;

	if ((d->audit_key = malloc(n)) == NULL ||
	    (d->handling_key = malloc(n)) == NULL ||
	    (d->handling = json_object()) == NULL ||
	    (d->ev = calloc(DASH_EVENTS, sizeof(*d->ev))) == NULL ||
	    (d->wr = rconn_new(d->base, "dashboard api", dash_audit_on_wr, d)) == NULL ||
	    (d->auditc = rconn_new(d->base, "dashboard audit", dash_audit_on_conn,
	    d)) == NULL ||
	    (d->ev_prune = event_new(d->base, -1, EV_PERSIST, dash_audit_on_prune,
	    d)) == NULL)
		return -1;
	snprintf(d->audit_key, n, "%schatmon:audit", d->prefix);
	snprintf(d->handling_key, n, "%schatmon:alerts:handling", d->prefix);
	if ((d->audit = xfollow_new(d->base, d->auditc, d->audit_key,
	    dash_audit_entry, NULL, d)) == NULL)
		return -1;
	return 0;
}

/* dashauth's Origin check of the login POSTs: the feed's and the API's own. */
static int
dash_origin_ok(void *arg, struct lws *wsi)
{
	return dash_feed_origin_ok(arg, wsi);
}

static int
dash_start(struct dash *d)
{
	struct sbuf		 errs;
	struct timeval		 tv;
	struct lwsctx_info	 li;
	struct sla_config	 scfg;
	const char		*pub;
	size_t			 n;
	int			 secure;

	d->prefix = d->cfg->redis.prefix != NULL ? d->cfg->redis.prefix : "";
	n = strlen(d->prefix) + strlen(d->cfg->redis.stream) + 1;
	d->poll_ms = d->cfg->redis.snapshot_ms ? d->cfg->redis.snapshot_ms : DASH_POLL_MS;
	if ((d->key = malloc(n)) == NULL ||
	    (d->feed = feed_new((size_t)d->cfg->dashboard.history,
	    (size_t)d->cfg->dashboard.history + DASH_SLACK)) == NULL ||
	    (d->base = event_base_new()) == NULL ||
	    (d->stream = rconn_new(d->base, "dashboard", dash_alerts_on_conn, d)) == NULL ||
	    (d->state = rconn_new(d->base, "dashboard state", dash_state_on_conn, d)) == NULL ||
	    (d->ev_poll = event_new(d->base, -1, EV_PERSIST, dash_state_on_poll, d)) == NULL ||
	    (d->ev_flush = evtimer_new(d->base, dash_alerts_on_flush, d)) == NULL ||
	    (d->ev_stream = evtimer_new(d->base, dash_alerts_on_retry, d)) == NULL ||
	    (d->ev_term = evsignal_new(d->base, SIGTERM, dash_on_signal, d)) == NULL ||
	    (d->ev_int = evsignal_new(d->base, SIGINT, dash_on_signal, d)) == NULL ||
	    (d->ev_auth = event_new(d->base, -1, EV_PERSIST, dash_feed_on_auth, d)) == NULL ||
	    evsignal_add(d->ev_term, NULL) == -1 || evsignal_add(d->ev_int, NULL) == -1) {
		log_errline("chatmon: dashboard: out of memory");
		return -1;
	}
	snprintf(d->key, n, "%s%s", d->prefix, d->cfg->redis.stream);
	if ((d->alerts = xfollow_new(d->base, d->stream, d->key,
	    dash_alerts_entry, dash_alerts_came, d)) == NULL ||
	    dash_start_audit(d) == -1) {
		log_errline("chatmon: dashboard: out of memory");
		return -1;
	}
	sla_config_from(&scfg, &d->cfg->sla);
	/* each shop's rounds judged and capped by its own settings, as chatmond's */
	if ((d->figs = sla_new(&scfg, NULL, NULL, NULL)) == NULL ||
	    sla_policies_from(d->cfg, &d->pol, &d->npol) == -1 ||
	    sla_set_policies(d->figs, d->pol, d->npol) == -1) {
		log_errline("chatmon: dashboard: out of memory");
		return -1;
	}
	dash_state_day(d, util_wall_ms());
	d->figs_day = d->day_start;
	d->status_v = 1;	/* a page's first status is always sent */

	dash_files_mount(d);
	memset(&d->api, 0, sizeof(d->api));
	d->api.mountpoint = "/api";
	d->api.mountpoint_len = 4;
	d->api.origin = DASHAUTH_PROTOCOL;
	d->api.protocol = DASHAUTH_PROTOCOL;
	d->api.origin_protocol = LWSMPRO_CALLBACK;
	d->api.mount_next = &d->mount;
	dash_protocols[1].per_session_data_size = dash_api_pss_size();
	sbuf_init(&errs);
	d->tls = d->cfg->dashboard.tls;
	if (d->tls && (d->tlsc = lwsctx_tls_load(&d->cfg->tls, &errs)) == NULL) {
		log_errtext("chatmon: dashboard: ", &errs);
		sbuf_free(&errs);
		return -1;
	}
	/*
	 * Behind a TLS reverse proxy (public_url https://) the browser's side
	 * is TLS though lws's is not: the session cookie is Secure there too,
	 * so that no plain-http request to that name ever carries it.
	 */
	pub = d->cfg->dashboard.public_url;
	secure = d->tls || (pub != NULL && strncmp(pub, "https://", 8) == 0);
	if ((d->auth = dashauth_new(d->cfg->dashboard.users, d->cfg->dashboard.token,
	    d->cfg->dashboard.session_ttl_ms, secure, &errs)) == NULL) {
		log_errlines(NULL, &errs);	/* FILE:LINE: each */
		sbuf_free(&errs);
		return -1;
	}
	sbuf_free(&errs);
	dashauth_set_origin_check(d->auth, dash_origin_ok, d);
	memset(&li, 0, sizeof(li));
	li.listen = &d->cfg->dashboard.listen;
	li.protocols = dash_protocols;
	li.mounts = &d->api;
	li.user = d;
	li.vhost = "dashboard";
	li.timeout_secs = 10;
	li.tls = d->tls;
	/* the table of refusals' lines only quiets them: none, and each is logged */
	d->refused_log = logrepeat_new(1, DASH_REFUSED_LOG_MS);
	if ((d->fd_floor = lwsctx_fd_floor(DASH_FD_SPARE)) < 64)
		log_warnx("dash_start: RLIMIT_NOFILE %d leaves room for few "
		    "pages (raise LimitNOFILE)", d->fd_floor + DASH_FD_SPARE);
	sbuf_init(&errs);
	if ((d->ctx = lwsctx_new(d->base, &li, &errs)) == NULL) {
		log_errtext("chatmon: dashboard: ", &errs);
		sbuf_free(&errs);
		return -1;
	}
	sbuf_free(&errs);
	/* the page's data only reads: a replica named by redis.url will do */
	if (rconn_set_target(d->stream, &d->cfg->redis, RCONN_ANY_ROLE) == -1 ||
	    rconn_set_target(d->state, &d->cfg->redis, RCONN_ANY_ROLE) == -1 ||
	    rconn_set_target(d->auditc, &d->cfg->redis, RCONN_ANY_ROLE) == -1 ||
	    /* the API writes, and reads what it wrote: the master only */
	    rconn_set_target(d->wr, &d->cfg->redis, 0) == -1) {
		log_errline("chatmon: dashboard: out of memory");
		return -1;
	}
	tv.tv_sec = (time_t)(d->poll_ms / 1000);
	tv.tv_usec = (suseconds_t)(d->poll_ms % 1000 * 1000);
	evtimer_add(d->ev_poll, &tv);
	tv.tv_sec = DASH_AUTH_MS / 1000;
	tv.tv_usec = 0;
	evtimer_add(d->ev_auth, &tv);
	if (dashauth_logins(d->auth))
		log_info("dash_start: logins from %s; sessions last %llu s, %llu s "
		    "idle at most", d->cfg->dashboard.users,
		    (unsigned long long)(d->cfg->dashboard.session_ttl_ms / 1000),
		    (unsigned long long)(d->cfg->dashboard.session_ttl_ms < 3600000 ?
		    d->cfg->dashboard.session_ttl_ms / 1000 : 3600));
	log_info("dash_start: http://%s:%d/ (page from %s), reading %s at redis %s",
	    d->cfg->dashboard.listen.host, d->cfg->dashboard.listen.port, d->root,
	    d->key, rconn_name(d->stream));
	return 0;
}

/* As chatmond's: lws first, outside its callbacks; then what it left on the loop. */
static void
dash_stop(struct dash *d)
{
	int	i;

	if (d->ctx != NULL) {
		lws_context_destroy(d->ctx);
		d->ctx = NULL;
		for (i = 0; i < 100 && event_base_loop(d->base, EVLOOP_NONBLOCK) == 0; i++)
			;
	}
	d->clients = NULL;
	/* the rconns first: their pending replies get NULL while the followers live */
	rconn_free(d->stream);
	rconn_free(d->state);
	rconn_free(d->wr);
	rconn_free(d->auditc);
	xfollow_free(d->alerts);
	xfollow_free(d->audit);
	if (d->ev_poll)
		event_free(d->ev_poll);
	if (d->ev_flush)
		event_free(d->ev_flush);
	if (d->ev_stream)
		event_free(d->ev_stream);
	if (d->ev_term)
		event_free(d->ev_term);
	if (d->ev_int)
		event_free(d->ev_int);
	if (d->ev_auth)
		event_free(d->ev_auth);
	if (d->ev_prune)
		event_free(d->ev_prune);
	if (d->base != NULL)
		event_base_free(d->base);
	libevent_global_shutdown();
	dash_state_clear(d);
	dash_audit_clear(d);
	feed_free(d->feed);
	free(d->key);
	sla_free(d->figs);
	free(d->pol);
	sbuf_free(&d->out);
	dashauth_free(d->auth);
	lwsctx_tls_free(d->tlsc);
	logrepeat_free(d->refused_log);
}

int
dashboard_main(int argc, char **argv, const char *default_config)
{
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "listen", required_argument, NULL, 'l' },
		{ "redis", required_argument, NULL, 'r' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	struct dash	 d;
	struct cliconf	 cc;
	const char	*listen = NULL, *redis = NULL;
	int		 ch, rc = 1;

	memset(&d, 0, sizeof(d));
	cliconf_init(&cc, default_config);
	optind = 1;
	while ((ch = getopt_long(argc, argv, "c:o:h", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c':
		case 'o':
			if (cliconf_opt(&cc, ch, optarg, "dashboard") == -1) {
				cliconf_free(&cc);
				return 1;
			}
			break;
		case 'l':
			listen = optarg;
			break;
		case 'r':
			redis = optarg;
			break;
		case 'h':
			cliconf_free(&cc);
			return dash_usage(stdout);
		default:
			cliconf_free(&cc);
			return dash_usage(stderr);
		}
	}
	if (optind != argc) {
		cliconf_free(&cc);
		return dash_usage(stderr);
	}
	d.cfg = cliconf_load(&cc);
	cliconf_free(&cc);
	if (d.cfg == NULL)
		return 1;
	if (listen != NULL && config_parse_addr(listen, &d.cfg->dashboard.listen) == -1) {
		fprintf(stderr, "chatmon: dashboard: --listen: want HOST:PORT, not '%s'\n",
		    listen);
		rc = 2;
		goto out;
	}
	if (redis != NULL && cliconf_redis(d.cfg, redis, "dashboard") == -1) {
		rc = 2;
		goto out;
	}
	log_set_level(d.cfg->log_level);
	log_set_json(d.cfg->log_json);
	if (dash_files_root(&d) == -1)
		goto out;
	signal(SIGPIPE, SIG_IGN);
	if (dash_start(&d) == -1)
		goto out;
	event_base_dispatch(d.base);
	rc = 0;
out:
	dash_stop(&d);
	config_free(d.cfg);
	return rc;
}
