"""What make check records of its run, and the table it ends with.

The Makefile writes build/check/stages: the seed first ("seed N"), then
"NAME start EPOCH" and "NAME end EPOCH STATUS" around each stage. make setup
(./kx setup --sample) builds the kernels the seed needs, each timed, and
appends a line per kernel to build/check/builds.jsonl with what ccache gave.
./kx summary reads both and the result records the scenario stage wrote.
"""
import calendar
import json
import os
import subprocess
import time

from . import kbuild, machine, matrix
from .util import BUILD

CHECK = BUILD / "check"
STAGES = CHECK / "stages"
BUILDS = CHECK / "builds.jsonl"
RESULTS = BUILD / "results"
SCENARIO_STAGE = "scenarios"


def ccache_counts():
    """(hits, misses) the workbench's ccache has counted so far, or None."""
    try:
        out = subprocess.run(["ccache", "--print-stats"], capture_output=True, text=True,
                             env={**os.environ, "CCACHE_DIR": str(kbuild.CCACHE)}).stdout
    except OSError:
        return None
    stats = dict(ln.split("\t", 1) for ln in out.splitlines() if "\t" in ln)

    def count(key):
        return int(stats.get(key, "0").strip() or 0)
    return count("direct_cache_hit") + count("preprocessed_cache_hit"), count("cache_miss")


def clock(seconds):
    """SECONDS as h:mm:ss or m:ss."""
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    return f"{h}:{rest // 60:02}:{rest % 60:02}" if h else f"{rest // 60}:{rest % 60:02}"


def build_name(kernel, config, variant):
    return f"{kernel} {config}" + (f" {variant}" if variant else "")


def how_built(record):
    """Whether a build compiled anything, and how much of it ccache gave."""
    hits, misses = record.get("ccache_hits"), record.get("ccache_misses")
    if hits is None or misses is None:
        return "built (ccache not read)"
    if hits + misses == 0:
        return "up to date (nothing compiled)"
    if misses == 0:
        return f"from ccache ({hits} objects)"
    return f"compiled {misses} objects, {hits} from ccache"


def build_timed(kernel, config, variant=""):
    """Build one kernel, print how long it took and what ccache gave, and
    append that to BUILDS for the summary."""
    before, started = ccache_counts(), time.time()
    kbuild.build(kernel, config, variant=variant)
    seconds, after = time.time() - started, ccache_counts()
    record = {"kernel": kernel, "config": config, "variant": variant,
              "seconds": round(seconds, 1), "ended": round(time.time(), 1)}
    if before and after:
        record |= {"ccache_hits": after[0] - before[0], "ccache_misses": after[1] - before[1]}
    CHECK.mkdir(parents=True, exist_ok=True)
    with open(BUILDS, "a") as f:
        f.write(json.dumps(record) + "\n")
    print(f"{build_name(kernel, config, variant)}: {clock(seconds)}, {how_built(record)}",
          flush=True)
    return record


def read_stages(path=STAGES):
    """(seed or None, [(name, start, end or None, status or None)]) from PATH."""
    seed, stages = None, {}
    for line in path.read_text().splitlines() if path.exists() else []:
        words = line.split()
        if words[:1] == ["seed"] and len(words) == 2:
            seed = int(words[1])
        elif len(words) >= 3 and words[1] == "start":
            stages[words[0]] = [words[0], float(words[2]), None, None]
        elif len(words) == 4 and words[1] == "end" and words[0] in stages:
            stages[words[0]][2:] = [float(words[2]), int(words[3])]
    return seed, [tuple(s) for s in stages.values()]


def read_builds(path=BUILDS):
    if not path.exists():
        return []
    return [json.loads(ln) for ln in path.read_text().splitlines() if ln.strip()]


def started_at(record):
    try:
        return calendar.timegm(time.strptime(record["started"], "%Y-%m-%dT%H:%M:%SZ"))
    except (KeyError, ValueError):
        return None


def results_between(start, end, results=RESULTS):
    """The scenario result records of runs that started in [START, END]."""
    out = []
    for path in sorted(results.glob("*.json")) if results.exists() else []:
        try:
            record = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        when = started_at(record) if isinstance(record, dict) else None
        if "scenario" in record and when is not None and start - 1 <= when <= end:
            out.append(record)
    return sorted(out, key=started_at)


def matches(cell, record):
    """Whether RECORD is a run of CELL (a test's own run, given a timeout or
    other arguments, is not)."""
    return (record.get("timeout") is None
            and (cell.scenario, cell.kernel, cell.config, cell.profile, cell.payload_mib,
                 cell.smp, cell.append, cell.variant)
            == (record["scenario"], record["kernel"], record["config"], record["profile"],
                record["payload_mib"], record["smp"], record.get("append", ""),
                record.get("variant", ""))
            and (cell.cpu or machine.default_cpu(cell.config)) == record["cpu"]
            and (not cell.mem or cell.mem == record["mem"]))


def run_name(record, planned):
    """The name of the planned cell RECORD ran, or one made from the record."""
    cell = next((c for c in planned if matches(c, record)), None)
    if cell:
        return str(cell), cell
    made = matrix.Cell(record["scenario"], record["config"], record["profile"],
                       payload_mib=record["payload_mib"], smp=record["smp"],
                       kernel=record["kernel"], append=record.get("append", ""),
                       cpu=record["cpu"], variant=record.get("variant", ""))
    extra = f" (timeout {record['timeout']} s)" if record.get("timeout") else ""
    return f"{made}{extra}", None


def rows(stages_path=STAGES, builds_path=BUILDS, results=RESULTS, now=None):
    """The summary's rows: (what, name, time, result)."""
    now = time.time() if now is None else now
    seed, stages = read_stages(stages_path)
    out = []
    for name, start, end, status in stages:
        result = ("running or killed" if end is None else "ok" if status == 0
                  else f"FAILED (exit {status})")
        out.append(("stage", name, clock((end or now) - start), result))
    if stages:
        out.append(("stage", "all", clock((stages[-1][2] or now) - stages[0][1]), ""))
    for b in read_builds(builds_path):
        out.append(("kernel", build_name(b["kernel"], b["config"], b["variant"]),
                    clock(b["seconds"]), how_built(b)))
    scenario = next((s for s in stages if s[0] == SCENARIO_STAGE), None)
    if scenario and seed is not None:
        planned = matrix.seed_cells(seed)
        seen = set()
        for record in results_between(scenario[1], scenario[2] or now, results):
            name, cell = run_name(record, planned)
            seen.add(cell)
            # A run that is no planned cell is one of a test's own (the base
            # must fail, a guest given one second must time out): its test
            # judges it, so its status here is no verdict.
            out.append(("cell" if cell else "test run", name,
                        clock(record.get("duration_s", 0)), record.get("status", "?")))
        out += [("cell", str(c), "", "NO RESULT") for c in planned if c not in seen]
        statuses = [r[3] for r in out if r[0] == "cell"]
        counts = {s: statuses.count(s) for s in dict.fromkeys(statuses)}
        out.append(("cells", f"{len(statuses)} of seed {seed}", "",
                    ", ".join(f"{n} {s}" for s, n in counts.items())))
    nxt = matrix.peek_seed()
    kernels, cells = matrix.kernels(nxt), matrix.seed_cells(nxt)
    out.append(("next", f"seed {nxt}", "", f"{len(cells)} cells on {len(kernels)} kernels"))
    out += [("next kernel", build_name(*b), "", "") for b in kernels]
    out += [("next cell", str(c), "", "") for c in cells]
    return seed, out


def table(seed, row_list):
    head = ("", "", "time", "")
    widths = [max(len(r[i]) for r in [head, *row_list]) for i in range(4)]
    title = (f"make check summary: seed {seed} (KX_MATRIX_SEED={seed} reproduces it)"
             if seed is not None else f"make check summary: no run recorded in {STAGES}")
    lines = [title]
    for r in row_list:
        lines.append(f"{r[0]:<{widths[0]}}  {r[1]:<{widths[1]}}  {r[2]:>{widths[2]}}  {r[3]}"
                     .rstrip())
    return "\n".join(lines)


def summary():
    seed, row_list = rows()
    return table(seed, row_list)
