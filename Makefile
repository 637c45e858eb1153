# znet — see README.md. Every target that needs system packages installs
# them first (Debian, as root).

GO      ?= go
BIN     := bin
PKGS    := ./...
DEBS    := wireguard-tools wireguard-go iputils-ping dnsutils iperf3 nftables iproute2 procps zbar-tools dnsperf nsd prometheus qemu-system-x86 busybox-static xz-utils zstd
GOLANGCI_VERSION := v2.7.2

.PHONY: all build install uninstall deps test memtest unit e2e lint fmt vet demo demo-down bench fuzz clean

all: build

# CGO_ENABLED=0: only net would use cgo (for its resolver); without it every
# data-plane process maps no libc and saves ~1.5 MiB of resident memory.
build:
	CGO_ENABLED=0 $(GO) build -o $(BIN)/ ./cmd/znetd ./cmd/znetd-dataplane ./cmd/znet

# install puts the binaries in $(BINDIR) and the systemd unit in $(UNITDIR)
# (with ZINIT=1 the zinit service file in $(ZINITDIR) instead), under
# $(DESTDIR) if set. It starts nothing: `systemctl daemon-reload && systemctl
# enable --now znetd` does (see docs/operations.md).
PREFIX   ?= /usr/local
BINDIR   ?= $(PREFIX)/bin
UNITDIR  ?= /etc/systemd/system
ZINITDIR ?= /etc/zinit
PROGRAMS := znetd znetd-dataplane znet

install: build
	install -d $(DESTDIR)$(BINDIR)
	install -m 0755 $(addprefix $(BIN)/,$(PROGRAMS)) $(DESTDIR)$(BINDIR)/
ifeq ($(ZINIT),1)
	install -d $(DESTDIR)$(ZINITDIR)
	sed 's|/usr/local/bin/|$(BINDIR)/|g' dist/znetd.yaml > $(DESTDIR)$(ZINITDIR)/znetd.yaml
	chmod 0644 $(DESTDIR)$(ZINITDIR)/znetd.yaml
else
	install -d $(DESTDIR)$(UNITDIR)
	sed 's|/usr/local/bin/|$(BINDIR)/|g' dist/znetd.service > $(DESTDIR)$(UNITDIR)/znetd.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/znetd.service
endif

uninstall:
	rm -f $(addprefix $(DESTDIR)$(BINDIR)/,$(PROGRAMS)) $(DESTDIR)$(UNITDIR)/znetd.service $(DESTDIR)$(ZINITDIR)/znetd.yaml

# deps installs the Debian packages the tests and the demo use.
deps:
	@missing=""; for p in $(DEBS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi
	@# The VM tests boot the machine's own kernel; a machine without one
	@# (a container image) gets Debian's smallest.
	@ls /boot/vmlinuz-* >/dev/null 2>&1 || { \
		echo "installing: linux-image-cloud-amd64 (no kernel in /boot for the VM tests)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq linux-image-cloud-amd64 >/dev/null; \
	}
	$(GO) mod download

# test runs every test: unit tests (race detector on), privileged tests and
# the end-to-end tests, which need root.
test: deps vet
	$(GO) test -race -count=1 -timeout 15m $(PKGS)
	$(MAKE) --no-print-directory memtest
	$(MAKE) --no-print-directory fuzz FUZZTIME=$(FUZZTIME_SHORT)

# memtest runs the tests of a data plane's memory and garbage, which the
# race detector's own allocations would swamp (they skip under -race).
memtest:
	$(GO) test -count=1 -run 'TestIdleDataplaneMemory|TestPolledDataplaneMemory' ./overlay/
	$(GO) test -count=1 -run 'TestHandleUAPIGarbage' ./dataplane/

unit:
	$(GO) test -race -count=1 $$(go list ./... | grep -v /e2e)

e2e: deps
	$(GO) test -count=1 -timeout 15m -v ./e2e/

vet:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt needed"; exit 1; }
	$(GO) vet $(PKGS)

lint: vet
	$(GO) run github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_VERSION) run ./...

# fuzz runs every fuzz target for FUZZTIME (make test runs each briefly).
# make test counts executions instead of seconds: Go 1.26's fuzzing
# coordinator can report a spurious "context deadline exceeded" when a
# duration ends while a starved worker is mid-input (golang/go#75804,
# fixed in Go 1.27); a count has no deadline to race.
FUZZTIME       ?= 60s
FUZZTIME_SHORT ?= 20000x
fuzz:
	@for t in $$(grep -rl 'func Fuzz' --include='*_test.go' . | xargs -n1 dirname | sort -u); do \
		for f in $$(grep -ho 'func Fuzz[A-Za-z0-9_]*' $$t/*_test.go | cut -d' ' -f2); do \
			echo "== fuzz $$t $$f ($(FUZZTIME))"; \
			$(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$t > /tmp/znet-fuzz.log 2>&1 || { cat /tmp/znet-fuzz.log; exit 1; }; \
		done; \
	done

demo: deps build
	./scripts/demo.sh

demo-down: build
	$(BIN)/znet lab down --dir /tmp/znet-lab

# bench measures znet against its goals (issue 6) on a lab it builds and
# removes; BENCH=dataplane|control|churn|deploy|dns|scale|lab100 (comma-separated) runs only those
# parts. It never runs in `make test`.
bench: deps build
	$(GO) build -o $(BIN)/ ./cmd/znet-bench
	$(BIN)/znet-bench --znetd $(BIN)/znetd --markdown $(if $(BENCH),--part $(BENCH))

clean:
	rm -rf $(BIN)
