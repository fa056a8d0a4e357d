"""kexec-chain: N consecutive kexec reboots (ctx.gens, default 5), each
generation checking the payload; MemFree is recorded at every boot."""
from . import kexec_reboot

DEFAULT_GENS = 5
judge = kexec_reboot.judge
run = kexec_reboot.run
