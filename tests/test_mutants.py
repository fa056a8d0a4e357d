"""The mutation check of the judges (kxbench/mutants.py): first on a toy package,
then on the real judges."""
import tempfile
import textwrap
from pathlib import Path

import pytest

from kxbench import mutants

JUDGES = '''\
class Verdict:
    def __init__(self):
        self.passed, self.first = True, None

    def require(self, ok, reason):
        self.passed = self.passed and bool(ok)
        return ok


def judge_size(n):
    v = Verdict()
    v.require(n > 0,
              "empty")
    return v


def judge_items(items):
    v = Verdict()
    if v.require(items, "no items"):
        v.first = items[0]
    return v
'''

# Like tests/conftest.py: puts the real root first on sys.path and imports the
# package, which must not defeat the copy.
CONFTEST = '''\
import sys
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import toy  # noqa: E402,F401
'''

# Only the condition is checked: the statement's mutant must survive.
TEST_TOY = '''\
from toy import judges

def test_items():
    assert judges.judge_items([3]).first == 3
    assert not judges.judge_items([]).passed

def test_size():
    assert judges.judge_size(1).passed
'''


def toy(tmp_path, conftest=CONFTEST, test=TEST_TOY):
    (tmp_path / "toy").mkdir()
    (tmp_path / "toy" / "__init__.py").write_text("")
    (tmp_path / "toy" / "judges.py").write_text(JUDGES)
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "conftest.py").write_text(conftest)
    (tmp_path / "tests" / "test_toy.py").write_text(test)
    return dict(package_dir=tmp_path / "toy", targets="judges.py", root=tmp_path,
                tests=["tests/test_toy.py"])


def test_the_toy_mutants_and_their_kinds(tmp_path):
    args = toy(tmp_path)
    found = mutants.find_mutants(package_dir=args["package_dir"], targets="judges.py")
    assert [(m.path, m.line, m.kind) for m in found] == [
        ("toy/judges.py", 12, "statement"), ("toy/judges.py", 19, "condition")]


def test_a_mutant_keeps_every_other_line_where_it_was(tmp_path):
    args = toy(tmp_path)
    source = (tmp_path / "toy" / "judges.py").read_bytes()
    statement, condition = mutants.find_mutants(package_dir=args["package_dir"],
                                                targets="judges.py")
    lines = statement.apply(source).decode().splitlines()
    assert lines[11:13] == ["    (True", ")"]
    assert condition.apply(source).decode().splitlines()[18] == "    if True:"
    assert len(lines) == len(source.splitlines())


def test_only_the_unchecked_require_survives(tmp_path):
    results = mutants.run(jobs=2, **toy(tmp_path))
    assert [(r.mutant.line, r.mutant.kind, r.survived) for r in results] == [
        (12, "statement", True), (19, "condition", False)]
    assert "AssertionError" in results[1].tail or "IndexError" in results[1].tail
    # The tool never writes into the package it checks.
    assert (tmp_path / "toy" / "judges.py").read_text() == JUDGES


def test_a_red_suite_is_refused(tmp_path):
    args = toy(tmp_path, test=TEST_TOY + "\ndef test_red():\n    assert False\n")
    with pytest.raises(mutants.MutantError, match="unmutated test suite is failed"):
        mutants.run(jobs=1, **args)


def test_tests_that_do_not_import_the_copy_are_refused(tmp_path):
    # This conftest loads the real toy package by file path, whatever sys.path
    # says: a broken copy goes unnoticed, so every mutant would "survive".
    sneaky = textwrap.dedent('''\
        import importlib.util, sys
        from pathlib import Path
        pkg = Path(__file__).resolve().parent.parent / "toy"
        spec = importlib.util.spec_from_file_location(
            "toy", pkg / "__init__.py", submodule_search_locations=[str(pkg)])
        sys.modules["toy"] = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(sys.modules["toy"])
    ''')
    with pytest.raises(mutants.MutantError, match="do not import the copy"):
        mutants.run(jobs=1, **toy(tmp_path, conftest=sneaky))


def test_a_copy_of_kxbench_that_cannot_import_turns_the_real_suite_red():
    # tests/conftest.py puts the repository first on sys.path and imports
    # kxbench: the run must still import the copy, or nothing is checked.
    with tempfile.TemporaryDirectory() as tmp:
        mutants.copy_package(mutants.PACKAGE, tmp)
        (Path(tmp) / "kxbench/scenarios/common.py").write_text("raise RuntimeError('broken')\n")
        status, tail = mutants._pytest(Path(tmp), "kxbench", mutants.default_tests(),
                                       mutants.ROOT, mutants.TIMEOUT)
    assert status == "failed", tail
    assert "broken" in tail


def test_every_require_of_the_judges_is_needed():
    """Each require in kxbench/scenarios/, replaced by True, must turn a unit
    test red. A survivor is a requirement no test shows failing: add the
    negative test (a log where exactly that requirement fails)."""
    survivors = [f"{r.mutant.path}:{r.mutant.line}: {r.mutant.code}"
                 for r in mutants.run(jobs=2) if r.survived]
    assert not survivors, (f"{len(survivors)} require call(s) that no test needs:\n"
                           + "\n".join(survivors))


def test_the_tests_that_name_the_mutated_module_run_first(tmp_path):
    (tmp_path / "tests").mkdir()
    for name, text in [("test_a.py", "import os\n"), ("test_b.py", "from x import kdump\n"),
                       ("test_c.py", "import sys\n")]:
        (tmp_path / "tests" / name).write_text(text)
    m = mutants.Mutant("kxbench/scenarios/kdump.py", 1, 0, 1, 4, "statement", "v.require(x)")
    tests = ["tests/test_a.py", "tests/test_b.py", "tests/test_c.py"]
    assert mutants.naming_first(tests, m, tmp_path) == [
        "tests/test_b.py", "tests/test_a.py", "tests/test_c.py"]
