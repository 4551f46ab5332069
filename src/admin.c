/* admin: /metrics, /healthz and /readyz over HTTP on the one loop (libevent's evhttp). */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "chatmon/admin.h"
#include "chatmon/log.h"

/*
 * Read-only: nothing here changes chatmond. It runs on the same loop as
 * the chats, so /healthz answering at all is the proof that the loop turns.
 * Loopback clients are always served; others need admin.token (a bearer
 * token) when one is set.
 */

struct admin {
	struct evhttp		*http;
	struct metrics		*metrics;
	struct relay		*relay;
	struct session_server	*srv;
	char			*token;
};

static int
admin_loopback(struct evhttp_request *req)
{
	struct evhttp_connection	*c = evhttp_request_get_connection(req);
	const struct sockaddr		*sa;
	const struct sockaddr_in6	*s6;

	if (c == NULL || (sa = evhttp_connection_get_addr(c)) == NULL)
		return 0;
	if (sa->sa_family == AF_INET)
		return (ntohl(((const struct sockaddr_in *)(const void *)sa)->
		    sin_addr.s_addr) >> 24) == 127;
	if (sa->sa_family == AF_INET6) {
		s6 = (const struct sockaddr_in6 *)(const void *)sa;
		return IN6_IS_ADDR_LOOPBACK(&s6->sin6_addr) ||
		    (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr) &&
		    s6->sin6_addr.s6_addr[12] == 127);
	}
	return sa->sa_family == AF_UNIX;
}

/* Constant time, so the comparison does not tell how much of a guess was right. */
static int
admin_token_ok(const char *want, const char *got)
{
	size_t		 i, n = strlen(want), m = strlen(got);
	unsigned char	 d = n != m;

	for (i = 0; i < n; i++)
		d |= (unsigned char)(want[i] ^ (i < m ? got[i] : 0));
	return d == 0;
}

static void
admin_reply(struct evhttp_request *req, int code, const char *reason,
    const char *type, const char *body, size_t len)
{
	struct evbuffer	*b = evbuffer_new();

	if (b == NULL) {
		evhttp_send_error(req, 500, NULL);
		return;
	}
	evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", type);
	evhttp_add_header(evhttp_request_get_output_headers(req), "Cache-Control",
	    "no-store");
	/* a HEAD reply carries no content (RFC 9110 9.3.2) */
	if (evhttp_request_get_command(req) != EVHTTP_REQ_HEAD)
		evbuffer_add(b, body, len);
	evhttp_send_reply(req, code, reason, b);
	evbuffer_free(b);
}

static void
admin_metrics(struct admin *a, struct evhttp_request *req)
{
	struct sbuf	out;
	int		rc;

	sbuf_init(&out);
	rc = metrics_format_prometheus(a->metrics, &out);
	if (rc == 0)
		rc = sbuf_printf(&out, "# HELP chatmon_reloads_total Configuration "
		    "reloads, by result\n# TYPE chatmon_reloads_total counter\n"
		    "chatmon_reloads_total{result=\"ok\"} %" PRIu64 "\n"
		    "chatmon_reloads_total{result=\"failed\"} %" PRIu64 "\n"
		    "# HELP chatmon_build_info The version running\n"
		    "# TYPE chatmon_build_info gauge\n"
		    "chatmon_build_info{version=\"%s\"} 1\n",
		    a->metrics->reloads_ok,
		    a->metrics->reload_failures, CHATMON_VERSION);
	if (rc == 0)
		rc = relay_metrics(a->relay, &out);
	if (rc == -1)
		evhttp_send_error(req, 500, "out of memory");
	else
		admin_reply(req, 200, "OK", "text/plain; version=0.0.4; charset=utf-8",
		    sbuf_str(&out), out.len);
	sbuf_free(&out);
}

/* connected: up and a master; spooling: away, alerts kept on disk; down. */
static const char *
admin_redis(const struct admin *a)
{
	return a->metrics->redis_connected ? "connected" :
	    relay_alerts_ready(a->relay) ? "spooling" : "down";
}

static void
admin_ready(struct admin *a, struct evhttp_request *req)
{
	static const char *const up[] = { "down", "ok", "unknown" };
	struct sbuf	 out;
	int		 listening, upstream, alerts, ready;
	size_t		 rules = relay_rules(a->relay);

	/* a draining server no longer listens: take it out of the pool */
	listening = a->srv != NULL && session_server_listening(a->srv);
	upstream = a->srv != NULL ? session_server_upstream(a->srv) : -1;
	alerts = relay_alerts_ready(a->relay);
	/* never tried is not down: an idle chatmond is ready */
	ready = listening && rules > 0 && upstream != 0 && alerts;
	sbuf_init(&out);
	if (sbuf_printf(&out, "{\"ready\":%s,\"listening\":%s,\"rules\":%zu,"
	    "\"upstream\":\"%s\",\"redis\":\"%s\"}\n", ready ? "true" : "false",
	    listening ? "true" : "false", rules, up[upstream == -1 ? 2 : upstream],
	    admin_redis(a)) == -1)
		evhttp_send_error(req, 500, "out of memory");
	else
		admin_reply(req, ready ? 200 : 503, ready ? "OK" : "Service Unavailable",
		    "application/json", sbuf_str(&out), out.len);
	sbuf_free(&out);
}

static void
admin_request(struct evhttp_request *req, void *arg)
{
	struct admin	*a = arg;
	const char	*path = evhttp_uri_get_path(evhttp_request_get_evhttp_uri(req));
	const char	*auth;
	char		 body[256];
	int		 n;

	if (a->token != NULL && !admin_loopback(req)) {
		auth = evhttp_find_header(evhttp_request_get_input_headers(req),
		    "Authorization");
		if (auth == NULL || strncasecmp(auth, "Bearer ", 7) != 0 ||
		    !admin_token_ok(a->token, auth + 7)) {
			evhttp_add_header(evhttp_request_get_output_headers(req),
			    "WWW-Authenticate", "Bearer");
			admin_reply(req, 401, "Unauthorized", "application/json",
			    "{\"error\":\"unauthorized\"}\n", 25);
			return;
		}
	}
	if (evhttp_request_get_command(req) != EVHTTP_REQ_GET) {
		evhttp_add_header(evhttp_request_get_output_headers(req), "Allow",
		    "GET");
		admin_reply(req, 405, "Method Not Allowed", "application/json",
		    "{\"error\":\"method not allowed\"}\n", 31);
		return;
	}
	if (path != NULL && strcmp(path, "/metrics") == 0)
		admin_metrics(a, req);
	else if (path != NULL && strcmp(path, "/healthz") == 0) {
		/* alive is 200 whatever Redis does (chat fails open); it says how Redis is */
		n = snprintf(body, sizeof(body), "{\"status\":\"ok\",\"version\":"
		    "\"%s\",\"redis\":\"%s\"}\n", CHATMON_VERSION,
		    admin_redis(a));
		admin_reply(req, 200, "OK", "application/json", body, (size_t)n);
	} else if (path != NULL && strcmp(path, "/readyz") == 0)
		admin_ready(a, req);
	else
		admin_reply(req, 404, "Not Found", "application/json",
		    "{\"error\":\"not found\"}\n", 22);
}

struct admin *
admin_new(struct event_base *base, const struct config *cfg, struct metrics *m,
    struct relay *relay, struct sbuf *errs)
{
	struct admin	*a;

	if ((a = calloc(1, sizeof(*a))) == NULL || (a->http = evhttp_new(base)) == NULL)
		goto oom;
	a->metrics = m;
	a->relay = relay;
	admin_set_config(a, cfg);
	/*
	 * Every method reaches the handler, which serves GET and answers 405
	 * to the rest (evhttp itself would say 501 to some); small requests
	 * only: nothing here needs more.
	 */
	evhttp_set_allowed_methods(a->http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD |
	    EVHTTP_REQ_POST | EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
	    EVHTTP_REQ_OPTIONS | EVHTTP_REQ_TRACE | EVHTTP_REQ_CONNECT |
	    EVHTTP_REQ_PATCH);
	evhttp_set_max_headers_size(a->http, 8192);
	evhttp_set_max_body_size(a->http, 4096);
	evhttp_set_timeout(a->http, 10);
	evhttp_set_gencb(a->http, admin_request, a);
	/* why, when bind(2) or socket(2) said it (a name that does not resolve does not) */
	errno = 0;
	if (evhttp_bind_socket(a->http, cfg->admin.host, (ev_uint16_t)cfg->admin.port)
	    == -1) {
		sbuf_line(errs, "admin_new: cannot listen on %s:%d (admin.listen)%s%s",
		    cfg->admin.host, cfg->admin.port, errno != 0 ? ": " : "",
		    errno != 0 ? strerror(errno) : "");
		admin_free(a);
		return NULL;
	}
	return a;
oom:
	sbuf_line(errs, "admin_new: out of memory");
	admin_free(a);
	return NULL;
}

void
admin_set_server(struct admin *a, struct session_server *srv)
{
	a->srv = srv;
}

void
admin_set_config(struct admin *a, const struct config *cfg)
{
	free(a->token);
	a->token = cfg->admin_token != NULL ? strdup(cfg->admin_token) : NULL;
}

void
admin_free(struct admin *a)
{
	if (a == NULL)
		return;
	if (a->http != NULL)
		evhttp_free(a->http);
	free(a->token);
	free(a);
}
