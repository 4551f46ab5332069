/* httpc: HTTP(S) POSTs on the loop, libcurl's multi interface driven by libevent; certificates verified. */
#ifndef CHATMON_HTTPC_H
#define CHATMON_HTTPC_H

#include <stddef.h>
#include <stdint.h>

#include "chatmon/util.h"

struct event_base;
struct httpc;

/*
 * The end of one request. status is the HTTP status, 0 when none came
 * (err then says why: "timed out", "connection refused", a TLS error);
 * body is the answer's first 64 KiB; retry_after its Retry-After header as
 * written, or NULL. A final status (>= 200) that came is reported with
 * err NULL though the body did not all come: over 64 KiB (the rest is not
 * read) or still coming at the timeout. All valid during the call only.
 */
typedef void	(*httpc_cb)(void *arg, long status, const char *err,
		    const char *body, size_t len, const char *retry_after);

/*
 * ca (may be NULL) is a PEM file trusted besides the system store. NULL
 * with the reason in errs. Call curl_global_init once before (main does).
 */
struct httpc *httpc_new(struct event_base *, const char *ca, struct sbuf *errs);

/*
 * POSTs body (copied) to url with the headers ("Name: value", copied);
 * cb gets the end, always from the loop, never from inside this call.
 * Redirects are not followed; only http and https. 0, or -1 on ENOMEM or
 * a URL libcurl will not take.
 */
int	httpc_post(struct httpc *, const char *url, const char *const *headers,
	    size_t nheaders, const char *body, size_t len, uint64_t timeout_ms,
	    httpc_cb cb, void *arg);

/* Requests still running are dropped without their callbacks. NULL is fine. */
void	httpc_free(struct httpc *);

#endif
