/* rules_lit: required-literal extraction from a PCRE2 pattern, for the rules prefilter (private to src/rules*.c; pure). */
#ifndef CHATMON_RULES_LIT_H
#define CHATMON_RULES_LIT_H

#include <stddef.h>
#include <stdint.h>

#define RULES_MAX_AND		8	/* required sets of one clause */
#define RULES_MAX_CLAUSE	8	/* clauses (top-level alternatives) of one rule */
#define RULES_MAX_TAIL		44	/* bytes of an ending (rules_lit_suffix) */

/*
 * A set of literals, one of which is in every match (of the piece of
 * pattern it was read from). Literals are NUL-terminated UTF-8, ASCII
 * letters folded to lower case as the normalised text is, at most 48 bytes
 * (a longer literal is cut to a prefix, which is still required).
 */
#define RULES_MAX_LIT		48	/* bytes of a literal kept (a prefix is still required) */

#define RULES_LIT_INLINE	4	/* literals a set holds without an array of its own */

/*
 * The literals sit in fixed slots, the first RULES_LIT_INLINE in the set
 * itself (s and h point at inl_s and inl_h until it grows past them): a
 * load builds about two million sets, most of one to four literals, and an
 * allocation per literal and per array was most of its mallocs. A set is
 * only ever handled by pointer (its arrays may point into it).
 */
struct rules_lit_set {
	char		(*s)[RULES_MAX_LIT + 1];
	uint32_t	 *h;	/* a hash of each literal, to find a copy in one compare */
	size_t		  n, cap;
	size_t		  wmin;	/* its weakest literal's weight (rules_lit.c), when n > 0 */
	char		  inl_s[RULES_LIT_INLINE][RULES_MAX_LIT + 1];
	uint32_t	  inl_h[RULES_LIT_INLINE];
};

/*
 * A clause: sets that must all be seen (an AND of ORs), e.g. 加我 ... 微信
 * gives one of {加, 添加} and one of {微信, vx}. The sets are owned by the
 * clause; an empty clause constrains nothing.
 */
struct rules_lit_req {
	struct rules_lit_set	*set[RULES_MAX_AND];
	size_t			 n;
};

/* A rule's prefilter: it is a candidate when any clause has all its sets seen. */
struct rules_lit_pf {
	struct rules_lit_req	clause[RULES_MAX_CLAUSE];
	size_t			n;
};

/*
 * The required literal sets of a whole pattern (NUL-terminated, as the
 * loader expands it: lists and macros already in place), read into clause,
 * which must be empty: one clause per top-level alternative, the last one
 * taking the alternatives past RULES_MAX_CLAUSE. Every string the pattern
 * matches (caselessly, in normalised text) contains a literal of every set
 * of at least one clause; test_rules_lit.c's test_known_gaps lists the
 * forms for which that does not hold yet. Returns the number of clauses, 0
 * (clause left empty) when the pattern requires nothing that can be found
 * or cannot be read: 0 is always safe, the rule is then confirmed on every
 * message. Running out of memory only loses sets.
 */
size_t	rules_lit_required(const char *pattern,
	    struct rules_lit_req clause[RULES_MAX_CLAUSE]);

/*
 * The strings one of which every match of pattern ends with (its last
 * atoms' strings: 不(?:算|在)(?:里面|范围) gives {在里面, 算里面, 在范围,
 * 算范围}), as one set added to tail, which must be empty. Returns 1, or
 * 0 (tail left empty) when some match may end otherwise or the strings
 * are unknown, too many, or not found as written in the normalised text.
 */
int	rules_lit_suffix(const char *pattern, struct rules_lit_req *tail);

/*
 * The characters one of which every match of pattern starts with (its
 * first atoms' first characters: 不(?:走|通过) gives {不}, (?:给您)?返
 * gives {给, 返}; lookarounds and anchors match nothing and are passed
 * over), as one set of one-character strings added to heads, which must
 * be empty. Returns 1, or 0 (heads left empty) when a match may start
 * otherwise or the characters are unknown, too many, or not found as
 * written in the normalised text.
 */
int	rules_lit_heads(const char *pattern, struct rules_lit_req *heads);

/*
 * The top-level alternatives of a pattern (as rules_lit_required reads
 * them: the last of RULES_MAX_CLAUSE takes the alternatives past it), for
 * compiling each on its own: alternative i is the bytes from at[i] to
 * at[i + 1] - 1 (the '|' between them left out). Returns their number, 1
 * (the whole pattern) when there is no '|' at the top or when a construct
 * ties the alternatives together: a back-reference, a subroutine call or
 * recursion, a condition, a verb, an option setting at the top level.
 */
size_t	rules_lit_branches(const char *pattern,
	    size_t at[RULES_MAX_CLAUSE + 1]);

/*
 * The pattern with each top-level alternative that is a whole
 * non-capturing group, (?:A|B), replaced by its own alternatives, at every
 * level (rules_lit_branches then cuts A and B apart, each with its own
 * literals: a pack's rules are often one macro, ${name}, which the loader
 * wraps in a group). It matches what pattern matches, the same first
 * match included. A pattern that cannot be cut (rules_lit_branches)
 * comes back as it is. Owned by the caller; NULL on ENOMEM.
 */
char	*rules_lit_flatten(const char *pattern);

/* Frees a clause's sets; it is empty again. */
void	rules_lit_req_clear(struct rules_lit_req *);

/* Drops the sets of common words from a clause that has a selective set. */
void	rules_lit_req_trim(struct rules_lit_req *);

/* Frees every clause's sets; pf is empty again. */
void	rules_lit_pf_clear(struct rules_lit_pf *);

/*
 * A near cue must match too: the most selective of its sets joins every
 * clause of pf (or stands alone when pf has none). near is left as it is.
 */
void	rules_lit_pf_and_near(struct rules_lit_pf *pf,
	    const struct rules_lit_pf *near);

#endif
