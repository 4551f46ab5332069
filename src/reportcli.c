/* reportcli: `chatmon report`: the figures of some days (SLA, rule hits, false positives, the worst waits) from Redis or from chat logs, as JSON, CSV or HTML on stdout. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include <event2/event.h>

#include <jansson.h>

#include "chatmon/cliconf.h"
#include "chatmon/config.h"
#include "chatmon/log.h"
#include "chatmon/pipeline.h"
#include "chatmon/rconn.h"
#include "chatmon/replay.h"
#include "chatmon/report.h"
#include "chatmon/reportcli.h"
#include "chatmon/reportdb.h"
#include "chatmon/reportlog.h"
#include "chatmon/sla.h"
#include "chatmon/state.h"
#include "chatmon/util.h"

#define REPORTCLI_CONNECT_S	5
#define REPORTCLI_MAX_DAYS	3660	/* retention_days is at most 3650 */

static int
reportcli_usage(FILE *f)
{
	fprintf(f,
	    "usage: chatmon report [-c FILE] [--redis URL] --from YYYY-MM-DD [--to YYYY-MM-DD]\n"
	    "                      [--agent ID] [--shop ID [--queue ID]] [--format json|csv|html]\n"
	    "       chatmon report [-c FILE] --from YYYY-MM-DD [--to YYYY-MM-DD] [--agent ID]\n"
	    "                      [--shop ID [--queue ID]] [--format json|csv|html]\n"
	    "                      [--max-line BYTES]\n"
	    "                      --log FILE [--log FILE]...\n"
	    "\n"
	    "Each agent's and the team's figures over the local days from..to\n"
	    "(inclusive; sla.timezone): rounds, answered, first-response mean, mean\n"
	    "and p90 response (sla.cap), the sla.rate and 30-second reply rates,\n"
	    "breaches, escalations, rule hits per category and action, false\n"
	    "positives, the worst waits, the hourly profile and a row per day, from\n"
	    "what chatmond keeps in Redis (docs/report.md). A finished day is stored\n"
	    "as one aggregate for report.retention_days.\n"
	    "--to        the last day (default: --from)\n"
	    "--agent     only this agent\n"
	    "--shop      only this shop's figures, under its own sla settings (with\n"
	    "            shops, the report breaks down by shop and queue)\n"
	    "--queue     only this queue of --shop\n"
	    "--format    json (default), csv (UTF-8 with a BOM, for Excel) or html\n"
	    "            (one self-contained page)\n"
	    "--redis     redis://host[:port][/db] or unix:/path, instead of redis.url\n"
	    "--log       an exported chat log (JSON Lines, as chatmon replay reads;\n"
	    "            - is stdin), run through the rules and SLA of -c as chatmon\n"
	    "            replay runs it, instead of Redis; repeat for more files, in\n"
	    "            time order. No false positives (a log has no handling)\n"
	    "--max-line  with --log: the longest line read (default " REPLAY_MAX_LINE_STR ")\n"
	    "Exit status: 0 success; 1 a bad day, Redis or the configuration, or a\n"
	    "bad log line (FILE:LINE: reason on stderr; the report of the good lines\n"
	    "is still written); 2 a usage error.\n");
	return f == stdout ? 0 : 2;
}

/* --- from chat logs: the replay engine's rounds, events and rule hits ---------------- */

static int
reportcli_log_alert(const struct pipeline_alert *a, int64_t at, void *arg)
{
	json_t	*j;
	int	 rc;

	if (a->nhits == 0)
		return 0;	/* an SLA alert: its event counted it */
	/* alertfmt's own output: only memory can fail; chat text may hold U+0000 */
	if ((j = json_loadb(a->json, a->json_len, JSON_ALLOW_NUL, NULL)) == NULL)
		return -1;
	rc = reportlog_alert(arg, j, at);
	json_decref(j);
	return rc;
}

static int
reportcli_log_event(const struct sla_event *e, void *arg)
{
	return reportlog_event(arg, e);
}

static int
reportcli_log_round(const struct sla_round *r, void *arg)
{
	return reportlog_round(arg, r);
}

/*
 * The logs through the replay engine into the days from..to: 0 with *rep,
 * 1 with *rep when a line or a file was bad, -1 when the configuration's
 * rules could not be loaded or on ENOMEM (*rep NULL). Each is said on
 * stderr.
 */
static int
reportcli_logs(const struct config *cfg, char **logs, size_t nlogs, size_t max,
    int64_t from_start, int64_t to_start, const char *agent, const char *shop,
    const char *queue, struct report **rep)
{
	struct sla_policy	*pol = NULL;
	size_t			 npol = 0;
	struct replay_hooks	 hooks;
	struct replay		*rp = NULL;
	struct reportlog	*rl;
	struct sla_config	 s;
	struct sbuf		 errs;
	size_t			 i;
	int			 n, rc = 0;

	*rep = NULL;
	sbuf_init(&errs);
	sla_config_from(&s, &cfg->sla);
	if ((rl = reportlog_new(&s, from_start, to_start)) == NULL ||
	    sla_policies_from(cfg, &pol, &npol) == -1)
		goto oom;
	reportlog_set_policies(rl, pol, npol);	/* pol: until reportlog_free */
	memset(&hooks, 0, sizeof(hooks));
	hooks.alert = reportcli_log_alert;
	hooks.event = reportcli_log_event;
	hooks.round = reportcli_log_round;
	hooks.arg = rl;
	if ((rp = replay_new(cfg, &hooks, &errs)) == NULL) {
		fputs(sbuf_str(&errs), stderr);
		rc = -1;
		goto out;
	}
	for (i = 0; i < nlogs; i++) {
		if ((n = replay_file(rp, logs[i], max)) == -1)
			goto oom;
		if (n != 0)
			rc = 1;
	}
	/* nothing fires after the last line: the report is as of then, as replay's summary */
	if ((*rep = reportlog_report_shop(rl, agent, shop, queue)) == NULL)
		goto oom;
	goto out;
oom:
	fprintf(stderr, "chatmon: report: out of memory\n");
	rc = -1;
out:
	replay_free(rp);
	reportlog_free(rl);
	free(pol);
	sbuf_free(&errs);
	return rc;
}

/* --- from Redis ---------------------------------------------------------------------- */

struct reportcli_run {
	struct event_base	*base;
	struct rconn		*rc;
	struct event		*timer;
	const struct config	*cfg;
	const char		*from, *to, *agent;
	const char		*shop, *queue;	/* NULL: every one */
	struct reportdb		*db;
	struct report		*rep;		/* the result */
	int			 started, finished, failed;
};

static void
reportcli_stop(struct reportcli_run *x)
{
	x->finished = 1;
	event_base_loopbreak(x->base);
}

static void
reportcli_on_done(struct report *rep, const char *err, void *arg)
{
	struct reportcli_run	*x = arg;

	x->db = NULL;
	x->rep = rep;
	if (rep == NULL) {
		fprintf(stderr, "chatmon: report: %s\n", err);
		x->failed = 1;
	}
	reportcli_stop(x);
}

static void
reportcli_on_state(void *arg, int up, int lost)
{
	struct reportcli_run	*x = arg;

	(void)lost;
	if (x->finished || x->started)
		return;		/* a loss while reading: the reply that is out says it */
	if (!up) {
		/* a one-shot tool does not wait for rconn's retries */
		fprintf(stderr, "chatmon: report: cannot reach Redis (%s)\n",
		    rconn_name(x->rc));
		x->failed = 1;
		reportcli_stop(x);
		return;
	}
	x->started = 1;
	evtimer_del(x->timer);
	if ((x->db = reportdb_start_shop(x->rc, x->cfg, x->from, x->to, x->agent,
	    x->shop, x->queue, util_wall_ms(), reportcli_on_done, x)) == NULL) {
		fprintf(stderr, "chatmon: report: cannot start reading Redis\n");
		x->failed = 1;
		reportcli_stop(x);
	}
}

static void
reportcli_on_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct reportcli_run	*x = arg;

	(void)fd;
	(void)what;
	fprintf(stderr, "chatmon: report: cannot reach Redis (%s) in %d s\n",
	    rconn_name(x->rc), REPORTCLI_CONNECT_S);
	x->failed = 1;
	reportcli_stop(x);
}

/* 0 with x->rep, 1 Redis (said), -1 ENOMEM. */
static int
reportcli_read(struct reportcli_run *x)
{
	struct timeval	 tv = { REPORTCLI_CONNECT_S, 0 };
	int		 rc = 1, level = log_get_level();

	/* rconn's own lines are quiet: the report says what went wrong, in one line */
	log_set_level(LOG_LVL_ERR);
	if ((x->base = event_base_new()) == NULL ||
	    (x->rc = rconn_new(x->base, "redis", reportcli_on_state, x)) == NULL ||
	    (x->timer = evtimer_new(x->base, reportcli_on_timeout, x)) == NULL ||
	    evtimer_add(x->timer, &tv) == -1 ||
	    rconn_set_target(x->rc, &x->cfg->redis, RCONN_ANY_ROLE) == -1) {
		rc = -1;
		goto out;
	}
	/* a connect that failed at once has stopped it already */
	if (!x->finished)
		(void)event_base_dispatch(x->base);
	rc = x->failed || x->rep == NULL ? 1 : 0;
out:
	reportdb_cancel(x->db);
	x->db = NULL;
	rconn_free(x->rc);	/* a cancelled reader gets its NULL reply here and goes */
	if (x->timer != NULL)
		event_free(x->timer);
	if (x->base != NULL)
		event_base_free(x->base);
	log_set_level(level);
	return rc;
}

int
reportcli_main(int argc, char **argv, const char *default_config)
{
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "redis", required_argument, NULL, 'r' },
		{ "from", required_argument, NULL, 'f' },
		{ "to", required_argument, NULL, 't' },
		{ "agent", required_argument, NULL, 'a' },
		{ "shop", required_argument, NULL, 's' },
		{ "queue", required_argument, NULL, 'q' },
		{ "format", required_argument, NULL, 'F' },
		{ "log", required_argument, NULL, 'l' },
		{ "max-line", required_argument, NULL, 'L' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	const char		*redis = NULL, *format = "json";
	struct cliconf		 cc;
	const char		*maxarg = NULL;
	char			**logs = NULL;
	size_t			 nlogs = 0, max = REPLAY_MAX_LINE;
	struct reportcli_run	 x;
	struct report_meta	 m;
	struct config		*cfg = NULL;
	struct sbuf		 errs, out;
	int64_t			 from_start, to_start;
	int			 ch, rc = 1, n, bad = 0;

	memset(&x, 0, sizeof(x));
	cliconf_init(&cc, default_config);
	sbuf_init(&errs);
	sbuf_init(&out);
	/* every --log fits: argv is the most there can be */
	if ((logs = calloc((size_t)argc + 1, sizeof(*logs))) == NULL)
		goto oom;
	optind = 1;
	while ((ch = getopt_long(argc, argv, "c:h", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			cliconf_opt(&cc, ch, optarg, "report");	/* -c: nothing to allocate */
			break;
		case 'r':
			redis = optarg;
			break;
		case 'f':
			x.from = optarg;
			break;
		case 't':
			x.to = optarg;
			break;
		case 'a':
			x.agent = optarg;
			break;
		case 's':
			x.shop = optarg;
			break;
		case 'q':
			x.queue = optarg;
			break;
		case 'F':
			format = optarg;
			if (strcmp(format, "json") != 0 && strcmp(format, "csv") != 0 &&
			    strcmp(format, "html") != 0) {
				fprintf(stderr, "chatmon: report: --format: want json, "
				    "csv or html, not '%s'\n", format);
				rc = 2;
				goto out;
			}
			break;
		case 'l':
			logs[nlogs++] = optarg;
			break;
		case 'L':
			maxarg = optarg;
			if (replay_max_line(optarg, &max) == -1) {
				rc = reportcli_usage(stderr);
				goto out;
			}
			break;
		case 'h':
			rc = reportcli_usage(stdout);
			goto out;
		default:
			rc = reportcli_usage(stderr);
			goto out;
		}
	}
	if (optind != argc || x.from == NULL) {
		if (x.from == NULL && optind == argc)
			fprintf(stderr, "chatmon: report: --from is required\n");
		rc = reportcli_usage(stderr);
		goto out;
	}
	if (nlogs > 0 && redis != NULL) {
		fprintf(stderr, "chatmon: report: --redis or --log, not both\n");
		rc = 2;
		goto out;
	}
	if (x.queue != NULL && x.shop == NULL) {
		/* a queue id is a shop's: the same id in two shops is two queues */
		fprintf(stderr, "chatmon: report: --queue needs --shop\n");
		rc = 2;
		goto out;
	}
	if ((x.shop != NULL && x.shop[0] == '\0') ||
	    (x.queue != NULL && x.queue[0] == '\0')) {
		fprintf(stderr, "chatmon: report: --shop and --queue want an id\n");
		rc = 2;
		goto out;
	}
	if (nlogs == 0 && maxarg != NULL) {
		fprintf(stderr, "chatmon: report: --max-line is for --log\n");
		rc = 2;
		goto out;
	}
	if (x.to == NULL)
		x.to = x.from;
	if ((cfg = cliconf_load(&cc)) == NULL)
		goto out;
	if (redis != NULL && cliconf_redis(cfg, redis, "report") == -1) {
		rc = 2;
		goto out;
	}
	if (report_parse_day(x.from, cfg->sla.utc_offset_min, &from_start) == -1) {
		fprintf(stderr, "chatmon: report: --from: want a day as YYYY-MM-DD, "
		    "not '%s'\n", x.from);
		goto out;
	}
	if (report_parse_day(x.to, cfg->sla.utc_offset_min, &to_start) == -1) {
		fprintf(stderr, "chatmon: report: --to: want a day as YYYY-MM-DD, "
		    "not '%s'\n", x.to);
		goto out;
	}
	if (from_start > to_start) {
		fprintf(stderr, "chatmon: report: --from %s is after --to %s\n",
		    x.from, x.to);
		goto out;
	}
	if ((to_start - from_start) / STATE_DAY_MS + 1 > REPORTCLI_MAX_DAYS) {
		fprintf(stderr, "chatmon: report: at most %d days at once\n",
		    REPORTCLI_MAX_DAYS);
		goto out;
	}
	x.cfg = cfg;
	if (nlogs > 0) {
		/* no Redis: the logs are the source */
		if ((n = reportcli_logs(cfg, logs, nlogs, max, from_start, to_start,
		    x.agent, x.shop, x.queue, &x.rep)) == -1)
			goto out;	/* said */
		bad = n;
	} else if ((n = reportcli_read(&x)) != 0) {
		if (n == -1)
			goto oom;
		goto out;
	}
	m.from = x.from;
	m.to = x.to;
	m.agent = x.agent;
	m.utc_offset_min = cfg->sla.utc_offset_min;
	m.generated = util_wall_ms();
	if ((strcmp(format, "csv") == 0 ? report_csv(&out, x.rep, &m) :
	    strcmp(format, "html") == 0 ? report_html(&out, x.rep, &m) :
	    report_json(&out, x.rep, &m)) == -1)
		goto oom;
	if (strcmp(format, "json") == 0 && sbuf_append(&out, "\n", 1) == -1)
		goto oom;
	if ((out.len > 0 && fwrite(out.s, 1, out.len, stdout) != out.len) ||
	    fflush(stdout) != 0) {
		fprintf(stderr, "chatmon: report: cannot write the output: %s\n",
		    strerror(errno));
		goto out;
	}
	rc = bad;	/* a bad log line: the report of the rest, and 1 */
	goto out;
oom:
	fprintf(stderr, "chatmon: report: out of memory\n");
out:
	free(logs);
	report_free(x.rep);
	config_free(cfg);
	sbuf_free(&errs);
	sbuf_free(&out);
	return rc;
}
