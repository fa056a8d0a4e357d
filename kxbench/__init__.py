"""kexec-mmu workbench: fetch, build, boot and prove kexec in QEMU."""
