/* rules_int: the rule set's shared types and internal calls, for src/rules*.c only. */
#ifndef CHATMON_RULES_INT_H
#define CHATMON_RULES_INT_H

/*
 * The rules module is six files; each calls only the ones below it.
 *
 *   rules_load.c      YAML schema, lists and macros (bounded expansion),
 *                     files and directories, errors as FILE:LINE
 *   rules_example.c   the examples runner (rules_test), run at every load
 *   rules_prefilter.c the literals, automatons and filters a loaded set
 *                     is matched through (rules_add_prefilter, rules_prepare)
 *   rules_compile.c   a rule's patterns compiled: branches, anchored
 *                     twins, first characters, the sound view's patterns
 *   rules.c           matching: prefilter, PCRE2 confirmation, near,
 *                     unless, whole, the window pass's notes, hits; the
 *                     set's lifetime
 *   rules_lit.c       the literals a pattern requires (rules_lit.h), pure
 *
 * The one exception: the set's lifetime in rules.c (rules_free, and the
 * naive baseline's JIT) frees and compiles what the two files above it
 * made. This header declares the calls between them (and the small inline
 * helpers several use); rules_lit.h those into rules_lit.c. No file
 * includes a header of a file above it.
 */

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "chatmon/rules.h"
#include "chatmon/util.h"
#include "rules_lit.h"

#define RULES_NMASKS		32	/* every combination of the normalisation steps */
#define RULES_CLEAR_WITHIN	6	/* clear: characters looked at either side, by default */
#define RULES_MAX_UNLESS_PARTS	32	/* alternatives of one unless pattern run apart */
#define RULES_MAX_BRANCH	32	/* top-level alternatives of a rule run apart (bits of an unsigned) */
#define RULES_UNIT(rule, branch)	((uint32_t)((rule) * RULES_MAX_BRANCH + (branch)))
#define RULES_VETO			0x80000000u	/* a unit that is an unless pattern */
#define RULES_LATE			0x40000000u	/* a branch's ending, reported in the window pass */

struct rules_example_src {
	char	*text;
	size_t	 line;
	int	 want;		/* 1: match, 0: no_match */
};

/*
 * What clears a match when found next to it (docs/rules.md, "Context"): a
 * cue ending just before it (a negation, a warning), one starting just
 * after it, or quotation marks around it. Two negations in a row cancel.
 */
struct rules_clear {
	pcre2_code		*before;
	pcre2_code		*after;
	uint32_t		 within;	/* code points */
	int			 quoted;
};

/*
 * A top-level alternative of a rule's pattern (the last one takes those
 * past RULES_MAX_CLAUSE), compiled on its own so that only the
 * alternatives whose literals occur are run. The first match of A|B is the
 * leftmost of A's and B's first matches, A's when both start at one place,
 * so matching the branches apart finds what the whole pattern finds.
 */
/* A literal of a unit's set, as the loader adds it (owns s). */
struct rules_litpair {
	char			*s;
	unsigned		 mask;		/* the normalisation of its text */
	uint32_t		 unit;
	uint64_t		 bit;
};

/* What a report of the literal marks: the bit of a unit's set. */
struct rules_pair {
	uint64_t		 bit;
	uint32_t		 unit;
};

#define RULES_JPAIR_LOG		16	/* bits of the filter of window literals' character pairs: 2^16 */
#define RULES_VFOUND		64	/* literals found whose vetoes' marking waits */
#define RULES_HEAD_LOG		10	/* bits of a branch's first-character filter: 2^10 */
#define RULES_HEAD_WORDS	((1u << RULES_HEAD_LOG) / 64)

/* A character of a view that can start a match with heads (rules_branch_match). */
struct rules_hpos {
	uint32_t	off;	/* its byte offset */
	uint32_t	bit;	/* rules_head_bit of it */
};

/*
 * A pair of quotation marks of a message's original, by byte offsets
 * (rules_quotes in rules.c): in the order they open.
 */
struct rules_quote {
	uint32_t	open;
	uint32_t	close;	/* UINT32_MAX: never closed */
	uint32_t	prev;	/* while pairing: the pair its kind opened before it, or UINT32_MAX */
	uint32_t	reach;	/* the furthest closing mark of it and the pairs before it */
};

struct rules_branch {
	pcre2_code		*re;
	/*
	 * When every match starts with a character of a known set
	 * (rules_lit_heads): the pattern compiled anchored, and a filter of
	 * those characters (hashed, RULES_HEAD_WORDS words). A search is
	 * then a walk over the text trying the anchored pattern only where
	 * such a character stands, instead of PCRE2 trying every position.
	 * NULL both, else.
	 */
	pcre2_code		*anch;
	uint64_t		*head;
	int			 always;	/* no required literal: always confirmed */
	uint64_t		 need[RULES_MAX_CLAUSE];	/* per clause: the bits of its sets */
	size_t			 nclause;
	struct rules_lit_req	 tail;		/* while loading: what every match ends with */
};

/*
 * What the loops over the touched units read of one (a rule's branch),
 * packed in 16 bytes: a rule is over a kilobyte and the loops touch about
 * 45 units a message, of which about 3 are candidates.
 */
enum rules_unit_test {
	RULES_UNIT_NEVER,	/* no clause: never a candidate by its sets */
	RULES_UNIT_ONE,		/* one clause: need */
	RULES_UNIT_MANY,	/* several: the branch's own test */
	RULES_UNIT_ALWAYS	/* no required literal */
};

struct rules_unit {
	uint64_t		 need;		/* RULES_UNIT_ONE: the sets of its clause */
	uint8_t			 test;		/* enum rules_unit_test */
	uint8_t			 roles;		/* the rule's enum rules_role bits */
	uint8_t			 window;	/* the rule is marked window */
};

/*
 * An `unless` pattern's prefilter: it can only match when a literal of each
 * set of one of its clauses occurs, so a veto whose words are absent from
 * the message is not run.
 */
struct rules_veto {
	uint32_t		 rule;
	int			 always;	/* no required literal: always run */
	uint64_t		 need[RULES_MAX_CLAUSE];
	size_t			 nclause;
};

struct rule {
	struct rules_hit	 proto;		/* id, category, message, severity, action */
	unsigned		 roles;		/* enum rules_role bits */
	unsigned		 steps;		/* normalisation steps */
	int			 enabled;
	int			 window;	/* also matched across a speaker's turns */
	unsigned		 ends;		/* the branches whose every match ends with a known literal */
	unsigned		 late;		/* window pass: those whose ending occurred in the last turn */
	struct rules_clear	 clear;
	struct rules_branch	 br[RULES_MAX_BRANCH];
	size_t			 nbr;
	/*
	 * 1 + the index of an earlier rule with the very same pattern and
	 * steps (a block rule and its warn twin, one pattern in two
	 * categories), whose compiled branches this one shares: their first
	 * match in a text is looked for once (rules_first). 0: its own.
	 */
	size_t			 same;
	char			*expanded;	/* while loading only: the pattern as compiled */
	unsigned		 cand;		/* match-time: the bits of the candidate branches */
	uint64_t		 hit_turn;	/* match-time: the last rules_match it hit (r->turn) */
	pcre2_code		*near_re;
	uint32_t		 near_within;	/* code points either side */
	size_t			 whole_max;	/* whole: the longest word, normalised (bytes) */
	pcre2_code		**unless;
	size_t			 nunless;
	size_t			 veto;		/* r->vetoes index of unless[0]; the others follow */
	char			*file;
	size_t			 line;
	struct rules_example_src *ex;
	size_t			 nex;
};

struct rules_load_def;			/* a list or a macro: rules_load.c's */

/* A rule's last first match, by what it was asked with (rules_first). */
struct rules_first_memo {
	uint64_t		 turn;		/* r->turn; 0: none yet */
	int			 windowed;
	const char		*t;
	size_t			 len, off;
	unsigned		 mask;
	int			 found;
	size_t			 s, e;
};

/*
 * The searches of one rule's branches in one text, kept while the rule
 * walks its occurrences (rules_first): a branch's leftmost match at or
 * after `from` is the leftmost at or after any later start up to it, and
 * a branch with none after `from` has none after a later start, so each
 * branch's text is searched about once per walk, not once per occurrence
 * (a megabyte of occurrences cost a minute).
 */
struct rules_branch_memo {
	uint64_t		 turn;		/* r->turn; 0: none yet */
	int			 windowed;
	const char		*t;
	size_t			 len, rule;
	uint32_t		 known, found;	/* a bit per branch */
	size_t			 from[RULES_MAX_BRANCH];
	size_t			 s[RULES_MAX_BRANCH], e[RULES_MAX_BRANCH];
};

struct rules {
	struct rule		*rule;
	size_t			 nrule, rulecap;	/* rulecap: r->rule's room, doubled as it fills */
	struct rules_load_def	*def;		/* while loading only */
	size_t			 ndef;
	int			 defs_full;	/* RULES_MAX_DEFS said once */
	/*
	 * One automaton for each normalisation a rule asks for, over that
	 * text. Every (literal, unit, set bit) of every rule, a unit being a
	 * rule's branch (RULES_UNIT); an automaton knows each distinct
	 * literal of its text once, as the index of its first pair (the pairs
	 * are sorted by text, then literal), and one report marks all its
	 * units.
	 */
	struct acm		*acm[RULES_NMASKS];
	unsigned		 acm_masks;	/* the bits of the masks that have one */
	struct acm		*wacm[RULES_NMASKS];	/* the window pass's: window rules' literals and endings */
	unsigned		 wacm_masks;
	struct rules_litpair	*lit;		/* while loading only: as added */
	size_t			 litcap;
	struct rules_pair	*pair;		/* from the build on: sorted */
	/* a literal's pairs, by its ids (the turn's automaton's, the window pass's) */
	uint32_t		*lit_end;	/* by the turn's: one past its last branch's pair */
	uint32_t		*lit_wend;	/* by the window's: one past its last of a window rule's branch */
	uint32_t		*lit_veto;	/* by either: its first veto's pair */
	uint32_t		*lit_vend;	/* by the turn's: one past its last veto's pair */
	uint32_t		*lit_wvend;	/* by the window's: one past its last of a window rule's veto */
	size_t			 nlit;
	int			 jit;
	size_t			 enabled;
	/* match-time scratch, sized at load */
	struct norm		*norm[RULES_NMASKS];	/* made when first needed */
	const char		*ntext[RULES_NMASKS];
	size_t			 nlen[RULES_NMASKS];
	const uint32_t		*nmap[RULES_NMASKS];
	unsigned		 nsrc[RULES_NMASKS];	/* whose normaliser holds the view (its original) */
	unsigned		 nvalid;	/* masks normalised for this message */
	uint64_t		*seen;		/* per unit: the sets a literal of which occurred */
	uint32_t		*touched;	/* the units whose seen is not 0 */
	size_t			 ntouched;
	uint32_t		*always;	/* units of enabled rules without literals */
	size_t			 nalways;
	uint32_t		*cands;		/* the rules with a candidate branch */
	size_t			 ncands;
	uint32_t		*lates;		/* the rules whose late is not 0 */
	size_t			 nlates;
	const uint32_t		*scan_map;	/* the map of the text being scanned */
	struct rules_veto	*vetoes;	/* every rule's unless patterns, in order */
	size_t			 nveto, vetocap;
	uint64_t		*vseen;		/* per veto: the sets a literal of which occurred */
	uint32_t		*vtouched;	/* the vetoes whose vseen is not 0 */
	size_t			 nvtouched;
	uint32_t		*vfound;	/* literals found whose vetoes are not marked yet */
	size_t			 nvfound;	/* at most RULES_VFOUND, then they are */
	int			 prefiltered;	/* this match went through the automaton */
	int			 anchored;	/* branches with heads searched anchored (rules_branch_match) */
	int			 naive_jit;	/* the naive baseline ran: every branch is JIT-compiled */
	/*
	 * Per view of this text (by nsrc), made when a branch with heads is
	 * first searched in it: each character that can be a head, its byte
	 * offset and its filter bit, so that each branch's walk is a test a
	 * character. Grown, never shrunk.
	 */
	struct rules_hpos	*hpos[RULES_NMASKS];
	size_t			 nhpos[RULES_NMASKS], hposcap[RULES_NMASKS];
	unsigned		 hvalid;	/* the views whose hpos is this text's */
	/*
	 * The quotation marks of the original of this text, paired when a
	 * `quoted` clear is first asked (rules_quotes): qorig is the
	 * original they are of, NULL for none yet. Grown, never shrunk.
	 */
	struct rules_quote	*quote;
	size_t			 nquote, quotecap;
	const char		*qorig;
	struct rules_hit	*hits;
	pcre2_match_data	*md;
	pcre2_match_context	*mctx;
	const char		*otext;		/* original, for the hits */
	size_t			 olen;
	int			 oom;
	unsigned		 limit_left;	/* match limit hits the rule being confirmed may still take */
	uint64_t		 turn;		/* rules_match calls: which turn a rule last hit */
	struct rules_first_memo	*memo;		/* per rule: its last rules_first (rules_prepare) */
	struct rules_branch_memo bmemo;		/* the rule walking its occurrences (rules_first) */
	int			 windowed;	/* a window pass: window rules only */
	uint32_t		 boundary;	/* and only hits across this code point */
	size_t			 nwindow;	/* rules marked window */
	unsigned		 plain_blind;	/* views a plain text makes no candidate in (rules_plain_blind) */
	/* notes (rules_note_take) */
	uint64_t		 gen;		/* this set's, unique in the process */
	int			 wgate;		/* notes can tell that the window pass finds nothing */
	size_t			 wmaxlit;	/* the window pass's longest literal in the default view */
	uint64_t		*jpairs;	/* 2^RULES_JPAIR_LOG bits: the window literals' character pairs (rules_jpair) */
	struct rules_unit	*unit;		/* per unit: what the hot loops read of it */
	struct rules_note	 cur;		/* the last rules_match's window branches */
	int			 cur_over;	/* more than a note holds */
};

/*
 * The loader's calls into rules.c, in the order of a load: rules_new, then
 * rules_compile for each pattern and rules_add_prefilter before each rule
 * is appended to r->rule, then rules_prepare once, after the last rule.
 */

/*
 * An empty set with its match-time scratch (normalisers, match data, a
 * match context with PCRE2's limits); flags as rules_load_files's (it reads
 * RULES_NO_JIT). Owned by the caller (rules_free); NULL on ENOMEM.
 */
struct rules	*rules_new(unsigned flags);

/*
 * Compiles len bytes of an expanded pattern (lists and macros in place,
 * NUL-terminated), JIT-compiled while r->jit (which drops to 0 when the JIT
 * is unavailable: the interpreter still matches). When pf is not NULL, the
 * pattern's required literals go into it (it must be empty). Returns the
 * code, owned by the caller, or NULL with PCRE2's error code and offset in
 * *ec and *off.
 */
pcre2_code	*rules_compile(struct rules *r, const char *pattern, size_t len,
		    struct rules_lit_pf *pf, int *ec, size_t *off);

/*
 * Compiles a pattern of which only "does any of it match" is asked (an
 * `unless`) as its top-level alternatives apart, groups opened
 * (rules_lit_flatten), at most max of them, into re[0..n) with each one's
 * required literals in pf[i] (which must be empty): each is then run only
 * when its own words occur. The pattern whole (n = 1) when it cannot be cut
 * or an alternative cannot stand alone. Returns n, or 0 with PCRE2's error
 * code and offset in the whole pattern in *ec and *off.
 */
size_t		 rules_compile_any(struct rules *r, const char *pattern,
		    size_t len, pcre2_code **re, struct rules_lit_pf *pf,
		    size_t max, int *ec, size_t *off);

/*
 * Compiles a rule's own expanded pattern (as rules_compile) into ru's
 * branches, each branch's required literals into pf[b] (which must be
 * empty). 0, or -1 with PCRE2's error code and offset in the whole pattern
 * in *ec and *off (*ec 0 on ENOMEM).
 */
int		 rules_compile_rule(struct rules *r, struct rule *ru,
		    const char *pattern, size_t len,
		    struct rules_lit_pf pf[RULES_MAX_BRANCH], int *ec, size_t *off);

/*
 * Registers the prefilter of ru, the rule about to be appended as
 * r->rule[r->nrule]: for each branch b the literals of pf[b] (its
 * pattern's) and of npf (the near cue's), and those of upf[k] for its
 * unless pattern k; it may change the sets of pf and upf. 0, or -1 on
 * ENOMEM.
 */
int		 rules_add_prefilter(struct rules *r, struct rule *ru,
		    struct rules_lit_pf pf[RULES_MAX_BRANCH],
		    const struct rules_lit_pf *npf, struct rules_lit_pf *upf);

/* After the last rule: builds the automaton and sizes the scratch; 0, or -1 on ENOMEM. */
int		 rules_prepare(struct rules *r);

/* Frees what ru holds (not ru itself). */
void		 rules_free_rule(struct rule *ru);

/* JIT-compiles re while r->jit, which drops to 0 when the JIT is unavailable. */
void		 rules_jit_compile(struct rules *r, pcre2_code *re);

/* Frees the literals as added (rules_add_prefilter): the automatons and the pairs have them. */
void		 rules_free_lits(struct rules *r);

/* The normaliser of mask, made when first asked for; NULL on ENOMEM. */
struct norm	*rules_norm(struct rules *r, unsigned mask);

/*
 * A pattern written for the sound view (rules marked normalize: {sound:
 * true}), its ideographs replaced by their sound tokens in place; 0, or -1
 * on ENOMEM.
 */
int		 rules_sound_pattern(struct sbuf *pattern);

/*
 * Matches a message: every enabled rule of role through the prefilter, or
 * without it (prefilter 0), or rule only alone, enabled or not (only >= 0).
 * Hits as rules_match's.
 */
size_t		 rules_run(struct rules *r, enum rules_role role,
		    const char *text, size_t len, int prefilter, ssize_t only,
		    const struct rules_hit **hits);

/* The code point of a three-byte UTF-8 character (an ideograph, a head). */
static inline uint32_t
rules_cp3(const unsigned char *p)
{
	return (p[0] & 0x0fu) << 12 | (p[1] & 0x3fu) << 6 | (p[2] & 0x3fu);
}

/* The length of the UTF-8 character that lead byte c begins. */
static inline size_t
rules_utf8_len(unsigned char c)
{
	return c < 0x80 ? 1 : c < 0xe0 ? 2 : c < 0xf0 ? 3 : 4;
}

/* A first character's bit in a head filter. */
static inline uint32_t
rules_head_bit(uint32_t cp)
{
	return (cp * 0x9e3779b1u) >> (32 - RULES_HEAD_LOG);
}

/* The filter bit of two characters that follow each other: n bytes at p. */
static inline uint32_t
rules_jpair(const unsigned char *p, size_t n)
{
	return (util_fnv1a32(p, n) * 0x9e3779b1u) >> (32 - RULES_JPAIR_LOG);
}

#endif
