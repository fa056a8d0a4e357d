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
