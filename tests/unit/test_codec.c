/* test_codec: golden frames through the JSON codec, pointer parsing, lifetimes, allocation failure. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "allocfail.h"
#include "chatmon/codec.h"

#define X64	"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define X512	X64 X64 X64 X64 X64 X64 X64 X64
#include "chatmon/config.h"
#include "chatmon/util.h"

/* A literal with its exact length, so rows may hold NUL bytes. */
#define B(s)	(s), (sizeof(s) - 1)
#define NONE	NULL, 0

static char *msg_types[] = { "message" };
static char *end_types[] = { "end" };

/* design.md's default protocol. */
static const struct config_protocol proto_default = {
	.type = "/type",
	.conversation = "/conversation",
	.text = "/text",
	.message_types = { msg_types, 1 },
	.end_types = { end_types, 1 },
};

/* Nested objects and an escaped '/' in a key. */
static const struct config_protocol proto_nested = {
	.type = "/meta/t",
	.conversation = "/a~1b",
	.text = "/msg/body/text",
	.message_types = { msg_types, 1 },
	.end_types = { end_types, 1 },
};

/* Array elements, and an escaped '~' in a key. */
static const struct config_protocol proto_array = {
	.type = "/arr/0",
	.conversation = "/arr/1",
	.text = "/arr/2/~0x",
	.message_types = { msg_types, 1 },
	.end_types = { end_types, 1 },
};

static char *both_msg[] = { "chat", "close" };
static char *both_end[] = { "close", "bye" };

/* "close" is listed twice: a message wins. */
static const struct config_protocol proto_both = {
	.type = "/type",
	.conversation = "/conversation",
	.text = "/text",
	.message_types = { both_msg, 2 },
	.end_types = { both_end, 2 },
};

struct row {
	const char	*name;
	const struct config_protocol *proto;	/* NULL: proto_default */
	const char	*in;
	size_t		 in_len;
	enum codec_kind	 kind;
	const char	*type;		/* NULL: not resolved */
	size_t		 type_len;
	const char	*conv;
	size_t		 conv_len;
	const char	*text;
	size_t		 text_len;
	const char	*why;		/* a substring of frame.why */
};

static const struct row golden[] = {
	/* design.md's frames. */
	{ "customer turn", NULL,
	  B("{\"type\":\"message\",\"conversation\":\"c-1\",\"text\":\"在吗\"}"),
	  CODEC_TURN, B("message"), B("c-1"), B("在吗"), NULL },
	{ "agent turn", NULL,
	  B("{\"type\":\"message\",\"conversation\":\"c-1\",\"text\":\"亲,在的\"}"),
	  CODEC_TURN, B("message"), B("c-1"), B("亲,在的"), NULL },
	{ "end", NULL,
	  B("{\"type\":\"end\",\"conversation\":\"c-1\"}"),
	  CODEC_END, B("end"), B("c-1"), NONE, NULL },
	{ "end ignores a text", NULL,
	  B("{\"type\":\"end\",\"conversation\":\"c-1\",\"text\":\"bye\"}"),
	  CODEC_END, B("end"), B("c-1"), NONE, NULL },
	{ "warning frame is other", NULL,
	  B("{\"type\":\"chatmon.warning\",\"conversation\":\"c-1\","
	    "\"alert\":{\"v\":1},\"blocked\":true}"),
	  CODEC_OTHER, B("chatmon.warning"), NONE, NONE, NULL },

	/* Unicode. */
	{ "chinese escaped", NULL,
	  B("{\"type\":\"message\",\"conversation\":\"c-1\","
	    "\"text\":\"\\u5728\\u5417\"}"),
	  CODEC_TURN, B("message"), B("c-1"), B("\xe5\x9c\xa8\xe5\x90\x97"), NULL },
	{ "chinese mixed escapes", NULL,
	  B("{\"type\":\"message\",\"conversation\":\"\\u4f1a\\u8bdd\","
	    "\"text\":\"加我\\u8587信\"}"),
	  CODEC_TURN, B("message"), B("会话"), B("加我薇信"), NULL },
	{ "emoji surrogate pair", NULL,
	  B("{\"type\":\"message\",\"conversation\":\"c\","
	    "\"text\":\"ok \\ud83d\\ude00!\"}"),
	  CODEC_TURN, B("message"), B("c"), B("ok \xf0\x9f\x98\x80!"), NULL },
	{ "emoji raw", NULL,
	  B("{\"type\":\"message\",\"conversation\":\"c\",\"text\":\"😀\"}"),
	  CODEC_TURN, B("message"), B("c"), B("\xf0\x9f\x98\x80"), NULL },
	/*
	 * Lone surrogates: JSON.parse and Python take them, so the backend
	 * reads the turn; the rules see U+FFFD in their place.
	 */
	{ "lone high surrogate", NULL,
	  B("{\"type\":\"message\",\"conversation\":\"c\",\"text\":\"\\ud83d\"}"),
	  CODEC_TURN, B("message"), B("c"), B("\xef\xbf\xbd"), NULL },
	{ "lone low surrogate", NULL,
	  B("{\"type\":\"message\",\"conversation\":\"c\",\"text\":\"\\ude00x\"}"),
	  CODEC_TURN, B("message"), B("c"), B("\xef\xbf\xbdx"), NULL },
	{ "high surrogate then letter", NULL,
	  B("{\"type\":\"message\",\"conversation\":\"c\","
	    "\"text\":\"\\ud83dabc\"}"),
	  CODEC_TURN, B("message"), B("c"), B("\xef\xbf\xbd" "abc"), NULL },
	{ "two high surrogates then a low one", NULL,
	  B("{\"type\":\"message\",\"conversation\":\"c\","
	    "\"text\":\"\\ud83d\\ud83d\\ude00\"}"),
	  CODEC_TURN, B("message"), B("c"), B("\xef\xbf\xbd\xf0\x9f\x98\x80"), NULL },
	{ "a bad escape", NULL,
	  B("{\"type\":\"message\",\"conversation\":\"c\",\"text\":\"\\x41\"}"),
	  CODEC_INVALID, NONE, NONE, NONE, "invalid escape at offset 45" },
	{ "a short \\u escape", NULL,
	  B("{\"type\":\"message\",\"conversation\":\"c\",\"text\":\"\\u12\"}"),
	  CODEC_INVALID, NONE, NONE, NONE, "invalid \\u escape" },
	{ "embedded U+0000 kept", NULL,
	  B("{\"type\":\"message\",\"conversation\":\"c\","
	    "\"text\":\"a\\u0000b\\u0000\"}"),
	  CODEC_TURN, B("message"), B("c"), B("a\0b\0"), NULL },
	{ "escapes resolved", NULL,
	  B("{\"type\":\"message\",\"conversation\":\"c\","
	    "\"text\":\"\\\"q\\\" \\\\ \\/ \\n\\t\"}"),
	  CODEC_TURN, B("message"), B("c"), B("\"q\" \\ / \n\t"), NULL },
	{ "empty text is a turn", NULL,
	  B("{\"type\":\"message\",\"conversation\":\"c\",\"text\":\"\"}"),
	  CODEC_TURN, B("message"), B("c"), B(""), NULL },
	{ "type spelled with an escape", NULL,
	  B("{\"type\":\"mess\\u0061ge\",\"conversation\":\"c\",\"text\":\"t\"}"),
	  CODEC_TURN, B("message"), B("c"), B("t"), NULL },

	/* Conversations. */
	{ "integer conversation", NULL,
	  B("{\"type\":\"message\",\"conversation\":42,\"text\":\"hi\"}"),
	  CODEC_TURN, B("message"), B("42"), B("hi"), NULL },
	{ "negative conversation", NULL,
	  B("{\"type\":\"end\",\"conversation\":-7}"),
	  CODEC_END, B("end"), B("-7"), NONE, NULL },
	{ "minus zero conversation", NULL,
	  B("{\"type\":\"end\",\"conversation\":-0}"),
	  CODEC_END, B("end"), B("0"), NONE, NULL },
	{ "int64 max conversation", NULL,
	  B("{\"type\":\"message\",\"conversation\":9223372036854775807,"
	    "\"text\":\"x\"}"),
	  CODEC_TURN, B("message"), B("9223372036854775807"), B("x"), NULL },
	{ "int64 min conversation", NULL,
	  B("{\"type\":\"end\",\"conversation\":-9223372036854775808}"),
	  CODEC_END, B("end"), B("-9223372036854775808"), NONE, NULL },
	/* past 64 bits the backend still reads the frame: kept as sent */
	{ "conversation past int64", NULL,
	  B("{\"type\":\"end\",\"conversation\":9223372036854775808}"),
	  CODEC_END, B("end"), B("9223372036854775808"), NONE, NULL },
	{ "conversation far past int64", NULL,
	  B("{\"type\":\"end\",\"conversation\":-123456789012345678901234567890}"),
	  CODEC_END, B("end"), B("-123456789012345678901234567890"), NONE, NULL },
	/* numbers of any size elsewhere: a frame the backend reads is read */
	{ "huge numbers beside a turn", NULL,
	  B("{\"type\":\"message\",\"conversation\":\"c\",\"x\":1e400,"
	    "\"y\":18446744073709551616,\"z\":-0.0e-999,\"text\":\"加微信\"}"),
	  CODEC_TURN, B("message"), B("c"), B("加微信"), NULL },
	{ "a number with a leading zero", NULL,
	  B("{\"type\":\"end\",\"conversation\":012}"),
	  CODEC_INVALID, NONE, NONE, NONE, "invalid JSON: ',' or '}' expected at offset 30" },
	{ "a number without digits after the point", NULL,
	  B("{\"type\":\"end\",\"conversation\":1.}"),
	  CODEC_INVALID, NONE, NONE, NONE, "invalid number" },
	{ "a number with a plus sign", NULL,
	  B("{\"type\":\"end\",\"conversation\":+1}"),
	  CODEC_INVALID, NONE, NONE, NONE, "invalid number" },
	/*
	 * any number is an id (a backend reads the frame): a whole one as an
	 * integer, as JSON.parse reads it, the others as sent
	 */
	{ "fraction conversation, kept as sent", NULL,
	  B("{\"type\":\"message\",\"conversation\":1.5,\"text\":\"x\"}"),
	  CODEC_TURN, B("message"), B("1.5"), B("x"), NULL },
	{ "whole number with a point is the integer", NULL,
	  B("{\"type\":\"message\",\"conversation\":1.0,\"text\":\"x\"}"),
	  CODEC_TURN, B("message"), B("1"), B("x"), NULL },
	{ "whole number with an exponent is the integer", NULL,
	  B("{\"type\":\"end\",\"conversation\":1e3}"),
	  CODEC_END, B("end"), B("1000"), NONE, NULL },
	{ "minus zero with a point is 0", NULL,
	  B("{\"type\":\"end\",\"conversation\":-0.0e5}"),
	  CODEC_END, B("end"), B("0"), NONE, NULL },
	{ "a whole real past int64, kept as sent", NULL,
	  B("{\"type\":\"end\",\"conversation\":9.3e18}"),
	  CODEC_END, B("end"), B("9.3e18"), NONE, NULL },
	{ "an infinite real, kept as sent", NULL,
	  B("{\"type\":\"end\",\"conversation\":1e400}"),
	  CODEC_END, B("end"), B("1e400"), NONE, NULL },
	{ "NaN conversation (Python), kept as sent", NULL,
	  B("{\"type\":\"end\",\"conversation\":NaN}"),
	  CODEC_END, B("end"), B("NaN"), NONE, NULL },
	/* Python's json reads these as numbers: the frame is a turn to it */
	{ "NaN and infinities beside a turn", NULL,
	  B("{\"type\":\"message\",\"conversation\":\"c\",\"a\":NaN,"
	    "\"b\":[Infinity,-Infinity],\"text\":\"加微信\"}"),
	  CODEC_TURN, B("message"), B("c"), B("加微信"), NULL },
	{ "minus NaN is no number", NULL,
	  B("{\"type\":\"end\",\"conversation\":-NaN}"),
	  CODEC_INVALID, NONE, NONE, NONE, "invalid number" },
	{ "Inf is no number", NULL,
	  B("{\"type\":\"end\",\"conversation\":Inf}"),
	  CODEC_INVALID, NONE, NONE, NONE, "invalid number" },
	{ "nan in lower case is no number", NULL,
	  B("{\"type\":\"end\",\"conversation\":nan}"),
	  CODEC_INVALID, NONE, NONE, NONE, "invalid literal" },
	{ "Infinity followed by more letters", NULL,
	  B("{\"type\":\"end\",\"conversation\":Infinityx}"),
	  CODEC_INVALID, NONE, NONE, NONE, "invalid JSON: ',' or '}' expected at offset 37" },
	{ "bool conversation", NULL,
	  B("{\"type\":\"message\",\"conversation\":true,\"text\":\"x\"}"),
	  CODEC_MALFORMED, B("message"), NONE, NONE,
	  "conversation is not a string or a number" },
	{ "null conversation", NULL,
	  B("{\"type\":\"end\",\"conversation\":null}"),
	  CODEC_MALFORMED, B("end"), NONE, NONE,
	  "conversation is not a string or a number" },
	{ "object conversation", NULL,
	  B("{\"type\":\"end\",\"conversation\":{\"id\":1}}"),
	  CODEC_MALFORMED, B("end"), NONE, NONE,
	  "conversation is not a string or a number" },

	/* Types. */
	{ "other type", NULL,
	  B("{\"type\":\"typing\",\"conversation\":\"c-1\"}"),
	  CODEC_OTHER, B("typing"), NONE, NONE, NULL },
	{ "missing type", NULL,
	  B("{\"conversation\":\"c-1\",\"text\":\"hi\"}"),
	  CODEC_OTHER, NONE, NONE, NONE, NULL },
	{ "type not a string", NULL,
	  B("{\"type\":1,\"conversation\":\"c-1\",\"text\":\"hi\"}"),
	  CODEC_OTHER, NONE, NONE, NONE, NULL },
	{ "type null", NULL,
	  B("{\"type\":null,\"conversation\":\"c-1\",\"text\":\"hi\"}"),
	  CODEC_OTHER, NONE, NONE, NONE, NULL },
	{ "type array", NULL,
	  B("{\"type\":[\"message\"],\"conversation\":\"c\",\"text\":\"hi\"}"),
	  CODEC_OTHER, NONE, NONE, NONE, NULL },
	{ "type prefix", NULL,
	  B("{\"type\":\"messag\",\"conversation\":\"c\",\"text\":\"hi\"}"),
	  CODEC_OTHER, B("messag"), NONE, NONE, NULL },
	{ "type longer", NULL,
	  B("{\"type\":\"messages\",\"conversation\":\"c\",\"text\":\"hi\"}"),
	  CODEC_OTHER, B("messages"), NONE, NONE, NULL },
	{ "type case differs", NULL,
	  B("{\"type\":\"Message\",\"conversation\":\"c\",\"text\":\"hi\"}"),
	  CODEC_OTHER, B("Message"), NONE, NONE, NULL },
	{ "type with trailing NUL", NULL,
	  B("{\"type\":\"message\\u0000\",\"conversation\":\"c\",\"text\":\"hi\"}"),
	  CODEC_OTHER, B("message\0"), NONE, NONE, NULL },
	{ "empty object", NULL, B("{}"),
	  CODEC_OTHER, NONE, NONE, NONE, NULL },

	/* Malformed turns and ends. */
	{ "message without text", NULL,
	  B("{\"type\":\"message\",\"conversation\":\"c-1\"}"),
	  CODEC_MALFORMED, B("message"), NONE, NONE, "text missing" },
	{ "message text a number", NULL,
	  B("{\"type\":\"message\",\"conversation\":\"c-1\",\"text\":5}"),
	  CODEC_MALFORMED, B("message"), NONE, NONE, "text is not a string" },
	{ "message text null", NULL,
	  B("{\"type\":\"message\",\"conversation\":\"c-1\",\"text\":null}"),
	  CODEC_MALFORMED, B("message"), NONE, NONE, "text is not a string" },
	{ "message without conversation", NULL,
	  B("{\"type\":\"message\",\"text\":\"hi\"}"),
	  CODEC_MALFORMED, B("message"), NONE, NONE, "conversation missing" },
	{ "end without conversation", NULL,
	  B("{\"type\":\"end\"}"),
	  CODEC_MALFORMED, B("end"), NONE, NONE, "conversation missing" },
	{ "conversation of 512 bytes", NULL,
	  B("{\"type\":\"end\",\"conversation\":\"" X512 "\"}"),
	  CODEC_END, B("end"), B(X512), NONE, NULL },
	{ "conversation of 513 bytes", NULL,
	  B("{\"type\":\"message\",\"conversation\":\"" X512 "x\",\"text\":\"hi\"}"),
	  CODEC_MALFORMED, B("message"), NONE, NONE,
	  "conversation longer than 512 bytes" },

	/* Not JSON objects. */
	{ "not JSON", NULL, B("hello"),
	  CODEC_INVALID, NONE, NONE, NONE, "invalid JSON: " },
	{ "JSON array", NULL, B("[{\"type\":\"message\"}]"),
	  CODEC_INVALID, NONE, NONE, NONE, "not a JSON object" },
	{ "JSON string", NULL, B("\"message\""),
	  CODEC_INVALID, NONE, NONE, NONE, "not a JSON object" },
	{ "JSON number", NULL, B("42"),
	  CODEC_INVALID, NONE, NONE, NONE, "not a JSON object" },
	{ "JSON null", NULL, B("null"),
	  CODEC_INVALID, NONE, NONE, NONE, "not a JSON object" },
	{ "empty input", NULL, B(""),
	  CODEC_INVALID, NONE, NONE, NONE, "invalid JSON: " },
	{ "only whitespace", NULL, B(" \r\n\t"),
	  CODEC_INVALID, NONE, NONE, NONE, "invalid JSON: " },
	{ "truncated", NULL,
	  B("{\"type\":\"message\",\"conversation\":\"c-1\",\"text\":\"在"),
	  CODEC_INVALID, NONE, NONE, NONE, "at offset " },
	{ "truncated inside a character", NULL,
	  B("{\"type\":\"message\",\"conversation\":\"c-1\",\"text\":\"\xe5\x9c\"}"),
	  CODEC_INVALID, NONE, NONE, NONE, "invalid JSON: " },
	{ "truncated after the object", NULL,
	  B("{\"type\":\"end\",\"conversation\":\"c-1\""),
	  CODEC_INVALID, NONE, NONE, NONE, "invalid JSON: " },
	{ "invalid UTF-8 byte", NULL,
	  B("{\"type\":\"message\",\"conversation\":\"c\",\"text\":\"a\xff\"}"),
	  CODEC_INVALID, NONE, NONE, NONE, "invalid JSON: " },
	{ "overlong UTF-8", NULL,
	  B("{\"type\":\"message\",\"conversation\":\"c\",\"text\":\"\xc0\xaf\"}"),
	  CODEC_INVALID, NONE, NONE, NONE, "invalid JSON: " },
	{ "UTF-8 encoded surrogate", NULL,
	  B("{\"type\":\"message\",\"conversation\":\"c\",\"text\":\"\xed\xa0\x80\"}"),
	  CODEC_INVALID, NONE, NONE, NONE, "invalid JSON: " },
	/* after runs of Chinese characters, which are read four bytes at a time */
	{ "surrogate after a run", NULL,
	  B("{\"type\":\"message\",\"conversation\":\"c\",\"text\":\"加我微信\xed\xa0\x80好\"}"),
	  CODEC_INVALID, NONE, NONE, NONE, "invalid JSON: " },
	{ "overlong after a run", NULL,
	  B("{\"type\":\"message\",\"conversation\":\"c\",\"text\":\"加我微信\xe0\x80\x80好\"}"),
	  CODEC_INVALID, NONE, NONE, NONE, "invalid JSON: " },
	{ "lone continuation after a run", NULL,
	  B("{\"type\":\"message\",\"conversation\":\"c\",\"text\":\"加我微信\x80好\"}"),
	  CODEC_INVALID, NONE, NONE, NONE, "invalid JSON: " },
	{ "cut character after a run", NULL,
	  B("{\"type\":\"message\",\"conversation\":\"c\",\"text\":\"加我微信\xe5\x9c\"}"),
	  CODEC_INVALID, NONE, NONE, NONE, "invalid JSON: " },
	{ "the edges of the three-byte range after a run", NULL,
	  B("{\"type\":\"message\",\"conversation\":\"c\",\"text\":\"加我"
	    "\xe0\xa0\x80\xed\x9f\xbf\xee\x80\x80\xef\xbf\xbd好\"}"),
	  CODEC_TURN, B("message"), B("c"),
	  B("加我\xe0\xa0\x80\xed\x9f\xbf\xee\x80\x80\xef\xbf\xbd好"), NULL },
	{ "invalid UTF-8 outside strings", NULL,
	  B("\xef\xbb\xbf{\"type\":\"end\",\"conversation\":\"c\"}"),
	  CODEC_INVALID, NONE, NONE, NONE, "invalid JSON: " },
	{ "raw NUL byte after the object", NULL,
	  B("{\"type\":\"end\",\"conversation\":\"c\"}\0"),
	  CODEC_INVALID, NONE, NONE, NONE, "invalid JSON: " },
	{ "raw NUL byte in a string", NULL,
	  B("{\"type\":\"message\",\"conversation\":\"c\",\"text\":\"a\0b\"}"),
	  CODEC_INVALID, NONE, NONE, NONE, "invalid JSON: " },
	{ "trailing garbage", NULL,
	  B("{\"type\":\"end\",\"conversation\":\"c\"} x"),
	  CODEC_INVALID, NONE, NONE, NONE, "end of input expected" },
	{ "two objects", NULL,
	  B("{\"type\":\"end\",\"conversation\":\"c\"}{}"),
	  CODEC_INVALID, NONE, NONE, NONE, "invalid JSON: " },
	{ "NUL in a key", NULL,
	  B("{\"type\":\"end\",\"conversation\":\"c\",\"k\\u0000\":1}"),
	  CODEC_END, B("end"), B("c"), NONE, NULL },
	{ "raw control character in a string", NULL,
	  B("{\"type\":\"message\",\"conversation\":\"c\",\"text\":\"a\tb\"}"),
	  CODEC_INVALID, NONE, NONE, NONE, "control character in a string" },
	{ "missing comma", NULL,
	  B("{\"type\":\"end\" \"conversation\":\"c\"}"),
	  CODEC_INVALID, NONE, NONE, NONE, "',' or '}' expected" },
	{ "missing colon", NULL,
	  B("{\"type\" \"end\"}"),
	  CODEC_INVALID, NONE, NONE, NONE, "':' expected" },
	{ "trailing comma", NULL,
	  B("{\"type\":\"end\",\"conversation\":\"c\",}"),
	  CODEC_INVALID, NONE, NONE, NONE, "a key (a string) expected" },
	{ "trailing comma in an array", NULL,
	  B("{\"type\":\"end\",\"conversation\":\"c\",\"a\":[1,]}"),
	  CODEC_INVALID, NONE, NONE, NONE, "invalid number" },
	{ "a key that is not a string", NULL,
	  B("{type:\"end\"}"),
	  CODEC_INVALID, NONE, NONE, NONE, "a key (a string) expected" },
	{ "a bad literal", NULL,
	  B("{\"type\":\"end\",\"conversation\":\"c\",\"a\":tru}"),
	  CODEC_INVALID, NONE, NONE, NONE, "invalid literal" },
	{ "single quotes", NULL,
	  B("{'type':'end'}"),
	  CODEC_INVALID, NONE, NONE, NONE, "a key (a string) expected" },
	{ "an escaped key names the field", NULL,
	  B("{\"t\\u0079pe\":\"end\",\"conv\\u0065rsation\":\"c\"}"),
	  CODEC_END, B("end"), B("c"), NONE, NULL },
	{ "a duplicate object replaces all below it", &proto_nested,
	  B("{\"meta\":{\"t\":\"message\"},\"a/b\":\"c\","
	    "\"msg\":{\"body\":{\"text\":\"x\"}},\"msg\":{\"other\":1}}"),
	  CODEC_MALFORMED, B("message"), NONE, NONE, "text missing" },

	/* Layout. */
	{ "whitespace around", NULL,
	  B(" \r\n\t{ \"type\" : \"message\" ,\n \"conversation\" : \"c-1\" ,"
	    " \"text\" : \"hi\" }\r\n "),
	  CODEC_TURN, B("message"), B("c-1"), B("hi"), NULL },
	{ "other key order and extra keys", NULL,
	  B("{\"text\":\"hi\",\"x\":[1,{\"y\":null}],\"conversation\":\"c\","
	    "\"type\":\"message\"}"),
	  CODEC_TURN, B("message"), B("c"), B("hi"), NULL },
	{ "duplicate key: the last wins", NULL,
	  B("{\"type\":\"message\",\"conversation\":\"c\",\"text\":\"first\","
	    "\"text\":\"last\"}"),
	  CODEC_TURN, B("message"), B("c"), B("last"), NULL },

	/* Nested pointers. */
	{ "nested turn", &proto_nested,
	  B("{\"meta\":{\"t\":\"message\"},\"a/b\":\"c-9\","
	    "\"msg\":{\"body\":{\"text\":\"深\"}}}"),
	  CODEC_TURN, B("message"), B("c-9"), B("深"), NULL },
	{ "nested: unescaped key does not match", &proto_nested,
	  B("{\"meta\":{\"t\":\"end\"},\"a\":{\"b\":\"c-9\"}}"),
	  CODEC_MALFORMED, B("end"), NONE, NONE, "conversation missing" },
	{ "nested: body is a string", &proto_nested,
	  B("{\"meta\":{\"t\":\"message\"},\"a/b\":1,\"msg\":{\"body\":\"x\"}}"),
	  CODEC_MALFORMED, B("message"), NONE, NONE, "text missing" },
	{ "nested: body is an array", &proto_nested,
	  B("{\"meta\":{\"t\":\"message\"},\"a/b\":1,"
	    "\"msg\":{\"body\":[\"text\"]}}"),
	  CODEC_MALFORMED, B("message"), NONE, NONE, "text missing" },
	{ "nested: top-level type ignored", &proto_nested,
	  B("{\"type\":\"message\",\"a/b\":\"c\",\"msg\":{\"body\":{\"text\":\"x\"}}}"),
	  CODEC_OTHER, NONE, NONE, NONE, NULL },
	{ "array turn", &proto_array,
	  B("{\"arr\":[\"message\",7,{\"~x\":\"hi\"}]}"),
	  CODEC_TURN, B("message"), B("7"), B("hi"), NULL },
	{ "array end", &proto_array,
	  B("{\"arr\":[\"end\",\"c\"]}"),
	  CODEC_END, B("end"), B("c"), NONE, NULL },
	{ "array index out of range", &proto_array,
	  B("{\"arr\":[\"message\",\"c\"]}"),
	  CODEC_MALFORMED, B("message"), NONE, NONE, "text missing" },
	{ "array empty", &proto_array,
	  B("{\"arr\":[]}"),
	  CODEC_OTHER, NONE, NONE, NONE, NULL },
	{ "array tokens index objects by key", &proto_array,
	  B("{\"arr\":{\"0\":\"end\",\"1\":\"c\"}}"),
	  CODEC_END, B("end"), B("c"), NONE, NULL },
	{ "array: unescaped ~ key does not match", &proto_array,
	  B("{\"arr\":[\"message\",\"c\",{\"~0x\":\"hi\"}]}"),
	  CODEC_MALFORMED, B("message"), NONE, NONE, "text missing" },

	/* A type in both lists. */
	{ "both lists: message wins", &proto_both,
	  B("{\"type\":\"close\",\"conversation\":\"c\",\"text\":\"t\"}"),
	  CODEC_TURN, B("close"), B("c"), B("t"), NULL },
	{ "both lists: message wins, text required", &proto_both,
	  B("{\"type\":\"close\",\"conversation\":\"c\"}"),
	  CODEC_MALFORMED, B("close"), NONE, NONE, "text missing" },
	{ "second message type", &proto_both,
	  B("{\"type\":\"chat\",\"conversation\":\"c\",\"text\":\"t\"}"),
	  CODEC_TURN, B("chat"), B("c"), B("t"), NULL },
	{ "second end type", &proto_both,
	  B("{\"type\":\"bye\",\"conversation\":\"c\"}"),
	  CODEC_END, B("bye"), B("c"), NONE, NULL },
	{ "default names not configured", &proto_both,
	  B("{\"type\":\"message\",\"conversation\":\"c\",\"text\":\"t\"}"),
	  CODEC_OTHER, B("message"), NONE, NONE, NULL },
};

static void
check_str(const char *row, const char *field, const char *got,
    size_t got_len, const char *want, size_t want_len)
{
	if (want == NULL) {
		if (got != NULL || got_len != 0)
			fail_msg("%s: %s: want none, got %zu bytes", row, field,
			    got_len);
		return;
	}
	if (got == NULL)
		fail_msg("%s: %s: want \"%s\", got none", row, field, want);
	if (got_len != want_len || memcmp(got, want, want_len) != 0)
		fail_msg("%s: %s: want \"%s\" (%zu bytes), got \"%s\" (%zu)",
		    row, field, want, want_len, got, got_len);
	if (got[got_len] != '\0')
		fail_msg("%s: %s: not NUL-terminated", row, field);
}

static void
check_row(struct codec *c, const struct row *r)
{
	struct codec_frame	 f;
	enum codec_kind		 k;

	k = codec_decode(c, r->in, r->in_len, &f);
	if (k != r->kind)
		fail_msg("%s: want %s, got %s (%s)", r->name,
		    codec_kind_name(r->kind), codec_kind_name(k),
		    f.why ? f.why : "no reason");
	check_str(r->name, "type", f.type, f.type_len, r->type, r->type_len);
	check_str(r->name, "conversation", f.conversation, f.conversation_len,
	    r->conv, r->conv_len);
	check_str(r->name, "text", f.text, f.text_len, r->text, r->text_len);
	if (k == CODEC_INVALID || k == CODEC_MALFORMED) {
		if (f.why == NULL || *f.why == '\0')
			fail_msg("%s: no reason", r->name);
		if (r->why != NULL && strstr(f.why, r->why) == NULL)
			fail_msg("%s: reason \"%s\" lacks \"%s\"", r->name,
			    f.why, r->why);
	} else if (f.why != NULL)
		fail_msg("%s: unexpected reason \"%s\"", r->name, f.why);
}

static struct codec *
new_codec(const struct config_protocol *p)
{
	struct sbuf	 errs;
	struct codec	*c;

	sbuf_init(&errs);
	c = codec_new(p, &errs);
	if (c == NULL)
		fail_msg("codec_new: %s", sbuf_str(&errs));
	assert_int_equal(errs.lines, 0);
	sbuf_free(&errs);
	return c;
}

/* Each row with a fresh codec, then all rows through one codec. */
static void
test_golden(void **state)
{
	const struct config_protocol *protos[] = {
		&proto_default, &proto_nested, &proto_array, &proto_both,
	};
	struct codec	*c;
	size_t		 i, j;

	(void)state;
	for (i = 0; i < UTIL_NELEM(golden); i++) {
		c = new_codec(golden[i].proto ? golden[i].proto :
		    &proto_default);
		check_row(c, &golden[i]);
		codec_free(c);
	}
	for (j = 0; j < UTIL_NELEM(protos); j++) {
		c = new_codec(protos[j]);
		for (i = 0; i < UTIL_NELEM(golden); i++) {
			const struct config_protocol *p = golden[i].proto ?
			    golden[i].proto : &proto_default;

			if (p == protos[j])
				check_row(c, &golden[i]);
		}
		codec_free(c);
	}
}

static void
expect_new_error(const char *type, const char *conv, const char *text,
    size_t nerr, const char *msg)
{
	struct config_protocol	 p = proto_default;
	struct sbuf		 errs;
	struct codec		*c;

	p.type = (char *)type;
	p.conversation = (char *)conv;
	p.text = (char *)text;
	sbuf_init(&errs);
	c = codec_new(&p, &errs);
	assert_null(c);
	assert_int_equal(errs.lines, nerr);
	if (strstr(sbuf_str(&errs), msg) == NULL)
		fail_msg("errors \"%s\" lack \"%s\"", sbuf_str(&errs), msg);
	sbuf_free(&errs);
}

static void
test_new_errors(void **state)
{
	(void)state;
	expect_new_error("type", "/conversation", "/text", 1,
	    "protocol.type: invalid JSON pointer \"type\": must start with '/'");
	expect_new_error("/type", "/a~2b", "/text", 1,
	    "protocol.conversation: invalid JSON pointer \"/a~2b\": "
	    "'~' must be followed by 0 or 1");
	expect_new_error("/type", "/conversation", "/text~", 1,
	    "protocol.text: invalid JSON pointer \"/text~\"");
	expect_new_error("/type", "/conversation", "/~/x", 1,
	    "protocol.text: invalid JSON pointer");
	expect_new_error("", "/conversation", "/text", 1,
	    "protocol.type: a JSON pointer is required");
	expect_new_error("/type", NULL, "/text", 1,
	    "protocol.conversation: a JSON pointer is required");
	/* Every bad pointer is reported, not only the first. */
	expect_new_error("t", "c", "x~", 3, "protocol.text:");
	expect_new_error("t", "c", "x~", 3, "protocol.type:");
}

/* Pointers that are valid but odd: "/" is the "" key, "/a//b" an empty token. */
static void
test_new_odd_pointers(void **state)
{
	struct config_protocol	 p = proto_default;
	struct codec		*c;
	struct codec_frame	 f;

	(void)state;
	p.type = "/";
	p.conversation = "/a//b";
	p.text = "/t/01";
	c = new_codec(&p);
	assert_int_equal(codec_decode(c,
	    B("{\"\":\"message\",\"a\":{\"\":{\"b\":\"c\"}},"
	    "\"t\":{\"01\":\"key 01\"}}"), &f), CODEC_TURN);
	assert_int_equal(f.conversation_len, 1);
	assert_string_equal(f.conversation, "c");
	assert_string_equal(f.text, "key 01");
	/* "01" is no array index (RFC 6901 forbids leading zeros). */
	assert_int_equal(codec_decode(c,
	    B("{\"\":\"message\",\"a\":{\"\":{\"b\":\"c\"}},"
	    "\"t\":[\"zero\",\"one\"]}"), &f), CODEC_MALFORMED);
	assert_string_equal(f.why, "text missing");
	codec_free(c);

	/* "-" names the element past the end: never present. */
	p.type = "/type";
	p.conversation = "/conversation";
	p.text = "/t/-";
	c = new_codec(&p);
	assert_int_equal(codec_decode(c,
	    B("{\"type\":\"message\",\"conversation\":\"c\",\"t\":[\"a\"]}"),
	    &f), CODEC_MALFORMED);
	assert_int_equal(codec_decode(c,
	    B("{\"type\":\"message\",\"conversation\":\"c\",\"t\":{\"-\":\"a\"}}"),
	    &f), CODEC_TURN);
	assert_string_equal(f.text, "a");
	codec_free(c);

	/* An index too large for size_t must neither wrap nor crash. */
	p.text = "/t/184467440737095516160";
	c = new_codec(&p);
	assert_int_equal(codec_decode(c,
	    B("{\"type\":\"message\",\"conversation\":\"c\",\"t\":[\"a\"]}"),
	    &f), CODEC_MALFORMED);
	assert_int_equal(codec_decode(c,
	    B("{\"type\":\"message\",\"conversation\":\"c\","
	    "\"t\":{\"184467440737095516160\":\"big\"}}"), &f), CODEC_TURN);
	assert_string_equal(f.text, "big");
	codec_free(c);

	/* Empty type lists: everything is other. */
	p = proto_default;
	p.message_types.n = 0;
	p.message_types.v = NULL;
	p.end_types.n = 0;
	p.end_types.v = NULL;
	c = new_codec(&p);
	assert_int_equal(codec_decode(c,
	    B("{\"type\":\"message\",\"conversation\":\"c\",\"text\":\"x\"}"),
	    &f), CODEC_OTHER);
	codec_free(c);
}

/* codec_new copies: the caller's protocol may be scribbled over and freed. */
static void
test_new_copies(void **state)
{
	struct config_protocol	*p;
	struct codec		*c;
	struct codec_frame	 f;

	(void)state;
	p = calloc(1, sizeof(*p));
	assert_non_null(p);
	p->type = strdup("/k~1ind");
	p->conversation = strdup("/conv");
	p->text = strdup("/body");
	p->message_types.v = calloc(1, sizeof(char *));
	p->message_types.v[0] = strdup("say");
	p->message_types.n = 1;
	p->end_types.v = calloc(1, sizeof(char *));
	p->end_types.v[0] = strdup("bye");
	p->end_types.n = 1;
	c = new_codec(p);
	memset(p->type, 'x', strlen(p->type));
	memset(p->message_types.v[0], 'x', 3);
	free(p->type);
	free(p->conversation);
	free(p->text);
	free(p->message_types.v[0]);
	free(p->message_types.v);
	free(p->end_types.v[0]);
	free(p->end_types.v);
	free(p);

	assert_int_equal(codec_decode(c,
	    B("{\"k/ind\":\"say\",\"conv\":3,\"body\":\"hey\"}"), &f), CODEC_TURN);
	assert_string_equal(f.conversation, "3");
	assert_string_equal(f.text, "hey");
	assert_int_equal(codec_decode(c,
	    B("{\"k/ind\":\"bye\",\"conv\":\"z\"}"), &f), CODEC_END);
	codec_free(c);
}

static void
test_free_null(void **state)
{
	(void)state;
	codec_free(NULL);
}

static void
test_kind_names(void **state)
{
	(void)state;
	assert_string_equal(codec_kind_name(CODEC_INVALID), "invalid");
	assert_string_equal(codec_kind_name(CODEC_OTHER), "other");
	assert_string_equal(codec_kind_name(CODEC_MALFORMED), "malformed");
	assert_string_equal(codec_kind_name(CODEC_TURN), "turn");
	assert_string_equal(codec_kind_name(CODEC_END), "end");
}

/*
 * Any depth the backend's JSON.parse takes, without recursion: a text
 * nested 100 000 arrays deep is "not a string"; an unclosed one is cut.
 */
static void
test_deep(void **state)
{
	static const char head[] =
	    "{\"type\":\"message\",\"conversation\":\"c\",\"text\":";
	struct codec		*c;
	struct codec_frame	 f;
	char			*buf;
	size_t			 i, n, depth;

	(void)state;
	c = new_codec(&proto_default);

	depth = 100000;
	buf = malloc(depth);
	assert_non_null(buf);
	memset(buf, '[', depth);
	assert_int_equal(codec_decode(c, buf, depth, &f), CODEC_INVALID);
	assert_non_null(strstr(f.why, "unexpected end of input"));
	free(buf);

	buf = malloc(sizeof(head) + 2 * depth + 2);
	assert_non_null(buf);
	n = sizeof(head) - 1;
	memcpy(buf, head, n);
	for (i = 0; i < depth; i++)
		buf[n++] = '[';
	for (i = 0; i < depth; i++)
		buf[n++] = ']';
	buf[n++] = '}';
	assert_int_equal(codec_decode(c, buf, n, &f), CODEC_MALFORMED);
	assert_string_equal(f.why, "text is not a string");
	/* and a turn after it still decodes */
	assert_int_equal(codec_decode(c, B("{\"type\":\"message\","
	    "\"conversation\":\"c\",\"text\":\"hi\"}"), &f), CODEC_TURN);
	assert_string_equal(f.text, "hi");
	free(buf);

	/* A deep pointer through nested objects, past other keys. */
	codec_free(c);
	{
		struct config_protocol	 p = proto_default;

		p.text = "/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a";
		c = new_codec(&p);
	}
	assert_int_equal(codec_decode(c,
	    B("{\"type\":\"message\",\"conversation\":\"c\",\"a\":{\"b\":[1],\"a\":{\"a\":"
	    "{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":"
	    "{\"a\":{\"a\":{\"a\":{\"a\":\"bottom\"}}}}}}}}}}}}}}}}"), &f),
	    CODEC_TURN);
	assert_string_equal(f.text, "bottom");
	codec_free(c);
}

/*
 * chatmond's own frames name their type at /type whatever protocol.type
 * says; it is read as the type is: escapes resolved, the last of
 * duplicate keys, never a nested one.
 */
static void
test_own_type(void **state)
{
	static const struct {
		const char	*s;
		size_t		 len;
		const char	*own;		/* NULL: none */
		size_t		 own_len;
	} t[] = {
		{ B("{\"type\":\"chatmon.note_ack\",\"id\":\"n-1\"}"), B("chatmon.note_ack") },
		{ B("{\"type\":\"chatmon.note\\u005fack\"}"), B("chatmon.note_ack") },
		{ B("{\"t\\u0079pe\":\"chatmon.note_ack\"}"), B("chatmon.note_ack") },
		{ B("{\"type\":\"chatmon.note_ack\",\"x\":\"\\u0000\"}"), B("chatmon.note_ack") },
		{ B("{\"type\":\"chatmon.note_ack\",\"type\":\"x\"}"), B("x") },
		{ B("{\"type\":\"x\",\"type\":\"chatmon.note_ack\"}"), B("chatmon.note_ack") },
		{ B("{\"type\":\"chatmon.note_ack\",\"type\":1}"), NONE },
		{ B("{\"type\":\"a\\u0000b\"}"), B("a\0b") },
		{ B("{\"meta\":{\"t\":\"message\",\"type\":\"chatmon.note_ack\"}}"), NONE },
		{ B("{\"kind\":\"chatmon.note_ack\"}"), NONE },
		{ B("[\"chatmon.note_ack\"]"), NONE },
		{ B("{\"type\":\"chatmon.note_ack\""), NONE },
	};
	static const struct config_protocol *protos[] = { &proto_default,
	    &proto_nested, &proto_array };
	struct codec		*c;
	struct codec_frame	 f;
	size_t			 i, j;

	(void)state;
	for (j = 0; j < UTIL_NELEM(protos); j++) {
		c = new_codec(protos[j]);
		for (i = 0; i < UTIL_NELEM(t); i++) {
			(void)codec_decode(c, t[i].s, t[i].len, &f);
			if (t[i].own == NULL) {
				assert_null(f.own_type);
				continue;
			}
			assert_non_null(f.own_type);
			assert_int_equal(f.own_type_len, t[i].own_len);
			assert_memory_equal(f.own_type, t[i].own, t[i].own_len);
		}
		codec_free(c);
	}
	/* beside a turn, under another protocol.type */
	c = new_codec(&proto_nested);
	assert_int_equal(codec_decode(c, B("{\"type\":\"chatmon.note_ack\","
	    "\"meta\":{\"t\":\"message\"},\"a/b\":\"c\",\"msg\":{\"body\":"
	    "{\"text\":\"hi\"}}}"), &f), CODEC_TURN);
	assert_string_equal(f.own_type, "chatmon.note_ack");
	assert_string_equal(f.type, "message");
	codec_free(c);
}

static void
test_large(void **state)
{
	static const char head[] =
	    "{\"type\":\"message\",\"conversation\":\"c\",\"text\":\"";
	struct codec		*c;
	struct codec_frame	 f;
	char			*buf;
	size_t			 i, n, tlen = 1024 * 1024;

	(void)state;
	c = new_codec(&proto_default);
	buf = malloc(sizeof(head) + tlen + 2);
	assert_non_null(buf);
	n = sizeof(head) - 1;
	memcpy(buf, head, n);
	for (i = 0; i < tlen; i++)
		buf[n++] = (char)('a' + i % 26);
	buf[n++] = '"';
	buf[n++] = '}';
	assert_int_equal(codec_decode(c, buf, n, &f), CODEC_TURN);
	assert_int_equal(f.text_len, tlen);
	assert_memory_equal(f.text, buf + sizeof(head) - 1, tlen);
	free(buf);
	codec_free(c);
}

/*
 * Many decodes through one codec: every frame must describe its own input
 * (the previous document is released, not reused), and valgrind sees no leak.
 */
static void
test_many(void **state)
{
	struct codec		*c;
	struct codec_frame	 f;
	char			 in[256], want[64];
	int			 i, n;

	(void)state;
	c = new_codec(&proto_default);
	for (i = 0; i < 10000; i++) {
		switch (i % 5) {
		case 0:
			n = snprintf(in, sizeof(in), "{\"type\":\"message\","
			    "\"conversation\":\"c-%d\",\"text\":\"第%d条\"}",
			    i, i);
			assert_int_equal(codec_decode(c, in, (size_t)n, &f),
			    CODEC_TURN);
			snprintf(want, sizeof(want), "c-%d", i);
			assert_string_equal(f.conversation, want);
			assert_int_equal(f.conversation_len, strlen(want));
			snprintf(want, sizeof(want), "第%d条", i);
			assert_string_equal(f.text, want);
			assert_int_equal(f.text_len, strlen(want));
			break;
		case 1:
			n = snprintf(in, sizeof(in), "{\"type\":\"end\","
			    "\"conversation\":%d}", -i);
			assert_int_equal(codec_decode(c, in, (size_t)n, &f),
			    CODEC_END);
			snprintf(want, sizeof(want), "%d", -i);
			assert_string_equal(f.conversation, want);
			assert_null(f.text);
			break;
		case 2:
			n = snprintf(in, sizeof(in), "{\"type\":\"message\","
			    "\"conversation\":\"c-%d\",\"text\":\"cut", i);
			assert_int_equal(codec_decode(c, in, (size_t)n, &f),
			    CODEC_INVALID);
			assert_non_null(strstr(f.why, "invalid JSON: "));
			assert_null(f.type);
			break;
		case 3:
			n = snprintf(in, sizeof(in), "{\"type\":\"typing-%d\"}",
			    i);
			assert_int_equal(codec_decode(c, in, (size_t)n, &f),
			    CODEC_OTHER);
			snprintf(want, sizeof(want), "typing-%d", i);
			assert_string_equal(f.type, want);
			break;
		case 4:
			n = snprintf(in, sizeof(in), "{\"type\":\"message\","
			    "\"conversation\":%d,\"text\":[%d]}", i, i);
			assert_int_equal(codec_decode(c, in, (size_t)n, &f),
			    CODEC_MALFORMED);
			assert_string_equal(f.why, "text is not a string");
			break;
		}
	}
	codec_free(c);
}

/*
 * A buffer that cannot grow: the frame is INVALID or MALFORMED with "out
 * of memory", never a crash, and the codec decodes the next one.
 */
static void
test_alloc_failure(void **state)
{
	static const char in[] =
	    "{\"type\":\"message\",\"conversation\":\"c-1\",\"text\":\"在吗\"}";
	struct codec		*c;
	struct codec_frame	 f;
	enum codec_kind		 k;
	long			 budget;
	int			 failures = 0;

	(void)state;
	if (!allocfail_active())
		skip();
	for (budget = 0; budget < 100; budget++) {
		c = new_codec(&proto_default);
		allocfail_after = budget;
		allocfail_injected = 0;
		k = codec_decode(c, B(in), &f);
		allocfail_after = -1;
		if (!allocfail_injected) {
			assert_int_equal(k, CODEC_TURN);
			assert_string_equal(f.text, "在吗");
			codec_free(c);
			break;
		}
		failures++;
		assert_true(k == CODEC_INVALID || k == CODEC_MALFORMED);
		assert_string_equal(f.why, "out of memory");
		assert_int_equal(codec_decode(c, B(in), &f), CODEC_TURN);
		assert_string_equal(f.text, "在吗");
		codec_free(c);
	}
	assert_true(failures > 0);
	assert_true(budget < 100);

	/* once grown, the buffers serve every frame: nothing allocated per frame */
	c = new_codec(&proto_default);
	assert_int_equal(codec_decode(c, B(in), &f), CODEC_TURN);
	allocfail_calls = 0;
	for (budget = 0; budget < 1000; budget++)
		assert_int_equal(codec_decode(c, B(in), &f), CODEC_TURN);
	assert_int_equal(allocfail_calls, 0);
	codec_free(c);
}

/* protocol.robot: a truthy field marks a robot's turn; absent, every turn is a person's. */
static void
test_robot(void **state)
{
	static const struct {
		const char	*json;
		int		 robot;
	} cases[] = {
		{ "{\"type\":\"message\",\"conversation\":\"c\",\"text\":\"t\",\"auto\":true}", 1 },
		{ "{\"type\":\"message\",\"conversation\":\"c\",\"text\":\"t\",\"auto\":1}", 1 },
		{ "{\"type\":\"message\",\"conversation\":\"c\",\"text\":\"t\",\"auto\":\"faq\"}", 1 },
		{ "{\"type\":\"message\",\"conversation\":\"c\",\"text\":\"t\",\"auto\":false}", 0 },
		{ "{\"type\":\"message\",\"conversation\":\"c\",\"text\":\"t\",\"auto\":0}", 0 },
		{ "{\"type\":\"message\",\"conversation\":\"c\",\"text\":\"t\",\"auto\":0.0e9}", 0 },
		{ "{\"type\":\"message\",\"conversation\":\"c\",\"text\":\"t\",\"auto\":-Infinity}", 1 },
		{ "{\"type\":\"message\",\"conversation\":\"c\",\"text\":\"t\",\"auto\":NaN}", 0 },
		{ "{\"type\":\"message\",\"conversation\":\"c\",\"text\":\"t\",\"auto\":\"\"}", 0 },
		{ "{\"type\":\"message\",\"conversation\":\"c\",\"text\":\"t\",\"auto\":null}", 0 },
		{ "{\"type\":\"message\",\"conversation\":\"c\",\"text\":\"t\"}", 0 },
	};
	struct config_protocol	 p = proto_default;
	struct codec_frame	 f;
	struct codec		*c, *plain;
	struct sbuf		 errs;
	size_t			 i;

	(void)state;
	sbuf_init(&errs);
	p.robot = "/auto";
	assert_non_null(c = codec_new(&p, &errs));
	assert_non_null(plain = codec_new(&proto_default, &errs));
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_int_equal(codec_decode(c, cases[i].json, strlen(cases[i].json), &f),
		    CODEC_TURN);
		assert_int_equal(f.robot, cases[i].robot);
		assert_int_equal(codec_decode(plain, cases[i].json,
		    strlen(cases[i].json), &f), CODEC_TURN);
		assert_int_equal(f.robot, 0);
	}
	codec_free(c);
	codec_free(plain);
	p.robot = "auto";
	assert_null(codec_new(&p, &errs));
	assert_non_null(strstr(sbuf_str(&errs), "protocol.robot"));
	sbuf_free(&errs);
}

static void
test_nickname(void **state)
{
	static const struct {
		const char	*json;
		const char	*nick;		/* NULL: none */
	} cases[] = {
		{ "{\"type\":\"message\",\"conversation\":\"c\",\"text\":\"t\",\"buyer\":{\"nick\":\"\\u5c0f\u738b\"}}", "小王" },
		{ "{\"buyer\":{\"nick\":\"a\\\"b\"},\"type\":\"message\",\"conversation\":\"c\",\"text\":\"t\"}", "a\"b" },
		/* not a string, or absent: no nickname, and still a turn */
		{ "{\"type\":\"message\",\"conversation\":\"c\",\"text\":\"t\",\"buyer\":{\"nick\":7}}", NULL },
		{ "{\"type\":\"message\",\"conversation\":\"c\",\"text\":\"t\",\"buyer\":\"x\"}", NULL },
		{ "{\"type\":\"message\",\"conversation\":\"c\",\"text\":\"t\"}", NULL },
	};
	struct config_protocol	 p = proto_default;
	struct codec_frame	 f;
	struct codec		*c;
	struct sbuf		 errs;
	size_t			 i;

	(void)state;
	sbuf_init(&errs);
	p.nickname = "/buyer/nick";
	assert_non_null(c = codec_new(&p, &errs));
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_int_equal(codec_decode(c, cases[i].json, strlen(cases[i].json), &f),
		    CODEC_TURN);
		assert_string_equal(f.text, "t");
		if (cases[i].nick == NULL)
			assert_null(f.nick);
		else {
			assert_string_equal(f.nick, cases[i].nick);
			assert_int_equal(f.nick_len, strlen(cases[i].nick));
		}
	}
	/* an end frame has no text and no nickname */
	assert_int_equal(codec_decode(c, "{\"type\":\"end\",\"conversation\":\"c\","
	    "\"buyer\":{\"nick\":\"x\"}}", 54, &f), CODEC_END);
	assert_null(f.nick);
	codec_free(c);
	p.nickname = "buyer";
	assert_null(codec_new(&p, &errs));
	assert_non_null(strstr(sbuf_str(&errs), "nickname"));
	sbuf_free(&errs);
}

/* protocol.shop / protocol.queue: ids as strings or integers, absent otherwise. */
static void
test_shop_queue(void **state)
{
	static const struct {
		const char	*json;
		const char	*shop;		/* NULL: none */
		const char	*queue;
	} cases[] = {
		{ "{\"type\":\"message\",\"conversation\":\"c\",\"text\":\"t\","
		    "\"shop\":\"tmall\",\"meta\":{\"queue\":\"presale\"}}", "tmall", "presale" },
		/* integers in decimal, as a conversation id: 7 and "7" are one shop */
		{ "{\"shop\":7,\"meta\":{\"queue\":-0},\"type\":\"message\","
		    "\"conversation\":\"c\",\"text\":\"t\"}", "7", "0" },
		{ "{\"type\":\"message\",\"conversation\":\"c\",\"text\":\"t\","
		    "\"shop\":123456789012345678901234567890}", "123456789012345678901234567890", NULL },
		/* any number, as a conversation id: 7.0 is 7, 1.5 as sent */
		{ "{\"shop\":7.0,\"meta\":{\"queue\":1.5},\"type\":\"message\","
		    "\"conversation\":\"c\",\"text\":\"t\"}", "7", "1.5" },
		{ "{\"type\":\"message\",\"conversation\":\"c\",\"text\":\"t\","
		    "\"shop\":\"\\u5929\\u732b\"}", "天猫", NULL },
		/* empty, another type, or absent: none, and still a turn */
		{ "{\"type\":\"message\",\"conversation\":\"c\",\"text\":\"t\","
		    "\"shop\":\"\",\"meta\":{\"queue\":false}}", NULL, NULL },
		{ "{\"type\":\"message\",\"conversation\":\"c\",\"text\":\"t\","
		    "\"shop\":{\"id\":\"x\"},\"meta\":{\"queue\":true}}", NULL, NULL },
		{ "{\"type\":\"message\",\"conversation\":\"c\",\"text\":\"t\","
		    "\"shop\":null,\"meta\":\"presale\"}", NULL, NULL },
		{ "{\"type\":\"message\",\"conversation\":\"c\",\"text\":\"t\"}", NULL, NULL },
		/* the last of duplicate keys, as everywhere */
		{ "{\"shop\":\"a\",\"type\":\"message\",\"conversation\":\"c\","
		    "\"text\":\"t\",\"shop\":\"b\"}", "b", NULL },
	};
	struct config_protocol	 p = proto_default;
	struct codec_frame	 f;
	struct codec		*c;
	struct sbuf		 errs;
	size_t			 i;
	const char		*end = "{\"type\":\"end\",\"conversation\":\"c\","
				    "\"shop\":\"jd\",\"meta\":{\"queue\":9}}";
	const char		*bad = "{\"type\":\"message\",\"conversation\":[],"
				    "\"text\":\"t\",\"shop\":\"jd\"}";

	(void)state;
	sbuf_init(&errs);
	p.shop = "/shop";
	p.queue = "/meta/queue";
	assert_non_null(c = codec_new(&p, &errs));
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_int_equal(codec_decode(c, cases[i].json, strlen(cases[i].json), &f),
		    CODEC_TURN);
		assert_string_equal(f.text, "t");
		if (cases[i].shop == NULL) {
			assert_null(f.shop);
			assert_int_equal(f.shop_len, 0);
		} else {
			assert_string_equal(f.shop, cases[i].shop);
			assert_int_equal(f.shop_len, strlen(cases[i].shop));
		}
		if (cases[i].queue == NULL) {
			assert_null(f.queue);
			assert_int_equal(f.queue_len, 0);
		} else {
			assert_string_equal(f.queue, cases[i].queue);
			assert_int_equal(f.queue_len, strlen(cases[i].queue));
		}
	}
	/* an end frame names them too: it may be the first seen of its conversation */
	assert_int_equal(codec_decode(c, end, strlen(end), &f), CODEC_END);
	assert_string_equal(f.shop, "jd");
	assert_string_equal(f.queue, "9");
	/* a malformed frame carries nothing */
	assert_int_equal(codec_decode(c, bad, strlen(bad), &f), CODEC_MALFORMED);
	assert_null(f.shop);
	assert_null(f.queue);
	/* grown once, the buffers serve every frame: nothing allocated per frame */
	if (allocfail_active()) {
		for (i = 0; i < 4; i++)
			assert_int_equal(codec_decode(c, cases[i].json,
			    strlen(cases[i].json), &f), CODEC_TURN);
		allocfail_calls = 0;
		for (i = 0; i < 100; i++)
			assert_int_equal(codec_decode(c, cases[i % 4].json,
			    strlen(cases[i % 4].json), &f), CODEC_TURN);
		assert_int_equal(allocfail_calls, 0);
	}
	codec_free(c);

	/* not configured: never set, whatever the frame holds */
	p = proto_default;
	assert_non_null(c = codec_new(&p, &errs));
	assert_int_equal(codec_decode(c, cases[0].json, strlen(cases[0].json), &f),
	    CODEC_TURN);
	assert_null(f.shop);
	assert_null(f.queue);
	codec_free(c);

	p.shop = "shop";
	p.queue = "/q~2";
	assert_null(codec_new(&p, &errs));
	assert_non_null(strstr(sbuf_str(&errs), "protocol.shop"));
	assert_non_null(strstr(sbuf_str(&errs), "protocol.queue"));
	sbuf_free(&errs);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_golden),
		cmocka_unit_test(test_new_errors),
		cmocka_unit_test(test_new_odd_pointers),
		cmocka_unit_test(test_new_copies),
		cmocka_unit_test(test_free_null),
		cmocka_unit_test(test_kind_names),
		cmocka_unit_test(test_deep),
		cmocka_unit_test(test_own_type),
		cmocka_unit_test(test_large),
		cmocka_unit_test(test_many),
		cmocka_unit_test(test_alloc_failure),
		cmocka_unit_test(test_robot),
		cmocka_unit_test(test_nickname),
		cmocka_unit_test(test_shop_queue),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
