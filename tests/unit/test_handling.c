/* test_handling: the alert handling request, its stored value and audit entry, false positives per rule. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "chatmon/handling.h"

static int
parse(const char *body, struct handling_req *q, char *err)
{
	return handling_req_parse(body, strlen(body), q, err, 128);
}

static void
test_req(void **state)
{
	struct handling_req	q;
	char			err[128], big[1200 * 3 + 64];
	size_t			i;

	(void)state;
	assert_int_equal(parse("{\"state\":\"acked\"}", &q, err), 0);
	assert_int_equal(q.state, HANDLING_ACKED);
	assert_null(q.note);
	handling_req_clear(&q);
	assert_int_equal(parse("{\"state\":\"resolved\",\"note\":\"已处理\"}", &q, err), 0);
	assert_string_equal(q.note, "已处理");
	handling_req_clear(&q);
	/* what each state needs */
	assert_int_equal(parse("{\"state\":\"assigned\"}", &q, err), -1);
	assert_non_null(strstr(err, "assignee"));
	assert_int_equal(parse("{\"state\":\"assigned\",\"assignee\":\"bob\"}", &q, err), 0);
	assert_string_equal(q.assignee, "bob");
	handling_req_clear(&q);
	assert_int_equal(parse("{\"state\":\"false_positive\"}", &q, err), -1);
	assert_non_null(strstr(err, "reason"));
	assert_int_equal(parse("{\"state\":\"false_positive\",\"reason\":\"\"}", &q, err), -1);
	assert_int_equal(parse("{\"state\":\"false_positive\",\"reason\":\"ok\"}", &q, err), 0);
	handling_req_clear(&q);
	/* bad bodies */
	assert_int_equal(parse("{", &q, err), -1);
	assert_int_equal(parse("[]", &q, err), -1);
	assert_int_equal(parse("{\"state\":\"done\"}", &q, err), -1);
	assert_int_equal(parse("{\"state\":1}", &q, err), -1);
	assert_int_equal(parse("{\"state\":\"acked\",\"note\":5}", &q, err), -1);
	assert_int_equal(parse("{\"state\":\"acked\",\"note\":\"a\\u0000b\"}", &q, err), -1);
	/* 1000 code points pass, 1001 do not (three bytes each) */
	strcpy(big, "{\"state\":\"acked\",\"note\":\"");
	for (i = 0; i < 1000; i++)
		strcat(big, "字");
	strcat(big, "\"}");
	assert_int_equal(parse(big, &q, err), 0);
	handling_req_clear(&q);
	big[strlen(big) - 2] = '\0';
	strcat(big, "字\"}");
	assert_int_equal(parse(big, &q, err), -1);
}

static void
test_value_and_audit(void **state)
{
	struct handling_req	 q;
	char			 err[128];
	json_t			*alert, *v, *a;

	(void)state;
	assert_int_equal(parse("{\"state\":\"false_positive\",\"reason\":\"誤報\"}", &q, err), 0);
	alert = json_loads("{\"v\":2,\"id\":\"1795342899881-0000abcd-0000000001\","
	    "\"rule\":\"r.a\",\"category\":\"c\",\"severity\":\"critical\","
	    "\"hits\":[{\"rule\":\"r.a\"},{\"rule\":\"r.b\"}]}", 0, NULL);
	assert_non_null(alert);
	assert_non_null(v = handling_value(&q, "bob", 42, alert));
	assert_string_equal(json_string_value(json_object_get(v, "state")), "false_positive");
	assert_string_equal(json_string_value(json_object_get(v, "by")), "bob");
	assert_int_equal(json_integer_value(json_object_get(v, "at")), 42);
	assert_string_equal(json_string_value(json_object_get(v, "reason")), "誤報");
	assert_null(json_object_get(v, "note"));
	assert_string_equal(json_string_value(json_object_get(v, "severity")), "critical");
	assert_int_equal(json_array_size(json_object_get(v, "rules")), 2);
	json_decref(v);
	assert_non_null(a = handling_audit(&q, "x-1", "bob", 43));
	assert_string_equal(json_string_value(json_object_get(a, "what")), "alert.state");
	assert_string_equal(json_string_value(json_object_get(a, "alert")), "x-1");
	assert_string_equal(json_string_value(json_object_get(a, "who")), "bob");
	json_decref(a);
	/* a v1 alert: its one rule */
	json_decref(alert);
	alert = json_loads("{\"id\":\"a\",\"rule\":\"r.c\"}", 0, NULL);
	assert_non_null(v = handling_value(&q, "bob", 1, alert));
	assert_int_equal(json_array_size(json_object_get(v, "rules")), 1);
	json_decref(v);
	json_decref(alert);
	handling_req_clear(&q);
}

static void
test_id_ms(void **state)
{
	(void)state;
	assert_int_equal(handling_id_ms("1795342899881-0000abcd-0000000001"), 1795342899881LL);
	assert_int_equal(handling_id_ms("t-1"), -1);
	assert_int_equal(handling_id_ms("1795342899881"), -1);
	assert_int_equal(handling_id_ms("99999999999999999999-1"), -1);
}

static void
test_fp(void **state)
{
	json_t		*c;
	const char	*fp2 = "{\"state\":\"false_positive\",\"at\":100,\"rules\":[\"a\",\"b\"]}";
	const char	*fp1 = "{\"state\":\"false_positive\",\"at\":50,\"rule\":\"a\"}";
	const char	*ack = "{\"state\":\"acked\",\"at\":100,\"rules\":[\"a\"]}";

	const char	*odd = "{\"state\":\"maybe\",\"at\":100}";
	int		 h;

	(void)state;
	assert_non_null(c = json_object());
	assert_int_equal(handling_fp_add(c, fp2, strlen(fp2), 0, &h), 1);
	assert_int_equal(h, 1);
	assert_int_equal(handling_fp_add(c, fp1, strlen(fp1), 0, &h), 1);
	assert_int_equal(h, 1);
	assert_int_equal(handling_fp_add(c, ack, strlen(ack), 0, &h), 0);
	assert_int_equal(h, 1);				/* handled, not a false positive */
	assert_int_equal(handling_fp_add(c, ack, strlen(ack), 101, &h), 0);
	assert_int_equal(h, 0);				/* handled before the days asked */
	assert_int_equal(handling_fp_add(c, "nope", 4, 0, &h), 0);
	assert_int_equal(h, 0);
	assert_int_equal(handling_fp_add(c, odd, strlen(odd), 0, &h), 0);
	assert_int_equal(h, 0);				/* no state of ours */
	assert_int_equal(handling_fp_add(c, fp1, strlen(fp1), 60, &h), 0);	/* too old */
	assert_int_equal(h, 0);
	assert_int_equal(json_integer_value(json_object_get(c, "a")), 2);
	assert_int_equal(json_integer_value(json_object_get(c, "b")), 1);
	json_decref(c);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_req),
		cmocka_unit_test(test_value_and_audit),
		cmocka_unit_test(test_id_ms),
		cmocka_unit_test(test_fp),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
