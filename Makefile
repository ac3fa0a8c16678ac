# pop3d — see README.md. Go flags are GO_LDFLAGS, not LDFLAGS, because
# dpkg-buildpackage exports LDFLAGS for C code.
GO          ?= go
PREFIX      ?= /usr
SBINDIR     ?= $(PREFIX)/sbin
MANDIR      ?= $(PREFIX)/share/man
SYSCONFDIR  ?= /etc
DESTDIR     ?=
VERSION     ?= $(shell cat VERSION)
GO_LDFLAGS  ?= -s -w -X main.version=$(VERSION)
GO_BUILDFLAGS ?= -trimpath
export GOTOOLCHAIN := local

RUN_DIR     ?= $(CURDIR)/run
RUN_PORT    ?= 1110

.PHONY: all build run test test-go test-deps test-install lint bench bench-quick install deb clean

all: build

build:
	CGO_ENABLED=0 $(GO) build $(GO_BUILDFLAGS) -ldflags '$(GO_LDFLAGS)' -o bin/pop3d ./cmd/pop3d

# A demo mailbox and user demo/demo under ./run, pop3d in the foreground.
run: build
	@scripts/demo-setup "$(RUN_DIR)"
	@echo
	@echo "pop3d on 127.0.0.1:$(RUN_PORT), user demo, password demo. Try:"
	@echo "  curl pop3://demo:demo@127.0.0.1:$(RUN_PORT)/      (list)"
	@echo "  curl pop3://demo:demo@127.0.0.1:$(RUN_PORT)/1     (read message 1)"
	@echo "Ctrl-C stops it."
	@echo
	exec bin/pop3d -config /dev/null -passwd-file "$(RUN_DIR)/passwd" \
		-maildir "$(RUN_DIR)/mail/%n" -listen 127.0.0.1:$(RUN_PORT) \
		-auth-failure-delay 1s

# Every test: Go unit, fuzz seeds, race detector, real clients, the .deb in a
# booted systemd. Installs what it needs when root (see scripts/test-deps).
test: test-deps lint test-go test-install

test-deps:
	@scripts/test-deps

test-go:
	CGO_ENABLED=1 $(GO) test -race -count=1 -timeout 25m ./...

test-install:
	@contrib/debian/install-test

lint:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go')); \
	 if [ -n "$$unformatted" ]; then echo "gofmt needed: $$unformatted"; exit 1; fi
	$(GO) vet ./...
	PATH="$$PATH:$$($(GO) env GOPATH)/bin" staticcheck ./...

bench: build
	$(GO) run ./bench -pop3d bin/pop3d

bench-quick: build
	BENCH_QUICK=1 $(GO) run ./bench -pop3d bin/pop3d

install: build
	install -D -m 0755 bin/pop3d $(DESTDIR)$(SBINDIR)/pop3d
	install -D -m 0644 man/pop3d.8 $(DESTDIR)$(MANDIR)/man8/pop3d.8
	install -D -m 0644 man/pop3d.conf.5 $(DESTDIR)$(MANDIR)/man5/pop3d.conf.5
	install -D -m 0644 man/pop3d.cluster.7 $(DESTDIR)$(MANDIR)/man7/pop3d.cluster.7

deb:
	@contrib/debian/build-deb

clean:
	rm -rf bin run dist
