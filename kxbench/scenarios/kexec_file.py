"""kexec-file: kexec-reboot through kexec_file_load (kexec -s)."""
from . import kexec_reboot

judge = kexec_reboot.judge
run = kexec_reboot.run
