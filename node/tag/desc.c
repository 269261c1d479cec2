/*
 * desc.c - description tokens from the fixed vocabulary (spec §3.1; vocabulary in vocab.def).
 *
 * The description (SeriesDescription + " " + ProtocolName) is upper-cased and:
 *   - split on every character outside [A-Z0-9*] into primary tokens;
 *   - each primary token split again at letter/digit boundaries into sub-tokens;
 *   - a primary token made only of digits is also joined with the next primary token
 *     ("4 CH" -> "4CH", "2-chamber" -> "2CHAMBER");
 *   - a primary token B<digits> (UK Biobank "_b7" slice) sets the V_BN word;
 *   - normalised raw string: characters outside [A-Z0-9*:=+()] become '_' (substring rules).
 * T entries match a primary token, a sub-token (entries of 2+ characters only), or a join;
 * S entries match a substring of the normalised raw string. Only the resulting bit set is
 * kept. PURE.
 */
#include <ctype.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>

#include "tag.h"

struct word {
    const char *s;
    size_t len; /* strlen(s), at compile time: match_token runs for every token */
    char kind;
};

static const struct word words[MT_W_COUNT] = {
#define MT_TAGW(id, str, k) [MT_W_##id] = {str, sizeof(str) - 1, #k[0]},
#include "vocab.def"
#undef MT_TAGW
};

const char *mt_tag_word_str(int id)
{
    return (id >= 0 && id < MT_W_COUNT) ? words[id].s : "?";
}

#define MAX_DESC 512

/* The T entries grouped by length (built once): a token is compared with the entries of its
 * own length only, not with all of the vocabulary (a description has ~20 tokens, sub-tokens
 * and joins; the scan of every entry for each was most of the extraction's tokenizer cost,
 * bench/tagging/icount.py). Same matches as comparing every entry. */
#define T_MAX_LEN 32
static struct {
    uint16_t start[T_MAX_LEN + 2]; /* entries of length L: id[start[L] .. start[L + 1]) */
    uint16_t id[MT_W_COUNT];
} t_by_len;
static pthread_once_t t_by_len_once = PTHREAD_ONCE_INIT;

static void t_by_len_build(void)
{
    uint16_t count[T_MAX_LEN + 2] = {0};
    for (int i = 0; i < MT_W_COUNT; i++)
        if (words[i].kind == 'T' && words[i].len <= T_MAX_LEN)
            count[words[i].len]++;
    for (int l = 1; l <= T_MAX_LEN + 1; l++)
        t_by_len.start[l] = (uint16_t)(t_by_len.start[l - 1] + count[l - 1]);
    uint16_t fill[T_MAX_LEN + 1];
    memcpy(fill, t_by_len.start, sizeof fill);
    for (int i = 0; i < MT_W_COUNT; i++)
        if (words[i].kind == 'T' && words[i].len <= T_MAX_LEN)
            t_by_len.id[fill[words[i].len]++] = (uint16_t)i;
}

static void match_token(const char *t, size_t len, bool sub, mt_tag_words_t *out)
{
    if (len == 0 || len > T_MAX_LEN || (sub && len < 2))
        return;
    for (unsigned k = t_by_len.start[len]; k < t_by_len.start[len + 1]; k++) {
        int i = t_by_len.id[k];
        if (words[i].s[0] == t[0] && memcmp(words[i].s, t, len) == 0)
            mt_tag_words_set(out, i);
    }
}

static void words_scan(const char *desc, mt_tag_words_t *out);

static void words_or(mt_tag_words_t *out, const mt_tag_words_t *in)
{
    for (int i = 0; i < MT_TAG_WORD_WORDS; i++)
        out->w[i] |= in->w[i];
}

/* The instances of a series share their descriptions (the series' and the study's): the last
 * two descriptions scanned on this thread are remembered with their words. The result depends
 * on the text alone, so the memo is invisible to callers. */
#define MEMO 2
void mt_tag_words_scan(const char *desc, mt_tag_words_t *out)
{
    static _Thread_local struct {
        char text[MAX_DESC];
        mt_tag_words_t words;
        bool used;
    } memo[MEMO];
    static _Thread_local unsigned next;
    if (!desc)
        return;
    size_t len = strnlen(desc, MAX_DESC);
    for (int i = 0; len < MAX_DESC && i < MEMO; i++)
        if (memo[i].used && !memcmp(memo[i].text, desc, len + 1)) {
            words_or(out, &memo[i].words);
            return;
        }
    mt_tag_words_t w;
    memset(&w, 0, sizeof w);
    words_scan(desc, &w);
    words_or(out, &w);
    if (len < MAX_DESC) {
        unsigned k = next++ % MEMO;
        memcpy(memo[k].text, desc, len + 1);
        memo[k].words = w;
        memo[k].used = true;
    }
}

static void words_scan(const char *desc, mt_tag_words_t *out)
{
    pthread_once(&t_by_len_once, t_by_len_build);
    char up[MAX_DESC], norm[MAX_DESC];
    size_t n = 0;
    for (; desc[n] && n < MAX_DESC - 1; n++) {
        char c = (char)toupper((unsigned char)desc[n]);
        up[n] = c;
        norm[n] = (isalnum((unsigned char)c) || strchr("*:=+()", c)) && c ? c : '_';
    }
    up[n] = norm[n] = '\0';

    for (int i = 0; i < MT_W_COUNT; i++)
        if (words[i].kind == 'S' && strstr(norm, words[i].s))
            mt_tag_words_set(out, i);

    /* primary tokens */
    size_t prev_s = 0, prev_l = 0;
    bool prev_digits = false;
    size_t i = 0;
    while (i < n) {
        while (i < n && !(isalnum((unsigned char)up[i]) || up[i] == '*'))
            i++;
        size_t s = i;
        while (i < n && (isalnum((unsigned char)up[i]) || up[i] == '*'))
            i++;
        size_t l = i - s;
        if (l == 0)
            break;
        const char *t = up + s;
        match_token(t, l, false, out);
        /* B<digits>: UK Biobank per-slice SAX series */
        if (l >= 2 && t[0] == 'B') {
            bool digits = true;
            for (size_t k = 1; k < l; k++)
                digits &= isdigit((unsigned char)t[k]) != 0;
            if (digits)
                mt_tag_words_set(out, MT_W_V_BN);
        }
        /* sub-tokens at letter/digit boundaries */
        size_t a = 0;
        bool split = false;
        for (size_t k = 1; k <= l; k++) {
            bool boundary = k == l || (isdigit((unsigned char)t[k]) != isdigit((unsigned char)t[k - 1])) ||
                            t[k] == '*' || t[k - 1] == '*';
            if (!boundary)
                continue;
            if (k < l)
                split = true;
            if (split || a > 0)
                match_token(t + a, k - a, true, out);
            a = k;
        }
        /* digits joined with the next token */
        if (prev_digits && prev_l + l < 32) {
            char j[40];
            memcpy(j, up + prev_s, prev_l);
            memcpy(j + prev_l, t, l);
            match_token(j, prev_l + l, false, out);
        }
        prev_digits = true;
        for (size_t k = 0; k < l; k++)
            prev_digits &= isdigit((unsigned char)t[k]) != 0;
        prev_s = s;
        prev_l = l;
    }
}
