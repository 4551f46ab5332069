/* util: small helpers shared by every layer (growable strings, clocks, the keyed hash). */
#ifndef CHATMON_UTIL_H
#define CHATMON_UTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#define CHATMON_VERSION "0.1.0"

#define UTIL_PRINTF(f, a) __attribute__((format(printf, f, a)))
#define UTIL_NELEM(a) (sizeof(a) / sizeof((a)[0]))

/*
 * A growable NUL-terminated string. Zero-initialise (or sbuf_init) before
 * use; the buffer belongs to the sbuf until sbuf_free. Error lists are kept
 * in one: one message per line, each "FILE:LINE: message".
 */
struct sbuf {
	char	*s;	/* NULL until the first append */
	size_t	 len;
	size_t	 cap;
	size_t	 lines;	/* number of '\n'-terminated lines appended by sbuf_line */
};

void	sbuf_init(struct sbuf *);
void	sbuf_free(struct sbuf *);
void	sbuf_reset(struct sbuf *);
/* Append; -1 only on allocation failure (the sbuf is then left as it was). */
int	sbuf_append(struct sbuf *, const char *, size_t);
int	sbuf_printf(struct sbuf *, const char *, ...) UTIL_PRINTF(2, 3);
int	sbuf_vprintf(struct sbuf *, const char *, va_list) UTIL_PRINTF(2, 0);
/* Append one formatted line (a '\n' is added) and count it. */
int	sbuf_line(struct sbuf *, const char *, ...) UTIL_PRINTF(2, 3);
/* The contents, "" when empty; owned by the sbuf. */
const char *sbuf_str(const struct sbuf *);

/* CLOCK_MONOTONIC in nanoseconds and CLOCK_REALTIME in milliseconds. */
uint64_t util_mono_ns(void);
int64_t	 util_wall_ms(void);
int64_t	 util_wall_us(void);
/* An alert's "2026-11-22T10:00:05.000Z" (docs/alerts.md) as wall ms; -1 for anything else. */
int64_t	 util_ts_ms(const char *ts);

/*
 * The one hash of every table whose keys a client chooses (conversation and
 * agent ids, alert keys, peer addresses): SipHash-2-4 (libsodium's
 * crypto_shorthash) under a key drawn at random for each table, so that no
 * one can aim many keys at one bucket.
 */
struct util_hkey {
	unsigned char	k[16];
};

void	 util_hkey_random(struct util_hkey *);
uint64_t util_hash(const struct util_hkey *, const void *, size_t);

/*
 * FNV-1a, unkeyed: the same in every process and every language, for what
 * several instances (and the tests) must compute alike (a conversation's
 * bucket in Redis, an SLA alert's id). Never for a table peers could flood.
 */
uint32_t util_fnv1a32(const void *, size_t);
/* The length of the well-formed UTF-8 sequence at p (RFC 3629: no overlong form, surrogate or code point past U+10FFFF) before end, or 0. */
size_t	 util_utf8_seq(const unsigned char *p, const unsigned char *end);
/* 1 when s[0, n) is well-formed UTF-8 (util_utf8_seq; a U+0000 byte is, the caller says whether it may hold one). */
int	 util_utf8_valid(const char *s, size_t n);
/* Code points of UTF-8 s[0, n), counted at their lead bytes (any byte that is not a continuation byte), as offsets are given. */
size_t	 util_utf8_count(const char *s, size_t n);
/*
 * Appends s[0, len) to out[0, n) so that it stays one line and shows what it holds: C0 and DEL
 * as \xNN, C1 and U+2028/U+2029 as \uNNNN, a byte outside well-formed UTF-8 as \xNN; json set:
 * the inside of a JSON string instead (all as \uNNNN, U+FFFD, '"' and '\\' escaped). Cut between
 * characters before n passes cap. Returns the new n.
 */
size_t	 util_escape(char *out, size_t cap, size_t n, const char *s, size_t len, int json);
/*
 * len cut back by the last character when s[0, len) ends inside it (a lead
 * byte without all its continuation bytes); bytes that are not UTF-8 are
 * kept: what was cut to fit a buffer ends on a whole character.
 */
size_t	 util_utf8_trim(const char *s, size_t len);
/* util_utf8_trim of strnlen(s, max): for a %.*s of what a peer sent. */
size_t	 util_utf8_cut(const char *s, size_t max);
uint64_t util_fnv1a64(const void *, size_t);

/*
 * Reads path whole into *bufp (NUL-terminated; the caller frees it) and
 * *lenp: the one reader of every file chatmon loads (configuration, rules,
 * model, keys, users). -1 with errno set: EFBIG past max bytes, EISDIR for
 * a directory. A pipe is read to its end; a FIFO with no writer is empty,
 * not waited for. What was read is wiped before an error frees it: the
 * file may hold a secret.
 */
int	 util_read_file(const char *path, size_t max, char **bufp, size_t *lenp);
/*
 * A command's output done: 0 when all of stdout was written, else -1 with
 * "chatmon: WHAT: cannot write the output: why" on stderr (nothing for a
 * reader gone: `| head`). fflush alone cannot tell: a write that failed
 * inside an earlier printf dropped its buffer, and the last fflush of an
 * empty one succeeds.
 */
int	 util_stdout_done(const char *what);
/*
 * Rewrites in place (same length) each lone UTF-16 surrogate escape of the
 * JSON text s[0, len) (a \ud800 with no low half after it, a \udc00 with
 * no high half before it) as \ufffd: the relay's codec reads them so, as
 * browsers' and Python's JSON readers do, where jansson refuses the text;
 * the offline tools must read a chat line as the relay did.
 */
void	 util_json_lone_surrogates(char *s, size_t len);
/* The value of the 4 hex digits at p into *v: 0, or -1 when one is not. */
static inline int
util_hex4(const char *p, uint32_t *v)
{
	int	i, d;

	*v = 0;
	for (i = 0; i < 4; i++) {
		if (p[i] >= '0' && p[i] <= '9')
			d = p[i] - '0';
		else if ((p[i] | 0x20) >= 'a' && (p[i] | 0x20) <= 'f')
			d = (p[i] | 0x20) - 'a' + 10;
		else
			return -1;
		*v = *v << 4 | (uint32_t)d;
	}
	return 0;
}

/*
 * 1 when s is a name rules and models may give: a rule id, a list, a
 * category. Letters, digits, '.', '_' and '-', at least one: such a name
 * goes into JSON, Redis keys and Prometheus labels as it is, unescaped.
 */
int	 util_name_ok(const char *s);

/* strdup that returns NULL for NULL; the caller owns the copy. */
char	*util_strdup(const char *);

#endif
