# dgmigrate - build, test, demo.
#
#   make          build ./dgmigrate
#   make check    install what is missing, build with ASan/UBSan, run unit
#                 and integration tests (real PostgreSQL, real alembic)
#   make demo     throwaway PostgreSQL + fixture app, run dgmigrate on plans/demo.yaml
#   make bench    benchmarks (see bench/)
#   make install  ./dgmigrate, dgmigrate(1) and the bash completion under
#                 $(DESTDIR)$(PREFIX) (PREFIX=/usr/local); make uninstall
#   make fuzz     libFuzzer (clang) on every harness of tests/fuzz/ for
#                 FUZZ_SECONDS each (default 60); FUZZ="ini graph" for some

PKGS     := libpq libgit2 libarchive yaml-0.1 libcrypto jansson libcurl
CC       ?= cc
VERSION  := $(shell git describe --tags --always --dirty 2>/dev/null || echo 0.1.0-dev)
CFLAGS   ?= -O2 -g
CFLAGS   += -std=c11 -Wall -Wextra -Werror -Wshadow -Wno-unused-parameter -Wno-missing-field-initializers \
	    -D_GNU_SOURCE -Iinclude -DDGM_VERSION='"$(VERSION)"'
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   = $(shell pkg-config --libs $(PKGS) 2>/dev/null)
LIBS     = $(PKG_LIBS) -lpg_query -lpthread

BUILD    ?= build
ifeq ($(SAN),1)
CFLAGS   += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
LDFLAGS  += -fsanitize=address,undefined
endif

SRC      := $(sort $(wildcard src/*/*.c))
OBJ      := $(SRC:%.c=$(BUILD)/%.o)
MAIN_OBJ := $(BUILD)/src/main.o
LIB      := $(BUILD)/libdgm.a
UNIT_SRC := $(sort $(wildcard tests/unit/test_*.c))
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
HDRS     := $(wildcard include/dgm/*.h src/*/*.h)

.PHONY: all deps check test test-unit test-integration demo bench clean doc install uninstall \
	fuzz fuzz-build

all: dgmigrate

# The default build is ./dgmigrate; other BUILD folders put it inside.
ifeq ($(BUILD),build)
BIN := dgmigrate
else
BIN := $(BUILD)/dgmigrate
endif

$(BIN): $(MAIN_OBJ) $(LIB)
	$(CC) $(LDFLAGS) -o $@ $(MAIN_OBJ) $(LIB) $(LIBS)

$(LIB): $(OBJ)
	@rm -f $@
	ar rcs $@ $(OBJ)

$(BUILD)/%.o: %.c $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(PKG_CFLAGS) -c -o $@ $<

$(BUILD)/tests/%: tests/unit/%.c $(LIB) $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(PKG_CFLAGS) $(LDFLAGS) -o $@ $< $(LIB) $(LIBS) -lcmocka

# test tools: small programs the integration tests drive
$(BUILD)/tools/%: tests/tools/%.c $(LIB) $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(PKG_CFLAGS) $(LDFLAGS) -o $@ $< $(LIB) $(LIBS)

TOOLS    := $(BUILD)/tools/alembic_dump $(BUILD)/tools/verify_probe $(BUILD)/tools/store_snap

# The man page and the bash completion come from the option tables that
# drive --help (src/cli/docs.c), so the three cannot drift apart.
GENDOC   := $(BUILD)/gendoc
DOCS     := $(BUILD)/doc/dgmigrate.1 $(BUILD)/doc/dgmigrate.bash

$(GENDOC): tools/gendoc.c $(LIB) $(HDRS)
	$(CC) $(CFLAGS) $(PKG_CFLAGS) $(LDFLAGS) -o $@ $< $(LIB) $(LIBS)

$(BUILD)/doc/dgmigrate.1: $(GENDOC)
	@mkdir -p $(dir $@)
	$(GENDOC) man > $@.tmp && mv $@.tmp $@

$(BUILD)/doc/dgmigrate.bash: $(GENDOC)
	@mkdir -p $(dir $@)
	$(GENDOC) bash > $@.tmp && mv $@.tmp $@

doc: $(DOCS)

PREFIX   ?= /usr/local
BINDIR   := $(PREFIX)/bin
MANDIR   := $(PREFIX)/share/man/man1
COMPDIR  := $(PREFIX)/share/bash-completion/completions

install: $(BIN) $(DOCS)
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR) $(DESTDIR)$(COMPDIR)
	install -m 0755 $(BIN) $(DESTDIR)$(BINDIR)/dgmigrate
	install -m 0644 $(BUILD)/doc/dgmigrate.1 $(DESTDIR)$(MANDIR)/dgmigrate.1
	install -m 0644 $(BUILD)/doc/dgmigrate.bash $(DESTDIR)$(COMPDIR)/dgmigrate

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/dgmigrate $(DESTDIR)$(MANDIR)/dgmigrate.1 \
		$(DESTDIR)$(COMPDIR)/dgmigrate

# Fuzz harnesses (tests/fuzz/fuzz_NAME.c). Each is built twice: with
# tests/fuzz/standalone.c and the normal compiler, so that the unit tests
# run it over tests/fuzz/corpus/NAME and tests/fuzz/regress/NAME; and by
# `make fuzz` with clang's libFuzzer.
FUZZ_HARNESSES := plan revfile ini config graph manifest catalog journal
FUZZ_SECONDS   ?= 60
FUZZ           ?= $(FUZZ_HARNESSES)
FUZZ_BIN       := $(FUZZ_HARNESSES:%=$(BUILD)/fuzz/%)
FUZZ_HDRS      := tests/fuzz/fuzz.h

$(BUILD)/fuzz/%: tests/fuzz/fuzz_%.c tests/fuzz/standalone.c $(FUZZ_HDRS) $(LIB) $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(PKG_CFLAGS) $(LDFLAGS) -o $@ $< tests/fuzz/standalone.c $(LIB) $(LIBS)

# libFuzzer: the library instrumented for coverage, the harness linked with
# libFuzzer's main (clang-14 with libclang-rt-14-dev).
ifeq ($(LIBFUZZER),1)
CFLAGS   += -fsanitize=fuzzer-no-link
endif
$(BUILD)/fuzzer/%: tests/fuzz/fuzz_%.c $(FUZZ_HDRS) $(LIB) $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(PKG_CFLAGS) -fsanitize=fuzzer,address,undefined -o $@ $< $(LIB) $(LIBS)

fuzz-build: $(FUZZ:%=$(BUILD)/fuzzer/%)

fuzz:
	@bash .ci/install-deps && bash .ci/install-deps fuzz
	@$(MAKE) --no-print-directory BUILD=build/libfuzzer CC=clang SAN=1 LIBFUZZER=1 FUZZ="$(FUZZ)" \
		fuzz-build
	@FUZZ_SECONDS=$(FUZZ_SECONDS) bash tests/fuzz/run.sh build/libfuzzer/fuzzer $(FUZZ)

deps:
	@bash .ci/install-deps

# make check: everything, sanitizers on, from a fresh machine.
check: deps
	@$(MAKE) --no-print-directory BUILD=build/asan SAN=1 test

test: $(BIN) $(UNIT_BIN) $(FUZZ_BIN) $(TOOLS) $(DOCS)
	@BUILD=$(BUILD) DGMIGRATE=$(abspath $(BIN)) bash tests/run-all.sh

test-unit: $(UNIT_BIN) $(FUZZ_BIN)
	@BUILD=$(BUILD) bash tests/run-all.sh unit

test-integration: $(BIN) $(TOOLS) $(DOCS)
	@BUILD=$(BUILD) DGMIGRATE=$(abspath $(BIN)) bash tests/run-all.sh integration

demo: deps
	@$(MAKE) --no-print-directory all
	@bash tests/integration/demo.sh

bench: deps
	@$(MAKE) --no-print-directory all
	@bash bench/run.sh

clean:
	rm -rf build dgmigrate .demo
