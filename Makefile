# Thin wrapper: `make run` and `make test` are all the set-up there is (README.md).
# build/       optimised binary (build/mitral), used by `make run` and bench/
# build-asan/  ASan + UBSan build that `make test` runs every test against
JOBS ?= $(shell nproc)
CONF ?= conf/mitral.yaml

.PHONY: all deps build build-asan run test bench bench-find clean

all: build

deps:
	@scripts/install-deps

build: deps
	@cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DMT_TESTS=OFF >/dev/null
	@cmake --build build -j $(JOBS)

build-asan: deps
	@cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DMT_ASAN=ON -DMT_UBSAN=ON >/dev/null
	@cmake --build build-asan -j $(JOBS)

run: build
	build/mitral serve -c $(CONF)

test: build-asan
	@cd build-asan && ctest --output-on-failure -j 2 --timeout 300

bench: build
	@scripts/install-deps --bench
	bench/ingest

# C-FIND latency at 100k / 1M instances, and against Orthanc on 50k (bench/find.py --help)
bench-find: build
	@scripts/install-deps --bench
	bench/find.py --mitral build/mitral

clean:
	rm -rf build build-asan
