# livegrid: the two commands a fresh Debian 12 machine needs are `make run`
# and `make test`; both install what they need first (deploy/setup.sh).

GO ?= go
TEST_TIMEOUT ?= 30m

.PHONY: setup build build-static run transcode-demo test bench clean

setup:
	@bash deploy/setup.sh

build: setup
	$(GO) build -o bin/livegrid ./cmd/livegrid

# A static binary for the coordinator and edge roles (no libav: it cannot transcode).
build-static:
	CGO_ENABLED=0 $(GO) build -o bin/livegrid-static ./cmd/livegrid

run: setup
	@bash deploy/demo.sh

transcode-demo: setup
	@bash deploy/transcode-demo.sh

test: setup
	$(GO) vet ./...
	CGO_ENABLED=0 $(GO) build ./internal/... ./profiles/... ./coordinator/... ./edge/... ./bench/
	CGO_ENABLED=0 $(GO) build -o /dev/null ./cmd/livegrid
	$(GO) test -timeout $(TEST_TIMEOUT) -count=1 ./...

bench: setup
	$(GO) test ./worker/transcode -run '^$$' -bench LadderVsFFmpeg -benchtime 3x

clean:
	rm -rf bin data/demo
