"""The provenance gate: six added lines that Linux 6.1 has and v5.10.223
lacks fail the series; fewer, or lines the base has too, do not."""
import pytest

from kxbench import provenance, tree
from kxbench.util import KxError

TAKEN = ["static int copy_one(struct info *info, pte_t *dst)", "{",
         "\tpte_t pte = READ_ONCE(*dst);", "\tif (!pte_valid(pte))",
         "\t\treturn -EINVAL;", "\tset_pte(dst, pte_mkwrite(pte));", "\treturn 0;", "}"]


def kernel(root, text, path="arch/arm64/mm/trans_pgd.c"):
    """A kernel tree ROOT whose only arm64 file PATH holds TEXT around a
    few lines of its own, so that what matches is found mid-file."""
    (root / path).parent.mkdir(parents=True, exist_ok=True)
    (root / path).write_text("\n".join(["// SPDX-License-Identifier: GPL-2.0", "",
                                        "#include <linux/mm.h>", "", *text, "",
                                        "int unrelated(void);", ""]))
    return root


def patch(tmp_path, added, name="0001-x.patch"):
    """A format-patch mail adding ADDED after one context line."""
    body = "".join(f"+{line}\n" for line in added)
    path = tmp_path / name
    path.write_text("From 0000000000000000000000000000000000000000 Mon Sep 17 00:00:00 2001\n"
                    "Subject: [PATCH] arm64: x\n\nWhy.\n\n---\n"
                    "diff --git a/arch/arm64/mm/x.c b/arch/arm64/mm/x.c\n"
                    "--- a/arch/arm64/mm/x.c\n+++ b/arch/arm64/mm/x.c\n"
                    f"@@ -1,2 +1,{len(added) + 2} @@\n #include <linux/mm.h>\n{body} int y;\n"
                    "-- \n2.39.5\n")
    return path


@pytest.fixture
def trees(tmp_path):
    new = kernel(tmp_path / "linux-6.1", TAKEN)
    old = kernel(tmp_path / "linux-5.10", ["int other(void)", "{", "\treturn 1;", "}"])
    return new, old


def test_six_lines_taken_from_6_1_fail(tmp_path, trees):
    found = provenance.hits([patch(tmp_path, TAKEN[1:7])], *trees)
    assert found == [{"patch": "0001-x.patch", "patch_lines": [12, 17],
                      "file": "arch/arm64/mm/trans_pgd.c", "file_lines": [6, 11],
                      "text": TAKEN[1:7]}]


def test_lines_the_base_has_too_pass(tmp_path, trees):
    new, old = trees
    kernel(old, TAKEN, "arch/arm64/kernel/hibernate.c")
    assert provenance.hits([patch(tmp_path, TAKEN)], new, old) == []


def test_five_lines_pass(tmp_path, trees):
    assert provenance.hits([patch(tmp_path, TAKEN[:5])], *trees) == []


def test_whitespace_and_blank_lines_do_not_hide_a_copy(tmp_path, trees):
    """Spaces for tabs, trailing blanks and blank lines put in still match;
    the whole copy is one hit, with the patch's own text."""
    changed = [TAKEN[0], "", TAKEN[1], "    pte_t  pte = READ_ONCE(*dst);  ", "",
               *TAKEN[3:6], "   ", *TAKEN[6:]]
    found = provenance.hits([patch(tmp_path, changed)], *trees)
    assert len(found) == 1
    assert found[0]["patch_lines"] == [12, 22] and found[0]["file_lines"] == [5, 12]
    assert found[0]["text"] == [line.rstrip() for line in changed if line.strip()]


def test_a_context_line_ends_a_run_and_a_removed_line_does_not(tmp_path, trees):
    path = patch(tmp_path, TAKEN[:6])
    text = path.read_text()
    path.write_text(text.replace(f"+{TAKEN[3]}\n", f" {TAKEN[3]}\n"))
    assert provenance.hits([path], *trees) == []
    path.write_text(text.replace(f"+{TAKEN[3]}\n", f"+{TAKEN[3]}\n-\told();\n"))
    assert len(provenance.hits([path], *trees)) == 1


def test_overlapping_windows_merge_and_separate_copies_do_not(tmp_path, trees):
    found = provenance.hits([patch(tmp_path, TAKEN), patch(tmp_path, TAKEN[2:], "0002-y.patch")],
                            *trees)
    assert [(h["patch"], h["file_lines"], len(h["text"])) for h in found] == [
        ("0001-x.patch", [5, 12], 8), ("0002-y.patch", [7, 12], 6)]


def test_only_the_arm64_and_kexec_files_count(tmp_path, trees):
    new, old = trees
    (new / "arch/arm64/mm/trans_pgd.c").unlink()
    kernel(new, TAKEN, "drivers/x.c")
    kernel(new, ["int z;"])
    assert provenance.hits([patch(tmp_path, TAKEN)], new, old) == []
    kernel(new, TAKEN, "kernel/kexec_core.c")
    assert provenance.hits([patch(tmp_path, TAKEN)], new, old)[0]["file"] == \
        "kernel/kexec_core.c"


@pytest.mark.parametrize("which", [0, 1])
def test_a_missing_tree_is_an_error_not_a_pass(tmp_path, trees, which):
    roots = list(trees)
    roots[which] = tmp_path / "absent"
    with pytest.raises(KxError, match="absent is missing"):
        provenance.hits([patch(tmp_path, TAKEN)], *roots)
    roots[which] = tmp_path / "empty"
    roots[which].mkdir()
    with pytest.raises(KxError, match="holds none of arch/arm64"):
        provenance.hits([patch(tmp_path, TAKEN)], *roots)


def test_the_gate_fails_with_the_reason_when_a_tree_cannot_be_had(tmp_path, monkeypatch):
    def unavailable(kernel):
        raise KxError(f"pin {kernel}: linux_6.1.187.orig.tar.xz is absent")
    monkeypatch.setattr(provenance, "tree_of", unavailable)
    entry = provenance.gate([patch(tmp_path, TAKEN)])
    assert not entry["passed"] and "is absent" in entry["error"]
    assert "is absent" in provenance.describe(entry)[0]


def test_a_work_tree_s_commits_are_checked_before_export(tmp_path, trees):
    """--tree: the commits over kx-base of a git tree, as format-patch has them."""
    work = tmp_path / "wip"
    (work / "arch/arm64/mm").mkdir(parents=True)
    (work / "arch/arm64/mm/x.c").write_text("#include <linux/mm.h>\n")
    tree.git("init", "-q", cwd=work)
    tree.git("add", ".", cwd=work)
    tree.git("commit", "-q", "-m", "base", cwd=work)
    tree.git("tag", tree.BASE_TAG, cwd=work)
    (work / "arch/arm64/mm/x.c").write_text("\n".join(["#include <linux/mm.h>", *TAKEN, ""]))
    tree.git("commit", "-q", "-am", "arm64: take it", cwd=work)
    out = tmp_path / "out"
    patches = provenance.tree_patches(work, out)
    assert [p.name for p in patches] == ["0001-arm64-take-it.patch"]
    found = provenance.hits(patches, *trees)
    assert len(found) == 1 and found[0]["text"] == TAKEN
