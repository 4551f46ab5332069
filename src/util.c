/* util: small helpers shared by every layer (growable strings, clocks, the keyed hash). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>

#include <sodium.h>

#include "chatmon/util.h"

void
sbuf_init(struct sbuf *b)
{
	memset(b, 0, sizeof(*b));
}

void
sbuf_free(struct sbuf *b)
{
	if (b == NULL)
		return;
	free(b->s);
	sbuf_init(b);
}

void
sbuf_reset(struct sbuf *b)
{
	b->len = 0;
	b->lines = 0;
	if (b->s != NULL)
		b->s[0] = '\0';
}

static int
sbuf_reserve(struct sbuf *b, size_t more)
{
	size_t	 want, cap;
	char	*s;

	if (more > SIZE_MAX / 2 - b->len)
		return -1;
	want = b->len + more + 1;
	if (want <= b->cap)
		return 0;
	cap = b->cap ? b->cap : 64;
	while (cap < want)
		cap *= 2;
	if ((s = realloc(b->s, cap)) == NULL)
		return -1;
	b->s = s;
	b->cap = cap;
	return 0;
}

int
sbuf_append(struct sbuf *b, const char *p, size_t n)
{
	if (sbuf_reserve(b, n) == -1)
		return -1;
	memcpy(b->s + b->len, p, n);
	b->len += n;
	b->s[b->len] = '\0';
	return 0;
}

int
sbuf_vprintf(struct sbuf *b, const char *fmt, va_list ap)
{
	va_list	 ap2;
	int	 n;

	va_copy(ap2, ap);
	n = vsnprintf(NULL, 0, fmt, ap2);
	va_end(ap2);
	if (n < 0 || sbuf_reserve(b, (size_t)n) == -1)
		return -1;
	vsnprintf(b->s + b->len, (size_t)n + 1, fmt, ap);
	b->len += (size_t)n;
	return 0;
}

int
sbuf_printf(struct sbuf *b, const char *fmt, ...)
{
	va_list	 ap;
	int	 rc;

	va_start(ap, fmt);
	rc = sbuf_vprintf(b, fmt, ap);
	va_end(ap);
	return rc;
}

int
sbuf_line(struct sbuf *b, const char *fmt, ...)
{
	va_list	 ap;
	int	 rc;

	va_start(ap, fmt);
	rc = sbuf_vprintf(b, fmt, ap);
	va_end(ap);
	if (rc == -1 || sbuf_append(b, "\n", 1) == -1)
		return -1;
	b->lines++;
	return 0;
}

const char *
sbuf_str(const struct sbuf *b)
{
	return b->s != NULL ? b->s : "";
}

uint64_t
util_mono_ns(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int64_t
util_wall_ms(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t
util_ts_ms(const char *ts)
{
	struct tm	tm;
	int		ms = 0, n = 0;

	memset(&tm, 0, sizeof(tm));
	if (ts == NULL || sscanf(ts, "%4d-%2d-%2dT%2d:%2d:%2d.%3dZ%n", &tm.tm_year,
	    &tm.tm_mon, &tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &ms,
	    &n) != 7 || ts[n] != '\0')
		return -1;
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	return (int64_t)timegm(&tm) * 1000 + ms;
}

int64_t
util_wall_us(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

char *
util_strdup(const char *s)
{
	return s != NULL ? strdup(s) : NULL;
}

void
util_hkey_random(struct util_hkey *key)
{
	_Static_assert(sizeof(key->k) == crypto_shorthash_KEYBYTES,
	    "util_hkey is a SipHash key");
	/*
	 * idempotent; -1 only when the system has no random source, and then
	 * randombytes_buf aborts rather than hand out a predictable key
	 */
	if (sodium_init() < 0)
		abort();
	randombytes_buf(key->k, sizeof(key->k));
}

uint32_t
util_fnv1a32(const void *p, size_t len)
{
	const unsigned char	*s = p;
	uint32_t		 h = 2166136261u;

	while (len-- > 0)
		h = (h ^ *s++) * 16777619u;
	return h;
}

uint64_t
util_fnv1a64(const void *p, size_t len)
{
	const unsigned char	*s = p;
	uint64_t		 h = 14695981039346656037ULL;

	while (len-- > 0)
		h = (h ^ *s++) * 1099511628211ULL;
	return h;
}

uint64_t
util_hash(const struct util_hkey *key, const void *p, size_t len)
{
	unsigned char	out[crypto_shorthash_BYTES];
	uint64_t	h;

	crypto_shorthash(out, p, len, key->k);
	memcpy(&h, out, sizeof(h));
	return h;
}

int
util_name_ok(const char *s)
{
	if (*s == '\0')
		return 0;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		    (*s >= '0' && *s <= '9') || *s == '_' || *s == '.' || *s == '-'))
			return 0;
	return 1;
}

size_t
util_utf8_count(const char *s, size_t n)
{
	size_t	i, k = 0;

	for (i = 0; i < n; i++)
		k += ((unsigned char)s[i] & 0xc0) != 0x80;
	return k;
}

size_t
util_utf8_trim(const char *s, size_t len)
{
	const unsigned char	*p = (const unsigned char *)s;
	size_t			 i = len, need;

	while (i > 0 && len - i < 3 && (p[i - 1] & 0xc0) == 0x80)
		i--;
	if (i == 0 || p[i - 1] < 0xc2 || p[i - 1] > 0xf4)
		return len;
	need = p[i - 1] < 0xe0 ? 2 : p[i - 1] < 0xf0 ? 3 : 4;
	return len - (i - 1) < need ? i - 1 : len;
}

size_t
util_utf8_cut(const char *s, size_t max)
{
	return util_utf8_trim(s, strnlen(s, max));
}

int
util_utf8_valid(const char *s, size_t n)
{
	const unsigned char	*p = (const unsigned char *)s, *end = p + n;
	size_t			 k;

	for (; p < end; p += k)
		if ((k = *p < 0x80 ? 1 : util_utf8_seq(p, end)) == 0)
			return 0;
	return 1;
}

/* The length of the well-formed UTF-8 sequence at p (RFC 3629), or 0. */
size_t
util_utf8_seq(const unsigned char *p, const unsigned char *end)
{
	size_t	n;
	unsigned char lo = 0x80, hi = 0xbf;

	if (p[0] < 0xc2 || p[0] > 0xf4)
		return 0;
	n = p[0] < 0xe0 ? 2 : p[0] < 0xf0 ? 3 : 4;
	if ((size_t)(end - p) < n)
		return 0;
	/* no overlong forms, no surrogates, nothing past U+10FFFF */
	if (p[0] == 0xe0)
		lo = 0xa0;
	else if (p[0] == 0xed)
		hi = 0x9f;
	else if (p[0] == 0xf0)
		lo = 0x90;
	else if (p[0] == 0xf4)
		hi = 0x8f;
	if (p[1] < lo || p[1] > hi)
		return 0;
	if (n > 2 && (p[2] & 0xc0) != 0x80)
		return 0;
	if (n > 3 && (p[3] & 0xc0) != 0x80)
		return 0;
	return n;
}

/*
 * Appends the message s[0, len) to out, whose length is n, so that it
 * stays one line whatever it holds: messages carry what peers sent (a
 * conversation id, an Origin), and a newline there would start a line of
 * the peer's choosing, in the journal with a <N> priority of its choosing.
 * Control characters (C0, DEL, C1) and the line and paragraph separators
 * (U+2028, U+2029) are escaped: in the text format C0 and DEL as \xNN,
 * the others as \uNNNN; in JSON (json set: the inside of a string) all as
 * \uNNNN, with '"' and '\\' escaped as JSON wants. Each byte that is not
 * part of well-formed UTF-8 is \xNN in the text format and U+FFFD in
 * JSON, whose strings hold Unicode only. A backslash in the text format
 * is not escaped: the escapes are for reading, not for decoding back.
 * Stops before a character or an escape that would take n past cap: a
 * long line is cut between characters. Returns the new n.
 */
size_t
util_escape(char *out, size_t cap, size_t n, const char *s, size_t len,
    int json)
{
	const unsigned char	*p = (const unsigned char *)s;
	const unsigned char	*end = p + len;
	char			 esc[8];
	const char		*u;
	size_t			 k, ulen;
	int			 e;

	for (; p < end; p += k) {
		k = 1;
		if (*p < 0x20 || *p == 0x7f)
			e = snprintf(esc, sizeof(esc), json ? "\\u%04x" :
			    "\\x%02x", *p);
		else if (json && (*p == '"' || *p == '\\'))
			e = snprintf(esc, sizeof(esc), "\\%c", *p);
		else if (*p < 0x80)
			e = 0;
		else if ((k = util_utf8_seq(p, end)) == 0) {
			k = 1;
			e = json ? snprintf(esc, sizeof(esc), "\\ufffd") :
			    snprintf(esc, sizeof(esc), "\\x%02x", *p);
		} else if (k == 2 && p[0] == 0xc2 && p[1] < 0xa0)
			e = snprintf(esc, sizeof(esc), "\\u%04x", p[1]);
		else if (k == 3 && p[0] == 0xe2 && p[1] == 0x80 &&
		    (p[2] == 0xa8 || p[2] == 0xa9))
			e = snprintf(esc, sizeof(esc), "\\u%04x",
			    0x2000 | (p[2] & 0x3f));
		else
			e = 0;
		u = e > 0 ? esc : (const char *)p;	/* 0: the character as it is */
		ulen = e > 0 ? (size_t)e : k;
		if (n + ulen > cap)
			break;
		memcpy(out + n, u, ulen);
		n += ulen;
	}
	return n;
}

/* Frees what may hold a secret, wiped first. */
static void
util_wipe_free(char *p, size_t n)
{
	if (p != NULL)
		sodium_memzero(p, n);
	free(p);
}

int
util_read_file(const char *path, size_t max, char **bufp, size_t *lenp)
{
	struct stat	 st;
	char		*buf = NULL, *nb;
	size_t		 len = 0, cap;
	ssize_t		 n;
	int		 fd, saved;

	/*
	 * Not blocking in open: a FIFO nobody writes to (a stray one in the
	 * rules directory) would hold a reload, and the exit waiting for it,
	 * for good. Read blocking again: a pipe being written is read whole,
	 * and one with no writer reads as empty.
	 */
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)) == -1)
		return -1;
	if (fstat(fd, &st) == -1 ||
	    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK) == -1)
		goto err;
	if (S_ISDIR(st.st_mode)) {
		errno = EISDIR;
		goto err;
	}
	/* a regular file in one piece (+1: its end is seen); a pipe grows */
	cap = S_ISREG(st.st_mode) && (uint64_t)st.st_size <= max ?
	    (size_t)st.st_size + 2 : 4096;
	for (;;) {
		if (buf == NULL || len + 1 >= cap) {
			if (buf != NULL)
				cap *= 2;
			/* not realloc: a copy of a secret would be left behind */
			if ((nb = malloc(cap)) == NULL)
				goto err;
			if (buf != NULL)
				memcpy(nb, buf, len);
			util_wipe_free(buf, len);
			buf = nb;
		}
		if ((n = read(fd, buf + len, cap - len - 1)) == -1) {
			if (errno == EINTR)
				continue;
			goto err;
		}
		if (n == 0)
			break;
		len += (size_t)n;
		if (len > max) {
			errno = EFBIG;
			goto err;
		}
	}
	close(fd);
	buf[len] = '\0';
	*bufp = buf;
	*lenp = len;
	return 0;
err:
	saved = errno;
	util_wipe_free(buf, len);
	close(fd);
	errno = saved;
	return -1;
}

int
util_stdout_done(const char *what)
{
	int	e;

	errno = 0;
	if (fflush(stdout) == 0 && !ferror(stdout))
		return 0;
	e = errno;
	if (e != EPIPE)
		fprintf(stderr, "chatmon: %s: cannot write the output%s%s\n", what,
		    e != 0 ? ": " : "", e != 0 ? strerror(e) : "");
	return -1;
}

void
util_json_lone_surrogates(char *s, size_t len)
{
	size_t		i = 0;
	uint32_t	v, w;

	while (i + 1 < len) {
		if (s[i] != '\\') {
			i++;
			continue;
		}
		if (s[i + 1] != 'u' || i + 6 > len || util_hex4(s + i + 2, &v) == -1) {
			i += 2;		/* \" \\ \n ...: its second byte is no escape */
			continue;
		}
		if (v >= 0xd800 && v <= 0xdbff && i + 12 <= len && s[i + 6] == '\\' &&
		    s[i + 7] == 'u' && util_hex4(s + i + 8, &w) == 0 &&
		    w >= 0xdc00 && w <= 0xdfff) {
			i += 12;	/* a pair */
			continue;
		}
		if (v >= 0xd800 && v <= 0xdfff)
			memcpy(s + i + 2, "fffd", 4);
		i += 6;
	}
}
