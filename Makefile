# Entry points for users and CI. `make test` is what CI runs.

SHELL := /bin/bash
CARGO ?= cargo
RUNS ?= 10
SOCKSPEC := target/release/sockspec
# Python packages the tests use, installed here by `make test`.
PYDEPS := target/pydeps

.PHONY: demo demo-faulty grade-demo install test matrix soak hygiene spin fuzz bench build lint docs clean

build:
	$(CARGO) build --release --quiet -p sockspec

## Run the tcp-upper suite against the bundled Python server.
demo: build
	$(SOCKSPEC) run tcp-upper --server 'python3 fixtures/tcp-upper/server.py {port}'
	@echo
	@echo "The sockspec command is $(SOCKSPEC). To test your own server:"
	@echo "  $(SOCKSPEC) run tcp-upper --server 'python3 your_server.py {port}'"
	@echo "make install puts sockspec on your PATH (in ~/.cargo/bin)."

## Grade the example course (fixtures/course): seven submissions side by side, then print the summary.
GRADES ?= grades
grade-demo: build
	$(SOCKSPEC) grade tcp-upper --submissions fixtures/course/submissions \
		--server 'python3 server.py' \
		--profile fixtures/course/profile.toml --out $(GRADES)
	@echo
	@cat $(GRADES)/summary.md
	@echo
	@echo "Each submission's report is in $(GRADES)/; the scores are in $(GRADES)/summary.csv."

## Put the sockspec command in ~/.cargo/bin.
install:
	$(CARGO) install --locked --path harness/cli

## The same against a server with a fault, to see what a failure looks like.
demo-faulty: build
	-$(SOCKSPEC) run tcp-upper --server 'python3 fixtures/tcp-upper/faulty/server_dies_on_reset.py {port}'

## Unit tests, command-line tests and the verdict matrix.
test: $(PYDEPS)/xmlschema
	$(CARGO) test --workspace

## The XML Schema validator the tests read JUnit reports with (pure Python,
## from PyPI), installed once.
## pyenv's shim may fail after pip succeeds (a shims folder the user
## cannot write): what counts is that the package is there.
$(PYDEPS)/xmlschema:
	python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore \
		--target $(PYDEPS) xmlschema==4.3.2 || test -f $(PYDEPS)/xmlschema/__init__.py

## The verdict matrix alone, RUNS times in a row (default 10); ONLY=a,b keeps the fixtures whose name contains a or b.
ONLY ?=
matrix:
	SOCKSPEC_MATRIX_ONLY=$(ONLY) SOCKSPEC_MATRIX_RUNS=$(RUNS) $(CARGO) test -p sockspec --test matrix -- --nocapture

## Every correct fixture N times under CPU load (default 200); prints how many verdicts differed.
N ?= 200
soak:
	SOCKSPEC_SOAK_RUNS=$(N) $(CARGO) test -p sockspec --test soak -- --nocapture

## Interrupt runs at random moments, ROUNDS of them (default 10); nothing may be left behind.
ROUNDS ?= 10
hygiene:
	SOCKSPEC_HYGIENE_ROUNDS=$(ROUNDS) $(CARGO) test -p sockspec --test hygiene -- --nocapture

## No-spin on a crowded machine, ROUNDS of it (default 10): 16 spinning servers at once must all fail, 16 correct ones all pass.
spin:
	SOCKSPEC_SPIN_ROUNDS=$(ROUNDS) $(CARGO) test -p sockspec --test spin_under_load -- --nocapture

## The decoders of target bytes under CASES generated inputs each (default 20000), timed.
CASES ?= 20000
fuzz:
	$(CARGO) test --release -p sockspec-engine --test decoders --no-run
	time PROPTEST_CASES=$(CASES) $(CARGO) test --release -p sockspec-engine --test decoders

## Suite wall time against the Rust reference server, BENCH_RUNS runs in a row (default 10),
## next to its deliberate waits and its waits for the kernel; then the deliberate waits left per check;
## then a 1 GiB upload against a plain sender.
BENCH_RUNS ?= 10
bench: build
	python3 scripts/bench.py $(SOCKSPEC) $(BENCH_RUNS)
	python3 scripts/bench_upload.py $(SOCKSPEC) 3

## The protocol reference, docs/protocols.md, printed from the suites (a test holds the file to it).
docs: build
	$(SOCKSPEC) spec > docs/protocols.md

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

clean:
	$(CARGO) clean
