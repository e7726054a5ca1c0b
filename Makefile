# resman: one place for every build and test step. The README documents two commands:
#   make run    build everything and run the example on its embedded defaults
#   make test   the whole test suite (what CI runs)
#
# Everything builds in the release profile: the bundled RocksDB takes ~12 minutes to compile
# on two cores, so it is compiled once, for tests, clippy, the C tests and benchmarks alike.
# Set CARGO_TARGET_DIR to keep that build outside the checkout (CI does).

CARGO ?= cargo
CC ?= gcc
export CARGO_TARGET_DIR ?= $(CURDIR)/target
LIB_DIR := $(CARGO_TARGET_DIR)/release
C_FLAGS := -std=c11 -Wall -Wextra -Werror -Iinclude
C_LIBS := $(LIB_DIR)/libresman.a -lstdc++ -lm -ldl -lpthread

.PHONY: deps deps-test build install run test header-check install-test lint rust-test loom c-test noalloc durability go-test cpp-test example-test bench

## What the build needs from the system (libclang for RocksDB's bindgen, g++, make; the tests
## also valgrind): installed when root with apt-get, else one line naming them (.ci/deps.sh).
deps:
	@bash .ci/deps.sh build
deps-test:
	@bash .ci/deps.sh test

## Build the shared and static libraries (and regenerate include/resman.h).
build: deps
	$(CARGO) build --release

## Install like a C library: make install PREFIX=/usr/local (DESTDIR for staging). Puts
## libresman.a, libresman.so.VERSION with its SONAME links (libresman.so.MAJOR, libresman.so),
## resman.h, resman.hpp and pkgconfig/resman.pc under PREFIX.
PREFIX ?= /usr/local
LIBDIR ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)
MAJOR := $(firstword $(subst ., ,$(VERSION)))
install: build
	install -d $(DESTDIR)$(LIBDIR)/pkgconfig $(DESTDIR)$(INCLUDEDIR)
	install -m 644 $(LIB_DIR)/libresman.a $(DESTDIR)$(LIBDIR)/libresman.a
	install -m 755 $(LIB_DIR)/libresman.so $(DESTDIR)$(LIBDIR)/libresman.so.$(VERSION)
	ln -sf libresman.so.$(VERSION) $(DESTDIR)$(LIBDIR)/libresman.so.$(MAJOR)
	ln -sf libresman.so.$(MAJOR) $(DESTDIR)$(LIBDIR)/libresman.so
	install -m 644 include/resman.h bindings/cpp/resman.hpp $(DESTDIR)$(INCLUDEDIR)/
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@LIBDIR@|$(LIBDIR)|' -e 's|@INCLUDEDIR@|$(INCLUDEDIR)|' \
		-e 's|@VERSION@|$(VERSION)|' resman.pc.in > $(DESTDIR)$(LIBDIR)/pkgconfig/resman.pc

## make install into a temporary prefix, then a C program built with pkg-config, against the
## shared library (its SONAME checked) and the static one, runs (tests/install.sh).
install-test: build
	bash tests/install.sh

## Build everything and start the example key-value service (go-example/) on its embedded
## default config: http://127.0.0.1:8080, data in ./resman-example-data. Ctrl-C (SIGINT) or
## SIGTERM shuts it down gracefully. Try: curl -X PUT --data admin localhost:8080/kv/alice
run: build
	cd go-example && CGO_LDFLAGS="-L$(LIB_DIR)" go build -o $(CARGO_TARGET_DIR)/go-example .
	$(CARGO_TARGET_DIR)/go-example -data $(CURDIR)/resman-example-data

## The whole suite: header freshness, lint, Rust tests, loom model, C tests under valgrind,
## the allocation check of the read path, the SIGKILL durability test, the Go binding, the
## C++ wrapper, and the example service's smoke test.
test: deps-test build header-check lint rust-test loom c-test noalloc durability go-test cpp-test example-test install-test
	@echo "make test: all checks passed"

## The committed header must be what cbindgen generates from the sources (build.rs rewrote it).
header-check: build
	@if git rev-parse --git-dir >/dev/null 2>&1; then \
		git diff --exit-code -- include/resman.h || { \
			echo "include/resman.h is not what cbindgen generates: commit the regenerated header"; \
			exit 1; }; \
	else echo "header-check: not a git checkout, skipped"; fi

lint:
	$(CARGO) fmt --check
	$(CARGO) clippy --release --all-targets -- -D warnings

rust-test:
	$(CARGO) test --release

## The lease/close protocol under loom (its own crate and target dir: RocksDB is not rebuilt).
loom:
	cd tests/loom && RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR=$(CARGO_TARGET_DIR)/loom \
		$(CARGO) test --release

## C tests against libresman.a, natively and under valgrind (plus the README quick-start).
c-test: build
	bash tests/c/run.sh

## A point read adds no heap allocation to RocksDB's own (malloc interposed; native only).
noalloc: build
	@mkdir -p $(CARGO_TARGET_DIR)/ctests
	$(CC) $(C_FLAGS) -g tests/c/test_noalloc.c $(C_LIBS) -o $(CARGO_TARGET_DIR)/ctests/test_noalloc
	$(CARGO_TARGET_DIR)/ctests/test_noalloc

## Acknowledged writes survive SIGKILL at random moments (RESMAN_DURABILITY_CYCLES for more).
durability: build
	bash tests/c/durability.sh

## The Go binding and its Prometheus collector (own module): gofmt, go vet, and the tests
## under the race detector with cgocheck2.
## libresman.a is linked statically from $(LIB_DIR) (see bindings/go/cgo.go for the link line).
go-test: build
	@test -z "$$(gofmt -l bindings/go)" || { gofmt -l bindings/go; echo "gofmt: files above need formatting"; exit 1; }
	cd bindings/go && CGO_LDFLAGS="-L$(LIB_DIR)" go vet ./...
	cd bindings/go && CGO_LDFLAGS="-L$(LIB_DIR)" GOEXPERIMENT=cgocheck2 go test -race -count=1 ./...
	cd bindings/go/prometheus && CGO_LDFLAGS="-L$(LIB_DIR)" go vet ./...
	cd bindings/go/prometheus && CGO_LDFLAGS="-L$(LIB_DIR)" GOEXPERIMENT=cgocheck2 go test -race -count=1 ./...

## The C++ wrapper (bindings/cpp/resman.hpp): its test, natively and under valgrind.
cpp-test: build
	bash tests/cpp/run.sh

## The example service: vet, then the smoke test (put, get, SIGTERM, restart, get again).
example-test: build
	@test -z "$$(gofmt -l go-example)" || { gofmt -l go-example; echo "gofmt: files above need formatting"; exit 1; }
	cd go-example && CGO_LDFLAGS="-L$(LIB_DIR)" go vet ./...
	cd go-example && CGO_LDFLAGS="-L$(LIB_DIR)" go test -count=1 ./...

## Benchmarks (issue 8): the Rust suite (benches/: criterion against rust-rocksdb on the same
## data, then latency, cleanup, close and scaling), the Go suite (bench/go/run.sh, against
## grocksdb), YCSB A-F (bench/ycsb/run.sh: resman, grocksdb and Pebble through go-ycsb), then
## bench/report.py writes BENCHMARKS.md and bench/charts/ from their JSON
## ($(BENCH_DIR)/rust.json, go.json, ycsb.json). matplotlib goes into a venv under $(BENCH_DIR).
## The build runs inside the recipe so the wall time the report states includes it.
BENCH_DIR := $(CARGO_TARGET_DIR)/bench
BENCH_VENV := $(BENCH_DIR)/venv
bench:
	@mkdir -p $(BENCH_DIR) && date +%s > $(BENCH_DIR)/started
	$(CARGO) build --release
	rm -rf $(BENCH_DIR)/rust-parts $(BENCH_DIR)/rust.json $(BENCH_DIR)/go.json $(BENCH_DIR)/ycsb.json
	$(CARGO) bench --bench data_path --bench lifecycle
	@if [ -f bench/go/run.sh ]; then bash bench/go/run.sh; \
	else echo "bench/go/run.sh is missing: Go suite not run"; fi
	bash bench/ycsb/run.sh
	@test -x $(BENCH_VENV)/bin/python || python3 -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/pip install --quiet --disable-pip-version-check -r bench/requirements.txt
	$(BENCH_VENV)/bin/python bench/report.py --bench-dir $(BENCH_DIR) --started "$$(cat $(BENCH_DIR)/started)"
