/* chatmon: the supervisor's and auditor's command-line tool: scan, rules test, replay, tail, dashboard, report. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "chatmon/alertline.h"
#include "chatmon/config.h"
#include "chatmon/dashboard.h"
#include "chatmon/detect.h"
#include "chatmon/log.h"
#include "chatmon/model.h"
#include "chatmon/normalize.h"
#include "chatmon/passwd.h"
#include "chatmon/pushd.h"
#include "chatmon/replay.h"
#include "chatmon/reportcli.h"
#include "chatmon/rulebook.h"
#include "chatmon/rules.h"
#include "chatmon/rulesfp.h"
#include "chatmon/tail.h"

#ifndef CHATMON_CONFIG
#define CHATMON_CONFIG "/etc/chatmon/chatmond.yaml"
#endif

static int
usage(FILE *f)
{
	fprintf(f,
	    "usage: chatmon scan [-c FILE | --rules DIR] [--role agent|customer]\n"
	    "                    [--max-line BYTES] [--model FILE] [--format table|json]\n"
	    "                    [--shop ID] [FILE...]\n"
	    "       chatmon rules test [-c FILE | --rules DIR]\n"
	    "       chatmon rules normalize < TEXT\n"
	    "       chatmon rules fp [-c FILE] [--redis URL] [--since DAYS] [--json]\n"
	    "       chatmon replay [-c FILE] [--max-line BYTES] [--format table|json]\n"
	    "                    [FILE...]\n"
	    "       chatmon tail [-c FILE] [--redis URL] [--since ID|-N] [--severity LEVEL]\n"
	    "                    [--agent ID] [--type TYPE] [--lang zh|en] [--json]\n"
	    "       chatmon dashboard [-c FILE] [-o key.path=value]... [--listen ADDR]\n"
	    "                    [--redis URL]\n"
	    "       chatmon report [-c FILE] [--redis URL] --from YYYY-MM-DD\n"
	    "                    [--to YYYY-MM-DD] [--agent ID] [--shop ID [--queue ID]]\n"
	    "                    [--format json|csv|html] [--log FILE]... [--max-line BYTES]\n"
	    "       chatmon notify [-c FILE] [-o key.path=value]...\n"
	    "       chatmon passwd -f FILE [--shops LIST | --all-shops] USER\n"
	    "                    [viewer|supervisor]\n"
	    "       chatmon COMMAND --help\n"
	    "       chatmon --version\n"
	    "\n"
	    "scan     match chat lines {\"role\":…,\"text\":…} (JSON Lines, files or\n"
	    "         stdin) against the rules; one JSON result per input line, or\n"
	    "         a table of the hits\n"
	    "rules test  run every rule's examples and print a table\n"
	    "rules normalize  each line of stdin as the rules see it\n"
	    "rules fp  the false positives supervisors marked, per rule\n"
	    "replay   run a chat log {\"ts\",\"conversation\",\"role\",\"agent\",\"text\"}\n"
	    "         through the rules and the SLA clock; every alert, then a summary\n"
	    "tail     the alerts in Redis: the last ones, then live (docs/alerts.md)\n"
	    "dashboard  the supervisors' page: live alerts, who waits, each agent's\n"
	    "         day, from Redis (docs/dashboard.md)\n"
	    "report   each agent's and the team's figures over some days (SLA, rule\n"
	    "         hits, false positives, worst waits) as JSON, CSV or HTML, from\n"
	    "         Redis or (--log) from chat logs through replay's engine\n"
	    "notify   push alerts to DingTalk, WeCom, Feishu, Slack or webhooks\n"
	    "         (docs/notify.md)\n"
	    "passwd   add or replace a dashboard login (password from stdin)\n"
	    "\n"
	    "The rules come from --rules DIR, or from the configuration's rules\n"
	    "key (-c FILE, default " CHATMON_CONFIG ").\n"
	    "scan, replay and report --log read lines of at most --max-line bytes\n"
	    "(default " REPLAY_MAX_LINE_STR "); a longer one, like any bad line, is "
	    "reported as\nFILE:LINE and skipped.\n"
	    "scan and replay print a readable table (--format table) when standard\n"
	    "output is a terminal, JSON (--format json) otherwise.\n"
	    "Exit status: 0 success; 1 a bad input line, an input that cannot be\n"
	    "read, a configuration or rules error, a failed example; 2 a usage error.\n");
	return f == stdout ? 0 : 2;
}

/* --help: stdout and 0; a usage error: stderr and 2. */
static int
usage_scan(FILE *f)
{
	fprintf(f,
	    "usage: chatmon scan [-c FILE | --rules DIR] [--role agent|customer]\n"
	    "                    [--max-line BYTES] [--model FILE] [--format table|json]\n"
	    "                    [--shop ID] [FILE...]\n"
	    "\n"
	    "Matches chat lines {\"role\":\"agent\",\"text\":\"...\"} (JSON Lines, each\n"
	    "FILE in turn, or stdin) against the rules: one JSON object per input\n"
	    "line, {\"line\":N,\"hits\":[...]} or {\"line\":N,\"error\":\"...\"}, in order;\n"
	    "or, as a table, one readable line per hit (FILE:LINE, severity, category,\n"
	    "rule, action, role, the text with the match marked), then the counts.\n"
	    "-c FILE     the configuration whose rules key names the rules\n"
	    "            (default " CHATMON_CONFIG ")\n"
	    "--rules     the rules directory, instead of the configuration's\n"
	    "--role      the role of a line without one (default agent)\n"
	    "--model     the n-gram model's second opinion (flags only), instead\n"
	    "            of the configuration's model key\n"
	    "--max-line  the longest line read, as 64KiB or 65536 (default "
	    REPLAY_MAX_LINE_STR ");\n"
	    "            a longer one is an error, in bounded memory\n"
	    "--format    table or json; default table on a terminal, else json\n"
	    "--shop      the lines are that shop's: its packs run too, less its\n"
	    "            rules_off (the configuration's shops; default none)\n"
	    "\n"
	    "Exit status: 0 every line good; 1 a bad line (its error is in the\n"
	    "output and on stderr as FILE:LINE: reason; the other lines are still\n"
	    "scanned), an input that cannot be read, or a configuration or rules\n"
	    "error; 2 a usage error.\n");
	return f == stdout ? 0 : 2;
}

static int
usage_rules(FILE *f)
{
	fprintf(f,
	    "usage: chatmon rules test [-c FILE | --rules DIR]\n"
	    "       chatmon rules normalize < TEXT\n"
	    "       chatmon rules fp [-c FILE] [--redis URL] [--since DAYS] [--json]\n"
	    "\n"
	    "test       loads the rules as chatmond does (with -c, the shops' packs\n"
	    "           and rules_off too) and runs every rule's examples: a table of\n"
	    "           rules (a shop's pack's after a line naming it, its shops and\n"
	    "           its cost), then each failing example as FILE:LINE, then a\n"
	    "           summary line of every pack, then what a plain chat turn costs\n"
	    "           the top-level pack (views read, whether the window pass can be\n"
	    "           skipped; docs/rules.md).\n"
	    "           Exit status: 0 every example passed; 1 an example failed\n"
	    "           or the rules cannot be loaded; 2 a usage error.\n"
	    "normalize  prints each line of standard input as rules see it\n"
	    "           (docs/rules.md, \"Normalisation\"): what to write patterns against.\n"
	    "fp         the alerts supervisors marked false_positive on the dashboard,\n"
	    "           per rule, most first (chatmon rules fp --help).\n");
	return f == stdout ? 0 : 2;
}

/*
 * The rule book named by --rules DIR (its one pack, every other key at its
 * default) or by the configuration (its top-level pack and its shops'
 * packs, as chatmond loads them); NULL with errors printed. With cfgp, the
 * configuration too; the caller frees both.
 */
static struct rulebook *
load_book(const char *cfgpath, const char *dir, unsigned flags,
    struct config **cfgp)
{
	struct config	*cfg = NULL;
	struct rulebook	*b = NULL;
	struct sbuf	 errs;
	char		*d;

	sbuf_init(&errs);
	if ((cfg = config_load(dir == NULL ? cfgpath : NULL, NULL, 0, &errs)) == NULL)
		goto out;
	if (dir != NULL) {
		if ((d = strdup(dir)) == NULL) {
			sbuf_line(&errs, "chatmon: out of memory");
			goto out;
		}
		free(cfg->rules);
		cfg->rules = d;
	}
	b = rulebook_load(cfg, flags, &errs);
out:
	fputs(sbuf_str(&errs), stderr);
	sbuf_free(&errs);
	if (cfgp != NULL && b != NULL)
		*cfgp = cfg;
	else
		config_free(cfg);
	return b;
}

/* Options of the verbs: -c FILE, --rules DIR; scan's --role ROLE, --max-line BYTES, --format, --shop. */
struct opts {
	const char	*config;
	const char	*shop;		/* --shop: "" none */
	const char	*rules;
	enum rules_role	 role;
	size_t		 max_line;
	const char	*model;		/* --model: the second opinion's file */
	int		 table;		/* --format table; -1: not given */
};

/* 0, 1 for --help, or -1 on a usage error. */
static int
parse_opts(int argc, char **argv, struct opts *o, int scan)
{
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "rules", required_argument, NULL, 'r' },
		{ "role", required_argument, NULL, 'R' },
		{ "max-line", required_argument, NULL, 'L' },
		{ "model", required_argument, NULL, 'm' },
		{ "format", required_argument, NULL, 'F' },
		{ "shop", required_argument, NULL, 'S' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	int	ch;

	o->config = CHATMON_CONFIG;
	o->shop = "";
	o->rules = NULL;
	o->role = RULES_AGENT;
	o->max_line = REPLAY_MAX_LINE;
	o->model = NULL;
	o->table = -1;
	optind = 1;
	while ((ch = getopt_long(argc, argv, "c:h", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			o->config = optarg;
			break;
		case 'r':
			o->rules = optarg;
			break;
		case 'R':
			if (!scan)
				return -1;
			if (strcmp(optarg, "agent") == 0)
				o->role = RULES_AGENT;
			else if (strcmp(optarg, "customer") == 0)
				o->role = RULES_CUSTOMER;
			else {
				fprintf(stderr, "chatmon: --role: agent or customer, "
				    "not '%s'\n", optarg);
				return -1;
			}
			break;
		case 'L':
			if (!scan || replay_max_line(optarg, &o->max_line) == -1)
				return -1;
			break;
		case 'm':
			if (!scan)
				return -1;
			o->model = optarg;
			break;
		case 'F':
			if (!scan || replay_format(optarg, &o->table) == -1)
				return -1;
			break;
		case 'S':
			if (!scan)
				return -1;
			o->shop = optarg;
			break;
		case 'h':
			return 1;
		default:
			return -1;
		}
	}
	return 0;
}

/* Prints one JSON object and a newline; the object is stolen. */
static void
emit(json_t *o)
{
	char	*s;

	if (o == NULL || (s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER)) == NULL) {
		fputs("{\"error\":\"out of memory\"}\n", stdout);
		json_decref(o);
		return;
	}
	puts(s);
	free(s);
	json_decref(o);
}

/*
 * What scan writes: one JSON result per input line for a program, or, for
 * a person at a terminal, a table with one readable line per hit (the
 * lines without any are left out: they are what most of a log is).
 */
struct scan_out {
	int			 table;
	struct alertline_opts	 fmt;
	unsigned		 where_w;	/* the FILE:LINE column */
	struct sbuf		 line, where;	/* reused for every row */
	size_t			 hits, bad;
};

/*
 * A bad line: its error goes in the JSON output, where the results are,
 * and on stderr, where a person looks; the exit status says there was one.
 * The table has only its count: the terminal shows stderr already.
 */
static void
scan_bad(struct scan_out *so, const char *name, size_t fileline, size_t lineno,
    const char *why)
{
	fprintf(stderr, "%s:%zu: %s\n", name, fileline, why);
	so->bad++;
	if (!so->table)
		emit(json_pack("{s:I, s:s}", "line", (json_int_t)lineno, "error", why));
}

static void
scan_put(struct sbuf *sb)
{
	fwrite(sbuf_str(sb), 1, sb->len, stdout);
	fputc('\n', stdout);
}

/* 0, or -1 on ENOMEM. */
static int
scan_header(struct scan_out *so)
{
	sbuf_reset(&so->line);
	if (alertline_pad(&so->line, "FILE:LINE", so->where_w) == -1 ||
	    sbuf_printf(&so->line, " %-*s WHAT", ALERTLINE_SEVERITY_W, "SEVERITY") == -1)
		return -1;
	scan_put(&so->line);
	return 0;
}

/*
 * One hit as a table row: where, severity, then alertline's account of a
 * rule hit, made from the hit and its turn as an alert would carry them.
 * 0, or -1 on ENOMEM (the row is not written).
 */
static int
scan_row(struct scan_out *so, const char *name, size_t fileline,
    enum rules_role role, const char *text, size_t text_len,
    const struct detect_hit *dh)
{
	const struct rules_hit	*h = &dh->hit;
	json_t			*a;
	int			 rc;

	if (dh->turns > 1) {
		text = dh->text;
		text_len = dh->text_len;
	}
	a = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s%, s:{s:I, s:I}}",
	    "type", "rule.hit",
	    "role", role == RULES_CUSTOMER ? "customer" : "agent",
	    "category", h->category,
	    "rule", h->rule,
	    "action", rules_action_name(h->action),
	    "text", text, text_len,
	    "match", "start", (json_int_t)h->start, "end", (json_int_t)h->end);
	sbuf_reset(&so->line);
	sbuf_reset(&so->where);
	rc = a == NULL ||
	    sbuf_printf(&so->where, "%s:%zu", name, fileline) == -1 ||
	    alertline_pad(&so->line, sbuf_str(&so->where), so->where_w) == -1 ||
	    sbuf_append(&so->line, " ", 1) == -1 ||
	    alertline_severity(&so->line, &so->fmt,
		rules_severity_name(h->severity)) == -1 ||
	    sbuf_append(&so->line, " ", 1) == -1 ||
	    alertline_what(&so->line, &so->fmt, a) == -1 ? -1 : 0;
	json_decref(a);
	if (rc == 0)
		scan_put(&so->line);
	return rc;
}

/*
 * One line's hits, or its error; 0, or -1 for a bad line. Lines with a
 * "conversation" are turns of it, a second apart: rules marked window see
 * the speaker's last ones (a hit across turns has "turns" and "text").
 */
static int
scan_line(struct scan_out *so, struct detect *det, enum rules_role def_role,
    const char *shop, const char *line, size_t len, size_t lineno, const char *name,
    size_t fileline)
{
	const struct detect_hit	*hits;
	const struct rules_hit	*h;
	json_error_t		 e;
	json_t			*in, *jr, *jt = NULL, *jc = NULL, *arr, *o;
	enum rules_role		 role = def_role;
	const char		*why = NULL;
	struct sbuf		 msg;
	ssize_t			 n, i;

	sbuf_init(&msg);
	if ((in = json_loadb(line, len, JSON_ALLOW_NUL, &e)) == NULL) {
		/* jansson quotes the line ("near '...'"): not for a terminal raw */
		if (sbuf_printf(&msg, "invalid JSON: ") == -1 ||
		    alertline_text(&msg, e.text, strlen(e.text)) == -1 ||
		    sbuf_printf(&msg, " at column %d", e.column) == -1)
			why = "out of memory";
		else
			why = sbuf_str(&msg);
	} else if (!json_is_object(in))
		why = "not a JSON object";
	else if ((jt = json_object_get(in, "text")) == NULL || !json_is_string(jt))
		why = "text missing or not a string";
	else if ((jr = json_object_get(in, "role")) != NULL) {
		if (json_is_string(jr) && strcmp(json_string_value(jr), "agent") == 0)
			role = RULES_AGENT;
		else if (json_is_string(jr) &&
		    strcmp(json_string_value(jr), "customer") == 0)
			role = RULES_CUSTOMER;
		else
			why = "role must be \"agent\" or \"customer\"";
	}
	if (why == NULL && (jc = json_object_get(in, "conversation")) != NULL &&
	    !json_is_string(jc))
		why = "conversation must be a string";
	if (why != NULL) {
		scan_bad(so, name, fileline, lineno, why);
		sbuf_free(&msg);
		json_decref(in);
		return -1;
	}
	/* a line of no conversation is matched alone; "" is a conversation */
	if ((n = detect_turn(det, role, "", shop,
	    jc ? json_string_value(jc) : NULL, jc ? json_string_length(jc) : 0,
	    json_string_value(jt),
	    json_string_length(jt), (int64_t)lineno * 1000, &hits)) == -1) {
		scan_bad(so, name, fileline, lineno, "out of memory");
		json_decref(in);
		return -1;
	}
	so->hits += (size_t)n;
	/* as the relay does (pipeline_turn): a blocked line was never read */
	for (i = 0; i < n; i++)
		if (hits[i].hit.action == RULES_BLOCK) {
			detect_forget(det);
			break;
		}
	if (so->table) {
		for (i = 0; i < n; i++)
			if (scan_row(so, name, fileline, role, json_string_value(jt),
			    json_string_length(jt), &hits[i]) == -1) {
				fprintf(stderr, "%s:%zu: out of memory\n", name, fileline);
				json_decref(in);
				return -1;
			}
		json_decref(in);
		return 0;
	}
	arr = json_array();
	for (i = 0; i < n; i++) {
		h = &hits[i].hit;
		o = json_pack("{s:s, s:s, s:s, s:s, s:I, s:I, s:s#}",
		    "rule", h->rule,
		    "category", h->category,
		    "severity", rules_severity_name(h->severity),
		    "action", rules_action_name(h->action),
		    "start", (json_int_t)h->start,
		    "end", (json_int_t)h->end,
		    "match", h->match, (int)h->match_len);
		if (o != NULL && hits[i].turns > 1) {
			json_object_set_new(o, "turns", json_integer(hits[i].turns));
			json_object_set_new(o, "text", json_stringn(hits[i].text,
			    hits[i].text_len));
		}
		if (o != NULL && hits[i].vetoed)
			json_object_set_new(o, "vetoed", json_true());
		json_array_append_new(arr, o);
	}
	emit(json_pack("{s:I, s:o}", "line", (json_int_t)lineno, "hits", arr));
	json_decref(in);
	return 0;
}

/*
 * "line" in the output counts across all the inputs, as one stream; the
 * FILE:LINE of an error on stderr is the line within its file.
 */
static int
cmd_scan(int argc, char **argv)
{
	struct opts		 o;
	struct scan_out		 so;
	struct rulebook		*r;
	struct config		*cfg;
	struct detect		*det;
	struct model		*m = NULL;
	struct sbuf		 errs;
	struct window_conf	 wc;
	FILE			*f;
	const char		*name;
	char			*line = NULL, msg[64];
	size_t			 cap = 0, n, lineno = 0, fileline, w;
	enum replay_read	 rd;
	int			 i, rc = 0;

	if ((i = parse_opts(argc, argv, &o, 1)) != 0)
		return usage_scan(i == 1 ? stdout : stderr);
	memset(&so, 0, sizeof(so));
	sbuf_init(&so.line);
	sbuf_init(&so.where);
	so.table = o.table != -1 ? o.table : isatty(STDOUT_FILENO);
	so.fmt.colour = so.table && alertline_want_colour(isatty(STDOUT_FILENO),
	    getenv("NO_COLOR"), getenv("TERM"));
	so.fmt.lang = ALERTLINE_ZH;
	so.fmt.now_ms = -1;
	/* the names and, mostly, 5 digits: the rows line up under the header */
	so.where_w = (unsigned)strlen("FILE:LINE");
	for (i = optind; i < argc || (i == optind && optind == argc); i++) {
		name = i < argc ? argv[i] : "-";
		if ((w = alertline_width(name, strlen(name)) + 6) > so.where_w && w < 80)
			so.where_w = (unsigned)w;
	}
	if ((r = load_book(o.config, o.rules, 0, &cfg)) == NULL)
		return 1;
	/* a shop not configured would scan as the top level: a typo said (review) */
	if (o.shop[0] != '\0' && config_shop_find(cfg, o.shop) == NULL) {
		fprintf(stderr, "chatmon: scan: --shop %s: no such shop in the "
		    "configuration's shops\n", o.shop);
		config_free(cfg);
		rulebook_free(r);
		return 2;
	}
	detect_window_conf(cfg, &wc);
	/* the configuration's model, or --model's */
	sbuf_init(&errs);
	if (o.model == NULL)
		o.model = cfg->model;
	if ((o.model != NULL && (m = model_new(o.model, &errs)) == NULL) ||
	    rulebook_model_off(cfg, m, &errs) == -1) {
		fputs(sbuf_str(&errs), stderr);
		sbuf_free(&errs);
		model_free(m);
		config_free(cfg);
		rulebook_free(r);
		return 1;
	}
	sbuf_free(&errs);
	if ((det = detect_new(r, &wc)) == NULL ||
	    detect_set_model(det, m, cfg->model_veto) == -1) {
		fprintf(stderr, "chatmon: out of memory\n");
		detect_free(det);
		model_free(m);
		config_free(cfg);
		rulebook_free(r);
		return 1;
	}
	config_free(cfg);
	snprintf(msg, sizeof(msg), REPLAY_LONG_FMT, o.max_line);
	if (so.table && scan_header(&so) == -1) {
		fprintf(stderr, "chatmon: out of memory\n");
		rc = 1;
		goto out;
	}
	for (i = optind; i < argc || (i == optind && optind == argc); i++) {
		name = i < argc ? argv[i] : "-";
		if (strcmp(name, "-") == 0)
			f = stdin;
		else if ((f = fopen(name, "r")) == NULL) {
			fprintf(stderr, "chatmon: %s: %s\n", name, strerror(errno));
			rc = 1;
			continue;
		}
		for (fileline = 1; (rd = replay_getline(f, o.max_line, &line, &cap,
		    &n)) != REPLAY_READ_EOF && rd != REPLAY_READ_ERR; fileline++) {
			lineno++;
			if (rd == REPLAY_READ_LONG) {
				scan_bad(&so, name, fileline, lineno, msg);
				rc = 1;
				continue;
			}
			util_json_lone_surrogates(line, n);	/* read as the relay does */
			if (scan_line(&so, det, o.role, o.shop, line, n, lineno, name,
			    fileline) == -1)
				rc = 1;
		}
		if (rd == REPLAY_READ_ERR) {
			/* a directory opens, then fails here: not an empty file */
			fprintf(stderr, "chatmon: %s: %s\n", name, strerror(errno));
			rc = 1;
		}
		if (f != stdin)
			fclose(f);
	}
	if (so.table)
		printf("%zu lines, %zu hits, %zu bad\n", lineno, so.hits, so.bad);
out:
	free(line);
	sbuf_free(&so.line);
	sbuf_free(&so.where);
	detect_free(det);
	model_free(m);
	rulebook_free(r);
	if (util_stdout_done("scan") == -1)
		rc = 1;
	return rc;
}

struct test_row {
	const char	*rule;
	size_t		 pass, total;
};

struct test_state {
	struct test_row	*rows;
	size_t		 n;
	size_t		 start;		/* the current pack's first row */
	struct sbuf	 fails;
};

static void
test_cb(const struct rules_example *e, void *arg)
{
	struct test_state	*st = arg;
	struct test_row		*row;

	if (st->n == st->start || strcmp(st->rows[st->n - 1].rule, e->rule) != 0) {
		row = realloc(st->rows, (st->n + 1) * sizeof(*row));
		if (row == NULL)
			return;
		st->rows = row;
		st->rows[st->n++] = (struct test_row){ e->rule, 0, 0 };
	}
	row = &st->rows[st->n - 1];
	row->total++;
	if (e->ok)
		row->pass++;
	else
		sbuf_line(&st->fails, "%s:%zu: rule %s: example \"%s\" %s", e->file,
		    e->line, e->rule, e->text, e->want_match ?
		    "should match but does not" : "matches but should not");
}

/* chatmon rules normalize: each line of stdin as the rules' default steps make it. */
static int
cmd_normalize(void)
{
	struct norm	*n;
	const char	*out;
	const uint32_t	*map;
	char		*line = NULL, msg[128];
	size_t		 cap = 0, len, k, fileline;
	enum replay_read rd;
	int		 rc = 0;

	if ((n = norm_new()) == NULL) {
		fprintf(stderr, "chatmon: out of memory\n");
		return 1;
	}
	/*
	 * lines as scan reads them: at most its --max-line default, so that
	 * one line cannot take memory without bound (found by review: a
	 * 100 MB line took 1.8 GB); a longer one is said, as a read error is
	 */
	snprintf(msg, sizeof(msg), REPLAY_LONG_FMT, (size_t)REPLAY_MAX_LINE);
	for (fileline = 1; (rd = replay_getline(stdin, REPLAY_MAX_LINE, &line,
	    &cap, &k)) != REPLAY_READ_EOF && rd != REPLAY_READ_ERR; fileline++) {
		if (rd == REPLAY_READ_LONG) {
			fprintf(stderr, "chatmon: -:%zu: %s\n", fileline, msg);
			rc = 1;
			putchar('\n');		/* a line out for each line in */
			continue;
		}
		if (norm_run(n, line, k, NORM_ALL, &out, &len, &map) == -1) {
			fprintf(stderr, "chatmon: out of memory\n");
			rc = 1;
			break;
		}
		fwrite(out, 1, len, stdout);
		putchar('\n');
	}
	if (rd == REPLAY_READ_ERR) {
		fprintf(stderr, "chatmon: -: %s\n", strerror(errno));
		rc = 1;
	}
	free(line);
	norm_free(n);
	return util_stdout_done("rules normalize") == 0 ? rc : 1;
}

/* What a plain turn costs pack r, as one clause (docs/rules.md). */
static void
test_cost(const struct rules *r)
{
	unsigned	views, plain_views, every;
	int		gate;

	rules_cost(r, &views, &plain_views, &every, &gate);
	printf("a plain turn reads %u of %u normalised views; ", plain_views,
	    views);
	if (every > 0)
		printf("%u rule%s no literal to look for and run%s on every "
		    "turn; ", every, every == 1 ? " has" : "s have",
		    every == 1 ? "s" : "");
	printf("the window pass %s", rules_window_count(r) == 0 ?
	    "never runs (no window rule)" :
	    gate ? "is skipped when the turns' notes show nothing to find" :
	    "runs on every turn");
}

/*
 * The line before the rows of a shop's pack: its path, the shops that run
 * it, its cost. The book's paths are the configuration's strings, so they
 * compare equal.
 */
static void
test_pack_line(const struct config *cfg, const char *path,
    const struct rules *r)
{
	struct sbuf	ids;
	size_t		s, k, n = 0;

	sbuf_init(&ids);
	for (s = 0; s < cfg->nshops; s++)
		for (k = 0; k < cfg->shops[s].rules.n; k++)
			if (strcmp(cfg->shops[s].rules.v[k], path) == 0) {
				sbuf_printf(&ids, "%s%s", n++ ? ", " : "",
				    cfg->shops[s].id);
				break;
			}
	printf("%s (shop%s %s): ", path, n == 1 ? "" : "s", sbuf_str(&ids));
	test_cost(r);
	putchar('\n');
	sbuf_free(&ids);
}

static int
cmd_rules(int argc, char **argv)
{
	struct opts		 o;
	struct config		*cfg = NULL;
	struct rulebook		*b;
	struct test_state	 st;
	size_t			*start, i, p, fails = 0, w = 4, ex = 0;
	int			 opt;

	if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0))
		return usage_rules(stdout);
	if (argc >= 2 && strcmp(argv[1], "normalize") == 0) {
		if (argc == 2)
			return cmd_normalize();
		return usage_rules(argc == 3 && (strcmp(argv[2], "--help") == 0 ||
		    strcmp(argv[2], "-h") == 0) ? stdout : stderr);
	}
	if (argc >= 2 && strcmp(argv[1], "fp") == 0)
		return rulesfp_main(argc - 1, argv + 1, CHATMON_CONFIG);
	if (argc < 2 || strcmp(argv[1], "test") != 0)
		return usage_rules(stderr);
	if ((opt = parse_opts(argc - 1, argv + 1, &o, 0)) == 1)
		return usage_rules(stdout);
	if (opt == -1 || optind != argc - 1)
		return usage_rules(stderr);
	/*
	 * The book chatmond would load, shops' packs and rules_off included:
	 * a pass here is a configuration that `chatmond -t` and a reload take.
	 */
	if ((b = load_book(o.config, o.rules, RULES_SKIP_EXAMPLES, &cfg)) == NULL)
		return 1;
	if ((start = calloc(rulebook_packs(b), sizeof(*start))) == NULL) {
		fprintf(stderr, "chatmon: out of memory\n");
		rulebook_free(b);
		config_free(cfg);
		return 1;
	}
	memset(&st, 0, sizeof(st));
	for (p = 0; p < rulebook_packs(b); p++) {
		start[p] = st.start = st.n;
		fails += rules_test(rulebook_pack_rules(b, p), test_cb, &st);
	}
	for (i = 0; i < st.n; i++) {
		if (strlen(st.rows[i].rule) > w)
			w = strlen(st.rows[i].rule);
		ex += st.rows[i].total;
	}
	printf("%-*s  %8s  %s\n", (int)w, "RULE", "EXAMPLES", "RESULT");
	for (p = 0, i = 0; i < st.n || p < rulebook_packs(b); i++) {
		/* each shop's pack after the top-level's, under a line of its own */
		for (; p < rulebook_packs(b) && start[p] == i; p++)
			if (p > 0)
				test_pack_line(cfg, rulebook_pack_path(b, p),
				    rulebook_pack_rules(b, p));
		if (i < st.n)
			printf("%-*s  %4zu/%-3zu  %s\n", (int)w, st.rows[i].rule,
			    st.rows[i].pass, st.rows[i].total,
			    st.rows[i].pass == st.rows[i].total ? "ok" : "FAIL");
	}
	fputs(sbuf_str(&st.fails), stdout);
	printf("%zu rules, %zu examples, %zu failed\n", st.n, ex, fails);
	test_cost(rulebook_base(b));
	putchar('\n');
	free(start);
	free(st.rows);
	sbuf_free(&st.fails);
	rulebook_free(b);
	config_free(cfg);
	/* a table nobody got is no pass: a full disk, a closed pipe */
	if (util_stdout_done("rules test") == -1)
		return 1;
	return fails ? 1 : 0;
}

int
main(int argc, char **argv)
{
	log_init("chatmon", LOG_LVL_WARN);
	if (argc >= 2 && (strcmp(argv[1], "--version") == 0 ||
	    strcmp(argv[1], "-V") == 0)) {
		printf("chatmon %s\n", CHATMON_VERSION);
		return 0;
	}
	if (argc >= 2 && (strcmp(argv[1], "--help") == 0 ||
	    strcmp(argv[1], "-h") == 0))
		return usage(stdout);
	if (argc >= 2 && strcmp(argv[1], "scan") == 0)
		return cmd_scan(argc - 1, argv + 1);
	if (argc >= 2 && strcmp(argv[1], "rules") == 0)
		return cmd_rules(argc - 1, argv + 1);
	if (argc >= 2 && strcmp(argv[1], "replay") == 0)
		return replay_main(argc - 1, argv + 1, CHATMON_CONFIG);
	if (argc >= 2 && strcmp(argv[1], "tail") == 0)
		return tail_main(argc - 1, argv + 1, CHATMON_CONFIG);
	if (argc >= 2 && strcmp(argv[1], "dashboard") == 0)
		return dashboard_main(argc - 1, argv + 1, CHATMON_CONFIG);
	if (argc >= 2 && strcmp(argv[1], "report") == 0)
		return reportcli_main(argc - 1, argv + 1, CHATMON_CONFIG);
	if (argc >= 2 && strcmp(argv[1], "notify") == 0)
		return pushd_main(argc - 1, argv + 1, CHATMON_CONFIG);
	if (argc >= 2 && strcmp(argv[1], "passwd") == 0)
		return passwd_main(argc - 1, argv + 1);
	if (argc >= 2)
		fprintf(stderr, "chatmon: unknown command '%s'\n", argv[1]);
	return usage(stderr);
}
