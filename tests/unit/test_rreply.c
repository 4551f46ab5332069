/* test_rreply: ROLE, SENTINEL get-master-addr-by-name and error replies read as rconn and alert read them, on replies built by hand. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include <hiredis/hiredis.h>

#include "chatmon/rreply.h"

/* A reply tree on the stack: strings point into the test's literals. */
static redisReply
str(int type, const char *s)
{
	redisReply	r;

	memset(&r, 0, sizeof(r));
	r.type = type;
	r.str = (char *)(uintptr_t)s;
	r.len = strlen(s);
	return r;
}

static redisReply
integer(long long v)
{
	redisReply	r;

	memset(&r, 0, sizeof(r));
	r.type = REDIS_REPLY_INTEGER;
	r.integer = v;
	return r;
}

static redisReply
array(redisReply **el, size_t n)
{
	redisReply	r;

	memset(&r, 0, sizeof(r));
	r.type = REDIS_REPLY_ARRAY;
	r.element = el;
	r.elements = n;
	return r;
}

static void
test_role(void **state)
{
	redisReply	 master = str(REDIS_REPLY_STRING, "master"), off = integer(3129659);
	redisReply	 replicas = array(NULL, 0);
	redisReply	*mel[] = { &master, &off, &replicas }, m = array(mel, 3);
	redisReply	 slave = str(REDIS_REPLY_STRING, "slave");
	redisReply	 host = str(REDIS_REPLY_STRING, "10.0.0.7"), port = integer(6379);
	redisReply	 st = str(REDIS_REPLY_STRING, "connected"), soff = integer(3167038);
	redisReply	*sel[] = { &slave, &host, &port, &st, &soff }, sl = array(sel, 5);
	redisReply	 sent = str(REDIS_REPLY_STRING, "sentinel");
	redisReply	*nel[] = { &sent, &replicas }, sn = array(nel, 2);
	redisReply	 other = str(REDIS_REPLY_STRING, "primary");
	redisReply	*oel[] = { &other }, o = array(oel, 1);
	redisReply	 empty = array(NULL, 0), ok = str(REDIS_REPLY_STATUS, "OK");
	redisReply	 bad_port = integer(70000);
	redisReply	*bel[] = { &slave, &host, &bad_port, &st }, b = array(bel, 4);
	redisReply	*shel[] = { &slave }, sh = array(shel, 1);
	char		 d[128];

	(void)state;
	assert_int_equal(rreply_role(&m, d, sizeof(d)), RREPLY_MASTER);
	assert_string_equal(d, "");
	assert_int_equal(rreply_role(&sl, d, sizeof(d)), RREPLY_REPLICA);
	assert_string_equal(d, "replica of 10.0.0.7:6379 (connected)");
	/* a replica whose master part is odd is still a replica */
	assert_int_equal(rreply_role(&b, d, sizeof(d)), RREPLY_REPLICA);
	assert_string_equal(d, "a replica");
	assert_int_equal(rreply_role(&sh, d, sizeof(d)), RREPLY_REPLICA);
	assert_int_equal(rreply_role(&sn, d, sizeof(d)), RREPLY_SENTINEL);
	assert_string_equal(d, "a sentinel, not a data server");
	assert_int_equal(rreply_role(&o, d, sizeof(d)), RREPLY_UNKNOWN);
	assert_int_equal(rreply_role(&empty, d, sizeof(d)), RREPLY_UNKNOWN);
	assert_int_equal(rreply_role(&ok, d, sizeof(d)), RREPLY_UNKNOWN);
	assert_string_equal(d, "ROLE answered a status");
	assert_int_equal(rreply_role(&off, d, sizeof(d)), RREPLY_UNKNOWN);
	assert_string_equal(d, "ROLE answered an integer");
	assert_int_equal(rreply_role(NULL, d, sizeof(d)), RREPLY_UNKNOWN);
	/* a small buffer is cut, never overrun */
	assert_int_equal(rreply_role(&sl, d, 8), RREPLY_REPLICA);
	assert_string_equal(d, "replica");
}

static void
test_master_addr(void **state)
{
	redisReply	 host = str(REDIS_REPLY_STRING, "127.0.0.1");
	redisReply	 port = str(REDIS_REPLY_STRING, "26380");
	redisReply	*el[] = { &host, &port }, ok = array(el, 2);
	redisReply	 v6 = str(REDIS_REPLY_STRING, "::1");
	redisReply	*el6[] = { &v6, &port }, ok6 = array(el6, 2);
	redisReply	 nil, err = str(REDIS_REPLY_ERROR, "NOAUTH Authentication required.");
	redisReply	 p0 = str(REDIS_REPLY_STRING, "0"), pbig = str(REDIS_REPLY_STRING, "65536");
	redisReply	 pneg = str(REDIS_REPLY_STRING, "-1"), plong = str(REDIS_REPLY_STRING, "000006379");
	redisReply	 sp = str(REDIS_REPLY_STRING, "bad host"), none = str(REDIS_REPLY_STRING, "");
	redisReply	*b1[] = { &host, &p0 }, *b2[] = { &host, &pbig }, *b3[] = { &host, &pneg };
	redisReply	*b4[] = { &sp, &port }, *b5[] = { &none, &port }, *b6[] = { &host };
	redisReply	*b7[] = { &host, &plong };
	redisReply	 bad[] = { array(b1, 2), array(b2, 2), array(b3, 2), array(b4, 2),
			    array(b5, 2), array(b6, 1), array(b7, 2), str(REDIS_REPLY_STATUS, "OK") };
	char		 h[256], why[128], tiny[4];
	int		 p = 0;
	size_t		 i;

	(void)state;
	memset(&nil, 0, sizeof(nil));
	nil.type = REDIS_REPLY_NIL;
	assert_int_equal(rreply_master_addr(&ok, h, sizeof(h), &p, why, sizeof(why)), 0);
	assert_string_equal(h, "127.0.0.1");
	assert_int_equal(p, 26380);
	assert_int_equal(rreply_master_addr(&ok6, h, sizeof(h), &p, why, sizeof(why)), 0);
	assert_string_equal(h, "::1");
	assert_int_equal(rreply_master_addr(&nil, h, sizeof(h), &p, why, sizeof(why)), -1);
	assert_string_equal(why, "it does not monitor a master of that name");
	assert_int_equal(rreply_master_addr(&err, h, sizeof(h), &p, why, sizeof(why)), -1);
	assert_string_equal(why, "NOAUTH Authentication required.");
	assert_int_equal(rreply_master_addr(NULL, h, sizeof(h), &p, why, sizeof(why)), -1);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		p = 0;
		assert_int_equal(rreply_master_addr(&bad[i], h, sizeof(h), &p, why,
		    sizeof(why)), -1);
		assert_int_equal(p, 0);
		assert_non_null(strstr(why, "not an address"));
	}
	/* a host that does not fit is refused, not cut */
	assert_int_equal(rreply_master_addr(&ok, tiny, sizeof(tiny), &p, why,
	    sizeof(why)), -1);
}

static void
test_error_kind(void **state)
{
	static const struct {
		const char		*s;
		enum rreply_error	 k;
	} t[] = {
		{ "READONLY You can't write against a read only replica.", RREPLY_ERR_READONLY },
		{ "LOADING Redis is loading the dataset in memory", RREPLY_ERR_LOADING },
		{ "MASTERDOWN Link with MASTER is down and replica-serve-stale-data "
		    "is set to 'no'.", RREPLY_ERR_MASTERDOWN },
		{ "NOREPLICAS Not enough good replicas to write.", RREPLY_ERR_NOREPLICAS },
		{ "BUSY Redis is busy running a script.", RREPLY_ERR_BUSY },
		{ "TRYAGAIN Multiple keys request during rehashing of slot", RREPLY_ERR_BUSY },
		{ "CLUSTERDOWN The cluster is down", RREPLY_ERR_BUSY },
		{ "OOM command not allowed when used memory > 'maxmemory'.", RREPLY_ERR_BUSY },
		{ "NOAUTH Authentication required.", RREPLY_ERR_BUSY },
		{ "READONLY", RREPLY_ERR_READONLY },
		{ "WRONGTYPE Operation against a key holding the wrong kind of value",
		    RREPLY_ERR_OTHER },
		{ "NOPERM this user has no permissions to run the 'xadd' command",
		    RREPLY_ERR_OTHER },
		{ "ERR unknown command 'ROLE'", RREPLY_ERR_OTHER },
		/* the first word whole: a prefix is not the word */
		{ "READONLYX nope", RREPLY_ERR_OTHER },
		{ "READ ONLY", RREPLY_ERR_OTHER },
		{ "readonly lower case", RREPLY_ERR_OTHER },
		{ "", RREPLY_ERR_OTHER },
	};
	size_t	i;

	(void)state;
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		assert_int_equal(rreply_error_kind(t[i].s), t[i].k);
		assert_int_equal(rreply_error_transient(t[i].k), t[i].k != RREPLY_ERR_OTHER);
	}
	assert_int_equal(rreply_error_kind(NULL), RREPLY_ERR_OTHER);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_role),
		cmocka_unit_test(test_master_addr),
		cmocka_unit_test(test_error_kind),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
