# deployctl — see README.md. `make demo` and `make test` are the two commands a fresh machine needs.
SWIFT ?= swift

.PHONY: all setup build release demo test lint generate check-generated bench bench-extract bench-local clean

all: build

setup:
	./Scripts/setup.sh

build: setup
	$(SWIFT) build

release: setup
	$(SWIFT) build -c release

demo: build
	./Scripts/demo.sh

test: setup lint
	$(SWIFT) build --build-tests
	$(SWIFT) test
	python3 -m pytest -q Tests/shape-check

lint:
	$(SWIFT) format lint --strict --recursive Sources Tests

# Regenerate the API shapes and commands from botocore's CodeDeploy model.
generate:
	python3 Scripts/generate-model.py

check-generated:
	python3 Scripts/generate-model.py --check

bench: release
	python3 bench/control_plane.py

bench-local: release
	command -v bsdtar >/dev/null || apt-get install -y -qq libarchive-tools
	python3 bench/local.py

bench-extract: release
	command -v bsdtar >/dev/null || apt-get install -y -qq libarchive-tools
	python3 bench/extract.py

clean:
	rm -rf .build
