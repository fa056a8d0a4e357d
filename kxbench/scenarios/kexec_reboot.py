"""kexec-reboot: gen N loads the next kernel with a payload and a fresh
token; gen N+1 reports the token, the payload's sha256 and its EL."""
from .. import machine, userland
from . import common


# Asks the guest to make kexec-tools place the new kernel over the old one's
# text and data (see guest/init), which the judge then requires.
OLD_KERNEL = "kx.placement=old-kernel"
# Asks the guest to keep a KVM guest running across kexec -e and to run one
# again in the new kernel, which the judge then requires.
KVM_ALIVE = "kx.kvm=1"


def mode(ctx):
    """The syscall the guest must use: kexec_file_load only for kexec-file."""
    return "file" if ctx.scenario == "kexec-file" else "load"


def next_initramfs(ctx, parts, work, token, gens=1, how="load"):
    """WORK/next.cpio, the next kernel's initramfs with TOKEN and a fresh
    payload, and what the reboot into it must show."""
    sha = common.payload(ctx, work / "payload")
    nxt = userland.build_initramfs(work / "next.cpio", parts, {
        "kx/token": token.encode(), "kx/payload": work / "payload"})
    (work / "payload").unlink()
    return nxt, {"token": token, "sha256": sha, "payload_bytes": ctx.payload_mib << 20,
                 "gens": gens, "mode": how}


def setup(ctx, variant=None):
    """Kernel (of build VARIANT), initramfs images and data disk; return
    (image, spec, expect)."""
    image, parts = common.prepare(ctx, variant)
    work = common.fresh_workdir(ctx)
    first = userland.build_initramfs(work / "gen0.cpio", parts)
    nxt, expect = next_initramfs(ctx, parts, work, ctx.token, ctx.gens, mode(ctx))
    disk = common.data_disk(work / "disk.img", image, nxt)
    spec = ctx.spec(image, first, ctx.append("kx.gen=0", f"kx.gens={ctx.gens}"), disk)
    return image, spec, expect


def run(ctx):
    image, spec, expect = setup(ctx)
    boot = machine.boot(spec, ctx.log, ctx.boot_timeout() * ctx.gens)
    ctx.judge_args = [expect]
    return judge(boot, ctx, expect)


def span(text):
    """'40210000-40f8ffff' (as /proc/iomem has it) -> (start, end exclusive)."""
    start, end = text.split("-")
    return int(start, 16), int(end, 16) + 1


def placement(pf):
    """Where kexec-tools put the segments, and whether one of them lands on
    the running kernel's text, read-only data or data."""
    segs = []
    for seg in filter(None, pf["segments"].split(",")):
        if seg == "none":
            continue
        mem, size = seg.split("+")
        segs.append((int(mem, 16), int(mem, 16) + int(size, 16)))
    kernel = [span(pf[k]) for k in ("kernel_code", "kernel_data") if pf.get(k)]
    hits = [k for k in kernel for s in segs if s[0] < k[1] and k[0] < s[1]]
    return {"asked": pf.get("placement", "default"),
            "segments": [f"{a:#x}-{b:#x}" for a, b in segs],
            "kernel": [f"{a:#x}-{b:#x}" for a, b in kernel],
            "lands_on_old_kernel": bool(hits)}


def judge(boot, ctx, expect):
    v = common.Verdict()
    f0, gens = check_generations(v, boot, ctx, expect)
    common.check_exit(v, boot, ctx)
    v.evidence["gen0"] = f0
    v.evidence["generations"] = gens
    if gens:
        first = gens[0]
        v.metrics = {k: first[k] for k in ("load_s", "memfree_before_load_kb",
                                           "memfree_after_load_kb", "load_overhead_kb",
                                           "exec_to_userspace_s")}
        at_boot = [int(f0["memfree_kb"])] if f0 else []
        v.metrics["memfree_at_boot_kb"] = at_boot + [g["memfree_at_boot_kb"] for g in gens]
    if not v.passed and v.first_bad_line is None:
        v.first_bad_line = common.first_bad(boot)
    return v


def check_generations(v, boot, ctx, expect):
    """Gen 0 booted and each kexec reached the next generation with the
    token, payload, exception level and CPUs EXPECT asks for, and the last
    one finished; the kernel logs are left to the caller (check_exit).
    Returns gen 0's KX-BOOT fields and a summary of each later generation."""
    f0 = common.check_boot_line(v, boot, ctx, gen=0)
    v.evidence["expected"] = {"token": expect["token"], "sha256": expect["sha256"],
                              "el": ctx.expected_el, "efi": ctx.efi}
    gens = []
    for g in range(1, expect["gens"] + 1):
        loaded, lf = common.find(boot, "KX-LOADED", gen=g - 1)
        execd, _ = common.find(boot, "KX-EXEC", gen=g - 1)
        booted, bf = common.find(boot, "KX-BOOT", gen=g)
        rep, rf = common.find(boot, "KX-GEN", gen=g)
        if not v.require(loaded is not None and lf["loaded"] == "1",
                         f"gen {g - 1}: no successful kexec load"):
            break
        v.require(lf["mode"] == expect["mode"],
                  f"gen {g - 1}: loaded with kexec_{lf['mode']}, expected {expect['mode']}")
        if not v.require(execd is not None and booted is not None,
                         f"gen {g - 1}: kexec -e did not reach gen {g}'s userspace"):
            break
        if not v.require(rep is not None, f"gen {g}: no KX-GEN report"):
            break
        v.require(rf["token"] == expect["token"],
                  f"gen {g}: token {rf['token']!r}, expected {expect['token']!r}")
        v.require(rf["sha256"] == expect["sha256"],
                  f"gen {g}: payload sha256 {rf['sha256']}, expected {expect['sha256']}")
        v.require(rf["payload_bytes"] == str(expect["payload_bytes"]),
                  f"gen {g}: payload is {rf['payload_bytes']} bytes, "
                  f"expected {expect['payload_bytes']}")
        v.require(rf["el"] == str(ctx.expected_el),
                  f"gen {g}: entered at EL{rf['el']}, expected EL{ctx.expected_el}")
        v.require(rf["efi"] == ctx.efi, f"gen {g}: efi={rf['efi']}, expected {ctx.efi}")
        # The secondary CPUs the old kernel parked must all come up again.
        v.require(bf["cpus"] == str(ctx.smp),
                  f"gen {g}: {bf['cpus']} CPUs online, expected {ctx.smp}")
        before, after = int(lf["memfree_before_kb"]), int(lf["memfree_after_kb"])
        seg_kb = int(lf["segment_bytes"]) // 1024
        gens.append({
            "gen": g, "token": rf["token"], "sha256": rf["sha256"], "el": int(rf["el"]),
            "efi": rf["efi"],
            "load_s": int(lf["load_ns"]) / 1e9,
            "memfree_before_load_kb": before, "memfree_after_load_kb": after,
            "segment_kb": seg_kb, "load_overhead_kb": before - after - seg_kb,
            "exec_to_userspace_s": round(booted.t - execd.t, 3),
            "memfree_at_boot_kb": int(bf["memfree_kb"]),
        })
        v.require(int(lf["load_ns"]) > 0 and before > 0 and after > 0,
                  f"gen {g - 1}: implausible load figures: {lf}")
        v.require(booted.t > execd.t, f"gen {g}: userspace before kexec -e")
        _, pf = common.find(boot, "KX-PLACEMENT", gen=g - 1)
        if pf is not None:
            gens[-1]["placement"] = placement(pf)
        # With kexec_file_load the kernel places the segments and kexec -d
        # prints none; with kexec_load, where they went is evidence.
        if expect["mode"] == "load" and v.require(
                pf is not None and gens[-1]["placement"]["segments"],
                f"gen {g - 1}: no segment placement reported (kexec -d)"):
            if ctx.asks(OLD_KERNEL):
                v.require(gens[-1]["placement"]["lands_on_old_kernel"],
                          f"gen {g - 1}: asked to load over the old kernel, no segment "
                          f"lands on it: {gens[-1]['placement']}")
    if ctx.asks(KVM_ALIVE):
        check_kvm(v, boot, expect["gens"])
    done, _ = common.find(boot, "KX-DONE", gen=expect["gens"])
    if v.passed:
        v.require(done is not None, f"gen {expect['gens']} did not finish")
    return f0, gens


def check_kvm(v, boot, gens):
    """Each generation but the last had a KVM guest running, and making
    progress, when it called kexec -e; each one after the first ran one."""
    runs = []
    for g in range(gens):
        _, alive = common.find(boot, "KX-KVM-ALIVE", gen=g)
        if v.require(alive is not None, f"gen {g}: no KVM guest was running at kexec -e"):
            v.require(alive["alive"] == "1" and
                      int(alive["exits_after"]) > int(alive["exits_before"]) > 0,
                      f"gen {g}: the KVM guest was not running and making progress at "
                      f"kexec -e: {alive}")
        _, ran = common.find(boot, "KX-KVM-RUN", gen=g + 1)
        if v.require(ran is not None, f"gen {g + 1}: ran no KVM guest"):
            v.require(ran["rc"] == "0" and int(ran["exits"]) > 0,
                      f"gen {g + 1}: the KVM guest failed: {ran}")
        runs.append({"gen": g, "alive_at_kexec": alive, "next_kernel_run": ran})
    v.evidence["kvm"] = runs
