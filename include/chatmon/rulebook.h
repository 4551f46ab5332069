/* rulebook: the rule packs of a configuration, each compiled once, and which of them each shop runs (pure; reads only rule files). */
#ifndef CHATMON_RULEBOOK_H
#define CHATMON_RULEBOOK_H

#include <stddef.h>

#include "chatmon/config.h"
#include "chatmon/rules.h"
#include "chatmon/util.h"

/*
 * One chatmond serves many shops (docs/configuration.md, "Many shops"):
 * every shop runs the top-level pack (`rules`), then its own packs
 * (`shops.ID.rules`), less the rules it switches off (`rules_off`). A
 * pack named by many shops is compiled once and shared; a turn of no shop
 * or of a shop not in the configuration runs the top-level pack alone.
 */
struct rulebook;
struct rulebook_shop;

/*
 * The top-level pack (a directory, as rules_load_dir) and every distinct
 * path in the shops' `rules` (a file or a directory). NULL with every
 * error appended to errs: a pack's own ("FILE:LINE: message"), a rule id
 * defined in two packs one shop runs ("FILE:LINE: rule ID is already
 * defined in PACK", at the later pack's definition), a shop's pack that
 * cannot be opened ("CONFIG:LINE: shops.ID: rules: PATH: cannot open the
 * file: reason") and a rules_off id none of the shop's packs has
 * ("CONFIG:LINE: shops.ID: rules_off: no rule ID in the shop's packs"),
 * each at the line of its item (config_shop's rules_line, rules_off_line;
 * the shop's when they are NULL). flags as rules_load_dir's. Nothing of
 * cfg is kept: the book is the caller's (rulebook_free).
 */
struct rulebook *rulebook_load(const struct config *, unsigned flags,
	    struct sbuf *errs);
/*
 * 1 when what errs holds from mark is rules_load_dir's one error for dir
 * without rule files (a shop's is said at its line already; the caller
 * puts the top level's at the configuration's rules line).
 */
int	rulebook_no_files(const struct sbuf *errs, size_t mark, const char *dir);
/*
 * A book of one pack and no shops, for tools that load a pack themselves
 * (benchmarks, tests). rules is borrowed: the caller frees it after the
 * book. NULL on ENOMEM.
 */
struct rulebook *rulebook_of(struct rules *);
void	rulebook_free(struct rulebook *);

/* The top-level pack (what `chatmon rules` and a turn of no shop use). */
struct rules *rulebook_base(const struct rulebook *);
/* Enabled rules of the top-level pack. */
size_t	rulebook_count(const struct rulebook *);
/* Packs compiled: the top-level one and each distinct path of the shops'. */
size_t	rulebook_packs(const struct rulebook *);
/*
 * Pack i of rulebook_packs: 0 is the top-level one, then the shops' in the
 * order the configuration first names them (`chatmon rules test` runs
 * every pack's examples). Both are the book's; the path is NULL in a
 * book of rulebook_of.
 */
struct rules *rulebook_pack_rules(const struct rulebook *, size_t i);
const char *rulebook_pack_path(const struct rulebook *, size_t i);
/* The most packs one turn runs (1 when no shop adds a pack). */
size_t	rulebook_depth(const struct rulebook *);

/*
 * The shop with id (NUL-terminated), or NULL when a turn of it runs the
 * top-level pack alone: "" (no shop), a shop not configured, or one that
 * adds no pack and switches nothing off.
 */
const struct rulebook_shop *rulebook_shop(const struct rulebook *,
	    const char *id);
/* Its packs: 0 is the top-level one, then the shop's in its order. */
size_t	rulebook_shop_packs(const struct rulebook_shop *);
struct rules *rulebook_shop_pack(const struct rulebook_shop *, size_t i);
/* Rules marked window in all its packs. */
size_t	rulebook_shop_window(const struct rulebook_shop *);
/* 1 when the shop switched rule id off. */
int	rulebook_shop_off(const struct rulebook_shop *, const char *rule);

/*
 * A shop's rules_off may name the model's flags ("model.CATEGORY"): the
 * book takes them as they are, this checks them against the model (NULL
 * when none is configured), each error at its item of the configuration.
 * 0 or -1 (errs says why).
 */
#define RULEBOOK_MODEL	"model."
struct model;
int	rulebook_model_off(const struct config *, const struct model *,
	    struct sbuf *errs);

#endif
