# Thin targets; the work is in ./kx (see README.md).
PY := /usr/bin/python3
KX := $(PY) ./kx
JOBS ?= 2

.PHONY: demo check unit setup clean

demo:
	$(KX) demo

# Everything the tests need (host packages, pinned sources, userland, the
# series kernel for every config, the base kernel for its UEFI cell), then
# the tests: workbench units first, then the scenario matrix.
setup:
	$(KX) deps
	$(KX) setup --kernel series --config all
	$(KX) build --kernel base --config 4k-48

check: setup
	$(PY) -m pytest -q tests/test_verdicts.py tests/test_workbench.py
	$(PY) -m pytest -n $(JOBS) --durations=10 tests/test_scenarios.py

unit:
	$(PY) -m pytest -q tests/test_verdicts.py tests/test_workbench.py

clean:
	rm -rf build
