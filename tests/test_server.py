"""The server configurations' judges: KX-FEATURES against what a
cell asks for, KX-LINEAR under debug_pagealloc=on, and a KVM guest alive
across kexec -e. Each require fails here on its own evidence."""
from pathlib import Path

import pytest

from kxbench import runner
from kxbench.scenarios import features, kexec_reboot
from test_crashkernel import rejudge_edited
from test_requires_core import add, assert_breaks, assert_fails_with, drop, sub
from test_verdicts import boot, ctx, reboot_expect, reboot_lines


def feature_line(gen, vhe="yes", kvm="vhe", kpti="no", pac="yes", va_bits=48, role="main",
                 checkers=None):
    return (f"KX-FEATURES gen={gen} role={role} vhe={vhe} kvm={kvm} kpti={kpti} pac={pac} "
            f"va_bits={va_bits}" + (f" checkers={checkers}" if checkers else ""))


def with_features(lines, **kw):
    """LINES with a KX-FEATURES line after each KX-BOOT."""
    out = []
    for text in lines:
        out.append(text)
        if text.startswith("KX-BOOT "):
            out.append(feature_line(text.split("gen=")[1].split()[0], **kw))
    return out


def server(cpu="max", profile="dt-el2", append="", **kw):
    return ctx(profile=profile, cpu=cpu, variant="server", append_extra=append, **kw)


def judge(lines, c):
    return kexec_reboot.judge(boot(*lines), c, reboot_expect())


@pytest.mark.parametrize("c, kw", [
    (server(), {}),
    (server("cortex-a57"), {"vhe": "no", "kvm": "nvhe", "pac": "no", "kpti": "yes"}),
    (server("cortex-a57", "dt-el1"), {"vhe": "no", "kvm": "none", "pac": "no"}),
    (server(append="kpti=1"), {"kpti": "yes"}),
    (ctx(config="64k-52", cpu="cortex-a57"), {"va_bits": 52 - 4, "vhe": "no", "kvm": "none"}),
    (ctx(config="64k-52", cpu="max"), {"va_bits": 52, "vhe": "no", "kvm": "none"}),
], ids=["vhe", "nvhe-kvm", "el1-no-kvm", "kpti-forced", "52-bit-without-lva", "52-bit-lva"])
def test_each_cpu_path_passes_on_its_own_features(c, kw):
    v = judge(with_features(reboot_lines(el=c.expected_el), **kw), c)
    assert v.passed, v.reasons
    assert len(v.evidence["features"]) == 2


def test_cells_that_ask_for_nothing_pass_without_the_line():
    """Logs from before KX-FEATURES (the golden logs) still judge."""
    assert features.expected(ctx()) == {}
    assert judge(reboot_lines(), ctx()).passed


FEATURES = [
    ("no-line", server(), [drop("KX-FEATURES", gen=1)], "gen 1 main printed no KX-FEATURES"),
    ("no-vhe", server(), [sub("KX-FEATURES", "vhe=yes", "vhe=no", gen=1)],
     "gen 1 main runs with vhe=no (the cell wants yes)"),
    ("kvm-not-initialised", server(), [sub("KX-FEATURES", "kvm=vhe", "kvm=none", gen=0)],
     "gen 0 main runs with kvm=none (the cell wants vhe)"),
    ("no-pac", server(), [sub("KX-FEATURES", "pac=yes", "pac=no", gen=1)],
     "runs with pac=no (the cell wants yes)"),
    ("kpti-not-forced", server(append="kpti=1"), [], "runs with kpti=no (the cell wants yes)"),
    ("va-bits", server(), [sub("KX-FEATURES", "va_bits=48", "va_bits=39", gen=1)],
     "runs with va_bits=39 (the cell wants 48)"),
    ("lva-used-without-lva", ctx(config="64k-52", cpu="cortex-a57"),
     [sub("KX-FEATURES", "va_bits=48", "va_bits=52", gen=0)],
     "gen 0 main runs with va_bits=52 (the cell wants 48)"),
]


@pytest.mark.parametrize("c, edits, needle", [f[1:] for f in FEATURES],
                         ids=[f[0] for f in FEATURES])
def test_features_fail_on_each_broken_requirement(c, edits, needle):
    good = with_features(reboot_lines(), kpti="no")
    if not edits:   # the cell asks for more than the good lines have
        assert_fails_with(judge(good, c), needle)
        return
    assert_breaks(kexec_reboot.judge, good, edits, {}, needle, c, reboot_expect())


def linear_line(gen, unmapped=700000, memfree=900000, mapped=300000):
    return (f"KX-LINEAR gen={gen} role=main mapped_kb={mapped} unmapped_kb={unmapped} "
            f"memfree_kb={memfree}")


def dpa_lines():
    lines = with_features(reboot_lines(), vhe="no", kvm="nvhe", pac="no", kpti="yes")
    lines = add("KX-FEATURES", linear_line(0), gen=0)(lines)
    return add("KX-FEATURES", linear_line(1), gen=1)(lines)


DPA = server("cortex-a57", append="debug_pagealloc=on")


def test_debug_pagealloc_passes_with_free_memory_unmapped():
    v = judge(dpa_lines(), DPA)
    assert v.passed, v.reasons
    assert len(v.evidence["linear"]) == 2


@pytest.mark.parametrize("edits, needle", [
    ([drop("KX-LINEAR", gen=1)], "gen 1 main: debug_pagealloc=on, but no KX-LINEAR line"),
    ([sub("KX-LINEAR", "unmapped_kb=700000", "unmapped_kb=2048", gen=0)],
     "gen 0 main: debug_pagealloc=on, but only 2048 KiB of the linear map is unmapped "
     "with 900000 KiB free"),
    ([sub("KX-LINEAR", "mapped_kb=300000", "mapped_kb=0", gen=1)],
     "gen 1 main: debug_pagealloc=on, but only 700000 KiB"),
], ids=["no-line", "free-pages-mapped", "nothing-mapped"])
def test_debug_pagealloc_fails_on_each_broken_requirement(edits, needle):
    assert_breaks(kexec_reboot.judge, dpa_lines(), edits, {}, needle, DPA, reboot_expect())


KVM = server(append=kexec_reboot.KVM_ALIVE)


def kvm_lines():
    lines = add("KX-LOADED", "KX-KVM-ALIVE gen=0 alive=1 exits_before=1200 exits_after=1300")(
        with_features(reboot_lines()))
    return add("KX-GEN", "KX-KVM-RUN gen=1 rc=0 exits=2000")(lines)


def test_a_kvm_guest_alive_across_kexec_passes():
    v = judge(kvm_lines(), KVM)
    assert v.passed, v.reasons
    assert v.evidence["kvm"][0]["next_kernel_run"]["exits"] == "2000"


@pytest.mark.parametrize("edits, needle", [
    ([drop("KX-KVM-ALIVE")], "gen 0: no KVM guest was running at kexec -e"),
    ([sub("KX-KVM-ALIVE", "alive=1", "alive=0")],
     "gen 0: the KVM guest was not running and making progress at kexec -e"),
    ([sub("KX-KVM-ALIVE", "exits_after=1300", "exits_after=1200")],
     "the KVM guest was not running and making progress"),
    ([sub("KX-KVM-ALIVE", "exits_before=1200 exits_after=1300",
          "exits_before=0 exits_after=0")],
     "the KVM guest was not running and making progress"),
    ([drop("KX-KVM-RUN")], "gen 1: ran no KVM guest"),
    ([sub("KX-KVM-RUN", "rc=0", "rc=1")], "gen 1: the KVM guest failed"),
    ([sub("KX-KVM-RUN", "exits=2000", "exits=0")], "gen 1: the KVM guest failed"),
], ids=["none-at-kexec", "dead", "stalled", "never-ran", "none-after", "failed-after",
        "no-exits-after"])
def test_kvm_alive_fails_on_each_broken_requirement(edits, needle):
    assert_breaks(kexec_reboot.judge, kvm_lines(), edits, {}, needle, KVM, reboot_expect())


LOGS = Path(__file__).resolve().parent / "fixtures" / "logs"


@pytest.mark.parametrize("log, old, new, says", [
    ("kexec-reboot-server-max-kvm-pass", "gen=1 role=main vhe=yes kvm=vhe",
     "gen=1 role=main vhe=no kvm=vhe", "gen 1 main runs with vhe=no (the cell wants yes)"),
    ("kexec-reboot-server-max-kvm-pass", "KX-KVM-RUN gen=1 rc=0", "KX-KVM-RUN gen=1 rc=1",
     "gen 1: the KVM guest failed"),
    ("kexec-reboot-server-a57-kvm-pass", "kvm=nvhe kpti=no", "kvm=none kpti=no",
     "gen 1 main runs with kvm=none (the cell wants nvhe)"),
    ("kexec-reboot-server-a57-kvm-pass", "alive=1", "alive=0",
     "gen 0: the KVM guest was not running and making progress at kexec -e"),
], ids=["vhe-lost", "kvm-failed-after", "kvm-not-initialised-after", "kvm-dead-at-kexec"])
def test_real_server_logs_fail_with_one_piece_of_evidence_changed(log, old, new, says, tmp_path):
    log = LOGS / f"{log}.log"
    assert runner.rejudge(log)[0].passed
    assert_fails_with(rejudge_edited(log, tmp_path, old, new), says)


def with_kaslr(lines, state):
    """LINES with a KX-KASLR line of STATE after each KX-BOOT."""
    out = []
    for text in lines:
        out.append(text)
        if text.startswith("KX-BOOT "):
            out.append(f"KX-KASLR gen={text.split('gen=')[1].split()[0]} role=main state={state}")
    return out


@pytest.mark.parametrize("append, state, edits, needle", [
    ("nokaslr", "cmdline", [drop("KX-KASLR", gen=1)], "gen 1 main printed no KX-KASLR line"),
    ("nokaslr", "cmdline", [sub("KX-KASLR", "state=cmdline", "state=enabled", gen=1)],
     "gen 1 main: KASLR enabled, the cell wants cmdline"),
    ("kx.kaslr=on", "enabled", [sub("KX-KASLR", "state=enabled", "state=noseed", gen=0)],
     "gen 0 main: KASLR noseed, the cell wants enabled"),
    ("kx.kaslr=on", "enabled", [drop("KX-KASLR", gen=0)], "gen 0 main printed no KX-KASLR"),
], ids=["nokaslr-no-line", "nokaslr-ignored", "kaslr-no-seed", "kaslr-no-line"])
def test_kaslr_fails_on_each_broken_requirement(append, state, edits, needle):
    c = ctx(append_extra=append)
    assert_breaks(kexec_reboot.judge, with_kaslr(reboot_lines(), state), edits, {}, needle, c,
                  reboot_expect())


def test_kaslr_on_asks_only_the_kernel_that_kexecs():
    """A kexec'd kernel gets no seed when the RNG is not ready (kexec-tools'
    getrandom, the kernel's rng_is_initialized()): it may run unrandomized."""
    lines = sub("KX-KASLR", "state=enabled", "state=noseed", gen=1)(
        with_kaslr(reboot_lines(), "enabled"))
    assert judge(lines, ctx(append_extra=features.KASLR_ON)).passed


DEBUG = ctx(variant="debug")
NO_VHE = {"vhe": "no", "kvm": "none", "pac": "no"}


def test_the_debug_variant_passes_with_every_checker_working():
    lines = with_features(reboot_lines(), checkers=features.DEBUG_CHECKERS, **NO_VHE)
    v = judge(lines, DEBUG)
    assert v.passed, v.reasons
    # Without the checkers the same lines prove nothing of a debug cell.
    assert_fails_with(judge(with_features(reboot_lines(), **NO_VHE), DEBUG),
                      "gen 0 main runs with checkers=(not reported) (the cell wants "
                      "kasan,kmemleak,lockdep,faults)")


@pytest.mark.parametrize("gone", ["kasan", "kmemleak", "lockdep", "faults"])
def test_the_debug_variant_fails_without_any_one_checker(gone):
    good = with_features(reboot_lines(), checkers=features.DEBUG_CHECKERS, **NO_VHE)
    left = ",".join(c for c in features.DEBUG_CHECKERS.split(",") if c != gone)
    assert_breaks(kexec_reboot.judge, good,
                  [sub("KX-FEATURES", features.DEBUG_CHECKERS, left, gen=1)], {},
                  f"gen 1 main runs with checkers={left} (the cell wants "
                  f"{features.DEBUG_CHECKERS})", DEBUG, reboot_expect())
