/* test_access: address ranges, Origin allow-lists, Host names and agent ids. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "chatmon/access.h"
#include "chatmon/config.h"

static int
in(const char *range, const char *addr)
{
	struct access_cidr	 c;
	const char		*why;

	assert_int_equal(access_cidr_parse(range, &c, &why), 0);
	return access_cidr_any(&c, 1, addr);
}

static void
test_cidr(void **state)
{
	struct access_cidr	 c;
	const char		*why = NULL;

	(void)state;
	assert_true(in("10.0.0.0/8", "10.200.3.4"));
	assert_false(in("10.0.0.0/8", "11.0.0.1"));
	assert_true(in("10.1.2.3/8", "10.9.9.9"));	/* host bits cleared */
	assert_true(in("192.0.2.7", "192.0.2.7"));
	assert_false(in("192.0.2.7", "192.0.2.8"));
	assert_true(in("192.0.2.0/25", "192.0.2.127"));
	assert_false(in("192.0.2.0/25", "192.0.2.128"));
	assert_true(in("0.0.0.0/0", "203.0.113.9"));
	assert_false(in("0.0.0.0/0", "::1"));	/* a family matches its own */
	assert_true(in("::1", "::1"));
	assert_true(in("2001:db8::/32", "2001:db8:ffff::1"));
	assert_false(in("2001:db8::/33", "2001:db8:ffff::1"));
	/* a v4-mapped peer is its IPv4 address */
	assert_true(in("127.0.0.0/8", "::ffff:127.0.0.1"));
	/* and a v4-mapped range is its IPv4 range, whichever way the peer came */
	assert_true(in("::ffff:10.0.0.0/104", "10.1.2.3"));
	assert_true(in("::ffff:10.0.0.0/104", "::ffff:10.1.2.3"));
	assert_false(in("::ffff:10.0.0.0/104", "11.1.2.3"));
	assert_true(in("::ffff:192.0.2.7", "192.0.2.7"));
	assert_false(in("::ffff:192.0.2.7", "192.0.2.8"));
	assert_false(in("::/0", "192.0.2.7"));	/* not a mapped range */
	assert_false(in("10.0.0.0/8", "not an address"));
	assert_int_equal(access_cidr_parse("10.0.0.0/33", &c, &why), -1);
	assert_non_null(why);
	assert_int_equal(access_cidr_parse("::/129", &c, &why), -1);
	assert_int_equal(access_cidr_parse("10.0.0.0/", &c, &why), -1);
	assert_int_equal(access_cidr_parse("10.0.0.0/+8", &c, &why), -1);
	assert_int_equal(access_cidr_parse("10.0.0/8", &c, &why), -1);
	assert_int_equal(access_cidr_parse("proxy.example.com", &c, &why), -1);
	assert_int_equal(access_cidr_parse("", &c, &why), -1);
}

static void
test_origin(void **state)
{
	char			*v[] = { "https://wb.example.com",
				    "http://127.0.0.1:8000" };
	struct config_list	 none = { NULL, 0 }, list = { v, 2 };

	(void)state;
	assert_null(access_origin_why("https://wb.example.com"));
	assert_null(access_origin_why("http://[::1]:8080"));
	assert_non_null(access_origin_why("wb.example.com"));
	assert_non_null(access_origin_why("https://"));
	assert_non_null(access_origin_why("https://wb.example.com/"));
	assert_non_null(access_origin_why("https://wb.example.com/x"));
	assert_non_null(access_origin_why("https://u@wb.example.com"));
	assert_non_null(access_origin_why("*"));

	/* an empty list lets any origin in; no Origin is not a browser page */
	assert_true(access_origin_ok(&none, "https://evil.example", NULL));
	assert_true(access_origin_ok(&list, NULL, NULL));
	assert_true(access_origin_ok(&list, "https://wb.example.com", NULL));
	assert_true(access_origin_ok(&list, "HTTPS://WB.EXAMPLE.COM", NULL));
	assert_true(access_origin_ok(&list, "https://wb.example.com:443", NULL));
	assert_true(access_origin_ok(&list, "http://127.0.0.1:8000", NULL));
	assert_false(access_origin_ok(&list, "http://127.0.0.1:8001", NULL));
	assert_false(access_origin_ok(&list, "http://wb.example.com", NULL));
	assert_false(access_origin_ok(&list, "https://wb.example.com.evil",
	    NULL));
	assert_false(access_origin_ok(&list, "https://evil.example", NULL));
	assert_false(access_origin_ok(&list, "null", NULL));
	/* a page the server serves is its own origin, list or none */
	assert_true(access_origin_ok(&none, "http://127.0.0.1:8081",
	    "http://127.0.0.1:8081"));
	assert_false(access_origin_ok(&none, "https://evil.example",
	    "http://127.0.0.1:8081"));
	assert_true(access_origin_ok(&list, "https://wb.example.com",
	    "http://127.0.0.1:8081"));
}

static void
test_host(void **state)
{
	char			 h[64], *o[] = { "https://qc.shop.example",
				    "http://[2001:db8::7]:8080" };
	struct config_list	 origins = { o, 2 };
	int			 port;

	(void)state;
	assert_int_equal(access_host_split("Dash.Example:8081", h, sizeof(h), &port), 0);
	assert_string_equal(h, "dash.example");
	assert_int_equal(port, 8081);
	assert_int_equal(access_host_split("localhost.", h, sizeof(h), &port), 0);
	assert_string_equal(h, "localhost");
	assert_int_equal(port, 0);
	assert_int_equal(access_host_split("[::1]:8081", h, sizeof(h), &port), 0);
	assert_string_equal(h, "::1");
	assert_int_equal(port, 8081);
	assert_int_equal(access_host_split("[::1]", h, sizeof(h), &port), 0);
	assert_int_equal(port, 0);
	assert_int_equal(access_host_split("a:", h, sizeof(h), &port), 0);
	assert_int_equal(access_host_split("", h, sizeof(h), &port), -1);
	assert_int_equal(access_host_split(":80", h, sizeof(h), &port), -1);
	assert_int_equal(access_host_split("::1", h, sizeof(h), &port), -1);
	assert_int_equal(access_host_split("[::1", h, sizeof(h), &port), -1);
	assert_int_equal(access_host_split("[::1]x", h, sizeof(h), &port), -1);
	assert_int_equal(access_host_split("[a.b]", h, sizeof(h), &port), 0);
	assert_int_equal(access_host_split("[x.y]", h, sizeof(h), &port), -1);
	assert_int_equal(access_host_split("a:0", h, sizeof(h), &port), -1);
	assert_int_equal(access_host_split("a:65536", h, sizeof(h), &port), -1);
	assert_int_equal(access_host_split("a:+80", h, sizeof(h), &port), -1);
	assert_int_equal(access_host_split("a:80x", h, sizeof(h), &port), -1);
	assert_int_equal(access_host_split("a b", h, sizeof(h), &port), -1);
	assert_int_equal(access_host_split("a/b", h, sizeof(h), &port), -1);
	assert_int_equal(access_host_split("u@a", h, sizeof(h), &port), -1);
	assert_int_equal(access_host_split("\xe4\xbe\x8b.cn", h, sizeof(h), &port), -1);
	assert_int_equal(access_host_split("abcdefgh", h, 8, &port), -1);
	assert_int_equal(access_url_host("https://u:p@Dash.Example:8443/x?y", h,
	    sizeof(h)), 0);
	assert_string_equal(h, "dash.example");
	assert_int_equal(access_url_host("dash.example", h, sizeof(h)), -1);
	/* the origin of dashboard.public_url: a page there sends it (behind a TLS proxy) */
	assert_int_equal(access_url_origin("https://u:p@QC.Example.com/board/?x#y", h,
	    sizeof(h)), 0);
	assert_string_equal(h, "https://qc.example.com");
	assert_int_equal(access_url_origin("HTTPS://qc.example.com:8443", h, sizeof(h)), 0);
	assert_string_equal(h, "https://qc.example.com:8443");
	assert_int_equal(access_url_origin("http://[2001:DB8::7]:8080/", h, sizeof(h)), 0);
	assert_string_equal(h, "http://[2001:db8::7]:8080");
	assert_int_equal(access_url_origin("ftp://qc.example.com/", h, sizeof(h)), -1);
	assert_int_equal(access_url_origin("https:///board", h, sizeof(h)), -1);
	assert_int_equal(access_url_origin("https://a b/", h, sizeof(h)), -1);
	assert_int_equal(access_url_origin("https://qc.example.com:8443/", h, 27), -1);
	assert_int_equal(access_url_origin("https://qc.example.com:8443/", h, 28), 0);

	/* not a browser; addresses; localhost */
	assert_true(access_host_ok(NULL, NULL, NULL, NULL));
	assert_true(access_host_ok("127.0.0.1:8081", NULL, NULL, NULL));
	assert_true(access_host_ok("192.0.2.7", NULL, NULL, NULL));
	assert_true(access_host_ok("[::1]:8081", NULL, NULL, NULL));
	assert_true(access_host_ok("LocalHost:9999", NULL, NULL, NULL));
	/* DNS rebinding: a name nobody configured */
	assert_false(access_host_ok("rebind.attacker.test:8081", "127.0.0.1",
	    NULL, NULL));
	assert_false(access_host_ok("localhost.attacker.test", NULL, NULL, NULL));
	assert_false(access_host_ok("127.0.0.1.nip.io:8081", NULL, NULL, NULL));
	assert_false(access_host_ok("", NULL, NULL, NULL));
	assert_false(access_host_ok("[::1", NULL, NULL, NULL));
	/* the names configured */
	assert_true(access_host_ok("dash.internal:8081", "Dash.Internal", NULL, NULL));
	assert_true(access_host_ok("qc.example.com", "0.0.0.0",
	    "https://QC.example.com/dashboard/", NULL));
	assert_true(access_host_ok("qc.example.com:443", NULL,
	    "https://qc.example.com", NULL));
	assert_false(access_host_ok("qc.example.com.evil", NULL,
	    "https://qc.example.com", NULL));
	assert_true(access_host_ok("qc.shop.example", NULL, NULL, &origins));
	assert_true(access_host_ok("[2001:db8::7]:8080", NULL, NULL, &origins));
	assert_false(access_host_ok("shop.example", NULL, NULL, &origins));
}

static void
test_agent_id(void **state)
{
	char	long_id[ACCESS_AGENT_ID_MAX + 2];

	(void)state;
	assert_null(access_agent_id_why("alice", 5));
	assert_null(access_agent_id_why("a.b_c-d@shop:1+x~", 17));
	assert_null(access_agent_id_why("客服小王", strlen("客服小王")));
	assert_null(access_agent_id_why("cs-😀", strlen("cs-😀")));
	assert_non_null(access_agent_id_why("", 0));
	assert_non_null(access_agent_id_why("<img src=x>", 11));
	assert_non_null(access_agent_id_why("a b", 3));
	assert_non_null(access_agent_id_why("a\"b", 3));
	assert_non_null(access_agent_id_why("a/b", 3));
	assert_non_null(access_agent_id_why("a\nb", 3));
	assert_non_null(access_agent_id_why("a\0b", 3));
	assert_non_null(access_agent_id_why("\xe5\xae", 2));		/* cut */
	assert_non_null(access_agent_id_why("\xc0\xaf", 2));		/* overlong */
	assert_non_null(access_agent_id_why("a\xe2\x80\x8b", 4));	/* ZWSP */
	assert_non_null(access_agent_id_why("a\xe2\x80\xae", 4));	/* RLO */
	assert_non_null(access_agent_id_why("a\xe3\x80\x80", 4));	/* ideographic space */
	assert_non_null(access_agent_id_why("a\xc2\x85", 3));		/* NEL */
	/* by Unicode category: every invisible format character, not a list (found by review) */
	assert_non_null(access_agent_id_why("alice\xf0\x9d\x85\xb3", 9));	/* U+1D173 musical format */
	assert_non_null(access_agent_id_why("ali\xf0\x9b\xb2\xa0" "ce", 9));	/* U+1BCA0 shorthand format */
	assert_non_null(access_agent_id_why("alice\xf0\x93\x90\xb0", 9));	/* U+13430 Egyptian format */
	assert_non_null(access_agent_id_why("a\xe1\x9a\x80", 4));	/* U+1680 Ogham space mark */
	assert_non_null(access_agent_id_why("a\xe2\x80\xa9", 4));	/* U+2029 paragraph separator */
	assert_non_null(access_agent_id_why("a\xee\x80\x80", 4));	/* U+E000 private use */
	assert_non_null(access_agent_id_why("a\xcd\xb8", 3));		/* U+0378 unassigned */
	assert_non_null(access_agent_id_why("a\xe3\x85\xa4", 4));	/* U+3164 Hangul filler (Lo, ignorable) */
	assert_non_null(access_agent_id_why("a\xef\xb8\x8f", 4));	/* U+FE0F variation selector (Mn, ignorable) */
	assert_non_null(access_agent_id_why("a\xe1\x9e\xb4", 4));	/* U+17B4 Khmer vowel, ignorable */
	assert_non_null(access_agent_id_why("a\xe2\xa0\x80", 4));	/* U+2800 blank Braille */
	assert_null(access_agent_id_why("e\xcc\x81", 3));		/* e + combining acute: shows */
	assert_null(access_agent_id_why("Jos\xc3\xa9", 5));
	memset(long_id, 'a', sizeof(long_id));
	assert_null(access_agent_id_why(long_id, ACCESS_AGENT_ID_MAX));
	assert_non_null(access_agent_id_why(long_id, ACCESS_AGENT_ID_MAX + 1));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cidr),
		cmocka_unit_test(test_origin),
		cmocka_unit_test(test_host),
		cmocka_unit_test(test_agent_id),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
