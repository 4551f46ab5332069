/* rules_example: runs every rule's examples through the matcher, for `chatmon rules test` and for every load. */
#include <string.h>
#include <sys/types.h>

#include "chatmon/rules.h"
#include "rules_int.h"

/*
 * Whether rule i fires on text. An enabled rule goes the way every message
 * goes, prefilter included, so its examples also prove that the literals
 * taken from its pattern are right.
 */
static int
rules_example_fires(struct rules *r, size_t i, enum rules_role role,
    const char *text)
{
	const struct rules_hit	*hits;
	size_t			 n, k;

	if (!r->rule[i].enabled)
		return rules_run(r, role, text, strlen(text), 0, (ssize_t)i,
		    &hits) > 0;
	n = rules_run(r, role, text, strlen(text), 1, -1, &hits);
	for (k = 0; k < n; k++)
		if (hits[k].rule == r->rule[i].proto.rule)
			return 1;
	return 0;
}

size_t
rules_test(struct rules *r, void (*cb)(const struct rules_example *, void *),
    void *arg)
{
	struct rules_example	 e;
	size_t			 i, k, fails = 0;
	enum rules_role		 role;

	for (i = 0; i < r->nrule; i++) {
		struct rule *ru = &r->rule[i];

		role = ru->roles & RULES_AGENT ? RULES_AGENT : RULES_CUSTOMER;
		for (k = 0; k < ru->nex; k++) {
			e.rule = ru->proto.rule;
			e.file = ru->file;
			e.line = ru->ex[k].line;
			e.text = ru->ex[k].text;
			e.want_match = ru->ex[k].want;
			e.ok = rules_example_fires(r, i, role, e.text) == e.want_match;
			if (!e.ok)
				fails++;
			if (cb != NULL)
				cb(&e, arg);
		}
	}
	return fails;
}
