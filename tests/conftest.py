import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import os  # noqa: E402

from kxbench import matrix  # noqa: E402


def collects_scenarios(config):
    """Whether this run may collect tests/test_scenarios.py."""
    tests = Path(__file__).resolve().parent
    if any("test_scenarios" in str(p) for p in config.getoption("ignore") or []):
        return False
    for arg in config.args or ["."]:
        path = Path(arg.split("::")[0]).resolve()
        if path in (tests, tests.parent) or path.name == "test_scenarios.py":
            return True
    return False


def pytest_configure(config):
    """Pick the kexec matrix sample once per run of the scenario tests, in
    the controlling process, so that every xdist worker inherits it."""
    if hasattr(config, "workerinput") or not collects_scenarios(config):
        return
    if not os.environ.get("KX_MATRIX_SEED"):
        os.environ["KX_MATRIX_SEED"] = str(matrix.next_seed())


def pytest_report_header(config):
    seed = os.environ.get("KX_MATRIX_SEED")
    if seed:
        cells = matrix.sample(int(seed))
        return (f"kx matrix: seed {seed}, sampling {len(cells)} of {len(matrix.cells())} "
                f"cells (KX_MATRIX_SEED={seed} reproduces this sample)")
    return None


def slow_rank(cell):
    """How long a cell takes, roughly: debug kernels, the selftests and
    512 MiB payloads take 5 to 11 min, chains and 256 MiB payloads 2 to 3,
    the rest about one."""
    if cell.variant == "debug" or cell.scenario == "selftests" or cell.payload_mib >= 512:
        return 2
    return 1 if cell.scenario == "kexec-chain" or cell.payload_mib >= 256 else 0


def pytest_collection_modifyitems(config, items):
    """The slowest cells first (a stable sort), so that xdist's two workers,
    which are handed tests in this order, do not end with one of them alone
    on a ten-minute cell."""
    def rank(item):
        cell = getattr(item, "callspec", None) and item.callspec.params.get("cell")
        return slow_rank(cell) if isinstance(cell, matrix.Cell) else 0
    items.sort(key=rank, reverse=True)
