/* config: chatmond.yaml parsed into a plain struct; every error reported as FILE:LINE: message. */
#ifndef CHATMON_CONFIG_H
#define CHATMON_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "chatmon/access.h"
#include "chatmon/util.h"

struct config_addr {			/* "host:port", "[v6]:port" */
	char	host[256];		/* numeric address or name, no brackets */
	int	port;			/* 1..65535 */
};

struct config_ws_url {			/* ws://host[:port][/path][?query] */
	int	tls;			/* 1 for wss:// */
	char	host[256];
	int	port;			/* default 80 (ws) or 443 (wss) */
	char	path[1024];		/* starts with '/', query included */
};

enum config_agent_id_from {
	CONFIG_AGENT_ID_QUERY,		/* agent_id: query:NAME */
	CONFIG_AGENT_ID_HEADER,		/* agent_id: header:NAME */
	CONFIG_ID_CLAIM,		/* shop_id, queue_id: claim:NAME (the agent's token) */
};	/* agent_id's may be prefixed jwt: (config.agent_id_jwt) */

struct config_list {			/* a YAML sequence of strings */
	char	**v;
	size_t	  n;
};

#define CONFIG_MAX_PROXIES	32

struct config_tls {			/* the listening side: wss:// when cert is set */
	char	*cert;			/* PEM: the certificate, then any chain */
	char	*key;			/* PEM private key */
	char	*min_version;		/* "1.2" or "1.3" */
};

struct config_upstream_tls {		/* a wss:// upstream */
	char	*ca;			/* PEM CA bundle; NULL: the system's */
	int	 verify;		/* check the certificate and the host name */
};

struct config_auth {			/* agent_id: jwt:... */
	char	*jwt_key;		/* HS256 secret, PEM public key or JWKS file */
	char	*jwt_claim;		/* the claim that is the agent id */
	char	*jwt_audience;		/* checked when set */
	char	*jwt_issuer;		/* checked when set */
	uint64_t jwt_leeway_ms;		/* clock skew allowed on exp and nbf */
	int	 forward_token;		/* pass the token on to the backend */
};

struct config_protocol {
	char	*type;			/* JSON pointers (RFC 6901), each starts with '/' */
	char	*conversation;
	char	*text;
	struct config_list message_types;
	struct config_list end_types;
	char	*robot;			/* optional: a true value marks a robot reply (NULL: none) */
	char	*nickname;		/* optional: the buyer's nickname on a customer turn (NULL: none) */
	char	*shop;			/* optional: the shop a turn belongs to (NULL: none) */
	char	*queue;			/* optional: the queue within the shop (NULL: none) */
	int	 binary_pass;		/* binary messages relayed unread (protocol.binary: pass) */
};

struct config_redis_target {		/* a parsed redis.url */
	char	 host[256];		/* "" for a unix socket */
	int	 port;
	char	 path[108];		/* the unix socket, or "" */
	int	 db;
};

#define CONFIG_MAX_SENTINELS	16

/*
 * Where Redis is: redis.url, or (nsentinels > 0) the master that the
 * sentinels name master_name, found again after every loss. Exactly one
 * of the two is configured; target.db is the database either way.
 */
struct config_redis {
	char	*url;			/* redis://host:port[/db] or unix:/path */
	struct config_redis_target target;	/* from url; host "" with Sentinel */
	uint64_t db;			/* redis.db, as set (target.db is the one used) */
	char	*username;		/* optional: AUTH username password (an ACL user) */
	char	*password;		/* optional: AUTH (NULL: none) */
	struct config_list sentinels;	/* as written, "host:port" each */
	struct config_addr sentinel[CONFIG_MAX_SENTINELS];	/* parsed */
	size_t	 nsentinels;		/* 0: no Sentinel */
	char	*master_name;		/* the name the sentinels know the master by */
	char	*sentinel_username;	/* optional: AUTH to the sentinels */
	char	*sentinel_password;
	uint64_t wait_replicas;		/* an alert is written when this many replicas have it */
	uint64_t wait_timeout_ms;	/* how long WAIT waits for them */
	char	*prefix;		/* put before the channel and stream names; "" none */
	uint64_t outbox;		/* alerts kept in memory while Redis is away */
	uint64_t outbox_bytes;		/* and their bytes at most */
	char	*spool;			/* optional file they spill to; relative to the config */
	uint64_t spool_max;		/* bytes */
	uint64_t timeout_ms;		/* a command without a reply this long: Redis is hung */
	uint64_t fold_ms;		/* identical alerts within this are folded; 0 off */
	uint64_t snapshot_ms;		/* who waits and the day's figures to Redis; 0 off */
	uint64_t takeover_ms;		/* a deadline its owner left this long is raised by another instance; 0: conversation state not in Redis */
	char	*channel;
	char	*stream;
	uint64_t stream_maxlen;
};

#define CONFIG_MAX_HOURS	8

enum config_profile {
	CONFIG_PROFILE_CUSTOM,		/* design.md's defaults, always in service */
	CONFIG_PROFILE_TAOBAO,
	CONFIG_PROFILE_JD,
	CONFIG_PROFILE_PDD,
};

struct config_sla {			/* durations in milliseconds */
	int	 profile;		/* enum config_profile: fills the keys not set */
	uint64_t first_response_ms;
	uint64_t reply_ms;
	double	 warn_at;		/* 0 < warn_at < 1 */
	uint64_t escalate_ms;
	uint64_t idle_ms;		/* a conversation with no turn this long ends */
	uint64_t cap_ms;		/* a round counts at most this in the figures */
	uint64_t rate_ms;		/* the N-minute reply rate's N */
	int	 rate_scope;		/* what it is the share of (enum sla_rate_scope) */
	struct config_list hours_text;	/* as written: "08:00-23:00" */
	struct {
		uint16_t from_min;	/* minutes after midnight */
		uint16_t to_min;	/* 1..1440; below from_min: past midnight */
	} hours[CONFIG_MAX_HOURS];
	size_t	 nhours;		/* 0: always in service */
	int32_t	 utc_offset_min;	/* sla.timezone */
};

/* A queue of a shop (docs/configuration.md, "Many shops"). */
struct config_queue {
	char	*id;
	struct config_sla sla;		/* resolved: queue, else the shop's */
	size_t	 line;
};

/* A shop: its SLA settings, its extra rule packs and its queues. */
struct config_shop {
	char	*id;
	char	*name;			/* display name; NULL: none */
	struct config_sla sla;		/* resolved: the shop's, and any queue not listed */
	struct config_list rules;	/* extra packs, resolved against the config's directory */
	size_t	*rules_line;		/* rules.v[i]'s line in the file */
	struct config_list rules_off;	/* rule ids switched off in this shop */
	size_t	*rules_off_line;	/* rules_off.v[i]'s line in the file */
	struct config_queue *queues;
	size_t	 nqueues;
	size_t	 line;
};

struct config_window {			/* rules that match across a speaker's turns */
	uint64_t turns;			/* the current one included */
	uint64_t time_ms;		/* how far back a turn still counts */
	uint64_t bytes;			/* of each earlier turn kept */
};

struct config_dashboard {		/* chatmon dashboard */
	struct config_addr listen;
	char	*token;			/* optional: the feed needs ?token= */
	char	*users;			/* optional: logins (chatmon passwd); absolute */
	uint64_t session_ttl_ms;	/* a login's whole life */
	int	 tls;			/* https with tls.cert and tls.key */
	char	*root;			/* the page's files; relative to the config */
	uint64_t history;		/* alerts kept for pages that (re)connect */
	struct config_list allowed_origins;	/* besides the page's own */
	char	*public_url;		/* where people open it; links in pushed alerts */
};

struct config_history {		/* each conversation's last turns in Redis */
	uint64_t turns;			/* kept per conversation; 0: none written */
	uint64_t ttl_ms;		/* a conversation's list expires this long after its last turn */
};

/* chatmon notify: where alerts are pushed (docs/notify.md) */
enum config_target {
	CONFIG_TARGET_DINGTALK,
	CONFIG_TARGET_WECOM,
	CONFIG_TARGET_FEISHU,
	CONFIG_TARGET_SLACK,
	CONFIG_TARGET_WEBHOOK,
};

/* What a route's match: mapping may test, in this order. */
enum config_match {
	CONFIG_MATCH_TYPE,
	CONFIG_MATCH_SEVERITY,
	CONFIG_MATCH_CATEGORY,
	CONFIG_MATCH_AGENT,
	CONFIG_MATCH_SHOP,
	CONFIG_MATCH_QUEUE,
	CONFIG_MATCH_N,
};

struct config_route {
	char	*name;			/* unique; "route-N" when not given */
	struct config_list match[CONFIG_MATCH_N];	/* empty: any */
	int	 target;		/* enum config_target */
	char	*url;			/* https://, or http:// to a loopback host */
	char	*secret;		/* NULL: nothing signed */
	uint32_t rate_n;		/* rate_n messages per rate_ms */
	uint64_t rate_ms;
	char	*tmpl;			/* NULL: the default text */
	size_t	 line;			/* where it was written, for later errors */
};

struct config_notify {
	struct config_addr admin;	/* its /metrics and /healthz */
	char	*group;			/* the consumer group */
	char	*consumer;		/* NULL: HOST-PID-RANDOM, the process's own */
	uint64_t timeout_ms;		/* one request */
	uint64_t attempts;		/* failed tries before the dead letters */
	uint64_t backoff_ms;		/* the first retry's wait */
	uint64_t claim_idle_ms;		/* another consumer's entries taken over */
	uint64_t consumer_gone_ms;	/* a consumer idle this long, holding nothing, deleted */
	uint64_t limited_pause_ms;	/* a route told it sends too much waits; 0: pushmsg_limited_pause */
	uint64_t max_waiting;		/* alerts held for the routes before reading pauses */
	uint64_t max_waiting_bytes;	/* and what they cost (pushd.c: PD_ITEM_OVERHEAD) */
	char	*ca;			/* trusted besides the system store */
	char	*dead_letter;		/* stream; redis.prefix in front */
	char	*daily_at;		/* "HH:MM" as written; NULL: no daily push */
	int	 daily_at_min;		/* parsed; -1 without daily_at */
	char	*daily_route;		/* the route it goes to */
	struct config_route *routes;
	size_t	 nroutes;
};

struct config_report {
	uint64_t retention_days;	/* day aggregates kept in Redis */
};

struct config_notes {			/* supervisors' whisper notes to agents */
	uint64_t ttl_ms;		/* how long a note waits for an agent who is not connected */
};

struct config_limits {
	uint64_t max_message;		/* bytes; larger message -> close 1009 */
	uint64_t queue_bytes;		/* per direction; past it the producer is paused */
	uint64_t connect_timeout_ms;	/* upstream connect + handshake */
	uint64_t shutdown_grace_ms;	/* SIGTERM: how long sessions get to close */
	uint64_t max_connections;	/* agent connections, handshakes included */
	uint64_t max_connections_per_ip;	/* from one address; 0: no limit */
	uint64_t handshake_timeout_ms;	/* accept to upgraded */
	uint64_t message_timeout_ms;	/* first frame of a message to its last */
	uint64_t stall_timeout_ms;	/* a side that takes nothing of what waits for it */
};

/*
 * The whole configuration. Every string is owned by the config and freed by
 * config_free; all keys have defaults (design.md's example values), so an
 * empty file is a valid configuration.
 */
struct config {
	char	*file;			/* path it was loaded from */
	size_t	*key_line;		/* by key: its line in file; 0 default or -o (config_blame) */
	struct config_addr listen;	/* listen: 127.0.0.1:8080 */
	int	 listen_reuseport;	/* share listen with other processes (SO_REUSEPORT) */
	char	*upstream;		/* upstream: ws://127.0.0.1:9000/ (as written) */
	struct config_ws_url upstream_url;
	enum config_agent_id_from agent_id_from;	/* agent_id: query:agent */
	char	*agent_id_name;
	int	 agent_id_jwt;		/* agent_id: jwt:...: the value is a token */
	enum config_agent_id_from shop_id_from;	/* shop_id: query:|header:|claim: */
	char	*shop_id_name;		/* NULL: the agent's connection names no shop */
	enum config_agent_id_from queue_id_from;
	char	*queue_id_name;		/* NULL: no queue */
	struct config_shop *shops;
	size_t	 nshops;
	int	 shops_refuse;		/* shops_unknown: refuse (else default) */
	struct config_auth auth;
	struct config_tls tls;
	struct config_upstream_tls upstream_tls;
	struct config_list allowed_origins;	/* agents' Origin; empty: any */
	struct config_list trusted_proxies;	/* addresses or CIDRs, as written */
	struct access_cidr trusted[CONFIG_MAX_PROXIES];	/* parsed */
	size_t	 ntrusted;
	struct config_protocol protocol;
	struct config_redis redis;
	struct config_sla sla;
	char	*rules;			/* rules: conf/rules.d */
	struct config_addr admin;	/* admin.listen (or admin:): 127.0.0.1:9090 */
	char	*admin_token;		/* admin.token: bearer token for non-loopback clients */
	struct config_dashboard dashboard;
	struct config_window window;
	struct config_history history;
	struct config_notes notes;
	struct config_notify notify;
	struct config_report report;
	char	*model;			/* the n-gram model's file; NULL: none */
	double	 model_veto;		/* a block stands only at this probability; 0: always */
	struct config_limits limits;
	int	 log_level;		/* log.level: info (enum log_level) */
	int	 log_json;		/* log.format: json (else text) */
};

/*
 * Loads path, then applies overrides ("key.path=value", the value parsed as
 * a YAML scalar or flow sequence, e.g. "protocol.end_types=[end,close]").
 * Returns a new config owned by the caller, or NULL with every error
 * appended to errs as one line each: "FILE:LINE: message" for the file,
 * "-o key.path=value: message" for an override.
 */
struct config *config_load(const char *path, char *const *overrides,
    size_t n_overrides, struct sbuf *errs);
void	config_free(struct config *);
/*
 * Puts the error lines errs got since mark (its length before a key's
 * file was read: tls.cert, model…) where that key was set: each becomes
 * "FILE:LINE: KEY: what it said" (a line that began "KEY " loses it), so
 * that an error about a file the configuration names points at the line
 * naming it. Nothing when the key took its default or came from -o. -1
 * on ENOMEM (errs as it was).
 */
int	config_blame(const struct config *, const char *key, struct sbuf *errs,
	    size_t mark);

/* Parsers shared with the tool; 0 or -1. */
int	config_parse_size(const char *, uint64_t *);	/* 1048576, 512KiB, 1MiB, 1GiB, 10kB, 1MB */
int	config_parse_duration_ms(const char *, uint64_t *);	/* 250ms, 15s, 3m, 1h, 1.5s, bare seconds */
int	config_parse_addr(const char *, struct config_addr *);
int	config_parse_ws_url(const char *, struct config_ws_url *);
int	config_parse_hours(const char *, uint16_t *from_min, uint16_t *to_min);	/* "08:00-23:00" */
int	config_parse_redis_url(const char *, struct config_redis_target *);
int	config_parse_timezone(const char *, int32_t *offset_min);	/* "+08:00", "UTC", "Asia/Shanghai" */
const char *config_profile_name(int);
/* The shop with this id, or NULL. */
const struct config_shop *config_shop_find(const struct config *, const char *id);
/* The SLA settings of (shop, queue), "" for none: the queue's, else the shop's, else the top level's. */
const struct config_sla *config_sla_for(const struct config *, const char *shop,
	    const char *queue);
const char *config_target_name(int);
extern const char *const config_match_names[CONFIG_MATCH_N];	/* "type", ... */

#endif
