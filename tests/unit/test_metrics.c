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
	struct metrics	 m = { 0 };
	struct sbuf	 out;
	const char	*s, *p;

	(void)state;
	sbuf_init(&out);
	m.agents_active = 7;
	m.bytes_up = 42;
	m.bytes_down = 5;
	m.sla_timer_late_max_us = 1500;
	m.reloads_ok = 3;
	assert_int_equal(metrics_format_prometheus(&m, &out), 0);
	s = sbuf_str(&out);
	assert_non_null(strstr(s,
	    "# TYPE chatmon_agents_connected gauge\nchatmon_agents_connected 7\n"));
	/* one metric, two labelled series, HELP and TYPE once */
	assert_non_null(strstr(s, "# TYPE chatmon_bytes_total counter\n"
	    "chatmon_bytes_total{direction=\"up\"} 42\n"
	    "chatmon_bytes_total{direction=\"down\"} 5\n"));
	p = strstr(s, "# TYPE chatmon_bytes_total");
	assert_null(strstr(p + 1, "# TYPE chatmon_bytes_total"));
	/* microseconds shown in seconds */
	assert_non_null(strstr(s, "chatmon_sla_timer_late_max_seconds 0.001500\n"));
	/* what the relay exports itself is not here */
	assert_null(strstr(s, "reloads"));
	assert_null(strstr(s, "chatmon_rule_hits"));
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
