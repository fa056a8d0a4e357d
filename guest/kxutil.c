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
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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
	fprintf(stderr, "usage: kxutil now | fill|hold|vmcore TOKEN MIB | kcore STATE PA | "
		"usable FDT\n");
	return 2;
}
