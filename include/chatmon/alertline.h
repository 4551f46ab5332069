/* alertline: one alert as one readable line for a supervisor's terminal, shared by tail, scan and replay (pure). */
#ifndef CHATMON_ALERTLINE_H
#define CHATMON_ALERTLINE_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "chatmon/util.h"

/*
 * The alert is the object of docs/alerts.md, parsed; every field may be
 * missing or of the wrong type (an older or foreign producer), and what is
 * there is shown. Chat text, agent and conversation ids are untrusted:
 * they are escaped so that they stay on one line and cannot drive the
 * terminal.
 *
 * Every function appends to the caller's sbuf and returns 0, or -1 when an
 * allocation failed (the sbuf then holds a truncated line: drop it).
 */

#define ALERTLINE_SEVERITY_W	8	/* "critical": the columns after it line up */

/* How known categories are named: as the ids say, or the dashboard's names in its languages. */
enum alertline_lang { ALERTLINE_IDS, ALERTLINE_ZH, ALERTLINE_EN };

struct alertline_opts {
	int		 colour;	/* SGR escapes (a terminal); else »marks« around the match */
	enum alertline_lang lang;	/* the rule id is shown in every language */
	int32_t		 utc_offset_min;	/* times in UTC + this: sla.timezone */
	/*
	 * A time on now's local day is shown without its date, so that
	 * yesterday's history is not taken for this morning; -1: every time
	 * with its date (a log of some day, a column that stays aligned).
	 */
	int64_t		 now_ms;
	unsigned	 agent_w;	/* pad the agent to this many columns; 0: not at all */
	unsigned	 conv_w;	/* the same for the conversation */
};

/*
 * The whole line, without its newline:
 * 03-04 18:00:05 critical alice c-1 站外引流 offplatform.add_contact_app BLOCKED agent: »加我薇信« abc123 ×3
 * 03-04 18:01:00 warn     alice c-2 声称无货 stock.none warned agent: 我不知道,»没货«了 + 服务用语 etiquette.unsure flagged
 * 18:00:35 warn     bob c-2 SLA breach: waited 31.2s (threshold 30s), first response
 */
int	alertline_format(struct sbuf *, const struct alertline_opts *, json_t *alert);

/* The column titles of alertline_format's lines, under the same options. */
int	alertline_header(struct sbuf *, const struct alertline_opts *);

/*
 * What happened, the line after time, severity, agent and conversation:
 * for a rule hit its category, rule, action, role and text with the match
 * set off, then the other rules of its "hits"; for an SLA event the wait
 * and its threshold; for a type this version does not know, the type and
 * any "message". Ends with ×N on a folded alert.
 */
int	alertline_what(struct sbuf *, const struct alertline_opts *, json_t *alert);

/* The severity word, coloured, padded to ALERTLINE_SEVERITY_W; "-" when NULL. */
int	alertline_severity(struct sbuf *, const struct alertline_opts *,
	    const char *severity);

/* A duration as a supervisor says it: 850ms, 30s, 31.2s, 3m, 3m05s, 1h, 1h30m. */
int	alertline_ms(struct sbuf *, uint64_t ms);

/* Untrusted text (valid UTF-8), controls and bidi overrides escaped. */
int	alertline_text(struct sbuf *, const char *, size_t);

/*
 * alertline_text of s ("-" when NULL or empty), then spaces up to width
 * terminal columns (CJK characters count two).
 */
int	alertline_pad(struct sbuf *, const char *s, unsigned width);

/* The Chinese name of a category, NULL for one the table does not know. Static. */
const char *alertline_category(const char *category);
/* Its name in lang (the dashboard's), NULL for ALERTLINE_IDS or one not known. Static. */
const char *alertline_category_name(const char *category, enum alertline_lang lang);

/* A severity's rank: 0 info, 1 warn, 2 critical; -1 unknown (or NULL). */
int	alertline_rank(const char *severity);

/* The terminal columns of UTF-8 text without escape codes. */
size_t	alertline_width(const char *, size_t);

/*
 * Whether output should be coloured: standard output is a terminal
 * (is_tty), NO_COLOR is unset or empty (https://no-color.org) and TERM is
 * not "dumb". The callers pass isatty() and getenv()'s answers.
 */
int	alertline_want_colour(int is_tty, const char *no_color, const char *term);

#endif
