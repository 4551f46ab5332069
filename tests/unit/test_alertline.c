/* test_alertline: the readable line of tail, scan and replay, from alert objects built here. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include <jansson.h>

#include "chatmon/alertline.h"

/* 2025-03-04T12:00:00Z: "today" for the tests that want one */
#define NOON_UTC	1741089600000LL

/* The line of the JSON alert under o; the caller frees the sbuf. */
static const char *
line(struct sbuf *sb, const struct alertline_opts *o, const char *json)
{
	json_error_t	 e;
	json_t		*a;

	a = json_loads(json, JSON_ALLOW_NUL, &e);
	assert_non_null(a);
	sbuf_reset(sb);
	assert_int_equal(alertline_format(sb, o, a), 0);
	json_decref(a);
	return sbuf_str(sb);
}

static const char HIT[] = "{\"v\":1,\"id\":\"x\",\"ts\":\"2025-03-04T10:00:05.000Z\","
    "\"type\":\"rule.hit\",\"severity\":\"critical\",\"agent\":\"alice\","
    "\"conversation\":\"c-1\",\"role\":\"agent\",\"category\":\"offplatform\","
    "\"rule\":\"offplatform.add_contact_app\",\"action\":\"block\","
    "\"text\":\"加我薇信 abc123\",\"match\":{\"start\":0,\"end\":4},"
    "\"matched\":\"加我薇信\",\"count\":3}";

static void
test_rule_hit(void **state)
{
	struct alertline_opts	o = { .now_ms = -1 };
	struct sbuf		sb;

	(void)state;
	sbuf_init(&sb);
	/* ids only: the category is said once, as the rule id starts with it */
	assert_string_equal(line(&sb, &o, HIT), "03-04 10:00:05 critical alice c-1 "
	    "offplatform.add_contact_app BLOCKED agent: »加我薇信« abc123 ×3");
	/* a customer's warned hit whose rule id does not start with its category */
	assert_string_equal(line(&sb, &o, "{\"ts\":\"2025-03-04T10:00:06.250Z\","
	    "\"type\":\"rule.hit\",\"severity\":\"warn\",\"agent\":\"alice\","
	    "\"conversation\":\"c-1\",\"role\":\"customer\",\"category\":\"privacy\","
	    "\"rule\":\"ask_phone\",\"action\":\"warn\",\"text\":\"亲，加我vx abc\","
	    "\"match\":{\"start\":2,\"end\":5}}"),
	    "03-04 10:00:06 warn     alice c-1 privacy/ask_phone warned customer: "
	    "亲，»加我v«x abc");
	/* no offsets: the first occurrence of "matched" */
	assert_string_equal(line(&sb, &o, "{\"ts\":\"2025-03-04T10:00:06Z\","
	    "\"type\":\"rule.hit\",\"severity\":\"info\",\"agent\":\"a\","
	    "\"conversation\":\"c\",\"role\":\"agent\",\"rule\":\"r\",\"action\":\"flag\","
	    "\"text\":\"x 加v y 加v\",\"matched\":\"加v\"}"),
	    "03-04 10:00:06 info     a c r flagged agent: x »加v« y 加v");
	/* a shop's alert says whose, with its queue when it has one */
	assert_string_equal(line(&sb, &o, "{\"ts\":\"2025-03-04T10:00:07Z\","
	    "\"type\":\"sla.breach\",\"severity\":\"warn\",\"agent\":\"a\","
	    "\"conversation\":\"c\",\"shop\":\"tm\",\"queue\":\"pre\","
	    "\"waited_ms\":15000,\"threshold_ms\":15000,\"first\":true}"),
	    "03-04 10:00:07 warn     a c [tm/pre] SLA breach: waited 15s "
	    "(threshold 15s), first response");
	assert_string_equal(line(&sb, &o, "{\"ts\":\"2025-03-04T10:00:07Z\","
	    "\"type\":\"rule.hit\",\"severity\":\"info\",\"agent\":\"a\","
	    "\"conversation\":\"c\",\"shop\":\"jd\",\"role\":\"agent\","
	    "\"rule\":\"r\",\"action\":\"flag\",\"text\":\"x\"}"),
	    "03-04 10:00:07 info     a c [jd] r flagged agent: x");
	/* colour: SGR codes instead of marks */
	o.colour = 1;
	assert_string_equal(line(&sb, &o, HIT), "\033[2m03-04 10:00:05\033[0m "
	    "\033[1;31mcritical\033[0m alice c-1 offplatform.add_contact_app "
	    "\033[1;31mBLOCKED\033[0m agent: \033[1;7m加我薇信\033[0m abc123 ×3");
	sbuf_free(&sb);
}

/* A long text is cut to a window around the match. */
static void
test_long_text(void **state)
{
	struct alertline_opts	 o = { .now_ms = -1 };
	struct sbuf		 sb;
	json_t			*a;
	char			 text[4096];
	const char		*s;
	size_t			 i, n = 0;

	(void)state;
	for (i = 0; i < 300; i++)
		n += (size_t)snprintf(text + n, sizeof(text) - n, "好");
	n += (size_t)snprintf(text + n, sizeof(text) - n, "加我薇信");
	for (i = 0; i < 300; i++)
		n += (size_t)snprintf(text + n, sizeof(text) - n, "的");
	a = json_pack("{s:s, s:s, s:{s:i, s:i}}", "type", "rule.hit", "text", text,
	    "match", "start", 300, "end", 304);
	assert_non_null(a);
	sbuf_init(&sb);
	assert_int_equal(alertline_what(&sb, &o, a), 0);
	s = strstr(sbuf_str(&sb), ": ");
	assert_non_null(s);
	assert_memory_equal(s + 2, "…好", strlen("…好"));
	assert_non_null(strstr(s, "好»加我薇信«的"));
	assert_int_equal(strcmp(s + strlen(s) - strlen("的…"), "的…"), 0);
	json_decref(a);
	sbuf_free(&sb);
}

static void
test_sla(void **state)
{
	struct alertline_opts	o = { .now_ms = -1 };
	struct sbuf		sb;

	(void)state;
	sbuf_init(&sb);
	assert_string_equal(line(&sb, &o, "{\"ts\":\"2025-03-04T10:00:35.000Z\","
	    "\"type\":\"sla.breach\",\"severity\":\"warn\",\"agent\":\"bob\","
	    "\"conversation\":\"c-2\",\"waited_ms\":31200,\"threshold_ms\":30000,"
	    "\"first\":true}"),
	    "03-04 10:00:35 warn     bob c-2 SLA breach: waited 31.2s (threshold 30s), "
	    "first response");
	assert_string_equal(line(&sb, &o, "{\"ts\":\"2025-03-04T10:03:05.000Z\","
	    "\"type\":\"sla.escalate\",\"severity\":\"critical\",\"agent\":\"bob\","
	    "\"conversation\":\"c-2\",\"waited_ms\":185000,\"threshold_ms\":180000,"
	    "\"first\":false,\"count\":2}"),
	    "03-04 10:03:05 critical bob c-2 SLA escalate: waited 3m05s (threshold 3m), "
	    "reply ×2");
	/* every field missing but the type: placeholders, not a crash */
	assert_string_equal(line(&sb, &o, "{\"type\":\"sla.warn\"}"),
	    "--:--:--       -        - - SLA warn:");
	/* durations below zero (no chatmond writes them): left out, not 5 billion hours */
	assert_string_equal(line(&sb, &o, "{\"type\":\"sla.breach\",\"waited_ms\":-5,"
	    "\"threshold_ms\":-1}"),
	    "--:--:--       -        - - SLA breach:");
	sbuf_free(&sb);
}

static void
test_unknown_type(void **state)
{
	struct alertline_opts	o = { .now_ms = -1 };
	struct sbuf		sb;

	(void)state;
	sbuf_init(&sb);
	assert_string_equal(line(&sb, &o, "{\"ts\":\"2025-03-04T10:00:00Z\","
	    "\"type\":\"quota.exceeded\",\"severity\":\"notice\",\"agent\":\"a\","
	    "\"conversation\":\"c\",\"message\":\"too many\\nlines\"}"),
	    "03-04 10:00:00 notice   a c quota.exceeded: too many\\nlines");
	/* no type at all, a number where a string belongs */
	assert_string_equal(line(&sb, &o, "{\"ts\":7,\"agent\":42}"),
	    "--:--:--       -        - - -");
	sbuf_free(&sb);
}

/* What a customer typed cannot break the line nor drive the terminal. */
static void
test_escapes(void **state)
{
	struct alertline_opts	o = { .now_ms = -1 };
	struct sbuf		sb;
	const char		*s;

	(void)state;
	sbuf_init(&sb);
	s = line(&sb, &o, "{\"ts\":\"2025-03-04T10:00:05Z\",\"type\":\"rule.hit\","
	    "\"severity\":\"critical\",\"agent\":\"a\\u001bb\",\"conversation\":\"c\\td\","
	    "\"role\":\"agent\",\"rule\":\"r\",\"action\":\"block\","
	    "\"text\":\"加我\\n\\u001b]0;x\\u0007\\u001b[2J\\u202eabc\\u0085\\u0000z\\r\\u007f\","
	    "\"match\":{\"start\":0,\"end\":2}}");
	assert_null(strchr(s, '\033'));
	assert_null(strchr(s, '\a'));
	assert_null(strstr(s, "\xe2\x80\xae"));		/* U+202E */
	assert_string_equal(s, "03-04 10:00:05 critical a\\x1bb c\\td r BLOCKED agent: "
	    "»加我«\\n\\x1b]0;x\\x07\\x1b[2J\\u202eabc\\u0085\\x00z\\r\\x7f");
	sbuf_reset(&sb);
	assert_int_equal(alertline_text(&sb, "\xe2\x81\xa6x", 4), 0);	/* U+2066 */
	assert_string_equal(sbuf_str(&sb), "\\u2066x");
	sbuf_free(&sb);
}

/* Times are shown in UTC + the configured offset, with the date unless it is today there. */
static void
test_time_zone(void **state)
{
	struct alertline_opts	o = { .utc_offset_min = 8 * 60, .now_ms = -1 };
	struct sbuf		sb;
	const char		*sla = "{\"ts\":\"2025-03-04T20:30:00.000Z\",\"type\":\"sla.breach\"}";

	(void)state;
	sbuf_init(&sb);
	/* 20:30 UTC is 04:30 the next day at +08:00 */
	assert_memory_equal(line(&sb, &o, sla), "03-05 04:30:00 ", 15);
	o.utc_offset_min = 0;
	assert_memory_equal(line(&sb, &o, sla), "03-04 20:30:00 ", 15);
	o.utc_offset_min = -(5 * 60 + 30);
	assert_memory_equal(line(&sb, &o, sla), "03-04 15:00:00 ", 15);
	/* today, where the shop is: the time alone */
	o.utc_offset_min = 0;
	o.now_ms = NOON_UTC;
	assert_memory_equal(line(&sb, &o, sla), "20:30:00 ", 9);
	/* at +08:00, noon UTC is 20:00 on the 4th: 04:30 on the 5th is another day */
	o.utc_offset_min = 8 * 60;
	assert_memory_equal(line(&sb, &o, sla), "03-05 04:30:00 ", 15);
	/* and a day's history past midnight there is today there, yesterday in UTC */
	o.now_ms = NOON_UTC + 12 * 3600 * 1000LL;	/* 2025-03-05T00:00Z, 08:00 at +08:00 */
	assert_memory_equal(line(&sb, &o, sla), "04:30:00 ", 9);
	sbuf_free(&sb);
}

static void
test_categories(void **state)
{
	struct alertline_opts	o = { .lang = ALERTLINE_ZH, .now_ms = -1 };
	struct sbuf		sb;

	(void)state;
	sbuf_init(&sb);
	assert_string_equal(line(&sb, &o, HIT), "03-04 10:00:05 critical alice c-1 "
	    "站外引流 offplatform.add_contact_app BLOCKED agent: »加我薇信« abc123 ×3");
	assert_string_equal(alertline_category("privacy"), "泄露隐私");
	assert_string_equal(alertline_category("returns"), "拒绝七天无理由");
	assert_string_equal(alertline_category("extortion"), "差评勒索");
	/* unknown: as it is, said once */
	assert_null(alertline_category("gifts"));
	assert_null(alertline_category(NULL));
	assert_string_equal(line(&sb, &o, "{\"ts\":\"2025-03-04T10:00:05Z\","
	    "\"type\":\"rule.hit\",\"severity\":\"warn\",\"agent\":\"a\",\"conversation\":\"c\","
	    "\"role\":\"agent\",\"category\":\"gifts\",\"rule\":\"gifts.coupon\","
	    "\"action\":\"warn\",\"text\":\"t\"}"),
	    "03-04 10:00:05 warn     a c gifts.coupon warned agent: t");
	assert_string_equal(line(&sb, &o, "{\"ts\":\"2025-03-04T10:00:05Z\","
	    "\"type\":\"rule.hit\",\"severity\":\"warn\",\"agent\":\"a\",\"conversation\":\"c\","
	    "\"role\":\"agent\",\"category\":\"gifts\",\"rule\":\"coupon\","
	    "\"action\":\"warn\",\"text\":\"t\"}"),
	    "03-04 10:00:05 warn     a c gifts/coupon warned agent: t");
	sbuf_free(&sb);
}

/*
 * A v2 alert of a turn that broke two rules is one line: the strongest
 * rule's account, then the other; --lang en names them as the dashboard's
 * English page does, the rule ids stay.
 */
static void
test_two_hits_one_line(void **state)
{
	static const char two[] = "{\"v\":2,\"id\":\"x\",\"ts\":\"2025-03-04T10:00:05.000Z\","
	    "\"type\":\"rule.hit\",\"severity\":\"warn\",\"agent\":\"alice\",\"conversation\":"
	    "\"c-2\",\"role\":\"agent\",\"category\":\"stock\",\"rule\":\"stock.none\","
	    "\"action\":\"warn\",\"text\":\"我不知道,没货了\",\"match\":{\"start\":5,\"end\":7},"
	    "\"matched\":\"没货\",\"message\":\"m\",\"hits\":[{\"rule\":\"stock.none\","
	    "\"category\":\"stock\",\"severity\":\"warn\",\"action\":\"warn\",\"match\":"
	    "{\"start\":5,\"end\":7},\"matched\":\"没货\",\"message\":\"m\"},{\"rule\":"
	    "\"etiquette.unsure\",\"category\":\"etiquette\",\"severity\":\"info\","
	    "\"action\":\"flag\",\"match\":{\"start\":1,\"end\":4},\"matched\":\"不知道\","
	    "\"message\":\"\"}]}";
	struct alertline_opts	o = { .lang = ALERTLINE_ZH, .now_ms = -1 };
	struct sbuf		sb;

	(void)state;
	sbuf_init(&sb);
	assert_string_equal(line(&sb, &o, two), "03-04 10:00:05 warn     alice c-2 "
	    "声称无货 stock.none warned agent: 我不知道,»没货«了 + 服务用语 etiquette.unsure flagged");
	o.lang = ALERTLINE_EN;
	assert_string_equal(line(&sb, &o, two), "03-04 10:00:05 warn     alice c-2 "
	    "Out-of-stock claim stock.none warned agent: 我不知道,»没货«了 + Etiquette "
	    "etiquette.unsure flagged");
	o.lang = ALERTLINE_IDS;
	assert_string_equal(line(&sb, &o, two), "03-04 10:00:05 warn     alice c-2 "
	    "stock.none warned agent: 我不知道,»没货«了 + etiquette.unsure flagged");
	assert_string_equal(alertline_category_name("offplatform", ALERTLINE_EN),
	    "Off-platform contact");
	assert_null(alertline_category_name("offplatform", ALERTLINE_IDS));
	sbuf_free(&sb);
}

/* Columns: CJK counts two, padding follows it, the header matches the lines. */
static void
test_columns(void **state)
{
	struct alertline_opts	o = { .now_ms = -1, .agent_w = 6, .conv_w = 4 };
	struct sbuf		sb;

	(void)state;
	assert_int_equal(alertline_width("abc", 3), 3);
	assert_int_equal(alertline_width("小美", strlen("小美")), 4);
	assert_int_equal(alertline_width("»x«…", strlen("»x«…")), 4);
	sbuf_init(&sb);
	assert_string_equal(line(&sb, &o, "{\"ts\":\"2025-03-04T10:00:05Z\","
	    "\"type\":\"x\",\"severity\":\"info\",\"agent\":\"小美\",\"conversation\":\"c\"}"),
	    "03-04 10:00:05 info     小美   c    x");
	sbuf_reset(&sb);
	assert_int_equal(alertline_header(&sb, &o), 0);
	assert_string_equal(sbuf_str(&sb),
	    "TIME           SEVERITY AGENT  CONVERSATION WHAT");
	sbuf_reset(&sb);
	assert_int_equal(alertline_pad(&sb, NULL, 3), 0);
	assert_string_equal(sbuf_str(&sb), "-  ");
	sbuf_reset(&sb);
	assert_int_equal(alertline_severity(&sb, &o, "warn"), 0);
	assert_string_equal(sbuf_str(&sb), "warn    ");
	sbuf_reset(&sb);
	assert_int_equal(alertline_ms(&sb, 850), 0);
	assert_int_equal(alertline_ms(&sb, 3600000), 0);
	assert_int_equal(alertline_ms(&sb, 5400000), 0);
	assert_string_equal(sbuf_str(&sb), "850ms1h1h30m");
	sbuf_free(&sb);
}

static void
test_want_colour(void **state)
{
	(void)state;
	assert_true(alertline_want_colour(1, NULL, "xterm"));
	assert_true(alertline_want_colour(1, "", NULL));
	assert_false(alertline_want_colour(0, NULL, "xterm"));
	assert_false(alertline_want_colour(1, "1", "xterm"));
	assert_false(alertline_want_colour(1, NULL, "dumb"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rule_hit),
		cmocka_unit_test(test_long_text),
		cmocka_unit_test(test_sla),
		cmocka_unit_test(test_unknown_type),
		cmocka_unit_test(test_escapes),
		cmocka_unit_test(test_time_zone),
		cmocka_unit_test(test_categories),
		cmocka_unit_test(test_two_hits_one_line),
		cmocka_unit_test(test_columns),
		cmocka_unit_test(test_want_colour),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
