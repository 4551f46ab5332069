/* log: one logging API for the daemon and the tool: stderr, one line per event. */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>

#include "chatmon/log.h"

static const char	*log_prog = "chatmon";
static int		 log_lvl = LOG_LVL_INFO;
static int		 log_json;
static int		 log_journal;	/* stderr is journald's stream */

static const char *const log_names[] = { "error", "warn", "info", "debug" };

/* systemd sets JOURNAL_STREAM to the device and inode of the stream it gave us. */
static int
log_is_journal(void)
{
	const char		*e = getenv("JOURNAL_STREAM");
	struct stat		 st;
	unsigned long long	 dev, ino;

	if (e == NULL || sscanf(e, "%llu:%llu", &dev, &ino) != 2 ||
	    fstat(fileno(stderr), &st) == -1)
		return 0;
	return (unsigned long long)st.st_dev == dev &&
	    (unsigned long long)st.st_ino == ino;
}

void
log_init(const char *progname, int level)
{
	log_prog = progname;
	log_lvl = level;
	log_journal = log_is_journal();
}

void
log_set_json(int json)
{
	log_json = json;
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

/* Appends s to out as the inside of a JSON string. */
static size_t
log_json_escape(char *out, size_t cap, size_t n, const char *s)
{
	const unsigned char	*p;

	for (p = (const unsigned char *)s; *p != '\0' && n + 7 < cap; p++) {
		if (*p == '"' || *p == '\\') {
			out[n++] = '\\';
			out[n++] = (char)*p;
		} else if (*p < 0x20)
			n += (size_t)snprintf(out + n, cap - n, "\\u%04x", *p);
		else
			out[n++] = (char)*p;
	}
	return n;
}

static void
log_emit_json(int level, const char *errstr, const char *fmt, va_list ap)
{
	char		msg[4096], line[8300];
	struct timespec	ts;
	struct tm	tm;
	size_t		n;
	int		m;

	m = vsnprintf(msg, sizeof(msg), fmt, ap);
	if (m >= 0 && errstr != NULL && (size_t)m < sizeof(msg))
		snprintf(msg + m, sizeof(msg) - (size_t)m, ": %s", errstr);
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = strftime(line, sizeof(line), "{\"ts\":\"%Y-%m-%dT%H:%M:%S", &tm);
	n += (size_t)snprintf(line + n, sizeof(line) - n,
	    ".%03ldZ\",\"level\":\"%s\",\"prog\":\"%s\",\"msg\":\"",
	    ts.tv_nsec / 1000000, log_names[level], log_prog);
	n = log_json_escape(line, sizeof(line) - 4, n, msg);
	line[n++] = '"';
	line[n++] = '}';
	line[n++] = '\n';
	line[n] = '\0';
	fputs(line, stderr);
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

	static const int	 prio[] = { 3, 4, 6, 7 };	/* syslog's err, warning, info, debug */

	if (!log_would(level))
		return;
	if (log_json) {
		log_emit_json(level, errstr, fmt, ap);
		return;
	}
	if (log_journal)
		n = snprintf(line, sizeof(line), "<%d>", prio[level]);
	else
		n = snprintf(line, sizeof(line), "%s: %s: ", log_prog,
		    log_names[level]);
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
