/* bench_proc.c - process CPU and memory readings (see bench_proc.h). */
#include "bench_proc.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

/* utime + stime and the name from a /proc/.../stat file. */
static int read_stat(const char *path, int64_t *cpu_ns, char *name, size_t name_size)
{
    char text[1024];
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = '\0';
    /* comm (field 2) may contain spaces and parentheses: fields resume
     * after the last ')'. utime and stime are fields 14 and 15. */
    char *p = strrchr(text, ')');
    char *open = strchr(text, '(');
    if (!p || !open || open > p)
        return -1;
    if (name)
        snprintf(name, name_size, "%.*s", (int)(p - open - 1), open + 1);
    unsigned long long utime, stime;
    if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &utime, &stime) != 2)
        return -1;
    long hz = sysconf(_SC_CLK_TCK);
    if (hz <= 0)
        return -1;
    *cpu_ns = (int64_t)((utime + stime) * (1000000000ULL / (unsigned long long)hz));
    return 0;
}

int bench_proc_cpu_ns(pid_t pid, int64_t *out)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    return read_stat(path, out, NULL, 0);
}

int bench_proc_threads(pid_t pid, bench_thread_cpu *out, int max)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/task", (int)pid);
    DIR *d = opendir(path);
    if (!d)
        return -1;
    int n = 0;
    struct dirent *e;
    while (n < max && (e = readdir(d))) {
        if (e->d_name[0] < '0' || e->d_name[0] > '9')
            continue;
        char stat_path[300];
        snprintf(stat_path, sizeof stat_path, "/proc/%d/task/%s/stat", (int)pid, e->d_name);
        if (read_stat(stat_path, &out[n].cpu_ns, out[n].name, sizeof out[n].name) == 0) {
            out[n].tid = atoi(e->d_name);
            n++;
        }
    }
    closedir(d);
    return n;
}

int bench_proc_rss_kib(pid_t pid, int64_t *out)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    int rc = -1;
    while (fgets(line, sizeof line, f)) {
        long long kib;
        if (sscanf(line, "VmRSS: %lld kB", &kib) == 1) {
            *out = kib;
            rc = 0;
            break;
        }
    }
    fclose(f);
    return rc;
}

int64_t bench_self_cpu_ns(void)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0)
        return 0;
    return ((int64_t)ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000000LL +
           ((int64_t)ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1000LL;
}
