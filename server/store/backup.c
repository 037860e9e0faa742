/* backup.c - consistent copies of the data directory's databases (see
 * backup.h). */
#include "backup.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int join_path(char *out, size_t size, const char *dir, const char *file, att_error *err)
{
    if ((size_t)snprintf(out, size, "%s/%s", dir, file) >= size)
        return att_fail(err, ATT_ERR_INTERNAL, "backup: path too long");
    return 0;
}

/* A directory for copies: created 0700 when missing; an existing one must
 * be a directory only its owner can enter. */
static int private_dir(const char *dir, att_error *err)
{
    if (mkdir(dir, 0700) == 0)
        return 0;
    if (errno != EEXIST)
        return att_fail(err, ATT_ERR_INTERNAL, "backup: cannot create %s: %s", dir,
                        strerror(errno));
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
        return att_fail(err, ATT_ERR_BAD_MESSAGE, "backup: %s is not a directory", dir);
    if (st.st_mode & 077)
        return att_fail(err, ATT_ERR_FORBIDDEN,
                        "backup: group or others may enter %s (chmod 700 %s)", dir, dir);
    return 0;
}

static int sync_dir(const char *path)
{
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash == dir)
        slash[1] = '\0';
    else if (slash)
        *slash = '\0';
    else
        snprintf(dir, sizeof dir, ".");
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

static int sqlite_fail(att_error *err, sqlite3 *db, const char *what, const char *path)
{
    return att_fail(err, ATT_ERR_INTERNAL, "backup: %s %s: %s", what, path,
                    db ? sqlite3_errmsg(db) : "out of memory");
}

int srv_backup_copy_db(const char *src_path, const char *dest_path, att_error *err)
{
    struct stat st;
    if (stat(src_path, &st) != 0)
        return att_fail(err, ATT_ERR_NOT_FOUND, "backup: no database at %s", src_path);
    /* The file first, 0600 and new (O_EXCL): SQLite then opens it as an
     * empty database and never widens its mode. */
    int fd = open(dest_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        return att_fail(err, errno == EEXIST ? ATT_ERR_BAD_MESSAGE : ATT_ERR_INTERNAL,
                        "backup: cannot create %s: %s", dest_path, strerror(errno));
    close(fd);
    sqlite3 *src = NULL, *dst = NULL;
    int rc = 0;
    /* Read-write, not read-only: reading a WAL database needs its -shm. */
    if (sqlite3_open_v2(src_path, &src, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK) {
        rc = sqlite_fail(err, src, "cannot open", src_path);
        goto out;
    }
    sqlite3_busy_timeout(src, 10000);
    if (sqlite3_open_v2(dest_path, &dst, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK) {
        rc = sqlite_fail(err, dst, "cannot open", dest_path);
        goto out;
    }
    sqlite3_busy_timeout(dst, 10000);
    sqlite3_backup *b = sqlite3_backup_init(dst, "main", src, "main");
    if (!b) {
        rc = sqlite_fail(err, dst, "cannot start copying into", dest_path);
        goto out;
    }
    /* -1: every page in one step, so one read transaction: a snapshot. */
    int step = sqlite3_backup_step(b, -1);
    int fin = sqlite3_backup_finish(b);
    if (step != SQLITE_DONE || fin != SQLITE_OK) {
        rc = att_fail(err, ATT_ERR_INTERNAL, "backup: copying %s failed: %s", src_path,
                      sqlite3_errstr(step != SQLITE_DONE ? step : fin));
        goto out;
    }
    /* One self-contained file: the copy of a WAL database would otherwise
     * say WAL in its header and want a -wal beside it. Then SQLite's own
     * check of the copy. */
    char *msg = NULL;
    sqlite3_stmt *check = NULL;
    if (sqlite3_exec(dst, "PRAGMA journal_mode=DELETE", NULL, NULL, &msg) != SQLITE_OK) {
        rc = att_fail(err, ATT_ERR_INTERNAL, "backup: the copy %s: %s", dest_path,
                      msg ? msg : "cannot leave WAL mode");
        sqlite3_free(msg);
    } else if (sqlite3_prepare_v2(dst, "PRAGMA integrity_check", -1, &check, NULL) != SQLITE_OK ||
               sqlite3_step(check) != SQLITE_ROW ||
               strcmp((const char *)sqlite3_column_text(check, 0), "ok") != 0) {
        rc = att_fail(err, ATT_ERR_INTERNAL, "backup: the copy %s fails SQLite's integrity check",
                      dest_path);
    }
    sqlite3_finalize(check);
out:
    sqlite3_close(src);
    if (dst && sqlite3_close(dst) != SQLITE_OK && rc == 0)
        rc = att_fail(err, ATT_ERR_INTERNAL, "backup: cannot close %s", dest_path);
    if (rc == 0) {
        /* SQLite synced the file's contents; the directory entry too. */
        if (sync_dir(dest_path) != 0)
            rc = att_fail(err, ATT_ERR_INTERNAL, "backup: cannot sync the directory of %s: %s",
                          dest_path, strerror(errno));
    } else {
        unlink(dest_path); /* no half copy left to be mistaken for a backup */
    }
    return rc;
}

int srv_backup_take(const char *data_dir, const char *dest_dir, int keys, att_error *err)
{
    const char *file = keys ? SRV_BACKUP_KEYS_FILE : SRV_BACKUP_EVENTS_FILE;
    char src[4096], dst[4096];
    int rc;
    if ((rc = join_path(src, sizeof src, data_dir, file, err)) < 0 ||
        (rc = join_path(dst, sizeof dst, dest_dir, file, err)) < 0 ||
        (rc = private_dir(dest_dir, err)) < 0)
        return rc;
    return srv_backup_copy_db(src, dst, err);
}

/* 1 when dir has no entries but . and .., 0 when it has some, -1 (errno)
 * when it cannot be read. */
static int dir_is_empty(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return -1;
    int empty = 1;
    struct dirent *e;
    while (empty && (e = readdir(d)))
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            empty = 0;
    closedir(d);
    return empty;
}

int srv_backup_restore(const char *new_dir, const char *src_dir, const char *keys_db,
                       att_error *err)
{
    char src_events[4096], src_keys[4096], dst_events[4096], dst_keys[4096];
    int rc;
    if ((rc = join_path(src_events, sizeof src_events, src_dir, SRV_BACKUP_EVENTS_FILE, err)) < 0 ||
        (rc = join_path(src_keys, sizeof src_keys, src_dir, SRV_BACKUP_KEYS_FILE, err)) < 0 ||
        (rc = join_path(dst_events, sizeof dst_events, new_dir, SRV_BACKUP_EVENTS_FILE, err)) < 0 ||
        (rc = join_path(dst_keys, sizeof dst_keys, new_dir, SRV_BACKUP_KEYS_FILE, err)) < 0)
        return rc;
    struct stat st;
    if (!keys_db) {
        if (stat(src_keys, &st) != 0)
            return att_fail(err, ATT_ERR_NOT_FOUND,
                            "restore: %s has no keys.db; name the keys with --keys FILE "
                            "(without them no event opens)",
                            src_dir);
        keys_db = src_keys;
    }
    if (stat(src_events, &st) != 0)
        return att_fail(err, ATT_ERR_NOT_FOUND, "restore: no %s in %s", SRV_BACKUP_EVENTS_FILE,
                        src_dir);
    if ((rc = private_dir(new_dir, err)) < 0)
        return rc;
    int empty = dir_is_empty(new_dir);
    if (empty < 0)
        return att_fail(err, ATT_ERR_INTERNAL, "restore: cannot read %s: %s", new_dir,
                        strerror(errno));
    if (!empty)
        return att_fail(err, ATT_ERR_BAD_MESSAGE,
                        "restore: %s is not empty; restore into a new directory", new_dir);
    if ((rc = srv_backup_copy_db(src_events, dst_events, err)) < 0)
        return rc;
    if ((rc = srv_backup_copy_db(keys_db, dst_keys, err)) < 0) {
        unlink(dst_events);
        return rc;
    }
    return 0;
}
