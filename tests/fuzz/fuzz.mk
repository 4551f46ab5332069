# tests/fuzz/fuzz.mk: the libFuzzer harnesses of tests/fuzz/ (tests/fuzz/README.md).
# Included at the very end of the Makefile.
#
# clang 14 with libFuzzer and the ASan/UBSan/LSan runtimes (clang,
# libclang-rt-14-dev) come with tools/deps.sh like every other package.
#
#   make fuzz-smoke   each harness for FUZZ_SMOKE_SECONDS (5), from the seeds alone
#   make fuzz         each harness for FUZZ_SECONDS (60), one after another; the
#                     work corpora in $(FUZZ_BUILD)/corpus/ grow from run to run
#   make fuzz-build   the harnesses only
#   make fuzz-repro   every saved input in tests/fuzz/crashes/ through its harness
#                     (fails while the bug it shows is not fixed)
#   make fuzz-clean   removes $(FUZZ_BUILD)
# Any crash, leak, timeout (-timeout=10) or memory blow-up (-rss_limit_mb=2048) fails.

FUZZ_BUILD	?= build-fuzz
FUZZ_CC		?= clang
FUZZ_SECONDS	?= 60
FUZZ_SMOKE_SECONDS ?= 5
FUZZ_HARNESSES	:= codec normalize acm rules config detect jwt alertline pushmsg

# UBSan stops at the first report, as in `make SAN=1`: libFuzzer sees it as a crash.
FUZZ_SAN	:= -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
FUZZ_CPPFLAGS	:= -Iinclude -I$(FUZZ_BUILD)/gen -D_GNU_SOURCE -MMD -MP
FUZZ_CFLAGS	:= -std=c11 -g -O1 -fno-omit-frame-pointer $(FUZZ_SAN) $(filter-out -Werror,$(WARN))
FUZZ_LIBS	:= -lyaml -ljansson -lpcre2-8 -lutf8proc -lsodium -lcrypto -lm

# The project's modules each harness links, compiled again with the fuzzer's
# instrumentation. rules*.c: the rules module may be split into several files
# (rulesfp.c is `chatmon rules fp`, a Redis client, not the engine).
FUZZ_MODS_codec	    := codec bintext util log
FUZZ_MODS_normalize := normalize util
FUZZ_MODS_acm	    := acm
FUZZ_MODS_rules	    := $(filter-out rulesfp,$(patsubst src/%.c,%,$(wildcard src/rules*.c))) yamlfile normalize acm util log
FUZZ_MODS_config    := config access yamlfile util log
FUZZ_MODS_detect    := detect rulebook model window $(FUZZ_MODS_rules)
FUZZ_MODS_jwt	    := jwt util
FUZZ_MODS_alertline := alertline util
FUZZ_MODS_pushmsg   := pushmsg alertline access config yamlfile util log

FUZZ_BINS	:= $(addprefix $(FUZZ_BUILD)/fuzz_,$(FUZZ_HARNESSES))

.PHONY: fuzz fuzz-smoke fuzz-build fuzz-repro fuzz-deps fuzz-clean

fuzz-deps:
	@tools/deps.sh $(DEPS)

fuzz-build: $(FUZZ_BINS)

$(FUZZ_BUILD)/src/%.o: src/%.c | fuzz-deps
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CPPFLAGS) $(FUZZ_CFLAGS) -c -o $@ $<

# The harnesses' own code: warnings are errors here, as in the project's.
$(FUZZ_BUILD)/tests/fuzz_%.o: tests/fuzz/fuzz_%.c | fuzz-deps
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CPPFLAGS) $(FUZZ_CFLAGS) $(WERROR) -c -o $@ $<

# The generated tables come from the Makefile's own rules, made for
# BUILD=$(FUZZ_BUILD) (that make is the one that has the rules when BUILD is
# already $(FUZZ_BUILD)).
ifneq ($(BUILD),$(FUZZ_BUILD))
$(FUZZ_BUILD)/gen/t2s_table.h: tools/gen_t2s.py tools/tablegen.py $(wildcard /usr/share/opencc/TSCharacters.ocd2)
	$(MAKE) --no-print-directory BUILD=$(FUZZ_BUILD) $@
$(FUZZ_BUILD)/gen/fold_table.h: tools/gen_fold.py tools/tablegen.py
	$(MAKE) --no-print-directory BUILD=$(FUZZ_BUILD) $@
endif
$(FUZZ_BUILD)/src/normalize.o: $(FUZZ_BUILD)/gen/t2s_table.h $(FUZZ_BUILD)/gen/fold_table.h

define fuzz_link
$(FUZZ_BUILD)/fuzz_$(1): $(FUZZ_BUILD)/tests/fuzz_$(1).o \
	    $(addprefix $(FUZZ_BUILD)/src/,$(addsuffix .o,$(FUZZ_MODS_$(1))))
	$$(FUZZ_CC) $$(FUZZ_SAN) -o $$@ $$^ $$(FUZZ_LIBS)
endef
$(foreach h,$(FUZZ_HARNESSES),$(eval $(call fuzz_link,$(h))))

# One harness after another, never in parallel; new inputs go under
# $(FUZZ_BUILD), never into the tree.
fuzz: $(FUZZ_BINS)
	@tests/fuzz/run.sh fuzz $(FUZZ_BUILD) $(FUZZ_SECONDS) $(FUZZ_HARNESSES)

# The saved crashes first: a fixed bug must stay fixed.
fuzz-smoke: fuzz-repro
	@tests/fuzz/run.sh smoke $(FUZZ_BUILD) $(FUZZ_SMOKE_SECONDS) $(FUZZ_HARNESSES)

# tests/fuzz/crashes/HARNESS-NAME: an input that showed a bug, run once.
fuzz-repro: $(FUZZ_BINS)
	@mkdir -p $(FUZZ_BUILD)/logs
	@rc=0; for f in $(wildcard tests/fuzz/crashes/*-*); do \
	    h=$${f##*/}; h=$${h%%-*}; echo "== $(FUZZ_BUILD)/fuzz_$$h $$f"; \
	    $(FUZZ_BUILD)/fuzz_$$h $$f >$(FUZZ_BUILD)/logs/repro.log 2>&1 || \
	        { rc=1; tail -n 40 $(FUZZ_BUILD)/logs/repro.log; }; done; exit $$rc

fuzz-clean:
	rm -rf $(FUZZ_BUILD)

-include $(wildcard $(FUZZ_BUILD)/src/*.d $(FUZZ_BUILD)/tests/*.d)
