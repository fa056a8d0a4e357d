"""crash-protect's judge: passes on a region that is unmapped in
whole 2 MiB units while loaded and restored exactly, and fails, with its own
reason, on each thing that can go wrong."""
import pytest

from kxbench.scenarios import crash_protect
from test_verdicts import boot, ctx, klog

VA = 0xffff000030000000          # the region's linear-map address: PA 0x70000000
BLOCKS = [f"KX-PT 0xffff000000000000-0xffff000040000000  1G PMD  RW NX SHD AF BLK UXN"]
HOLE = [f"KX-PT 0xffff000000000000-0x{VA:x}  768M PMD  RW NX SHD AF BLK UXN",
        f"KX-PT 0x{VA:x}-0xffff000040000000  256M PMD"]
PAGES = [f"KX-PT 0xffff000000000000-0xffff000040000000  1G PTE  RW NX SHD AF UXN"]
INVALID_PAGES = [f"KX-PT 0xffff000000000000-0x{VA:x}  768M PTE  RW NX SHD AF UXN",
                 f"KX-PT 0x{VA:x}-0xffff000040000000  256M PTE F RW NX SHD AF UXN"]


def kcore(state, pa, zero, arm64, found=1, rc=0):
    va = VA + pa - 0x70000000
    return (f"KX-KCORE state={state} pa={pa:#x} va={va:#x} found={found} rc={rc} "
            f"zero={zero} arm64={arm64}")


def lines(before=BLOCKS, loaded=HOLE, unloaded=BLOCKS, res="70000000-7fffffff",
          loaded_flag=1, unloaded_flag=0, kcore_loaded=None, kcore_unloaded=None):
    out = ["KX-BOOT scenario=crash-protect gen=0 role=main el=2 efi=no acpi=no cpus=1 "
           "memfree_kb=1 boot_id=b release=r", f"KX-CRASHRES range={res}"]
    for state, dump in (("before", before), ("loaded", loaded)):
        if dump is not None:
            out += [f"KX-PTDUMP-BEGIN state={state}", *dump, f"KX-PTDUMP-END state={state}"]
        if state == "before":
            out.append(f"KX-CRASH-LOADED loaded={loaded_flag} segments=0x70200000,")
    out += kcore_loaded if kcore_loaded is not None else [
        kcore("loaded", 0x70000000, 1, 0), kcore("loaded", 0x70200000, 1, 0)]
    out.append(f"KX-CRASH-UNLOADED loaded={unloaded_flag}")
    if unloaded is not None:
        out += ["KX-PTDUMP-BEGIN state=unloaded", *unloaded, "KX-PTDUMP-END state=unloaded"]
    out += kcore_unloaded if kcore_unloaded is not None else [
        kcore("unloaded", 0x70000000, 0, 0), kcore("unloaded", 0x70200000, 0, 1)]
    return out + [klog(0), "KX-DONE gen=0"]


def judge(append="", done=True, **kw):
    texts = [t for t in lines(**kw) if done or not t.startswith("KX-DONE")]
    return crash_protect.judge(boot(*texts), ctx("crash-protect", append_extra=append),
                               {"crashkernel": "256M"})


def test_passes_when_the_region_goes_and_comes_back_whole():
    v = judge()
    assert v.passed, v.reasons
    assert v.evidence["linear"]["before"]["translations"] == 128
    assert v.evidence["linear"]["loaded"]["units_mapped"] == 0


def test_a_page_granular_map_passes_only_where_the_kernel_is_asked_for_pages():
    """rodata=full keeps pages: invalid pages (F) protect the region too."""
    assert judge("rodata=full", before=PAGES, loaded=INVALID_PAGES, unloaded=PAGES).passed
    v = judge(before=PAGES, loaded=INVALID_PAGES, unloaded=PAGES)
    assert not v.passed and any("translations, more than 128" in r for r in v.reasons), v.reasons


@pytest.mark.parametrize("change, reason", [
    (dict(res="none"), "no crash kernel region"),
    (dict(res="70000000-7fefefff"), "is not whole 2 MiB units"),
    (dict(loaded_flag=0), "kexec -p loaded no crash kernel"),
    (dict(unloaded_flag=1), "kexec -p -u left the crash kernel"),
    (dict(kcore_loaded=[kcore("loaded", 0x70000000, 1, 0, found=0)],
          kcore_unloaded=[]), "/proc/kcore has no linear-map address"),
    (dict(loaded=None), "no linear-map dump loaded"),
    (dict(loaded=BLOCKS), "while loaded, 128 of 128 2 MiB units"),
    (dict(loaded=HOLE[:1]), "while loaded, 0 of 128 2 MiB units"),
    (dict(before=HOLE), "before the load, 0 of 128"),
    (dict(unloaded=PAGES), "differs from the one before"),
    (dict(kcore_loaded=[kcore("loaded", 0x70000000, 1, 0), kcore("loaded", 0x70200000, 0, 1)]),
     "/proc/kcore read the region while loaded"),
    (dict(kcore_loaded=[]), "/proc/kcore read the region while loaded"),
    (dict(kcore_unloaded=[kcore("unloaded", 0x70000000, 0, 0)]), "no Image header"),
    (dict(done=False), "the guest did not finish"),
], ids=["no-region", "not-2m-units", "not-loaded", "not-unloaded", "no-kcore-address",
        "no-loaded-dump", "still-mapped", "dump-misses-units", "unmapped-before",
        "not-restored", "kcore-read-it", "no-kcore-reads", "no-image-after", "no-done"])
def test_fails_with_its_reason(change, reason):
    v = judge(**change)
    assert not v.passed
    assert any(reason in r for r in v.reasons), v.reasons
