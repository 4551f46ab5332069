/* detect: one chat turn through the rules, alone and with its speaker's last turns (pure). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "chatmon/detect.h"
#include "chatmon/model.h"
#include "chatmon/normalize.h"
#include "chatmon/rulebook.h"
#include "chatmon/util.h"

/*
 * The model scores at most this much of a text: its cost grows with the
 * text. A flag reads a turn's first bytes, a veto those around the match.
 */
#define DETECT_MODEL_MAX	600
/*
 * A veto reads the match and this much on each side: the sentence around
 * it, which is what tells a warning against an app from an invitation to
 * it. 120 reads the whole line for every line of the corpus the veto was
 * measured on (tests/corpus, 99.9 % are under 220 bytes) and gives the
 * same vetoes there; 600 centred still let 560 bytes of greeting outvote
 * the match.
 */
#define DETECT_VETO_CONTEXT	120

struct detect {
	struct rulebook		*book;
	struct rules		*rules;		/* the book's top-level pack: a turn of no shop's */
	struct window_conf	 wc;		/* as given: a new book may need more room for notes */
	const struct model	*model;
	struct norm		*norm;		/* the model's input */
	char			**model_ids;	/* "model.CATEGORY", by category */
	size_t			 nmodel_ids;
	double			 veto;		/* a block needs this probability */
	struct window		*window;
	int			 kept;		/* the last turn went into the window */
	struct rules_note	 note;		/* the last turn's (window_notes) */
	/*
	 * A shop's turn: a note for each of its packs (they are kept side by
	 * side in the turn's slot, the top-level pack's first, so that a turn
	 * of no shop reads its own as before), and one pack's notes of the
	 * earlier turns gathered for rules_window_needed.
	 */
	struct rules_note	*notes;
	size_t			 nnotes;
	const struct rules_note	**earlier;
	size_t			 nearlier;
	struct detect_hit	*hits;
	size_t			 cap;
};

/*
 * Conversations whose turns are kept at once: far more than one process
 * has chats, and a bound on what anyone opening conversations can cost
 * (docs/configuration.md, "What the window costs").
 */
#define DETECT_MAX_SPEAKERS	200000

void
detect_window_conf(const struct config *cfg, struct window_conf *wc)
{
	wc->turns = (size_t)cfg->window.turns;
	wc->ms = cfg->window.time_ms;
	wc->bytes = (size_t)cfg->window.bytes;
	wc->max_convs = DETECT_MAX_SPEAKERS;
	wc->note_bytes = 0;	/* detect_new and detect_set_window add the notes' room */
}

/*
 * wc with room for each turn's notes (rules_note_take), whoever filled it
 * in: one for every pack the book's deepest shop runs.
 */
static struct window_conf
detect_noted(const struct window_conf *wc, const struct rulebook *book)
{
	struct window_conf	c = *wc;

	c.note_bytes = sizeof(struct rules_note) * rulebook_depth(book);
	return c;
}

struct detect *
detect_new(struct rulebook *book, const struct window_conf *wc)
{
	struct detect		*d;
	struct window_conf	 c = detect_noted(wc, book);

	if ((d = calloc(1, sizeof(*d))) == NULL)
		return NULL;
	d->book = book;
	d->rules = rulebook_base(book);
	d->wc = *wc;
	if ((d->window = window_new(&c)) == NULL) {
		free(d);
		return NULL;
	}
	return d;
}

static void
detect_free_ids(struct detect *d)
{
	size_t	i;

	for (i = 0; i < d->nmodel_ids; i++)
		free(d->model_ids[i]);
	free(d->model_ids);
	d->model_ids = NULL;
	d->nmodel_ids = 0;
}

int
detect_set_model(struct detect *d, const struct model *m, double veto)
{
	size_t	i, n;

	detect_free_ids(d);
	d->model = NULL;
	d->veto = veto;
	if (m == NULL)
		return 0;
	n = model_categories(m);
	if ((d->norm == NULL && (d->norm = norm_new()) == NULL) ||
	    (d->model_ids = calloc(n, sizeof(*d->model_ids))) == NULL)
		return -1;
	for (i = 0; i < n; i++, d->nmodel_ids++) {
		size_t l = strlen(model_category(m, i)) + sizeof("model.");

		if ((d->model_ids[i] = malloc(l)) == NULL) {
			detect_free_ids(d);
			return -1;
		}
		snprintf(d->model_ids[i], l, "model.%s", model_category(m, i));
	}
	d->model = m;
	return 0;
}

void
detect_free(struct detect *d)
{
	if (d == NULL)
		return;
	detect_free_ids(d);
	norm_free(d->norm);
	window_free(d->window);
	free(d->hits);
	free(d->notes);
	free(d->earlier);
	free(d);
}

void
detect_set_book(struct detect *d, struct rulebook *book)
{
	struct window_conf	c = detect_noted(&d->wc, book);

	d->book = book;
	d->rules = rulebook_base(book);
	/* kept turns stay; notes of another size go (src/window.c) */
	window_set(d->window, &c);
}

void
detect_set_window(struct detect *d, const struct window_conf *wc)
{
	struct window_conf	c = detect_noted(wc, d->book);

	d->wc = *wc;
	window_set(d->window, &c);
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

/*
 * A hit over the speaker's turns joined (the window's last add; last is
 * where the current turn starts), its offsets in them: its text is cut to
 * the turns its match spans, from the one it starts in to the current
 * one, and its offsets and turn count follow. The turns come from the
 * window's own starts: a turn may hold a newline itself. After any sort:
 * the hits' order is that of their offsets in the joined text.
 */
static void
detect_span_turns(struct detect *d, struct detect_hit *dh, const char *joined,
    size_t jlen, size_t last)
{
	const size_t	*starts;
	size_t		 n, k, at, first;
	uint32_t	 cp;

	starts = window_starts(d->window, &n);
	at = detect_byte(joined, jlen, dh->hit.start);
	for (k = n; k > 1 && starts[k - 1] > at; k--)
		;
	first = k > 0 ? starts[k - 1] : 0;
	cp = (uint32_t)util_utf8_count(joined, first);
	dh->hit.start -= cp;
	dh->hit.end -= cp;
	dh->text = joined + first;
	dh->text_len = jlen - first;
	dh->turns = k > 0 ? (unsigned)(n - k + 1) : 1;
	dh->last = last - first;
}

/*
 * What the model reads of a turn for its flags: the first DETECT_MODEL_MAX
 * bytes (not cut in a character), normalised as the rules see them. -1 on
 * ENOMEM.
 */
static int
detect_model_input(struct detect *d, const char *text, size_t *len,
    const char **out, size_t *olen, const uint32_t **map)
{
	if (*len > DETECT_MODEL_MAX) {
		*len = DETECT_MODEL_MAX;
		while (*len > 0 && ((unsigned char)text[*len] & 0xc0) == 0x80)
			(*len)--;
	}
	return norm_run(d->norm, text, *len, NORM_ALL, out, olen, map);
}

/*
 * What the veto reads of a block's text, [*lo, *hi) in bytes: the match
 * [a, b) and DETECT_VETO_CONTEXT bytes each side of it (less at the text's
 * ends), the middle DETECT_MODEL_MAX bytes of a longer match, cut to whole
 * characters. However much a text holds before or after its match
 * (greetings, earlier turns), the model reads the match and what is next
 * to it, not a start it could be pushed out of.
 */
static void
detect_veto_span(const char *text, size_t len, size_t a, size_t b,
    size_t *lo, size_t *hi)
{
	size_t	l, h, mid;

	l = a > DETECT_VETO_CONTEXT ? a - DETECT_VETO_CONTEXT : 0;
	h = len - b > DETECT_VETO_CONTEXT ? b + DETECT_VETO_CONTEXT : len;
	if (h - l > DETECT_MODEL_MAX) {
		/* a long match: as much as the model reads, about its middle */
		mid = a + (b - a) / 2;
		if (mid > l + DETECT_MODEL_MAX / 2)
			l = mid - DETECT_MODEL_MAX / 2;
		if (l + DETECT_MODEL_MAX < h)
			h = l + DETECT_MODEL_MAX;
		else
			l = h - DETECT_MODEL_MAX;
	}
	while (l < h && ((unsigned char)text[l] & 0xc0) == 0x80)
		l++;
	while (h > l && h < len && ((unsigned char)text[h] & 0xc0) == 0x80)
		h--;
	*lo = l;
	*hi = h;
}

/*
 * The blocks of hits[0..total) that the model does not back become
 * warnings. Blocks are rare, so the model reads a text again for them
 * rather than every turn keeping its probabilities.
 */
static void
detect_veto(struct detect *d, enum rules_role role, size_t total)
{
	double		 p[MODEL_MAX_CATEGORIES];
	const char	*scored = NULL, *out;
	const uint32_t	*map;
	size_t		 i, k, lo, hi, slo = 0, shi = 0, olen;

	for (i = 0; i < total; i++) {
		struct detect_hit *dh = &d->hits[i];

		if (dh->hit.action != RULES_BLOCK)
			continue;
		detect_veto_span(dh->text, dh->text_len,
		    detect_byte(dh->text, dh->text_len, dh->hit.start),
		    detect_byte(dh->text, dh->text_len, dh->hit.end), &lo, &hi);
		if (dh->text != scored || lo != slo || hi != shi) {
			if (norm_run(d->norm, dh->text + lo, hi - lo, NORM_ALL,
			    &out, &olen, &map) == -1)
				return;		/* out of memory: the rules decide */
			model_probs(d->model, (enum model_role)role, out, olen, p);
			scored = dh->text;
			slo = lo;
			shi = hi;
		}
		for (k = 0; k < d->nmodel_ids; k++)
			if (strcmp(model_category(d->model, k),
			    dh->hit.category) == 0)
				break;
		/* a category the model does not know: the rule decides alone */
		if (k < d->nmodel_ids && p[k] < d->veto) {
			dh->hit.action = RULES_WARNING;
			dh->vetoed = 1;
		}
	}
}

/*
 * The model's categories that no hit of the turn has, and that shop s (NULL:
 * none) did not switch off (rules_off: model.CATEGORY): flags over the
 * whole turn (its first DETECT_MODEL_MAX bytes are scored). Returns the new
 * count.
 */
static size_t
detect_model(struct detect *d, const struct rulebook_shop *s,
    enum rules_role role, const char *text, size_t len, size_t total)
{
	struct model_hit	 mh[MODEL_MAX_CATEGORIES];
	struct detect_hit	*dh;
	const char		*out;
	const uint32_t		*map;
	size_t			 n, i, k, olen;
	int			 seen;

	if (detect_model_input(d, text, &len, &out, &olen, &map) == -1)
		return total;
	n = model_score(d->model, (enum model_role)role, out, olen, mh,
	    MODEL_MAX_CATEGORIES);
	for (i = 0; i < n; i++) {
		for (k = 0, seen = 0; k < total && !seen; k++)
			seen = strcmp(d->hits[k].hit.category, mh[i].category) == 0;
		if (seen || mh[i].index >= d->nmodel_ids ||
		    (s != NULL && rulebook_shop_off(s, d->model_ids[mh[i].index])) ||
		    detect_room(d, total + 1) == -1)
			continue;
		dh = &d->hits[total++];
		memset(dh, 0, sizeof(*dh));
		dh->hit.rule = d->model_ids[mh[i].index];
		dh->hit.category = mh[i].category;
		dh->hit.message = "";
		dh->hit.severity = RULES_INFO;
		dh->hit.action = RULES_FLAG;	/* a second opinion, for a person to judge */
		dh->hit.start = 0;
		dh->hit.end = map[olen];
		dh->text = text;
		dh->text_len = len;
		dh->turns = 1;
	}
	return total;
}

/*
 * What every turn ends with: the model's opinion, and matches pointed into
 * the texts. Inlined: a call here was most of what a turn of no shop
 * gained over the time before shops (tests/bench/rules_instr.sh).
 */
static inline __attribute__((always_inline)) ssize_t
detect_finish(struct detect *d, const struct rulebook_shop *s,
    enum rules_role role, const char *text, size_t len, size_t total,
    const struct detect_hit **hits)
{
	size_t	i;

	if (d->model != NULL && d->veto > 0)
		detect_veto(d, role, total);
	if (d->model != NULL)
		total = detect_model(d, s, role, text, len, total);
	for (i = 0; i < total; i++)
		detect_repoint(&d->hits[i]);
	*hits = d->hits;
	return (ssize_t)total;
}

/* rules_match's order, over the hits of several packs. */
static int
detect_hit_cmp(const void *a, const void *b)
{
	return rules_hit_order(&((const struct detect_hit *)a)->hit,
	    &((const struct detect_hit *)b)->hit);
}

/*
 * Appends the hits h[0..n) of one pack over text (the turn alone when last
 * is SIZE_MAX, else the turns joined: detect_span_turns cuts them once they
 * are sorted), less the rules the shop switched off. The new total, or
 * SIZE_MAX on ENOMEM.
 */
static size_t
detect_add(struct detect *d, const struct rulebook_shop *s, size_t total,
    const struct rules_hit *h, size_t n, const char *text, size_t len,
    size_t last)
{
	struct detect_hit	*dh;
	size_t			 i;

	if (detect_room(d, total + n) == -1)
		return SIZE_MAX;
	for (i = 0; i < n; i++) {
		if (rulebook_shop_off(s, h[i].rule))
			continue;
		dh = &d->hits[total++];
		dh->hit = h[i];
		dh->text = text;
		dh->text_len = len;
		dh->turns = 1;		/* across turns: detect_span_turns, once sorted */
		dh->last = last == SIZE_MAX ? 0 : last;
		dh->vetoed = 0;
	}
	return total;
}

/* Room for a note of each of n packs and for n earlier turns' notes; -1 on ENOMEM. */
static int
detect_note_room(struct detect *d, size_t n, size_t earlier)
{
	struct rules_note	 *nn;
	const struct rules_note	**ne;

	if (n > d->nnotes) {
		if ((nn = realloc(d->notes, n * sizeof(*nn))) == NULL)
			return -1;
		d->notes = nn;
		d->nnotes = n;
	}
	if (earlier > d->nearlier) {
		if ((ne = realloc(d->earlier, earlier * sizeof(*ne))) == NULL)
			return -1;
		d->earlier = ne;
		d->nearlier = earlier;
	}
	return 0;
}

/*
 * A turn of a shop that has packs of its own or rules switched off: each
 * of its packs as a turn of no shop runs the top-level pack, the hits
 * merged into the order one pack would give them (the turn's own, then
 * those across turns), less the rules switched off. Pack k's note is the
 * k-th of the turn's slot; a slot written with other packs (another shop,
 * a book since reloaded) has notes of other sets, which only make the
 * window pass run.
 */
static ssize_t
detect_turn_shop(struct detect *d, const struct rulebook_shop *s,
    enum rules_role role, const char *who, const char *conv, size_t conv_len,
    const char *text, size_t len, int64_t now_ms,
    const struct detect_hit **hits)
{
	const struct rules_hit	*h;
	struct rules		*r;
	const char		*joined;
	const void		*const *notes;
	void			*slot;
	size_t			 np = rulebook_shop_packs(s), k, i, n, total = 0;
	size_t			 jlen, last, nturns, nearlier, wstart;
	int			 need;

	*hits = d->hits;
	d->kept = 0;
	if (detect_note_room(d, np, 0) == -1)
		return -1;
	for (k = 0; k < np; k++) {
		r = rulebook_shop_pack(s, k);
		n = rules_match(r, role, text, len, &h);
		/* before anything else uses this pack's views of the turn */
		rules_note_take(r, &d->notes[k]);
		if ((total = detect_add(d, s, total, h, n, text, len,
		    SIZE_MAX)) == SIZE_MAX)
			return -1;
	}
	if (np > 1 && total > 1)
		qsort(d->hits, total, sizeof(*d->hits), detect_hit_cmp);
	wstart = total;
	if (conv != NULL && rulebook_shop_window(s) > 0 &&
	    window_add(d->window, conv, conv_len, (int)role, who, text, len,
	    now_ms, &joined, &jlen, &last, &nturns) == 0) {
		d->kept = 1;
		window_notes(d->window, &notes, &nearlier, &slot);
		if (detect_note_room(d, np, nearlier) == -1)
			return -1;
		for (k = 0; k < np && nturns > 1; k++) {
			r = rulebook_shop_pack(s, k);
			if (rules_window_count(r) == 0)
				continue;
			for (i = 0; i < nearlier; i++)
				d->earlier[i] = (const struct rules_note *)notes[i] + k;
			need = nearlier != nturns - 1 || rules_window_needed(r,
			    role, d->earlier, nearlier, &d->notes[k]);
			if (!need)
				continue;
			n = rules_match_window(r, role, joined, jlen,
			    (uint32_t)util_utf8_count(joined, last), &h);
			if ((total = detect_add(d, s, total, h, n, joined, jlen,
			    last)) == SIZE_MAX)
				return -1;
		}
		if (slot != NULL)
			memcpy(slot, d->notes, np * sizeof(*d->notes));
		if (np > 1 && total - wstart > 1)
			qsort(d->hits + wstart, total - wstart, sizeof(*d->hits),
			    detect_hit_cmp);
		for (i = wstart; i < total; i++)
			detect_span_turns(d, &d->hits[i], joined, jlen, last);
	}
	return detect_finish(d, s, role, text, len, total, hits);
}

ssize_t
detect_turn(struct detect *d, enum rules_role role, const char *who,
    const char *shop,
    const char *conv, size_t conv_len, const char *text, size_t len,
    int64_t now_ms, const struct detect_hit **hits)
{
	const struct rules_hit	*h;
	const struct rulebook_shop *s;
	const char		*joined;
	const void		*const *notes;
	void			*slot;
	size_t			 n, nw, i, jlen, last, nturns, total, nearlier;

	/* a turn of no shop costs what it did before there were shops */
	if (shop[0] != '\0' && (s = rulebook_shop(d->book, shop)) != NULL)
		return detect_turn_shop(d, s, role, who, conv, conv_len, text, len,
		    now_ms, hits);
	*hits = d->hits;
	d->kept = 0;
	n = rules_match(d->rules, role, text, len, &h);
	/* before anything else uses the rules' views of this turn */
	rules_note_take(d->rules, &d->note);
	if (detect_room(d, n) == -1)
		return -1;
	for (i = 0; i < n; i++) {
		d->hits[i].hit = h[i];
		d->hits[i].text = text;
		d->hits[i].text_len = len;
		d->hits[i].turns = 1;
		d->hits[i].last = 0;
		d->hits[i].vetoed = 0;
	}
	total = n;
	/* the speaker's last turns: kept only when some rule looks at them */
	if (conv != NULL && rules_window_count(d->rules) > 0 &&
	    window_add(d->window, conv, conv_len, (int)role, who, text, len,
	    now_ms, &joined, &jlen, &last, &nturns) == 0) {
		d->kept = 1;
		/*
		 * The turn's note goes with it; the notes of the turns before
		 * it say whether the window pass can find anything at all.
		 */
		window_notes(d->window, &notes, &nearlier, &slot);
		if (nturns > 1 && (nearlier != nturns - 1 ||
		    rules_window_needed(d->rules, role,
		    (const struct rules_note *const *)notes, nearlier,
		    &d->note)))
			nw = rules_match_window(d->rules, role, joined, jlen,
			    (uint32_t)util_utf8_count(joined, last), &h);
		else
			nw = 0;
		if (slot != NULL)
			memcpy(slot, &d->note, sizeof(d->note));
		/* without the rules the turn alone broke: reported above */
		for (i = 0; i < nw; i++) {
			if (detect_room(d, total + 1) == -1)
				break;
			d->hits[total].hit = h[i];
			d->hits[total].vetoed = 0;
			detect_span_turns(d, &d->hits[total++], joined, jlen,
			    last);
		}
	}
	return detect_finish(d, NULL, role, text, len, total, hits);
}

void
detect_forget(struct detect *d)
{
	if (d->kept)
		window_unadd(d->window);
	d->kept = 0;
}

void
detect_end(struct detect *d, const char *conv, size_t conv_len)
{
	window_end(d->window, conv, conv_len);
}
