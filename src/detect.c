/* detect: one chat turn through the rules, alone and with its speaker's last turns (pure). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "chatmon/detect.h"
#include "chatmon/model.h"
#include "chatmon/normalize.h"
#include "chatmon/util.h"

/* The model scores at most this much of a turn: its cost grows with the text. */
#define DETECT_MODEL_MAX	600

struct detect {
	struct rules		*rules;
	const struct model	*model;
	struct norm		*norm;		/* the model's input */
	char			**model_ids;	/* "model.CATEGORY", by category */
	size_t			 nmodel_ids;
	double			 veto;		/* a block needs this probability */
	struct window		*window;
	struct rules_note	 note;		/* the last turn's (window_notes) */
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
	wc->note_bytes = 0;	/* detect_new and detect_set_window add the notes' room */
}

/* wc with room for each turn's note (rules_note_take), whoever filled it in. */
static struct window_conf
detect_noted(const struct window_conf *wc)
{
	struct window_conf	c = *wc;

	c.note_bytes = sizeof(struct rules_note);
	return c;
}

struct detect *
detect_new(struct rules *rules, const struct window_conf *wc)
{
	struct detect		*d;
	struct window_conf	 c = detect_noted(wc);

	if ((d = calloc(1, sizeof(*d))) == NULL)
		return NULL;
	d->rules = rules;
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
	struct window_conf	c = detect_noted(wc);

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

/*
 * What the model reads of a text: its first DETECT_MODEL_MAX bytes (not
 * cut in a character), normalised as the rules see them. -1 on ENOMEM.
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
	size_t		 i, k, len, olen;

	for (i = 0; i < total; i++) {
		struct detect_hit *dh = &d->hits[i];

		if (dh->hit.action != RULES_BLOCK)
			continue;
		if (dh->text != scored) {
			len = dh->text_len;
			if (detect_model_input(d, dh->text, &len, &out, &olen,
			    &map) == -1)
				return;		/* out of memory: the rules decide */
			model_probs(d->model, (enum model_role)role, out, olen, p);
			scored = dh->text;
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
 * The model's categories that no hit of the turn has: flags over the whole
 * turn (its first DETECT_MODEL_MAX bytes are scored). Returns the new count.
 */
static size_t
detect_model(struct detect *d, enum rules_role role, const char *text,
    size_t len, size_t total)
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

ssize_t
detect_turn(struct detect *d, enum rules_role role, const char *conv,
    size_t conv_len, const char *text, size_t len, int64_t now_ms,
    const struct detect_hit **hits)
{
	const struct rules_hit	*h;
	const char		*joined;
	const void		*const *notes;
	void			*slot;
	size_t			 n, nw, i, jlen, last, nturns, total, nearlier;

	*hits = d->hits;
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
	if (conv_len > 0 && rules_window_count(d->rules) > 0 &&
	    window_add(d->window, conv, conv_len, (int)role, text, len, now_ms,
	    &joined, &jlen, &last, &nturns) == 0) {
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
			d->hits[total].text = joined;
			d->hits[total].text_len = jlen;
			d->hits[total].turns = detect_turns(joined, jlen,
			    h[i].start, h[i].end);
			d->hits[total].last = last;
			d->hits[total].vetoed = 0;
			total++;
		}
	}
	if (d->model != NULL && d->veto > 0)
		detect_veto(d, role, total);
	if (d->model != NULL)
		total = detect_model(d, role, text, len, total);
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
