// SPDX-License-Identifier: GPL-2.0
/*
 * kxutil: the guest's evidence helper for the kexec-mmu workbench.
 *
 *   kxutil now                  monotonic clock in nanoseconds
 *   kxutil fill TOKEN MIB       plant a pattern derived from TOKEN, then wait
 *   kxutil hold TOKEN MIB       plant it, wait for SIGUSR1, then re-verify it
 *   kxutil vmcore TOKEN MIB     find and verify that pattern in /proc/vmcore
 *   kxutil kcore STATE PA       read 4 KiB at PA through /proc/kcore
 *   kxutil usable FDT           /chosen/linux,usable-memory-range of a
 *                               flattened device tree (/sys/firmware/fdt:
 *                               under ACPI there is no /proc/device-tree)
 *   kxutil kvm COUNT [PROGRESS] run a KVM guest for COUNT MMIO exits (0:
 *                               forever), its count in PROGRESS every 100
 *   kxutil vabits               the user VA size the kernel gives (52-bit
 *                               kernels fall back to 48 without LVA)
 *   kxutil linear-holes PTDUMP  KiB of the linear map mapped, and unmapped
 *                               between mapped ranges (kernel_page_tables)
 *
 * The pattern is laid out in 4 KiB chunks. Physical pages are at least
 * 4 KiB and aligned, so each chunk is contiguous in physical memory and can
 * be found in a dump whatever the kernel's page size. Each chunk starts
 * with a magic, a hash of the token and its index; the rest is a stream
 * seeded by both, so a chunk can be checked on its own.
 */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define CHUNK 4096
#define MAGIC "KXPATTRN"

struct chunk_head {
	char magic[8];
	uint64_t token_hash;
	uint32_t index;
	uint32_t total;
	uint64_t reserved;
};

static uint64_t hash_token(const char *token)
{
	uint64_t h = 1469598103934665603ULL;	/* FNV-1a */

	while (*token) {
		h ^= (unsigned char)*token++;
		h *= 1099511628211ULL;
	}
	return h;
}

static void fill_chunk(unsigned char *p, uint64_t th, uint32_t index, uint32_t total)
{
	struct chunk_head *head = (struct chunk_head *)p;
	uint64_t x = th ^ ((uint64_t)index * 0x9e3779b97f4a7c15ULL) ^ 0x5bd1e995ULL;
	uint64_t *w = (uint64_t *)(p + sizeof(*head));
	size_t i, n = (CHUNK - sizeof(*head)) / sizeof(uint64_t);

	memcpy(head->magic, MAGIC, 8);
	head->token_hash = th;
	head->index = index;
	head->total = total;
	head->reserved = 0;
	for (i = 0; i < n; i++) {
		x ^= x << 13;	/* xorshift64 */
		x ^= x >> 7;
		x ^= x << 17;
		w[i] = x;
	}
}

/* Return the chunk's index if P is an intact chunk of this token, else -1. */
static long check_chunk(const unsigned char *p, uint64_t th, uint32_t total)
{
	static unsigned char want[CHUNK];
	const struct chunk_head *head = (const struct chunk_head *)p;

	if (memcmp(head->magic, MAGIC, 8) || head->token_hash != th ||
	    head->total != total || head->index >= total)
		return -2;	/* not ours at all */
	fill_chunk(want, th, head->index, total);
	return memcmp(p, want, CHUNK) ? -1 : (long)head->index;
}

static unsigned char *plant(const char *token, long mib, uint32_t *total)
{
	uint64_t th = hash_token(token);
	size_t len = (size_t)mib << 20;
	unsigned char *buf;
	uint32_t i;

	*total = len / CHUNK;
	buf = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (buf == MAP_FAILED) {
		perror("kxutil: mmap");
		exit(1);
	}
	for (i = 0; i < *total; i++)
		fill_chunk(buf + (size_t)i * CHUNK, th, i, *total);
	return buf;
}

static volatile sig_atomic_t got_usr1;

static void on_usr1(int sig)
{
	(void)sig;
	got_usr1 = 1;
}

static int cmd_fill(const char *token, long mib, int hold)
{
	uint64_t th = hash_token(token);
	uint32_t total, i, good = 0;
	unsigned char *buf;

	if (hold)
		signal(SIGUSR1, on_usr1);
	buf = plant(token, mib, &total);
	/* kdump: keep it resident; hibernate: let it be swapped and restored. */
	if (!hold && mlock(buf, (size_t)total * CHUNK))
		fprintf(stderr, "kxutil: mlock failed: %s\n", strerror(errno));
	printf("KX-PLANTED token=%s chunks=%u pid=%d\n", token, total, getpid());
	fflush(stdout);
	if (!hold) {
		for (;;)
			pause();
	}
	while (!got_usr1)
		pause();
	for (i = 0; i < total; i++)
		if (check_chunk(buf + (size_t)i * CHUNK, th, total) == (long)i)
			good++;
	printf("KX-HELD token=%s chunks=%u intact=%u pid=%d\n", token, total, good, getpid());
	fflush(stdout);
	return good == total ? 0 : 1;
}

static int read_at(int fd, void *buf, size_t len, off_t off)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = pread(fd, (char *)buf + done, len - done, off + done);

		if (n <= 0)
			return -1;
		done += n;
	}
	return 0;
}

/* Print what the VMCOREINFO note holds that the host checks. */
static int check_notes(int fd, const Elf64_Phdr *ph)
{
	char *notes = malloc(ph->p_filesz + 1);
	size_t off = 0;
	int found = 0;

	if (!notes || read_at(fd, notes, ph->p_filesz, ph->p_offset))
		return 0;
	notes[ph->p_filesz] = 0;
	while (off + sizeof(Elf64_Nhdr) <= ph->p_filesz) {
		Elf64_Nhdr *nh = (Elf64_Nhdr *)(notes + off);
		char *name = notes + off + sizeof(*nh);
		char *desc = name + ((nh->n_namesz + 3) & ~3U);
		size_t next = off + sizeof(*nh) + ((nh->n_namesz + 3) & ~3U) +
			      ((nh->n_descsz + 3) & ~3U);

		if (nh->n_namesz == 0 && nh->n_descsz == 0)
			break;
		if (next > ph->p_filesz)
			break;
		if (nh->n_namesz >= 10 && !strncmp(name, "VMCOREINFO", 10)) {
			char *info = strndup(desc, nh->n_descsz);
			char *line, *save;

			found = 1;
			for (line = strtok_r(info, "\n", &save); line;
			     line = strtok_r(NULL, "\n", &save)) {
				if (!strncmp(line, "OSRELEASE=", 10) ||
				    !strncmp(line, "PAGESIZE=", 9) ||
				    !strncmp(line, "NUMBER(VA_BITS)=", 16) ||
				    !strncmp(line, "SYMBOL(swapper_pg_dir)=", 23))
					printf("KX-VMCOREINFO %s\n", line);
			}
			free(info);
		}
		off = next;
	}
	free(notes);
	return found;
}

static int cmd_vmcore(const char *token, long mib)
{
	uint64_t th = hash_token(token);
	uint32_t total = ((size_t)mib << 20) / CHUNK;
	unsigned char *seen = calloc(total, 1);
	unsigned char *buf = malloc(1 << 20);
	unsigned long long scanned = 0;
	uint32_t found = 0, corrupt = 0;
	int fd = open("/proc/vmcore", O_RDONLY);
	int loads = 0, notes = 0, info = 0;
	Elf64_Ehdr eh;
	int i;

	if (fd < 0 || !seen || !buf) {
		printf("KX-VMCORE-ERROR open=%s\n", strerror(errno));
		return 1;
	}
	if (read_at(fd, &eh, sizeof(eh), 0) || memcmp(eh.e_ident, ELFMAG, SELFMAG)) {
		printf("KX-VMCORE-ERROR no ELF header\n");
		return 1;
	}
	printf("KX-VMCORE-ELF class=%d data=%d type=%d machine=%d phnum=%d\n",
	       eh.e_ident[EI_CLASS], eh.e_ident[EI_DATA], eh.e_type, eh.e_machine, eh.e_phnum);
	for (i = 0; i < eh.e_phnum; i++) {
		Elf64_Phdr ph;
		unsigned long long off;

		if (read_at(fd, &ph, sizeof(ph), eh.e_phoff + (off_t)i * eh.e_phentsize))
			break;
		if (ph.p_type == PT_NOTE) {
			notes++;
			info |= check_notes(fd, &ph);
			continue;
		}
		if (ph.p_type != PT_LOAD)
			continue;
		loads++;
		for (off = 0; off + CHUNK <= ph.p_filesz; off += 1 << 20) {
			size_t len = ph.p_filesz - off < (1 << 20) ? ph.p_filesz - off : (1 << 20);
			size_t c;

			len &= ~(size_t)(CHUNK - 1);
			if (read_at(fd, buf, len, ph.p_offset + off))
				break;
			scanned += len;
			for (c = 0; c < len; c += CHUNK) {
				long idx = check_chunk(buf + c, th, total);

				if (idx == -1)
					corrupt++;
				else if (idx >= 0 && !seen[idx]) {
					seen[idx] = 1;
					found++;
				}
			}
		}
	}
	printf("KX-VMCORE-NOTES notes=%d vmcoreinfo=%d\n", notes, info);
	printf("KX-VMCORE-PATTERN token=%s loads=%d scanned_mib=%llu expected=%u found=%u corrupt=%u\n",
	       token, loads, scanned >> 20, total, found, corrupt);
	fflush(stdout);
	return (found == total && !corrupt && info) ? 0 : 1;
}

/*
 * Read 4 KiB of physical memory at PA through /proc/kcore, which reads the
 * kernel's linear map: while the crash kernel region is protected, the
 * kernel must refuse (kcore then gives zeros). ARM64 says whether the
 * bytes hold an arm64 Image header ("ARM\x64" at offset 0x38).
 */
static int cmd_kcore(const char *state, const char *pa_text)
{
	unsigned long long pa = strtoull(pa_text, NULL, 0), va = 0;
	unsigned char buf[CHUNK];
	int fd = open("/proc/kcore", O_RDONLY);
	int i, zero = 1, found = 0, rc = 1;
	Elf64_Ehdr eh;

	if (fd >= 0 && !read_at(fd, &eh, sizeof(eh), 0)) {
		for (i = 0; i < eh.e_phnum && !found; i++) {
			Elf64_Phdr ph;

			if (read_at(fd, &ph, sizeof(ph), eh.e_phoff + (off_t)i * eh.e_phentsize))
				break;
			if (ph.p_type != PT_LOAD || pa < ph.p_paddr ||
			    pa + CHUNK > ph.p_paddr + ph.p_memsz)
				continue;
			found = 1;
			va = ph.p_vaddr + (pa - ph.p_paddr);
			rc = read_at(fd, buf, CHUNK, ph.p_offset + (pa - ph.p_paddr)) ? 1 : 0;
		}
	}
	for (i = 0; !rc && i < CHUNK; i++)
		zero &= !buf[i];
	printf("KX-KCORE state=%s pa=0x%llx va=0x%llx found=%d rc=%d zero=%d arm64=%d\n",
	       state, pa, va, found, rc, !rc && zero,
	       !rc && !memcmp(buf + 0x38, "ARM\x64", 4));
	return rc;
}

static uint32_t be32_at(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | p[1] << 16 | p[2] << 8 | p[3];
}

static uint64_t cells_at(const unsigned char *p, uint32_t cells)
{
	uint64_t v = 0;

	while (cells--) {
		v = v << 32 | be32_at(p);
		p += 4;
	}
	return v;
}

#define FDT_MAGIC 0xd00dfeed
enum { FDT_BEGIN_NODE = 1, FDT_END_NODE, FDT_PROP, FDT_NOP, FDT_END = 9 };

/* Print "KX-USABLE ranges=0xSTART+0xSIZE,..." (or none) from the FDT at PATH. */
static int cmd_usable(const char *path)
{
	static unsigned char fdt[4 << 20];
	uint32_t acells = 2, scells = 2, off, strings, end, tag, len;
	const unsigned char *val = NULL;
	uint32_t val_len = 0;
	int depth = 0, in_chosen = 0, fd;
	ssize_t n = 0, got;

	fd = open(path, O_RDONLY);
	if (fd < 0)
		return perror(path), 1;
	/* sysfs hands out a binary attribute a page at a time */
	while (n < (ssize_t)sizeof(fdt) && (got = read(fd, fdt + n, sizeof(fdt) - n)) > 0)
		n += got;
	close(fd);
	if (n < 40 || be32_at(fdt) != FDT_MAGIC || be32_at(fdt + 4) > (uint32_t)n) {
		fprintf(stderr, "%s: not a whole flattened device tree\n", path);
		return 1;
	}
	off = be32_at(fdt + 8);
	strings = be32_at(fdt + 12);
	end = be32_at(fdt + 4);
	while (off + 4 <= end) {
		tag = be32_at(fdt + off);
		off += 4;
		if (tag == FDT_BEGIN_NODE) {
			const char *name = (const char *)fdt + off;

			depth++;
			in_chosen = depth == 2 && !strcmp(name, "chosen");
			off += (strnlen(name, end - off) + 4) & ~3u;
		} else if (tag == FDT_END_NODE) {
			depth--;
			in_chosen = 0;
		} else if (tag == FDT_PROP) {
			const char *pname;

			if (off + 8 > end)
				break;
			len = be32_at(fdt + off);
			pname = (const char *)fdt + strings + be32_at(fdt + off + 4);
			off += 8;
			if (off + len > end)
				break;
			if (depth == 1 && !strcmp(pname, "#address-cells"))
				acells = be32_at(fdt + off);
			if (depth == 1 && !strcmp(pname, "#size-cells"))
				scells = be32_at(fdt + off);
			if (in_chosen && !strcmp(pname, "linux,usable-memory-range")) {
				val = fdt + off;
				val_len = len;
			}
			off += (len + 3) & ~3u;
		} else if (tag != FDT_NOP) {
			break;
		}
	}
	printf("KX-USABLE ranges=");
	if (!val || !val_len)
		printf("none");
	for (len = 0; val && len + 4 * (acells + scells) <= val_len; len += 4 * (acells + scells))
		printf("%s0x%016llx+0x%016llx", len ? "," : "",
		       (unsigned long long)cells_at(val + len, acells),
		       (unsigned long long)cells_at(val + len + 4 * acells, scells));
	printf("\n");
	return 0;
}

/*
 * kvm: a minimal VMM. Its one vCPU counts in x1 and stores each count to an
 * address outside its memory, so every iteration exits to us as MMIO:
 * seeing 1, 2, 3, ... proves the guest executes and makes progress. There
 * is no vgic: the guest takes no interrupts and never needs one.
 */
#define KVM_MEM_BASE	0x40000000ULL
#define KVM_MEM_SIZE	0x10000		/* a whole page for any page size */
#define KVM_MMIO_ADDR	0x50000000ULL

static const uint32_t kvm_guest_code[] = {
	0xd2800001,	/*       mov x1, #0     */
	0x91000421,	/* loop: add x1, x1, #1 */
	0xf9000041,	/*       str x1, [x2]   */
	0x17fffffe,	/*       b   loop       */
};

/* Setup failures are fatal: say what failed and why. */
static void kvm_fail(const char *what)
{
	fprintf(stderr, "kxutil: kvm: %s: %s\n", what, strerror(errno));
	exit(1);
}

static int kvm_ioctl(int fd, unsigned long req, void *arg, const char *name)
{
	int ret = ioctl(fd, req, arg);

	if (ret < 0)
		kvm_fail(name);
	return ret;
}
#define KVM_IOCTL(fd, req, arg) kvm_ioctl(fd, req, arg, #req)

static void kvm_set_core(int vcpu, uint64_t off, uint64_t val)
{
	struct kvm_one_reg reg = {
		.id = KVM_REG_ARM64 | KVM_REG_SIZE_U64 | KVM_REG_ARM_CORE | off,
		.addr = (uintptr_t)&val,
	};

	KVM_IOCTL(vcpu, KVM_SET_ONE_REG, &reg);
}

/* The count only grows, so each write covers the previous one whole. */
static void kvm_progress(int fd, unsigned long exits)
{
	char text[32];
	int n = snprintf(text, sizeof(text), "%lu\n", exits);

	if (pwrite(fd, text, n, 0) != n)
		kvm_fail("progress file");
}

/* Return vCPU 0's fd, ready to run the guest code, and map its kvm_run. */
static int kvm_setup(struct kvm_run **run)
{
	struct kvm_userspace_memory_region region = {
		.guest_phys_addr = KVM_MEM_BASE,
		.memory_size = KVM_MEM_SIZE,
	};
	struct kvm_vcpu_init init;
	int kvm, vm, vcpu, size;
	void *mem;

	kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (kvm < 0)
		kvm_fail("/dev/kvm");
	if (KVM_IOCTL(kvm, KVM_GET_API_VERSION, NULL) != KVM_API_VERSION) {
		fprintf(stderr, "kxutil: kvm: KVM API version is not %d\n", KVM_API_VERSION);
		exit(1);
	}
	vm = KVM_IOCTL(kvm, KVM_CREATE_VM, NULL);	/* type 0: default IPA size */
	mem = mmap(NULL, KVM_MEM_SIZE, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED)
		kvm_fail("mmap guest memory");
	memcpy(mem, kvm_guest_code, sizeof(kvm_guest_code));
	region.userspace_addr = (uintptr_t)mem;
	KVM_IOCTL(vm, KVM_SET_USER_MEMORY_REGION, &region);
	vcpu = KVM_IOCTL(vm, KVM_CREATE_VCPU, NULL);	/* vcpu id 0 */
	size = KVM_IOCTL(kvm, KVM_GET_VCPU_MMAP_SIZE, NULL);
	*run = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu, 0);
	if (*run == MAP_FAILED)
		kvm_fail("mmap kvm_run");
	KVM_IOCTL(vm, KVM_ARM_PREFERRED_TARGET, &init);
	KVM_IOCTL(vcpu, KVM_ARM_VCPU_INIT, &init);
	/* init zeroed x1 and put PSTATE at EL1h with interrupts masked */
	kvm_set_core(vcpu, KVM_REG_ARM_CORE_REG(regs.pc), KVM_MEM_BASE);
	kvm_set_core(vcpu, KVM_REG_ARM_CORE_REG(regs.regs[2]), KVM_MMIO_ADDR);
	return vcpu;
}

/* Check one exit is the guest's next store; return 0 if it is. */
static int kvm_check_exit(const struct kvm_run *run, uint64_t want, unsigned long exits)
{
	uint64_t val;

	if (run->exit_reason != KVM_EXIT_MMIO) {
		fprintf(stderr, "kxutil: kvm: exit reason %u, not KVM_EXIT_MMIO, after %lu exits\n",
			run->exit_reason, exits);
		return 1;
	}
	memcpy(&val, run->mmio.data, sizeof(val));
	if (run->mmio.is_write && run->mmio.len == 8 &&
	    run->mmio.phys_addr == KVM_MMIO_ADDR && val == want)
		return 0;
	fprintf(stderr, "kxutil: kvm: MMIO %s len=%u addr=0x%llx value=%llu after %lu exits, "
		"expected write len=8 addr=0x%llx value=%llu\n",
		run->mmio.is_write ? "write" : "read", run->mmio.len,
		(unsigned long long)run->mmio.phys_addr, (unsigned long long)val,
		exits, KVM_MMIO_ADDR, (unsigned long long)want);
	return 1;
}

static int cmd_kvm(const char *count_text, const char *progress)
{
	char *end;
	unsigned long count = strtoul(count_text, &end, 0), exits = 0;
	struct kvm_run *run;
	uint64_t last = 0;
	int vcpu, pfd = -1;

	if (!*count_text || *end) {
		fprintf(stderr, "kxutil: kvm: COUNT must be a number, not '%s'\n", count_text);
		return 2;
	}
	vcpu = kvm_setup(&run);
	if (progress) {
		pfd = open(progress, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (pfd < 0)
			kvm_fail(progress);
		kvm_progress(pfd, 0);	/* a poller sees a number from the start */
	}
	while (!count || exits < count) {
		if (ioctl(vcpu, KVM_RUN, NULL) < 0) {
			if (errno == EINTR)	/* a signal, or a timer line change */
				continue;
			/* ENOSYS means a data abort without a valid syndrome */
			fprintf(stderr, "kxutil: kvm: KVM_RUN after %lu exits: %s\n",
				exits, strerror(errno));
			return 1;
		}
		if (kvm_check_exit(run, last + 1, exits))
			return 1;
		last++;
		if (++exits % 100 == 0 && pfd >= 0)
			kvm_progress(pfd, exits);
	}
	printf("kvm exits=%lu last=%llu\n", exits, (unsigned long long)last);
	return 0;
}

/*
 * TASK_SIZE is 1 << vabits_actual: the highest bit at which a page can be
 * mapped gives the VA size the kernel runs with.
 */
static int cmd_vabits(void)
{
	static const int bits[] = { 52, 48, 47, 42, 39, 36 };
	long page = sysconf(_SC_PAGESIZE);
	unsigned int i;

	for (i = 0; i < sizeof(bits) / sizeof(bits[0]); i++) {
		void *want = (void *)(1UL << (bits[i] - 1));
		void *got = mmap(want, page, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS |
				 MAP_FIXED_NOREPLACE, -1, 0);

		if (got == want) {
			printf("%d\n", bits[i]);
			return 0;
		}
	}
	fprintf(stderr, "kxutil: vabits: no VA size of %d..%d bits maps\n", bits[0],
		bits[sizeof(bits) / sizeof(bits[0]) - 1]);
	return 1;
}

/*
 * v5.10 prints no marker before the linear map: it is what comes before
 * "Linear Mapping end". Each line is a range with its level and, if it has
 * any bits, its attributes; the first is " " when valid and "F" when not
 * (debug_pagealloc clears only the valid bit). The unmapped space counted
 * is that between the first and the last mapped range, not what lies past
 * the end of memory.
 */
static int cmd_linear_holes(const char *path)
{
	unsigned long long mapped = 0, unmapped = 0, pending = 0, start, end;
	int seen = 0, n;
	char line[512], level[8];
	FILE *f = fopen(path, "r");

	if (!f) {
		fprintf(stderr, "kxutil: linear-holes: %s: %s\n", path, strerror(errno));
		return 1;
	}
	while (fgets(line, sizeof(line), f)) {
		if (strstr(line, "Linear Mapping end"))
			break;
		if (sscanf(line, "0x%llx-0x%llx %*u%*c %7s%n", &start, &end, level, &n) != 3)
			continue;
		if (line[n] == ' ' && line[n + 1] == ' ') {	/* valid */
			mapped += end - start;
			unmapped += pending;
			pending = 0;
			seen = 1;
		} else if (seen) {
			pending += end - start;
		}
	}
	fclose(f);
	if (!seen) {
		fprintf(stderr, "kxutil: linear-holes: %s has no mapped linear map\n", path);
		return 1;
	}
	printf("mapped_kb=%llu unmapped_kb=%llu\n", mapped >> 10, unmapped >> 10);
	return 0;
}

int main(int argc, char **argv)
{
	struct timespec ts;

	if (argc == 2 && !strcmp(argv[1], "now")) {
		clock_gettime(CLOCK_MONOTONIC, &ts);
		printf("%lld\n", (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec);
		return 0;
	}
	if (argc == 4 && !strcmp(argv[1], "fill"))
		return cmd_fill(argv[2], atol(argv[3]), 0);
	if (argc == 4 && !strcmp(argv[1], "hold"))
		return cmd_fill(argv[2], atol(argv[3]), 1);
	if (argc == 4 && !strcmp(argv[1], "vmcore"))
		return cmd_vmcore(argv[2], atol(argv[3]));
	if (argc == 4 && !strcmp(argv[1], "kcore"))
		return cmd_kcore(argv[2], argv[3]);
	if (argc == 3 && !strcmp(argv[1], "usable"))
		return cmd_usable(argv[2]);
	if ((argc == 3 || argc == 4) && !strcmp(argv[1], "kvm"))
		return cmd_kvm(argv[2], argc == 4 ? argv[3] : NULL);
	if (argc == 2 && !strcmp(argv[1], "vabits"))
		return cmd_vabits();
	if (argc == 3 && !strcmp(argv[1], "linear-holes"))
		return cmd_linear_holes(argv[2]);
	fprintf(stderr, "usage: kxutil now | fill|hold|vmcore TOKEN MIB | kcore STATE PA | "
		"usable FDT | kvm COUNT [PROGRESS_FILE] | vabits | linear-holes PTDUMP\n");
	return 2;
}
