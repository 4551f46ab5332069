/* b64url: base64url without padding (RFC 4648 5, as JWS uses it), for the tests' own tokens: unit and fuzz tests sign with it, independent of src/jwt.c. */
#ifndef CHATMON_TESTS_B64URL_H
#define CHATMON_TESTS_B64URL_H

#include <stddef.h>
#include <stdint.h>

/* out holds (n + 2) / 3 * 4 + 1 bytes; NUL-terminated. */
static inline void
b64url(const unsigned char *in, size_t n, char *out)
{
	static const char	a[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	size_t			i, o = 0;
	uint32_t		v;

	for (i = 0; i + 2 < n; i += 3) {
		v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
		out[o++] = a[v >> 18];
		out[o++] = a[v >> 12 & 63];
		out[o++] = a[v >> 6 & 63];
		out[o++] = a[v & 63];
	}
	if (n - i == 1) {
		v = (uint32_t)in[i] << 16;
		out[o++] = a[v >> 18];
		out[o++] = a[v >> 12 & 63];
	} else if (n - i == 2) {
		v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
		out[o++] = a[v >> 18];
		out[o++] = a[v >> 12 & 63];
		out[o++] = a[v >> 6 & 63];
	}
	out[o] = '\0';
}

#endif
