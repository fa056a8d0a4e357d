# Thin targets; the work is in ./kx (see README.md).
PY := /usr/bin/python3
KX := $(PY) ./kx
JOBS ?= 2

.PHONY: demo check bench unit setup series clean

demo:
	$(KX) demo

# Everything the tests need (host packages, pinned sources, userland, the
# series kernel for every config, its server variant, its debug variant on
# the config the next matrix sample uses (4k-48 or 64k-48, by the seed's
# parity), the base kernel for its UEFI cell). Other variants the sample
# needs (a KUnit build on another config) are built when their cell runs.
setup:
	$(KX) deps
	$(KX) setup --kernel series --config all
	$(KX) build --kernel series --config 4k-48 --variant server
	$(KX) build --kernel series --config "$$($(KX) matrix --debug-config)" --variant debug
	$(KX) build --kernel base --config 4k-48
	$(KX) build --kernel upstream --config 4k-48

# Workbench unit tests, the review gates on patches/, the scenario matrix
# in QEMU (two guests at a time), then the quick side-by-side bench.
check: setup
	$(PY) -m pytest -q --ignore=tests/test_scenarios.py --ignore=tests/test_bench.py tests
	$(KX) series check
	$(PY) -m pytest -n $(JOBS) --durations=10 tests/test_scenarios.py
	$(PY) -m pytest -q tests/test_bench.py

# The full side-by-side measurement (about 40 minutes): build/report/.
bench:
	$(KX) deps
	$(KX) bench

# The cover letter from the latest results, then build/series.mbox for
# git send-email (DRAFT=1 writes it while statements are unconfirmed).
series:
	$(KX) cover
	$(KX) series mbox $(if $(DRAFT),--draft)

unit:
	$(PY) -m pytest -q --ignore=tests/test_scenarios.py --ignore=tests/test_bench.py tests

clean:
	rm -rf build
