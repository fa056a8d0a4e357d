"""A series' git tree (build/linux for v5.10): its first commit is the
base, then one commit per patch of its series file, applied with git am;
and export back. Two series exist, each against its own base (SERIESES);
the module's TREE, PATCHES, SERIES and SERIES_VERSION are those of the one
selected (use(), the CLI's --series), v5.10 unless another is."""
import contextlib
import email.header
import email.parser
import hashlib
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from . import pins, sources
from .util import BUILD, REPO, KxError, log, run


@dataclass(frozen=True)
class Series:
    name: str       # "v5.10": the Linux line it is for
    kernel: str     # its kernel's name for kbuild, cells and results
    base: str       # the pins.KERNELS entry it applies to
    patches: Path   # its patches, series file and cover letter
    tree: Path      # its git tree, base + patches
    version: int    # the version its mails carry: [PATCH vN k/M]


SERIESES = {
    "v5.10": Series("v5.10", "series", "base", REPO / "patches", BUILD / "linux", 3),
    "v6.12": Series("v6.12", "series-6.12", "base-6.12", REPO / "series" / "v6.12",
                    BUILD / "linux-6.12", 1),
}
SELECTED = SERIESES["v5.10"]
TREE = SELECTED.tree
PATCHES = SELECTED.patches
SERIES = PATCHES / "series"
IDENTITY = {
    "GIT_AUTHOR_NAME": "kexec-mmu developers",
    "GIT_AUTHOR_EMAIL": "kexec-mmu@example.org",
    "GIT_COMMITTER_NAME": "kexec-mmu developers",
    "GIT_COMMITTER_EMAIL": "kexec-mmu@example.org",
}
AUTHOR = "kexec-mmu developers <kexec-mmu@example.org>"
BASE_TAG = "kx-base"
# The version of the selected series: its mails are [PATCH v3 k/N]. Bump a
# series' version in SERIESES when one has been posted, with rangediff.POSTED.
SERIES_VERSION = SELECTED.version


def use(name):
    """Select the series NAME (a key of SERIESES) for what follows."""
    global SELECTED, TREE, PATCHES, SERIES, SERIES_VERSION
    if name not in SERIESES:
        raise KxError(f"no series {name!r}: choose from {', '.join(SERIESES)}")
    SELECTED = SERIESES[name]
    TREE, PATCHES = SELECTED.tree, SELECTED.patches
    SERIES, SERIES_VERSION = PATCHES / "series", SELECTED.version


@contextlib.contextmanager
def using(name):
    """Select the series NAME for a with block, then the one before again."""
    before = SELECTED.name
    use(name)
    try:
        yield SELECTED
    finally:
        use(before)


def rel(path):
    """PATH as the messages name it: from the repository's top."""
    return str(Path(path).relative_to(REPO)) if Path(path).is_relative_to(REPO) else str(path)


def of_kernel(kernel):
    """The series whose kernel is named KERNEL, or None."""
    return next((s for s in SERIESES.values() if s.kernel == kernel), None)


STAMP = "kx-applied"
# Fixed options so an unchanged commit exports to an unchanged file.
FORMAT_PATCH = ["format-patch", "--zero-commit", "--no-signature", "--no-numbered",
                "--abbrev=12", "--full-index", "--stat=80", "--no-cover-letter"]


def git(*args, quiet=True, cwd=None, env=None):
    return run(["git", *args], cwd=cwd or TREE, quiet=quiet, env={**IDENTITY, **(env or {})})


def series_files():
    if not SERIES.exists():
        return []
    names = [ln.strip() for ln in SERIES.read_text().splitlines()]
    names = [n for n in names if n and not n.startswith("#")]
    for name in names:
        if not (PATCHES / name).exists():
            raise KxError(f"{rel(SERIES)} names {name}, which is not in {rel(PATCHES)}/")
    return [PATCHES / n for n in names]


def patch_subject(patch):
    """The subject of a format-patch file, without its [PATCH ...] prefix."""
    with open(patch, "rb") as f:
        headers = email.parser.BytesHeaderParser().parse(f)
    if headers["Subject"] is None:
        raise KxError(f"{patch.name} has no Subject: header")
    text = str(email.header.make_header(email.header.decode_header(headers["Subject"])))
    return re.sub(r"^\[PATCH[^\]]*\]\s*", "", " ".join(text.split()))


def subject_prefix(k, n, version=None):
    """The subject prefix of mail K of N: [PATCH v2 K/N], or [PATCH K/N] for v1."""
    version = SERIES_VERSION if version is None else version
    return f"[PATCH {f'v{version} ' if version > 1 else ''}{k}/{n}]"


def require_commits_are(patches):
    """Refuse unless build/linux's commits over the base are PATCHES, in order
    (by subject), with nothing uncommitted: what is read from it is the series."""
    want = [patch_subject(p) for p in patches]
    have = git("log", "--reverse", "--format=%s", f"{BASE_TAG}..HEAD").stdout.splitlines()
    if have != want:
        raise KxError(f"{rel(TREE)} holds {len(have)} commits over {BASE_TAG} but "
                      f"{rel(SERIES)} lists {len(want)} patches, or their subjects differ: "
                      "run ./kx export (or ./kx tree) so that they match")
    if is_dirty():
        raise KxError(f"{rel(TREE)} has uncommitted changes: commit and export them first")


def series_digest():
    h = hashlib.sha256()
    for p in series_files():
        h.update(p.name.encode() + b"\0" + p.read_bytes())
    return h.hexdigest()


def head(cwd=None, rev="HEAD"):
    """REV (HEAD, or e.g. HEAD^{tree}) of build/linux or of the git tree CWD."""
    return git("rev-parse", rev, cwd=cwd).stdout.strip()


def is_dirty(cwd=None):
    """Whether a tracked file of build/linux (or of the git tree CWD) changed."""
    return bool(git("status", "--porcelain", "--untracked-files=no", cwd=cwd).stdout.strip())


def config(key, cwd=None):
    """git config kx.KEY of build/linux (or of the git tree CWD), or '' if unset."""
    return subprocess.run(["git", "config", f"kx.{key}"], cwd=cwd or TREE,
                          capture_output=True, text=True).stdout.strip()


def _create_base():
    if TREE.exists():
        shutil.rmtree(TREE)
    TREE.mkdir(parents=True)
    tarball = sources.kernel_tarball(SELECTED.base)
    log(f"creating {rel(TREE)} from {tarball.name}")
    run(["tar", "-xf", str(tarball), "-C", str(TREE), "--strip-components=1"])
    git("init", "-q", "-b", "master")
    git("config", "core.autocrlf", "false")
    git("config", "gc.auto", "0")
    (TREE / ".git" / "info" / "exclude").write_text("/.kx-*/\n")
    git("add", "-A", "-f", ".")
    date = {"GIT_AUTHOR_DATE": "2024-07-27T00:00:00Z",
            "GIT_COMMITTER_DATE": "2024-07-27T00:00:00Z"}
    pin = pins.KERNELS[SELECTED.base]
    git("commit", "-q", "--no-verify", "-m",
        f"{pin['topdir']}: pristine base from {pin['package']} {pin['version']}",
        env=date)
    git("tag", BASE_TAG)


def ensure_tree(force=False):
    """Make build/linux match patches/; refuse to drop unexported work."""
    digest = series_digest()
    if not (TREE / ".git").exists():
        _create_base()
    else:
        stamp, applied_head = config(STAMP), config("applied-head")
        if stamp == digest and not force:
            return TREE
        if not force and (is_dirty() or (applied_head and head() != applied_head)):
            raise KxError(f"{rel(TREE)} has work that {rel(PATCHES)}/ does not hold: "
                          "run ./kx export first, or ./kx tree --force to drop it")
    if (TREE / ".git" / "rebase-apply").exists():
        git("am", "--abort")
    git("checkout", "-q", "-f", "-B", "master", BASE_TAG)
    for patch in series_files():
        try:
            git("am", "-q", "--keep-cr", str(patch))
        except KxError as exc:
            git("am", "--abort")
            raise KxError(f"patch {patch.name} does not apply to the base: {exc}")
    git("config", f"kx.{STAMP}", digest)
    git("config", "kx.applied-head", head())
    return TREE


def export():
    """Rewrite patches/ from build/linux's commits after the base."""
    if not (TREE / ".git").exists():
        raise KxError(f"no {rel(TREE)}: run ./kx tree first")
    if is_dirty():
        raise KxError(f"{rel(TREE)} has uncommitted changes: commit them first")
    PATCHES.mkdir(parents=True, exist_ok=True)
    for old in PATCHES.glob("[0-9][0-9][0-9][0-9]-*.patch"):
        if not old.name.startswith("0000-"):
            old.unlink()
    out = git(*FORMAT_PATCH, "-o", str(PATCHES), f"{BASE_TAG}..HEAD").stdout.split()
    names = [p.split("/")[-1] for p in out]
    SERIES.write_text("".join(n + "\n" for n in names))
    git("config", f"kx.{STAMP}", series_digest())
    git("config", "kx.applied-head", head())
    return names
