/* replay: `chatmon replay`: a chat log through the rules and SLA engines on a virtual clock, alerts out. */
#ifndef CHATMON_REPLAY_H
#define CHATMON_REPLAY_H

#include <stddef.h>
#include <stdio.h>

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
