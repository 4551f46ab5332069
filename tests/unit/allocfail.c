/* allocfail: the unit tests' allocation-failure injection, through -Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc. */
#include <stddef.h>

#include "allocfail.h"

void	*__real_malloc(size_t) __attribute__((weak));
void	*__real_calloc(size_t, size_t) __attribute__((weak));
void	*__real_realloc(void *, size_t) __attribute__((weak));
void	*__wrap_malloc(size_t);
void	*__wrap_calloc(size_t, size_t);
void	*__wrap_realloc(void *, size_t);

long	allocfail_after = -1;
int	allocfail_injected;
size_t	allocfail_calls;

int
allocfail_active(void)
{
	return __real_malloc != NULL;
}

static int
allocfail_now(void)
{
	allocfail_calls++;
	if (allocfail_after < 0)
		return 0;
	if (allocfail_after-- == 0) {
		allocfail_injected = 1;
		return 1;
	}
	return 0;
}

void *
__wrap_malloc(size_t n)
{
	return allocfail_now() ? NULL : __real_malloc(n);
}

void *
__wrap_calloc(size_t n, size_t sz)
{
	return allocfail_now() ? NULL : __real_calloc(n, sz);
}

void *
__wrap_realloc(void *p, size_t n)
{
	return allocfail_now() ? NULL : __real_realloc(p, n);
}
