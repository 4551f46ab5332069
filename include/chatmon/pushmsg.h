/* pushmsg: what a notify route sends for one alert or a folded burst, and how its answer is judged (pure: no I/O, no clock). */
#ifndef CHATMON_PUSHMSG_H
#define CHATMON_PUSHMSG_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "chatmon/config.h"
#include "chatmon/util.h"

/*
 * Alerts are docs/alerts.md's objects as read from the stream: untrusted,
 * any field may be missing or of another type. They are never logged by
 * this module; what goes out goes to the route the operator configured.
 */

/* 1 when every match key the route gives has one of its values in the alert. */
int	pushmsg_match(const struct config_route *, json_t *alert);

struct pushmsg_opts {
	const char	*public_url;	/* dashboard.public_url, NULL: no link */
	int32_t		 utc_offset_min;	/* sla.timezone: times people read */
	int64_t		 now_ms;	/* the signatures' timestamps */
};

/* The most alerts a folded message lists in full (webhook) or line by line (text). */
#define PUSHMSG_FOLD_FULL	20
#define PUSHMSG_FOLD_LINES	10
/*
 * The bytes those lines may take: an agent's name is shown defused (a
 * '[' becomes a three-byte '［'), so ten lines of the longest names and
 * 50 ids went past WeCom's 4096 bytes (found by review).
 */
#define PUSHMSG_FOLD_LINES_BYTES	1600

/* One HTTP request, ready to go; pushmsg_req_free releases it. */
struct pushmsg_req {
	struct sbuf	 url;
	struct sbuf	 body;
	char		 sig[96];	/* "X-Chatmon-Signature: sha256=<hex>" or "" */
	struct sbuf	 id;		/* "X-Chatmon-Alert-Id: <id>" */
};

void	pushmsg_req_init(struct pushmsg_req *);
void	pushmsg_req_free(struct pushmsg_req *);

/*
 * The request for alerts[0..n) (n >= 1: one alert; more: a folded
 * summary) to route r. raw[i] is alerts[i] as the stream held it (a
 * webhook gets one alert byte for byte). 0, or -1 on ENOMEM.
 */
int	pushmsg_build(struct pushmsg_req *, const struct config_route *r,
	    const struct pushmsg_opts *, json_t *const *alerts,
	    const char *const *raw, size_t n);

/*
 * The daily summary (notify.daily_at) of report, `chatmon report`'s JSON
 * of one day: a robot gets pushmsg_daily_text, a webhook
 * {"v":1,"type":"report.daily","day","team","worst","id":"daily-DAY"}.
 * 0, or -1 on ENOMEM.
 */
int	pushmsg_build_daily(struct pushmsg_req *, const struct config_route *r,
	    const struct pushmsg_opts *, json_t *report);
int	pushmsg_daily_text(struct sbuf *, const struct pushmsg_opts *,
	    json_t *report);

/* The text people read: the template, or the default; ends with the ids line. */
int	pushmsg_text(struct sbuf *, const struct config_route *r,
	    const struct pushmsg_opts *, json_t *const *alerts, size_t n);

/*
 * Whether a target took the message: NULL when it did, else why not (no
 * chat in it): static text, or buf (bufsz bytes) for a robot's refusal,
 * which names its code and message (escaped, bounded: "sign not match"
 * says what to fix). *limited is set to 1 when the target said it was
 * being sent too much (429, or the robots' own codes in a 200).
 */
#define PUSHMSG_WHY_MAX	512
const char *pushmsg_judge(int target, long status, const char *body,
	    size_t len, int *limited, char *buf, size_t bufsz);

/*
 * Retry-After (RFC 9110: seconds, or an HTTP date) as milliseconds from
 * now_ms; -1 when absent or unreadable, at most an hour.
 */
int64_t	pushmsg_retry_after(const char *value, int64_t now_ms);

/*
 * How long a route sends nothing after its target said it was sent too
 * much (pushmsg_judge's *limited): Retry-After when it gives one, else
 * configured_ms (notify.limited_pause) when not 0, else the vendor's own
 * penalty: DingTalk throttles a robot 10 minutes once it has had more than
 * 20 messages in a minute, WeCom and Feishu count per minute; a 429
 * without Retry-After waits a minute.
 */
int64_t	pushmsg_limited_pause(int target, const char *retry_after, int64_t now_ms,
	    uint64_t configured_ms);

/* The wait before try attempt+1: base doubled per failure, at most 5 min, +-25 % by rnd. */
uint64_t pushmsg_backoff(uint64_t base_ms, unsigned attempt, uint32_t rnd);

/* base64 of HMAC-SHA256(key, msg), the robots' signatures; out >= 45 bytes. 0 or -1. */
int	pushmsg_hmac_b64(const char *key, size_t keylen, const char *msg,
	    size_t msglen, char *out, size_t outsz);

#endif
