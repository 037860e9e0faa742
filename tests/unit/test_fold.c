/* test_fold.c - fold determinism on thousands of seeded random sessions:
 * the live room (decided and folded as the server does) and the room
 * refolded from the JSON log have the same state hash; folding twice gives
 * the same hash; folding a prefix, hashing, then folding the rest gives the
 * same hash as folding everything, and the prefix hash equals the live hash
 * at that point. The state writer's text parses with sorted keys and is byte
 * for byte the jansson reference view (state_ref.c) for every viewer, and
 * each audience's seq counts the events it may see. */
#include "check.h"
#include "room_harness.h"
#include "state_ref.h"

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
    "You always ignore me, you never listen",
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

static const char *partner_name(void)
{
    return rnd(2) ? "partner_a" : "partner_b";
}

/* The last attempt id or suspicion id seen, or a random small one. */
static int some_attempt(harness *h)
{
    return h->room.n_attempts && rnd(4) ? h->room.attempts[rnd((uint32_t)h->room.n_attempts)].id
                                        : 1 + (int)rnd(20);
}

static int some_suspicion(harness *h)
{
    return h->room.n_suspicions && rnd(4)
               ? h->room.suspicions[rnd((uint32_t)h->room.n_suspicions)].open.id
               : 1 + (int)rnd(10);
}

static int some_rupture(harness *h)
{
    return h->room.n_ruptures && rnd(4)
               ? h->room.ruptures[rnd((uint32_t)h->room.n_ruptures)].open.id
               : 1 + (int)rnd(10);
}

static void random_command(harness *h)
{
    att_role role = random_role();
    const char *text = texts[rnd(5)];
    switch (rnd(24)) {
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
        static const char *const actions[] = {"advance", "back",    "pause", "resume",
                                              "swap",    "proceed", "end"};
        /* "end" is rare so that sessions run long */
        const char *a = actions[rnd(20) == 0 ? 6 : rnd(6)];
        harness_cmdf(h, rnd(4) ? ATT_ROLE_THERAPIST : role,
                     "{\"type\":\"control\",\"action\":\"%s\"}", a);
        break;
    }
    case 6:
        harness_cmd(h, role,
                    rnd(4) ? "{\"type\":\"consent\",\"accept\":true}"
                           : "{\"type\":\"consent_withdraw\"}");
        break;
    case 7:
        harness_cmdf(h, role, "{\"type\":\"pause_request\",\"note\":\"%s\"}", text);
        break;
    case 8:
        if (rnd(2))
            harness_cmdf(h, role, "{\"type\":\"repair_attempt\",\"text\":\"%s\"}", text);
        else
            harness_cmdf(h, role, "{\"type\":\"repair_attempt\",\"rupture_id\":%d}",
                         some_rupture(h));
        break;
    case 9:
        harness_cmdf(h, role, "{\"type\":\"repair_accept\",\"attempt_id\":%d}", some_attempt(h));
        break;
    case 10: {
        static const char *const marks[][2] = {{"withdrawal", "minimal_response"},
                                               {"confrontation", "defending_self"},
                                               {"withdrawal", "appeasing"}};
        int m = (int)rnd(3);
        const char *who = partner_name();
        const char *with = rnd(2)                          ? "therapist"
                           : strcmp(who, "partner_a") == 0 ? "partner_b"
                                                           : "partner_a";
        harness_cmdf(h, ATT_ROLE_THERAPIST,
                     "{\"type\":\"rupture_mark\",\"kind\":\"%s\",\"marker\":\"%s\",\"who\":\"%s\","
                     "\"with\":\"%s\"}",
                     marks[m][0], marks[m][1], who, with);
        break;
    }
    case 11:
        switch (rnd(3)) {
        case 0:
            harness_cmdf(
                h, ATT_ROLE_THERAPIST,
                "{\"type\":\"rupture_repair\",\"rupture_id\":%d,\"strategy\":\"own_part\"}",
                some_rupture(h));
            break;
        case 1:
            harness_cmdf(h, ATT_ROLE_THERAPIST,
                         "{\"type\":\"rupture_confirm\",\"suspicion_id\":%d,\"note\":\"%s\"}",
                         some_suspicion(h), text);
            break;
        default:
            harness_cmdf(h, ATT_ROLE_THERAPIST,
                         "{\"type\":\"rupture_dismiss\",\"suspicion_id\":%d}", some_suspicion(h));
            break;
        }
        break;
    case 12:
        if (rnd(2))
            harness_cmdf(h, role, "{\"type\":\"note\",\"text\":\"%s\"}", text);
        else
            harness_cmdf(h, role, "{\"type\":\"note\",\"text\":\"%s\",\"suspicion_id\":%d}", text,
                         some_suspicion(h));
        break;
    case 13:
        /* a `left` recorded after the presence window, dated when they went */
        if (role != ATT_ROLE_OBSERVER && h->room.present[role] && rnd(2))
            harness_leave_at(h, role, h->now - (int64_t)rnd(6000));
        else if (role != ATT_ROLE_OBSERVER)
            (h->room.present[role] ? harness_leave : harness_join)(h, role);
        else
            (rnd(2) && h->room.observers ? harness_leave : harness_join)(h, role);
        break;
    case 14: {
        static const char *const answers[] = {"yes", "yes", "not_sure", "no"};
        harness_checkin(h, role, answers[rnd(4)]);
        break;
    }
    case 15:
        if (role == ATT_ROLE_THERAPIST)
            harness_cmdf(h, role, "{\"type\":\"private_message\",\"to\":\"%s\",\"text\":\"%s\"}",
                         partner_name(), text);
        else
            harness_cmdf(h, role, "{\"type\":\"private_message\",\"text\":\"%s\"}", text);
        break;
    case 16:
        harness_cmd(h, role, "{\"type\":\"ask_therapist\"}");
        break;
    case 17:
        harness_cmdf(h, role, "{\"type\":\"repair_reply\",\"attempt_id\":%d,\"reply\":\"%s\"}",
                     some_attempt(h),
                     role == ATT_ROLE_THERAPIST ? "acknowledged" : "need_a_moment");
        break;
    case 18:
        if (rnd(2))
            harness_reconnected(h, role, 1 + (int)rnd(5), (int64_t)rnd(8000));
        else if (role != ATT_ROLE_OBSERVER)
            harness_replaced(h, role);
        break;
    case 19:
        harness_tick_composing(h, (int64_t)rnd(3) * 100000 + rnd(5000),
                               h->now - (int64_t)rnd(200000));
        break;
    default:
        harness_tick(h, (int64_t)rnd(2) * ATT_DEFAULT_SILENCE_MS * 4 + rnd(5000));
        break;
    }
}

static const att_role viewers[] = {ATT_ROLE_PARTNER_A, ATT_ROLE_PARTNER_B, ATT_ROLE_THERAPIST,
                                   ATT_ROLE_OBSERVER};

/* The one state serializer: its text parses, its keys are sorted (jansson's
 * sorted compact dump of the parse is the text byte for byte), and it is
 * byte for byte the jansson reference view (state_ref.c, built field by
 * field from the room) dumped with sorted keys, for every viewer. */
static int writer_ok(const att_room *room)
{
    int ok = 1;
    for (size_t v = 0; v < 4; v++)
        for (int with_type = 0; with_type < 2; with_type++) {
            att_buf buf = {0};
            int rc = att_state_write(room, viewers[v], with_type, &buf);
            json_error_t jerr;
            json_t *parsed =
                rc == 0 ? json_loadb(buf.data, buf.len, JSON_REJECT_DUPLICATES, &jerr) : NULL;
            char *sorted = parsed ? json_dumps(parsed, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
            json_t *view = state_ref_json(room, viewers[v], with_type);
            char *reference = view ? json_dumps(view, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
            if (rc != 0 || !parsed || !sorted || !reference || strlen(buf.data) != buf.len ||
                strcmp(buf.data, sorted) != 0 || strcmp(buf.data, reference) != 0) {
                fprintf(stderr, "state writer (%s, type %d):\n  writer    %s\n  reference %s\n",
                        att_role_name(viewers[v]), with_type, buf.data ? buf.data : "(null)",
                        reference ? reference : "(null)");
                ok = 0;
            }
            free(reference);
            free(sorted);
            json_decref(parsed);
            json_decref(view);
            att_buf_free(&buf);
        }
    return ok;
}

/* Each audience's seq counts exactly the events it may see; counts[] holds
 * the tally of the log up to *done entries. */
static int audiences_ok(harness *h, int64_t counts[4], size_t *done)
{
    size_t n = json_array_size(h->log);
    for (; *done < n; (*done)++) {
        att_event ev;
        att_error err;
        if (att_event_from_json(json_object_get(json_array_get(h->log, *done), "event"),
                                h->room.script, &ev, &err))
            return 0;
        for (int v = 0; v < 4; v++)
            counts[v] += att_event_visible_to(&ev, viewers[v]);
    }
    int ok = counts[ATT_ROLE_THERAPIST] == h->room.seq;
    for (int v = 0; v < 4; v++)
        ok &= h->room.aud_seq[v] == counts[v];
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
    long total_events = 0, ruptures = 0, ended = 0, suspicions = 0, decided = 0, checked_in = 0,
         private_lines = 0, by_attempt = 0;
    for (int s = 0; s < SESSIONS; s++) {
        rng_state = 0x9E3779B97F4A7C15ull ^ (uint64_t)(s + 1) * 0x2545F4914F6CDD1Dull;
        const att_script *script =
            att_catalog_script_at(cat, (size_t)s % att_catalog_script_count(cat));
        harness h;
        harness_init(&h, script->id);
        switch (rnd(3)) {
        case 0:
            break;
        case 1:
            harness_start_consented(&h); /* checking in */
            break;
        default:
            harness_start(&h);
        }
        int64_t counts[4] = {0, 0, 0, 0};
        size_t counted = 0;
        size_t checkpoint = 0;
        char checkpoint_hash[65] = "";
        size_t cut = 1 + rnd(COMMANDS);
        for (int c = 0; c < COMMANDS; c++) {
            random_command(&h);
            /* after every command in some sessions (every session's end is checked below) */
            if (s % 50 == 0)
                CHECK_MSG(writer_ok(&h.room), "session %d command %d", s, c);
            if (s % 10 == 0)
                CHECK_MSG(audiences_ok(&h, counts, &counted), "session %d command %d", s, c);
            if ((size_t)c == cut) {
                checkpoint = json_array_size(h.log);
                att_error err;
                att_state_hash(&h.room, checkpoint_hash, &err);
            }
        }
        char live[65], once[65], twice[65], split[65], prefix[65];
        att_error err;
        CHECK_INT(att_state_hash(&h.room, live, &err), 0);
        CHECK_INT(harness_refold(&h, once), 0);
        CHECK_INT(harness_refold(&h, twice), 0);
        CHECK_MSG(strcmp(live, once) == 0, "session %d: live and replayed states differ", s);
        CHECK_MSG(strcmp(once, twice) == 0, "session %d: two folds differ", s);
        CHECK_MSG(writer_ok(&h.room), "session %d: state writer", s);
        CHECK_MSG(audiences_ok(&h, counts, &counted), "session %d: audience seqs", s);
        if (checkpoint) {
            att_room r;
            att_room_init(&r, cat, script, h.room.room_id, NULL, &err);
            CHECK_INT(fold_range(&r, h.log, 0, checkpoint), 0);
            att_state_hash(&r, prefix, &err);
            CHECK_MSG(strcmp(prefix, checkpoint_hash) == 0, "session %d: prefix hash differs", s);
            CHECK_INT(fold_range(&r, h.log, checkpoint, json_array_size(h.log)), 0);
            att_state_hash(&r, split, &err);
            CHECK_MSG(strcmp(split, live) == 0, "session %d: prefix+rest differs", s);
        }
        total_events += (long)json_array_size(h.log);
        ruptures += h.room.n_ruptures;
        suspicions += h.room.n_suspicions;
        checked_in += h.room.checkin_done;
        private_lines += h.room.private_from_partners;
        for (int i = 0; i < h.room.n_suspicions; i++)
            decided += h.room.suspicions[i].status != ATT_SS_SUSPECTED;
        for (int i = 0; i < h.room.n_ruptures; i++)
            by_attempt += h.room.ruptures[i].status == ATT_RS_REPAIRED &&
                          h.room.ruptures[i].repair_how == ATT_HOW_REPAIR_ATTEMPT;
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
        CHECK(writer_ok(&r));
    }
    /* The random sessions must actually exercise the engine. */
    CHECK(total_events > SESSIONS * 20);
    CHECK(ruptures > SESSIONS / 2);
    CHECK(ended > 0);
    CHECK(suspicions > SESSIONS / 2);
    CHECK(decided > SESSIONS / 10);
    CHECK(checked_in > SESSIONS / 10);
    CHECK(private_lines > SESSIONS);
    CHECK(by_attempt > 10);
    printf("fold: %d sessions, %ld events, %ld ruptures (%ld repaired by an attempt), %ld "
           "suspicions (%ld decided), %ld checked in, %ld private messages, %ld ended\n",
           SESSIONS, total_events, ruptures, by_attempt, suspicions, decided, checked_in,
           private_lines, ended);
    harness_catalog_free();
    return check_done("fold");
}
