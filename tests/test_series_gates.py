"""The review gates must reject what a reviewer would reject."""
import difflib
import subprocess

import pytest

from kxbench import series, tree
from kxbench.util import KxError

HEADER = """From 0000000000000000000000000000000000000000 Mon Sep 17 00:00:00 2001
From: kexec-mmu developers <kexec-mmu@example.org>
Date: Sat, 27 Jul 2024 00:00:00 +0000
Subject: [PATCH] arm64: mm: note why the Makefile lists its objects

The gates' own test: a one-line change with a commit message.

Signed-off-by: kexec-mmu developers <kexec-mmu@example.org>
---
"""


@pytest.fixture(scope="module")
def linux():
    return tree.ensure_tree()


def patch_adding(linux, tmp_path, line):
    path = "arch/arm64/mm/Makefile"
    old = (linux / path).read_text().splitlines(keepends=True)
    new = old[:1] + [line] + old[1:]
    diff = "".join(difflib.unified_diff(old, new, f"a/{path}", f"b/{path}"))
    out = tmp_path / "0001-test.patch"
    out.write_text(HEADER + f"diff --git a/{path} b/{path}\n" + diff + "-- \n2.39.5\n")
    return out


def test_checkpatch_gate_passes_a_clean_patch(linux, tmp_path):
    errors, warnings, _, text = series.checkpatch(
        patch_adding(linux, tmp_path, "# Objects are listed in link order.\n"))
    assert (errors, warnings) == (0, 0), text


def test_checkpatch_gate_rejects_trailing_whitespace(linux, tmp_path):
    errors, _, _, text = series.checkpatch(
        patch_adding(linux, tmp_path, "# Objects are listed in link order.   \n"))
    assert errors > 0, text


def test_checkpatch_gate_counts_a_new_file_warning_as_the_maintainers_question(linux, tmp_path):
    """A patch that adds a file without touching MAINTAINERS gets one warning
    that the get_maintainer gate answers; any other warning stands."""
    body = "// SPDX-License-Identifier: GPL-2.0\nint kx_new_file;\n"
    path = "tools/testing/selftests/kexec/kx_new.c"
    diff = (f"diff --git a/{path} b/{path}\nnew file mode 100644\nindex 0000000..1111111\n"
            f"--- /dev/null\n+++ b/{path}\n@@ -0,0 +1,2 @@\n"
            + "".join("+" + ln + "\n" for ln in body.splitlines()))
    patch = tmp_path / "0001-new.patch"
    patch.write_text(HEADER + diff + "-- \n2.39.5\n")
    errors, warnings, _, text = series.checkpatch(patch)
    assert (errors, warnings) == (0, 1), text
    assert series.unanswered_warnings(warnings, text) == 0
    assert series.unanswered_warnings(2, text) == 1


def git(cwd, *args, env=None):
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True,
                   env={"PATH": "/usr/bin:/bin", "HOME": str(cwd), **(env or {})})


def test_signoff_gate_rejects_other_authors_and_missing_signoffs(tmp_path):
    git(tmp_path, "init", "-q")
    who = {"GIT_AUTHOR_NAME": "kexec-mmu developers",
           "GIT_AUTHOR_EMAIL": "kexec-mmu@example.org",
           "GIT_COMMITTER_NAME": "x", "GIT_COMMITTER_EMAIL": "x@example.org"}
    sob = "Signed-off-by: kexec-mmu developers <kexec-mmu@example.org>"
    git(tmp_path, "commit", "-q", "--allow-empty", "-m", f"good\n\n{sob}", env=who)
    assert series.signoff_problems("HEAD", cwd=tmp_path) == []
    git(tmp_path, "commit", "-q", "--allow-empty", "-m", "no sign-off", env=who)
    assert series.signoff_problems("HEAD", cwd=tmp_path)
    other = {**who, "GIT_AUTHOR_NAME": "Someone Else", "GIT_AUTHOR_EMAIL": "s@example.org"}
    git(tmp_path, "commit", "-q", "--allow-empty", "-m", f"x\n\n{sob}", env=other)
    assert any("author" in p for p in series.signoff_problems("HEAD", cwd=tmp_path))


def test_rst_gate_reports_docutils_warnings(tmp_path):
    good = tmp_path / "good.rst"
    good.write_text("Title\n=====\n\nText with ``code``.\n")
    assert series.rst_problems(good) == []
    bad = tmp_path / "bad.rst"
    bad.write_text("Title\n===\n\n* item\ncontinued badly\n\n.. nosuchdirective::\n")
    assert series.rst_problems(bad)


def test_rst_gate_knows_sphinx_directives_but_not_made_up_ones(tmp_path):
    """Documentation/arm64/index.rst has a toctree: plain docutils would
    reject it. A made-up directive and a short underline still fail."""
    index = tmp_path / "index.rst"
    index.write_text("Index\n=====\n\n.. toctree::\n    :maxdepth: 1\n\n    kexec-mmu\n\n"
                     ".. only::  subproject and html\n\n   Indices\n")
    assert series.rst_problems(index) == []
    index.write_text(index.read_text() + "\n.. madeup::\n\nA longer title\n=====\n\ntext\n")
    problems = series.rst_problems(index)
    assert any("madeup" in p for p in problems) and len(problems) >= 2, problems


def mail(path, subject, *files, new=()):
    """A format-patch style mail with SUBJECT touching FILES and creating NEW."""
    diffs = "".join(f"diff --git a/{f} b/{f}\n--- a/{f}\n+++ b/{f}\n@@ -1 +1,2 @@\n x\n+y\n"
                    for f in files)
    diffs += "".join(f"diff --git a/{f} b/{f}\nnew file mode 100644\n--- /dev/null\n"
                     f"+++ b/{f}\n@@ -0,0 +1 @@\n+y\n" for f in new)
    path.write_text(HEADER.replace("arm64: mm: note why the Makefile lists its objects",
                                   subject) + diffs + "-- \n2.39.5\n")
    return path


MAINTAINERS = """ARM64 TRANSITIONAL PAGE TABLES (TRANS_PGD)
M:	kexec-mmu developers <kexec-mmu@example.org>
L:	linux-arm-kernel@lists.infradead.org
S:	Maintained
F:	arch/arm64/mm/trans_pgd.c

ARM64 PORT (AARCH64 ARCHITECTURE)
M:	Port Maintainer <port@example.org>
L:	linux-arm-kernel@lists.infradead.org
S:	Maintained
F:	arch/arm64/
"""


def test_maintainer_gate_names_the_patch_that_is_not_covered(tmp_path):
    script = tree.TREE / "scripts" / "get_maintainer.pl"
    if not script.exists():
        pytest.skip("no build/linux: run ./kx tree")
    kernel = tmp_path / "linux"       # what get_maintainer.pl takes for a kernel tree
    for d in ("Documentation", "arch", "include", "drivers", "fs", "init", "ipc", "kernel",
              "lib", "scripts"):
        (kernel / d).mkdir(parents=True)
    for f in ("COPYING", "CREDITS", "Kbuild", "Makefile", "README"):
        (kernel / f).write_text("")
    (kernel / "MAINTAINERS").write_text(MAINTAINERS)
    (kernel / "scripts" / "get_maintainer.pl").write_bytes(script.read_bytes())
    covered = mail(tmp_path / "0001-a.patch", "arm64: a", "arch/arm64/mm/trans_pgd.c",
                   "arch/arm64/Kconfig")
    assert series.maintainer_problem(covered, kernel) is None
    # Existing arm64 files go to ARM64 PORT and its list; the project need not be named.
    port = mail(tmp_path / "0002-b.patch", "arm64: b", "arch/arm64/kernel/machine_kexec.c",
                "arch/arm64/kernel/relocate_kernel.S")
    assert series.maintainer_problem(port, kernel) is None
    # A file the series adds must have maintainers: an existing entry will do.
    added = mail(tmp_path / "0003-c.patch", "arm64: c", "arch/arm64/Kconfig",
                 new=["arch/arm64/mm/new_thing.c"])
    assert series.maintainer_problem(added, kernel) is None
    orphan = mail(tmp_path / "0005-e.patch", "arm64: e", "arch/arm64/Kconfig",
                  new=["arch/arm64/mm/new_thing.c", "tools/new_tool.c"])
    problem = series.maintainer_problem(orphan, kernel)
    assert problem.startswith("0005-e.patch: adds tools/new_tool.c,")
    assert "new_thing" not in problem and series.AUTHOR in problem
    # A patch that reaches nobody (here not even the fallback list).
    lost = mail(tmp_path / "0004-d.patch", "kexec: d", "kernel/kexec_core.c")
    problem = series.maintainer_problem(lost, kernel)
    assert problem.startswith("0004-d.patch: ") and "kernel/kexec_core.c" in problem


def test_cover_gate_rejects_a_stale_cover_letter(tmp_path):
    one, two = (mail(tmp_path / f"000{k}-x.patch", s, "a.c")
                for k, s in ((1, "arm64: one"), (2, "arm64: two")))
    letter = tmp_path / "0000-cover-letter.patch"
    letter.write_text("Subject: [PATCH 0/2] arm64: kexec\n\nBody.\n\n"
                      "kexec-mmu developers (2):\n  arm64: one\n  arm64: two\n\n"
                      " a.c | 2 ++\n")
    assert series.cover_problem([one, two], letter) is None
    three = mail(tmp_path / "0003-x.patch", "arm64: three", "a.c")
    problem = series.cover_problem([one, two, three], letter)
    assert "'arm64: three'" in problem and "run ./kx cover" in problem
    problem = series.cover_problem([one], letter)
    assert "'arm64: two'" in problem and "run ./kx cover" in problem
    assert "order" in series.cover_problem([two, one], letter)
    assert "./kx cover" in series.cover_problem([one], tmp_path / "none.patch")


def test_new_warnings_counts_only_the_patch_s_files_and_what_is_new():
    """The parent's warnings were taken with the next patch's files too; only
    warnings in this patch's files that the parent lacked are new."""
    before = {"a.c": {"a.c: warning: old"}, "b.c": {"b.c: warning: next patch's"}}
    after = {"a.c": {"a.c: warning: old", "a.c: warning: fresh"},
             "b.c": {"b.c: warning: next patch's"}, "c.c": {"c.c: warning: untouched"},
             "": {"kernel-doc unattributed warning"}}
    assert series.new_warnings(before, after, ["a.c"]) == [
        "a.c: warning: fresh", "kernel-doc unattributed warning"]
    assert series.new_warnings(after, after, ["a.c", "b.c"]) == []


def test_a_warning_build_that_failed_or_checked_nothing_is_an_error():
    """./kx series check must not report 0 new warnings from a W=1/sparse
    build that did not run: a gate that checked nothing has proved nothing."""
    from types import SimpleNamespace as R
    ok = R(returncode=0, stdout="  CC      arch/arm64/mm/trans_pgd.o\n"
                              "  CHECK   ../arch/arm64/mm/trans_pgd.c\n", stderr="")
    series.checked_build(ok, ["arch/arm64/mm/trans_pgd.o"], "0" * 40)
    with pytest.raises(KxError, match="failed"):
        series.checked_build(R(returncode=2, stdout="", stderr="make: *** Error 2"),
                             ["a.o"], "0" * 40)
    with pytest.raises(KxError, match="sparse checked none"):
        series.checked_build(R(returncode=0, stdout="  CC      a.o\n", stderr=""),
                             ["a.o"], "0" * 40)


def test_each_patch_builds_on_one_config_in_turn_and_the_series_on_all():
    """Two consecutive seeds build every patch on each gate config; the last
    patch, the whole series, is built on every one in every run."""
    count = 17
    for seed in range(4):
        plan = [series.patch_configs(k, count, seed) for k in range(count)]
        assert plan[-1] == list(series.GATE_CONFIGS)
        assert all(len(p) == 1 for p in plan[:-1])
        assert {p[0] for p in plan[:-1]} == set(series.GATE_CONFIGS)
        following = [series.patch_configs(k, count, seed + 1) for k in range(count)]
        assert all(set(a) | set(b) == set(series.GATE_CONFIGS)
                   for a, b in zip(plan, following))


def test_warnings_look_at_objects_either_gate_build_made(tmp_path, monkeypatch):
    """A file a patch adds was built on that patch's config only: its W=1 and
    sparse warnings are still taken (make builds it for the warnings'
    config); a source the commit lacks, or one no gate build compiles, is not."""
    monkeypatch.setattr(series, "CHECK_TREE", tmp_path)
    for path in ("arch/arm64/mm/old.c", "arch/arm64/mm/new.c", "tools/t.c", "gone.c"):
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
    for path in ("arch/arm64/mm/old.c", "arch/arm64/mm/new.c", "tools/t.c"):
        (tmp_path / path).write_text("")
    first, other = (tmp_path / f".kx-{c}" for c in series.GATE_CONFIGS)
    for out, obj in ((first, "arch/arm64/mm/old.o"), (other, "arch/arm64/mm/new.o"),
                     (first, "gone.o")):
        (out / obj).parent.mkdir(parents=True, exist_ok=True)
        (out / obj).write_text("")
    files = ["arch/arm64/mm/old.c", "arch/arm64/mm/new.c", "tools/t.c", "gone.c",
             "arch/arm64/include/asm/x.h"]
    assert series.built_objects(files) == ["arch/arm64/mm/old.o", "arch/arm64/mm/new.o"]
