/* rulesfp: `chatmon rules fp`: the false positives supervisors marked, per rule, from the dashboard's handling hash in Redis. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include <event2/event.h>
#include <unistd.h>

#include <hiredis/hiredis.h>	/* the reply's types */
#include <jansson.h>

#include "chatmon/cliconf.h"
#include "chatmon/config.h"
#include "chatmon/handling.h"
#include "chatmon/jsonw.h"
#include "chatmon/log.h"
#include "chatmon/rconn.h"
#include "chatmon/rulesfp.h"
#include "chatmon/util.h"

#define RULESFP_CONNECT_S	5
#define RULESFP_DAY_MS		86400000LL

/* s as a table shows it (util_escape: one line, what it holds) in buf; its length. */
static size_t
rulesfp_shown(const char *s, char *buf, size_t size)
{
	size_t	n = util_escape(buf, size - 1, 0, s, strlen(s), 0);

	buf[n] = '\0';
	return n;
}

static int
rulesfp_usage(FILE *f)
{
	fprintf(f,
	    "usage: chatmon rules fp [-c FILE] [--redis URL] [--since DAYS] [--json]\n"
	    "\n"
	    "The alerts supervisors marked false_positive on the dashboard, counted\n"
	    "per rule (an alert counts once for each rule among its hits), most\n"
	    "first, from the handling hash in Redis (docs/dashboard.md, \"HTTP API\").\n"
	    "--since DAYS  only those marked in the last DAYS days\n"
	    "--redis       redis://host[:port][/db] or unix:/path, instead of redis.url\n"
	    "--json        one JSON object instead of the table\n"
	    "Exit status: 0 success; 1 Redis or the configuration; 2 a usage error.\n");
	return f == stdout ? 0 : 2;
}

/*
 * The handling hash, read once over an rconn (the connection every other
 * command uses: redis.url or Sentinel, the ACL user, the database): a
 * replica will do, since this only reads. The loop ends at the reply, at
 * the first failed connect, or when Redis has not answered within
 * RULESFP_CONNECT_S (a server that accepts and hangs).
 */
struct rulesfp_read {
	struct event_base	*base;
	struct rconn		*rc;
	const char		*key;
	int64_t			 since_ms;
	json_t			*counts;	/* rule -> false positives */
	size_t			 handled, fps;
	int			 rc_done;	/* 0 read, 1 Redis, -1 ENOMEM */
	int			 stop;		/* the loop is to end (or not start) */
};

static void
rulesfp_stop(struct rulesfp_read *x)
{
	x->stop = 1;
	event_base_loopbreak(x->base);
}

static void
rulesfp_on_hgetall(redisReply *r, void *priv)
{
	struct rulesfp_read	*x = priv;
	size_t			 i;
	int			 n, handled;

	x->rc_done = 1;
	if (r == NULL || r->type == REDIS_REPLY_ERROR) {
		fprintf(stderr, "chatmon: rules fp: redis: %s\n", r != NULL ?
		    r->str : "the connection went before the answer");
		goto out;
	}
	for (i = 0; r->type == REDIS_REPLY_ARRAY && i + 1 < r->elements; i += 2) {
		if (r->element[i + 1]->type != REDIS_REPLY_STRING)
			continue;
		if ((n = handling_fp_add(x->counts, r->element[i + 1]->str,
		    r->element[i + 1]->len, x->since_ms, &handled)) == -1) {
			x->rc_done = -1;
			goto out;
		}
		x->handled += (size_t)handled;
		x->fps += (size_t)n;
	}
	x->rc_done = 0;
out:
	rulesfp_stop(x);
}

static void
rulesfp_on_state(void *arg, int up, int lost)
{
	struct rulesfp_read	*x = arg;

	(void)lost;
	if (!up) {
		/* a one-shot tool does not wait for rconn's retries: rconn said why */
		fprintf(stderr, "chatmon: rules fp: cannot reach Redis (%s)\n",
		    rconn_name(x->rc));
		rulesfp_stop(x);
	} else if (rconn_command(x->rc, rulesfp_on_hgetall, x, 0, "HGETALL %s",
	    x->key) == -1)
		rulesfp_stop(x);
}

static void
rulesfp_on_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct rulesfp_read	*x = arg;

	(void)fd;
	(void)what;
	fprintf(stderr, "chatmon: rules fp: cannot reach Redis (%s) in %d s\n",
	    rconn_name(x->rc), RULESFP_CONNECT_S);
	rulesfp_stop(x);
}

/* 0 with x's counts filled, 1 Redis (said), -1 ENOMEM. */
static int
rulesfp_read(const struct config_redis *r, struct rulesfp_read *x)
{
	struct timeval	 tv = { RULESFP_CONNECT_S, 0 };
	struct event	*timer = NULL;
	int		 level = log_get_level();

	x->rc_done = 1;
	/* rconn's own lines are quiet: rules fp says what went wrong, in one line */
	log_set_level(LOG_LVL_ERR);
	if ((x->base = event_base_new()) == NULL ||
	    (x->rc = rconn_new(x->base, "redis", rulesfp_on_state, x)) == NULL ||
	    (timer = evtimer_new(x->base, rulesfp_on_timeout, x)) == NULL ||
	    evtimer_add(timer, &tv) == -1 ||
	    rconn_set_target(x->rc, r, RCONN_ANY_ROLE) == -1) {
		x->rc_done = -1;
		goto out;
	}
	/* a connect that failed at once has stopped it already: a loop would retry */
	if (!x->stop)
		(void)event_base_dispatch(x->base);
out:
	rconn_free(x->rc);
	if (timer != NULL)
		event_free(timer);
	if (x->base != NULL)
		event_base_free(x->base);
	log_set_level(level);
	return x->rc_done;
}

static int
rulesfp_row_cmp(const void *a, const void *b)
{
	const json_t	*x = *(json_t *const *)a, *y = *(json_t *const *)b;
	json_int_t	 nx = json_integer_value(json_object_get(x, "false_positives"));
	json_int_t	 ny = json_integer_value(json_object_get(y, "false_positives"));

	if (nx != ny)
		return nx > ny ? -1 : 1;
	return strcmp(json_string_value(json_object_get(x, "rule")),
	    json_string_value(json_object_get(y, "rule")));
}

/* The counts as rows, most first, then by rule; NULL on ENOMEM. */
static json_t *
rulesfp_rows(json_t *counts)
{
	json_t		**v, *rows;
	const char	*rule;
	json_t		*n;
	size_t		 i = 0, k, total = json_object_size(counts);

	if ((v = calloc(total + 1, sizeof(*v))) == NULL)
		return NULL;
	json_object_foreach(counts, rule, n)
		if ((v[i] = json_pack("{s:s, s:O}", "rule", rule, "false_positives",
		    n)) != NULL)
			i++;
	if (i > 1)
		qsort(v, i, sizeof(*v), rulesfp_row_cmp);
	if ((rows = json_array()) != NULL)
		for (k = 0; k < i; k++)
			json_array_append(rows, v[k]);
	for (k = 0; k < i; k++)
		json_decref(v[k]);
	free(v);
	return rows;
}

int
rulesfp_main(int argc, char **argv, const char *default_config)
{
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "redis", required_argument, NULL, 'r' },
		{ "since", required_argument, NULL, 's' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	const char	*redis = NULL;
	struct cliconf	 cc;
	struct config	*cfg = NULL;
	struct rulesfp_read x = { 0 };
	struct sbuf	 key, out;
	json_t		*counts = NULL, *rows = NULL, *row;
	long long	 days = -1;
	int64_t		 since_ms = INT64_MIN;
	size_t		 i, w = 4, handled = 0, fps = 0;
	char		*end, shown[512];
	int		 ch, json = 0, rc = 1, n;

	cliconf_init(&cc, default_config);
	optind = 1;
	while ((ch = getopt_long(argc, argv, "c:h", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			cliconf_opt(&cc, ch, optarg, "rules fp");	/* -c: nothing to allocate */
			break;
		case 'r':
			redis = optarg;
			break;
		case 's':
			errno = 0;
			days = strtoll(optarg, &end, 10);
			if (*optarg == '\0' || *end != '\0' || errno != 0 || days < 0 ||
			    days > 100000) {
				fprintf(stderr, "chatmon: rules fp: --since: want a "
				    "number of days, not '%s'\n", optarg);
				return 2;
			}
			break;
		case 'j':
			json = 1;
			break;
		case 'h':
			return rulesfp_usage(stdout);
		default:
			return rulesfp_usage(stderr);
		}
	}
	if (optind != argc)
		return rulesfp_usage(stderr);
	sbuf_init(&key);
	sbuf_init(&out);
	if ((cfg = cliconf_load(&cc)) == NULL)
		goto out;
	if (redis != NULL && cliconf_redis(cfg, redis, "rules fp") == -1) {
		rc = 2;
		goto out;
	}
	if (days >= 0)
		since_ms = util_wall_ms() - (int64_t)days * RULESFP_DAY_MS;
	if (sbuf_printf(&key, "%schatmon:alerts:handling", cfg->redis.prefix != NULL ?
	    cfg->redis.prefix : "") == -1 || (counts = json_object()) == NULL)
		goto oom;
	x.key = key.s;
	x.since_ms = since_ms;
	x.counts = counts;
	if ((n = rulesfp_read(&cfg->redis, &x)) != 0) {
		if (n == -1)
			goto oom;
		goto out;
	}
	handled = x.handled;
	fps = x.fps;
	if ((rows = rulesfp_rows(counts)) == NULL)
		goto oom;
	if (json) {
		if (jsonw_dump(&out, json_pack("{s:O, s:I, s:I, s:O}", "since_days",
		    days >= 0 ? json_integer(days) : json_null(), "handled",
		    (json_int_t)handled, "false_positives", (json_int_t)fps,
		    "rules", rows)) == -1)
			goto oom;
		printf("%s\n", out.s);
	} else {
		/*
		 * a rule as the hash holds it, which any Redis client may
		 * write: shown escaped, as the other tools show text (found by
		 * review: an ESC in one retitled the terminal)
		 */
		json_array_foreach(rows, i, row)
			if (rulesfp_shown(json_string_value(json_object_get(row,
			    "rule")), shown, sizeof(shown)) > w)
				w = strlen(shown);
		printf("%-*s  %s\n", (int)w, "RULE", "FALSE_POSITIVES");
		json_array_foreach(rows, i, row) {
			(void)rulesfp_shown(json_string_value(json_object_get(row,
			    "rule")), shown, sizeof(shown));
			printf("%-*s  %lld\n", (int)w, shown, (long long)
			    json_integer_value(json_object_get(row, "false_positives")));
		}
		printf("%zu false positives among %zu handled alerts%s\n", fps, handled,
		    days >= 0 ? " (in the days asked)" : "");
	}
	rc = util_stdout_done("rules fp") == 0 ? 0 : 1;
	goto out;
oom:
	fprintf(stderr, "chatmon: rules fp: out of memory\n");
out:
	json_decref(rows);
	json_decref(counts);
	config_free(cfg);
	sbuf_free(&key);
	sbuf_free(&out);
	return rc;
}
