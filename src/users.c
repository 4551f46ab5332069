/* users: the dashboard's users file (USER:ROLE:HASH lines, argon2id hashes): parse, look up, verify, rewrite. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include <sodium.h>

#include "chatmon/users.h"

#define USERS_FILE_MAX	(16 * 1024 * 1024)	/* a users file larger than this is a mistake */

_Static_assert(USERS_HASH_MAX == crypto_pwhash_STRBYTES, "USERS_HASH_MAX");

/*
 * The hash of a random password nobody kept, with the same parameters as
 * users_hash: verifying an unknown user against it costs what a known one
 * costs, and can never succeed (users_verify answers 0 for an unknown user
 * whatever the result).
 */
static const char users_dummy[USERS_HASH_MAX] =
    "$argon2id$v=19$m=65536,t=2,p=1$lVURO/sK5/zPta74zacOuQ$"
    "5WOce0Y5NjpqcAYwXsEt5ES1xkmKrkb9/Tlhnw+2n2k";

struct users_entry {
	char		 name[USERS_NAME_MAX + 1];
	enum users_role	 role;
	char		 hash[USERS_HASH_MAX];
	char		 shops[USERS_SHOPS_MAX];	/* "tm,jd"; "": every shop */
	size_t		 line;		/* in its file */
};

struct users {
	struct users_entry	*v;
	size_t			 n, cap;
};

int
users_name_ok(const char *name)
{
	size_t	i;

	for (i = 0; name[i] != '\0'; i++)
		if (i >= USERS_NAME_MAX ||
		    !((name[i] >= 'a' && name[i] <= 'z') ||
		    (name[i] >= 'A' && name[i] <= 'Z') ||
		    (name[i] >= '0' && name[i] <= '9') ||
		    strchr("._@-", name[i]) != NULL))
			return 0;
	return i > 0;
}

int
users_shops_ok(const char *list)
{
	size_t	i, n = 0;

	if (strlen(list) >= USERS_SHOPS_MAX)
		return 0;
	for (i = 0;; i++) {
		if (list[i] == ',' || list[i] == '\0') {
			if (n == 0 || n > USERS_SHOP_MAX)
				return 0;	/* an empty or too long id */
			if (list[i] == '\0')
				return 1;
			n = 0;
			continue;
		}
		if (!((list[i] >= 'a' && list[i] <= 'z') ||
		    (list[i] >= 'A' && list[i] <= 'Z') ||
		    (list[i] >= '0' && list[i] <= '9') ||
		    strchr("._-", list[i]) != NULL))
			return 0;
		n++;
	}
}

int
users_scope_has(const char *scope, const char *shop)
{
	size_t		 n;
	const char	*p, *end;

	if (scope == NULL || scope[0] == '\0')
		return 1;
	if (shop == NULL || (n = strlen(shop)) == 0)
		return 0;	/* a scoped user sees no conversation without a shop */
	for (p = scope; *p != '\0'; p = *end ? end + 1 : end) {
		if ((end = strchr(p, ',')) == NULL)
			end = p + strlen(p);
		if ((size_t)(end - p) == n && memcmp(p, shop, n) == 0)
			return 1;
	}
	return 0;
}

const char *
users_role_name(enum users_role r)
{
	switch (r) {
	case USERS_VIEWER:
		return "viewer";
	case USERS_SUPERVISOR:
		return "supervisor";
	default:
		return NULL;
	}
}

enum users_role
users_role_parse(const char *name)
{
	if (strcmp(name, "viewer") == 0)
		return USERS_VIEWER;
	if (strcmp(name, "supervisor") == 0)
		return USERS_SUPERVISOR;
	return USERS_NONE;
}

int
users_role_allows(enum users_role have, enum users_role need)
{
	return have != USERS_NONE && need != USERS_NONE && have >= need;
}

static int
users_entry_cmp(const void *a, const void *b)
{
	const struct users_entry	*x = a, *y = b;
	int				 c = strcmp(x->name, y->name);

	if (c != 0)
		return c;
	return x->line < y->line ? -1 : x->line > y->line;
}

/* u->v is sorted by name (users_parse): a file of many users is looked up in log time. */
static const struct users_entry *
users_find(const struct users *u, const char *name)
{
	size_t	lo = 0, hi = u->n, mid;
	int	c;

	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if ((c = strcmp(name, u->v[mid].name)) == 0)
			return &u->v[mid];
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return NULL;
}

/* One line (NUL-terminated, without its newline) into u; 0, or -1 said in errs. */
static int
users_line(struct users *u, char *line, const char *file, size_t lineno,
    struct sbuf *errs)
{
	char			*role, *hash, *shops, *p;
	struct users_entry	*e, *nv;

	for (p = line; *p == ' ' || *p == '\t'; p++)
		;
	if (*p == '\0' || *p == '#')
		return 0;
	if ((role = strchr(line, ':')) == NULL ||
	    (hash = strchr(role + 1, ':')) == NULL) {
		sbuf_line(errs, "%s:%zu: want USER:ROLE:HASH", file, lineno);
		return -1;
	}
	*role++ = '\0';
	*hash++ = '\0';
	/* an argon2 string holds no ':', so a fourth field is the shops */
	if ((shops = strchr(hash, ':')) != NULL)
		*shops++ = '\0';
	if (!users_name_ok(line)) {
		sbuf_line(errs, "%s:%zu: bad user name (1-%d characters of "
		    "A-Z a-z 0-9 . _ @ -)", file, lineno, USERS_NAME_MAX);
		return -1;
	}
	if (users_role_parse(role) == USERS_NONE) {
		sbuf_line(errs, "%s:%zu: user %s: unknown role '%.32s' (viewer or "
		    "supervisor)", file, lineno, line, role);
		return -1;
	}
	/* crypto_pwhash_str_verify reads only argon2 strings: say so now, not at login */
	if (strncmp(hash, "$argon2id$", 10) != 0 && strncmp(hash, "$argon2i$", 9) != 0) {
		sbuf_line(errs, "%s:%zu: user %s: the hash is not an argon2 hash "
		    "(write it with chatmon passwd)", file, lineno, line);
		return -1;
	}
	if (strlen(hash) >= USERS_HASH_MAX) {
		sbuf_line(errs, "%s:%zu: user %s: the hash is too long", file,
		    lineno, line);
		return -1;
	}
	if (shops != NULL && !users_shops_ok(shops)) {
		sbuf_line(errs, "%s:%zu: user %s: bad shops (a comma-separated "
		    "list of shop ids, 1-64 characters of A-Z a-z 0-9 . _ -)",
		    file, lineno, line);
		return -1;
	}
	if (u->n == u->cap) {
		if ((nv = reallocarray(u->v, u->cap ? u->cap * 2 : 8,
		    sizeof(*nv))) == NULL) {
			sbuf_line(errs, "%s:%zu: out of memory", file, lineno);
			return -1;
		}
		u->v = nv;
		u->cap = u->cap ? u->cap * 2 : 8;
	}
	e = &u->v[u->n++];
	memset(e, 0, sizeof(*e));
	memcpy(e->name, line, strlen(line) + 1);
	e->role = users_role_parse(role);
	memcpy(e->hash, hash, strlen(hash) + 1);
	if (shops != NULL)
		memcpy(e->shops, shops, strlen(shops) + 1);
	e->line = lineno;
	return 0;
}

struct users *
users_parse(const char *text, size_t len, const char *file, struct sbuf *errs)
{
	struct users	*u;
	char		*line = NULL;
	size_t		 start, end, lineno = 0, bad = 0, i;

	if ((u = calloc(1, sizeof(*u))) == NULL)
		goto oom;
	for (start = 0; start < len; start = end + 1) {
		lineno++;
		for (end = start; end < len && text[end] != '\n'; end++)
			;
		free(line);
		if ((line = malloc(end - start + 1)) == NULL)
			goto oom;
		memcpy(line, text + start, end - start);
		line[end - start] = '\0';
		if (end > start && line[end - start - 1] == '\r')
			line[end - start - 1] = '\0';
		if (memchr(text + start, '\0', end - start) != NULL) {
			sbuf_line(errs, "%s:%zu: a NUL byte", file, lineno);
			bad++;
		} else if (users_line(u, line, file, lineno, errs) == -1)
			bad++;
	}
	free(line);
	/* sorted for users_find; a name there twice is next to itself */
	if (u->n > 1)	/* qsort wants an array, even of none */
		qsort(u->v, u->n, sizeof(*u->v), users_entry_cmp);
	for (i = 1; i < u->n; i++)
		if (strcmp(u->v[i - 1].name, u->v[i].name) == 0) {
			sbuf_line(errs, "%s:%zu: user %s is there twice", file,
			    u->v[i].line, u->v[i].name);
			bad++;
		}
	if (bad > 0) {
		users_free(u);
		return NULL;
	}
	return u;
oom:
	free(line);
	users_free(u);
	sbuf_line(errs, "%s: out of memory", file);
	return NULL;
}

struct users *
users_load(const char *path, struct sbuf *errs)
{
	struct users	*u;
	char		*text;
	size_t		 len;

	if (util_read_file(path, USERS_FILE_MAX, &text, &len) == -1) {
		if (errno == EFBIG || errno == EISDIR)
			sbuf_line(errs, "%s: not a users file (a file of at most "
			    "16 MiB)", path);
		else
			sbuf_line(errs, "%s: %s", path, strerror(errno));
		return NULL;
	}
	u = users_parse(text, len, path, errs);
	sodium_memzero(text, len);	/* hashes are no passwords, but still */
	free(text);
	return u;
}

void
users_free(struct users *u)
{
	if (u == NULL)
		return;
	if (u->v != NULL)
		sodium_memzero(u->v, u->cap * sizeof(*u->v));
	free(u->v);
	free(u);
}

size_t
users_count(const struct users *u)
{
	return u->n;
}

enum users_role
users_role(const struct users *u, const char *user)
{
	const struct users_entry	*e = users_find(u, user);

	return e != NULL ? e->role : USERS_NONE;
}

const char *
users_shops(const struct users *u, const char *user)
{
	const struct users_entry	*e = users_find(u, user);

	return e != NULL && e->shops[0] != '\0' ? e->shops : NULL;
}

int
users_verify(const struct users *u, const char *user, const char *password,
    size_t len, enum users_role *role)
{
	const struct users_entry	*e = users_find(u, user);
	int				 rc, toolong = len > USERS_VERIFY_MAX;

	*role = USERS_NONE;
	/*
	 * A longer password is checked as its first USERS_VERIFY_MAX bytes,
	 * for the same work (no timing says it was too long), and refused
	 * whatever that check says: it is not the password that was set.
	 */
	if (toolong)
		len = USERS_VERIFY_MAX;
	if (sodium_init() < 0)
		return -1;
	errno = 0;
	rc = crypto_pwhash_str_verify(e != NULL ? e->hash : users_dummy,
	    password, len);
	if (rc != 0) {
		/* a wrong password; or argon2 without its memory (ENOMEM) */
		return errno == ENOMEM ? -1 : 0;
	}
	if (e == NULL || toolong)
		return 0;
	*role = e->role;
	return 1;
}

int
users_stamp(const struct users *u, const char *user, unsigned char *out)
{
	const struct users_entry	*e = users_find(u, user);

	if (e == NULL || sodium_init() < 0)
		return -1;
	/* keyed by nothing: the hash is no secret from this process, only a long string */
	crypto_generichash(out, USERS_STAMP_BYTES, (const unsigned char *)e->hash,
	    strlen(e->hash), NULL, 0);
	return 0;
}

int
users_hash(const char *password, size_t len, char *out)
{
	char	h[crypto_pwhash_STRBYTES];

	if (len > USERS_PASSWORD_MAX || sodium_init() < 0)
		return -1;
	/*
	 * INTERACTIVE (argon2id, 64 MiB, 2 passes: about 135 ms here): the
	 * dashboard verifies on its one event loop, so every login holds up
	 * every page's feed for that long; MODERATE (256 MiB, about 0.7 s)
	 * would stall them five times longer and cost 256 MiB per attempt.
	 */
	if (crypto_pwhash_str(h, password, len, crypto_pwhash_OPSLIMIT_INTERACTIVE,
	    crypto_pwhash_MEMLIMIT_INTERACTIVE) != 0)
		return -1;
	if (strlen(h) >= USERS_HASH_MAX)
		return -1;
	memcpy(out, h, strlen(h) + 1);
	return 0;
}

int
users_set_line(const char *text, size_t len, const char *user,
    const char *role, const char *hash, const char *shops, struct sbuf *out)
{
	const char	*sep = shops != NULL && shops[0] != '\0' ? ":" : "";

	size_t	start, end, ulen = strlen(user);
	int	done = 0;

	sbuf_reset(out);
	for (start = 0; start < len; start = end + 1) {
		for (end = start; end < len && text[end] != '\n'; end++)
			;
		if (end - start > ulen && memcmp(text + start, user, ulen) == 0 &&
		    text[start + ulen] == ':') {
			if (!done && sbuf_printf(out, "%s:%s:%s%s%s\n", user,
			    role, hash, sep, *sep ? shops : "") == -1)
				return -1;
			done = 1;	/* a second line of the user (a bad file) goes */
			continue;
		}
		if (sbuf_append(out, text + start, end - start) == -1 ||
		    sbuf_append(out, "\n", 1) == -1)
			return -1;
	}
	if (!done && sbuf_printf(out, "%s:%s:%s%s%s\n", user, role, hash, sep,
	    *sep ? shops : "") == -1)
		return -1;
	return 0;
}

int
users_write(const char *path, const char *text, size_t len, struct sbuf *errs)
{
	char		 tmp[PATH_MAX], dir[PATH_MAX];
	const char	*slash = strrchr(path, '/');
	struct stat	 st;
	size_t		 off = 0;
	ssize_t		 n;
	int		 fd = -1, dfd, old;

	if (snprintf(tmp, sizeof(tmp), "%s.XXXXXX", path) >= (int)sizeof(tmp)) {
		sbuf_line(errs, "%s: path too long", path);
		return -1;
	}
	/* mkstemp makes it 0600: the hashes are never readable by others */
	if ((fd = mkostemp(tmp, O_CLOEXEC)) == -1) {
		sbuf_line(errs, "%s: cannot make a temporary file beside it: %s",
		    path, strerror(errno));
		return -1;
	}
	while (off < len) {
		if ((n = write(fd, text + off, len - off)) == -1) {
			if (errno == EINTR)
				continue;
			goto err;
		}
		off += (size_t)n;
	}
	/*
	 * A file that exists keeps its owner and group, and its mode up to
	 * 0640: the group's read bit (root:chatmond 0640 lets the dashboard's
	 * user read it, docs/security.md), never the group's write (whoever may
	 * rewrite it may give themselves any role) nor anything for others.
	 */
	old = stat(path, &st) == 0;
	if (old && fchown(fd, st.st_uid, st.st_gid) == -1) {
		sbuf_line(errs, "%s: cannot keep its owner and group: %s", path,
		    strerror(errno));
		close(fd);
		unlink(tmp);
		return -1;
	}
	if (fchmod(fd, old ? (st.st_mode & 0640) | 0600 : 0600) == -1 ||
	    fsync(fd) == -1)
		goto err;
	if (close(fd) == -1) {
		fd = -1;
		goto err;
	}
	fd = -1;
	if (rename(tmp, path) == -1)
		goto err;
	/* the rename itself must survive a crash too */
	if (slash == NULL)
		snprintf(dir, sizeof(dir), ".");
	else if (slash == path)
		snprintf(dir, sizeof(dir), "/");
	else
		snprintf(dir, sizeof(dir), "%.*s", (int)(slash - path), path);
	if ((dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) != -1) {
		(void)fsync(dfd);
		close(dfd);
	}
	return 0;
err:
	sbuf_line(errs, "%s: %s", path, strerror(errno));
	if (fd != -1)
		close(fd);
	unlink(tmp);
	return -1;
}
