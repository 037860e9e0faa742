/* test_blame.c - the blame classifier (blame.h) with the real rule files:
 * table-driven cases for each guard and rule family in every language
 * (negation, reflection, first person, apology, affection, profanity,
 * sarcasm, name-calling, criticism vs contempt), folding (case, accents,
 * apostrophes, repeated letters), arbitrary bytes and lengths; then rule files
 * that must be rejected, each with an error naming the file and the problem. */
#include "check.h"

#include "attune/blame.h"
#include "attune/names.h"
#include "attune/catalog.h"

#include <stdlib.h>
#include <string.h>

#define N ATT_BLAME_NONE
#define C ATT_BLAME_CRITICISM
#define X ATT_BLAME_CONTEMPT

typedef struct {
    const char *lang;
    att_blame_class want;
    const char *text;
} blame_case;

static const blame_case cases[] = {
    /* ---- English ---- */
    /* criticism: absolutes, with and without the verb between */
    {"en", C, "You never listen to me."},
    {"en", C, "you always do this"},
    {"en", C, "You're always on your phone."},
    {"en", C, "You are never home."},
    {"en", C, "You've never once said thank you."},
    {"en", C, "ur always late"},
    {"en", C, "u never call"},
    /* criticism without an absolute */
    {"en", C, "You don't care about me."},
    {"en", C, "You dont listen."},
    {"en", C, "You only care about yourself."},
    {"en", C, "It's all your fault."},
    {"en", C, "Because of you we missed it."},
    {"en", C, "You're so selfish."},
    {"en", C, "You are completely irresponsible."},
    {"en", C, "You're just like your mother."},
    {"en", C, "You ruined the evening."},
    {"en", C, "Why can't you ever help?"},
    {"en", C, "Stop being so lazy."},
    /* contempt: name-calling, profanity, disgust, mockery, dismissal */
    {"en", X, "You're an idiot."},
    {"en", X, "You stupid jerk."},
    {"en", X, "Idiot."},
    {"en", X, "What a loser."},
    {"en", X, "You're a joke."},
    {"en", X, "Fuck you."},
    {"en", X, "Fuck off!"},
    {"en", X, "You're fucking useless."},
    {"en", X, "Shut up."},
    {"en", X, "Grow up."},
    {"en", X, "You disgust me."},
    {"en", X, "You make me sick."},
    {"en", X, "What's wrong with you?"},
    {"en", X, "*rolls eyes*"},
    {"en", X, "\xf0\x9f\x99\x84"},                     /* U+1F644 face with rolling eyes */
    {"en", X, "ok \xf0\x9f\x99\x84\xef\xb8\x8f fine"}, /* with a variation selector */
    {"en", X, "Whatever."},
    {"en", X, "Pathetic."},
    {"en", X, "How typical."},
    /* sarcasm */
    {"en", X, "Good job, Einstein."},
    {"en", X, "Wow, you're a real genius."},
    {"en", X, "Oh wonderful, you remembered for once."},
    {"en", X, "Sure, like you would ever cook."},
    {"en", X, "Thanks for nothing."},
    {"en", X, "Yeah, right."},
    /* contempt wins over criticism in the same text */
    {"en", X, "You never listen, you idiot."},
    {"en", X, "You always do this. Pathetic."},
    /* negation */
    {"en", N, "It's not your fault."},
    {"en", N, "It wasn't your fault."},
    {"en", N, "You're not lazy."},
    {"en", N, "I don't think you're selfish."},
    {"en", N, "I never said you were lazy."},
    {"en", N, "Nobody thinks you're stupid."},
    {"en", N, "You're not crazy for feeling that."},
    /* reflections and paraphrases */
    {"en", N, "What I heard is that you feel I never listen."},
    {"en", N, "It sounds like you think I'm always on my phone."},
    {"en", N, "You feel like I don't care about you."},
    {"en", N, "So you're saying you're tired of always cooking."},
    {"en", N, "If I understand you, you never felt heard."},
    /* first-person self-talk, third parties */
    {"en", N, "I felt stupid."},
    {"en", N, "I'm such an idiot."},
    {"en", N, "I was an idiot last night."},
    {"en", N, "I'm so lazy today."},
    {"en", N, "My boss is an idiot."},
    {"en", N, "He's such a jerk to me at work."},
    {"en", N, "You think I'm stupid."},
    /* apologies */
    {"en", N, "I'm sorry I was so selfish."},
    {"en", N, "I'm sorry I called you lazy."},
    {"en", N, "I shouldn't have called you an idiot."},
    {"en", N, "Sorry for being so cold."},
    {"en", C, "You never apologize."},             /* an apology word, but not the speaker's */
    {"en", C, "I'm sorry, but you never listen."}, /* but starts a new clause */
    {"en", X, "No, you're an idiot."},             /* a comma ends a negator's reach */
    {"en", X, "Whatever, I don't care."},
    /* affection and praise */
    {"en", N, "You always make me laugh."},
    {"en", N, "You're so kind."},
    {"en", N, "You're always so patient with me."},
    {"en", N, "You never fail to make me smile."},
    {"en", N, "You're always there for me."},
    {"en", N, "Thank you for always making coffee."},
    {"en", C, "You're never there for me."}, /* praise under a negator is no praise */
    {"en", C, "You never make me laugh anymore."},
    {"en", C, "You always make me laugh, but you never listen."},
    /* soft start-ups and litotes */
    {"en", N, "When you turn away, I feel alone."},
    {"en", N, "It hurts when you don't call."},
    {"en", N, "You've never made me feel small."},
    /* ordinary words the old lexicon flagged */
    {"en", N, "Let's have a lazy Sunday."},
    {"en", N, "I'm crazy about you."},
    {"en", N, "Whatever you need, I'm here."},
    {"en", N, "Can we slow down?"},
    {"en", N, "I need a pause."},
    {"en", N, ""},
    {"en", N, "   ...!!!"},
    /* folding: case, typographic apostrophes, repeated letters, texting */
    {"en", C, "YOU NEVER LISTEN"},
    {"en", C, "you\xe2\x80\x99re so selfish"}, /* U+2019 */
    {"en", C, "youre sooo selfish"},
    {"en", C, "you neverrrr listen"},
    {"en", X, "\xe2\x80\x9cidiot\xe2\x80\x9d"}, /* curly quotes */

    /* ---- Spanish ---- */
    {"es", C, "Nunca me escuchas."},
    {"es", C, "Siempre haces lo mismo."},
    {"es", C, "Tú siempre llegas tarde."},
    {"es", C, "Eres un egoísta."},
    {"es", C, "Es culpa tuya."},
    {"es", C, "No te importa nada."},
    {"es", C, "Solo piensas en ti."},
    {"es", C, "Eres igual que tu padre."},
    {"es", X, "Eres un idiota."},
    {"es", X, "ERES UN IMBÉCIL"}, /* accented capitals */
    {"es", X, "Qué patético eres."},
    {"es", X, "Cállate."},
    {"es", X, "Vete a la mierda."},
    {"es", X, "Me das asco."},
    {"es", X, "Sí, claro, tú siempre tan perfecto."},
    {"es", X, "¡Idiota!"},
    {"es", N, "No es tu culpa."},
    {"es", N, "No eres egoísta."},
    {"es", N, "Nunca dije que fueras un vago."},
    {"es", N, "Lo que escucho es que sientes que nunca te escucho."},
    {"es", N, "Me siento estúpida."},
    {"es", N, "Soy un idiota."},
    {"es", N, "Perdón por llamarte egoísta."},
    {"es", N, "Lo siento, fui muy egoísta."},
    {"es", N, "Siempre me haces reír."},
    {"es", N, "Siempre estás ahí para mí."},
    {"es", N, "Me duele cuando no me miras."},
    {"es", C, "Lo siento, pero nunca me escuchas."},

    /* ---- French ---- */
    {"fr", C, "Tu ne m'écoutes jamais."},
    {"fr", C, "Tu ne m\xe2\x80\x99\xc3\xa9\x63outes jamais."}, /* U+2019, é */
    {"fr", C, "Tu fais toujours la même chose."},
    {"fr", C, "T'es vraiment égoïste."},
    {"fr", C, "C'est de ta faute."},
    {"fr", C, "Tu ne m'écoutes pas."},
    {"fr", C, "Tu t'en fiches de moi."},
    {"fr", C, "Tu ne penses qu'à toi."},
    {"fr", X, "T'es vraiment con."},
    {"fr", X, "Espèce d'idiot."},
    {"fr", X, "ESPÈCE D'IDIOT"},
    {"fr", X, "Tais-toi."},
    {"fr", X, "Va te faire foutre."},
    {"fr", X, "Tu me dégoûtes."},
    {"fr", X, "C'est ça, toi tu es parfait, bien sûr."},
    {"fr", N, "Ce n'est pas ta faute."},
    {"fr", N, "Tu n'es pas égoïste."},
    {"fr", N, "Je n'ai jamais dit que tu étais égoïste."},
    {"fr", N, "Ce que j'entends, c'est que tu as l'impression que je ne t'écoute jamais."},
    {"fr", N, "Je me sens tellement bête."},
    {"fr", N, "Je suis nulle, je sais."},
    {"fr", N, "Pardon de t'avoir traité d'égoïste."},
    {"fr", N, "Tu me fais toujours rire."},
    {"fr", N, "Je t'aime."},
    {"fr", N, "Tu as raison, je ne t'écoutais pas."},
    {"fr", N, "Ça me fait mal quand tu ne me regardes pas."},

    /* ---- German ---- */
    {"de", C, "Du hörst mir nie zu."},
    {"de", C, "DU HÖRST MIR NIE ZU"},
    {"de", C, "Du hoerst mir nie zu, niemals."},
    {"de", C, "Immer musst du recht haben."},
    {"de", C, "Du bist so egoistisch."},
    {"de", C, "Das ist alles deine Schuld."},
    {"de", C, "Du hörst mir nicht zu."},
    {"de", C, "Dir bin ich doch egal."},
    {"de", C, "Du denkst nur an dich selbst."},
    {"de", X, "Du bist so ein Idiot."},
    {"de", X, "Du Arschloch."},
    {"de", X, "Halt die Klappe."},
    {"de", X, "Verpiss dich."},
    {"de", X, "Du kotzt mich an."},
    {"de", X, "Ja klar, du bist ja so perfekt."},
    {"de", X, "Das ist mir SCHEISSEGAL, du Idiot."},
    {"de", N, "Es ist nicht deine Schuld."},
    {"de", N, "Du bist kein schlechter Vater."},
    {"de", N, "Ich habe nie gesagt, dass du egoistisch bist."},
    {"de", N, "Was ich höre, ist, dass du das Gefühl hast, dass ich dir nie zuhöre."},
    {"de", N, "Ich fühle mich so dumm."},
    {"de", N, "Ich bin so ein Idiot."},
    {"de", N, "Entschuldige, dass ich dich egoistisch genannt habe."},
    {"de", N, "Du bringst mich immer zum Lachen."},
    {"de", N, "Du bist immer für mich da."},
    {"de", N, "Es tut mir weh, wenn du mich nicht ansiehst."},
    {"de", C, "Es tut mir leid, aber du hörst mir nie zu."},
};

static void test_cases(const att_catalog *cat)
{
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const blame_case *c = &cases[i];
        const att_blame_lang *lang = att_catalog_blame_lang(cat, c->lang);
        CHECK_MSG(lang != NULL, "no rules for %s", c->lang);
        int rule = -2;
        att_blame_class got = att_blame_classify(lang, c->text, strlen(c->text), &rule);
        const char *gn = att_blame_class_name(got), *wn = att_blame_class_name(c->want);
        CHECK_MSG(got == c->want, "[%s] '%s': want %s, got %s (rule %d: %s)", c->lang, c->text,
                  wn ? wn : "none", gn ? gn : "none", rule,
                  rule >= 0 ? att_blame_lang_rule_pattern(lang, (size_t)rule) : "-");
        CHECK(got == ATT_BLAME_NONE ? rule == -1 : rule >= 0);
        /* the catalog's entry point agrees */
        CHECK(att_catalog_blame_classify(cat, c->lang, c->text) == got);
    }
}

/* Only len bytes are read; bytes past it, a NUL inside, invalid UTF-8 and
 * very long input are all fine. */
static void test_bytes(const att_catalog *cat)
{
    const att_blame_lang *en = att_catalog_blame_lang(cat, "en");
    const char *t = "You never listen";
    CHECK(att_blame_classify(en, t, 9, NULL) == ATT_BLAME_CRITICISM); /* "You never" */
    CHECK(att_blame_classify(en, t, 3, NULL) == ATT_BLAME_NONE);
    CHECK(att_blame_classify(en, t, 0, NULL) == ATT_BLAME_NONE);
    CHECK(att_blame_classify(en, "idiot\0 ignored", 14, NULL) == ATT_BLAME_CONTEMPT);
    CHECK(att_blame_classify(en, "fine\0you idiot", 14, NULL) == ATT_BLAME_CONTEMPT);
    CHECK(att_blame_classify(NULL, t, strlen(t), NULL) == ATT_BLAME_NONE);
    int rule = 5;
    CHECK(att_blame_classify(en, NULL, 10, &rule) == ATT_BLAME_NONE && rule == -1);
    /* a UTF-8 sequence cut by len, lone continuation bytes, overlong forms */
    static const char *const junk[] = {
        "\xc3",         "\xe2\x80",         "\xf0\x9f\x99", "\x80\x80\x80you", "\xc0\xafyou",
        "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xff\xfe",     "you\xc3",
    };
    for (size_t i = 0; i < sizeof junk / sizeof junk[0]; i++)
        CHECK(att_blame_classify(en, junk[i], strlen(junk[i]), NULL) == ATT_BLAME_NONE);
    /* invalid bytes are boundaries: the words around them still count */
    CHECK(att_blame_classify(en,
                             "you\xff"
                             "idiot",
                             9, NULL) == ATT_BLAME_CONTEMPT);

    /* 8000 bytes of one sentence (more tokens than one window holds) */
    size_t n = 8000;
    char *big = malloc(n + 1);
    if (!big) {
        CHECK(0);
        return;
    }
    for (size_t i = 0; i < n; i += 2)
        memcpy(big + i, "a ", 2);
    big[n] = 0;
    CHECK(att_blame_classify(en, big, n, NULL) == ATT_BLAME_NONE);
    memcpy(big + n - 10, "you idiot ", 10);
    CHECK(att_blame_classify(en, big, n, NULL) == ATT_BLAME_CONTEMPT);
    /* a reflection opener at the start still covers the rest of a long
     * sentence that spans several windows */
    memcpy(big, "it sounds like ", 15);
    CHECK(att_blame_classify(en, big, n, NULL) == ATT_BLAME_NONE);
    /* one enormous word */
    memset(big, 'x', n);
    CHECK(att_blame_classify(en, big, n, NULL) == ATT_BLAME_NONE);
    memcpy(big, "idiot", 5); /* a long word that starts like an insult is no insult */
    CHECK(att_blame_classify(en, big, n, NULL) == ATT_BLAME_NONE);
    /* every byte value, in every language */
    for (size_t i = 0; i < n; i++)
        big[i] = (char)(i * 37 % 256);
    static const char *const langs[] = {"en", "es", "fr", "de"};
    for (size_t l = 0; l < 4; l++) {
        att_blame_class c = att_catalog_blame_classify(cat, langs[l], "x");
        CHECK(c == ATT_BLAME_NONE);
        c = att_blame_classify(att_catalog_blame_lang(cat, langs[l]), big, n, NULL);
        CHECK(c == ATT_BLAME_NONE || c == ATT_BLAME_CRITICISM || c == ATT_BLAME_CONTEMPT);
    }
    free(big);
}

/* ---- rule files that must be rejected --------------------------------------- */

#define MINIMAL_LEXICONS                                                                           \
    "\"second_person\": [\"you\"], \"first_person\": [\"i\"], \"third_person\": [\"he\"], "        \
    "\"negators\": [\"not\"], \"reflection_openers\": [\"it sounds like\"], "                      \
    "\"apology_markers\": [\"sorry\"], \"praise\": [\"kind\"], \"clause_breaks\": [\"but\"]"

static const char *compile_error(const char *json)
{
    static att_error err;
    memset(&err, 0, sizeof err);
    json_error_t jerr;
    json_t *root = json_loads(json, 0, &jerr);
    if (!root)
        return "(test JSON does not parse)";
    att_blame_lang *lang = NULL;
    int rc = att_blame_lang_compile(root, "vocab/blame/xx.json", &lang, &err);
    json_decref(root);
    att_blame_lang_free(lang);
    if (rc == 0)
        return NULL;
    CHECK(lang == NULL);
    CHECK_INT(err.code, ATT_ERR_BAD_MESSAGE);
    CHECK_MSG(strncmp(err.message, "vocab/blame/xx.json: ", 21) == 0, "no file in '%s'",
              err.message);
    return err.message;
}

static void expect_bad(const char *json, const char *problem)
{
    const char *msg = compile_error(json);
    CHECK_MSG(msg != NULL, "accepted: %s", json);
    if (msg)
        CHECK_MSG(strstr(msg, problem) != NULL, "'%s' lacks '%s'", msg, problem);
}

/* jansson rejects invalid UTF-8 in JSON text, but a json_t built in code may
 * hold it. */
static void test_bad_utf8(void)
{
    json_t *root = json_pack(
        "{s:s, s:i, s:{s:[s], s:[s], s:[s], s:[s], s:[s], s:[s], s:[s], s:[s], "
        "s:[o]}, s:[{s:s, s:s}]}",
        "lang", "xx", "negation_window", 2, "lexicons", "second_person", "you", "first_person", "i",
        "third_person", "he", "negators", "not", "reflection_openers", "it sounds like",
        "apology_markers", "sorry", "praise", "kind", "clause_breaks", "but", "bad",
        json_stringn_nocheck("\xc3", 1), "rules", "class", "criticism", "pattern", "@bad");
    CHECK(root != NULL);
    att_blame_lang *lang = NULL;
    att_error err = {0};
    CHECK(att_blame_lang_compile(root, "vocab/blame/xx.json", &lang, &err) ==
          -(int)ATT_ERR_BAD_MESSAGE);
    CHECK_MSG(strstr(err.message, "lexicons.bad[0]") && strstr(err.message, "invalid UTF-8"), "%s",
              err.message);
    CHECK(lang == NULL);
    json_decref(root);
}

static void test_bad_files(void)
{
    /* a minimal valid file compiles and works */
    const char *ok = "{\"lang\": \"xx\", \"negation_window\": 2, \"lexicons\": {" MINIMAL_LEXICONS
                     ", \"bad\": [\"selfish\", \"mean*\"]}, \"rules\": [{\"class\": "
                     "\"criticism\", \"pattern\": \"@second_person ~2 @bad\"}]}";
    CHECK_MSG(compile_error(ok) == NULL, "%s", compile_error(ok));
    json_t *root = json_loads(ok, 0, NULL);
    att_blame_lang *lang = NULL;
    att_error err = {0};
    CHECK(att_blame_lang_compile(root, "x", &lang, &err) == 0);
    json_decref(root); /* the compiled rules keep nothing of the JSON */
    CHECK_STR(att_blame_lang_tag(lang), "xx");
    CHECK_INT(att_blame_lang_rule_count(lang), 1);
    CHECK_STR(att_blame_lang_rule_pattern(lang, 0), "@second_person ~2 @bad");
    CHECK(att_blame_lang_rule_pattern(lang, 1) == NULL);
    CHECK(att_blame_classify(lang, "you are so meaner", 17, NULL) == ATT_BLAME_CRITICISM);
    CHECK(att_blame_classify(lang, "you are not selfish", 19, NULL) == ATT_BLAME_NONE);
    CHECK(att_blame_classify(lang, "you i selfish", 13, NULL) == ATT_BLAME_NONE);
    att_blame_lang_free(lang);
    att_blame_lang_free(NULL);

#define FILE_WITH(lexicons, rules)                                                                 \
    "{\"lang\": \"xx\", \"negation_window\": 2, \"lexicons\": {" lexicons "}, \"rules\": [" rules  \
    "]}"
#define RULE(p) "{\"class\": \"criticism\", \"pattern\": \"" p "\"}"
    expect_bad("[1]", "top level must be an object");
    expect_bad("{\"lang\": \"english\"}", "'lang' must be a 2- or 3-letter");
    expect_bad("{\"lang\": \"xx\", \"colour\": 1}", "unknown member 'colour'");
    expect_bad("{\"lang\": \"xx\", \"negation_window\": 9}", "'negation_window' must be");
    expect_bad("{\"lang\": \"xx\", \"negation_window\": 2}", "missing 'lexicons'");
    expect_bad(FILE_WITH("\"second_person\": [\"you\"]", RULE("you")),
               "lexicons: missing 'first_person'");
    expect_bad(FILE_WITH(MINIMAL_LEXICONS ", \"Bad\": [\"x\"]", RULE("you")),
               "lexicons.Bad: a lexicon name is");
    expect_bad(FILE_WITH(MINIMAL_LEXICONS ", \"bad\": []", RULE("you")),
               "lexicons.bad: must be an array of 1..");
    expect_bad(FILE_WITH(MINIMAL_LEXICONS ", \"bad\": [\"ok\", 3]", RULE("you")),
               "lexicons.bad[1]: must be a string");
    expect_bad(FILE_WITH(MINIMAL_LEXICONS ", \"bad\": [\"Selfish\"]", RULE("you")),
               "lexicons.bad[0]: 'Selfish': must be lowercase");
    expect_bad(FILE_WITH(MINIMAL_LEXICONS ", \"bad\": [\"\xc3\x89go\xc3\xafste\"]", RULE("you")),
               "must be lowercase"); /* É */
    expect_bad(FILE_WITH(MINIMAL_LEXICONS ", \"bad\": [\"sel fish!\"]", RULE("you")),
               "only letters, digits, apostrophes, hyphens and emoji");
    expect_bad(FILE_WITH(MINIMAL_LEXICONS ", \"bad\": [\"a  b\"]", RULE("you")),
               "separated by single spaces");
    expect_bad(FILE_WITH(MINIMAL_LEXICONS ", \"bad\": [\"s*lfish\"]", RULE("you")),
               "'*' only at the end of a word");
    expect_bad(FILE_WITH(MINIMAL_LEXICONS ", \"bad\": [\"a b c d e f g h i\"]", RULE("you")),
               "more than 8 words");
    expect_bad(FILE_WITH(MINIMAL_LEXICONS ", \"bad\": [\"na\xc3\xafve\", \"naive\"]", RULE("you")),
               "lexicons.bad[1]: 'naive' is already in the lexicon (after folding)");
    expect_bad(FILE_WITH(MINIMAL_LEXICONS, ""), "'rules' must be an array of 1..");
    expect_bad(FILE_WITH(MINIMAL_LEXICONS, "{\"class\": \"rude\", \"pattern\": \"you\"}"),
               "rules[0]: unknown class 'rude'");
    expect_bad(FILE_WITH(MINIMAL_LEXICONS, "{\"pattern\": \"you\"}"), "rules[0]: missing 'class'");
    expect_bad(FILE_WITH(MINIMAL_LEXICONS, "{\"class\": \"contempt\"}"),
               "rules[0]: missing 'pattern'");
    expect_bad(FILE_WITH(MINIMAL_LEXICONS, "{\"class\": \"contempt\", \"pattern\": \"x\", "
                                           "\"why\": 1}"),
               "rules[0]: unknown member 'why'");
    expect_bad(FILE_WITH(MINIMAL_LEXICONS, RULE("you") "," RULE("@second_person @nope")),
               "rules[1]: unknown lexicon '@nope'");
    expect_bad(FILE_WITH(MINIMAL_LEXICONS, RULE("~2 you")), "a gap cannot start or end");
    expect_bad(FILE_WITH(MINIMAL_LEXICONS, RULE("you ~2")), "a gap cannot start or end");
    expect_bad(FILE_WITH(MINIMAL_LEXICONS, RULE("you ~9 x")), "a gap is ~1 .. ~8");
    expect_bad(FILE_WITH(MINIMAL_LEXICONS, RULE("you ~1 ~2 x")), "two gaps in a row");
    expect_bad(FILE_WITH(MINIMAL_LEXICONS, RULE("you ^")), "'^' only as the first element");
    expect_bad(FILE_WITH(MINIMAL_LEXICONS, RULE("$ you")), "'$' only as the last element");
    expect_bad(FILE_WITH(MINIMAL_LEXICONS, RULE("you? x?")), "at least one word or lexicon");
    expect_bad(FILE_WITH(MINIMAL_LEXICONS, RULE("you||x")), "empty alternative");
    expect_bad(FILE_WITH(MINIMAL_LEXICONS, RULE("you  x")), "separated by single spaces");
    expect_bad(FILE_WITH(MINIMAL_LEXICONS, RULE("tais-toi")), "must be one word");
    expect_bad("{\"lang\": \"xx\", \"negation_window\": 2, \"elisions\": [\"t\"]}",
               "elisions[0]: must be");
}

int main(void)
{
    att_catalog *cat = NULL;
    att_error err = {0};
    int rc = att_catalog_load_dir(ATTUNE_PROTOCOL_DIR, &cat, &err);
    CHECK_MSG(rc == 0, "load %s: %s", ATTUNE_PROTOCOL_DIR, err.message);
    if (rc == 0) {
        test_cases(cat);
        test_bytes(cat);
        att_catalog_free(cat);
    }
    test_bad_files();
    test_bad_utf8();
    return check_done("blame");
}
