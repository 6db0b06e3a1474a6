# confer: `make run` serves a demo, `make test` runs every test, `make soak` runs the kill -9
# soak (minutes; SOAK_KILLS=20 for a short one).
# Both install the Debian packages they need first (apt-get, as root or through sudo).

DEBS := gcc make cmake pkg-config libuv1-dev libmsgpack-dev libsqlite3-dev \
        libsodium-dev libcmocka-dev libjansson-dev libncurses-dev tmux \
        libwebsockets-dev libwebsockets-evlib-uv
# What the tests need besides: curl and python3 for the HTTP tests, chromium (and node with
# npm, when there is no node) for the browser test of the live view (tests/browser).
TEST_DEBS := curl python3 chromium
HTTP ?= 127.0.0.1:7415
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
DEMO_DATA ?= demo-data
LISTEN ?= 127.0.0.1:7414

.PHONY: all deps test-deps build build-test run test soak format clean

all: build

deps:
	@missing=""; \
	for p in $(DEBS); do \
	    dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'install ok installed' \
	        || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	    echo "installing:$$missing"; \
	    sudo=""; [ "$$(id -u)" -eq 0 ] || sudo=sudo; \
	    export DEBIAN_FRONTEND=noninteractive; \
	    $$sudo apt-get install -y --no-install-recommends $$missing >/dev/null 2>&1 \
	        || { $$sudo apt-get update -q && $$sudo apt-get install -y --no-install-recommends $$missing; }; \
	fi

# The browser test's packages: Debian's chromium, node and npm when missing, and
# playwright-core from tests/browser/package-lock.json.
test-deps: deps
	@missing=""; \
	for p in $(TEST_DEBS); do \
	    dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'install ok installed' \
	        || missing="$$missing $$p"; \
	done; \
	command -v node >/dev/null || missing="$$missing nodejs"; \
	command -v npm >/dev/null || missing="$$missing npm"; \
	if [ -n "$$missing" ]; then \
	    echo "installing:$$missing"; \
	    sudo=""; [ "$$(id -u)" -eq 0 ] || sudo=sudo; \
	    export DEBIAN_FRONTEND=noninteractive; \
	    $$sudo apt-get install -y --no-install-recommends $$missing >/dev/null 2>&1 \
	        || { $$sudo apt-get update -q && $$sudo apt-get install -y --no-install-recommends $$missing; }; \
	fi
	@if [ ! -d tests/browser/node_modules/playwright-core ] || \
	    [ tests/browser/package-lock.json -nt tests/browser/node_modules/.package-lock.json ]; then \
	    cd tests/browser && npm ci --no-audit --no-fund; \
	fi

build: deps
	cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	cmake --build build -j $(JOBS)

build-test: deps
	cmake -S . -B build-test -DCMAKE_BUILD_TYPE=Debug -DCONFER_SANITIZE=ON -DCONFER_WERROR=ON >/dev/null
	cmake --build build-test -j $(JOBS)

run: build
	build/bin/conferd demo --data $(DEMO_DATA) --listen $(LISTEN) --http $(HTTP) \
	    --sample tests/data/rg-iem-report-2023-06.txt

test: build-test test-deps
	cd build-test && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	    ctest --output-on-failure -j $(JOBS)

# Writers with cids against a conferd killed with SIGKILL every 0.3-2 s: nothing acknowledged
# may be lost or doubled. On the optimised build, so that the kills land under real load.
SOAK_KILLS ?= 300
soak: build
	CONFERD=$(CURDIR)/build/bin/conferd SOAK_KILLS=$(SOAK_KILLS) build/bin/confer-soak

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf build build-test
