/* fuzz_alertline: an alert as read back from Redis (any JSON, any field of any type) through alertline's line for a supervisor's terminal. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "chatmon/alertline.h"
#include "chatmon/util.h"

#include "fuzz.h"

/*
 * The input is one stream entry's "alert" value, parsed as tail, replay
 * and the dashboard parse it (json_loadb with JSON_ALLOW_NUL: chat text
 * may hold U+0000). Alerts come from chatmond, but anything that can
 * write to the stream (or an older or foreign producer) writes them too,
 * and the chat text, agent and conversation in them were typed by
 * strangers. It is formatted under four sets of options (colour or marks,
 * the three languages, time zones, widths, a now or none), and the parts
 * are called alone on the alert's strings.
 *
 * What is checked (alertline.h): 0 returned; the line is valid UTF-8, one
 * line, and cannot drive the terminal: no C0 or C1 control, DEL or bidi
 * override or isolate, and no escape at all but the module's own SGR
 * sequences when colour is on; the same line twice; the line ends with
 * alertline_what's text; alertline_pad reaches its width exactly when the
 * text is narrower; alertline_ms says a duration that reads back within
 * its unit.
 */

static const struct alertline_opts opts[] = {
	{ 0, ALERTLINE_IDS, 0, -1, 0, 0 },
	{ 1, ALERTLINE_ZH, 480, INT64_C(1795341605000), 12, 16 },
	{ 0, ALERTLINE_EN, -720, 0, 40, 3 },
	{ 1, ALERTLINE_EN, 840, INT64_C(4102444800000), 1, 200 },
};

/* The module's SGR sequences: the only escapes a coloured line may hold. */
static const char *const sgr[] = { "\033[0m", "\033[2m", "\033[36m", "\033[33m",
    "\033[1;31m", "\033[1;7m" };

/* One line a terminal shows as text: see the comment at the top. */
static void
check_line(const char *s, size_t len, int colour)
{
	size_t		i, j, n;
	uint32_t	cp;
	int		ok;

	FUZZ_CHECK(s != NULL && s[len] == '\0');
	for (i = 0; i < len; i += n) {
		FUZZ_CHECK((n = fuzz_u8((const unsigned char *)s + i, len - i, &cp)) > 0);
		if (cp == 0x1b) {
			FUZZ_CHECK(colour);
			for (j = 0, ok = 0; j < UTIL_NELEM(sgr) && !ok; j++)
				if (strncmp(s + i, sgr[j], strlen(sgr[j])) == 0) {
					ok = 1;
					n = strlen(sgr[j]);
				}
			FUZZ_CHECK(ok);
			continue;
		}
		FUZZ_CHECK(cp >= 0x20 && cp != 0x7f);
		FUZZ_CHECK(cp < 0x80 || cp >= 0xa0);
		FUZZ_CHECK(cp < 0x202a || cp > 0x202e);
		FUZZ_CHECK(cp < 0x2066 || cp > 0x2069);
	}
}

static const char *
jstr(json_t *a, const char *key)
{
	json_t	*v = json_object_get(a, key);

	return json_is_string(v) ? json_string_value(v) : NULL;
}

/* alertline_pad: the escaped text, then spaces up to width columns, never fewer than the text's own. */
static void
check_pad(const char *s, unsigned width)
{
	struct sbuf	text, pad;
	size_t		tw, pw;

	sbuf_init(&text);
	sbuf_init(&pad);
	FUZZ_CHECK(alertline_text(&text, s != NULL && *s != '\0' ? s : "-",
	    s != NULL && *s != '\0' ? strlen(s) : 1) == 0);
	FUZZ_CHECK(alertline_pad(&pad, s, width) == 0);
	check_line(sbuf_str(&text), text.len, 0);
	check_line(sbuf_str(&pad), pad.len, 0);
	tw = alertline_width(sbuf_str(&text), text.len);
	pw = alertline_width(sbuf_str(&pad), pad.len);
	FUZZ_CHECK(pad.len >= text.len && memcmp(pad.s, text.s, text.len) == 0);
	FUZZ_CHECK(pw == (tw > width ? tw : width));
	sbuf_free(&text);
	sbuf_free(&pad);
}

/* alertline_ms: 850ms, 30s, 31.2s, 3m, 3m05s, 1h, 1h30m; read back, at most one unit short of ms. */
static void
check_ms(uint64_t ms)
{
	struct sbuf		 sb;
	unsigned long long	 a = 0, b = 0;
	char			 u1[4] = "", u2[4] = "";
	uint64_t		 back = 0, unit = 1;
	int			 n;

	sbuf_init(&sb);
	FUZZ_CHECK(alertline_ms(&sb, ms) == 0);
	if ((n = sscanf(sbuf_str(&sb), "%llu.%llu%3s", &a, &b, u1)) == 3 &&
	    strcmp(u1, "s") == 0) {
		FUZZ_CHECK(b <= 9);
		back = a * 1000 + b * 100;
		unit = 100;
	} else if ((n = sscanf(sbuf_str(&sb), "%llu%1[a-z]%llu%3s", &a, u1, &b, u2)) == 4) {
		FUZZ_CHECK(b < 60);
		FUZZ_CHECK((strcmp(u1, "m") == 0 && strcmp(u2, "s") == 0) ||
		    (strcmp(u1, "h") == 0 && strcmp(u2, "m") == 0));
		back = strcmp(u1, "m") == 0 ? a * 60000 + b * 1000 : a * 3600000 + b * 60000;
		unit = strcmp(u1, "m") == 0 ? 1000 : 60000;
	} else {
		FUZZ_CHECK(sscanf(sbuf_str(&sb), "%llu%3s", &a, u1) == 2);
		if (strcmp(u1, "ms") == 0)
			back = a;
		else if (strcmp(u1, "s") == 0)
			back = a * 1000, unit = 100;
		else if (strcmp(u1, "m") == 0)
			back = a * 60000, unit = 1000;
		else {
			FUZZ_CHECK(strcmp(u1, "h") == 0);
			back = a * 3600000, unit = 60000;
		}
	}
	FUZZ_CHECK(back <= ms && ms - back < unit);
	sbuf_free(&sb);
}

static void
format(json_t *a, const struct alertline_opts *o)
{
	struct sbuf	line, again, what, sev;

	sbuf_init(&line);
	sbuf_init(&again);
	sbuf_init(&what);
	sbuf_init(&sev);
	FUZZ_CHECK(alertline_format(&line, o, a) == 0);
	check_line(sbuf_str(&line), line.len, o->colour);
	FUZZ_CHECK(alertline_format(&again, o, a) == 0);
	FUZZ_CHECK(again.len == line.len && memcmp(again.s, line.s, line.len) == 0);
	FUZZ_CHECK(alertline_what(&what, o, a) == 0);
	check_line(sbuf_str(&what), what.len, o->colour);
	FUZZ_CHECK(what.len <= line.len &&
	    memcmp(line.s + line.len - what.len, sbuf_str(&what), what.len) == 0);
	FUZZ_CHECK(alertline_severity(&sev, o, jstr(a, "severity")) == 0);
	check_line(sbuf_str(&sev), sev.len, o->colour);
	FUZZ_CHECK(alertline_header(&sev, o) == 0);
	sbuf_free(&line);
	sbuf_free(&again);
	sbuf_free(&what);
	sbuf_free(&sev);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const ints[] = { "waited_ms", "threshold_ms", "count" };
	static const char *const strs[] = { "agent", "conversation", "shop", "severity" };
	json_t		*a, *v;
	const char	*cat;
	size_t		 i;
	struct sbuf	 sb;

	/* any bytes: the width of what a terminal would show */
	(void)alertline_width((const char *)data, size);
	if (fuzz_utf8_valid((const char *)data, size)) {
		sbuf_init(&sb);
		FUZZ_CHECK(alertline_text(&sb, (const char *)data, size) == 0);
		check_line(sbuf_str(&sb), sb.len, 0);
		sbuf_free(&sb);
	}
	if ((a = json_loadb((const char *)data, size, JSON_ALLOW_NUL, NULL)) == NULL)
		return 0;
	for (i = 0; i < UTIL_NELEM(opts); i++)
		format(a, &opts[i]);
	for (i = 0; i < UTIL_NELEM(strs); i++) {
		check_pad(jstr(a, strs[i]), 0);
		check_pad(jstr(a, strs[i]), 24);
	}
	for (i = 0; i < UTIL_NELEM(ints); i++)
		if (json_is_integer(v = json_object_get(a, ints[i])))
			check_ms((uint64_t)json_integer_value(v));
	cat = jstr(a, "category");
	FUZZ_CHECK(alertline_category_name(cat, ALERTLINE_IDS) == NULL);
	if (alertline_category(cat) != NULL)
		FUZZ_CHECK(fuzz_utf8_valid(alertline_category(cat), strlen(alertline_category(cat))) &&
		    alertline_category_name(cat, ALERTLINE_EN) != NULL);
	(void)alertline_rank(jstr(a, "severity"));
	json_decref(a);
	return 0;
}
