"""The provenance gate of ./kx series check: no code taken from Linux 6.1.

No run of RUN or more consecutive lines that the series adds stands in
Linux 6.1's versions of the arm64 and kexec files unless it also stands in
v5.10.223's: what the series writes is its own, or is code the base it
applies to already has (moved, as 0001 moves hibernate's copy).

Lines are compared with runs of whitespace folded to one space and the ends
stripped; blank lines are skipped, on both sides, and count for nothing.
Every other line counts, a lone "}" or "#endif" too: that is the plain
reading of the requirement, and it makes no hit of bare punctuation (v2
of the series has none; its nearest, the five lines "return false; }
return true; } /*", is short of RUN). Should one appear, it fails the gate
like any other hit, and its text in the report shows what it is.

A run is the added lines of one hunk that stand together in the new file:
a context line that is not blank ends it, a removed line does not (the
lines around it become neighbours).
"""
import re
from pathlib import Path

from . import pins, sources, tree
from .util import KxError

RUN = 6
NEW, OLD = "upstream", "base"      # pins.KERNELS: Linux 6.1.187 and v5.10.223
# The arm64 and kexec files, as globs under a kernel tree.
CORPUS = ("arch/arm64/**/*", "Documentation/arm64/**/*", "kernel/kexec*",
          "include/linux/kexec.h", "tools/testing/selftests/kexec/**/*")
# Board descriptions: no code the series could take, and most of the bytes.
SKIP = "arch/arm64/boot/dts/"
HUNK = re.compile(r"^@@ -\d+(?:,\d+)? \+\d+(?:,\d+)? @@")


def normalise(line):
    return " ".join(line.split())


def added_runs(patch):
    """The runs of lines PATCH adds: lists of (line number in the patch,
    normalised text, text as added), blank lines left out."""
    runs, run, in_hunk = [], [], False
    # split("\n"), not splitlines(): a form feed must not move line numbers.
    for no, line in enumerate(patch.read_text(errors="replace").split("\n"), 1):
        if HUNK.match(line):
            runs.append(run)
            run, in_hunk = [], True
        elif not in_hunk or line.startswith(("\\", "-")):
            continue
        elif line.startswith("+"):
            if normalise(line[1:]):
                run.append((no, normalise(line[1:]), line[1:].rstrip()))
        elif line == "" or line.startswith(" "):
            if normalise(line):
                runs.append(run)
                run = []
        else:                       # "diff --git", "-- ": the hunks are over
            runs.append(run)
            run, in_hunk = [], False
    runs.append(run)
    return [r for r in runs if len(r) >= RUN]


def windows(texts):
    """Every RUN consecutive items of TEXTS, as tuples, in order."""
    return [tuple(texts[i:i + RUN]) for i in range(len(texts) - RUN + 1)]


def corpus_files(root):
    """The arm64 and kexec files of the kernel tree ROOT, sorted; KxError
    naming ROOT when it is missing or holds none of them."""
    if not root.is_dir():
        raise KxError(f"the kernel tree {root} is missing: the provenance gate "
                      "cannot compare the series with it")
    files = sorted({p for g in CORPUS for p in root.glob(g)
                    if p.is_file() and not p.is_symlink()
                    and not str(p.relative_to(root)).startswith(SKIP)})
    if not files:
        raise KxError(f"the kernel tree {root} holds none of {', '.join(CORPUS)}: "
                      "the provenance gate cannot compare the series with it")
    return files


def locate(root, wanted):
    """{window: (file, first line, last line)} for the windows of WANTED that
    stand in ROOT's arm64 and kexec files, at their first place."""
    firsts = {w[0] for w in wanted}     # most lines start no wanted window
    found = {}
    for path in corpus_files(root):
        lines = path.read_text(errors="replace").split("\n")
        kept = [(no, t) for no, t in enumerate(map(normalise, lines), 1) if t]
        texts = [t for _, t in kept]
        for i in range(len(kept) - RUN + 1):
            if texts[i] not in firsts:
                continue
            w = tuple(texts[i:i + RUN])
            if w in wanted and w not in found:
                found[w] = (str(path.relative_to(root)), kept[i][0], kept[i + RUN - 1][0])
    return found


def spans(starts):
    """Merge sorted window starts into (first, last) spans of overlapping windows."""
    out = []
    for i in starts:
        if out and i <= out[-1][1] + RUN - 1:
            out[-1][1] = i
        else:
            out.append([i, i])
    return out


def hit(patch, run, first, last, new_at):
    """The hit made of windows FIRST to LAST of RUN, with where 6.1 has them
    (NEW_AT: window start -> (file, first line, last line))."""
    lines = run[first:last + RUN]
    path, start, end = new_at[first]
    last_path, _, last_end = new_at[last]
    if last_path == path and last_end > start:
        end = last_end
    return {"patch": patch.name, "patch_lines": [lines[0][0], lines[-1][0]],
            "file": path, "file_lines": [start, end], "text": [raw for _, _, raw in lines]}


def hits(patches, new_root, old_root):
    """The runs of RUN or more lines that PATCHES add which stand in NEW_ROOT's
    arm64 and kexec files and not in OLD_ROOT's, merged where they overlap."""
    runs = [(p, run) for p in patches for run in added_runs(p)]
    wanted = {w for _, run in runs for w in windows([t for _, t, _ in run])}
    in_new = locate(new_root, wanted)
    in_old = locate(old_root, set(in_new))
    found = []
    for patch, run in runs:
        ws = windows([t for _, t, _ in run])
        starts = [i for i, w in enumerate(ws) if w in in_new and w not in in_old]
        at = {i: in_new[ws[i]] for i in starts}
        found += [hit(patch, run, a, b, at) for a, b in spans(starts)]
    return found


def tree_patches(path, out):
    """The commits of the git tree PATH over the base, as patch files
    written to OUT: a work tree's series before it is exported."""
    names = tree.git(*tree.FORMAT_PATCH, "-o", str(Path(out).resolve()),
                     f"{tree.BASE_TAG}..HEAD", cwd=path).stdout.split()
    return [Path(n) for n in names]


def tree_of(kernel):
    """The pinned kernel's unpacked tree, fetched and unpacked if need be."""
    return sources.unpacked_kernel(kernel)


def gate(patches):
    """The gate's report entry: passed, hits, and an error that fails it when
    a kernel tree cannot be had (the gate never passes unchecked)."""
    try:
        found = hits(patches, tree_of(NEW), tree_of(OLD))
    except KxError as exc:
        return {"passed": False, "error": str(exc), "hits": []}
    return {"passed": not found, "error": None, "hits": found}


def describe(entry):
    """Lines for the summary: a verdict, then each hit and its text."""
    new, old = (pins.KERNELS[k]["topdir"] for k in (NEW, OLD))
    if entry["error"]:
        return [f"provenance: FAIL: {entry['error']}"]
    if not entry["hits"]:
        return [f"provenance: ok (no {RUN}-line run added that {new} has and {old} lacks)"]
    lines = [f"provenance: FAIL: {len(entry['hits'])} run(s) of {RUN}+ added lines stand "
             f"in {new} and not in {old}"]
    for h in entry["hits"]:
        lines.append(f"    {h['patch']}:{h['patch_lines'][0]}-{h['patch_lines'][1]} = "
                     f"{h['file']}:{h['file_lines'][0]}-{h['file_lines'][1]}")
        lines += [f"        {t}" for t in h["text"]]
    return lines
