/* detect: one chat turn through the rules, alone and with its speaker's last turns (pure). */
#ifndef CHATMON_DETECT_H
#define CHATMON_DETECT_H

#include <stddef.h>
#include <stdint.h>

#include "chatmon/config.h"
#include "chatmon/rulebook.h"
#include "chatmon/rules.h"
#include "chatmon/window.h"

/*
 * The one place the live relay, chatmon replay and chatmon scan run the
 * rules on a turn, so the three agree: every rule on the turn alone, then
 * the rules marked window on the speaker's last turns joined (src/window.c),
 * for what only the turns together break. A rule reports once per turn.
 * A turn of a shop runs the packs that shop runs, less the rules it
 * switched off (src/rulebook.c); a turn of no shop or of a shop not
 * configured, the top-level pack alone.
 */
struct detect_hit {
	struct rules_hit	 hit;		/* offsets in text */
	/*
	 * The turn, or the turns the match spans joined (WINDOW_SEP between
	 * them, this turn whole and last): a hit across turns holds just those,
	 * not the speaker's earlier ones it does not touch. The texts of a
	 * turn's hits across turns all end with this turn in one buffer: each
	 * is a suffix of the widest.
	 */
	const char		*text;
	size_t			 text_len;
	unsigned		 turns;		/* how many turns text holds (the match spans) */
	size_t			 last;		/* where this turn starts in text (bytes; 0 alone) */
	int			 vetoed;	/* a block the model did not back: a warning now */
};

struct detect;

/* The window a configuration asks for (window.turns, .time, .bytes). */
void	detect_window_conf(const struct config *, struct window_conf *);

/* book is borrowed (detect_set_book swaps it); NULL out of memory. */
struct detect *detect_new(struct rulebook *, const struct window_conf *);
void	detect_free(struct detect *);
/*
 * Another book, borrowed. The speakers' kept turns stay; when the new
 * book's shops run another number of packs their notes go (the window
 * pass then runs on them: src/window.c).
 */
void	detect_set_book(struct detect *, struct rulebook *);
/*
 * The n-gram model's second opinion (src/model.c), borrowed, NULL for
 * none: a category it finds that no rule found on the turn is a `flag`
 * hit of rule "model.CATEGORY" over the whole turn. A rule's block needs
 * its backing too: where the model gives the block's category a
 * probability below veto (0: never) on the text the rule matched (the
 * match and the bytes next to it, docs/rules.md), the block is a warning
 * (vetoed). The model can only ever lower an action:
 * nothing but a rule a person wrote stops a message. -1 on ENOMEM.
 */
struct model;
int	detect_set_model(struct detect *, const struct model *, double veto);
void	detect_set_window(struct detect *, const struct window_conf *);

/*
 * The hits of one turn of role, said by who (the agent's id for an agent's
 * turn: each agent's turns are a window of their own; "" anyone), in shop (NUL-terminated, "" none) and
 * conversation conv (NULL: none, no window: the turn is inspected alone
 * and not kept; "" is a conversation as any other) at now_ms: the turn's
 * own longest first, then those across turns longest first, then the
 * model's. They and their strings stay valid until the next call; -1
 * (with *hits empty) when the rules could not run.
 */
ssize_t	detect_turn(struct detect *, enum rules_role role, const char *who,
	    const char *shop,
	    const char *conv, size_t conv_len, const char *text, size_t len,
	    int64_t now_ms, const struct detect_hit **hits);
/*
 * The last detect_turn's turn was blocked: it never reached the other side,
 * so its speaker's window forgets it and later turns are matched with what
 * was delivered only (a resent block is blocked again, not taken for the
 * tail of a violation already reported).
 */
void	detect_forget(struct detect *);
/* The conversation ended: its turns are forgotten. */
void	detect_end(struct detect *, const char *conv, size_t conv_len);

#endif
