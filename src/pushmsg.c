/* pushmsg: what a notify route sends for one alert or a folded burst, and how its answer is judged (pure: no I/O, no clock). */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "chatmon/alertline.h"
#include "chatmon/pushmsg.h"

/* ------------------------------------------------------------ matching */

static const char *
pm_str(json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

static int
pm_in(const struct config_list *l, const char *v)
{
	size_t	i;

	for (i = 0; v != NULL && i < l->n; i++)
		if (strcmp(l->v[i], v) == 0)
			return 1;
	return 0;
}

int
pushmsg_match(const struct config_route *r, json_t *alert)
{
	const struct config_list	*l;
	json_t				*hits, *h;
	size_t				 m, i;
	int				 hit;

	for (m = 0; m < CONFIG_MATCH_N; m++) {
		l = &r->match[m];
		if (l->n == 0)
			continue;
		hit = pm_in(l, pm_str(alert, config_match_names[m]));
		/* a v2 rule.hit breaks every category of its hits, not only the first */
		hits = m == CONFIG_MATCH_CATEGORY ? json_object_get(alert, "hits") : NULL;
		json_array_foreach(hits, i, h)
			hit = hit || pm_in(l, pm_str(h, "category"));
		if (!hit)
			return 0;
	}
	return 1;
}

/* ------------------------------------------------------------ the text */

static const char *
pm_severity_zh(const char *s)
{
	switch (alertline_rank(s)) {
	case 0:
		return "提示";
	case 1:
		return "警告";
	case 2:
		return "严重";
	}
	return s != NULL ? s : "-";
}

static const char *
pm_action_zh(const char *a)
{
	if (a == NULL)
		return "";
	if (strcmp(a, "block") == 0)
		return "已拦截,未发送";
	if (strcmp(a, "warn") == 0)
		return "已提醒客服";
	if (strcmp(a, "flag") == 0)
		return "仅标记";
	return a;
}

/* What happened, in a few words: the category's name, or the SLA event's. */
static const char *
pm_what(json_t *alert)
{
	const char	*type = pm_str(alert, "type"), *cat, *zh;

	if (type == NULL)
		return "告警";
	if (strcmp(type, "sla.warn") == 0)
		return "即将超时";
	if (strcmp(type, "sla.breach") == 0)
		return "回复超时";
	if (strcmp(type, "sla.escalate") == 0)
		return "严重超时(升级)";
	if (strcmp(type, "rule.hit") != 0)
		return type;
	cat = pm_str(alert, "category");
	return (zh = alertline_category(cat)) != NULL ? zh :
	    cat != NULL ? cat : "违规";
}

/* The alert's local time of day, "10:00:05"; "" when it has none. */
static void
pm_clock(char out[16], json_t *alert, int32_t off_min)
{
	int64_t		 ms = util_ts_ms(pm_str(alert, "ts"));
	time_t		 t;
	struct tm	 tm;

	out[0] = '\0';
	if (ms < 0)
		return;
	t = (time_t)(ms / 1000 + (int64_t)off_min * 60);
	if (gmtime_r(&t, &tm) != NULL)
		snprintf(out, 16, "%02d:%02d:%02d", tm.tm_hour, tm.tm_min,
		    tm.tm_sec);
}

/* A wait as people say it: 45秒, 3分20秒, 1小时5分; "" for none (w not a count of ms). */
static void
pm_wait(char out[32], json_t *w)
{
	long long	 s;

	out[0] = '\0';
	if (!json_is_integer(w) || json_integer_value(w) < 0)
		return;
	s = (json_integer_value(w) + 999) / 1000;
	if (s < 60)
		snprintf(out, 32, "%lld秒", s);
	else if (s < 3600)
		snprintf(out, 32, s % 60 ? "%lld分%lld秒" : "%lld分", s / 60, s % 60);
	else
		snprintf(out, 32, "%lld小时%lld分", s / 3600, s % 3600 / 60);
}

/* The longest conversation id or agent a message shows whole, in bytes. */
#define PM_SHOWN_MAX	96

/*
 * The length of the character at p (left bytes there) when it is one a
 * message must not pass (else 0): C0 (U+0000 too: a value is its JSON
 * string's bytes, not a C string) and C1 controls, DEL, the line and
 * paragraph separators U+2028 and U+2029 (a line break to some
 * renderers), and the bidi controls (U+061C, U+200E, U+200F,
 * U+202A-U+202E, U+2066-U+2069), which reorder what the supervisors
 * read: a conversation id holding U+202E shows the rest of the line
 * backwards. The dashboard's visible() set, and the two separators.
 */
static size_t
pm_control(const unsigned char *p, size_t left)
{
	if (*p < 0x20 || *p == 0x7f)
		return 1;
	if (left >= 2 && p[0] == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f)
		return 2;
	if (left >= 2 && p[0] == 0xd8 && p[1] == 0x9c)
		return 2;
	if (left >= 3 && p[0] == 0xe2 && p[1] == 0x80 && (p[2] == 0x8e ||
	    p[2] == 0x8f || (p[2] >= 0xa8 && p[2] <= 0xae)))
		return 3;
	if (left >= 3 && p[0] == 0xe2 && p[1] == 0x81 && p[2] >= 0xa6 &&
	    p[2] <= 0xa9)
		return 3;
	return 0;
}

/*
 * Appends s, a value the chat side chose (a conversation id, an agent), as
 * a message shows it: DingTalk and WeCom read the text as markdown, so a
 * conversation named "c1\n\n### [请立即复核](https://…)" would put a
 * heading and a link of its own into the supervisors' group. Control
 * characters (pm_control: bidi controls too) become U+FFFD, the characters
 * of links, images and HTML ([ ] ( ) < > `) their full-width forms, a
 * scheme's "://" becomes "∶//" (U+2236 RATIO: "https://phish.example/复核"
 * was a link Slack and the robots' markdown made of a bare URL), a dot
 * before a letter "․" (U+2024 ONE DOT LEADER: Slack links a bare domain,
 * "phish.example.com", too), and a
 * value longer than PM_SHOWN_MAX bytes ends in "…" (the link, if any,
 * still has it whole). s is len bytes, U+0000 among them (a JSON string):
 * cut at a NUL, "c-1\u0000-evil" showed as the conversation c-1.
 */
static int
pm_shown(struct sbuf *out, const char *s, size_t len)
{
	static const char *const wide[] = { "［", "］", "（", "）", "＜", "＞", "｀" };
	static const char narrow[] = "[]()<>`";
	const unsigned char	*p = (const unsigned char *)s;
	const char		*w;
	size_t			 n = 0, c;
	int			 rc = 0;

	while (n < len && rc == 0) {
		if (n >= PM_SHOWN_MAX && (*p & 0xc0) != 0x80)
			return sbuf_printf(out, "…");
		c = 1;
		if (pm_control(p, len - n) > 0) {
			c = pm_control(p, len - n);
			rc = sbuf_printf(out, "\xef\xbf\xbd");
		} else if (*p != '\0' && (w = strchr(narrow, *p)) != NULL)
			rc = sbuf_printf(out, "%s", wide[w - narrow]);
		else if (*p == ':' && len - n >= 3 && p[1] == '/' && p[2] == '/')
			rc = sbuf_printf(out, "∶");
		else if (*p == '.' && len - n >= 2 && isalpha(p[1]))
			rc = sbuf_printf(out, "․");
		else
			rc = sbuf_append(out, (const char *)p, 1);
		p += c;
		n += c;
	}
	return rc;
}

/* o's key as pm_shown shows it, whole (U+0000 too); "-" when it has none. */
static int
pm_shown_key(struct sbuf *out, json_t *o, const char *key)
{
	json_t	*v = json_object_get(o, key);

	if (!json_is_string(v))
		return sbuf_printf(out, "-");
	return pm_shown(out, json_string_value(v), json_string_length(v));
}

/* RFC 3986 unreserved characters of s's len bytes pass, the rest (U+0000 too) is %XX. */
static int
pm_urlenc(struct sbuf *out, const char *s, size_t len)
{
	const unsigned char	*p = (const unsigned char *)s;
	size_t			 i;
	int			 rc = 0;

	for (i = 0; i < len && rc == 0; i++)
		rc = isalnum(p[i]) || (p[i] != '\0' && strchr("-._~", p[i])) ?
		    sbuf_append(out, (const char *)p + i, 1) :
		    sbuf_printf(out, "%%%02X", p[i]);
	return rc;
}

/* The dashboard's conversation view: PUBLIC_URL?conv=C&alert=ID, C whole. */
static int
pm_link(struct sbuf *out, const struct pushmsg_opts *o, json_t *alert)
{
	json_t		*conv = json_object_get(alert, "conversation");
	const char	*id = pm_str(alert, "id");

	if (o->public_url == NULL)
		return 0;
	if (sbuf_printf(out, "%s", o->public_url) == -1)
		return -1;
	if (!json_is_string(conv))
		return 0;
	if (sbuf_printf(out, "%cconv=", strchr(o->public_url, '?') ? '&' : '?') == -1 ||
	    pm_urlenc(out, json_string_value(conv), json_string_length(conv)) == -1)
		return -1;
	if (id != NULL && (sbuf_printf(out, "&alert=") == -1 ||
	    pm_urlenc(out, id, strlen(id)) == -1))
		return -1;
	return 0;
}

/* {name} of the template for one alert; 0 with nothing appended for a name it does not know. */
static int
pm_field(struct sbuf *out, const struct pushmsg_opts *o, json_t *alert,
    const char *name, size_t len, int *known)
{
	static const char *const plain[] = { "type", "severity", "category",
	    "agent", "conversation", "rule", "message", "id" };
	const char	*v;
	char		 buf[32];
	size_t		 i;

	*known = 1;
	for (i = 0; i < UTIL_NELEM(plain); i++)
		if (strlen(plain[i]) == len && memcmp(plain[i], name, len) == 0) {
			v = pm_str(alert, plain[i]);
			if (v == NULL)
				return 0;
			/* what the chat side chose, shown defused */
			return strcmp(plain[i], "agent") == 0 ||
			    strcmp(plain[i], "conversation") == 0 ?
			    pm_shown_key(out, alert, plain[i]) :
			    sbuf_printf(out, "%s", v);
		}
#define PM_IS(s)	(len == sizeof(s) - 1 && memcmp(name, s, len) == 0)
	if (PM_IS("severity_zh"))
		return sbuf_printf(out, "%s", pm_severity_zh(pm_str(alert, "severity")));
	if (PM_IS("category_zh"))
		return sbuf_printf(out, "%s", pm_what(alert));
	if (PM_IS("waited")) {
		pm_wait(buf, json_object_get(alert, "waited_ms"));
		return sbuf_printf(out, "%s", buf);
	}
	if (PM_IS("time")) {
		pm_clock(buf, alert, o->utc_offset_min);
		return sbuf_printf(out, "%s", buf);
	}
	if (PM_IS("link"))
		return pm_link(out, o, alert);
#undef PM_IS
	*known = 0;
	return 0;
}

static int
pm_template(struct sbuf *out, const char *t, const struct pushmsg_opts *o,
    json_t *alert)
{
	const char	*open, *close;
	int		 known;

	while ((open = strchr(t, '{')) != NULL) {
		if (sbuf_append(out, t, (size_t)(open - t)) == -1)
			return -1;
		close = strchr(open + 1, '}');
		if (close == NULL) {
			t = open;	/* an unclosed brace: the rest as written */
			break;
		}
		if (pm_field(out, o, alert, open + 1, (size_t)(close - open - 1),
		    &known) == -1)
			return -1;
		/* an unknown {word} stays as written: a typo shows in the message */
		if (!known && sbuf_append(out, open, (size_t)(close - open + 1)) == -1)
			return -1;
		t = close + 1;
	}
	return sbuf_printf(out, "%s", t);
}

/* The default text of one alert: who, what, the coaching text, the wait, when, where to look. */
static int
pm_default(struct sbuf *out, const struct pushmsg_opts *o, json_t *alert)
{
	const char	*type = pm_str(alert, "type"), *msg = pm_str(alert, "message");
	const char	*rule = pm_str(alert, "rule");
	char		 buf[32];
	int		 rc;

	rc = sbuf_printf(out, "【chatmon】%s · %s\n",
	    pm_severity_zh(pm_str(alert, "severity")), pm_what(alert));
	rc |= sbuf_printf(out, "客服 ");
	rc |= pm_shown_key(out, alert, "agent");
	rc |= sbuf_printf(out, " · 会话 ");
	rc |= pm_shown_key(out, alert, "conversation");
	rc |= sbuf_printf(out, "\n");
	if (type != NULL && strcmp(type, "rule.hit") == 0 && rule != NULL)
		rc |= sbuf_printf(out, "规则 %s(%s)\n", rule,
		    pm_action_zh(pm_str(alert, "action")));
	if (msg != NULL && *msg != '\0')
		rc |= sbuf_printf(out, "话术 %s\n", msg);
	pm_wait(buf, json_object_get(alert, "waited_ms"));
	if (buf[0] != '\0')
		rc |= sbuf_printf(out, "顾客已等待 %s\n", buf);
	pm_clock(buf, alert, o->utc_offset_min);
	if (buf[0] != '\0')
		rc |= sbuf_printf(out, "时间 %s\n", buf);
	if (o->public_url != NULL) {
		rc |= sbuf_printf(out, "查看 ");
		rc |= pm_link(out, o, alert);
		rc |= sbuf_printf(out, "\n");
	}
	return rc != 0 ? -1 : 0;
}

/* A burst in one message: how many, how bad, the first lines, every id. */
static int
pm_folded(struct sbuf *out, const struct pushmsg_opts *o, json_t *const *a,
    size_t n)
{
	size_t		 i, by[3] = { 0, 0, 0 }, start, mark;
	const char	*rule;
	char		 clock[16];
	int		 rc, r;

	for (i = 0; i < n; i++)
		if ((r = alertline_rank(pm_str(a[i], "severity"))) >= 0)
			by[r]++;
	rc = sbuf_printf(out, "【chatmon】%zu 条告警(合并发送)\n", n);
	rc |= sbuf_printf(out, "严重 %zu · 警告 %zu · 提示 %zu\n", by[2], by[1], by[0]);
	start = out->len;
	for (i = 0; i < n && i < PUSHMSG_FOLD_LINES; i++) {
		mark = out->len;
		pm_clock(clock, a[i], o->utc_offset_min);
		rule = pm_str(a[i], "rule");
		rc |= sbuf_printf(out, "- %s ", clock);
		rc |= pm_shown_key(out, a[i], "agent");
		rc |= sbuf_printf(out, " %s%s%s\n", pm_what(a[i]),
		    rule ? " " : "", rule ? rule : "");
		if (out->len - start > PUSHMSG_FOLD_LINES_BYTES && i > 0) {
			out->len = mark;	/* this line is one too many */
			out->s[mark] = '\0';
			break;
		}
	}
	if (n > i)
		rc |= sbuf_printf(out, "…另有 %zu 条\n", n - i);
	if (o->public_url != NULL)
		rc |= sbuf_printf(out, "查看 %s\n", o->public_url);
	return rc != 0 ? -1 : 0;
}

int
pushmsg_text(struct sbuf *out, const struct config_route *r,
    const struct pushmsg_opts *o, json_t *const *a, size_t n)
{
	const char	*id;
	size_t		 i;
	int		 rc;

	if (n == 1 && r->tmpl != NULL)
		rc = pm_template(out, r->tmpl, o, a[0]) == -1 ||
		    (out->len > 0 && out->s[out->len - 1] != '\n' &&
		    sbuf_printf(out, "\n") == -1) ? -1 : 0;
	else
		rc = n == 1 ? pm_default(out, o, a[0]) : pm_folded(out, o, a, n);
	/* the last line names every alert carried: a receiver can drop duplicates */
	rc |= sbuf_printf(out, n == 1 ? "id: " : "ids: ");
	for (i = 0; i < n; i++) {
		id = pm_str(a[i], "id");
		rc |= sbuf_printf(out, "%s%s", i ? "," : "", id ? id : "-");
	}
	return rc != 0 ? -1 : 0;
}

/* ------------------------------------------------------------ signatures */

int
pushmsg_hmac_b64(const char *key, size_t keylen, const char *msg,
    size_t msglen, char *out, size_t outsz)
{
	unsigned char	 mac[EVP_MAX_MD_SIZE];
	unsigned int	 maclen = 0;

	if (outsz < 45 || HMAC(EVP_sha256(), key, (int)keylen,
	    (const unsigned char *)msg, msglen, mac, &maclen) == NULL ||
	    maclen != 32)
		return -1;
	EVP_EncodeBlock((unsigned char *)out, mac, (int)maclen);
	return 0;
}

/* X-Chatmon-Signature: sha256=<hex HMAC-SHA256(secret, body)>. */
static int
pm_sign_body(char *out, size_t outsz, const char *secret, const struct sbuf *body)
{
	unsigned char	 mac[EVP_MAX_MD_SIZE];
	unsigned int	 maclen = 0, i;
	int		 o;

	if (HMAC(EVP_sha256(), secret, (int)strlen(secret),
	    (const unsigned char *)sbuf_str(body), body->len, mac, &maclen) == NULL)
		return -1;
	o = snprintf(out, outsz, "X-Chatmon-Signature: sha256=");
	for (i = 0; i < maclen && (size_t)o + 3 <= outsz; i++)
		o += snprintf(out + o, outsz - (size_t)o, "%02x", mac[i]);
	return 0;
}

/* ------------------------------------------------------------ requests */

void
pushmsg_req_init(struct pushmsg_req *q)
{
	sbuf_init(&q->url);
	sbuf_init(&q->body);
	sbuf_init(&q->id);
	q->sig[0] = '\0';
}

void
pushmsg_req_free(struct pushmsg_req *q)
{
	sbuf_free(&q->url);
	sbuf_free(&q->body);
	sbuf_free(&q->id);
}

/* The webhook's summary of a burst: the ids, and the first alerts whole. */
static json_t *
pm_fold_json(json_t *const *a, size_t n, const char *fold_id)
{
	json_t	*o, *ids, *full;
	size_t	 i;

	o = json_pack("{s:i, s:s, s:s, s:I, s:[], s:[]}", "v", 1, "type",
	    "notify.folded", "id", fold_id, "count", (json_int_t)n, "folded",
	    "alerts");
	if (o == NULL)
		return NULL;
	ids = json_object_get(o, "folded");
	full = json_object_get(o, "alerts");
	for (i = 0; i < n; i++) {
		if (json_array_append(ids, json_object_get(a[i], "id")) == -1 ||
		    (i < PUSHMSG_FOLD_FULL && json_array_append(full, a[i]) == -1)) {
			json_decref(o);
			return NULL;
		}
	}
	return o;
}

/* out = text with each newline doubled. */
static int
pm_paragraphs(struct sbuf *out, const struct sbuf *text)
{
	const char	*p, *nl;

	sbuf_reset(out);
	for (p = sbuf_str(text); (nl = strchr(p, '\n')) != NULL; p = nl + 1)
		if (sbuf_append(out, p, (size_t)(nl - p)) == -1 ||
		    sbuf_append(out, "\n\n", 2) == -1)
			return -1;
	return sbuf_printf(out, "%s", p);
}

/* Sets body to o's JSON; o is consumed. */
static int
pm_body(struct sbuf *body, json_t *o)
{
	char	*s;
	int	 rc;

	if (o == NULL)
		return -1;
	s = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	if (s == NULL)
		return -1;
	rc = sbuf_printf(body, "%s", s);
	free(s);
	return rc;
}

/*
 * The request: id names what it carries, text is what a robot shows, and
 * webhook (consumed; NULL: raw) or raw the webhook's body.
 */
static int
pm_request(struct pushmsg_req *q, const struct config_route *r,
    const struct pushmsg_opts *o, const char *id, const struct sbuf *text,
    json_t *webhook, const char *raw)
{
	struct sbuf	 tmp;
	char		 sign[64], ts[32];
	int		 rc = -1;

	sbuf_init(&tmp);
	if (sbuf_printf(&q->id, "X-Chatmon-Alert-Id: %s", id) == -1 ||
	    sbuf_printf(&q->url, "%s", r->url) == -1)
		goto out;
	switch (r->target) {
	case CONFIG_TARGET_WEBHOOK:
		if ((webhook != NULL ? pm_body(&q->body, webhook) :
		    sbuf_printf(&q->body, "%s", raw)) == -1)
			goto out;
		webhook = NULL;
		if (r->secret != NULL && pm_sign_body(q->sig, sizeof(q->sig),
		    r->secret, &q->body) == -1)
			goto out;
		break;
	case CONFIG_TARGET_DINGTALK:
		/* sign: base64 HMAC-SHA256 of "timestamp\nsecret" keyed by the secret, in the URL */
		if (r->secret != NULL) {
			snprintf(ts, sizeof(ts), "%lld", (long long)o->now_ms);
			if (sbuf_printf(&tmp, "%s\n%s", ts, r->secret) == -1 ||
			    pushmsg_hmac_b64(r->secret, strlen(r->secret),
			    sbuf_str(&tmp), tmp.len, sign, sizeof(sign)) == -1 ||
			    sbuf_printf(&q->url, "%ctimestamp=%s&sign=",
			    strchr(r->url, '?') ? '&' : '?', ts) == -1 ||
			    pm_urlenc(&q->url, sign, strlen(sign)) == -1)
				goto out;
		}
		/* DingTalk's markdown joins single newlines: a paragraph per line */
		if (pm_paragraphs(&tmp, text) == -1 ||
		    pm_body(&q->body, json_pack("{s:s, s:{s:s, s:s}}", "msgtype",
		    "markdown", "markdown", "title", "chatmon 告警", "text",
		    sbuf_str(&tmp))) == -1)
			goto out;
		break;
	case CONFIG_TARGET_WECOM:
		if (pm_body(&q->body, json_pack("{s:s, s:{s:s}}", "msgtype",
		    "markdown", "markdown", "content", sbuf_str(text))) == -1)
			goto out;
		break;
	case CONFIG_TARGET_FEISHU:
		/* sign: base64 HMAC-SHA256 of nothing, keyed by "timestamp\nsecret" (seconds) */
		if (r->secret != NULL) {
			snprintf(ts, sizeof(ts), "%lld", (long long)(o->now_ms / 1000));
			if (sbuf_printf(&tmp, "%s\n%s", ts, r->secret) == -1 ||
			    pushmsg_hmac_b64(sbuf_str(&tmp), tmp.len, "", 0,
			    sign, sizeof(sign)) == -1 ||
			    pm_body(&q->body, json_pack("{s:s, s:s, s:s, s:{s:s}}",
			    "timestamp", ts, "sign", sign, "msg_type", "text",
			    "content", "text", sbuf_str(text))) == -1)
				goto out;
		} else if (pm_body(&q->body, json_pack("{s:s, s:{s:s}}", "msg_type",
		    "text", "content", "text", sbuf_str(text))) == -1)
			goto out;
		break;
	case CONFIG_TARGET_SLACK:
		if (pm_body(&q->body, json_pack("{s:s}", "text", sbuf_str(text))) == -1)
			goto out;
		break;
	default:
		goto out;
	}
	rc = 0;
out:
	json_decref(webhook);
	sbuf_free(&tmp);
	return rc;
}

int
pushmsg_build(struct pushmsg_req *q, const struct config_route *r,
    const struct pushmsg_opts *o, json_t *const *a, const char *const *raw,
    size_t n)
{
	struct sbuf	 text, id;
	const char	*first = pm_str(a[0], "id");
	json_t		*fold = NULL;
	int		 rc = -1;

	sbuf_init(&text);
	sbuf_init(&id);
	if (sbuf_printf(&id, "%s%s", n > 1 ? "fold-" : "", first ? first : "-") == -1)
		goto out;
	if (r->target == CONFIG_TARGET_WEBHOOK) {
		if (n > 1 && (fold = pm_fold_json(a, n, sbuf_str(&id))) == NULL)
			goto out;
	} else if (pushmsg_text(&text, r, o, a, n) == -1)
		goto out;
	rc = pm_request(q, r, o, sbuf_str(&id), &text, fold, raw[0]);
out:
	sbuf_free(&text);
	sbuf_free(&id);
	return rc;
}

/* pm_wait of a report's figure, "-" for none. */
static void
pm_secs(char out[32], json_t *ms)
{
	pm_wait(out, ms);
	if (out[0] == '\0')
		snprintf(out, 32, "-");
}

/* A share of the rounds, "66.7%"; "-" on a day without rounds (0.0% said they all went unanswered). */
static void
pm_pct(char out[32], json_t *team, const char *key)
{
	json_t	*v = json_object_get(team, key);

	if (json_integer_value(json_object_get(team, "rounds")) <= 0 ||
	    !json_is_number(v))
		snprintf(out, 32, "-");
	else
		snprintf(out, 32, "%.1f%%", json_number_value(v) * 100);
}

/* The N-minute reply rate's name, as chatmon report gives it: 3分钟回复率 for 180 s (sla.rate, the default). */
static void
pm_rate_label(char out[48], json_t *report)
{
	json_int_t	ms = json_integer_value(json_object_get(json_object_get(report,
			    "sla"), "rate_ms"));

	if (ms <= 0)
		ms = 180000;
	if (ms % 60000 == 0)
		snprintf(out, 48, "%lld分钟回复率", (long long)(ms / 60000));
	else
		snprintf(out, 48, "%lld秒回复率", (long long)(ms / 1000));
}

static long long
pm_int(json_t *o, const char *key)
{
	return json_integer_value(json_object_get(o, key));
}

int
pushmsg_daily_text(struct sbuf *out, const struct pushmsg_opts *o,
    json_t *report)
{
	json_t		*team = json_object_get(report, "team"), *agents, *ag, *slow = NULL;
	json_t		*worst = json_array_get(json_object_get(report, "worst"), 0);
	const char	*day = pm_str(report, "from");
	char		 a[32], b[32], label[48];
	size_t		 i;
	int		 rc;

	rc = sbuf_printf(out, "【chatmon】日报 %s\n", day ? day : "-");
	/* no answer that day: no response time (the report says 0) */
	if (pm_int(team, "answered") > 0) {
		pm_secs(a, json_object_get(team, "mean_ms"));
		pm_secs(b, json_object_get(team, "p90_ms"));
	} else {
		snprintf(a, sizeof(a), "-");
		snprintf(b, sizeof(b), "-");
	}
	rc |= sbuf_printf(out, "接待 %lld 轮 · 已回复 %lld · 平均响应 %s · P90 %s\n",
	    pm_int(team, "rounds"), pm_int(team, "answered"), a, b);
	/* the rate's N is sla.rate's (the report's sla.rate_ms), not always 3 minutes */
	pm_rate_label(label, report);
	pm_pct(a, team, "rate");
	pm_pct(b, team, "rate_30s");
	if (strcmp(label, "30秒回复率") == 0)
		rc |= sbuf_printf(out, "%s %s\n", label, a);
	else
		rc |= sbuf_printf(out, "%s %s · 30秒回复率 %s\n", label, a, b);
	rc |= sbuf_printf(out, "超时 %lld 次 · 升级 %lld 次 · 违规 %lld 条(拦截 %lld) · "
	    "误报 %lld\n", pm_int(team, "breaches"), pm_int(team, "escalations"),
	    pm_int(team, "alerts"), pm_int(team, "blocks"),
	    pm_int(team, "false_positives"));
	/* who to talk to first: the slowest mean among those who served */
	agents = json_object_get(report, "agents");
	json_array_foreach(agents, i, ag)
		if (pm_int(ag, "rounds") > 0 && (slow == NULL ||
		    pm_int(ag, "mean_ms") > pm_int(slow, "mean_ms")))
			slow = ag;
	/* the agent and the conversation are the chat side's: shown defused, as in an alert */
	if (slow != NULL) {
		pm_secs(a, json_object_get(slow, "mean_ms"));
		rc |= sbuf_printf(out, "平均响应最慢 ");
		rc |= pm_shown_key(out, slow, "agent");
		rc |= sbuf_printf(out, " %s\n", a);
	}
	if (worst != NULL) {
		pm_secs(a, json_object_get(worst, "waited_ms"));
		rc |= sbuf_printf(out, "最长等待 %s · 客服 ", a);
		rc |= pm_shown_key(out, worst, "agent");
		rc |= sbuf_printf(out, " · 会话 ");
		rc |= pm_shown_key(out, worst, "conversation");
		rc |= sbuf_printf(out, "\n");
	}
	if (o->public_url != NULL && day != NULL)
		rc |= sbuf_printf(out, "查看 %s%cday=%s\n", o->public_url,
		    strchr(o->public_url, '?') ? '&' : '?', day);
	rc |= sbuf_printf(out, "id: daily-%s", day ? day : "-");
	return rc != 0 ? -1 : 0;
}

int
pushmsg_build_daily(struct pushmsg_req *q, const struct config_route *r,
    const struct pushmsg_opts *o, json_t *report)
{
	struct sbuf	 text, id;
	json_t		*body;
	const char	*day = pm_str(report, "from");
	int		 rc = -1;

	sbuf_init(&text);
	sbuf_init(&id);
	/* a webhook gets the day's team figures and worst waits, not every agent */
	body = json_pack("{s:i, s:s, s:s, s:O?, s:O?}", "v", 1, "type", "report.daily",
	    "day", day ? day : "-", "team", json_object_get(report, "team"),
	    "worst", json_object_get(report, "worst"));
	if (body == NULL || sbuf_printf(&id, "daily-%s", day ? day : "-") == -1 ||
	    json_object_set_new(body, "id", json_string(sbuf_str(&id))) == -1 ||
	    pushmsg_daily_text(&text, o, report) == -1) {
		json_decref(body);
		goto out;
	}
	rc = pm_request(q, r, o, sbuf_str(&id), &text, body, NULL);
out:
	sbuf_free(&text);
	sbuf_free(&id);
	return rc;
}

/* ------------------------------------------------------------ answers */

/*
 * The robot's own words about a refusal, for the log and the dead letter:
 * at most PM_ERRMSG_MAX bytes (whole UTF-8 characters), a control
 * character, '"' and '\\' as \xNN, so that it stays one quoted value
 * on one log line.
 */
#define PM_ERRMSG_MAX	100

static void
pm_errmsg(char *out, size_t sz, const char *s, size_t len)
{
	const unsigned char	*p = (const unsigned char *)s;
	size_t			 i, o = 0, c;

	for (i = 0; i < len && o + 5 < sz && i < PM_ERRMSG_MAX; i += c) {
		c = 1;
		if (p[i] < 0x20 || p[i] == 0x7f || p[i] == '"' || p[i] == '\\') {
			snprintf(out + o, sz - o, "\\x%02x", p[i]);
			o += 4;
			continue;
		}
		if (p[i] >= 0x80)	/* a whole character or none of it */
			for (; i + c < len && (p[i + c] & 0xc0) == 0x80; c++)
				;
		if (o + c + 1 > sz || i + c > PM_ERRMSG_MAX)
			break;
		memcpy(out + o, p + i, c);
		o += c;
	}
	out[o] = '\0';
	if (i < len && o + 4 < sz)
		snprintf(out + o, sz - o, "…");
}

const char *
pushmsg_judge(int target, long status, const char *body, size_t len,
    int *limited, char *buf, size_t bufsz)
{
	json_t		*o, *c, *m;
	json_int_t	 code = 0;
	char		 msg[PM_ERRMSG_MAX * 4 + 8];
	int		 bad;

	*limited = status == 429;
	if (status == 429)
		return "HTTP 429: too many requests";
	if (status >= 500)
		return "HTTP 5xx: the server failed";
	if (status >= 300 && status < 400)
		return "HTTP 3xx: a redirect, not followed (has the URL moved?)";
	if (status < 200 || status >= 300)
		return "HTTP status not 2xx";
	if (target == CONFIG_TARGET_SLACK || target == CONFIG_TARGET_WEBHOOK)
		return NULL;
	/* the robots answer 200 and say in the body whether they took it */
	if ((o = json_loadb(body, len, 0, NULL)) == NULL)
		return "the robot's answer is not JSON";
	if (target == CONFIG_TARGET_FEISHU) {
		if ((c = json_object_get(o, "code")) == NULL)
			c = json_object_get(o, "StatusCode");
	} else
		c = json_object_get(o, "errcode");
	/* no code: a proxy's or a captive portal's page, not the robot's answer */
	bad = !json_is_integer(c);
	if (json_is_integer(c))
		code = json_integer_value(c);
	/* DingTalk and WeCom say why in errmsg, Feishu in msg (or StatusMessage) */
	if ((m = json_object_get(o, "errmsg")) == NULL &&
	    (m = json_object_get(o, "msg")) == NULL)
		m = json_object_get(o, "StatusMessage");
	if (json_is_string(m))
		pm_errmsg(msg, sizeof(msg), json_string_value(m), json_string_length(m));
	else
		snprintf(msg, sizeof(msg), "-");
	json_decref(o);		/* c and m with it */
	if (bad)
		return "the answer has no code: not the robot's";
	if (code == 0)
		return NULL;
	/* DingTalk 130101, WeCom 45009, Feishu 9499 and 11232: sent too often */
	if ((target == CONFIG_TARGET_DINGTALK && code == 130101) ||
	    (target == CONFIG_TARGET_WECOM && code == 45009) ||
	    (target == CONFIG_TARGET_FEISHU && (code == 9499 || code == 11232))) {
		*limited = 1;
		return "the robot says: sent too often";
	}
	snprintf(buf, bufsz, "the robot refused it: code %lld \"%s\" (check the "
	    "URL, secret or keywords)", (long long)code, msg);
	return buf;
}

int64_t
pushmsg_retry_after(const char *v, int64_t now_ms)
{
	struct tm	 tm;
	const char	*end;
	int64_t		 ms;
	char		*e;
	long		 s;

	if (v == NULL)
		return -1;
	while (*v == ' ' || *v == '\t')
		v++;
	if (isdigit((unsigned char)*v)) {
		s = strtol(v, &e, 10);
		if (*e != '\0' && *e != '\r' && *e != '\n' && *e != ' ')
			return -1;
		ms = s > 3600 ? 3600000 : (int64_t)s * 1000;
	} else {
		memset(&tm, 0, sizeof(tm));
		if ((end = strptime(v, "%a, %d %b %Y %H:%M:%S GMT", &tm)) == NULL)
			return -1;
		ms = (int64_t)timegm(&tm) * 1000 - now_ms;
		if (ms < 0)
			ms = 0;
	}
	return ms > 3600000 ? 3600000 : ms;
}

int64_t
pushmsg_limited_pause(int target, const char *retry_after, int64_t now_ms,
    uint64_t configured_ms)
{
	int64_t	ms;

	/* at least a second: "Retry-After: 0" and a past date do not make a busy loop */
	if ((ms = pushmsg_retry_after(retry_after, now_ms)) >= 0)
		return ms < 1000 ? 1000 : ms;
	if (configured_ms > 0)
		return (int64_t)configured_ms;
	return target == CONFIG_TARGET_DINGTALK ? 600000 : 60000;
}

uint64_t
pushmsg_backoff(uint64_t base_ms, unsigned attempt, uint32_t rnd)
{
	uint64_t	 d = base_ms;

	while (attempt-- > 1 && d < 300000)
		d *= 2;
	if (d > 300000)
		d = 300000;
	/* 0.75 .. 1.25 of it: workers restarted together do not retry together */
	return d * 3 / 4 + (uint64_t)((double)d / 2 * ((double)rnd / 4294967296.0));
}
