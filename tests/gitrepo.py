"""A small git repository shaped like build/linux, for tests of tree and cover."""
import subprocess

from kxbench import tree


def git(cwd, *args):
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True,
                          text=True, env={**tree.IDENTITY, "PATH": "/usr/bin:/bin",
                                          "HOME": str(cwd)}).stdout


def base_repo(tmp_path, monkeypatch):
    """tmp_path/linux with a base commit tagged kx-base; tree's paths pointed at
    it and at tmp_path/patches."""
    repo, patches = tmp_path / "linux", tmp_path / "patches"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "master")
    (repo / "a.c").write_text("int a;\n")
    git(repo, "add", "a.c")
    git(repo, "commit", "-q", "-m", "base")
    git(repo, "tag", tree.BASE_TAG)
    monkeypatch.setattr(tree, "TREE", repo)
    monkeypatch.setattr(tree, "PATCHES", patches)
    monkeypatch.setattr(tree, "SERIES", patches / "series")
    return repo, patches


def commit(repo, name, text, subject):
    """Write NAME in REPO and commit it with SUBJECT and a one-line body."""
    (repo / name).write_text(text)
    git(repo, "add", name)
    git(repo, "commit", "-q", "-m", f"{subject}\n\nBecause.")


def fresh_range_diff(path, body="1:  1111111 = 1:  2222222 arm64: add b\n"):
    """A range-diff file at PATH made from patches/ and the tree as they are now."""
    from kxbench import rangediff
    count = len(tree.series_files())
    path.write_text(rangediff.file_text(body, "0" * 40, count, count))
    return path
