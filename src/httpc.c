/* httpc: HTTP(S) POSTs on the loop, libcurl's multi interface driven by libevent; certificates verified. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>
#include <event2/event.h>

#include "chatmon/httpc.h"
#include "chatmon/log.h"

/*
 * libcurl rather than evhttp's client: it verifies a certificate's chain
 * and name, sends SNI, times a whole request and speaks HTTP/1.1 and 2 the
 * way servers expect, which evhttp with a bufferevent_openssl leaves to the
 * caller. Its multi_socket interface tells us which sockets to watch and
 * when to wake it; libevent does the watching, so nothing blocks the loop.
 */

#define HTTPC_BODY_MAX	65536

struct httpc_req {
	struct httpc		*h;
	CURL			*easy;
	struct curl_slist	*hdrs;
	struct sbuf		 body;		/* the answer, first HTTPC_BODY_MAX */
	int			 full;		/* ... and there was more: not read */
	char			*retry_after;
	httpc_cb		 cb;
	void			*arg;
	char			 err[CURL_ERROR_SIZE];
	struct httpc_req	*prev, *next;
};

/* One socket libcurl asked us to watch. */
struct httpc_sock {
	struct httpc	*h;
	struct event	*ev;
	curl_socket_t	 fd;
};

struct httpc {
	struct event_base	*base;
	CURLM			*multi;
	struct event		*timer;
	char			*ca;
	struct httpc_req	*reqs;
};

static void	httpc_check(struct httpc *);

static void
httpc_req_free(struct httpc_req *r)
{
	struct httpc	*h = r->h;

	if (r->prev != NULL)
		r->prev->next = r->next;
	else
		h->reqs = r->next;
	if (r->next != NULL)
		r->next->prev = r->prev;
	curl_multi_remove_handle(h->multi, r->easy);
	curl_easy_cleanup(r->easy);
	curl_slist_free_all(r->hdrs);
	sbuf_free(&r->body);
	free(r->retry_after);
	free(r);
}

static void
httpc_on_sock(evutil_socket_t fd, short what, void *arg)
{
	struct httpc	*h = arg;
	int		 running, act = 0;

	if (what & EV_READ)
		act |= CURL_CSELECT_IN;
	if (what & EV_WRITE)
		act |= CURL_CSELECT_OUT;
	curl_multi_socket_action(h->multi, fd, act, &running);
	httpc_check(h);
}

static void
httpc_on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct httpc	*h = arg;
	int		 running;

	(void)fd;
	(void)what;
	curl_multi_socket_action(h->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	httpc_check(h);
}

/* CURLMOPT_SOCKETFUNCTION: watch s for what libcurl wants, or stop. */
static int
httpc_sockfn(CURL *easy, curl_socket_t s, int what, void *userp, void *sockp)
{
	struct httpc		*h = userp;
	struct httpc_sock	*k = sockp;
	short			 ev = EV_PERSIST;

	(void)easy;
	if (what == CURL_POLL_REMOVE) {
		if (k != NULL) {
			if (k->ev != NULL)
				event_free(k->ev);
			free(k);
			curl_multi_assign(h->multi, s, NULL);
		}
		return 0;
	}
	if (what & CURL_POLL_IN)
		ev |= EV_READ;
	if (what & CURL_POLL_OUT)
		ev |= EV_WRITE;
	if (k == NULL) {
		if ((k = calloc(1, sizeof(*k))) == NULL)
			return -1;
		k->h = h;
		k->fd = s;
		curl_multi_assign(h->multi, s, k);
	}
	/* the same event, re-aimed: no allocation when the interest changes */
	if (k->ev == NULL)
		k->ev = event_new(h->base, s, ev, httpc_on_sock, h);
	else if (event_del(k->ev) == 0 &&
	    event_assign(k->ev, h->base, s, ev, httpc_on_sock, h) == -1) {
		event_free(k->ev);
		k->ev = NULL;
	}
	if (k->ev == NULL || event_add(k->ev, NULL) == -1) {
		log_warnx("httpc_sockfn: cannot watch a socket");
		return -1;
	}
	return 0;
}

/* CURLMOPT_TIMERFUNCTION: wake libcurl in ms (-1: no need). */
static int
httpc_timerfn(CURLM *multi, long ms, void *userp)
{
	struct httpc	*h = userp;
	struct timeval	 tv;

	(void)multi;
	if (ms < 0)
		return evtimer_del(h->timer);
	tv.tv_sec = ms / 1000;
	tv.tv_usec = (ms % 1000) * 1000;
	return evtimer_add(h->timer, &tv);
}

/* Reports every request libcurl finished. */
static void
httpc_check(struct httpc *h)
{
	struct httpc_req	*r;
	CURLMsg			*m;
	long			 status = 0;
	int			 left;
	const char		*err;

	while ((m = curl_multi_info_read(h->multi, &left)) != NULL) {
		if (m->msg != CURLMSG_DONE)
			continue;
		r = NULL;
		curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&r);
		if (r == NULL)
			continue;
		/*
		 * A final status that came is the answer, though its body did
		 * not all come: one cut at HTTPC_BODY_MAX (httpc_writefn), or
		 * one still coming at the timeout (a server that answers 200
		 * and then streams or stalls has taken the request; sending it
		 * again would repeat it). The caller judges the body it got.
		 */
		err = NULL;
		status = 0;
		curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &status);
		if (m->data.result == CURLE_OK ||
		    (m->data.result == CURLE_WRITE_ERROR && r->full) ||
		    (m->data.result == CURLE_OPERATION_TIMEDOUT && status >= 200))
			;
		else if (m->data.result == CURLE_OPERATION_TIMEDOUT)
			err = "timed out";
		else
			err = r->err[0] != '\0' ? r->err :
			    curl_easy_strerror(m->data.result);
		r->cb(r->arg, err != NULL ? 0 : status, err, sbuf_str(&r->body),
		    r->body.len, r->retry_after);
		httpc_req_free(r);
	}
}

static size_t
httpc_writefn(char *p, size_t size, size_t n, void *arg)
{
	struct httpc_req	*r = arg;
	size_t			 len = size * n, room;

	room = r->body.len < HTTPC_BODY_MAX ? HTTPC_BODY_MAX - r->body.len : 0;
	if (sbuf_append(&r->body, p, len < room ? len : room) == -1)
		return 0;	/* out of memory: libcurl ends the request */
	if (len > room) {
		r->full = 1;	/* the rest is not read: httpc_check says why */
		return 0;
	}
	return len;
}

/* Keeps Retry-After: a 429 or 503 says when to come back. */
static size_t
httpc_headerfn(char *p, size_t size, size_t n, void *arg)
{
	struct httpc_req	*r = arg;
	size_t			 len = size * n, k = strlen("Retry-After:");

	if (len > k && strncasecmp(p, "Retry-After:", k) == 0) {
		free(r->retry_after);
		r->retry_after = strndup(p + k, len - k);
	}
	return len;
}

int
httpc_post(struct httpc *h, const char *url, const char *const *headers,
    size_t nheaders, const char *body, size_t len, uint64_t timeout_ms,
    httpc_cb cb, void *arg)
{
	struct httpc_req	*r;
	struct curl_slist	*l;
	size_t			 i;
	CURLcode		 rc = CURLE_OK;

	if ((r = calloc(1, sizeof(*r))) == NULL)
		return -1;
	r->h = h;
	r->cb = cb;
	r->arg = arg;
	sbuf_init(&r->body);
	if ((r->easy = curl_easy_init()) == NULL) {
		free(r);
		return -1;
	}
	if ((r->next = h->reqs) != NULL)
		r->next->prev = r;
	h->reqs = r;
	/* the type first: a caller's header of the same name would come after */
	if ((r->hdrs = curl_slist_append(NULL,
	    "Content-Type: application/json; charset=utf-8")) == NULL)
		goto err;
	/* no "Expect: 100-continue" round trip before a body */
	if ((l = curl_slist_append(r->hdrs, "Expect:")) == NULL)
		goto err;
	r->hdrs = l;
	for (i = 0; i < nheaders; i++) {
		if ((l = curl_slist_append(r->hdrs, headers[i])) == NULL)
			goto err;
		r->hdrs = l;
	}
	rc |= curl_easy_setopt(r->easy, CURLOPT_URL, url);
	rc |= curl_easy_setopt(r->easy, CURLOPT_PROTOCOLS_STR, "http,https");
	rc |= curl_easy_setopt(r->easy, CURLOPT_HTTPHEADER, r->hdrs);
	rc |= curl_easy_setopt(r->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
	rc |= curl_easy_setopt(r->easy, CURLOPT_COPYPOSTFIELDS, body);
	rc |= curl_easy_setopt(r->easy, CURLOPT_TIMEOUT_MS, (long)timeout_ms);
	rc |= curl_easy_setopt(r->easy, CURLOPT_NOSIGNAL, 1L);
	rc |= curl_easy_setopt(r->easy, CURLOPT_USERAGENT, "chatmon-notify");
	rc |= curl_easy_setopt(r->easy, CURLOPT_WRITEFUNCTION, httpc_writefn);
	rc |= curl_easy_setopt(r->easy, CURLOPT_WRITEDATA, r);
	rc |= curl_easy_setopt(r->easy, CURLOPT_HEADERFUNCTION, httpc_headerfn);
	rc |= curl_easy_setopt(r->easy, CURLOPT_HEADERDATA, r);
	rc |= curl_easy_setopt(r->easy, CURLOPT_ERRORBUFFER, r->err);
	rc |= curl_easy_setopt(r->easy, CURLOPT_PRIVATE, r);
	/* the default, said out loud: a robot's URL carries a secret */
	rc |= curl_easy_setopt(r->easy, CURLOPT_SSL_VERIFYPEER, 1L);
	rc |= curl_easy_setopt(r->easy, CURLOPT_SSL_VERIFYHOST, 2L);
	/* CAINFO replaces the bundle file; CAPATH (/etc/ssl/certs) is still read */
	if (h->ca != NULL)
		rc |= curl_easy_setopt(r->easy, CURLOPT_CAINFO, h->ca);
	if (rc != CURLE_OK || curl_multi_add_handle(h->multi, r->easy) != CURLM_OK)
		goto err;
	return 0;
err:
	httpc_req_free(r);
	return -1;
}

struct httpc *
httpc_new(struct event_base *base, const char *ca, struct sbuf *errs)
{
	struct httpc	*h;

	if ((h = calloc(1, sizeof(*h))) == NULL)
		goto oom;
	h->base = base;
	if ((h->multi = curl_multi_init()) == NULL ||
	    (h->timer = evtimer_new(base, httpc_on_timer, h)) == NULL ||
	    (ca != NULL && (h->ca = strdup(ca)) == NULL))
		goto oom;
	curl_multi_setopt(h->multi, CURLMOPT_SOCKETFUNCTION, httpc_sockfn);
	curl_multi_setopt(h->multi, CURLMOPT_SOCKETDATA, h);
	curl_multi_setopt(h->multi, CURLMOPT_TIMERFUNCTION, httpc_timerfn);
	curl_multi_setopt(h->multi, CURLMOPT_TIMERDATA, h);
	return h;
oom:
	sbuf_line(errs, "httpc_new: out of memory");
	httpc_free(h);
	return NULL;
}

void
httpc_free(struct httpc *h)
{
	if (h == NULL)
		return;
	while (h->reqs != NULL)
		httpc_req_free(h->reqs);
	if (h->multi != NULL)
		curl_multi_cleanup(h->multi);
	if (h->timer != NULL)
		event_free(h->timer);
	free(h->ca);
	free(h);
}
