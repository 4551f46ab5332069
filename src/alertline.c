/* alertline: one alert as one readable line for a supervisor's terminal, shared by tail, scan and replay (pure). */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <utf8proc.h>

#include "chatmon/alertline.h"
#include "chatmon/util.h"

/*
 * One formatter for the three commands a supervisor reads at a terminal,
 * so that a hit looks the same live (tail), in an audit of a day (replay)
 * and in a check of exported lines (scan). It never reads the clock nor
 * the environment: "now", the time zone and the colour are the caller's,
 * which keeps a replayed day's output the same whenever it is run.
 */

#define AL_TEXT_MAX	160	/* code points of chat text shown on a line */
#define AL_TEXT_BEFORE	40	/* ... of which at most this many before the match */
#define AL_TIME_W	8	/* HH:MM:SS */
#define AL_DATE_TIME_W	14	/* MM-DD HH:MM:SS */

#define AL_SGR_RESET	"\033[0m"
#define AL_SGR_DIM	"\033[2m"
#define AL_SGR_INFO	"\033[36m"
#define AL_SGR_WARN	"\033[33m"
#define AL_SGR_CRIT	"\033[1;31m"
#define AL_SGR_BLOCK	"\033[1;31m"
#define AL_SGR_MATCH	"\033[1;7m"
/* without colour, the match is set off by marks rare in Chinese chat ([微笑] and 【】 are not) */
#define AL_MARK_OPEN	"\xc2\xbb"	/* » */
#define AL_MARK_CLOSE	"\xc2\xab"	/* « */
#define AL_ELLIPSIS	"\xe2\x80\xa6"	/* … */

/*
 * The dashboard's names (web/dashboard/dashboard.js, "cat.*" in both of
 * its languages), so that a supervisor meets one name for one thing
 * wherever it is shown. Sorted by id only for the reader; a category not
 * here is shown as its id.
 */
static const struct {
	const char	*id;
	const char	*zh;
	const char	*en;
} alertline_categories[] = {
	{ "abuse",		"辱骂买家",		"Abusive language" },
	{ "ad_law",		"广告法违禁词",		"Advertising law" },
	{ "complaint_risk",	"投诉风险",		"Complaint risk" },
	{ "etiquette",		"服务用语",		"Etiquette" },
	{ "extortion",		"差评勒索",		"Review extortion" },
	{ "invoice",		"拒开发票",		"Invoice refused" },
	{ "offplatform",	"站外引流",		"Off-platform contact" },
	{ "order_close",	"代关订单",		"Closing orders" },
	{ "payment",		"支付方式违规",		"Payment method" },
	{ "privacy",		"泄露隐私",		"Privacy leak" },
	{ "returns",		"拒绝七天无理由",	"7-day returns denied" },
	{ "review_bait",	"好评返现",		"Paid reviews" },
	{ "stock",		"声称无货",		"Out-of-stock claim" },
};

/* One line being written: an allocation failure is remembered, not checked at every append. */
struct al {
	struct sbuf			*sb;
	const struct alertline_opts	*o;
	int				 err;
};

static void
al_put(struct al *l, const char *s, size_t len)
{
	if (sbuf_append(l->sb, s, len) == -1)
		l->err = 1;
}

static void
al_puts(struct al *l, const char *s)
{
	al_put(l, s, strlen(s));
}

static void UTIL_PRINTF(2, 3)
al_printf(struct al *l, const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	if (sbuf_vprintf(l->sb, fmt, ap) == -1)
		l->err = 1;
	va_end(ap);
}

static void
al_sgr(struct al *l, const char *sgr)
{
	if (l->o != NULL && l->o->colour)
		al_puts(l, sgr);
}

static int
al_done(struct al *l)
{
	return l->err ? -1 : 0;
}

static const char *
al_jstr(json_t *o, const char *key)
{
	json_t	*v = json_object_get(o, key);

	return json_is_string(v) ? json_string_value(v) : NULL;
}

/* --- text ------------------------------------------------------------------ */

/* One code point of valid UTF-8 (jansson checked it) at s; its length, at least 1. */
static size_t
al_u8(const unsigned char *s, size_t len, uint32_t *cp)
{
	size_t	n, i;

	if (s[0] < 0x80) {
		*cp = s[0];
		return 1;
	}
	n = s[0] >= 0xf0 ? 4 : s[0] >= 0xe0 ? 3 : s[0] >= 0xc0 ? 2 : 1;
	if (n == 1 || n > len) {
		*cp = 0xfffd;
		return 1;
	}
	*cp = s[0] & (0x7f >> n);
	for (i = 1; i < n; i++)
		*cp = (*cp << 6) | (s[i] & 0x3f);
	return n;
}

/*
 * Untrusted text (a customer typed it) that stays on one line and cannot
 * drive the supervisor's terminal: C0 and C1 controls, DEL and the bidi
 * overrides that would reorder what is shown are escaped.
 */
static void
al_text(struct al *l, const char *s, size_t len)
{
	const unsigned char	*p = (const unsigned char *)s;
	size_t			 i = 0, n;
	uint32_t		 cp;

	while (i < len) {
		n = al_u8(p + i, len - i, &cp);
		if (cp == '\n')
			al_put(l, "\\n", 2);
		else if (cp == '\r')
			al_put(l, "\\r", 2);
		else if (cp == '\t')
			al_put(l, "\\t", 2);
		else if (cp < 0x20 || cp == 0x7f)
			al_printf(l, "\\x%02" PRIx32, cp);
		else if ((cp >= 0x80 && cp < 0xa0) || (cp >= 0x202a && cp <= 0x202e) ||
		    (cp >= 0x2066 && cp <= 0x2069) || cp == 0xfffd)
			al_printf(l, "\\u%04" PRIx32, cp);
		else
			al_put(l, s + i, n);
		i += n;
	}
}

static void
al_str(struct al *l, const char *s)
{
	if (s == NULL || *s == '\0')
		s = "-";
	al_text(l, s, strlen(s));
}

/* s escaped, then spaces to width columns. */
static void
al_pad(struct al *l, const char *s, unsigned width)
{
	size_t	start = l->sb->len, w;

	al_str(l, s);
	if (l->err)
		return;
	w = alertline_width(l->sb->s + start, l->sb->len - start);
	if (w < width)
		al_printf(l, "%*s", (int)(width - w), "");
}

/* The byte offset of code point cp in s, or len when s is shorter. */
static size_t
al_cp_off(const char *s, size_t len, size_t cp)
{
	size_t		i = 0;
	uint32_t	c;

	while (cp-- > 0 && i < len)
		i += al_u8((const unsigned char *)s + i, len - i, &c);
	return i;
}

/*
 * The chat text with the match set off. A long message is cut to a window
 * around the match: the line is for reading, the JSON has it whole.
 */
static void
al_chat(struct al *l, json_t *a)
{
	json_t		*jt = json_object_get(a, "text");
	json_t		*jm = json_object_get(a, "match");
	const char	*s, *m;
	size_t		 len, total, ws, we, ms = 0, me = 0, b0, b1, b2, b3;
	json_int_t	 js, je;
	char		*hit;

	if (!json_is_string(jt))
		return;
	s = json_string_value(jt);
	len = json_string_length(jt);
	total = util_utf8_count(s, len);
	if (json_is_object(jm) &&
	    json_is_integer(json_object_get(jm, "start")) &&
	    json_is_integer(json_object_get(jm, "end"))) {
		js = json_integer_value(json_object_get(jm, "start"));
		je = json_integer_value(json_object_get(jm, "end"));
		if (js >= 0 && js <= je && (uint64_t)je <= total) {
			ms = (size_t)js;
			me = (size_t)je;
		}
	} else if (json_is_string(json_object_get(a, "matched")) &&
	    *(m = json_string_value(json_object_get(a, "matched"))) != '\0' &&
	    (hit = strstr(s, m)) != NULL) {
		/* no offsets (an older or foreign producer): the first occurrence */
		ms = util_utf8_count(s, (size_t)(hit - s));
		me = ms + util_utf8_count(m, strlen(m));
	}
	ws = 0;
	we = total;
	if (total > AL_TEXT_MAX) {
		ws = ms > AL_TEXT_BEFORE ? ms - AL_TEXT_BEFORE : 0;
		we = ws + AL_TEXT_MAX < total ? ws + AL_TEXT_MAX : total;
	}
	if (ms < ws)
		ms = ws;
	if (me > we)
		me = we;
	if (me < ms)
		me = ms;
	b0 = al_cp_off(s, len, ws);
	b1 = al_cp_off(s, len, ms);
	b2 = al_cp_off(s, len, me);
	b3 = al_cp_off(s, len, we);
	if (ws > 0)
		al_puts(l, AL_ELLIPSIS);
	al_text(l, s + b0, b1 - b0);
	if (b2 > b1) {
		if (l->o->colour)
			al_sgr(l, AL_SGR_MATCH);
		else
			al_puts(l, AL_MARK_OPEN);
		al_text(l, s + b1, b2 - b1);
		if (l->o->colour)
			al_sgr(l, AL_SGR_RESET);
		else
			al_puts(l, AL_MARK_CLOSE);
	}
	al_text(l, s + b2, b3 - b2);
	if (we < total)
		al_puts(l, AL_ELLIPSIS);
}

/* --- fields ------------------------------------------------------------------ */

static void
al_ms(struct al *l, uint64_t ms)
{
	if (ms < 1000)
		al_printf(l, "%" PRIu64 "ms", ms);
	else if (ms < 60000 && ms % 1000 / 100 == 0)
		al_printf(l, "%" PRIu64 "s", ms / 1000);
	else if (ms < 60000)
		al_printf(l, "%" PRIu64 ".%" PRIu64 "s", ms / 1000, ms % 1000 / 100);
	else if (ms < 3600000 && ms % 60000 / 1000 == 0)
		al_printf(l, "%" PRIu64 "m", ms / 60000);
	else if (ms < 3600000)
		al_printf(l, "%" PRIu64 "m%02" PRIu64 "s", ms / 60000,
		    ms % 60000 / 1000);
	else if (ms % 3600000 / 60000 == 0)
		al_printf(l, "%" PRIu64 "h", ms / 3600000);
	else
		al_printf(l, "%" PRIu64 "h%02" PRIu64 "m", ms / 3600000,
		    ms % 3600000 / 60000);
}

/*
 * "ts" (UTC, as alerts carry it) in the configured zone: a fixed offset,
 * as sla.timezone is, so no tz database and no TZ are involved and the
 * supervisor sees the shop's hours whatever the machine's zone.
 */
static void
al_time(struct al *l, const char *ts)
{
	const struct alertline_opts	*o = l->o;
	struct tm			 tm, now_tm;
	time_t				 when, now;
	char				 buf[32];
	int				 ok;

	memset(&tm, 0, sizeof(tm));
	ok = ts != NULL && sscanf(ts, "%4d-%2d-%2dT%2d:%2d:%2d", &tm.tm_year,
	    &tm.tm_mon, &tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec) == 6;
	if (ok) {
		tm.tm_year -= 1900;
		tm.tm_mon -= 1;
		when = timegm(&tm) + (time_t)o->utc_offset_min * 60;
		ok = gmtime_r(&when, &tm) != NULL;
	}
	if (ok && o->now_ms >= 0) {
		now = (time_t)(o->now_ms / 1000) + (time_t)o->utc_offset_min * 60;
		ok = gmtime_r(&now, &now_tm) != NULL;
	}
	if (!ok) {
		al_printf(l, "%-*s", o->now_ms < 0 ? AL_DATE_TIME_W : AL_TIME_W,
		    "--:--:--");
		return;
	}
	if (o->now_ms < 0 || tm.tm_year != now_tm.tm_year ||
	    tm.tm_yday != now_tm.tm_yday)
		strftime(buf, sizeof(buf), "%m-%d %H:%M:%S", &tm);
	else
		strftime(buf, sizeof(buf), "%H:%M:%S", &tm);
	al_sgr(l, AL_SGR_DIM);
	al_puts(l, buf);
	al_sgr(l, AL_SGR_RESET);
}

int
alertline_rank(const char *s)
{
	static const char *const names[] = { "info", "warn", "critical" };
	size_t	i;

	for (i = 0; s != NULL && i < UTIL_NELEM(names); i++)
		if (strcmp(s, names[i]) == 0)
			return (int)i;
	return -1;
}

static void
al_severity(struct al *l, const char *sev)
{
	static const char *const sgr[] = { AL_SGR_INFO, AL_SGR_WARN, AL_SGR_CRIT };
	int	rank = alertline_rank(sev);
	size_t	n = sev != NULL && *sev != '\0' ? strlen(sev) : 1;

	if (rank >= 0)
		al_sgr(l, sgr[rank]);
	al_str(l, sev);
	if (rank >= 0)
		al_sgr(l, AL_SGR_RESET);
	if (n < ALERTLINE_SEVERITY_W)
		al_printf(l, "%*s", (int)(ALERTLINE_SEVERITY_W - n), "");
}

/* The category and rule: 站外引流 offplatform.add_contact_app, or as the ids say. */
static void
al_rule(struct al *l, const char *cat, const char *rule)
{
	const char	*name = alertline_category_name(cat, l->o->lang);

	if (name != NULL) {
		al_puts(l, name);
		al_put(l, " ", 1);
	} else if (cat != NULL && (rule == NULL || strncmp(rule, cat,
	    strlen(cat)) != 0 || rule[strlen(cat)] != '.')) {
		/* rule ids usually start with their category: say it once */
		al_str(l, cat);
		al_put(l, "/", 1);
	}
	al_str(l, rule);
}

static void
al_action(struct al *l, const char *action)
{
	if (action != NULL && strcmp(action, "block") == 0) {
		al_sgr(l, AL_SGR_BLOCK);
		al_puts(l, "BLOCKED");
		al_sgr(l, AL_SGR_RESET);
	} else if (action != NULL && strcmp(action, "warn") == 0)
		al_puts(l, "warned");
	else if (action != NULL && strcmp(action, "flag") == 0)
		al_puts(l, "flagged");
	else
		al_str(l, action);
}

/*
 * The other rules the turn broke (v2's "hits" after the first, which is
 * the alert's own): " + 服务用语 etiquette.test_unsure flagged" each, so
 * that one line says everything the one alert is about.
 */
static void
al_more_hits(struct al *l, json_t *a)
{
	json_t	*hits = json_object_get(a, "hits"), *h;
	size_t	 i;

	if (!json_is_array(hits))
		return;
	for (i = 1; i < json_array_size(hits); i++) {
		if (!json_is_object(h = json_array_get(hits, i)))
			continue;
		al_puts(l, " + ");
		al_rule(l, al_jstr(h, "category"), al_jstr(h, "rule"));
		al_put(l, " ", 1);
		al_action(l, al_jstr(h, "action"));
	}
}

static void
al_what(struct al *l, json_t *a)
{
	const char	*type = al_jstr(a, "type"), *msg;
	json_t		*v;

	if (type != NULL && strcmp(type, "rule.hit") == 0) {
		al_rule(l, al_jstr(a, "category"), al_jstr(a, "rule"));
		al_put(l, " ", 1);
		al_action(l, al_jstr(a, "action"));
		al_put(l, " ", 1);
		al_str(l, al_jstr(a, "role"));
		al_put(l, ": ", 2);
		al_chat(l, a);
		al_more_hits(l, a);
	} else if (type != NULL && strncmp(type, "sla.", 4) == 0) {
		al_puts(l, "SLA ");
		al_str(l, type + 4);
		al_put(l, ":", 1);
		/* a negative duration is not one chatmond writes: left out */
		if (json_is_integer(v = json_object_get(a, "waited_ms")) &&
		    json_integer_value(v) >= 0) {
			al_puts(l, " waited ");
			al_ms(l, (uint64_t)json_integer_value(v));
		}
		if (json_is_integer(v = json_object_get(a, "threshold_ms")) &&
		    json_integer_value(v) >= 0) {
			al_puts(l, " (threshold ");
			al_ms(l, (uint64_t)json_integer_value(v));
			al_put(l, ")", 1);
		}
		if (json_is_boolean(v = json_object_get(a, "first")))
			al_printf(l, ", %s", json_is_true(v) ? "first response" : "reply");
	} else {
		/* a type this version does not know: say what it can */
		al_str(l, type);
		if ((msg = al_jstr(a, "message")) != NULL) {
			al_put(l, ": ", 2);
			al_str(l, msg);
		}
	}
	if (json_is_integer(v = json_object_get(a, "count")))
		al_printf(l, " \xc3\x97%" JSON_INTEGER_FORMAT,	/* × */
		    json_integer_value(v));
}

/* --- the API ------------------------------------------------------------------ */

int
alertline_format(struct sbuf *sb, const struct alertline_opts *o, json_t *a)
{
	struct al	l = { sb, o, 0 };
	const char	*shop, *queue;

	al_time(&l, al_jstr(a, "ts"));
	al_put(&l, " ", 1);
	al_severity(&l, al_jstr(a, "severity"));
	al_put(&l, " ", 1);
	al_pad(&l, al_jstr(a, "agent"), o->agent_w);
	al_put(&l, " ", 1);
	al_pad(&l, al_jstr(a, "conversation"), o->conv_w);
	al_put(&l, " ", 1);
	/* a shop's alert says whose, ahead of what: one team serves many shops */
	if ((shop = al_jstr(a, "shop")) != NULL) {
		al_put(&l, "[", 1);
		al_str(&l, shop);
		if ((queue = al_jstr(a, "queue")) != NULL) {
			al_put(&l, "/", 1);
			al_str(&l, queue);
		}
		al_put(&l, "] ", 2);
	}
	al_what(&l, a);
	return al_done(&l);
}

int
alertline_header(struct sbuf *sb, const struct alertline_opts *o)
{
	struct al	l = { sb, o, 0 };

	al_printf(&l, "%-*s %-*s ", o->now_ms < 0 ? AL_DATE_TIME_W : AL_TIME_W,
	    "TIME", ALERTLINE_SEVERITY_W, "SEVERITY");
	al_pad(&l, "AGENT", o->agent_w);
	al_put(&l, " ", 1);
	al_pad(&l, "CONVERSATION", o->conv_w);
	al_puts(&l, " WHAT");
	return al_done(&l);
}

int
alertline_what(struct sbuf *sb, const struct alertline_opts *o, json_t *a)
{
	struct al	l = { sb, o, 0 };

	al_what(&l, a);
	return al_done(&l);
}

int
alertline_severity(struct sbuf *sb, const struct alertline_opts *o,
    const char *severity)
{
	struct al	l = { sb, o, 0 };

	al_severity(&l, severity);
	return al_done(&l);
}

int
alertline_ms(struct sbuf *sb, uint64_t ms)
{
	struct al	l = { sb, NULL, 0 };

	al_ms(&l, ms);
	return al_done(&l);
}

int
alertline_text(struct sbuf *sb, const char *s, size_t len)
{
	struct al	l = { sb, NULL, 0 };

	al_text(&l, s, len);
	return al_done(&l);
}

int
alertline_pad(struct sbuf *sb, const char *s, unsigned width)
{
	struct al	l = { sb, NULL, 0 };

	al_pad(&l, s, width);
	return al_done(&l);
}

const char *
alertline_category(const char *category)
{
	return alertline_category_name(category, ALERTLINE_ZH);
}

const char *
alertline_category_name(const char *category, enum alertline_lang lang)
{
	size_t	i;

	if (lang == ALERTLINE_IDS)
		return NULL;
	for (i = 0; category != NULL && i < UTIL_NELEM(alertline_categories); i++)
		if (strcmp(category, alertline_categories[i].id) == 0)
			return lang == ALERTLINE_EN ? alertline_categories[i].en :
			    alertline_categories[i].zh;
	return NULL;
}

size_t
alertline_width(const char *s, size_t len)
{
	const utf8proc_uint8_t	*p = (const utf8proc_uint8_t *)s;
	utf8proc_int32_t	 cp;
	utf8proc_ssize_t	 n;
	size_t			 i = 0, w = 0;
	int			 cw;

	while (i < len) {
		n = utf8proc_iterate(p + i, (utf8proc_ssize_t)(len - i), &cp);
		if (n <= 0) {
			w++;		/* not UTF-8: a terminal shows one replacement */
			i++;
			continue;
		}
		if ((cw = utf8proc_charwidth(cp)) > 0)
			w += (size_t)cw;
		i += (size_t)n;
	}
	return w;
}

int
alertline_want_colour(int is_tty, const char *no_color, const char *term)
{
	return is_tty && (no_color == NULL || *no_color == '\0') &&
	    !(term != NULL && strcmp(term, "dumb") == 0);
}
