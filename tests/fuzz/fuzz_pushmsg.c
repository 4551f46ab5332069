/* fuzz_pushmsg: alerts as notify reads them from the stream, through every route's request (DingTalk, WeCom, Feishu, Slack, webhook), alone and folded. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "chatmon/access.h"
#include "chatmon/codec.h"
#include "chatmon/config.h"
#include "chatmon/pushmsg.h"
#include "chatmon/util.h"

#include "fuzz.h"

/*
 * The input is "ALERTS\0TEMPLATE": ALERTS one stream entry's alert (or,
 * when the whole is not one JSON document, up to MAX_ALERTS of them, one a
 * line), each taken as pushd.c's pd_on_entry takes it (json_loadb with
 * JSON_ALLOW_NUL, an object whose "id" is a string without NUL or space of
 * at most 200 bytes; the rest is dropped there, so here too); TEMPLATE, if
 * any, a route's template. Each alert goes alone, then all of them
 * folded, to every target with and without a secret and a template, under
 * three public URLs; then MAX_FOLD of them (the ones given, over and over)
 * folded to WeCom (the size limit) and to a signed webhook. The input is also a robot's answer for pushmsg_judge and a
 * Retry-After for pushmsg_retry_after.
 *
 * What is checked (pushmsg.h, docs/notify.md): 0 returned (only ENOMEM
 * may fail); the body valid UTF-8 and valid JSON of the target's shape;
 * a webhook's single alert byte for byte and its signature the HMAC of the
 * body; the text's last line naming every alert; the default and folded
 * texts starting with 【chatmon】; the chat side's agent and conversation
 * shown without control or markdown characters; and, for alerts chatmond
 * would write (an agent id access.c takes, a conversation the codec takes,
 * ids, rules and names of the sizes chatmond gives them), a WeCom message
 * within WeCom's 4096 bytes, folded or not. pushmsg_match is compared with
 * a direct reading of the route's match lists.
 */

#define MAX_ALERTS	8
#define MAX_FOLD	50	/* pushd's fold to a robot: docs/notify.md, "A folded message carries at most 50 alerts" */
#define WECOM_MAX	4096	/* bytes of a WeCom markdown message's content */
#define SECRET		"SECfuzz-pushmsg-route-secret"
#define NOW_MS		INT64_C(1795341605000)

static const int targets[] = { CONFIG_TARGET_DINGTALK, CONFIG_TARGET_WECOM,
    CONFIG_TARGET_FEISHU, CONFIG_TARGET_SLACK, CONFIG_TARGET_WEBHOOK };
static const char *const urls[] = { NULL, "https://cs.example.com/",
    "https://cs.example.com/chatmon/?team=a%20b" };

static char *m_cat[] = { "offplatform", "stock", "no-such-category" };
static char *m_sev[] = { "critical" };
static char *m_agent[] = { "alice", "客服小王" };

static const char *
jstr(json_t *a, const char *key)
{
	return json_string_value(json_object_get(a, key));
}

static int
short_str(json_t *a, const char *key, size_t max)
{
	const char	*s = jstr(a, key);

	return s == NULL || strlen(s) <= max;
}

/*
 * An alert of the sizes chatmond writes (docs/alerts.md): an agent id
 * access.c takes, a conversation id the codec takes, ids of 33 bytes
 * (a little more allowed), rule ids and categories of a rule file, a
 * coaching text of a sentence or two.
 */
static int
realistic(json_t *a)
{
	const char	*agent = jstr(a, "agent");

	return (agent == NULL || access_agent_id_why(agent, strlen(agent)) == NULL) &&
	    short_str(a, "conversation", CODEC_CONV_MAX) && short_str(a, "id", 36) &&
	    short_str(a, "rule", 64) && short_str(a, "category", 32) &&
	    short_str(a, "type", 16) && short_str(a, "severity", 16) &&
	    short_str(a, "message", 512);
}

static int
one_line(json_t *a, const char *key)
{
	const char	*s = jstr(a, key);

	return s == NULL || strchr(s, '\n') == NULL;
}

/* pushmsg_match read directly off the route's lists. */
static int
match_oracle(const struct config_route *r, json_t *a)
{
	size_t		 m, i, j;
	json_t		*h;
	const char	*v;
	int		 hit;

	for (m = 0; m < CONFIG_MATCH_N; m++) {
		if (r->match[m].n == 0)
			continue;
		hit = 0;
		for (i = 0; i < r->match[m].n; i++) {
			v = jstr(a, config_match_names[m]);
			hit |= v != NULL && strcmp(v, r->match[m].v[i]) == 0;
			if (m != CONFIG_MATCH_CATEGORY)
				continue;
			json_array_foreach(json_object_get(a, "hits"), j, h)
				hit |= (v = jstr(h, "category")) != NULL &&
				    strcmp(v, r->match[m].v[i]) == 0;
		}
		if (!hit)
			return 0;
	}
	return 1;
}

/* What a robot shows of the body, by target; NULL for a webhook. */
static const char *
robot_text(int target, json_t *body, int secret)
{
	const char	*mt;

	switch (target) {
	case CONFIG_TARGET_DINGTALK:
		FUZZ_CHECK((mt = jstr(body, "msgtype")) != NULL && strcmp(mt, "markdown") == 0);
		FUZZ_CHECK(jstr(json_object_get(body, "markdown"), "title") != NULL);
		return jstr(json_object_get(body, "markdown"), "text");
	case CONFIG_TARGET_WECOM:
		FUZZ_CHECK((mt = jstr(body, "msgtype")) != NULL && strcmp(mt, "markdown") == 0);
		return jstr(json_object_get(body, "markdown"), "content");
	case CONFIG_TARGET_FEISHU:
		FUZZ_CHECK((mt = jstr(body, "msg_type")) != NULL && strcmp(mt, "text") == 0);
		if (secret)
			FUZZ_CHECK(jstr(body, "timestamp") != NULL && jstr(body, "sign") != NULL);
		return jstr(json_object_get(body, "content"), "text");
	case CONFIG_TARGET_SLACK:
		return jstr(body, "text");
	}
	return NULL;
}

/*
 * The text ends with the line naming every alert: "id: ID" alone, "ids:
 * ID,ID,..." folded ("-" for none), DingTalk's with each newline doubled
 * (a paragraph a line; an id may hold a newline).
 */
static void
check_ids_line(const char *text, json_t *const *a, size_t n, int dingtalk)
{
	struct sbuf	 want, para;
	const char	*id, *p;
	size_t		 i, tl = strlen(text);

	sbuf_init(&want);
	sbuf_init(&para);
	sbuf_printf(&want, n == 1 ? "id: " : "ids: ");
	for (i = 0; i < n; i++) {
		id = jstr(a[i], "id");
		sbuf_printf(&want, "%s%s", i ? "," : "", id ? id : "-");
	}
	for (p = sbuf_str(&want); *p != '\0'; p++)
		sbuf_printf(&para, *p == '\n' && dingtalk ? "\n\n" : "%c", *p);
	FUZZ_CHECK(tl >= para.len && strcmp(text + tl - para.len, sbuf_str(&para)) == 0);
	FUZZ_CHECK(tl == para.len || text[tl - para.len - 1] == '\n');
	sbuf_free(&want);
	sbuf_free(&para);
}

/*
 * A value of the chat side as a robot's markdown shows it (the default
 * text's "客服 AGENT · 会话 CONV" line): no control character, none of
 * [ ] ( ) < > `, at most 96 bytes before the "…" (each byte widened to
 * at most 3).
 */
static void
check_default_text(const char *text)
{
	const char	*line, *end, *p;

	FUZZ_CHECK(strncmp(text, "【chatmon】", strlen("【chatmon】")) == 0);
	FUZZ_CHECK((line = strchr(text, '\n')) != NULL);
	/* DingTalk's paragraphs: one empty line more */
	while (*line == '\n')
		line++;
	FUZZ_CHECK(strncmp(line, "客服 ", strlen("客服 ")) == 0);
	end = strchr(line, '\n');
	FUZZ_CHECK(end != NULL);
	/* only what the agent and conversation became, and the fixed words, are on it */
	for (p = line; p < end; p++) {
		FUZZ_CHECK((unsigned char)*p >= 0x20 && *p != 0x7f);
		FUZZ_CHECK(strchr("[]()<>`", *p) == NULL);
	}
	FUZZ_CHECK((size_t)(end - line) <= strlen("客服 ") + strlen(" · 会话 ") +
	    2 * (96 * 3 + strlen("…")));
}

static void
check_req(const struct pushmsg_req *q, const struct config_route *r, json_t *const *a,
    const char *const *raw, size_t n, int real)
{
	json_t		*body, *v;
	const char	*text, *first = jstr(a[0], "id");
	struct sbuf	 want;
	unsigned char	 mac[EVP_MAX_MD_SIZE];
	unsigned int	 maclen = 0, i;
	char		 hex[2 * EVP_MAX_MD_SIZE + 1];

	FUZZ_CHECK(strncmp(sbuf_str(&q->url), r->url, strlen(r->url)) == 0);
	sbuf_init(&want);
	sbuf_printf(&want, "X-Chatmon-Alert-Id: %s%s", n > 1 ? "fold-" : "", first ? first : "-");
	FUZZ_CHECK(strcmp(sbuf_str(&q->id), sbuf_str(&want)) == 0);
	sbuf_free(&want);
	FUZZ_CHECK(fuzz_utf8_valid(sbuf_str(&q->body), q->body.len));
	FUZZ_CHECK(strlen(sbuf_str(&q->body)) == q->body.len);
	if (r->target == CONFIG_TARGET_WEBHOOK) {
		/* the alert as the stream held it (it may hold \u0000), or the folded summary */
		FUZZ_CHECK((body = json_loadb(sbuf_str(&q->body), q->body.len, JSON_ALLOW_NUL,
		    NULL)) != NULL && json_is_object(body));
		if (n == 1)
			FUZZ_CHECK(strcmp(sbuf_str(&q->body), raw[0]) == 0);
		else {
			FUZZ_CHECK(json_integer_value(json_object_get(body, "count")) == (json_int_t)n);
			FUZZ_CHECK(json_array_size(json_object_get(body, "folded")) == n);
			v = json_object_get(body, "alerts");
			FUZZ_CHECK(json_array_size(v) == (n < PUSHMSG_FOLD_FULL ? n : PUSHMSG_FOLD_FULL));
		}
		if (r->secret != NULL) {
			FUZZ_CHECK(HMAC(EVP_sha256(), r->secret, (int)strlen(r->secret),
			    (const unsigned char *)sbuf_str(&q->body), q->body.len, mac,
			    &maclen) != NULL);
			for (i = 0; i < maclen; i++)
				snprintf(hex + 2 * i, 3, "%02x", mac[i]);
			sbuf_init(&want);
			sbuf_printf(&want, "X-Chatmon-Signature: sha256=%s", hex);
			FUZZ_CHECK(strcmp(q->sig, sbuf_str(&want)) == 0);
			sbuf_free(&want);
		} else
			FUZZ_CHECK(q->sig[0] == '\0');
		json_decref(body);
		return;
	}
	/* a robot refuses what is not JSON, a \u0000 included */
	FUZZ_CHECK((body = json_loadb(sbuf_str(&q->body), q->body.len, 0, NULL)) != NULL);
	FUZZ_CHECK(json_is_object(body));
	FUZZ_CHECK((text = robot_text(r->target, body, r->secret != NULL)) != NULL);
	check_ids_line(text, a, n, r->target == CONFIG_TARGET_DINGTALK);
	if (r->tmpl == NULL || n > 1)
		FUZZ_CHECK(strncmp(text, "【chatmon】", strlen("【chatmon】")) == 0);
	/* the first line is made of the severity, type and category: one line when they are */
	if (r->tmpl == NULL && n == 1 && one_line(a[0], "severity") && one_line(a[0], "type") &&
	    one_line(a[0], "category"))
		check_default_text(text);
	if (r->target == CONFIG_TARGET_WECOM && real && r->tmpl == NULL)
		FUZZ_CHECK(strlen(text) <= WECOM_MAX);
	json_decref(body);
}

static void
build(const struct config_route *r, const struct pushmsg_opts *o, json_t *const *a,
    const char *const *raw, size_t n, int real)
{
	struct pushmsg_req	q;

	pushmsg_req_init(&q);
	FUZZ_CHECK(pushmsg_build(&q, r, o, a, raw, n) == 0);
	check_req(&q, r, a, raw, n, real);
	pushmsg_req_free(&q);
}

/* Every route and option for alerts a[0..n); few: only WeCom's and the webhook's, with the longest URL. */
static void
routes(json_t *const *a, const char *const *raw, size_t n, const char *tmpl, int real,
    int few)
{
	struct config_route	r;
	struct pushmsg_opts	o;
	size_t			t, s, u, k;

	for (t = 0; t < UTIL_NELEM(targets); t++)
		for (s = 0; s < 2; s++)
			for (k = 0; k < (tmpl != NULL ? 2u : 1u); k++)
				for (u = 0; u < UTIL_NELEM(urls); u++) {
					if (few && ((targets[t] != CONFIG_TARGET_WECOM &&
					    targets[t] != CONFIG_TARGET_WEBHOOK) || u != 2 ||
					    s != (targets[t] == CONFIG_TARGET_WEBHOOK)))
						continue;
					memset(&r, 0, sizeof(r));
					r.name = "fuzz";
					r.target = targets[t];
					r.url = u == 2 ? "https://oapi.dingtalk.com/robot/send?access_token=x" :
					    "https://hooks.example.com/chatmon";
					r.secret = s ? SECRET : NULL;
					r.tmpl = k ? (char *)tmpl : NULL;
					o.public_url = urls[u];
					o.utc_offset_min = u == 1 ? 480 : -300;
					o.now_ms = NOW_MS;
					build(&r, &o, a, raw, n, real);
				}
}

/* An alert as pd_on_entry takes it, or NULL (the entry is acknowledged and dropped there). */
static json_t *
take(const char *s, size_t len)
{
	json_t		*a;
	const char	*id;

	if ((a = json_loadb(s, len, JSON_ALLOW_NUL, NULL)) == NULL)
		return NULL;
	if (!json_is_object(a) || (id = jstr(a, "id")) == NULL ||
	    strlen(id) != json_string_length(json_object_get(a, "id")) ||
	    strlen(id) > 200 || strchr(id, ' ') != NULL) {
		json_decref(a);
		return NULL;
	}
	return a;
}

static void
match(json_t *a)
{
	struct config_route	r;
	size_t			i;

	for (i = 0; i < 8; i++) {
		memset(&r, 0, sizeof(r));
		if (i & 1)
			r.match[CONFIG_MATCH_CATEGORY] = (struct config_list){ m_cat, 3 };
		if (i & 2)
			r.match[CONFIG_MATCH_SEVERITY] = (struct config_list){ m_sev, 1 };
		if (i & 4)
			r.match[CONFIG_MATCH_AGENT] = (struct config_list){ m_agent, 2 };
		FUZZ_CHECK(pushmsg_match(&r, a) == match_oracle(&r, a));
	}
}

/* The input as what a target answers: judged without harm. */
static void
answers(const uint8_t *data, size_t size)
{
	const char	*why;
	char		*s, buf[PUSHMSG_WHY_MAX];
	int64_t		 ms;
	size_t		 t;
	int		 limited;

	for (t = 0; t < UTIL_NELEM(targets); t++) {
		limited = -1;
		why = pushmsg_judge(targets[t], 200, (const char *)data, size, &limited,
		    buf, sizeof(buf));
		FUZZ_CHECK(limited == 0 || limited == 1);
		if (targets[t] == CONFIG_TARGET_SLACK || targets[t] == CONFIG_TARGET_WEBHOOK)
			FUZZ_CHECK(why == NULL && limited == 0);
		/* a refusal's own words come escaped: one line, printable, bounded */
		if (why != NULL)
			FUZZ_CHECK(fuzz_utf8_valid(why, strlen(why)) &&
			    strlen(why) < sizeof(buf) && strchr(why, '\n') == NULL);
	}
	s = fuzz_strndup(data, size);
	ms = pushmsg_retry_after(s, NOW_MS);
	FUZZ_CHECK(ms == -1 || (ms >= 0 && ms <= 3600000));
	free(s);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_t		*a[MAX_FOLD], *one;
	char		*raw[MAX_FOLD], *tmpl = NULL, *buf;
	const uint8_t	*rest;
	size_t		 rest_len, len, n = 0, i, off, l;
	int		 real = 1;
	const char	*nl;

	answers(data, size);
	if (fuzz_split(data, size, &rest, &rest_len)) {
		len = (size_t)(rest - data) - 1;
		/* a template is YAML text the configuration took: valid UTF-8 (libyaml refuses the rest) */
		if (fuzz_utf8_valid((const char *)rest, rest_len))
			tmpl = fuzz_strndup(rest, rest_len);
	} else
		len = size;
	buf = fuzz_strndup(data, len);
	/* the whole one alert, or one a line */
	if ((one = take(buf, len)) != NULL) {
		a[n] = one;
		raw[n++] = fuzz_strndup(buf, len);
	} else
		for (off = 0; off < len && n < MAX_ALERTS; off += l + 1) {
			nl = memchr(buf + off, '\n', len - off);
			l = nl != NULL ? (size_t)(nl - (buf + off)) : len - off;
			if ((a[n] = take(buf + off, l)) != NULL)
				raw[n++] = fuzz_strndup(buf + off, l);
		}
	for (i = 0; i < n; i++) {
		real &= realistic(a[i]);
		match(a[i]);
		routes(&a[i], (const char *const *)&raw[i], 1, tmpl, realistic(a[i]), 0);
	}
	if (n > 1)
		routes(a, (const char *const *)raw, n, NULL, real, 0);
	if (n > 0) {
		/* a burst of MAX_FOLD: the given ones, again and again */
		for (i = n; i < MAX_FOLD; i++) {
			a[i] = json_incref(a[i % n]);
			raw[i] = raw[i % n];
		}
		routes(a, (const char *const *)raw, MAX_FOLD, NULL, real, 1);
		for (i = 0; i < MAX_FOLD; i++)
			json_decref(a[i]);
	}
	for (i = 0; i < n; i++)
		free(raw[i]);
	free(buf);
	free(tmpl);
	return 0;
}
