# usrsp: one Makefile for the go.work monorepo. Every target loops over the
# modules listed in go.work, so a new module needs only `go work use`.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

GO      ?= go
MODULES := $(shell $(GO) list -m -f '{{.Dir}}' 2>/dev/null)
BIN     := $(CURDIR)/bin
# -race needs cgo; the count=1 keeps integration results honest.
TESTFLAGS ?= -race -count=1 -timeout 15m

# The real VPP 25.10 the real-VPP tests run against. ../shared/vpp when it is
# there (CI); a VPP from FD.io's packages with
#   USRSP_VPP_BIN=/usr/bin/vpp USRSP_VPP_PLUGIN_PATH=/usr/lib/x86_64-linux-gnu/vpp_plugins
# Under CI a VPP that is there must be used: its tests fail instead of skipping.
VPP_DIR ?= $(abspath $(CURDIR)/../shared/vpp)
ifneq ($(wildcard $(VPP_DIR)/bin/vpp),)
USRSP_VPP_BIN         ?= $(VPP_DIR)/bin/vpp
USRSP_VPP_PLUGIN_PATH ?= $(VPP_DIR)/lib/x86_64-linux-gnu/vpp_plugins
ifeq ($(CI),true)
USRSP_VPP_REQUIRED    ?= 1
endif
endif
export USRSP_VPP_BIN USRSP_VPP_PLUGIN_PATH USRSP_VPP_REQUIRED

.PHONY: help
help: ## list targets
	@grep -hE '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

.PHONY: build
build: ## build every module and the binaries into bin/
	@for m in $(MODULES); do echo "== build $${m#$(CURDIR)/}"; (cd $$m && $(GO) build ./...); done
	@mkdir -p $(BIN)
	@# Static, trimmed binaries: the CNI binary starts ~12% faster without
	@# the dynamic loader (cnibench latency --vs), and the pod needs no libc.
	@for c in services/cni-entry/cmd/userspace services/cni-entry/cmd/install-cni services/ovs-adapter/cmd/ovs-adapter \
	          services/vpp-adapter/cmd/vpp-adapter services/pod-consumer/cmd/pod-consumer tools/cmd/cnibench; do \
	  echo "   $(BIN)/$$(basename $$c)"; CGO_ENABLED=0 $(GO) build -trimpath -o $(BIN)/$$(basename $$c) ./$$c; done

.PHONY: deps
deps: ## install OVS-DPDK, DPDK, testpmd and hugepages (as root; skipped otherwise)
	@if [ "$$(id -u)" = 0 ]; then deploy/scripts/install-deps.sh; \
	else echo "deps: not root: tests that need OVS-DPDK, testpmd or netns will skip"; fi

.PHONY: test
test: deps ## unit and integration tests of every module (README's test command)
	@for m in $(MODULES); do echo "== test $${m#$(CURDIR)/}"; (cd $$m && $(GO) test $(TESTFLAGS) ./...); done

.PHONY: e2e
e2e: deps test-images ## the image smoke test, then end-to-end on a private OVS-DPDK: libcni -> cni-entry -> NATS -> ovs-adapter -> testpmd/pod-consumer (root)
	cd tools && $(GO) test -tags e2e -race -count=1 -v -timeout 20m ./e2e/

.PHONY: e2e-overlay
e2e-overlay: deps ## only the overlay e2e tests (issue 13): VXLAN between vswitches in netns "nodes", peers over NATS (root)
	cd tools && $(GO) test -tags e2e -race -count=1 -v -timeout 20m -run '^TestOverlay' ./e2e/

# Images (issue 14): one per component, FROM scratch, static binaries only,
# built with podman and --pull=never (no registry), tagged
# localhost/usrsp/<component>:<module version>. See deploy/images/README.md.
.PHONY: images
images: ## build the five images (cni-installer, ovs-adapter, vpp-adapter, pod-consumer, nats-server) with podman
	@GO=$(GO) deploy/images/build.sh

.PHONY: test-images
test-images: ## make images, then run each with podman (--version, --help; the installer for real); root, else skips (fails under CI)
	@if [ "$$(id -u)" != 0 ] || ! command -v podman >/dev/null; then \
	  if [ "$${CI:-}" = true ]; then echo "test-images: CI must run as root with podman (make deps)"; exit 1; fi; \
	  echo "test-images: skipped: needs root and podman (make deps installs podman)"; exit 0; fi; \
	$(MAKE) --no-print-directory images; \
	cd tools && $(GO) test -tags images -race -count=1 -v -timeout 5m ./images/

.PHONY: demo
demo: deps ## README's first command: OVS-DPDK + NATS + adapter, two pods, traffic and events, then teardown (root)
	$(GO) run ./tools/cmd/usrsp-demo

.PHONY: bench
bench: deps build ## benchmarks (root): cnibench latency/burst/scale/recover on OVS-DPDK and VPP + Go benchmarks -> bench/results/; never CI
	$(GO) run ./tools/cmd/usrsp-bench --out bench/results

.PHONY: lint
lint: ## gofmt and go vet on every module
	@out=$$(gofmt -l $(MODULES)); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	@for m in $(MODULES); do echo "== vet $${m#$(CURDIR)/}"; (cd $$m && $(GO) vet ./...); done

.PHONY: tidy
tidy: ## go mod tidy in every module
	@for m in $(MODULES); do echo "== tidy $${m#$(CURDIR)/}"; (cd $$m && GOWORK=off $(GO) mod tidy); done

.PHONY: fuzz
fuzz: ## run every fuzz target for FUZZTIME each (default 20s)
	@for m in $(MODULES); do (cd $$m && for p in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$p | grep '^Fuzz' || true); do \
	    echo "== fuzz $$p $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $${FUZZTIME:-20s} $$p; done; done); done

.PHONY: test-vpp
test-vpp: ## real-VPP suite: skips unless USRSP_VPP_BIN names a vpp 25.10 binary
	$(MAKE) -C services/vpp-adapter test-vpp
