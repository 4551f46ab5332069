/* model: a statistical second opinion on a turn, a linear model over the character n-grams of its normalised text (pure). */
#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "chatmon/model.h"
#include "chatmon/util.h"

/*
 * The file, little-endian (conf/model/README.md; tools/train_model.py
 * writes it):
 *   0   8   magic "CMNGRAM\0"
 *   8   u32 version
 *   12  u32 file size
 *   16  u32 bucket bits
 *   20  u32 longest gram
 *   24  u32 categories K
 *   28  u32 weights W
 *   32  32  BLAKE2b-256 of the file with these 32 bytes zeroed
 *   64  K x (name[24], f32 bias, f32 threshold)
 *   ..  W x (u32 bucket << 5 | category, f32 weight), keys ascending
 */
#define MODEL_MAGIC		"CMNGRAM"	/* and its NUL: 8 bytes */
#define MODEL_VERSION		1
#define MODEL_HEADER		64
#define MODEL_SUM_OFF		32
#define MODEL_SUM_LEN		32
#define MODEL_CAT_REC		32
#define MODEL_ENTRY		8
#define MODEL_CAT_BITS		5
#define MODEL_MAX_BITS		24	/* 64 MiB of bucket offsets at most */
#define MODEL_MAX_N		3

/* The padding around a text, and the role marker's first byte. */
#define MODEL_BEGIN		0x02
#define MODEL_END		0x03
#define MODEL_ROLE		0x01

#define MODEL_FNV_BASIS		2166136261u
#define MODEL_FNV_PRIME		16777619u

_Static_assert(sizeof(float) == 4 && FLT_MANT_DIG == 24 && FLT_MAX_EXP == 128,
    "the model file holds IEEE 754 binary32 weights");
_Static_assert(MODEL_MAX_CATEGORIES <= (1 << MODEL_CAT_BITS),
    "a key has room for every category");

struct model_cat {
	char		 name[MODEL_NAME_MAX];
	double		 bias;
	double		 threshold;	/* a probability */
	double		 margin;	/* the same as a margin: fires above it */
};

/*
 * The weights of bucket b are w[off[b]] .. w[off[b + 1] - 1], for the
 * categories cat[] beside them: one array of offsets (4 << bits bytes)
 * makes finding a gram's weights one load, which is what a turn spends
 * its time on.
 */
struct model {
	unsigned		 bits;
	unsigned		 max_n;
	size_t			 ncat;
	struct model_cat	 cat[MODEL_MAX_CATEGORIES];
	uint32_t		 role_bucket[3];	/* by enum model_role; [0] unused */
	uint32_t		*off;
	uint8_t			*wcat;
	float			*w;
};

/* What a gram walk calls for each bucket. */
typedef void	(*model_visit)(void *, uint32_t);

static void	model_err(struct sbuf *, const char *, const char *, ...)
		    UTIL_PRINTF(3, 4);

static void
model_err(struct sbuf *errs, const char *path, const char *fmt, ...)
{
	char	msg[256];
	va_list	ap;

	if (errs == NULL)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	sbuf_line(errs, "%s: %s", path, msg);
}

static uint32_t
model_fnv_step(uint32_t h, const unsigned char *p, size_t len)
{
	size_t	i;

	for (i = 0; i < len; i++)
		h = (h ^ p[i]) * MODEL_FNV_PRIME;
	return h;
}

uint32_t
model_fnv1a(const void *p, size_t len)
{
	return model_fnv_step(MODEL_FNV_BASIS, p, len);
}

/* xor-folding keeps the high bits of the hash in the bucket (FNV's own advice for short hashes). */
static uint32_t
model_bucket(uint32_t h, unsigned bits)
{
	return ((h >> bits) ^ h) & ((1u << bits) - 1);
}

static uint32_t
model_role_bucket(enum model_role role, unsigned bits)
{
	unsigned char	k[2] = { MODEL_ROLE, role == MODEL_AGENT ? 'a' : 'c' };

	return model_bucket(model_fnv1a(k, sizeof(k)), bits);
}

/*
 * Bytes of the code point at i: up to the next byte that is not a UTF-8
 * continuation byte. Invalid input is cut the same way by the training
 * script, so both sides agree on any bytes, not only on valid text.
 */
static size_t
model_cplen(const unsigned char *s, size_t len, size_t i)
{
	size_t	j;

	for (j = i + 1; j < len && (s[j] & 0xc0) == 0x80; j++)
		;
	return j - i;
}

/*
 * Every gram of text padded with BEGIN and END, by start position, then
 * length (1..max_n): the order of tools/train_model.py's features(), which
 * the unit test pins. Grams of padding alone are skipped. Returns how many.
 * Inlined so that visit is a direct, inlined call in the scorer: the
 * indirect call was a fifth of a turn's instructions.
 */
static inline __attribute__((always_inline)) size_t
model_walk(unsigned bits, unsigned max_n, const unsigned char *s, size_t len,
    model_visit visit, void *arg)
{
	static const unsigned char	begin = MODEL_BEGIN, end = MODEL_END;
	size_t				i, j, first, next, n, count = 0;
	uint32_t			h;
	int				at_begin;

	/* i: the start in bytes, BEGIN (at_begin) first */
	for (i = 0, at_begin = 1; i < len || at_begin; i = first, at_begin = 0) {
		if (at_begin) {
			h = model_fnv_step(MODEL_FNV_BASIS, &begin, 1);
			first = 0;
		} else {
			first = i + model_cplen(s, len, i);
			h = model_fnv_step(MODEL_FNV_BASIS, s + i, first - i);
			visit(arg, model_bucket(h, bits));
			count++;
		}
		for (j = first, n = 2; n <= max_n; n++) {
			if (j < len) {
				next = j + model_cplen(s, len, j);
				h = model_fnv_step(h, s + j, next - j);
				j = next;
			} else if (j == len) {
				h = model_fnv_step(h, &end, 1);
				j++;
				if (at_begin && len == 0)
					break;	/* BEGIN END: no text at all */
			} else
				break;
			visit(arg, model_bucket(h, bits));
			count++;
		}
	}
	return count;
}

/* A gram's value: 1/sqrt(sqrt(n)), so that length alone does not make a score (train_model.py says why). */
static double
model_value(size_t n)
{
	return n == 0 ? 0.0 : 1.0 / sqrt(sqrt((double)n));
}

struct model_collect {
	uint32_t	*buckets;
	size_t		 max;
	size_t		 n;
};

static void
model_collect(void *arg, uint32_t b)
{
	struct model_collect	*c = arg;

	if (c->n < c->max)
		c->buckets[c->n] = b;
	c->n++;
}

size_t
model_features(unsigned bits, unsigned max_n, enum model_role role,
    const char *text, size_t len, uint32_t *buckets, size_t nbuckets,
    double *value)
{
	struct model_collect	c = { buckets, nbuckets, 0 };
	size_t			n;

	if (role == MODEL_AGENT || role == MODEL_CUSTOMER)
		model_collect(&c, model_role_bucket(role, bits));
	n = model_walk(bits, max_n, (const unsigned char *)text, len,
	    model_collect, &c);
	*value = model_value(n);
	return c.n;
}

/* The sums of one turn's gram weights, by category. */
struct model_acc {
	const struct model	*m;
	double			 sum[MODEL_MAX_CATEGORIES];
};

/* Locals, so the compiler need not reload them after every store to sum. */
static inline __attribute__((always_inline)) void
model_add(void *arg, uint32_t b)
{
	struct model_acc	*a = arg;
	const uint8_t		*cat = a->m->wcat;
	const float		*w = a->m->w;
	double			*sum = a->sum;
	uint32_t		 j, end;

	for (j = a->m->off[b], end = a->m->off[b + 1]; j < end; j++)
		sum[cat[j]] += w[j];
}

/* The margin (log-odds) of every category. */
static void
model_margins(const struct model *m, enum model_role role, const char *text,
    size_t len, double *z)
{
	struct model_acc	a;
	struct model_acc	r;
	double			v;
	size_t			k, n;

	memset(&a, 0, sizeof(a));
	a.m = m;
	n = model_walk(m->bits, m->max_n, (const unsigned char *)text, len,
	    model_add, &a);
	v = model_value(n);
	memset(&r, 0, sizeof(r));
	r.m = m;
	if (role == MODEL_AGENT || role == MODEL_CUSTOMER)
		model_add(&r, m->role_bucket[role]);
	for (k = 0; k < m->ncat; k++)
		z[k] = m->cat[k].bias + a.sum[k] * v + r.sum[k];
}

static double
model_sigmoid(double z)
{
	return z >= 0 ? 1.0 / (1.0 + exp(-z)) : exp(z) / (1.0 + exp(z));
}

void
model_probs(const struct model *m, enum model_role role, const char *text,
    size_t len, double *p)
{
	double	z[MODEL_MAX_CATEGORIES];
	size_t	k;

	model_margins(m, role, text, len, z);
	for (k = 0; k < m->ncat; k++)
		p[k] = model_sigmoid(z[k]);
}

size_t
model_score(const struct model *m, enum model_role role, const char *text,
    size_t len, struct model_hit *hits, size_t nhits)
{
	double		z[MODEL_MAX_CATEGORIES];
	struct model_hit h;
	size_t		k, i, n = 0;

	model_margins(m, role, text, len, z);
	for (k = 0; k < m->ncat; k++) {
		/* the margin, not the probability: exp only for the few that fire */
		if (!(z[k] > m->cat[k].margin))
			continue;
		h.category = m->cat[k].name;
		h.index = k;
		h.p = model_sigmoid(z[k]);
		/* insertion, most probable first; the least falls off when full */
		for (i = n; i > 0 && hits[i - 1].p < h.p; i--)
			if (i < nhits)
				hits[i] = hits[i - 1];
		if (i < nhits) {
			hits[i] = h;
			if (n < nhits)
				n++;
		}
	}
	return n;
}

size_t
model_categories(const struct model *m)
{
	return m->ncat;
}

const char *
model_category(const struct model *m, size_t i)
{
	return i < m->ncat ? m->cat[i].name : NULL;
}

double
model_threshold(const struct model *m, size_t i)
{
	return i < m->ncat ? m->cat[i].threshold : 1.0;
}

static uint32_t
model_le32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	    (uint32_t)p[3] << 24;
}

static float
model_lef32(const unsigned char *p)
{
	uint32_t	u = model_le32(p);
	float		f;

	memcpy(&f, &u, sizeof(f));
	return f;
}

/* The checks that need no allocation; 0, or -1 with the error told. */
static int
model_check(const char *path, const unsigned char *b, size_t len,
    struct sbuf *errs)
{
	unsigned char	sum[MODEL_SUM_LEN];
	crypto_generichash_state st;
	static const unsigned char zero[MODEL_SUM_LEN];
	uint32_t	ver, size, bits, max_n, ncat, nw;

	if (len < MODEL_HEADER) {
		model_err(errs, path, "truncated: %zu bytes, a model has a %d-byte header",
		    len, MODEL_HEADER);
		return -1;
	}
	if (memcmp(b, MODEL_MAGIC, sizeof(MODEL_MAGIC)) != 0) {
		model_err(errs, path, "not a chatmon n-gram model (bad magic)");
		return -1;
	}
	if ((ver = model_le32(b + 8)) != MODEL_VERSION) {
		model_err(errs, path, "model version %u: this chatmon reads version %d",
		    ver, MODEL_VERSION);
		return -1;
	}
	if ((size = model_le32(b + 12)) != len) {
		model_err(errs, path, "%s: the header says %u bytes, the file has %zu",
		    size > len ? "truncated" : "trailing bytes", size, len);
		return -1;
	}
	if (sodium_init() < 0) {
		model_err(errs, path, "libsodium cannot start");
		return -1;
	}
	crypto_generichash_init(&st, NULL, 0, sizeof(sum));
	crypto_generichash_update(&st, b, MODEL_SUM_OFF);
	crypto_generichash_update(&st, zero, sizeof(zero));
	crypto_generichash_update(&st, b + MODEL_HEADER, len - MODEL_HEADER);
	crypto_generichash_final(&st, sum, sizeof(sum));
	if (sodium_memcmp(sum, b + MODEL_SUM_OFF, sizeof(sum)) != 0) {
		model_err(errs, path, "checksum mismatch: the file is corrupt");
		return -1;
	}
	/* past the checksum, a bad field is a bug in the writer, still never trusted */
	bits = model_le32(b + 16);
	max_n = model_le32(b + 20);
	ncat = model_le32(b + 24);
	nw = model_le32(b + 28);
	if (bits < 1 || bits > MODEL_MAX_BITS) {
		model_err(errs, path, "%u bucket bits: 1 to %d are read", bits,
		    MODEL_MAX_BITS);
		return -1;
	}
	if (max_n < 1 || max_n > MODEL_MAX_N) {
		model_err(errs, path, "grams of up to %u characters: 1 to %d are read",
		    max_n, MODEL_MAX_N);
		return -1;
	}
	if (ncat < 1 || ncat > MODEL_MAX_CATEGORIES) {
		model_err(errs, path, "%u categories: 1 to %d are read", ncat,
		    MODEL_MAX_CATEGORIES);
		return -1;
	}
	if ((uint64_t)MODEL_HEADER + (uint64_t)ncat * MODEL_CAT_REC +
	    (uint64_t)nw * MODEL_ENTRY != len) {
		model_err(errs, path, "%u categories and %u weights do not make %zu bytes",
		    ncat, nw, len);
		return -1;
	}
	return 0;
}

struct model *
model_new(const char *path, struct sbuf *errs)
{
	struct model		*m = NULL;
	unsigned char		*b = NULL;
	const unsigned char	*p;
	size_t			 len, k, nb, nw, i;
	uint32_t		 key, prev = 0, bucket, cat;
	float			 f;

	if (util_read_file(path, MODEL_MAX_FILE, (char **)&b, &len) == -1) {
		if (errno == EFBIG)
			model_err(errs, path, "larger than %u bytes: not a model",
			    MODEL_MAX_FILE);
		else
			model_err(errs, path, "cannot read: %s", strerror(errno));
		return NULL;
	}
	if (model_check(path, b, len, errs) == -1)
		goto err;
	if ((m = calloc(1, sizeof(*m))) == NULL)
		goto oom;
	m->bits = model_le32(b + 16);
	m->max_n = model_le32(b + 20);
	m->ncat = model_le32(b + 24);
	nw = model_le32(b + 28);
	nb = (size_t)1 << m->bits;
	for (k = 0; k < m->ncat; k++) {
		p = b + MODEL_HEADER + k * MODEL_CAT_REC;
		if (memchr(p, '\0', MODEL_NAME_MAX) == NULL || p[0] == '\0') {
			model_err(errs, path, "category %zu: no name", k);
			goto err;
		}
		memcpy(m->cat[k].name, p, MODEL_NAME_MAX);
		/* a rule's category, by the rules' own check: /metrics prints it raw */
		if (!util_name_ok(m->cat[k].name)) {
			for (i = 0; m->cat[k].name[i] >= ' ' &&
			    m->cat[k].name[i] <= '~'; i++)
				;
			if (m->cat[k].name[i] == '\0')	/* printable: say it */
				model_err(errs, path, "category %zu: name '%s': letters, "
				    "digits, '.', '_' and '-' only, as a rule's category",
				    k, m->cat[k].name);
			else
				model_err(errs, path, "category %zu: name: letters, "
				    "digits, '.', '_' and '-' only, as a rule's category", k);
			goto err;
		}
		/* a second of a name could never flag, and the veto read the first */
		for (i = 0; i < k && strcmp(m->cat[i].name, m->cat[k].name) != 0; i++)
			;
		if (i < k) {
			model_err(errs, path, "category %s: named twice (categories "
			    "%zu and %zu)", m->cat[k].name, i, k);
			goto err;
		}
		f = model_lef32(p + MODEL_NAME_MAX);
		if (!isfinite(f)) {
			model_err(errs, path, "category %s: a bias that is not a number",
			    m->cat[k].name);
			goto err;
		}
		m->cat[k].bias = f;
		f = model_lef32(p + MODEL_NAME_MAX + 4);
		if (!(f > 0.0f && f <= 1.0f)) {
			model_err(errs, path, "category %s: threshold %g: in (0, 1] please",
			    m->cat[k].name, (double)f);
			goto err;
		}
		m->cat[k].threshold = f;
		/* 1 never fires: a category the training could not learn in its budget */
		m->cat[k].margin = f >= 1.0f ? INFINITY : log((double)f / (1.0 - f));
	}
	if ((m->off = calloc(nb + 1, sizeof(*m->off))) == NULL ||
	    (m->wcat = malloc(nw ? nw : 1)) == NULL ||
	    (m->w = malloc((nw ? nw : 1) * sizeof(*m->w))) == NULL)
		goto oom;
	p = b + MODEL_HEADER + m->ncat * MODEL_CAT_REC;
	for (i = 0; i < nw; i++, p += MODEL_ENTRY) {
		key = model_le32(p);
		bucket = key >> MODEL_CAT_BITS;
		cat = key & ((1u << MODEL_CAT_BITS) - 1);
		f = model_lef32(p + 4);
		if (i > 0 && key <= prev) {
			model_err(errs, path, "weight %zu: keys out of order", i);
			goto err;
		}
		if (bucket >= nb || cat >= m->ncat || !isfinite(f)) {
			model_err(errs, path, "weight %zu: bucket %u, category %u or "
			    "weight out of range", i, bucket, cat);
			goto err;
		}
		prev = key;
		m->off[bucket + 1]++;
		m->wcat[i] = (uint8_t)cat;
		m->w[i] = f;
	}
	/* counts to offsets: the entries are sorted by bucket already */
	for (i = 0; i < nb; i++)
		m->off[i + 1] += m->off[i];
	m->role_bucket[MODEL_AGENT] = model_role_bucket(MODEL_AGENT, m->bits);
	m->role_bucket[MODEL_CUSTOMER] = model_role_bucket(MODEL_CUSTOMER, m->bits);
	free(b);
	return m;
oom:
	model_err(errs, path, "out of memory");
err:
	model_free(m);
	free(b);
	return NULL;
}

void
model_free(struct model *m)
{
	if (m == NULL)
		return;
	free(m->off);
	free(m->wcat);
	free(m->w);
	free(m);
}
