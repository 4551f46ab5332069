/* fuzz_rules: a rule file loaded and compiled, its examples run, then a message matched by both roles, with and without the literal prefilter. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "chatmon/rules.h"
#include "chatmon/util.h"

#include "fuzz.h"

/*
 * The input is "RULE FILE\0MESSAGE": the bytes before the first NUL are
 * one rule file (YAML, as in conf/rules.d), the bytes after it one chat
 * message (any bytes, NULs included). Without a NUL the whole input is
 * the rule file and is also matched as the message: a rule file is full
 * of the words its patterns look for.
 *
 * The file is loaded from a file in memory (rules_load_files takes paths),
 * with RULES_SKIP_EXAMPLES so that a rule set loads even when its examples
 * fail; rules_test then runs the examples anyway. An input of odd length
 * is loaded with RULES_NO_JIT, so the interpreter is fuzzed too.
 *
 * What is checked: a refused file says why; every hit is readable and
 * names a loaded rule; a customer is never blocked; and
 * rules_match finds exactly what rules_match_naive does (test_rules.c's
 * test_order_and_prefilter): the prefilter may only skip rules that cannot match.
 */

static struct fuzz_file	rule_file;
static int		verbose;	/* FUZZ_VERBOSE set: say what each input did */

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fuzz_file_init(&rule_file, "fuzz-rules.yaml");
	verbose = getenv("FUZZ_VERBOSE") != NULL;
	return 0;
}

static void
example_cb(const struct rules_example *e, void *arg)
{
	size_t	*n = arg;

	FUZZ_CHECK(e->rule != NULL && e->file != NULL && e->text != NULL);
	FUZZ_CHECK(e->ok == 0 || e->ok == 1);
	(*n)++;
}

static void
check_hits(const struct rules_hit *h, size_t n, enum rules_role role,
    size_t nrules)
{
	size_t	i;
	char	*copy;

	FUZZ_CHECK(n <= nrules);
	for (i = 0; i < n; i++) {
		FUZZ_CHECK(h[i].rule != NULL && h[i].category != NULL &&
		    h[i].message != NULL);
		FUZZ_CHECK(h[i].start <= h[i].end);
		FUZZ_CHECK(h[i].severity <= RULES_CRITICAL);
		FUZZ_CHECK(h[i].action <= RULES_BLOCK);
		if (role == RULES_CUSTOMER)
			FUZZ_CHECK(h[i].action != RULES_BLOCK);
		FUZZ_CHECK(h[i].match != NULL || h[i].match_len == 0);
		/* ASan checks that the match is readable */
		copy = fuzz_strndup(h[i].match ? h[i].match : "", h[i].match_len);
		free(copy);
		FUZZ_CHECK(rules_severity_name(h[i].severity) != NULL);
		FUZZ_CHECK(rules_action_name(h[i].action) != NULL);
	}
}

static void
match(struct rules *r, enum rules_role role, const char *msg, size_t len)
{
	const struct rules_hit	*h, *hn;
	struct rules_hit	*copy;
	size_t			 n, nn, i, nrules = rules_count(r);

	n = rules_match(r, role, msg, len, &h);
	check_hits(h, n, role, nrules);
	for (i = 0; verbose && i < n; i++)
		fprintf(stderr, "fuzz_rules: %s: %s [%u, %u) %s\n",
		    role == RULES_AGENT ? "agent" : "customer", h[i].rule,
		    h[i].start, h[i].end, rules_action_name(h[i].action));
	if ((copy = malloc((n ? n : 1) * sizeof(*copy))) == NULL)
		abort();
	memcpy(copy, h, n * sizeof(*h));
	nn = rules_match_naive(r, role, msg, len, &hn);
	check_hits(hn, nn, role, nrules);
	if (n != nn) {
		fprintf(stderr, "fuzz_rules: role %d: %zu hits with the "
		    "prefilter, %zu without\n", role, n, nn);
		for (i = 0; i < nn; i++)
			fprintf(stderr, "  naive: %s [%u, %u)\n", hn[i].rule,
			    hn[i].start, hn[i].end);
		for (i = 0; i < n; i++)
			fprintf(stderr, "  engine: %s [%u, %u)\n", copy[i].rule,
			    copy[i].start, copy[i].end);
	}
	FUZZ_CHECK(n == nn);
	for (i = 0; i < n; i++) {
		FUZZ_CHECK(strcmp(copy[i].rule, hn[i].rule) == 0);
		FUZZ_CHECK(copy[i].start == hn[i].start);
		FUZZ_CHECK(copy[i].end == hn[i].end);
		FUZZ_CHECK(copy[i].action == hn[i].action);
		FUZZ_CHECK(copy[i].match_len == hn[i].match_len);
	}
	free(copy);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sbuf	 errs;
	struct rules	*r;
	char		*paths[1];
	const uint8_t	*msg;
	size_t		 msg_len, head_len, nex = 0, nfail;
	unsigned	 flags = RULES_SKIP_EXAMPLES;

	if (fuzz_split(data, size, &msg, &msg_len))
		head_len = (size_t)(msg - data) - 1;
	else {
		head_len = size;
		msg = data;
		msg_len = size;
	}
	if (size & 1)
		flags |= RULES_NO_JIT;
	fuzz_file_put(&rule_file, data, head_len);
	paths[0] = rule_file.path;
	sbuf_init(&errs);
	r = rules_load_files(paths, 1, flags, &errs);
	if (verbose)
		fprintf(stderr, "fuzz_rules: %s, %zu rules%s\n%s",
		    r != NULL ? "loaded" : "refused", r ? rules_count(r) : 0,
		    flags & RULES_NO_JIT ? " (no JIT)" : "", sbuf_str(&errs));
	if (r == NULL) {
		/* every refusal says why */
		FUZZ_CHECK(errs.lines > 0);
		sbuf_free(&errs);
		return 0;
	}
	(void)rules_jit(r);
	nfail = rules_test(r, example_cb, &nex);
	FUZZ_CHECK(nfail <= nex);
	if (verbose)
		fprintf(stderr, "fuzz_rules: %zu of %zu examples fail\n", nfail,
		    nex);
	match(r, RULES_AGENT, (const char *)msg, msg_len);
	match(r, RULES_CUSTOMER, (const char *)msg, msg_len);
	rules_free(r);
	sbuf_free(&errs);
	return 0;
}
