# otklik: build, test, lint, demo, bench, install.
# `make demo` and `make test` are the quick start; see README.md.

GO       ?= go
BIN      ?= bin/otklik
PREFIX   ?= /usr/local
CONFDIR  ?= /etc/otklik
VERSION  := $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -s -w -X main.version=$(VERSION)
STATICCHECK_VERSION := v0.8.2
GOBIN    := $(shell $(GO) env GOPATH)/bin

.PHONY: all build test test-deps race lint demo bench install clean

all: build

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/otklik

# What the tests need from Debian's packages: openpyxl reads workbooks as
# an independent reader; vsftpd and sshd are the real servers the sources
# are tested against; chromium runs the survey page end to end. As root
# they are installed here; otherwise those
# tests are skipped (outside CI).
TEST_PACKAGES := python3-openpyxl:/usr/lib/python3/dist-packages/openpyxl \
	vsftpd:/usr/sbin/vsftpd openssh-server:/usr/sbin/sshd openssh-client:/usr/bin/sftp curl:/usr/bin/curl \
	chromium:/usr/bin/chromium

test-deps:
	@missing=""; for p in $(TEST_PACKAGES); do \
		[ -e "$${p#*:}" ] || missing="$$missing $${p%%:*}"; \
	done; \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" = 0 ]; then \
			echo "installing$$missing"; \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
		else \
			echo "missing$$missing and not root: the tests that need them will be skipped"; \
		fi; \
	fi

test: test-deps
	$(GO) test -count=1 -timeout 15m ./...

# The same tests under the race detector (the daemon serves answers while
# it loads and sends), which needs cgo and a C compiler: as root Debian's
# gcc is installed here. Several times slower, so not part of `test`.
race: test-deps
	@if ! command -v gcc >/dev/null && [ "$$(id -u)" = 0 ]; then \
		echo "installing gcc (for the race detector)"; \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends gcc libc6-dev >/dev/null; \
	fi
	CGO_ENABLED=1 $(GO) test -race -count=1 -timeout 30m ./...

lint:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go')); \
		if [ -n "$$unformatted" ]; then echo "gofmt needed: $$unformatted"; exit 1; fi
	$(GO) vet ./...
	@test -x $(GOBIN)/staticcheck || $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)
	$(GOBIN)/staticcheck ./...
	@# modernc.org/sqlite must run with exactly the libc it was generated for.
	@want=$$($(GO) mod graph | awk '$$1 ~ /^modernc.org\/sqlite@/ && $$2 ~ /^modernc.org\/libc@/ {sub(/.*@/, "", $$2); print $$2}'); \
		have=$$($(GO) list -m -f '{{.Version}}' modernc.org/libc); \
		if [ "$$want" != "$$have" ]; then echo "modernc.org/libc is $$have but modernc.org/sqlite wants $$want"; exit 1; fi

demo: build
	./$(BIN) demo --dir otklik-demo

# Postfix brings smtp-sink and smtp-source; its own mail daemon is stopped.
# The sqlite3 shell is what ingest is compared with.
bench: test-deps
	@if [ ! -x /usr/sbin/smtp-sink ] && [ "$$(id -u)" = 0 ]; then \
		echo "installing postfix (for smtp-sink and smtp-source)"; \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postfix >/dev/null; \
		postfix stop >/dev/null 2>&1 || true; \
	fi
	@if ! command -v sqlite3 >/dev/null && [ "$$(id -u)" = 0 ]; then \
		echo "installing sqlite3"; \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends sqlite3 >/dev/null; \
	fi
	./bench/run.sh

# Installs the binary, the systemd unit and, if there is none yet, the
# example config; as root it also makes the otklik user and its data
# folder. Then: edit the config, `otklik check`, `systemctl enable --now otklik`.
install: build
	install -D -m 0755 $(BIN) $(DESTDIR)$(PREFIX)/bin/otklik
	install -D -m 0644 cmd/otklik/otklik.service $(DESTDIR)/etc/systemd/system/otklik.service
	@if [ ! -e $(DESTDIR)$(CONFDIR)/otklik.yaml ]; then \
		install -D -m 0640 config.example.yaml $(DESTDIR)$(CONFDIR)/otklik.yaml; \
		echo "edit $(DESTDIR)$(CONFDIR)/otklik.yaml, then: otklik --config $(CONFDIR)/otklik.yaml check"; \
	fi
	@if [ -z "$(DESTDIR)" ] && [ "$$(id -u)" = 0 ]; then \
		id otklik >/dev/null 2>&1 || useradd --system --home-dir /var/lib/otklik --shell /usr/sbin/nologin otklik; \
		install -d -o otklik -g otklik -m 0750 /var/lib/otklik; \
		chgrp otklik $(CONFDIR)/otklik.yaml; \
		systemctl daemon-reload 2>/dev/null || true; \
	fi

clean:
	rm -rf bin otklik-demo
