/* test_users: the users file (parse and its errors, roles, rewriting a line, argon2id hash and verify, the atomic write). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>
#include <cmocka.h>
#include <sodium.h>

#include "chatmon/users.h"

#define H1 "$argon2id$v=19$m=65536,t=2,p=1$c2FsdHNhbHRzYWx0$aGFzaA"

static void
test_names_and_roles(void **state)
{
	char	long_name[80];

	(void)state;
	assert_true(users_name_ok("alice"));
	assert_true(users_name_ok("a.b_c-d@shop.example"));
	assert_false(users_name_ok(""));
	assert_false(users_name_ok("al ice"));
	assert_false(users_name_ok("al:ice"));
	assert_false(users_name_ok("张三"));
	assert_false(users_name_ok("<img>"));
	memset(long_name, 'a', 64);
	long_name[64] = '\0';
	assert_true(users_name_ok(long_name));
	long_name[64] = 'a';
	long_name[65] = '\0';
	assert_false(users_name_ok(long_name));

	assert_int_equal(users_role_parse("viewer"), USERS_VIEWER);
	assert_int_equal(users_role_parse("supervisor"), USERS_SUPERVISOR);
	assert_int_equal(users_role_parse("admin"), USERS_NONE);
	assert_string_equal(users_role_name(USERS_SUPERVISOR), "supervisor");
	assert_null(users_role_name(USERS_NONE));
	/* the helper a supervisor-only action calls */
	assert_true(users_role_allows(USERS_SUPERVISOR, USERS_SUPERVISOR));
	assert_true(users_role_allows(USERS_SUPERVISOR, USERS_VIEWER));
	assert_true(users_role_allows(USERS_VIEWER, USERS_VIEWER));
	assert_false(users_role_allows(USERS_VIEWER, USERS_SUPERVISOR));
	assert_false(users_role_allows(USERS_NONE, USERS_VIEWER));
	assert_false(users_role_allows(USERS_SUPERVISOR, USERS_NONE));
}

static void
test_parse(void **state)
{
	const char	*good = "# the shop's supervisors\n\nalice:viewer:" H1 "\r\n"
	    "  # indented comment\nbob@x:supervisor:" H1;
	const char	*bad = "alice:viewer:" H1 "\n"
	    "no colons\n"
	    "b d:viewer:" H1 "\n"
	    "carol:admin:" H1 "\n"
	    "dave:viewer:plaintext-password\n"
	    "alice:supervisor:" H1 "\n";
	struct sbuf	 errs;
	struct users	*u;

	(void)state;
	sbuf_init(&errs);
	assert_non_null(u = users_parse(good, strlen(good), "u.txt", &errs));
	assert_int_equal(errs.len, 0);
	assert_int_equal(users_count(u), 2);
	assert_int_equal(users_role(u, "alice"), USERS_VIEWER);
	assert_int_equal(users_role(u, "bob@x"), USERS_SUPERVISOR);
	assert_int_equal(users_role(u, "carol"), USERS_NONE);
	users_free(u);

	assert_null(users_parse(bad, strlen(bad), "u.txt", &errs));
	assert_int_equal(errs.lines, 5);	/* every one, each at its line */
	assert_non_null(strstr(sbuf_str(&errs), "u.txt:2: want USER:ROLE:HASH\n"));
	assert_non_null(strstr(sbuf_str(&errs), "u.txt:3: bad user name"));
	assert_non_null(strstr(sbuf_str(&errs), "u.txt:4: user carol: unknown role 'admin'"));
	assert_non_null(strstr(sbuf_str(&errs), "u.txt:5: user dave: the hash is not"));
	assert_non_null(strstr(sbuf_str(&errs), "u.txt:6: user alice is there twice"));
	/* never the secret itself */
	assert_null(strstr(sbuf_str(&errs), "plaintext-password"));
	sbuf_free(&errs);

	assert_non_null(u = users_parse("", 0, "empty", &errs));
	assert_int_equal(users_count(u), 0);
	users_free(u);
	sbuf_free(&errs);
	users_free(NULL);
}

/*
 * Users are looked up by halves, so every name of a long file, in any
 * order, is found; a name three times is reported at its second and
 * third lines.
 */
static void
test_many(void **state)
{
	struct sbuf	 text, errs;
	struct users	*u;
	char		 name[32];
	int		 i;

	(void)state;
	sbuf_init(&text);
	sbuf_init(&errs);
	for (i = 0; i < 3000; i++)
		assert_int_equal(sbuf_printf(&text, "u%d:%s:" H1 "\n",
		    (i * 7919) % 3000, i % 2 ? "viewer" : "supervisor"), 0);
	assert_non_null(u = users_parse(text.s, text.len, "m.txt", &errs));
	assert_int_equal(users_count(u), 3000);
	for (i = 0; i < 3000; i++) {
		snprintf(name, sizeof(name), "u%d", i);
		assert_int_not_equal(users_role(u, name), USERS_NONE);
	}
	assert_int_equal(users_role(u, "u3000"), USERS_NONE);
	assert_int_equal(users_role(u, ""), USERS_NONE);
	users_free(u);
	assert_int_equal(sbuf_printf(&text, "u5:viewer:" H1 "\nu5:viewer:" H1 "\n"), 0);
	assert_null(users_parse(text.s, text.len, "m.txt", &errs));
	assert_int_equal(errs.lines, 2);
	assert_non_null(strstr(sbuf_str(&errs), "m.txt:3001: user u5 is there twice"));
	assert_non_null(strstr(sbuf_str(&errs), "m.txt:3002: user u5 is there twice"));
	sbuf_free(&text);
	sbuf_free(&errs);
}

static void
test_set_line(void **state)
{
	const char	*text = "# users\nalice:viewer:A\nalicia:viewer:B\nbob:viewer:C";
	struct sbuf	 out;

	(void)state;
	sbuf_init(&out);
	assert_int_equal(users_set_line(text, strlen(text), "alice", "supervisor",
	    "Z", NULL, &out), 0);
	assert_string_equal(sbuf_str(&out),
	    "# users\nalice:supervisor:Z\nalicia:viewer:B\nbob:viewer:C\n");
	assert_int_equal(users_set_line(text, strlen(text), "carol", "viewer",
	    "Y", "", &out), 0);
	assert_string_equal(sbuf_str(&out),
	    "# users\nalice:viewer:A\nalicia:viewer:B\nbob:viewer:C\ncarol:viewer:Y\n");
	assert_int_equal(users_set_line("", 0, "carol", "viewer", "Y", NULL, &out), 0);
	assert_string_equal(sbuf_str(&out), "carol:viewer:Y\n");
	/* shops go in a fourth field, and go again when none are given */
	assert_int_equal(users_set_line(text, strlen(text), "bob", "viewer",
	    "W", "tm,jd", &out), 0);
	assert_string_equal(sbuf_str(&out),
	    "# users\nalice:viewer:A\nalicia:viewer:B\nbob:viewer:W:tm,jd\n");
	assert_int_equal(users_set_line("bob:viewer:W:tm\n", 16, "bob", "viewer",
	    "V", NULL, &out), 0);
	assert_string_equal(sbuf_str(&out), "bob:viewer:V\n");
	sbuf_free(&out);
}

#define HASH_A	"$argon2id$v=19$m=65536,t=2,p=1$c2FsdHNhbHRzYWx0$aGFzaA"

static void
test_shops(void **state)
{
	const char	*text = "old:viewer:" HASH_A "\n"
	    "tmall:supervisor:" HASH_A ":tm\n"
	    "two:viewer:" HASH_A ":tm,jd.hk\n";
	struct users	*u;
	struct sbuf	 errs;

	(void)state;
	sbuf_init(&errs);
	/* an old file (three fields) stays valid: its users see every shop */
	assert_non_null(u = users_parse(text, strlen(text), "u", &errs));
	assert_null(users_shops(u, "old"));
	assert_string_equal(users_shops(u, "tmall"), "tm");
	assert_string_equal(users_shops(u, "two"), "tm,jd.hk");
	assert_int_equal(users_role(u, "tmall"), USERS_SUPERVISOR);
	assert_null(users_shops(u, "nobody"));
	users_free(u);

	assert_true(users_scope_has(NULL, "tm"));
	assert_true(users_scope_has(NULL, ""));
	assert_true(users_scope_has("", NULL));
	assert_true(users_scope_has("tm,jd.hk", "jd.hk"));
	assert_true(users_scope_has("tm,jd.hk", "tm"));
	assert_false(users_scope_has("tm,jd.hk", "t"));
	assert_false(users_scope_has("tm,jd.hk", "jd"));
	assert_false(users_scope_has("tm,jd.hk", "tm,jd.hk"));
	assert_false(users_scope_has("tm", ""));
	assert_false(users_scope_has("tm", NULL));
	/* dashauth's scope of an ended login: nothing */
	assert_false(users_scope_has(",", "tm"));
	assert_false(users_scope_has(",", ""));
	assert_false(users_scope_has(",", NULL));

	assert_true(users_shops_ok("a"));
	assert_true(users_shops_ok("A-z.0_9,b"));
	assert_false(users_shops_ok(""));
	assert_false(users_shops_ok("a,"));
	assert_false(users_shops_ok(",a"));
	assert_false(users_shops_ok("a,,b"));
	assert_false(users_shops_ok("a b"));
	assert_false(users_shops_ok("a:b"));
	assert_true(users_shops_ok("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"));
	assert_false(users_shops_ok("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"));

	/* a bad list is an error of its line, naming the user */
	assert_null(users_parse("x:viewer:" HASH_A ":tm,\n", 9 + strlen(HASH_A) + 5,
	    "u", &errs));
	assert_non_null(strstr(sbuf_str(&errs), "u:1: user x: bad shops"));
	sbuf_reset(&errs);
	assert_null(users_parse("x:viewer:" HASH_A ":\n", 9 + strlen(HASH_A) + 2,
	    "u", &errs));
	assert_non_null(strstr(sbuf_str(&errs), "u:1: user x: bad shops"));
	sbuf_free(&errs);
}

static double
users_ms(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void
test_hash_verify(void **state)
{
	char		 h[USERS_HASH_MAX], text[512];
	struct sbuf	 errs;
	struct users	*u;
	enum users_role	 role;
	double		 t0, known, unknown;

	(void)state;
	assert_int_equal(users_hash("s3cret 密码", strlen("s3cret 密码"), h), 0);
	assert_memory_equal(h, "$argon2id$v=19$m=65536,t=2,p=1$", 31);
	snprintf(text, sizeof(text), "alice:supervisor:%s\n", h);
	sbuf_init(&errs);
	assert_non_null(u = users_parse(text, strlen(text), "u", &errs));
	assert_int_equal(users_verify(u, "alice", "s3cret 密码",
	    strlen("s3cret 密码"), &role), 1);
	assert_int_equal(role, USERS_SUPERVISOR);
	t0 = users_ms();
	assert_int_equal(users_verify(u, "alice", "s3cret", 6, &role), 0);
	known = users_ms() - t0;
	assert_int_equal(role, USERS_NONE);
	t0 = users_ms();
	assert_int_equal(users_verify(u, "mallory", "s3cret 密码",
	    strlen("s3cret 密码"), &role), 0);
	unknown = users_ms() - t0;
	assert_int_equal(role, USERS_NONE);
	/* an unknown user does the same argon2id work (a loose bound: a busy machine) */
	assert_true(unknown > known / 3 && unknown < known * 3);
	users_free(u);
	sbuf_free(&errs);
}

/*
 * A session's stamp: the same while the user's line is the same, another
 * once the password is set again (a new salt: even the same password).
 */
static void
test_stamp(void **state)
{
	char		 h1[USERS_HASH_MAX], h2[USERS_HASH_MAX], text[512];
	unsigned char	 a[USERS_STAMP_BYTES], b[USERS_STAMP_BYTES];
	unsigned char	 c[USERS_STAMP_BYTES];
	struct sbuf	 errs;
	struct users	*u;

	(void)state;
	sbuf_init(&errs);
	assert_int_equal(users_hash("pw", 2, h1), 0);
	assert_int_equal(users_hash("pw", 2, h2), 0);
	snprintf(text, sizeof(text), "alice:viewer:%s\nbob:viewer:%s\n", h1, h1);
	assert_non_null(u = users_parse(text, strlen(text), "u", &errs));
	assert_int_equal(users_stamp(u, "alice", a), 0);
	assert_int_equal(users_stamp(u, "alice", b), 0);
	assert_memory_equal(a, b, sizeof(a));
	assert_int_equal(users_stamp(u, "carol", c), -1);
	users_free(u);
	/* the role changed, the hash not: the same stamp */
	snprintf(text, sizeof(text), "alice:supervisor:%s:tm\n", h1);
	assert_non_null(u = users_parse(text, strlen(text), "u", &errs));
	assert_int_equal(users_stamp(u, "alice", b), 0);
	assert_memory_equal(a, b, sizeof(a));
	users_free(u);
	snprintf(text, sizeof(text), "alice:viewer:%s\n", h2);
	assert_non_null(u = users_parse(text, strlen(text), "u", &errs));
	assert_int_equal(users_stamp(u, "alice", b), 0);
	assert_memory_not_equal(a, b, sizeof(a));
	users_free(u);
	sbuf_free(&errs);
}

/*
 * A password of USERS_VERIFY_MAX bytes set under the old limit still logs
 * in; one that only starts with it does not (it was checked as its first
 * USERS_VERIFY_MAX bytes, and matched).
 */
static void
test_verify_longest(void **state)
{
	char		 h[crypto_pwhash_STRBYTES], text[512], *pw;
	struct sbuf	 errs;
	struct users	*u;
	enum users_role	 role;

	(void)state;
	assert_non_null(pw = malloc(USERS_VERIFY_MAX + 100));
	memset(pw, 'a', USERS_VERIFY_MAX + 100);
	assert_int_equal(sodium_init() >= 0, 1);
	assert_int_equal(crypto_pwhash_str(h, pw, USERS_VERIFY_MAX,
	    crypto_pwhash_OPSLIMIT_INTERACTIVE, crypto_pwhash_MEMLIMIT_INTERACTIVE), 0);
	snprintf(text, sizeof(text), "old:viewer:%s\n", h);
	sbuf_init(&errs);
	assert_non_null(u = users_parse(text, strlen(text), "u", &errs));
	assert_int_equal(users_verify(u, "old", pw, USERS_VERIFY_MAX, &role), 1);
	assert_int_equal(role, USERS_VIEWER);
	assert_int_equal(users_verify(u, "old", pw, USERS_VERIFY_MAX + 1, &role), 0);
	assert_int_equal(role, USERS_NONE);
	assert_int_equal(users_verify(u, "old", pw, USERS_VERIFY_MAX + 100, &role), 0);
	assert_int_equal(users_verify(u, "old", pw, USERS_VERIFY_MAX - 1, &role), 0);
	users_free(u);
	sbuf_free(&errs);
	free(pw);
}

static void
test_write(void **state)
{
	char		 dir[] = "/tmp/test_users.XXXXXX", path[64], buf[64];
	struct sbuf	 errs;
	struct stat	 st;
	FILE		*f;
	size_t		 n;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/users", dir);
	sbuf_init(&errs);
	assert_int_equal(users_write(path, "a:viewer:X\n", 11, &errs), 0);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(users_write(path, "b:viewer:Y\n", 11, &errs), 0);
	assert_non_null(f = fopen(path, "r"));
	n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = '\0';
	fclose(f);
	assert_string_equal(buf, "b:viewer:Y\n");
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	/* a directory that is not there: said, and nothing left behind */
	snprintf(path, sizeof(path), "%s/no/users", dir);
	assert_int_equal(users_write(path, "x", 1, &errs), -1);
	assert_non_null(strstr(sbuf_str(&errs), "cannot make a temporary file"));
	snprintf(path, sizeof(path), "%s/users", dir);
	assert_int_equal(unlink(path), 0);
	assert_int_equal(rmdir(dir), 0);
	sbuf_free(&errs);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_names_and_roles),
		cmocka_unit_test(test_parse),
		cmocka_unit_test(test_many),
		cmocka_unit_test(test_set_line),
		cmocka_unit_test(test_shops),
		cmocka_unit_test(test_hash_verify),
		cmocka_unit_test(test_stamp),
		cmocka_unit_test(test_verify_longest),
		cmocka_unit_test(test_write),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
