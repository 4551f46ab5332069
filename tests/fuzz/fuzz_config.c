/* fuzz_config: a chatmond.yaml through config_load, alone, with -o overrides from the input, and the overrides alone. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "chatmon/config.h"
#include "chatmon/log.h"
#include "chatmon/util.h"

#include "fuzz.h"

/*
 * The input is "FILE\0OVERRIDE\0OVERRIDE...": the bytes before the first
 * NUL are the configuration file, each NUL-separated piece after it one
 * "-o key.path=value" (at most MAX_OVERRIDES). The file is kept in memory
 * (config_load takes a path). It is loaded without the overrides, then
 * with them, then the overrides are applied to the defaults alone (path
 * NULL).
 *
 * What is checked: NULL comes with at least one error line, as config.h
 * says; a configuration that loads holds only what config.h promises
 * (ports 1..65535, 0 < warn_at < 1, escalate after reply, hours in range,
 * JSON pointers that start with '/', a message type at least).
 */

#define MAX_OVERRIDES	8

static struct fuzz_file	conf_file;
static int		verbose;	/* FUZZ_VERBOSE set: say what each load did */

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	/* config.c may log; the fuzzer's output is for its own findings */
	log_init("fuzz_config", LOG_LVL_ERR);
	fuzz_file_init(&conf_file, "fuzz-chatmond.yaml");
	verbose = getenv("FUZZ_VERBOSE") != NULL;
	return 0;
}

static void
check_port(int port)
{
	FUZZ_CHECK(port >= 1 && port <= 65535);
}

static void
check_ptr(const char *p, int optional)
{
	if (p == NULL) {
		FUZZ_CHECK(optional);
		return;
	}
	FUZZ_CHECK(p[0] == '/');
}

static void
check_config(const struct config *c, const char *path)
{
	size_t	i;

	if (path != NULL)
		FUZZ_CHECK(c->file != NULL && strcmp(c->file, path) == 0);
	check_port(c->listen.port);
	check_port(c->admin.port);
	check_port(c->dashboard.listen.port);
	check_port(c->upstream_url.port);
	FUZZ_CHECK(c->upstream != NULL);
	check_ptr(c->protocol.type, 0);
	check_ptr(c->protocol.conversation, 0);
	check_ptr(c->protocol.text, 0);
	check_ptr(c->protocol.robot, 1);
	FUZZ_CHECK(c->protocol.message_types.n > 0);
	for (i = 0; i < c->protocol.message_types.n; i++)
		FUZZ_CHECK(c->protocol.message_types.v[i] != NULL);
	for (i = 0; i < c->protocol.end_types.n; i++)
		FUZZ_CHECK(c->protocol.end_types.v[i] != NULL);
	FUZZ_CHECK(c->sla.warn_at > 0 && c->sla.warn_at < 1);
	FUZZ_CHECK(c->sla.escalate_ms > c->sla.reply_ms);
	FUZZ_CHECK(c->sla.nhours <= CONFIG_MAX_HOURS);
	for (i = 0; i < c->sla.nhours; i++) {
		FUZZ_CHECK(c->sla.hours[i].from_min < 1440);
		FUZZ_CHECK(c->sla.hours[i].to_min >= 1 &&
		    c->sla.hours[i].to_min <= 1440);
	}
	FUZZ_CHECK(config_profile_name(c->sla.profile) != NULL);
	FUZZ_CHECK(c->rules != NULL);
	FUZZ_CHECK(c->redis.url != NULL);
}

static void
load(const char *path, char *const *ov, size_t nov)
{
	struct sbuf	 errs;
	struct config	*c;

	sbuf_init(&errs);
	c = config_load(path, ov, nov, &errs);
	if (verbose)
		fprintf(stderr, "fuzz_config: %s with %zu overrides: %s\n%s",
		    path ? path : "(defaults)", nov, c ? "loaded" : "refused",
		    sbuf_str(&errs));
	if (c == NULL)
		FUZZ_CHECK(errs.lines > 0);
	else
		check_config(c, path);
	config_free(c);
	sbuf_free(&errs);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char		*ov[MAX_OVERRIDES];
	const uint8_t	*rest, *z;
	size_t		 rest_len, head_len, nov = 0, i, n;

	if (fuzz_split(data, size, &rest, &rest_len)) {
		head_len = (size_t)(rest - data) - 1;
		while (nov < MAX_OVERRIDES) {
			z = memchr(rest, '\0', rest_len);
			n = z != NULL ? (size_t)(z - rest) : rest_len;
			ov[nov++] = fuzz_strndup(rest, n);
			if (z == NULL)
				break;
			rest += n + 1;
			rest_len -= n + 1;
		}
	} else
		head_len = size;

	fuzz_file_put(&conf_file, data, head_len);
	load(conf_file.path, NULL, 0);
	if (nov > 0) {
		load(conf_file.path, ov, nov);
		load(NULL, ov, nov);
	}
	for (i = 0; i < nov; i++)
		free(ov[i]);
	return 0;
}
