/* bintext: a binary WebSocket message as the text a chat backend's JSON reader makes of it (pure but for bintext_new, where glibc's iconv_open may read its converters' list). */
#include <errno.h>
#include <iconv.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "chatmon/bintext.h"
#include "chatmon/util.h"

/* What RFC 4627 section 3 (and Python's json.detect_encoding) can find. */
enum bintext_enc { BT_UTF8, BT_UTF16BE, BT_UTF16LE, BT_UTF32BE, BT_UTF32LE, BT_NENC };

static const char *const bintext_names[BT_NENC] = { "UTF-8", "UTF-16BE",
	"UTF-16LE", "UTF-32BE", "UTF-32LE" };
static const size_t bintext_unit[BT_NENC] = { 1, 2, 2, 4, 4 };

struct bintext {
	iconv_t	 cd[BT_NENC];	/* to UTF-8, from each but UTF-8 (decoded here) */
	char	*buf;		/* the last text decoded; grows, never shrinks */
	size_t	 cap;
};

struct bintext *
bintext_new(void)
{
	struct bintext	*bt;
	int		 e;

	if ((bt = calloc(1, sizeof(*bt))) == NULL)
		return NULL;
	bt->cd[BT_UTF8] = (iconv_t)-1;
	/* opened once: glibc reads its converters' list on the first open */
	for (e = BT_UTF16BE; e < BT_NENC; e++)
		if ((bt->cd[e] = iconv_open("UTF-8", bintext_names[e])) ==
		    (iconv_t)-1) {
			bintext_free(bt);
			return NULL;
		}
	return bt;
}

void
bintext_free(struct bintext *bt)
{
	int	e;

	if (bt == NULL)
		return;
	for (e = 0; e < BT_NENC; e++)
		if (bt->cd[e] != (iconv_t)-1 && bt->cd[e] != NULL)
			iconv_close(bt->cd[e]);
	free(bt->buf);
	free(bt);
}

/* The encoding of b, as Python's json.detect_encoding finds it; *skip: its BOM's bytes. */
static enum bintext_enc
bintext_detect(const unsigned char *b, size_t len, size_t *skip)
{
	static const struct {
		const char	*bom;
		size_t		 n;
		enum bintext_enc enc;
	} boms[] = {	/* UTF-32LE's BOM starts as UTF-16LE's: it goes first */
		{ "\x00\x00\xfe\xff", 4, BT_UTF32BE },
		{ "\xff\xfe\x00\x00", 4, BT_UTF32LE },
		{ "\xfe\xff", 2, BT_UTF16BE },
		{ "\xff\xfe", 2, BT_UTF16LE },
		{ "\xef\xbb\xbf", 3, BT_UTF8 },
	};
	size_t	i;

	for (i = 0; i < UTIL_NELEM(boms); i++)
		if (len >= boms[i].n && memcmp(b, boms[i].bom, boms[i].n) == 0) {
			*skip = boms[i].n;
			return boms[i].enc;
		}
	*skip = 0;
	/* JSON text starts with an ASCII character: its NUL bytes say the width */
	if (len >= 4) {
		if (b[0] == 0)
			return b[1] != 0 ? BT_UTF16BE : BT_UTF32BE;
		if (b[1] == 0)
			return b[2] != 0 || b[3] != 0 ? BT_UTF16LE : BT_UTF32LE;
	} else if (len == 2) {
		if (b[0] == 0)
			return BT_UTF16BE;
		if (b[1] == 0)
			return BT_UTF16LE;
	}
	return BT_UTF8;
}

/* Whether the first character after JSON's white space is '{', read in units of enc. */
static int
bintext_object(const unsigned char *b, size_t len, enum bintext_enc enc)
{
	size_t		 w = bintext_unit[enc], i, k;
	uint32_t	 c;

	for (i = 0; i + w <= len; i += w) {
		for (c = 0, k = 0; k < w; k++)	/* big-endian, then swapped below */
			c = c << 8 | b[i + k];
		if (enc == BT_UTF16LE)
			c = (c >> 8) | (c & 0xff) << 8;
		else if (enc == BT_UTF32LE)
			c = (c >> 24) | (c >> 8 & 0xff00) | (c << 8 & 0xff0000) |
			    c << 24;
		if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
			return c == '{';
	}
	return 0;
}

static int
bintext_reserve(struct bintext *bt, size_t n)
{
	char	*p;

	if (n <= bt->cap)
		return 0;
	if ((p = realloc(bt->buf, n)) == NULL)
		return -1;
	bt->buf = p;
	bt->cap = n;
	return 0;
}

/* UTF-8 that is not well formed, with U+FFFD for each byte that starts no sequence. */
static size_t
bintext_lossy(char *out, const unsigned char *p, const unsigned char *end)
{
	char	*o = out;
	size_t	 k;

	while (p < end) {
		if (*p < 0x80)
			k = 1;
		else if ((k = util_utf8_seq(p, end)) == 0) {
			memcpy(o, "\xef\xbf\xbd", 3);
			o += 3;
			p++;
			continue;
		}
		memcpy(o, p, k);
		o += k;
		p += k;
	}
	return (size_t)(o - out);
}

/* UTF-16 or UTF-32 to UTF-8; a unit that does not decode is left out. */
static size_t
bintext_iconv(struct bintext *bt, enum bintext_enc enc, const char *in,
    size_t len)
{
	iconv_t	 cd = bt->cd[enc];
	char	*ip = (char *)(uintptr_t)in, *op = bt->buf;
	size_t	 il = len, ol = bt->cap;

	(void)iconv(cd, NULL, NULL, NULL, NULL);
	while (il > 0 && iconv(cd, &ip, &il, &op, &ol) == (size_t)-1) {
		if (errno != EILSEQ || il < bintext_unit[enc])
			break;	/* EINVAL: a unit cut short at the end */
		ip += bintext_unit[enc];
		il -= bintext_unit[enc];
	}
	return (size_t)(op - bt->buf);
}

int
bintext_decode(struct bintext *bt, const char *data, size_t len,
    const char **text, size_t *tlen)
{
	const unsigned char	*b = (const unsigned char *)data;
	enum bintext_enc	 enc;
	size_t			 skip;

	enc = bintext_detect(b, len, &skip);
	b += skip;
	len -= skip;
	if (!bintext_object(b, len, enc))
		return 1;
	if (enc == BT_UTF8 && util_utf8_valid((const char *)b, len)) {
		*text = (const char *)b;
		*tlen = len;
		return 0;
	}
	/* UTF-8: 3 bytes out per byte at worst; UTF-16: 3 per 2; UTF-32: 4 per 4 */
	if (len > (SIZE_MAX - 8) / 3 || bintext_reserve(bt, len * 3 + 8) == -1)
		return -1;
	*tlen = enc == BT_UTF8 ? bintext_lossy(bt->buf, b, b + len) :
	    bintext_iconv(bt, enc, (const char *)b, len);
	*text = bt->buf;
	return 0;
}
