/* rules: rule files loaded, checked and compiled once; messages matched against them (pure; reads only rule files). */
#ifndef CHATMON_RULES_H
#define CHATMON_RULES_H

#include <stddef.h>
#include <stdint.h>

#include "chatmon/util.h"

enum rules_severity { RULES_INFO, RULES_WARN, RULES_CRITICAL };
enum rules_action { RULES_FLAG, RULES_WARNING, RULES_BLOCK };
enum rules_role { RULES_AGENT = 1, RULES_CUSTOMER = 2, RULES_ANY = 3 };

/* One hit. Strings belong to the rule set or to the matcher (see rules_match). */
struct rules_hit {
	const char		*rule;		/* id */
	const char		*category;
	const char		*message;	/* coaching text; "" when none */
	enum rules_severity	 severity;
	enum rules_action	 action;	/* a customer's hit is never BLOCK */
	uint32_t		 start, end;	/* code points in the original, [start, end) */
	const char		*match;		/* the original text of the match (not NUL-terminated) */
	size_t			 match_len;
};

struct rules;

/*
 * Loads every *.yaml file in dir (name order), or the given files. Returns
 * a compiled rule set owned by the caller, or NULL with every error appended
 * to errs as "FILE:LINE: message". Every rule's examples are checked.
 */
#define RULES_SKIP_EXAMPLES	1u	/* load even when examples fail (for rules_test) */
#define RULES_NO_JIT		2u	/* the interpreter only, as when the JIT is unavailable */
struct rules *rules_load_dir(const char *dir, unsigned flags, struct sbuf *errs);
/* rules_load_dir's error for a directory without one: "DIR: " RULES_NO_FILES */
#define RULES_NO_FILES	"no *.yaml rule files"
struct rules *rules_load_files(char *const *paths, size_t n, unsigned flags,
    struct sbuf *errs);
void	rules_free(struct rules *);

size_t	rules_count(const struct rules *);	/* enabled rules */
/*
 * Every rule, disabled ones too (a pack's ids, for checks across packs:
 * src/rulebook.c): rules_all of them, rule i's id (i < rules_all) with
 * where it is defined; the strings belong to the set.
 */
size_t	rules_all(const struct rules *);
const char *rules_rule(const struct rules *, size_t i, const char **file,
	    size_t *line);
int	rules_jit(const struct rules *);	/* 1 when patterns run JIT-compiled */

/*
 * The order rules_match gives its hits in: longest first, then strongest,
 * earliest, by rule id. < 0 when a comes first.
 */
int	rules_hit_order(const struct rules_hit *a, const struct rules_hit *b);

/*
 * Matches len bytes of text (any bytes) as written by role (AGENT or
 * CUSTOMER). Sets *hits to the hits, longest match first, and returns their
 * number. Hits and their strings stay valid until the next rules_match* on
 * the same set or rules_free; the set is not re-entrant. Allocates nothing
 * once its buffers have grown to the longest message seen.
 */
size_t	rules_match(struct rules *, enum rules_role role, const char *text,
	    size_t len, const struct rules_hit **hits);
/*
 * The rules marked `window` over a speaker's last turns joined (src/window.c),
 * reporting only the matches that span from an earlier turn into the last
 * one: boundary is the code point where the last turn starts. Offsets are
 * in the joined original. Called after rules_match of the last turn, it
 * leaves out the rules that turn broke alone (they are reported already).
 * Hits as rules_match's (the same storage).
 */
size_t	rules_match_window(struct rules *, enum rules_role role,
	    const char *text, size_t len, uint32_t boundary,
	    const struct rules_hit **hits);
/*
 * The window pass normalises and scans the joined turns again, and on most
 * chat finds nothing to confirm. A note of each turn, taken after its
 * rules_match and kept by the window with the turn, says which window
 * rules' word sets the turn held (and those spanning the junction with the
 * turn before it), so that rules_window_needed can tell, from the notes
 * alone, that no window rule could be a candidate in the joined text.
 * Where the joined text would not read as the turns' own texts put end to
 * end (a numeral run across the junction, a character that is not plain,
 * a turn cut to window.bytes, a note of other rules), the answer is 1.
 * The fields are rules.c's.
 */
#define RULES_NOTE_EDGE		64	/* bytes of a turn's normalised text kept at each end */
#define RULES_NOTE_SEEN		24	/* window rules' branches a note can name */
struct rules_note {
	uint64_t	gen;		/* the rule set it was taken with; 0: no note */
	uint32_t	lead_gap, trail_gap;	/* noise dropped at each end */
	uint8_t		lead_num, trail_num;	/* a numeral at each end */
	uint8_t		join_bad;	/* the joined text differs at the junction with the turn before */
	uint8_t		joined;		/* the junction's sets are in (rules_note_join) */
	uint8_t		nhead, ntail, nseen;
	char		head[RULES_NOTE_EDGE], tail[RULES_NOTE_EDGE];
	uint32_t	unit[RULES_NOTE_SEEN];
	uint64_t	bits[RULES_NOTE_SEEN];
};
/* Right after rules_match of a turn: its note (gen 0 when it cannot have one). */
void	rules_note_take(struct rules *, struct rules_note *);
/*
 * 0 when rules_match_window cannot find anything over these turns' texts
 * joined, earlier[0..n) then last. What spans a junction is read only when
 * the turns' own sets are not enough to say 1, and is added to last's note
 * (which the caller keeps with the turn) so that it is read once.
 */
int	rules_window_needed(struct rules *, enum rules_role role,
	    const struct rules_note *const *earlier, size_t n,
	    struct rules_note *last);

/* Rules marked window: when 0 there is no need to keep turns at all. */
size_t	rules_window_count(const struct rules *);

/*
 * What a plain chat turn (ASCII, ideographs, Chinese punctuation) costs
 * the set, as its load worked it out: the normalised views it reads, of
 * *views in all (a view whose rules all need a word no plain turn has is
 * skipped), the rules that have no literal to look for and so run on
 * every turn, and whether the window pass is skipped when the turns' notes
 * show nothing to find (rules_window_needed). A rule can lose either for
 * every message: `chatmon rules test` prints them for rule authors.
 */
void	rules_cost(const struct rules *, unsigned *views,
	    unsigned *plain_views, unsigned *every_turn, int *window_gate);

/* The same without the literal prefilter: every rule's regex runs (the benchmark's baseline). */
size_t	rules_match_naive(struct rules *, enum rules_role role,
	    const char *text, size_t len, const struct rules_hit **hits);

/* One example's outcome, for `chatmon rules test`. */
struct rules_example {
	const char	*rule;
	const char	*file;
	size_t		 line;
	const char	*text;
	int		 want_match;
	int		 ok;
};
/* Runs every rule's examples (disabled rules too), calling cb for each; returns the failures. */
size_t	rules_test(struct rules *, void (*cb)(const struct rules_example *,
	    void *), void *arg);

const char *rules_severity_name(enum rules_severity);
const char *rules_action_name(enum rules_action);

#endif
