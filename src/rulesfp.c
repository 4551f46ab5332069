/* rulesfp: `chatmon rules fp`: the false positives supervisors marked, per rule, from the dashboard's handling hash in Redis. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include <hiredis/hiredis.h>
#include <jansson.h>

#include "chatmon/config.h"
#include "chatmon/handling.h"
#include "chatmon/jsonw.h"
#include "chatmon/rreply.h"
#include "chatmon/rulesfp.h"
#include "chatmon/util.h"

#define RULESFP_CONNECT_S	5
#define RULESFP_DAY_MS		86400000LL

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

/* One command, its reply or NULL with the reason printed. */
static redisReply *
rulesfp_cmd(redisContext *c, int argc, const char **argv)
{
	redisReply	*r = redisCommandArgv(c, argc, argv, NULL);

	if (r == NULL)
		fprintf(stderr, "chatmon: rules fp: redis: %s\n", c->errstr);
	else if (r->type == REDIS_REPLY_ERROR) {
		fprintf(stderr, "chatmon: rules fp: redis: %s\n", r->str);
		freeReplyObject(r);
		r = NULL;
	}
	return r;
}

/* With Sentinel, the master the first sentinel that answers names; 0 or -1 (said). */
static int
rulesfp_master(const struct config_redis *rc, struct config_redis_target *t)
{
	struct timeval	 tv = { RULESFP_CONNECT_S, 0 };
	const char	*ask[3] = { "SENTINEL", "get-master-addr-by-name",
	    rc->master_name };
	const char	*auth[3] = { "AUTH", rc->sentinel_username,
	    rc->sentinel_password };
	redisContext	*c;
	redisReply	*r;
	char		 why[128];
	size_t		 i;
	int		 port, ok;

	for (i = 0; i < rc->nsentinels; i++) {
		if ((c = redisConnectWithTimeout(rc->sentinel[i].host,
		    rc->sentinel[i].port, tv)) == NULL || c->err) {
			redisFree(c);
			continue;
		}
		ok = 1;
		if (rc->sentinel_password != NULL) {
			r = rc->sentinel_username != NULL ? rulesfp_cmd(c, 3, auth) :
			    (auth[1] = rc->sentinel_password, rulesfp_cmd(c, 2, auth));
			ok = r != NULL;
			freeReplyObject(r);
		}
		if (ok && (r = rulesfp_cmd(c, 3, ask)) != NULL) {
			ok = rreply_master_addr(r, t->host, sizeof(t->host), &port, why,
			    sizeof(why)) == 0;
			freeReplyObject(r);
			if (ok) {
				t->port = port;
				redisFree(c);
				return 0;
			}
		}
		redisFree(c);
	}
	fprintf(stderr, "chatmon: rules fp: no sentinel names master %s\n",
	    rc->master_name);
	return -1;
}

/* Connected, authenticated and on the right database, or NULL (said). */
static redisContext *
rulesfp_connect(const struct config_redis *rc)
{
	struct config_redis_target	 t = rc->target;
	struct timeval			 tv = { RULESFP_CONNECT_S, 0 };
	const char			*argv[3];
	char				 db[16];
	redisContext			*c;
	redisReply			*r;

	if (rc->nsentinels > 0 && rulesfp_master(rc, &t) == -1)
		return NULL;
	c = t.path[0] != '\0' ? redisConnectUnixWithTimeout(t.path, tv) :
	    redisConnectWithTimeout(t.host, t.port, tv);
	if (c == NULL || c->err) {
		fprintf(stderr, "chatmon: rules fp: redis %s: %s\n", t.path[0] ?
		    t.path : t.host, c != NULL ? c->errstr : "out of memory");
		redisFree(c);
		return NULL;
	}
	if (rc->password != NULL) {
		argv[0] = "AUTH";
		argv[1] = rc->username != NULL ? rc->username : rc->password;
		argv[2] = rc->password;
		if ((r = rulesfp_cmd(c, rc->username != NULL ? 3 : 2, argv)) == NULL)
			goto err;
		freeReplyObject(r);
	}
	if (t.db != 0) {
		snprintf(db, sizeof(db), "%d", t.db);
		argv[0] = "SELECT";
		argv[1] = db;
		if ((r = rulesfp_cmd(c, 2, argv)) == NULL)
			goto err;
		freeReplyObject(r);
	}
	return c;
err:
	redisFree(c);
	return NULL;
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
	const char	*path = default_config, *redis = NULL, *argv2[2];
	struct config	*cfg = NULL;
	redisContext	*c = NULL;
	redisReply	*r = NULL;
	struct sbuf	 errs, key, out;
	json_t		*counts = NULL, *rows = NULL, *row;
	long long	 days = -1;
	int64_t		 since_ms = INT64_MIN;
	size_t		 i, w = 4, handled = 0, fps = 0;
	char		*end;
	int		 ch, explicit = 0, json = 0, rc = 1, n;

	optind = 1;
	while ((ch = getopt_long(argc, argv, "c:h", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			path = optarg;
			explicit = 1;
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
	if (!explicit && access(path, F_OK) == -1 && errno == ENOENT)
		path = NULL;
	sbuf_init(&errs);
	sbuf_init(&key);
	sbuf_init(&out);
	if ((cfg = config_load(path, NULL, 0, &errs)) == NULL) {
		fputs(sbuf_str(&errs), stderr);
		goto out;
	}
	if (redis != NULL) {
		if (config_parse_redis_url(redis, &cfg->redis.target) == -1) {
			fprintf(stderr, "chatmon: rules fp: --redis: want "
			    "redis://host[:port][/db] or unix:/path, not '%s'\n", redis);
			rc = 2;
			goto out;
		}
		cfg->redis.nsentinels = 0;
	}
	if (days >= 0)
		since_ms = util_wall_ms() - (int64_t)days * RULESFP_DAY_MS;
	if ((c = rulesfp_connect(&cfg->redis)) == NULL)
		goto out;
	if (sbuf_printf(&key, "%schatmon:alerts:handling", cfg->redis.prefix != NULL ?
	    cfg->redis.prefix : "") == -1 || (counts = json_object()) == NULL)
		goto oom;
	argv2[0] = "HGETALL";
	argv2[1] = key.s;
	if ((r = rulesfp_cmd(c, 2, argv2)) == NULL)
		goto out;
	for (i = 0; r->type == REDIS_REPLY_ARRAY && i + 1 < r->elements; i += 2) {
		if (r->element[i + 1]->type != REDIS_REPLY_STRING)
			continue;
		handled++;
		if ((n = handling_fp_add(counts, r->element[i + 1]->str,
		    r->element[i + 1]->len, since_ms)) == -1)
			goto oom;
		fps += (size_t)n;
	}
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
		json_array_foreach(rows, i, row)
			if (strlen(json_string_value(json_object_get(row, "rule"))) > w)
				w = strlen(json_string_value(json_object_get(row, "rule")));
		printf("%-*s  %s\n", (int)w, "RULE", "FALSE_POSITIVES");
		json_array_foreach(rows, i, row)
			printf("%-*s  %lld\n", (int)w, json_string_value(json_object_get(
			    row, "rule")), (long long)json_integer_value(json_object_get(
			    row, "false_positives")));
		printf("%zu false positives among %zu handled alerts%s\n", fps, handled,
		    days >= 0 ? " (in the days asked)" : "");
	}
	rc = fflush(stdout) == 0 ? 0 : 1;
	goto out;
oom:
	fprintf(stderr, "chatmon: rules fp: out of memory\n");
out:
	json_decref(rows);
	json_decref(counts);
	freeReplyObject(r);
	redisFree(c);
	config_free(cfg);
	sbuf_free(&errs);
	sbuf_free(&key);
	sbuf_free(&out);
	return rc;
}
