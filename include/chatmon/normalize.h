/* normalize: the text rules match against, with every byte mapped back to the original (pure; no I/O). */
#ifndef CHATMON_NORMALIZE_H
#define CHATMON_NORMALIZE_H

#include <stddef.h>
#include <stdint.h>

/* The steps, applied in this order; a rule may opt out of any of them. */
enum {
	NORM_NFKC	= 1u << 0,	/* NFKC + case folding (utf8proc), then ICU's look-alikes: ＱＱ -> qq, ① -> 1, Cyrillic х -> x */
	NORM_T2S	= 1u << 1,	/* traditional -> simplified, per character (OpenCC's table) */
	NORM_NOISE	= 1u << 2,	/* drop short runs of spaces, punctuation, symbols, emoji, zero-width, variation selectors */
	NORM_DIGITS	= 1u << 3,	/* numeral runs -> ASCII digits: 一三八/幺三八/壹叁捌/١٣٨ -> 138 */
	NORM_ALL	= 0xfu,		/* the steps a rule gets unless it opts out */
	NORM_SOUND	= 1u << 4,	/* opt-in: ideographs and typed pinyin -> sound tokens: 威信, 卫星, wei xin -> one form */
	NORM_STEPS	= 0x1fu,	/* every step */
};

/*
 * The sound view: each ideograph is replaced by the token of its toneless
 * pinyin syllable (ICU's reading, with zh/ch/sh folded into z/c/s and -ng
 * into -n), a private-use character from NORM_SOUND_BASE on; a run of Latin
 * letters that reads as pinyin syllables (weixin, wei xin once noise is
 * gone) becomes the same tokens, each mapped to its first letter: the
 * longest run of whole words (as the writer broke them) that does, the
 * words after it read again (jia wo wei xin abc: four tokens, then abc).
 * Other characters stay as the other steps left them.
 */
#define NORM_SOUND_BASE	0xE000u

/* Noise runs of at most this many code points are removed; longer ones become one space. */
#define NORM_MAX_GAP		3
/* Numerals are folded only in runs of at least this many (so 一次, 第一 stay words). */
#define NORM_MIN_NUMERAL_RUN	3

/*
 * A normaliser owns its buffers and reuses them: they grow to the largest
 * text seen and are never shrunk, so normalising allocates nothing once warm.
 * Not thread-safe; one per thread.
 */
struct norm;

struct norm *norm_new(void);	/* caller owns; NULL on ENOMEM */
void	norm_free(struct norm *);

/*
 * Normalises len bytes of text (any bytes: invalid UTF-8 is replaced by
 * U+FFFD, never an error) with the given steps. The results belong to the
 * normaliser and stay valid until its next norm_run:
 *   *out, *out_len: the normalised UTF-8, NUL-terminated;
 *   *map: for every byte i of *out, map[i] is the index (in code points) of
 *         the original character it came from; map[*out_len] is the number
 *         of code points in the original. The map never decreases; the
 *         bytes of one output character share one index, except in the
 *         sound view, where a token of typed letters maps its last byte to
 *         its last letter.
 * Returns 0, or -1 on allocation failure.
 */
int	norm_run(struct norm *, const char *text, size_t len, unsigned steps,
	    const char **out, size_t *out_len, const uint32_t **map);

/*
 * Whether the last norm_run, made with the noise step, found any noise.
 * When it found none, the same text without that step (the other steps
 * alike) normalises to the same bytes and the same map.
 */
int	norm_noisy(const struct norm *);

/*
 * Whether the original of the last norm_run held plain characters only:
 * ASCII, the CJK ideographs (U+4E00-9FFF, U+3400-4DBF, planes 2 and 3)
 * and the punctuation of Chinese text (U+2010-2027 but U+2017,
 * U+3000-303F, U+FF01-FF5E). Invalid UTF-8 is not plain.
 */
int	norm_plain(const struct norm *);
/*
 * The ends of the last run's text (without the sound step), which decide
 * how it joins another normalised text: the noise dropped before its
 * first character and after its last, counted as the noise step counts
 * it (in graphemes; a line feed not at all), and whether each of
 * those is a numeral (ASCII digits included), which a numeral on the
 * other side would run on with. All 0 for an empty text.
 */
struct norm_ends {
	uint32_t	lead_gap, trail_gap;
	int		lead_num, trail_num;
};
void	norm_ends(const struct norm *, struct norm_ends *);
/* Whether len bytes of s are valid UTF-8 of plain characters only. */
int	norm_plain_text(const char *s, size_t len);
/*
 * Whether len bytes of s say nothing: empty, or valid UTF-8 of spaces,
 * separators, controls and invisible format characters only (Unicode
 * categories Z* , Cc, Cf: U+3000, U+200B, U+FEFF...).
 */
int	norm_blank_text(const char *s, size_t len);

/*
 * Whether the given steps make only plain characters of plain ones (every
 * plain character is normalised once to find out): then a text that is
 * plain normalises to plain characters, and a word with any other
 * character cannot occur in it. 1 or 0, -1 on ENOMEM. Runs n.
 */
int	norm_plain_closed(struct norm *, unsigned steps);

/*
 * The original of the last norm_run as valid UTF-8 (invalid bytes replaced),
 * and the byte offset of its code point `cp` (cp may equal the count: the end).
 */
const char *norm_orig(const struct norm *, size_t *len);
size_t	norm_orig_offset(const struct norm *, uint32_t cp);

/*
 * The sound token of one character of a pattern or a word (an ideograph,
 * once simplified), or cp itself when it has none: rules written for the
 * sound view are converted with it, character by character.
 */
uint32_t norm_sound_char(uint32_t cp);

/* Maps a match [start, end) in the normalised bytes to original code points [*cs, *ce). */
void	norm_span(const uint32_t *map, size_t start, size_t end, uint32_t *cs,
	    uint32_t *ce);

#endif
