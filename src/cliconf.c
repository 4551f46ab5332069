/* cliconf: the -c FILE, -o key.path=value and --redis URL options of a tool command, and the configuration they name. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "chatmon/cliconf.h"
#include "chatmon/log.h"

void
cliconf_init(struct cliconf *c, const char *default_path)
{
	c->path = default_path;
	c->explicit = 0;
	c->ov = NULL;
	c->nov = 0;
}

int
cliconf_opt(struct cliconf *c, int ch, const char *arg, const char *who)
{
	char	**nov;

	if (ch == 'c') {
		c->path = arg;
		c->explicit = 1;
		return 0;
	}
	if ((nov = reallocarray(c->ov, c->nov + 1, sizeof(*nov))) == NULL) {
		fprintf(stderr, "chatmon: %s: out of memory\n", who);
		return -1;
	}
	c->ov = nov;
	c->ov[c->nov++] = (char *)arg;
	return 0;
}

struct config *
cliconf_load(const struct cliconf *c)
{
	struct config	*cfg;
	struct sbuf	 errs;
	const char	*path = c->path;

	/* installed, the default file is there; in a build tree it may not be */
	if (!c->explicit && access(path, F_OK) == -1 && errno == ENOENT)
		path = NULL;
	sbuf_init(&errs);
	cfg = config_load(path, c->ov, c->nov, &errs);
	if (cfg == NULL)
		log_errlines(NULL, &errs);	/* under systemd, at error priority */
	sbuf_free(&errs);
	if (cfg != NULL && path == NULL)
		log_debug("cliconf_load: no %s: the built-in defaults", c->path);
	return cfg;
}

int
cliconf_redis(struct config *cfg, const char *url, const char *who)
{
	if (config_parse_redis_url(url, &cfg->redis.target) == -1) {
		fprintf(stderr, "chatmon: %s: --redis: want redis://host[:port][/db] "
		    "or unix:/path, not '%s'\n", who, url);
		return -1;
	}
	cfg->redis.nsentinels = 0;
	return 0;
}

void
cliconf_free(struct cliconf *c)
{
	free(c->ov);
	c->ov = NULL;
	c->nov = 0;
}
