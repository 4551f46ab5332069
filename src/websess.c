/* websess: the dashboard's login sessions in memory: random ids, a whole-life and an idle bound, a bounded count in all and per user, what each logged in against (pure: the caller passes now). */
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "chatmon/websess.h"

/*
 * A plain array searched from end to end: a dashboard has tens of
 * sessions, a few hundred at most (the bound), and every id is compared
 * in constant time (sodium_memcmp), so a lookup's time says nothing about
 * how much of a guessed id was right.
 */
struct websess_ent {
	unsigned char	 id[WEBSESS_ID_BYTES];
	char		 user[WEBSESS_NAME_MAX + 1];
	unsigned char	 stamp[WEBSESS_STAMP_BYTES];
	uint64_t	 born, used;
	int		 live;
};

struct websess {
	struct websess_ent	*v;
	size_t			 max, per_user;
	size_t			 n;		/* live ones */
	uint64_t		 ttl_ms, idle_ms;
};

struct websess *
websess_new(size_t max, size_t per_user, uint64_t ttl_ms, uint64_t idle_ms)
{
	struct websess	*s;

	if (max == 0 || per_user == 0 || per_user > max || sodium_init() < 0 ||
	    (s = calloc(1, sizeof(*s))) == NULL)
		return NULL;
	if ((s->v = calloc(max, sizeof(*s->v))) == NULL) {
		free(s);
		return NULL;
	}
	s->max = max;
	s->per_user = per_user;
	s->ttl_ms = ttl_ms;
	s->idle_ms = idle_ms;
	return s;
}

void
websess_free(struct websess *s)
{
	if (s == NULL)
		return;
	sodium_memzero(s->v, s->max * sizeof(*s->v));
	free(s->v);
	free(s);
}

static void
websess_drop(struct websess *s, struct websess_ent *e)
{
	sodium_memzero(e, sizeof(*e));
	s->n--;
}

static int
websess_expired(const struct websess *s, const struct websess_ent *e,
    uint64_t now)
{
	return now >= e->born + s->ttl_ms || now >= e->used + s->idle_ms;
}

size_t
websess_count_user(const struct websess *s, const char *user)
{
	size_t	i, n = 0;

	for (i = 0; i < s->max; i++)
		if (s->v[i].live && strcmp(s->v[i].user, user) == 0)
			n++;
	return n;
}

/* user's least used live session; NULL when user has none. */
static struct websess_ent *
websess_least_used(struct websess *s, const char *user)
{
	struct websess_ent	*e = NULL;
	size_t			 i;

	for (i = 0; i < s->max; i++)
		if (s->v[i].live && strcmp(s->v[i].user, user) == 0 &&
		    (e == NULL || s->v[i].used < e->used))
			e = &s->v[i];
	return e;
}

/*
 * The session to end in a full table: the least used of the user who
 * holds the most (the first such user met on a tie), so that logging in
 * over and over ends that user's own sessions long before anyone else's.
 * Quadratic in the table, which is only walked so when it is full.
 */
static struct websess_ent *
websess_victim(struct websess *s)
{
	const char	*most = NULL;
	size_t		 i, n, best = 0;

	for (i = 0; i < s->max; i++) {
		if (!s->v[i].live)
			continue;
		if ((n = websess_count_user(s, s->v[i].user)) > best) {
			best = n;
			most = s->v[i].user;
		}
	}
	return most != NULL ? websess_least_used(s, most) : NULL;
}

int
websess_create(struct websess *s, const char *user, const unsigned char *stamp,
    uint64_t now, char *id, int *evicted)
{
	struct websess_ent	*e = NULL;
	size_t			 i, ulen = strlen(user);

	*evicted = 0;
	if (ulen > WEBSESS_NAME_MAX)
		return -1;
	websess_sweep(s, now);
	/*
	 * A user's own sessions first: a table shared by every user and
	 * emptied least-used-first would let any login, a viewer's of one
	 * shop, end everyone else's by logging in often enough.
	 */
	if (websess_count_user(s, user) >= s->per_user) {
		e = websess_least_used(s, user);
		websess_drop(s, e);
		*evicted = WEBSESS_EVICTED_OWN;
	}
	for (i = 0; i < s->max && e == NULL; i++)
		if (!s->v[i].live)
			e = &s->v[i];
	if (e == NULL) {		/* full of live ones: see websess_victim */
		e = websess_victim(s);
		websess_drop(s, e);
		*evicted = WEBSESS_EVICTED_FULL;
	}
	randombytes_buf(e->id, sizeof(e->id));
	memcpy(e->user, user, ulen + 1);
	if (stamp != NULL)
		memcpy(e->stamp, stamp, sizeof(e->stamp));
	e->born = e->used = now;
	e->live = 1;
	s->n++;
	sodium_bin2base64(id, WEBSESS_ID_LEN + 1, e->id, sizeof(e->id),
	    sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	return 0;
}

static struct websess_ent *
websess_find(struct websess *s, const char *id)
{
	unsigned char		 bin[WEBSESS_ID_BYTES];
	size_t			 blen = 0, i;
	struct websess_ent	*hit = NULL;

	if (strlen(id) != WEBSESS_ID_LEN ||
	    sodium_base642bin(bin, sizeof(bin), id, WEBSESS_ID_LEN, NULL, &blen,
	    NULL, sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0 ||
	    blen != sizeof(bin))
		return NULL;
	for (i = 0; i < s->max; i++)
		if (s->v[i].live && sodium_memcmp(s->v[i].id, bin, sizeof(bin)) == 0)
			hit = &s->v[i];
	sodium_memzero(bin, sizeof(bin));
	return hit;
}

const char *
websess_get(struct websess *s, const char *id, uint64_t now, int touch,
    const unsigned char **stamp)
{
	struct websess_ent	*e;

	if ((e = websess_find(s, id)) == NULL)
		return NULL;
	if (websess_expired(s, e, now)) {
		websess_drop(s, e);
		return NULL;
	}
	if (touch)
		e->used = now;
	if (stamp != NULL)
		*stamp = e->stamp;
	return e->user;
}

int
websess_end(struct websess *s, const char *id)
{
	struct websess_ent	*e;

	if ((e = websess_find(s, id)) == NULL)
		return 0;
	websess_drop(s, e);
	return 1;
}

size_t
websess_end_user(struct websess *s, const char *user)
{
	size_t	i, n = 0;

	for (i = 0; i < s->max; i++)
		if (s->v[i].live && strcmp(s->v[i].user, user) == 0) {
			websess_drop(s, &s->v[i]);
			n++;
		}
	return n;
}

size_t
websess_sweep(struct websess *s, uint64_t now)
{
	size_t	i, n = 0;

	for (i = 0; i < s->max; i++)
		if (s->v[i].live && websess_expired(s, &s->v[i], now)) {
			websess_drop(s, &s->v[i]);
			n++;
		}
	return n;
}

size_t
websess_count(const struct websess *s)
{
	return s->n;
}

int
websess_cookie(const char **pos, const char *name, char *out, size_t outsz)
{
	const char	*p = *pos, *c, *end;
	size_t		 nlen = strlen(name), vlen;

	while (*p != '\0') {
		while (*p == ' ' || *p == '\t' || *p == ';')
			p++;
		if ((end = strchr(p, ';')) == NULL)
			end = p + strlen(p);
		c = p;
		p = end;
		if ((size_t)(end - c) <= nlen || strncmp(c, name, nlen) != 0 ||
		    c[nlen] != '=')
			continue;
		c += nlen + 1;
		vlen = (size_t)(end - c);
		while (vlen > 0 && (c[vlen - 1] == ' ' || c[vlen - 1] == '\t'))
			vlen--;
		/* too long for an id: not a session, but a later value may be */
		if (vlen >= outsz)
			continue;
		memcpy(out, c, vlen);
		out[vlen] = '\0';
		*pos = p;
		return 0;
	}
	*pos = p;
	return -1;
}
