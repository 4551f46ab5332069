/* acm: an Aho-Corasick automaton: every occurrence of every literal in one pass over the text (pure; no I/O). */
#ifndef CHATMON_ACM_H
#define CHATMON_ACM_H

#include <stddef.h>
#include <stdint.h>

/*
 * Build once (acm_add ... acm_build), then scan any number of texts.
 * Scanning allocates nothing and does not modify the automaton, so one
 * automaton may be shared by any number of readers.
 */
struct acm;

struct acm *acm_new(void);	/* caller owns; NULL on ENOMEM */
void	acm_free(struct acm *);
/*
 * Adds a literal (bytes, len >= 1) reported as id. The same literal may be
 * added with several ids; each is reported. -1 on ENOMEM, on len 0, or after
 * acm_build.
 */
int	acm_add(struct acm *, const void *lit, size_t len, uint32_t id);
/*
 * The most bytes the one-lookup-a-byte table may take (1 MiB by default);
 * a bigger automaton is built in a compact form that follows failure
 * links instead, which keeps a big literal set in the cache. Before
 * acm_build; the answers are the same either way.
 */
void	acm_set_dense_max(struct acm *, size_t bytes);
/* Freezes the automaton; -1 on ENOMEM. */
int	acm_build(struct acm *);

/*
 * Called for each occurrence, in order of end offset (end is one past the
 * last byte); at one end offset, longer literals first, and one literal's
 * ids in the order added. Return non-zero to stop the scan.
 */
typedef int (*acm_cb)(uint32_t id, size_t end, void *arg);
/* Scans text; returns 1 when cb stopped it, else 0. */
int	acm_scan(const struct acm *, const void *text, size_t len, acm_cb cb,
	    void *arg);

/*
 * As acm_scan, for the occurrences that start before byte from and end
 * after it (a literal across a junction): every one of those is reported
 * (and some others may be), and the scan stops as soon as past from no
 * literal begun before it can still end, not at len.
 */
int	acm_scan_across(const struct acm *, const void *text, size_t len,
	    size_t from, acm_cb cb, void *arg);

size_t	acm_count(const struct acm *);		/* literals added */
size_t	acm_states(const struct acm *);		/* states after build */
size_t	acm_memory(const struct acm *);		/* bytes held after build */

#endif
