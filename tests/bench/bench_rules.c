/* bench_rules: messages per second through the rules engine vs every rule's regex on every message, in one run. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

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

/* Messages per second over at least `secs` seconds; *hits counts the hits of one pass. */
static double
rate(struct rules *r, const struct corpus *c, match_fn fn, double secs,
    size_t *hits)
{
	const struct rules_hit	*h;
	double			 t0, t;
	size_t			 i, msgs = 0, pass;

	*hits = 0;
	for (i = 0; i < c->n; i++)	/* warm up: buffers grow, caches fill */
		*hits += fn(r, RULES_AGENT, c->text[i], c->len[i], &h);
	t0 = now();
	do {
		for (pass = 0; pass < 20; pass++)
			for (i = 0; i < c->n; i++)
				fn(r, RULES_AGENT, c->text[i], c->len[i], &h);
		msgs += 20 * c->n;
		t = now() - t0;
	} while (t < secs);
	return (double)msgs / t;
}

int
main(int argc, char **argv)
{
	struct corpus	 c;
	struct rules	*r;
	struct sbuf	 errs;
	double		 t0, tload, tcheck, e, nv;
	size_t		 i, he, hn;
	int		 rc = 0;

	if (argc < 3) {
		fprintf(stderr, "usage: bench_rules CORPUS.jsonl NAME=RULESDIR...\n");
		return 2;
	}
	if (corpus_load(argv[1], &c) == -1)
		return 1;
	printf("corpus: %zu messages, %.1f bytes on average; one core, best of one run each\n\n",
	    c.n, (double)c.bytes / (double)c.n);
	printf("| pack | rules | load (compile) | load + examples | engine msg/s | naive msg/s | engine / naive |\n");
	printf("|---|---:|---:|---:|---:|---:|---:|\n");
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
		e = rate(r, &c, rules_match, 2.0, &he);
		nv = rate(r, &c, rules_match_naive, 2.0, &hn);
		if (he != hn) {
			fprintf(stderr, "%s: the engine found %zu hits, naive %zu\n",
			    name, he, hn);
			rc = 1;
		}
		printf("| %s | %zu | %.1f ms | %.1f ms | %.0f | %.0f | %.1f× |\n", name,
		    rules_count(r), tload * 1e3, tcheck * 1e3, e, nv, e / nv);
		rules_free(r);
		sbuf_free(&errs);
	}
	return rc;
}
