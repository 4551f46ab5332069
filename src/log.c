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
#include "chatmon/util.h"

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

/*
 * Formats the message, and errstr after it, into msg[cap]; returns its
 * length, cut on a character boundary when it did not fit.
 */
static size_t
log_format(char *msg, size_t cap, const char *errstr, const char *fmt,
    va_list ap)
{
	size_t	len;
	int	m;

	if ((m = vsnprintf(msg, cap, fmt, ap)) < 0)
		return 0;
	len = (size_t)m;
	if (errstr != NULL && len < cap &&
	    (m = snprintf(msg + len, cap - len, ": %s", errstr)) > 0)
		len += (size_t)m;
	return len < cap ? len : util_utf8_trim(msg, cap - 1);
}

static void
log_emit_json(int level, const char *errstr, const char *fmt, va_list ap)
{
	char		msg[4096], line[8300];
	struct timespec	ts;
	struct tm	tm;
	size_t		len, n;

	len = log_format(msg, sizeof(msg), errstr, fmt, ap);
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = strftime(line, sizeof(line), "{\"ts\":\"%Y-%m-%dT%H:%M:%S", &tm);
	n += (size_t)snprintf(line + n, sizeof(line) - n,
	    ".%03ldZ\",\"level\":\"%s\",\"prog\":\"%s\",\"msg\":\"",
	    ts.tv_nsec / 1000000, log_names[level], log_prog);
	n = util_escape(line, sizeof(line) - 4, n, msg, len, 1);
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
log_emit(int level, int bare, const char *errstr, const char *fmt, va_list ap)
{
	char	msg[4096], line[4096];
	size_t	len, n;
	int	m;

	static const int	 prio[] = { 3, 4, 6, 7 };	/* syslog's err, warning, info, debug */

	if (!log_would(level))
		return;
	if (log_json) {
		log_emit_json(level, errstr, fmt, ap);
		return;
	}
	if (log_journal)
		m = snprintf(line, sizeof(line), "<%d>", prio[level]);
	else if (bare)
		m = 0;
	else
		m = snprintf(line, sizeof(line), "%s: %s: ", log_prog,
		    log_names[level]);
	if (m < 0 || (size_t)m >= sizeof(line) - 2)
		return;
	len = log_format(msg, sizeof(msg), errstr, fmt, ap);
	n = util_escape(line, sizeof(line) - 2, (size_t)m, msg, len, 0);
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
	log_emit(level, 0, NULL, fmt, ap);			\
	va_end(ap);						\
}

LOG_FN(log_warnx, LOG_LVL_WARN)
LOG_FN(log_info, LOG_LVL_INFO)
LOG_FN(log_debug, LOG_LVL_DEBUG)
LOG_FN(log_errx, LOG_LVL_ERR)

void
log_errline(const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	log_emit(LOG_LVL_ERR, 1, NULL, fmt, ap);
	va_end(ap);
}

static void
log_lines(int bare, const char *prefix, const struct sbuf *errs)
{
	const char	*p = sbuf_str(errs), *nl;

	for (; *p; p = nl + 1) {
		if ((nl = strchr(p, '\n')) == NULL)
			nl = p + strlen(p) - 1;
		if (bare)
			log_errline("%s%.*s", prefix, (int)(nl - p), p);
		else
			log_errx("%s%.*s", prefix, (int)(nl - p), p);
	}
}

void
log_errlines(const char *prefix, const struct sbuf *errs)
{
	log_lines(prefix == NULL, prefix != NULL ? prefix : "", errs);
}

void
log_errtext(const char *prefix, const struct sbuf *errs)
{
	log_lines(1, prefix, errs);
}

void
log_warn(const char *fmt, ...)
{
	const char	*e = strerror(errno);
	va_list		 ap;

	va_start(ap, fmt);
	log_emit(LOG_LVL_WARN, 0, e, fmt, ap);
	va_end(ap);
}

void
fatal(const char *fmt, ...)
{
	const char	*e = strerror(errno);
	va_list		 ap;

	va_start(ap, fmt);
	log_emit(LOG_LVL_ERR, 0, e, fmt, ap);
	va_end(ap);
	exit(1);
}

void
fatalx(const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	log_emit(LOG_LVL_ERR, 0, NULL, fmt, ap);
	va_end(ap);
	exit(1);
}
