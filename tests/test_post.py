"""build/series.mbox: the cover letter and the patches, as v2 posts them."""
import mailbox

import pytest

from gitrepo import base_repo, commit, fresh_range_diff
from kxbench import cover, post, rangediff, tree
from kxbench.util import KxError


@pytest.fixture
def posting(tmp_path, monkeypatch):
    """A two-patch series with its range-diff and cover letter; get_maintainer
    replaced by a fixed answer."""
    repo, patches = base_repo(tmp_path, monkeypatch)
    commit(repo, "b.c", "int b;\n", "arm64: add b")
    commit(repo, "c.c", "int c;\n", "arm64: add c")
    tree.export()
    (tmp_path / "cover-letter.in").write_text("The problem.\n\n{{matrix}}\n\n{{bench}}\n")
    monkeypatch.setattr(cover, "COVER", patches / "0000-cover-letter.patch")
    monkeypatch.setattr(rangediff, "OUT", fresh_range_diff(tmp_path / "range-diff.txt"))
    monkeypatch.setattr(post, "MBOX", tmp_path / "series.mbox")
    monkeypatch.setattr(post, "recipients", lambda patch, cwd: (["A <a@example.org>"],
                                                                ["list@example.org"]))
    cover.COVER.write_text(cover.render(template=tmp_path / "cover-letter.in",
                                        results_dir=tmp_path, bench_json=tmp_path / "none"))
    return tmp_path


def test_the_mbox_numbers_every_mail_with_the_version(posting):
    path, count, marks = post.write()
    subjects = [" ".join(m["Subject"].split()) for m in mailbox.mbox(str(path))]
    assert (count, marks) == (3, 0)
    assert subjects == [f"[PATCH v3 0/2] {cover.TITLE}", "[PATCH v3 1/2] arm64: add b",
                        "[PATCH v3 2/2] arm64: add c"]
    letter = mailbox.mbox(str(path))[0].get_payload()
    assert (f"\nRange-diff against v{rangediff.PREVIOUS}:\n1:  1111111 = 1:  2222222 arm64: add b"
            "\n-- \n") in letter


def test_a_cover_letter_of_another_version_or_range_diff_is_refused(posting):
    letter = cover.COVER.read_text()
    cover.COVER.write_text(letter.replace("[PATCH v3 0/2]", "[PATCH 0/2]"))
    with pytest.raises(KxError, match=r"\[PATCH v3 0/2\].*run ./kx cover"):
        post.write()
    cover.COVER.write_text(letter)
    fresh_range_diff(rangediff.OUT, "1:  1111111 ! 1:  2222222 arm64: add b\n")
    with pytest.raises(KxError, match="does not end with the range-diff.*run ./kx cover"):
        post.write()
    rangediff.OUT.unlink()
    with pytest.raises(KxError, match="there is no .*./kx series range-diff"):
        post.write()
