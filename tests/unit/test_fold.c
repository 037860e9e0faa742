/* test_fold.c - fold determinism on thousands of seeded random sessions:
 * the live room (decided and folded as the server does) and the room
 * refolded from the JSON log have the same state hash; folding twice gives
 * the same hash; folding a prefix, hashing, then folding the rest gives the
 * same hash as folding everything, and the prefix hash equals the live hash
 * at that point. */
#include "check.h"
#include "room_harness.h"

#include <stdlib.h>
#include <string.h>

#define SESSIONS 2000
#define COMMANDS 120

static uint64_t rng_state;
static uint32_t rnd(uint32_t n)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state % n);
}

static const char *const texts[] = {
    "I felt alone when you left the room.",
    "You always do this, whatever.",
    "I want to know you'll be there.",
    "Ugh.",
    "Can we slow down?",
};

static att_role random_role(void)
{
    static const att_role roles[] = {ATT_ROLE_PARTNER_A, ATT_ROLE_PARTNER_B, ATT_ROLE_THERAPIST,
                                     ATT_ROLE_OBSERVER};
    return roles[rnd(4)];
}

static void random_command(harness *h)
{
    char buf[512];
    att_role role = random_role();
    const char *text = texts[rnd(5)];
    switch (rnd(16)) {
    case 0:
    case 1:
    case 2:
    case 3:
        if (h->room.status == ATT_STATUS_ACTIVE)
            harness_turn(h, (int)rnd(2));
        break;
    case 4:
        if (h->room.status != ATT_STATUS_ENDED)
            harness_turn_input(h, role, harness_valid_input(h, 0));
        break;
    case 5: {
        static const char *const actions[] = {"advance", "back", "pause", "resume", "swap", "end"};
        /* "end" is rare so that sessions run long */
        const char *a = actions[rnd(20) == 0 ? 5 : rnd(5)];
        snprintf(buf, sizeof buf, "{\"type\":\"control\",\"action\":\"%s\"}", a);
        harness_cmd(h, rnd(4) ? ATT_ROLE_THERAPIST : role, buf);
        break;
    }
    case 6:
        snprintf(buf, sizeof buf, "{\"type\":\"consent\",\"accept\":true}");
        harness_cmd(h, role, buf);
        break;
    case 7:
        snprintf(buf, sizeof buf, "{\"type\":\"pause_request\",\"note\":\"%s\"}", text);
        harness_cmd(h, role, buf);
        break;
    case 8:
        snprintf(buf, sizeof buf, "{\"type\":\"repair_attempt\",\"text\":\"%s\"}", text);
        harness_cmd(h, role, buf);
        break;
    case 9:
        if (h->room.n_attempts) {
            snprintf(buf, sizeof buf, "{\"type\":\"repair_accept\",\"attempt_seq\":%lld}",
                     (long long)h->room.attempts[rnd((uint32_t)h->room.n_attempts)].seq);
            harness_cmd(h, role, buf);
        }
        break;
    case 10: {
        static const char *const marks[][2] = {{"withdrawal", "minimal_response"},
                                               {"confrontation", "defending_self"},
                                               {"withdrawal", "appeasing"}};
        int m = (int)rnd(3);
        snprintf(buf, sizeof buf,
                 "{\"type\":\"rupture_mark\",\"kind\":\"%s\",\"marker\":\"%s\",\"who\":\"%s\","
                 "\"with\":\"therapist\"}",
                 marks[m][0], marks[m][1], rnd(2) ? "partner_a" : "partner_b");
        harness_cmd(h, ATT_ROLE_THERAPIST, buf);
        break;
    }
    case 11: {
        static const char *const cmds[] = {"rupture_repair", "rupture_confirm", "rupture_dismiss"};
        int c = (int)rnd(3);
        int id = 1 + (int)rnd((uint32_t)h->room.next_rupture_id);
        if (c == 0)
            snprintf(buf, sizeof buf,
                     "{\"type\":\"rupture_repair\",\"rupture_id\":%d,\"strategy\":\"own_part\"}",
                     id);
        else
            snprintf(buf, sizeof buf, "{\"type\":\"%s\",\"rupture_id\":%d}", cmds[c], id);
        harness_cmd(h, ATT_ROLE_THERAPIST, buf);
        break;
    }
    case 12:
        snprintf(buf, sizeof buf, "{\"type\":\"note\",\"text\":\"%s\"}", text);
        harness_cmd(h, role, buf);
        break;
    case 13:
        if (role != ATT_ROLE_OBSERVER)
            (h->room.present[role] ? harness_leave : harness_join)(h, role);
        else
            (rnd(2) && h->room.observers ? harness_leave : harness_join)(h, role);
        break;
    default:
        harness_tick(h, (int64_t)rnd(2) * ATT_DEFAULT_SILENCE_MS + rnd(5000));
        break;
    }
}

/* The fast state writer must give exactly jansson's bytes, for every viewer. */
static int writer_matches(const att_room *room)
{
    static const att_role viewers[] = {ATT_ROLE_PARTNER_A, ATT_ROLE_PARTNER_B, ATT_ROLE_THERAPIST,
                                       ATT_ROLE_OBSERVER};
    int ok = 1;
    for (size_t v = 0; v < 4; v++)
        for (int with_type = 0; with_type < 2; with_type++) {
            json_t *j = att_room_state_json(room, viewers[v], with_type);
            char *expected = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
            json_decref(j);
            att_buf buf = {0};
            int rc = att_room_state_write(room, viewers[v], with_type, &buf);
            if (rc != 0 || !expected || strcmp(buf.data, expected) != 0) {
                fprintf(stderr, "state writer differs:\n  jansson %s\n  writer  %s\n",
                        expected ? expected : "(null)", buf.data ? buf.data : "(null)");
                ok = 0;
            }
            free(expected);
            att_buf_free(&buf);
        }
    return ok;
}

static int fold_range(att_room *r, json_t *log, size_t from, size_t to)
{
    att_error err = {0};
    for (size_t i = from; i < to; i++) {
        json_t *entry = json_array_get(log, i);
        att_event ev;
        if (att_event_from_json(json_object_get(entry, "event"), r->script, &ev, &err))
            return -1;
        ev.seq = json_integer_value(json_object_get(entry, "seq"));
        if (att_room_apply(r, &ev, &err)) {
            fprintf(stderr, "fold: %s\n", err.message);
            return -1;
        }
    }
    return 0;
}

int main(void)
{
    const att_catalog *cat = harness_catalog();
    long total_events = 0, ruptures = 0, ended = 0;
    for (int s = 0; s < SESSIONS; s++) {
        rng_state = 0x9E3779B97F4A7C15ull ^ (uint64_t)(s + 1) * 0x2545F4914F6CDD1Dull;
        const att_script *script =
            att_catalog_script_at(cat, (size_t)s % att_catalog_script_count(cat));
        harness h;
        harness_init(&h, script->id);
        if (rnd(2))
            harness_start(&h);
        size_t checkpoint = 0;
        char checkpoint_hash[65] = "";
        size_t cut = 1 + rnd(COMMANDS);
        for (int c = 0; c < COMMANDS; c++) {
            random_command(&h);
            if (s % 10 == 0)
                CHECK_MSG(writer_matches(&h.room), "session %d command %d", s, c);
            if ((size_t)c == cut) {
                checkpoint = json_array_size(h.log);
                att_error err;
                att_room_state_hash(&h.room, checkpoint_hash, &err);
            }
        }
        char live[65], once[65], twice[65], split[65], prefix[65];
        att_error err;
        CHECK_INT(att_room_state_hash(&h.room, live, &err), 0);
        CHECK_INT(harness_refold(&h, once), 0);
        CHECK_INT(harness_refold(&h, twice), 0);
        CHECK_MSG(strcmp(live, once) == 0, "session %d: live and replayed states differ", s);
        CHECK_MSG(strcmp(once, twice) == 0, "session %d: two folds differ", s);
        CHECK_MSG(writer_matches(&h.room), "session %d: state writer", s);
        if (checkpoint) {
            att_room r;
            att_room_init(&r, cat, script, h.room.room_id, NULL, &err);
            CHECK_INT(fold_range(&r, h.log, 0, checkpoint), 0);
            att_room_state_hash(&r, prefix, &err);
            CHECK_MSG(strcmp(prefix, checkpoint_hash) == 0, "session %d: prefix hash differs", s);
            CHECK_INT(fold_range(&r, h.log, checkpoint, json_array_size(h.log)), 0);
            att_room_state_hash(&r, split, &err);
            CHECK_MSG(strcmp(split, live) == 0, "session %d: prefix+rest differs", s);
        }
        total_events += (long)json_array_size(h.log);
        ruptures += h.room.n_ruptures;
        ended += h.room.status == ATT_STATUS_ENDED;
        harness_free(&h);
    }
    /* Strings the writer must escape exactly as jansson does. */
    {
        att_room r;
        att_error err;
        CHECK_INT(att_room_init(&r, cat, att_catalog_script(cat, "enactment"),
                                "q\"b\\s/\n\t\x01\x1f\x7f caf\xc3\xa9", NULL, &err),
                  0);
        att_event ev;
        att_room_created_event(&r, 5, ATT_ROLE_PARTNER_B, &ev);
        CHECK_INT(att_room_apply(&r, &ev, &err), 0);
        CHECK(writer_matches(&r));
    }
    /* The random sessions must actually exercise the engine. */
    CHECK(total_events > SESSIONS * 20);
    CHECK(ruptures > SESSIONS / 2);
    CHECK(ended > 0);
    printf("fold: %d sessions, %ld events, %ld ruptures, %ld ended\n", SESSIONS, total_events,
           ruptures, ended);
    harness_catalog_free();
    return check_done("fold");
}
