"""Mutation check of the scenario judges: every `<verdict>.require(...)` must matter.

Each call `x.require(ok, reason)` in kxbench/scenarios/*.py is replaced, one at a
time, by the constant True: for a statement that deletes the requirement, for a
condition it says "the requirement held". If the unit tests still pass, no test
shows that requirement failing: the mutant "survived".

    python3 -m kxbench.mutants [--jobs N] [FILE ...]

Each mutant runs in a temporary copy of the package, never in kxbench/ itself.
"""
import argparse
import ast
import os
import queue
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "kxbench"
TARGETS = "scenarios/*.py"          # relative to the package
TIMEOUT = 120                       # seconds per pytest run; a timeout kills the mutant

# Test files the check does not run: slow, or unrelated to the judges.
SKIPPED_TESTS = ("test_scenarios.py", "test_bench.py", "test_series_gates.py",
                 "test_provenance.py", "test_rangediff.py", "test_cover.py",
                 "test_post.py", "test_workbench.py", "test_mutants.py")


class MutantError(Exception):
    """The check itself cannot be trusted (red suite, tests not seeing the copy)."""


@dataclass(frozen=True)
class Mutant:
    path: str           # relative to the package's parent, e.g. kxbench/scenarios/kdump.py
    line: int
    col: int            # ast offsets: columns are UTF-8 byte offsets
    end_line: int
    end_col: int
    kind: str           # "statement" or "condition"
    code: str           # the first source line of the call, stripped

    def apply(self, source: bytes) -> bytes:
        """SOURCE with this call replaced by True, every other line where it was."""
        lines = source.splitlines(keepends=True)    # the same line breaks as ast
        start = sum(map(len, lines[:self.line - 1])) + self.col
        end = sum(map(len, lines[:self.end_line - 1])) + self.end_col
        # A call over several lines becomes "(True\n...\n)": same line count, and
        # valid wherever the call was (a statement, "if not ...:", an argument).
        span = self.end_line - self.line
        true = b"True" if span == 0 else b"(True" + b"\n" * span + b")"
        mutated = source[:start] + true + source[end:]
        # The text edit must mean exactly "this Call node -> Constant(True)".
        if ast.dump(ast.parse(mutated)) != ast.dump(_replaced(source, self)):
            raise MutantError(f"{self.path}:{self.line}: the text edit is not the AST edit")
        return mutated


class _Replace(ast.NodeTransformer):
    def __init__(self, mutant):
        self.span = (mutant.line, mutant.col, mutant.end_line, mutant.end_col)

    def visit_Call(self, node):
        if (node.lineno, node.col_offset, node.end_lineno, node.end_col_offset) == self.span:
            return ast.Constant(True)
        return self.generic_visit(node)


def _replaced(source, mutant):
    return _Replace(mutant).visit(ast.parse(source))


@dataclass
class Result:
    mutant: Mutant
    survived: bool
    timed_out: bool     # counted as killed
    tail: str           # the end of pytest's output


def _target_files(package_dir, targets, paths):
    """The files to mutate, as paths relative to the package's parent."""
    base = Path(package_dir).resolve().parent
    files = [Path(p).resolve() for p in paths] if paths else \
        sorted(Path(package_dir).resolve().glob(targets))
    outside = [str(f) for f in files if base not in f.parents]
    if outside:
        raise MutantError(f"not in {package_dir}: {', '.join(outside)}")
    return [str(f.relative_to(base)) for f in files if f.name != "__init__.py"]


def _mutants_in(path, source):
    tree = ast.parse(source, filename=path)
    statements = {id(node.value) for node in ast.walk(tree) if isinstance(node, ast.Expr)}
    lines = source.decode().splitlines()
    found = []
    for node in ast.walk(tree):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and node.func.attr == "require"):
            kind = "statement" if id(node) in statements else "condition"
            found.append(Mutant(path, node.lineno, node.col_offset, node.end_lineno,
                                node.end_col_offset, kind, lines[node.lineno - 1].strip()))
    return sorted(found, key=lambda m: (m.line, m.col))


def find_mutants(paths=None, package_dir=PACKAGE, targets=TARGETS):
    """Every require call in the target files (or in PATHS) of PACKAGE_DIR."""
    base = Path(package_dir).resolve().parent
    return [m for rel in _target_files(package_dir, targets, paths)
            for m in _mutants_in(rel, (base / rel).read_bytes())]


def default_tests(root=ROOT):
    return [f"tests/{p.name}" for p in sorted((Path(root) / "tests").glob("test_*.py"))
            if p.name not in SKIPPED_TESTS]


def naming_first(tests, mutant, root):
    """TESTS with the files that name the mutated module first: they are the
    likeliest to kill it, and pytest -x stops at the first failure. A
    survivor still runs every test."""
    module = Path(mutant.path).stem
    return sorted(tests, key=lambda t: module not in (Path(root) / t).read_text())


def _pytest(copy, package, tests, root, timeout):
    """Run TESTS from ROOT so that `import PACKAGE` is the one in the directory COPY.

    PYTHONPATH alone is not enough: `python -m` puts the cwd (ROOT) first on
    sys.path, and tests/conftest.py inserts ROOT and imports kxbench. So -P
    (Python >= 3.11) drops the cwd, and -p PACKAGE imports the copy before any
    conftest runs; its submodules then come from the copy whatever sys.path says.
    No bytecode is written: a mutant of the same size as the previous one,
    written in the same second, would otherwise run from a stale .pyc."""
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1",
               PYTHONPATH=os.pathsep.join(filter(None, [str(copy),
                                                        os.environ.get("PYTHONPATH")])))
    cmd = [sys.executable, "-P", "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider",
           "-p", package, *map(str, tests)]
    try:
        res = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True,
                             timeout=timeout)
    except subprocess.TimeoutExpired as e:
        out = (e.stdout or b"")
        out = out.decode(errors="replace") if isinstance(out, bytes) else out
        return "timeout", _tail(out) + f"\n(timed out after {timeout} s)"
    return ("passed" if res.returncode == 0 else "failed"), _tail(res.stdout + res.stderr)


def _tail(text, n=15):
    return "\n".join(text.rstrip().splitlines()[-n:])


def copy_package(package_dir, copy, source=None):
    """Copy the package (from SOURCE if given) into the directory COPY. The
    package finds configs/, guest/, ... next to itself (util.REPO): link the rest
    of its parent directory into COPY."""
    package_dir = Path(package_dir).resolve()
    shutil.copytree(source or package_dir, Path(copy) / package_dir.name,
                    ignore=shutil.ignore_patterns("__pycache__"))
    for entry in package_dir.parent.iterdir():
        if entry.name != package_dir.name:
            (Path(copy) / entry.name).symlink_to(entry)


def _preflight(copy, package, sources, tests, root, timeout):
    """The check means something only if the unmutated suite is green and a copy
    whose target files cannot even be imported turns it red."""
    status, tail = _pytest(copy, package, tests, root, timeout)
    if status != "passed":
        raise MutantError(f"the unmutated test suite is {status}: a mutation check on a "
                          f"red suite means nothing\n{tail}")
    try:
        for rel, source in sources.items():
            (copy / rel).write_bytes(b"raise RuntimeError('kxbench.mutants: poisoned')\n"
                                     + source)
        status, tail = _pytest(copy, package, tests, root, timeout)
    finally:
        for rel, source in sources.items():
            (copy / rel).write_bytes(source)
    if status == "passed":
        raise MutantError(f"the suite stays green when {', '.join(sources)} cannot be "
                          f"imported: the tests do not import the copy in {copy}, or "
                          f"none of them imports these files")


def run(paths=None, tests=None, jobs=2, package_dir=PACKAGE, targets=TARGETS,
        root=ROOT, timeout=TIMEOUT):
    """Run every mutant of the target files against TESTS (default_tests()).

    Raises MutantError if the check cannot be trusted."""
    package_dir, root = Path(package_dir).resolve(), Path(root).resolve()
    tests = tests if tests is not None else default_tests(root)
    with ExitStack() as stack:
        # One copy per worker. The first is a snapshot of the package taken once,
        # so that files other people edit meanwhile do not shift the mutants.
        copies = [Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="kxmut-")))
                  for _ in range(max(1, jobs))]
        copy_package(package_dir, copies[0])
        for copy in copies[1:]:
            copy_package(package_dir, copy, source=copies[0] / package_dir.name)

        rels = _target_files(package_dir, targets, paths)
        sources = {rel: (copies[0] / rel).read_bytes() for rel in rels}
        mutants = [m for rel in rels for m in _mutants_in(rel, sources[rel])]
        if not mutants:
            return []
        _preflight(copies[0], package_dir.name,
                   {m.path: sources[m.path] for m in mutants}, tests, root, timeout)

        free = queue.Queue()
        for copy in copies:
            free.put(copy)

        def one(mutant):
            copy = free.get()
            target = copy / mutant.path
            try:
                target.write_bytes(mutant.apply(sources[mutant.path]))
                status, tail = _pytest(copy, package_dir.name,
                                       naming_first(tests, mutant, root), root, timeout)
            finally:
                target.write_bytes(sources[mutant.path])
                free.put(copy)
            return Result(mutant, status == "passed", status == "timeout", tail)

        with ThreadPoolExecutor(max_workers=len(copies)) as pool:
            results = list(pool.map(one, mutants))
        # The tests are read live from ROOT: if they went red meanwhile (someone
        # editing them), every kill after that proves nothing.
        status, tail = _pytest(copies[0], package_dir.name, tests, root, timeout)
        if status != "passed":
            raise MutantError(f"the unmutated test suite turned {status} during the check: "
                              f"its kills cannot be trusted\n{tail}")
        return results


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python3 -m kxbench.mutants", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--jobs", type=int, default=2, help="parallel pytest runs (default 2)")
    ap.add_argument("files", nargs="*", metavar="FILE",
                    help=f"files to mutate (default: kxbench/{TARGETS})")
    args = ap.parse_args(argv)
    started = time.monotonic()
    try:
        results = run(args.files or None, jobs=args.jobs)
    except MutantError as e:
        print(f"mutants: {e}", file=sys.stderr)
        return 2
    for r in results:
        m = r.mutant
        if r.survived:
            print(f"{m.path}:{m.line}: require ({m.kind}) survived: {m.code}")
        elif r.timed_out:
            print(f"{m.path}:{m.line}: require ({m.kind}) timed out, counted as killed: "
                  f"{m.code}")
    survivors = sum(r.survived for r in results)
    print(f"{len(results)} mutants, {len(results) - survivors} killed, "
          f"{survivors} survivors")
    print(f"({time.monotonic() - started:.0f} s, {args.jobs} jobs)", file=sys.stderr)
    return 0 if survivors == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
