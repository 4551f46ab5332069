/* passwd: `chatmon passwd`: add or replace a dashboard user in the users file. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>
#include <sys/file.h>
#include <sys/stat.h>

#include <sodium.h>

#include "chatmon/passwd.h"
#include "chatmon/users.h"

static int
passwd_usage(FILE *f)
{
	fprintf(f,
	    "usage: chatmon passwd -f FILE [--shops LIST | --all-shops] USER "
	    "[viewer|supervisor]\n"
	    "\n"
	    "Adds USER to the dashboard's users file FILE (dashboard.users), or\n"
	    "replaces USER's line there, with an argon2id hash of the password\n"
	    "read from standard input (one line; asked twice, without echo, on a\n"
	    "terminal). The role is viewer unless given. The other lines are kept;\n"
	    "the file is replaced atomically, under a lock of its directory (runs\n"
	    "at once change it one after the other). A new file is made readable by its\n"
	    "owner only (0600); one that exists keeps its owner and group, and at\n"
	    "most mode 0640 (root:chatmond 0640 lets the dashboard's user read\n"
	    "it). A running dashboard reads it again within seconds.\n"
	    "--shops LIST (shop ids joined by ',', e.g. tm,jd) lets the user see\n"
	    "only those shops' alerts, customers and figures; --all-shops lets\n"
	    "the user see every shop again. Without either, a user's shops are\n"
	    "kept (a new user sees every shop).\n"
	    "User names: 1-64 characters of A-Z a-z 0-9 . _ @ -\n"
	    "Exit status: 0 done; 1 an error; 2 a usage error.\n");
	return f == stdout ? 0 : 2;
}

/*
 * One line of standard input into buf (without its newline), echo off and
 * prompt on stderr when it is a terminal. Its length, or -1 (said).
 */
static ssize_t
passwd_read(const char *prompt, char *buf, size_t size, int tty)
{
	struct termios	 old, quiet;
	size_t		 n = 0;
	int		 c, echo_off = 0;

	if (tty) {
		fputs(prompt, stderr);
		fflush(stderr);
		if (tcgetattr(STDIN_FILENO, &old) == 0) {
			quiet = old;
			quiet.c_lflag &= ~(tcflag_t)ECHO;
			echo_off = tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet) == 0;
		}
	}
	while ((c = getchar()) != EOF && c != '\n') {
		if (n + 1 >= size) {
			n = size;	/* too long: keep reading the line, refuse it */
			continue;
		}
		buf[n++] = (char)c;
	}
	if (echo_off) {
		(void)tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
		fputc('\n', stderr);
	}
	/* not "an empty password": a closed or unreadable standard input */
	if (c == EOF && ferror(stdin)) {
		fprintf(stderr, "chatmon: passwd: cannot read the password from "
		    "standard input: %s\n", strerror(errno));
		return -1;
	}
	if (n >= size) {
		fprintf(stderr, "chatmon: passwd: the password is longer than %d bytes\n",
		    USERS_PASSWORD_MAX);
		return -1;
	}
	if (n > 0 && buf[n - 1] == '\r')
		n--;
	buf[n] = '\0';
	return (ssize_t)n;
}

/* The file's contents ("" when there is none yet) into out; 0 or -1 (said). */
static int
passwd_slurp(const char *path, struct sbuf *out)
{
	char	buf[4096];
	ssize_t	n;
	int	fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1) {
		if (errno == ENOENT)
			return 0;
		fprintf(stderr, "chatmon: passwd: %s: %s\n", path, strerror(errno));
		return -1;
	}
	while ((n = read(fd, buf, sizeof(buf))) != 0) {
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 || sbuf_append(out, buf, (size_t)n) == -1) {
			fprintf(stderr, "chatmon: passwd: %s: %s\n", path,
			    n == -1 ? strerror(errno) : "out of memory");
			close(fd);
			return -1;
		}
	}
	close(fd);
	return 0;
}

/*
 * The users file as it is now, checked (a bad line is not ours to drop):
 * its text in text (reset first), whether user is in it, and, when keep,
 * the user's shops in kept (""). 0, or -1 (said).
 */
static int
passwd_current(const char *file, const char *user, struct sbuf *text,
    int *existed, int keep, char *kept, size_t keptsz)
{
	struct users	*u;
	struct sbuf	 errs;

	sbuf_reset(text);
	sbuf_init(&errs);
	if (passwd_slurp(file, text) == -1)
		return -1;
	if ((u = users_parse(text->s != NULL ? text->s : "", text->len, file,
	    &errs)) == NULL) {
		fputs(sbuf_str(&errs), stderr);
		fprintf(stderr, "chatmon: passwd: %s: fix the lines above first\n",
		    file);
		sbuf_free(&errs);
		return -1;
	}
	sbuf_free(&errs);
	*existed = users_role(u, user) != USERS_NONE;
	/* a new password or role does not widen nor narrow what the user sees */
	kept[0] = '\0';
	if (keep && users_shops(u, user) != NULL)
		snprintf(kept, keptsz, "%s", users_shops(u, user));
	users_free(u);
	return 0;
}

/*
 * The directory of file locked, so that two runs (or a run and another
 * tool that locks it) change the file one after the other: each reads it
 * under the lock and writes before it lets go (found by review: three
 * runs at once each said "added", and the file held one of them). The
 * descriptor, or -1 (said).
 */
static int
passwd_lock(const char *file)
{
	char	*copy;
	int	 fd;

	if ((copy = strdup(file)) == NULL) {
		fprintf(stderr, "chatmon: passwd: out of memory\n");
		return -1;
	}
	if ((fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1 ||
	    flock(fd, LOCK_EX) == -1) {
		fprintf(stderr, "chatmon: passwd: cannot lock the directory of %s: "
		    "%s\n", file, strerror(errno));
		if (fd != -1)
			close(fd);
		fd = -1;
	}
	free(copy);
	return fd;
}

int
passwd_main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "file", required_argument, NULL, 'f' },
		{ "help", no_argument, NULL, 'h' },
		{ "shops", required_argument, NULL, 's' },
		{ "all-shops", no_argument, NULL, 'A' },
		{ NULL, 0, NULL, 0 }
	};
	const char	*file = NULL, *user, *role = "viewer", *shops = NULL;
	char		 kept[USERS_SHOPS_MAX];
	char		 pw[USERS_PASSWORD_MAX + 2], again[USERS_PASSWORD_MAX + 2];
	char		 hash[USERS_HASH_MAX];
	struct sbuf	 text, out, errs;
	ssize_t		 n;
	int		 ch, tty, existed, keep, all_shops = 0, rc = 1, lock = -1;

	optind = 1;
	while ((ch = getopt_long(argc, argv, "f:h", longopts, NULL)) != -1) {
		switch (ch) {
		case 'f':
			file = optarg;
			break;
		case 'h':
			return passwd_usage(stdout);
		case 's':
			shops = optarg;
			break;
		case 'A':
			all_shops = 1;
			break;
		default:
			return passwd_usage(stderr);
		}
	}
	if (file == NULL || argc - optind < 1 || argc - optind > 2)
		return passwd_usage(stderr);
	user = argv[optind];
	if (argc - optind == 2)
		role = argv[optind + 1];
	if (!users_name_ok(user)) {
		fprintf(stderr, "chatmon: passwd: bad user name (1-%d characters of "
		    "A-Z a-z 0-9 . _ @ -)\n", USERS_NAME_MAX);
		return 2;
	}
	if (shops != NULL && all_shops) {
		fprintf(stderr, "chatmon: passwd: --shops or --all-shops, not both\n");
		return 2;
	}
	if (shops != NULL && !users_shops_ok(shops)) {
		fprintf(stderr, "chatmon: passwd: bad --shops (shop ids of 1-64 "
		    "characters of A-Z a-z 0-9 . _ - joined by ',')\n");
		return 2;
	}
	if (users_role_parse(role) == USERS_NONE) {
		fprintf(stderr, "chatmon: passwd: unknown role '%s' (viewer or "
		    "supervisor)\n", role);
		return 2;
	}
	sbuf_init(&text);
	sbuf_init(&out);
	sbuf_init(&errs);
	/* the file must be sound before the password is asked for */
	keep = shops == NULL && !all_shops;
	if (passwd_current(file, user, &text, &existed, keep, kept,
	    sizeof(kept)) == -1)
		goto out;
	if (shops == NULL)
		shops = kept;

	tty = isatty(STDIN_FILENO);
	if ((n = passwd_read("Password: ", pw, sizeof(pw) - 1, tty)) == -1)
		goto out;
	if (n == 0) {
		fprintf(stderr, "chatmon: passwd: an empty password: refused\n");
		goto out;
	}
	/* the login sends it in JSON, which holds UTF-8 only: such a one could never log in */
	if (!util_utf8_valid(pw, (size_t)n) || memchr(pw, '\0', (size_t)n) != NULL) {
		fprintf(stderr, "chatmon: passwd: the password is not UTF-8 "
		    "(or holds U+0000): refused, a login could never send it\n");
		goto out;
	}
	if (tty) {
		if (passwd_read("Again: ", again, sizeof(again) - 1, tty) == -1)
			goto out;
		if (strcmp(pw, again) != 0) {
			fprintf(stderr, "chatmon: passwd: the two differ: nothing "
			    "changed\n");
			goto out;
		}
	}
	if (users_hash(pw, (size_t)n, hash) == -1) {
		fprintf(stderr, "chatmon: passwd: argon2id could not get its memory\n");
		goto out;
	}
	/* read again under the lock: it may have changed while we waited */
	if ((lock = passwd_lock(file)) == -1 ||
	    passwd_current(file, user, &text, &existed, keep, kept,
	    sizeof(kept)) == -1)
		goto out;
	if (users_set_line(text.s != NULL ? text.s : "", text.len, user, role,
	    hash, shops, &out) == -1) {
		fprintf(stderr, "chatmon: passwd: out of memory\n");
		goto out;
	}
	if (users_write(file, out.s, out.len, &errs) == -1) {
		fprintf(stderr, "chatmon: passwd: %s", sbuf_str(&errs));
		goto out;
	}
	fprintf(stderr, "chatmon: passwd: %s: %s %s (%s%s%s)\n", file,
	    existed ? "replaced" : "added", user, role, shops[0] ? ", shops " :
	    "", shops);
	rc = 0;
out:
	if (lock != -1)
		close(lock);	/* after the rename: the next run reads what we wrote */
	sodium_memzero(pw, sizeof(pw));
	sodium_memzero(again, sizeof(again));
	sbuf_free(&text);
	sbuf_free(&out);
	sbuf_free(&errs);
	return rc;
}
