"""crashkernel=,high and ,low: what the workbench expects to be
reserved, and the kdump and bad-crashkernel judges failing, each with its
own reason, on real logs with one piece of evidence changed."""
from pathlib import Path

import pytest

from kxbench import crashkernel, runner
from kxbench.util import KxError

LOGS = Path(__file__).resolve().parent / "fixtures" / "logs"
HIGH_LOW = LOGS / "kdump-4k-48-high-low-file-pass.log"
BAD = LOGS / "bad-crashkernel-4k-48-pass.log"
M = 1 << 20


def test_expected_reads_crashkernel_as_the_kernel_does():
    assert crashkernel.expected("crashkernel=256M") == {"plain": 256 * M}
    assert crashkernel.expected("crashkernel=255M") == {"plain": 256 * M}
    assert crashkernel.expected("rodata=on crashkernel=512M,high") == \
        {"high": 512 * M, "low": 128 * M}
    assert crashkernel.expected("crashkernel=1G,high crashkernel=0,low") == \
        {"high": 1024 * M, "low": 0}
    assert crashkernel.expected("crashkernel=1G,high crashkernel=64M") == {"plain": 64 * M}
    assert crashkernel.expected("crashkernel=1M crashkernel=4M") == {"plain": 4 * M}
    # RAM from 1 GiB: 2 GiB of it has nothing above 4 GiB, 6 GiB has 3 GiB there.
    assert crashkernel.expected("crashkernel=512M,high", 2048) == {"fallback": 512 * M}
    assert crashkernel.expected("crashkernel=512M,high crashkernel=64M,low", 3072) == \
        {"fallback": 512 * M}
    assert crashkernel.expected("crashkernel=512M,high", 6144) == \
        {"high": 512 * M, "low": 128 * M}
    assert crashkernel.expected("crashkernel=512M,high", 6144, ram_above_4g=True) == \
        {"fallback": 512 * M, "above_4g": True}
    with pytest.raises(KxError):
        crashkernel.expected("rodata=on")
    with pytest.raises(KxError):
        crashkernel.expected("crashkernel=lots")


def test_ranges_parse():
    assert crashkernel.iomem_ranges("f8000000-ffffffff,1a0000000-1bfffffff") == \
        [(0xf8000000, 0x100000000), (0x1a0000000, 0x1c0000000)]
    assert crashkernel.iomem_ranges("none") == []
    assert crashkernel.usable_ranges("0x00000001a0000000+0x0000000020000000") == \
        [(0x1a0000000, 0x1c0000000)]


@pytest.mark.parametrize("ranges, want, says", [
    ([(0x70000000, 0x80000000)], {"plain": 256 * M}, None),
    ([(0x70000000, 0x78000000)], {"plain": 256 * M}, "expected one of 0x10000000"),
    ([], {"plain": 256 * M}, "crash kernel regions none"),
    ([(0xf8000000, 1 << 32), (0x1a0000000, 0x1c0000000)], {"high": 512 * M, "low": 128 * M},
     None),
    ([(0x1a0000000, 0x1c0000000)], {"high": 512 * M, "low": 128 * M}, "below 4 GiB"),
    ([(0x1a0000000, 0x1c0000000)], {"high": 512 * M, "low": 0}, None),
    ([(0xf8000000, 1 << 32), (0xa0000000, 0xc0000000)], {"high": 512 * M, "low": 128 * M},
     "above 4 GiB"),
    ([(0xf8000000, 1 << 32), (0xf0000000, 0x110000000)], {"high": 512 * M, "low": 128 * M},
     "straddles 4 GiB"),
    ([(0x60000000, 0x80000000)], {"fallback": 512 * M}, None),
    ([(0x60000000, 0x80000000), (0x40000000, 0x48000000)], {"fallback": 512 * M},
     "no ,low part"),
    ([(0x1a0000000, 0x1c0000000)], {"fallback": 512 * M}, "below 4 GiB"),
    ([(0x1a0000000, 0x1c0000000)], {"fallback": 512 * M, "above_4g": True}, None),
    ([(0x60000000, 0x80000000)], {"fallback": 512 * M, "above_4g": True}, "above 4 GiB"),
])
def test_check_reserved(ranges, want, says):
    reasons = crashkernel.check_reserved(ranges, want)
    assert (not reasons) if says is None else any(says in r for r in reasons), reasons


def rejudge_edited(log, tmp_path, old, new, count=1):
    """Judge LOG again with OLD replaced by NEW (COUNT times)."""
    text = log.read_text()
    assert text.count(old) >= count, old
    copy = tmp_path / log.name
    copy.write_text(text.replace(old, new, count))
    copy.with_suffix(".json").write_text(log.with_suffix(".json").read_text())
    verdict, _ = runner.rejudge(copy)
    return verdict


def assert_fails(v, says):
    assert not v.passed and any(says in r for r in v.reasons), v.reasons


def test_the_real_logs_pass():
    for log in (HIGH_LOW, BAD):
        verdict, _ = runner.rejudge(log)
        assert verdict.passed, verdict.reasons


USABLE = "KX-USABLE ranges=0x00000001a0000000+0x0000000020000000,0x00000000f8000000+0x0000000008000000"


@pytest.mark.parametrize("old, new, says", [
    ("KX-CRASH-RANGES ranges=f8000000-ffffffff,1a0000000-1bfffffff", "KX-NOTHING",
     "did not report its crash kernel regions"),
    ("KX-CRASH-RANGES ranges=f8000000-ffffffff,", "KX-CRASH-RANGES ranges=",
     "one of 0x8000000 bytes below 4 GiB"),
    (USABLE, "KX-USABLE ranges=0x00000001a0000000+0x0000000020000000",
     "linux,usable-memory-range"),
    (USABLE, "KX-USABLE ranges=0x00000000f8000000+0x0000000008000000,"
             "0x00000001a0000000+0x0000000020000000", "first"),
    (USABLE, "KX-NOTHING", "did not report its usable memory"),
    ("KX-SYSRAM ranges=f8000000-ffffffff,", "KX-SYSRAM ranges=40000000-ffffffff,",
     "capture kernel's System RAM is"),
    ("KX-CRASH-MODE mode=file", "KX-CRASH-MODE mode=load", "kexec_file_load()"),
])
def test_kdump_fails_on_each_wrong_range(tmp_path, old, new, says):
    assert_fails(rejudge_edited(HIGH_LOW, tmp_path, old, new), says)


@pytest.mark.parametrize("old, new, says", [
    ("crashkernel=,low without crashkernel=,high: nothing reserved", "(quiet)",
     "crashkernel=128M,low (1024 MiB): the kernel did not say"),
    ("KX-CRASH-RANGES ranges=none", "KX-CRASH-RANGES ranges=b0000000-bfffffff",
     "crashkernel=64G (1024 MiB): reserved b0000000-bfffffff"),
    ("KX-CRASH-RANGES ranges=none", "KX-NOTHING",
     "crashkernel=64G (1024 MiB): no crash kernel regions reported"),
    ("KX-DONE gen=0", "KX-NOTHING", "crashkernel=64G (1024 MiB): the guest did not reach"),
])
def test_bad_crashkernel_fails_on_each_missing_piece(tmp_path, old, new, says):
    assert_fails(rejudge_edited(BAD, tmp_path, old, new), says)


SHRINK = LOGS / "crash-shrink-4k-48-pass.log"
SHRINK_LINE = ("KX-CRASH-SHRINK old=268435456 asked=134221824 size=136314880 "
               "range=6e000000-761fffff memfree_before_kb=739744 memfree_after_kb=868500")
HOLE = "KX-PT 0xffff0da6ee000000-0xffff0da6f6200000         130M PMD"
PAST = ("KX-PT 0xffff0da6f6200000-0xffff0da700000000         158M PMD       RW NX SHD AF NG"
        "     BLK UXN    MEM/NORMAL-TAGGED")


@pytest.mark.parametrize("old, new, says", [
    (SHRINK_LINE, "KX-NOTHING", "was not shrunk through /sys/kernel/kexec_crash_size"),
    (SHRINK_LINE, SHRINK_LINE.replace("size=136314880", "size=134221824"),
     "expected 136314880, whole 2 MiB units"),
    (SHRINK_LINE, SHRINK_LINE.replace("761fffff", "75ffffff"), "is not the 136314880 bytes"),
    (SHRINK_LINE, SHRINK_LINE.replace("868500", "749744"), "MemFree grew by 10000 KiB"),
    ("KX-CRASH-RELOADED loaded=1", "KX-NOTHING", "no crash kernel loaded into the shrunk"),
    ("KX-PTDUMP-BEGIN state=shrunk", "KX-NOTHING", "no linear-map dump of the shrunk region"),
    (HOLE, HOLE + "       RW NX SHD AF NG     BLK UXN    MEM/NORMAL-TAGGED",
     "65 of 65 2 MiB units of the shrunk region are mapped"),
    (PAST, PAST.split("PMD")[0] + "PMD", "given back just past the shrunk region"),
])
def test_crash_shrink_fails_on_each_broken_piece(tmp_path, old, new, says):
    assert_fails(rejudge_edited(SHRINK, tmp_path, old, new), says)


def test_the_shrink_log_passes():
    verdict, _ = runner.rejudge(SHRINK)
    assert verdict.passed, verdict.reasons
    assert verdict.evidence["shrink"]["size"] == 130 << 20


def test_the_default_crashkernel_unless_append_gives_one():
    assert crashkernel.args("rodata=on") == ["crashkernel=256M"]
    assert crashkernel.args("crashkernel=1G,high") == []
    assert crashkernel.given("rodata=on") == ["crashkernel=256M"]
    assert crashkernel.given("crashkernel=1G,high crashkernel=0,low kx.kexec=file") == \
        ["crashkernel=1G,high", "crashkernel=0,low"]
