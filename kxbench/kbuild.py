"""Kernel builds per (kernel, config): allnoconfig + fragment, ccache, O=.

The O= directory sits directly under the source tree, so kbuild uses a
relative srctree ("..") and ccache hits across clones and between trees.
"""
import fcntl
import hashlib
import json
import os
import re
from pathlib import Path

from . import pins, sources, tree
from .util import CACHE, REPO, KxError, log, run

KERNELS = ("base", "series", "upstream", "base-6.12", "series-6.12")
CONFIGS = ("4k-48", "4k-39", "16k-47", "64k-48", "64k-52")
CCACHE = CACHE / "ccache"
BUILD_RECORD = "kx.build.json"


class BuildError(KxError):
    """The kernel did not build (or its config did not take): no guest ran."""


def source_dir(kernel, tree_dir=None):
    """KERNEL's source tree; TREE_DIR, any kernel git tree, replaces it."""
    if tree_dir:
        return Path(tree_dir).resolve()
    series = tree.of_kernel(kernel)
    if series:
        with tree.using(series.name):
            return tree.ensure_tree()
    if kernel in KERNELS:
        return sources.unpacked_kernel(kernel)
    raise KxError(f"unknown kernel {kernel!r}: choose from {', '.join(KERNELS)}")


VARIANTS = ("", "kunit", "server", "debug")


def kernel_line(src):
    """'5.10', '6.12': VERSION.PATCHLEVEL of the kernel tree SRC, from its
    Makefile. A series' tests are what its own line promises."""
    text = (Path(src) / "Makefile").read_text(errors="replace")[:2000]
    found = dict(re.findall(r"^(VERSION|PATCHLEVEL) = (\d+)$", text, re.M))
    if len(found) != 2:
        raise KxError(f"{src}/Makefile names no VERSION and PATCHLEVEL")
    return f"{found['VERSION']}.{found['PATCHLEVEL']}"


def line_of(kernel, tree_dir=None):
    """KERNEL's line ('5.10', '6.12') by its pinned version, without
    unpacking it; a tree's (TREE_DIR) from its Makefile."""
    if tree_dir:
        return kernel_line(tree_dir)
    series = tree.of_kernel(kernel)
    base = series.base if series else kernel
    if base not in pins.KERNELS:
        raise KxError(f"the line of kernel {kernel!r} is unknown without its tree")
    return ".".join(pins.KERNELS[base]["version"].split(".")[:2])


def fragment(config, variant="", kernel=None, line="5.10"):
    """common.config + CONFIG.config (+ VARIANT.config, e.g. kunit), plus
    configs/upstream.config for the upstream peer, and for a kernel of the
    v6.12 LINE configs/v6.12.config and v6.12-VARIANT.config where there is
    one: what that line names differently, last, so that it wins."""
    if config not in CONFIGS:
        raise KxError(f"unknown config {config!r}: choose from {', '.join(CONFIGS)}")
    if variant not in VARIANTS:
        raise KxError(f"unknown build variant {variant!r}")
    names = ["common", config] + ([variant] if variant else [])
    names += ["upstream"] if kernel == "upstream" else []
    if line == "6.12":
        names += ["v6.12"] + ([f"v6.12-{variant}"] if variant and
                              (REPO / "configs" / f"v6.12-{variant}.config").exists() else [])
    return "".join((REPO / "configs" / f"{n}.config").read_text() for n in names)


def wanted_options(text):
    """{CONFIG_X: value} from a fragment; 'n' for =n and 'is not set'."""
    out = {}
    for line in text.splitlines():
        m = re.match(r"^(CONFIG_\w+)=(.*)$", line) or re.match(r"^# (CONFIG_\w+) is not set", line)
        if m:
            out[m.group(1)] = m.group(2) if m.lastindex == 2 else "n"
    return out


def config_mismatches(text, dotconfig):
    have = wanted_options(dotconfig)
    return [f"{k} wanted {v}, got {have.get(k, 'unset')}"
            for k, v in wanted_options(text).items()
            if have.get(k, "n") != v]


def make_env():
    return {"ARCH": "arm64", "CROSS_COMPILE": "ccache aarch64-linux-gnu-",
            "CCACHE_DIR": str(CCACHE), "CCACHE_MAXSIZE": "8G",
            "KBUILD_BUILD_USER": "kx", "KBUILD_BUILD_HOST": "kx",
            "KBUILD_BUILD_TIMESTAMP": "2024-07-27"}


def git_state(src):
    """HEAD of the git tree SRC, with ":dirty" when a tracked file changed."""
    return tree.head(src) + (":dirty" if tree.is_dirty(src) else "")


def source_tree_id(src):
    """The git tree (content) hash of SRC's HEAD, with ":dirty" when a tracked
    file changed: the same series rebased to the same content keeps its id."""
    return tree.head(src, "HEAD^{tree}") + (":dirty" if tree.is_dirty(src) else "")


def build(kernel, config, variant="", jobs=None, tree_dir=None):
    """Build KERNEL's arch/arm64/boot/Image for CONFIG; return its path.
    TREE_DIR, a kernel git tree such as a worktree of build/linux, replaces
    KERNEL's source (./kx run --tree)."""
    src = source_dir(kernel, tree_dir)
    state = git_state(src) if tree.of_kernel(kernel) or tree_dir else ""
    image = build_tree(src, config, variant, state, jobs,
                       kernel=None if tree_dir else kernel)
    if not (image.parents[3] / BUILD_RECORD).exists():
        write_record(image, src, "tree" if tree_dir else kernel, config, variant)
    return image


def write_record(image, src, kernel, config, variant):
    """What IMAGE was built from, written when it is built: a result names
    the source of the kernel that ran, not the tree as it is by then."""
    record = {"kernel": kernel, "config": config, "variant": variant, "source": str(src)}
    series = tree.of_kernel(kernel)
    if series or kernel == "tree":
        record |= {"source_tree": source_tree_id(src), "git_state": git_state(src)}
    if series:
        record["series_version"] = series.version
    (image.parents[3] / BUILD_RECORD).write_text(json.dumps(record, indent=2) + "\n")


def build_record(image):
    """The record write_record() made for IMAGE, or {} if it has none."""
    path = image.parents[3] / BUILD_RECORD if image else None
    return json.loads(path.read_text()) if path and path.exists() else {}


def build_tree(src, config, variant="", state="", jobs=None, kernel=None):
    """Build Image in SRC/.kx-CONFIG[-VARIANT]; skip when STATE is unchanged.

    One build per O= directory at a time: parallel runs wait on a lock.
    A STATE containing ":dirty" always builds.
    """
    out = src / (f".kx-{config}" + (f"-{variant}" if variant else ""))
    out.mkdir(exist_ok=True)
    with open(out / "kx.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _build_locked(src, out, fragment(config, variant, kernel, kernel_line(src)),
                             state, jobs,
                             f"{kernel or src.name}/{out.name[4:]}")


def _build_locked(src, out, text, state, jobs, name):
    state = hashlib.sha256(text.encode()).hexdigest() + ":" + state
    image = out / "arch" / "arm64" / "boot" / "Image"
    stamp = out / "kx.stamp"
    if image.exists() and stamp.exists() and stamp.read_text() == state and ":dirty" not in state:
        return image
    (out / BUILD_RECORD).unlink(missing_ok=True)   # made again once this build is done
    logf = out / "build.log"
    env = make_env()
    frag = out / "kx.fragment"

    def configure():
        frag.write_text(text)
        run(["make", "-s", f"O={out.name}", "allnoconfig"], cwd=src,
            env={**env, "KCONFIG_ALLCONFIG": str(frag)}, logfile=out / "config.log")
        return config_mismatches(text, (out / ".config").read_text())

    if not (out / ".config").exists() or not frag.exists() or frag.read_text() != text:
        bad = configure()
    else:
        # A .config changed behind our back (a hand-run make without
        # ARCH=arm64 rewrites it for the host) is made again, once.
        bad = config_mismatches(text, (out / ".config").read_text()) and configure()
    if bad:
        raise BuildError(f"{name}: the fragment did not take: " + "; ".join(bad))
    log(f"building {name} (log: {logf})")
    jobs = jobs or (os.cpu_count() or 1) + 1
    try:
        run(["make", f"O={out.name}", f"-j{jobs}", "Image"], cwd=src, env=env, logfile=logf)
    except KxError:
        tail = logf.read_text(errors="replace").splitlines()[-15:]
        raise BuildError(f"build of {name} failed; log {logf}:\n" + "\n".join(tail))
    stamp.write_text(state)
    return image
