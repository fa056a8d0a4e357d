# Thin targets; the work is in ./kx (see README.md).
PY := /usr/bin/python3
KX := $(PY) ./kx
JOBS ?= 2

.PHONY: demo check bench unit setup series clean

demo:
	$(KX) demo

# Everything the tests need: host packages, pinned sources, userland, and
# exactly the kernels that the next matrix sample and the fixed cells boot
# (./kx matrix --kernels: the series on 4k-48 and 64k-48, the base, and the
# v6.12 series and base on 4k-48 always, one of the two debug kernels, one
# of 4k-39, 16k-47, 64k-52, the server variant and the v6.12 series on
# 16k-47 and 64k-48 in turn, every second seed one KUnit variant), each
# printing its build time and what ccache gave. The upstream peer is make
# bench's: only the bench measures it.
SETUP := $(KX) setup --sample
setup:
	$(SETUP)

UNIT := $(PY) -m pytest -q --ignore=tests/test_scenarios.py --ignore=tests/test_bench.py tests
# The scenario tests, two guests at a time. loadgroup: tests/conftest.py
# deals the slowest cells to the workers as groups, evenly, and the rest go
# one at a time to whichever worker is free (xdist's default, load, hands out
# runs of consecutive tests, and once gave one worker every slow cell).
SCENARIO_TESTS := $(PY) -m pytest -n $(JOBS) --dist loadgroup --durations=10 tests/test_scenarios.py
# The quick side-by-side bench, on the base and the series: make check
# builds both anyway, and the bench's checks of the series (its load
# overhead does not grow with RAM and is the base's; with crashkernel= its
# linear map keeps blocks where the base has pages) need no other kernel.
# Upstream 6.1 is measurement only, a 7.5 min build from cold: its figures,
# and the check that its overhead grows with RAM (which shows the
# measurement can see growth), are make bench's.
QUICK_BENCH := $(PY) -m pytest -q tests/test_bench.py

# Each stage of make check runs through stage(), which writes its start,
# its end and its exit status to $(STAGES); the seed goes first. ./kx summary
# reads them and ends the run with one table, also when a stage failed
# (make check stops at the first stage that fails and exits with its status).
CHECK_DIR := build/check
STAGES := $(CHECK_DIR)/stages
STAGE = stage() { name=$$1; shift; echo "== make check: $$name: $$*"; \
	echo "$$name start $$(date +%s)" >> $(STAGES); "$$@"; rc=$$?; \
	echo "$$name end $$(date +%s) $$rc" >> $(STAGES); return $$rc; }

# Workbench unit tests, the review gates on patches/, the scenario matrix
# in QEMU, then the quick side-by-side bench; the summary last.
check:
	@rm -rf $(CHECK_DIR) && mkdir -p $(CHECK_DIR)
	@echo "seed $$($(KX) matrix --peek-seed)" > $(STAGES)
	@$(STAGE); \
	stage setup $(SETUP) && \
	stage unit $(UNIT) && \
	stage series $(KX) series check && \
	stage scenarios $(SCENARIO_TESTS) && \
	stage bench $(QUICK_BENCH); \
	rc=$$?; $(KX) summary; exit $$rc

# The full side-by-side measurement: build/report/. Both series, v5.10's
# base, upstream 6.1, and v6.12, on 4k-48; it builds what make check has not
# (upstream 6.1). ./kx bench --ptdump adds the linear map of every config.
bench:
	$(KX) deps
	$(KX) bench

# The cover letter from the latest results, then build/series.mbox for
# git send-email (DRAFT=1 writes it while statements are unconfirmed).
series:
	$(KX) cover
	$(KX) series mbox $(if $(DRAFT),--draft)

unit:
	$(UNIT)

clean:
	rm -rf build
