"""The evidence the guest prints: each KX- line's keys, declared once.

A line is `KX-TAG key=value ...`. A line whose tag is declared here but that
lacks a declared key, or whose value is not of the declared kind, is
malformed: the judges never see it (common.find skips it) and
common.check_evidence_lines turns it into a reason. So a truncated line
fails its scenario and names itself; it never raises in a judge.

tests/test_evidence.py proves that guest/init and guest/kxutil.c print
every key declared here.
"""
import re

# kind -> the values it accepts (all of a value, never empty unless "text?")
KINDS = {
    "int": re.compile(r"-?\d+"),
    "hex": re.compile(r"(0x)?[0-9a-fA-F]+"),
    "word": re.compile(r"\S+"),
    "text?": re.compile(r"\S*"),
}

# tag -> {key: kind}. Free-form lines (KX-PT, KX-IOMEM, KX-VMCOREINFO,
# KX-MDF-LOG, KX-FAIL, ...) are not declared and not checked.
SCHEMA = {
    "KX-BOOT": "scenario:word gen:int role:word el:int efi:word acpi:word cpus:int "
               "memfree_kb:int boot_id:word release:word",
    "KX-FEATURES": "gen:int role:word vhe:word kvm:word kpti:word pac:word va_bits:int",
    "KX-KASLR": "gen:int role:word state:word",
    "KX-LINEAR": "gen:int role:word mapped_kb:int unmapped_kb:int memfree_kb:int",
    "KX-KLOG": "gen:int role:word warnings:int bugs:int oopses:int kasan:int kmemleak:int",
    "KX-KLOG-FIRST": "gen:int role:word",
    "KX-GEN": "gen:int token:word sha256:hex payload_bytes:int el:int efi:word",
    "KX-PLACEMENT": "gen:int kernel_code:text? kernel_data:text? segments:word "
                    "placement:word",
    "KX-LOADED": "gen:int mode:word load_ns:int memfree_before_kb:int memfree_after_kb:int "
                 "segment_bytes:int loaded:int",
    "KX-EXEC": "gen:int",
    "KX-KSYM": "gen:int name:word va:hex",
    "KX-KVM-ALIVE": "gen:int alive:int exits_before:int exits_after:int",
    "KX-KVM-RUN": "gen:int rc:int exits:int",
    "KX-DONE": "gen:int",
    "KX-PTWALK-LIVE": "gen:int",
    "KX-PTDUMP-BEGIN": "",
    "KX-PTDUMP-END": "",
    "KX-TAP-BEGIN": "",
    "KX-TAP-END": "programs:int",
    "KX-CRASH-LOADED": "loaded:int",
    "KX-CRASH": "gen:int",
    "KX-CRASH-UNLOADED": "loaded:int",
    "KX-CRASHRES": "range:word",
    "KX-CRASH-RANGES": "ranges:word",
    "KX-CRASH-MODE": "mode:word",
    "KX-CRASH-SHRINK": "old:int asked:int size:int range:word memfree_before_kb:int "
                       "memfree_after_kb:int",
    "KX-CRASH-RELOADED": "loaded:int",
    "KX-CRASH-REGION-LOAD": "rc:int in_region:word loaded:int error:word segments:word",
    "KX-USABLE": "ranges:word",
    "KX-SYSRAM": "ranges:word",
    "KX-RAM": "gen:int ranges:word",
    "KX-KCORE": "state:word pa:hex va:hex found:int rc:int zero:int arm64:int",
    "KX-PLANTED": "token:word chunks:int pid:int",
    "KX-HELD": "token:word chunks:int intact:int pid:int",
    "KX-HIBERNATE": "boot_id:word",
    "KX-RESUMED": "boot_id:word token:word el:int",
    "KX-RESUME-NONE": "rc:int",
    "KX-VMCORE-RC": "rc:int",
    "KX-VMCORE-ELF": "class:int data:int type:int machine:int phnum:int",
    "KX-VMCORE-NOTES": "notes:int vmcoreinfo:int",
    "KX-VMCORE-PATTERN": "token:word loads:int scanned_mib:int expected:int found:int "
                         "corrupt:int",
    "KX-MAKEDUMPFILE": "rc:int bytes:int sig:text?",
    "KX-MEMHP-READY": "gen:int",
    "KX-MEMHP-LOAD-OFFLINE": "offline:int of:int rc:int in_dimm:word loaded:int error:word "
                             "segments:word",
    "KX-SELFTESTS-DIMM": "blocks:int online_movable:int",
    "KX-MEMHP-FILE-OFFLINE": "offline:int of:int rc:int loaded:int error:word",
    "KX-MEMHP-ADDED": "blocks:int lo:hex hi:hex online:int",
    "KX-MEMHP-LOADED": "i:int rc:int in_dimm:word loaded:int segments:word",
    "KX-MEMHP-OFFLINE-LOADED": "i:int offlined:int of:int refusals:int",
    "KX-MEMHP-EJECT-LOADED": "gen:int",
    "KX-MEMHP-AFTER-EJECT": "present:int online:int",
    "KX-MEMHP-LOOP": "i:int offlined_unloaded:int onlined:int offlined_loaded:int of:int",
    "KX-MEMHP-UNLOADED": "offlined:int of:int loaded:int",
    "KX-MEMHP-EJECT-UNLOADED": "gen:int",
    "KX-MEMHP-REMOVED": "gone:word",
}
KEYS = {tag: dict(k.split(":") for k in spec.split()) for tag, spec in SCHEMA.items()}


def tag_of(text):
    return text.split(" ", 1)[0]


def fields(text):
    """'KX-X a=1 b=two' -> {'a': '1', 'b': 'two'}."""
    return dict(re.findall(r"(\w+)=(\S*)", text))


def problems(text):
    """What is wrong with a declared line: [] when it is well formed."""
    keys = KEYS.get(tag_of(text))
    if keys is None:
        return []
    f = fields(text)
    out = []
    for key, kind in keys.items():
        if key not in f:
            out.append(f"no {key}=")
        elif not KINDS[kind].fullmatch(f[key]):
            out.append(f"{key}={f[key]!r} is not {kind.rstrip('?')}")
    return out


def parse(text, tag):
    """TEXT's fields if it is a well-formed TAG line, else None."""
    if tag not in KEYS:
        raise KeyError(f"{tag} is not declared in kxbench/evidence.py")
    if tag_of(text) != tag or problems(text):
        return None
    return fields(text)
