/* cliconf: the -c FILE, -o key.path=value and --redis URL options of a tool command, and the configuration they name. */
#ifndef CHATMON_CLICONF_H
#define CHATMON_CLICONF_H

#include <stddef.h>

#include "chatmon/config.h"

struct cliconf {
	const char	*path;		/* -c, or the default */
	int		 explicit;	/* -c was given */
	char		**ov;		/* the -o values (argv's strings; the array is owned) */
	size_t		 nov;
};

void	cliconf_init(struct cliconf *, const char *default_path);
/*
 * Takes getopt's ch ('c' or 'o') and optarg. 0, or -1 on ENOMEM (said on
 * stderr as "chatmon: WHO: out of memory").
 */
int	cliconf_opt(struct cliconf *, int ch, const char *arg, const char *who);
/*
 * The configuration, or NULL with every error on stderr (FILE:LINE: ...).
 * Without -c and without a file at the default place (a build tree), the
 * built-in defaults. The caller config_free()s it; one that runs for long
 * takes log.level and log.format from it.
 */
struct config *cliconf_load(const struct cliconf *);
/*
 * --redis URL: the server named instead of redis.url, and instead of
 * Sentinel too. 0, or -1 (said on stderr as "chatmon: WHO: --redis: ...",
 * a usage error) when url is not a Redis URL.
 */
int	cliconf_redis(struct config *, const char *url, const char *who);
void	cliconf_free(struct cliconf *);

#endif
