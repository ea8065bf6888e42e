# aropeer: `make sim` simulates a network with cheaters, `make test` runs the tests.
GO       ?= go
PKGS     ?= ./...
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -X github.com/aropeer/aropeer/node.Version=$(VERSION)
FUZZTIME ?= 30s
BENCHTIME ?= 1s
NODES    ?= 4

.PHONY: build test test-race bench fuzz devnet sim lint tidy-check clean

build:
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/aropeer ./cmd/aropeer

# The README's test command: vet, then every test. Long soak, fuzz and
# benchmark runs live in `fuzz` and `bench`. Packages run one at a time:
# the real-process devnets and the in-memory networks each want the
# machine's cores, and deadlines are part of what they test.
test:
	$(GO) vet $(PKGS)
	$(GO) test -p 1 -count=1 -timeout 15m $(PKGS)

test-race:
	$(GO) test -count=1 -race -timeout 30m $(PKGS)

# Every benchmark, with the figures the issues name reported as metrics.
# Gossip propagation times 600 messages whatever BENCHTIME says: its p99
# is of the 300 of each kind, where a second's worth would give the worst
# of twenty.
bench:
	$(GO) test -run '^$$' -bench . -skip GossipPropagation -benchmem -benchtime $(BENCHTIME) -timeout 60m $(PKGS)
	$(GO) test -run '^$$' -bench GossipPropagation -benchtime 600x -timeout 30m ./node

# Each fuzz target for FUZZTIME.
fuzz:
	@set -e; for pkg in $$($(GO) list $(PKGS)); do \
		for target in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
			echo "== $$pkg $$target"; \
			$(GO) test -run '^$$' -fuzz "^$$target$$" -fuzztime $(FUZZTIME) $$pkg; \
		done; \
	done

devnet: build
	./bin/aropeer devnet --nodes $(NODES) --dir devnet

# The README's main command: a whole network with cheaters in one process
# on the built-in scenario; the report goes to sim-report/.
sim: build
	./bin/aropeer sim --out sim-report

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)

tidy-check:
	$(GO) mod tidy
	git diff --exit-code go.mod go.sum

clean:
	rm -rf bin devnet sim-report
