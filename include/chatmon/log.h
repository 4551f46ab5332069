/* log: one logging API for the daemon and the tool: stderr, one line per event. */
#ifndef CHATMON_LOG_H
#define CHATMON_LOG_H

#include "chatmon/util.h"

enum log_level {
	LOG_LVL_ERR = 0,
	LOG_LVL_WARN,
	LOG_LVL_INFO,
	LOG_LVL_DEBUG,
};

/* progname is kept by pointer (pass a literal or argv[0]). */
void	log_init(const char *progname, int level);
void	log_set_level(int level);
/*
 * text: "chatmond: info: message", or "<6>message" when stderr is the
 * journal (JOURNAL_STREAM names it), which records the level and the name
 * itself; json: one object per line {"ts","level","prog","msg"}. Either
 * way a message is one line whatever its arguments hold: control
 * characters and bytes that are not UTF-8 are escaped (docs/operations.md,
 * "Logs"), so a caller may log what a peer sent as it is.
 */
void	log_set_json(int json);
int	log_get_level(void);
/* "error", "warn", "info", "debug" -> level; -1 when unknown. */
int	log_level_parse(const char *);
const char *log_level_name(int);
/* True when a message at this level would be written (guard costly args). */
int	log_would(int level);

/* Messages start with the calling function's name, by convention. */
void	log_warn(const char *, ...) UTIL_PRINTF(1, 2);	/* appends strerror(errno) */
void	log_warnx(const char *, ...) UTIL_PRINTF(1, 2);
void	log_info(const char *, ...) UTIL_PRINTF(1, 2);
void	log_debug(const char *, ...) UTIL_PRINTF(1, 2);
void	log_errx(const char *, ...) UTIL_PRINTF(1, 2);
/*
 * An error that is a line of its own, "FILE:LINE: message" as a compiler
 * prints it: as it is on a terminal, at the journal's error priority
 * (<3>) when stderr is the journal, as log_errx in JSON.
 */
void	log_errline(const char *, ...) UTIL_PRINTF(1, 2);
/* Each line of errs on its own: log_errline, or log_errx after prefix when there is one. */
void	log_errlines(const char *prefix, const struct sbuf *errs);
/*
 * Each line of errs after prefix, as log_errline writes it: a tool's own
 * words on a terminal ("chatmon: dashboard: ..."), at error priority in the
 * journal. For the start errors of chatmon's services.
 */
void	log_errtext(const char *prefix, const struct sbuf *errs);
__attribute__((noreturn)) void fatal(const char *, ...) UTIL_PRINTF(1, 2);
__attribute__((noreturn)) void fatalx(const char *, ...) UTIL_PRINTF(1, 2);

#endif
