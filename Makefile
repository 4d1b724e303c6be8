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

# sbdisk links libarchive statically when its archive is installed
# (libarchive-dev ships it): only the tar reader comes along, not the shared
# library's ten dependencies (libxml2, ICU, liblzma...), which a cold start
# spends ~30 ms loading.  The tests and tools, which write archives too (and
# would need those libraries' -dev packages to link it so), keep the shared
# one.  ARCHIVE_STATIC=no links the shared one everywhere.
ARCHIVE_A := $(shell pkg-config --variable=libdir libarchive 2>/dev/null)/libarchive.a
ARCHIVE_STATIC ?= $(if $(wildcard $(ARCHIVE_A)),yes,no)
SBDISK_LDLIBS = $(if $(filter yes,$(ARCHIVE_STATIC)),$(patsubst -larchive,$(ARCHIVE_A),$(LDLIBS)),$(LDLIBS))
# That libarchive calls mbrtowc for every byte of every file's name:
# disk/mbrtowc_ascii.c answers ASCII in UTF-8 itself and hands the rest to
# glibc's.  --wrap redirects the calls of statically linked code only; the
# unit tests link it too, to test it.  --undefined pulls it from the archive
# before libarchive.a asks for it.
WRAP_LDFLAGS := -Wl,--wrap=mbrtowc -Wl,--undefined=__wrap_mbrtowc

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
else ifeq ($(SANITIZE),fuzz)
# libFuzzer's coverage hooks in every object; only the fuzz_* binaries link
# its main().  clang does not know gcc's -Wjump-misses-init.
BUILD   := build-fuzz
CC      := clang
CFLAGS  += -Wno-unknown-warning-option -fsanitize=fuzzer-no-link,address,undefined \
           -fno-omit-frame-pointer -fno-sanitize-recover=undefined
LDFLAGS += -fsanitize=address,undefined
else
BUILD   := build
endif

LIB_SRC  := $(wildcard lib/*.c)
DISK_SRC := $(wildcard disk/*.c)
CLI_SRC  := $(wildcard cli/*.c)
UNIT_SRC := $(wildcard tests/unit/test_*.c)
TOOL_SRC := $(wildcard tests/tools/*.c)
SUITES   := $(patsubst tests/unit/test_%.c,%,$(UNIT_SRC))
FUZZ_TARGETS := ref manifest www_authenticate layer

LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/%.o)
DISK_OBJ := $(DISK_SRC:%.c=$(BUILD)/%.o)
CLI_OBJ  := $(CLI_SRC:%.c=$(BUILD)/%.o)
UNIT_OBJ := $(UNIT_SRC:%.c=$(BUILD)/%.o) $(BUILD)/tests/unit/main.o
TOOLS    := $(TOOL_SRC:tests/tools/%.c=$(BUILD)/tests/tools/%)
REPLAYS  := $(FUZZ_TARGETS:%=$(BUILD)/fuzz/replay_%)
FUZZERS  := $(FUZZ_TARGETS:%=$(BUILD)/fuzz/fuzz_%)

SBDISK   := $(BUILD)/sbdisk
UNIT     := $(BUILD)/tests/unit/unit

.PHONY: all deps check unit integration demo clean install bench valgrind fuzz fuzzers
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
	$(CC) $(LDFLAGS) $(WRAP_LDFLAGS) -o $@ $(CLI_OBJ) $(BUILD)/libsbddisk.a $(BUILD)/libsbd.a $(SBDISK_LDLIBS)

# The unit runner learns its suites from the file names: tests/unit/test_X.c
# defines `Suite *X_suite(void)`.
$(BUILD)/tests/unit/suites.h: $(UNIT_SRC) Makefile
	@mkdir -p $(dir $@)
	@printf '%s\n' $(foreach s,$(SUITES),'SUITE($(s))') > $@.tmp && mv $@.tmp $@
$(BUILD)/tests/unit/main.o: tests/unit/main.c $(BUILD)/tests/unit/suites.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -I$(BUILD)/tests/unit $(shell pkg-config --cflags check) -c $< -o $@
$(UNIT): $(UNIT_OBJ) $(BUILD)/libsbddisk.a $(BUILD)/libsbd.a
	$(CC) $(LDFLAGS) $(WRAP_LDFLAGS) -o $@ $(UNIT_OBJ) $(BUILD)/libsbddisk.a $(BUILD)/libsbd.a $(LDLIBS) $(shell pkg-config --libs check)

$(BUILD)/tests/tools/%: tests/tools/%.c $(BUILD)/libsbddisk.a $(BUILD)/libsbd.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(BUILD)/libsbddisk.a $(BUILD)/libsbd.a $(LDLIBS)

# fuzz/: each target is linked twice, with libFuzzer (SANITIZE=fuzz, `make
# fuzz`) and with a plain main() that replays files (`make check`).
$(BUILD)/fuzz/replay_%: $(BUILD)/fuzz/fuzz_%.o $(BUILD)/fuzz/replay.o $(BUILD)/fuzz/fuzz_cstr.o \
                        $(BUILD)/libsbddisk.a $(BUILD)/libsbd.a
	$(CC) $(LDFLAGS) -o $@ $(filter %.o %.a,$^) $(LDLIBS)
$(BUILD)/fuzz/fuzz_%: $(BUILD)/fuzz/fuzz_%.o $(BUILD)/fuzz/fuzz_cstr.o $(BUILD)/libsbddisk.a $(BUILD)/libsbd.a
	$(CC) $(LDFLAGS) -fsanitize=fuzzer -o $@ $(filter %.o %.a,$^) $(LDLIBS)
.PRECIOUS: $(BUILD)/%.o

fuzzers: $(FUZZERS)

# `make fuzz FUZZ_SECONDS=600`: every target for FUZZ_SECONDS (the layer target
# for FUZZ_LAYER_SECONDS) from fuzz/corpus; see fuzz/README.md.
FUZZ_SECONDS ?= 60
FUZZ_LAYER_SECONDS ?= 120
fuzz:
	@scripts/fuzz-deps.sh
	@$(MAKE) --no-print-directory SANITIZE=fuzz fuzzers
	@FUZZ_SECONDS=$(FUZZ_SECONDS) FUZZ_LAYER_SECONDS=$(FUZZ_LAYER_SECONDS) \
	  scripts/fuzz.sh $(FUZZ_TARGETS)

unit: $(UNIT)
	$(UNIT)

integration: $(SBDISK) $(TOOLS) $(REPLAYS)
	@SBDISK=$(abspath $(SBDISK)) TOOLS=$(abspath $(BUILD)/tests/tools) SBD_SANITIZE=$(SANITIZE) \
	  FUZZ_REPLAY=$(abspath $(BUILD)/fuzz) tests/integration/run.sh $(TESTS)

# The integration tests with sbdisk under valgrind's memcheck.  The default
# set leaves out the suites that read or hash whole 10 GiB disks (output,
# examples: --json's raw sha256, --gce-tar) or write a million files (scale,
# hostile's 700,000): under valgrind those take hours.  faults takes about
# 1 minute, interrupt 40 s.
VALGRIND_TESTS ?= build cli inspect pull registry refuse reference auth conformance faults interrupt
valgrind: $(SBDISK) $(TOOLS)
	@command -v valgrind >/dev/null || { echo "valgrind is not installed (apt-get install valgrind)"; exit 1; }
	@SBDISK=$(abspath scripts/valgrind-sbdisk) SBDISK_REAL=$(abspath $(SBDISK)) \
	  TOOLS=$(abspath $(BUILD)/tests/tools) SBD_SANITIZE=valgrind \
	  tests/integration/run.sh $(or $(TESTS),$(VALGRIND_TESTS))

check: deps
	@$(MAKE) --no-print-directory all $(UNIT) $(REPLAYS)
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
	rm -rf build build-san build-tsan build-fuzz

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
