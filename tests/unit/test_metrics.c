/* test_metrics: the stats line and the Prometheus text carry every field. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "chatmon/metrics.h"

static void
test_line(void **state)
{
	struct metrics	m = { 0 };
	struct sbuf	out;

	(void)state;
	sbuf_init(&out);
	m.agents_total = 3;
	m.turns_customer = 18446744073709551615u;
	assert_int_equal(metrics_format_line(&m, &out), 0);
	assert_non_null(strstr(sbuf_str(&out), "agents_total=3 "));
	assert_non_null(strstr(sbuf_str(&out), " turns_customer=18446744073709551615 "));
	assert_int_equal(strncmp(sbuf_str(&out), "agents_total=3", 14), 0);
	assert_null(strchr(sbuf_str(&out), '\n'));
	sbuf_free(&out);
}

static void
test_prometheus(void **state)
{
	struct metrics	m = { 0 };
	struct sbuf	out;

	(void)state;
	sbuf_init(&out);
	m.agents_active = 7;
	m.bytes_up = 42;
	assert_int_equal(metrics_format_prometheus(&m, &out), 0);
	assert_non_null(strstr(sbuf_str(&out),
	    "# TYPE chatmon_agents_active gauge\nchatmon_agents_active 7\n"));
	assert_non_null(strstr(sbuf_str(&out),
	    "# TYPE chatmon_bytes_up_total counter\nchatmon_bytes_up_total 42\n"));
	assert_non_null(strstr(sbuf_str(&out), "# HELP chatmon_reloads_total "));
	sbuf_free(&out);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_line),
		cmocka_unit_test(test_prometheus),
	};

	return cmocka_run_group_tests_name("metrics", tests, NULL, NULL);
}
