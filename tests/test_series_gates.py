"""The review gates must reject what a reviewer would reject."""
import difflib
import subprocess

import pytest

from kxbench import series, tree

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
