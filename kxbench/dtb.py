"""Device trees for the DT profiles: QEMU's own, dumped for the exact machine
and initrd a run boots, with a reserved-memory no-map region added.

QEMU writes /chosen (bootargs, initrd, kaslr-seed) into the tree it dumps and
again into a tree given with -dtb, so the edited tree boots like its own.
The tools are fdtget and fdtput from device-tree-compiler.
"""
import dataclasses

from . import machine
from .util import KxError, run


def dump(spec, path):
    """QEMU's device tree for SPEC (the same machine, RAM and initrd)."""
    plain = dataclasses.replace(spec, dtb=None, gdb_port=None)
    run(machine.qemu_command(plain) + ["-machine", f"dumpdtb={path}"], quiet=True)
    return path


def cells(path, node, prop):
    """The 32-bit cells of PROP of NODE, or None if absent."""
    res = run(["fdtget", "-t", "x", "-d", "", str(path), node, prop], quiet=True)
    words = res.stdout.split()
    return [int(w, 16) for w in words] if words else None


def join(cells_):
    """Big-endian cells (as /chosen and reg hold addresses) -> one integer."""
    out = 0
    for c in cells_:
        out = (out << 32) | c
    return out


def initrd_end(path):
    end = cells(path, "/chosen", "linux,initrd-end")
    if end is None:
        raise KxError(f"{path}: /chosen has no linux,initrd-end")
    return join(end)


def add_nomap(path, start, size, name="kx-nomap"):
    """Add /reserved-memory/NAME@START (START, SIZE) with no-map to PATH."""
    if cells(path, "/", "#address-cells") != [2] or cells(path, "/", "#size-cells") != [2]:
        raise KxError(f"{path}: expected 2 address and 2 size cells at the root")
    node = f"/reserved-memory/{name}@{start:x}"
    fdtput = ["fdtput", str(path)]
    run(["fdtput", "-c", "-p", str(path), node], quiet=True)
    for prop in ("#address-cells", "#size-cells"):
        run(["fdtput", "-t", "x", str(path), "/reserved-memory", prop, "2"], quiet=True)
    run(fdtput + ["/reserved-memory", "ranges"], quiet=True)
    run(fdtput + [node, "no-map"], quiet=True)
    run(["fdtput", "-t", "x", str(path), node, "reg"] +
        [f"{v:x}" for v in (start >> 32, start & 0xFFFFFFFF, size >> 32, size & 0xFFFFFFFF)],
        quiet=True)
    return node


def move_memory(path, start, size):
    """PATH's memory node(s) describe only [START, START + SIZE); no
    kaslr-seed in /chosen (kexec-tools refuses a tree whose seed is set)."""
    nodes = run(["fdtget", "-l", str(path), "/"], quiet=True).stdout.split()
    memory = [n for n in nodes if n.startswith("memory")]
    if len(memory) != 1:
        raise KxError(f"{path}: expected one memory node, found {memory}")
    run(["fdtput", "-t", "x", str(path), f"/{memory[0]}", "reg"] +
        [f"{v:x}" for v in (start >> 32, start & 0xFFFFFFFF, size >> 32, size & 0xFFFFFFFF)],
        quiet=True)
    if cells(path, "/chosen", "kaslr-seed") is not None:
        run(["fdtput", "-d", str(path), "/chosen", "kaslr-seed"], quiet=True)
