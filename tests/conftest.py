import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import os  # noqa: E402

import pytest  # noqa: E402

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
        # Collecting only runs nothing: it shows the next sample and leaves it next.
        seed = matrix.peek_seed() if config.option.collectonly else matrix.next_seed()
        os.environ["KX_MATRIX_SEED"] = str(seed)


def pytest_report_header(config):
    seed = os.environ.get("KX_MATRIX_SEED")
    if seed:
        cells, fixed = matrix.seed_cells(int(seed)), matrix.fixed(int(seed))
        kernels = ", ".join(" ".join(filter(None, b)) for b in matrix.kernels(int(seed)))
        return (f"kx matrix: seed {seed}, {len(cells)} cells ({len(fixed)} fixed, the rest "
                f"of {len(matrix.cells())} rotating) on {kernels} "
                f"(KX_MATRIX_SEED={seed} reproduces this sample)")
    return None


# A scenario test that boots guests but is no matrix cell, roughly (minutes).
OTHER_TEST_MINUTES = 1.5


def guest_minutes(item):
    cell = item.callspec.params.get("cell") if hasattr(item, "callspec") else None
    return matrix.minutes(cell) if isinstance(cell, matrix.Cell) else OTHER_TEST_MINUTES


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    """Deal the scenario tests to xdist's workers (make check runs them with
    --dist loadgroup): the slowest cells go in one group per worker, evenly
    (matrix.deal), and first, so that each worker starts on its own; the rest
    follow, longest first, and xdist hands each to whichever worker is free.
    This runs before xdist's own hook, which reads the groups."""
    mine = [i for i, item in enumerate(items) if item.path.name == "test_scenarios.py"]
    if not mine:
        return
    workers = int(getattr(config, "workerinput", {}).get("workercount", 0)
                  or config.getoption("numprocesses", None) or 2)
    costs = [guest_minutes(items[i]) for i in mine]
    groups = matrix.deal(costs, workers)
    for i, group in zip(mine, groups):
        if group is not None:
            items[i].add_marker(pytest.mark.xdist_group(f"slow{group}"))
    order = sorted(range(len(mine)), key=lambda k: (groups[k] is None, -costs[k]))
    reordered = [items[mine[k]] for k in order]
    for i, item in zip(mine, reordered):
        items[i] = item
