/* fuzz: what the libFuzzer harnesses share: the entry points, splitting an input, a file held in memory. */
#ifndef CHATMON_FUZZ_H
#define CHATMON_FUZZ_H

#include <sys/mman.h>

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);
int	LLVMFuzzerInitialize(int *, char ***);

/*
 * A harness's own check failed: print why and abort, which libFuzzer
 * reports as a crash and saves the input for.
 */
#define FUZZ_CHECK(cond) do {						\
	if (!(cond)) {							\
		fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__,	\
		    __LINE__, #cond);					\
		abort();						\
	}								\
} while (0)

/*
 * Splits an input at its first NUL byte: the head before it, the tail
 * after it. Returns 0 when there is no NUL (then the head is the whole
 * input and the tail is empty).
 */
static inline int
fuzz_split(const uint8_t *data, size_t size, const uint8_t **tail,
    size_t *tail_len)
{
	const uint8_t	*z;

	if ((z = memchr(data, '\0', size)) == NULL) {
		*tail = data + size;
		*tail_len = 0;
		return 0;
	}
	*tail = z + 1;
	*tail_len = size - (size_t)(z + 1 - data);
	return 1;
}

/* A copy of len bytes with a NUL after them; the caller frees it. */
static inline char *
fuzz_strndup(const void *p, size_t len)
{
	char	*s;

	if ((s = malloc(len + 1)) == NULL)
		abort();
	memcpy(s, p, len);
	s[len] = '\0';
	return s;
}

/*
 * A file that exists only in memory (memfd_create), for loaders that take
 * a path: nothing is written to disk and nothing is left behind when the
 * fuzzer dies. The path, /proc/self/fd/N, opens the same file afresh at
 * offset 0 each time. One per process, made once.
 */
struct fuzz_file {
	int	fd;
	char	path[64];
};

static inline void
fuzz_file_init(struct fuzz_file *f, const char *name)
{
	if ((f->fd = memfd_create(name, MFD_CLOEXEC)) == -1) {
		perror("fuzz_file_init: memfd_create");
		abort();
	}
	snprintf(f->path, sizeof(f->path), "/proc/self/fd/%d", f->fd);
}

/* Replaces the file's contents with len bytes of p. */
static inline void
fuzz_file_put(struct fuzz_file *f, const void *p, size_t len)
{
	const char	*s = p;
	ssize_t		 n;
	size_t		 off = 0;

	if (ftruncate(f->fd, 0) == -1) {
		perror("fuzz_file_put: ftruncate");
		abort();
	}
	while (off < len) {
		if ((n = pwrite(f->fd, s + off, len - off, (off_t)off)) <= 0) {
			perror("fuzz_file_put: pwrite");
			abort();
		}
		off += (size_t)n;
	}
}

/*
 * The code point at s (strict UTF-8: no overlong form, surrogate or value
 * past U+10FFFF) and its length, or 0: the harnesses' own reading, so
 * that what they check does not rest on the product's decoder.
 */
static inline size_t
fuzz_u8(const unsigned char *s, size_t len, uint32_t *cp)
{
	size_t		n, i;
	uint32_t	min;

	if (s[0] < 0x80) {
		*cp = s[0];
		return 1;
	}
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		n = 2, min = 0x80, *cp = s[0] & 0x1f;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		n = 3, min = 0x800, *cp = s[0] & 0x0f;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		n = 4, min = 0x10000, *cp = s[0] & 0x07;
	else
		return 0;
	if (n > len)
		return 0;
	for (i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		*cp = *cp << 6 | (s[i] & 0x3f);
	}
	if (*cp < min || *cp > 0x10ffff || (*cp >= 0xd800 && *cp <= 0xdfff))
		return 0;
	return n;
}

static inline int
fuzz_utf8_valid(const char *s, size_t len)
{
	size_t		i, n;
	uint32_t	cp;

	for (i = 0; i < len; i += n)
		if ((n = fuzz_u8((const unsigned char *)s + i, len - i, &cp)) == 0)
			return 0;
	return 1;
}

#endif
