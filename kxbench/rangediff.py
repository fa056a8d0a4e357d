"""./kx series range-diff: how each patch changed since the version posted before.

The cover letter of each version from v2 on ends with the range-diff against
the version before it, after the diffstat, the way b4 and git format-patch
--range-diff put it. The previous version is rebuilt from this repository's
history, so a fresh machine can make it too: the patches that patches/series
listed at the commit POSTED[version], taken with git show and applied with
git am on kx-base in a scratch worktree of build/linux (build/linux-vN,
branch kx-vN), which later runs reuse while it still holds exactly those
patches. git range-diff of kx-base..kx-vN against kx-base..master is written
to docs/series/range-diff-vN-vM.txt, which is kept in the repository, as b4
keeps it in the cover letter it sends.

The file's header names the series it was made from: the digest of patches/
(tree.series_digest) and the tree of build/linux's HEAD. ./kx cover refuses
the file once either differs from what is there now: the series changed
since, and the range-diff must be made again.
"""
import hashlib
import re
import subprocess
import tempfile
from pathlib import Path

from . import tree
from .util import BUILD, REPO, KxError, log

# v1 as it was posted: the commit of this repository whose patches/series
# listed its 12 patches ("series: selftests patch in; exact nomap check;
# gates move forward only"). Its patches are read from there with git show.
V1_COMMIT = "cf301a66f021d8ad9a0f656693f1ef6e2dd47fbe"
# v2: the commit whose patches/series listed its 17 patches, its cover
# letter regenerated from its make check ("Review: debug_cells() loses a
# config parameter nothing used").
V2_COMMIT = "1316bc5d1ed48aea79e20bfa8ed42b60881268c3"
# The commit of this repository that holds each posted version; when a
# version is posted, add it here and bump tree.SERIES_VERSION.
POSTED = {1: V1_COMMIT, 2: V2_COMMIT}
PREVIOUS = tree.SERIES_VERSION - 1
WORKBENCH = REPO
OUT = REPO / "docs" / "series" / f"range-diff-v{PREVIOUS}-v{tree.SERIES_VERSION}.txt"
WORKTREE = BUILD / f"linux-v{PREVIOUS}"
BRANCH = f"kx-v{PREVIOUS}"
NEW = "master"      # the branch tree.ensure_tree applies patches/ on
AGAIN = "run ./kx series range-diff"
# A line of git range-diff's output that pairs two commits: "3:  abc ! 3:  def subject".
PAIR = re.compile(r"^ *(?:\d+|-): +[0-9a-f-]+ ([=!<>]) +(?:\d+|-): ", re.M)


def shown(path):
    """PATH as the messages name it: relative to the repository when inside it."""
    try:
        return str(Path(path).relative_to(REPO))
    except ValueError:
        return str(path)


def posted_series(version=PREVIOUS, repo=None):
    """(commit, [(name, bytes)]): the patches of VERSION as posted, read
    with git show from the commit POSTED names in the workbench's history."""
    if version not in POSTED:
        raise KxError(f"rangediff.POSTED names no commit for v{version}: add the commit of "
                      f"this repository whose patches/ held v{version} as posted")
    commit, repo = POSTED[version], repo or WORKBENCH

    def show(path):
        res = subprocess.run(["git", "show", f"{commit}:{path}"], cwd=repo,
                             capture_output=True)
        if res.returncode:
            raise KxError(f"cannot read {path} of v{version} at commit {commit[:12]} of {repo} "
                          "(a shallow clone lacks it: git fetch --unshallow): "
                          f"{res.stderr.decode(errors='replace').strip()}")
        return res.stdout

    names = [ln.strip() for ln in show("patches/series").decode().splitlines()]
    names = [n for n in names if n and not n.startswith("#")]
    if not names:
        raise KxError(f"patches/series at commit {commit[:12]} (v{version}) lists no patches")
    return commit, [(name, show(f"patches/{name}")) for name in names]


def digest(patches):
    """Of [(name, bytes)], computed as tree.series_digest computes it of patches/."""
    h = hashlib.sha256()
    for name, data in patches:
        h.update(name.encode() + b"\0" + data)
    return h.hexdigest()


def commit_of(rev, cwd=None):
    """The commit REV names in build/linux (or in the git tree CWD), or None."""
    res = subprocess.run(["git", "rev-parse", "--verify", "-q", f"{rev}^{{commit}}"],
                         cwd=cwd or tree.TREE, capture_output=True, text=True)
    return res.stdout.strip() if res.returncode == 0 else None


def require_base():
    if not (tree.TREE / ".git").exists():
        raise KxError(f"there is no git tree {shown(tree.TREE)}: run ./kx tree first")
    if commit_of(tree.BASE_TAG) is None:
        raise KxError(f"{shown(tree.TREE)} has no tag {tree.BASE_TAG}, the base both versions "
                      f"apply on: move {shown(tree.TREE)} away and run ./kx tree")


def is_worktree(path):
    """Whether PATH is a worktree of build/linux."""
    if not (path / ".git").exists():
        return False
    res = subprocess.run(["git", "rev-parse", "--git-common-dir"], cwd=path,
                         capture_output=True, text=True)
    return (res.returncode == 0
            and (path / res.stdout.strip()).resolve() == (tree.TREE / ".git").resolve())


def holds(worktree, patches):
    """Whether WORKTREE has BRANCH checked out, untouched since it was made
    of PATCHES on the base that build/linux's kx-base names now."""
    if not is_worktree(worktree):
        return False
    checked_out = subprocess.run(["git", "symbolic-ref", "-q", "HEAD"], cwd=worktree,
                                 capture_output=True, text=True).stdout.strip()
    head = commit_of(BRANCH)
    return (checked_out == f"refs/heads/{BRANCH}" and head is not None
            and tree.config(f"{BRANCH}-digest") == digest(patches)
            and tree.config(f"{BRANCH}-head") == head
            and tree.config(f"{BRANCH}-base") == commit_of(tree.BASE_TAG)
            and not tree.is_dirty(worktree))


def build_previous(commit, patches, worktree=None):
    """Make WORKTREE's branch kx-v1 the base with PATCHES (of COMMIT) applied
    by git am, unless it already is; its head."""
    worktree = worktree or WORKTREE
    require_base()
    if holds(worktree, patches):
        log(f"{shown(worktree)} ({BRANCH}) holds v{PREVIOUS} already")
        return commit_of(BRANCH)
    log(f"rebuilding v{PREVIOUS} ({len(patches)} patches of commit {commit[:12]}) on "
        f"{tree.BASE_TAG} in {shown(worktree)}, branch {BRANCH}")
    if worktree.exists() and not is_worktree(worktree):
        raise KxError(f"{shown(worktree)} exists but is not a worktree of "
                      f"{shown(tree.TREE)}: move it away")
    if worktree.exists():
        rebase_apply = tree.git("rev-parse", "--git-path", "rebase-apply", cwd=worktree)
        if (worktree / rebase_apply.stdout.strip()).exists():
            tree.git("am", "--abort", cwd=worktree)
        tree.git("checkout", "-q", "-f", "-B", BRANCH, tree.BASE_TAG, cwd=worktree)
    else:
        tree.git("worktree", "prune")
        tree.git("worktree", "add", "-B", BRANCH, str(worktree), tree.BASE_TAG)
    with tempfile.TemporaryDirectory(prefix=f"kx-v{PREVIOUS}-") as tmp:
        for name, data in patches:
            path = Path(tmp) / name
            path.write_bytes(data)
            try:
                # Committer dates from the patches: the same commits on any machine.
                tree.git("am", "-q", "--keep-cr", "--committer-date-is-author-date",
                         str(path), cwd=worktree)
            except KxError as exc:
                tree.git("am", "--abort", cwd=worktree)
                raise KxError(f"v{PREVIOUS}'s {name} (patches/ at commit {commit[:12]}) does "
                              f"not apply with git am on {tree.BASE_TAG} in "
                              f"{shown(worktree)}: {exc}")
    head = commit_of(BRANCH)
    for key, value in (("digest", digest(patches)), ("head", head),
                       ("base", commit_of(tree.BASE_TAG))):
        tree.git("config", f"kx.{BRANCH}-{key}", value)
    return head


def require_series():
    """patches/, once sure that build/linux's NEW branch is checked out and
    holds exactly them: what the range-diff compares is what is posted."""
    patches = tree.series_files()
    if not patches:
        raise KxError("patches/series lists no patches: nothing to compare")
    branch = subprocess.run(["git", "symbolic-ref", "-q", "--short", "HEAD"], cwd=tree.TREE,
                            capture_output=True, text=True).stdout.strip()
    if branch != NEW:
        raise KxError(f"{shown(tree.TREE)} has {branch or 'a detached HEAD'} checked out, not "
                      f"{NEW}, which holds the series: check out {NEW}")
    tree.require_commits_are(patches)
    if (tree.config(tree.STAMP) != tree.series_digest()
            or tree.config("applied-head") != tree.head()):
        raise KxError(f"{shown(tree.TREE)}'s {NEW} is not what patches/ holds (a commit there "
                      "is not exported, or patches/ changed since ./kx tree): run ./kx export, "
                      "or ./kx tree")
    return patches


def file_text(body, commit, old_count, new_count):
    """The range-diff file: a header naming what it was made from, an empty
    line, then BODY, git range-diff's output."""
    tree_id = tree.head(rev="HEAD^{tree}")
    return "\n".join([
        f"Range-diff of v{PREVIOUS} against v{tree.SERIES_VERSION} of the series, written by "
        "./kx series range-diff",
        f"with git range-diff --no-color {tree.BASE_TAG}..{BRANCH} {tree.BASE_TAG}..{NEW} in "
        f"{shown(tree.TREE)}.",
        "./kx cover ends the cover letter with what follows the first empty line; it",
        "refuses to once patches/ or build/linux no longer match series-digest: and",
        "tree: below. Regenerate it after every change of the series.",
        f"v{PREVIOUS}: {old_count} patches, patches/ at commit {commit} of the workbench",
        f"v{tree.SERIES_VERSION}: {new_count} patches, patches/ and {shown(tree.TREE)} {NEW}",
        f"series-digest: {tree.series_digest()}",
        f"tree: {tree_id}",
        "", body.rstrip("\n"), ""])


def counts(body):
    """How many commits git range-diff's BODY marks =, !, < and >."""
    marks = PAIR.findall(body)
    return {m: marks.count(m) for m in "=!<>"}


def write(out=None):
    """Rebuild the previous version if needed, write the range-diff to OUT;
    (OUT, previous version's patch count, this version's, counts)."""
    out = out or OUT
    if PREVIOUS < 1:
        raise KxError("v1 of the series has no earlier version to compare with")
    new = require_series()
    commit, old = posted_series()
    build_previous(commit, old)
    body = tree.git("range-diff", "--no-color", f"{tree.BASE_TAG}..{BRANCH}",
                    f"{tree.BASE_TAG}..{NEW}").stdout
    if not PAIR.search(body):
        raise KxError(f"git range-diff of {BRANCH} and {NEW} printed no pair of commits:\n{body}")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(file_text(body, commit, len(old), len(new)))
    return out, len(old), len(new), counts(body)


def fields(text):
    """The 'key: value' lines of the range-diff file's header."""
    head = text.split("\n\n", 1)[0]
    return dict(re.findall(r"^(series-digest|tree): (\S+)$", head, re.M))


def problem(path=None):
    """Why the range-diff file PATH does not describe patches/ and build/linux
    as they are now, or None."""
    path = path or OUT
    if not path.exists():
        return (f"there is no {shown(path)}, the range-diff against v{PREVIOUS} that the "
                f"cover letter of v{tree.SERIES_VERSION} ends with: {AGAIN}")
    made = fields(path.read_text())
    if set(made) != {"series-digest", "tree"}:
        return f"{shown(path)} does not say which series it was made from: {AGAIN}"
    if made["series-digest"] != tree.series_digest():
        return (f"{shown(path)} is stale: it was made from another version of patches/ "
                f"than the one there now: {AGAIN}")
    now = tree.head(rev="HEAD^{tree}")
    if made["tree"] != now:
        return (f"{shown(path)} is stale: it was made from {shown(tree.TREE)} at tree "
                f"{made['tree'][:12]}, and its HEAD is now at tree {now[:12]}: run ./kx export "
                f"if {shown(tree.TREE)} holds new work, then {AGAIN}")
    return None


def section(path=None):
    """The end of the cover letter: 'Range-diff against v1:' and the range-diff.
    Empty for v1 (of the selected series); refused while the file is missing
    or stale."""
    if PREVIOUS < 1 or tree.SERIES_VERSION < 2:
        return ""
    why = problem(path)
    if why:
        raise KxError(why)
    body = (path or OUT).read_text().split("\n\n", 1)[1]
    return f"Range-diff against v{PREVIOUS}:\n{body.rstrip()}\n"
