"""Every `require` in the core judges (common, kexec_reboot, kdump, hibernate,
kunit, ptdump) has a test of its own: evidence that passes, with the one thing
that require checks broken, must fail with that require's own reason.

Each case is (edits to the good lines, a piece of the expected reason). The
check `python3 -m kxbench.mutants FILE` replaces each require by True; its
reason then disappears, so every case here kills its mutant. Where a require
guards a branch (`if v.require(...)`), the mutant also enters the branch with
the evidence missing and the judge raises, which fails the test too.
"""
import pytest

from kxbench import evidence
from kxbench.scenarios import hibernate, kdump, kexec_reboot, kunit, ptdump
from test_verdicts import (BYTES, CHUNKS, KD_EXPECT, SHA, TOKEN, boot, ctx, hib_boots,
                           kdump_lines, klog, reboot_expect, reboot_lines)


# -- edits: each takes the good lines and returns the broken ones --------------

def selects(text, sel, match):
    """SEL is a tag (matched as the line's first word, with MATCH among its
    fields) or, if it holds a space, a piece of the line's text."""
    if " " in sel:
        return sel in text
    return (evidence.tag_of(text) == sel and
            all(evidence.fields(text).get(k) == str(x) for k, x in match.items()))


def changed(name, before, after):
    assert after != before, f"{name} changed nothing: the case would test nothing"
    return after


def drop(sel, **match):
    """Without the lines SEL selects."""
    return lambda lines: changed(f"drop {sel}", lines,
                                 [t for t in lines if not selects(t, sel, match)])


def sub(sel, old, new, **match):
    """OLD replaced by NEW in the lines SEL selects."""
    return lambda lines: changed(f"sub {sel} {old}", lines,
                                 [t.replace(old, new) if selects(t, sel, match) else t
                                  for t in lines])


def add(sel, *texts, **match):
    """TEXTS inserted after the first line SEL selects."""
    def edit(lines):
        i = next(i for i, t in enumerate(lines) if selects(t, sel, match))
        return lines[:i + 1] + list(texts) + lines[i + 1:]
    return edit


def keep_until(sel, **match):
    """The lines up to and including the first one SEL selects: the guest
    said nothing after it."""
    def edit(lines):
        i = next(i for i, t in enumerate(lines) if selects(t, sel, match))
        return lines[:i + 1]
    return edit


def swap(a, b):
    """The first lines A and B select (each a (sel, match) pair) change places."""
    def edit(lines):
        i = next(i for i, t in enumerate(lines) if selects(t, a[0], a[1]))
        j = next(j for j, t in enumerate(lines) if selects(t, b[0], b[1]))
        out = list(lines)
        out[i], out[j] = lines[j], lines[i]
        return out
    return edit


def nothing(lines):
    return []


def case(id, needle, *edits, **boot_kw):
    """A pytest case: EDITS (then boot(..., **BOOT_KW)) must fail with NEEDLE."""
    return pytest.param(edits, boot_kw, needle, id=id)


def broken(lines, edits, boot_kw=None):
    for edit in edits:
        lines = edit(lines)
    return boot(*lines, **(boot_kw or {}))


def assert_fails_with(v, needle):
    assert not v.passed, v.reasons
    assert any(needle in r for r in v.reasons), (needle, v.reasons)


def assert_breaks(judge, good, edits, boot_kw, needle, *args):
    """JUDGE passes GOOD and fails GOOD with EDITS, giving NEEDLE as a reason."""
    ok = judge(boot(*good), *args)
    assert ok.passed, ok.reasons
    assert_fails_with(judge(broken(good, edits, boot_kw), *args), needle)


# -- common: judged through kexec_reboot, the checks every judge shares --------

COMMON = [
    case("malformed-line", "malformed KX-BOOT line (el='unknown' is not int)",
         sub("KX-BOOT", "el=2", "el=unknown", gen=1)),       # entry_el lost the dmesg line
    case("kernel-log-not-reported", "2 kernels booted, 1 reported their kernel log",
         drop(klog(1))),
    case("kernel-log-error", "boot: gen 1 main kernel log: warnings=1",
         sub("KX-KLOG", "warnings=0", "warnings=1", gen=1)),
    case("crash", "boot: a kernel crashed: '[    4.2] Unable to handle kernel paging",
         add("KX-EXEC", "[    4.2] Unable to handle kernel paging request at virtual "
                        "address ffff800010a4f000")),
    case("timeout", "boot: timed out after", keep_until("KX-EXEC"), timed_out=True),
    case("printed-nothing", "boot: the guest printed nothing", nothing),
    case("no-boot-line", "no KX-BOOT line with gen=0", drop("KX-BOOT", gen=0)),
    case("boot-el", "KX-BOOT gen=0: entered at EL1, expected EL2",
         sub("KX-BOOT", "el=2", "el=1", gen=0)),
    case("boot-efi", "KX-BOOT gen=0: efi=yes, expected no",
         sub("KX-BOOT", "efi=no", "efi=yes", gen=0)),
    case("boot-cpus", "KX-BOOT gen=0: 2 CPUs online, expected 1",
         sub("KX-BOOT", "cpus=1", "cpus=2", gen=0)),
]


@pytest.mark.parametrize("edits, boot_kw, needle", COMMON)
def test_common_checks_fail_on_their_own_evidence(edits, boot_kw, needle):
    assert_breaks(kexec_reboot.judge, reboot_lines(), edits, boot_kw, needle,
                  ctx(), reboot_expect())


# -- kexec_reboot (and kexec-file, kexec-chain) --------------------------------

REBOOT = [
    case("not-loaded", "gen 0: no successful kexec load",
         sub("KX-LOADED", "loaded=1", "loaded=0")),
    case("no-loaded-line", "gen 0: no successful kexec load", drop("KX-LOADED")),
    case("wrong-syscall", "gen 0: loaded with kexec_file, expected load",
         sub("KX-LOADED", "mode=load", "mode=file")),
    case("no-exec", "gen 0: kexec -e did not reach gen 1's userspace", drop("KX-EXEC")),
    case("next-never-booted", "gen 0: kexec -e did not reach gen 1's userspace",
         drop("KX-BOOT", gen=1)),
    case("no-report", "gen 1: no KX-GEN report", drop("KX-GEN")),
    case("token", f"gen 1: token 'fedcba9876543210', expected '{TOKEN}'",
         sub("KX-GEN", TOKEN, "fedcba9876543210")),
    case("sha256", f"gen 1: payload sha256 {'b' * 64}, expected {SHA}",
         sub("KX-GEN", SHA, "b" * 64)),
    case("payload-bytes", f"gen 1: payload is {BYTES - 4096} bytes, expected {BYTES}",
         sub("KX-GEN", f"payload_bytes={BYTES}", f"payload_bytes={BYTES - 4096}")),
    case("gen-el", "gen 1: entered at EL1, expected EL2", sub("KX-GEN", "el=2", "el=1")),
    case("gen-efi", "gen 1: efi=yes, expected no", sub("KX-GEN", "efi=no", "efi=yes")),
    case("gen-cpus", "gen 1: 3 CPUs online, expected 1",          # a CPU did not come back
         sub("KX-BOOT", "cpus=1", "cpus=3", gen=1)),
    case("load-time", "gen 0: implausible load figures",
         sub("KX-LOADED", "load_ns=900000000", "load_ns=0")),
    case("memfree", "gen 0: implausible load figures",
         sub("KX-LOADED", "memfree_after_kb=900000", "memfree_after_kb=0")),
    case("boot-before-exec", "gen 1: userspace before kexec -e",
         swap(("KX-EXEC", {}), ("KX-BOOT", {"gen": 1}))),
    case("no-placement", "gen 0: no segment placement reported (kexec -d)",
         drop("KX-PLACEMENT")),
    case("no-segments", "gen 0: no segment placement reported (kexec -d)",
         sub("KX-PLACEMENT", "segments=0x48000000+0x2000000,0x4a000000+0xd30000,",
             "segments=none")),
    case("not-done", "gen 1 did not finish", drop("KX-DONE")),
]


@pytest.mark.parametrize("edits, boot_kw, needle", REBOOT)
def test_kexec_reboot_fails_on_each_broken_requirement(edits, boot_kw, needle):
    assert_breaks(kexec_reboot.judge, reboot_lines(), edits, boot_kw, needle,
                  ctx(), reboot_expect())


def test_kexec_reboot_asked_over_the_old_kernel_needs_a_segment_on_it():
    """kx.placement=old-kernel: a segment must overlap the running kernel's
    text or data (40210000-40f8ffff, 41000000-4107ffff)."""
    c = ctx(append_extra=kexec_reboot.OLD_KERNEL)
    default, on_kernel = "segments=0x48000000+0x2000000,", "segments=0x40200000+0x2000000,"
    asked = sub("KX-PLACEMENT", "placement=default", "placement=old-kernel")(reboot_lines())
    over = sub("KX-PLACEMENT", default, on_kernel)(asked)
    assert_breaks(kexec_reboot.judge, over, [sub("KX-PLACEMENT", on_kernel, default)], {},
                  "gen 0: asked to load over the old kernel, no segment lands on it",
                  c, reboot_expect())
    # Asked, but kexec -d showed nothing: a reason, not a KeyError on the placement.
    assert_fails_with(kexec_reboot.judge(boot(*drop("KX-PLACEMENT")(asked)), c,
                                         reboot_expect()),
                      "gen 0: no segment placement reported (kexec -d)")
    # Unasked, a placement beside the old kernel passes.
    assert kexec_reboot.judge(boot(*asked), ctx(), reboot_expect()).passed


def test_kexec_file_needs_no_placement_and_the_chain_stops_at_the_first_missing_gen():
    """kexec-file and kexec-chain use the same judge: kexec_file_load reports
    no segments; a chain fails at the generation that broke, and stops there."""
    c = ctx("kexec-file")
    assert kexec_reboot.judge(boot(*reboot_lines(mode="file")), c,
                              reboot_expect(mode="file")).passed
    c, expect = ctx("kexec-chain", gens=3), reboot_expect(gens=3)
    lines = drop("KX-GEN", gen=2)(reboot_lines(gens=3))
    v = kexec_reboot.judge(boot(*lines), c, expect)
    assert_fails_with(v, "gen 2: no KX-GEN report")
    assert not any(r.startswith("gen 3") for r in v.reasons), v.reasons
    assert [g["gen"] for g in v.evidence["generations"]] == [1]


# -- kdump ---------------------------------------------------------------------

KDUMP = [
    case("crash-kernel-not-loaded", "no crash kernel loaded",
         sub("KX-CRASH-LOADED", "loaded=1", "loaded=0")),
    case("no-crash-loaded-line", "no crash kernel loaded", drop("KX-CRASH-LOADED")),
    case("planted-chunks", f"pattern not planted as {CHUNKS} chunks of token {TOKEN}",
         sub("KX-PLANTED", f"chunks={CHUNKS}", f"chunks={CHUNKS // 2}")),
    case("planted-token", f"pattern not planted as {CHUNKS} chunks of token {TOKEN}",
         sub("KX-PLANTED", f"token={TOKEN}", "token=none")),
    case("no-crash", "gen 0 never triggered the crash", drop("KX-CRASH", gen=0)),
    case("no-elf-header", "capture kernel: no ELF header read from /proc/vmcore",
         sub("KX-VMCORE-ELF", "KX-VMCORE-ELF class=2 data=1 type=4 machine=183 phnum=4",
             "KX-VMCORE-ERROR no ELF header")),
    case("big-endian", "/proc/vmcore is not a little-endian ELF64 aarch64 core",
         sub("KX-VMCORE-ELF", "data=1", "data=2")),
    case("elf32", "/proc/vmcore is not a little-endian ELF64 aarch64 core",
         sub("KX-VMCORE-ELF", "class=2", "class=1")),
    case("not-a-core", "/proc/vmcore is not a little-endian ELF64 aarch64 core",
         sub("KX-VMCORE-ELF", "type=4", "type=2")),
    case("not-aarch64", "/proc/vmcore is not a little-endian ELF64 aarch64 core",
         sub("KX-VMCORE-ELF", "machine=183", "machine=62")),
    case("no-vmcoreinfo-note", "no VMCOREINFO note",
         sub("KX-VMCORE-NOTES", "vmcoreinfo=1", "vmcoreinfo=0")),
    case("osrelease", "VMCOREINFO OSRELEASE=5.10.224-kx, crashed kernel was 5.10.223-kx",
         sub("KX-VMCOREINFO OSRELEASE", "5.10.223", "5.10.224")),
    case("pagesize", "VMCOREINFO PAGESIZE=65536, expected 4096",
         sub("KX-VMCOREINFO PAGESIZE", "4096", "65536")),
    case("no-scan", "capture kernel did not scan /proc/vmcore", drop("KX-VMCORE-PATTERN")),
    case("scan-token", f"vmcore scanned for token none, not {TOKEN}",
         sub("KX-VMCORE-PATTERN", f"token={TOKEN}", "token=none")),
    case("chunks-missing", f"found {CHUNKS - 1} of {CHUNKS} pattern chunks",
         sub("KX-VMCORE-PATTERN", f"found={CHUNKS}", f"found={CHUNKS - 1}")),
    case("chunks-expected", f"found {CHUNKS} of {CHUNKS} pattern chunks",
         sub("KX-VMCORE-PATTERN", f"expected={CHUNKS}", f"expected={CHUNKS // 2}")),
    case("chunks-corrupt", "1 pattern chunks were corrupt",
         sub("KX-VMCORE-PATTERN", "corrupt=0", "corrupt=1")),
    case("no-makedumpfile", "makedumpfile did not run", drop("KX-MAKEDUMPFILE")),
    case("makedumpfile-rc", "makedumpfile -c -d 31 failed",
         sub("KX-MAKEDUMPFILE", "rc=0", "rc=1")),
    case("makedumpfile-sig", "makedumpfile -c -d 31 failed",
         sub("KX-MAKEDUMPFILE", "sig=KDUMP", "sig=")),
    case("makedumpfile-empty", "makedumpfile -c -d 31 failed",
         sub("KX-MAKEDUMPFILE", "bytes=123456", "bytes=0")),
    case("not-done", "the capture kernel did not finish", drop("KX-DONE")),
    # check_boot_line for the second kernel, in kdump's own words.
    case("no-capture-kernel", "no KX-BOOT line with role=capture",
         drop("KX-BOOT", role="capture")),
]


@pytest.mark.parametrize("edits, boot_kw, needle", KDUMP)
def test_kdump_fails_on_each_broken_requirement(edits, boot_kw, needle):
    assert_breaks(kdump.judge, kdump_lines(), edits, boot_kw, needle,
                  ctx("kdump"), KD_EXPECT)


# -- hibernate: two boots, the hibernating one and the resuming one ------------

def texts(b):
    return [ln.text for ln in b.lines]


def hib_case(id, needle, hib=(), res=(), hib_kw=None):
    """EDITS to the hibernating boot (HIB, then HIB_KW) and the resuming one (RES)."""
    return pytest.param(hib, hib_kw or {}, res, needle, id=id)


RESUMED = f"KX-RESUMED boot_id=b0 token={TOKEN} el=2"

HIBERNATE = [
    hib_case("planted-chunks", f"pattern not planted as {CHUNKS} chunks of token {TOKEN}",
             hib=[sub("KX-PLANTED", f"chunks={CHUNKS}", f"chunks={CHUNKS - 1}")]),
    hib_case("planted-token", f"pattern not planted as {CHUNKS} chunks of token {TOKEN}",
             hib=[sub("KX-PLANTED", f"token={TOKEN}", "token=none")]),
    hib_case("never-hibernated", "the guest never started hibernating",
             hib=[drop("KX-HIBERNATE")]),
    # `echo disk > /sys/power/state` came back without hibernating.
    hib_case("carried-on", "the hibernating boot carried on instead of powering off",
             hib=[add("KX-KLOG",
                      f"KX-HELD token={TOKEN} chunks={CHUNKS} intact={CHUNKS} pid=80",
                      RESUMED, klog(0), "KX-DONE gen=0")]),
    hib_case("no-poweroff", "the hibernating boot did not power off by itself (exit 1",
             hib_kw={"exit_code": 1}),
    hib_case("no-poweroff-timeout", "the hibernating boot did not power off by itself "
             "(exit None, timed out True)", hib_kw={"timed_out": True}),
    hib_case("nothing-resumed", "no image was resumed",
             res=[add("KX-RESUME-TRY", "KX-RESUME-NONE rc=0")]),
    hib_case("holder-silent", "the holding process did not report after resume",
             res=[drop("KX-HELD")]),
    hib_case("holder-lost-chunks", f"after resume {CHUNKS - 1} of {CHUNKS} chunks were intact",
             res=[sub("KX-HELD", f"intact={CHUNKS}", f"intact={CHUNKS - 1}")]),
    hib_case("holder-token", f"after resume {CHUNKS} of {CHUNKS} chunks were intact "
             "(token none)", res=[sub("KX-HELD", f"token={TOKEN}", "token=none")]),
    hib_case("holder-chunks", f"after resume {CHUNKS} of {CHUNKS} chunks were intact",
             res=[sub("KX-HELD", f"chunks={CHUNKS}", f"chunks={CHUNKS * 2}")]),
    hib_case("no-resumed-report", "the resumed image did not report",
             res=[drop("KX-RESUMED")]),
    hib_case("other-boot-id", "the resumed boot id differs from the hibernated one",
             res=[sub("KX-RESUMED", "boot_id=b0", "boot_id=b5")]),
    hib_case("hibernated-id-unknown", "the resumed boot id differs from the hibernated one",
             hib=[sub("KX-HIBERNATE", "boot_id=b0", "boot_id=")]),
    hib_case("booted-afresh", "the resumed boot id is the resuming kernel's own",
             res=[sub("KX-RESUMED", "boot_id=b0", "boot_id=b9")]),
    hib_case("resumed-token", f"resumed token none, expected {TOKEN}",
             res=[sub("KX-RESUMED", f"token={TOKEN}", "token=none")]),
    hib_case("resumed-el", "resumed at EL1, expected EL2",
             res=[sub("KX-RESUMED", "el=2", "el=1")]),
    hib_case("resumed-unfinished", "the resumed system did not finish",
             res=[drop("KX-DONE")]),
    # check_boot_line and check_exit name the boot they judge.
    hib_case("no-resume-boot-line", "no KX-BOOT line with role=resume",
             res=[drop("KX-BOOT")]),
    hib_case("resuming-boot-log", "resuming boot: 1 kernels booted, 0 reported",
             res=[drop("KX-KLOG")]),
]


@pytest.mark.parametrize("hib_edits, hib_kw, res_edits, needle", HIBERNATE)
def test_hibernate_fails_on_each_broken_requirement(hib_edits, hib_kw, res_edits, needle):
    first, second = map(texts, hib_boots())
    c = ctx("hibernate")
    ok = hibernate.judge(boot(*first), boot(*second), c, KD_EXPECT)
    assert ok.passed, ok.reasons
    v = hibernate.judge(broken(first, hib_edits, hib_kw), broken(second, res_edits), c,
                        KD_EXPECT)
    assert_fails_with(v, needle)


# -- kunit ---------------------------------------------------------------------

SUITE = "arm64_trans_pgd"
CASES = ["tp_copy_synthetic", "tp_copy_partial", "tp_copy_linear_map", "tp_map_page",
         "tp_idmap", "tp_el2_vectors", "tp_enomem"]     # the series' suite, patch 0007


def ktap():
    """The console of a kunit boot: the suite's KTAP (v14, as 5.10 prints it
    at boot), then guest/init's lines."""
    return (["[    0.931204] TAP version 14", "[    0.931318] 1..1",
             f"[    0.931502]     # Subtest: {SUITE}", f"[    0.931611]     1..{len(CASES)}"] +
            [f"[    0.9{40 + i}000]     ok {i} - {c}" for i, c in enumerate(CASES, 1)] +
            [f"[    0.958113] ok 1 - {SUITE}",
             "KX-BOOT scenario=kunit gen=0 role=main el=2 efi=no acpi=no cpus=1 "
             "memfree_kb=980000 boot_id=k0 release=5.10.223-kx", klog(0), "KX-DONE gen=0"])


KUNIT_EXPECT = {"suites": {SUITE: len(CASES)}}

KUNIT = [
    case("no-ktap-header", "no KTAP header: KUnit did not run", drop("] TAP version 14")),
    case("suite-missing", f"suite {SUITE} did not run",
         sub(" # Subtest: ", SUITE, "arm64_other"), sub(f" ok 1 - {SUITE}", SUITE, "arm64_other")),
    case("case-lost", f"suite {SUITE} ran {len(CASES) - 1} cases, expected at least "
         f"{len(CASES)}", drop(" - tp_enomem")),
    case("case-failed", f"suite {SUITE}: failed cases tp_idmap",
         sub("     ok 5 - tp_idmap", "ok 5", "not ok 5")),
    case("suite-not-ok", f"suite {SUITE} did not report ok",
         sub(f"] ok 1 - {SUITE}", "ok 1", "not ok 1")),
]


@pytest.mark.parametrize("edits, boot_kw, needle", KUNIT)
def test_kunit_fails_on_each_broken_requirement(edits, boot_kw, needle):
    assert kunit.parse_ktap(ktap())[SUITE] == {"ok": True, "cases": dict.fromkeys(CASES, True)}
    assert_breaks(kunit.judge, ktap(), edits, boot_kw, needle, ctx("kunit"), KUNIT_EXPECT)


# -- ptdump --------------------------------------------------------------------

def ptdump_lines():
    """guest/init's ptdump output for a 4K, 48-bit kernel with 1 GiB of RAM at
    0x40000000: the linear map, then the rest of kernel_page_tables."""
    pt = ["---[ Linear Mapping start ]---",
          "0xffff000000000000-0xffff000040000000           1G PUD",
          "0xffff000040000000-0xffff000040200000           2M PMD       RW NX SHD AF"
          "            BLK UXN    MEM/NORMAL",
          "0xffff000040200000-0xffff000041a00000          24M PTE       ro NX SHD AF"
          "                UXN    MEM/NORMAL",
          "0xffff000041a00000-0xffff000080000000         998M PMD       RW NX SHD AF"
          "            BLK UXN    MEM/NORMAL",
          "0xffff000080000000-0xffff008000000000         510G PUD",
          "---[ Linear Mapping end ]---",
          "---[ Modules start ]---",
          "0xffff800008000000-0xffff800010000000         128M PMD",
          "---[ vmalloc() area ]---",
          "0xffff800010000000-0xffff800010200000           2M PMD       ro x  SHD AF"
          "            BLK UXN    MEM/NORMAL"]
    return (["KX-BOOT scenario=ptdump gen=0 role=main el=2 efi=no acpi=no cpus=1 "
             "memfree_kb=960000 boot_id=p0 release=5.10.223-kx", "KX-PTDUMP-BEGIN"] +
            [f"KX-PT {t}" for t in pt] +
            ["KX-PTDUMP-END cmdline=console=ttyAMA0,earlycon,panic=1,kx.sc=ptdump,kx.gen=0",
             klog(0)])


PTDUMP = [
    case("no-begin", "no complete page-table dump", drop("KX-PTDUMP-BEGIN")),
    case("cut-short", "no complete page-table dump", drop("KX-PTDUMP-END")),
    case("nothing-mapped", "the dump shows no mapped linear-map range",
         drop("KX-PT 0xffff000040"), drop("KX-PT 0xffff000041")),
]


@pytest.mark.parametrize("edits, boot_kw, needle", PTDUMP)
def test_ptdump_fails_on_each_broken_requirement(edits, boot_kw, needle):
    v = ptdump.judge(boot(*ptdump_lines()), ctx("ptdump"), {})
    assert v.evidence["leaf_entries"] == {"PMD": 1 + 499, "PTE": 24 * 256}   # vmalloc not
    assert_breaks(ptdump.judge, ptdump_lines(), edits, boot_kw, needle, ctx("ptdump"), {})


# -- kdump from a kernel that a kexec reboot started (kx.first=kexec) ----------

def kdump_after_kexec_lines():
    """gen 0 kexec-reboots; gen 1, with the same crashkernel=, crashes."""
    lines = kdump_lines()
    gen1 = lines[0].replace("gen=0", "gen=1").replace("boot_id=x", "boot_id=x1")
    rest = [klog(1) if t == klog(0) else "KX-CRASH gen=1" if t == "KX-CRASH gen=0" else t
            for t in lines[1:]]
    return [lines[0], klog(0), "KX-EXEC gen=0", gen1] + rest


FIRST_KEXEC = ctx("kdump", append_extra=kdump.KEXEC_FIRST)


def test_kdump_after_a_kexec_reboot_passes():
    v = kdump.judge(boot(*kdump_after_kexec_lines()), FIRST_KEXEC, KD_EXPECT)
    assert v.passed, v.reasons
    assert v.evidence["crashed"]["gen"] == "1"


@pytest.mark.parametrize("edits, boot_kw, needle", [
    case("no-kexec", "gen 0 did not kexec-reboot into the kernel that crashes",
         drop("KX-EXEC", gen=0)),
    case("no-second-kernel", "gen 0 did not kexec-reboot into the kernel that crashes",
         drop("KX-BOOT", gen=1)),
    case("crashed-first", "gen 1 never triggered the crash",
         sub("KX-CRASH", "gen=1", "gen=0")),
])
def test_kdump_after_a_kexec_reboot_fails_on_each_broken_requirement(edits, boot_kw, needle):
    assert_breaks(kdump.judge, kdump_after_kexec_lines(), edits, boot_kw, needle, FIRST_KEXEC,
                  KD_EXPECT)


# -- hibernate, then a kexec reboot of the resumed system (kx.then=kexec) ------

THEN_KEXEC = ctx("hibernate", append_extra=hibernate.THEN_KEXEC)


def hib_then_kexec(*edits):
    first, second = hib_boots()
    lines = [ln.text for ln in second.lines if not ln.text.startswith("KX-DONE")]
    lines = [t for t in lines if t != klog(0)] + reboot_lines()[1:]
    for edit in edits:
        lines = edit(lines)
    return first, boot(*lines)


def test_hibernate_then_kexec_passes_and_fails_on_the_reboot():
    expect = KD_EXPECT | {"kexec": reboot_expect()}
    v = hibernate.judge(*hib_then_kexec(), THEN_KEXEC, expect)
    assert v.passed, v.reasons
    assert v.evidence["kexec_after_resume"][0]["token"] == TOKEN
    assert_fails_with(hibernate.judge(*hib_then_kexec(drop("KX-GEN")), THEN_KEXEC, expect),
                      "kexec after resume: gen 1: no KX-GEN report")
    assert_fails_with(hibernate.judge(*hib_then_kexec(), THEN_KEXEC, KD_EXPECT),
                      "kx.then=kexec, but nothing to expect of the reboot")
