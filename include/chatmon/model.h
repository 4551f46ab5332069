/* model: a statistical second opinion on a turn, a linear model over the character n-grams of its normalised text (pure). */
#ifndef CHATMON_MODEL_H
#define CHATMON_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "chatmon/util.h"

/*
 * The model is trained by tools/train_model.py on the labelled dev corpus
 * and shipped as conf/model/chatmon-ngram.model (the format is in
 * conf/model/README.md). It may only FLAG a turn for a supervisor: it has
 * learnt from a few thousand lines, not from a person who can say why a
 * message is wrong, so it never warns an agent or blocks a message.
 *
 * Its input is the text as the rules see it (norm_run with NORM_ALL): the
 * features are the 1..3-grams of code points of that text, hashed with
 * FNV-1a exactly as the training script hashes them.
 */

#define MODEL_MAX_CATEGORIES	32
#define MODEL_NAME_MAX		24	/* bytes of a category's name, NUL included */
#define MODEL_MAX_FILE		(64u << 20)

/* The speaker. The values are RULES_AGENT's and RULES_CUSTOMER's; any other has no role feature. */
enum model_role { MODEL_AGENT = 1, MODEL_CUSTOMER = 2 };

struct model_hit {
	const char	*category;	/* owned by the model */
	size_t		 index;		/* of the category in the model */
	double		 p;		/* probability, above the category's threshold */
};

struct model;

/*
 * Loads and checks a model file (size, magic, version, checksum, every
 * field). Returns a model the caller owns (model_free), or NULL with one
 * line appended to errs (which may be NULL): "FILE: message".
 */
struct model *model_new(const char *path, struct sbuf *errs);
void	model_free(struct model *);

/*
 * The categories of one turn whose probability is above their threshold,
 * most probable first: at most nhits of them are written to hits, and
 * their number is returned. text is the normalised text (len bytes; any
 * bytes are accepted). Allocates nothing; a model may score from several
 * threads at once. The cost is linear in the text, about 140 instructions
 * a code point (6 000 for a 14-character turn): cap what is scored.
 */
size_t	model_score(const struct model *, enum model_role role, const char *text,
	    size_t len, struct model_hit *hits, size_t nhits);
/* Every category's probability, p[model_categories()], threshold or not. */
void	model_probs(const struct model *, enum model_role role, const char *text,
	    size_t len, double *p);

size_t	model_categories(const struct model *);
/* The name (owned by the model) and the threshold of category i. */
const char *model_category(const struct model *, size_t i);
double	model_threshold(const struct model *, size_t i);

/*
 * The features, for tests and tools: the bucket of the role (first, when
 * role is an agent or a customer), then the bucket of every gram in order.
 * At most nbuckets are written; the number there are is returned.
 * *value is what each gram counts for (the role counts 1).
 */
size_t	model_features(unsigned bits, unsigned max_n, enum model_role role,
	    const char *text, size_t len, uint32_t *buckets, size_t nbuckets,
	    double *value);
/* 32-bit FNV-1a, the hash of the features. */
uint32_t model_fnv1a(const void *, size_t);

#endif
