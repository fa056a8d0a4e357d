"""./kx series range-diff: the previous version rebuilt from the workbench's
history, compared with this one (v1 and v2 of a made-up series here)."""
import shutil

import pytest

from gitrepo import base_repo, commit, git
from kxbench import rangediff, tree
from kxbench.util import KxError


def posted(tmp_path, patches_dir):
    """A workbench repository whose one commit holds PATCHES_DIR as patches/; its id."""
    work = tmp_path / "work"
    if not work.exists():
        work.mkdir()
        git(work, "init", "-q", "-b", "main")
    shutil.rmtree(work / "patches", ignore_errors=True)
    shutil.copytree(patches_dir, work / "patches")
    git(work, "add", "-A", "patches")
    git(work, "commit", "-q", "-m", "v1 as posted")
    return work, git(work, "rev-parse", "HEAD").strip()


@pytest.fixture
def versions(tmp_path, monkeypatch):
    """v1 = b, c posted from a workbench commit; v2 in the tree and patches/ =
    b, c changed, d new."""
    repo, patches = base_repo(tmp_path, monkeypatch)
    commit(repo, "b.c", "int b;\n", "arm64: add b")
    c = [f"int c{k};\n" for k in range(12)]
    commit(repo, "c.c", "".join(c), "arm64: add c")
    tree.export()
    work, v1 = posted(tmp_path, patches)
    c[5] = "int c5 = 2;\n"
    commit(repo, "c.c", "".join(c), "arm64: make c5 two")
    git(repo, "reset", "-q", "--soft", "HEAD~2")
    git(repo, "commit", "-q", "-m", "arm64: add c\n\nBecause, and c5 is two.")
    commit(repo, "d.c", "int d;\n", "arm64: add d")
    tree.export()
    monkeypatch.setattr(rangediff, "WORKBENCH", work)
    monkeypatch.setattr(rangediff, "POSTED", {rangediff.PREVIOUS: v1})
    monkeypatch.setattr(rangediff, "WORKTREE", tmp_path / "linux-v1")
    monkeypatch.setattr(rangediff, "OUT", tmp_path / "docs" / "range-diff-v1-v2.txt")
    return tmp_path


def pair(body, subject):
    """The mark (=, !, <, >) git range-diff gives the commit SUBJECT."""
    marks = [ln.split()[2] for ln in body.splitlines()
             if rangediff.PAIR.match(ln) and ln.endswith(" " + subject)]
    assert len(marks) == 1, (subject, body)
    return marks[0]


def test_range_diff_pairs_v1_with_v2_and_shows_what_changed(versions):
    out, old, new, counts = rangediff.write()
    assert (out, old, new) == (rangediff.OUT, 2, 3)
    text = out.read_text()
    body = text.split("\n\n", 1)[1]
    assert (pair(body, "arm64: add b"), pair(body, "arm64: add c"),
            pair(body, "arm64: add d")) == ("=", "!", ">")
    assert "+int c5 = 2;" in body and "Because, and c5 is two." in body
    assert counts == {"=": 1, "!": 1, "<": 0, ">": 1}
    assert f"patches/ at commit {rangediff.POSTED[rangediff.PREVIOUS]}" in text
    assert rangediff.problem() is None
    section = rangediff.section()
    assert section.startswith(f"Range-diff against v{rangediff.PREVIOUS}:\n1:  ") and "arm64: add d" in section


def test_v1_is_reused_while_it_holds_the_posted_patches(versions):
    rangediff.write()
    head = git(tree.TREE, "rev-parse", rangediff.BRANCH)
    rangediff.write()
    assert git(tree.TREE, "rev-parse", rangediff.BRANCH) == head
    commit(rangediff.WORKTREE, "e.c", "int e;\n", "arm64: not in v1")
    rangediff.write()
    assert git(tree.TREE, "log", "--format=%s", f"{tree.BASE_TAG}..{rangediff.BRANCH}"
               ).splitlines() == ["arm64: add c", "arm64: add b"]


def test_the_range_diff_goes_stale_when_the_series_changes(versions):
    rangediff.write()
    commit(tree.TREE, "e.c", "int e;\n", "arm64: add e")
    with pytest.raises(KxError, match="not exported|./kx export"):
        rangediff.write()
    assert "./kx export" in rangediff.problem()            # the tree moved on
    tree.export()
    assert "stale" in rangediff.problem() and "./kx series range-diff" in rangediff.problem()
    rangediff.write()
    assert rangediff.problem() is None


def test_a_missing_base_is_named(versions):
    git(tree.TREE, "tag", "-d", tree.BASE_TAG)
    with pytest.raises(KxError, match=tree.BASE_TAG):
        rangediff.build_previous(*rangediff.posted_series())


def test_a_v1_patch_that_does_not_apply_is_named(versions, monkeypatch):
    commit_id, patches = rangediff.posted_series()
    name, data = patches[0]
    broken = [(name, data), ("0002-add-b-again.patch", data)]     # b.c exists by then
    with pytest.raises(KxError, match="0002-add-b-again.patch.*does not apply"):
        rangediff.build_previous(commit_id, broken)
    assert not (rangediff.WORKTREE / ".git" / "rebase-apply").exists()
    assert rangediff.build_previous(commit_id, patches)     # the worktree is usable again


def test_a_commit_the_history_lacks_is_named(versions, monkeypatch):
    monkeypatch.setattr(rangediff, "POSTED", {rangediff.PREVIOUS: "f" * 40})
    with pytest.raises(KxError, match=f"patches/series of v{rangediff.PREVIOUS} at commit "
                                      "ffffffffffff"):
        rangediff.posted_series()
