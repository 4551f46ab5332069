/* window: each speaker's last few turns in each conversation, for rules that match across messages (pure). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "chatmon/util.h"
#include "chatmon/window.h"

#define WINDOW_ROLES	4	/* roles 0..3: agent and customer, with room */
#define WINDOW_BUCKETS0	64

#define WINDOW_SLOT0	64	/* a ring's first slots, bytes each: most turns fit */

/*
 * One conversation: for each speaker, a ring of its last turns, each in a
 * slot of the ring's slot size. A ring grows with what it holds, in slots
 * (to conf.turns) and in slot size (the longest turn it kept, to
 * conf.bytes): anyone can open conversations, and a speaker of one short
 * turn must cost what it said, not turns x bytes (found by review: 30 000
 * one-byte conversations took 190 MB). It grows a few times at most, then
 * a turn allocates nothing.
 * Conversations are in a hash table keyed by a keyed hash of their id
 * (ids come from the backend and the agents), and on a list from the most
 * to the least recently heard, which is how old ones are found to drop.
 */
struct window_turn {
	int64_t		 t;
	size_t		 len;
};

struct window_ring {
	char			*buf;		/* cap * slot */
	unsigned char		*note;		/* cap * note_bytes, or NULL */
	struct window_turn	*turn;		/* cap */
	size_t			 head;		/* the oldest kept */
	size_t			 n;
	size_t			 cap;		/* slots, at most conf.turns */
	size_t			 slot;		/* bytes a slot holds */
	size_t			 nb;		/* note bytes a slot's note holds */
	uint64_t		 who;		/* whose turns they are (a keyed hash) */
};

struct window_conv {
	struct window_conv	*hnext;
	struct window_conv	*prev, *next;	/* most recently heard first */
	uint64_t		 hash;
	int64_t			 heard;
	struct window_ring	 ring[WINDOW_ROLES];
	size_t			 len;
	char			 id[];
};

struct window {
	struct window_conf	 conf;
	struct window_conv	**bucket;
	size_t			 nbuckets;
	size_t			 n;
	struct window_conv	*head, *tail;
	struct util_hkey	 hkey;
	char			*joined;
	size_t			 jcap;
	/* where each turn of the last window_add's joined text starts */
	size_t			*starts;
	size_t			 scap, nstarts;
	/* the last window_add's notes (window_notes) */
	const void		**notes;	/* the earlier turns', in their slots */
	size_t			 ncap, nnotes;
	unsigned char		*slot;
	/* where the last window_add kept its turn (window_unadd), or NULL */
	struct window_conv	*lastc;
	struct window_ring	*lastr;
	/*
	 * The turns of the speaker the last window_add's speaker took the
	 * role from, set aside until the next call: that turn blocked
	 * (window_unadd), the role is theirs again, their turns with it.
	 */
	struct window_ring	 prev;
};

static void
window_ring_free(struct window_ring *r)
{
	free(r->buf);
	free(r->note);
	free(r->turn);
	memset(r, 0, sizeof(*r));
}

static void
window_conv_free(struct window_conv *c)
{
	size_t	i;

	for (i = 0; i < WINDOW_ROLES; i++)
		window_ring_free(&c->ring[i]);
	free(c);
}

/* The last window_add's turn stays: what it set aside goes. */
static void
window_settle(struct window *w)
{
	window_ring_free(&w->prev);
}

/* Takes c off the hash table and the list, and frees it. */
static void
window_drop(struct window *w, struct window_conv *c)
{
	struct window_conv	**pp;

	if (w->lastc == c) {
		w->lastc = NULL;
		w->lastr = NULL;
		window_settle(w);
	}
	for (pp = &w->bucket[c->hash & (w->nbuckets - 1)]; *pp != c;
	    pp = &(*pp)->hnext)
		;
	*pp = c->hnext;
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		w->head = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	else
		w->tail = c->prev;
	w->n--;
	window_conv_free(c);
}

struct window *
window_new(const struct window_conf *conf)
{
	struct window	*w;

	if ((w = calloc(1, sizeof(*w))) == NULL)
		return NULL;
	if ((w->bucket = calloc(WINDOW_BUCKETS0, sizeof(*w->bucket))) == NULL) {
		free(w);
		return NULL;
	}
	w->nbuckets = WINDOW_BUCKETS0;
	util_hkey_random(&w->hkey);
	window_set(w, conf);
	return w;
}

void
window_free(struct window *w)
{
	if (w == NULL)
		return;
	while (w->head != NULL)
		window_drop(w, w->head);
	window_settle(w);
	free(w->bucket);
	free(w->joined);
	free(w->starts);
	free((void *)w->notes);
	free(w);
}

void
window_set(struct window *w, const struct window_conf *conf)
{
	w->conf = *conf;
	if (w->conf.turns > 64)
		w->conf.turns = 64;
	/*
	 * The rings keep their turns: each is fitted to the new sizes at its
	 * speaker's next turn (window_add), so a reload forgets nothing that
	 * the new limits still keep.
	 */
}

size_t
window_count(const struct window *w)
{
	return w->n;
}

static struct window_conv *
window_find(struct window *w, const char *id, size_t len, uint64_t h)
{
	struct window_conv	*c;

	for (c = w->bucket[h & (w->nbuckets - 1)]; c != NULL; c = c->hnext)
		if (c->hash == h && c->len == len && memcmp(c->id, id, len) == 0)
			return c;
	return NULL;
}

/* Doubles the table; on failure it stays as it was (only slower). */
static void
window_grow(struct window *w)
{
	struct window_conv	**nb, *c, *next;
	size_t			  n = w->nbuckets * 2, i;

	if ((nb = calloc(n, sizeof(*nb))) == NULL)
		return;
	for (i = 0; i < w->nbuckets; i++)
		for (c = w->bucket[i]; c != NULL; c = next) {
			next = c->hnext;
			c->hnext = nb[c->hash & (n - 1)];
			nb[c->hash & (n - 1)] = c;
		}
	free(w->bucket);
	w->bucket = nb;
	w->nbuckets = n;
}

/* Moves c to the front of the list: it was just heard. */
static void
window_touch(struct window *w, struct window_conv *c, int64_t now)
{
	c->heard = now;
	if (w->head == c)
		return;
	if (c->prev != NULL)
		c->prev->next = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	else if (w->tail == c)
		w->tail = c->prev;
	c->prev = NULL;
	c->next = w->head;
	if (w->head != NULL)
		w->head->prev = c;
	w->head = c;
	if (w->tail == NULL)
		w->tail = c;
}

/* Has room for len more bytes of the joined text; -1 out of memory. */
static int
window_reserve(struct window *w, size_t len)
{
	char	*p;
	size_t	 c = w->jcap ? w->jcap : 256;

	if (len <= w->jcap)
		return 0;
	while (c < len)
		c *= 2;
	if ((p = realloc(w->joined, c)) == NULL)
		return -1;
	w->joined = p;
	w->jcap = c;
	return 0;
}

/* Has room for n notes of earlier turns; -1 out of memory. */
static int
window_reserve_notes(struct window *w, size_t n)
{
	const void	**p;

	if (n <= w->ncap)
		return 0;
	if ((p = realloc(w->notes, n * sizeof(*p))) == NULL)
		return -1;
	w->notes = p;
	w->ncap = n;
	return 0;
}

/*
 * Room in r for n turns, the newest klen bytes long: the slots double (to
 * conf.turns), the slot size doubles to what the turn needs (to
 * conf.bytes), and the kept turns are laid out afresh, oldest first. A
 * ring made with other sizes (a reload since) is fitted to these: its
 * kept turns are no longer than conf.bytes by then (window_trim), and
 * notes of another size are dropped (a turn without its note only makes
 * the window pass run). -1 out of memory (r as it was).
 */
static int
window_ring_fit(struct window *w, struct window_ring *r, size_t n, size_t klen)
{
	struct window_turn	*turn;
	unsigned char		*note = NULL;
	char			*buf;
	size_t			 cap = r->cap, slot = r->slot, i, k;
	size_t			 nb = w->conf.note_bytes;

	if (n <= cap && klen <= slot && r->nb == nb)
		return 0;
	if (cap > w->conf.turns)
		cap = w->conf.turns;	/* n is at most conf.turns */
	if (slot > w->conf.bytes)
		slot = w->conf.bytes;	/* and every turn kept at most conf.bytes */
	if (n > cap) {
		cap = cap > 0 ? cap * 2 : 1;
		if (cap < n)
			cap = n;
		if (cap > w->conf.turns)
			cap = w->conf.turns;
	}
	if (klen > slot) {
		slot = slot > 0 ? slot * 2 : WINDOW_SLOT0;
		if (slot < klen)
			slot = klen;
		if (slot > w->conf.bytes)
			slot = w->conf.bytes;
	}
	buf = malloc(cap * slot);
	turn = malloc(cap * sizeof(*turn));
	if (nb > 0)
		note = malloc(cap * nb);
	if (buf == NULL || turn == NULL || (nb > 0 && note == NULL)) {
		free(buf);
		free(turn);
		free(note);
		return -1;
	}
	for (i = 0; i < r->n; i++) {
		k = (r->head + i) % r->cap;
		memcpy(buf + i * slot, r->buf + k * r->slot, r->turn[k].len);
		turn[i] = r->turn[k];
		if (nb > 0 && r->nb == nb)
			memcpy(note + i * nb, r->note + k * nb, nb);
		else if (nb > 0)
			memset(note + i * nb, 0, nb);	/* no note */
	}
	free(r->buf);
	free(r->turn);
	free(r->note);
	r->buf = buf;
	r->turn = turn;
	r->note = note;
	r->head = 0;
	r->cap = cap;
	r->slot = slot;
	r->nb = nb;
	return 0;
}

/* The last of s[0..*len) that fit in max bytes, from a character's start. */
static const char *
window_tail(const char *s, size_t *len, size_t max)
{
	if (*len <= max)
		return s;
	s += *len - max;
	*len = max;
	while (*len > 0 && ((unsigned char)*s & 0xc0) == 0x80) {
		s++;
		(*len)--;
	}
	return s;
}

/*
 * A turn kept longer than conf.bytes (window.bytes was lowered since) is
 * cut to its last conf.bytes, as it would have been kept; its note
 * described the whole turn, so it has none now.
 */
static void
window_trim(struct window *w, struct window_ring *r)
{
	const char	*keep;
	size_t		 i, k, len;

	for (i = 0; i < r->n; i++) {
		k = (r->head + i) % r->cap;
		if ((len = r->turn[k].len) <= w->conf.bytes)
			continue;
		keep = window_tail(r->buf + k * r->slot, &len, w->conf.bytes);
		memmove(r->buf + k * r->slot, keep, len);
		r->turn[k].len = len;
		if (r->note != NULL)
			memset(r->note + k * r->nb, 0, r->nb);
	}
}

/* Has room for the starts of n turns; -1 out of memory. */
static int
window_reserve_starts(struct window *w, size_t n)
{
	size_t	*p;

	if (n <= w->scap)
		return 0;
	if ((p = realloc(w->starts, n * sizeof(*p))) == NULL)
		return -1;
	w->starts = p;
	w->scap = n;
	return 0;
}

/* This turn alone, when nothing can be kept. */
static int
window_alone(struct window *w, const char *text, size_t len,
    const char **joined, size_t *jlen, size_t *last, size_t *nturns, int rc)
{
	*last = 0;
	*nturns = 1;
	w->nstarts = 0;
	if (window_reserve(w, len + 1) == 0) {
		memcpy(w->joined, text, len);
		w->joined[len] = '\0';
		*joined = w->joined;
		*jlen = len;
		return rc;
	}
	*joined = text;		/* the caller's: not NUL-terminated, but whole */
	*jlen = len;
	return -1;
}

int
window_add(struct window *w, const char *conv, size_t conv_len, int role,
    const char *who, const char *text, size_t len, int64_t now_ms,
    const char **joined, size_t *joined_len, size_t *last, size_t *nturns)
{
	struct window_conv	*c;
	struct window_ring	*r;
	struct window_turn	*t;
	const char		*keep;
	size_t			 i, k, at, need, klen, bytes = w->conf.bytes;
	uint64_t		 h, hw;

	w->nnotes = 0;
	w->nstarts = 0;
	w->slot = NULL;
	w->lastc = NULL;
	w->lastr = NULL;
	window_settle(w);
	if (w->conf.turns < 2 || bytes == 0 || role < 0 || role >= WINDOW_ROLES)
		return window_alone(w, text, len, joined, joined_len, last,
		    nturns, 0);
	/* the least recently heard first: nothing of theirs is in any window now */
	while (w->tail != NULL && (w->n >= w->conf.max_convs ||
	    now_ms - w->tail->heard > (int64_t)w->conf.ms))
		window_drop(w, w->tail);
	h = util_hash(&w->hkey, conv, conv_len);
	if ((c = window_find(w, conv, conv_len, h)) == NULL) {
		if ((c = calloc(1, sizeof(*c) + conv_len)) == NULL)
			return window_alone(w, text, len, joined, joined_len,
			    last, nturns, -1);
		memcpy(c->id, conv, conv_len);
		c->len = conv_len;
		c->hash = h;
		c->hnext = w->bucket[h & (w->nbuckets - 1)];
		w->bucket[h & (w->nbuckets - 1)] = c;
		c->heard = now_ms;
		c->prev = NULL;
		c->next = w->head;
		if (w->head != NULL)
			w->head->prev = c;
		w->head = c;
		if (w->tail == NULL)
			w->tail = c;
		if (++w->n > w->nbuckets)
			window_grow(w);
	}
	window_touch(w, c, now_ms);
	r = &c->ring[role];
	/*
	 * Another speaker in this role (the conversation was transferred to
	 * another agent): the turns kept are the last one's, and one agent's
	 * words must not complete another's violation, nor be quoted as his.
	 */
	hw = util_hash(&w->hkey, who, strlen(who));
	if (r->who != hw && r->n > 0) {
		/* set aside whole: this turn may be blocked (window_unadd) */
		w->prev = *r;
		memset(r, 0, sizeof(*r));
	}
	r->who = hw;
	/* turns that fell out of the window, in time or in number */
	while (r->n > 0 && (now_ms - r->turn[r->head].t > (int64_t)w->conf.ms ||
	    r->n >= w->conf.turns)) {
		r->head = (r->head + 1) % r->cap;
		r->n--;
	}
	window_trim(w, r);
	/* what is kept of this one: its last bytes, from a character's start */
	klen = len;
	keep = window_tail(text, &klen, bytes);
	if (window_ring_fit(w, r, r->n + 1, klen) == -1) {
		window_ring_free(r);
		return window_alone(w, text, len, joined, joined_len, last,
		    nturns, -1);
	}
	/* the kept turns, then this one whole */
	need = len + 1;
	for (i = 0; i < r->n; i++)
		need += r->turn[(r->head + i) % r->cap].len +
		    sizeof(WINDOW_SEP) - 1;
	if (window_reserve(w, need) == -1 ||
	    window_reserve_starts(w, r->n + 1) == -1 || (r->note != NULL &&
	    window_reserve_notes(w, r->n) == -1))
		return window_alone(w, text, len, joined, joined_len, last,
		    nturns, -1);
	for (i = at = 0; i < r->n; i++) {
		k = (r->head + i) % r->cap;
		w->starts[i] = at;
		memcpy(w->joined + at, r->buf + k * r->slot, r->turn[k].len);
		at += r->turn[k].len;
		memcpy(w->joined + at, WINDOW_SEP, sizeof(WINDOW_SEP) - 1);
		at += sizeof(WINDOW_SEP) - 1;
		if (r->note != NULL)
			w->notes[i] = r->note + k * w->conf.note_bytes;
	}
	w->nnotes = r->note != NULL ? r->n : 0;
	w->starts[r->n] = at;
	w->nstarts = r->n + 1;
	*last = at;
	memcpy(w->joined + at, text, len);
	at += len;
	w->joined[at] = '\0';
	*joined = w->joined;
	*joined_len = at;
	*nturns = r->n + 1;
	/* keep this one */
	k = (r->head + r->n) % r->cap;
	t = &r->turn[k];
	memcpy(r->buf + k * r->slot, keep, klen);
	t->len = klen;
	t->t = now_ms;
	r->n++;
	if (r->note != NULL) {
		memset(r->note + k * w->conf.note_bytes, 0, w->conf.note_bytes);
		if (klen == len)
			w->slot = r->note + k * w->conf.note_bytes;
	}
	w->lastc = c;
	w->lastr = r;
	return 0;
}

void
window_unadd(struct window *w)
{
	/*
	 * The newest turn is the ring's last: dropping it leaves what the
	 * next window_add would have kept had it never come (the turns it
	 * pushed out were out of the next turn's window anyway).
	 */
	if (w->lastr != NULL && w->prev.n > 0) {
		/* it took the role from another speaker: theirs again */
		window_ring_free(w->lastr);
		*w->lastr = w->prev;
		memset(&w->prev, 0, sizeof(w->prev));
	} else if (w->lastr != NULL && w->lastr->n > 0)
		w->lastr->n--;
	window_settle(w);
	w->lastc = NULL;
	w->lastr = NULL;
	w->slot = NULL;
}

const size_t *
window_starts(const struct window *w, size_t *n)
{
	*n = w->nstarts;
	return w->starts;
}

void
window_notes(struct window *w, const void *const **earlier, size_t *n,
    void **slot)
{
	*earlier = w->notes;
	*n = w->nnotes;
	*slot = w->slot;
}

void
window_end(struct window *w, const char *conv, size_t conv_len)
{
	struct window_conv	*c;

	if ((c = window_find(w, conv, conv_len,
	    util_hash(&w->hkey, conv, conv_len))) != NULL)
		window_drop(w, c);
}
