# usprelay — build, run, test.
#
#   make deps     install the Debian packages the project needs (idempotent, quiet)
#   make          build the daemon, the library and the tools into $(BUILD)/
#   make run      deps + build + start the relay on loopback with conf/usprelay.conf
#   make check    deps + build + unit, integration, sanitizer and fuzz-smoke tests
#   make fuzz     run every libFuzzer harness for FUZZ_SECONDS each
#   make bench    run the benchmarks in tests/bench/
#   make install  install into $(DESTDIR)$(PREFIX)
#
# Sources are found by wildcard: relay/**.c and bridges/*.c form libusprelay.a
# (relay/usprelayd.c holds main), tests/unit/test_*.c are Check suites, one binary
# each, tests/tools/*.c are helper programs, tests/fuzz/fuzz_*.c libFuzzer harnesses.

PREFIX  ?= /usr/local
DESTDIR ?=
BUILD   ?= build
CC      ?= cc
CLANG   ?= clang
PYTHON  ?= /usr/bin/python3
FUZZ_SECONDS ?= 30
FUZZ_SMOKE_SECONDS ?= 5

# Every Debian package the project uses: build, tests, fuzzing and test peers.
DEB_PACKAGES := gcc make pkg-config libc6-dev \
	libevent-dev libprotobuf-c-dev protobuf-c-compiler libconfig-dev libssl-dev \
	libwebsockets-dev libpaho-mqtt-dev libnats-dev libsystemd-dev check \
	clang libclang-rt-14-dev \
	python3 python3-pytest python3-stomp python3-paho-mqtt python3-websockets \
	mosquitto mosquitto-clients nats-server

PKG_MODULES := libevent libevent_openssl libprotobuf-c libconfig libwebsockets openssl

WARN    := -Wall -Wextra -Werror -Wshadow -Wconversion -Wstrict-prototypes \
           -Wmissing-prototypes -Wno-sign-conversion
CSTD    := -std=c11 -D_GNU_SOURCE
OPT     ?= -O2 -g
SANITIZE ?=
ifeq ($(SANITIZE),1)
SANFLAGS := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
endif

# V=1 shows full compiler command lines.
ifeq ($(V),1)
Q :=
else
Q := @
endif

GEN     := $(BUILD)/gen
CPPFLAGS_ALL = -I. -I$(GEN) $(shell pkg-config --cflags $(PKG_MODULES))
CFLAGS_ALL   = $(CSTD) $(OPT) $(WARN) $(SANFLAGS) -MMD -MP
LIBS_ALL     = $(shell pkg-config --libs $(PKG_MODULES)) -lpthread
CHECK_LIBS   = $(shell pkg-config --libs check)

PROTO_SRC := proto/usp-record.proto
PROTO_C   := $(GEN)/usp-record.pb-c.c
PROTO_H   := $(GEN)/usp-record.pb-c.h

DAEMON_MAIN := relay/usprelayd.c
LIB_SRC   := $(filter-out $(DAEMON_MAIN),$(sort $(wildcard relay/*.c relay/mtp/*.c bridges/*.c)))
LIB_OBJ   := $(LIB_SRC:%.c=$(BUILD)/obj/%.o) $(BUILD)/obj/gen/usp-record.pb-c.o
LIB       := $(BUILD)/libusprelay.a
DAEMON    := $(BUILD)/usprelayd

UNIT_SRC  := $(sort $(wildcard tests/unit/test_*.c))
UNIT_BIN  := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
TOOL_SRC  := $(sort $(wildcard tests/tools/*.c))
TOOL_BIN  := $(TOOL_SRC:tests/tools/%.c=$(BUILD)/%)
BENCH_SRC := $(sort $(wildcard tests/bench/bench_*.c))
BENCH_BIN := $(BENCH_SRC:tests/bench/%.c=$(BUILD)/bench/%)
FUZZ_SRC  := $(sort $(wildcard tests/fuzz/fuzz_*.c))
FUZZ_BIN  := $(FUZZ_SRC:tests/fuzz/%.c=$(BUILD)/fuzz/%)

.PHONY: all deps run check test unit integration asan fuzz fuzz-build fuzz-smoke bench bench-build \
        install clean
.DEFAULT_GOAL := all
# Keep objects of tools, suites and benchmarks (make would delete them as intermediates).
.SECONDARY:

all: $(DAEMON) $(TOOL_BIN)

# ---------------------------------------------------------------- dependencies
deps:
	@missing=""; for p in $(DEB_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'install ok installed' \
	    || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "deps: installing$$missing"; \
	  SUDO=; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing \
	    >$(or $(TMPDIR),/tmp)/usprelay-deps.log 2>&1 \
	    || { cat $(or $(TMPDIR),/tmp)/usprelay-deps.log; exit 1; }; \
	fi

# ---------------------------------------------------------------- build
# One protoc-c run makes both files (grouped target): a second run would rewrite the
# header after objects were built from it and make everything look stale.
$(PROTO_C) $(PROTO_H) &: $(PROTO_SRC)
	@mkdir -p $(GEN)
	protoc-c --proto_path=proto --c_out=$(GEN) $(PROTO_SRC)

# Generated code is not ours to keep -Wconversion clean.
$(BUILD)/obj/gen/usp-record.pb-c.o: $(PROTO_C)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(CSTD) $(OPT) $(SANFLAGS) -Wall -Wextra -Werror $(CPPFLAGS_ALL) -c $< -o $@

$(BUILD)/obj/%.o: %.c | $(PROTO_H)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(CFLAGS_ALL) $(CPPFLAGS_ALL) -c $< -o $@

$(LIB): $(LIB_OBJ)
	@rm -f $@
	$(Q)ar rcs $@ $^

$(DAEMON): $(BUILD)/obj/relay/usprelayd.o $(LIB)
	$(CC) $(SANFLAGS) -o $@ $^ $(LIBS_ALL)

$(BUILD)/%: $(BUILD)/obj/tests/tools/%.o $(LIB)
	$(CC) $(SANFLAGS) -o $@ $^ $(LIBS_ALL)

$(BUILD)/tests/%: $(BUILD)/obj/tests/unit/%.o $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(SANFLAGS) -o $@ $^ $(LIBS_ALL) $(CHECK_LIBS)

$(BUILD)/bench/%: $(BUILD)/obj/tests/bench/%.o $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(SANFLAGS) -o $@ $^ $(LIBS_ALL)

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)

# ---------------------------------------------------------------- run
run: deps
	@$(MAKE) --no-print-directory all
	@mkdir -p $(BUILD)/run
	./$(DAEMON) -c conf/usprelay.conf

# ---------------------------------------------------------------- tests
check: deps
	@$(MAKE) --no-print-directory test

# Everything make check runs, without the deps step.
test: all bench-build unit integration asan fuzz-smoke

unit: $(UNIT_BIN)
	@rc=0; for t in $(UNIT_BIN); do echo "== $$t"; $$t || rc=1; done; exit $$rc

integration: all
	USPRELAY_BUILD=$(abspath $(BUILD)) $(PYTHON) -m pytest -q -p no:cacheprovider tests/integration

# The unit suites and the integration tests again, against an ASan+UBSan build.
asan:
	@$(MAKE) --no-print-directory BUILD=$(BUILD)/asan SANITIZE=1 OPT="-O1 -g" unit integration

# ---------------------------------------------------------------- fuzzing
FUZZ_FLAGS := -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -g -O1
FUZZ_LIB_SRC := $(LIB_SRC) $(PROTO_C)

$(BUILD)/fuzz/%: tests/fuzz/%.c $(FUZZ_LIB_SRC) | $(PROTO_H)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  FUZZ    $@")
	$(Q)$(CLANG) $(CSTD) $(FUZZ_FLAGS) -I. -I$(GEN) $(shell pkg-config --cflags $(PKG_MODULES)) \
	  -o $@ $< $(FUZZ_LIB_SRC) $(LIBS_ALL)

fuzz-build: $(FUZZ_BIN)

# A short run of each harness on its seeds: part of make check.
fuzz-smoke: fuzz-build
	@for f in $(FUZZ_BIN); do n=$$(basename $$f); mkdir -p $(BUILD)/fuzz/corpus/$$n; \
	  echo "== $$n ($(FUZZ_SMOKE_SECONDS)s)"; \
	  $$f -max_total_time=$(FUZZ_SMOKE_SECONDS) -print_final_stats=0 $(BUILD)/fuzz/corpus/$$n \
	    $$( [ -d tests/fuzz/seeds/$$n ] && echo tests/fuzz/seeds/$$n ) >$(BUILD)/fuzz/$$n.log 2>&1 \
	    || { tail -40 $(BUILD)/fuzz/$$n.log; exit 1; }; done

fuzz: deps
	@$(MAKE) --no-print-directory FUZZ_SMOKE_SECONDS=$(FUZZ_SECONDS) fuzz-smoke

# ---------------------------------------------------------------- bench
# Benchmarks print figures; they never pass or fail on time.
bench: deps
	@$(MAKE) --no-print-directory all bench-build
	@for b in $(BENCH_BIN); do echo "== $$b"; $$b || exit 1; done

bench-build: $(BENCH_BIN)

# ---------------------------------------------------------------- install
# The installed configuration keeps its sockets in /run/usp (the unit's RuntimeDirectory)
# instead of the build tree; an existing /etc/usprelay/usprelay.conf is never overwritten.
install: all
	install -d $(DESTDIR)$(PREFIX)/sbin $(DESTDIR)$(PREFIX)/share/man/man8 \
	  $(DESTDIR)$(PREFIX)/share/man/man5 $(DESTDIR)/etc/usprelay \
	  $(DESTDIR)$(PREFIX)/lib/systemd/system
	install -m 0755 $(DAEMON) $(DESTDIR)$(PREFIX)/sbin/usprelayd
	install -m 0644 docs/usprelayd.8 $(DESTDIR)$(PREFIX)/share/man/man8/usprelayd.8
	install -m 0644 docs/usprelay.conf.5 $(DESTDIR)$(PREFIX)/share/man/man5/usprelay.conf.5
	sed 's|/usr/local/sbin/|$(PREFIX)/sbin/|g' systemd/usprelay.service \
	  > $(DESTDIR)$(PREFIX)/lib/systemd/system/usprelay.service
	[ -e $(DESTDIR)/etc/usprelay/usprelay.conf ] || \
	  sed 's|"build/run/|"/run/usp/|g' conf/usprelay.conf > $(DESTDIR)/etc/usprelay/usprelay.conf

clean:
	rm -rf $(BUILD)
