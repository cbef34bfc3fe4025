# upscope — the two commands of the README quick start:
#   make run    set up (Debian packages, .venv) and open the dashboard on the embedded lab
#   make test   set up and run the whole test suite
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Debian packages the tool and its tests use: tshark (reference decoder, TLS decryption),
# tcpdump (live capture), sip-tester (SIPp peer), kamailio (+TLS) as a real registrar,
# prometheus (server + promtool), prometheus-alertmanager (Alertmanager + amtool: alert routing tests),
# chromium (browser tests), nftables/iproute2 (lab firewall faults),
# gcc + python3-dev (the compiled kernels of the capture analysis, collectors/_kernels.c, and the
# SIP header scanner, core/wire/_sipscan.c).
DEB_PACKAGES := tshark tcpdump sip-tester kamailio kamailio-tls-modules prometheus prometheus-alertmanager chromium \
	nftables iproute2 curl gcc python3-dev
ADDR ?= 127.0.0.1:8501

.PHONY: run test setup system-packages venv lint clean

run: setup
	$(BIN)/upscope dashboard --addr $(ADDR)

# Two passes: the suite on every core (pytest-xdist; a module whose tests share one expensive
# fixture is one xdist_group, so it runs once, on one worker), then the `serial` tests alone:
# they load the machine on purpose and would slow every timing-bound test beside them. Both
# passes always run; the target fails if either failed.
test: setup
	@status=0; \
	$(BIN)/python -m pytest -n auto --dist loadgroup -m "not serial" $(PYTEST_ARGS) || status=$$?; \
	$(BIN)/python -m pytest -m serial $(PYTEST_ARGS) || status=$$?; \
	exit $$status

lint: setup
	$(BIN)/ruff check .
	$(BIN)/mypy core collectors traces dashboard

setup: system-packages venv

system-packages:
	@missing=$$(for p in $(DEB_PACKAGES); do dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing Debian packages: $$missing"; \
	    export DEBIAN_FRONTEND=noninteractive; \
	    apt-get update -q && apt-get install -y -q --no-install-recommends $$missing; \
	  else \
	    echo "upscope needs these Debian packages; as root run:"; \
	    echo "  apt-get install -y --no-install-recommends $$missing"; \
	    exit 1; \
	  fi; \
	fi

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml collectors/_kernels.c core/wire/_sipscan.c
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $@

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
