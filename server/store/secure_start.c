/* secure_start.c - start-up checks (see secure_start.h). */
#include "secure_start.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

int srv_secure_no_core_dumps(att_error *err)
{
    const struct rlimit none = {0, 0};
    if (setrlimit(RLIMIT_CORE, &none) != 0)
        return att_fail(err, ATT_ERR_INTERNAL, "cannot turn core dumps off (RLIMIT_CORE): %s",
                        strerror(errno));
    /* Under AddressSanitizer the leak check at exit makes the process
     * dumpable again for as long as it ptrace-attaches its own threads
     * (its StopTheWorld), then restores this; the rlimit stays 0. */
    if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0)
        return att_fail(err, ATT_ERR_INTERNAL, "cannot turn core dumps off (PR_SET_DUMPABLE): %s",
                        strerror(errno));
    return 0;
}

void srv_secure_umask(void)
{
    umask(077);
}

int srv_secure_refuse_root(int allow_root, att_error *err)
{
    if (geteuid() != 0 || allow_root)
        return 0;
    const char *env = getenv(SRV_ALLOW_ROOT_ENV);
    if (env && strcmp(env, "1") == 0)
        return 0;
    /* att_error holds 160 bytes: the essentials only. */
    return att_fail(err, ATT_ERR_FORBIDDEN,
                    "will not run as root: run it as its own user, or pass --allow-root "
                    "(or " SRV_ALLOW_ROOT_ENV "=1)");
}

int srv_secure_data_dir(const char *dir, att_error *err)
{
    struct stat st;
    if (stat(dir, &st) != 0) {
        if (errno == ENOENT)
            return 0;
        return att_fail(err, ATT_ERR_INTERNAL, "data directory %s: %s", dir, strerror(errno));
    }
    if (!S_ISDIR(st.st_mode))
        return att_fail(err, ATT_ERR_INTERNAL, "data directory %s is not a directory", dir);
    if (st.st_mode & 077)
        return att_fail(err, ATT_ERR_FORBIDDEN,
                        "data directory %s is open to other users (mode %03o); fix: chmod 700 %s",
                        dir, (unsigned)(st.st_mode & 0777), dir);
    DIR *d = opendir(dir);
    if (!d)
        return 0; /* nothing to tighten that we can see */
    struct dirent *e;
    while ((e = readdir(d))) {
        char path[4096];
        struct stat fst;
        if (e->d_name[0] == '.' ||
            snprintf(path, sizeof path, "%s/%s", dir, e->d_name) >= (int)sizeof path)
            continue;
        if (lstat(path, &fst) == 0 && S_ISREG(fst.st_mode) && (fst.st_mode & 077) &&
            fst.st_uid == geteuid())
            (void)chmod(path, fst.st_mode & 0700);
    }
    closedir(d);
    return 0;
}
