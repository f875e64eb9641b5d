/* torsh-jit emulator harness: runs one compiled module's serial entry point over buffers
 * that live in a job file shared with the Python process (mmap, MAP_SHARED).
 *
 * Job file (little endian, 8-byte fields):
 *   0   magic "TJJOB001"
 *   8   number of buffers n
 *   16  vector length in bits, written here (0: no probe compiled in)
 *   24  status, written here: 1 when the entry returned
 *   32  n byte offsets, from the start of the file, of each buffer's data pointer
 *   ... the buffers' bytes
 * Python fills the inputs, runs `qemu-ARCH prog JOBFILE`, and copies the outputs out of
 * the same file. Built by the cross gcc with -DTJ_ENTRY=<module>_main.
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#ifdef TJ_PROBE_SVE
#include <sys/prctl.h>
#endif

extern void TJ_ENTRY(void **buffers);

static uint64_t vector_bits(void) {
#if defined(TJ_PROBE_SVE)
    int vl = prctl(PR_SVE_GET_VL);      /* bytes in the low 16 bits; -1 without SVE */
    return vl < 0 ? 0 : (uint64_t)(vl & 0xffff) * 8;
#elif defined(TJ_PROBE_RVV)
    uint64_t vlenb;
    __asm__ volatile("csrr %0, 0xc22" : "=r"(vlenb));   /* the vlenb CSR */
    return vlenb * 8;
#else
    return 0;
#endif
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s JOBFILE\n", argv[0]);
        return 2;
    }
    int fd = open(argv[1], O_RDWR);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0 || st.st_size < 32) {
        perror(argv[1]);
        return 3;
    }
    unsigned char *base = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (base == MAP_FAILED) {
        perror("mmap");
        return 4;
    }
    uint64_t *head = (uint64_t *)base;
    if (memcmp(base, "TJJOB001", 8) != 0) {
        fprintf(stderr, "%s: not a torsh-jit job file\n", argv[1]);
        return 5;
    }
    uint64_t n = head[1];
    void *table[n ? n : 1];
    for (uint64_t i = 0; i < n; i++)
        table[i] = base + head[4 + i];
    head[2] = vector_bits();
    TJ_ENTRY(table);
    head[3] = 1;
    munmap(base, (size_t)st.st_size);
    close(fd);
    return 0;
}
