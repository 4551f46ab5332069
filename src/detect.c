/* detect: one chat turn through the rules, alone and with its speaker's last turns (pure). */
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "chatmon/detect.h"

struct detect {
	struct rules		*rules;
	struct window		*window;
	struct detect_hit	*hits;
	size_t			 cap;
};

/* Speakers kept at once: far more than one process has chats. */
#define DETECT_MAX_SPEAKERS	200000

void
detect_window_conf(const struct config *cfg, struct window_conf *wc)
{
	wc->turns = (size_t)cfg->window.turns;
	wc->ms = cfg->window.time_ms;
	wc->bytes = (size_t)cfg->window.bytes;
	wc->max_convs = DETECT_MAX_SPEAKERS;
}

struct detect *
detect_new(struct rules *rules, const struct window_conf *wc)
{
	struct detect	*d;

	if ((d = calloc(1, sizeof(*d))) == NULL)
		return NULL;
	d->rules = rules;
	if ((d->window = window_new(wc)) == NULL) {
		free(d);
		return NULL;
	}
	return d;
}

void
detect_free(struct detect *d)
{
	if (d == NULL)
		return;
	window_free(d->window);
	free(d->hits);
	free(d);
}

void
detect_set_rules(struct detect *d, struct rules *rules)
{
	d->rules = rules;
}

void
detect_set_window(struct detect *d, const struct window_conf *wc)
{
	window_set(d->window, wc);
}

/* Room for n hits; -1 on ENOMEM. */
static int
detect_room(struct detect *d, size_t n)
{
	struct detect_hit	*nh;
	size_t			 c = d->cap ? d->cap : 8;

	if (n <= d->cap)
		return 0;
	while (c < n)
		c *= 2;
	if ((nh = realloc(d->hits, c * sizeof(*nh))) == NULL)
		return -1;
	d->hits = nh;
	d->cap = c;
	return 0;
}

/* Code points of UTF-8 s[0, n). */
static uint32_t
detect_cps(const char *s, size_t n)
{
	uint32_t	k = 0;
	size_t		i;

	for (i = 0; i < n; i++)
		k += ((unsigned char)s[i] & 0xc0) != 0x80;
	return k;
}

/* Byte offset of code point cp in UTF-8 s[0, n) (n when past its end). */
static size_t
detect_byte(const char *s, size_t n, uint32_t cp)
{
	size_t	i;

	for (i = 0; i < n; i++)
		if (((unsigned char)s[i] & 0xc0) != 0x80 && cp-- == 0)
			return i;
	return n;
}

/*
 * Points a hit's match into text: the rules' own copy of the original is
 * reused by the next match, and a turn's text is valid UTF-8 (JSON
 * decoded), so code points count the same in both.
 */
static void
detect_repoint(struct detect_hit *dh)
{
	size_t	a = detect_byte(dh->text, dh->text_len, dh->hit.start);
	size_t	b = detect_byte(dh->text, dh->text_len, dh->hit.end);

	dh->hit.match = dh->text + a;
	dh->hit.match_len = b >= a ? b - a : 0;
}

/* How many turns of the joined text the code points [start, end) touch. */
static unsigned
detect_turns(const char *joined, size_t len, uint32_t start, uint32_t end)
{
	unsigned	turns = 1;
	uint32_t	cp = 0;
	size_t		i;

	for (i = 0; i < len && cp < end; i++) {
		if (joined[i] == WINDOW_SEP[0] && cp >= start)
			turns++;
		cp += ((unsigned char)joined[i] & 0xc0) != 0x80;
	}
	return turns;
}

ssize_t
detect_turn(struct detect *d, enum rules_role role, const char *conv,
    size_t conv_len, const char *text, size_t len, int64_t now_ms,
    const struct detect_hit **hits)
{
	const struct rules_hit	*h;
	const char		*joined;
	size_t			 n, nw, i, k, jlen, last, nturns, total;
	int			 seen;

	*hits = d->hits;
	n = rules_match(d->rules, role, text, len, &h);
	if (detect_room(d, n) == -1)
		return -1;
	for (i = 0; i < n; i++) {
		d->hits[i].hit = h[i];
		d->hits[i].text = text;
		d->hits[i].text_len = len;
		d->hits[i].turns = 1;
	}
	total = n;
	/* the speaker's last turns: kept only when some rule looks at them */
	if (conv_len > 0 && rules_window_count(d->rules) > 0 &&
	    window_add(d->window, conv, conv_len, (int)role, text, len, now_ms,
	    &joined, &jlen, &last, &nturns) == 0 && nturns > 1) {
		nw = rules_match_window(d->rules, role, joined, jlen,
		    detect_cps(joined, last), &h);
		for (i = 0; i < nw; i++) {
			for (k = 0, seen = 0; k < n && !seen; k++)
				seen = strcmp(d->hits[k].hit.rule, h[i].rule) == 0;
			if (seen)	/* the turn alone broke it already */
				continue;
			if (detect_room(d, total + 1) == -1)
				break;
			d->hits[total].hit = h[i];
			d->hits[total].text = joined;
			d->hits[total].text_len = jlen;
			d->hits[total].turns = detect_turns(joined, jlen,
			    h[i].start, h[i].end);
			total++;
		}
	}
	for (i = 0; i < total; i++)
		detect_repoint(&d->hits[i]);
	*hits = d->hits;
	return (ssize_t)total;
}

void
detect_end(struct detect *d, const char *conv, size_t conv_len)
{
	window_end(d->window, conv, conv_len);
}
