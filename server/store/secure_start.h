/* secure_start.h - the checks attune-server and the `attune` command make
 * before they touch the data directory: no core dumps, not running as root
 * (unless asked to), a private umask so every file they create (attune.db
 * and its WAL and SHM, which SQLite gives the database's mode, the keys) is
 * 0600, and a data directory that only its owner can enter.
 *
 * Owns nothing; main's thread, before any other thread starts. */
#ifndef SRV_SECURE_START_H
#define SRV_SECURE_START_H

#include "attune/types.h"

/* Environment variable that, set to 1, counts as --allow-root (for test
 * runners and containers that run everything as root). */
#define SRV_ALLOW_ROOT_ENV "ATTUNE_ALLOW_ROOT"

/* Makes the process non-dumpable before any key is loaded: RLIMIT_CORE 0
 * (soft and hard, so nothing the process runs later can raise it) and
 * prctl(PR_SET_DUMPABLE, 0). A core file would hold the key-encryption
 * key, the unwrapped room keys and decrypted session records; the rlimit
 * stops a core written to a file, the prctl also stops one piped to a
 * program by kernel.core_pattern (systemd-coredump, apport), which ignores
 * the rlimit, and keeps other processes of the same user from attaching
 * with ptrace or reading /proc/PID/mem. Call it first in main. */
int srv_secure_no_core_dumps(att_error *err);

/* umask(077). */
void srv_secure_umask(void);

/* Fails (forbidden) when the effective user is root and neither allow_root
 * nor ATTUNE_ALLOW_ROOT=1 says so. */
int srv_secure_refuse_root(int allow_root, att_error *err);

/* An existing data directory must not be readable, writable or searchable
 * by group or others (fails with the chmod that fixes it); a missing one is
 * fine (it is created 0700). The files already in it that group or others
 * could read (from before this check) are made 0600. */
int srv_secure_data_dir(const char *dir, att_error *err);

#endif
