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
