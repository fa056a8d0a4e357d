"""One evidence schema: the guest prints every declared key, and a line
that lacks one is a reason, never an exception in a judge."""
import re

import pytest

from kxbench import evidence
from kxbench.scenarios import common, kdump, kexec_reboot
from kxbench.util import REPO
from test_verdicts import boot, ctx, reboot_expect, reboot_lines

INIT = (REPO / "guest" / "init").read_text()
KXUTIL = (REPO / "guest" / "kxutil.c").read_text()


def shell_functions(text):
    """{name: body} of the shell functions in TEXT (name() { ... } at column 0)."""
    out = {}
    for m in re.finditer(r"^(\w+)\(\) \{(?:[ \t]*#[^\n]*)?[ \t]*\n(.*?)^\}", text, re.M | re.S):
        out[m.group(1)] = m.group(2)
    for m in re.finditer(r"^(\w+)\(\) \{([^\n]*)\}$", text, re.M):
        out[m.group(1)] = m.group(2)
    return out


def printed_by_init(tag):
    """The text of every guest/init statement that prints TAG, continuation
    lines joined and $(function) output replaced by that function's body."""
    funcs = shell_functions(INIT)
    joined = INIT.replace("\\\n", " ")
    stmts = [ln for ln in joined.splitlines() if re.search(rf'"{re.escape(tag)}[ "]', ln)]
    return [s + " ".join(body for name, body in funcs.items() if f"$({name})" in s) +
            " ".join(kxutil_output(verb) for verb in re.findall(r"\$\(kxutil ([\w-]+)", s))
            for s in stmts]


def kxutil_output(verb):
    """What `kxutil VERB` prints: the printf formats of its cmd_VERB()."""
    m = re.search(rf"^static int cmd_{verb.replace('-', '_')}\(.*?^\}}", KXUTIL, re.M | re.S)
    return " ".join(re.findall(r'printf\("([^"]*)"', m.group(0))) if m else ""


def printed_by_kxutil(tag):
    return re.findall(rf'printf\("{re.escape(tag)} ([^"]*)"', KXUTIL)


@pytest.mark.parametrize("tag", sorted(evidence.SCHEMA))
def test_the_guest_prints_every_declared_key(tag):
    texts = printed_by_init(tag) + printed_by_kxutil(tag)
    assert texts, f"neither guest/init nor guest/kxutil.c prints {tag}"
    for text in texts:
        for key in evidence.KEYS[tag]:
            assert f"{key}=" in text, f"{tag} printed without {key}=: {text.strip()}"


def test_every_tag_a_judge_looks_for_is_declared():
    used = set()
    for path in (REPO / "kxbench" / "scenarios").glob("*.py"):
        used |= set(re.findall(r'find\(\w+, "(KX-[A-Z0-9-]+)"', path.read_text()))
    assert used and used <= set(evidence.SCHEMA), used - set(evidence.SCHEMA)


def test_a_well_formed_line_parses_and_a_malformed_one_names_its_problem():
    ok = "KX-EXEC gen=3"
    assert evidence.parse(ok, "KX-EXEC") == {"gen": "3"}
    assert evidence.problems("KX-EXEC gen=") == ["gen='' is not int"]
    assert evidence.problems("KX-EXEC") == ["no gen="]
    assert evidence.parse("KX-EXEC gen=x", "KX-EXEC") is None
    assert evidence.problems("KX-IOMEM 40000000-bfffffff : System RAM") == []  # free-form
    with pytest.raises(KeyError):
        evidence.parse(ok, "KX-UNDECLARED")


@pytest.mark.parametrize("cut", ["sha256=", "payload_bytes=", "el="])
def test_a_truncated_line_fails_the_judge_with_a_reason(cut):
    """Cut a KX-GEN line just before one of its keys: the judge must fail,
    name the malformed line and not raise."""
    lines = reboot_lines()
    i = next(i for i, t in enumerate(lines) if t.startswith("KX-GEN"))
    lines[i] = lines[i][:lines[i].index(cut)]
    v = kexec_reboot.judge(boot(*lines), ctx(), reboot_expect())
    assert not v.passed
    assert any("malformed KX-GEN line" in r and f"no {cut}" in r for r in v.reasons), v.reasons


def test_kdump_survives_a_malformed_vmcoreinfo_line():
    v = kdump.judge(boot("KX-VMCOREINFO OSRELEASE", "KX-VMCOREINFO"), ctx("kdump"),
                    {"token": "t", "chunks": 1})
    assert not v.passed


def test_a_kernel_warning_fails_with_the_warning_named():
    lines = reboot_lines()
    i = next(i for i, t in enumerate(lines) if t.startswith("KX-KLOG gen=0"))
    lines[i] = lines[i].replace("warnings=0", "warnings=1")
    lines.insert(i + 1, "KX-KLOG-FIRST gen=0 role=main [    2.1] WARNING: CPU: 0 PID: 1 at "
                        "drivers/misc/lkdtm/bugs.c:81 lkdtm_WARNING+0x1c/0x28")
    v = kexec_reboot.judge(boot(*lines), ctx(), reboot_expect())
    assert not v.passed
    assert any("warnings=1" in r and "lkdtm_WARNING" in r for r in v.reasons), v.reasons


def test_an_unexpected_panic_is_a_crash_and_kdump_s_own_is_not():
    lines = reboot_lines()
    lines.insert(3, "[    3.0] Kernel panic - not syncing: Oops: Fatal exception")
    v = kexec_reboot.judge(boot(*lines), ctx(), reboot_expect())
    assert not v.passed and v.crash and "a kernel crashed" in " ".join(v.reasons)
    v = common.Verdict()
    common.check_crash(v, boot("Kernel panic - not syncing: sysrq triggered crash"),
                       expected_panic="sysrq triggered crash")
    assert v.passed and v.crash is None
    common.check_crash(v, boot("# BUG: quoted by a test", "Unable to handle kernel paging"))
    assert not v.passed and v.crash.startswith("Unable to handle")
