# deployctl — see README.md. `make demo` and `make test` are the two commands a fresh machine needs.
SWIFT ?= swift

PREFIX ?= /usr/local
SYSTEMD_DIR ?= /etc/systemd/system

.PHONY: all setup build release startup-order demo demo-release demo-replicas test test-postgres test-traffic test-notify test-dashboard lint install install-agent generate refresh-model check-generated graph check-layering bench bench-extract bench-local bench-fleet bench-replicas bench-server bench-fleet-remote bench-remote-agents bench-attacks bench-traffic bench-notify bench-dashboard man clean

all: build

setup:
	./Scripts/setup.sh

build: setup
	$(SWIFT) build

# The shipped binary: the Swift runtime and Foundation linked in (--static-swift-stdlib), so it starts faster and
# smaller (BENCHMARKS.md); libsqlite3 stays dynamic and libarchive is opened when first needed. Every function in a
# section of its own, so that the link can place the start-up code together (Scripts/startup-order.txt).
# libstdc++ (the Swift runtime's C++ library) is linked in too: the release link searches .build/static-libstdc++
# first (Package.swift), where only the static archive is, so -lstdc++ finds that and not the shared library.
# Concrete generic types (a Dictionary of Yams nodes, an OptionGroup) are made by calling their metadata accessor rather
# than by demangling their name at first use (-disable-concrete-type-metadata-mangled-name-accessors): demangling checks
# each generic requirement at run time, and on Linux each first check scans every conformance record of the binary
# (13,600). A trivial `deployctl local` made five such scans fewer, 0.4 ms of 8.7 (BENCHMARKS.md); the binary is 0.4 MB larger.
RELEASE_FLAGS = -c release --static-swift-stdlib -Xswiftc -Xfrontend -Xswiftc -function-sections -Xcc -ffunction-sections \
	-Xswiftc -Xfrontend -Xswiftc -disable-concrete-type-metadata-mangled-name-accessors
STATIC_LIBSTDCXX = .build/static-libstdc++
release: setup
	@mkdir -p $(STATIC_LIBSTDCXX); archive="$$(clang -print-file-name=libstdc++.a)"; \
	  if [ -f "$$archive" ]; then ln -sf "$$archive" $(STATIC_LIBSTDCXX)/libstdc++.a; \
	  else rm -f $(STATIC_LIBSTDCXX)/libstdc++.a; echo "release: no libstdc++.a (libstdc++-12-dev), so libstdc++ stays a shared library"; fi
	$(SWIFT) build $(RELEASE_FLAGS)

demo: build
	./Scripts/demo.sh

# Failover: PostgreSQL, two replicas behind HAProxy, three agents, kill -9 of the replica serving them mid-deployment,
# and the deployment finishing through the other (README.md, "Running several servers").
demo-replicas: build
	./Scripts/demo-replicas.sh

# The same demo with the shipped (release, static) binary.
demo-release: release
	DEPLOYCTL=.build/release/deployctl ./Scripts/demo.sh

test: setup lint check-generated check-layering
	$(SWIFT) build --build-tests
	$(SWIFT) test
	python3 -m pytest -q Tests/shape-check
	python3 -m pytest -q Tests/server
	python3 -m pytest -q Tests/traffic
	python3 -m pytest -q Tests/notify
	python3 -m pytest -q Tests/dashboard
	python3 -m pytest -q Tests/postgres

# Issue 26's tests alone: the store contract and control-plane tests on a real PostgreSQL cluster each test process
# starts (initdb into a temporary directory, a Unix socket only), then replicas of deployctl server on one database.
test-postgres: setup
	$(SWIFT) build --build-tests
	DEPLOYCTL_TEST_STORES=postgres $(SWIFT) test --skip-build --filter 'ControlPlaneTests|DeployStoreTests'
	python3 -m pytest -q Tests/postgres

# The dashboard's browser tests alone: headless Chromium (Debian's chromium and chromium-driver, Selenium) against a
# real server and agent; screenshots of each page go to docs/dashboard/.
test-dashboard: setup
	$(SWIFT) build
	python3 -m pytest -q Tests/dashboard

# Issue 25's end-to-end tests alone: a real HAProxy in front of three agents, under load (installs haproxy if missing).
test-traffic: setup
	$(SWIFT) build
	python3 -m pytest -q Tests/traffic

# Issue 24's end-to-end tests alone: the event stream, manual alarms, and Prometheus and HTTP alarms against a real
# Prometheus (installs prometheus if missing).
test-notify: setup
	$(SWIFT) build
	python3 -m pytest -q Tests/notify Tests/server/test_events.py Tests/server/test_alarms.py

lint:
	$(SWIFT) format lint --strict --recursive Sources Tests

# Regenerate the API shapes, service protocol and commands from the committed CodeDeploy model (Scripts/model/).
generate:
	python3 Scripts/generate-model.py

# Copy the installed botocore's CodeDeploy model over the committed one, then regenerate.
refresh-model:
	python3 Scripts/generate-model.py --refresh
	python3 Scripts/generate-model.py

check-generated:
	python3 Scripts/generate-model.py --check

# The module graph (ARCHITECTURE.md): `make graph` prints it, check-layering fails when a rule is broken
# (e.g. ControlPlane reaching GRDB).
graph:
	python3 Scripts/module-graph.py

check-layering:
	python3 Scripts/module-graph.py --check

bench: release
	python3 bench/control_plane.py

bench-fleet: release
	python3 bench/fleet.py

# 1,000 simulated AWS agents 1.8.1 (command protocol, SigV4, TLS, PKCS7 specs) against one server, then 10,000 idle
# (BENCHMARKS.md). The PKCS7 envelope's certificates are read with python3-cryptography.
bench-fleet-remote: release
	python3 -c 'import cryptography' 2>/dev/null || apt-get install -y -qq python3-cryptography
	python3 bench/fleet_remote.py

# Issue 26: reads, writes and a 1,000-agent deployment on SQLite, on PostgreSQL with one replica, and with two
# replicas behind HAProxy (TCP), in one run (BENCHMARKS.md, "Several servers on PostgreSQL").
bench-replicas: release
	python3 -c 'import cryptography' 2>/dev/null || apt-get install -y -qq python3-cryptography
	command -v wrk >/dev/null || apt-get install -y -qq wrk
	python3 bench/replicas.py

# Three real `deployctl agent run --config` processes against a server over HTTPS (BENCHMARKS.md).
bench-remote-agents: release
	python3 bench/remote_agents.py

# deployctl server under issue 22's attacks: memory after a flood of invented targets, API latency during two large
# multipart completions, a request's latency with 2,000 idle connections open (BENCHMARKS.md).
bench-attacks: release
	command -v wrk >/dev/null || apt-get install -y -qq wrk
	python3 bench/attacks.py

# deployctl server under load from wrk on loopback (BENCHMARKS.md).
# Releases behind a real HAProxy under load (issue 25): requests lost with and without traffic control, and the time
# from AllowTraffic's start to the first request the new version serves.
bench-traffic: release
	python3 bench/traffic.py

# Triggers (issue 24): create-deployment with and without triggers, and delivery throughput to local receivers.
bench-notify: release
	python3 bench/notify.py

# The dashboard (issue 27): server render time and store reads of its pages over 10,000 deployments and 500 instances.
bench-dashboard: release
	python3 bench/dashboard.py

bench-server: release
	command -v wrk >/dev/null || apt-get install -y -qq wrk
	python3 bench/server.py

# The functions common commands run while starting, which the release link keeps together (Package.swift).
startup-order: release
	command -v valgrind >/dev/null || apt-get install -y -qq valgrind
	python3 Scripts/startup-order.py

bench-local: release
	command -v bsdtar >/dev/null || apt-get install -y -qq libarchive-tools
	test -x /usr/bin/time || apt-get install -y -qq time
	python3 bench/local.py

bench-extract: release
	command -v bsdtar >/dev/null || apt-get install -y -qq libarchive-tools
	python3 bench/extract.py

# A man page per subcommand and bash/zsh/fish completions, made from the built binary's own description of its
# flags (so they cannot drift), into .build/share.
man: build
	rm -rf .build/share/man && python3 Scripts/generate-man.py .build/debug/deployctl .build/share/man/man1

install: release
	install -D -m 0755 .build/release/deployctl $(DESTDIR)$(PREFIX)/bin/deployctl
	rm -rf .build/share && python3 Scripts/generate-man.py .build/release/deployctl .build/share/man/man1
	install -d -m 0755 $(DESTDIR)$(PREFIX)/share/man/man1
	install -m 0644 .build/share/man/man1/*.1 $(DESTDIR)$(PREFIX)/share/man/man1/
	install -d -m 0755 $(DESTDIR)$(PREFIX)/share/bash-completion/completions $(DESTDIR)$(PREFIX)/share/zsh/site-functions \
		$(DESTDIR)$(PREFIX)/share/fish/vendor_completions.d
	.build/release/deployctl --generate-completion-script bash > $(DESTDIR)$(PREFIX)/share/bash-completion/completions/deployctl
	.build/release/deployctl --generate-completion-script zsh > $(DESTDIR)$(PREFIX)/share/zsh/site-functions/_deployctl
	.build/release/deployctl --generate-completion-script fish > $(DESTDIR)$(PREFIX)/share/fish/vendor_completions.d/deployctl.fish

# The agent as a systemd service per instance: then `systemctl enable --now deployctl-agent@<instance-name>`.
install-agent: install
	install -D -m 0644 packaging/deployctl-agent@.service $(DESTDIR)$(SYSTEMD_DIR)/deployctl-agent@.service
	install -d -m 0755 $(DESTDIR)/etc/deployctl
	@if [ -z "$(DESTDIR)" ] && command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then systemctl daemon-reload; fi
	@echo "installed; start an agent with: systemctl enable --now deployctl-agent@<instance-name>"

clean:
	rm -rf .build
