"""./kx cover: patches/0000-cover-letter.patch, written from what is on disk.

The prose is patches/cover-letter.in, which people edit. Everything else is
generated: the test matrix from the result JSONs in build/results/, the
measured figures from build/report/bench.json (or a sentence saying the
bench was not run), the shortlog and diffstat of build/linux's commits
over kx-base, which must be the patches patches/series lists, and at the
end, from v2 on, the range-diff against the previous version that ./kx
series range-diff wrote (refused while stale: see rangediff.py).
"""
import json
import re
import textwrap
from collections import defaultdict
from pathlib import Path

from . import bench as bench_mod, kbuild, rangediff, results, tree
from .util import BUILD, REPO, KxError

# Each series' subject line, the kernels its letter reports (the series,
# its base, and for v5.10 the 6.1 peer) and where its full matrix goes.
TITLES = {"v5.10": "arm64: kexec: relocate with the MMU and caches on",
          "v6.12": "arm64: kexec: flat tables, load checks, crash protection"}
MATRIX_FILES = {"v5.10": REPO / "docs" / "series" / "matrix-v{version}.txt",
                "v6.12": REPO / "series" / "v6.12" / "matrix-v{version}.txt"}
# What each letter reports: its cells, and its kernels' rows of the bench.
SECTIONS = {"v5.10": ("matrix", "bench"), "v6.12": ("matrix", "bench")}
BENCH = BUILD / "report" / "bench.json"
# A statement in the template that must be checked against the code; the
# mark stays in the cover letter until a person removes it from the template.
UNCONFIRMED = "[UNCONFIRMED]"


def select():
    """Point COVER, TEMPLATE, MATRIX_FILE, TITLE and the kernels reported at
    the series tree.use() selected (v5.10 unless another was)."""
    global TITLE, COVER, TEMPLATE, MATRIX_FILE, SERIES, KERNEL_ORDER
    s = tree.SELECTED
    TITLE, SERIES = TITLES[s.name], s.kernel
    COVER, TEMPLATE = s.patches / "0000-cover-letter.patch", s.patches / "cover-letter.in"
    MATRIX_FILE = Path(str(MATRIX_FILES[s.name]).format(version=s.version))
    KERNEL_ORDER = (s.kernel, s.base) + (("upstream",) if s.name == "v5.10" else ())


TITLE = COVER = TEMPLATE = MATRIX_FILE = SERIES = KERNEL_ORDER = None
select()
METRICS = {"load_overhead_kb": "load overhead KiB", "load_s": "kexec -l s",
           "exec_to_userspace_s": "kexec -e to user s"}


def shortlog_subjects(text):
    """The subjects a cover letter's shortlog lists, in order."""
    subjects, inside = [], False
    for line in text.splitlines():
        if line.startswith("Range-diff against "):
            break                                   # the range-diff ends the letter
        if re.match(r"^\S.* \(\d+\):$", line):
            inside = True
        elif inside and line.startswith("    ") and subjects:
            subjects[-1] += " " + line.strip()      # a wrapped subject
        elif inside and line.startswith("  "):
            subjects.append(line.strip())
        elif inside and not line.strip():
            inside = False
    return subjects


def tree_series(patches):
    """Shortlog, diffstat and date of build/linux's kx-base..HEAD, which must be PATCHES."""
    tree.require_commits_are(patches)
    shortlog = tree.git("shortlog", "-w0,2,4", f"{tree.BASE_TAG}..HEAD").stdout.rstrip()
    stat = tree.git("diff", "--stat=72", "--summary", f"{tree.BASE_TAG}..HEAD").stdout.rstrip()
    date = tree.git("log", "-1", "--format=%aD", "HEAD").stdout.strip()
    return shortlog, stat, date


def current_series_results(runs, tree_id):
    """RUNS without the series runs of another version of the series than
    TREE_ID (or of an unknown one) and without development runs (kernel
    "tree": ./kx run --tree); (kept, how many were left out)."""
    kept = [r for r in runs if r["kernel"] in KERNEL_ORDER and
            (r["kernel"] != SERIES or r.get("source_tree") == tree_id)]
    return kept, len(runs) - len(kept)


def load_results(directory=results.RESULTS):
    """Every run record in DIRECTORY (other JSONs there, e.g. series-check, are not runs)."""
    runs = []
    for path in sorted(directory.glob("*.json")):
        try:
            record = json.loads(path.read_text())
        except ValueError as exc:
            raise KxError(f"result {path} is not valid JSON: {exc}")
        if isinstance(record, dict) and "scenario" in record and "verdict" in record:
            runs.append(record)
    return runs


def cell_of(r):
    """Runs that differ in anything they were asked to do are different cells."""
    return (r["kernel"], r["scenario"], r["config"], r["profile"], r.get("cpu") or "-",
            r.get("mem") or "-", r.get("smp") or 1, r.get("payload_mib") or "-",
            r.get("gens") or 1, r.get("append") or "-", r.get("variant") or "-")


def status_of(r):
    """A run's status; results from before statuses say only pass or fail."""
    return r.get("status") or ("PASS" if r["verdict"] == "pass" else "FAIL")


def cell_order(cell):
    kernel, scenario, config = cell[:3]
    rank = KERNEL_ORDER.index(kernel) if kernel in KERNEL_ORDER else len(KERNEL_ORDER)
    cfg = kbuild.CONFIGS.index(config) if config in kbuild.CONFIGS else len(kbuild.CONFIGS)
    return (rank, kernel, scenario, cfg, config, *map(str, cell[3:]))


def table(header, rows):
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    return ["  ".join(str(x).ljust(w) for x, w in zip(row, widths)).rstrip()
            for row in (header, *rows)]


def matrix(runs, older=0):
    """The test matrix section: pass counts per cell, failures, date range.
    OLDER: how many series runs of earlier versions were left out."""
    if not runs:
        return ("Test matrix: build/results/ holds no results, so no test is claimed "
                "to have passed.")
    cells = defaultdict(list)
    for r in runs:
        cells[cell_of(r)].append(r)
    rows = []
    for cell in sorted(cells, key=cell_order):
        rs = sorted(cells[cell], key=lambda r: r["started"])
        passed = sum(r["verdict"] == "pass" for r in rs)
        rows.append([*cell[:7], f"{cell[7]} MiB" if cell[7] != "-" else "-", *cell[8:],
                     f"{passed}/{len(rs)}", status_of(rs[-1])])
    starts = sorted(r["started"] for r in runs)
    failed = sorted((r for r in runs if r["verdict"] != "pass"), key=lambda r: r["started"])
    qemus = sorted({r.get("qemu", "unknown") for r in runs})
    total = sum(r["verdict"] == "pass" for r in runs)
    out = [textwrap.fill(
        f"Test matrix, generated by ./kx cover from the {len(runs)} results in "
        f"build/results/ ({total} passed, {len(failed)} failed), runs started "
        f"{starts[0]} to {starts[-1]}, on {'; '.join(qemus)} (TCG). Series runs "
        f"count only if they ran this version of the series ({older} runs of "
        "earlier versions or of development trees left out). 'passed' counts "
        "the runs of a cell that "
        "passed; 'last' is the status of its newest run.", 72), ""]
    out += table(["kernel", "scenario", "config", "profile", "cpu", "mem", "smp",
                  "payload", "gens", "append", "variant", "passed", "last"], rows)
    if failed:
        out += ["", f"Failed runs ({len(failed)}), each with its first reason "
                    "(log: build/results/<run>.log):"]
        for r in failed:
            reason = (r.get("reasons") or ["no reason recorded"])[0]
            out.append(f"  {r['run']}: {status_of(r)}: {reason}")
    else:
        out += ["", "No run failed."]
    return "\n".join(out)


# Runs that fail on purpose, to show the judges catch it: a boot killed at a
# timeout the run asked for, a warning provoked with kx.warn=1.
DELIBERATE = ("kx.warn=1",)


def deliberate(r):
    return bool(r.get("timeout")) or any(w in (r.get("append") or "").split()
                                         for w in DELIBERATE)


def short_name(cell):
    """Scenario, config, profile and build variant of a cell_of() key."""
    return " ".join(str(x) for x in (*cell[1:4], cell[10]) if x != "-")


def summary(runs, older=0, full=None):
    """The letter's results: for the series, the cells that passed of those
    run, per scenario and config (a cell counts by its newest run); every
    cell of a peer, which fails where a patch is needed, with its first
    reason; the deliberate failures counted; FULL names the file with every
    cell (matrix())."""
    if not runs:
        return ("Results: build/results/ holds no results, so no test is claimed "
                "to have passed.")
    kept = [r for r in runs if not deliberate(r)]
    newest = {}
    for r in sorted(kept, key=lambda r: r["started"]):
        newest[cell_of(r)] = r
    configs = [c for c in kbuild.CONFIGS if any(k[0] == SERIES and k[2] == c
                                                for k in newest)]
    scenarios = sorted({k[1] for k in newest if k[0] == SERIES})
    rows = []
    for sc in scenarios:
        row = [sc]
        for cfg in configs:
            mine = [r for k, r in newest.items() if k[:3] == (SERIES, sc, cfg)]
            row.append(f"{sum(status_of(r) == 'PASS' for r in mine)}/{len(mine)}"
                       if mine else "-")
        rows.append(row)
    starts = sorted(r["started"] for r in runs)
    cells = [k for k in newest if k[0] == SERIES]
    passed = sum(status_of(newest[k]) == "PASS" for k in cells)
    out = [textwrap.fill(
        f"Results, from {len(runs)} runs in QEMU (TCG) started {starts[0][:10]} to "
        f"{starts[-1][:10]}: {passed} of the {len(cells)} cells run on this version "
        "of the series passed (a cell is a scenario with one config, profile, CPU "
        "and set of options; it counts by its newest run). Cells that passed, of "
        "those run, per scenario and config:", 72), ""]
    out += table(["scenario", *configs], rows)
    failed = [k for k in cells if status_of(newest[k]) != "PASS"]
    if failed:
        out += ["", "Series cells whose newest run failed:"]
        out += [f"  {short_name(k)}: {status_of(newest[k])}: "
                f"{(newest[k].get('reasons') or ['no reason recorded'])[0]}" for k in failed]
    flaky = [k for k in cells if status_of(newest[k]) == "PASS" and any(
        cell_of(r) == k and status_of(r) != "PASS" for r in kept)]
    if flaky:
        out += ["", "Series cells that failed in an earlier run and passed in their newest:"]
        for k in flaky:
            r = next(r for r in kept if cell_of(r) == k and status_of(r) != "PASS")
            out += textwrap.wrap(f"{short_name(k)}: {status_of(r)}: "
                                 f"{(r.get('reasons') or ['no reason recorded'])[-1]}",
                                 72, initial_indent="  ", subsequent_indent="    ")
    peers = sorted((k for k in newest if k[0] != SERIES), key=cell_order)
    failing = [k for k in peers if status_of(newest[k]) != "PASS"]
    if failing:
        out += ["", textwrap.fill(
            "The unmodified base (and any other peer) fails where a patch makes "
            "the difference, each cell for the reason given:", 72)]
        for k in failing:
            r = newest[k]
            reason = (r.get("reasons") or ["-"])[0]
            out += textwrap.wrap(f"{k[0]} {k[1]} {k[2]} {k[3]}: {status_of(r)}: {reason}",
                                 72, initial_indent="  ", subsequent_indent="    ")
    passing = sorted({f"{k[0]} {k[1]}" for k in peers if k not in failing})
    if passing:
        out += ["", textwrap.fill(f"The peers passed their other {len(peers) - len(failing)} "
                                  f"cells ({', '.join(passing)}).", 72,
                                  break_on_hyphens=False)]
    extra = len(runs) - len(kept)
    if extra:
        out += ["", textwrap.fill(
            f"{extra} runs failed on purpose (a timeout the run asked for, a warning "
            "provoked), to show the judges catch a hang and a warning; they are "
            "not counted above.", 72)]
    if older:
        out += ["", textwrap.fill(f"{older} runs of earlier versions of the series or of "
                                  "development trees are left out.", 72)]
    if full:
        out += ["", textwrap.fill(f"Every cell with its runs: {full} in the workbench.", 72,
                                  break_long_words=False, break_on_hyphens=False)]
    return "\n".join(out)


def figure(s, part="median"):
    """S's median, or with PART "spread" its min..max ("" when they agree)."""
    if not s:
        return "-" if part == "median" else ""
    fmt = "{:.3f}" if isinstance(s["median"], float) else "{}"
    if part == "median":
        return fmt.format(s["median"])
    return "" if s["min"] == s["max"] else f"{fmt.format(s['min'])}..{fmt.format(s['max'])}"


# Short metric names, so that a row with its spreads fits 80 columns.
SHORT_METRICS = {"load_overhead_kb": "overhead KiB", "load_s": "kexec -l s",
                 "exec_to_userspace_s": "kexec -e s"}


PROFILE_ORDER = ["dt-el1", "dt-el2", "uefi"]


# How a letter names the kernels of its bench tables: the v6.12 letter is
# about v6.12 alone, and the names must leave its tables within 80 columns.
SHOWN = {"base-6.12": "v6.12", "series-6.12": "series"}


def shown(kernel):
    return SHOWN.get(kernel, kernel)


def ratio_name(peer):
    """The column of the series over PEER: /base, or /up for upstream."""
    return "/up" if peer == "upstream" else "/base"


def bench(path=BENCH):
    """The measured figures from bench.json, or the sentence that there are none."""
    if not path.exists():
        return textwrap.fill("Measured figures: the bench (make bench, which writes "
                             "build/report/bench.json) was not run for this posting, so "
                             "no figure measured here is given.", 72)
    report = json.loads(path.read_text())
    plan = report.get("plan", {})
    # This letter's kernels, in the report's order, and the series over each
    # of the others (/base, and /up for v5.10's 6.1 peer).
    kernels = [k for k in report["kernels"] if k in KERNEL_ORDER]
    peers = [k for k in KERNEL_ORDER[1:] if k in kernels]
    out = [textwrap.fill(
        f"Measured figures, from ./kx bench ({report['mode']} mode, started "
        f"{report['started']}, config {report['config']}, "
        f"{plan.get('reps', '?')} repetition(s) per figure, under QEMU TCG): the median, "
        "and under it min..max where repetitions differ; RAM/load is the guest's RAM and "
        "the payload loaded, in MiB; the overhead is what kexec -l takes beyond the "
        "segments; the ratios "
        f"({', '.join(ratio_name(p) for p in peers)}) are the series over "
        f"{' and over '.join(shown(p) for p in peers)} from the same run.", 72)]
    for profile in sorted({r["profile"] for r in report["rows"]}, key=PROFILE_ORDER.index):
        rows = []
        for r in (r for r in report["rows"] if r["profile"] == profile):
            rows.append([f"{r['mem'] or '-'}/{r['payload_mib']}",
                         SHORT_METRICS.get(r["metric"], r["metric"]),
                         *(figure(r.get(k)) for k in kernels),
                         *(r.get(bench_mod.ratio_key(SERIES, p), "-") for p in peers)])
            spread = [figure(r.get(k), "spread") for k in kernels]
            if any(spread):
                rows.append(["", "", *spread, *("" for _ in peers)])
        out += ["", f"Under {profile}:", ""]
        out += table(["RAM/load", "metric", *map(shown, kernels),
                      *(ratio_name(p) for p in peers)], rows)
    # ./kx bench --ptdump writes the leaf table of every config beside it.
    ptdump = path.with_name("ptdump.json")
    if ptdump.exists():
        report = json.loads(ptdump.read_text())
        out += ["", f"From ./kx bench --ptdump (started {report['started']}):"]
    if report.get("leaves"):
        # One RAM size goes in the heading, so that the table fits 80 columns.
        mems = sorted({lf["mem"] for lf in report["leaves"]})
        ram = f" in {mems[0]} MiB guests" if len(mems) == 1 else ""
        out += ["", f"Linear-map leaf entries{ram} (ptdump, kernel_page_tables in",
                "debugfs; transl. counts each block, page and contiguous run once):", ""]
        out += table(["config", "kernel", *(["MiB"] if not ram else []), "cmdline", "PUD",
                      "PMD", "PTE", "transl."],
                     [[lf.get("config", report["config"]), shown(lf["kernel"]),
                       *([lf["mem"]] if not ram else []), lf["cmdline"],
                       lf.get("leaf_pud", 0), lf.get("leaf_pmd", 0),
                       lf.get("leaf_pte", 0), lf.get("translations", "-")]
                      for lf in report["leaves"] if lf["kernel"] in KERNEL_ORDER])
    return "\n".join(out)


def body(template_text, sections):
    """The template without its '#' comment lines, each {{name}} filled in."""
    text = "".join(ln for ln in template_text.splitlines(keepends=True)
                   if not ln.startswith("#"))
    for name, value in sections.items():
        if "{{" + name + "}}" not in text:
            raise KxError(f"{TEMPLATE.name} lacks the placeholder {{{{{name}}}}}")
        text = text.replace("{{" + name + "}}", value)
    left = re.findall(r"\{\{\w+\}\}", text)
    if left:
        raise KxError(f"{TEMPLATE.name} has unknown placeholders: {', '.join(left)}")
    return text.strip("\n")


def render(patches=None, template=None, results_dir=results.RESULTS, bench_json=BENCH,
           range_diff=None, matrix_file=None):
    """The cover letter's text. RANGE_DIFF: the range-diff file (default
    rangediff.OUT), refused if missing or made from another series;
    MATRIX_FILE, when given, receives every cell (matrix()) and the letter
    points to it."""
    patches = tree.series_files() if patches is None else patches
    if not patches:
        raise KxError(f"{tree.rel(tree.SERIES)} lists no patches: nothing to cover")
    template = template or TEMPLATE
    if not template.exists():
        raise KxError(f"no cover letter template {template}")
    shortlog, stat, date = tree_series(patches)
    against = rangediff.section(range_diff)
    runs, older = current_series_results(load_results(results_dir),
                                         kbuild.source_tree_id(tree.TREE))
    full = None
    if matrix_file:
        matrix_file.parent.mkdir(parents=True, exist_ok=True)
        matrix_file.write_text(matrix(runs, older) + "\n")
        full = matrix_file.relative_to(REPO) if matrix_file.is_relative_to(REPO) \
            else matrix_file
    sections = {"matrix": summary(runs, older, full)}
    if "bench" in SECTIONS[tree.SELECTED.name]:
        sections["bench"] = bench(bench_json)
    text = body(template.read_text(), sections)
    version = tree.git("--version").stdout.split()[-1]
    return (f"From 0000000000000000000000000000000000000000 Mon Sep 17 00:00:00 2001\n"
            f"From: {tree.AUTHOR}\nDate: {date}\n"
            f"Subject: {tree.subject_prefix(0, len(patches))} {TITLE}\n\n"
            f"{text}\n\n{shortlog}\n\n{stat}\n\n{against}-- \n{version}\n")


def write(**kw):
    COVER.write_text(render(**{"matrix_file": MATRIX_FILE, **kw}))
    return COVER
