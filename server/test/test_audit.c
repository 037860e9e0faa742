/* test_audit.c - the audit log: entries chain and verify; the head's MAC
 * needs the audit key; an edited, dropped, reordered or appended-behind-
 * its-back entry is named by srv_audit_verify; a tampered log refuses new
 * entries rather than re-signing them; UPDATE and DELETE are refused; an
 * entry never holds free text (a sentence offered as a detail is refused
 * and appears nowhere in the database file); repeats coalesce; filters
 * and paging. */
#include "audit.h"
#include "check.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static srv_seal_key key_of(unsigned char fill)
{
    srv_seal_key k;
    memset(k.bytes, fill, sizeof k.bytes);
    return k;
}

static void sql(const char *dir, const char *text)
{
    char path[512];
    snprintf(path, sizeof path, "%s/attune.db", dir);
    sqlite3 *db = NULL;
    CHECK_INT(sqlite3_open(path, &db), SQLITE_OK);
    char *msg = NULL;
    int rc = sqlite3_exec(db, text, NULL, NULL, &msg);
    CHECK_MSG(rc == SQLITE_OK, "%s: %s", text, msg ? msg : "");
    sqlite3_free(msg);
    sqlite3_close(db);
}

/* The error text of an UPDATE or DELETE that must be refused. */
static int sql_refused(const char *dir, const char *text, const char *want)
{
    char path[512];
    snprintf(path, sizeof path, "%s/attune.db", dir);
    sqlite3 *db = NULL;
    sqlite3_open(path, &db);
    char *msg = NULL;
    int rc = sqlite3_exec(db, text, NULL, NULL, &msg);
    int refused = rc != SQLITE_OK && msg && strstr(msg, want) != NULL;
    sqlite3_free(msg);
    sqlite3_close(db);
    return refused;
}

static void make_dir(char *dir, size_t size)
{
    snprintf(dir, size, "/tmp/attune-test-audit-XXXXXX");
    CHECK(mkdtemp(dir) != NULL);
}

static void remove_dir(const char *dir)
{
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    CHECK_INT(system(cmd), 0);
}

static int rec(srv_audit *a, int64_t at, const char *actor, int64_t actor_id,
               srv_audit_action action, const char *room, const char *detail)
{
    srv_audit_entry e = {at, actor, actor_id, action, room, detail};
    att_error err = {0};
    int64_t id = 0;
    int rc = srv_audit_record(a, &e, &id, &err);
    return rc < 0 ? rc : (int)id;
}

static void check_ok(srv_audit *a, int64_t entries)
{
    srv_audit_check c;
    att_error err = {0};
    CHECK_INT(srv_audit_verify(a, &c, &err), 0);
    CHECK_MSG(c.ok, "%s", c.why);
    CHECK_INT(c.entries, entries);
    CHECK_INT(c.head_id, entries);
}

/* Verify's verdict on a tampered copy: the first bad entry and a word of
 * its reason. */
static void check_bad(srv_audit *a, int64_t first_bad, const char *why_has)
{
    srv_audit_check c;
    att_error err = {0};
    CHECK_INT(srv_audit_verify(a, &c, &err), 0);
    CHECK(!c.ok);
    CHECK_INT(c.first_bad, first_bad);
    CHECK_MSG(strstr(c.why, why_has) != NULL, "why: %s", c.why);
}

/* Five entries by two actors in two rooms. */
static srv_audit *filled(const char *dir, const srv_seal_key *key)
{
    srv_audit *a = NULL;
    att_error err = {0};
    CHECK_INT(srv_audit_open_key(dir, key, &a, &err), 0);
    CHECK_INT(rec(a, 1000, "dana", 1, SRV_AUDIT_CREATED, "r-one", NULL), 1);
    CHECK_INT(rec(a, 2000, "dana", 1, SRV_AUDIT_OPENED, "r-one", NULL), 2);
    CHECK_INT(rec(a, 3000, "sam", 2, SRV_AUDIT_EXPORTED, "r-two", NULL), 3);
    CHECK_INT(rec(a, 4000, "dana", 1, SRV_AUDIT_LINKS_REVOKED, "r-one", "partner_a"), 4);
    CHECK_INT(rec(a, 5000, "cli:root", 0, SRV_AUDIT_KEYS_ROTATED, NULL, NULL), 5);
    return a;
}

static int collect(const srv_audit_row *row, void *arg)
{
    char *out = arg;
    char one[64];
    snprintf(one, sizeof one, "%lld:%s ", (long long)row->id, row->action);
    strncat(out, one, 511 - strlen(out));
    return 0;
}

static void test_chain_and_walks(void)
{
    char dir[64];
    make_dir(dir, sizeof dir);
    srv_seal_key key = key_of(7);
    srv_audit *a = filled(dir, &key);
    check_ok(a, 5);
    att_error err = {0};
    char got[512] = "";
    srv_audit_filter all = {0};
    CHECK_INT(srv_audit_walk(a, &all, collect, got, &err), 0);
    CHECK_STR(got, "1:created 2:opened 3:exported 4:links_revoked 5:keys_rotated ");
    /* one account's own, newest first, paged */
    got[0] = '\0';
    srv_audit_filter mine = {.actor_id = 1, .newest_first = 1, .limit = 2};
    CHECK_INT(srv_audit_walk(a, &mine, collect, got, &err), 0);
    CHECK_STR(got, "4:links_revoked 2:opened ");
    got[0] = '\0';
    mine.before_id = 2;
    CHECK_INT(srv_audit_walk(a, &mine, collect, got, &err), 0);
    CHECK_STR(got, "1:created ");
    got[0] = '\0';
    srv_audit_filter room = {.room = "r-two"};
    CHECK_INT(srv_audit_walk(a, &room, collect, got, &err), 0);
    CHECK_STR(got, "3:exported ");
    got[0] = '\0';
    srv_audit_filter since = {.action = "links_revoked", .after_id = 1};
    CHECK_INT(srv_audit_walk(a, &since, collect, got, &err), 0);
    CHECK_STR(got, "4:links_revoked ");
    got[0] = '\0';
    srv_audit_filter actor = {.actor = "cli:root"};
    CHECK_INT(srv_audit_walk(a, &actor, collect, got, &err), 0);
    CHECK_STR(got, "5:keys_rotated ");

    /* Repeats within the window coalesce into the first; later ones do not. */
    srv_audit_entry open = {10000, "dana", 1, SRV_AUDIT_OPENED, "r-one", NULL};
    int64_t id = 0;
    CHECK_INT(srv_audit_record_once(a, &open, SRV_AUDIT_COALESCE_MS, &id, &err), 0);
    CHECK_INT(id, 2);
    open.at = 2000 + SRV_AUDIT_COALESCE_MS + 1;
    CHECK_INT(srv_audit_record_once(a, &open, SRV_AUDIT_COALESCE_MS, &id, &err), 0);
    CHECK_INT(id, 6);
    check_ok(a, 6);

    /* A second handle (another process) appends after the first. */
    srv_audit *b = NULL;
    CHECK_INT(srv_audit_open_key(dir, &key, &b, &err), 0);
    CHECK_INT(rec(b, 20000, "dana", 1, SRV_AUDIT_ERASED, "r-one", NULL), 7);
    CHECK_INT(rec(a, 21000, "dana", 1, SRV_AUDIT_BACKUP, NULL, "events"), 8);
    check_ok(b, 8);
    srv_audit_close(b);

    /* The table is append-only for any connection. */
    CHECK(sql_refused(dir, "UPDATE audit_log SET room = 'r-x' WHERE id = 1", "append-only"));
    CHECK(sql_refused(dir, "DELETE FROM audit_log WHERE id = 8", "append-only"));
    check_ok(a, 8);

    /* The head needs the audit key: the same log under another key fails. */
    srv_audit_close(a);
    srv_seal_key other = key_of(9);
    CHECK_INT(srv_audit_open_key(dir, &other, &a, &err), 0);
    check_bad(a, 0, "MAC");
    CHECK(rec(a, 30000, "dana", 1, SRV_AUDIT_OPENED, "r-one", NULL) < 0);
    srv_audit_close(a);
    remove_dir(dir);
}

/* Each kind of tampering, on a fresh log (the triggers dropped, as someone
 * with write access to the file would). */
static void test_tampering(void)
{
    srv_seal_key key = key_of(3);
    static const char *const drop = "DROP TRIGGER audit_log_no_update;"
                                    "DROP TRIGGER audit_log_no_delete;";
    char dir[64];
    att_error err = {0};

    /* an edited entry */
    make_dir(dir, sizeof dir);
    srv_audit *a = filled(dir, &key);
    sql(dir, drop);
    sql(dir, "UPDATE audit_log SET room = 'r-two' WHERE id = 2");
    check_bad(a, 2, "edited");
    srv_audit_close(a);
    remove_dir(dir);

    /* an edited entry with every later hash recomputed: the head no longer
     * matches, and a new entry is refused rather than re-signing it */
    make_dir(dir, sizeof dir);
    a = filled(dir, &key);
    sql(dir, drop);
    sql(dir, "UPDATE audit_log SET hash = zeroblob(32) WHERE id = 5");
    CHECK(rec(a, 9000, "dana", 1, SRV_AUDIT_OPENED, "r-one", NULL) < 0);
    check_bad(a, 5, "edited");
    srv_audit_close(a);
    remove_dir(dir);

    /* a dropped entry in the middle, and one at the end */
    make_dir(dir, sizeof dir);
    a = filled(dir, &key);
    sql(dir, drop);
    sql(dir, "DELETE FROM audit_log WHERE id = 3");
    check_bad(a, 3, "missing");
    srv_audit_close(a);
    remove_dir(dir);
    make_dir(dir, sizeof dir);
    a = filled(dir, &key);
    sql(dir, drop);
    sql(dir, "DELETE FROM audit_log WHERE id = 5");
    check_bad(a, 5, "deleted");
    CHECK(rec(a, 9000, "dana", 1, SRV_AUDIT_OPENED, "r-one", NULL) < 0);
    srv_audit_close(a);
    remove_dir(dir);

    /* two entries swapped (their contents exchanged, ids kept) */
    make_dir(dir, sizeof dir);
    a = filled(dir, &key);
    sql(dir, drop);
    sql(dir, "CREATE TEMP TABLE t AS SELECT * FROM audit_log WHERE id IN (2, 3);"
             "UPDATE audit_log SET at = (SELECT at FROM t WHERE id = 3),"
             " actor = (SELECT actor FROM t WHERE id = 3),"
             " actor_id = (SELECT actor_id FROM t WHERE id = 3),"
             " action = (SELECT action FROM t WHERE id = 3),"
             " room = (SELECT room FROM t WHERE id = 3),"
             " hash = (SELECT hash FROM t WHERE id = 3) WHERE id = 2;"
             "UPDATE audit_log SET at = (SELECT at FROM t WHERE id = 2),"
             " actor = (SELECT actor FROM t WHERE id = 2),"
             " actor_id = (SELECT actor_id FROM t WHERE id = 2),"
             " action = (SELECT action FROM t WHERE id = 2),"
             " room = (SELECT room FROM t WHERE id = 2),"
             " hash = (SELECT hash FROM t WHERE id = 2) WHERE id = 3;");
    check_bad(a, 2, "edited");
    srv_audit_close(a);
    remove_dir(dir);

    /* a copy inserted after the head, and the head removed */
    make_dir(dir, sizeof dir);
    a = filled(dir, &key);
    sql(dir, "INSERT INTO audit_log (id, at, actor, actor_id, action, room, detail, hash)"
             " SELECT 6, at, actor, actor_id, action, room, detail, hash FROM audit_log"
             " WHERE id = 5");
    check_bad(a, 6, "edited");
    srv_audit_close(a);
    remove_dir(dir);
    make_dir(dir, sizeof dir);
    a = filled(dir, &key);
    sql(dir, "DELETE FROM audit_head");
    check_bad(a, 0, "head is missing");
    srv_audit_close(a);
    remove_dir(dir);
    (void)err;
}

/* An entry holds ids and fixed words only: whatever looks like something a
 * person typed is refused before anything is written. */
static void test_no_content(void)
{
    char dir[64];
    make_dir(dir, sizeof dir);
    srv_seal_key key = key_of(5);
    srv_audit *a = filled(dir, &key);
    static const char sentence[] = "I felt abandoned when you left";
    CHECK_INT(rec(a, 7000, "dana", 1, SRV_AUDIT_OPENED, "r-one", sentence), -ATT_ERR_BAD_MESSAGE);
    CHECK_INT(rec(a, 7000, "dana smith", 1, SRV_AUDIT_OPENED, "r-one", NULL), -ATT_ERR_BAD_MESSAGE);
    CHECK_INT(rec(a, 7000, "dana", 1, SRV_AUDIT_OPENED, "not a room", NULL), -ATT_ERR_BAD_MESSAGE);
    CHECK_INT(rec(a, 7000, "dana", 1, (srv_audit_action)99, "r-one", NULL), -ATT_ERR_BAD_MESSAGE);
    CHECK_INT(rec(a, 7000, "", 1, SRV_AUDIT_OPENED, "r-one", NULL), -ATT_ERR_BAD_MESSAGE);
    check_ok(a, 5);
    srv_audit_close(a);
    char path[128];
    snprintf(path, sizeof path, "%s/attune.db", dir);
    size_t len = 0;
    char *bytes = check_read_file(path, &len);
    CHECK(bytes != NULL);
    int found = 0;
    for (size_t i = 0; bytes && i + 9 <= len; i++)
        found |= memcmp(bytes + i, "abandoned", 9) == 0;
    CHECK(!found);
    free(bytes);
    /* every action has a name and back */
    for (int i = 0; i < SRV_AUDIT__COUNT; i++)
        CHECK_INT(srv_audit_action_from_name(srv_audit_action_name((srv_audit_action)i)), i);
    CHECK_INT(srv_audit_action_from_name("rewrote"), -1);
    char actor[SRV_AUDIT_ACTOR_MAX + 1];
    srv_audit_cli_actor(actor);
    CHECK(strncmp(actor, "cli:", 4) == 0 && actor[4]);
    remove_dir(dir);
}

int main(void)
{
    test_chain_and_walks();
    test_tampering();
    test_no_content();
    return check_done("test_audit");
}
