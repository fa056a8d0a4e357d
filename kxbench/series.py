"""./kx series check: the review gates for patches/ (design.md section 4).

Per patch: checkpatch --strict, a Signed-off-by matching the project
author, a build at that patch (bisectability) on one gate config, in turn
by patch and by the matrix seed, so that two consecutive runs build every
patch on each, and the last patch (the whole series) on every gate config;
and no new W=1, sparse or kernel-doc warnings in the files it touches over
its parent. For the series: new .rst files parse with docutils, git am
of the whole series onto a fresh pristine checkout gives the same tree, and
no six added lines stand in Linux 6.1 but not in the base (provenance.py).
"""
import importlib.util
import json
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from . import cover, kbuild, matrix, pins, provenance, tree
from .util import BUILD, KxError, log

GATE_CONFIGS = ("4k-48", "64k-48")
CHECK_TREE = BUILD / "linux-check"     # the v5.10 series': see use_series()
AM_TREE = BUILD / "linux-am"


def use_series(name):
    """Select series NAME (tree.use()) and its own check and git am trees."""
    global CHECK_TREE, AM_TREE
    tree.use(name)
    cover.select()
    CHECK_TREE = tree.TREE.parent / f"{tree.TREE.name}-check"
    AM_TREE = tree.TREE.parent / f"{tree.TREE.name}-am"
AUTHOR = tree.AUTHOR
WARNING = re.compile(r"^(?:\.\./)?([\w/.+-]+):\d+(?::\d+)?: (warning|error): (.*)$")


def git(*args, cwd):
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True,
                          env={**tree.IDENTITY, "PATH": "/usr/bin:/bin"})


def checkpatch(patch):
    """(errors, warnings, checks, report) of checkpatch.pl --strict on PATCH."""
    # On stdin: given a path that git tracks in the current repository,
    # checkpatch checks the file as source (--file) rather than as a patch.
    with open(patch) as f:
        res = subprocess.run(["perl", "scripts/checkpatch.pl", "--strict", "--no-signoff",
                              "--show-types", "-"],
                             cwd=tree.TREE, stdin=f, capture_output=True, text=True)
    m = re.search(r"total: (\d+) errors, (\d+) warnings, (\d+) checks", res.stdout)
    if not m:
        raise KxError(f"checkpatch gave no summary for {patch.name}:\n{res.stdout[-2000:]}")
    return int(m.group(1)), int(m.group(2)), int(m.group(3)), res.stdout


# checkpatch asks this of every patch that adds a file without touching
# MAINTAINERS; maintainer_problem() answers it for each added file.
MAINTAINERS_QUESTION = "WARNING:FILE_PATH_CHANGES:"


def unanswered_warnings(warnings, report):
    """checkpatch's WARNINGS less its MAINTAINERS question, which the
    get_maintainer gate answers (a patch that adds a file no entry covers
    fails there)."""
    return warnings - report.count(MAINTAINERS_QUESTION)


def signoff_problems(commit, cwd=None):
    cwd = cwd or tree.TREE
    author = git("log", "-1", "--format=%an <%ae>", commit, cwd=cwd).stdout.strip()
    body = git("log", "-1", "--format=%B", commit, cwd=cwd).stdout
    sobs = re.findall(r"^Signed-off-by: (.+)$", body, re.M)
    problems = []
    if author != AUTHOR:
        problems.append(f"author is {author!r}, not {AUTHOR!r}")
    if author not in sobs:
        problems.append(f"no Signed-off-by: {author}")
    return problems


def ensure_worktree(path, commit):
    if not (path / ".git").exists():
        if path.exists():
            shutil.rmtree(path)
        git("worktree", "prune", cwd=tree.TREE)
        res = git("worktree", "add", "--detach", "-f", str(path), commit, cwd=tree.TREE)
        if res.returncode:
            raise KxError(f"git worktree add {path} failed: {res.stderr}")
    res = git("checkout", "-q", "--detach", "-f", commit, cwd=path)
    if res.returncode:
        raise KxError(f"checkout of {commit} in {path} failed: {res.stderr}")


def build_at(commit, config):
    """Build Image at COMMIT in the check worktree; (ok, log tail)."""
    ensure_worktree(CHECK_TREE, commit)
    try:
        kbuild.build_tree(CHECK_TREE, config, state=commit)
        return True, ""
    except KxError as exc:
        return False, str(exc)[-1500:]


def checked_build(res, objs, commit):
    """A W=1/sparse build that failed, or in which sparse checked nothing,
    found no warnings because it did not look: that is an error, not 0."""
    out = res.stdout + res.stderr
    if res.returncode:
        raise KxError(f"the W=1/sparse build of {' '.join(objs)} at {commit[:12]} failed "
                      f"(exit {res.returncode}): {out.strip()[-800:]}")
    if not re.search(r"^\s+CHECK\s", out, re.M):
        raise KxError(f"sparse checked none of {' '.join(objs)} at {commit[:12]} "
                      f"(is it installed?): {out.strip()[-800:]}")


def built_objects(files):
    """The objects of the FILES that exist in the check worktree and that a
    gate config builds: their .o is in one of the gate builds (tools/, and a
    file #included by another, the KUnit suite, are not kbuild's). A patch is
    built on one gate config, so the .o of a file it adds may be in the other
    config's build only; make builds it for this one."""
    return [f[:-2] + ".o" for f in files
            if f.endswith(".c") and (CHECK_TREE / f).exists()
            and any((CHECK_TREE / f".kx-{c}" / (f[:-2] + ".o")).exists()
                    for c in GATE_CONFIGS)]


def patch_configs(k, count, seed, configs=GATE_CONFIGS):
    """The configs patch K (from 0, of COUNT) is built on: one, in turn by
    patch and SEED, so that two consecutive seeds build every patch on each;
    the last patch, the whole series, on all of them."""
    if k == count - 1:
        return list(configs)
    return [configs[(k + seed) % len(configs)]]


def warnings_at(commit, config, files):
    """{path: {warning}} from W=1, sparse (C=2) and kernel-doc for FILES at
    COMMIT, which must be checked out and built in the check worktree.
    Line numbers are dropped: they move with every patch."""
    out = CHECK_TREE / f".kx-{config}"
    lines = []
    objs = built_objects(files)
    if objs:
        res = subprocess.run(["make", f"O={out.name}", "W=1", "C=2", *objs], cwd=CHECK_TREE,
                             env={**kbuild.os.environ, **kbuild.make_env()},
                             capture_output=True, text=True)
        checked_build(res, objs, commit)
        lines += (res.stdout + res.stderr).splitlines()
    docs = [f for f in files if f.endswith((".c", ".h")) and (CHECK_TREE / f).exists()]
    if docs:
        res = subprocess.run(["perl", "scripts/kernel-doc", "-none", *docs], cwd=CHECK_TREE,
                             capture_output=True, text=True)
        lines += [f"kernel-doc {ln}" for ln in res.stderr.splitlines()]
    found = {}
    for ln in lines:
        tool = "kernel-doc: " if ln.startswith("kernel-doc ") else ""
        m = WARNING.match(ln[len("kernel-doc "):] if tool else ln)
        if m:
            found.setdefault(m.group(1), set()).add(f"{tool}{m.group(1)}: {m.group(2)}: "
                                                    f"{m.group(3)}")
        elif tool and ("warning" in ln.lower() or "error" in ln.lower()):
            found.setdefault("", set()).add(ln)
    return found


def new_warnings(before, after, files):
    """Warnings in FILES (or unattributed) that AFTER has and BEFORE lacks."""
    def pick(found):
        return set().union(*(found.get(f, set()) for f in [*files, ""]))
    return sorted(pick(after) - pick(before))


# Directives that Sphinx and the kernel's Sphinx extensions add to reST; plain
# docutils does not know them. Their content is accepted unparsed.
SPHINX_DIRECTIVES = ("toctree", "only", "kernel-doc", "kernel-feat", "kernel-abi",
                     "kernel-include", "kernel-figure", "kernel-image", "kernel-render",
                     "c:function", "c:macro", "c:type", "c:struct", "flat-table")


def register_sphinx_directives():
    from docutils.parsers.rst import Directive, directives

    class Opaque(Directive):
        has_content = True
        optional_arguments = 10
        final_argument_whitespace = True
        option_spec = None

        def run(self):
            return []

    Opaque.option_spec = type("AnyOption", (dict,), {
        "__getitem__": lambda self, key: directives.unchanged,
        "__contains__": lambda self, key: True})()
    for name in SPHINX_DIRECTIVES:
        directives.register_directive(name, Opaque)


def rst_problems(path):
    """docutils messages of level warning or worse for the .rst at PATH
    (Sphinx-only directives are known and their content is not checked)."""
    import io
    import docutils.core
    register_sphinx_directives()
    stream = io.StringIO()
    docutils.core.publish_doctree(path.read_text(), source_path=str(path), settings_overrides={
        "report_level": 2, "halt_level": 5, "warning_stream": stream})
    return [ln for ln in stream.getvalue().splitlines()
            if re.search(r"\((WARNING|ERROR|SEVERE)/\d\)", ln)]


def git_am_fresh(patches, head_tree):
    """Apply PATCHES with git am on a fresh pristine checkout; compare trees."""
    ensure_worktree(AM_TREE, tree.BASE_TAG)
    for patch in patches:
        res = git("am", "-q", str(patch), cwd=AM_TREE)
        if res.returncode:
            git("am", "--abort", cwd=AM_TREE)
            return f"git am of {patch.name} failed: {res.stderr.strip()[:500]}"
    got = git("rev-parse", "HEAD^{tree}", cwd=AM_TREE).stdout.strip()
    return None if got == head_tree else "the applied series differs from build/linux"


def get_maintainer(patch, cwd, rolestats=False):
    """scripts/get_maintainer.pl's lines for PATCH, run in the kernel tree CWD."""
    cmd = ["perl", "scripts/get_maintainer.pl", "--no-git", "--no-git-fallback"]
    if not rolestats:
        cmd.append("--no-rolestats")
    res = subprocess.run([*cmd, str(patch)], cwd=cwd, capture_output=True, text=True)
    if res.returncode:
        raise KxError(f"scripts/get_maintainer.pl failed on {patch.name} in {cwd}: "
                      f"{res.stderr.strip()[-500:]}")
    return [ln.strip() for ln in res.stdout.splitlines() if ln.strip()]


def patch_files(patch):
    """The files PATCH touches (new names), in order."""
    found = re.findall(r"^diff --git a/\S+ b/(\S+)$", patch.read_text(), re.M)
    return list(dict.fromkeys(found))


FALLBACK_LIST = "linux-kernel@vger.kernel.org"   # THE REST: every file has it


def added_files(patch):
    """The files PATCH creates."""
    return re.findall(r"^diff --git a/\S+ b/(\S+)\nnew file mode", patch.read_text(), re.M)


def file_maintainers(path, cwd):
    """get_maintainer.pl's lines for a patch that creates PATH alone."""
    with tempfile.TemporaryDirectory() as tmp:
        one = Path(tmp) / "new.patch"
        one.write_text(f"diff --git a/{path} b/{path}\nnew file mode 100644\n--- /dev/null\n"
                       f"+++ b/{path}\n@@ -0,0 +1 @@\n+x\n")
        return get_maintainer(one, cwd)


def maintainer_problem(patch, cwd):
    """Why get_maintainer would not send PATCH where it belongs, or None.

    Every file the series adds must have maintainers of its own, in an entry
    of the project or an existing one (the kexec selftests are KEXEC's), and
    every patch must reach someone besides the fallback list. The project's
    entries claim no existing file and no K: pattern (review of v1)."""
    lines = get_maintainer(patch, cwd)
    orphans = [f for f in added_files(patch)
               if not [ln for ln in file_maintainers(f, cwd) if FALLBACK_LIST not in ln]]
    if orphans:
        return (f"{patch.name}: adds {', '.join(orphans)}, which no MAINTAINERS entry "
                f"covers: list them in an entry of the project ({AUTHOR})")
    if not [ln for ln in lines if FALLBACK_LIST not in ln]:
        return (f"{patch.name}: scripts/get_maintainer.pl names nobody but "
                f"{FALLBACK_LIST} for {', '.join(patch_files(patch))}")
    return None


def cover_problem(patches, path=None):
    """Why the cover letter on disk does not list exactly PATCHES, or None."""
    path = path or cover.COVER
    if not path.exists():
        return f"there is no {path.name}: run ./kx cover"
    listed = cover.shortlog_subjects(path.read_text())
    want = [tree.patch_subject(p) for p in patches]
    if listed == want:
        return None
    gone = [s for s in listed if s not in want]
    new = [s for s in want if s not in listed]
    what = "; ".join([*(f"lists {s!r}, not in patches/series" for s in gone),
                      *(f"lacks {s!r}" for s in new)]) or "lists the patches in another order"
    return f"{path.name} is stale ({what}): run ./kx cover"


def check(configs=GATE_CONFIGS, seed=None):
    """Run every gate; return (passed, report dict). SEED (default: the next
    matrix sample's, which make check's other stages use) picks the config
    each patch is built on."""
    if importlib.util.find_spec("docutils") is None:
        raise KxError("python3-docutils is missing: run ./kx deps")
    seed = matrix.peek_seed() if seed is None else seed
    tree.ensure_tree()
    patches = tree.series_files()
    commits = git("rev-list", "--reverse", f"{tree.BASE_TAG}..HEAD",
                  cwd=tree.TREE).stdout.split()
    if len(commits) != len(patches):
        raise KxError(f"build/linux has {len(commits)} commits over the base but "
                      f"patches/series lists {len(patches)}: run ./kx tree")
    report, passed = {"patches": [], "seed": seed}, True
    files_of = [git("diff", "--name-only", f"{c}^", c, cwd=tree.TREE).stdout.split()
                for c in commits]
    # The tree moves forward only: at each commit, the warnings of the files
    # it and the next patch touch, so the next patch's "before" is ready.
    parent = git("rev-parse", f"{commits[0]}^", cwd=tree.TREE).stdout.strip()
    ok, tail = build_at(parent, configs[0])
    if not ok:
        raise KxError(f"the base does not build on {configs[0]}: {tail}")
    before = warnings_at(parent, configs[0], files_of[0])
    for k, (patch, commit) in enumerate(zip(patches, commits)):
        log(f"series check: {patch.name}")
        errors, warnings, checks, text = checkpatch(patch)
        files = files_of[k]
        unanswered = unanswered_warnings(warnings, text)
        entry = {"patch": patch.name, "commit": commit,
                 "checkpatch": {"errors": errors, "warnings": warnings, "checks": checks,
                                "unanswered_warnings": unanswered},
                 "signoff": signoff_problems(commit), "builds": {}, "new_warnings": []}
        if errors or warnings:
            entry["checkpatch_report"] = text[-3000:]
        for config in reversed(patch_configs(k, len(commits), seed, configs)):
            ok, tail = build_at(commit, config)
            entry["builds"][config] = "ok" if ok else tail
        after = {}
        if all(v == "ok" for v in entry["builds"].values()):
            upcoming = files_of[k + 1] if k + 1 < len(commits) else []
            after = warnings_at(commit, configs[0], sorted({*files, *upcoming}))
            entry["new_warnings"] = new_warnings(before, after, files)
        before = after
        entry["rst"] = {f: rst_problems(CHECK_TREE / f) for f in files
                        if f.endswith(".rst") and (tree.TREE / f).exists()}
        ok = (not errors and not unanswered and not entry["signoff"]
              and all(v == "ok" for v in entry["builds"].values())
              and not entry["new_warnings"] and not any(entry["rst"].values()))
        entry["passed"] = ok
        passed &= ok
        report["patches"].append(entry)
    head_tree = git("rev-parse", "HEAD^{tree}", cwd=tree.TREE).stdout.strip()
    report["git_am"] = git_am_fresh(patches, head_tree) or "ok"
    passed &= report["git_am"] == "ok"
    applied = AM_TREE if report["git_am"] == "ok" else tree.TREE
    for entry, patch in zip(report["patches"], patches):
        entry["maintainer"] = maintainer_problem(patch, applied) or "ok"
        entry["passed"] &= entry["maintainer"] == "ok"
        passed &= entry["passed"]
    report["cover"] = cover_problem(patches) or "ok"
    passed &= report["cover"] == "ok"
    if tree.SELECTED.base == provenance.OLD:
        report["provenance"] = provenance.gate(patches)
    else:   # the gate compares with a later kernel: none is pinned for v6.12
        report["provenance"] = {"passed": False, "hits": [], "error": (
            f"no kernel later than {pins.KERNELS[tree.SELECTED.base]['topdir']} is pinned "
            "to compare the added lines with")}
    passed &= report["provenance"]["passed"]
    report["passed"] = passed
    out = BUILD / "results" / "series-check.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    return passed, report


def summary(report):
    lines = []
    for e in report["patches"]:
        cp = e["checkpatch"]
        builds = " ".join(f"{c}:{'ok' if v == 'ok' else 'FAIL'}" for c, v in e["builds"].items())
        answered = cp["warnings"] - cp.get("unanswered_warnings", cp["warnings"])
        lines.append(f"{'PASS' if e['passed'] else 'FAIL'} {e['patch']}: checkpatch "
                     f"{cp['errors']}E/{cp['warnings']}W/{cp['checks']}C"
                     + (f" ({answered}W the MAINTAINERS question)" if answered else "")
                     + f", build {builds}, "
                     f"new warnings {len(e['new_warnings'])}, signoff "
                     f"{'ok' if not e['signoff'] else '; '.join(e['signoff'])}, "
                     f"get_maintainer {'ok' if e['maintainer'] == 'ok' else 'FAIL'}")
        lines += [f"    {w}" for w in e["new_warnings"]]
        if e["maintainer"] != "ok":
            lines.append(f"    {e['maintainer']}")
        for f, msgs in e["rst"].items():
            lines += [f"    {f}: {m}" for m in msgs]
    if "seed" in report:
        lines.append(f"builds: each patch on one of {', '.join(GATE_CONFIGS)}, in turn from "
                     f"seed {report['seed']} (the next seed builds each on the other), "
                     "the last patch on all")
    lines.append(f"git am onto a fresh {pins.KERNELS[tree.SELECTED.base]['topdir']}: "
                 f"{report['git_am']}")
    lines.append(f"cover letter: {report['cover']}")
    lines += provenance.describe(report["provenance"])
    lines.append(f"{len(report['patches'])} patches, series "
                 f"{'PASSED' if report['passed'] else 'FAILED'} the gates")
    return "\n".join(lines)
