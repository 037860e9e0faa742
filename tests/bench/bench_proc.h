/* bench_proc.h - what the load generator reads about processes: another
 * process's CPU time (/proc/PID/stat utime + stime) and resident memory
 * (/proc/PID/status VmRSS), and its own CPU time (getrusage). Owns nothing;
 * each call reads the files afresh. Single-threaded use. */
#ifndef ATTUNE_BENCH_PROC_H
#define ATTUNE_BENCH_PROC_H

#include <stdint.h>
#include <sys/types.h>
#include "clock.h" /* srv_mono_ns: the benchmarks' clock too */

/* CPU time (user + system) the process has used, in nanoseconds. 0 or -1
 * (no such process, unreadable or unexpected format). */
int bench_proc_cpu_ns(pid_t pid, int64_t *out);

/* One thread of another process: its tid, name (comm, e.g. "attune-store")
 * and CPU time (user + system) in nanoseconds. */
typedef struct {
    int tid;
    char name[32];
    int64_t cpu_ns;
} bench_thread_cpu;

/* Reads up to max threads of pid from /proc/PID/task; returns how many, or
 * -1 when the process is gone. */
int bench_proc_threads(pid_t pid, bench_thread_cpu *out, int max);

/* Resident set size in KiB (VmRSS). 0 or -1. */
int bench_proc_rss_kib(pid_t pid, int64_t *out);

/* This process's CPU time (user + system, all threads) in nanoseconds. */
int64_t bench_self_cpu_ns(void);

#endif
