# sbdisk — see README.md.  `make demo` and `make check` install what is missing.
PREFIX  ?= /usr/local
VERSION := 0.1.0

PKGS    := libcurl jansson libarchive blkid ext2fs com_err libcrypto libzstd zlib
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)

# ISA-L's igzip inflates gzip layers ~2.5x faster than zlib; zlib is the fallback.
ifeq ($(shell pkg-config --exists libisal 2>/dev/null && echo yes),yes)
PKG_CFLAGS += -DSBD_HAVE_ISAL
PKG_LIBS   += -lisal
endif

CFLAGS  ?= -O2 -g
CFLAGS  += -std=gnu11 -Wall -Wextra -Werror -Wjump-misses-init -D_GNU_SOURCE -D_FILE_OFFSET_BITS=64 \
           -DSBD_VERSION='"$(VERSION)"' -I. $(PKG_CFLAGS)
LDLIBS  += $(PKG_LIBS) -lpthread

ifeq ($(SANITIZE),1)
BUILD   := build-san
CFLAGS  += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
LDFLAGS += -fsanitize=address,undefined
else ifeq ($(SANITIZE),thread)
BUILD   := build-tsan
CFLAGS  += -fsanitize=thread -fno-omit-frame-pointer
LDFLAGS += -fsanitize=thread
else
BUILD   := build
endif

LIB_SRC  := $(wildcard lib/*.c)
DISK_SRC := $(wildcard disk/*.c)
CLI_SRC  := $(wildcard cli/*.c)
UNIT_SRC := $(wildcard tests/unit/test_*.c)
TOOL_SRC := $(wildcard tests/tools/*.c)
SUITES   := $(patsubst tests/unit/test_%.c,%,$(UNIT_SRC))

LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/%.o)
DISK_OBJ := $(DISK_SRC:%.c=$(BUILD)/%.o)
CLI_OBJ  := $(CLI_SRC:%.c=$(BUILD)/%.o)
UNIT_OBJ := $(UNIT_SRC:%.c=$(BUILD)/%.o) $(BUILD)/tests/unit/main.o
TOOLS    := $(TOOL_SRC:tests/tools/%.c=$(BUILD)/tests/tools/%)

SBDISK   := $(BUILD)/sbdisk
UNIT     := $(BUILD)/tests/unit/unit

.PHONY: all deps check unit integration demo clean install bench valgrind
all: $(SBDISK) $(TOOLS)

deps:
	@scripts/install-deps.sh

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/libsbd.a: $(LIB_OBJ)
	$(AR) rcs $@ $^
$(BUILD)/libsbddisk.a: $(DISK_OBJ)
	$(AR) rcs $@ $^

$(SBDISK): $(CLI_OBJ) $(BUILD)/libsbddisk.a $(BUILD)/libsbd.a
	$(CC) $(LDFLAGS) -o $@ $(CLI_OBJ) $(BUILD)/libsbddisk.a $(BUILD)/libsbd.a $(LDLIBS)

# The unit runner learns its suites from the file names: tests/unit/test_X.c
# defines `Suite *X_suite(void)`.
$(BUILD)/tests/unit/suites.h: $(UNIT_SRC) Makefile
	@mkdir -p $(dir $@)
	@printf '%s\n' $(foreach s,$(SUITES),'SUITE($(s))') > $@.tmp && mv $@.tmp $@
$(BUILD)/tests/unit/main.o: tests/unit/main.c $(BUILD)/tests/unit/suites.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -I$(BUILD)/tests/unit $(shell pkg-config --cflags check) -c $< -o $@
$(UNIT): $(UNIT_OBJ) $(BUILD)/libsbddisk.a $(BUILD)/libsbd.a
	$(CC) $(LDFLAGS) -o $@ $(UNIT_OBJ) $(BUILD)/libsbddisk.a $(BUILD)/libsbd.a $(LDLIBS) $(shell pkg-config --libs check)

$(BUILD)/tests/tools/%: tests/tools/%.c $(BUILD)/libsbddisk.a $(BUILD)/libsbd.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(BUILD)/libsbddisk.a $(BUILD)/libsbd.a $(LDLIBS)

unit: $(UNIT)
	$(UNIT)

integration: $(SBDISK) $(TOOLS)
	@SBDISK=$(abspath $(SBDISK)) TOOLS=$(abspath $(BUILD)/tests/tools) SBD_SANITIZE=$(SANITIZE) \
	  tests/integration/run.sh $(TESTS)

# The integration tests with sbdisk under valgrind's memcheck.  The default
# set leaves out what only measures time or reads whole 10 GiB disks
# (interrupt, output, scale, faults): under valgrind those take hours.
VALGRIND_TESTS ?= build cli inspect pull registry refuse reference auth conformance
valgrind: $(SBDISK) $(TOOLS)
	@command -v valgrind >/dev/null || { echo "valgrind is not installed (apt-get install valgrind)"; exit 1; }
	@SBDISK=$(abspath scripts/valgrind-sbdisk) SBDISK_REAL=$(abspath $(SBDISK)) \
	  TOOLS=$(abspath $(BUILD)/tests/tools) SBD_SANITIZE=valgrind \
	  tests/integration/run.sh $(or $(TESTS),$(VALGRIND_TESTS))

check: deps
	@$(MAKE) --no-print-directory all $(UNIT)
	@$(MAKE) --no-print-directory unit
	@$(MAKE) --no-print-directory integration

demo: deps
	@$(MAKE) --no-print-directory all
	@SBDISK=$(abspath $(SBDISK)) scripts/demo.sh

# `make bench BENCH_ARGS="--only big --skip-official"`: see BENCH.md.
bench: deps
	@$(MAKE) --no-print-directory all
	@SBDISK=$(abspath $(SBDISK)) scripts/bench.sh $(BENCH_ARGS)

install: $(SBDISK)
	install -D -m 0755 $(SBDISK) $(DESTDIR)$(PREFIX)/bin/sbdisk
	install -D -m 0644 man/sbdisk.1 $(DESTDIR)$(PREFIX)/share/man/man1/sbdisk.1

clean:
	rm -rf build build-san build-tsan

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
