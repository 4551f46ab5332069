/* window: each speaker's last few turns in each conversation, for rules that match across messages (pure). */
#ifndef CHATMON_WINDOW_H
#define CHATMON_WINDOW_H

#include <stddef.h>
#include <stdint.h>

/*
 * Agents split a violation over messages ("加我", "v", "abc123"): no one
 * turn breaks a rule, the last few do. A window keeps, for every
 * conversation and speaker, the turns of the last `ms` milliseconds, at most
 * `turns` of them, each cut to its last `bytes` bytes, and hands them back
 * joined with the newest last. Memory is bounded by the turns of the last
 * `ms` (older ones are dropped as new ones arrive) and by `max_convs`
 * speakers at once (the least recently heard is forgotten first); a
 * conversation that ends is forgotten at once.
 */
struct window_conf {
	size_t		turns;		/* the current one included; 0 or 1: no window */
	uint64_t	ms;
	size_t		bytes;		/* of one turn kept */
	size_t		max_convs;
	size_t		note_bytes;	/* kept with each turn for the caller (window_notes); 0: none */
};

struct window;

/* NULL out of memory. The caller owns it (window_free). */
struct window *window_new(const struct window_conf *);
void	window_free(struct window *);
/* New limits; kept turns are trimmed to them lazily. */
void	window_set(struct window *, const struct window_conf *);

/*
 * A turn of role (any small integer) in conversation conv at now_ms, said
 * by who (NUL-terminated; "" for whoever holds the role). A role's turns
 * are one speaker's: when who is not the one whose turns the role keeps
 * (another agent took the conversation over), those are forgotten first.
 * On return *text (NUL-terminated, owned by the window until its next call)
 * holds the kept turns of that speaker within the window, oldest first,
 * this one last, separated by WINDOW_SEP; *last is the byte offset where
 * this turn starts in it and *nturns how many turns it holds. -1 out of
 * memory (the window then forgets that speaker; *text is this turn alone).
 */
#define WINDOW_SEP	"\n"
int	window_add(struct window *, const char *conv, size_t conv_len, int role,
	    const char *who, const char *text, size_t len, int64_t now_ms, const char **joined,
	    size_t *joined_len, size_t *last, size_t *nturns);
/*
 * Where each turn of the last window_add's joined text starts (bytes,
 * oldest first, *n of them: its *nturns; good until the next window_add).
 * The turns themselves may hold WINDOW_SEP: count turns with these, never
 * by looking for it.
 */
const size_t *window_starts(const struct window *, size_t *n);
/*
 * The turn the last window_add kept is forgotten, as if it had never been
 * said: the pipeline blocked it, so the other side never saw it and it must
 * not help a later turn make (or seem to only lengthen) a violation. Does
 * nothing when that call kept nothing, or after anything else changed the
 * window (window_end, window_set, another window_add's drop).
 */
void	window_unadd(struct window *);
/*
 * The notes of the last window_add's turns: (*earlier)[0..*n) the earlier
 * turns' (oldest first, note_bytes each, as they were left in their slots;
 * good until the next window_add); *slot this turn's, zeroed for the
 * caller to fill, or NULL when the turn was cut to `bytes` (its note would
 * describe more than is kept) or nothing is kept.
 */
void	window_notes(struct window *, const void *const **earlier, size_t *n,
	    void **slot);
/* The conversation ended: every speaker's turns in it are forgotten. */
void	window_end(struct window *, const char *conv, size_t conv_len);
/* Speakers with turns kept (for tests and metrics). */
size_t	window_count(const struct window *);

#endif
