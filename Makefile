# Revline developer commands. `make test` is what CI runs.
GO ?= go

.PHONY: run build test lint bench fmt

## run: start Revline with embedded NATS on ./revline-data (HTTP on 127.0.0.1:8080)
run:
	$(GO) run ./cmd/revline serve

## build: build the revline binary into ./bin
build:
	$(GO) build -buildvcs=auto -o bin/revline ./cmd/revline

## test: every test, with the race detector; then the processor's heap over
## 200,000 commands for one app (issue 11; too slow under -race)
test:
	$(GO) test -race -count=1 -timeout 20m ./...
	REVLINE_TEST_HEAP_COMMANDS=200000 $(GO) test -count=1 -timeout 10m -run TestProcessorHeapStaysBoundedOverManyCommands ./workers/processor/

## lint: gofmt, go vet and staticcheck
lint:
	@test -z "$$(gofmt -l .)" || { echo "gofmt needed on:"; gofmt -l .; exit 1; }
	$(GO) vet ./...
	$(GO) tool staticcheck ./...

## bench: measure Revline against raw NATS and a bare reverse proxy (see BENCHMARKS.md)
bench:
	$(GO) run ./cmd/revline bench

fmt:
	gofmt -w .

## walkthrough: run the README's walkthrough against a fresh serve and print the transcript
.PHONY: walkthrough
walkthrough:
	bash scripts/walkthrough.sh
