/*
 * flush_modes.c - what making one 130 KB instance durable costs with each flush mechanism a
 * node could use, on the file system of DIR, modes interleaved so they see the same load.
 * Every mode writes the instance (132,684 bytes) plus what its index commit would append
 * (11 WAL frames of 24 + 4,096 bytes, as mitral's SQLite index does per instance), then:
 *
 *   syncfs        create temp, write, close, WAL, rename, syncfs(2)    (mitral's fast path)
 *   spare         the same with the temp inode made beforehand (store_fs.c tmp_prepare)
 *   sfr           syncfs, with sync_file_range(WRITE) right after the write (write-behind)
 *   falloc        syncfs, with fallocate(2) of the known length before the write
 *   shm           syncfs, with 2 pages of an mmap(2)ed file dirtied (SQLite's -shm)
 *   fdatasync x2  fdatasync(file) + fdatasync(WAL) instead of syncfs (synchronous=FULL
 *                 style; not even counting the directory fsyncs a rename would need)
 *   journal       one pwrite of instance + WAL bytes into a preallocated, pre-written journal
 *                 file and fdatasync(2): no metadata changes at all (the lower bound of an
 *                 append-journal design)
 *   idle syncfs   syncfs with nothing of ours dirty: the device flush plus whatever the other
 *                 processes on that file system left dirty
 *
 *   bench/flush_modes DIR [N=300]      prints p50 per step and p50 / p90 of the whole
 *
 * Not built by CMake (speed is not a test): cc -O2 -D_GNU_SOURCE bench/flush_modes.c -o fm
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define INST 132684
#define WAL_FRAME (24 + 4096)
#define N_FRAMES 11
#define N_MAX 5000

enum { M_SYNCFS, M_SPARE, M_SFR, M_FALLOC, M_SHM, M_FDATASYNC, M_JOURNAL, M_IDLE, N_MODES };
static const char *mode_name[N_MODES] = {"syncfs",      "spare",   "sfr",
                                         "falloc",      "shm",     "fdatasync x2",
                                         "journal",     "idle syncfs"};
enum { S_CREATE, S_WRITE, S_WAL, S_RENAME, S_FLUSH, S_ALL, N_STEPS };
static double lat[N_MODES][N_STEPS][N_MAX];

static double now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void die(const char *what)
{
    perror(what);
    exit(1);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s DIR [N]\n", argv[0]);
        return 2;
    }
    const char *dir = argv[1];
    int n = argc > 2 ? atoi(argv[2]) : 300;
    if (n < 10 || n > N_MAX)
        n = 300;
    static char data[INST + N_FRAMES * WAL_FRAME];
    for (size_t i = 0; i < sizeof data; i++)
        data[i] = (char)rand();
    char p[512];
    snprintf(p, sizeof p, "%s/.tmp", dir);
    mkdir(p, 0755);
    snprintf(p, sizeof p, "%s/series", dir);
    mkdir(p, 0755);
    snprintf(p, sizeof p, "%s/wal", dir);
    int wal = open(p, O_RDWR | O_CREAT, 0644);
    snprintf(p, sizeof p, "%s/journal", dir);
    int jr = open(p, O_RDWR | O_CREAT, 0644);
    snprintf(p, sizeof p, "%s/shm", dir);
    int shf = open(p, O_RDWR | O_CREAT, 0644);
    int dfd = open(dir, O_RDONLY | O_DIRECTORY);
    if (wal < 0 || jr < 0 || shf < 0 || dfd < 0 || ftruncate(shf, 32768) != 0)
        die(dir);
    char *shm = mmap(NULL, 32768, PROT_READ | PROT_WRITE, MAP_SHARED, shf, 0);
    if (shm == MAP_FAILED)
        die("mmap");
    for (off_t o = 0; o < (off_t)(n + 1) * (off_t)sizeof data; o += sizeof data)
        if (pwrite(jr, data, sizeof data, o) != (ssize_t)sizeof data)
            die("journal");
    fsync(jr);
    off_t wal_off = 0, jr_off = 0;
    int spare = -1, k = 0;
    char spare_name[512] = "";
    for (int i = 0; i < n; i++) {
        for (int m = 0; m < N_MODES; m++) {
            char tmp[512], fin[512];
            snprintf(tmp, sizeof tmp, "%s/.tmp/%d.part", dir, k);
            snprintf(fin, sizeof fin, "%s/series/%d.dcm", dir, k);
            k++;
            double t[N_STEPS + 1];
            t[0] = now_ms();
            if (m == M_JOURNAL || m == M_IDLE) {
                t[1] = t[0];
                if (m == M_JOURNAL) { /* shows as "write" */
                    pwrite(jr, data, sizeof data, jr_off);
                    jr_off += sizeof data;
                }
                t[2] = t[3] = t[4] = now_ms();
                if (m == M_JOURNAL ? fdatasync(jr) : syncfs(dfd))
                    die("flush");
                t[5] = now_ms();
            } else {
                int fd;
                if (m == M_SPARE) {
                    if (spare < 0) {
                        snprintf(spare_name, sizeof spare_name, "%s", tmp);
                        spare = open(spare_name, O_WRONLY | O_CREAT | O_EXCL, 0644);
                    }
                    snprintf(tmp, sizeof tmp, "%s", spare_name); /* renamed below */
                    t[0] = now_ms();
                    fd = spare;
                    spare = -1;
                } else {
                    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL, 0644);
                }
                if (fd < 0)
                    die("create");
                t[1] = now_ms();
                if (m == M_FALLOC)
                    fallocate(fd, 0, 0, INST);
                if (write(fd, data, INST) != INST)
                    die("write");
                if (m == M_SFR)
                    sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WRITE);
                t[2] = now_ms();
                if (m == M_FDATASYNC && fdatasync(fd))
                    die("fdatasync");
                close(fd);
                for (int f = 0; f < N_FRAMES; f++, wal_off += WAL_FRAME) {
                    pwrite(wal, data, 24, wal_off);
                    pwrite(wal, data + 100, 4096, wal_off + 24);
                }
                if (m == M_SHM) {
                    shm[0]++;
                    shm[4096]++;
                }
                t[3] = now_ms();
                if (rename(tmp, fin))
                    die("rename");
                t[4] = now_ms();
                if (m == M_FDATASYNC ? fdatasync(wal) : syncfs(dfd))
                    die("flush");
                t[5] = now_ms();
                if (m == M_SPARE) { /* the next one, off the timed path */
                    snprintf(spare_name, sizeof spare_name, "%s/.tmp/%d.part", dir, k++);
                    spare = open(spare_name, O_WRONLY | O_CREAT | O_EXCL, 0644);
                }
            }
            for (int s = 0; s < S_ALL; s++)
                lat[m][s][i] = t[s + 1] - t[s];
            lat[m][S_ALL][i] = t[5] - t[0];
        }
    }
    printf("p50 ms, %d per mode     create   write  +WAL  rename   flush |   total    p90\n", n);
    for (int m = 0; m < N_MODES; m++) {
        printf("%-22s", mode_name[m]);
        for (int s = 0; s < N_STEPS; s++) {
            qsort(lat[m][s], (size_t)n, sizeof(double), cmp_double);
            printf(s == S_ALL ? " | %7.3f" : " %7.3f", lat[m][s][n / 2]);
        }
        printf(" %7.3f\n", lat[m][S_ALL][n * 9 / 10]);
    }
    if (spare >= 0)
        close(spare);
    return 0;
}
