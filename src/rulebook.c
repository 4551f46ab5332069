/* rulebook: the rule packs of a configuration, each compiled once, and which of them each shop runs (pure; reads only rule files). */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "chatmon/model.h"
#include "chatmon/rulebook.h"

struct rulebook_pack {
	char		*path;		/* as the configuration names it */
	struct rules	*rules;		/* NULL: it did not load (errors said so) */
};

struct rulebook_shop {
	char		 *id;
	struct rules	**packs;	/* the book's; [0] the top-level pack */
	size_t		  npacks;
	const char	**off;		/* sorted; the packs' ids, or model_off's */
	size_t		  noff;
	char		**model_off;	/* owned: "model.CATEGORY" switched off */
	size_t		  nmodel_off;
	size_t		  window;
};

struct rulebook {
	struct rulebook_pack	*pack;		/* [0] the top-level pack */
	size_t			 npack;
	int			 borrowed;	/* rulebook_of: pack[0].rules is the caller's */
	struct rulebook_shop	*shop;		/* sorted by id: turns look them up */
	size_t			 nshop;
	size_t			 depth;
};

/* One rule of a pack, for lookups by id while loading. */
struct rulebook_id {
	const char	*id;		/* the pack's */
	const char	*file;
	size_t		 line;
};

static int
rulebook_id_cmp(const void *a, const void *b)
{
	return strcmp(((const struct rulebook_id *)a)->id,
	    ((const struct rulebook_id *)b)->id);
}

static int
rulebook_str_cmp(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int
rulebook_shop_cmp(const void *a, const void *b)
{
	return strcmp(((const struct rulebook_shop *)a)->id,
	    ((const struct rulebook_shop *)b)->id);
}

void
rulebook_free(struct rulebook *b)
{
	size_t	i, j;

	if (b == NULL)
		return;
	for (i = 0; i < b->npack; i++) {
		if (!(i == 0 && b->borrowed))
			rules_free(b->pack[i].rules);
		free(b->pack[i].path);
	}
	for (i = 0; i < b->nshop; i++) {
		free(b->shop[i].id);
		free(b->shop[i].packs);
		free(b->shop[i].off);
		for (j = 0; j < b->shop[i].nmodel_off; j++)
			free(b->shop[i].model_off[j]);
		free(b->shop[i].model_off);
	}
	free(b->pack);
	free(b->shop);
	free(b);
}

struct rulebook *
rulebook_of(struct rules *r)
{
	struct rulebook	*b;

	if ((b = calloc(1, sizeof(*b))) == NULL ||
	    (b->pack = calloc(1, sizeof(*b->pack))) == NULL) {
		free(b);
		return NULL;
	}
	b->pack[0].rules = r;
	b->npack = 1;
	b->borrowed = 1;
	b->depth = 1;
	return b;
}

/* The configuration's file, for errors about its values. */
static const char *
rulebook_cfg_file(const struct config *cfg)
{
	return cfg->file != NULL ? cfg->file : "(configuration)";
}

/* The line of item k of a shop's list: the shop's when it was not kept. */
static size_t
rulebook_item_line(const struct config_shop *cs, const size_t *line, size_t k)
{
	return line != NULL ? line[k] : cs->line;
}

/*
 * 0 when the pack that item k of shop cs's rules names can be opened;
 * else -1, said at that item of the configuration: the loader's own
 * errors name only the pack's files. O_NONBLOCK: a FIFO is not waited on
 * here (the loader judges it).
 */
static int
rulebook_pack_open(const struct config *cfg, const struct config_shop *cs,
    size_t k, const char *path, struct sbuf *errs)
{
	struct stat	 st;
	const char	*what = "";
	int		 fd;

	if (stat(path, &st) == 0) {
		what = S_ISDIR(st.st_mode) ? " the directory" : " the file";
		if ((fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)) != -1) {
			close(fd);
			return 0;
		}
	}
	sbuf_line(errs, "%s:%zu: shops.%s: rules: %s: cannot open%s: %s",
	    rulebook_cfg_file(cfg), rulebook_item_line(cs, cs->rules_line, k),
	    cs->id, path, what, strerror(errno));
	return -1;
}

int
rulebook_no_files(const struct sbuf *errs, size_t mark, const char *dir)
{
	struct sbuf	want;
	int		r;

	sbuf_init(&want);
	r = sbuf_line(&want, "%s: " RULES_NO_FILES, dir) == 0 &&
	    errs->len - mark == want.len &&
	    memcmp(errs->s + mark, want.s, want.len) == 0;
	sbuf_free(&want);
	return r;
}

/*
 * A shop's directory without rule files is the configuration's mistake,
 * not a file's: said at the shop's line, as a pack that cannot be opened
 * is (found by review: "DIR: no *.yaml rule files", with no FILE:LINE;
 * the top level's is relay's, at the rules line). errs from mark (lines
 * then) holds what the loader said; only that one error is moved.
 */
static void
rulebook_blame_empty(const struct config *cfg, const struct config_shop *cs,
    size_t k, const char *path, struct sbuf *errs, size_t mark, size_t lines)
{
	if (cs == NULL || !rulebook_no_files(errs, mark, path))
		return;
	errs->len = mark;
	errs->s[mark] = '\0';
	errs->lines = lines;
	sbuf_line(errs, "%s:%zu: shops.%s: rules: %s: " RULES_NO_FILES,
	    rulebook_cfg_file(cfg), rulebook_item_line(cs, cs->rules_line, k),
	    cs->id, path);
}

/*
 * The pack at path, loaded when no earlier shop named it; its index. cs
 * and k: the shop and the item of its rules that name it (cs NULL: the
 * top-level pack).
 */
static size_t
rulebook_pack_at(struct rulebook *b, const struct config *cfg,
    const struct config_shop *cs, size_t k, const char *path, unsigned flags,
    struct sbuf *errs)
{
	struct rulebook_pack	*p;
	struct stat		 st;
	char			*paths[1];
	size_t			 i, mark, lines;

	for (i = 0; i < b->npack; i++)
		if (b->pack[i].path != NULL && strcmp(b->pack[i].path, path) == 0)
			return i;
	p = &b->pack[b->npack++];	/* room was made for every path */
	if ((p->path = strdup(path)) == NULL) {
		sbuf_line(errs, "rulebook: out of memory");
		return i;
	}
	if (cs != NULL && rulebook_pack_open(cfg, cs, k, path, errs) == -1)
		return i;
	/* a file is a pack of one file; anything else as the top level's */
	if (stat(path, &st) == 0 && !S_ISDIR(st.st_mode)) {
		paths[0] = p->path;
		p->rules = rules_load_files(paths, 1, flags, errs);
	} else {
		mark = errs->len;
		lines = errs->lines;
		p->rules = rules_load_dir(path, flags, errs);
		if (p->rules == NULL)
			rulebook_blame_empty(cfg, cs, k, path, errs, mark, lines);
	}
	return i;
}

/* Every pack's ids sorted, one array each; NULL on ENOMEM. */
static struct rulebook_id **
rulebook_index(const struct rulebook *b)
{
	struct rulebook_id	**ix;
	size_t			  i, k, n;

	if ((ix = calloc(b->npack, sizeof(*ix))) == NULL)
		return NULL;
	for (i = 0; i < b->npack; i++) {
		n = rules_all(b->pack[i].rules);
		if ((ix[i] = calloc(n ? n : 1, sizeof(**ix))) == NULL)
			goto oom;
		for (k = 0; k < n; k++)
			ix[i][k].id = rules_rule(b->pack[i].rules, k,
			    &ix[i][k].file, &ix[i][k].line);
		qsort(ix[i], n, sizeof(**ix), rulebook_id_cmp);
	}
	return ix;
oom:
	while (i-- > 0)
		free(ix[i]);
	free(ix);
	return NULL;
}

static void
rulebook_unindex(const struct rulebook *b, struct rulebook_id **ix)
{
	size_t	i;

	if (ix == NULL)
		return;
	for (i = 0; i < b->npack; i++)
		free(ix[i]);
	free(ix);
}

static const struct rulebook_id *
rulebook_find(const struct rulebook *b, struct rulebook_id **ix, size_t pack,
    const char *id)
{
	struct rulebook_id	key = { id, NULL, 0 };

	return bsearch(&key, ix[pack], rules_all(b->pack[pack].rules),
	    sizeof(key), rulebook_id_cmp);
}

/*
 * Appends a line to errs unless it holds that line already: two shops
 * that run the same two packs break the same way, and it is said once.
 */
static void
rulebook_err(struct sbuf *errs, const char *line)
{
	const char	*s = sbuf_str(errs), *at;
	size_t		 l = strlen(line);

	for (at = s; (at = strstr(at, line)) != NULL; at += l)
		if ((at == s || at[-1] == '\n') && at[l] == '\n')
			return;
	sbuf_line(errs, "%s", line);
}

/*
 * Shop cs into bs (its packs' indices in idx[0..n), the top-level's
 * first): the ids its packs define twice and its rules_off checked. -1
 * when it is in error (errs says why) or out of memory.
 */
static int
rulebook_shop_make(struct rulebook *b, const struct config *cfg,
    const struct config_shop *cs, const size_t *idx, size_t n,
    struct rulebook_id **ix, struct rulebook_shop *bs, struct sbuf *errs)
{
	const struct rulebook_id	*f;
	struct sbuf			 line;
	const char			*file, *id;
	size_t				 i, j, k, at;
	int				 rc = 0;

	sbuf_init(&line);
	for (j = 1; j < n; j++)
		for (k = 0; k < rules_all(b->pack[idx[j]].rules); k++) {
			id = rules_rule(b->pack[idx[j]].rules, k, &file, &at);
			for (i = 0; i < j; i++) {
				if (rulebook_find(b, ix, idx[i], id) == NULL)
					continue;
				sbuf_reset(&line);
				sbuf_printf(&line, "%s:%zu: rule %s is already "
				    "defined in %s", file, at, id, b->pack[idx[i]].path);
				rulebook_err(errs, sbuf_str(&line));
				rc = -1;
				break;
			}
		}
	sbuf_free(&line);
	if ((bs->packs = calloc(n, sizeof(*bs->packs))) == NULL ||
	    (bs->off = calloc(cs->rules_off.n ? cs->rules_off.n : 1,
	    sizeof(*bs->off))) == NULL ||
	    (bs->model_off = calloc(cs->rules_off.n ? cs->rules_off.n : 1,
	    sizeof(*bs->model_off))) == NULL)
		goto oom;
	for (j = 0; j < n; j++) {
		bs->packs[j] = b->pack[idx[j]].rules;
		bs->window += rules_window_count(bs->packs[j]);
	}
	bs->npacks = n;
	for (k = 0; k < cs->rules_off.n; k++) {
		/* the model's flags: rulebook_model_off checks them against it */
		if (strncmp(cs->rules_off.v[k], RULEBOOK_MODEL, sizeof(
		    RULEBOOK_MODEL) - 1) == 0) {
			if ((bs->model_off[bs->nmodel_off] =
			    strdup(cs->rules_off.v[k])) == NULL)
				goto oom;
			bs->off[bs->noff++] = bs->model_off[bs->nmodel_off++];
			continue;
		}
		for (j = 0, f = NULL; j < n && f == NULL; j++)
			f = rulebook_find(b, ix, idx[j], cs->rules_off.v[k]);
		if (f == NULL) {
			sbuf_line(errs, "%s:%zu: shops.%s: rules_off: no rule %s "
			    "in the shop's packs", rulebook_cfg_file(cfg),
			    rulebook_item_line(cs, cs->rules_off_line, k), cs->id,
			    cs->rules_off.v[k]);
			rc = -1;
		} else
			bs->off[bs->noff++] = f->id;
	}
	qsort(bs->off, bs->noff, sizeof(*bs->off), rulebook_str_cmp);
	if ((bs->id = strdup(cs->id)) == NULL)
		goto oom;
	return rc;
oom:
	sbuf_line(errs, "rulebook: out of memory");
	return -1;
}

struct rulebook *
rulebook_load(const struct config *cfg, unsigned flags, struct sbuf *errs)
{
	struct rulebook		 *b;
	struct rulebook_id	**ix = NULL;
	const struct config_shop *cs;
	size_t			 *idx = NULL, npaths = 1, s, k, n, i, j;
	int			  bad = 0;

	for (s = 0; s < cfg->nshops; s++)
		npaths += cfg->shops[s].rules.n;
	if ((b = calloc(1, sizeof(*b))) == NULL ||
	    (b->pack = calloc(npaths, sizeof(*b->pack))) == NULL ||
	    (b->shop = calloc(cfg->nshops ? cfg->nshops : 1,
	    sizeof(*b->shop))) == NULL ||
	    (idx = calloc(npaths, sizeof(*idx))) == NULL)
		goto oom;
	b->depth = 1;
	(void)rulebook_pack_at(b, cfg, NULL, 0, cfg->rules, flags, errs);
	for (s = 0; s < cfg->nshops; s++)
		for (k = 0; k < cfg->shops[s].rules.n; k++)
			(void)rulebook_pack_at(b, cfg, &cfg->shops[s], k,
			    cfg->shops[s].rules.v[k], flags, errs);
	for (i = 0; i < b->npack; i++)
		if (b->pack[i].path == NULL || b->pack[i].rules == NULL)
			bad = 1;
	/* the shops are checked against packs that all loaded */
	if (bad)
		goto err;
	/*
	 * A pack of lists only, or of disabled rules only, loaded and then made
	 * chatmond unready for good (/readyz wants a rule): a reload rolled out
	 * everywhere took every instance out of its load balancer.
	 */
	if (rules_count(b->pack[0].rules) == 0) {
		sbuf_line(errs, "%s: no enabled rule (the files hold only lists, "
		    "or every rule is disabled): chatmond would inspect nothing "
		    "and never be ready", cfg->rules);
		goto err;
	}
	if ((ix = rulebook_index(b)) == NULL)
		goto oom;
	for (s = 0; s < cfg->nshops; s++) {
		cs = &cfg->shops[s];
		/* the top-level pack, then the shop's, each once */
		idx[0] = 0;
		for (k = 0, n = 1; k < cs->rules.n; k++) {
			i = rulebook_pack_at(b, cfg, cs, k, cs->rules.v[k], flags,
			    errs);
			for (j = 0; j < n && idx[j] != i; j++)
				;
			if (j == n)
				idx[n++] = i;
		}
		/* a shop that changes nothing runs as no shop does */
		if (n == 1 && cs->rules_off.n == 0)
			continue;
		if (rulebook_shop_make(b, cfg, cs, idx, n, ix,
		    &b->shop[b->nshop++], errs) == -1)
			bad = 1;
		if (n > b->depth)
			b->depth = n;
	}
	if (bad)
		goto err;
	qsort(b->shop, b->nshop, sizeof(*b->shop), rulebook_shop_cmp);
	rulebook_unindex(b, ix);
	free(idx);
	return b;
oom:
	sbuf_line(errs, "rulebook: out of memory");
err:
	if (b != NULL)
		rulebook_unindex(b, ix);
	free(idx);
	rulebook_free(b);
	return NULL;
}

struct rules *
rulebook_base(const struct rulebook *b)
{
	return b->pack[0].rules;
}

size_t
rulebook_count(const struct rulebook *b)
{
	return rules_count(b->pack[0].rules);
}

size_t
rulebook_packs(const struct rulebook *b)
{
	return b->npack;
}

struct rules *
rulebook_pack_rules(const struct rulebook *b, size_t i)
{
	return b->pack[i].rules;
}

const char *
rulebook_pack_path(const struct rulebook *b, size_t i)
{
	return b->pack[i].path;
}

size_t
rulebook_depth(const struct rulebook *b)
{
	return b->depth;
}

const struct rulebook_shop *
rulebook_shop(const struct rulebook *b, const char *id)
{
	struct rulebook_shop	key;

	if (id[0] == '\0' || b->nshop == 0)
		return NULL;
	key.id = (char *)(uintptr_t)id;
	return bsearch(&key, b->shop, b->nshop, sizeof(key), rulebook_shop_cmp);
}

size_t
rulebook_shop_packs(const struct rulebook_shop *s)
{
	return s->npacks;
}

struct rules *
rulebook_shop_pack(const struct rulebook_shop *s, size_t i)
{
	return s->packs[i];
}

size_t
rulebook_shop_window(const struct rulebook_shop *s)
{
	return s->window;
}

int
rulebook_model_off(const struct config *cfg, const struct model *m,
    struct sbuf *errs)
{
	const struct config_shop	*cs;
	const char			*id, *cat;
	size_t				 s, k, i;
	int				 rc = 0;

	for (s = 0; s < cfg->nshops; s++) {
		cs = &cfg->shops[s];
		for (k = 0; k < cs->rules_off.n; k++) {
			id = cs->rules_off.v[k];
			if (strncmp(id, RULEBOOK_MODEL, sizeof(RULEBOOK_MODEL) - 1))
				continue;
			cat = id + sizeof(RULEBOOK_MODEL) - 1;
			for (i = 0; m != NULL && i < model_categories(m) &&
			    strcmp(model_category(m, i), cat) != 0; i++)
				;
			if (m != NULL && i < model_categories(m))
				continue;
			sbuf_line(errs, "%s:%zu: shops.%s: rules_off: %s: %s",
			    rulebook_cfg_file(cfg), rulebook_item_line(cs,
			    cs->rules_off_line, k), cs->id, id, m == NULL ?
			    "no model is configured (model:)" :
			    "the model has no such category");
			rc = -1;
		}
	}
	return rc;
}

int
rulebook_shop_off(const struct rulebook_shop *s, const char *rule)
{
	return s->noff > 0 && bsearch(&rule, s->off, s->noff, sizeof(*s->off),
	    rulebook_str_cmp) != NULL;
}
