# chatmon: plain GNU make. `make run` starts the demo, `make test` runs every test.
# `make SAN=1 ...` builds into build-san/ with ASan and UBSan.

PREFIX	?= /usr/local
DESTDIR	?=
BINDIR	?= $(PREFIX)/bin
SBINDIR	?= $(PREFIX)/sbin
SYSCONFDIR ?= /etc

PYTHON	?= /usr/bin/python3
CC	?= cc
CFLAGS	?= -O2 -g
WERROR	?= -Werror
WARN	:= -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
	   -Wpointer-arith -Wformat=2 -Wno-format-nonliteral $(WERROR)

DEPS	:= build/deps
LWS	:= $(DEPS)/lws
LWS_A	:= $(LWS)/lib/libwebsockets.a

ifeq ($(SAN),1)
BUILD	?= build-san
SANFLAGS := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
else
BUILD	?= build
SANFLAGS :=
endif

# The vendored lws headers come first: Debian's -dev package may also be installed.
CPPFLAGS += -Iinclude -I$(LWS)/include -I$(BUILD)/gen -D_GNU_SOURCE -MMD -MP \
	    -DCHATMON_CONFIG='"$(SYSCONFDIR)/chatmon/chatmond.yaml"'
ALL_CFLAGS = -std=c11 $(CFLAGS) $(WARN) $(SANFLAGS)
LDFLAGS	+= $(SANFLAGS)
LIBS	:= $(LWS_A) -levent -lhiredis -lsystemd -lssl -lcrypto -lyaml -ljansson -lpcre2-8 -lutf8proc \
	   -lpthread -lm
RULES_LIBS := -lyaml -ljansson -lpcre2-8 -lutf8proc -lm

# Pure modules (no I/O, no event headers): each links alone into its test.
PURE	:= util log config codec metrics msgq normalize acm rules alertfmt sla
IO	:= session relay slaclock alert admin notify
DAEMON_OBJS := $(addprefix $(BUILD)/,$(addsuffix .o,$(PURE) $(IO) main))
TOOL_OBJS   := $(addprefix $(BUILD)/,$(addsuffix .o,util log config normalize acm rules alertfmt sla replay tail chatmon))

UNIT_TESTS := config codec msgq metrics normalize acm rules sla
UNIT_BINS  := $(addprefix $(BUILD)/tests/test_,$(UNIT_TESTS))

.PHONY: all deps test unit unit-valgrind blackbox test-san bench run install uninstall clean distclean

all: $(BUILD)/chatmond $(BUILD)/chatmon

deps:
	@tools/deps.sh $(DEPS)

$(BUILD)/%.o: src/%.c | deps $(BUILD)
	$(CC) $(CPPFLAGS) $(ALL_CFLAGS) -c -o $@ $<

$(BUILD)/tests/%.o: tests/unit/%.c | deps $(BUILD)/tests
	$(CC) $(CPPFLAGS) $(ALL_CFLAGS) -Wno-missing-prototypes -c -o $@ $<

$(BUILD) $(BUILD)/tests:
	@mkdir -p $@

$(BUILD)/chatmond: $(DAEMON_OBJS) $(LWS_A)
	$(CC) $(LDFLAGS) -o $@ $(DAEMON_OBJS) $(LIBS)

# Made by tools/deps.sh (the deps target); relinks when it is rebuilt.
$(LWS_A): | deps
	@:

$(BUILD)/chatmon: $(TOOL_OBJS)
	$(CC) $(LDFLAGS) -o $@ $^ $(RULES_LIBS) -lhiredis

# The traditional->simplified table, made from OpenCC's data (tools/gen_t2s.py).
$(BUILD)/gen/t2s_table.h: tools/gen_t2s.py $(wildcard /usr/share/opencc/TSCharacters.ocd2) | deps
	@mkdir -p $(@D)
	$(PYTHON) tools/gen_t2s.py $@.tmp && mv $@.tmp $@
$(BUILD)/normalize.o: $(BUILD)/gen/t2s_table.h

# Each unit test links its own module and the layer-0 helpers only.
$(BUILD)/tests/test_config: $(BUILD)/tests/test_config.o $(BUILD)/config.o $(BUILD)/util.o $(BUILD)/log.o
	$(CC) $(LDFLAGS) -o $@ $^ -lcmocka -lyaml -lm
$(BUILD)/tests/test_codec: $(BUILD)/tests/test_codec.o $(BUILD)/codec.o $(BUILD)/util.o $(BUILD)/log.o
	$(CC) $(LDFLAGS) -o $@ $^ -lcmocka -ljansson
$(BUILD)/tests/test_msgq: $(BUILD)/tests/test_msgq.o $(BUILD)/msgq.o $(BUILD)/util.o
	$(CC) $(LDFLAGS) -o $@ $^ -lcmocka
$(BUILD)/tests/test_metrics: $(BUILD)/tests/test_metrics.o $(BUILD)/metrics.o $(BUILD)/util.o
	$(CC) $(LDFLAGS) -o $@ $^ -lcmocka
$(BUILD)/tests/test_normalize: $(BUILD)/tests/test_normalize.o $(BUILD)/normalize.o $(BUILD)/util.o
	$(CC) $(LDFLAGS) -o $@ $^ -lcmocka -lutf8proc
# --wrap lets the test fail allocations one by one without touching src/
$(BUILD)/tests/test_acm: $(BUILD)/tests/test_acm.o $(BUILD)/acm.o
	$(CC) $(LDFLAGS) -Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc -o $@ $^ -lcmocka
$(BUILD)/tests/test_sla: $(BUILD)/tests/test_sla.o $(BUILD)/sla.o $(BUILD)/util.o
	$(CC) $(LDFLAGS) -Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc -o $@ $^ -lcmocka
$(BUILD)/tests/test_rules: $(BUILD)/tests/test_rules.o $(BUILD)/rules.o $(BUILD)/normalize.o $(BUILD)/acm.o $(BUILD)/util.o
	$(CC) $(LDFLAGS) -o $@ $^ -lcmocka $(RULES_LIBS)

unit: $(UNIT_BINS)
	@set -e; for t in $(UNIT_BINS); do echo "== $$t"; $$t; done

# The pure modules under valgrind: leaks and uninitialised reads.
unit-valgrind: $(UNIT_BINS)
	@set -e; for t in $(UNIT_BINS); do echo "== valgrind $$t"; \
	    valgrind -q --leak-check=full --errors-for-leak-kinds=definite,indirect \
	        --error-exitcode=9 $$t >$$t.valgrind.log 2>&1 || \
	        { cat $$t.valgrind.log; exit 1; }; done

blackbox: all
	CHATMOND=$(abspath $(BUILD)/chatmond) CHATMON=$(abspath $(BUILD)/chatmon) \
	    $(PYTHON) -m pytest -q -p no:cacheprovider tests/blackbox

# The whole suite, then the whole suite again under ASan/UBSan.
test: deps
	$(MAKE) unit blackbox unit-valgrind
	$(MAKE) test-san

test-san:
	$(MAKE) SAN=1 unit blackbox

$(BUILD)/bench_rules: tests/bench/bench_rules.c $(BUILD)/rules.o $(BUILD)/normalize.o $(BUILD)/acm.o $(BUILD)/util.o
	$(CC) $(CPPFLAGS) $(ALL_CFLAGS) -o $@ $(filter %.c %.o,$^) $(RULES_LIBS)

$(BUILD)/bench_sla: tests/bench/bench_sla.c $(BUILD)/sla.o $(BUILD)/util.o
	$(CC) $(CPPFLAGS) $(ALL_CFLAGS) -o $@ $(filter %.c %.o,$^) -levent

bench: all $(BUILD)/bench_rules $(BUILD)/bench_sla
	rm -rf $(BUILD)/bench-500 && $(PYTHON) tests/bench/gen_rules.py $(BUILD)/bench-500 500 conf/rules.d
	$(BUILD)/bench_rules tests/corpus/messages.jsonl default=conf/rules.d \
	    default+synthetic=$(BUILD)/bench-500
	tests/bench/rules_instr.sh $(BUILD)/bench_rules tests/corpus/messages.jsonl \
	    default=conf/rules.d default+synthetic=$(BUILD)/bench-500
	$(BUILD)/bench_sla 1000000
	CHATMOND=$(abspath $(BUILD)/chatmond) $(PYTHON) tests/bench/sla_late.py
	CHATMOND=$(abspath $(BUILD)/chatmond) $(PYTHON) tests/bench/sla_late.py --nice -15
	CHATMOND=$(abspath $(BUILD)/chatmond) $(PYTHON) tests/bench/rtt.py

run: all
	@tools/run.sh $(BUILD)/chatmond $(BUILD)/chatmon conf/chatmond.yaml

install: all
	install -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(BINDIR) $(DESTDIR)$(SYSCONFDIR)/chatmon
	install -m 755 $(BUILD)/chatmond $(DESTDIR)$(SBINDIR)/chatmond
	install -m 755 $(BUILD)/chatmon $(DESTDIR)$(BINDIR)/chatmon
	@# never overwrite an operator's configuration or rules
	test -e $(DESTDIR)$(SYSCONFDIR)/chatmon/chatmond.yaml || \
	    install -m 644 conf/chatmond.yaml $(DESTDIR)$(SYSCONFDIR)/chatmon/chatmond.yaml
	test -e $(DESTDIR)$(SYSCONFDIR)/chatmon/rules.d || { \
	    install -d $(DESTDIR)$(SYSCONFDIR)/chatmon/rules.d && \
	    install -m 644 conf/rules.d/*.yaml $(DESTDIR)$(SYSCONFDIR)/chatmon/rules.d; }

uninstall:
	rm -f $(DESTDIR)$(SBINDIR)/chatmond $(DESTDIR)$(BINDIR)/chatmon

clean:
	rm -rf build/*.o build/*.d build/chatmond build/chatmon build/tests build-san

distclean:
	rm -rf build build-san

-include $(wildcard $(BUILD)/*.d $(BUILD)/tests/*.d)
