/* config: chatmond.yaml parsed into a plain struct; every error reported as FILE:LINE: message. */
#include <sys/stat.h>

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <yaml.h>

#include "chatmon/access.h"
#include "chatmon/config.h"
#include "chatmon/log.h"
#include "chatmon/yamlfile.h"

#define CONFIG_KiB	1024ULL
#define CONFIG_MiB	(1024ULL * 1024)
#define CONFIG_GiB	(1024ULL * 1024 * 1024)
#define CONFIG_MAX_FILE	CONFIG_MiB		/* larger is not a config file */
#define CONFIG_MAX_ERRORS	100			/* listed; all are counted */
#define CONFIG_QUOTE	256			/* room for one quoted value in a message */
#define CONFIG_SHOW	60			/* bytes of a value shown before "..." */
#define CONFIG_SUN_PATH	107			/* sizeof(sun_path) - 1 on Linux */

/* Where `make install` puts the dashboard's page (the Makefile's DATADIR). */
#ifndef CHATMON_DATADIR
#define CHATMON_DATADIR	"/usr/local/share/chatmon"
#endif

/* What a row's value is; config_types[] gives each its parser. */
enum config_type {
	CT_STRING,		/* non-empty string */
	CT_POINTER,		/* JSON pointer, RFC 6901 */
	CT_LIST,		/* sequence of strings, or one scalar */
	CT_SIZE,		/* config_parse_size */
	CT_DURATION,		/* config_parse_duration_ms */
	CT_FRACTION,		/* double, 0 < x < 1 */
	CT_UINT,		/* decimal uint64_t */
	CT_ADDR,		/* config_parse_addr */
	CT_WS_URL,		/* config_parse_ws_url; keeps the text too */
	CT_AGENT_ID,		/* query:NAME | header:NAME */
	CT_LOG_LEVEL,		/* log_level_parse */
	CT_REDIS_URL,		/* redis://host[:port][/db] | unix:/path */
	CT_PROFILE,		/* taobao | jd | pdd | custom */
	CT_RATE_SCOPE,		/* rounds | first | buyer_day */
	CT_TIMEZONE,		/* config_parse_timezone */
	CT_LOG_FORMAT,		/* text | json */
	CT_BOOL,		/* true | false (also yes/no, on/off) */
	CT_ROUTES,		/* notify.routes: a list of mappings */
	CT_ID_SOURCE,		/* query:NAME | header:NAME | claim:NAME; "" none */
	CT_SHOPS_UNKNOWN,	/* default | refuse */
	CT_BINARY,		/* inspect | pass */
};

#define CF_NONEMPTY	0x01	/* CT_LIST: at least one item */
#define CF_ROUND_S	0x02	/* CT_DURATION: rounded up to whole seconds */
#define CF_HOURS	0x04	/* CT_LIST: each item a service window "HH:MM-HH:MM" */
#define CF_OPTIONAL	0x08	/* CT_POINTER: may be absent (no default) */
#define CF_ADDRS	0x10	/* CT_LIST: each item a host:port (config_parse_addr) */
#define CF_WORD		0x20	/* CT_STRING: no space or control character */
#define CF_ZERO		0x40	/* CT_FRACTION: 0 too (off) */
#define CF_ORIGINS	0x80	/* CT_LIST: each item scheme://host[:port] */
#define CF_CIDRS	0x100	/* CT_LIST: each item an address or CIDR (cidr_parse) */
#define CF_HTTP		0x200	/* CT_STRING: an http:// or https:// URL */

/*
 * One row per dotted key path, like nginx's ngx_command_t. Defaults are
 * written as text and go through the same parser as the file, so a default
 * can never be a value the file could not hold.
 */
struct config_key {
	const char	*path;
	enum config_type type;
	size_t		 off;	/* the field in struct config */
	size_t		 off2;	/* CT_WS_URL: parsed URL; CT_AGENT_ID: the source */
	const char	*def;
	uint64_t	 min;	/* CT_SIZE, CT_DURATION, CT_UINT */
	uint64_t	 max;
	int		 flags;
};

#define OFF(f)	offsetof(struct config, f)
#define NOMAX	UINT64_MAX

static const struct config_key config_keys[] = {
	{ "listen", CT_ADDR, OFF(listen), 0, "127.0.0.1:8080", 0, 0, 0 },
	/* docs/operations.md, "Running many instances" */
	{ "listen_reuseport", CT_BOOL, OFF(listen_reuseport), 0, "false",
	    0, 0, 0 },
	{ "upstream", CT_WS_URL, OFF(upstream), OFF(upstream_url),
	    "ws://127.0.0.1:9000/", 0, 0, 0 },
	{ "agent_id", CT_AGENT_ID, OFF(agent_id_name), OFF(agent_id_from),
	    "query:agent", 0, 0, 0 },
	/* docs/configuration.md, "Many shops": the shop and queue of an agent's connection */
	{ "shop_id", CT_ID_SOURCE, OFF(shop_id_name), OFF(shop_id_from), NULL,
	    0, 0, 0 },
	{ "queue_id", CT_ID_SOURCE, OFF(queue_id_name), OFF(queue_id_from), NULL,
	    0, 0, 0 },
	{ "shops_unknown", CT_SHOPS_UNKNOWN, OFF(shops_refuse), 0, "default",
	    0, 0, 0 },
	/* docs/security.md */
	{ "auth.jwt_key", CT_STRING, OFF(auth.jwt_key), 0, NULL, 0, 0, 0 },
	{ "auth.jwt_claim", CT_STRING, OFF(auth.jwt_claim), 0, "sub", 0, 0,
	    CF_NONEMPTY | CF_WORD },
	{ "auth.jwt_audience", CT_STRING, OFF(auth.jwt_audience), 0, NULL,
	    0, 0, 0 },
	{ "auth.jwt_issuer", CT_STRING, OFF(auth.jwt_issuer), 0, NULL, 0, 0, 0 },
	{ "auth.jwt_leeway", CT_DURATION, OFF(auth.jwt_leeway_ms), 0, "30s",
	    0, 3600000, CF_ROUND_S },
	{ "auth.forward_token", CT_BOOL, OFF(auth.forward_token), 0, "false",
	    0, 0, 0 },
	{ "tls.cert", CT_STRING, OFF(tls.cert), 0, NULL, 0, 0, 0 },
	{ "tls.key", CT_STRING, OFF(tls.key), 0, NULL, 0, 0, 0 },
	{ "tls.min_version", CT_STRING, OFF(tls.min_version), 0, "1.2", 0, 0, 0 },
	{ "upstream_tls.ca", CT_STRING, OFF(upstream_tls.ca), 0, NULL, 0, 0, 0 },
	{ "upstream_tls.verify", CT_BOOL, OFF(upstream_tls.verify), 0, "true",
	    0, 0, 0 },
	{ "allowed_origins", CT_LIST, OFF(allowed_origins), 0, NULL, 0, 0,
	    CF_ORIGINS },
	{ "trusted_proxies", CT_LIST, OFF(trusted_proxies), 0, NULL, 0, 0,
	    CF_CIDRS },
	{ "protocol.type", CT_POINTER, OFF(protocol.type), 0, "/type", 0, 0, 0 },
	{ "protocol.conversation", CT_POINTER, OFF(protocol.conversation), 0,
	    "/conversation", 0, 0, 0 },
	{ "protocol.text", CT_POINTER, OFF(protocol.text), 0, "/text", 0, 0, 0 },
	{ "protocol.message_types", CT_LIST, OFF(protocol.message_types), 0,
	    "message", 0, 0, CF_NONEMPTY },
	{ "protocol.end_types", CT_LIST, OFF(protocol.end_types), 0,
	    "end", 0, 0, 0 },
	{ "protocol.robot", CT_POINTER, OFF(protocol.robot), 0, NULL, 0, 0,
	    CF_OPTIONAL },
	/* the buyer's nickname on customer turns, kept in the history (docs/relay.md) */
	{ "protocol.nickname", CT_POINTER, OFF(protocol.nickname), 0, NULL, 0, 0,
	    CF_OPTIONAL },
	/* a turn's own shop and queue, before the agent connection's (docs/configuration.md) */
	{ "protocol.shop", CT_POINTER, OFF(protocol.shop), 0, NULL, 0, 0,
	    CF_OPTIONAL },
	{ "protocol.queue", CT_POINTER, OFF(protocol.queue), 0, NULL, 0, 0,
	    CF_OPTIONAL },
	/* binary messages read as chat turns too (docs/protocol.md) */
	{ "protocol.binary", CT_BINARY, OFF(protocol.binary_pass), 0, "inspect",
	    0, 0, 0 },
	{ "redis.url", CT_REDIS_URL, OFF(redis.url), 0,
	    "redis://127.0.0.1:6379", 0, 0, 0 },
	/* docs/operations.md, "Redis failover"; config_check: url or sentinels */
	{ "redis.sentinels", CT_LIST, OFF(redis.sentinels), 0, NULL, 0, 0,
	    CF_ADDRS },
	{ "redis.master_name", CT_STRING, OFF(redis.master_name), 0, NULL, 0, 0,
	    CF_WORD },
	{ "redis.sentinel_username", CT_STRING, OFF(redis.sentinel_username), 0,
	    NULL, 0, 0, CF_WORD },
	{ "redis.sentinel_password", CT_STRING, OFF(redis.sentinel_password), 0,
	    NULL, 0, 0, 0 },
	/* SELECT takes an int; a unix: URL has no other way to name a database */
	{ "redis.db", CT_UINT, OFF(redis.db), 0, "0", 0, INT32_MAX, 0 },
	{ "redis.username", CT_STRING, OFF(redis.username), 0, NULL, 0, 0,
	    CF_WORD },
	/* the default becomes 1 with redis.sentinels (config_redis) */
	{ "redis.wait_replicas", CT_UINT, OFF(redis.wait_replicas), 0, "0", 0,
	    1000, 0 },
	{ "redis.wait_timeout", CT_DURATION, OFF(redis.wait_timeout_ms), 0, "1s",
	    1, 3600000, 0 },
	{ "redis.channel", CT_STRING, OFF(redis.channel), 0,
	    "chatmon:alerts", 0, 0, 0 },
	{ "redis.stream", CT_STRING, OFF(redis.stream), 0,
	    "chatmon:alerts:log", 0, 0, 0 },
	/* XADD MAXLEN takes a signed 64-bit count */
	{ "redis.stream_maxlen", CT_UINT, OFF(redis.stream_maxlen), 0,
	    "100000", 1, INT64_MAX, 0 },
	{ "redis.password", CT_STRING, OFF(redis.password), 0, NULL, 0, 0, 0 },
	{ "redis.prefix", CT_STRING, OFF(redis.prefix), 0, NULL, 0, 0, 0 },
	{ "redis.outbox", CT_UINT, OFF(redis.outbox), 0, "10000", 1, 100000000, 0 },
	{ "redis.outbox_bytes", CT_SIZE, OFF(redis.outbox_bytes), 0, "64MiB",
	    CONFIG_MiB, NOMAX, 0 },
	{ "redis.spool", CT_STRING, OFF(redis.spool), 0, NULL, 0, 0, 0 },
	{ "redis.spool_max", CT_SIZE, OFF(redis.spool_max), 0, "64MiB",
	    CONFIG_KiB, NOMAX, 0 },
	{ "redis.timeout", CT_DURATION, OFF(redis.timeout_ms), 0, "2s", 10, NOMAX, 0 },
	{ "redis.fold", CT_DURATION, OFF(redis.fold_ms), 0, "10s", 0, NOMAX, 0 },
	{ "redis.snapshot", CT_DURATION, OFF(redis.snapshot_ms), 0, "2s", 0,
	    NOMAX, 0 },
	{ "redis.takeover", CT_DURATION, OFF(redis.takeover_ms), 0, "1s", 0,
	    NOMAX, 0 },
	/* before the keys it fills: a profile only sets what the file did not */
	{ "sla.profile", CT_PROFILE, OFF(sla.profile), 0, "custom", 0, 0, 0 },
	{ "sla.first_response", CT_DURATION, OFF(sla.first_response_ms), 0,
	    "15s", 1, NOMAX, 0 },
	{ "sla.reply", CT_DURATION, OFF(sla.reply_ms), 0, "30s", 1, NOMAX, 0 },
	{ "sla.warn_at", CT_FRACTION, OFF(sla.warn_at), 0, "0.8", 0, 0, 0 },
	{ "sla.escalate", CT_DURATION, OFF(sla.escalate_ms), 0,
	    "180s", 1, NOMAX, 0 },
	{ "sla.idle", CT_DURATION, OFF(sla.idle_ms), 0, "30m", 1000, NOMAX, 0 },
	/* at most a day: the figures' histogram is exact to the second up to it (sla.c) */
	{ "sla.cap", CT_DURATION, OFF(sla.cap_ms), 0, "600s", 1000, 86400000, 0 },
	{ "sla.rate", CT_DURATION, OFF(sla.rate_ms), 0, "180s", 1000, NOMAX, 0 },
	{ "sla.rate_scope", CT_RATE_SCOPE, OFF(sla.rate_scope), 0, "rounds",
	    0, 0, 0 },
	{ "sla.hours", CT_LIST, OFF(sla.hours_text), 0, NULL, 0, 0, CF_HOURS },
	{ "sla.timezone", CT_TIMEZONE, OFF(sla.utc_offset_min), 0, "+08:00",
	    0, 0, 0 },
	/* docs/relay.md, "Conversation history": on by default, 0 turns it off */
	{ "history.turns", CT_UINT, OFF(history.turns), 0, "50", 0, 10000, 0 },
	{ "history.ttl", CT_DURATION, OFF(history.ttl_ms), 0, "24h", 1000,
	    2592000000ULL, 0 },
	/* docs/relay.md, "Whisper notes": how long a note waits for its agent */
	{ "notes.ttl", CT_DURATION, OFF(notes.ttl_ms), 0, "10m", 1000,
	    2592000000ULL, 0 },
	{ "rules", CT_STRING, OFF(rules), 0, "rules.d", 0, 0, 0 },
	/* docs/rules.md, "A second opinion" */
	{ "model", CT_STRING, OFF(model), 0, NULL, 0, 0, 0 },
	{ "model_veto", CT_FRACTION, OFF(model_veto), 0, "0.15", 0, 0, CF_ZERO },
	/* docs/rules.md, "Across turns" */
	{ "window.turns", CT_UINT, OFF(window.turns), 0, "3", 1, 16, 0 },
	{ "window.time", CT_DURATION, OFF(window.time_ms), 0, "60s", 1000,
	    3600000, 0 },
	{ "window.bytes", CT_SIZE, OFF(window.bytes), 0, "512", 16, 65536, 0 },
	{ "admin.listen", CT_ADDR, OFF(admin), 0, "127.0.0.1:9090", 0, 0, 0 },
	{ "admin.token", CT_STRING, OFF(admin_token), 0, NULL, 0, 0, 0 },
	{ "limits.max_message", CT_SIZE, OFF(limits.max_message), 0,
	    "1MiB", 1, CONFIG_GiB, 0 },
	{ "limits.queue_bytes", CT_SIZE, OFF(limits.queue_bytes), 0,
	    "4MiB", CONFIG_KiB, NOMAX, 0 },
	/* lws timeouts are whole seconds (an int): below 1 s would mean none */
	{ "limits.connect_timeout", CT_DURATION, OFF(limits.connect_timeout_ms), 0,
	    "10s", 1000, 86400000, CF_ROUND_S },
	{ "limits.shutdown_grace", CT_DURATION, OFF(limits.shutdown_grace_ms), 0,
	    "5s", 0, NOMAX, 0 },
	/* docs/configuration.md says why these defaults */
	{ "limits.max_connections", CT_UINT, OFF(limits.max_connections), 0,
	    "10000", 1, 10000000, 0 },
	{ "limits.max_connections_per_ip", CT_UINT,
	    OFF(limits.max_connections_per_ip), 0, "1000", 0, 10000000, 0 },
	{ "limits.handshake_timeout", CT_DURATION,
	    OFF(limits.handshake_timeout_ms), 0, "10s", 100, 3600000, 0 },
	{ "limits.message_timeout", CT_DURATION, OFF(limits.message_timeout_ms),
	    0, "30s", 100, 86400000, 0 },
	{ "limits.stall_timeout", CT_DURATION, OFF(limits.stall_timeout_ms),
	    0, "30s", 100, 86400000, 0 },
	{ "dashboard.listen", CT_ADDR, OFF(dashboard.listen), 0,
	    "127.0.0.1:8081", 0, 0, 0 },
	{ "dashboard.token", CT_STRING, OFF(dashboard.token), 0, NULL, 0, 0, 0 },
	{ "dashboard.users", CT_STRING, OFF(dashboard.users), 0, NULL, 0, 0, 0 },
	{ "dashboard.tls", CT_BOOL, OFF(dashboard.tls), 0, "false", 0, 0, 0 },
	/* a login's whole life; the idle timeout is the dashboard's (docs/dashboard.md) */
	{ "dashboard.session_ttl", CT_DURATION, OFF(dashboard.session_ttl_ms), 0,
	    "12h", 1000, 2592000000ULL, 0 },
	{ "dashboard.allowed_origins", CT_LIST, OFF(dashboard.allowed_origins), 0,
	    NULL, 0, 0, CF_ORIGINS },
	{ "dashboard.root", CT_STRING, OFF(dashboard.root), 0,
	    CHATMON_DATADIR "/dashboard", 0, 0, 0 },
	{ "dashboard.history", CT_UINT, OFF(dashboard.history), 0, "1000",
	    1, 100000, 0 },
	{ "dashboard.public_url", CT_STRING, OFF(dashboard.public_url), 0, NULL,
	    0, 0, CF_HTTP },
	/* docs/notify.md */
	{ "notify.admin", CT_ADDR, OFF(notify.admin), 0, "127.0.0.1:9091", 0, 0, 0 },
	{ "notify.group", CT_STRING, OFF(notify.group), 0, "chatmon-notify", 0, 0,
	    CF_WORD },
	{ "notify.consumer", CT_STRING, OFF(notify.consumer), 0, NULL, 0, 0,
	    CF_WORD },
	{ "notify.timeout", CT_DURATION, OFF(notify.timeout_ms), 0, "10s", 100,
	    600000, 0 },
	{ "notify.attempts", CT_UINT, OFF(notify.attempts), 0, "5", 1, 100, 0 },
	{ "notify.backoff", CT_DURATION, OFF(notify.backoff_ms), 0, "1s", 10,
	    300000, 0 },
	{ "notify.claim_idle", CT_DURATION, OFF(notify.claim_idle_ms), 0, "60s",
	    100, 86400000, 0 },
	/* a consumer idle this long and holding nothing is a worker gone: deleted */
	{ "notify.consumer_gone", CT_DURATION, OFF(notify.consumer_gone_ms), 0, "1h",
	    10000, 604800000, 0 },
	/* a robot that says it is sent too often: its route sends nothing this long (0: the vendor's) */
	{ "notify.limited_pause", CT_DURATION, OFF(notify.limited_pause_ms), 0, "0s",
	    0, 3600000, 0 },
	/* alerts held in memory for the routes (pushd.c: the shared read and each route's share) */
	{ "notify.max_waiting", CT_UINT, OFF(notify.max_waiting), 0, "50000", 10,
	    1000000, 0 },
	/* and what they cost: 64 MiB keeps the worker well under its unit's MemoryMax=256M */
	{ "notify.max_waiting_bytes", CT_SIZE, OFF(notify.max_waiting_bytes), 0,
	    "64MiB", 64 * CONFIG_KiB, 64 * CONFIG_GiB, 0 },
	{ "notify.ca", CT_STRING, OFF(notify.ca), 0, NULL, 0, 0, 0 },
	{ "notify.dead_letter", CT_STRING, OFF(notify.dead_letter), 0,
	    "chatmon:notify:dead", 0, 0, CF_WORD },
	{ "notify.daily_at", CT_STRING, OFF(notify.daily_at), 0, NULL, 0, 0, 0 },
	{ "notify.daily_route", CT_STRING, OFF(notify.daily_route), 0, NULL, 0, 0,
	    CF_WORD },
	{ "notify.routes", CT_ROUTES, OFF(notify.routes), 0, NULL, 0, 0, 0 },
	/* docs/report.md: the days' figures outlive the logs they come from */
	{ "report.retention_days", CT_UINT, OFF(report.retention_days), 0, "400",
	    1, 3650, 0 },
	{ "log.level", CT_LOG_LEVEL, OFF(log_level), 0, "info", 0, 0, 0 },
	{ "log.format", CT_LOG_FORMAT, OFF(log_json), 0, "text", 0, 0, 0 },
};

#define CONFIG_NKEYS	UTIL_NELEM(config_keys)

/* Where a key got its value, to point cross-key errors at the right place. */
struct config_origin {
	size_t		 seq;	/* 0: still the default */
	size_t		 line;
	const char	*ovr;	/* the override that set it, or NULL */
	int		 bad;	/* the last value given was rejected */
};

struct config_level;

struct config_ctx {
	struct config	*cfg;
	struct sbuf	*errs;		/* may be NULL: only count */
	const char	*file;
	const char	*ovr;		/* override being applied; NULL for the file */
	size_t		 line;		/* line of the node being applied; 0: none */
	size_t		 nerr;
	size_t		 seq;
	int		 oom;
	struct config_list scratch;	/* list being built before it replaces the old */
	struct config_origin origin[CONFIG_NKEYS];
	const char	*where;		/* "shops.ID": put before each message; NULL none */
	struct config_level *levels;	/* what each of cfg->shops wrote itself */
	size_t		 nlevels;	/* allocated, cfg->nshops of them in use */
	struct config	*shadow;	/* a shop's SLA values go through the rows here */
};

typedef int (*config_setter)(struct config_ctx *, const struct config_key *,
    const char *);

static int	config_set_string(struct config_ctx *,
		    const struct config_key *, const char *);
static int	config_set_pointer(struct config_ctx *,
		    const struct config_key *, const char *);
static int	config_set_item(struct config_ctx *,
		    const struct config_key *, const char *);
static int	config_set_size(struct config_ctx *,
		    const struct config_key *, const char *);
static int	config_set_duration(struct config_ctx *,
		    const struct config_key *, const char *);
static int	config_set_fraction(struct config_ctx *,
		    const struct config_key *, const char *);
static int	config_set_uint(struct config_ctx *,
		    const struct config_key *, const char *);
static int	config_set_addr(struct config_ctx *,
		    const struct config_key *, const char *);
static int	config_set_ws_url(struct config_ctx *,
		    const struct config_key *, const char *);
static int	config_set_agent_id(struct config_ctx *,
		    const struct config_key *, const char *);
static int	config_set_log_level(struct config_ctx *,
		    const struct config_key *, const char *);
static int	config_set_rate_scope(struct config_ctx *,
		    const struct config_key *, const char *);
static int	config_set_profile(struct config_ctx *,
		    const struct config_key *, const char *);
static int	config_set_timezone(struct config_ctx *,
		    const struct config_key *, const char *);
static int	config_set_log_format(struct config_ctx *,
		    const struct config_key *, const char *);
static int	config_set_bool(struct config_ctx *,
		    const struct config_key *, const char *);
static int	config_set_redis_url(struct config_ctx *,
		    const struct config_key *, const char *);
static int	config_set_id_source(struct config_ctx *,
		    const struct config_key *, const char *);
static int	config_set_shops_unknown(struct config_ctx *,
		    const struct config_key *, const char *);
static int	config_set_binary(struct config_ctx *,
		    const struct config_key *, const char *);

#define OWN_NONE	0
#define OWN_STR		1	/* a char * at off */
#define OWN_LIST	2	/* a struct config_list at off */
#define OWN_ROUTES	3	/* notify.routes (config_routes_free) */

static const struct config_type_info {
	const char	*what;	/* "expected a ..., got a mapping" */
	config_setter	 set;	/* CT_LIST: appends one item to ctx->scratch */
	int		 own;	/* what config_free releases at off */
} config_types[] = {
	[CT_STRING] =	{ "string", config_set_string, OWN_STR },
	[CT_POINTER] =	{ "JSON pointer", config_set_pointer, OWN_STR },
	[CT_LIST] =	{ "list of strings", config_set_item, OWN_LIST },
	[CT_SIZE] =	{ "size", config_set_size, OWN_NONE },
	[CT_DURATION] =	{ "duration", config_set_duration, OWN_NONE },
	[CT_FRACTION] =	{ "fraction", config_set_fraction, OWN_NONE },
	[CT_UINT] =	{ "unsigned integer", config_set_uint, OWN_NONE },
	[CT_ADDR] =	{ "host:port address", config_set_addr, OWN_NONE },
	[CT_WS_URL] =	{ "ws:// or wss:// URL", config_set_ws_url, OWN_STR },
	[CT_AGENT_ID] =	{ "agent id source", config_set_agent_id, OWN_STR },
	[CT_LOG_LEVEL] = { "log level", config_set_log_level, OWN_NONE },
	[CT_REDIS_URL] = { "Redis URL", config_set_redis_url, OWN_STR },
	[CT_PROFILE] =	{ "SLA profile", config_set_profile, OWN_NONE },
	[CT_RATE_SCOPE] = { "rate scope", config_set_rate_scope, OWN_NONE },
	[CT_TIMEZONE] =	{ "time zone", config_set_timezone, OWN_NONE },
	[CT_LOG_FORMAT] = { "log format", config_set_log_format, OWN_NONE },
	[CT_BOOL] =	{ "boolean", config_set_bool, OWN_NONE },
	[CT_ROUTES] =	{ "list of routes", NULL, OWN_ROUTES },	/* config_set_routes */
	[CT_ID_SOURCE] = { "query:, header: or claim: source", config_set_id_source, OWN_STR },
	[CT_SHOPS_UNKNOWN] = { "choice", config_set_shops_unknown, OWN_NONE },
	[CT_BINARY] =	{ "choice", config_set_binary, OWN_NONE },
};

/* ---------------------------------------------------------------- errors */

/*
 * Quotes a user-supplied value for a message: one line, control
 * characters escaped (util_escape), values past CONFIG_SHOW bytes cut
 * between characters, so an error list stays one error per line.
 */
static const char *
config_quote(char *buf, size_t sz, const char *s)
{
	size_t	len = strlen(s), show = util_utf8_cut(s, CONFIG_SHOW), o;

	buf[0] = '\'';
	o = util_escape(buf, sz - 5, 1, s, show, 0);	/* room for "...'" */
	if (show < len) {
		memcpy(buf + o, "...", 3);
		o += 3;
	}
	buf[o++] = '\'';
	buf[o] = '\0';
	return buf;
}

static void	config_err(struct config_ctx *, const char *, ...) UTIL_PRINTF(2, 3);

/* One error line, placed by ctx->ovr or ctx->file and ctx->line. */
static void
config_err(struct config_ctx *ctx, const char *fmt, ...)
{
	char	 msg[1024];
	va_list	 ap;
	int	 n = 0;

	ctx->nerr++;
	if (ctx->errs == NULL || ctx->nerr > CONFIG_MAX_ERRORS + 1)
		return;
	if (ctx->nerr == CONFIG_MAX_ERRORS + 1) {
		/* every error is counted; so many are written out for nobody */
		sbuf_line(ctx->errs, "%s: more than %d errors: the rest are not "
		    "listed", ctx->file, CONFIG_MAX_ERRORS);
		return;
	}
	if (ctx->where != NULL)
		n = snprintf(msg, sizeof(msg), "%s: ", ctx->where);
	if (n < 0 || (size_t)n >= sizeof(msg))
		n = 0;
	va_start(ap, fmt);
	vsnprintf(msg + n, sizeof(msg) - (size_t)n, fmt, ap);
	va_end(ap);
	if (ctx->ovr != NULL)	/* the option as given, cut as values are */
		sbuf_line(ctx->errs, "-o %.*s%s: %s", CONFIG_SHOW, ctx->ovr,
		    strlen(ctx->ovr) > CONFIG_SHOW ? "..." : "", msg);
	else if (ctx->line > 0)
		sbuf_line(ctx->errs, "%s:%zu: %s", ctx->file, ctx->line, msg);
	else
		sbuf_line(ctx->errs, "%s: %s", ctx->file, msg);
}

/* "<key>: bad <what> '<value>': <why>", the form of most value errors. */
static int
config_bad(struct config_ctx *ctx, const struct config_key *k,
    const char *what, const char *s, const char *why)
{
	char	 q[CONFIG_QUOTE];

	config_err(ctx, "%s: bad %s %s: %s", k->path, what,
	    config_quote(q, sizeof(q), s), why);
	return -1;
}

/* Reported once: after the first failed allocation the rest is noise. */
static void
config_oom(struct config_ctx *ctx)
{
	if (!ctx->oom)
		config_err(ctx, "out of memory");
	ctx->oom = 1;
}

/* ------------------------------------------------------ value parsers */

/* Decimal digits at *sp into *out; -1 when none or on overflow. */
static int
config_u64(const char **sp, uint64_t *out)
{
	const char	*s = *sp;
	uint64_t	 n = 0;

	if (!isdigit((unsigned char)*s))
		return -1;
	for (; isdigit((unsigned char)*s); s++) {
		unsigned d = (unsigned)(*s - '0');

		if (n > (UINT64_MAX - d) / 10)
			return -1;
		n = n * 10 + d;
	}
	*sp = s;
	*out = n;
	return 0;
}

static const char *
config_size_why(const char *s, uint64_t *out)
{
	static const struct {
		const char	*unit;
		uint64_t	 mult;
	} units[] = {
		{ "B", 1 },
		{ "kB", 1000 }, { "KB", 1000 },
		{ "MB", 1000000 }, { "GB", 1000000000 },
		{ "KiB", CONFIG_KiB }, { "MiB", CONFIG_MiB }, { "GiB", CONFIG_GiB },
	};
	uint64_t	 n, mult = 1;
	size_t		 i;

	if (*s == '\0')
		return "empty";
	if (config_u64(&s, &n) == -1)
		return isdigit((unsigned char)*s) ? "too large" :
		    "not a non-negative integer";
	if (*s == ' ' && *(s += strspn(s, " ")) == '\0')
		return "trailing space";
	if (*s != '\0') {
		for (i = 0; i < UTIL_NELEM(units); i++)
			if (strcmp(s, units[i].unit) == 0)
				break;
		if (i == UTIL_NELEM(units))
			return "unknown unit (use B, kB, KB, MB, GB, KiB, MiB or GiB)";
		mult = units[i].mult;
	}
	if (n > UINT64_MAX / mult)
		return "too large";
	*out = n * mult;
	return NULL;
}

int
config_parse_size(const char *s, uint64_t *out)
{
	return s != NULL && config_size_why(s, out) == NULL ? 0 : -1;
}

/* Fractions are rounded up: a timeout is never shorter than written. */
static const char *
config_duration_why(const char *s, uint64_t *out)
{
	static const struct {
		const char	*unit;
		uint64_t	 ms;
	} units[] = {
		{ "ms", 1 }, { "s", 1000 }, { "m", 60000 }, { "h", 3600000 },
	};
	uint64_t	 ip, frac = 0, scale = 1, unit = 1000, ms, part;
	size_t		 i, nd = 0;

	if (*s == '\0')
		return "empty";
	if (config_u64(&s, &ip) == -1)
		return isdigit((unsigned char)*s) ? "too large" :
		    "not a non-negative number";
	if (*s == '.') {
		s++;
		for (; isdigit((unsigned char)*s); s++, nd++) {
			if (nd == 9)
				return "more than 9 decimals";
			frac = frac * 10 + (uint64_t)(*s - '0');
			scale *= 10;
		}
		if (nd == 0)
			return "no digits after '.'";
	}
	if (*s == ' ' && *(s += strspn(s, " ")) == '\0')
		return "trailing space";
	if (*s != '\0') {
		for (i = 0; i < UTIL_NELEM(units); i++)
			if (strcmp(s, units[i].unit) == 0)
				break;
		if (i == UTIL_NELEM(units))
			return "unknown unit (use ms, s, m or h)";
		unit = units[i].ms;
	}
	if (ip > UINT64_MAX / unit)
		return "too large";
	ms = ip * unit;
	/* frac < 10^9 and unit <= 3.6e6: the product fits */
	part = (frac * unit + scale - 1) / scale;
	if (ms > UINT64_MAX - part)
		return "too large";
	*out = ms + part;
	return NULL;
}

int
config_parse_duration_ms(const char *s, uint64_t *out)
{
	return s != NULL && config_duration_why(s, out) == NULL ? 0 : -1;
}

static int
config_is_name_char(unsigned char c)
{
	return isalnum(c) || c == '-' || c == '.' || c == '_';
}

/*
 * One host (a name, IPv4, or [IPv6] with an optional %zone) and an optional
 * ":port" in s[0..n). *port is left alone when there is no port and
 * need_port is 0, so the caller presets its default.
 */
static const char *
config_host_port(const char *s, size_t n, int need_port, char *host,
    size_t hostsz, int *port)
{
	const char	*end = s + n, *hs, *he, *p, *pct, *c;
	char		 v6[INET6_ADDRSTRLEN + 64];
	struct in6_addr	 a6;
	uint64_t	 v;

	if (n == 0)
		return "missing host";
	if (*s == '[') {
		hs = s + 1;
		if ((he = memchr(hs, ']', (size_t)(end - hs))) == NULL)
			return "missing ']' after IPv6 address";
		p = he + 1;
		if (he == hs)
			return "missing host";
		if ((size_t)(he - hs) >= sizeof(v6))
			return "bad IPv6 address";
		memcpy(v6, hs, (size_t)(he - hs));
		v6[he - hs] = '\0';
		if ((pct = strchr(v6, '%')) != NULL) {
			/* a zone (fe80::1%eth0) is kept, but not checked by inet_pton */
			if (pct[1] == '\0')
				return "empty IPv6 zone";
			for (c = pct + 1; *c != '\0'; c++)
				if (!config_is_name_char((unsigned char)*c))
					return "bad IPv6 zone";
			v6[pct - v6] = '\0';
		}
		if (inet_pton(AF_INET6, v6, &a6) != 1)
			return "bad IPv6 address";
		if (p < end && *p != ':')
			return "expected ':' after ']'";
	} else {
		hs = s;
		he = memchr(s, ':', n);
		if (he == NULL)
			he = end;
		else if (memchr(he + 1, ':', (size_t)(end - he - 1)) != NULL)
			return "IPv6 addresses need brackets, e.g. [::1]:8080";
		p = he;
		if (he == hs)
			return "missing host";
		for (c = hs; c < he; c++)
			if (!config_is_name_char((unsigned char)*c))
				return "bad character in host";
	}
	if ((size_t)(he - hs) >= hostsz)
		return "host too long";
	if (p == end) {
		if (need_port)
			return "missing port (want host:port)";
	} else {
		p++;	/* ':' */
		if (p == end || end - p > 5)
			return "bad port";
		for (c = p; c < end; c++)
			if (!isdigit((unsigned char)*c))
				return "bad port";
		if (config_u64(&p, &v) == -1 || v < 1 || v > 65535)
			return "port out of range (1-65535)";
		*port = (int)v;
	}
	memcpy(host, hs, (size_t)(he - hs));
	host[he - hs] = '\0';
	return NULL;
}

static const char *
config_addr_why(const char *s, struct config_addr *a)
{
	struct config_addr	 t;
	const char		*why;

	memset(&t, 0, sizeof(t));
	if (*s == '\0')
		return "empty";
	if ((why = config_host_port(s, strlen(s), 1, t.host, sizeof(t.host),
	    &t.port)) != NULL)
		return why;
	*a = t;
	return NULL;
}

int
config_parse_addr(const char *s, struct config_addr *a)
{
	return s != NULL && config_addr_why(s, a) == NULL ? 0 : -1;
}

/* URLs end up in request lines and logs: no spaces or control bytes. */
static int
config_has_space(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s <= 0x20 || *s == 0x7f)
			return 1;
	return 0;
}

static const char *
config_ws_url_why(const char *s, struct config_ws_url *u)
{
	struct config_ws_url	 t;
	const char		*auth, *rest, *why;

	memset(&t, 0, sizeof(t));
	if (strncasecmp(s, "ws://", 5) == 0) {
		auth = s + 5;
		t.port = 80;
	} else if (strncasecmp(s, "wss://", 6) == 0) {
		auth = s + 6;
		t.tls = 1;
		t.port = 443;
	} else
		return "must start with ws:// or wss://";
	if (config_has_space(s))
		return "contains a space or control character";
	if (strchr(s, '#') != NULL)
		return "a fragment ('#') is not allowed";
	rest = auth + strcspn(auth, "/?");
	if (memchr(auth, '@', (size_t)(rest - auth)) != NULL)
		return "user info ('user@') is not supported";
	if ((why = config_host_port(auth, (size_t)(rest - auth), 0, t.host,
	    sizeof(t.host), &t.port)) != NULL)
		return why;
	if (strlen(rest) + 1 >= sizeof(t.path))
		return "path too long";
	/* a bare "?q" still needs a path in the request line */
	snprintf(t.path, sizeof(t.path), "%s%s", *rest == '/' ? "" : "/", rest);
	*u = t;
	return NULL;
}

int
config_parse_ws_url(const char *s, struct config_ws_url *u)
{
	return s != NULL && config_ws_url_why(s, u) == NULL ? 0 : -1;
}

/* Syntax only: whether the server is there is the alert sink's business. */
static const char	*config_redis_target_why(const char *,
			    struct config_redis_target *);

static const char *
config_redis_url_why(const char *s)
{
	struct config_redis_target	t;

	return config_redis_target_why(s, &t);
}

int
config_parse_redis_url(const char *s, struct config_redis_target *t)
{
	return config_redis_target_why(s, t) == NULL ? 0 : -1;
}

static const char *
config_redis_target_why(const char *s, struct config_redis_target *t)
{
	const char	*auth, *end, *why;
	char		*host = t->host;
	int		 port = 6379;
	uint64_t	 db = 0;

	memset(t, 0, sizeof(*t));
	if (config_has_space(s))
		return "contains a space or control character";
	if (strncmp(s, "unix:", 5) == 0) {
		/* relative: to the configuration file's directory (config_load) */
		if (s[5] == '\0' || (s[5] == '/' && s[6] == '\0'))
			return "unix socket path is empty";
		if (strlen(s + 5) > CONFIG_SUN_PATH)
			return "unix socket path too long (max 107 bytes)";
		snprintf(t->path, sizeof(t->path), "%s", s + 5);
		return NULL;
	}
	if (strncmp(s, "redis://", 8) != 0)
		return "want redis://host[:port][/db] or unix:/path";
	auth = s + 8;
	end = auth + strcspn(auth, "/");
	if (memchr(auth, '@', (size_t)(end - auth)) != NULL)
		return "credentials ('user@') are not supported: use redis.password";
	if ((why = config_host_port(auth, (size_t)(end - auth), 0, host,
	    sizeof(t->host), &port)) != NULL)
		return why;
	if (*end == '/' && end[1] != '\0') {
		end++;
		if (config_u64(&end, &db) == -1 || *end != '\0' || db > INT32_MAX)
			return "bad database number";
	}
	t->port = port;
	t->db = (int)db;
	return NULL;
}

/* RFC 6901: "/a~1b" is key "a/b"; a '~' is always followed by 0 or 1. */
static const char *
config_pointer_why(const char *s)
{
	if (*s != '/')
		return "must start with '/'";
	for (; *s != '\0'; s++)
		if (*s == '~' && s[1] != '0' && s[1] != '1')
			return "'~' must be followed by 0 or 1";
	return NULL;
}

/* Exact units only, so a message prints what a user would have written. */
static const char *
config_fmt_size(char *buf, size_t sz, uint64_t v)
{
	if (v != 0 && v % CONFIG_GiB == 0)
		snprintf(buf, sz, "%lluGiB", (unsigned long long)(v / CONFIG_GiB));
	else if (v != 0 && v % CONFIG_MiB == 0)
		snprintf(buf, sz, "%lluMiB", (unsigned long long)(v / CONFIG_MiB));
	else if (v != 0 && v % CONFIG_KiB == 0)
		snprintf(buf, sz, "%lluKiB", (unsigned long long)(v / CONFIG_KiB));
	else
		snprintf(buf, sz, "%lluB", (unsigned long long)v);
	return buf;
}

static const char *
config_fmt_ms(char *buf, size_t sz, uint64_t v)
{
	if (v != 0 && v % 3600000 == 0)
		snprintf(buf, sz, "%lluh", (unsigned long long)(v / 3600000));
	else if (v != 0 && v % 60000 == 0)
		snprintf(buf, sz, "%llum", (unsigned long long)(v / 60000));
	else if (v != 0 && v % 1000 == 0)
		snprintf(buf, sz, "%llus", (unsigned long long)(v / 1000));
	else
		snprintf(buf, sz, "%llums", (unsigned long long)v);
	return buf;
}

/* ------------------------------------------------------------ setters */

#define FIELD(cfg, type, off)	((type *)(void *)((char *)(cfg) + (off)))

/* Replaces the string at *dst; the old one is freed only on success. */
static int
config_replace(struct config_ctx *ctx, char **dst, const char *s)
{
	char	*p;

	if ((p = strdup(s)) == NULL) {
		config_oom(ctx);
		return -1;
	}
	free(*dst);
	*dst = p;
	return 0;
}

static void
config_list_clear(struct config_list *l)
{
	size_t	 i;

	for (i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

static int
config_set_string(struct config_ctx *ctx, const struct config_key *k,
    const char *s)
{
	char	q[CONFIG_QUOTE];

	if (*s == '\0') {
		config_err(ctx, "%s: must not be empty", k->path);
		return -1;
	}
	if ((k->flags & CF_HTTP) && strncmp(s, "http://", 7) != 0 &&
	    strncmp(s, "https://", 8) != 0) {
		config_err(ctx, "%s: %s is not an http:// or https:// URL",
		    k->path, config_quote(q, sizeof(q), s));
		return -1;
	}
	/* a name that goes into log lines and Redis commands as one word */
	if ((k->flags & CF_WORD) && config_has_space(s)) {
		config_err(ctx, "%s: %s contains a space or control character",
		    k->path, config_quote(q, sizeof(q), s));
		return -1;
	}
	return config_replace(ctx, FIELD(ctx->cfg, char *, k->off), s);
}

static int
config_set_pointer(struct config_ctx *ctx, const struct config_key *k,
    const char *s)
{
	const char	*why;

	if ((k->flags & CF_OPTIONAL) && *s == '\0') {
		free(*FIELD(ctx->cfg, char *, k->off));
		*FIELD(ctx->cfg, char *, k->off) = NULL;	/* "" turns it off */
		return 0;
	}
	if ((why = config_pointer_why(s)) != NULL)
		return config_bad(ctx, k, "JSON pointer", s, why);
	return config_replace(ctx, FIELD(ctx->cfg, char *, k->off), s);
}

static int
config_set_item(struct config_ctx *ctx, const struct config_key *k,
    const char *s)
{
	struct config_list	*l = &ctx->scratch;
	struct config_addr	 a;
	struct access_cidr	 cidr;
	const char		*why;
	char			**v, *p;
	uint16_t		 from, to;

	if (*s == '\0') {
		config_err(ctx, "%s: empty string in list", k->path);
		return -1;
	}
	if ((k->flags & CF_HOURS) && config_parse_hours(s, &from, &to) == -1)
		return config_bad(ctx, k, "service window", s,
		    "want HH:MM-HH:MM, e.g. 08:00-23:00");
	/*
	 * A list past its bound is said once, at the first item too many: the
	 * rest still go in (the configuration is refused anyway) so that they
	 * are not each said again.
	 */
	if ((k->flags & CF_HOURS) && l->n == CONFIG_MAX_HOURS)
		config_err(ctx, "%s: at most %d service windows", k->path,
		    CONFIG_MAX_HOURS);
	if ((k->flags & CF_ADDRS) && (why = config_addr_why(s, &a)) != NULL)
		return config_bad(ctx, k, "address", s, why);
	if ((k->flags & CF_ORIGINS) && (why = access_origin_why(s)) != NULL)
		return config_bad(ctx, k, "origin", s, why);
	if ((k->flags & CF_CIDRS) && access_cidr_parse(s, &cidr, &why) == -1)
		return config_bad(ctx, k, "address or CIDR", s, why);
	if ((k->flags & CF_CIDRS) && l->n == CONFIG_MAX_PROXIES)
		config_err(ctx, "%s: at most %d ranges", k->path,
		    CONFIG_MAX_PROXIES);
	if ((k->flags & CF_ADDRS) && l->n == CONFIG_MAX_SENTINELS)
		config_err(ctx, "%s: at most %d addresses", k->path,
		    CONFIG_MAX_SENTINELS);
	if ((p = strdup(s)) == NULL ||
	    (v = reallocarray(l->v, l->n + 1, sizeof(*v))) == NULL) {
		free(p);
		config_oom(ctx);
		return -1;
	}
	v[l->n++] = p;
	l->v = v;
	return 0;
}

/* Shared by sizes, durations and integers: min/max from the row. */
static int
config_check_range(struct config_ctx *ctx, const struct config_key *k,
    const char *s, uint64_t v,
    const char *(*fmt)(char *, size_t, uint64_t))
{
	char	 q[CONFIG_QUOTE], lo[32], hi[32];

	if (v >= k->min && v <= k->max)
		return 0;
	config_quote(q, sizeof(q), s);
	if (k->max == NOMAX)
		config_err(ctx, "%s: %s is too small (minimum %s)", k->path, q,
		    fmt(lo, sizeof(lo), k->min));
	else
		config_err(ctx, "%s: %s is out of range (%s to %s)", k->path, q,
		    fmt(lo, sizeof(lo), k->min), fmt(hi, sizeof(hi), k->max));
	return -1;
}

static const char *
config_fmt_u64(char *buf, size_t sz, uint64_t v)
{
	snprintf(buf, sz, "%llu", (unsigned long long)v);
	return buf;
}

static int
config_set_size(struct config_ctx *ctx, const struct config_key *k,
    const char *s)
{
	const char	*why;
	uint64_t	 v = 0;

	if ((why = config_size_why(s, &v)) != NULL)
		return config_bad(ctx, k, "size", s, why);
	if (config_check_range(ctx, k, s, v, config_fmt_size) == -1)
		return -1;
	*FIELD(ctx->cfg, uint64_t, k->off) = v;
	return 0;
}

static int
config_set_duration(struct config_ctx *ctx, const struct config_key *k,
    const char *s)
{
	const char	*why;
	uint64_t	 v = 0;

	if ((why = config_duration_why(s, &v)) != NULL)
		return config_bad(ctx, k, "duration", s, why);
	if (config_check_range(ctx, k, s, v, config_fmt_ms) == -1)
		return -1;
	if (k->flags & CF_ROUND_S)
		v = (v + 999) / 1000 * 1000;
	*FIELD(ctx->cfg, uint64_t, k->off) = v;
	return 0;
}

static int
config_set_fraction(struct config_ctx *ctx, const struct config_key *k,
    const char *s)
{
	char		 q[CONFIG_QUOTE];
	const char	*p = s;
	double		 d;
	size_t		 nd = 0;

	/* strtod alone would take "nan", "0x1p-1" and leading spaces */
	for (; isdigit((unsigned char)*p); p++)
		nd++;
	if (*p == '.')
		for (p++; isdigit((unsigned char)*p); p++)
			nd++;
	if (nd == 0 || *p != '\0')
		return config_bad(ctx, k, "fraction", s,
		    "want a number between 0 and 1, e.g. 0.8");
	d = strtod(s, NULL);
	if (!((d > 0 || (d == 0 && (k->flags & CF_ZERO))) && d < 1)) {
		config_err(ctx, "%s: %s must be %s 0 and less than 1", k->path,
		    config_quote(q, sizeof(q), s), (k->flags & CF_ZERO) ?
		    "at least" : "greater than");
		return -1;
	}
	*FIELD(ctx->cfg, double, k->off) = d;
	return 0;
}

static int
config_set_uint(struct config_ctx *ctx, const struct config_key *k,
    const char *s)
{
	char		 q[CONFIG_QUOTE];
	const char	*p = s;
	uint64_t	 v;

	if (config_u64(&p, &v) == -1 || *p != '\0') {
		config_err(ctx, "%s: bad unsigned integer %s", k->path,
		    config_quote(q, sizeof(q), s));
		return -1;
	}
	if (config_check_range(ctx, k, s, v, config_fmt_u64) == -1)
		return -1;
	*FIELD(ctx->cfg, uint64_t, k->off) = v;
	return 0;
}

static int
config_set_addr(struct config_ctx *ctx, const struct config_key *k,
    const char *s)
{
	const char	*why;

	if ((why = config_addr_why(s, FIELD(ctx->cfg, struct config_addr,
	    k->off))) != NULL)
		return config_bad(ctx, k, "address", s, why);
	return 0;
}

static int
config_set_ws_url(struct config_ctx *ctx, const struct config_key *k,
    const char *s)
{
	const char		*why;
	struct config_ws_url	 u;

	if ((why = config_ws_url_why(s, &u)) != NULL)
		return config_bad(ctx, k, "URL", s, why);
	if (config_replace(ctx, FIELD(ctx->cfg, char *, k->off), s) == -1)
		return -1;
	*FIELD(ctx->cfg, struct config_ws_url, k->off2) = u;
	return 0;
}

/*
 * query:NAME or header:NAME, and where claims are allowed (shop_id,
 * queue_id) claim:NAME: the source and its NAME, or why not.
 */
static const char *
config_id_source_why(const char *s, int claims, enum config_agent_id_from *from,
    const char **name)
{
	const char	*p, *why = NULL;

	if (strncmp(s, "query:", 6) == 0) {
		*from = CONFIG_AGENT_ID_QUERY;
		*name = s + 6;
		/* URL-unreserved: the name is matched as written in the query */
		for (p = *name; *p != '\0' && why == NULL; p++)
			if (!config_is_name_char((unsigned char)*p) && *p != '~')
				why = "bad character in query parameter name";
	} else if (strncmp(s, "header:", 7) == 0) {
		*from = CONFIG_AGENT_ID_HEADER;
		*name = s + 7;
		/* an RFC 9110 token */
		for (p = *name; *p != '\0' && why == NULL; p++)
			if (!isalnum((unsigned char)*p) &&
			    strchr("!#$%&'*+-.^_`|~", *p) == NULL)
				why = "bad character in header name";
	} else if (claims && strncmp(s, "claim:", 6) == 0) {
		/* a JSON member name: one word, as auth.jwt_claim */
		*from = CONFIG_ID_CLAIM;
		*name = s + 6;
		if (config_has_space(*name))
			why = "space or control character in claim name";
	} else
		return claims ? "want query:NAME, header:NAME or claim:NAME" :
		    "want query:NAME, header:NAME, jwt:query:NAME or "
		    "jwt:header:NAME";
	if (why == NULL && **name == '\0')
		why = "NAME is empty";
	return why;
}

static int
config_set_agent_id(struct config_ctx *ctx, const struct config_key *k,
    const char *s)
{
	const char			*name = NULL, *why;
	enum config_agent_id_from	 from = CONFIG_AGENT_ID_QUERY;
	const char			*src = s;
	int				 jwt = 0;

	if (strncmp(s, "jwt:", 4) == 0) {
		jwt = 1;
		s += 4;
	}
	if ((why = config_id_source_why(s, 0, &from, &name)) != NULL)
		return config_bad(ctx, k, "agent id source", src, why);
	if (config_replace(ctx, FIELD(ctx->cfg, char *, k->off), name) == -1)
		return -1;
	*FIELD(ctx->cfg, enum config_agent_id_from, k->off2) = from;
	ctx->cfg->agent_id_jwt = jwt;
	return 0;
}

/* shop_id, queue_id: "" turns the key off again (an override's way). */
static int
config_set_id_source(struct config_ctx *ctx, const struct config_key *k,
    const char *s)
{
	const char			*name = NULL, *why;
	enum config_agent_id_from	 from = CONFIG_AGENT_ID_QUERY;
	char				**dst = FIELD(ctx->cfg, char *, k->off);

	if (*s == '\0') {
		free(*dst);
		*dst = NULL;
		return 0;
	}
	if ((why = config_id_source_why(s, 1, &from, &name)) != NULL)
		return config_bad(ctx, k, "id source", s, why);
	if (config_replace(ctx, dst, name) == -1)
		return -1;
	*FIELD(ctx->cfg, enum config_agent_id_from, k->off2) = from;
	return 0;
}

/* One of two words: the field is 0 for the first (the default), 1 for the second. */
static int
config_set_two(struct config_ctx *ctx, const struct config_key *k,
    const char *s, const char *zero, const char *one)
{
	char	why[64];

	if (strcmp(s, zero) != 0 && strcmp(s, one) != 0) {
		snprintf(why, sizeof(why), "want %s or %s", zero, one);
		return config_bad(ctx, k, "choice", s, why);
	}
	*FIELD(ctx->cfg, int, k->off) = strcmp(s, one) == 0;
	return 0;
}

static int
config_set_shops_unknown(struct config_ctx *ctx, const struct config_key *k,
    const char *s)
{
	return config_set_two(ctx, k, s, "default", "refuse");
}

static int
config_set_binary(struct config_ctx *ctx, const struct config_key *k,
    const char *s)
{
	return config_set_two(ctx, k, s, "inspect", "pass");
}

static int
config_set_log_level(struct config_ctx *ctx, const struct config_key *k,
    const char *s)
{
	int	 lvl;

	if ((lvl = log_level_parse(s)) == -1)
		return config_bad(ctx, k, "log level", s,
		    "want error, warn, info or debug");
	*FIELD(ctx->cfg, int, k->off) = lvl;
	return 0;
}

static const char *const config_profiles[] = {
	[CONFIG_PROFILE_CUSTOM] = "custom",
	[CONFIG_PROFILE_TAOBAO] = "taobao",
	[CONFIG_PROFILE_JD] = "jd",
	[CONFIG_PROFILE_PDD] = "pdd",
};

const char *
config_profile_name(int p)
{
	return p >= 0 && (size_t)p < UTIL_NELEM(config_profiles) ?
	    config_profiles[p] : "?";
}

static int
config_set_profile(struct config_ctx *ctx, const struct config_key *k,
    const char *s)
{
	char	q[CONFIG_QUOTE];
	size_t	i;

	for (i = 0; i < UTIL_NELEM(config_profiles); i++)
		if (strcmp(s, config_profiles[i]) == 0) {
			*FIELD(ctx->cfg, int, k->off) = (int)i;
			return 0;
		}
	config_err(ctx, "%s: unknown profile %s: want taobao, jd, pdd or custom",
	    k->path, config_quote(q, sizeof(q), s));
	return -1;
}

/* By enum sla_rate_scope (docs/sla.md, "Platform measures"). */
static const char *const config_rate_scopes[] = { "rounds", "first",
    "buyer_day" };

static int
config_set_rate_scope(struct config_ctx *ctx, const struct config_key *k,
    const char *s)
{
	char	q[CONFIG_QUOTE];
	size_t	i;

	for (i = 0; i < UTIL_NELEM(config_rate_scopes); i++)
		if (strcmp(s, config_rate_scopes[i]) == 0) {
			*FIELD(ctx->cfg, int, k->off) = (int)i;
			return 0;
		}
	config_err(ctx, "%s: unknown scope %s: want rounds, first or buyer_day",
	    k->path, config_quote(q, sizeof(q), s));
	return -1;
}

/* "HH:MM" into minutes; 24:00 only as an end. */
static int
config_hhmm(const char *s, int end, uint16_t *out)
{
	if (!isdigit((unsigned char)s[0]) || !isdigit((unsigned char)s[1]) ||
	    s[2] != ':' || !isdigit((unsigned char)s[3]) ||
	    !isdigit((unsigned char)s[4]))
		return -1;
	*out = (uint16_t)(((s[0] - '0') * 10 + s[1] - '0') * 60 +
	    (s[3] - '0') * 10 + s[4] - '0');
	if ((s[3] - '0') * 10 + s[4] - '0' > 59 || *out > (end ? 1440 : 1439))
		return -1;
	return 0;
}

int
config_parse_hours(const char *s, uint16_t *from, uint16_t *to)
{
	if (strlen(s) != 11 || s[5] != '-' || config_hhmm(s, 0, from) == -1 ||
	    config_hhmm(s + 6, 1, to) == -1 || *from == *to)
		return -1;
	if (*to == 0)
		*to = 1440;	/* "22:00-00:00" ends at midnight */
	return 0;
}

/*
 * A fixed offset from UTC. China has kept one offset all year since 1991,
 * so its zone names map to +08:00; other names are refused rather than
 * guessed (a zone with daylight saving needs the tz database, which a pure
 * module does not read).
 */
int
config_parse_timezone(const char *s, int32_t *off)
{
	static const char *const cn[] = { "Asia/Shanghai", "Asia/Chongqing",
	    "Asia/Harbin", "Asia/Urumqi", "Asia/Hong_Kong", "Asia/Macau",
	    "Asia/Taipei", "PRC", "ROC" };
	uint16_t	 m;
	size_t		 i;
	char		 hhmm[6];

	if (strcmp(s, "UTC") == 0 || strcmp(s, "Z") == 0 ||
	    strcmp(s, "Etc/UTC") == 0) {
		*off = 0;
		return 0;
	}
	for (i = 0; i < UTIL_NELEM(cn); i++)
		if (strcmp(s, cn[i]) == 0) {
			*off = 480;
			return 0;
		}
	if ((s[0] != '+' && s[0] != '-') || strlen(s) != 6)
		return -1;
	memcpy(hhmm, s + 1, 5);
	hhmm[5] = '\0';
	if (config_hhmm(hhmm, 0, &m) == -1 || m > 14 * 60)
		return -1;
	*off = s[0] == '-' ? -(int32_t)m : (int32_t)m;
	return 0;
}

static int
config_set_timezone(struct config_ctx *ctx, const struct config_key *k,
    const char *s)
{

	if (config_parse_timezone(s, FIELD(ctx->cfg, int32_t, k->off)) == -1)
		return config_bad(ctx, k, "time zone", s, "want UTC, an offset "
		    "like +08:00, or a China zone name (Asia/Shanghai)");
	return 0;
}

static int
config_set_log_format(struct config_ctx *ctx, const struct config_key *k,
    const char *s)
{

	if (strcmp(s, "text") != 0 && strcmp(s, "json") != 0)
		return config_bad(ctx, k, "log format", s, "want text or json");
	*FIELD(ctx->cfg, int, k->off) = s[0] == 'j';
	return 0;
}

/* YAML 1.1's spellings, which a YAML-aware editor also colours as booleans. */
static int
config_set_bool(struct config_ctx *ctx, const struct config_key *k,
    const char *s)
{
	static const char *const yes[] = { "true", "yes", "on" };
	static const char *const no[] = { "false", "no", "off" };
	size_t	i;

	for (i = 0; i < UTIL_NELEM(yes); i++) {
		if (strcasecmp(s, yes[i]) == 0) {
			*FIELD(ctx->cfg, int, k->off) = 1;
			return 0;
		}
		if (strcasecmp(s, no[i]) == 0) {
			*FIELD(ctx->cfg, int, k->off) = 0;
			return 0;
		}
	}
	return config_bad(ctx, k, "boolean", s, "want true or false");
}

static int
config_set_redis_url(struct config_ctx *ctx, const struct config_key *k,
    const char *s)
{
	const char	*why;

	if ((why = config_redis_url_why(s)) != NULL)
		return config_bad(ctx, k, "Redis URL", s, why);
	return config_replace(ctx, FIELD(ctx->cfg, char *, k->off), s);
}

/* ------------------------------------------------------- YAML walking */

static const struct config_key *
config_find(const char *path)
{
	size_t	 i;

	for (i = 0; i < CONFIG_NKEYS; i++)
		if (strcmp(config_keys[i].path, path) == 0)
			return &config_keys[i];
	return NULL;
}

/* "limits" is a section because "limits.max_message" is a key. */
static int
config_is_section(const char *path)
{
	size_t	 i, n = strlen(path);

	for (i = 0; i < CONFIG_NKEYS; i++)
		if (strncmp(config_keys[i].path, path, n) == 0 &&
		    config_keys[i].path[n] == '.')
			return 1;
	return 0;
}

static const char *
config_node_kind(const yaml_node_t *n)
{
	switch (n->type) {
	case YAML_MAPPING_NODE:
		return "mapping";
	case YAML_SEQUENCE_NODE:
		return "list";
	default:
		return "scalar";
	}
}

static size_t
config_node_line(const yaml_node_t *n)
{
	return n->start_mark.line + 1;
}

/* YAML's null: an empty plain scalar, "~" or "null". */
static int
config_is_null(const yaml_node_t *n)
{
	const char	*s;

	if (n->type != YAML_SCALAR_NODE ||
	    n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
		return 0;
	s = (const char *)n->data.scalar.value;
	return *s == '\0' || strcmp(s, "~") == 0 || strcmp(s, "null") == 0 ||
	    strcmp(s, "Null") == 0 || strcmp(s, "NULL") == 0;
}

/* A scalar's text, or NULL (reported) when it holds a NUL byte. */
static const char *
config_scalar(struct config_ctx *ctx, const struct config_key *k,
    const yaml_node_t *n)
{
	const char	*s = (const char *)n->data.scalar.value;

	if (strlen(s) != n->data.scalar.length) {
		config_err(ctx, "%s: value contains a NUL byte", k->path);
		return NULL;
	}
	return s;
}

static void
config_set_list(struct config_ctx *ctx, const struct config_key *k,
    yaml_document_t *doc, yaml_node_t *n)
{
	struct config_list	*dst = FIELD(ctx->cfg, struct config_list, k->off);
	yaml_node_item_t	*it;
	yaml_node_t		*item;
	const char		*s;
	size_t			 nerr = ctx->nerr, i;

	if (n->type == YAML_MAPPING_NODE) {
		config_err(ctx, "%s: expected a list of strings, got a mapping",
		    k->path);
		return;
	}
	if (n->type == YAML_SCALAR_NODE) {
		/* one scalar is a one-item list; null is the empty list */
		if (!config_is_null(n) && (s = config_scalar(ctx, k, n)) != NULL)
			config_set_item(ctx, k, s);
	} else {
		for (it = n->data.sequence.items.start, i = 0;
		    it < n->data.sequence.items.top; it++, i++) {
			item = yaml_document_get_node(doc, *it);
			ctx->line = config_node_line(item);
			if (item->type != YAML_SCALAR_NODE || config_is_null(item)) {
				config_err(ctx, "%s[%zu]: expected a string, got a %s",
				    k->path, i, config_is_null(item) ? "null" :
				    config_node_kind(item));
				continue;
			}
			if ((s = config_scalar(ctx, k, item)) != NULL)
				config_set_item(ctx, k, s);
		}
		ctx->line = config_node_line(n);
	}
	if (ctx->nerr == nerr && (k->flags & CF_NONEMPTY) && ctx->scratch.n == 0)
		config_err(ctx, "%s: must not be empty", k->path);
	if (ctx->nerr == nerr) {
		config_list_clear(dst);
		*dst = ctx->scratch;
		memset(&ctx->scratch, 0, sizeof(ctx->scratch));
	} else
		config_list_clear(&ctx->scratch);
}

/* --- notify.routes: a list of mappings ----------------------------------- */

static const char *const config_target_names[] = {
	[CONFIG_TARGET_DINGTALK] = "dingtalk",
	[CONFIG_TARGET_WECOM] = "wecom",
	[CONFIG_TARGET_FEISHU] = "feishu",
	[CONFIG_TARGET_SLACK] = "slack",
	[CONFIG_TARGET_WEBHOOK] = "webhook",
};

const char *const config_match_names[CONFIG_MATCH_N] = {
	"type", "severity", "category", "agent", "shop", "queue",
};

const char *
config_target_name(int t)
{
	return t >= 0 && (size_t)t < UTIL_NELEM(config_target_names) ?
	    config_target_names[t] : "?";
}

static void
config_routes_free(struct config_route *r, size_t n)
{
	size_t	i, m;

	for (i = 0; i < n; i++) {
		free(r[i].name);
		free(r[i].url);
		free(r[i].secret);
		free(r[i].tmpl);
		for (m = 0; m < CONFIG_MATCH_N; m++)
			config_list_clear(&r[i].match[m]);
	}
	free(r);
}

/*
 * Why url cannot be a target, or NULL. Plain http:// only to this machine:
 * a secret or a chat summary must not cross a network in the clear.
 */
/*
 * Why the authority h (len bytes) is no HOST[:PORT], or NULL: a name or an
 * IPv4 address of letters, digits, '-', '.' and '_', or an IPv6 address
 * in brackets; a port of 1 to 65535. Checked at the start: libcurl
 * refused such a URL only at the first alert ("https://[oapi...", port
 * 99999), each alert then spending its attempts on it.
 */
static const char *
config_url_authority_why(const char *h, size_t len)
{
	const char	*p = h, *end = h + len;
	unsigned long	 port = 0;

	/* "localhost:80@elsewhere" is a user name and a host */
	if (memchr(h, '@', len) != NULL)
		return "no user name or password in the URL";
	if (p < end && *p == '[') {
		for (p++; p < end && (isxdigit((unsigned char)*p) || *p == ':' ||
		    *p == '.'); p++)
			;
		if (p == h + 1 || p == end || *p != ']')
			return "a bad IPv6 address: want [ADDRESS]";
		p++;
	} else {
		for (; p < end && (isalnum((unsigned char)*p) || *p == '-' ||
		    *p == '.' || *p == '_'); p++)
			;
		if (p == h)
			return "no host";
	}
	if (p == end)
		return NULL;
	if (*p != ':' || ++p == end)
		return "a bad host: want HOST or HOST:PORT";
	for (; p < end && *p >= '0' && *p <= '9' && port <= 65535; p++)
		port = port * 10 + (unsigned long)(*p - '0');
	if (p != end || port == 0 || port > 65535)
		return "a bad port: want 1 to 65535";
	return NULL;
}

static const char *
config_target_url_why(const char *url)
{
	static const char *const local[] = { "127.0.0.1", "localhost", "[::1]" };
	const char	*h, *end, *why;
	size_t		 i, n, len;

	/* percent-encoded or not at all: curl refuses a space, a request would carry a line break */
	for (h = url; *h != '\0'; h++)
		if ((unsigned char)*h <= 0x20 || *h == 0x7f)
			return "a space or a control character in the URL "
			    "(percent-encode it)";
	/*
	 * never sent, and DingTalk's signature appended after it would not
	 * be either: every alert refused "sign not match" (found by review)
	 */
	if ((strncmp(url, "https://", 8) == 0 || strncmp(url, "http://", 7) == 0) &&
	    strchr(url, '#') != NULL)
		return "a fragment (#...) is never sent to the server: remove it";
	if (strncmp(url, "https://", 8) == 0)
		return config_url_authority_why(url + 8, strcspn(url + 8, "/?#"));
	if (strncmp(url, "http://", 7) != 0)
		return "want https://HOST/..., or http:// to 127.0.0.1";
	h = url + 7;
	len = strcspn(h, "/?#");
	if ((why = config_url_authority_why(h, len)) != NULL)
		return why;
	for (i = 0; i < UTIL_NELEM(local); i++) {
		n = strlen(local[i]);
		if (n > len || strncmp(h, local[i], n) != 0)
			continue;
		for (end = h + n + (h[n] == ':'); end < h + len && *end >= '0' &&
		    *end <= '9'; end++)
			;
		if (end == h + len && (h[n] != ':' || len > n + 1))
			return NULL;
	}
	return "http:// only to 127.0.0.1, localhost or [::1]; use https://";
}

/*
 * url as an error quotes it: a robot's URL is a credential (DingTalk's
 * access_token and WeCom's key in the query, Feishu's and Slack's token in
 * the last segment of the path), so only the scheme, the host and the path
 * up to its last '/' are shown; a user name and password, the last
 * segment, the query and the fragment become "...". What is shown is
 * enough for every complaint config_target_url_why makes.
 */
static const char *
config_url_quote(char *buf, size_t sz, const char *url)
{
	char		 shown[256];	/* config_quote cuts it at CONFIG_SHOW */
	const char	*rest = url, *sep = strstr(url, "://"), *user, *path, *end;
	const char	*slash = NULL, *p;
	size_t		 auth = 0;

	if (sep != NULL) {
		rest = sep + 3;
		auth = strcspn(rest, "/?#");
	}
	path = rest + auth;
	end = path + strcspn(path, "?#");
	for (p = path; p < end; p++)
		if (*p == '/')
			slash = p;
	/* "user:password@host": from the start to the last '@' */
	user = memrchr(rest, '@', auth);
	snprintf(shown, sizeof(shown), "%.*s%s%.*s%.*s%s", (int)(rest - url), url,
	    user != NULL ? "..." : "", user != NULL ? (int)(path - user) : (int)auth,
	    user != NULL ? user : rest, slash != NULL ? (int)(slash + 1 - path) : 0,
	    path, (slash != NULL ? slash + 1 : path) < end || *end != '\0' ?
	    "..." : "");
	return config_quote(buf, sz, shown);
}

/* "20/min": N/s, N/min, N/h. 0 or -1. */
static int
config_parse_rate(const char *s, uint32_t *n, uint64_t *per_ms)
{
	static const struct { const char *unit; uint64_t ms; } units[] = {
		{ "s", 1000 }, { "sec", 1000 }, { "min", 60000 }, { "m", 60000 },
		{ "h", 3600000 }, { "hour", 3600000 },
	};
	unsigned long	 v;
	char		*end;
	size_t		 i;

	if (*s < '1' || *s > '9')
		return -1;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno != 0 || v > 100000 || *end != '/')
		return -1;
	for (i = 0; i < UTIL_NELEM(units); i++)
		if (strcmp(end + 1, units[i].unit) == 0) {
			*n = (uint32_t)v;
			*per_ms = units[i].ms;
			return 0;
		}
	return -1;
}

/* One match: key's value, a string or a list of strings. */
static void
config_route_match(struct config_ctx *ctx, const char *where, const char *key,
    struct config_list *dst, yaml_document_t *doc, yaml_node_t *n)
{
	yaml_node_item_t	*it;
	yaml_node_t		*item;
	struct config_list	 l = { NULL, 0 };
	const char		*s;
	char			*p, **v;

	if (n->type == YAML_MAPPING_NODE) {
		config_err(ctx, "%s.match.%s: expected a string or a list of "
		    "strings, got a mapping", where, key);
		return;
	}
	it = n->type == YAML_SEQUENCE_NODE ? n->data.sequence.items.start : NULL;
	for (;;) {
		if (n->type == YAML_SEQUENCE_NODE) {
			if (it >= n->data.sequence.items.top)
				break;
			item = yaml_document_get_node(doc, *it++);
		} else if (l.n == 0 && !config_is_null(n))
			item = n;
		else
			break;
		ctx->line = config_node_line(item);
		if (item->type != YAML_SCALAR_NODE || config_is_null(item) ||
		    strlen((const char *)item->data.scalar.value) !=
		    item->data.scalar.length || item->data.scalar.length == 0) {
			config_err(ctx, "%s.match.%s: expected non-empty strings",
			    where, key);
			goto err;
		}
		s = (const char *)item->data.scalar.value;
		if ((p = strdup(s)) == NULL ||
		    (v = reallocarray(l.v, l.n + 1, sizeof(*v))) == NULL) {
			free(p);
			config_oom(ctx);
			goto err;
		}
		v[l.n++] = p;
		l.v = v;
		if (n->type != YAML_SEQUENCE_NODE)
			break;
	}
	config_list_clear(dst);
	*dst = l;
	return;
err:
	config_list_clear(&l);
}

/* A string field of a route into *dst; -1 (reported) when not a non-empty scalar. */
static int
config_route_str(struct config_ctx *ctx, const char *where, const char *key,
    yaml_node_t *n, char **dst)
{
	const char	*s;

	if (n->type != YAML_SCALAR_NODE || config_is_null(n) ||
	    n->data.scalar.length == 0) {
		config_err(ctx, "%s.%s: expected a non-empty string", where, key);
		return -1;
	}
	s = (const char *)n->data.scalar.value;
	if (strlen(s) != n->data.scalar.length) {
		config_err(ctx, "%s.%s: value contains a NUL byte", where, key);
		return -1;
	}
	return config_replace(ctx, dst, s);
}

static void
config_route(struct config_ctx *ctx, size_t idx, struct config_route *r,
    yaml_document_t *doc, yaml_node_t *map)
{
	yaml_node_pair_t	*p, *mp;
	yaml_node_t		*key, *val, *mk;
	const char		*name, *why;
	char			 where[64], q[CONFIG_QUOTE], *text = NULL;
	size_t			 m, nerr = ctx->nerr;
	int			 t, have_target = 0;

	snprintf(where, sizeof(where), "notify.routes[%zu]", idx);
	r->line = config_node_line(map);
	r->rate_n = 20;
	r->rate_ms = 60000;
	for (p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++) {
		key = yaml_document_get_node(doc, p->key);
		val = yaml_document_get_node(doc, p->value);
		ctx->line = config_node_line(key);
		if (key->type != YAML_SCALAR_NODE) {
			config_err(ctx, "%s: keys must be scalars", where);
			continue;
		}
		name = (const char *)key->data.scalar.value;
		ctx->line = config_node_line(val);
		if (strcmp(name, "name") == 0) {
			/* it names Redis keys, metric labels and log lines */
			if (config_route_str(ctx, where, name, val, &r->name) == 0 &&
			    (strlen(r->name) > 64 || strspn(r->name, "abcdefghijklmnopqrstuvwxyz"
			    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") != strlen(r->name)))
				config_err(ctx, "%s.name: %s: want 1 to 64 letters, digits, "
				    "'.', '_' or '-'", where,
				    config_quote(q, sizeof(q), r->name));
		} else if (strcmp(name, "url") == 0) {
			if (config_route_str(ctx, where, name, val, &r->url) == 0 &&
			    (why = config_target_url_why(r->url)) != NULL)
				config_err(ctx, "%s.url: bad URL %s: %s", where,
				    config_url_quote(q, sizeof(q), r->url), why);
		} else if (strcmp(name, "secret") == 0)
			config_route_str(ctx, where, name, val, &r->secret);
		else if (strcmp(name, "template") == 0)
			config_route_str(ctx, where, name, val, &r->tmpl);
		else if (strcmp(name, "target") == 0 || strcmp(name, "rate") == 0) {
			if (config_route_str(ctx, where, name, val, &text) == -1)
				continue;
			if (name[0] == 't') {
				for (t = 0; t < (int)UTIL_NELEM(config_target_names); t++)
					if (strcmp(text, config_target_names[t]) == 0)
						break;
				if (t == (int)UTIL_NELEM(config_target_names))
					config_err(ctx, "%s.target: unknown target %s "
					    "(want dingtalk, wecom, feishu, slack or "
					    "webhook)", where,
					    config_quote(q, sizeof(q), text));
				else {
					r->target = t;
					have_target = 1;
				}
			} else if (config_parse_rate(text, &r->rate_n, &r->rate_ms) == -1)
				config_err(ctx, "%s.rate: bad rate %s: want N/s, N/min "
				    "or N/h, e.g. 20/min", where,
				    config_quote(q, sizeof(q), text));
		} else if (strcmp(name, "match") == 0) {
			if (config_is_null(val))
				continue;
			if (val->type != YAML_MAPPING_NODE) {
				config_err(ctx, "%s.match: expected a mapping, got a %s",
				    where, config_node_kind(val));
				continue;
			}
			for (mp = val->data.mapping.pairs.start;
			    mp < val->data.mapping.pairs.top; mp++) {
				mk = yaml_document_get_node(doc, mp->key);
				ctx->line = config_node_line(mk);
				for (m = 0; m < CONFIG_MATCH_N; m++)
					if (mk->type == YAML_SCALAR_NODE &&
					    strcmp((const char *)mk->data.scalar.value,
					    config_match_names[m]) == 0)
						break;
				if (m == CONFIG_MATCH_N) {
					config_err(ctx, "%s.match: unknown key %s (want "
					    "type, severity, category, agent, shop or "
					    "queue)", where, mk->type == YAML_SCALAR_NODE ?
					    config_quote(q, sizeof(q),
					    (const char *)mk->data.scalar.value) : "?");
					continue;
				}
				config_route_match(ctx, where, config_match_names[m],
				    &r->match[m], doc,
				    yaml_document_get_node(doc, mp->value));
			}
		} else
			config_err(ctx, "%s: unknown key %s (want name, match, "
			    "target, url, secret, rate or template)", where,
			    config_quote(q, sizeof(q), name));
	}
	free(text);
	ctx->line = r->line;
	if (ctx->nerr != nerr)
		return;
	if (!have_target)
		config_err(ctx, "%s: missing target (dingtalk, wecom, feishu, slack "
		    "or webhook)", where);
	if (r->url == NULL)
		config_err(ctx, "%s: missing url", where);
	if (r->name == NULL) {
		snprintf(q, sizeof(q), "route-%zu", idx + 1);
		config_replace(ctx, &r->name, q);
	}
}

static void
config_set_routes(struct config_ctx *ctx, yaml_document_t *doc, yaml_node_t *n)
{
	struct config_notify	*nt = &ctx->cfg->notify;
	struct config_route	*r = NULL;
	yaml_node_item_t	*it;
	yaml_node_t		*item;
	size_t			 nr = 0, i, j, nerr = ctx->nerr;

	if (config_is_null(n))
		goto done;
	if (n->type != YAML_SEQUENCE_NODE) {
		config_err(ctx, "notify.routes: expected a list of routes, got a %s",
		    config_node_kind(n));
		return;
	}
	nr = (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
	if (nr > 0 && (r = calloc(nr, sizeof(*r))) == NULL) {
		config_oom(ctx);
		return;
	}
	for (it = n->data.sequence.items.start, i = 0;
	    it < n->data.sequence.items.top; it++, i++) {
		item = yaml_document_get_node(doc, *it);
		ctx->line = config_node_line(item);
		if (item->type != YAML_MAPPING_NODE) {
			config_err(ctx, "notify.routes[%zu]: expected a mapping, got "
			    "a %s", i, config_node_kind(item));
			continue;
		}
		config_route(ctx, i, &r[i], doc, item);
		for (j = 0; j < i && r[i].name != NULL; j++)
			if (r[j].name != NULL && strcmp(r[j].name, r[i].name) == 0)
				config_err(ctx, "notify.routes[%zu]: name %s is "
				    "notify.routes[%zu]'s too", i, r[i].name, j);
	}
	ctx->line = config_node_line(n);
	if (ctx->nerr != nerr) {
		config_routes_free(r, nr);
		return;
	}
done:
	config_routes_free(nt->routes, nt->nroutes);
	nt->routes = r;
	nt->nroutes = nr;
}

/* Applies one value node to one row (or a copy of one: a shop's keys). */
static void
config_set_value(struct config_ctx *ctx, const struct config_key *k,
    yaml_document_t *doc, yaml_node_t *n)
{
	const char		*s;

	if (k->type == CT_LIST)
		config_set_list(ctx, k, doc, n);
	else if (k->type == CT_ROUTES)
		config_set_routes(ctx, doc, n);
	else if (n->type != YAML_SCALAR_NODE)
		config_err(ctx, "%s: expected a %s, got a %s", k->path,
		    config_types[k->type].what, config_node_kind(n));
	else if (config_is_null(n))
		config_err(ctx, "%s: missing value (want a %s)", k->path,
		    config_types[k->type].what);
	else if ((s = config_scalar(ctx, k, n)) != NULL)
		config_types[k->type].set(ctx, k, s);
}

/* Applies one value node to one table row and records where it came from. */
static void
config_set_node(struct config_ctx *ctx, const struct config_key *k,
    yaml_document_t *doc, yaml_node_t *n)
{
	struct config_origin	*o = &ctx->origin[k - config_keys];
	size_t			 nerr = ctx->nerr;

	config_set_value(ctx, k, doc, n);
	o->seq = ++ctx->seq;
	o->line = ctx->line;
	o->ovr = ctx->ovr;
	o->bad = ctx->nerr != nerr;
}

static void	config_apply_mapping(struct config_ctx *, const char *,
		    yaml_document_t *, yaml_node_t *);
static void	config_set_shops(struct config_ctx *, yaml_document_t *,
		    yaml_node_t *);

/* path: a key path from the file or an override; n: its value. */
static void
config_apply(struct config_ctx *ctx, const char *path, yaml_document_t *doc,
    yaml_node_t *n)
{
	const struct config_key	*k;
	char			 q[CONFIG_QUOTE];

	ctx->line = config_node_line(n);
	/* "admin: HOST:PORT", design.md's form, is admin.listen */
	if (strcmp(path, "admin") == 0 && n->type == YAML_SCALAR_NODE)
		path = "admin.listen";
	if (strcmp(path, "shops") == 0)	/* not a row: keyed by the shops' ids */
		config_set_shops(ctx, doc, n);
	else if ((k = config_find(path)) != NULL)
		config_set_node(ctx, k, doc, n);
	else if (!config_is_section(path))
		config_err(ctx, "unknown key %s", config_quote(q, sizeof(q), path));
	else if (n->type == YAML_MAPPING_NODE)
		config_apply_mapping(ctx, path, doc, n);
	else if (!config_is_null(n))	/* "limits:" alone keeps the defaults */
		config_err(ctx, "%s: expected a mapping, got a %s", path,
		    config_node_kind(n));
}

static int
config_same_scalar(const yaml_node_t *a, const yaml_node_t *b)
{
	return a->type == YAML_SCALAR_NODE && b->type == YAML_SCALAR_NODE &&
	    a->data.scalar.length == b->data.scalar.length &&
	    memcmp(a->data.scalar.value, b->data.scalar.value,
	    a->data.scalar.length) == 0;
}

/* prefix: NULL at the top level, else the section's path. */
static void
config_apply_mapping(struct config_ctx *ctx, const char *prefix,
    yaml_document_t *doc, yaml_node_t *map)
{
	yaml_node_pair_t	*p, *prev;
	yaml_node_t		*key, *val;
	const char		*name;
	char			 path[256], q[CONFIG_QUOTE];
	int			 n;

	for (p = map->data.mapping.pairs.start;
	    p < map->data.mapping.pairs.top; p++) {
		key = yaml_document_get_node(doc, p->key);
		val = yaml_document_get_node(doc, p->value);
		if (key->type != YAML_SCALAR_NODE) {
			ctx->line = config_node_line(key);
			config_err(ctx, "keys must be scalars, got a %s",
			    config_node_kind(key));
			continue;
		}
		ctx->line = config_node_line(val);
		name = (const char *)key->data.scalar.value;
		n = snprintf(path, sizeof(path), "%s%s%s", prefix ? prefix : "",
		    prefix ? "." : "", name);
		/* dotted keys are for -o; the file nests, one spelling per key */
		if (n < 0 || (size_t)n >= sizeof(path) || *name == '\0' ||
		    strchr(name, '.') != NULL ||
		    strlen(name) != key->data.scalar.length) {
			config_err(ctx, "unknown key %s",
			    config_quote(q, sizeof(q), path));
			continue;
		}
		for (prev = map->data.mapping.pairs.start; prev < p; prev++)
			if (config_same_scalar(key,
			    yaml_document_get_node(doc, prev->key)))
				break;
		if (prev < p)
			config_err(ctx, "duplicate key %s",
			    config_quote(q, sizeof(q), path));
		config_apply(ctx, path, doc, val);
	}
}

/* --- shops: per-shop and per-queue settings (docs/configuration.md) ------ */

#define CONFIG_MAX_SHOPS	1000
#define CONFIG_MAX_QUEUES	64	/* per shop */
#define CONFIG_ID_MAX		64
/* ids go into Redis keys, metric labels and log lines as they are */
#define CONFIG_ID_CHARS		"abcdefghijklmnopqrstuvwxyz" \
				"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-"

/* The rows a shop or a queue may set (as profile:, sla: {...}), by index. */
static const char *const config_sla_keys[] = {
	"sla.profile", "sla.first_response", "sla.reply", "sla.warn_at",
	"sla.escalate", "sla.idle", "sla.cap", "sla.rate", "sla.hours",
	"sla.timezone", "sla.rate_scope",
};
#define CONFIG_SLA_NKEYS	UTIL_NELEM(config_sla_keys)
#define CONFIG_SLA_PROFILE	0	/* config_sla_keys[0] */

/*
 * What one shop or queue wrote itself, kept until the top level is final
 * (config_shops_resolve): its values go through the top level's rows into
 * sla, so they are checked exactly as the top level's are.
 */
struct config_level {
	struct config_sla	 sla;		/* the keys set; hours_text owned */
	size_t			 line[CONFIG_SLA_NKEYS];	/* where written; 0: not */
	unsigned		 set;		/* bit i: key i written and accepted */
	int			 bad;		/* a value was rejected */
	struct config_level	*queues;	/* a shop's, one per config_shop.queues[] */
	size_t			 nqueues;	/* allocated */
};

static void
config_levels_free(struct config_level *lv, size_t n)
{
	size_t	i;

	for (i = 0; i < n; i++) {
		config_list_clear(&lv[i].sla.hours_text);
		config_levels_free(lv[i].queues, lv[i].nqueues);
	}
	free(lv);
}

static void
config_shops_free(struct config_shop *s, size_t n)
{
	size_t	i, j;

	for (i = 0; i < n; i++) {
		free(s[i].id);
		free(s[i].name);
		config_list_clear(&s[i].sla.hours_text);
		config_list_clear(&s[i].rules);
		free(s[i].rules_line);
		config_list_clear(&s[i].rules_off);
		free(s[i].rules_off_line);
		for (j = 0; j < s[i].nqueues; j++) {
			free(s[i].queues[j].id);
			config_list_clear(&s[i].queues[j].sla.hours_text);
		}
		free(s[i].queues);
	}
	free(s);
}

static int
config_id_ok(const yaml_node_t *key)
{
	const char	*s = (const char *)key->data.scalar.value;
	size_t		 len = key->data.scalar.length;

	return len >= 1 && len <= CONFIG_ID_MAX && strlen(s) == len &&
	    strspn(s, CONFIG_ID_CHARS) == len;
}

/*
 * Whether the key of pair p in map is a shop's or queue's id not seen
 * before in map: 1, or 0 (reported at its line) to skip the pair.
 */
static int
config_new_id(struct config_ctx *ctx, yaml_document_t *doc, yaml_node_t *map,
    yaml_node_pair_t *p)
{
	yaml_node_pair_t	*prev;
	yaml_node_t		*key = yaml_document_get_node(doc, p->key);
	char			 q[CONFIG_QUOTE];

	ctx->line = config_node_line(key);
	if (key->type != YAML_SCALAR_NODE || !config_id_ok(key)) {
		config_err(ctx, "bad id %s: want 1 to %d letters, digits, "
		    "'.', '_' or '-'", key->type == YAML_SCALAR_NODE ?
		    config_quote(q, sizeof(q),
		    (const char *)key->data.scalar.value) : "(not a scalar)",
		    CONFIG_ID_MAX);
		return 0;
	}
	for (prev = map->data.mapping.pairs.start; prev < p; prev++)
		if (config_same_scalar(key, yaml_document_get_node(doc,
		    prev->key))) {
			config_err(ctx, "duplicate key %s", config_quote(q,
			    sizeof(q), (const char *)key->data.scalar.value));
			return 0;
		}
	return 1;
}

/*
 * One SLA key of a shop or queue: the row's setter, run on ctx->shadow so
 * that it writes lv->sla. name is the key as written ("hours" or
 * "sla.hours"), for the messages; setting a key twice, in either
 * spelling, is an error.
 */
static void
config_level_set(struct config_ctx *ctx, struct config_level *lv, size_t i,
    const char *name, yaml_document_t *doc, yaml_node_t *n)
{
	struct config_key	 k = *config_find(config_sla_keys[i]);
	struct config		*cfg = ctx->cfg;
	size_t			 nerr = ctx->nerr;
	char			 q[CONFIG_QUOTE];

	ctx->line = config_node_line(n);
	if (lv->line[i] != 0) {
		config_err(ctx, "duplicate key %s (set at line %zu too)",
		    config_quote(q, sizeof(q), name), lv->line[i]);
		return;
	}
	lv->line[i] = ctx->line;
	k.path = name;
	ctx->shadow->sla = lv->sla;		/* moved: the list too */
	ctx->cfg = ctx->shadow;
	config_set_value(ctx, &k, doc, n);
	ctx->cfg = cfg;
	lv->sla = ctx->shadow->sla;
	memset(&ctx->shadow->sla, 0, sizeof(ctx->shadow->sla));
	if (ctx->nerr != nerr)
		lv->bad = 1;
	else
		lv->set |= 1u << i;
}

/* A level's sla: mapping, key by key. */
static void
config_level_sla(struct config_ctx *ctx, struct config_level *lv,
    yaml_document_t *doc, yaml_node_t *map)
{
	yaml_node_pair_t	*p;
	yaml_node_t		*key;
	char			 path[64], q[CONFIG_QUOTE];
	size_t			 i;

	if (config_is_null(map))
		return;
	if (map->type != YAML_MAPPING_NODE) {
		config_err(ctx, "sla: expected a mapping, got a %s",
		    config_node_kind(map));
		return;
	}
	for (p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
	    p++) {
		key = yaml_document_get_node(doc, p->key);
		ctx->line = config_node_line(key);
		if (key->type != YAML_SCALAR_NODE) {
			config_err(ctx, "sla: keys must be scalars, got a %s",
			    config_node_kind(key));
			continue;
		}
		snprintf(path, sizeof(path), "sla.%s", key->data.scalar.value);
		for (i = 0; i < CONFIG_SLA_NKEYS; i++)
			if (strcmp(path, config_sla_keys[i]) == 0)
				break;
		if (i == CONFIG_SLA_NKEYS || strlen(path) != key->data.scalar.length + 4) {
			config_err(ctx, "unknown key %s", config_quote(q, sizeof(q),
			    path));
			continue;
		}
		config_level_set(ctx, lv, i, config_sla_keys[i], doc,
		    yaml_document_get_node(doc, p->value));
	}
}

/*
 * rules, rules_off: a string or a list of non-empty strings; word: each
 * one word (a rule id). dst and *dst_line (each item's line: the rule
 * book's errors about an item point at it) are replaced only when all is
 * well.
 */
static void
config_shop_list(struct config_ctx *ctx, const char *name, int word,
    struct config_list *dst, size_t **dst_line, yaml_document_t *doc,
    yaml_node_t *n)
{
	struct config_list	 l = { NULL, 0 };
	yaml_node_item_t	*it = NULL;
	yaml_node_t		*item;
	const char		*s;
	char			*c, **v, q[CONFIG_QUOTE];
	size_t			 i, nerr = ctx->nerr, *line = NULL, *nl;

	if (n->type == YAML_MAPPING_NODE) {
		config_err(ctx, "%s: expected a list of strings, got a mapping", name);
		return;
	}
	if (n->type == YAML_SEQUENCE_NODE)
		it = n->data.sequence.items.start;
	for (i = 0;; i++) {
		if (it != NULL) {
			if (it >= n->data.sequence.items.top)
				break;
			item = yaml_document_get_node(doc, *it++);
		} else if (i == 0 && !config_is_null(n))	/* one scalar: one item */
			item = n;
		else
			break;
		ctx->line = config_node_line(item);
		if (item->type != YAML_SCALAR_NODE || config_is_null(item)) {
			config_err(ctx, "%s[%zu]: expected a string, got a %s", name,
			    i, config_is_null(item) ? "null" : config_node_kind(item));
			continue;
		}
		s = (const char *)item->data.scalar.value;
		if (strlen(s) != item->data.scalar.length)
			config_err(ctx, "%s: value contains a NUL byte", name);
		else if (*s == '\0')
			config_err(ctx, "%s: empty string in list", name);
		else if (word && config_has_space(s))
			config_err(ctx, "%s: %s contains a space or control character",
			    name, config_quote(q, sizeof(q), s));
		else if (ctx->nerr == nerr) {
			if ((nl = reallocarray(line, l.n + 1, sizeof(*nl))) == NULL) {
				config_oom(ctx);
				break;
			}
			line = nl;
			if ((c = strdup(s)) == NULL ||
			    (v = reallocarray(l.v, l.n + 1, sizeof(*v))) == NULL) {
				free(c);
				config_oom(ctx);
				break;
			}
			line[l.n] = ctx->line;
			v[l.n++] = c;
			l.v = v;
		}
	}
	ctx->line = config_node_line(n);
	if (ctx->nerr != nerr) {
		config_list_clear(&l);
		free(line);
		return;
	}
	config_list_clear(dst);
	free(*dst_line);
	*dst = l;
	*dst_line = line;
}

static void	config_shop_queues(struct config_ctx *, struct config_shop *,
		    struct config_level *, yaml_document_t *, yaml_node_t *);

/*
 * A shop's mapping (shop != NULL) or a queue's: the SLA keys, and for a
 * shop its name, packs and queues. Errors are placed by ctx->where.
 */
static void
config_level_map(struct config_ctx *ctx, struct config_shop *shop,
    struct config_level *lv, yaml_document_t *doc, yaml_node_t *map)
{
	static const char *const shorthand[] = { "profile", "hours", "timezone" };
	yaml_node_pair_t	*p, *prev;
	yaml_node_t		*key, *val;
	const char		*name;
	char			 path[32], q[CONFIG_QUOTE];
	size_t			 i, j;

	if (config_is_null(map))		/* "tmall:" alone: all inherited */
		return;
	if (map->type != YAML_MAPPING_NODE) {
		config_err(ctx, "expected a mapping, got a %s", config_node_kind(map));
		lv->bad = 1;		/* what it meant is unknown: no cross-key checks */
		return;
	}
	for (p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
	    p++) {
		key = yaml_document_get_node(doc, p->key);
		val = yaml_document_get_node(doc, p->value);
		ctx->line = config_node_line(key);
		if (key->type != YAML_SCALAR_NODE) {
			config_err(ctx, "keys must be scalars, got a %s",
			    config_node_kind(key));
			continue;
		}
		name = (const char *)key->data.scalar.value;
		for (prev = map->data.mapping.pairs.start; prev < p; prev++)
			if (config_same_scalar(key,
			    yaml_document_get_node(doc, prev->key)))
				break;
		if (prev < p) {
			config_err(ctx, "duplicate key %s",
			    config_quote(q, sizeof(q), name));
			continue;
		}
		ctx->line = config_node_line(val);
		for (i = 0; i < UTIL_NELEM(shorthand); i++)
			if (strcmp(name, shorthand[i]) == 0)
				break;
		if (i < UTIL_NELEM(shorthand)) {
			snprintf(path, sizeof(path), "sla.%s", name);
			for (j = 0; strcmp(config_sla_keys[j], path) != 0; j++)
				;
			config_level_set(ctx, lv, j, name, doc, val);
		} else if (strcmp(name, "sla") == 0)
			config_level_sla(ctx, lv, doc, val);
		else if (shop != NULL && strcmp(name, "name") == 0) {
			if (val->type != YAML_SCALAR_NODE || config_is_null(val) ||
			    val->data.scalar.length == 0 ||
			    strlen((const char *)val->data.scalar.value) !=
			    val->data.scalar.length)
				config_err(ctx, "name: expected a non-empty string");
			else
				config_replace(ctx, &shop->name,
				    (const char *)val->data.scalar.value);
		} else if (shop != NULL && strcmp(name, "rules") == 0)
			config_shop_list(ctx, name, 0, &shop->rules,
			    &shop->rules_line, doc, val);
		else if (shop != NULL && strcmp(name, "rules_off") == 0)
			config_shop_list(ctx, name, 1, &shop->rules_off,
			    &shop->rules_off_line, doc, val);
		else if (shop != NULL && strcmp(name, "queues") == 0)
			config_shop_queues(ctx, shop, lv, doc, val);
		else {
			ctx->line = config_node_line(key);
			config_err(ctx, "unknown key %s (want %s)",
			    config_quote(q, sizeof(q), name), shop != NULL ?
			    "name, profile, hours, timezone, sla, rules, rules_off "
			    "or queues" : "profile, hours, timezone or sla");
		}
	}
}

static void
config_shop_queues(struct config_ctx *ctx, struct config_shop *shop,
    struct config_level *lv, yaml_document_t *doc, yaml_node_t *map)
{
	yaml_node_pair_t	*p;
	yaml_node_t		*key;
	struct config_queue	*qu;
	const char		*shop_where = ctx->where;
	char			 where[CONFIG_ID_MAX * 2 + 32];
	size_t			 n;

	if (config_is_null(map))
		return;
	snprintf(where, sizeof(where), "shops.%s.queues", shop->id);
	ctx->where = where;
	if (map->type != YAML_MAPPING_NODE) {
		config_err(ctx, "expected a mapping, got a %s", config_node_kind(map));
		goto out;
	}
	if (shop->queues != NULL) {		/* a second "queues:" was reported */
		goto out;
	}
	n = (size_t)(map->data.mapping.pairs.top - map->data.mapping.pairs.start);
	n = n > CONFIG_MAX_QUEUES ? CONFIG_MAX_QUEUES : n;
	if (n == 0)
		goto out;
	if ((shop->queues = calloc(n, sizeof(*shop->queues))) == NULL ||
	    (lv->queues = calloc(n, sizeof(*lv->queues))) == NULL) {
		config_oom(ctx);
		goto out;
	}
	lv->nqueues = n;
	for (p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
	    p++) {
		key = yaml_document_get_node(doc, p->key);
		ctx->where = where;
		where[strlen("shops.") + strlen(shop->id) + strlen(".queues")] = '\0';
		if (!config_new_id(ctx, doc, map, p))
			continue;
		if (shop->nqueues == n) {
			config_err(ctx, "at most %d queues in a shop",
			    CONFIG_MAX_QUEUES);
			break;
		}
		qu = &shop->queues[shop->nqueues];
		if ((qu->id = strdup((const char *)key->data.scalar.value)) == NULL) {
			config_oom(ctx);
			break;
		}
		qu->line = ctx->line;
		shop->nqueues++;
		snprintf(where + strlen(where), sizeof(where) - strlen(where),
		    ".%s", qu->id);
		config_level_map(ctx, NULL, &lv->queues[shop->nqueues - 1], doc,
		    yaml_document_get_node(doc, p->value));
	}
out:
	ctx->where = shop_where;
}

/*
 * shops: a mapping of shop id to its settings. Only what each shop and
 * queue wrote is kept here; their settings are resolved once the top
 * level is final (config_shops_resolve), overrides and profile included.
 */
static void
config_set_shops(struct config_ctx *ctx, yaml_document_t *doc, yaml_node_t *map)
{
	struct config		*cfg = ctx->cfg;
	struct config_shop	*shop;
	yaml_node_pair_t	*p;
	yaml_node_t		*key;
	char			 where[CONFIG_ID_MAX + 16];
	size_t			 n;

	/* a second "shops:" (reported as a duplicate) replaces the first */
	config_shops_free(cfg->shops, cfg->nshops);
	config_levels_free(ctx->levels, ctx->nlevels);
	cfg->shops = NULL;
	cfg->nshops = 0;
	ctx->levels = NULL;
	ctx->nlevels = 0;
	if (config_is_null(map))
		return;
	if (map->type != YAML_MAPPING_NODE) {
		config_err(ctx, "shops: expected a mapping of shop ids, got a %s",
		    config_node_kind(map));
		return;
	}
	n = (size_t)(map->data.mapping.pairs.top - map->data.mapping.pairs.start);
	n = n > CONFIG_MAX_SHOPS ? CONFIG_MAX_SHOPS : n;
	if (n == 0)
		return;
	if (ctx->shadow == NULL &&
	    (ctx->shadow = calloc(1, sizeof(*ctx->shadow))) == NULL) {
		config_oom(ctx);
		return;
	}
	if ((cfg->shops = calloc(n, sizeof(*cfg->shops))) == NULL ||
	    (ctx->levels = calloc(n, sizeof(*ctx->levels))) == NULL) {
		config_oom(ctx);
		return;
	}
	ctx->nlevels = n;
	for (p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
	    p++) {
		key = yaml_document_get_node(doc, p->key);
		ctx->where = "shops";
		if (!config_new_id(ctx, doc, map, p))
			continue;
		if (cfg->nshops == n) {
			config_err(ctx, "at most %d shops", CONFIG_MAX_SHOPS);
			break;
		}
		shop = &cfg->shops[cfg->nshops];
		if ((shop->id = strdup((const char *)key->data.scalar.value)) == NULL) {
			config_oom(ctx);
			break;
		}
		shop->line = ctx->line;
		cfg->nshops++;
		snprintf(where, sizeof(where), "shops.%s", shop->id);
		ctx->where = where;
		config_level_map(ctx, shop, &ctx->levels[cfg->nshops - 1], doc,
		    yaml_document_get_node(doc, p->value));
	}
	ctx->where = NULL;
	ctx->line = config_node_line(map);
}

/* libyaml stops at its first syntax error: that one is all we can report. */
static void
config_yaml_err(struct config_ctx *ctx, const yaml_parser_t *p,
    const char *buf, size_t len)
{
	const char	*problem = p->problem ? p->problem : "unknown error";

	switch (p->error) {
	case YAML_NO_ERROR:	/* libyaml's loader fails some allocations silently */
	case YAML_MEMORY_ERROR:
		config_oom(ctx);
		break;
	case YAML_READER_ERROR:
		ctx->line = buf ? yamlfile_error_line(p, buf, len) : 0;
		config_err(ctx, "YAML: %s at byte %zu", problem, p->problem_offset);
		break;
	default:
		ctx->line = p->problem_mark.line + 1;
		if (p->context != NULL)
			config_err(ctx, "YAML: %s (%s at line %zu)", problem,
			    p->context, p->context_mark.line + 1);
		else
			config_err(ctx, "YAML: %s", problem);
		break;
	}
}

static void
config_load_file(struct config_ctx *ctx, const char *path)
{
	yaml_parser_t	 parser;
	yaml_document_t	 doc;
	yaml_node_t	*root;
	const char	*why;
	char		*buf = NULL;
	size_t		 len = 0;

	ctx->line = 0;
	/* the whole file: a reader error's offset can then be turned into a line */
	if (util_read_file(path, CONFIG_MAX_FILE, &buf, &len) == -1) {
		if (errno == EFBIG)
			config_err(ctx, "larger than %llu bytes: not a configuration file",
			    CONFIG_MAX_FILE);
		else
			config_err(ctx, "cannot open: %s", strerror(errno));
		return;
	}
	switch (yamlfile_check(buf, len, &ctx->line, &why)) {
	case 0:
		break;
	case -1:
		config_err(ctx, "%s", why);
		free(buf);
		return;
	default:
		config_oom(ctx);
		free(buf);
		return;
	}
	if (!yaml_parser_initialize(&parser)) {
		free(buf);
		config_oom(ctx);
		return;
	}
	yaml_parser_set_input_string(&parser, (const unsigned char *)buf, len);
	if (!yaml_parser_load(&parser, &doc)) {
		config_yaml_err(ctx, &parser, buf, len);
		goto out;
	}
	if ((root = yaml_document_get_root_node(&doc)) != NULL) {
		ctx->line = config_node_line(root);
		if (root->type == YAML_MAPPING_NODE)
			config_apply_mapping(ctx, NULL, &doc, root);
		else if (!config_is_null(root))	/* a lone "---" */
			config_err(ctx, "top level: expected a mapping, got a %s",
			    config_node_kind(root));
	}
	/* a second document was refused before (yamlfile_check) */
	yaml_document_delete(&doc);
out:
	yaml_parser_delete(&parser);
	free(buf);
}

/* 1 when text is YAML whose document is a mapping ("{token: x}"), 0 not, -1 out of memory. */
static int
config_yaml_is_map(const char *text)
{
	yaml_parser_t	 parser;
	yaml_document_t	 doc;
	yaml_node_t	*root;
	int		 map = 0;

	if (!yaml_parser_initialize(&parser))
		return -1;
	yaml_parser_set_input_string(&parser, (const unsigned char *)text,
	    strlen(text));
	if (yaml_parser_load(&parser, &doc)) {
		root = yaml_document_get_root_node(&doc);
		map = root != NULL && root->type == YAML_MAPPING_NODE;
		yaml_document_delete(&doc);
	} else if (parser.error == YAML_MEMORY_ERROR ||
	    parser.error == YAML_NO_ERROR)
		map = -1;
	yaml_parser_delete(&parser);
	return map;
}

/*
 * One "-o key.path=value". The value is YAML ("[end,close]" is a list), but
 * a key that wants one value takes text that is not a YAML scalar as
 * written, so "-o listen=[::1]:8080" needs no extra quoting.
 */
static void
config_load_override(struct config_ctx *ctx, const char *ov)
{
	yaml_parser_t		 parser;
	yaml_document_t		 doc;
	yaml_node_t		*root = NULL;
	const struct config_key	*k;
	const char		*eq, *val, *why;
	char			*key = NULL, q[CONFIG_QUOTE];
	int			 loaded, verbatim, id, map;

	ctx->ovr = ov;
	ctx->line = 0;
	if ((eq = strchr(ov, '=')) == NULL) {
		config_err(ctx, "expected key.path=value");
		return;
	}
	if (eq == ov) {
		config_err(ctx, "missing key before '='");
		return;
	}
	if ((key = strndup(ov, (size_t)(eq - ov))) == NULL) {
		config_oom(ctx);
		return;
	}
	/* the shorthand, as in a file; a mapping is the section */
	if (strcmp(key, "admin") == 0 && (map = config_yaml_is_map(eq + 1)) != 1) {
		free(key);
		key = NULL;
		if (map == -1) {
			config_oom(ctx);
			return;
		}
		if ((key = strdup("admin.listen")) == NULL) {
			config_oom(ctx);
			return;
		}
	}
	/* one value per option cannot say a shop's many keys; the file can */
	if (strncmp(key, "shops", 5) == 0 && (key[5] == '\0' || key[5] == '.')) {
		config_err(ctx, "set shops in the file");
		goto out;
	}
	k = config_find(key);
	if (k == NULL && !config_is_section(key)) {
		config_err(ctx, "unknown key %s", config_quote(q, sizeof(q), key));
		goto out;
	}
	val = eq + 1;
	switch (yamlfile_check(val, strlen(val), &ctx->line, &why)) {
	case 0:
		break;
	case -1:
		ctx->line = 0;
		config_err(ctx, "%s", why);
		goto out;
	default:
		config_oom(ctx);
		goto out;
	}
	if (!yaml_parser_initialize(&parser)) {
		config_oom(ctx);
		goto out;
	}
	yaml_parser_set_input_string(&parser, (const unsigned char *)val,
	    strlen(val));
	loaded = yaml_parser_load(&parser, &doc);
	if (!loaded && (parser.error == YAML_MEMORY_ERROR ||
	    parser.error == YAML_NO_ERROR)) {
		config_oom(ctx);
		yaml_parser_delete(&parser);
		goto out;
	}
	root = loaded ? yaml_document_get_root_node(&doc) : NULL;
	verbatim = k != NULL && k->type != CT_LIST && k->type != CT_ROUTES &&
	    (!loaded || (root != NULL && root->type != YAML_SCALAR_NODE));
	if (!loaded && !verbatim) {
		config_yaml_err(ctx, &parser, NULL, 0);
		ctx->line = 0;
		yaml_parser_delete(&parser);
		goto out;
	}
	yaml_parser_delete(&parser);
	if (loaded && (root == NULL || verbatim)) {
		yaml_document_delete(&doc);
		root = NULL;
	}
	if (root == NULL) {
		/* empty text, or text used as written: one plain scalar */
		if (!yaml_document_initialize(&doc, NULL, NULL, NULL, 1, 1)) {
			config_oom(ctx);
			goto out;
		}
		if ((id = yaml_document_add_scalar(&doc, NULL,
		    (yaml_char_t *)(uintptr_t)val, -1,
		    YAML_PLAIN_SCALAR_STYLE)) == 0) {
			config_oom(ctx);
			goto done;
		}
		root = yaml_document_get_node(&doc, id);
	}
	config_apply(ctx, key, &doc, root);
	ctx->line = 0;
done:
	yaml_document_delete(&doc);
out:
	free(key);
}

/* Checks that involve two keys, reported where the later of them was set. */
static void
config_check_pair(struct config_ctx *ctx, const char *a, const char *b,
    int bad, const char *fmt, const char *va, const char *vb)
{
	const struct config_origin	*oa, *ob, *o;

	oa = &ctx->origin[config_find(a) - config_keys];
	ob = &ctx->origin[config_find(b) - config_keys];
	/* a rejected value already has its error; the default left in its place proves nothing */
	if (!bad || oa->bad || ob->bad)
		return;
	o = oa->seq >= ob->seq ? oa : ob;
	ctx->line = o->line;
	ctx->ovr = o->ovr;
	config_err(ctx, fmt, a, va, b, vb);
	ctx->ovr = NULL;
}

static struct config_origin *
config_origin(struct config_ctx *ctx, const char *path)
{
	return &ctx->origin[config_find(path) - config_keys];
}

/* Set by the file or an override, and accepted. */
static int
config_is_set(struct config_ctx *ctx, const char *path)
{
	const struct config_origin	*o = config_origin(ctx, path);

	return o->seq > 0 && !o->bad;
}

/* The next error goes where the later of a and b (b may be NULL) was set. */
static void
config_place(struct config_ctx *ctx, const char *a, const char *b)
{
	const struct config_origin	*o = config_origin(ctx, a), *ob;

	if (b != NULL && (ob = config_origin(ctx, b))->seq > o->seq)
		o = ob;
	ctx->line = o->line;
	ctx->ovr = o->ovr;
}

/* "redis://h:6379/2" names a database; "redis://h" and unix: URLs do not. */
static int
config_url_has_db(const char *url)
{
	const char	*p;

	return strncmp(url, "redis://", 8) == 0 &&
	    (p = strchr(url + 8, '/')) != NULL && p[1] != '\0';
}

/*
 * Where Redis is: redis.url or the sentinels, never both (a file that
 * names both would leave the reader guessing which one chatmond uses);
 * credentials only where they are sent.
 */
static void
config_check_redis(struct config_ctx *ctx)
{
	static const char *const sentinel_only[] = { "redis.master_name",
	    "redis.sentinel_username", "redis.sentinel_password" };
	const struct config_redis	*r = &ctx->cfg->redis;
	int				 sentinel;
	size_t				 i;

	/* a rejected list is not applied: it still says Sentinel was meant */
	sentinel = r->sentinels.n > 0 || config_origin(ctx, "redis.sentinels")->bad;
	if (r->sentinels.n > 0 && config_is_set(ctx, "redis.url")) {
		config_place(ctx, "redis.url", "redis.sentinels");
		config_err(ctx, "redis.url and redis.sentinels exclude each other: "
		    "with Sentinel the master's address comes from the sentinels "
		    "(remove redis.url; redis.db names the database)");
	}
	if (r->sentinels.n > 0 && r->master_name == NULL &&
	    !config_origin(ctx, "redis.master_name")->bad) {
		config_place(ctx, "redis.sentinels", NULL);
		config_err(ctx, "redis.sentinels needs redis.master_name (the name "
		    "the sentinels monitor the master by)");
	}
	for (i = 0; i < UTIL_NELEM(sentinel_only); i++)
		if (!sentinel && config_is_set(ctx, sentinel_only[i])) {
			config_place(ctx, sentinel_only[i], NULL);
			config_err(ctx, "%s is only used with redis.sentinels",
			    sentinel_only[i]);
		}
	if (config_is_set(ctx, "redis.username") && r->password == NULL &&
	    !config_origin(ctx, "redis.password")->bad) {
		config_place(ctx, "redis.username", NULL);
		config_err(ctx, "redis.username needs redis.password (AUTH "
		    "username password)");
	}
	if (config_is_set(ctx, "redis.sentinel_username") &&
	    r->sentinel_password == NULL &&
	    !config_origin(ctx, "redis.sentinel_password")->bad) {
		config_place(ctx, "redis.sentinel_username", NULL);
		config_err(ctx, "redis.sentinel_username needs "
		    "redis.sentinel_password");
	}
	if (!sentinel && config_is_set(ctx, "redis.db") &&
	    config_is_set(ctx, "redis.url") && config_url_has_db(r->url)) {
		config_place(ctx, "redis.db", "redis.url");
		config_err(ctx, "redis.db and the database of redis.url ('/N') "
		    "exclude each other: name it once");
	}
	ctx->ovr = NULL;
}

/* The checked Redis settings in the form the connections use. */
static void
config_redis(struct config_ctx *ctx)
{
	struct config_redis	*r = &ctx->cfg->redis;
	size_t			 i;

	memset(&r->target, 0, sizeof(r->target));
	if (r->sentinels.n == 0)
		config_parse_redis_url(r->url, &r->target);
	for (i = 0; i < r->sentinels.n && i < CONFIG_MAX_SENTINELS; i++)
		config_parse_addr(r->sentinels.v[i], &r->sentinel[i]);
	r->nsentinels = i;
	if (r->target.db == 0)
		r->target.db = (int)r->db;
	/* Sentinel means a replica to fail over to: make it hold every alert */
	if (r->nsentinels > 0 && !config_is_set(ctx, "redis.wait_replicas"))
		r->wait_replicas = 1;
}

/* Who may connect (docs/security.md): what one key needs of another. */
static void
config_check_access(struct config_ctx *ctx)
{
	const struct config	*c = ctx->cfg;

	if ((c->tls.cert == NULL) != (c->tls.key == NULL)) {
		config_place(ctx, c->tls.cert ? "tls.cert" : "tls.key", NULL);
		config_err(ctx, "tls.cert and tls.key go together: set both "
		    "or neither");
	}
	/* NULL only when the default's copy ran out of memory (reported) */
	if (c->tls.min_version != NULL &&
	    strcmp(c->tls.min_version, "1.2") != 0 &&
	    strcmp(c->tls.min_version, "1.3") != 0) {
		config_place(ctx, "tls.min_version", NULL);
		config_err(ctx, "tls.min_version: want \"1.2\" or \"1.3\"");
	}
	if (c->dashboard.tls && c->tls.cert == NULL) {
		config_place(ctx, "dashboard.tls", NULL);
		config_err(ctx, "dashboard.tls: needs tls.cert and tls.key (the "
		    "dashboard serves the same certificate)");
	}
	if (c->agent_id_jwt && c->auth.jwt_key == NULL) {
		config_place(ctx, "agent_id", NULL);
		config_err(ctx, "agent_id: a jwt: source needs auth.jwt_key (the "
		    "key tokens are verified with)");
	}
	/* a claim is read from the agent's verified token: there must be one */
	if (c->shop_id_name != NULL && c->shop_id_from == CONFIG_ID_CLAIM &&
	    !c->agent_id_jwt) {
		config_place(ctx, "shop_id", NULL);
		config_err(ctx, "shop_id: claim:NAME needs a jwt: agent_id (the "
		    "claim is read from the agent's verified token)");
	}
	if (c->queue_id_name != NULL && c->queue_id_from == CONFIG_ID_CLAIM &&
	    !c->agent_id_jwt) {
		config_place(ctx, "queue_id", NULL);
		config_err(ctx, "queue_id: claim:NAME needs a jwt: agent_id (the "
		    "claim is read from the agent's verified token)");
	}
	if (!c->agent_id_jwt && config_is_set(ctx, "auth.forward_token")) {
		config_place(ctx, "auth.forward_token", NULL);
		config_err(ctx, "auth.forward_token: only with a jwt: agent_id");
	}
	ctx->ovr = NULL;
}

/* The daily push: a time of day and the route it goes to, both or neither. */
static void
config_check_notify(struct config_ctx *ctx)
{
	struct config_notify	*n = &ctx->cfg->notify;
	uint16_t		 from, to;
	char			 w[32], q[CONFIG_QUOTE];
	size_t			 i;

	n->daily_at_min = -1;
	if (n->daily_at != NULL) {
		/* "HH:MM" is a service window's first half */
		snprintf(w, sizeof(w), "%.5s-23:59", n->daily_at);
		if (strlen(n->daily_at) != 5 ||
		    config_parse_hours(w, &from, &to) == -1) {
			config_place(ctx, "notify.daily_at", NULL);
			config_err(ctx, "notify.daily_at: bad time of day %s: want "
			    "HH:MM, e.g. 09:00", config_quote(q, sizeof(q),
			    n->daily_at));
		} else
			n->daily_at_min = from;
	}
	if ((n->daily_at == NULL) != (n->daily_route == NULL)) {
		config_place(ctx, n->daily_at ? "notify.daily_at" :
		    "notify.daily_route", NULL);
		config_err(ctx, "%s: needs %s", n->daily_at ? "notify.daily_at" :
		    "notify.daily_route", n->daily_at ? "notify.daily_route" :
		    "notify.daily_at");
	}
	if (n->daily_route == NULL)
		return;
	for (i = 0; i < n->nroutes; i++)
		if (strcmp(n->routes[i].name, n->daily_route) == 0)
			return;
	config_place(ctx, "notify.daily_route", NULL);
	config_err(ctx, "notify.daily_route: no route is named %s",
	    config_quote(q, sizeof(q), n->daily_route));
}

/* A listening host that is every address of the machine. */
static int
config_host_any(const char *h)
{
	return h[0] == '\0' || strcmp(h, "*") == 0 ||
	    strcmp(h, "0.0.0.0") == 0 || strcmp(h, "::") == 0;
}

static void
config_check(struct config_ctx *ctx)
{
	const struct config	*c = ctx->cfg;
	char			 va[300], vb[300];

	config_check_redis(ctx);
	config_check_access(ctx);
	config_check_notify(ctx);

	config_fmt_ms(va, sizeof(va), c->sla.escalate_ms);
	config_fmt_ms(vb, sizeof(vb), c->sla.reply_ms);
	config_check_pair(ctx, "sla.escalate", "sla.reply",
	    c->sla.escalate_ms <= c->sla.reply_ms,
	    "%s (%s) must be greater than %s (%s)", va, vb);
	/* a first round too must breach before it escalates */
	config_fmt_ms(vb, sizeof(vb), c->sla.first_response_ms);
	if (c->sla.escalate_ms > c->sla.reply_ms)
		config_check_pair(ctx, "sla.escalate", "sla.first_response",
		    c->sla.escalate_ms <= c->sla.first_response_ms,
		    "%s (%s) must be greater than %s (%s)", va, vb);

	/*
	 * Both would bind the same port: the second bind fails at start. So
	 * does any pair on one port where either host is every address (lws
	 * binds 0.0.0.0 as ::, both families).
	 */
	snprintf(va, sizeof(va), strchr(c->admin.host, ':') ? "[%s]:%d" :
	    "%s:%d", c->admin.host, c->admin.port);
	config_check_pair(ctx, "admin.listen", "listen",
	    strcmp(c->admin.host, c->listen.host) == 0 &&
	    c->admin.port == c->listen.port,
	    "%s (%s) must differ from %s%s", va, "");
	snprintf(vb, sizeof(vb), strchr(c->listen.host, ':') ? "[%s]:%d" :
	    "%s:%d", c->listen.host, c->listen.port);
	config_check_pair(ctx, "admin.listen", "listen",
	    strcmp(c->admin.host, c->listen.host) != 0 &&
	    c->admin.port == c->listen.port &&
	    (config_host_any(c->admin.host) || config_host_any(c->listen.host)),
	    "%s (%s) needs a port of its own beside %s (%s): a host of "
	    "0.0.0.0 or [::] takes the port on every address", va, vb);
}

static void	config_set_text(struct config_ctx *, const struct config_key *,
		    const char *);

static void
config_defaults(struct config_ctx *ctx)
{
	const struct config_key	*k;
	size_t			 i;

	for (i = 0; i < CONFIG_NKEYS; i++) {
		k = &config_keys[i];
		if (k->def != NULL)
			config_set_text(ctx, k, k->def);
	}
}

/* Sets a row from text (a list row: one item), as the defaults are written. */
static void
config_set_text(struct config_ctx *ctx, const struct config_key *k,
    const char *text)
{
	struct config_list	*dst;

	config_types[k->type].set(ctx, k, text);
	if (k->type == CT_LIST) {
		dst = FIELD(ctx->cfg, struct config_list, k->off);
		config_list_clear(dst);
		*dst = ctx->scratch;
		memset(&ctx->scratch, 0, sizeof(ctx->scratch));
	}
}

/*
 * The platforms' norms (domain.md), for the SLA keys the configuration did
 * not set itself.
 */
static const struct {
	int		 profile;
	const char	*key;
	const char	*value;
} config_profile_values[] = {
	/* Taobao/Tmall: 3-minute rate 08:00-23:00, rounds capped at 600 s */
	{ CONFIG_PROFILE_TAOBAO, "sla.first_response", "15s" },
	{ CONFIG_PROFILE_TAOBAO, "sla.reply", "30s" },
	{ CONFIG_PROFILE_TAOBAO, "sla.escalate", "180s" },
	{ CONFIG_PROFILE_TAOBAO, "sla.rate", "180s" },
	{ CONFIG_PROFILE_TAOBAO, "sla.cap", "600s" },
	{ CONFIG_PROFILE_TAOBAO, "sla.hours", "08:00-23:00" },
	{ CONFIG_PROFILE_TAOBAO, "sla.rate_scope", "rounds" },
	/* JD: a 30-second answer rate on the first question, 09:00-23:00 */
	{ CONFIG_PROFILE_JD, "sla.first_response", "30s" },
	{ CONFIG_PROFILE_JD, "sla.reply", "30s" },
	{ CONFIG_PROFILE_JD, "sla.escalate", "180s" },
	{ CONFIG_PROFILE_JD, "sla.rate", "30s" },
	{ CONFIG_PROFILE_JD, "sla.cap", "600s" },
	{ CONFIG_PROFILE_JD, "sla.hours", "09:00-23:00" },
	/* JD: the first question only; a chat within 10 minutes is the same one */
	{ CONFIG_PROFILE_JD, "sla.rate_scope", "first" },
	{ CONFIG_PROFILE_JD, "sla.idle", "10m" },
	/* Pinduoduo: 30-second answer, 3-minute manual reply rate, 08:00-23:00 */
	{ CONFIG_PROFILE_PDD, "sla.first_response", "30s" },
	{ CONFIG_PROFILE_PDD, "sla.reply", "180s" },
	{ CONFIG_PROFILE_PDD, "sla.escalate", "300s" },
	{ CONFIG_PROFILE_PDD, "sla.rate", "180s" },
	{ CONFIG_PROFILE_PDD, "sla.cap", "600s" },
	{ CONFIG_PROFILE_PDD, "sla.hours", "08:00-23:00" },
	/* Pinduoduo: per buyer and day */
	{ CONFIG_PROFILE_PDD, "sla.rate_scope", "buyer_day" },
};

static void
config_apply_profile(struct config_ctx *ctx)
{
	const struct config_key	*k;
	size_t			 i;

	for (i = 0; i < UTIL_NELEM(config_profile_values); i++) {
		if (config_profile_values[i].profile != ctx->cfg->sla.profile)
			continue;
		k = config_find(config_profile_values[i].key);
		if (ctx->origin[k - config_keys].seq == 0)	/* still the default */
			config_set_text(ctx, k, config_profile_values[i].value);
	}
}

/* The service windows as minutes, from the checked text. */
static void
config_sla_hours(struct config_sla *sla)
{
	size_t	i;

	for (i = 0; i < sla->hours_text.n && i < CONFIG_MAX_HOURS; i++)
		config_parse_hours(sla->hours_text.v[i],
		    &sla->hours[i].from_min, &sla->hours[i].to_min);
	sla->nhours = i;
}

/* --- shops: resolved once the top level is final -------------------------- */

static int	config_resolve(const struct config *, char **);

/*
 * The value profile gives key, as text; 0 when it leaves the key to the
 * level above. custom gives the defaults of the keys the other profiles
 * set (hours: none, always in service), so a shop can opt out of the
 * top level's profile.
 */
static int
config_profile_text(int profile, const char *key, const char **text)
{
	size_t	i;
	int	covered = 0;

	for (i = 0; i < UTIL_NELEM(config_profile_values); i++) {
		if (strcmp(config_profile_values[i].key, key) != 0)
			continue;
		covered = 1;
		if (config_profile_values[i].profile == profile) {
			*text = config_profile_values[i].value;
			return 1;
		}
	}
	if (!covered || profile != CONFIG_PROFILE_CUSTOM)
		return 0;
	*text = config_find(key)->def;		/* NULL: the empty list */
	return 1;
}

static int
config_list_copy(struct config_list *dst, const struct config_list *src)
{
	struct config_list	l = { NULL, 0 };

	if (src->n > 0 && (l.v = calloc(src->n, sizeof(*l.v))) == NULL)
		return -1;
	for (; l.n < src->n; l.n++)
		if ((l.v[l.n] = strdup(src->v[l.n])) == NULL) {
			config_list_clear(&l);
			return -1;
		}
	config_list_clear(dst);
	*dst = l;
	return 0;
}

/* Key k of src into dst (both struct config_sla); -1 on ENOMEM. */
static int
config_sla_copy(const struct config_key *k, struct config_sla *dst,
    const struct config_sla *src)
{
	size_t	off = k->off - OFF(sla);
	char	*d = (char *)dst + off;
	const char *s = (const char *)src + off;

	switch (k->type) {
	case CT_LIST:
		return config_list_copy(&dst->hours_text, &src->hours_text);
	case CT_DURATION:
		memcpy(d, s, sizeof(uint64_t));
		break;
	case CT_FRACTION:
		memcpy(d, s, sizeof(double));
		break;
	case CT_TIMEZONE:
		memcpy(d, s, sizeof(int32_t));
		break;
	default:			/* CT_PROFILE, CT_RATE_SCOPE */
		memcpy(d, s, sizeof(int));
		break;
	}
	return 0;
}

/*
 * A level's settings, key by key, nearest first: what it wrote; else,
 * when it names a profile, the profile's value; else the level above's
 * (parent, already resolved). out is zeroed first; -1 on ENOMEM.
 */
static int
config_level_resolve(struct config_ctx *ctx, const struct config_level *lv,
    const struct config_sla *parent, struct config_sla *out)
{
	struct config		*cfg = ctx->cfg;
	const struct config_key	*k;
	const char		*text;
	size_t			 i, nerr = ctx->nerr;

	*out = *parent;
	memset(&out->hours_text, 0, sizeof(out->hours_text));
	if (config_list_copy(&out->hours_text, &parent->hours_text) == -1)
		return -1;
	if (lv->set & 1u << CONFIG_SLA_PROFILE) {
		out->profile = lv->sla.profile;
		/* the texts go through the rows, as config_apply_profile's do */
		ctx->shadow->sla = *out;
		ctx->cfg = ctx->shadow;
		for (i = 0; i < CONFIG_SLA_NKEYS; i++) {
			if (i == CONFIG_SLA_PROFILE || (lv->set & 1u << i) ||
			    !config_profile_text(out->profile, config_sla_keys[i],
			    &text))
				continue;
			k = config_find(config_sla_keys[i]);
			if (text != NULL)
				config_set_text(ctx, k, text);
			else
				config_list_clear(FIELD(ctx->cfg, struct config_list,
				    k->off));
		}
		ctx->cfg = cfg;
		*out = ctx->shadow->sla;
		memset(&ctx->shadow->sla, 0, sizeof(ctx->shadow->sla));
		if (ctx->nerr != nerr)		/* only ever out of memory */
			return -1;
	}
	for (i = 0; i < CONFIG_SLA_NKEYS; i++)
		if ((lv->set & 1u << i) && config_sla_copy(
		    config_find(config_sla_keys[i]), out, &lv->sla) == -1)
			return -1;
	config_sla_hours(out);
	return 0;
}

/* The top level's cross-key checks, on a resolved shop or queue (ctx->where, ctx->line). */
static void
config_sla_check(struct config_ctx *ctx, const struct config_sla *sla)
{
	char	va[32], vb[32];

	config_fmt_ms(va, sizeof(va), sla->escalate_ms);
	if (sla->escalate_ms <= sla->reply_ms)
		config_err(ctx, "sla.escalate (%s) must be greater than sla.reply "
		    "(%s)", va, config_fmt_ms(vb, sizeof(vb), sla->reply_ms));
	else if (sla->escalate_ms <= sla->first_response_ms)
		config_err(ctx, "sla.escalate (%s) must be greater than "
		    "sla.first_response (%s)", va, config_fmt_ms(vb, sizeof(vb),
		    sla->first_response_ms));
}

/*
 * Every shop's and queue's settings from the final top level's, checked
 * as the top level's are, and the shops' packs found from the file's
 * directory. A top level whose SLA keys were rejected has its error: the
 * defaults left in their place would only add noise below it.
 */
static void
config_shops_resolve(struct config_ctx *ctx)
{
	struct config		*cfg = ctx->cfg;
	struct config_shop	*shop;
	struct config_level	*lv;
	char			 where[CONFIG_ID_MAX * 2 + 32];
	size_t			 i, j;
	int			 top_bad = 0;

	for (i = 0; i < CONFIG_SLA_NKEYS; i++)
		top_bad |= config_origin(ctx, config_sla_keys[i])->bad;
	for (i = 0; i < cfg->nshops; i++) {
		shop = &cfg->shops[i];
		lv = &ctx->levels[i];
		if (config_level_resolve(ctx, lv, &cfg->sla, &shop->sla) == -1)
			goto oom;
		for (j = 0; j < shop->rules.n; j++)
			if (config_resolve(cfg, &shop->rules.v[j]) == -1)
				goto oom;
		snprintf(where, sizeof(where), "shops.%s", shop->id);
		ctx->where = where;
		ctx->line = shop->line;
		if (!top_bad && !lv->bad)
			config_sla_check(ctx, &shop->sla);
		for (j = 0; j < shop->nqueues; j++) {
			if (config_level_resolve(ctx, &lv->queues[j], &shop->sla,
			    &shop->queues[j].sla) == -1)
				goto oom;
			snprintf(where, sizeof(where), "shops.%s.queues.%s", shop->id,
			    shop->queues[j].id);
			ctx->line = shop->queues[j].line;
			if (!top_bad && !lv->bad && !lv->queues[j].bad)
				config_sla_check(ctx, &shop->queues[j].sla);
		}
	}
	ctx->where = NULL;
	return;
oom:
	ctx->where = NULL;
	config_oom(ctx);
}

/*
 * A relative path in the file means relative to the file's directory, so a
 * configuration and its rules move together (/etc/chatmon/chatmond.yaml
 * with rules: rules.d reads /etc/chatmon/rules.d wherever chatmond starts).
 */
static int
config_resolve(const struct config *cfg, char **p)
{
	const char	*slash;
	char		*abs;
	size_t		 dlen, plen;

	if (cfg->file == NULL || (*p)[0] == '/' ||
	    (slash = strrchr(cfg->file, '/')) == NULL)
		return 0;
	dlen = (size_t)(slash - cfg->file) + 1;
	plen = strlen(*p) + 1;
	if ((abs = malloc(dlen + plen)) == NULL)
		return -1;
	memcpy(abs, cfg->file, dlen);
	memcpy(abs + dlen, *p, plen);
	free(*p);
	*p = abs;
	return 0;
}

/* config_resolve for a key that may be unset (NULL). */
static int
config_resolve_opt(const struct config *cfg, char **p)
{
	return *p == NULL ? 0 : config_resolve(cfg, p);
}

/* trusted_proxies, checked item by item as they were set, parsed. */
static void
config_trusted(struct config *cfg)
{
	const char	*why;
	size_t		 i;

	for (i = 0; i < cfg->trusted_proxies.n && i < CONFIG_MAX_PROXIES; i++)
		(void)access_cidr_parse(cfg->trusted_proxies.v[i],
		    &cfg->trusted[i], &why);
	cfg->ntrusted = i;
}

/*
 * A relative unix: socket in redis.url is the file's, as rules: is
 * (unix:../build/run/redis.sock in a checkout's conf/); it must still fit
 * a socket address once resolved.
 */
static void
config_resolve_socket(struct config_ctx *ctx)
{
	struct config	*cfg = ctx->cfg;
	char		*path, *url;

	if (cfg->redis.url == NULL || strncmp(cfg->redis.url, "unix:", 5) != 0 ||
	    cfg->redis.url[5] == '/' || config_origin(ctx, "redis.url")->bad)
		return;
	if ((path = strdup(cfg->redis.url + 5)) == NULL ||
	    config_resolve(cfg, &path) == -1 ||
	    asprintf(&url, "unix:%s", path) == -1) {
		free(path);
		config_oom(ctx);
		return;
	}
	free(path);
	free(cfg->redis.url);
	cfg->redis.url = url;
	if (strlen(url + 5) > CONFIG_SUN_PATH) {
		config_place(ctx, "redis.url", NULL);
		config_err(ctx, "unix socket path too long (max %d bytes) once "
		    "resolved against the file's directory: %s", CONFIG_SUN_PATH,
		    url + 5);
		ctx->ovr = NULL;
	}
}

/* What the load alone needed; the shadow's lists were always moved out. */
static void
config_load_done(struct config_ctx *ctx)
{
	config_list_clear(&ctx->scratch);
	config_levels_free(ctx->levels, ctx->nlevels);
	free(ctx->shadow);
	free(ctx);
}

/*
 * path may be NULL: the defaults and the overrides only. Returns NULL when
 * anything is wrong, after every check has had its say.
 */
struct config *
config_load(const char *path, char *const *overrides, size_t n_overrides,
    struct sbuf *errs)
{
	struct config_ctx	*ctx;
	struct config		*cfg;
	size_t			 i;

	/* the context holds a per-key array: keep it off the stack */
	if ((ctx = calloc(1, sizeof(*ctx))) == NULL ||
	    (cfg = calloc(1, sizeof(*cfg))) == NULL) {
		free(ctx);
		if (errs != NULL)
			sbuf_line(errs, "%s: out of memory", path ? path : "config");
		return NULL;
	}
	ctx->cfg = cfg;
	ctx->errs = errs;
	ctx->file = path != NULL ? path : "(defaults)";
	config_defaults(ctx);
	if (path != NULL) {
		if ((cfg->file = strdup(path)) == NULL)
			config_oom(ctx);
		else
			config_load_file(ctx, path);
	}
	for (i = 0; i < n_overrides; i++)
		config_load_override(ctx, overrides[i]);
	ctx->ovr = NULL;
	config_apply_profile(ctx);
	config_sla_hours(&cfg->sla);
	config_shops_resolve(ctx);
	config_resolve_socket(ctx);
	config_check(ctx);
	if (ctx->nerr > 0)
		goto err;
	config_redis(ctx);
	config_trusted(cfg);
	if (config_resolve(cfg, &cfg->rules) == -1 ||
	    config_resolve_opt(cfg, &cfg->model) == -1 ||
	    config_resolve(cfg, &cfg->dashboard.root) == -1 ||
	    config_resolve_opt(cfg, &cfg->dashboard.users) == -1 ||
	    config_resolve_opt(cfg, &cfg->tls.cert) == -1 ||
	    config_resolve_opt(cfg, &cfg->tls.key) == -1 ||
	    config_resolve_opt(cfg, &cfg->upstream_tls.ca) == -1 ||
	    config_resolve_opt(cfg, &cfg->notify.ca) == -1 ||
	    config_resolve_opt(cfg, &cfg->auth.jwt_key) == -1 ||
	    config_resolve_opt(cfg, &cfg->redis.spool) == -1) {
		config_oom(ctx);
		goto err;
	}
	/* where each key was set, for errors about the files they name */
	if ((cfg->key_line = calloc(CONFIG_NKEYS, sizeof(*cfg->key_line))) == NULL) {
		config_oom(ctx);
		goto err;
	}
	for (i = 0; path != NULL && i < CONFIG_NKEYS; i++)
		if (ctx->origin[i].seq != 0 && ctx->origin[i].ovr == NULL)
			cfg->key_line[i] = ctx->origin[i].line;
	config_load_done(ctx);
	return cfg;
err:
	config_load_done(ctx);
	config_free(cfg);
	return NULL;
}

void
config_free(struct config *cfg)
{
	const struct config_key	*k;
	size_t			 i;

	if (cfg == NULL)
		return;
	for (i = 0; i < CONFIG_NKEYS; i++) {
		k = &config_keys[i];
		switch (config_types[k->type].own) {
		case OWN_STR:
			free(*FIELD(cfg, char *, k->off));
			break;
		case OWN_LIST:
			config_list_clear(FIELD(cfg, struct config_list, k->off));
			break;
		case OWN_ROUTES:
			config_routes_free(cfg->notify.routes, cfg->notify.nroutes);
			break;
		}
	}
	config_shops_free(cfg->shops, cfg->nshops);
	free(cfg->key_line);
	free(cfg->file);
	free(cfg);
}

int
config_blame(const struct config *cfg, const char *key, struct sbuf *errs,
    size_t mark)
{
	const struct config_key	*k = config_find(key);
	struct sbuf		 out;
	const char		*p, *nl, *s;
	size_t			 line, klen = strlen(key);

	if (k == NULL || cfg->key_line == NULL || cfg->file == NULL ||
	    (line = cfg->key_line[k - config_keys]) == 0 || mark >= errs->len)
		return 0;
	sbuf_init(&out);
	if (sbuf_append(&out, errs->s, mark) == -1)
		return -1;
	for (p = errs->s + mark; *p != '\0'; p = *nl ? nl + 1 : nl) {
		if ((nl = strchr(p, '\n')) == NULL)
			nl = p + strlen(p);
		s = p;
		if ((size_t)(nl - p) > klen && strncmp(p, key, klen) == 0 &&
		    p[klen] == ' ')
			s += klen + 1;
		if (sbuf_line(&out, "%s:%zu: %s: %.*s", cfg->file, line, key,
		    (int)(nl - s), s) == -1) {
			sbuf_free(&out);
			return -1;
		}
	}
	/* as many lines as before, each in its place */
	out.lines = errs->lines;
	sbuf_free(errs);
	*errs = out;
	return 0;
}

const struct config_shop *
config_shop_find(const struct config *cfg, const char *id)
{
	size_t	i;

	for (i = 0; i < cfg->nshops; i++)
		if (strcmp(cfg->shops[i].id, id) == 0)
			return &cfg->shops[i];
	return NULL;
}

const struct config_sla *
config_sla_for(const struct config *cfg, const char *shop, const char *queue)
{
	const struct config_shop	*s;
	size_t				 i;

	if (*shop == '\0' || (s = config_shop_find(cfg, shop)) == NULL)
		return &cfg->sla;
	for (i = 0; *queue != '\0' && i < s->nqueues; i++)
		if (strcmp(s->queues[i].id, queue) == 0)
			return &s->queues[i].sla;
	return &s->sla;
}
