"""Every outside input the workbench uses, pinned by version and sha256.

A pin that cannot be fetched, or whose file does not match, stops the
workbench with a message that names the pin (see sources.py).
"""

# Kernel trees: the pristine upstream tarballs of Debian's `linux` source
# packages (not linux-source-*, which carries Debian's patches).
KERNELS = {
    "base": {
        "suite": "bullseye",
        "package": "linux",
        "version": "5.10.223-1",
        "files": {
            "linux_5.10.223.orig.tar.xz":
                "5272175427d036677539b9ef88a6bc30e455aca2d4fe9a942b2926ef7967ad20",
        },
        "topdir": "linux-5.10.223",
    },
    "upstream": {
        "suite": "bookworm-security",
        "package": "linux",
        "version": "6.1.187-1",
        "files": {
            "linux_6.1.187.orig.tar.xz":
                "bec853ea2b0314c64012478964e10d3e094fa019799c926b8057157afdae23f6",
        },
        "topdir": "linux-6.1.187",
    },
    "base-6.12": {
        # The newest v6.12 LTS release whose files the archive serves here:
        # the index also lists 6.12.111 to 6.12.118, but the pool answers
        # 404 for their files (bookworm-security's linux-6.12 and
        # trixie-security's linux alike).
        "suite": "bookworm-security",
        "package": "linux-6.12",
        "version": "6.12.107-1~deb12u1",
        "files": {
            "linux-6.12_6.12.107.orig.tar.xz":
                "a2526f1a6f7853219f6ca85caf4801682e2b75123601baf16f3ac6f9283c8e76",
        },
        "topdir": "linux-6.12-6.12.107",
    },
}

# kexec-tools for the guest, cross-built static from Debian's source package
# with Debian's patches applied.
KEXEC_TOOLS = {
    "suite": "bookworm",
    "package": "kexec-tools",
    "version": "1:2.0.25-3+deb12u3",
    "files": {
        "kexec-tools_2.0.25.orig.tar.xz":
            "7ce2e5def38ec04f79feb107d02243dd586fbc68569eccf02f44bad3a13ec07d",
        "kexec-tools_2.0.25-3+deb12u3.debian.tar.xz":
            "2e41a776d539270b0d333abc07a83a457cce60b1b39c60c2acd52ad9edd2a406",
    },
    "topdir": "kexec-tools-2.0.25",
}

# arm64 guest packages from bookworm: name -> (version, sha256 of the .deb).
# makedumpfile with exactly the libraries its ELF NEEDED closure names;
# userland.py checks that closure and names any library that is missing.
GUEST_DEBS = {
    "busybox-static": ("1:1.35.0-4+deb12u1+b1",
                       "732c9135564fc71337e0e05fb4da4d11e6c28c1834bce3e405e575afef2a52f5"),
    "makedumpfile": ("1:1.7.2-1",
                     "ddb06f8b303bea4b8d19904476bf42d3467e156998c6f0de556c473a466976c4"),
    "libc6": ("2.36-9+deb12u14",
              "01f4330719fd4f65580e16ea5a0527f372fca750e8f588d26deaf09f2d3b1cf4"),
    "libdw1": ("0.188-2.1",
               "3b403c886653e2ea496b74cf3b5c89aa0f50a7c2af9eda343be185970d3f440d"),
    "libelf1": ("0.188-2.1",
                "32971952d8f5d563447bf275f24e26057500924da2d855c1edb53b0f0400bd11"),
    "zlib1g": ("1:1.2.13.dfsg-1",
               "52b8b8a145bbe1956bba82034f77022cbef0c3d0885c9e32d9817a7932fe1913"),
    "liblzma5": ("5.4.1-1+deb12u1",
                 "647ce9d81e41c30071ce6ac0d3324579216a33aaa1d28971d6952315f6a95a75"),
    "libbz2-1.0": ("1.0.8-5+b1",
                   "d3a96ece03326498b39ff093a76800dfcbcb1d4049d6ae6e9f6fa1aa7a590ad6"),
    "liblzo2-2": ("2.10-2",
                  "7b83b0c8f67bb09da8d3bb7b2ff38843bfdc8f7b627194048c18d679e1ee2a5b"),
}

# Host packages the workbench runs with (installed by deps.py when missing).
HOST_PACKAGES = [
    "gcc-aarch64-linux-gnu", "libc6-dev-arm64-cross", "qemu-system-arm",
    "qemu-efi-aarch64", "device-tree-compiler", "gdb-multiarch", "ccache",
    "flex", "bison", "bc", "libssl-dev", "libelf-dev", "cpio", "xz-utils",
    "make", "gcc", "git", "python3-pytest", "python3-pytest-xdist", "dpkg-dev", "perl",
    "patch", "sparse", "python3-docutils", "python3-matplotlib",
    # checkpatch.pl's SPDX licence check needs these; without them it skips it.
    "python3-ply", "python3-git",
]
