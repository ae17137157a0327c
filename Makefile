# tsmpiexec: `make demo` runs a bundled job; `make test` runs every test. Both install what they need.
SHELL := /bin/bash
NODE ?= node
BUILD := build
TSMPIEXEC := $(NODE) bin/tsmpiexec.js

.PHONY: all deps system-deps build test unit demo demo-mpi bench bench-scale bench-scale-quick lint man clean install uninstall

all: build

# The lock file lists every platform's optional packages (e.g. all of @rollup/rollup-*), so `npm install` on any
# platform leaves it as it is: `git status` stays clean after `make build` in a fresh clone.
node_modules/.package-lock.json: package.json package-lock.json
	npm install --no-audit --no-fund

deps: node_modules/.package-lock.json

# System packages the tests use (MPICH, sshd, Slurm's libpmi2, ...): installed with apt when missing.
system-deps:
	bash scripts/system-deps.sh

# tsc type-checks and emits dist/ (the generators use it); esbuild then bundles the launcher into one CommonJS
# file, dist/bundle/main.cjs, and scripts/code-cache.mjs writes the V8 code cache bin/load-bundle.js loads it
# with: one file and no compilation keep start-up short (ESM modules cannot use a code cache on Node 20).
dist/main.js: node_modules/.package-lock.json $(shell find src -name '*.ts' 2>/dev/null) tsconfig.json bin/load-bundle.js scripts/code-cache.mjs | dist/native/tsmpiexec-helper
	npx tsc -p tsconfig.json
	rm -rf dist/bundle
	npx esbuild src/main.ts --bundle --platform=node --format=cjs --target=node20 --outfile=dist/bundle/main.cjs \
	  --packages=external --log-level=warning --define:import.meta.url=__tsmpiexec_import_meta_url \
	  '--banner:js=const __tsmpiexec_import_meta_url = require("node:url").pathToFileURL(__filename).href;'
	$(NODE) scripts/code-cache.mjs
	@touch dist/main.js

# The optional native helper (native/helper.c, see src/isolate/native.ts): isolation in one exec instead of
# three to six, and ranks started in batches. Static where the C library allows (no dynamic loader: ~0.1 ms less
# per exec). Without a C compiler the build goes on without it, and isolation uses sh/nsenter as before.
CC ?= cc
dist/native/tsmpiexec-helper: native/helper.c scripts/build-native.sh
	@CC=$(CC) sh scripts/build-native.sh helper

# The optional PMI client library (native/libpmi.c, docs/pmi-library.md): the PMI-1 and PMI-2 C APIs over our
# wire protocol, for MPIs that load a PMI library instead of speaking the wire (Open MPI 4's flux component).
# Without a C compiler the build goes on without it; Open MPI jobs of several ranks then say so and stop.
# scripts/build-native.sh holds both compile commands (the npm `install` script runs it too).
dist/native/libtsmpiexec-pmi.so: native/libpmi.c native/tsmpiexec-pmi.h scripts/build-native.sh
	@CC=$(CC) sh scripts/build-native.sh pmi

# The optional PMIx server (native/pmix-server.c, docs/pmix.md): one per host and job, for Open MPI programs,
# linked with libpmix (pkg-config pmix; Debian's libpmix-dev). Without libpmix the build goes on without it and
# Open MPI jobs take the PMI-1 route. `make build TSMPIEXEC_NO_PMIX=1` builds as if libpmix were missing.
dist/native/tsmpiexec-pmix-server: native/pmix-server.c scripts/build-native.sh
	@CC=$(CC) sh scripts/build-native.sh pmix
ifeq ($(TSMPIEXEC_NO_PMIX),1)
export TSMPIEXEC_NO_PMIX
.PHONY: dist/native/tsmpiexec-pmix-server
endif

build: dist/native/tsmpiexec-helper dist/native/libtsmpiexec-pmi.so dist/native/tsmpiexec-pmix-server dist/main.js

# Regenerate the files derived from the option table (a unit test fails when they drift).
man: build
	$(NODE) dist/cli/gen-man.js > man/tsmpiexec.1
	$(NODE) dist/cli/gen-completion.js bash > completions/tsmpiexec.bash
	$(NODE) dist/cli/gen-completion.js zsh > completions/_tsmpiexec

lint: build
	npx tsc -p tsconfig.json --noEmit

test: system-deps build
	$(NODE) scripts/run-tests.mjs

unit: build
	$(NODE) scripts/run-tests.mjs test/unit

demo: build
	$(TSMPIEXEC) -n 4 -l $(NODE) examples/pmi-hello.mjs

demo-mpi: build
	@command -v mpicc.mpich >/dev/null || { echo "demo-mpi needs MPICH: run 'make system-deps' (or apt-get install mpich libmpich-dev)"; exit 1; }
	@mkdir -p $(BUILD)
	mpicc.mpich -O2 -o $(BUILD)/hello examples/hello.c
	$(TSMPIEXEC) -n 4 $(BUILD)/hello

bench: system-deps build
	$(NODE) bench/run.mjs

# The scale model (bench/README.md): the real controller and proxies against 16-4096 simulated hosts, tree and
# flat; minutes, and up to ~10 GiB of memory at 4096 hosts. The quick one takes seconds.
bench-scale: build
	$(NODE) bench/scale-model.mjs

bench-scale-quick: build
	$(NODE) bench/scale-model.mjs --quick

# `make install PREFIX=/usr/local DESTDIR=...` (GNU conventions): the npm package, with its runtime dependencies,
# goes to $(libdir)/tsmpiexec, and bin/tsmpiexec is a relative symlink to its launcher (Node follows it, so the
# launcher finds its files, and remote proxies are started by that same installed path). The package comes from
# `npm pack` of this build, its dependencies from the npm cache where it has them. `make uninstall` removes
# exactly these files and the lib/tsmpiexec directory.
PREFIX ?= /usr/local
prefix ?= $(PREFIX)
exec_prefix ?= $(prefix)
bindir ?= $(exec_prefix)/bin
libdir ?= $(exec_prefix)/lib
datarootdir ?= $(prefix)/share
mandir ?= $(datarootdir)/man
bashcompdir ?= $(datarootdir)/bash-completion/completions
zshcompdir ?= $(datarootdir)/zsh/site-functions
INSTALL ?= install

install: build
	@set -e; stage=$$(mktemp -d); trap 'rm -rf "$$stage"' EXIT; \
	npm pack --ignore-scripts --silent --pack-destination "$$stage" >/dev/null; \
	npm install --prefix "$$stage/root" --omit=dev --ignore-scripts --prefer-offline --no-audit --no-fund --no-save \
	  --loglevel=error "$$stage"/tsmpiexec-*.tgz >/dev/null; \
	pkg="$$stage/root/node_modules/tsmpiexec"; mkdir -p "$$pkg/node_modules"; \
	for d in "$$stage/root/node_modules"/* "$$stage/root/node_modules"/@*; do \
	  case "$$(basename "$$d")" in tsmpiexec|'@*'|'*') ;; *) [ -e "$$d" ] && mv "$$d" "$$pkg/node_modules/" ;; esac; \
	done; \
	rm -rf "$(DESTDIR)$(libdir)/tsmpiexec"; $(INSTALL) -d "$(DESTDIR)$(libdir)"; \
	cp -R "$$pkg" "$(DESTDIR)$(libdir)/tsmpiexec"; \
	$(INSTALL) -d "$(DESTDIR)$(bindir)" "$(DESTDIR)$(mandir)/man1" "$(DESTDIR)$(bashcompdir)" "$(DESTDIR)$(zshcompdir)"; \
	ln -sfn "$$(realpath -m --relative-to="$(bindir)" "$(libdir)/tsmpiexec/bin/tsmpiexec.js")" "$(DESTDIR)$(bindir)/tsmpiexec"; \
	$(INSTALL) -m 644 man/tsmpiexec.1 "$(DESTDIR)$(mandir)/man1/tsmpiexec.1"; \
	$(INSTALL) -m 644 completions/tsmpiexec.bash "$(DESTDIR)$(bashcompdir)/tsmpiexec"; \
	$(INSTALL) -m 644 completions/_tsmpiexec "$(DESTDIR)$(zshcompdir)/_tsmpiexec"
	@echo "tsmpiexec: installed in $(DESTDIR)$(prefix) (command: $(bindir)/tsmpiexec)"

uninstall:
	rm -f "$(DESTDIR)$(bindir)/tsmpiexec" "$(DESTDIR)$(mandir)/man1/tsmpiexec.1" \
	  "$(DESTDIR)$(bashcompdir)/tsmpiexec" "$(DESTDIR)$(zshcompdir)/_tsmpiexec"
	rm -rf "$(DESTDIR)$(libdir)/tsmpiexec"

clean:
	rm -rf dist $(BUILD) .vitest-results.json
