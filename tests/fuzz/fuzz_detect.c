/* fuzz_detect: turns of a few conversations through detect_turn with the default pack, held to the window pass run on every turn. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "chatmon/detect.h"
#include "chatmon/rulebook.h"
#include "chatmon/rules.h"
#include "chatmon/util.h"
#include "chatmon/window.h"

#include "fuzz.h"

/*
 * The input is up to FUZZ_TURNS turns, one a line. A line's first byte
 * says who speaks and where: bit 0 the role (agent, customer), the next
 * bits one of three conversations; the rest of the line is the turn's
 * text (any bytes but a newline). Turns are 10 ms apart, so a speaker's
 * last three are always in the window.
 *
 * The pack is the one chatmond ships (conf/rules.d, or FUZZ_RULES_DIR),
 * loaded twice at start, alike (PCRE2's JIT and its interpreter may part
 * where a match limit is reached: on a long run of digits they found
 * extortion.wide_2 at different starts, which is not this harness's
 * business): detect_turn gets one copy and skips the window
 * pass when the turns' notes say it cannot find anything
 * (rules_window_needed: the notes, the junctions between turns, their
 * filter); the other copy is the oracle, test_detect.c's: rules_match of
 * the turn, then rules_match_window over the same turns joined, every
 * time. What is checked: the same hits (rule, code points, across turns
 * or not) in the same order, whatever the text; that is, the gate only
 * ever skips a pass that finds nothing. The small pack of test_detect.c
 * cannot show what the real pack's literals, endings and views do.
 */

#define FUZZ_TURNS	16

static struct rules	*engine, *oracle;
static struct rulebook	*book;
static struct rules_hit	*want;	/* the oracle's hits: a rule once a pass, two passes */
static size_t		 nwant;
static const struct window_conf fuzz_wc = { 3, 60000, 512, 16, 0 };

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char	*dir = getenv("FUZZ_RULES_DIR");
	struct sbuf	 errs;

	(void)argc;
	(void)argv;
	if (dir == NULL)
		dir = "conf/rules.d";	/* run.sh and make run from the top */
	sbuf_init(&errs);
	engine = rules_load_dir(dir, RULES_SKIP_EXAMPLES, &errs);
	oracle = rules_load_dir(dir, RULES_SKIP_EXAMPLES, &errs);
	if (engine == NULL || oracle == NULL ||
	    (book = rulebook_of(engine)) == NULL) {
		fprintf(stderr, "fuzz_detect: %s: %s\n", dir, sbuf_str(&errs));
		abort();
	}
	sbuf_free(&errs);
	FUZZ_CHECK(rules_window_count(engine) > 0);
	nwant = 2 * rules_count(oracle);
	if ((want = calloc(nwant, sizeof(*want))) == NULL)
		abort();
	return 0;
}

/* One turn through both; aborts when they differ. */
static void
turn(struct detect *d, struct window *w, const char *conv,
    enum rules_role role, const char *text, size_t len, int64_t now)
{
	const struct detect_hit	*dh;
	const struct rules_hit	*h;
	const char		*joined;
	size_t			 n, nw = 0, i, jlen, last, nturns;
	ssize_t			 got;
	int			 same;
	uint32_t		 shift;

	n = rules_match(oracle, role, text, len, &h);
	FUZZ_CHECK(n <= nwant / 2);
	memcpy(want, h, n * sizeof(*h));
	FUZZ_CHECK(window_add(w, conv, strlen(conv), (int)role, "", text, len, now,
	    &joined, &jlen, &last, &nturns) == 0);
	if (nturns > 1) {
		nw = rules_match_window(oracle, role, joined, jlen,
		    (uint32_t)util_utf8_count(joined, last), &h);
		FUZZ_CHECK(nw <= nwant / 2);
		memcpy(want + n, h, nw * sizeof(*h));
	}
	got = detect_turn(d, role, "", "", conv, strlen(conv), text, len, now, &dh);
	same = got == (ssize_t)(n + nw);
	for (i = 0; same && i < n + nw; i++) {
		/*
		 * a hit across turns counts in the turns its match spans (the
		 * joined text's end): the oracle's in the joined text whole
		 */
		shift = i < n || dh[i].text_len > jlen ? 0 : (uint32_t)
		    util_utf8_count(joined, jlen - dh[i].text_len);
		same = strcmp(dh[i].hit.rule, want[i].rule) == 0 &&
		    dh[i].hit.start + shift == want[i].start &&
		    dh[i].hit.end + shift == want[i].end &&
		    (dh[i].turns > 1) == (i >= n);
	}
	if (!same) {
		fprintf(stderr, "fuzz_detect: %s, %s: %zd hits, the oracle %zu "
		    "+ %zu across turns\n", conv, role == RULES_AGENT ?
		    "agent" : "customer", got, n, nw);
		for (i = 0; i < n + nw; i++)
			fprintf(stderr, "  oracle: %s [%u, %u)\n", want[i].rule,
			    want[i].start, want[i].end);
		for (i = 0; got > 0 && i < (size_t)got; i++)
			fprintf(stderr, "  detect: %s [%u, %u) %u turns\n",
			    dh[i].hit.rule, dh[i].hit.start, dh[i].hit.end,
			    dh[i].turns);
	}
	FUZZ_CHECK(same);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct detect	*d;
	struct window	*w;
	const uint8_t	*p = data, *end = data + size, *nl;
	char		 conv[8], *text;
	size_t		 k, len;

	/* each input a new conversation store: nothing carries over */
	if ((d = detect_new(book, &fuzz_wc)) == NULL ||
	    (w = window_new(&fuzz_wc)) == NULL)
		abort();
	for (k = 0; k < FUZZ_TURNS && p < end; k++, p = nl + 1) {
		if ((nl = memchr(p, '\n', (size_t)(end - p))) == NULL)
			nl = end;
		len = (size_t)(nl - p);
		snprintf(conv, sizeof(conv), "c%u",
		    len ? (unsigned)(p[0] >> 1) % 3 : 0u);
		/* the text alone, NUL-terminated, so ASan sees every overread */
		text = fuzz_strndup(len ? p + 1 : p, len ? len - 1 : 0);
		turn(d, w, conv, len && (p[0] & 1) ? RULES_CUSTOMER :
		    RULES_AGENT, text, len ? len - 1 : 0, (int64_t)k * 10);
		free(text);
	}
	window_free(w);
	detect_free(d);
	return 0;
}
