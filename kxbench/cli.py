"""./kx: the workbench's command line."""
import argparse
import json
import sys
import tempfile

from . import deps, kbuild, machine, runner, sources, tree, userland
from .runner import one_line, run_scenario
from .scenarios import SCENARIOS
from .util import KxError, log


def cmd_deps(args):
    deps.ensure_host_packages()


def cmd_fetch(args):
    names = list(sources.pins.KERNELS) if args.what == "all" else [args.what]
    for name in names:
        print(f"{name}: {sources.kernel_tarball(name)} (sha256 verified)")


def cmd_userland(args):
    for name, path in userland.prepare().items():
        print(f"{name}: {path}")


def cmd_tree(args):
    print(tree.ensure_tree(force=args.force))


def cmd_export(args):
    names = tree.export()
    print(f"exported {len(names)} patches to {tree.rel(tree.PATCHES)}/")


def configs_of(arg):
    return list(kbuild.CONFIGS) if arg == "all" else [arg]


def cmd_build(args):
    for config in configs_of(args.config):
        print(kbuild.build(args.kernel, config, variant=args.variant))


def mem_arg(text):
    """--mem: MiB, checked here so that nonsense fails before anything builds."""
    try:
        return machine.check_mem(text)
    except KxError as exc:
        raise argparse.ArgumentTypeError(str(exc))


def cmd_run(args):
    verdict, path, ctx = run_scenario(
        args.scenario, kernel=args.kernel, config=args.config, profile=args.profile,
        cpu=args.cpu, mem=args.mem, smp=args.smp, payload_mib=args.payload_mib,
        gens=args.gens, timeout=args.timeout, append=args.append, tree=args.tree,
        variant=args.variant)
    print(path.read_text().rstrip() if args.json else one_line(verdict, ctx, path))
    return runner.EXIT[verdict.status]


def cmd_judge(args):
    """Re-judge a saved log: the verdict the judges give today."""
    verdict, record = runner.rejudge(args.log)
    if args.json:
        print(json.dumps({"status": verdict.status, "reasons": verdict.reasons,
                          "recorded_status": record.get("status"),
                          "first_bad_line": verdict.first_bad_line}, indent=2))
    else:
        was = record.get("status") or record.get("verdict", "?").upper()
        print(f"{verdict.status} {record['scenario']} (recorded: {was})" +
              "".join(f"\n  {r}" for r in verdict.reasons))
    return runner.EXIT[verdict.status]


def cmd_setup(args):
    """Everything make check needs before its tests: deps, sources, builds."""
    deps.ensure_host_packages()
    userland.prepare()
    if args.sample:
        from . import checkrun, matrix
        seed = matrix.peek_seed()
        print(f"kx setup: the kernels of seed {seed} (./kx matrix --kernels)", flush=True)
        for kernel, config, variant in matrix.kernels(seed):
            checkrun.build_timed(kernel, config, variant)
        return
    for config in configs_of(args.config):
        kbuild.build(args.kernel, config)


def cmd_summary(args):
    from . import checkrun
    print(checkrun.summary())


def cmd_cover(args):
    from . import cover
    cover.select()
    path = cover.write()
    marks = path.read_text().count(cover.UNCONFIRMED)
    print(f"wrote {path}" + (f" ({marks} statements still marked {cover.UNCONFIRMED})"
                             if marks else ""))


def cmd_series(args):
    from . import series
    series.use_series(args.series)
    if args.series != "v5.10" and args.action != "check":
        raise KxError(f"./kx series {args.action} is written for the v5.10 series only; "
                      f"the {args.series} series has no posted version or mail yet")
    if args.action == "mbox":
        from . import post
        path, count, marks = post.write(draft=args.draft)
        print(f"wrote {path}: {count} mails, the cover letter first"
              + (f"; a draft: {marks} statements are still unconfirmed" if marks else ""))
        return 0
    if args.action == "provenance":
        return cmd_provenance(args)
    if args.action == "range-diff":
        from . import rangediff
        path, old, new, n = rangediff.write()
        print(f"wrote {rangediff.shown(path)}: v{rangediff.PREVIOUS} ({old} patches) against "
              f"v{tree.SERIES_VERSION} ({new}): {n['=']} unchanged, {n['!']} changed, "
              f"{n['>']} new, {n['<']} dropped")
        return 0
    if args.tree:
        raise KxError("--tree goes with ./kx series provenance only")
    deps.ensure_host_packages()
    passed, report = series.check()
    print(series.summary(report))
    return 0 if passed else 1


def cmd_provenance(args):
    """Only the provenance gate, on patches/ or on a work tree's commits."""
    from . import provenance
    with tempfile.TemporaryDirectory() as tmp:
        patches = (provenance.tree_patches(args.tree, tmp) if args.tree
                   else tree.series_files())
        entry = provenance.gate(patches)
    print("\n".join(provenance.describe(entry)))
    return 0 if entry["passed"] else 1


def cmd_bench(args):
    from . import bench
    deps.ensure_host_packages()
    userland.prepare()
    mode = "quick" if args.quick else "ptdump" if args.ptdump else "full"
    report = bench.run(mode)
    print(bench.report_path(mode, "md").read_text())
    print(f"report: {bench.report_path(mode, 'json')}", *report["plots"], sep=", ")


def cmd_matrix(args):
    from . import matrix
    # The queries below are about the next sample (or --seed's) and leave the
    # seed counter where it is: make check asks before its tests advance it.
    seed = matrix.peek_seed() if args.seed is None else args.seed
    if args.debug_config:
        print(matrix.debug_config(seed))
        return 0
    if args.kernels:
        for kernel, config, variant in matrix.kernels(seed):
            print(kernel, config, variant or "-")
        return 0
    if args.peek_seed:
        print(seed)
        return 0
    return matrix.main(run_all=args.all, seed=args.seed, jobs=args.jobs, match=args.match)


def cmd_demo(args):
    from . import demo
    return demo.main()


def parser():
    p = argparse.ArgumentParser(prog="kx", description=__doc__)
    sub = p.add_subparsers(dest="cmd", required=True)
    sub.add_parser("deps", help="install missing host packages").set_defaults(fn=cmd_deps)
    f = sub.add_parser("fetch", help="fetch and verify pinned kernel sources")
    f.add_argument("what", nargs="?", default="all", choices=["all", *sources.pins.KERNELS])
    f.set_defaults(fn=cmd_fetch)
    sub.add_parser("userland", help="build the guest userland").set_defaults(fn=cmd_userland)
    t = sub.add_parser("tree", help="make build/linux = base + patches/ (git am); with "
                       "--series v6.12, build/linux-6.12 = v6.12 + series/v6.12/")
    t.add_argument("--force", action="store_true", help="drop unexported work")
    t.set_defaults(fn=cmd_tree)
    e = sub.add_parser("export", help="write build/linux's commits back to patches/ "
                       "(or those of --series' tree to its directory)")
    e.set_defaults(fn=cmd_export)
    for p_ in (t, e):
        p_.add_argument("--series", default="v5.10", choices=list(tree.SERIESES),
                        help="which series (default v5.10)")
    for name, fn, hlp in (("build", cmd_build, "build a kernel Image"),
                          ("setup", cmd_setup, "deps, userland and kernel builds")):
        b = sub.add_parser(name, help=hlp)
        b.add_argument("--kernel", default="series", choices=kbuild.KERNELS)
        b.add_argument("--config", default="4k-48" if name == "build" else "all",
                       choices=["all", *kbuild.CONFIGS])
        if name == "build":
            b.add_argument("--variant", default="", choices=[v for v in kbuild.VARIANTS if v],
                           help="a build variant (configs/VARIANT.config), e.g. server")
        else:
            b.add_argument("--sample", action="store_true",
                           help="instead, every kernel ./kx matrix --kernels lists (make "
                           "setup), each timed, with what ccache gave")
        b.set_defaults(fn=fn)
    sub.add_parser("summary", help="make check's closing table: stages, kernels, cells, "
                   "the next seed").set_defaults(fn=cmd_summary)
    r = sub.add_parser("run", help="run one scenario; exit 0 iff it passed")
    r.add_argument("scenario", choices=list(SCENARIOS))
    r.add_argument("--kernel", default="series", choices=kbuild.KERNELS)
    r.add_argument("--config", default="4k-48", choices=kbuild.CONFIGS)
    r.add_argument("--profile", default="dt-el2", choices=machine.PROFILES)
    r.add_argument("--cpu", help="QEMU cpu (default: cortex-a57, max where needed)")
    r.add_argument("--mem", type=mem_arg, metavar="MiB",
                   help=f"guest RAM in MiB, {machine.MEM_MIN} to {machine.MEM_MAX} "
                   "(default: 1024, more for a large payload)")
    r.add_argument("--smp", type=int, default=1)
    r.add_argument("--payload-mib", type=int, default=32,
                   help="payload (kexec) or planted pattern (kdump, hibernate) size")
    r.add_argument("--gens", type=int, help="kexec reboots in a row (kexec-chain: 5)")
    r.add_argument("--timeout", type=int, help="seconds per QEMU boot before it is killed")
    r.add_argument("--append", default="", help="extra kernel arguments, e.g. rodata=full")
    r.add_argument("--tree", help="build the kernel from this git tree instead, e.g. a "
                   "worktree of build/linux; the result says kernel=tree")
    r.add_argument("--variant", default="", choices=[v for v in kbuild.VARIANTS if v],
                   help="a build variant (configs/VARIANT.config), e.g. server")
    r.add_argument("--json", action="store_true", help="print the result record")
    r.set_defaults(fn=cmd_run)
    j = sub.add_parser("judge", help="re-judge a saved log (build/results/RUN.log beside "
                       "its RUN.json); exit 0 iff it passes")
    j.add_argument("log")
    j.add_argument("--json", action="store_true")
    j.set_defaults(fn=cmd_judge)
    s = sub.add_parser("series", help="the review gates for patches/")
    s.add_argument("action", choices=["check", "provenance", "mbox", "range-diff"],
                   help="check: the review gates; provenance: only the gate against code "
                   "taken from Linux 6.1; mbox: build/series.mbox for git send-email; "
                   "range-diff: docs/series/, this version against the previous one")
    s.add_argument("--draft", action="store_true",
                   help="mbox: write it even while statements are unconfirmed")
    s.add_argument("--tree", help="provenance: check the commits over kx-base of this git "
                   "tree (e.g. build/linux-wip) instead of patches/")
    s.add_argument("--series", default="v5.10", choices=list(tree.SERIESES),
                   help="which series (default v5.10)")
    s.set_defaults(fn=cmd_series)
    c = sub.add_parser("cover", help="write patches/0000-cover-letter.patch from results "
                       "(or --series' cover letter)")
    c.add_argument("--series", default="v5.10", choices=list(tree.SERIESES),
                   help="which series (default v5.10)")
    c.set_defaults(fn=cmd_cover)
    b = sub.add_parser("bench", help="base, upstream and series side by side")
    how = b.add_mutually_exclusive_group()
    how.add_argument("--quick", action="store_true", help="one repetition, dt-el2, 1/4 GiB")
    how.add_argument("--ptdump", action="store_true",
                     help="only the linear-map leaf table, on every config")
    b.set_defaults(fn=cmd_bench)
    mx = sub.add_parser("matrix", help="the series' kexec matrix: a rotating sample, or --all")
    mx.add_argument("--all", action="store_true", help="every cell, not a sample")
    mx.add_argument("--seed", type=int, help="the sample to run (default: the next one)")
    mx.add_argument("-j", "--jobs", type=int, default=2, help="guests at a time")
    mx.add_argument("--match", help="only the cells whose name contains this, e.g. server")
    mx.add_argument("--debug-config", action="store_true",
                    help="print the debug config of the next sample (or --seed's), run nothing")
    mx.add_argument("--kernels", action="store_true",
                    help="print the kernels the next sample (or --seed's) and make check's "
                    "fixed cells boot, one 'kernel config variant' a line ('-': none); "
                    "run nothing")
    mx.add_argument("--peek-seed", action="store_true",
                    help="print the seed of the next sample without advancing it")
    mx.set_defaults(fn=cmd_matrix)
    sub.add_parser("demo", help="build series, kexec reboot on dt-el2, kdump; summary"
                   ).set_defaults(fn=cmd_demo)
    return p


def main(argv=None):
    args = parser().parse_args(argv)
    try:
        tree.use(getattr(args, "series", None) or "v5.10")
        return args.fn(args) or 0
    except KxError as exc:
        log(f"error: {exc}")
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
