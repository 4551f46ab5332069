/* test_log: every message is one line (one JSON object) whatever it holds, read back from a captured stderr. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include <jansson.h>

#include "chatmon/log.h"

static char	out[65536];

/* What log_info("%s", msg) (log_warn when warn) wrote to stderr; its length. */
static size_t
logged_as(const char *msg, int warn)
{
	FILE	*f;
	size_t	 n;
	int	 saved;

	assert_non_null(f = tmpfile());
	assert_true((saved = dup(2)) != -1);
	assert_true(dup2(fileno(f), 2) != -1);
	if (warn) {
		errno = ENOENT;
		log_warn("%s", msg);
	} else
		log_info("%s", msg);
	assert_true(dup2(saved, 2) != -1);
	close(saved);
	rewind(f);
	n = fread(out, 1, sizeof(out) - 1, f);
	out[n] = '\0';
	fclose(f);
	return n;
}

static size_t
logged(const char *msg)
{
	return logged_as(msg, 0);
}

static int
setup_text(void **state)
{
	(void)state;
	unsetenv("JOURNAL_STREAM");
	log_init("t", LOG_LVL_DEBUG);
	log_set_json(0);
	return 0;
}

/* The line a text message becomes, after "t: info: ". */
static void
assert_text(const char *msg, const char *want)
{
	char	line[1024];

	snprintf(line, sizeof(line), "t: info: %s\n", want);
	logged(msg);
	assert_string_equal(out, line);
}

/* An agent's conversation id with a newline cannot start a line of its own. */
static void
test_text_newline_is_escaped(void **state)
{
	(void)state;
	assert_text("alert: conversation=c1\n<2>chatmond: main: FORGED",
	    "alert: conversation=c1\\x0a<2>chatmond: main: FORGED");
	assert_text("relay_apply: 1 rules from /x (JIT)",
	    "relay_apply: 1 rules from /x (JIT)");
	assert_text("", "");
	logged_as("a\nb", 1);
	assert_string_equal(out, "t: warn: a\\x0ab: No such file or directory\n");
}

/* C0, DEL, C1 and U+2028/U+2029 are escaped; the rest of UTF-8 is kept. */
static void
test_text_controls(void **state)
{
	(void)state;
	assert_text("a\tb\rc\x01\x1f\x7f" "d", "a\\x09b\\x0dc\\x01\\x1f\\x7fd");
	assert_text("\xc2\x85|\xc2\x80|\xc2\x9f|\xc2\xa0",	/* NEL, C1 ends, NBSP */
	    "\\u0085|\\u0080|\\u009f|\xc2\xa0");
	assert_text("a\xe2\x80\xa8" "b\xe2\x80\xa9" "c\xe2\x80\xa7",
	    "a\\u2028b\\u2029c\xe2\x80\xa7");
	assert_text("\xe4\xb8\xad\xe6\x96\x87 \xf0\x9f\x98\x80 \\ \" <6>",
	    "\xe4\xb8\xad\xe6\x96\x87 \xf0\x9f\x98\x80 \\ \" <6>");
}

/* A byte that is not part of well-formed UTF-8 is written as \xNN. */
static void
test_text_invalid_utf8(void **state)
{
	(void)state;
	assert_text("https://\xff\xfe.example", "https://\\xff\\xfe.example");
	assert_text("\xc0\xaf", "\\xc0\\xaf");			/* overlong '/' */
	assert_text("\xed\xa0\x80", "\\xed\\xa0\\x80");		/* a surrogate */
	assert_text("\xe4\xb8x", "\\xe4\\xb8x");		/* a cut sequence */
	assert_text("\x80\xe4\xb8\xad", "\\x80\xe4\xb8\xad");	/* a stray continuation */
	assert_text("\xf4\x90\x80\x80", "\\xf4\\x90\\x80\\x80");	/* past U+10FFFF */
}

/* A long line is cut between characters and between escapes, and keeps its newline. */
static void
test_text_long_lines(void **state)
{
	char	*msg;
	size_t	 i, n;

	(void)state;
	assert_non_null(msg = malloc(16000));
	for (i = 0; i < 5000; i++)		/* 中 x 5000: 15 000 bytes */
		memcpy(msg + 3 * i, "\xe4\xb8\xad", 3);
	msg[15000] = '\0';
	n = logged(msg);
	assert_true(n <= 4096);
	assert_true(out[n - 1] == '\n');
	assert_ptr_equal(strchr(out, '\n'), out + n - 1);
	assert_true(util_utf8_valid(out, n));
	assert_true((n - 1 - strlen("t: info: ")) % 3 == 0);

	memset(msg, '\x01', 3000);
	msg[3000] = '\0';
	n = logged(msg);
	assert_true(n <= 4096 && n > 4000);
	assert_ptr_equal(strchr(out, '\n'), out + n - 1);
	for (i = strlen("t: info: "); i < n - 1; i += 4)
		assert_memory_equal(out + i, "\\x01", 4);
	assert_int_equal(i, n - 1);
	free(msg);
}

/* In the journal, the <N> priority is chatmond's; a forged one stays inside the line. */
static void
test_journal_priority_not_forged(void **state)
{
	struct stat	 st;
	char		 js[64];
	FILE		*f;
	int		 saved;

	(void)state;
	assert_non_null(f = tmpfile());
	assert_true((saved = dup(2)) != -1);
	assert_true(dup2(fileno(f), 2) != -1);
	assert_int_equal(fstat(2, &st), 0);
	snprintf(js, sizeof(js), "%llu:%llu", (unsigned long long)st.st_dev,
	    (unsigned long long)st.st_ino);
	setenv("JOURNAL_STREAM", js, 1);
	log_init("t", LOG_LVL_DEBUG);		/* stderr is the journal's */
	assert_true(dup2(saved, 2) != -1);
	close(saved);
	fclose(f);
	unsetenv("JOURNAL_STREAM");

	logged("alert: conversation=c1\n<2>chatmond: main: FORGED\r\n");
	assert_string_equal(out,
	    "<6>alert: conversation=c1\\x0a<2>chatmond: main: FORGED\\x0d\\x0a\n");
	log_init("t", LOG_LVL_DEBUG);
}

static int
setup_json(void **state)
{
	(void)state;
	unsetenv("JOURNAL_STREAM");
	log_init("t", LOG_LVL_DEBUG);
	log_set_json(1);
	return 0;
}

/*
 * The "msg" of the one JSON object msg was logged as, read by jansson
 * (which refuses a string that is not UTF-8); the caller frees it.
 */
static char *
json_msg(const char *msg)
{
	json_error_t	 e;
	json_t		*o;
	size_t		 n;
	char		*m;

	n = logged(msg);
	assert_true(n > 0 && out[n - 1] == '\n');
	assert_ptr_equal(strchr(out, '\n'), out + n - 1);
	o = json_loadb(out, n - 1, 0, &e);
	if (o == NULL)
		fail_msg("not JSON (%s): %.200s", e.text, out);
	assert_string_equal(json_string_value(json_object_get(o, "level")), "info");
	assert_non_null(m = strdup(json_string_value(json_object_get(o, "msg"))));
	json_decref(o);
	return m;
}

static void
assert_json(const char *msg, const char *want)
{
	char	*m = json_msg(msg);

	assert_string_equal(m, want);
	free(m);
}

/* A byte that is not part of well-formed UTF-8 is U+FFFD: the line stays JSON. */
static void
test_json_invalid_utf8(void **state)
{
	(void)state;
	assert_json("session_allow: Origin https://\xff\xfe.example is not",
	    "session_allow: Origin https://\xef\xbf\xbd\xef\xbf\xbd.example is not");
	assert_json("\xc0\xaf|\xed\xa0\x80|\xe4\xb8x|\x80",
	    "\xef\xbf\xbd\xef\xbf\xbd|\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd|"
	    "\xef\xbf\xbd\xef\xbf\xbdx|\xef\xbf\xbd");
	assert_json("\xe4\xb8\xad\xf0\x9f\x98\x80\xef\xbf\xbd",
	    "\xe4\xb8\xad\xf0\x9f\x98\x80\xef\xbf\xbd");
}

/* Controls, quotes and backslashes are escaped, and read back as they were. */
static void
test_json_controls(void **state)
{
	(void)state;
	assert_json("a\nb\"c\\d\x01\x7f" "e\xc2\x85" "f\xe2\x80\xa8" "g",
	    "a\nb\"c\\d\x01\x7f" "e\xc2\x85" "f\xe2\x80\xa8" "g");
	assert_non_null(strstr(out, "\"msg\":\"a\\u000ab\\\"c\\\\d\\u0001\\u007f"
	    "e\\u0085f\\u2028g\"}\n"));
}

/* A long message is cut between characters: no U+FFFD where the cut fell. */
static void
test_json_long_lines(void **state)
{
	char	*msg, *m;
	size_t	 i;

	(void)state;
	assert_non_null(msg = malloc(16000));
	msg[0] = 'a';				/* a, 中 x 2000: the 4 KiB cut lands inside a 中 */
	for (i = 0; i < 2000; i++)
		memcpy(msg + 1 + 3 * i, "\xe4\xb8\xad", 3);
	msg[6001] = '\0';
	m = json_msg(msg);
	assert_int_equal(strlen(m), 1 + 3 * 1364);
	assert_memory_equal(m, msg, strlen(m));
	free(m);

	memset(msg, '\xff', 5000);		/* 6 bytes out for each: cut by the line's size */
	msg[5000] = '\0';
	m = json_msg(msg);
	assert_true(strlen(m) > 3000 && strlen(m) % 3 == 0);
	for (i = 0; m[i] != '\0'; i += 3)
		assert_memory_equal(m + i, "\xef\xbf\xbd", 3);
	free(m);
	free(msg);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_text_newline_is_escaped, setup_text),
		cmocka_unit_test_setup(test_text_controls, setup_text),
		cmocka_unit_test_setup(test_text_invalid_utf8, setup_text),
		cmocka_unit_test_setup(test_text_long_lines, setup_text),
		cmocka_unit_test_setup(test_journal_priority_not_forged, setup_text),
		cmocka_unit_test_setup(test_json_invalid_utf8, setup_json),
		cmocka_unit_test_setup(test_json_controls, setup_json),
		cmocka_unit_test_setup(test_json_long_lines, setup_json),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
