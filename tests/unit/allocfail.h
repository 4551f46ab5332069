/* allocfail: the unit tests' allocation-failure injection, through -Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc. */
#ifndef CHATMON_TEST_ALLOCFAIL_H
#define CHATMON_TEST_ALLOCFAIL_H

#include <stddef.h>

/*
 * Linked with the --wrap flags, the module's allocations come through here.
 * Without them __real_malloc stays an unresolved weak symbol (NULL): the
 * tests that need it check allocfail_active() and skip.
 */
extern long	allocfail_after;	/* allocations let through; -1: all */
extern int	allocfail_injected;	/* one was failed since last cleared */
extern size_t	allocfail_calls;	/* allocation calls seen */

int	allocfail_active(void);

#endif
