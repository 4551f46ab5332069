/* replay: `chatmon replay`: a chat log through the rules and SLA engines on a virtual clock, alerts out. */
#ifndef CHATMON_REPLAY_H
#define CHATMON_REPLAY_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct config;
struct pipeline_alert;
struct sbuf;
struct sla;
struct sla_event;
struct sla_round;

/*
 * argv[0] is "replay". Reads JSON Lines {"ts","conversation","role",
 * "agent","text"[,"robot"]} from the files (or stdin) and writes every
 * alert, one per line, then {"type":"summary",...}. Returns the exit code:
 * 0 every line good; 1 a bad line (reported as FILE:LINE and skipped, the
 * rest still counts), an input that cannot be read, or a configuration or
 * rules error; 2 a usage error.
 */
int	replay_main(int argc, char **argv, const char *default_config);

/*
 * The engine under `chatmon replay`, for every command that reads a chat
 * log the same way (`chatmon report --log`), so that a log is judged once,
 * one way: the configuration's rules, model and SLA, the daemon's pipeline,
 * the log's own clock (every deadline up to a line's time fires before the
 * line, earliest first; nothing fires after the last line).
 *
 * Each hook (any may be NULL) hears of what happens as it happens, in
 * order; it returns 0, or -1 (ENOMEM) to stop the run. Hooks may not call
 * back into the engine; what they are given is valid during the call.
 */
struct replay_hooks {
	/* every alert the daemon would publish; at: the turn's time, or the event's due */
	int	(*alert)(const struct pipeline_alert *, int64_t at, void *arg);
	/* every SLA event (warn, breach, escalate), just before its alert */
	int	(*event)(const struct sla_event *, void *arg);
	/* every round as it closes (a reply) or ends unanswered */
	int	(*round)(const struct sla_round *, void *arg);
	void	*arg;
};

struct replay;

/*
 * Loads cfg's rules (and model); hooks is copied, cfg is only read here.
 * NULL with every error in errs (FILE:LINE for the rules; ENOMEM too).
 * The caller's, to replay_free.
 */
struct replay	*replay_new(const struct config *cfg,
		    const struct replay_hooks *hooks, struct sbuf *errs);
/* Open conversations are dropped, not ended: nothing fires. NULL is fine. */
void		 replay_free(struct replay *);

/*
 * One input through the engine (name "-": stdin), lines of at most max
 * bytes (replay_getline), in time order (across inputs too). A bad line is
 * reported on stderr as NAME:LINE: reason and skipped, an input that
 * cannot be read as "chatmon: NAME: reason". 0 every line good; 1 some
 * were not (the good ones still count); -1 on ENOMEM or a hook's -1,
 * not yet said.
 */
int		 replay_file(struct replay *, const char *name, size_t max);
/* The engine's SLA figures (sla_agents), as of the last line; the engine's. */
const struct sla *replay_sla(const struct replay *);
/* Conversations timed; one that ended and came back counts again. */
size_t		 replay_conversations(const struct replay *);

/*
 * The input lines of the offline tools (scan and replay) are read through
 * here, so that one line can cost no more than its cap whatever the file
 * holds: 100 MB on one line must not become 100 MB of memory, nor a JSON
 * document of it.
 */
#define REPLAY_MAX_LINE		(4 * 1024 * 1024)	/* --max-line's default */
#define REPLAY_MAX_LINE_STR	"4MiB"
#define REPLAY_MAX_LINE_MAX	(1024 * 1024 * 1024)	/* the most --max-line takes */
#define REPLAY_LONG_FMT		"line longer than %zu bytes, skipped"	/* the error, with max */

enum replay_read {
	REPLAY_READ_LINE,	/* a line of at most max bytes */
	REPLAY_READ_LONG,	/* a longer line: read to its end and dropped */
	REPLAY_READ_EOF,
	REPLAY_READ_ERR		/* a read error or ENOMEM; errno says which */
};

/*
 * f's next line into *buf, without its "\n" or "\r\n" end (and without
 * any '\r' left before it), NUL-terminated, its length in *len. *buf is
 * the caller's (NULL and *cap 0 to start, free() at the end); it grows
 * with realloc to max + 2 bytes at most. A line longer than max bytes is
 * consumed but not kept. A last line with no end still counts.
 */
enum replay_read replay_getline(FILE *f, size_t max, char **buf, size_t *cap,
	    size_t *len);

/*
 * --max-line's argument, a size as the configuration writes them ("4MiB",
 * "65536"), from 1 byte to REPLAY_MAX_LINE_MAX. 0, or -1 with the reason
 * printed on stderr.
 */
int	replay_max_line(const char *arg, size_t *max);

/*
 * --format's argument, shared with scan: "table" (readable lines for a
 * person, *table 1) or "json" (the lines a program reads, *table 0). 0, or
 * -1 with the reason printed on stderr. Without --format the commands
 * print a table only to a terminal, so pipes and files keep their JSON.
 */
int	replay_format(const char *arg, int *table);

#endif
