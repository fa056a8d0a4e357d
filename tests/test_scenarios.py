"""The scenario matrix: each cell boots QEMU through ./kx run and passes only
on the evidence the guest printed (see kxbench/scenarios/)."""
import json
import re
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SCENARIOS = ("kexec-reboot", "kexec-file", "kexec-chain", "kdump", "hibernate")
PROFILES = ("dt-el1", "dt-el2", "uefi")
OTHER_CONFIGS = ("4k-39", "16k-47", "64k-48", "64k-52")

CELLS = [("series", "4k-48", p, s, None) for p in PROFILES for s in SCENARIOS]
CELLS += [("series", c, "dt-el2", s, "max") for c in OTHER_CONFIGS
          for s in ("kexec-reboot", "kdump")]
# Hibernate shares trans_pgd: every config under every profile.
CELLS += [("series", c, p, "hibernate", None) for c in OTHER_CONFIGS for p in PROFILES]
# The unpatched peer through UEFI (the workbench's done-when cell).
CELLS += [("base", "4k-48", "uefi", "kexec-reboot", None)]


def kx_run(*args):
    res = subprocess.run([str(REPO / "kx"), "run", *args], capture_output=True, text=True,
                         cwd=REPO)
    out = res.stdout + res.stderr
    m = re.search(r"result (\S+\.json)\)", out)
    record = json.loads(Path(m.group(1)).read_text()) if m else None
    return res.returncode, out, record


@pytest.mark.parametrize("kernel, config, profile, scenario, cpu", CELLS,
                         ids=lambda x: str(x))
def test_cell(kernel, config, profile, scenario, cpu):
    args = [scenario, "--kernel", kernel, "--config", config, "--profile", profile]
    if cpu:
        args += ["--cpu", cpu]
    rc, out, record = kx_run(*args)
    assert rc == 0, out
    assert out.startswith("PASS "), out
    assert record["verdict"] == "pass" and not record["reasons"]
    for key in ("scenario", "kernel", "config", "profile", "cpu", "mem", "evidence",
                "metrics"):
        assert key in record
    assert Path(record["log"]).exists()
    ev, el = record["evidence"], 1 if profile == "dt-el1" else 2
    if scenario.startswith("kexec"):
        gens = ev["generations"]
        assert len(gens) == (5 if scenario == "kexec-chain" else 1)
        for g in gens:
            assert g["token"] == ev["expected"]["token"]
            assert g["sha256"] == ev["expected"]["sha256"]
            assert g["el"] == el
            assert g["efi"] == ("yes" if profile == "uefi" else "no")
        for metric in ("load_s", "memfree_before_load_kb", "memfree_after_load_kb",
                       "exec_to_userspace_s"):
            assert record["metrics"][metric] > 0
    elif scenario == "kdump":
        assert ev["pattern"]["found"] == str(ev["expected"]["chunks"])
        assert ev["makedumpfile"]["sig"] == "KDUMP"
        assert ev["capture"]["el"] == str(el)
    else:
        assert ev["held"]["intact"] == str(ev["expected"]["chunks"])
        assert ev["resumed"]["boot_id"] == ev["hibernated"]["boot_id"]


@pytest.mark.parametrize("config", ["4k-48", "4k-39"])
def test_trans_pgd_kunit_suite_passes_in_the_guest(config):
    """4k-39 also takes the idmap path that must raise T0SZ."""
    rc, out, record = kx_run("kunit", "--config", config)
    assert rc == 0, out
    suite = record["evidence"]["suites"]["arm64_trans_pgd"]
    assert suite["ok"] and len(suite["cases"]) >= 6 and all(suite["cases"].values())


def test_a_failing_cell_exits_nonzero_and_names_its_log():
    """An impossible demand (a guest given too little time) must fail."""
    rc, out, record = kx_run("kexec-reboot", "--timeout", "1")
    assert rc == 1 and out.startswith("FAIL "), out
    assert "timed out" in out and "log " in out
    assert record["verdict"] == "fail" and Path(record["log"]).exists()


@pytest.mark.parametrize("profile, el", [("dt-el2", 2), ("dt-el1", 1)])
def test_mmu_state_sees_the_base_copy_with_the_mmu_off(profile, el):
    """The instrument for the series' central claim, checked where the
    answer is known: the base relocates with the MMU and caches off (at EL2
    when entered at EL2), so mmu-state must fail there, on that evidence,
    while the reboot itself still succeeds."""
    rc, out, record = kx_run("mmu-state", "--kernel", "base", "--profile", profile)
    assert rc == 1 and out.startswith("FAIL "), out
    ev = record["evidence"]
    assert len(ev["copy_samples"]) >= 3, out
    for s in ev["copy_samples"]:
        assert s["el"] == el and (int(s["sctlr"], 16) & 1) == 0, s
    assert (int(ev["jump"]["sctlr"], 16) & 1) == 0
    assert ev["generations"][0]["sha256"] == ev["expected"]["sha256"]
