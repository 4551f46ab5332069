/* test_note: a whisper note's request, id, JSON and the view pages get. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "chatmon/note.h"

static int
parse(const char *body, char **c, char **t)
{
	char	err[128];

	return note_req_parse(body, strlen(body), c, t, err, sizeof(err));
}

static void
test_req(void **state)
{
	char	*c, *t;

	(void)state;
	assert_int_equal(parse("{\"conversation\":\"c-1\",\"text\":\"注意语气\"}", &c, &t), 0);
	assert_string_equal(c, "c-1");
	assert_string_equal(t, "注意语气");
	free(c);
	free(t);
	assert_int_equal(parse("{\"conversation\":\"c-1\",\"text\":\"\"}", &c, &t), -1);
	assert_int_equal(parse("{\"conversation\":\"c-1\"}", &c, &t), -1);
	assert_int_equal(parse("{\"text\":\"x\"}", &c, &t), -1);
	assert_int_equal(parse("{\"conversation\":\"c\\n1\",\"text\":\"x\"}", &c, &t), -1);
	assert_int_equal(parse("not json", &c, &t), -1);
	assert_null(c);
	assert_null(t);
	assert_true(note_name_ok("alice", 5));
	assert_false(note_name_ok("", 0));
	assert_false(note_name_ok("a\x01", 2));
	assert_true(note_name_ok("\xe5\xb0\x8f\xe7\xba\xa2", 6));	/* 小红 */
	assert_false(note_name_ok("\xff", 1));
	assert_false(note_name_ok("\xe5\xb0", 2));			/* cut short */
}

static void
test_id_json_view(void **state)
{
	char	 id[NOTE_ID_MAX], *s;
	json_t	*o, *v;

	(void)state;
	note_id(id, 1795342899881LL, 0xabcU);
	assert_string_equal(id, "n-1795342899881-00000abc");
	assert_non_null(o = note_json(id, "alice", "c-1", "bob", "hi", 7));
	assert_non_null(s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER));
	assert_string_equal(s, "{\"id\":\"n-1795342899881-00000abc\",\"agent\":\"alice\","
	    "\"conversation\":\"c-1\",\"from\":\"bob\",\"text\":\"hi\",\"ts\":7}");
	assert_non_null(v = note_view(s, strlen(s), "read", "8", "9"));
	assert_string_equal(json_string_value(json_object_get(v, "state")), "read");
	assert_int_equal(json_integer_value(json_object_get(v, "delivered_at")), 8);
	assert_int_equal(json_integer_value(json_object_get(v, "read_at")), 9);
	json_decref(v);
	assert_non_null(v = note_view(s, strlen(s), NULL, NULL, NULL));
	assert_string_equal(json_string_value(json_object_get(v, "state")), "sent");
	assert_true(json_is_null(json_object_get(v, "read_at")));
	json_decref(v);
	assert_null(note_view("[1]", 3, "sent", NULL, NULL));
	free(s);
	json_decref(o);
	assert_non_null(o = note_audit(id, "alice", "c-1", "bob", 7));
	assert_string_equal(json_string_value(json_object_get(o, "what")), "note.send");
	json_decref(o);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_req),
		cmocka_unit_test(test_id_json_view),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
