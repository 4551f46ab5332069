/* test_config: config_load on good and bad files and overrides; the value parsers. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "chatmon/config.h"
#include "chatmon/log.h"
#include "chatmon/util.h"

#define MAX_FILES	32

#if defined(__SANITIZE_ADDRESS__)
#define NO_ALLOC_HOOKS	1	/* ASan owns malloc */
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define NO_ALLOC_HOOKS	1
#endif
#endif

#ifndef NO_ALLOC_HOOKS
/*
 * Allocation-failure injection: glibc lets a program replace malloc, and
 * libyaml and strdup come through here too. fail_in = n fails the n-th
 * allocation from now; live counts what was allocated while counting and
 * not yet freed, a leak check that works without valgrind.
 */
extern void	*__libc_malloc(size_t);
extern void	*__libc_calloc(size_t, size_t);
extern void	*__libc_realloc(void *, size_t);
extern void	 __libc_free(void *);

static long	 fail_in;
static long	 live;
static int	 counting;

static int
alloc_fails(void)
{
	if (fail_in > 0 && --fail_in == 0) {
		errno = ENOMEM;
		return 1;
	}
	return 0;
}

void *
malloc(size_t n)
{
	void	*p;

	if (alloc_fails())
		return NULL;
	if ((p = __libc_malloc(n)) != NULL && counting)
		live++;
	return p;
}

void *
calloc(size_t n, size_t sz)
{
	void	*p;

	if (alloc_fails())
		return NULL;
	if ((p = __libc_calloc(n, sz)) != NULL && counting)
		live++;
	return p;
}

void *
realloc(void *old, size_t n)
{
	void	*p;

	if (alloc_fails())
		return NULL;
	if ((p = __libc_realloc(old, n)) != NULL && old == NULL && counting)
		live++;
	return p;
}

void
free(void *p)
{
	if (p != NULL && counting)
		live--;
	__libc_free(p);
}
#endif

static char	 tmpdir[] = "/tmp/test_config.XXXXXX";
static char	*files[MAX_FILES];
static size_t	 nfiles;

static int
group_setup(void **state)
{
	(void)state;
	return mkdtemp(tmpdir) == NULL ? -1 : 0;
}

static int
group_teardown(void **state)
{
	size_t	 i;

	(void)state;
	for (i = 0; i < nfiles; i++) {
		unlink(files[i]);
		rmdir(files[i]);	/* the directory case */
		free(files[i]);
	}
	return rmdir(tmpdir);
}

/* A path in the temp directory, removed at teardown. */
static const char *
tmp_path(const char *name)
{
	char	*p;
	size_t	 i;

	for (i = 0; i < nfiles; i++)
		if (strcmp(strrchr(files[i], '/') + 1, name) == 0)
			return files[i];
	assert_true(nfiles < MAX_FILES);
	assert_true(asprintf(&p, "%s/%s", tmpdir, name) > 0);
	files[nfiles++] = p;
	return p;
}

static const char *
write_file(const char *name, const char *text, size_t len)
{
	const char	*path = tmp_path(name);
	FILE		*f;

	assert_non_null(f = fopen(path, "w"));
	assert_int_equal(fwrite(text, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
	return path;
}

/* Loads text as a file; errs gets the messages. */
static struct config *
load(const char *text, char *const *ov, size_t nov, struct sbuf *errs,
    const char **pathp)
{
	const char	*path = write_file("c.yaml", text, strlen(text));

	if (pathp != NULL)
		*pathp = path;
	return config_load(path, ov, nov, errs);
}

/* expected uses '@' for the file's path. */
static void
assert_errs(const struct sbuf *errs, const char *path, const char *expected,
    const char *name)
{
	struct sbuf	 want;
	const char	*p;

	sbuf_init(&want);
	for (p = expected; *p != '\0'; p++) {
		if (*p == '@')
			sbuf_printf(&want, "%s", path);
		else
			sbuf_append(&want, p, 1);
	}
	if (strcmp(sbuf_str(errs), sbuf_str(&want)) != 0)
		print_message("case %s\n", name);
	assert_string_equal(sbuf_str(errs), sbuf_str(&want));
	sbuf_free(&want);
}

static void
assert_defaults(const struct config *c)
{
	assert_string_equal(c->listen.host, "127.0.0.1");
	assert_int_equal(c->listen.port, 8080);
	assert_int_equal(c->listen_reuseport, 0);
	/* issue 15: history on by default, notes wait ten minutes */
	assert_int_equal(c->history.turns, 50);
	assert_int_equal(c->history.ttl_ms, 24 * 3600 * 1000);
	assert_int_equal(c->notes.ttl_ms, 600000);
	assert_null(c->protocol.nickname);
	assert_int_equal(c->protocol.binary_pass, 0);	/* protocol.binary: inspect */
	assert_string_equal(c->upstream, "ws://127.0.0.1:9000/");
	assert_int_equal(c->upstream_url.tls, 0);
	assert_string_equal(c->upstream_url.host, "127.0.0.1");
	assert_int_equal(c->upstream_url.port, 9000);
	assert_string_equal(c->upstream_url.path, "/");
	assert_int_equal(c->agent_id_from, CONFIG_AGENT_ID_QUERY);
	assert_string_equal(c->agent_id_name, "agent");
	assert_string_equal(c->protocol.type, "/type");
	assert_string_equal(c->protocol.conversation, "/conversation");
	assert_string_equal(c->protocol.text, "/text");
	assert_int_equal(c->protocol.message_types.n, 1);
	assert_string_equal(c->protocol.message_types.v[0], "message");
	assert_int_equal(c->protocol.end_types.n, 1);
	assert_string_equal(c->protocol.end_types.v[0], "end");
	assert_string_equal(c->redis.url, "redis://127.0.0.1:6379");
	assert_string_equal(c->redis.channel, "chatmon:alerts");
	assert_string_equal(c->redis.stream, "chatmon:alerts:log");
	assert_int_equal(c->redis.stream_maxlen, 100000);
	assert_int_equal(c->sla.first_response_ms, 15000);
	assert_int_equal(c->sla.reply_ms, 30000);
	assert_true(c->sla.warn_at > 0.7999 && c->sla.warn_at < 0.8001);
	assert_true(c->model_veto > 0.1499 && c->model_veto < 0.1501);
	assert_int_equal(c->sla.escalate_ms, 180000);
	/* a relative rules path is relative to the configuration file */
	if (c->file == NULL)
		assert_string_equal(c->rules, "rules.d");
	else {
		const char *slash = strrchr(c->file, '/');

		assert_non_null(slash);
		assert_memory_equal(c->rules, c->file, (size_t)(slash - c->file + 1));
		assert_string_equal(c->rules + (slash - c->file + 1), "rules.d");
	}
	assert_string_equal(c->admin.host, "127.0.0.1");
	assert_int_equal(c->admin.port, 9090);
	assert_int_equal(c->limits.max_message, 1048576);
	assert_int_equal(c->limits.queue_bytes, 4 * 1048576);
	assert_int_equal(c->limits.connect_timeout_ms, 10000);
	assert_int_equal(c->limits.shutdown_grace_ms, 5000);
	assert_int_equal(c->log_level, LOG_LVL_INFO);
	/* nobody is asked for a token, TLS is off, and any origin may connect */
	assert_int_equal(c->agent_id_jwt, 0);
	assert_null(c->auth.jwt_key);
	assert_string_equal(c->auth.jwt_claim, "sub");
	assert_int_equal(c->auth.jwt_leeway_ms, 30000);
	assert_int_equal(c->auth.forward_token, 0);
	assert_null(c->tls.cert);
	assert_string_equal(c->tls.min_version, "1.2");
	assert_int_equal(c->upstream_tls.verify, 1);
	assert_int_equal(c->allowed_origins.n, 0);
	assert_int_equal(c->ntrusted, 0);
	assert_null(c->dashboard.users);
}

/* ------------------------------------------------------------ good files */

static void
test_defaults(void **state)
{
	static const char *const texts[] = {
		"",
		"# only a comment\n\n   # another\n",
		"---\n",
		"---\n...\n",
		"limits:\nprotocol: ~\n",	/* empty sections keep defaults */
	};
	struct config	*c;
	struct sbuf	 errs;
	const char	*path;
	size_t		 i;

	(void)state;
	for (i = 0; i < UTIL_NELEM(texts); i++) {
		sbuf_init(&errs);
		c = load(texts[i], NULL, 0, &errs, &path);
		if (c == NULL)
			print_message("text %zu: %s\n", i, sbuf_str(&errs));
		assert_non_null(c);
		assert_string_equal(sbuf_str(&errs), "");
		assert_string_equal(c->file, path);
		assert_defaults(c);
		config_free(c);
		sbuf_free(&errs);
	}

	/* no file at all: the defaults */
	sbuf_init(&errs);
	assert_non_null(c = config_load(NULL, NULL, 0, &errs));
	assert_null(c->file);
	assert_defaults(c);
	config_free(c);
	sbuf_free(&errs);
}

static void
test_every_key(void **state)
{
	static const char text[] =
	    "# every key, none at its default\n"
	    "listen: \"[::1]:8443\"\n"
	    "listen_reuseport: true\n"
	    "upstream: wss://chat.example.com:8443/ws?v=2\n"
	    "agent_id: header:X-Agent-Id\n"
	    "protocol:\n"
	    "  type: /kind\n"
	    "  conversation: /meta/conv~1id\n"
	    "  text: /body\n"
	    "  message_types: [msg, chat]\n"
	    "  end_types:\n"
	    "    - end\n"
	    "    - close\n"
	    "    - 'timeout'\n"
	    "redis:\n"
	    "  url: unix:/run/redis/redis.sock\n"
	    "  channel: alerts\n"
	    "  stream: alerts:log\n"
	    "  stream_maxlen: 5000\n"
	    "  db: 3\n"
	    "  username: chatmon\n"
	    "  password: pw\n"
	    "  wait_replicas: 2\n"
	    "  wait_timeout: 250ms\n"
	    "sla:\n"
	    "  first_response: 20s\n"
	    "  reply: 1.5m\n"
	    "  warn_at: 0.75\n"
	    "  escalate: 1h\n"
	    "rules: /etc/chatmon/rules.d\n"
	    "model_veto: 0\n"
	    "admin: 0.0.0.0:9191\n"
	    "limits:\n"
	    "  max_message: 64KiB\n"
	    "  queue_bytes: 1MB\n"
	    "  connect_timeout: 2.5s\n"
	    "  shutdown_grace: 250ms\n"
	    "log:\n"
	    "  level: debug\n";
	struct config	*c;
	struct sbuf	 errs;

	(void)state;
	sbuf_init(&errs);
	c = load(text, NULL, 0, &errs, NULL);
	assert_string_equal(sbuf_str(&errs), "");
	assert_non_null(c);
	assert_string_equal(c->listen.host, "::1");
	assert_int_equal(c->listen.port, 8443);
	assert_int_equal(c->listen_reuseport, 1);
	assert_string_equal(c->upstream, "wss://chat.example.com:8443/ws?v=2");
	assert_int_equal(c->upstream_url.tls, 1);
	assert_string_equal(c->upstream_url.host, "chat.example.com");
	assert_int_equal(c->upstream_url.port, 8443);
	assert_string_equal(c->upstream_url.path, "/ws?v=2");
	assert_int_equal(c->agent_id_from, CONFIG_AGENT_ID_HEADER);
	assert_string_equal(c->agent_id_name, "X-Agent-Id");
	assert_string_equal(c->protocol.type, "/kind");
	assert_string_equal(c->protocol.conversation, "/meta/conv~1id");
	assert_string_equal(c->protocol.text, "/body");
	assert_int_equal(c->protocol.message_types.n, 2);
	assert_string_equal(c->protocol.message_types.v[0], "msg");
	assert_string_equal(c->protocol.message_types.v[1], "chat");
	assert_int_equal(c->protocol.end_types.n, 3);
	assert_string_equal(c->protocol.end_types.v[0], "end");
	assert_string_equal(c->protocol.end_types.v[1], "close");
	assert_string_equal(c->protocol.end_types.v[2], "timeout");
	assert_string_equal(c->redis.url, "unix:/run/redis/redis.sock");
	assert_string_equal(c->redis.channel, "alerts");
	assert_string_equal(c->redis.stream, "alerts:log");
	assert_int_equal(c->redis.stream_maxlen, 5000);
	assert_string_equal(c->redis.target.path, "/run/redis/redis.sock");
	assert_int_equal(c->redis.target.db, 3);	/* a unix: URL names none */
	assert_string_equal(c->redis.username, "chatmon");
	assert_string_equal(c->redis.password, "pw");
	assert_int_equal(c->redis.wait_replicas, 2);
	assert_int_equal(c->redis.wait_timeout_ms, 250);
	assert_int_equal(c->redis.nsentinels, 0);
	assert_int_equal(c->sla.first_response_ms, 20000);
	assert_int_equal(c->sla.reply_ms, 90000);
	assert_true(c->sla.warn_at > 0.7499 && c->sla.warn_at < 0.7501);
	assert_int_equal(c->sla.escalate_ms, 3600000);
	assert_string_equal(c->rules, "/etc/chatmon/rules.d");
	assert_true(c->model_veto == 0);		/* off, not refused */
	assert_string_equal(c->admin.host, "0.0.0.0");
	assert_int_equal(c->admin.port, 9191);
	assert_int_equal(c->limits.max_message, 65536);
	assert_int_equal(c->limits.queue_bytes, 1000000);
	/* lws counts whole seconds: 2.5 s becomes 3 s, never less */
	assert_int_equal(c->limits.connect_timeout_ms, 3000);
	assert_int_equal(c->limits.shutdown_grace_ms, 250);
	assert_int_equal(c->log_level, LOG_LVL_DEBUG);
	config_free(c);
	sbuf_free(&errs);
}

/* Who may connect (docs/security.md): relative files are the config's. */
static void
test_access_keys(void **state)
{
	static const char text[] =
	    "agent_id: jwt:header:Authorization\n"
	    "auth:\n"
	    "  jwt_key: keys/agents.jwks\n"
	    "  jwt_claim: preferred_username\n"
	    "  jwt_audience: chatmon\n"
	    "  jwt_issuer: https://sso.example.com\n"
	    "  jwt_leeway: 1.5s\n"
	    "  forward_token: true\n"
	    "tls: {cert: /etc/chatmon/tls/cert.pem, key: tls/key.pem, "
	    "min_version: '1.3'}\n"
	    "upstream_tls: {ca: ca.pem, verify: false}\n"
	    "allowed_origins: [https://wb.example.com, 'http://127.0.0.1:8000']\n"
	    "trusted_proxies: [10.0.0.0/8, '::1']\n"
	    "dashboard: {users: users}\n";
	struct config	*c;
	struct sbuf	 errs;
	const char	*path;
	char		 want[512], *dir;

	(void)state;
	sbuf_init(&errs);
	c = load(text, NULL, 0, &errs, &path);
	assert_string_equal(sbuf_str(&errs), "");
	assert_non_null(c);
	dir = strdup(path);
	*strrchr(dir, '/') = '\0';
	assert_int_equal(c->agent_id_jwt, 1);
	assert_int_equal(c->agent_id_from, CONFIG_AGENT_ID_HEADER);
	assert_string_equal(c->agent_id_name, "Authorization");
	snprintf(want, sizeof(want), "%s/keys/agents.jwks", dir);
	assert_string_equal(c->auth.jwt_key, want);
	assert_string_equal(c->auth.jwt_claim, "preferred_username");
	assert_string_equal(c->auth.jwt_audience, "chatmon");
	assert_string_equal(c->auth.jwt_issuer, "https://sso.example.com");
	assert_int_equal(c->auth.jwt_leeway_ms, 2000);	/* whole seconds */
	assert_int_equal(c->auth.forward_token, 1);
	assert_string_equal(c->tls.cert, "/etc/chatmon/tls/cert.pem");
	snprintf(want, sizeof(want), "%s/tls/key.pem", dir);
	assert_string_equal(c->tls.key, want);
	assert_string_equal(c->tls.min_version, "1.3");
	snprintf(want, sizeof(want), "%s/ca.pem", dir);
	assert_string_equal(c->upstream_tls.ca, want);
	assert_int_equal(c->upstream_tls.verify, 0);
	assert_int_equal(c->allowed_origins.n, 2);
	assert_int_equal(c->ntrusted, 2);
	assert_true(access_cidr_any(c->trusted, c->ntrusted, "10.1.2.3"));
	assert_true(access_cidr_any(c->trusted, c->ntrusted, "::1"));
	assert_false(access_cidr_any(c->trusted, c->ntrusted, "192.0.2.1"));
	snprintf(want, sizeof(want), "%s/users", dir);
	assert_string_equal(c->dashboard.users, want);
	free(dir);
	config_free(c);
	sbuf_free(&errs);
}

/* A YAML anchor and alias, flow style, a scalar list: still plain YAML. */
static void
test_yaml_forms(void **state)
{
	static const char text[] =
	    "protocol: {type: /t, message_types: &m chat, end_types: *m}\n"
	    "limits: {max_message: 1 MiB, queue_bytes: 2048}\n"
	    "sla: {reply: 45, first_response: '10s'}\n";
	struct config	*c;
	struct sbuf	 errs;

	(void)state;
	sbuf_init(&errs);
	c = load(text, NULL, 0, &errs, NULL);
	assert_string_equal(sbuf_str(&errs), "");
	assert_non_null(c);
	assert_string_equal(c->protocol.type, "/t");
	assert_int_equal(c->protocol.message_types.n, 1);
	assert_string_equal(c->protocol.message_types.v[0], "chat");
	assert_int_equal(c->protocol.end_types.n, 1);
	assert_string_equal(c->protocol.end_types.v[0], "chat");
	assert_int_equal(c->limits.max_message, 1048576);
	assert_int_equal(c->limits.queue_bytes, 2048);
	assert_int_equal(c->sla.reply_ms, 45000);
	assert_int_equal(c->sla.first_response_ms, 10000);
	config_free(c);
	sbuf_free(&errs);
}

/* Two hosts on one port are fine when neither is every address. */
static void
test_listen_and_admin_share_a_port(void **state)
{
	static const char *const texts[] = {
	    "listen: 127.0.0.1:7000\nadmin: 127.0.0.2:7000\n",
	    "listen: '[::1]:7000'\nadmin: 127.0.0.1:7000\n",
	    "listen: 0.0.0.0:7000\nadmin: 127.0.0.1:7001\n",
	};
	struct config	*c;
	struct sbuf	 errs;
	size_t		 i;

	(void)state;
	for (i = 0; i < UTIL_NELEM(texts); i++) {
		sbuf_init(&errs);
		c = load(texts[i], NULL, 0, &errs, NULL);
		assert_string_equal(sbuf_str(&errs), "");
		assert_non_null(c);
		config_free(c);
		sbuf_free(&errs);
	}
}

/* ------------------------------------------------------------- bad files */

struct bad_case {
	const char	*name;
	const char	*yaml;
	const char	*errs;	/* '@' is the file's path */
};

static const struct bad_case bad_cases[] = {
	{ "unknown key in section", "limits:\n  max_mesage: 1MiB\n",
	    "@:2: unknown key 'limits.max_mesage'\n" },
	{ "unknown top key", "# c\nlisten: 127.0.0.1:1\nlisen: x\n",
	    "@:3: unknown key 'lisen'\n" },
	{ "dotted key in file", "limits.max_message: 1MiB\n",
	    "@:1: unknown key 'limits.max_message'\n" },
	{ "mapping for scalar", "listen:\n  host: x\n",
	    "@:2: listen: expected a host:port address, got a mapping\n" },
	{ "list for scalar", "rules: [a, b]\n",
	    "@:1: rules: expected a string, got a list\n" },
	{ "scalar for section", "limits: 5\n",
	    "@:1: limits: expected a mapping, got a scalar\n" },
	{ "mapping for list", "protocol:\n  end_types: {a: b}\n",
	    "@:2: protocol.end_types: expected a list of strings, got a mapping\n" },
	{ "list item not a string",
	    "protocol:\n  message_types:\n    - message\n    - [x]\n    -\n",
	    "@:4: protocol.message_types[1]: expected a string, got a list\n"
	    "@:5: protocol.message_types[2]: expected a string, got a null\n" },
	{ "top level list", "- a\n- b\n",
	    "@:1: top level: expected a mapping, got a list\n" },
	{ "top level scalar", "hello\n",
	    "@:1: top level: expected a mapping, got a scalar\n" },
	{ "non-scalar key", "? [a]\n: b\n",
	    "@:1: keys must be scalars, got a list\n" },
	{ "duplicate key", "listen: 127.0.0.1:1\nadmin: 127.0.0.1:3\nlisten: 127.0.0.1:2\n",
	    "@:3: duplicate key 'listen'\n" },
	{ "duplicate key in section", "sla:\n  reply: 1s\n  reply: 2s\n",
	    "@:3: duplicate key 'sla.reply'\n" },
	{ "duplicate with a bad value", "sla:\n  reply: 1s\n  reply: x\n",
	    "@:3: duplicate key 'sla.reply'\n"
	    "@:3: sla.reply: bad duration 'x': not a non-negative number\n" },
	{ "duplicate section", "sla:\n  reply: 1s\nsla:\n  reply: 2s\n",
	    "@:4: duplicate key 'sla'\n" },
	{ "missing value", "listen:\nadmin: 127.0.0.1:1\n",
	    "@:1: listen: missing value (want a host:port address)\n" },
	{ "bad boolean", "listen_reuseport: maybe\n",
	    "@:1: listen_reuseport: bad boolean 'maybe': want true or false\n" },
	{ "boolean as a number", "listen_reuseport: 1\n",
	    "@:1: listen_reuseport: bad boolean '1': want true or false\n" },
	{ "empty string", "rules: \"\"\n",
	    "@:1: rules: must not be empty\n" },
	{ "NUL byte", "rules: \"a\\0b\"\n",
	    "@:1: rules: value contains a NUL byte\n" },
	{ "control bytes quoted", "listen: \"a\\tb:1\"\n",
	    "@:1: listen: bad address 'a\\x09b:1': bad character in host\n" },
	{ "C1 and line separator quoted", "listen: \"a\\u009b\\u2028b:1\"\n",
	    "@:1: listen: bad address 'a\\u009b\\u2028b:1': bad character in host\n" },
	{ "long value cut between characters",
	    "upstream: x0123456789012345678901234567890123456789012345678901234567\u5fae\u4fe1\n",
	    "@:1: upstream: bad URL 'x0123456789012345678901234567890123456789012345678901234567...': must start with ws:// or wss://\n" },
	{ "long value cut",
	    "rules: ok\nupstream: x0123456789012345678901234567890123456789012345678901234567890123456789\n",
	    "@:2: upstream: bad URL 'x01234567890123456789012345678901234567890123456789012345678...': must start with ws:// or wss://\n" },
	{ "empty message_types", "protocol:\n  message_types: []\n",
	    "@:2: protocol.message_types: must not be empty\n" },
	{ "null message_types", "protocol:\n  message_types:\n",
	    "@:2: protocol.message_types: must not be empty\n" },
	{ "empty list item", "protocol:\n  end_types: [end, '']\n",
	    "@:2: protocol.end_types: empty string in list\n" },
	{ "bad size", "limits:\n  max_message: 1XB\n",
	    "@:2: limits.max_message: bad size '1XB': unknown unit (use B, kB, KB, MB, GB, KiB, MiB or GiB)\n" },
	{ "negative size", "limits:\n  queue_bytes: -1\n",
	    "@:2: limits.queue_bytes: bad size '-1': not a non-negative integer\n" },
	{ "max_message too big", "limits:\n  max_message: 2GiB\n",
	    "@:2: limits.max_message: '2GiB' is out of range (1B to 1GiB)\n" },
	{ "max_message zero", "limits:\n  max_message: 0\n",
	    "@:2: limits.max_message: '0' is out of range (1B to 1GiB)\n" },
	{ "queue_bytes small", "limits:\n  queue_bytes: 1000\n",
	    "@:2: limits.queue_bytes: '1000' is too small (minimum 1KiB)\n" },
	{ "connect_timeout small", "limits:\n  connect_timeout: 500ms\n",
	    "@:2: limits.connect_timeout: '500ms' is out of range (1s to 24h)\n" },
	{ "binary choice", "protocol:\n  binary: maybe\n",
	    "@:2: protocol.binary: bad choice 'maybe': want inspect or pass\n" },
	{ "cap over a day", "sla:\n  cap: 25h\n",
	    "@:2: sla.cap: '25h' is out of range (1s to 24h)\n" },
	{ "a shop's cap over a day", "shops:\n  s:\n    sla: {cap: 1441m}\n",
	    "@:3: shops.s: sla.cap: '1441m' is out of range (1s to 24h)\n" },
	{ "bad duration", "sla:\n  reply: fast\n",
	    "@:2: sla.reply: bad duration 'fast': not a non-negative number\n" },
	{ "duration unit", "sla:\n  reply: 3d\n",
	    "@:2: sla.reply: bad duration '3d': unknown unit (use ms, s, m or h)\n" },
	{ "first_response zero", "sla:\n  first_response: 0s\n",
	    "@:2: sla.first_response: '0s' is too small (minimum 1ms)\n" },
	{ "reply zero", "sla:\n  reply: 0\n",
	    "@:2: sla.reply: '0' is too small (minimum 1ms)\n" },
	{ "escalate not after reply", "sla:\n  reply: 60s\n  escalate: 60s\n",
	    "@:3: sla.escalate (1m) must be greater than sla.reply (1m)\n" },
	{ "reply set after escalate", "sla:\n  escalate: 20s\n  reply: 25s\n",
	    "@:3: sla.escalate (20s) must be greater than sla.reply (25s)\n" },
	{ "warn_at one", "sla:\n  warn_at: 1\n",
	    "@:2: sla.warn_at: '1' must be greater than 0 and less than 1\n" },
	{ "warn_at zero", "sla:\n  warn_at: 0.0\n",
	    "@:2: sla.warn_at: '0.0' must be greater than 0 and less than 1\n" },
	{ "warn_at junk", "sla:\n  warn_at: nan\n",
	    "@:2: sla.warn_at: bad fraction 'nan': want a number between 0 and 1, e.g. 0.8\n" },
	{ "model_veto one", "model_veto: 1\n",
	    "@:1: model_veto: '1' must be at least 0 and less than 1\n" },
	{ "port range", "listen: 127.0.0.1:70000\n",
	    "@:1: listen: bad address '127.0.0.1:70000': port out of range (1-65535)\n" },
	{ "port zero", "admin: 127.0.0.1:0\n",
	    "@:1: admin.listen: bad address '127.0.0.1:0': port out of range (1-65535)\n" },
	{ "missing port", "listen: 127.0.0.1\n",
	    "@:1: listen: bad address '127.0.0.1': missing port (want host:port)\n" },
	{ "bare IPv6", "listen: ::1:8080\n",
	    "@:1: listen: bad address '::1:8080': IPv6 addresses need brackets, e.g. [::1]:8080\n" },
	{ "admin equals listen", "listen: 127.0.0.1:7000\nadmin: 127.0.0.1:7000\n",
	    "@:2: admin.listen (127.0.0.1:7000) must differ from listen\n" },
	/* a wildcard host takes the port on every address: the second bind fails */
	{ "listen on every address, admin on its port",
	    "listen: 0.0.0.0:7000\nadmin: 127.0.0.1:7000\n",
	    "@:2: admin.listen (127.0.0.1:7000) needs a port of its own beside "
	    "listen (0.0.0.0:7000): a host of 0.0.0.0 or [::] takes the port "
	    "on every address\n" },
	{ "admin on every address, listen on its port",
	    "admin: 0.0.0.0:7000\nlisten: 127.0.0.1:7000\n",
	    "@:2: admin.listen (0.0.0.0:7000) needs a port of its own beside "
	    "listen (127.0.0.1:7000): a host of 0.0.0.0 or [::] takes the port "
	    "on every address\n" },
	{ "admin on every IPv6 address", "listen: '[::1]:7000'\nadmin: '[::]:7000'\n",
	    "@:2: admin.listen ([::]:7000) needs a port of its own beside "
	    "listen ([::1]:7000): a host of 0.0.0.0 or [::] takes the port "
	    "on every address\n" },
	{ "upstream scheme", "upstream: http://x/\n",
	    "@:1: upstream: bad URL 'http://x/': must start with ws:// or wss://\n" },
	{ "upstream no host", "upstream: ws:///chat\n",
	    "@:1: upstream: bad URL 'ws:///chat': missing host\n" },
	{ "agent_id source", "agent_id: cookie:agent\n",
	    "@:1: agent_id: bad agent id source 'cookie:agent': want query:NAME, header:NAME, jwt:query:NAME or jwt:header:NAME\n" },
	{ "agent_id empty name", "agent_id: 'header:'\n",
	    "@:1: agent_id: bad agent id source 'header:': NAME is empty\n" },
	{ "jwt agent_id without a key", "x: 1\nagent_id: jwt:query:token\n",
	    "@:1: unknown key 'x'\n"
	    "@:2: agent_id: a jwt: source needs auth.jwt_key (the key tokens are verified with)\n" },
	{ "jwt agent_id bad name", "agent_id: 'jwt:query:a b'\n",
	    "@:1: agent_id: bad agent id source 'jwt:query:a b': bad character in query parameter name\n" },
	{ "forward_token without jwt", "auth: {forward_token: true}\n",
	    "@:1: auth.forward_token: only with a jwt: agent_id\n" },
	{ "tls cert without key", "tls:\n  cert: c.pem\n",
	    "@:2: tls.cert and tls.key go together: set both or neither\n" },
	{ "dashboard tls without a certificate", "dashboard:\n  tls: true\n",
	    "@:2: dashboard.tls: needs tls.cert and tls.key (the dashboard serves the same certificate)\n" },
	{ "tls version", "tls: {min_version: '1.1'}\n",
	    "@:1: tls.min_version: want \"1.2\" or \"1.3\"\n" },
	{ "origin with a path", "allowed_origins: [https://a.example/x]\n",
	    "@:1: allowed_origins: bad origin 'https://a.example/x': an origin has no path, query, user or space (browsers send scheme://host[:port] only)\n" },
	{ "dashboard origin", "dashboard: {allowed_origins: [a.example]}\n",
	    "@:1: dashboard.allowed_origins: bad origin 'a.example': want http://HOST[:PORT] or https://HOST[:PORT]\n" },
	{ "proxy range", "trusted_proxies: [10.0.0.0/8, 10.0.0.0/40]\n",
	    "@:1: trusted_proxies: bad address or CIDR '10.0.0.0/40': prefix length must be 0 to 32\n" },
	{ "proxy name", "trusted_proxies:\n  - lb.example\n",
	    "@:2: trusted_proxies: bad address or CIDR 'lb.example': not an IPv4 or IPv6 address\n" },
	{ "pointer slash", "protocol:\n  type: type\n",
	    "@:2: protocol.type: bad JSON pointer 'type': must start with '/'\n" },
	{ "pointer tilde", "protocol:\n  text: /a~2b\n",
	    "@:2: protocol.text: bad JSON pointer '/a~2b': '~' must be followed by 0 or 1\n" },
	{ "redis scheme", "redis:\n  url: http://h\n",
	    "@:2: redis.url: bad Redis URL 'http://h': want redis://host[:port][/db] or unix:/path\n" },
	{ "redis unix empty", "redis:\n  url: 'unix:'\n",
	    "@:2: redis.url: bad Redis URL 'unix:': unix socket path is empty\n" },
	{ "redis db", "redis:\n  url: redis://h:6379/x\n",
	    "@:2: redis.url: bad Redis URL 'redis://h:6379/x': bad database number\n" },
	{ "stream_maxlen", "redis:\n  stream_maxlen: -5\n",
	    "@:2: redis.stream_maxlen: bad unsigned integer '-5'\n" },
	{ "stream_maxlen zero", "redis:\n  stream_maxlen: 0\n",
	    "@:2: redis.stream_maxlen: '0' is out of range (1 to 9223372036854775807)\n" },
	{ "sentinel and url", "redis:\n  url: redis://h\n  sentinels: [h:26379]\n"
	    "  master_name: m\n",
	    "@:3: redis.url and redis.sentinels exclude each other: with Sentinel the "
	    "master's address comes from the sentinels (remove redis.url; redis.db "
	    "names the database)\n" },
	{ "url after sentinels", "redis:\n  sentinels: [h:26379]\n  master_name: m\n"
	    "  url: redis://h\n",
	    "@:4: redis.url and redis.sentinels exclude each other: with Sentinel the "
	    "master's address comes from the sentinels (remove redis.url; redis.db "
	    "names the database)\n" },
	{ "sentinels without a name", "redis:\n  sentinels:\n    - h:26379\n",
	    "@:3: redis.sentinels needs redis.master_name (the name the sentinels "
	    "monitor the master by)\n" },
	{ "sentinel address", "redis:\n  sentinels: [h:26379, h]\n  master_name: m\n",
	    "@:2: redis.sentinels: bad address 'h': missing port (want host:port)\n" },
	{ "sentinel address item line", "redis:\n  sentinels:\n    - h:1\n"
	    "    - '[::1:26379'\n  master_name: m\n",
	    "@:4: redis.sentinels: bad address '[::1:26379': missing ']' after IPv6 "
	    "address\n" },
	{ "too many sentinels", "redis:\n  master_name: m\n  sentinels: [a:1, b:1, "
	    "c:1, d:1, e:1, f:1, g:1, h:1, i:1, j:1, k:1, l:1, m:1, n:1, o:1, p:1, "
	    "q:1]\n",
	    "@:3: redis.sentinels: at most 16 addresses\n" },
	/* said once, however many more: it came once for each */
	{ "far too many sentinels", "redis:\n  master_name: m\n  sentinels: [a:1, b:1, "
	    "c:1, d:1, e:1, f:1, g:1, h:1, i:1, j:1, k:1, l:1, m:1, n:1, o:1, p:1, "
	    "q:1, r:1, s:1, t:1]\n",
	    "@:3: redis.sentinels: at most 16 addresses\n" },
	{ "far too many proxies", "trusted_proxies: [10.0.0.1, 10.0.0.2, 10.0.0.3, "
	    "10.0.0.4, 10.0.0.5, 10.0.0.6, 10.0.0.7, 10.0.0.8, 10.0.0.9, 10.0.0.10, "
	    "10.0.0.11, 10.0.0.12, 10.0.0.13, 10.0.0.14, 10.0.0.15, 10.0.0.16, "
	    "10.0.0.17, 10.0.0.18, 10.0.0.19, 10.0.0.20, 10.0.0.21, 10.0.0.22, "
	    "10.0.0.23, 10.0.0.24, 10.0.0.25, 10.0.0.26, 10.0.0.27, 10.0.0.28, "
	    "10.0.0.29, 10.0.0.30, 10.0.0.31, 10.0.0.32, 10.0.0.33, 10.0.0.34]\n",
	    "@:1: trusted_proxies: at most 32 ranges\n" },
	/* a rejected list is still Sentinel meant: no second error */
	{ "bad sentinels with a name", "redis:\n  sentinels: [x]\n  master_name: m\n"
	    "  sentinel_password: p\n",
	    "@:2: redis.sentinels: bad address 'x': missing port (want host:port)\n" },
	{ "name without sentinels", "redis:\n  master_name: m\n",
	    "@:2: redis.master_name is only used with redis.sentinels\n" },
	{ "sentinel password without sentinels", "redis:\n  sentinel_username: u\n"
	    "  sentinel_password: p\n",
	    "@:2: redis.sentinel_username is only used with redis.sentinels\n"
	    "@:3: redis.sentinel_password is only used with redis.sentinels\n" },
	{ "master name with a space", "redis:\n  sentinels: [h:1]\n  master_name: 'a b'\n",
	    "@:3: redis.master_name: 'a b' contains a space or control character\n" },
	{ "username without password", "redis:\n  username: chatmon\n",
	    "@:2: redis.username needs redis.password (AUTH username password)\n" },
	{ "sentinel username without password", "redis:\n  sentinels: [h:1]\n"
	    "  master_name: m\n  sentinel_username: u\n",
	    "@:4: redis.sentinel_username needs redis.sentinel_password\n" },
	{ "db twice", "redis:\n  db: 2\n  url: redis://h/2\n",
	    "@:3: redis.db and the database of redis.url ('/N') exclude each other: "
	    "name it once\n" },
	{ "db range", "redis:\n  db: 2147483648\n",
	    "@:2: redis.db: '2147483648' is out of range (0 to 2147483647)\n" },
	{ "wait_timeout zero", "redis:\n  wait_timeout: 0\n",
	    "@:2: redis.wait_timeout: '0' is out of range (1ms to 1h)\n" },
	{ "log level", "log:\n  level: verbose\n",
	    "@:2: log.level: bad log level 'verbose': want error, warn, info or debug\n" },
	{ "syntax error", "listen: 127.0.0.1:1\nprotocol:\n  end_types: [end\nrules: x\n",
	    "@:4: YAML: did not find expected ',' or ']' (while parsing a flow sequence at line 3)\n" },
	{ "tab indentation", "limits:\n\tmax_message: 1\n",
	    "@:2: YAML: found character that cannot start any token (while scanning for the next token at line 2)\n" },
	{ "undefined alias", "rules: *nowhere\n",
	    "@:1: YAML: found undefined alias\n" },
	{ "second document", "rules: a\n---\nrules: b\n",
	    "@:2: more than one YAML document\n" },
	{ "bad UTF-8", "rules: a\nlisten: \"\xff\"\n",
	    "@:2: YAML: invalid leading UTF-8 octet at byte 18\n" },
};

static void
test_bad_files(void **state)
{
	struct config	*c;
	struct sbuf	 errs;
	const char	*path;
	size_t		 i;

	(void)state;
	for (i = 0; i < UTIL_NELEM(bad_cases); i++) {
		sbuf_init(&errs);
		c = load(bad_cases[i].yaml, NULL, 0, &errs, &path);
		if (c != NULL)
			print_message("case %s loaded\n", bad_cases[i].name);
		assert_null(c);
		assert_errs(&errs, path, bad_cases[i].errs, bad_cases[i].name);
		sbuf_free(&errs);
	}
}

/*
 * A relative unix: socket is the file's, as rules: is (a demo's
 * configuration names the socket beside it); resolved, it must still fit
 * a socket address, and the error says which line.
 */
static void
test_redis_unix_relative(void **state)
{
	char		 want[4096 + 64], longname[120];
	const char	*path, *slash;
	struct config	*c;
	struct sbuf	 errs, text;

	(void)state;
	sbuf_init(&errs);
	c = load("redis:\n  url: unix:../run/redis.sock\n", NULL, 0, &errs, &path);
	assert_string_equal(sbuf_str(&errs), "");
	assert_non_null(c);
	slash = strrchr(path, '/');
	assert_non_null(slash);
	snprintf(want, sizeof(want), "%.*s../run/redis.sock",
	    (int)(slash - path + 1), path);
	assert_string_equal(c->redis.target.path, want);
	assert_memory_equal(c->redis.url, "unix:", 5);
	assert_string_equal(c->redis.url + 5, want);
	config_free(c);

	/* short enough as written, too long once resolved */
	memset(longname, 'a', 100);
	longname[100] = '\0';
	sbuf_init(&text);
	sbuf_printf(&text, "log:\n  level: info\nredis:\n  url: unix:%s\n", longname);
	c = load(sbuf_str(&text), NULL, 0, &errs, &path);
	assert_null(c);
	snprintf(want, sizeof(want), "%s:4: unix socket path too long", path);
	assert_memory_equal(sbuf_str(&errs), want, strlen(want));
	assert_non_null(strstr(sbuf_str(&errs), "once resolved against the file's directory"));
	sbuf_free(&text);
	sbuf_free(&errs);
}

/* Sentinel: the addresses parsed, no URL target, WAIT on by default. */
static void
test_redis_sentinel(void **state)
{
	static const char text[] =
	    "redis:\n"
	    "  sentinels: [10.0.0.1:26379, 'sentinel-2:26380', '[::1]:26381']\n"
	    "  master_name: chatmon-alerts\n"
	    "  sentinel_username: mon\n"
	    "  sentinel_password: s3\n"
	    "  db: 4\n";
	char		*ov[] = { "redis.wait_replicas=0", "redis.sentinels=[h:1]" };
	struct config	*c;
	struct sbuf	 errs;

	(void)state;
	sbuf_init(&errs);
	c = load(text, NULL, 0, &errs, NULL);
	assert_string_equal(sbuf_str(&errs), "");
	assert_non_null(c);
	assert_int_equal(c->redis.nsentinels, 3);
	assert_string_equal(c->redis.sentinel[0].host, "10.0.0.1");
	assert_int_equal(c->redis.sentinel[0].port, 26379);
	assert_string_equal(c->redis.sentinel[1].host, "sentinel-2");
	assert_int_equal(c->redis.sentinel[1].port, 26380);
	assert_string_equal(c->redis.sentinel[2].host, "::1");
	assert_string_equal(c->redis.master_name, "chatmon-alerts");
	assert_string_equal(c->redis.sentinel_username, "mon");
	assert_string_equal(c->redis.sentinel_password, "s3");
	/* the URL's default is not where alerts go */
	assert_string_equal(c->redis.target.host, "");
	assert_int_equal(c->redis.target.db, 4);
	assert_int_equal(c->redis.wait_replicas, 1);
	assert_int_equal(c->redis.wait_timeout_ms, 1000);
	config_free(c);

	/* set explicitly, 0 stays 0; an override replaces the list */
	c = load(text, ov, 2, &errs, NULL);
	assert_string_equal(sbuf_str(&errs), "");
	assert_non_null(c);
	assert_int_equal(c->redis.wait_replicas, 0);
	assert_int_equal(c->redis.nsentinels, 1);
	assert_string_equal(c->redis.sentinel[0].host, "h");
	config_free(c);

	/* without Sentinel: the URL, db from the URL or from redis.db */
	c = load("redis:\n  url: redis://r:6390/5\n", NULL, 0, &errs, NULL);
	assert_non_null(c);
	assert_string_equal(c->redis.target.host, "r");
	assert_int_equal(c->redis.target.port, 6390);
	assert_int_equal(c->redis.target.db, 5);
	assert_int_equal(c->redis.wait_replicas, 0);
	config_free(c);
	c = load("redis:\n  url: redis://r\n  db: 6\n", NULL, 0, &errs, NULL);
	assert_non_null(c);
	assert_int_equal(c->redis.target.db, 6);
	config_free(c);
	/* an override of the URL where the file has sentinels: exclusive */
	{
		char *ov2[] = { "redis.url=redis://h" };

		assert_null(load(text, ov2, 1, &errs, NULL));
		assert_non_null(strstr(sbuf_str(&errs), "-o redis.url=redis://h: "
		    "redis.url and redis.sentinels exclude each other"));
	}
	sbuf_free(&errs);
}

/* Loading goes on after an error: every error, each on its own line. */
static void
test_all_errors(void **state)
{
	static const char text[] =
	    "listen: 127.0.0.1:99999\n"				/* 1 */
	    "upstream: ws://127.0.0.1:9000/\n"			/* 2 */
	    "protocol:\n"					/* 3 */
	    "  type: type\n"					/* 4 */
	    "  message_types: []\n"				/* 5 */
	    "  colour: blue\n"					/* 6 */
	    "sla:\n"						/* 7 */
	    "  reply: soon\n"					/* 8 */
	    "  warn_at: 2\n"					/* 9 */
	    "limits:\n"						/* 10 */
	    "  max_message: 4GiB\n"				/* 11 */
	    "  queue_bytes: 1KiB\n"				/* 12 (good) */
	    "  max_message: 1MiB\n"				/* 13 */
	    "log: {level: loud}\n";				/* 14 */
	struct config	*c;
	struct sbuf	 errs;
	const char	*path;

	(void)state;
	sbuf_init(&errs);
	c = load(text, NULL, 0, &errs, &path);
	assert_null(c);
	assert_errs(&errs, path,
	    "@:1: listen: bad address '127.0.0.1:99999': port out of range (1-65535)\n"
	    "@:4: protocol.type: bad JSON pointer 'type': must start with '/'\n"
	    "@:5: protocol.message_types: must not be empty\n"
	    "@:6: unknown key 'protocol.colour'\n"
	    "@:8: sla.reply: bad duration 'soon': not a non-negative number\n"
	    "@:9: sla.warn_at: '2' must be greater than 0 and less than 1\n"
	    "@:11: limits.max_message: '4GiB' is out of range (1B to 1GiB)\n"
	    "@:13: duplicate key 'limits.max_message'\n"
	    "@:14: log.level: bad log level 'loud': want error, warn, info or debug\n",
	    "all errors");
	assert_int_equal(errs.lines, 9);
	sbuf_free(&errs);
}

static void
test_cannot_open(void **state)
{
	struct config	*c;
	struct sbuf	 errs;
	const char	*path, *dir;
	char		*want;

	(void)state;
	sbuf_init(&errs);
	path = tmp_path("missing.yaml");
	assert_null(c = config_load(path, NULL, 0, &errs));
	assert_true(asprintf(&want, "%s: cannot open: %s\n", path,
	    strerror(ENOENT)) > 0);
	assert_string_equal(sbuf_str(&errs), want);
	free(want);
	sbuf_free(&errs);

	/* a directory opens, but is no file */
	sbuf_init(&errs);
	dir = tmp_path("adir");
	assert_int_equal(mkdir(dir, 0700), 0);
	assert_null(c = config_load(dir, NULL, 0, &errs));
	assert_true(asprintf(&want, "%s: cannot open: %s\n", dir,
	    strerror(EISDIR)) > 0);
	assert_string_equal(sbuf_str(&errs), want);
	free(want);
	sbuf_free(&errs);

	/* the overrides are still checked */
	sbuf_init(&errs);
	{
		char *ov[] = { "limits.max_message=big" };

		assert_null(c = config_load(path, ov, 1, &errs));
	}
	assert_int_equal(errs.lines, 2);
	assert_non_null(strstr(sbuf_str(&errs),
	    "\n-o limits.max_message=big: limits.max_message: bad size 'big': "
	    "not a non-negative integer\n"));
	sbuf_free(&errs);
	config_free(NULL);	/* a no-op */
}

/* ------------------------------------------------------------- overrides */

static void
test_overrides(void **state)
{
	static const char text[] =
	    "listen: 127.0.0.1:1111\n"
	    "protocol:\n"
	    "  end_types: [end]\n"
	    "limits:\n"
	    "  max_message: 2MiB\n"
	    "  queue_bytes: 8MiB\n";
	char *ov[] = {
		"listen=127.0.0.1:2222",
		"protocol.end_types=[end,close]",
		"protocol.message_types=msg",
		"limits={max_message: 64KiB}",
		"admin=[::1]:9999",		/* not YAML: taken as written */
		"redis.channel='quoted'",
		"log.level=debug",
		"listen=127.0.0.1:3333",	/* the last one wins */
		"sla.escalate=1h",
		"agent_id=query:who",
		"listen_reuseport=Yes",		/* YAML 1.1's spellings, any case */
	};
	struct config	*c;
	struct sbuf	 errs;

	(void)state;
	sbuf_init(&errs);
	c = load(text, ov, UTIL_NELEM(ov), &errs, NULL);
	assert_string_equal(sbuf_str(&errs), "");
	assert_non_null(c);
	assert_int_equal(c->listen.port, 3333);
	assert_int_equal(c->protocol.end_types.n, 2);
	assert_string_equal(c->protocol.end_types.v[0], "end");
	assert_string_equal(c->protocol.end_types.v[1], "close");
	assert_int_equal(c->protocol.message_types.n, 1);
	assert_string_equal(c->protocol.message_types.v[0], "msg");
	assert_int_equal(c->limits.max_message, 65536);
	assert_int_equal(c->limits.queue_bytes, 8 * 1048576);	/* file, untouched */
	assert_string_equal(c->admin.host, "::1");
	assert_int_equal(c->admin.port, 9999);
	assert_string_equal(c->redis.channel, "quoted");
	assert_int_equal(c->log_level, LOG_LVL_DEBUG);
	assert_int_equal(c->sla.escalate_ms, 3600000);
	assert_string_equal(c->agent_id_name, "who");
	assert_int_equal(c->listen_reuseport, 1);
	config_free(c);
	sbuf_free(&errs);

	/* an override can repair what the file got wrong only by replacing it */
	sbuf_init(&errs);
	{
		char *ov2[] = { "sla.reply=200s" };

		c = load("sla:\n  reply: 10s\n", ov2, 1, &errs, NULL);
	}
	assert_null(c);
	assert_string_equal(sbuf_str(&errs),
	    "-o sla.reply=200s: sla.escalate (3m) must be greater than sla.reply (200s)\n");
	sbuf_free(&errs);
}

struct bad_override {
	const char	*ov;
	const char	*errs;
};

static const struct bad_override bad_overrides[] = {
	{ "listen", "-o listen: expected key.path=value\n" },
	{ "=5", "-o =5: missing key before '='\n" },
	{ "limits.max_mesage=1", "-o limits.max_mesage=1: unknown key 'limits.max_mesage'\n" },
	{ "nope=1", "-o nope=1: unknown key 'nope'\n" },
	{ "limits.max_message=abc",
	    "-o limits.max_message=abc: limits.max_message: bad size 'abc': not a non-negative integer\n" },
	{ "limits.max_message=[1]",
	    "-o limits.max_message=[1]: limits.max_message: bad size '[1]': not a non-negative integer\n" },
	{ "protocol.message_types=[]",
	    "-o protocol.message_types=[]: protocol.message_types: must not be empty\n" },
	{ "protocol.message_types=",
	    "-o protocol.message_types=: protocol.message_types: must not be empty\n" },
	{ "protocol.end_types=[end",
	    "-o protocol.end_types=[end: YAML: did not find expected ',' or ']' (while parsing a flow sequence at line 1)\n" },
	{ "listen=", "-o listen=: listen: missing value (want a host:port address)\n" },
	{ "limits=5", "-o limits=5: limits: expected a mapping, got a scalar\n" },
	{ "limits={max_mesage: 1}", "-o limits={max_mesage: 1}: unknown key 'limits.max_mesage'\n" },
	{ "sla.reply=180s", "-o sla.reply=180s: sla.escalate (3m) must be greater than sla.reply (3m)\n" },
	{ "admin=127.0.0.1:8080", "-o admin=127.0.0.1:8080: admin.listen (127.0.0.1:8080) must differ from listen\n" },
};

static void
test_bad_overrides(void **state)
{
	struct config	*c;
	struct sbuf	 errs;
	size_t		 i;
	char		*ov[1];

	(void)state;
	for (i = 0; i < UTIL_NELEM(bad_overrides); i++) {
		sbuf_init(&errs);
		ov[0] = (char *)(uintptr_t)bad_overrides[i].ov;
		c = load("", ov, 1, &errs, NULL);
		assert_null(c);
		assert_errs(&errs, "", bad_overrides[i].errs, bad_overrides[i].ov);
		sbuf_free(&errs);
	}

	/* file errors first, then each override's, in order */
	sbuf_init(&errs);
	{
		char *ov2[] = { "rules=", "limits.queue_bytes=1MiB", "x=y" };
		const char *path;

		c = load("rules: a\nsla:\n  reply: x\n", ov2, 3, &errs, &path);
		assert_null(c);
		assert_errs(&errs, path,
		    "@:3: sla.reply: bad duration 'x': not a non-negative number\n"
		    "-o rules=: rules: missing value (want a string)\n"
		    "-o x=y: unknown key 'x'\n", "file and overrides");
	}
	sbuf_free(&errs);
}

/* Values that only config_load can reach, through overrides. */
static void
test_value_kinds(void **state)
{
	static const struct {
		const char	*ov;
		int		 ok;
	} cases[] = {
		{ "redis.url=redis://127.0.0.1:6379", 1 },
		{ "redis.url=redis://redis", 1 },
		{ "redis.url=redis://[::1]:6380/3", 1 },
		{ "redis.url=redis://h/", 1 },
		{ "redis.url=unix:/run/redis.sock", 1 },
		{ "redis.url=redis://", 0 },
		{ "redis.url=redis://h:0", 0 },
		{ "redis.url=redis://user:pw@h", 0 },
		{ "redis.url=redis://h/1/2", 0 },
		{ "redis.url=unix:/", 0 },
		{ "redis.url=unix:", 0 },
		{ "redis.url=rediss://h", 0 },
		{ "agent_id=query:agent", 1 },
		{ "agent_id=header:X-Agent", 1 },
		{ "agent_id=query:", 0 },
		{ "agent_id=header:X Agent", 0 },
		{ "agent_id=query:a&b", 0 },
		{ "agent_id=agent", 0 },
		{ "protocol.type=/", 1 },
		{ "protocol.type=/a/b~0c~1d", 1 },
		{ "protocol.type=/a~", 0 },
		{ "protocol.type=''", 0 },
		{ "sla.warn_at=0.5", 1 },
		{ "sla.warn_at=.9", 1 },
		{ "sla.warn_at=0.999", 1 },
		{ "sla.warn_at=-0.5", 0 },
		{ "sla.warn_at=1.0", 0 },
		{ "sla.warn_at=80%", 0 },
		{ "sla.warn_at=0x0.8p0", 0 },
		{ "redis.stream_maxlen=1", 1 },
		{ "redis.stream_maxlen=9223372036854775808", 0 },
		{ "redis.stream_maxlen=1e6", 0 },
		{ "log.level=warn", 1 },
		{ "log.level=ERROR", 1 },
		{ "limits.max_message=1GiB", 1 },
		{ "limits.max_message=1073741825", 0 },
		{ "limits.queue_bytes=1KiB", 1 },
		{ "limits.queue_bytes=1023", 0 },
		{ "limits.connect_timeout=1s", 1 },
		{ "limits.connect_timeout=999ms", 0 },
		{ "limits.connect_timeout=0", 0 },
		{ "limits.shutdown_grace=0", 1 },
		{ "upstream=ws://h", 1 },
		{ "upstream=ws://h:0", 0 },
		{ "rules=x", 1 },
	};
	struct config	*c;
	struct sbuf	 errs;
	size_t		 i;
	char		*ov[1];

	(void)state;
	for (i = 0; i < UTIL_NELEM(cases); i++) {
		sbuf_init(&errs);
		ov[0] = (char *)(uintptr_t)cases[i].ov;
		c = config_load(NULL, ov, 1, &errs);
		if ((c != NULL) != cases[i].ok)
			print_message("case %s: %s\n", cases[i].ov, sbuf_str(&errs));
		assert_int_equal(c != NULL, cases[i].ok);
		assert_int_equal(errs.lines, cases[i].ok ? 0 : 1);
		config_free(c);
		sbuf_free(&errs);
	}
}

/*
 * Every allocation in turn fails: each load must then return NULL, report
 * what it can, and free everything (live == 0).
 */
static void
test_alloc_failures(void **state)
{
#ifdef NO_ALLOC_HOOKS
	(void)state;
	skip();
#else
	static const char good[] =
	    "listen: 127.0.0.1:1\nupstream: wss://h/x\nagent_id: header:A\n"
	    "protocol: {type: /t, message_types: [a, b, c], end_types: [d]}\n"
	    "redis: {url: 'redis://h', channel: c, stream: s}\n"
	    "limits: {max_message: 1KiB}\n";
	static const char bad[] =
	    "listen: 127.0.0.1:0\nprotocol: {message_types: [a, {}], x: 1}\n"
	    "sla: {reply: 1h}\n";
	/* every shop and queue level, packs and lists: freed on every failure */
	static const char shops[] =
	    "sla: {profile: taobao}\n"
	    "shops:\n  a: {name: A, profile: jd, hours: ['09:00-10:00'], rules: [p, q],"
	    " rules_off: [x]}\n"
	    "  b:\n    sla: {reply: 20s, hours: ['01:00-02:00']}\n    queues:\n"
	    "      q1: {profile: custom}\n      q2: {hours: []}\n";
	static const char shops_bad[] =
	    "shops:\n  a: {profile: jd, hours: ['09:00-10:00'], sla: {hours: []}}\n"
	    "  b:\n    sla: {escalate: 1s}\n    queues: {q1: {profile: pdd}, 'x y': 1}\n";
	char *ov[] = { "protocol.end_types=[x,y]", "rules=r", "limits={queue_bytes: 2KiB}",
	    "admin=[::1]:1", "nokey=1" };
	const struct {
		const char	*text;
		size_t		 nov;
		int		 ok;
	} cases[] = {
		{ good, 4, 1 },
		{ bad, 5, 0 },
		{ shops, 0, 1 },
		{ shops_bad, 0, 0 },
	};
	struct config	*c;
	struct sbuf	 errs;
	const char	*path;
	size_t		 i;
	long		 n;

	(void)state;
	for (i = 0; i < UTIL_NELEM(cases); i++) {
		path = write_file("oom.yaml", cases[i].text, strlen(cases[i].text));
		for (n = 1;; n++) {
			sbuf_init(&errs);
			live = 0;
			counting = 1;
			fail_in = n;
			c = config_load(path, ov, cases[i].nov, &errs);
			if (fail_in == 0)	/* an allocation failed */
				assert_null(c);
			else
				assert_int_equal(c != NULL, cases[i].ok);
			config_free(c);
			sbuf_free(&errs);
			counting = 0;
			if (live != 0)
				print_message("case %zu: leak after failing allocation %ld\n",
				    i, n);
			assert_int_equal(live, 0);
			if (fail_in != 0)
				break;
		}
		fail_in = 0;
		/* valgrind replaces even a program's own malloc: nothing to inject */
		if (n == 1) {
			print_message("allocation hooks not in use\n");
			skip();
		}
		assert_true(n > 20);
	}
#endif
}

/* ------------------------------------------------------------ parsers */

static void
test_parse_size(void **state)
{
	static const struct {
		const char	*s;
		uint64_t	 v;
	} good[] = {
		{ "0", 0 }, { "1048576", 1048576 }, { "7B", 7 },
		{ "512KiB", 524288 }, { "1MiB", 1048576 }, { "1GiB", 1073741824 },
		{ "10kB", 10000 }, { "10KB", 10000 }, { "1MB", 1000000 },
		{ "2GB", 2000000000 }, { "1 MiB", 1048576 },
		{ "18446744073709551615", UINT64_MAX },
		{ "17179869183GiB", 17179869183ULL * 1073741824 },
	};
	static const char *const bad[] = {
		"", "-1", "+1", " 1", "1.5MiB", "1XB", "MiB", "1MiBx", "1mib",
		"1kb", "1 ", "18446744073709551616", "17179869184GiB", "0x10",
		"1e3",
	};
	uint64_t	 v;
	size_t		 i;

	(void)state;
	for (i = 0; i < UTIL_NELEM(good); i++) {
		v = 12345;
		if (config_parse_size(good[i].s, &v) != 0)
			print_message("size '%s'\n", good[i].s);
		assert_int_equal(config_parse_size(good[i].s, &v), 0);
		assert_int_equal(v, good[i].v);
	}
	for (i = 0; i < UTIL_NELEM(bad); i++) {
		v = 12345;
		if (config_parse_size(bad[i], &v) != -1)
			print_message("size '%s'\n", bad[i]);
		assert_int_equal(config_parse_size(bad[i], &v), -1);
		assert_int_equal(v, 12345);	/* untouched on error */
	}
	assert_int_equal(config_parse_size(NULL, &v), -1);
}

static void
test_parse_duration(void **state)
{
	static const struct {
		const char	*s;
		uint64_t	 ms;
	} good[] = {
		{ "250ms", 250 }, { "15s", 15000 }, { "3m", 180000 },
		{ "1h", 3600000 }, { "1.5s", 1500 }, { "15", 15000 },
		{ "0.5", 500 }, { "0", 0 }, { "0ms", 0 }, { "2.5m", 150000 },
		{ "1.0001s", 1001 },	/* fractions of a ms round up */
		{ "0.0001s", 1 }, { "1.5ms", 2 }, { "10 s", 10000 },
		{ "0.000000001h", 1 }, { "18446744073709551615ms", UINT64_MAX },
	};
	static const char *const bad[] = {
		"", "-1s", "+1s", "1x", "s", "1.s", ".5s", "1.5.5s", "1d",
		"1 sec", "1S", "1h30m", "99999999999999999999",
		"18446744073709552s", "1.1234567891s", "18446744073709551615.5ms",
		"nan", "inf", "10 ",
	};
	uint64_t	 v;
	size_t		 i;

	(void)state;
	for (i = 0; i < UTIL_NELEM(good); i++) {
		v = 12345;
		if (config_parse_duration_ms(good[i].s, &v) != 0 || v != good[i].ms)
			print_message("duration '%s' -> %llu\n", good[i].s,
			    (unsigned long long)v);
		assert_int_equal(config_parse_duration_ms(good[i].s, &v), 0);
		assert_int_equal(v, good[i].ms);
	}
	for (i = 0; i < UTIL_NELEM(bad); i++) {
		v = 12345;
		if (config_parse_duration_ms(bad[i], &v) != -1)
			print_message("duration '%s'\n", bad[i]);
		assert_int_equal(config_parse_duration_ms(bad[i], &v), -1);
		assert_int_equal(v, 12345);
	}
}

static void
test_parse_addr(void **state)
{
	static const struct {
		const char	*s;
		const char	*host;
		int		 port;
	} good[] = {
		{ "127.0.0.1:8080", "127.0.0.1", 8080 },
		{ "[::1]:8080", "::1", 8080 },
		{ "[2001:db8::17]:1", "2001:db8::17", 1 },
		{ "[fe80::1%eth0]:80", "fe80::1%eth0", 80 },
		{ "localhost:65535", "localhost", 65535 },
		{ "0.0.0.0:00080", "0.0.0.0", 80 },
		{ "chat-01.example_net.com:443", "chat-01.example_net.com", 443 },
	};
	static const char *const bad[] = {
		"", "127.0.0.1", "127.0.0.1:", "127.0.0.1:0", "127.0.0.1:65536",
		":8080", "::1:8080", "[::1]", "[::1]:", "[::1]8080", "[zz::1]:80",
		"[::1:80", "[]:80", "[1.2.3.4]:80", "a b:80", "host:80x",
		"127.0.0.1:+80", "127.0.0.1:-1", "127.0.0.1:000080", "[fe80::1%]:80",
		"host/x:80",
	};
	struct config_addr	 a;
	size_t			 i;

	(void)state;
	for (i = 0; i < UTIL_NELEM(good); i++) {
		memset(&a, 0, sizeof(a));
		if (config_parse_addr(good[i].s, &a) != 0)
			print_message("addr '%s'\n", good[i].s);
		assert_int_equal(config_parse_addr(good[i].s, &a), 0);
		assert_string_equal(a.host, good[i].host);
		assert_int_equal(a.port, good[i].port);
	}
	for (i = 0; i < UTIL_NELEM(bad); i++) {
		strcpy(a.host, "keep");
		a.port = 7;
		if (config_parse_addr(bad[i], &a) != -1)
			print_message("addr '%s'\n", bad[i]);
		assert_int_equal(config_parse_addr(bad[i], &a), -1);
		assert_string_equal(a.host, "keep");
		assert_int_equal(a.port, 7);
	}
}

static void
test_parse_ws_url(void **state)
{
	static const struct {
		const char	*s;
		int		 tls;
		const char	*host;
		int		 port;
		const char	*path;
	} good[] = {
		{ "ws://127.0.0.1:9000/", 0, "127.0.0.1", 9000, "/" },
		{ "ws://example.com", 0, "example.com", 80, "/" },
		{ "wss://example.com", 1, "example.com", 443, "/" },
		{ "wss://example.com/chat?x=1&y=2", 1, "example.com", 443, "/chat?x=1&y=2" },
		{ "WSS://h:8443", 1, "h", 8443, "/" },
		{ "ws://[::1]:9000/p/q", 0, "::1", 9000, "/p/q" },
		{ "ws://[::1]", 0, "::1", 80, "/" },
		{ "ws://h?x=1", 0, "h", 80, "/?x=1" },
		{ "ws://h:81?x", 0, "h", 81, "/?x" },
	};
	static const char *const bad[] = {
		"", "http://h/", "ws:/h", "ws://", "ws:///p", "ws://:80/",
		"ws://h:0/", "ws://h:99999/", "ws://h:/", "ws://u@h/",
		"ws://h/#f", "ws://h /", "ws://::1/", "ws://[::1/", "wss://h:x",
		"ws://h\n/",
	};
	struct config_ws_url	 u;
	size_t			 i;

	(void)state;
	for (i = 0; i < UTIL_NELEM(good); i++) {
		memset(&u, 0, sizeof(u));
		if (config_parse_ws_url(good[i].s, &u) != 0)
			print_message("url '%s'\n", good[i].s);
		assert_int_equal(config_parse_ws_url(good[i].s, &u), 0);
		assert_int_equal(u.tls, good[i].tls);
		assert_string_equal(u.host, good[i].host);
		assert_int_equal(u.port, good[i].port);
		assert_string_equal(u.path, good[i].path);
	}
	for (i = 0; i < UTIL_NELEM(bad); i++) {
		strcpy(u.host, "keep");
		if (config_parse_ws_url(bad[i], &u) != -1)
			print_message("url '%s'\n", bad[i]);
		assert_int_equal(config_parse_ws_url(bad[i], &u), -1);
		assert_string_equal(u.host, "keep");
	}
}

/* sla.profile fills only the SLA keys the file left alone. */
static void
test_sla_profiles(void **state)
{
	struct config	*c;
	struct sbuf	 errs;

	(void)state;
	sbuf_init(&errs);
	c = load("sla:\n  profile: taobao\n  reply: 45s\n", NULL, 0, &errs, NULL);
	assert_non_null(c);
	assert_int_equal(c->sla.profile, CONFIG_PROFILE_TAOBAO);
	assert_int_equal(c->sla.first_response_ms, 15000);
	assert_int_equal(c->sla.reply_ms, 45000);		/* the file wins */
	assert_int_equal(c->sla.rate_ms, 180000);
	assert_int_equal(c->sla.cap_ms, 600000);
	assert_int_equal(c->sla.nhours, 1);
	assert_int_equal(c->sla.hours[0].from_min, 8 * 60);
	assert_int_equal(c->sla.hours[0].to_min, 23 * 60);
	assert_int_equal(c->sla.utc_offset_min, 480);
	config_free(c);

	c = load("sla: {profile: jd, hours: ['10:00-12:00', '22:00-02:00']}\n",
	    NULL, 0, &errs, NULL);
	assert_non_null(c);
	assert_int_equal(c->sla.rate_ms, 30000);
	assert_int_equal(c->sla.nhours, 2);			/* the file wins */
	assert_int_equal(c->sla.hours[1].from_min, 22 * 60);
	assert_int_equal(c->sla.hours[1].to_min, 2 * 60);
	config_free(c);

	/* an override counts as set, too */
	{
		char *ov[] = { "sla.profile=pdd", "sla.hours=[]", "sla.timezone=UTC" };

		c = load("", ov, 3, &errs, NULL);
		assert_non_null(c);
		assert_int_equal(c->sla.reply_ms, 180000);
		assert_int_equal(c->sla.escalate_ms, 300000);
		assert_int_equal(c->sla.nhours, 0);
		assert_int_equal(c->sla.utc_offset_min, 0);
		config_free(c);
	}
	c = load("", NULL, 0, &errs, NULL);			/* custom: always on */
	assert_int_equal(c->sla.nhours, 0);
	assert_int_equal(c->sla.idle_ms, 30 * 60000);
	assert_null(c->protocol.robot);
	config_free(c);
	assert_string_equal(sbuf_str(&errs), "");
	sbuf_free(&errs);
}

static void
test_sla_errors(void **state)
{
	struct config	*c;
	struct sbuf	 errs;
	const char	*path;

	(void)state;
	sbuf_init(&errs);
	c = load("sla:\n  profile: tmall\n  hours:\n    - 08:00-23:00\n"
	    "    - '8-23'\n    - '10:00-10:00'\n  timezone: Europe/Paris\n"
	    "protocol:\n  robot: auto\n", NULL, 0, &errs, &path);
	assert_null(c);
	assert_errs(&errs, path,
	    "@:2: sla.profile: unknown profile 'tmall': want taobao, jd, pdd or custom\n"
	    "@:5: sla.hours: bad service window '8-23': want HH:MM-HH:MM, e.g. 08:00-23:00\n"
	    "@:6: sla.hours: bad service window '10:00-10:00': want HH:MM-HH:MM, e.g. 08:00-23:00\n"
	    "@:7: sla.timezone: bad time zone 'Europe/Paris': want UTC, an offset like "
	    "+08:00, or a China zone name (Asia/Shanghai)\n"
	    "@:9: protocol.robot: bad JSON pointer 'auto': must start with '/'\n",
	    "sla errors");
	sbuf_free(&errs);
}

static void
test_hours_and_timezones(void **state)
{
	uint16_t	f, t;
	int32_t		off;

	(void)state;
	assert_int_equal(config_parse_hours("00:00-24:00", &f, &t), 0);
	assert_int_equal(f, 0);
	assert_int_equal(t, 1440);
	assert_int_equal(config_parse_hours("22:00-00:00", &f, &t), 0);
	assert_int_equal(t, 1440);
	assert_int_equal(config_parse_hours("23:59-00:01", &f, &t), 0);
	assert_int_equal(f, 1439);
	assert_int_equal(t, 1);
	assert_int_equal(config_parse_hours("24:00-01:00", &f, &t), -1);
	assert_int_equal(config_parse_hours("08:60-09:00", &f, &t), -1);
	assert_int_equal(config_parse_hours("08:00 - 09:00", &f, &t), -1);
	assert_int_equal(config_parse_timezone("+08:00", &off), 0);
	assert_int_equal(off, 480);
	assert_int_equal(config_parse_timezone("-05:30", &off), 0);
	assert_int_equal(off, -330);
	assert_int_equal(config_parse_timezone("Asia/Shanghai", &off), 0);
	assert_int_equal(off, 480);
	assert_int_equal(config_parse_timezone("UTC", &off), 0);
	assert_int_equal(off, 0);
	assert_int_equal(config_parse_timezone("+15:00", &off), -1);
	assert_int_equal(config_parse_timezone("+8", &off), -1);
	assert_int_equal(config_parse_timezone("America/New_York", &off), -1);
}

/* notify.routes: a list of mappings, defaults, and every error at its line. */
static void
test_notify_routes(void **state)
{
	struct config	*c;
	struct sbuf	 errs;
	const char	*path;

	(void)state;
	sbuf_init(&errs);
	c = load("dashboard: {public_url: \"https://cs.example.com/\"}\n"
	    "notify:\n"
	    "  daily_at: \"09:30\"\n"
	    "  daily_route: ops\n"
	    "  routes:\n"
	    "    - match: {severity: [critical], type: rule.hit}\n"
	    "      target: dingtalk\n"
	    "      url: https://oapi.dingtalk.com/robot/send?access_token=x\n"
	    "      secret: SEC\n"
	    "    - name: ops\n"
	    "      target: webhook\n"
	    "      url: http://127.0.0.1:8099/hook\n"
	    "      rate: 5/s\n"
	    "      template: \"{agent}\"\n", NULL, 0, &errs, &path);
	assert_string_equal(sbuf_str(&errs), "");
	assert_non_null(c);
	assert_int_equal(c->notify.nroutes, 2);
	assert_string_equal(c->notify.routes[0].name, "route-1");
	assert_int_equal(c->notify.routes[0].target, CONFIG_TARGET_DINGTALK);
	assert_int_equal(c->notify.routes[0].match[CONFIG_MATCH_SEVERITY].n, 1);
	assert_string_equal(c->notify.routes[0].match[CONFIG_MATCH_TYPE].v[0], "rule.hit");
	assert_int_equal(c->notify.routes[0].rate_n, 20);
	assert_int_equal(c->notify.routes[0].rate_ms, 60000);
	assert_int_equal(c->notify.routes[1].rate_n, 5);
	assert_int_equal(c->notify.routes[1].rate_ms, 1000);
	assert_string_equal(c->notify.routes[1].tmpl, "{agent}");
	assert_int_equal(c->notify.daily_at_min, 9 * 60 + 30);
	assert_string_equal(c->dashboard.public_url, "https://cs.example.com/");
	assert_int_equal(c->notify.attempts, 5);
	assert_int_equal(c->report.retention_days, 400);
	config_free(c);

	sbuf_reset(&errs);
	c = load("notify:\n"
	    "  daily_route: nobody\n"
	    "  routes:\n"
	    "    - target: fax\n"
	    "      url: http://example.com/x\n"
	    "      rate: often\n"
	    "      match: {colour: red}\n"
	    "    - name: a\n"
	    "      target: slack\n"
	    "      url: https://hooks.slack.com/x\n"
	    "      volume: 11\n"
	    "    - 7\n"
	    "    - name: \"a b\"\n"
	    "      target: webhook\n"
	    "      url: http://localhost/x\n"
	    "    - target: webhook\n"
	    "      url: http://127.0.0.1:x/\n", NULL, 0, &errs, &path);
	assert_null(c);
	assert_errs(&errs, path,
	    "@:4: notify.routes[0].target: unknown target 'fax' (want dingtalk, "
	    "wecom, feishu, slack or webhook)\n"
	    "@:5: notify.routes[0].url: bad URL 'http://example.com/...': http:// only "
	    "to 127.0.0.1, localhost or [::1]; use https://\n"
	    "@:6: notify.routes[0].rate: bad rate 'often': want N/s, N/min or N/h, "
	    "e.g. 20/min\n"
	    "@:7: notify.routes[0].match: unknown key 'colour' (want type, severity, "
	    "category, agent, shop or queue)\n"
	    "@:11: notify.routes[1]: unknown key 'volume' (want name, match, target, "
	    "url, secret, rate or template)\n"
	    "@:12: notify.routes[2]: expected a mapping, got a scalar\n"
	    "@:13: notify.routes[3].name: 'a b': want 1 to 64 letters, digits, '.', "
	    "'_' or '-'\n"
	    "@:17: notify.routes[4].url: bad URL 'http://127.0.0.1:x/': a bad port: "
	    "want 1 to 65535\n"
	    "@:2: notify.daily_route: needs notify.daily_at\n"
	    "@:2: notify.daily_route: no route is named 'nobody'\n", "routes");
	/* a fragment is never sent: DingTalk's signature after it was not either */
	sbuf_reset(&errs);
	c = load("notify:\n  routes:\n    - target: dingtalk\n"
	    "      url: https://oapi.dingtalk.com/robot/send?access_token=t#group1\n"
	    "      secret: s\n", NULL, 0, &errs, NULL);
	assert_null(c);
	assert_non_null(strstr(sbuf_str(&errs), ":4: notify.routes[0].url: bad URL "
	    "'https://oapi.dingtalk.com/robot/...': a fragment (#...) is never sent "
	    "to the server: remove it\n"));
	/* plain http only to this machine: not to one named after a user name */
	sbuf_reset(&errs);
	c = load("notify:\n  routes:\n    - target: webhook\n"
	    "      url: http://localhost:80@robot.example/x\n", NULL, 0, &errs, NULL);
	assert_null(c);
	assert_non_null(strstr(sbuf_str(&errs), ":4: notify.routes[0].url: bad URL "
	    "'http://...@robot.example/...': no user name or password in the URL\n"));
	/*
	 * A robot's URL is a credential: the error names the scheme, host and
	 * path, never the token in the query (DingTalk, WeCom), in the last
	 * segment (Feishu, Slack) or a password (found by review: the error
	 * quoted the URL whole, the start of the access token with it).
	 */
	sbuf_reset(&errs);
	c = load("notify:\n  routes:\n"
	    "    - target: dingtalk\n"
	    "      url: http://oapi.dingtalk.com/robot/send?access_token=9f8e7d6c5b4a\n"
	    "    - target: feishu\n"
	    "      url: http://open.feishu.cn/open-apis/bot/v2/hook/0f1e2d3c-4b5a\n"
	    "    - target: webhook\n"
	    "      url: ftp://bob:pw0rd@h.example/hook/#frag9\n"
	    "    - target: wecom\n"
	    "      url: 'https://'\n", NULL, 0, &errs, NULL);
	assert_null(c);
	assert_non_null(strstr(sbuf_str(&errs), ":4: notify.routes[0].url: bad URL "
	    "'http://oapi.dingtalk.com/robot/...': http:// only to"));
	assert_non_null(strstr(sbuf_str(&errs), ":6: notify.routes[1].url: bad URL "
	    "'http://open.feishu.cn/open-apis/bot/v2/hook/...': http:// only to"));
	assert_non_null(strstr(sbuf_str(&errs), ":8: notify.routes[2].url: bad URL "
	    "'ftp://...@h.example/hook/...': want https://"));
	assert_non_null(strstr(sbuf_str(&errs), ":10: notify.routes[3].url: bad URL "
	    "'https://': no host\n"));
	assert_null(strstr(sbuf_str(&errs), "9f8e"));
	assert_null(strstr(sbuf_str(&errs), "0f1e"));
	assert_null(strstr(sbuf_str(&errs), "pw0rd"));
	assert_null(strstr(sbuf_str(&errs), "frag9"));
	sbuf_free(&errs);
}

/* ------------------------------------------------------------ shops */

static void
assert_hours(const struct config_sla *sla, int from_h, int to_h)
{
	assert_int_equal(sla->nhours, 1);
	assert_int_equal(sla->hours[0].from_min, from_h * 60);
	assert_int_equal(sla->hours[0].to_min, to_h * 60);
}

/*
 * Key by key, nearest level first: explicit, else the level's profile,
 * else the level above's resolved value; the top level's value is its
 * final one (overrides and its profile applied), wherever shops: is.
 */
static void
test_shops_inherit(void **state)
{
	static const char shops[] =
	    "shops:\n"
	    "  a:\n"
	    "  b: {profile: jd}\n"
	    "  c:\n"
	    "    name: 拼多多店\n"
	    "    profile: pdd\n"
	    "    sla: {reply: 60s}\n"
	    "    rules: [packs/c.yaml, /abs/d.d]\n"
	    "    rules_off: offplatform.contact_app\n"
	    "    queues:\n"
	    "      q1:\n"
	    "      q2: {profile: jd}\n"
	    "      q3: {sla: {reply: 100s, warn_at: 0.9}}\n"
	    "      q4: {hours: ['10:00-11:00'], timezone: UTC}\n"
	    "  d: {profile: custom}\n"
	    "  e: {hours: [], timezone: UTC, sla: {cap: 5m}}\n";
	static const char top[] =
	    "sla:\n  profile: taobao\n  reply: 40s\n  warn_at: 0.5\n";
	char				*ov[] = { "sla.first_response=12s" };
	char				 text[2048];
	const struct config_shop	*s;
	const struct config_sla		*q;
	struct config			*c;
	struct sbuf			 errs;
	const char			*path, *slash;
	int				 order;

	(void)state;
	sbuf_init(&errs);
	for (order = 0; order < 2; order++) {
		snprintf(text, sizeof(text), "%s%s", order ? shops : top,
		    order ? top : shops);
		c = load(text, ov, 1, &errs, &path);
		assert_string_equal(sbuf_str(&errs), "");
		assert_non_null(c);
		assert_int_equal(c->nshops, 5);
		/* the top level: taobao, its reply and the override */
		assert_int_equal(c->sla.first_response_ms, 12000);
		assert_int_equal(c->sla.reply_ms, 40000);

		/* a: all the top level's, profile included */
		assert_non_null(s = config_shop_find(c, "a"));
		assert_null(s->name);
		assert_int_equal(s->nqueues, 0);
		assert_int_equal(s->rules.n, 0);
		assert_int_equal(s->sla.profile, CONFIG_PROFILE_TAOBAO);
		assert_int_equal(s->sla.first_response_ms, 12000);
		assert_int_equal(s->sla.reply_ms, 40000);
		assert_int_equal(s->sla.rate_ms, 180000);
		assert_true(s->sla.warn_at > 0.49 && s->sla.warn_at < 0.51);
		assert_hours(&s->sla, 8, 23);
		assert_int_equal(s->sla.utc_offset_min, 480);
		assert_int_equal(s->line, order ? 2 : 6);

		/* b: jd's values for the keys jd sets, the top level's for the rest */
		assert_non_null(s = config_shop_find(c, "b"));
		assert_int_equal(s->sla.profile, CONFIG_PROFILE_JD);
		assert_int_equal(s->sla.first_response_ms, 30000);
		assert_int_equal(s->sla.reply_ms, 30000);
		assert_int_equal(s->sla.rate_ms, 30000);
		assert_int_equal(s->sla.escalate_ms, 180000);
		assert_true(s->sla.warn_at > 0.49 && s->sla.warn_at < 0.51);
		assert_hours(&s->sla, 9, 23);

		/* c: its own reply over pdd's, pdd over the top level's */
		assert_non_null(s = config_shop_find(c, "c"));
		assert_string_equal(s->name, "拼多多店");
		assert_int_equal(s->sla.profile, CONFIG_PROFILE_PDD);
		assert_int_equal(s->sla.reply_ms, 60000);
		assert_int_equal(s->sla.first_response_ms, 30000);
		assert_int_equal(s->sla.escalate_ms, 300000);
		assert_int_equal(s->sla.idle_ms, 30 * 60000);
		assert_hours(&s->sla, 8, 23);
		/* packs are the file's directory's, as the top level's rules */
		assert_int_equal(s->rules.n, 2);
		slash = strrchr(path, '/');
		assert_memory_equal(s->rules.v[0], path, (size_t)(slash - path + 1));
		assert_string_equal(s->rules.v[0] + (slash - path + 1), "packs/c.yaml");
		assert_string_equal(s->rules.v[1], "/abs/d.d");
		assert_int_equal(s->rules_off.n, 1);
		assert_string_equal(s->rules_off.v[0], "offplatform.contact_app");
		assert_int_equal(s->nqueues, 4);
		assert_string_equal(s->queues[0].id, "q1");
		/* q1: the shop's, all of it */
		q = &s->queues[0].sla;
		assert_int_equal(q->profile, CONFIG_PROFILE_PDD);
		assert_int_equal(q->reply_ms, 60000);
		assert_int_equal(q->escalate_ms, 300000);
		/* q2: jd's values over the shop's, even over the shop's explicit reply */
		q = &s->queues[1].sla;
		assert_int_equal(q->profile, CONFIG_PROFILE_JD);
		assert_int_equal(q->reply_ms, 30000);
		assert_int_equal(q->rate_ms, 30000);
		assert_int_equal(q->escalate_ms, 180000);
		assert_hours(q, 9, 23);
		/* q3: its own keys, the shop's for the rest */
		q = &s->queues[2].sla;
		assert_int_equal(q->profile, CONFIG_PROFILE_PDD);
		assert_int_equal(q->reply_ms, 100000);
		assert_int_equal(q->escalate_ms, 300000);
		assert_true(q->warn_at > 0.89 && q->warn_at < 0.91);
		assert_hours(q, 8, 23);
		/* q4: the shorthand keys */
		q = &s->queues[3].sla;
		assert_int_equal(q->nhours, 1);
		assert_int_equal(q->hours[0].from_min, 600);
		assert_int_equal(q->hours[0].to_min, 660);
		assert_int_equal(q->utc_offset_min, 0);
		assert_int_equal(q->reply_ms, 60000);

		/* d: custom is the defaults of the keys a profile sets: always in service */
		assert_non_null(s = config_shop_find(c, "d"));
		assert_int_equal(s->sla.profile, CONFIG_PROFILE_CUSTOM);
		assert_int_equal(s->sla.first_response_ms, 15000);
		assert_int_equal(s->sla.reply_ms, 30000);
		assert_int_equal(s->sla.nhours, 0);
		assert_true(s->sla.warn_at > 0.49 && s->sla.warn_at < 0.51);

		/* e: no hours at all, its own zone, the top level's profile */
		assert_non_null(s = config_shop_find(c, "e"));
		assert_int_equal(s->sla.profile, CONFIG_PROFILE_TAOBAO);
		assert_int_equal(s->sla.nhours, 0);
		assert_int_equal(s->sla.utc_offset_min, 0);
		assert_int_equal(s->sla.cap_ms, 300000);
		assert_int_equal(s->sla.reply_ms, 40000);

		/* the lookups */
		assert_ptr_equal(config_sla_for(c, "c", "q2"), &config_shop_find(c,
		    "c")->queues[1].sla);
		assert_ptr_equal(config_sla_for(c, "c", "nope"),
		    &config_shop_find(c, "c")->sla);
		assert_ptr_equal(config_sla_for(c, "c", ""), &config_shop_find(c,
		    "c")->sla);
		assert_ptr_equal(config_sla_for(c, "b", "q2"), &config_shop_find(c,
		    "b")->sla);
		assert_ptr_equal(config_sla_for(c, "zz", "q1"), &c->sla);
		assert_ptr_equal(config_sla_for(c, "", "q1"), &c->sla);
		assert_null(config_shop_find(c, "zz"));
		assert_null(config_shop_find(c, ""));
		config_free(c);
	}

	/* an override of the top level's profile reaches every shop that inherits */
	{
		char *ov2[] = { "sla.profile=pdd" };

		c = load("shops: {a: , b: {profile: jd, sla: {hours: []}}}\n", ov2, 1,
		    &errs, NULL);
		assert_string_equal(sbuf_str(&errs), "");
		assert_non_null(c);
		assert_int_equal(config_shop_find(c, "a")->sla.reply_ms, 180000);
		assert_int_equal(config_shop_find(c, "a")->sla.profile,
		    CONFIG_PROFILE_PDD);
		assert_int_equal(config_shop_find(c, "b")->sla.reply_ms, 30000);
		assert_int_equal(config_shop_find(c, "b")->sla.nhours, 0);
		config_free(c);
	}

	/* no shops: the lookups give the top level's */
	c = load("", NULL, 0, &errs, NULL);
	assert_non_null(c);
	assert_int_equal(c->nshops, 0);
	assert_null(c->shops);
	assert_int_equal(c->shops_refuse, 0);
	assert_null(c->shop_id_name);
	assert_null(c->queue_id_name);
	assert_null(c->protocol.shop);
	assert_null(c->protocol.queue);
	assert_ptr_equal(config_sla_for(c, "a", "b"), &c->sla);
	config_free(c);
	c = load("shops:\n", NULL, 0, &errs, NULL);
	assert_non_null(c);
	assert_int_equal(c->nshops, 0);
	config_free(c);
	assert_string_equal(sbuf_str(&errs), "");
	sbuf_free(&errs);
}

/* The keys that say where a turn's shop and queue come from. */
static void
test_shop_sources(void **state)
{
	struct config	*c;
	struct sbuf	 errs;
	const char	*path;

	(void)state;
	sbuf_init(&errs);
	c = load("protocol: {shop: /meta/shop, queue: /queue}\n"
	    "shop_id: query:shop\nqueue_id: header:X-Queue\n"
	    "shops_unknown: refuse\n", NULL, 0, &errs, NULL);
	assert_string_equal(sbuf_str(&errs), "");
	assert_non_null(c);
	assert_string_equal(c->protocol.shop, "/meta/shop");
	assert_string_equal(c->protocol.queue, "/queue");
	assert_int_equal(c->shop_id_from, CONFIG_AGENT_ID_QUERY);
	assert_string_equal(c->shop_id_name, "shop");
	assert_int_equal(c->queue_id_from, CONFIG_AGENT_ID_HEADER);
	assert_string_equal(c->queue_id_name, "X-Queue");
	assert_int_equal(c->shops_refuse, 1);
	config_free(c);

	/* a claim of the agent's verified token; "" turns a source off */
	{
		char *ov[] = { "queue_id=''", "shops_unknown=default" };

		c = load("agent_id: jwt:query:token\nauth: {jwt_key: k}\n"
		    "shop_id: claim:shop\nqueue_id: claim:q\nshops_unknown: refuse\n",
		    ov, 2, &errs, NULL);
		assert_string_equal(sbuf_str(&errs), "");
		assert_non_null(c);
		assert_int_equal(c->shop_id_from, CONFIG_ID_CLAIM);
		assert_string_equal(c->shop_id_name, "shop");
		assert_null(c->queue_id_name);
		assert_int_equal(c->shops_refuse, 0);
		config_free(c);
	}

	c = load("shop_id: claim:shop\n"
	    "queue_id: cookie:q\n"
	    "shops_unknown: ignore\n"
	    "protocol:\n  shop: shop\n"
	    "agent_id: claim:x\n", NULL, 0, &errs, &path);
	assert_null(c);
	assert_errs(&errs, path,
	    "@:2: queue_id: bad id source 'cookie:q': want query:NAME, header:NAME "
	    "or claim:NAME\n"
	    "@:3: shops_unknown: bad choice 'ignore': want default or refuse\n"
	    "@:5: protocol.shop: bad JSON pointer 'shop': must start with '/'\n"
	    "@:6: agent_id: bad agent id source 'claim:x': want query:NAME, "
	    "header:NAME, jwt:query:NAME or jwt:header:NAME\n"
	    "@:1: shop_id: claim:NAME needs a jwt: agent_id (the claim is read from "
	    "the agent's verified token)\n", "shop sources");
	sbuf_reset(&errs);
	{
		char *ov[] = { "queue_id=claim:q", "shop_id=claim:" };

		c = load("", ov, 2, &errs, &path);
		assert_null(c);
		assert_errs(&errs, path,
		    "-o shop_id=claim:: shop_id: bad id source 'claim:': NAME is empty\n"
		    "-o queue_id=claim:q: queue_id: claim:NAME needs a jwt: agent_id "
		    "(the claim is read from the agent's verified token)\n",
		    "claim override");
	}
	sbuf_free(&errs);
}

/* Every error in a shop or a queue, at its line, named by its path. */
static void
test_shops_errors(void **state)
{
	struct config	*c;
	struct sbuf	 errs;
	const char	*path;
	char		*ov[] = { "shops.tmall.sla.reply=5s", "shops={}",
			    "shops_x=1" };

	(void)state;
	sbuf_init(&errs);
	c = load("shops:\n"					/* 1 */
	    "  tmall:\n"
	    "    profile: tmall\n"
	    "    hours: [08:00-23:00]\n"
	    "    sla:\n"					/* 5 */
	    "      reply: 20x\n"
	    "      hours: []\n"
	    "      colour: red\n"
	    "      timezone: Mars/Olympus\n"
	    "    sla: {}\n"					/* 10 */
	    "    name: ''\n"
	    "    rules: {a: b}\n"
	    "    rules_off: [ok.id, 'a b', [x]]\n"
	    "    colour: red\n"
	    "    queues:\n"					/* 15 */
	    "      'bad id': {}\n"
	    "      presale:\n"
	    "        name: x\n"
	    "        profile: jd\n"
	    "        sla: {profile: pdd, warn_at: 2}\n"	/* 20 */
	    "      presale: {}\n"
	    "  jd: [1]\n"
	    "  'a/b': {}\n"
	    "  ? [k]\n"
	    "  : {}\n"					/* 25 */
	    "  tmall: {}\n"
	    "  pdd:\n"
	    "    sla: {escalate: 20s}\n"
	    "    queues:\n"
	    "      slow: {sla: {reply: 1h}}\n"		/* 30 */
	    "      ok: {profile: taobao}\n"
	    "      inh: {hours: []}\n"
	    "  p2:\n"
	    "    queues: [a]\n"
	    "    sla: 5\n", ov, 3, &errs, &path);		/* 35 */
	assert_null(c);
	assert_errs(&errs, path,
	    "@:3: shops.tmall: profile: unknown profile 'tmall': want taobao, jd, "
	    "pdd or custom\n"
	    "@:6: shops.tmall: sla.reply: bad duration '20x': unknown unit (use ms, "
	    "s, m or h)\n"
	    "@:7: shops.tmall: duplicate key 'sla.hours' (set at line 4 too)\n"
	    "@:8: shops.tmall: unknown key 'sla.colour'\n"
	    "@:9: shops.tmall: sla.timezone: bad time zone 'Mars/Olympus': want UTC, "
	    "an offset like +08:00, or a China zone name (Asia/Shanghai)\n"
	    "@:10: shops.tmall: duplicate key 'sla'\n"
	    "@:11: shops.tmall: name: expected a non-empty string\n"
	    "@:12: shops.tmall: rules: expected a list of strings, got a mapping\n"
	    "@:13: shops.tmall: rules_off: 'a b' contains a space or control "
	    "character\n"
	    "@:13: shops.tmall: rules_off[2]: expected a string, got a list\n"
	    "@:14: shops.tmall: unknown key 'colour' (want name, profile, hours, "
	    "timezone, sla, rules, rules_off or queues)\n"
	    "@:16: shops.tmall.queues: bad id 'bad id': want 1 to 64 letters, "
	    "digits, '.', '_' or '-'\n"
	    "@:18: shops.tmall.queues.presale: unknown key 'name' (want profile, "
	    "hours, timezone or sla)\n"
	    "@:20: shops.tmall.queues.presale: duplicate key 'sla.profile' (set at "
	    "line 19 too)\n"
	    "@:20: shops.tmall.queues.presale: sla.warn_at: '2' must be greater "
	    "than 0 and less than 1\n"
	    "@:21: shops.tmall.queues: duplicate key 'presale'\n"
	    "@:22: shops.jd: expected a mapping, got a list\n"
	    "@:23: shops: bad id 'a/b': want 1 to 64 letters, digits, '.', '_' or "
	    "'-'\n"
	    "@:24: shops: bad id (not a scalar): want 1 to 64 letters, digits, '.', "
	    "'_' or '-'\n"
	    "@:26: shops: duplicate key 'tmall'\n"
	    "@:34: shops.p2.queues: expected a mapping, got a list\n"
	    "@:35: shops.p2: sla: expected a mapping, got a scalar\n"
	    "-o shops.tmall.sla.reply=5s: set shops in the file\n"
	    "-o shops={}: set shops in the file\n"
	    "-o shops_x=1: unknown key 'shops_x'\n"
	    "@:27: shops.pdd: sla.escalate (20s) must be greater than sla.reply "
	    "(30s)\n"
	    "@:30: shops.pdd.queues.slow: sla.escalate (20s) must be greater than "
	    "sla.reply (1h)\n"
	    "@:32: shops.pdd.queues.inh: sla.escalate (20s) must be greater than "
	    "sla.reply (30s)\n", "shops errors");

	/* a queue's first_response too, and a top level that is wrong says it alone */
	sbuf_reset(&errs);
	c = load("shops:\n  a:\n    queues:\n      q: {sla: {first_response: 5m}}\n"
	    "  b: {sla: {escalate: 20s}}\n"
	    "sla: {reply: 1x}\n", NULL, 0, &errs, &path);
	assert_null(c);
	assert_errs(&errs, path,
	    "@:6: sla.reply: bad duration '1x': unknown unit (use ms, s, m or h)\n",
	    "top level bad");
	sbuf_reset(&errs);
	c = load("shops:\n  a:\n    queues:\n      q: {sla: {first_response: 5m}}\n"
	    "shops: 7\n", NULL, 0, &errs, &path);
	assert_null(c);
	assert_errs(&errs, path,
	    "@:5: duplicate key 'shops'\n"
	    "@:5: shops: expected a mapping of shop ids, got a scalar\n",
	    "shops twice");
	sbuf_reset(&errs);
	c = load("shops:\n  a:\n    queues:\n      q: {sla: {first_response: 5m}}\n",
	    NULL, 0, &errs, &path);
	assert_null(c);
	assert_errs(&errs, path,
	    "@:4: shops.a.queues.q: sla.escalate (3m) must be greater than "
	    "sla.first_response (5m)\n", "first_response");
	sbuf_free(&errs);
}

/* At most 1000 shops and 64 queues a shop; ids up to 64 characters. */
static void
test_shops_limits(void **state)
{
	struct sbuf	 text, errs;
	struct config	*c;
	const char	*path;
	char		 want[256];
	size_t		 i;

	(void)state;
	sbuf_init(&text);
	sbuf_init(&errs);
	sbuf_printf(&text, "shops:\n  s0:\n    queues:\n");
	for (i = 0; i < 65; i++)
		sbuf_printf(&text, "      q%zu:\n", i);
	for (i = 1; i < 1001; i++)
		sbuf_printf(&text, "  s%zu: {}\n", i);
	sbuf_printf(&text, "  %s: {}\n", "0123456789012345678901234567890123456789"
	    "012345678901234567890123");			/* 64: fine */
	c = load(sbuf_str(&text), NULL, 0, &errs, &path);
	assert_null(c);
	snprintf(want, sizeof(want), "@:%d: shops.s0.queues: at most 64 queues in "
	    "a shop\n@:%d: shops: at most 1000 shops\n", 4 + 64, 3 + 65 + 1000);
	assert_errs(&errs, path, want, "limits");
	sbuf_reset(&text);
	sbuf_reset(&errs);
	sbuf_printf(&text, "shops:\n  %s: {}\n  %s: {}\n",
	    "0123456789012345678901234567890123456789012345678901234567890123",
	    "0123456789012345678901234567890123456789012345678901234567890123x");
	c = load(sbuf_str(&text), NULL, 0, &errs, &path);
	assert_null(c);
	assert_errs(&errs, path, "@:3: shops: bad id '0123456789012345678901234567"
	    "89012345678901234567890123456789...': want 1 to 64 letters, digits, "
	    "'.', '_' or '-'\n", "long id");
	sbuf_free(&text);
	sbuf_free(&errs);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_sla_profiles),
		cmocka_unit_test(test_sla_errors),
		cmocka_unit_test(test_hours_and_timezones),
		cmocka_unit_test(test_every_key),
		cmocka_unit_test(test_redis_sentinel),
		cmocka_unit_test(test_redis_unix_relative),
		cmocka_unit_test(test_yaml_forms),
		cmocka_unit_test(test_listen_and_admin_share_a_port),
		cmocka_unit_test(test_bad_files),
		cmocka_unit_test(test_all_errors),
		cmocka_unit_test(test_cannot_open),
		cmocka_unit_test(test_overrides),
		cmocka_unit_test(test_bad_overrides),
		cmocka_unit_test(test_value_kinds),
		cmocka_unit_test(test_access_keys),
		cmocka_unit_test(test_alloc_failures),
		cmocka_unit_test(test_parse_size),
		cmocka_unit_test(test_notify_routes),
		cmocka_unit_test(test_shops_inherit),
		cmocka_unit_test(test_shop_sources),
		cmocka_unit_test(test_shops_errors),
		cmocka_unit_test(test_shops_limits),
		cmocka_unit_test(test_parse_duration),
		cmocka_unit_test(test_parse_addr),
		cmocka_unit_test(test_parse_ws_url),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
