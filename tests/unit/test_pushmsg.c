/* test_pushmsg: which alerts a route takes, what each target receives and how it is signed, how answers are judged. The expected signatures were computed with Python's hmac, not with this code. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "chatmon/pushmsg.h"

static const char hit_json[] =
    "{\"v\":2,\"id\":\"a1\",\"ts\":\"2026-11-22T02:00:05.000Z\",\"type\":\"rule.hit\","
    "\"severity\":\"critical\",\"agent\":\"alice\",\"conversation\":\"c 1&x\","
    "\"category\":\"offplatform\",\"rule\":\"offplatform.add_contact_app\","
    "\"action\":\"block\",\"text\":\"加我薇信\",\"matched\":\"加我薇信\","
    "\"message\":\"请在平台内沟通\",\"hits\":[{\"category\":\"offplatform\"},"
    "{\"category\":\"etiquette\"}]}";
static const char sla_json[] =
    "{\"v\":2,\"id\":\"s1\",\"ts\":\"2026-11-22T02:03:20.000Z\",\"type\":\"sla.breach\","
    "\"severity\":\"warn\",\"agent\":\"bob\",\"conversation\":\"c-2\","
    "\"waited_ms\":200000,\"threshold_ms\":30000}";

static json_t *
load(const char *s)
{
	json_t	*j = json_loads(s, JSON_ALLOW_NUL, NULL);	/* as pushd reads alerts */

	assert_non_null(j);
	return j;
}

static void
route(struct config_route *r, int target, const char *url, const char *secret)
{
	memset(r, 0, sizeof(*r));
	r->name = (char *)"r";
	r->target = target;
	r->url = (char *)url;
	r->secret = (char *)secret;
	r->rate_n = 20;
	r->rate_ms = 60000;
}

static void
test_match(void **state)
{
	struct config_route	 r;
	char			*crit[] = { (char *)"critical" }, *types[] = {
				    (char *)"sla.breach", (char *)"rule.hit" };
	char			*cat[] = { (char *)"etiquette" }, *shop[] = { (char *)"s1" };
	json_t			*hit = load(hit_json), *sla = load(sla_json);

	(void)state;
	route(&r, CONFIG_TARGET_WEBHOOK, "https://x/", NULL);
	assert_true(pushmsg_match(&r, hit));		/* no match keys: all */
	r.match[CONFIG_MATCH_SEVERITY] = (struct config_list){ crit, 1 };
	assert_true(pushmsg_match(&r, hit));
	assert_false(pushmsg_match(&r, sla));
	r.match[CONFIG_MATCH_SEVERITY] = (struct config_list){ NULL, 0 };
	r.match[CONFIG_MATCH_TYPE] = (struct config_list){ types, 2 };
	assert_true(pushmsg_match(&r, hit));
	assert_true(pushmsg_match(&r, sla));
	/* a category of any hit, not only the strongest */
	r.match[CONFIG_MATCH_CATEGORY] = (struct config_list){ cat, 1 };
	assert_true(pushmsg_match(&r, hit));
	assert_false(pushmsg_match(&r, sla));
	/* every key given must match: an alert without a shop matches no shop */
	r.match[CONFIG_MATCH_CATEGORY] = (struct config_list){ NULL, 0 };
	r.match[CONFIG_MATCH_SHOP] = (struct config_list){ shop, 1 };
	assert_false(pushmsg_match(&r, hit));
	json_decref(hit);
	json_decref(sla);
}

static void
test_text(void **state)
{
	struct config_route	 r;
	struct pushmsg_opts	 o = { "https://cs.example.com/", 480, 0 };
	struct sbuf		 t;
	json_t			*a[2] = { load(hit_json), load(sla_json) };
	const char		*s;

	(void)state;
	route(&r, CONFIG_TARGET_SLACK, "https://x/", NULL);
	sbuf_init(&t);
	assert_int_equal(pushmsg_text(&t, &r, &o, a, 1), 0);
	s = sbuf_str(&t);
	assert_non_null(strstr(s, "【chatmon】严重 · 站外引流\n"));
	assert_non_null(strstr(s, "客服 alice"));
	assert_non_null(strstr(s, "已拦截"));
	assert_non_null(strstr(s, "请在平台内沟通"));
	assert_non_null(strstr(s, "时间 10:00:05\n"));	/* +08:00 */
	assert_non_null(strstr(s, "https://cs.example.com/?conv=c%201%26x&alert=a1\n"));
	assert_null(strstr(s, "薇信"));		/* no chat text by default */
	assert_int_equal(strcmp(s + t.len - strlen("\nid: a1"), "\nid: a1"), 0);

	sbuf_reset(&t);
	assert_int_equal(pushmsg_text(&t, &r, &o, a + 1, 1), 0);
	assert_non_null(strstr(sbuf_str(&t), "回复超时"));
	assert_non_null(strstr(sbuf_str(&t), "顾客已等待 3分20秒"));

	sbuf_reset(&t);
	r.tmpl = (char *)"{agent}:{severity_zh}:{waited}:{nope}";
	assert_int_equal(pushmsg_text(&t, &r, &o, a + 1, 1), 0);
	assert_string_equal(sbuf_str(&t), "bob:警告:3分20秒:{nope}\nid: s1");
	/* an unclosed brace stays as written, once */
	sbuf_reset(&t);
	r.tmpl = (char *)"告警 {agent";
	assert_int_equal(pushmsg_text(&t, &r, &o, a + 1, 1), 0);
	assert_string_equal(sbuf_str(&t), "告警 {agent\nid: s1");

	/* folded: how many, and every id on the last line */
	sbuf_reset(&t);
	assert_int_equal(pushmsg_text(&t, &r, &o, a, 2), 0);
	assert_non_null(strstr(sbuf_str(&t), "2 条告警"));
	assert_non_null(strstr(sbuf_str(&t), "严重 1 · 警告 1"));
	assert_int_equal(strcmp(sbuf_str(&t) + t.len - strlen("\nids: a1,s1"),
	    "\nids: a1,s1"), 0);
	sbuf_free(&t);
	json_decref(a[0]);
	json_decref(a[1]);
}

/*
 * A folded message of the most alerts a robot takes (50), with the
 * longest agent names defused at their widest ('[' is three bytes shown):
 * WeCom's markdown content stays within its 4096 bytes (found by review:
 * 5 235), and says how many it does not list.
 */
static void
test_fold_within_wecom(void **state)
{
	struct config_route	 r;
	struct pushmsg_opts	 o = { "https://cs.example.com/", 480, 1700000000000LL };
	struct pushmsg_req	 q;
	json_t			*a[50], *b;
	const char		*raws[50];
	char			 agent[201], doc[512];
	size_t			 i, len;

	(void)state;
	memset(agent, '[', 200);
	agent[200] = '\0';
	for (i = 0; i < 50; i++) {
		snprintf(doc, sizeof(doc), "{\"v\":2,\"id\":\"1796688657962-693b9508-68865746%02zu\","
		    "\"ts\":\"2026-12-07T00:10:57.962Z\",\"type\":\"rule.hit\",\"severity\":"
		    "\"critical\",\"agent\":\"%s\",\"conversation\":\"c\",\"category\":"
		    "\"offplatform\",\"rule\":\"offplatform.wechat_invite_long_name\","
		    "\"action\":\"block\"}", i, agent);
		a[i] = load(doc);
		raws[i] = NULL;
	}
	route(&r, CONFIG_TARGET_WECOM, "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k",
	    NULL);
	pushmsg_req_init(&q);
	assert_int_equal(pushmsg_build(&q, &r, &o, a, raws, 50), 0);
	b = load(sbuf_str(&q.body));
	len = strlen(json_string_value(json_object_get(json_object_get(b, "markdown"),
	    "content")));
	assert_true(len <= 4096);
	assert_non_null(strstr(json_string_value(json_object_get(json_object_get(b,
	    "markdown"), "content")), "条\n"));		/* "…另有 N 条" */
	json_decref(b);
	pushmsg_req_free(&q);
	for (i = 0; i < 50; i++)
		json_decref(a[i]);
}

/*
 * The conversation id is the chat side's to choose, and DingTalk and
 * WeCom read the text as markdown: no heading, no line and no link of its
 * own may come out of it, and the link still carries it whole.
 */
static void
test_text_defused(void **state)
{
	struct config_route	 r;
	struct pushmsg_opts	 o = { "https://cs.example.com/", 480, 0 };
	struct sbuf		 t;
	json_t			*a = load("{\"id\":\"a9\",\"type\":\"rule.hit\","
	    "\"severity\":\"critical\",\"agent\":\"alice\",\"conversation\":"
	    "\"c1\\n\\n### [check](https://phish.example/)<b>\\u0007`x`\"}");
	json_t			*b = load("{\"id\":\"a10\",\"type\":\"rule.hit\","
	    "\"conversation\":\"c1234567890123456789012345678901234567890"
	    "123456789012345678901234567890123456789012345678901234567890\"}");
	const char		*s;

	(void)state;
	route(&r, CONFIG_TARGET_DINGTALK, "https://x/", NULL);
	sbuf_init(&t);
	assert_int_equal(pushmsg_text(&t, &r, &o, &a, 1), 0);
	s = sbuf_str(&t);
	assert_non_null(strstr(s, "会话 c1\xef\xbf\xbd\xef\xbf\xbd### "
	    "［check］（https∶//phish․example/）＜b＞\xef\xbf\xbd｀x｀\n"));
	assert_null(strstr(s, "\n#"));
	assert_null(strstr(s, "]("));
	assert_non_null(strstr(s, "?conv=c1%0A%0A%23%23%23%20%5Bcheck%5D%28https"));
	/* in a template too */
	sbuf_reset(&t);
	r.tmpl = (char *)"{conversation}";
	assert_int_equal(pushmsg_text(&t, &r, &o, &a, 1), 0);
	assert_null(strstr(sbuf_str(&t), "]("));
	assert_null(strstr(sbuf_str(&t), "\n\n"));
	/* a long one is cut on a character, and says so */
	sbuf_reset(&t);
	assert_int_equal(pushmsg_text(&t, &r, &o, &b, 1), 0);
	assert_non_null(strstr(sbuf_str(&t), "c123456789012345678901234567890"
	    "1234567890123456789012345678901234567890123456789012345678901234"
	    "5…\nid: a10"));
	sbuf_free(&t);
	json_decref(a);
	json_decref(b);
}

/*
 * Bidi controls in what the chat side chose are control characters too
 * (found by review: a conversation id holding U+202E showed the rest of
 * the line backwards in the group), and so are the C1 controls: each
 * becomes U+FFFD, the characters next to them in their ranges do not.
 */
static void
test_text_bidi(void **state)
{
	struct config_route	 r;
	struct pushmsg_opts	 o = { NULL, 480, 0 };
	struct sbuf		 t;
	/* U+202E U+202A U+2066 U+2069 U+200E U+200F U+061C U+0085 U+009F, then U+202F U+2065 U+00A0 */
	json_t			*a = load("{\"id\":\"a11\",\"type\":\"rule.hit\","
	    "\"agent\":\"al\\u202aice\",\"conversation\":\"c-\\u202egnp.exe"
	    "\\u2066x\\u2069\\u200e\\u200f\\u061c\\u0085\\u009fy\\u202f\\u2065\\u00a0z\"}");
	const char		*s;

	(void)state;
	route(&r, CONFIG_TARGET_DINGTALK, "https://x/", NULL);
	sbuf_init(&t);
	assert_int_equal(pushmsg_text(&t, &r, &o, &a, 1), 0);
	s = sbuf_str(&t);
	assert_non_null(strstr(s, "客服 al\xef\xbf\xbdice"));
	assert_non_null(strstr(s, "会话 c-\xef\xbf\xbdgnp․exe\xef\xbf\xbdx"
	    "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"
	    "\xef\xbf\xbdy\xe2\x80\xaf\xe2\x81\xa5\xc2\xa0z\n"));
	assert_null(strstr(s, "\xe2\x80\xae"));
	assert_null(strstr(s, "\xc2\x85"));
	sbuf_free(&t);
	json_decref(a);
}

/*
 * The daily summary names the slowest agent and the longest wait's agent
 * and conversation, all the chat side's: the same defusing as an alert
 * (found by review: they went into the DingTalk markdown as they came).
 */
static void
test_daily_defused(void **state)
{
	struct pushmsg_opts	 o = { NULL, 480, 0 };
	struct sbuf		 t;
	json_t			*rep = load("{\"v\":1,\"from\":\"2026-12-03\","
	    "\"team\":{\"rounds\":1},\"agents\":[{\"agent\":\"eve\\n# [a](https://x/)\","
	    "\"rounds\":1,\"mean_ms\":5000}],\"worst\":[{\"agent\":\"<b>bob</b>\","
	    "\"conversation\":\"tb-1\\n\\n### [点此登录](https://evil.example/login) "
	    "<font color=red>x</font>\",\"waited_ms\":5000}]}");
	const char		*s;

	(void)state;
	sbuf_init(&t);
	assert_int_equal(pushmsg_daily_text(&t, &o, rep), 0);
	s = sbuf_str(&t);
	assert_non_null(strstr(s, "平均响应最慢 eve\xef\xbf\xbd# ［a］（https∶//x/） 5秒\n"));
	assert_non_null(strstr(s, "最长等待 5秒 · 客服 ＜b＞bob＜/b＞ · 会话 tb-1"
	    "\xef\xbf\xbd\xef\xbf\xbd### ［点此登录］（https∶//evil․example/login） "
	    "＜font color=red＞x＜/font＞\n"));
	assert_null(strstr(s, "\n#"));
	assert_null(strstr(s, "]("));
	assert_null(strstr(s, "<"));
	sbuf_free(&t);
	json_decref(rep);
}

/*
 * Found by review: a bare URL as the conversation id reached the group
 * as a link (Slack and the robots' markdown make one of it), and U+2028
 * and U+2029 passed raw.
 */
static void
test_text_url(void **state)
{
	struct config_route	 r;
	struct pushmsg_opts	 o = { "https://cs.example.com/", 480, 0 };
	struct sbuf		 t;
	json_t			*a = load("{\"id\":\"a1\",\"type\":\"rule.hit\","
	    "\"agent\":\"al\u2028ice\",\"conversation\":"
	    "\"https://phish.example/复核登录\u2029x\"}");
	const char		*s;

	(void)state;
	route(&r, CONFIG_TARGET_SLACK, "https://x/", NULL);
	sbuf_init(&t);
	assert_int_equal(pushmsg_text(&t, &r, &o, &a, 1), 0);
	s = sbuf_str(&t);
	assert_non_null(strstr(s, "客服 al\xef\xbf\xbdice · 会话 "
	    "https∶//phish․example/复核登录\xef\xbf\xbdx\n"));
	assert_null(strstr(s, "https://phish"));
	assert_null(strstr(s, "\xe2\x80\xa8"));
	assert_null(strstr(s, "\xe2\x80\xa9"));
	sbuf_reset(&t);
	r.tmpl = (char *)"{agent} {conversation}";
	assert_int_equal(pushmsg_text(&t, &r, &o, &a, 1), 0);
	assert_null(strstr(sbuf_str(&t), "https://phish"));
	json_decref(a);
	/* a bare domain (Slack links it too); a dot before a digit stays */
	a = load("{\"id\":\"a1\",\"type\":\"rule.hit\",\"agent\":\"bob.li\","
	    "\"conversation\":\"phish.example.com/复核 v1.2.\"}");
	sbuf_reset(&t);
	assert_int_equal(pushmsg_text(&t, &r, &o, &a, 1), 0);
	assert_string_equal(sbuf_str(&t), "bob․li phish․example․com/复核 v1.2.\nid: a1");
	sbuf_free(&t);
	json_decref(a);
}

/* Found by review: cut at U+0000, "c-1\u0000-evil" was shown as, and linked to, "c-1". */
static void
test_text_nul(void **state)
{
	struct config_route	 r;
	struct pushmsg_opts	 o = { "https://cs.example.com/", 480, 0 };
	struct sbuf		 t;
	json_t			*b = load("{\"id\":\"a2\",\"type\":\"rule.hit\","
	    "\"agent\":\"bob\\u0000x\",\"conversation\":\"c-1\\u0000-evil\"}");
	const char		*s;

	(void)state;
	route(&r, CONFIG_TARGET_DINGTALK, "https://x/", NULL);
	sbuf_init(&t);
	assert_int_equal(pushmsg_text(&t, &r, &o, &b, 1), 0);
	s = sbuf_str(&t);
	assert_non_null(strstr(s, "客服 bob\xef\xbf\xbdx · 会话 c-1\xef\xbf\xbd-evil\n"));
	assert_non_null(strstr(s, "?conv=c-1%00-evil&alert=a2\n"));
	sbuf_free(&t);
	json_decref(b);
}

static void
test_build(void **state)
{
	struct config_route	 r;
	struct pushmsg_opts	 o = { NULL, 480, 1700000000000LL };
	struct pushmsg_req	 q;
	const char		*raw = "{\"id\":\"a1\",\"type\":\"rule.hit\"}";
	json_t			*a[2] = { load(raw), load(sla_json) }, *b;
	const char		*raws[2] = { raw, sla_json };

	(void)state;
	/* webhook: the alert as the stream held it, signed over the body */
	route(&r, CONFIG_TARGET_WEBHOOK, "https://h.example/hook", "s3cret");
	pushmsg_req_init(&q);
	assert_int_equal(pushmsg_build(&q, &r, &o, a, raws, 1), 0);
	assert_string_equal(sbuf_str(&q.body), raw);
	assert_string_equal(q.sig, "X-Chatmon-Signature: sha256="
	    "85ba41e0cda4b22fc18a4a67de82eaaaf22aa394b89b08d25173fe919d7ccdf8");
	assert_string_equal(sbuf_str(&q.id), "X-Chatmon-Alert-Id: a1");
	pushmsg_req_free(&q);

	/* webhook, folded */
	pushmsg_req_init(&q);
	assert_int_equal(pushmsg_build(&q, &r, &o, a, raws, 2), 0);
	b = load(sbuf_str(&q.body));
	assert_string_equal(json_string_value(json_object_get(b, "type")), "notify.folded");
	assert_int_equal(json_integer_value(json_object_get(b, "count")), 2);
	assert_string_equal(json_string_value(json_array_get(json_object_get(b,
	    "folded"), 1)), "s1");
	assert_string_equal(json_string_value(json_object_get(b, "id")), "fold-a1");
	assert_string_equal(sbuf_str(&q.id), "X-Chatmon-Alert-Id: fold-a1");
	json_decref(b);
	pushmsg_req_free(&q);

	/* DingTalk: timestamp and sign in the URL */
	route(&r, CONFIG_TARGET_DINGTALK, "https://oapi.dingtalk.com/robot/send?access_token=T",
	    "SEC");
	pushmsg_req_init(&q);
	assert_int_equal(pushmsg_build(&q, &r, &o, a + 1, raws + 1, 1), 0);
	assert_string_equal(sbuf_str(&q.url), "https://oapi.dingtalk.com/robot/send?"
	    "access_token=T&timestamp=1700000000000&sign="
	    "r%2B2we0q01lkZqz38LA5IPNbHN81U1leRf3Au4PSQb6Q%3D");
	b = load(sbuf_str(&q.body));
	assert_string_equal(json_string_value(json_object_get(b, "msgtype")), "markdown");
	assert_non_null(strstr(json_string_value(json_object_get(json_object_get(b,
	    "markdown"), "text")), "\n\nid: s1"));
	json_decref(b);
	pushmsg_req_free(&q);

	/* Feishu: timestamp (seconds) and sign in the body */
	route(&r, CONFIG_TARGET_FEISHU, "https://open.feishu.cn/hook/x", "SEC");
	pushmsg_req_init(&q);
	assert_int_equal(pushmsg_build(&q, &r, &o, a + 1, raws + 1, 1), 0);
	b = load(sbuf_str(&q.body));
	assert_string_equal(json_string_value(json_object_get(b, "timestamp")), "1700000000");
	assert_string_equal(json_string_value(json_object_get(b, "sign")),
	    "yKzlnG5gJbbUvULgjP0QN/V99n1fNH31XG8Rrvl9pfk=");
	assert_string_equal(json_string_value(json_object_get(b, "msg_type")), "text");
	assert_string_equal(sbuf_str(&q.url), "https://open.feishu.cn/hook/x");
	json_decref(b);
	pushmsg_req_free(&q);

	/* WeCom and Slack: no signature */
	route(&r, CONFIG_TARGET_WECOM, "https://qyapi.weixin.qq.com/x?key=K", NULL);
	pushmsg_req_init(&q);
	assert_int_equal(pushmsg_build(&q, &r, &o, a + 1, raws + 1, 1), 0);
	assert_non_null(strstr(sbuf_str(&q.body), "\"msgtype\":\"markdown\""));
	assert_string_equal(q.sig, "");
	pushmsg_req_free(&q);
	route(&r, CONFIG_TARGET_SLACK, "https://hooks.slack.com/x", NULL);
	pushmsg_req_init(&q);
	assert_int_equal(pushmsg_build(&q, &r, &o, a + 1, raws + 1, 1), 0);
	assert_non_null(strstr(sbuf_str(&q.body), "{\"text\":\"【chatmon】"));
	pushmsg_req_free(&q);
	json_decref(a[0]);
	json_decref(a[1]);
}

static void
test_judge(void **state)
{
	int	lim;
	char	buf[PUSHMSG_WHY_MAX];

	(void)state;
#define J(t, st, body)	pushmsg_judge(t, st, body, strlen(body), &lim, buf, sizeof(buf))
	assert_null(J(CONFIG_TARGET_DINGTALK, 200, "{\"errcode\":0,\"errmsg\":\"ok\"}"));
	assert_false(lim);
	assert_non_null(J(CONFIG_TARGET_DINGTALK, 200, "{\"errcode\":130101}"));
	assert_true(lim);
	assert_non_null(J(CONFIG_TARGET_DINGTALK, 200, "{\"errcode\":310000}"));
	assert_false(lim);
	/* a refusal says what the robot said, escaped and bounded (found by review) */
	assert_string_equal(J(CONFIG_TARGET_DINGTALK, 200,
	    "{\"errcode\":310000,\"errmsg\":\"sign not match\"}"), "the robot refused it: "
	    "code 310000 \"sign not match\" (check the URL, secret or keywords)");
	assert_string_equal(J(CONFIG_TARGET_FEISHU, 200,
	    "{\"code\":19021,\"msg\":\"a\\n\\\"b\\\\签\"}"), "the robot refused it: "
	    "code 19021 \"a\\x0a\\x22b\\x5c签\" (check the URL, secret or keywords)");
	assert_non_null(strstr(J(CONFIG_TARGET_WECOM, 200, "{\"errcode\":1,\"errmsg\":\""
	    "\\n\\n\\n\\n\\n\\n\\n\\n\\n\\n\\n\\n\\n\\n\\n\\n\\n\\n\\n\\n"
	    "\\n\\n\\n\\n\\n\\n\\n\\n\\n\\n\\n\\n\\n\\n\\n\\n\\n\\n\\n\\n"
	    "\\n\\n\\n\\n\\n\\n\\n\\n\\n\\n\\n\\n\\n\\n\\n\\n\\n\\n\\n\\n"
	    "\\n\\n\\n\\n\\n\\n\\n\\n\\n\\n\\n\\n\\n\\n\\n\\n\\n\\n\\n\\n"
	    "\\n\\n\\n\\n\\n\\n\\n\\n\\n\\n\\n\\n\\n\\n\\n\\n\\n\\n\\n\\n"
	    "xyz\"}"), "\\x0a…\" (check"));
	assert_true(strlen(buf) < sizeof(buf) - 1);
	assert_null(strchr(buf, '\n'));
	assert_non_null(strstr(J(CONFIG_TARGET_WEBHOOK, 302, ""), "3xx"));
	assert_non_null(J(CONFIG_TARGET_DINGTALK, 200, "<html>"));
	/* a 200 without the robot's code is not the robot's answer (a proxy's page) */
	assert_non_null(J(CONFIG_TARGET_DINGTALK, 200, "{}"));
	assert_non_null(J(CONFIG_TARGET_FEISHU, 200, "{\"msg\":\"ok\"}"));
	assert_non_null(J(CONFIG_TARGET_WECOM, 200, "{\"errcode\":45009}"));
	assert_true(lim);
	assert_null(J(CONFIG_TARGET_FEISHU, 200, "{\"code\":0,\"msg\":\"success\"}"));
	assert_null(J(CONFIG_TARGET_FEISHU, 200, "{\"StatusCode\":0}"));
	assert_non_null(J(CONFIG_TARGET_FEISHU, 200, "{\"code\":9499}"));
	assert_true(lim);
	assert_null(J(CONFIG_TARGET_SLACK, 200, "ok"));
	assert_null(J(CONFIG_TARGET_WEBHOOK, 204, ""));
	assert_non_null(J(CONFIG_TARGET_WEBHOOK, 500, ""));
	assert_false(lim);
	assert_non_null(J(CONFIG_TARGET_WEBHOOK, 429, ""));
	assert_true(lim);
	assert_non_null(J(CONFIG_TARGET_WEBHOOK, 401, ""));
#undef J
}

static void
test_retry(void **state)
{
	uint64_t	d;
	unsigned	i;

	(void)state;
	assert_int_equal(pushmsg_retry_after(" 5", 0), 5000);
	assert_int_equal(pushmsg_retry_after("99999", 0), 3600000);
	assert_int_equal(pushmsg_retry_after("99999999999999999999", 0), 3600000);
	assert_int_equal(pushmsg_retry_after(NULL, 0), -1);
	assert_int_equal(pushmsg_retry_after("soon", 0), -1);
	/* Tue, 14 Nov 2023 22:13:30 GMT is 1700000010 */
	assert_int_equal(pushmsg_retry_after("Tue, 14 Nov 2023 22:13:30 GMT",
	    1700000000000LL), 10000);
	for (i = 1; i < 20; i++) {
		d = pushmsg_backoff(1000, i, 0);
		assert_true(d >= 750);
		assert_true(pushmsg_backoff(1000, i, UINT32_MAX) <= 375000);
	}
	/*
	 * Told it sends too much: Retry-After (at least a second), else the
	 * configured pause, else the vendor's (DingTalk throttles 10 minutes)
	 */
	assert_int_equal(pushmsg_limited_pause(CONFIG_TARGET_DINGTALK, NULL, 0, 0), 600000);
	assert_int_equal(pushmsg_limited_pause(CONFIG_TARGET_WECOM, NULL, 0, 0), 60000);
	assert_int_equal(pushmsg_limited_pause(CONFIG_TARGET_FEISHU, NULL, 0, 0), 60000);
	assert_int_equal(pushmsg_limited_pause(CONFIG_TARGET_WEBHOOK, NULL, 0, 0), 60000);
	assert_int_equal(pushmsg_limited_pause(CONFIG_TARGET_DINGTALK, NULL, 0, 2000), 2000);
	assert_int_equal(pushmsg_limited_pause(CONFIG_TARGET_SLACK, "7", 0, 2000), 7000);
	assert_int_equal(pushmsg_limited_pause(CONFIG_TARGET_SLACK, "0", 0, 0), 1000);
	assert_int_equal(pushmsg_limited_pause(CONFIG_TARGET_WEBHOOK, "soon", 0, 0), 60000);
	assert_int_equal(pushmsg_backoff(1000, 1, 0), 750);
	assert_int_equal(pushmsg_backoff(1000, 3, 0), 3000);
	assert_int_equal(pushmsg_backoff(1000, 30, 0), 225000);
}

static void
test_daily(void **state)
{
	struct config_route	 r;
	struct pushmsg_opts	 o = { "https://cs.example.com/", 480, 1700000000000LL };
	struct pushmsg_req	 q;
	struct sbuf		 t;
	json_t			*rep = load("{\"v\":1,\"from\":\"2026-12-03\",\"to\":\"2026-12-03\","
				    "\"team\":{\"rounds\":3,\"answered\":3,\"mean_ms\":71000,"
				    "\"p90_ms\":200000,\"rate\":0.6667,\"rate_30s\":0.5,"
				    "\"breaches\":1,\"escalations\":0,\"alerts\":2,\"blocks\":1,"
				    "\"false_positives\":0},\"agents\":[{\"agent\":\"alice\","
				    "\"rounds\":2,\"mean_ms\":101500},{\"agent\":\"bob\",\"rounds\":1,"
				    "\"mean_ms\":10000}],\"worst\":[{\"agent\":\"alice\","
				    "\"conversation\":\"c-2\",\"waited_ms\":200000}]}"), *b;

	(void)state;
	sbuf_init(&t);
	assert_int_equal(pushmsg_daily_text(&t, &o, rep), 0);
	assert_string_equal(sbuf_str(&t),
	    "【chatmon】日报 2026-12-03\n"
	    "接待 3 轮 · 已回复 3 · 平均响应 1分11秒 · P90 3分20秒\n"
	    "3分钟回复率 66.7% · 30秒回复率 50.0%\n"
	    "超时 1 次 · 升级 0 次 · 违规 2 条(拦截 1) · 误报 0\n"
	    "平均响应最慢 alice 1分42秒\n"
	    "最长等待 3分20秒 · 客服 alice · 会话 c-2\n"
	    "查看 https://cs.example.com/?day=2026-12-03\n"
	    "id: daily-2026-12-03");
	sbuf_free(&t);
	route(&r, CONFIG_TARGET_WEBHOOK, "https://h.example/hook", NULL);
	pushmsg_req_init(&q);
	assert_int_equal(pushmsg_build_daily(&q, &r, &o, rep), 0);
	b = load(sbuf_str(&q.body));
	assert_string_equal(json_string_value(json_object_get(b, "type")), "report.daily");
	assert_string_equal(json_string_value(json_object_get(b, "id")), "daily-2026-12-03");
	assert_int_equal(json_integer_value(json_object_get(json_object_get(b, "team"),
	    "rounds")), 3);
	assert_string_equal(sbuf_str(&q.id), "X-Chatmon-Alert-Id: daily-2026-12-03");
	json_decref(b);
	pushmsg_req_free(&q);
	json_decref(rep);
}

/*
 * Found by review: the rate's label said 3分钟 whatever sla.rate was (the
 * report carries it as sla.rate_ms), and a day without rounds showed
 * 平均响应 0秒 and 0.0% as if every buyer had gone unanswered.
 */
static void
test_daily_label_and_empty(void **state)
{
	struct pushmsg_opts	 o = { NULL, 480, 1700000000000LL };
	struct sbuf		 t;
	json_t			*rep;

	(void)state;
	sbuf_init(&t);
	rep = load("{\"from\":\"2026-12-03\",\"sla\":{\"cap_ms\":600000,"
	    "\"rate_ms\":60000},\"team\":{\"rounds\":2,\"answered\":2,"
	    "\"mean_ms\":5000,\"p90_ms\":9000,\"rate\":1,\"rate_30s\":0.5}}");
	assert_int_equal(pushmsg_daily_text(&t, &o, rep), 0);
	assert_non_null(strstr(sbuf_str(&t), "\n1分钟回复率 100.0% · 30秒回复率 50.0%\n"));
	json_decref(rep);
	sbuf_reset(&t);
	rep = load("{\"from\":\"2026-12-03\",\"sla\":{\"rate_ms\":30000},"
	    "\"team\":{\"rounds\":2,\"answered\":2,\"mean_ms\":5000,"
	    "\"p90_ms\":9000,\"rate\":0.5,\"rate_30s\":0.5}}");
	assert_int_equal(pushmsg_daily_text(&t, &o, rep), 0);
	assert_non_null(strstr(sbuf_str(&t), "\n30秒回复率 50.0%\n"));
	json_decref(rep);
	sbuf_reset(&t);
	rep = load("{\"from\":\"2026-12-03\",\"sla\":{\"rate_ms\":90000},"
	    "\"team\":{\"rounds\":0,\"answered\":0,\"mean_ms\":0,"
	    "\"p90_ms\":0,\"rate\":0,\"rate_30s\":0}}");
	assert_int_equal(pushmsg_daily_text(&t, &o, rep), 0);
	assert_non_null(strstr(sbuf_str(&t),
	    "接待 0 轮 · 已回复 0 · 平均响应 - · P90 -\n"
	    "90秒回复率 - · 30秒回复率 -\n"));
	json_decref(rep);
	sbuf_free(&t);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_match),
		cmocka_unit_test(test_text),
		cmocka_unit_test(test_text_defused),
		cmocka_unit_test(test_fold_within_wecom),
		cmocka_unit_test(test_text_bidi),
		cmocka_unit_test(test_daily_defused),
		cmocka_unit_test(test_text_url),
		cmocka_unit_test(test_text_nul),
		cmocka_unit_test(test_build),
		cmocka_unit_test(test_judge),
		cmocka_unit_test(test_retry),
		cmocka_unit_test(test_daily),
		cmocka_unit_test(test_daily_label_and_empty),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
