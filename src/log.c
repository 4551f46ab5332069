/* log: one logging API for the daemon and the tool: stderr, one line per event. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "chatmon/log.h"

static const char	*log_prog = "chatmon";
static int		 log_lvl = LOG_LVL_INFO;

static const char *const log_names[] = { "error", "warn", "info", "debug" };

void
log_init(const char *progname, int level)
{
	log_prog = progname;
	log_lvl = level;
}

void
log_set_level(int level)
{
	log_lvl = level;
}

int
log_get_level(void)
{
	return log_lvl;
}

int
log_level_parse(const char *s)
{
	size_t	i;

	for (i = 0; i < UTIL_NELEM(log_names); i++)
		if (strcasecmp(s, log_names[i]) == 0)
			return (int)i;
	if (strcasecmp(s, "warning") == 0)
		return LOG_LVL_WARN;
	return -1;
}

const char *
log_level_name(int level)
{
	if (level < 0 || (size_t)level >= UTIL_NELEM(log_names))
		return "?";
	return log_names[level];
}

int
log_would(int level)
{
	return level <= log_lvl;
}

/*
 * One write per line, so lines from a busy daemon never interleave: the
 * whole line is formatted first, then written with one fputs on a stderr
 * that is unbuffered.
 */
static void
log_emit(int level, const char *errstr, const char *fmt, va_list ap)
{
	char	line[4096];
	int	n;

	if (!log_would(level))
		return;
	n = snprintf(line, sizeof(line), "%s: %s: ", log_prog, log_names[level]);
	if (n < 0)
		return;
	if ((size_t)n < sizeof(line))
		n += vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
	if (errstr != NULL && n >= 0 && (size_t)n < sizeof(line))
		n += snprintf(line + n, sizeof(line) - (size_t)n, ": %s", errstr);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(line) - 1)
		n = (int)sizeof(line) - 2;	/* truncated: keep the newline */
	line[n++] = '\n';
	line[n] = '\0';
	fputs(line, stderr);
}

#define LOG_FN(name, level)					\
void								\
name(const char *fmt, ...)					\
{								\
	va_list	ap;						\
								\
	va_start(ap, fmt);					\
	log_emit(level, NULL, fmt, ap);				\
	va_end(ap);						\
}

LOG_FN(log_warnx, LOG_LVL_WARN)
LOG_FN(log_info, LOG_LVL_INFO)
LOG_FN(log_debug, LOG_LVL_DEBUG)
LOG_FN(log_errx, LOG_LVL_ERR)

void
log_warn(const char *fmt, ...)
{
	const char	*e = strerror(errno);
	va_list		 ap;

	va_start(ap, fmt);
	log_emit(LOG_LVL_WARN, e, fmt, ap);
	va_end(ap);
}

void
fatal(const char *fmt, ...)
{
	const char	*e = strerror(errno);
	va_list		 ap;

	va_start(ap, fmt);
	log_emit(LOG_LVL_ERR, e, fmt, ap);
	va_end(ap);
	exit(1);
}

void
fatalx(const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	log_emit(LOG_LVL_ERR, NULL, fmt, ap);
	va_end(ap);
	exit(1);
}
