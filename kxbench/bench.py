"""make bench: base, upstream and series side by side, in one run.

Every figure is the median of its repetitions with its spread (min..max),
and a ratio against base and upstream from the same run. QEMU TCG models
no caches: nothing here can show the hardware effect of relocating with
caches on, and the report says so.
"""
import json
from concurrent.futures import ThreadPoolExecutor
import statistics
import time

from . import kbuild, matrix
from .runner import run_scenario
from .util import BUILD, KxError, log

# The two series, each beside the kernels it is measured against: v5.10's
# base and upstream 6.1 (which relocates with the MMU on, its own way), and
# the unmodified v6.12 for the v6.12 series.
LINES = {"v5.10": {"series": "series", "peers": ("base", "upstream")},
         "v6.12": {"series": "series-6.12", "peers": ("base-6.12",)}}
KERNELS = ("base", "upstream", "series", "base-6.12", "series-6.12")
CONFIG = "4k-48"
# Load overhead at 1 to 64 GiB (the relocation tables must not grow with
# RAM); a 64 GiB guest needs no more host memory than its struct pages. The
# linear map's leaves on CONFIG; those of every config are ./kx bench
# --ptdump's, which builds every kernel on every config (over an hour cold).
FULL = {"profiles": ("dt-el2", "uefi"), "mems": (1024, 4096, 16384, 65536),
        "payloads": (32, 256), "reps": 3, "ptdump_configs": (CONFIG,)}
# The quick bench (make check) measures the kernels make check builds anyway;
# upstream 6.1 is make bench's.
QUICK = {"profiles": ("dt-el2",), "mems": (1024, 4096), "payloads": (32,), "reps": 1,
         "ptdump_configs": (CONFIG,),
         "kernels": ("base", "series", "base-6.12", "series-6.12")}
# The linear-map table alone, on every config (./kx bench --ptdump).
PTDUMP_ONLY = {"profiles": ("dt-el2",), "mems": (), "payloads": (), "reps": 0,
               "ptdump_configs": kbuild.CONFIGS}
PLANS = {"full": FULL, "quick": QUICK, "ptdump": PTDUMP_ONLY}

# The linear map without and with crashkernel=: the v5.10 series keeps 2 MiB
# blocks or runs where the base maps pages; ,high needs none but its region.
# The v6.12 series gives up only leaves over 2 MiB, so that it can unmap the
# crash kernel region while one is loaded, which v6.12 does not.
PTDUMP = ("rodata=on", "rodata=on crashkernel=256M", "rodata=on crashkernel=512M,high",
          "rodata=full")
PTDUMP_MEM = 4096
# The series' translations with crashkernel=256M, at most this share of the
# base's: 2 MiB units where the base has pages.
CRASH_TRANSLATIONS_LIMIT = {"4k": 0.01, "16k": 0.01, "64k": 0.04}
# kexec_file_load: kexec_load's purgatory sha256-checks every segment with the
# MMU off in all three kernels alike, which would bury the relocation's time.
SCENARIO = "kexec-file"
METRICS = ("load_overhead_kb", "load_s", "exec_to_userspace_s")
REPORT = BUILD / "report"
HARDWARE_REFERENCE = ("Published hardware reference (not measured here): relocating "
                      "25 MB with the MMU off took 0.44 s of a 0.76 s kexec reboot on an "
                      "arm64 server (Broadcom Stingray); with the MMU on the copy took "
                      "0.022 s. Source: P. Tatashin, \"[RFC v2 0/8] arm64: MMU enabled "
                      "kexec relocation\", kexec@lists.infradead.org, 31 July 2019.")


def report_path(mode, ext):
    """build/report/bench.EXT, or ptdump.EXT for the leaf table alone."""
    return REPORT / f"{'ptdump' if mode == 'ptdump' else 'bench'}.{ext}"


def line_of(kernel):
    """The LINES entry whose series or peers KERNEL is."""
    return next(line for line in LINES.values()
                if kernel == line["series"] or kernel in line["peers"])


def ratio_key(series, peer):
    """The row key of SERIES' median over PEER's: series_vs_base for v5.10."""
    return f"{series}_vs_{peer}"


def configs_of(kernel, configs):
    """Those of CONFIGS that KERNEL is built for: v6.12 on its three granules."""
    if line_of(kernel) is LINES["v6.12"]:
        return [c for c in configs if c in matrix.V612_CONFIGS]
    return list(configs)


def measure(kernel, scenario, config=CONFIG, **kw):
    verdict, path, ctx = run_scenario(scenario, kernel=kernel, config=config, **kw)
    if not verdict.passed:
        raise KxError(f"bench run failed, so its figures would mean nothing: "
                      f"{'; '.join(verdict.reasons)} (log {ctx.log})")
    return verdict.metrics, str(path)


def collect(plan, jobs=2):
    """Run every measurement, JOBS guests at a time; return the raw samples.
    The runs are listed interleaved (each repetition runs base, upstream,
    series in turn), so drift and a busy neighbour hit all kernels alike."""
    kernels = plan.get("kernels", KERNELS)
    for kernel in kernels:
        for config in configs_of(kernel, sorted({CONFIG, *plan["ptdump_configs"]})):
            kbuild.build(kernel, config)
    reboots = []
    for profile in plan["profiles"]:
        for mem in plan["mems"]:
            reboots += [(kernel, profile, mem, 32, rep) for rep in range(plan["reps"])
                        for kernel in kernels]
        for payload in plan["payloads"]:
            if payload != 32:   # 32 MiB is measured above at every RAM size
                reboots += [(kernel, profile, None, payload, rep)
                            for rep in range(plan["reps"]) for kernel in kernels]
    dumps = [(config, args, kernel) for config in plan["ptdump_configs"]
             for args in PTDUMP for kernel in kernels
             if config in configs_of(kernel, [config])]

    def reboot(job):
        kernel, profile, mem, payload, rep = job
        m, path = measure(kernel, SCENARIO, profile=profile, mem=mem, payload_mib=payload)
        return {"kernel": kernel, "profile": profile, "mem": mem, "payload_mib": payload,
                "rep": rep, "result": path, **{k: m[k] for k in METRICS}}

    def dump(job):
        config, args, kernel = job
        m, path = measure(kernel, "ptdump", config=config, profile=plan["profiles"][0],
                          mem=PTDUMP_MEM, append=args)
        return {"kernel": kernel, "config": config, "cmdline": args, "mem": PTDUMP_MEM,
                "result": path,
                **{k: v for k, v in m.items() if k.startswith("leaf_") or k == "translations"}}

    with ThreadPoolExecutor(max_workers=jobs) as pool:
        samples = list(pool.map(reboot, reboots))
        leaves = list(pool.map(dump, dumps))
    return samples, leaves


def summarize(values):
    return {"median": statistics.median(values), "min": min(values), "max": max(values),
            "n": len(values)}


def aggregate(samples):
    """Group by (profile, mem, payload, metric); medians, spread, ratios."""
    rows = []
    keys = sorted({(s["profile"], s["mem"] or 0, s["payload_mib"]) for s in samples})
    for profile, mem, payload in keys:
        for metric in METRICS:
            row = {"profile": profile, "mem": mem or None, "payload_mib": payload,
                   "metric": metric}
            for kernel in KERNELS:
                vals = [s[metric] for s in samples if s["kernel"] == kernel and
                        s["profile"] == profile and (s["mem"] or 0) == mem and
                        s["payload_mib"] == payload]
                row[kernel] = summarize(vals) if vals else None
            for line in LINES.values():
                series = row[line["series"]]
                for peer in line["peers"]:
                    if series and row[peer] and row[peer]["median"]:
                        row[ratio_key(line["series"], peer)] = round(
                            series["median"] / row[peer]["median"], 3)
            rows.append(row)
    return rows


def translation_ratio(leaves, leaf):
    """LEAF's translations over those of its line's base (base, or base-6.12)
    with the same config and cmdline."""
    peer = line_of(leaf["kernel"])["peers"][0]
    base = next((lf for lf in leaves if lf["kernel"] == peer
                 and (lf["config"], lf["cmdline"]) == (leaf["config"], leaf["cmdline"])), None)
    if not base or not base.get("translations") or "translations" not in leaf:
        return None
    return leaf["translations"] / base["translations"]


def markdown(report):
    out = ["# kexec-mmu bench", "",
           f"Run {report['started']}, config {CONFIG}, QEMU TCG ({report['mode']} mode). "
           "QEMU TCG does not model caches, so these figures cannot show the hardware "
           "effect of relocating with caches on; they measure memory cost and emulated "
           "time only.", "", HARDWARE_REFERENCE, "",
           "Every reboot is `kexec -s -l` (kexec_file_load) and `kexec -e`, two guests at "
           "a time, the kernels interleaved. Medians over repetitions, spread as "
           "min..max. `overhead` is MemFree lost at `kexec -l` beyond the segments "
           "themselves.", ""]
    kernels = report["kernels"]
    ratios = [(line["series"], peer) for line in LINES.values() for peer in line["peers"]
              if line["series"] in kernels and peer in kernels]
    if report["rows"]:      # none with ./kx bench --ptdump: the leaf table alone
        heads = ["profile", "RAM MiB", "payload MiB", "metric", *kernels,
                 *(f"{a}/{b}" for a, b in ratios)]
        out += ["| " + " | ".join(heads) + " |", "|" + "---|" * len(heads)]

    def cell(s):
        if not s:
            return "-"
        fmt = "{:.3f}" if isinstance(s["median"], float) else "{}"
        return (fmt.format(s["median"]) + " (" + fmt.format(s["min"]) + ".." +
                fmt.format(s["max"]) + ")")
    for r in report["rows"]:
        out.append("| " + " | ".join([
            r["profile"], str(r["mem"] or "-"), str(r["payload_mib"]), r["metric"],
            *(cell(r.get(k)) for k in kernels),
            *(str(r.get(ratio_key(a, b), "-")) for a, b in ratios)]) + " |")
    out += ["", f"Linear-map leaf entries ({PTDUMP_MEM} MiB guest, "
                "/sys/kernel/debug/kernel_page_tables):", "",
            "| config | kernel | cmdline | PUD | PMD | PTE | total | translations | "
            "of its base |", "|---|---|---|---|---|---|---|---|---|"]
    for lf in report["leaves"]:
        ratio = translation_ratio(report["leaves"], lf)
        out.append(f"| {lf['config']} | {lf['kernel']} | {lf['cmdline']} | "
                   f"{lf.get('leaf_pud', 0)} | {lf.get('leaf_pmd', 0)} | "
                   f"{lf.get('leaf_pte', 0)} | {lf.get('leaf_total', 0)} | "
                   f"{lf.get('translations', '-')} | "
                   f"{'-' if ratio is None else f'{ratio:.2%}'} |")
    out += ["", "(translations: each block, page and contiguous run counted once; `of "
            "its base`: against base (v5.10) or base-6.12 with the same config and "
            "cmdline. v5.10 reserves nothing for crashkernel=,high on arm64 and maps all "
            "memory with pages for crashkernel=. v6.12 keeps its largest blocks with "
            "crashkernel= and leaves the crash kernel region mapped; the v6.12 series "
            "maps no leaf over 2 MiB then, so that it can unmap the region: what that "
            "costs is its translations against base-6.12's. With rodata=full every "
            "kernel maps pages: that is what rodata=full still costs.)"]
    return "\n".join(out) + "\n"


def plots(report):
    """PNG plots of load overhead against RAM and reboot time against payload."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter
    made = []
    for metric, xkey, fname, ylabel in (
            ("load_overhead_kb", "mem", "load-overhead.png", "kexec -l overhead (KiB)"),
            ("exec_to_userspace_s", "payload_mib", "reboot-time.png",
             "kexec -e to userspace (s, QEMU TCG)")):
        fig, ax = plt.subplots(figsize=(6, 4))
        for kernel in report["kernels"]:
            pts = sorted((r[xkey], r[kernel]["median"]) for r in report["rows"]
                         if r["metric"] == metric and r[xkey] and r[kernel]
                         and r["profile"] == report["plan"]["profiles"][0]
                         and (xkey == "mem" or r["mem"] in (None, 1024)))
            if pts:     # upstream and v6.12 overlap: tell them apart by marker
                ax.plot(*zip(*pts), marker="osx^v"[KERNELS.index(kernel)], label=kernel,
                        linestyle="--" if line_of(kernel) is LINES["v6.12"] else "-")
        if xkey == "mem":   # 1, 4, 16, 64 GiB: evenly spaced, labelled in GiB
            ax.set_xscale("log", base=2)
            ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{x / 1024:g}"))
        ax.set_xlabel("guest RAM (GiB)" if xkey == "mem" else "payload (MiB)")
        ax.set_ylabel(ylabel)
        ax.set_title(f"{CONFIG}, {report['plan']['profiles'][0]} (QEMU TCG: no cache model)")
        ax.legend()
        fig.tight_layout()
        fig.savefig(REPORT / fname)
        plt.close(fig)
        made.append(str(REPORT / fname))
    return made


def run(mode="full"):
    """Measure PLANS[MODE]; write build/report/bench.{json,md} (ptdump.{json,md}
    for the linear-map table alone) and return the report."""
    plan = PLANS[mode]
    started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    log(f"bench ({mode}): {plan}")
    samples, leaves = collect(plan)
    REPORT.mkdir(parents=True, exist_ok=True)
    report = {"started": started, "mode": mode, "config": CONFIG,
              "plan": {k: list(v) if isinstance(v, tuple) else v for k, v in plan.items()},
              "kernels": list(plan.get("kernels", KERNELS)), "rows": aggregate(samples),
              "leaves": leaves,
              "samples": samples, "hardware_reference": HARDWARE_REFERENCE}
    report["plots"] = plots(report) if samples else []
    report_path(mode, "json").write_text(json.dumps(report, indent=2) + "\n")
    report_path(mode, "md").write_text(markdown(report))
    problem = unseen_growth(report["rows"])
    if problem:
        raise KxError(f"{problem} (report {report_path(mode, 'json')})")
    return report


# Kernels that copy the linear map entry for entry into their relocation
# tables at load, pages under the configs' rodata=full.
GROWS_WITH_RAM = ("upstream", "base-6.12")


def unseen_growth(rows):
    """Why the load overhead figures cannot be trusted, or None. Upstream 6.1
    and v6.12 copy the linear map page by page at load, so their overhead
    must grow with RAM, by more than 1 MiB from the least RAM measured to
    the most: a measurement that misses that would miss the series' growth
    too."""
    for profile in sorted({r["profile"] for r in rows}):
        for kernel in GROWS_WITH_RAM:
            up = sorted((r["mem"], r[kernel]["median"]) for r in rows
                        if r["profile"] == profile and r["metric"] == "load_overhead_kb"
                        and r["mem"] and r["payload_mib"] == 32 and r.get(kernel))
            if len(up) >= 2 and up[-1][1] <= up[0][1] + 1024:
                return (f"{kernel}'s load overhead under {profile} went from {up[0][1]} "
                        f"KiB at {up[0][0]} MiB to {up[-1][1]} KiB at {up[-1][0]} MiB: the "
                        "measurement does not see the growth it must")
    return None
