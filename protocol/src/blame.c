/* blame.c - the rule-based blame classifier (see blame.h, and the data
 * format in protocol/vocab/blame/README.md).
 *
 * Compiled form: every word of every lexicon entry is folded and interned
 * (sorted, so a token's word id is one binary search); an entry is a short
 * sequence of items (a word id, or a prefix for "word*"); each literal word
 * set of a rule pattern ("always|never") becomes an anonymous lexicon, so a
 * pattern is a sequence of lexicon references and gaps.
 *
 * Classifying: the text is cut into sentences and each sentence into
 * windows of at most MAX_TOKENS folded tokens kept on the stack; a window is
 * cut into clauses at the clause_breaks words; each clause is matched against
 * every rule, with the guards described in the README (reflection openers,
 * the speaker's apologies, negators before a match or inside its gaps, first
 * and third person words, praise, veto rules). The answer is the strongest
 * class any clause gets (contempt > criticism > none). */
#include "attune/blame.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_TOKENS 128   /* tokens in one window of a sentence */
#define TOKEN_BYTES 48   /* folded bytes kept per token; longer ones only prefix-match */
#define MAX_ITEMS 8      /* words in one lexicon entry */
#define MAX_ELEMS 12     /* elements in one rule pattern */
#define MAX_GAP 8        /* the largest ~N */
#define MAX_LEXICONS 256 /* named and anonymous, per language */
#define LEX_WORDS (MAX_LEXICONS / 64)
#define MAX_NAMED 64
#define MAX_ENTRIES 1024 /* entries in one lexicon */
#define MAX_ENTRY_BYTES 96
#define MAX_RULES 512
#define MAX_PATTERN_BYTES 400
#define MAX_NEG_WINDOW 6
#define MAX_ELISIONS 16
#define ELISION_BYTES 8

/* ---- folding and tokenizing --------------------------------------------- */

enum { CH_WORD, CH_SEP, CH_APOS, CH_BREAK, CH_SKIP, CH_EMOJI };

/* U+00C0..U+00FF without accents; "" for the two non-letters. */
static const char *const fold_latin1[64] = {
    "a", "a", "a", "a", "a", "a", "ae", "c", "e", "e", "e", "e", "i", "i", "i",  "i",
    "d", "n", "o", "o", "o", "o", "o",  "",  "o", "u", "u", "u", "u", "y", "th", "ss",
    "a", "a", "a", "a", "a", "a", "ae", "c", "e", "e", "e", "e", "i", "i", "i",  "i",
    "d", "n", "o", "o", "o", "o", "o",  "",  "o", "u", "u", "u", "u", "y", "th", "y",
};

/* U+0100..U+017F (Latin Extended-A) without accents, one letter each except
 * U+0132/0133 (ij) and U+0152/0153 (oe), handled apart. */
static const char fold_ext_a[129] = "aaaaaaccccccccddddeeeeeeeeeegggggggghhhhiiiiiiiiii__"
                                    "jjkkklllllllllllnnnnnnnnnoooooo__rrrrrrssssssssttttttuuuuuu"
                                    "uuuuuuwwyyyzzzzzzs";

/* Decodes one UTF-8 sequence at s[*i] (strictly: no overlong forms, no
 * surrogates, nothing above U+10FFFF); advances *i and returns the code
 * point, or -1 after one byte of an invalid sequence. */
static long decode(const unsigned char *s, size_t len, size_t *i)
{
    unsigned c = s[*i];
    if (c < 0x80) {
        (*i)++;
        return c;
    }
    size_t need;
    long cp;
    unsigned lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) {
        need = 1;
        cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
        need = 2;
        cp = c & 0x0F;
        if (c == 0xE0)
            lo = 0xA0;
        if (c == 0xED)
            hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        need = 3;
        cp = c & 0x07;
        if (c == 0xF0)
            lo = 0x90;
        if (c == 0xF4)
            hi = 0x8F;
    } else {
        (*i)++;
        return -1;
    }
    if (len - *i <= need) {
        (*i)++;
        return -1;
    }
    for (size_t k = 1; k <= need; k++) {
        unsigned b = s[*i + k];
        if (b < (k == 1 ? lo : 0x80) || b > (k == 1 ? hi : 0xBF)) {
            (*i)++;
            return -1;
        }
        cp = (cp << 6) | (b & 0x3F);
    }
    *i += need + 1;
    return cp;
}

/* Reads one character at s[*i]: its class, and for CH_WORD and CH_EMOJI the
 * bytes to append (folded, or the raw UTF-8 of an unfolded character). */
static int read_char(const unsigned char *s, size_t len, size_t *i, char out[4], size_t *out_len)
{
    size_t start = *i;
    long cp = decode(s, len, i);
    *out_len = 0;
    if (cp < 0)
        return CH_SEP;
    if (cp < 0x80) {
        if ((cp >= 'a' && cp <= 'z') || (cp >= '0' && cp <= '9')) {
            out[0] = (char)cp;
            *out_len = 1;
            return CH_WORD;
        }
        if (cp >= 'A' && cp <= 'Z') {
            out[0] = (char)(cp - 'A' + 'a');
            *out_len = 1;
            return CH_WORD;
        }
        if (cp == '\'' || cp == '`')
            return CH_APOS;
        if (cp == '.' || cp == '!' || cp == '?' || cp == ';' || cp == '\n' || cp == '\r')
            return CH_BREAK;
        return CH_SEP;
    }
    if (cp < 0xA0)
        return CH_SEP;
    if (cp < 0xC0) {
        if (cp == 0xA1 || cp == 0xBF) /* inverted ! and ? open a sentence */
            return CH_BREAK;
        return cp == 0xB4 ? CH_APOS : CH_SEP;
    }
    if (cp < 0x100) {
        const char *f = fold_latin1[cp - 0xC0];
        if (!*f)
            return CH_SEP;
        *out_len = strlen(f);
        memcpy(out, f, *out_len);
        return CH_WORD;
    }
    if (cp < 0x180) {
        if (cp == 0x132 || cp == 0x133) {
            memcpy(out, "ij", 2);
            *out_len = 2;
        } else if (cp == 0x152 || cp == 0x153) {
            memcpy(out, "oe", 2);
            *out_len = 2;
        } else {
            out[0] = fold_ext_a[cp - 0x100];
            *out_len = 1;
        }
        return CH_WORD;
    }
    if ((cp >= 0x300 && cp <= 0x36F) || (cp >= 0xFE00 && cp <= 0xFE0F) ||
        (cp >= 0x1F3FB && cp <= 0x1F3FF))
        return CH_SKIP; /* combining accents, variation selectors, skin tones */
    if (cp == 0x2BC || cp == 0x2018 || cp == 0x2019 || cp == 0x201B || cp == 0x2032)
        return CH_APOS;
    if (cp == 0x2026)
        return CH_BREAK;
    if ((cp >= 0x2000 && cp <= 0x22FF) || (cp >= 0x2E00 && cp <= 0x2E7F) ||
        (cp >= 0x3000 && cp <= 0x303F) || cp == 0xFEFF || (cp >= 0xFF00 && cp <= 0xFF0F))
        return CH_SEP;
    *out_len = *i - start;
    memcpy(out, s + start, *out_len);
    if ((cp >= 0x2300 && cp <= 0x23FF) || (cp >= 0x2600 && cp <= 0x27BF) ||
        (cp >= 0x2B00 && cp <= 0x2BFF) || (cp >= 0x1F000 && cp <= 0x1FAFF))
        return CH_EMOJI;
    return CH_WORD;
}

typedef struct {
    char text[TOKEN_BYTES];
    uint8_t len;
    uint8_t truncated; /* longer than TOKEN_BYTES: never an exact match */
    uint8_t pause;     /* a comma, colon, dash or bracket comes before it */
    int32_t id;        /* interned word id, or -1 */
} token;

/* A token being built: appends folded bytes, collapsing runs of three or
 * more of the same ASCII letter to one. */
typedef struct {
    token *t;
    char run;
    int run_len;
} builder;

static void end_run(builder *b)
{
    if (b->run_len >= 3 && b->t->len > 0 && !b->t->truncated)
        b->t->len--; /* "ooo" was kept as "oo"; keep one */
    b->run = 0;
    b->run_len = 0;
}

static void append(builder *b, const char *bytes, size_t n)
{
    token *t = b->t;
    for (size_t k = 0; k < n; k++) {
        char c = bytes[k];
        if (c >= 'a' && c <= 'z' && c == b->run) {
            if (++b->run_len >= 3)
                continue;
        } else {
            end_run(b);
            if (c >= 'a' && c <= 'z') {
                b->run = c;
                b->run_len = 1;
            }
        }
        if (t->len >= TOKEN_BYTES) {
            t->truncated = 1;
            continue;
        }
        t->text[t->len++] = c;
    }
}

/* Punctuation inside a sentence that stops a negator's reach ("No, you're
 * wrong"; "you never listen, you idiot"): , : ( ) " - and the dashes and
 * quotation marks U+2013/2014, U+201C/201D, U+00AB/00BB. */
static int is_pause(const unsigned char *c, size_t n)
{
    if (n == 1)
        return c[0] == ',' || c[0] == ':' || c[0] == '(' || c[0] == ')' || c[0] == '"' ||
               c[0] == '-';
    if (n == 2)
        return c[0] == 0xC2 && (c[1] == 0xAB || c[1] == 0xBB);
    return n == 3 && c[0] == 0xE2 && c[1] == 0x80 &&
           (c[2] == 0x93 || c[2] == 0x94 || c[2] == 0x9C || c[2] == 0x9D);
}

/* Reads tokens from s[*pos] into toks until a sentence ends (then *pos is
 * past its end mark) or max tokens are read. Returns the count; *more is 1
 * when the window filled up before the sentence ended. */
static size_t tokenize(const unsigned char *s, size_t len, size_t *pos, token *toks, size_t max,
                       int *more)
{
    size_t n = 0, i = *pos;
    builder b = {NULL, 0, 0};
    int pause = 0;
    *more = 0;
    while (i < len) {
        char out[4];
        size_t olen;
        size_t at = i;
        int cls = read_char(s, len, &i, out, &olen);
        if (cls == CH_SKIP)
            continue;
        if (cls == CH_WORD) {
            if (!b.t) {
                if (n == max) {
                    i = at;
                    *more = 1;
                    break;
                }
                b.t = &toks[n++];
                b.t->len = 0;
                b.t->truncated = 0;
                b.t->pause = (uint8_t)pause;
                b.t->id = -1;
                pause = 0;
                b.run = 0;
                b.run_len = 0;
            }
            append(&b, out, olen);
            continue;
        }
        if (cls == CH_APOS && b.t && i < len) {
            size_t j = i;
            char o2[4];
            size_t l2;
            if (read_char(s, len, &j, o2, &l2) == CH_WORD) {
                append(&b, "'", 1);
                continue;
            }
        }
        if (b.t) {
            end_run(&b);
            b.t = NULL;
        }
        if (cls == CH_BREAK)
            break;
        if (cls == CH_SEP && is_pause(s + at, i - at))
            pause = 1;
        if (cls == CH_EMOJI) {
            if (n == max) {
                i = at;
                *more = 1;
                break;
            }
            token *t = &toks[n++];
            memcpy(t->text, out, olen);
            t->len = (uint8_t)olen;
            t->truncated = 0;
            t->pause = (uint8_t)pause;
            t->id = -1;
            pause = 0;
        }
    }
    if (b.t)
        end_run(&b);
    *pos = i;
    return n;
}

/* ---- compiled form -------------------------------------------------------- */

typedef struct {
    int32_t id; /* exact word id; -1 for a prefix */
    uint8_t plen;
    char prefix[TOKEN_BYTES];
} item;

typedef struct {
    uint32_t first_item; /* into lang->items */
    uint8_t n_items;
    int32_t key; /* for sorting: the first item's word id, INT32_MAX for a prefix */
} entry;

typedef struct {
    char *name;              /* NULL for an anonymous (literal) lexicon */
    char *literal;           /* the pattern text of an anonymous one */
    uint32_t first, n_exact; /* entries [first, first + n_exact) start with a word,
                              * sorted by its id */
    uint32_t n_prefix;       /* then n_prefix entries that start with a prefix */
} lexicon;

enum { EL_LEX, EL_GAP };

typedef struct {
    uint8_t kind;
    uint8_t optional;
    uint8_t gap; /* EL_GAP: up to this many tokens */
    uint16_t lex;
} element;

typedef struct {
    att_blame_class cls;
    int veto; /* class "none": cancels criticism in its clause */
    int anchored_start, anchored_end;
    int targeted; /* mentions @second_person */
    element el[MAX_ELEMS];
    size_t n_el;
    char *pattern;
} rule;

enum { G_SECOND, G_FIRST, G_THIRD, G_NEG, G_REFLECT, G_APOLOGY, G_PRAISE, G_BREAK, N_GUARDS };
static const char *const guard_names[N_GUARDS] = {
    "second_person",      "first_person",    "third_person", "negators",
    "reflection_openers", "apology_markers", "praise",       "clause_breaks",
};

struct att_blame_lang {
    char tag[8];
    int neg_window;
    /* elided words split off the word they lean on ("t'es" -> "t'" "es") */
    char elision[MAX_ELISIONS][ELISION_BYTES];
    uint8_t elision_len[MAX_ELISIONS];
    size_t n_elisions;
    char **words; /* sorted, unique */
    uint8_t *word_len;
    size_t n_words;
    item *items;
    size_t n_items, cap_items;
    entry *entries;
    size_t n_entries, cap_entries;
    lexicon lex[MAX_LEXICONS];
    size_t n_lex;
    uint16_t guard[N_GUARDS];
    /* word id -> lexicons with an entry starting with that word:
     * word_lex[word_lex_at[w] .. word_lex_at[w + 1]) */
    uint32_t *word_lex_at;
    uint16_t *word_lex;
    /* entries starting with a prefix, bucketed by the prefix's first byte:
     * pre[pre_at[c] .. pre_at[c + 1]) */
    uint32_t pre_at[257];
    uint32_t *pre; /* entry index */
    uint16_t *pre_lex;
    size_t n_pre;
    rule *rules;
    size_t n_rules;
};

/* Splits the tokens that start with an elision ("t'es" -> "t'" "es"), in
 * place; toks has room for max tokens, and n <= max / 2 when the language
 * has elisions, so every token can split. Returns the new count. */
static size_t split_elisions(const att_blame_lang *L, token *toks, size_t n, size_t max)
{
    if (L->n_elisions == 0)
        return n;
    uint8_t cut[MAX_TOKENS];
    size_t extra = 0;
    for (size_t i = 0; i < n; i++) {
        cut[i] = 0;
        for (size_t e = 0; e < L->n_elisions && !toks[i].truncated; e++)
            if (toks[i].len > L->elision_len[e] &&
                memcmp(toks[i].text, L->elision[e], L->elision_len[e]) == 0) {
                cut[i] = L->elision_len[e];
                break;
            }
        extra += cut[i] != 0;
    }
    if (extra == 0 || n + extra > max)
        return n;
    size_t dst = n + extra;
    for (size_t i = n; i-- > 0;) {
        token t = toks[i];
        if (!cut[i]) {
            toks[--dst] = t;
            continue;
        }
        token *rest = &toks[--dst];
        *rest = t;
        rest->len = (uint8_t)(t.len - cut[i]);
        rest->pause = 0;
        memmove(rest->text, t.text + cut[i], rest->len);
        token *head = &toks[--dst];
        *head = t;
        head->len = cut[i];
    }
    return n + extra;
}

/* ---- classifying ---------------------------------------------------------- */

static int32_t word_id(const att_blame_lang *L, const char *w, size_t len)
{
    size_t lo = 0, hi = L->n_words;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const char *m = L->words[mid];
        size_t mlen = L->word_len ? L->word_len[mid] : strlen(m);
        int c = memcmp(m, w, mlen < len ? mlen : len);
        if (c == 0)
            c = mlen < len ? -1 : mlen > len ? 1 : 0;
        if (c == 0)
            return (int32_t)mid;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -1;
}

static int item_matches(const item *it, const token *t)
{
    if (it->id >= 0)
        return it->id == t->id;
    return t->len >= it->plen && memcmp(t->text, it->prefix, it->plen) == 0;
}

/* The window's tokens and what is known about each. */
typedef struct {
    const att_blame_lang *L;
    token *toks;
    size_t n;
    uint64_t (*hits)[LEX_WORDS];    /* lexicons with an entry whose first item matches */
    uint8_t *neg, *person, *second; /* a negator / first or third person / second
                                     * person word starts here */
} window;

static int entry_at(const att_blame_lang *L, const entry *e, const token *toks, size_t p,
                    size_t end)
{
    if (p + e->n_items > end)
        return 0;
    for (size_t k = 1; k < e->n_items; k++)
        if (!item_matches(&L->items[e->first_item + k], &toks[p + k]))
            return 0;
    return 1;
}

/* Bit k set when an entry of lexicon lx of k + 1 words matches at p (and
 * ends by end). */
static unsigned lex_at(const window *w, unsigned lx, size_t p, size_t end)
{
    if (p >= end || !(w->hits[p][lx / 64] >> (lx % 64) & 1))
        return 0;
    const att_blame_lang *L = w->L;
    const lexicon *x = &L->lex[lx];
    const token *t = &w->toks[p];
    unsigned mask = 0;
    if (t->id >= 0) {
        size_t lo = x->first, hi = x->first + x->n_exact;
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            if (L->items[L->entries[mid].first_item].id < t->id)
                lo = mid + 1;
            else
                hi = mid;
        }
        for (size_t e = lo;
             e < x->first + x->n_exact && L->items[L->entries[e].first_item].id == t->id; e++)
            if (entry_at(L, &L->entries[e], w->toks, p, end))
                mask |= 1u << (L->entries[e].n_items - 1);
    }
    for (size_t e = x->first + x->n_exact; e < x->first + x->n_exact + x->n_prefix; e++)
        if (item_matches(&L->items[L->entries[e].first_item], t) &&
            entry_at(L, &L->entries[e], w->toks, p, end))
            mask |= 1u << (L->entries[e].n_items - 1);
    return mask;
}

/* Whether elements [k, n_el) of r match from p to a point <= end. */
static int match_from(const window *w, const rule *r, size_t k, size_t p, size_t end)
{
    if (k == r->n_el)
        return !r->anchored_end || p == end;
    const element *e = &r->el[k];
    if (e->kind == EL_GAP) {
        for (size_t g = 0; g <= e->gap && p + g <= end; g++) {
            if (g > 0 && !r->veto && (w->neg[p + g - 1] || w->person[p + g - 1]))
                break; /* a gap may not hold a negator or a first/third person word */
            if (match_from(w, r, k + 1, p + g, end))
                return 1;
        }
        return 0;
    }
    unsigned lens = lex_at(w, e->lex, p, end);
    for (unsigned l = MAX_ITEMS; l >= 1; l--)
        if (lens >> (l - 1) & 1 && match_from(w, r, k + 1, p + l, end))
            return 1;
    return e->optional && match_from(w, r, k + 1, p, end);
}

static int any_in(const uint8_t *flags, size_t from, size_t to)
{
    for (size_t i = from; i < to; i++)
        if (flags[i])
            return 1;
    return 0;
}

/* Whether a negator starts within the negation window before p (in the
 * clause starting at a) with no pause between it and p. */
static int negated_before(const window *w, size_t a, size_t p)
{
    size_t win = (size_t)w->L->neg_window;
    for (size_t q = p; q > a && p - q < win;) {
        if (w->toks[q].pause)
            return 0;
        q--;
        if (w->neg[q])
            return 1;
    }
    return 0;
}

/* What a clause carries into the next window when a sentence is longer than
 * one window. */
typedef struct {
    int reflection, apology, person;
} carry;

/* Classifies clause [a, b) of the window. */
static att_blame_class classify_clause(const window *w, size_t a, size_t b, carry *cy,
                                       int *rule_out)
{
    const att_blame_lang *L = w->L;
    const carry in = *cy;
    size_t reflect = in.reflection ? a : b; /* first reflection opener */
    int apology = in.apology, praise = 0;
    for (size_t p = a; p < b; p++) {
        if (reflect == b && lex_at(w, L->guard[G_REFLECT], p, b))
            reflect = p;
        if (!apology && lex_at(w, L->guard[G_APOLOGY], p, b) && !any_in(w->second, a, p))
            apology = 1; /* the speaker's own apology, not "you never apologize" */
        if (!praise && lex_at(w, L->guard[G_PRAISE], p, b))
            praise = !negated_before(w, a, p);
    }
    cy->reflection = reflect < b;
    cy->apology = apology;
    cy->person = in.person || any_in(w->person, a, b);
    if (apology)
        return ATT_BLAME_NONE;
    int veto = 0;
    for (size_t i = 0; i < L->n_rules && !veto; i++) {
        const rule *r = &L->rules[i];
        if (!r->veto)
            continue;
        for (size_t s = a; s < (r->anchored_start ? a + 1 : b) && !veto; s++)
            veto = match_from(w, r, 0, s, b);
    }
    att_blame_class best = ATT_BLAME_NONE;
    for (size_t i = 0; i < L->n_rules; i++) {
        const rule *r = &L->rules[i];
        if (r->veto || r->cls <= best)
            continue;
        if (r->cls == ATT_BLAME_CRITICISM && (praise || veto))
            continue;
        size_t last = r->anchored_start ? a + 1 : b;
        for (size_t s = a; s < last && s < reflect; s++) {
            const element *e0 = &r->el[0];
            if (e0->kind == EL_LEX && !e0->optional &&
                !(w->hits[s][e0->lex / 64] >> (e0->lex % 64) & 1))
                continue;
            if (negated_before(w, a, s))
                continue;
            if (!r->targeted && (in.person || any_in(w->person, a, s)))
                continue;
            if (match_from(w, r, 0, s, b)) {
                best = r->cls;
                if (rule_out)
                    *rule_out = (int)i;
                break;
            }
        }
        if (best == ATT_BLAME_CONTEMPT)
            break;
    }
    return best;
}

att_blame_class att_blame_classify(const att_blame_lang *L, const char *text, size_t len,
                                   int *rule_out)
{
    if (rule_out)
        *rule_out = -1;
    if (!L || !text)
        return ATT_BLAME_NONE;
    token toks[MAX_TOKENS];
    uint64_t hits[MAX_TOKENS][LEX_WORDS];
    uint8_t neg[MAX_TOKENS], person[MAX_TOKENS], second[MAX_TOKENS], brk[MAX_TOKENS];
    window w = {L, toks, 0, hits, neg, person, second};
    const unsigned char *s = (const unsigned char *)text;
    size_t pos = 0;
    carry cy = {0, 0, 0};
    int more = 0;
    att_blame_class best = ATT_BLAME_NONE;
    while (pos < len && best != ATT_BLAME_CONTEMPT) {
        int continued = more;
        size_t n = tokenize(s, len, &pos, toks, L->n_elisions ? MAX_TOKENS / 2 : MAX_TOKENS, &more);
        n = split_elisions(L, toks, n, MAX_TOKENS);
        if (!continued)
            cy = (carry){0, 0, 0};
        if (n == 0)
            continue;
        w.n = n;
        for (size_t p = 0; p < n; p++) {
            token *t = &toks[p];
            t->id = t->truncated ? -1 : word_id(L, t->text, t->len);
            memset(hits[p], 0, sizeof hits[p]);
            if (t->id >= 0)
                for (uint32_t k = L->word_lex_at[t->id]; k < L->word_lex_at[t->id + 1]; k++)
                    hits[p][L->word_lex[k] / 64] |= 1ull << (L->word_lex[k] % 64);
            unsigned char c0 = (unsigned char)t->text[0];
            for (uint32_t k = L->pre_at[c0]; k < L->pre_at[c0 + 1]; k++)
                if (item_matches(&L->items[L->entries[L->pre[k]].first_item], t))
                    hits[p][L->pre_lex[k] / 64] |= 1ull << (L->pre_lex[k] % 64);
        }
        for (size_t p = 0; p < n; p++) {
            neg[p] = lex_at(&w, L->guard[G_NEG], p, n) != 0;
            person[p] = lex_at(&w, L->guard[G_FIRST], p, n) || lex_at(&w, L->guard[G_THIRD], p, n);
            second[p] = lex_at(&w, L->guard[G_SECOND], p, n) != 0;
            brk[p] = p > 0 && lex_at(&w, L->guard[G_BREAK], p, n);
        }
        for (size_t a = 0; a < n && best != ATT_BLAME_CONTEMPT;) {
            size_t b = a + 1;
            while (b < n && !brk[b])
                b++;
            int rule = -1;
            att_blame_class c = classify_clause(&w, a, b, &cy, &rule);
            if (c > best) {
                best = c;
                if (rule_out)
                    *rule_out = rule;
            }
            if (b < n)
                cy = (carry){0, 0, 0}; /* a clause break starts afresh */
            a = b;
        }
    }
    return best;
}

const char *att_blame_lang_tag(const att_blame_lang *L)
{
    return L ? L->tag : NULL;
}

size_t att_blame_lang_rule_count(const att_blame_lang *L)
{
    return L ? L->n_rules : 0;
}

const char *att_blame_lang_rule_pattern(const att_blame_lang *L, size_t i)
{
    return L && i < L->n_rules ? L->rules[i].pattern : NULL;
}

/* ---- compiling ------------------------------------------------------------ */

void att_blame_lang_free(att_blame_lang *L)
{
    if (!L)
        return;
    for (size_t i = 0; i < L->n_words; i++)
        free(L->words[i]);
    free(L->words);
    free(L->word_len);
    free(L->items);
    free(L->entries);
    for (size_t i = 0; i < L->n_lex; i++) {
        free(L->lex[i].name);
        free(L->lex[i].literal);
    }
    free(L->word_lex_at);
    free(L->word_lex);
    free(L->pre);
    free(L->pre_lex);
    for (size_t i = 0; i < L->n_rules; i++)
        free(L->rules[i].pattern);
    free(L->rules);
    free(L);
}

/* Compile-time state: words are collected as strings first and given ids
 * once every lexicon is read. */
typedef struct {
    att_blame_lang *L;
    const char *file;
    att_error *err;
    char **raw; /* raw[i]: the word of item i, or NULL for a prefix */
    size_t cap_raw;
    int interned; /* the words now belong to L->words */
} compiler;

#define BAD(c, ...) bad_data((c), __VA_ARGS__)

__attribute__((format(printf, 2, 3))) static int bad_data(compiler *c, const char *fmt, ...)
{
    char detail[sizeof c->err->message];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    return att_fail(c->err, ATT_ERR_BAD_MESSAGE, "%s: %s", c->file, detail);
}

static int oom(compiler *c)
{
    return att_fail(c->err, ATT_ERR_INTERNAL, "%s: out of memory", c->file);
}

static int grow(void **p, size_t *cap, size_t need, size_t size)
{
    if (need <= *cap)
        return 0;
    size_t n = *cap ? *cap * 2 : 64;
    while (n < need)
        n *= 2;
    void *q = realloc(*p, n * size);
    if (!q)
        return -1;
    *p = q;
    *cap = n;
    return 0;
}

/* Checks that one word of an entry (or of a pattern literal) uses only
 * lowercase letters, digits, apostrophes, hyphens, emoji and an optional
 * final '*', in valid UTF-8. Returns a message or NULL. */
static const char *word_problem(const char *w, size_t len)
{
    const unsigned char *s = (const unsigned char *)w;
    if (len == 0)
        return "empty word";
    if (w[len - 1] == '*')
        len--;
    if (len == 0)
        return "'*' needs a word before it";
    for (size_t i = 0; i < len;) {
        size_t at = i;
        long cp = decode(s, len, &i);
        if (cp < 0)
            return "invalid UTF-8";
        if ((cp >= 'A' && cp <= 'Z') || (cp >= 0xC0 && cp <= 0xDE && cp != 0xD7) || cp == 0x152 ||
            cp == 0x178)
            return "must be lowercase";
        if (cp == '*')
            return "'*' only at the end of a word";
        if (cp == '-' || cp == '\'' || cp == 0x2019)
            continue;
        char out[4];
        size_t olen, j = at;
        int cls = read_char(s, len, &j, out, &olen);
        if (cls != CH_WORD && cls != CH_EMOJI && cls != CH_SKIP)
            return "only letters, digits, apostrophes, hyphens and emoji";
    }
    return NULL;
}

/* Appends the items of one space-separated word (a hyphenated word gives
 * several). */
static int add_word_items(compiler *c, const char *w, size_t len, size_t *n_items)
{
    att_blame_lang *L = c->L;
    int prefix = w[len - 1] == '*';
    if (prefix)
        len--;
    /* an elided word keeps its final apostrophe ("t'"), as in the text */
    int elided = len > 1 && w[len - 1] == '\'';
    token toks[2 * (MAX_ITEMS + 1)];
    size_t pos = 0;
    int more;
    size_t n =
        tokenize((const unsigned char *)w, len - (size_t)elided, &pos, toks, MAX_ITEMS + 1, &more);
    if (elided && n > 0 && toks[n - 1].len < TOKEN_BYTES)
        toks[n - 1].text[toks[n - 1].len++] = '\'';
    n = split_elisions(L, toks, n, 2 * (MAX_ITEMS + 1));
    if (n == 0)
        return BAD(c, "no word in '%.*s'", (int)len, w);
    for (size_t k = 0; k < n; k++) {
        if (*n_items == MAX_ITEMS)
            return 1;
        if (toks[k].truncated)
            return BAD(c, "word '%.*s' is longer than %d bytes", (int)len, w, TOKEN_BYTES);
        if (grow((void **)&L->items, &L->cap_items, L->n_items + 1, sizeof *L->items) ||
            grow((void **)&c->raw, &c->cap_raw, L->n_items + 1, sizeof *c->raw))
            return oom(c);
        item *it = &L->items[L->n_items];
        memset(it, 0, sizeof *it);
        c->raw[L->n_items] = NULL;
        if (prefix && k == n - 1) {
            it->id = -1;
            it->plen = toks[k].len;
            memcpy(it->prefix, toks[k].text, toks[k].len);
        } else {
            char *copy = malloc(toks[k].len + 1u);
            if (!copy)
                return oom(c);
            memcpy(copy, toks[k].text, toks[k].len);
            copy[toks[k].len] = 0;
            c->raw[L->n_items] = copy;
        }
        L->n_items++;
        (*n_items)++;
    }
    return 0;
}

/* Adds one entry (words separated by single spaces) to the lexicon being
 * built. where names it in errors. */
static int add_entry(compiler *c, const char *text, const char *where)
{
    att_blame_lang *L = c->L;
    size_t len = strlen(text);
    if (len == 0 || len > MAX_ENTRY_BYTES)
        return BAD(c, "%s: must be 1..%d bytes", where, MAX_ENTRY_BYTES);
    if (text[0] == ' ' || text[len - 1] == ' ' || strstr(text, "  "))
        return BAD(c, "%s: '%s': words are separated by single spaces", where, text);
    if (grow((void **)&L->entries, &L->cap_entries, L->n_entries + 1, sizeof *L->entries))
        return oom(c);
    entry *e = &L->entries[L->n_entries];
    e->first_item = (uint32_t)L->n_items;
    size_t n_items = 0;
    for (const char *w = text; *w;) {
        const char *sp = strchr(w, ' ');
        size_t wl = sp ? (size_t)(sp - w) : strlen(w);
        const char *problem = word_problem(w, wl);
        if (problem)
            return BAD(c, "%s: '%s': %s", where, text, problem);
        int rc = add_word_items(c, w, wl, &n_items);
        if (rc > 0)
            return BAD(c, "%s: '%s': more than %d words", where, text, MAX_ITEMS);
        if (rc)
            return rc;
        w += wl;
        if (*w == ' ')
            w++;
    }
    e->n_items = (uint8_t)n_items;
    L->n_entries++;
    return 0;
}

static int is_name(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 32 || s[0] < 'a' || s[0] > 'z')
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
            return 0;
    return 1;
}

static int find_lex(const att_blame_lang *L, const char *name)
{
    for (size_t i = 0; i < L->n_lex; i++)
        if (L->lex[i].name && strcmp(L->lex[i].name, name) == 0)
            return (int)i;
    return -1;
}

static int new_lex(compiler *c, const char *name, const char *literal, const char *where)
{
    att_blame_lang *L = c->L;
    if (L->n_lex == MAX_LEXICONS)
        return BAD(c, "%s: more than %d lexicons and literal word sets", where, MAX_LEXICONS);
    lexicon *x = &L->lex[L->n_lex];
    memset(x, 0, sizeof *x);
    x->first = (uint32_t)L->n_entries;
    if ((name && !(x->name = strdup(name))) || (literal && !(x->literal = strdup(literal))))
        return oom(c);
    L->n_lex++;
    return 0;
}

/* Two entries are the same when their items are. */
static int same_entry(const compiler *c, const entry *a, const entry *b)
{
    if (a->n_items != b->n_items)
        return 0;
    for (size_t k = 0; k < a->n_items; k++) {
        const item *x = &c->L->items[a->first_item + k], *y = &c->L->items[b->first_item + k];
        const char *rx = c->raw[a->first_item + k], *ry = c->raw[b->first_item + k];
        if (!rx != !ry)
            return 0;
        if (rx ? strcmp(rx, ry) != 0
               : x->plen != y->plen || memcmp(x->prefix, y->prefix, x->plen) != 0)
            return 0;
    }
    return 1;
}

static int load_lexicon(compiler *c, const char *name, json_t *arr)
{
    att_blame_lang *L = c->L;
    char where[96];
    snprintf(where, sizeof where, "lexicons.%s", name);
    if (!is_name(name))
        return BAD(c, "%s: a lexicon name is a lowercase snake_case id (1..32 bytes)", where);
    if (!json_is_array(arr) || json_array_size(arr) < 1 || json_array_size(arr) > MAX_ENTRIES)
        return BAD(c, "%s: must be an array of 1..%d strings", where, MAX_ENTRIES);
    int rc = new_lex(c, name, NULL, where);
    if (rc)
        return rc;
    lexicon *x = &L->lex[L->n_lex - 1];
    for (size_t i = 0; i < json_array_size(arr); i++) {
        json_t *v = json_array_get(arr, i);
        char at[136];
        snprintf(at, sizeof at, "%s[%zu]", where, i);
        if (!json_is_string(v))
            return BAD(c, "%s: must be a string", at);
        if ((rc = add_entry(c, json_string_value(v), at)))
            return rc;
        for (size_t e = x->first; e + 1 < L->n_entries; e++)
            if (same_entry(c, &L->entries[e], &L->entries[L->n_entries - 1]))
                return BAD(c, "%s: '%s' is already in the lexicon (after folding)", at,
                           json_string_value(v));
    }
    x->n_exact = (uint32_t)(L->n_entries - x->first);
    return 0;
}

/* A literal pattern element ("always|never", "care*") as an anonymous
 * lexicon; the same literal twice is one lexicon. */
static int literal_lex(compiler *c, const char *lit, size_t len, const char *where, int *out)
{
    att_blame_lang *L = c->L;
    char text[MAX_PATTERN_BYTES + 1];
    memcpy(text, lit, len);
    text[len] = 0;
    for (size_t i = 0; i < L->n_lex; i++)
        if (L->lex[i].literal && strcmp(L->lex[i].literal, text) == 0) {
            *out = (int)i;
            return 0;
        }
    int rc = new_lex(c, NULL, text, where);
    if (rc)
        return rc;
    lexicon *x = &L->lex[L->n_lex - 1];
    for (char *alt = text; alt;) {
        char *bar = strchr(alt, '|');
        if (bar)
            *bar = 0;
        if (!*alt)
            return BAD(c, "%s: empty alternative in '%.*s'", where, (int)len, lit);
        char at[160];
        snprintf(at, sizeof at, "%s: literal '%.*s'", where, (int)len, lit);
        size_t before = L->n_items;
        int r2 = add_entry(c, alt, at);
        if (r2)
            return r2;
        if (L->n_items - before != 1)
            return BAD(c, "%s: '%s' must be one word (use a lexicon for phrases)", at, alt);
        alt = bar ? bar + 1 : NULL;
    }
    x->n_exact = (uint32_t)(L->n_entries - x->first);
    *out = (int)(L->n_lex - 1);
    return 0;
}

static int parse_pattern(compiler *c, rule *r, const char *pat, const char *where)
{
    att_blame_lang *L = c->L;
    size_t len = strlen(pat);
    if (len == 0 || len > MAX_PATTERN_BYTES)
        return BAD(c, "%s: 'pattern' must be 1..%d bytes", where, MAX_PATTERN_BYTES);
    if (pat[0] == ' ' || pat[len - 1] == ' ' || strstr(pat, "  "))
        return BAD(c, "%s: pattern elements are separated by single spaces", where);
    for (const char *p = pat; *p;) {
        const char *sp = strchr(p, ' ');
        size_t n = sp ? (size_t)(sp - p) : strlen(p);
        int last = !sp;
        if (n == 1 && p[0] == '^') {
            if (p != pat)
                return BAD(c, "%s: '^' only as the first element", where);
            r->anchored_start = 1;
        } else if (n == 1 && p[0] == '$') {
            if (!last)
                return BAD(c, "%s: '$' only as the last element", where);
            r->anchored_end = 1;
        } else {
            if (r->n_el == MAX_ELEMS)
                return BAD(c, "%s: more than %d elements", where, MAX_ELEMS);
            element *e = &r->el[r->n_el];
            memset(e, 0, sizeof *e);
            if (p[0] == '~') {
                int g = 0;
                for (size_t k = 1; k < n; k++)
                    g = p[k] >= '0' && p[k] <= '9' && g < 100 ? g * 10 + (p[k] - '0') : 1000;
                if (n < 2 || g < 1 || g > MAX_GAP)
                    return BAD(c, "%s: '%.*s': a gap is ~1 .. ~%d", where, (int)n, p, MAX_GAP);
                if (r->n_el == 0 || last || (sp && sp[1] == '$'))
                    return BAD(c, "%s: a gap cannot start or end a pattern", where);
                if (e[-1].kind == EL_GAP)
                    return BAD(c, "%s: two gaps in a row", where);
                e->kind = EL_GAP;
                e->gap = (uint8_t)g;
            } else {
                size_t m = n;
                if (p[m - 1] == '?') {
                    e->optional = 1;
                    m--;
                }
                if (m == 0)
                    return BAD(c, "%s: '?' needs an element before it", where);
                int lx = -1;
                if (p[0] == '@') {
                    char name[40];
                    if (m - 1 >= sizeof name)
                        return BAD(c, "%s: unknown lexicon '%.*s'", where, (int)m, p);
                    memcpy(name, p + 1, m - 1);
                    name[m - 1] = 0;
                    if ((lx = find_lex(L, name)) < 0)
                        return BAD(c, "%s: unknown lexicon '@%s'", where, name);
                    if (lx == L->guard[G_SECOND])
                        r->targeted = 1;
                } else {
                    int rc = literal_lex(c, p, m, where, &lx);
                    if (rc)
                        return rc;
                }
                e->kind = EL_LEX;
                e->lex = (uint16_t)lx;
            }
            r->n_el++;
        }
        p += n;
        if (*p == ' ')
            p++;
    }
    size_t required = 0;
    for (size_t k = 0; k < r->n_el; k++)
        required += r->el[k].kind == EL_LEX && !r->el[k].optional;
    if (required == 0)
        return BAD(c, "%s: a pattern needs at least one word or lexicon that is not optional",
                   where);
    return 0;
}

static int load_rules(compiler *c, json_t *arr)
{
    att_blame_lang *L = c->L;
    if (!json_is_array(arr) || json_array_size(arr) < 1 || json_array_size(arr) > MAX_RULES)
        return BAD(c, "'rules' must be an array of 1..%d rules", MAX_RULES);
    L->rules = calloc(json_array_size(arr), sizeof *L->rules);
    if (!L->rules)
        return oom(c);
    for (size_t i = 0; i < json_array_size(arr); i++) {
        json_t *o = json_array_get(arr, i);
        char where[64];
        snprintf(where, sizeof where, "rules[%zu]", i);
        if (!json_is_object(o))
            return BAD(c, "%s: must be an object", where);
        const char *key;
        json_t *v;
        json_object_foreach(o, key, v)
        {
            if (strcmp(key, "class") != 0 && strcmp(key, "pattern") != 0 &&
                strcmp(key, "note") != 0)
                return BAD(c, "%s: unknown member '%.40s'", where, key);
        }
        const char *cls = json_string_value(json_object_get(o, "class"));
        const char *pat = json_string_value(json_object_get(o, "pattern"));
        json_t *note = json_object_get(o, "note");
        if (note && !json_is_string(note))
            return BAD(c, "%s: 'note' must be a string", where);
        rule *r = &L->rules[L->n_rules];
        if (!cls)
            return BAD(c, "%s: missing 'class' (criticism, contempt or none)", where);
        if (strcmp(cls, "criticism") == 0)
            r->cls = ATT_BLAME_CRITICISM;
        else if (strcmp(cls, "contempt") == 0)
            r->cls = ATT_BLAME_CONTEMPT;
        else if (strcmp(cls, "none") == 0)
            r->veto = 1;
        else
            return BAD(c, "%s: unknown class '%.40s' (criticism, contempt or none)", where, cls);
        if (!pat)
            return BAD(c, "%s: missing 'pattern' (a string)", where);
        if (!(r->pattern = strdup(pat)))
            return oom(c);
        L->n_rules++;
        int rc = parse_pattern(c, r, pat, where);
        if (rc)
            return rc;
    }
    return 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Exact-first entries by word id, then the prefix-first ones, each in file
 * order. */
static int cmp_entry(const void *a, const void *b)
{
    const entry *x = a, *y = b;
    if (x->key != y->key)
        return x->key < y->key ? -1 : 1;
    return x->first_item < y->first_item ? -1 : x->first_item > y->first_item;
}

/* Interns the words, orders each lexicon's entries and builds the indexes. */
static int finish(compiler *c)
{
    att_blame_lang *L = c->L;
    size_t n_raw = 0;
    for (size_t i = 0; i < L->n_items; i++)
        n_raw += c->raw[i] != NULL;
    L->words = calloc(n_raw ? n_raw : 1, sizeof *L->words);
    if (!L->words)
        return oom(c);
    for (size_t i = 0; i < L->n_items; i++)
        if (c->raw[i])
            L->words[L->n_words++] = c->raw[i];
    qsort(L->words, L->n_words, sizeof *L->words, cmp_str);
    size_t u = 0;
    for (size_t i = 0; i < L->n_words; i++) {
        if (u > 0 && strcmp(L->words[u - 1], L->words[i]) == 0)
            continue;
        L->words[u++] = L->words[i];
    }
    L->n_words = u;
    if (!(L->word_len = malloc(u ? u : 1)))
        return oom(c);
    for (size_t i = 0; i < u; i++)
        L->word_len[i] = (uint8_t)strlen(L->words[i]);
    for (size_t i = 0; i < L->n_items; i++)
        if (c->raw[i])
            L->items[i].id = word_id(L, c->raw[i], strlen(c->raw[i]));
    /* the duplicates among raw are freed now; the others belong to words */
    for (size_t i = 0; i < L->n_items; i++) {
        if (c->raw[i] && L->words[L->items[i].id] != c->raw[i])
            free(c->raw[i]);
        c->raw[i] = NULL;
    }
    c->interned = 1;
    for (size_t e = 0; e < L->n_entries; e++) {
        int32_t id = L->items[L->entries[e].first_item].id;
        L->entries[e].key = id >= 0 ? id : INT32_MAX;
    }
    /* sort each lexicon: exact-first entries by first word id, then prefixes */
    for (size_t x = 0; x < L->n_lex; x++) {
        lexicon *lx = &L->lex[x];
        qsort(&L->entries[lx->first], lx->n_exact, sizeof *L->entries, cmp_entry);
        uint32_t total = lx->n_exact;
        uint32_t k = 0;
        while (k < total && L->items[L->entries[lx->first + k].first_item].id >= 0)
            k++;
        lx->n_exact = k;
        lx->n_prefix = total - k;
    }
    /* word -> lexicons */
    L->word_lex_at = calloc(L->n_words + 2, sizeof *L->word_lex_at);
    L->word_lex = calloc(L->n_entries ? L->n_entries : 1, sizeof *L->word_lex);
    L->pre = calloc(L->n_entries ? L->n_entries : 1, sizeof *L->pre);
    L->pre_lex = calloc(L->n_entries ? L->n_entries : 1, sizeof *L->pre_lex);
    if (!L->word_lex_at || !L->word_lex || !L->pre || !L->pre_lex)
        return oom(c);
    for (size_t x = 0; x < L->n_lex; x++)
        for (uint32_t e = L->lex[x].first; e < L->lex[x].first + L->lex[x].n_exact; e++)
            L->word_lex_at[L->items[L->entries[e].first_item].id + 1]++;
    for (size_t w = 0; w < L->n_words; w++)
        L->word_lex_at[w + 1] += L->word_lex_at[w];
    uint32_t *fill = calloc(L->n_words + 1, sizeof *fill);
    if (!fill)
        return oom(c);
    for (size_t x = 0; x < L->n_lex; x++)
        for (uint32_t e = L->lex[x].first; e < L->lex[x].first + L->lex[x].n_exact; e++) {
            int32_t id = L->items[L->entries[e].first_item].id;
            L->word_lex[L->word_lex_at[id] + fill[id]++] = (uint16_t)x;
        }
    free(fill);
    /* prefix-first entries by first byte */
    memset(L->pre_at, 0, sizeof L->pre_at);
    for (int pass = 0; pass < 2; pass++) {
        uint32_t cursor[256] = {0};
        for (size_t x = 0; x < L->n_lex; x++) {
            const lexicon *lx = &L->lex[x];
            for (uint32_t e = lx->first + lx->n_exact; e < lx->first + lx->n_exact + lx->n_prefix;
                 e++) {
                unsigned char b0 = (unsigned char)L->items[L->entries[e].first_item].prefix[0];
                if (pass == 0) {
                    L->pre_at[b0 + 1]++;
                } else {
                    uint32_t at = L->pre_at[b0] + cursor[b0]++;
                    L->pre[at] = e;
                    L->pre_lex[at] = (uint16_t)x;
                }
            }
        }
        if (pass == 0)
            for (int b = 0; b < 256; b++)
                L->pre_at[b + 1] += L->pre_at[b];
    }
    L->n_pre = L->pre_at[256];
    /* a rule is aimed at the partner when one of its elements can only
     * start with a second-person word: @second_person itself, a literal like
     * "your|ur fault", or a lexicon like German "du" */
    const lexicon *you = &L->lex[L->guard[G_SECOND]];
    for (size_t i = 0; i < L->n_rules; i++)
        for (size_t k = 0; k < L->rules[i].n_el && !L->rules[i].targeted; k++) {
            const element *e = &L->rules[i].el[k];
            const lexicon *x = &L->lex[e->lex];
            if (e->kind != EL_LEX || e->optional || x->n_prefix > 0)
                continue;
            int all = x->n_exact > 0;
            for (uint32_t j = x->first; all && j < x->first + x->n_exact; j++) {
                int32_t id = L->items[L->entries[j].first_item].id;
                int found = 0;
                for (uint32_t y = you->first; y < you->first + you->n_exact && !found; y++)
                    found =
                        L->entries[y].n_items == 1 && L->items[L->entries[y].first_item].id == id;
                if (e->lex == L->guard[G_SECOND])
                    found = 1;
                all = found;
            }
            L->rules[i].targeted = all;
        }
    return 0;
}

static int compile(compiler *c, json_t *root)
{
    att_blame_lang *L = c->L;
    if (!json_is_object(root))
        return BAD(c, "the top level must be an object");
    const char *key;
    json_t *v;
    json_object_foreach(root, key, v)
    {
        if (strcmp(key, "lang") != 0 && strcmp(key, "description") != 0 &&
            strcmp(key, "negation_window") != 0 && strcmp(key, "lexicons") != 0 &&
            strcmp(key, "rules") != 0 && strcmp(key, "elisions") != 0)
            return BAD(c, "unknown member '%.40s'", key);
    }
    const char *lang = json_string_value(json_object_get(root, "lang"));
    size_t ll = lang ? strlen(lang) : 0;
    int lang_ok = ll >= 2 && ll <= 3;
    for (size_t i = 0; i < ll; i++)
        lang_ok = lang_ok && lang[i] >= 'a' && lang[i] <= 'z';
    if (!lang_ok)
        return BAD(c, "'lang' must be a 2- or 3-letter lowercase language code");
    memcpy(L->tag, lang, ll + 1);
    json_t *desc = json_object_get(root, "description");
    if (desc && !json_is_string(desc))
        return BAD(c, "'description' must be a string");
    json_t *nw = json_object_get(root, "negation_window");
    if (!json_is_integer(nw) || json_integer_value(nw) < 0 ||
        json_integer_value(nw) > MAX_NEG_WINDOW)
        return BAD(c, "'negation_window' must be an integer in 0..%d", MAX_NEG_WINDOW);
    L->neg_window = (int)json_integer_value(nw);
    json_t *el = json_object_get(root, "elisions");
    if (el && (!json_is_array(el) || json_array_size(el) > MAX_ELISIONS))
        return BAD(c, "'elisions' must be an array of at most %d strings", MAX_ELISIONS);
    for (size_t i = 0; el && i < json_array_size(el); i++) {
        const char *e = json_string_value(json_array_get(el, i));
        size_t n = e ? strlen(e) : 0;
        int ok = n >= 2 && n < ELISION_BYTES && e[n - 1] == '\'';
        for (size_t k = 0; ok && k + 1 < n; k++)
            ok = e[k] >= 'a' && e[k] <= 'z';
        if (!ok)
            return BAD(c,
                       "elisions[%zu]: must be 1..%d lowercase ASCII letters and a final "
                       "apostrophe, like \"t'\"",
                       i, ELISION_BYTES - 2);
        memcpy(L->elision[i], e, n);
        L->elision_len[i] = (uint8_t)n;
        L->n_elisions++;
    }
    json_t *lexicons = json_object_get(root, "lexicons");
    if (!json_is_object(lexicons))
        return BAD(c, "missing 'lexicons' (an object of word lists)");
    if (json_object_size(lexicons) > MAX_NAMED)
        return BAD(c, "'lexicons': more than %d lexicons", MAX_NAMED);
    /* the guards first, in a fixed order, then the others in file order */
    for (int g = 0; g < N_GUARDS; g++) {
        json_t *arr = json_object_get(lexicons, guard_names[g]);
        if (!arr)
            return BAD(c, "lexicons: missing '%s'", guard_names[g]);
        int rc = load_lexicon(c, guard_names[g], arr);
        if (rc)
            return rc;
        L->guard[g] = (uint16_t)(L->n_lex - 1);
    }
    json_object_foreach(lexicons, key, v)
    {
        if (find_lex(L, key) >= 0)
            continue;
        int rc = load_lexicon(c, key, v);
        if (rc)
            return rc;
    }
    int rc = load_rules(c, json_object_get(root, "rules"));
    if (rc)
        return rc;
    return finish(c);
}

int att_blame_lang_compile(json_t *root, const char *file, att_blame_lang **out, att_error *err)
{
    *out = NULL;
    compiler c = {calloc(1, sizeof(att_blame_lang)), file ? file : "blame", err, NULL, 0, 0};
    if (!c.L)
        return oom(&c);
    int rc = compile(&c, root);
    if (c.raw) {
        for (size_t i = 0; i < c.L->n_items; i++)
            free(c.raw[i]);
        free(c.raw);
    }
    if (rc) {
        /* words not yet interned were freed through raw above */
        if (!c.interned) {
            free(c.L->words);
            c.L->words = NULL;
            c.L->n_words = 0;
        }
        att_blame_lang_free(c.L);
        return rc;
    }
    *out = c.L;
    return 0;
}
