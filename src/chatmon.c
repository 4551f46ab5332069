/* chatmon: the supervisor's and auditor's command-line tool: scan, rules test, replay, tail. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "chatmon/config.h"
#include "chatmon/dashboard.h"
#include "chatmon/log.h"
#include "chatmon/replay.h"
#include "chatmon/rules.h"
#include "chatmon/tail.h"

#ifndef CHATMON_CONFIG
#define CHATMON_CONFIG "/etc/chatmon/chatmond.yaml"
#endif

static int
usage(FILE *f)
{
	fprintf(f,
	    "usage: chatmon scan [-c FILE | --rules DIR] [--role agent|customer] [FILE...]\n"
	    "       chatmon rules test [-c FILE | --rules DIR]\n"
	    "       chatmon replay [-c FILE] [FILE...]\n"
	    "       chatmon tail [-c FILE] [--redis URL] [--since ID|-N] [--severity LEVEL]\n"
	    "                    [--agent ID] [--type TYPE] [--json]\n"
	    "       chatmon dashboard [-c FILE] [-o key.path=value]... [--listen ADDR]\n"
	    "                    [--redis URL]\n"
	    "       chatmon --version\n"
	    "\n"
	    "scan     match chat lines {\"role\":…,\"text\":…} (JSON Lines, files or\n"
	    "         stdin) against the rules; one JSON result per input line\n"
	    "rules test  run every rule's examples and print a table\n"
	    "replay   run a chat log {\"ts\",\"conversation\",\"role\",\"agent\",\"text\"}\n"
	    "         through the rules and the SLA clock; every alert, then a summary\n"
	    "tail     the alerts in Redis: the last ones, then live (docs/alerts.md)\n"
	    "dashboard  the supervisors' page: live alerts, who waits, each agent's\n"
	    "         day, from Redis (docs/dashboard.md)\n"
	    "\n"
	    "The rules come from --rules DIR, or from the configuration's rules\n"
	    "key (-c FILE, default " CHATMON_CONFIG ").\n");
	return f == stdout ? 0 : 2;
}

/* The rule set named by --rules or by the configuration; NULL with errors printed. */
static struct rules *
load_rules(const char *cfgpath, const char *dir, unsigned flags)
{
	struct config	*cfg = NULL;
	struct rules	*r = NULL;
	struct sbuf	 errs;

	sbuf_init(&errs);
	if (dir == NULL) {
		if ((cfg = config_load(cfgpath, NULL, 0, &errs)) == NULL)
			goto out;
		dir = cfg->rules;
	}
	r = rules_load_dir(dir, flags, &errs);
out:
	fputs(sbuf_str(&errs), stderr);
	sbuf_free(&errs);
	config_free(cfg);
	return r;
}

/* Common options of the verbs: -c FILE, --rules DIR, --role ROLE. */
struct opts {
	const char	*config;
	const char	*rules;
	enum rules_role	 role;
};

static int
parse_opts(int argc, char **argv, struct opts *o, int with_role)
{
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "rules", required_argument, NULL, 'r' },
		{ "role", required_argument, NULL, 'R' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	int	ch;

	o->config = CHATMON_CONFIG;
	o->rules = NULL;
	o->role = RULES_AGENT;
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
			if (!with_role)
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

static void
scan_line(struct rules *r, enum rules_role def_role, const char *line,
    size_t len, size_t lineno)
{
	const struct rules_hit	*hits;
	json_error_t		 e;
	json_t			*in, *jr, *jt, *arr;
	enum rules_role		 role = def_role;
	const char		*why = NULL;
	char			 msg[256];
	size_t			 n, i;

	if ((in = json_loadb(line, len, JSON_ALLOW_NUL, &e)) == NULL) {
		snprintf(msg, sizeof(msg), "invalid JSON: %s at column %d",
		    e.text, e.column);
		why = msg;
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
	if (why != NULL) {
		emit(json_pack("{s:I, s:s}", "line", (json_int_t)lineno, "error", why));
		json_decref(in);
		return;
	}
	n = rules_match(r, role, json_string_value(jt), json_string_length(jt), &hits);
	arr = json_array();
	for (i = 0; i < n; i++)
		json_array_append_new(arr, json_pack(
		    "{s:s, s:s, s:s, s:s, s:I, s:I, s:s#}",
		    "rule", hits[i].rule,
		    "category", hits[i].category,
		    "severity", rules_severity_name(hits[i].severity),
		    "action", rules_action_name(hits[i].action),
		    "start", (json_int_t)hits[i].start,
		    "end", (json_int_t)hits[i].end,
		    "match", hits[i].match, (int)hits[i].match_len));
	emit(json_pack("{s:I, s:o}", "line", (json_int_t)lineno, "hits", arr));
	json_decref(in);
}

static int
cmd_scan(int argc, char **argv)
{
	struct opts	 o;
	struct rules	*r;
	FILE		*f;
	char		*line = NULL;
	size_t		 cap = 0, lineno = 0;
	ssize_t		 n;
	int		 i, rc = 0;

	if (parse_opts(argc, argv, &o, 1) == -1)
		return usage(stderr);
	if ((r = load_rules(o.config, o.rules, 0)) == NULL)
		return 1;
	for (i = optind; i < argc || (i == optind && optind == argc); i++) {
		if (i < argc && strcmp(argv[i], "-") != 0) {
			if ((f = fopen(argv[i], "r")) == NULL) {
				fprintf(stderr, "chatmon: %s: %s\n", argv[i],
				    strerror(errno));
				rc = 1;
				continue;
			}
		} else
			f = stdin;
		while ((n = getline(&line, &cap, f)) != -1) {
			lineno++;
			while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
				n--;
			scan_line(r, o.role, line, (size_t)n, lineno);
		}
		if (f != stdin)
			fclose(f);
	}
	free(line);
	rules_free(r);
	if (fflush(stdout) != 0)
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
	struct sbuf	 fails;
};

static void
test_cb(const struct rules_example *e, void *arg)
{
	struct test_state	*st = arg;
	struct test_row		*row;

	if (st->n == 0 || strcmp(st->rows[st->n - 1].rule, e->rule) != 0) {
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

static int
cmd_rules(int argc, char **argv)
{
	struct opts		 o;
	struct rules		*r;
	struct test_state	 st;
	size_t			 i, fails, w = 4, ex = 0;

	if (argc < 2 || strcmp(argv[1], "test") != 0)
		return usage(stderr);
	if (parse_opts(argc - 1, argv + 1, &o, 0) == -1 || optind != argc - 1)
		return usage(stderr);
	if ((r = load_rules(o.config, o.rules, RULES_SKIP_EXAMPLES)) == NULL)
		return 1;
	memset(&st, 0, sizeof(st));
	fails = rules_test(r, test_cb, &st);
	for (i = 0; i < st.n; i++) {
		if (strlen(st.rows[i].rule) > w)
			w = strlen(st.rows[i].rule);
		ex += st.rows[i].total;
	}
	printf("%-*s  %8s  %s\n", (int)w, "RULE", "EXAMPLES", "RESULT");
	for (i = 0; i < st.n; i++)
		printf("%-*s  %4zu/%-3zu  %s\n", (int)w, st.rows[i].rule,
		    st.rows[i].pass, st.rows[i].total,
		    st.rows[i].pass == st.rows[i].total ? "ok" : "FAIL");
	fputs(sbuf_str(&st.fails), stdout);
	printf("%zu rules, %zu examples, %zu failed\n", st.n, ex, fails);
	free(st.rows);
	sbuf_free(&st.fails);
	rules_free(r);
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
	if (argc >= 2)
		fprintf(stderr, "chatmon: unknown command '%s'\n", argv[1]);
	return usage(stderr);
}
