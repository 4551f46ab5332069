/* bench_rules: messages per second through the rules engine vs every rule's regex on every message, in one run. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <time.h>

#include <jansson.h>

#include "chatmon/detect.h"
#include "chatmon/rules.h"

struct corpus {
	char	**text;
	size_t	 *len;
	size_t	  n;
	size_t	  bytes;
};

static double
now(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The "text" of every JSON line of path. */
static int
corpus_load(const char *path, struct corpus *c)
{
	FILE		*f;
	char		*line = NULL;
	size_t		 cap = 0;
	json_t		*o, *t;
	json_error_t	 e;

	memset(c, 0, sizeof(*c));
	if ((f = fopen(path, "r")) == NULL) {
		perror(path);
		return -1;
	}
	while (getline(&line, &cap, f) != -1) {
		if ((o = json_loads(line, 0, &e)) == NULL)
			continue;
		t = json_object_get(o, "text");
		if (json_is_string(t)) {
			c->text = realloc(c->text, (c->n + 1) * sizeof(*c->text));
			c->len = realloc(c->len, (c->n + 1) * sizeof(*c->len));
			c->len[c->n] = json_string_length(t);
			c->text[c->n] = malloc(c->len[c->n] + 1);
			memcpy(c->text[c->n], json_string_value(t), c->len[c->n] + 1);
			c->bytes += c->len[c->n];
			c->n++;
		}
		json_decref(o);
	}
	free(line);
	fclose(f);
	return c->n ? 0 : -1;
}

typedef size_t (*match_fn)(struct rules *, enum rules_role, const char *,
    size_t, const struct rules_hit **);

/*
 * The live relay's way: detect_turn, the messages dealt round-robin to 64
 * conversations a tenth of a second apart, so that the rules marked window
 * (and the window's bookkeeping) run as they do in chatmond.
 */
static struct detect	*bench_detect;
static struct rulebook	*bench_book;	/* the pack alone: a turn of no shop */
static uint64_t		 bench_turn;

static size_t
match_detect(struct rules *r, enum rules_role role, const char *text,
    size_t len, const struct rules_hit **hits)
{
	static char		 conv[64][8];	/* the ids, made once: the relay reads its id from the frame */
	const struct detect_hit	*dh;
	const char		*id;
	ssize_t			 n;

	(void)r;
	if (conv[0][0] == '\0')
		for (n = 0; n < 64; n++)
			snprintf(conv[n], sizeof(conv[n]), "c-%u", (unsigned)n);
	id = conv[bench_turn % 64];
	n = detect_turn(bench_detect, role, "", "", id, strlen(id), text, len,
	    (int64_t)(bench_turn++ * 100), &dh);
	*hits = NULL;
	return n > 0 ? (size_t)n : 0;
}

static int
bench_detect_new(struct rules *r)
{
	struct window_conf	wc = { 3, 60000, 512, 100000, 0 };

	detect_free(bench_detect);
	rulebook_free(bench_book);
	bench_detect = NULL;
	bench_turn = 0;
	if ((bench_book = rulebook_of(r)) == NULL)
		return -1;
	return (bench_detect = detect_new(bench_book, &wc)) == NULL ? -1 : 0;
}

/*
 * Messages per second: the best of `trials` runs of at least `secs` each.
 * The machine is shared; the best run is the one least disturbed by the
 * rest of it. *hits counts the hits of one pass.
 */
static double
rate(struct rules *r, const struct corpus *c, match_fn fn, int trials,
    double secs, size_t *hits)
{
	const struct rules_hit	*h;
	double			 t0, t, best = 0;
	size_t			 i, msgs, pass;

	*hits = 0;
	for (i = 0; i < c->n; i++)	/* warm up: buffers grow, caches fill */
		*hits += fn(r, RULES_AGENT, c->text[i], c->len[i], &h);
	while (trials-- > 0) {
		msgs = 0;
		t0 = now();
		do {
			for (pass = 0; pass < 10; pass++)
				for (i = 0; i < c->n; i++)
					fn(r, RULES_AGENT, c->text[i], c->len[i], &h);
			msgs += 10 * c->n;
			t = now() - t0;
		} while (t < secs);
		if ((double)msgs / t > best)
			best = (double)msgs / t;
	}
	return best;
}

/*
 * --passes N --mode engine|naive CORPUS DIR: load, then exactly N passes
 * over the corpus, silently: run under callgrind, the difference between
 * N and 0 passes is the instruction count of matching alone, which does
 * not depend on what else the machine is doing.
 */
static int
passes(int argc, char **argv)
{
	const struct rules_hit	*h;
	struct corpus		 c;
	struct rules		*r;
	struct sbuf		 errs;
	match_fn		 fn;
	long			 n, k;
	size_t			 i;

	if (argc != 7 || strcmp(argv[3], "--mode") != 0)
		return 2;
	n = atol(argv[2]);
	fn = strcmp(argv[4], "naive") == 0 ? rules_match_naive :
	    strcmp(argv[4], "window") == 0 ? match_detect : rules_match;
	sbuf_init(&errs);
	if (corpus_load(argv[5], &c) == -1)
		return 1;
	if ((r = rules_load_dir(argv[6], RULES_SKIP_EXAMPLES, &errs)) == NULL) {
		fprintf(stderr, "%s", sbuf_str(&errs));
		return 1;
	}
	if (bench_detect_new(r) == -1)
		return 1;
	/*
	 * One message first, in every run: what is done once (the naive
	 * baseline JIT-compiles the branches the engine searches anchored)
	 * is not matching, and cancels out of N passes minus 0.
	 */
	fn(r, RULES_AGENT, c.text[0], c.len[0], &h);
	for (k = 0; k < n; k++)
		for (i = 0; i < c.n; i++)
			fn(r, RULES_AGENT, c.text[i], c.len[i], &h);
	printf("%zu\n", c.n);
	detect_free(bench_detect);
	rulebook_free(bench_book);
	rules_free(r);
	sbuf_free(&errs);
	return 0;
}

int
main(int argc, char **argv)
{
	struct corpus	 c;
	struct rules	*r;
	struct sbuf	 errs;
	double		 t0, tload, tcheck, e, w, nv;
	size_t		 i, he, hw, hn;
	int		 rc = 0;

	if (argc > 1 && strcmp(argv[1], "--passes") == 0)
		return passes(argc, argv);
	if (argc < 3) {
		fprintf(stderr, "usage: bench_rules CORPUS.jsonl NAME=RULESDIR...\n"
		    "       bench_rules --passes N --mode engine|window|naive CORPUS.jsonl RULESDIR\n");
		return 2;
	}
	if (corpus_load(argv[1], &c) == -1)
		return 1;
	printf("corpus: %zu messages, %.1f bytes on average; one core, best of 7 runs of 0.3 s\n\n",
	    c.n, (double)c.bytes / (double)c.n);
	printf("| pack | rules | load (compile) | load + examples | engine msg/s | with windows msg/s | naive msg/s | engine / naive |\n");
	printf("|---|---:|---:|---:|---:|---:|---:|---:|\n");
	for (i = 2; i < (size_t)argc; i++) {
		char *name = argv[i], *dir = strchr(argv[i], '=');

		if (dir == NULL)
			return 2;
		*dir++ = '\0';
		sbuf_init(&errs);
		t0 = now();
		r = rules_load_dir(dir, RULES_SKIP_EXAMPLES, &errs);
		tload = now() - t0;
		rules_free(r);
		t0 = now();
		r = rules_load_dir(dir, 0, &errs);
		tcheck = now() - t0;
		if (r == NULL) {
			fprintf(stderr, "%s", sbuf_str(&errs));
			return 1;
		}
		e = rate(r, &c, rules_match, 7, 0.3, &he);
		if (bench_detect_new(r) == -1)
			return 1;
		w = rate(r, &c, match_detect, 7, 0.3, &hw);
		nv = rate(r, &c, rules_match_naive, 7, 0.3, &hn);
		if (he != hn) {
			fprintf(stderr, "%s: the engine found %zu hits, naive %zu\n",
			    name, he, hn);
			rc = 1;
		}
		printf("| %s | %zu | %.1f ms | %.1f ms | %.0f | %.0f | %.0f | %.1f× |\n",
		    name, rules_count(r), tload * 1e3, tcheck * 1e3, e, w, nv, e / nv);
		detect_free(bench_detect);
		bench_detect = NULL;
		rulebook_free(bench_book);
		bench_book = NULL;
		rules_free(r);
		sbuf_free(&errs);
	}
	return rc;
}
