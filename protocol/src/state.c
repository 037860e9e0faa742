/* state.c - the room's state as JSON text, written directly into a buffer:
 * the one state serializer (state.h), and the room hash over its text. The
 * server sends a state to members after every change, and building a
 * jansson tree and dumping it with sorted keys was most of its CPU. Keys are
 * written in sorted order by hand, strings are escaped as jansson escapes
 * them, and the step's constant parts were encoded by jansson when the
 * catalog was loaded, so the text is what json_dumps(JSON_COMPACT |
 * JSON_SORT_KEYS) would write; tests/unit/test_fold.c checks that against a
 * jansson reference view (state_ref.c) over thousands of random sessions.
 *
 * What a viewer may see is decided here: a partner's state carries no
 * room-log seq (its `seq` counts its own audience), no suspicion, no
 * evidence and no counter that moves for events hidden from it. */
#include "attune/state.h"
#include "room_internal.h"

#include <openssl/sha.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    att_buf *b;
    int failed;
} writer;

static void put(writer *w, const char *s, size_t n)
{
    if (w->failed || att_buf_reserve(w->b, n)) {
        w->failed = 1;
        return;
    }
    memcpy(w->b->data + w->b->len, s, n);
    w->b->len += n;
    w->b->data[w->b->len] = '\0';
}

static void raw(writer *w, const char *s)
{
    put(w, s, strlen(s));
}

static void integer(writer *w, long long v)
{
    char tmp[24];
    char *p = tmp + sizeof tmp;
    unsigned long long u = v < 0 ? 0ull - (unsigned long long)v : (unsigned long long)v;
    do {
        *--p = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0)
        *--p = '-';
    put(w, p, (size_t)(tmp + sizeof tmp - p));
}

/* A JSON string, escaped as jansson escapes it (no slash or non-ASCII escapes). */
static void string(writer *w, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    put(w, "\"", 1);
    const char *run = s;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        put(w, run, (size_t)(s - run));
        run = s + 1;
        char esc[7] = {'\\', 0, 0, 0, 0, 0, 0};
        size_t n = 2;
        switch (c) {
        case '"':
        case '\\':
            esc[1] = (char)c;
            break;
        case '\b':
            esc[1] = 'b';
            break;
        case '\f':
            esc[1] = 'f';
            break;
        case '\n':
            esc[1] = 'n';
            break;
        case '\r':
            esc[1] = 'r';
            break;
        case '\t':
            esc[1] = 't';
            break;
        default:
            esc[1] = 'u';
            esc[2] = '0';
            esc[3] = '0';
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 15];
            n = 6;
        }
        put(w, esc, n);
    }
    put(w, run, (size_t)(s - run));
    put(w, "\"", 1);
}

static void string_or_null(writer *w, const char *s)
{
    if (s)
        string(w, s);
    else
        raw(w, "null");
}

static void boolean(writer *w, int v)
{
    raw(w, v ? "true" : "false");
}

static void rating(writer *w, int r)
{
    if (r >= 0)
        integer(w, r);
    else
        raw(w, "null");
}

static int is_staff(att_role viewer)
{
    return viewer == ATT_ROLE_THERAPIST || viewer == ATT_ROLE_OBSERVER;
}

static void int_or_null(writer *w, long long v)
{
    if (v)
        integer(w, v);
    else
        raw(w, "null");
}

static void step_ref(writer *w, const att_room *room, int index)
{
    if (index >= 0 && (size_t)index < room->script->n_steps)
        raw(w, room->script->steps[index].id_json);
    else
        raw(w, "null");
}

static void evidence(writer *w, const att_rupture_open *o)
{
    raw(w, "[");
    for (int i = 0; i < o->n_evidence; i++) {
        if (i)
            raw(w, ",");
        integer(w, o->evidence[i]);
    }
    raw(w, "]");
}

static void rupture(writer *w, const att_room *room, const att_rupture *r, int staff)
{
    const att_rupture_open *o = &r->open;
    raw(w, "{");
    if (staff) {
        raw(w, "\"confirmed\":");
        boolean(w, r->confirmed);
        raw(w, ",\"evidence\":");
        evidence(w, o);
        raw(w, ",");
    }
    raw(w, "\"id\":");
    integer(w, o->id);
    raw(w, ",\"kind\":");
    string(w, att_rupture_kind_name(o->kind));
    raw(w, ",\"marker\":");
    string(w, o->marker);
    raw(w, ",\"opened_at\":");
    integer(w, r->opened_at);
    if (staff) {
        raw(w, ",\"opened_seq\":");
        integer(w, r->opened_seq);
    }
    raw(w, ",\"repair\":");
    if (r->status == ATT_RS_REPAIRED) {
        raw(w, "{\"at\":");
        integer(w, r->repair_at);
        raw(w, ",\"attempt_id\":");
        int_or_null(w, r->repair_attempt_id);
        raw(w, ",\"by\":");
        string(w, att_role_name(r->repair_by));
        raw(w, ",\"how\":");
        string(w, att_repair_how_name(r->repair_how));
        if (staff) {
            raw(w, ",\"seq\":");
            integer(w, r->repair_seq);
        }
        raw(w, ",\"strategy\":");
        string_or_null(w, r->repair_strategy[0] ? r->repair_strategy : NULL);
        raw(w, ",\"time_to_repair_ms\":");
        integer(w, r->repair_at - r->opened_at);
        raw(w, "}");
    } else {
        raw(w, "null");
    }
    raw(w, ",\"round\":");
    integer(w, o->round);
    raw(w, ",\"source\":");
    string(w, att_source_name(o->source));
    raw(w, ",\"status\":");
    string(w, att_rupture_status_name(r->status));
    raw(w, ",\"step\":");
    step_ref(w, room, o->step);
    if (staff) {
        raw(w, ",\"suspicion_id\":");
        int_or_null(w, r->suspicion_id);
    }
    raw(w, ",\"who\":");
    string(w, att_role_name(o->who));
    raw(w, ",\"with\":");
    string(w, att_role_name(o->with));
    raw(w, "}");
}

static void suspicion(writer *w, const att_room *room, const att_suspicion *s)
{
    const att_rupture_open *o = &s->open;
    raw(w, "{\"class\":");
    string_or_null(w, att_blame_class_name(o->blame_class));
    raw(w, ",\"decided_at\":");
    int_or_null(w, s->decided_at);
    raw(w, ",\"evidence\":");
    evidence(w, o);
    raw(w, ",\"id\":");
    integer(w, o->id);
    raw(w, ",\"kind\":");
    string(w, att_rupture_kind_name(o->kind));
    raw(w, ",\"marker\":");
    string(w, o->marker);
    raw(w, ",\"raised_at\":");
    integer(w, s->raised_at);
    raw(w, ",\"raised_seq\":");
    integer(w, s->raised_seq);
    raw(w, ",\"round\":");
    integer(w, o->round);
    raw(w, ",\"rupture_id\":");
    int_or_null(w, s->rupture_id);
    raw(w, ",\"status\":");
    string(w, att_suspicion_status_name(s->status));
    raw(w, ",\"step\":");
    step_ref(w, room, o->step);
    raw(w, ",\"who\":");
    string(w, att_role_name(o->who));
    raw(w, ",\"with\":");
    string(w, att_role_name(o->with));
    raw(w, "}");
}

/* The check-in as each viewer may know it: a partner only whether they
 * answered themselves, an observer nothing (the answers are the private
 * line's), the therapist everything. */
static void checkin(writer *w, const att_room *room, att_role viewer)
{
    if (att_role_is_partner(viewer)) {
        raw(w, "{\"answered\":");
        boolean(w, room->checkin_seq[viewer] != 0);
        raw(w, "}");
        return;
    }
    int therapist = viewer == ATT_ROLE_THERAPIST;
    if (!therapist) {
        raw(w, "{}");
        return;
    }
    raw(w, "{");
    if (therapist) {
        raw(w, "\"held\":");
        boolean(w, room->checkin_hold && !room->checkin_done);
        raw(w, ",");
    }
    for (int p = ATT_ROLE_PARTNER_A; p <= ATT_ROLE_PARTNER_B; p++) {
        raw(w, p ? ",\"partner_b\":{\"answered\":" : "\"partner_a\":{\"answered\":");
        boolean(w, room->checkin_seq[p] != 0);
        if (therapist) {
            raw(w, ",\"hold\":");
            boolean(w, room->checkin_held[p]);
            raw(w, ",\"seq\":");
            int_or_null(w, room->checkin_seq[p]);
        }
        raw(w, "}");
    }
    raw(w, "}");
}

/* A step's `as`: the part it is taken in, for a step taken by whoever
 * speaks or listens this round; null for a step that names its actor. */
static const char *speaker_or_listener(att_actor a)
{
    return a == ATT_ACTOR_SPEAKER || a == ATT_ACTOR_LISTENER ? att_actor_name(a) : NULL;
}

static void step(writer *w, const att_room *room)
{
    if (room->status == ATT_STATUS_ENDED) {
        raw(w, "null");
        return;
    }
    const att_step *st = &room->script->steps[room->step];
    raw(w, "{\"actor\":");
    string(w, att_role_name(att_room_resolve_actor(room, st->actor)));
    raw(w, ",\"as\":");
    string_or_null(w, speaker_or_listener(st->actor));
    raw(w, ",\"id\":");
    raw(w, st->id_json);
    raw(w, ",\"index\":");
    integer(w, room->step);
    raw(w, ",\"inputs\":");
    raw(w, st->inputs_json);
    raw(w, ",\"prompt\":");
    raw(w, st->prompt_json);
    raw(w, ",\"tag\":");
    string_or_null(w, att_step_tag_name(st->tag));
    raw(w, ",\"title\":");
    raw(w, st->title_json);
    raw(w, "}");
}

int att_state_write(const att_room *room, att_role viewer, int with_type, att_buf *buf)
{
    writer w = {.b = buf, .failed = 0};
    int staff = is_staff(viewer);
    int aud = (int)viewer >= 0 && (int)viewer < ATT_AUDIENCES ? (int)viewer : ATT_ROLE_THERAPIST;
    raw(&w, "{\"checkin\":");
    checkin(&w, room, viewer);
    raw(&w, ",\"consent\":{\"partner_a\":");
    boolean(&w, room->consent[ATT_ROLE_PARTNER_A]);
    raw(&w, ",\"partner_b\":");
    boolean(&w, room->consent[ATT_ROLE_PARTNER_B]);
    raw(&w, "},\"ended_reason\":");
    string_or_null(&w, att_room_end_reason_name(room->end_reason));
    raw(&w, ",\"exercise\":");
    string(&w, room->script->id);
    raw(&w, ",\"language\":");
    string(&w, room->language);
    raw(&w, ",\"last_rating\":{\"partner_a\":");
    rating(&w, room->last_rating[ATT_ROLE_PARTNER_A]);
    raw(&w, ",\"partner_b\":");
    rating(&w, room->last_rating[ATT_ROLE_PARTNER_B]);
    raw(&w, "},\"listener\":");
    string(&w, att_role_name(att_other_partner(room->speaker)));
    if (staff) {
        raw(&w, ",\"next_rupture_id\":");
        integer(&w, room->next_rupture_id);
    }
    raw(&w, ",\"paused_by\":");
    string_or_null(&w, room->paused_by == ATT_ROLE_NONE ? NULL : att_role_name(room->paused_by));
    raw(&w, ",\"present\":{\"observers\":");
    integer(&w, room->observers);
    raw(&w, ",\"partner_a\":");
    boolean(&w, room->present[ATT_ROLE_PARTNER_A]);
    raw(&w, ",\"partner_b\":");
    boolean(&w, room->present[ATT_ROLE_PARTNER_B]);
    raw(&w, ",\"therapist\":");
    boolean(&w, room->present[ATT_ROLE_THERAPIST]);
    raw(&w, "}");
    if (viewer == ATT_ROLE_THERAPIST) {
        raw(&w, ",\"private_line\":{\"from_partners\":");
        integer(&w, room->private_from_partners);
        raw(&w, ",\"last_seq\":");
        int_or_null(&w, room->private_last_seq);
        raw(&w, "}");
    }
    raw(&w, ",\"rejections_in_row\":");
    integer(&w, room->rejections_in_row);
    raw(&w, ",\"repair_attempts\":[");
    for (int i = 0; i < room->n_attempts; i++) {
        const att_attempt *a = &room->attempts[i];
        raw(&w, i ? ",{\"accepted\":" : "{\"accepted\":");
        boolean(&w, a->accepted);
        raw(&w, ",\"acknowledged\":");
        boolean(&w, a->acknowledged);
        raw(&w, ",\"by\":");
        string(&w, att_role_name((att_role)a->by));
        raw(&w, ",\"id\":");
        integer(&w, a->id);
        raw(&w, ",\"reply\":"); /* the other partner's answer, as PROTOCOL.md names it */
        string_or_null(&w, a->moment ? att_repair_reply_name(ATT_REPLY_NEED_A_MOMENT) : NULL);
        raw(&w, ",\"rupture_id\":");
        int_or_null(&w, a->rupture_id);
        raw(&w, "}");
    }
    raw(&w, "],\"room\":");
    string(&w, room->room_id);
    raw(&w, ",\"round\":");
    integer(&w, room->round);
    raw(&w, ",\"rounds\":");
    integer(&w, room->script->rounds);
    raw(&w, ",\"ruptures\":[");
    for (int i = 0; i < room->n_ruptures; i++) {
        if (i)
            raw(&w, ",");
        rupture(&w, room, &room->ruptures[i], staff);
    }
    raw(&w, "],\"ruptures_dropped\":");
    integer(&w, room->ruptures_dropped);
    raw(&w, ",\"seq\":");
    integer(&w, room->aud_seq[aud]);
    raw(&w, ",\"speaker\":");
    string(&w, att_role_name(room->speaker));
    raw(&w, ",\"status\":");
    string(&w, att_room_status_name(room->status));
    raw(&w, ",\"step\":");
    step(&w, room);
    raw(&w, ",\"step_started_at\":");
    integer(&w, room->step_started_at);
    if (staff) {
        raw(&w, ",\"step_started_seq\":");
        integer(&w, room->step_started_seq);
        raw(&w, ",\"suspicions\":[");
        for (int i = 0; i < room->n_suspicions; i++) {
            if (i)
                raw(&w, ",");
            suspicion(&w, room, &room->suspicions[i]);
        }
        raw(&w, "],\"suspicions_dropped\":");
        integer(&w, room->suspicions_dropped);
    }
    if (with_type) {
        raw(&w, ",\"type\":\"state\",\"you\":");
        string(&w, att_role_name(viewer));
    }
    raw(&w, "}");
    return w.failed ? -1 : 0;
}

int att_state_hash(const att_room *room, char hex_out[65], att_error *err)
{
    att_buf text = {0};
    if (att_state_write(room, ATT_ROLE_THERAPIST, 0, &text) != 0) {
        att_buf_free(&text);
        return att_fail(err, ATT_ERR_INTERNAL, "state: out of memory");
    }
    unsigned char md[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)text.data, text.len, md);
    att_buf_free(&text);
    static const char hex[] = "0123456789abcdef";
    for (int i = 0; i < SHA256_DIGEST_LENGTH; i++) {
        hex_out[2 * i] = hex[md[i] >> 4];
        hex_out[2 * i + 1] = hex[md[i] & 15];
    }
    hex_out[64] = '\0';
    return 0;
}
