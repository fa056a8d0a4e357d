"""Unit tests for the workbench's own machinery (no kernel needed)."""
import os
import re
import shutil
import stat
import subprocess

import pytest

from gitrepo import base_repo, git
from kxbench import dtb, kbuild, machine, sources, tree
from kxbench.initramfs import Cpio, read_entries
from kxbench.util import KxError


def test_cpio_round_trip_keeps_dirs_links_nodes_and_data(tmp_path):
    src = tmp_path / "src" / "sub"
    src.mkdir(parents=True)
    (src / "f").write_bytes(b"hello")
    (src / "l").symlink_to("f")
    with Cpio(tmp_path / "a.cpio") as c:
        c.chardev("dev/console", 5, 1)
        c.data("kx/token", b"tok")
        c.tree("lib", tmp_path / "src")
    entries = {n: (m, d) for n, m, d in read_entries(tmp_path / "a.cpio")}
    # The top of a copied tree must be there: the kernel makes no parents.
    assert stat.S_ISDIR(entries["lib"][0]) and stat.S_ISDIR(entries["lib/sub"][0])
    assert entries["lib/sub/f"][1] == b"hello"
    assert stat.S_ISLNK(entries["lib/sub/l"][0]) and entries["lib/sub/l"][1] == b"f"
    assert stat.S_ISCHR(entries["dev/console"][0])
    assert entries["kx/token"][1] == b"tok"
    assert (tmp_path / "a.cpio").stat().st_size % 512 == 0


def test_cpio_is_deterministic(tmp_path):
    for name in ("a", "b"):
        with Cpio(tmp_path / name) as c:
            c.data("x", b"1" * 1000)
    assert (tmp_path / "a").read_bytes() == (tmp_path / "b").read_bytes()


def test_cpio_refuses_duplicates(tmp_path):
    with pytest.raises(ValueError):
        with Cpio(tmp_path / "a") as c:
            c.data("x", b"")
            c.data("x", b"")


def test_hung_guest_is_killed_at_the_timeout_and_its_log_kept(tmp_path, monkeypatch):
    monkeypatch.setattr(machine, "qemu_command",
                        lambda spec: ["sh", "-c", "echo KX-BOOT hello; exec sleep 60"])
    spec = machine.Spec(kernel="k", initrd="i", append="", workdir=tmp_path)
    boot = machine.boot(spec, tmp_path / "run.log", timeout=2)
    assert boot.timed_out and boot.seconds < 10
    assert boot.first("KX-BOOT").text == "KX-BOOT hello"
    log = (tmp_path / "run.log").read_text()
    assert "KX-BOOT hello" in log and "killed by the workbench after 2 s" in log


def test_guest_lines_are_timestamped_in_order(tmp_path, monkeypatch):
    monkeypatch.setattr(machine, "qemu_command",
                        lambda spec: ["sh", "-c", "echo a; sleep 0.3; printf 'b\\r\\n'"])
    spec = machine.Spec(kernel="k", initrd="i", append="", workdir=tmp_path)
    boot = machine.boot(spec, tmp_path / "run.log", timeout=10)
    assert not boot.timed_out and boot.exit_code == 0
    assert [ln.text for ln in boot.lines] == ["a", "b"]
    assert boot.lines[1].t - boot.lines[0].t >= 0.25


def test_profiles_select_exception_level_and_firmware(tmp_path):
    def cmd(profile):
        spec = machine.Spec(kernel="k", initrd="i", append="", profile=profile,
                            workdir=tmp_path)
        return " ".join(machine.qemu_command(spec))
    assert "virtualization=off" in cmd("dt-el1")
    assert "virtualization=on" in cmd("dt-el2") and "AAVMF" not in cmd("dt-el2")
    assert "virtualization=on" in cmd("uefi") and "AAVMF_CODE.fd" in cmd("uefi")
    with pytest.raises(KxError):
        cmd("bogus")


def test_guest_ram_comes_from_a_backend_that_reserves_nothing(tmp_path):
    """A 64 GiB guest on a smaller host: QEMU maps the RAM MAP_NORESERVE and
    the host commits only what the guest touches; -m must name the same size."""
    spec = machine.Spec(kernel="k", initrd="i", append="", mem=65536, workdir=tmp_path)
    cmd = machine.qemu_command(spec)
    assert cmd[cmd.index("-object") + 1] == \
        "memory-backend-ram,id=ram0,size=65536M,reserve=off"
    assert cmd[cmd.index("-m") + 1] == "65536M"
    assert cmd[cmd.index("-M") + 1].split(",")[-1] == "memory-backend=ram0"
    assert cmd.count("-m") == 1 and "-dtb" not in cmd


@pytest.mark.parametrize("bad", [0, -1, 100, 65537, 10 ** 9, "abc", "1.5", None])
def test_nonsense_guest_ram_is_refused_with_the_range(bad, tmp_path):
    with pytest.raises(KxError, match="MiB"):
        machine.check_mem(bad)
    spec = machine.Spec(kernel="k", initrd="i", append="", mem=bad, workdir=tmp_path)
    with pytest.raises(KxError):
        machine.qemu_command(spec)


def test_the_cli_takes_64_gib_and_refuses_nonsense(capsys):
    from kxbench import cli
    assert cli.parser().parse_args(["run", "kexec-reboot", "--mem", "65536"]).mem == 65536
    for bad in ("abc", "0", "131072"):
        with pytest.raises(SystemExit):
            cli.parser().parse_args(["run", "kexec-reboot", "--mem", bad])
        assert "argument --mem: guest RAM" in capsys.readouterr().err


def test_boot_timeouts_grow_with_guest_ram():
    from kxbench.scenarios import common
    small = common.Context(scenario="kexec-reboot", mem=1024).boot_timeout()
    large = common.Context(scenario="kexec-reboot", mem=65536).boot_timeout()
    assert large >= small + 60
    assert common.Context(scenario="kexec-reboot", mem=1024, timeout=7).boot_timeout() == 7


def test_a_device_tree_goes_to_qemu_only_under_the_dt_profiles(tmp_path):
    spec = machine.Spec(kernel="k", initrd="i", append="", dtb=tmp_path / "t.dtb",
                        workdir=tmp_path)
    cmd = machine.qemu_command(spec)
    assert cmd[cmd.index("-dtb") + 1] == str(tmp_path / "t.dtb")
    with pytest.raises(KxError, match="uefi"):
        machine.qemu_command(machine.Spec(kernel="k", initrd="i", append="", profile="uefi",
                                          dtb=tmp_path / "t.dtb", workdir=tmp_path))


@pytest.mark.skipif(not shutil.which("dtc"), reason="device-tree-compiler (./kx deps)")
def test_a_no_map_region_is_added_to_a_device_tree(tmp_path):
    src = tmp_path / "t.dts"
    src.write_text('/dts-v1/;\n/ { #address-cells = <2>; #size-cells = <2>;\n'
                   '  chosen { linux,initrd-start = <0x0 0x48000000>;\n'
                   '           linux,initrd-end = <0x0 0x48a00000>; }; };\n')
    path = tmp_path / "t.dtb"
    subprocess.run(["dtc", "-q", "-I", "dts", "-O", "dtb", "-o", str(path), str(src)],
                   check=True)
    assert dtb.initrd_end(path) == 0x48A00000
    node = dtb.add_nomap(path, 0x150005000, 0x3000)
    assert node == "/reserved-memory/kx-nomap@150005000"
    assert dtb.cells(path, node, "reg") == [0x1, 0x50005000, 0, 0x3000]
    out = subprocess.run(["fdtget", "-p", str(path), node], capture_output=True, text=True)
    assert "no-map" in out.stdout.split()
    assert dtb.cells(path, "/reserved-memory", "#size-cells") == [2]


def test_pin_mismatch_and_absence_name_the_pin(tmp_path):
    f = tmp_path / "x.tar.xz"
    with pytest.raises(KxError, match="pin base: x.tar.xz is absent"):
        sources.verify("base", f, "0" * 64)
    f.write_bytes(b"not the kernel")
    with pytest.raises(KxError, match="pin base: x.tar.xz has sha256 .* pinned 0000"):
        sources.verify("base", f, "0" * 64)


def test_unknown_kernel_pin_is_an_error():
    with pytest.raises(KxError, match="no pinned kernel source"):
        sources.kernel_tarball("v9.9")


def test_fragment_options_that_did_not_take_are_named():
    frag = "CONFIG_KEXEC=y\nCONFIG_HIBERNATION=y\n# CONFIG_SUSPEND is not set\nCONFIG_X=n\n"
    dot = "CONFIG_KEXEC=y\n# CONFIG_HIBERNATION is not set\nCONFIG_SUSPEND=y\n"
    bad = kbuild.config_mismatches(frag, dot)
    assert bad == ["CONFIG_HIBERNATION wanted y, got n", "CONFIG_SUSPEND wanted n, got y"]


def test_every_config_fragment_exists():
    for config in kbuild.CONFIGS:
        assert "CONFIG_KEXEC=y" in kbuild.fragment(config)
    with pytest.raises(KxError):
        kbuild.fragment("8k-48")


def test_export_is_stable_and_applies_with_git_am(tmp_path, monkeypatch):
    repo, patches = base_repo(tmp_path, monkeypatch)
    (repo / "a.c").write_text("int a;\nint b;\n")
    git(repo, "commit", "-q", "-am", "arm64: add b\n\nBecause.")
    names = tree.export()
    assert names == ["0001-arm64-add-b.patch"]
    first = (patches / names[0]).read_bytes()
    assert tree.export() == names and (patches / names[0]).read_bytes() == first
    assert b"From 0000000000000000000000000000000000000000" in first
    git(repo, "checkout", "-q", "-B", "fresh", tree.BASE_TAG)
    git(repo, "am", "-q", str(patches / names[0]))
    assert (repo / "a.c").read_text() == "int a;\nint b;\n"


def test_series_naming_a_missing_patch_is_an_error(tmp_path, monkeypatch):
    (tmp_path / "series").write_text("0001-missing.patch\n")
    monkeypatch.setattr(tree, "PATCHES", tmp_path)
    monkeypatch.setattr(tree, "SERIES", tmp_path / "series")
    with pytest.raises(KxError, match="0001-missing.patch"):
        tree.series_files()


def test_the_full_bench_measures_load_overhead_up_to_64_gib_and_quick_stays_small():
    from kxbench import bench
    assert bench.FULL["mems"] == (1024, 4096, 16384, 65536)
    assert bench.FULL["profiles"] == ("dt-el2", "uefi")
    assert max(bench.QUICK["mems"]) <= 4096 and bench.QUICK["reps"] == 1
    # The quick bench (make check) measures what make check builds anyway.
    assert bench.QUICK["kernels"] == ("base", "series", "base-6.12", "series-6.12")
    assert "upstream" in bench.FULL.get("kernels", bench.KERNELS)
    # Both series beside their peers: every kernel of the bench is one line's.
    assert {bench.line_of(k)["series"] for k in bench.KERNELS} == {"series", "series-6.12"}
    # v6.12 is built for its three granules only.
    assert bench.configs_of("series-6.12", ("4k-39", "4k-48", "64k-52")) == ["4k-48"]
    assert bench.configs_of("base", ("4k-39", "4k-48")) == ["4k-39", "4k-48"]


def test_the_bench_fails_when_its_measurement_misses_upstream_s_growth():
    """Upstream's load overhead grows with RAM: a bench that measures it and
    sees no growth has a broken measurement, and says so."""
    from kxbench import bench

    def row(mem, upstream):
        return {"profile": "dt-el2", "mem": mem, "payload_mib": 32, "metric": "load_overhead_kb",
                "upstream": {"median": upstream} if upstream is not None else None}
    assert bench.unseen_growth([row(1024, 100), row(65536, 90000)]) is None
    assert "does not see the growth" in bench.unseen_growth([row(1024, 100), row(4096, 900)])
    assert bench.unseen_growth([row(1024, None), row(4096, None)]) is None
    # v6.12 copies page by page too: the quick bench, without upstream, sees
    # growth through it.
    v612 = [{"profile": "dt-el2", "mem": m, "payload_mib": 32, "metric": "load_overhead_kb",
             "base-6.12": {"median": kb}} for m, kb in ((1024, 900), (4096, 950))]
    assert bench.unseen_growth(v612).startswith("base-6.12's load overhead")
    v612[1]["base-6.12"]["median"] = 7000
    assert bench.unseen_growth(v612) is None


def test_each_series_is_measured_against_its_own_base():
    """Ratios and translation shares are a series' over its own line's peers."""
    from kxbench import bench
    samples = [{"kernel": k, "profile": "dt-el2", "mem": 1024, "payload_mib": 32,
                "load_overhead_kb": kb, "load_s": 1.0, "exec_to_userspace_s": 2.0}
               for k, kb in (("base", 500), ("series", 600), ("base-6.12", 4000),
                             ("series-6.12", 800))]
    row = next(r for r in bench.aggregate(samples) if r["metric"] == "load_overhead_kb")
    assert row["series_vs_base"] == 1.2 and row["series-6.12_vs_base-6.12"] == 0.2
    assert "series_vs_upstream" not in row
    leaves = [{"kernel": k, "config": "4k-48", "cmdline": "c", "translations": n}
              for k, n in (("base", 1000), ("series", 10), ("base-6.12", 40),
                           ("series-6.12", 2000))]
    assert bench.translation_ratio(leaves, leaves[1]) == 0.01
    assert bench.translation_ratio(leaves, leaves[3]) == 50
    md = bench.markdown({"started": "s", "mode": "quick", "kernels": list(bench.QUICK["kernels"]),
                         "rows": [row], "leaves": leaves})
    assert "| series/base | series-6.12/base-6.12 |" in md
    assert "| 500 (500..500) | 600 (600..600) | 4000 (4000..4000) | 800 (800..800) | 1.2 | 0.2 |" \
        in md


def test_a_hung_guest_leaves_its_cpu_registers_in_the_log(tmp_path, monkeypatch):
    """A real QEMU with nothing to run: killed at the timeout, but first
    asked through the workbench's QMP socket where its CPU was."""
    monkeypatch.setattr(machine, "qemu_command", lambda spec: [
        "qemu-system-aarch64", "-M", "virt", "-cpu", "cortex-a57", "-smp", "2", "-nodefaults",
        "-display", "none", "-serial", "stdio", "-qmp", f"unix:{spec.qmp},server=on,wait=off"])
    spec = machine.Spec(kernel="k", initrd="i", append="", workdir=tmp_path)
    with machine.Machine(spec, tmp_path / "run.log", timeout=2) as m:
        boot = m.wait_exit()
    assert boot.timed_out
    log = (tmp_path / "run.log").read_text()
    assert "# the CPUs when the timeout struck" in log
    # Whether the vCPUs still ran: a QEMU deadlock and a guest loop differ.
    assert re.search(r"^# QEMU used \d+\.\d\d s of CPU time in the last 1.0 s", log, re.M), log
    assert len(re.findall(r"^# +PC=[0-9a-f]{16} ", log, re.M)) == 2, log
    assert len(re.findall(r"^# PSTATE=[0-9a-f]+ .* EL1h", log, re.M)) == 2, log
    assert machine.read_log(tmp_path / "run.log")[0].lines == []
    assert m.qmp_dir and not os.path.exists(m.qmp_dir)


def test_a_guest_without_a_qmp_socket_is_still_killed_and_says_so(tmp_path, monkeypatch):
    monkeypatch.setattr(machine, "qemu_command", lambda spec: ["sleep", "60"])
    spec = machine.Spec(kernel="k", initrd="i", append="", workdir=tmp_path)
    boot = machine.boot(spec, tmp_path / "run.log", timeout=1)
    assert boot.timed_out and boot.seconds < 5
    assert "# (none: QEMU made no QMP socket)" in (tmp_path / "run.log").read_text()
