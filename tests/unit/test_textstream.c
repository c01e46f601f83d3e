/* test_textstream.c — textstream: whole-UTF-8 chunks, stop strings held back and cut, U+FFFD at the end.
 * Token ids are the byte-level tokens of single bytes, so characters are split across tokens at every byte
 * (the hard case for whole-UTF-8 output). Uses the fixture vocabulary (fixtures.h). */
#include <stdlib.h>
#include <string.h>

#include "fixtures.h"
#include "test.h"
#include "textstream.h"

static qe_tokenizer *tok;

static void load_tok(void) { tok = fx_tokenizer(); }

/* The id of the token that stands for one raw byte: byte-level BPE names it by GPT-2's byte-to-unicode map
 * (printable bytes are themselves, the others are shifted to U+0100 and up). */
static int32_t byte_id(uint8_t b) {
    static int32_t table[256];
    static bool ready;
    if (!ready) {
        int n = 0;
        for (int c = 0; c < 256; c++) {
            bool printable = (c >= 33 && c <= 126) || (c >= 161 && c <= 172) || (c >= 174 && c <= 255);
            uint32_t cp = printable ? (uint32_t)c : 256 + (uint32_t)n++;
            char s[4];
            if (cp < 0x80) { s[0] = (char)cp; s[1] = 0; }
            else { s[0] = (char)(0xC0 | (cp >> 6)); s[1] = (char)(0x80 | (cp & 0x3F)); s[2] = 0; }
            table[c] = qe_token_lookup(tok, s);
        }
        ready = true;
    }
    return table[b];
}

/* ids for text, one token per byte */
static qe_ids bytes_ids(const char *s) {
    qe_ids ids = {0};
    for (size_t i = 0; s[i]; i++) {
        int32_t id = byte_id((uint8_t)s[i]);
        CHECKF(id >= 0, "no token for byte 0x%02x", (uint8_t)s[i]);
        qe_ids_push(&ids, id);
    }
    return ids;
}

typedef struct { char text[512]; int n_chunks; int stop_at; bool all_valid; } run_out;

/* Feeds every byte of s as a token and collects chunks. */
static run_out run(const char *s, const char *const *stops, int n_stops, bool finish) {
    run_out r = {.stop_at = -1, .all_valid = true};
    qe_textstream ts;
    CHECK_EQ_INT(qe_textstream_init(&ts, tok, stops, n_stops, NULL), QE_OK);
    qe_ids ids = bytes_ids(s);
    qe_buf out = {0};
    for (size_t i = 0; i < ids.n; i++) {
        out.n = 0;
        int rc = qe_textstream_push(&ts, ids.p[i], &out);
        CHECK(rc >= 0);
        if (out.n) {
            r.n_chunks++;
            if (!qe_utf8_valid(out.p, out.n)) r.all_valid = false;
            strncat(r.text, out.p, sizeof r.text - strlen(r.text) - 1);
        }
        if (rc == QE_TEXTSTREAM_STOP) { r.stop_at = (int)i; break; }
    }
    if (finish && r.stop_at < 0) {
        out.n = 0;
        CHECK_EQ_INT(qe_textstream_finish(&ts, &out), QE_OK);
        if (out.n) {
            if (!qe_utf8_valid(out.p, out.n)) r.all_valid = false;
            strncat(r.text, out.p, sizeof r.text - strlen(r.text) - 1);
        }
    }
    qe_buf_free(&out);
    qe_ids_free(&ids);
    qe_textstream_free(&ts);
    return r;
}

TEST(plain_text_passes_through) {
    run_out r = run("hello world", NULL, 0, true);
    CHECK_STR(r.text, "hello world");
    CHECK(r.all_valid);
    CHECK_EQ_INT(r.n_chunks, 11); /* ASCII is never held back */
}

TEST(split_utf8_is_held_until_whole) {
    const char *s = "你好🦙é";
    run_out r = run(s, NULL, 0, true);
    CHECK_STR(r.text, s);
    CHECK(r.all_valid);
    CHECK_EQ_INT(r.n_chunks, 4); /* one chunk per character, never a fragment */
}

TEST(stop_string_cut_and_not_emitted) {
    const char *stops[] = {"END"};
    run_out r = run("abc ENDxyz", stops, 1, true);
    CHECK_STR(r.text, "abc ");
    CHECK_EQ_INT(r.stop_at, 6); /* stop reported on the token that completes it */
}

TEST(partial_stop_is_released_when_it_breaks) {
    const char *stops[] = {"END"};
    run_out r = run("a ENx ENd E", stops, 1, true);
    CHECK_STR(r.text, "a ENx ENd E"); /* the trailing "E" is released by finish */
    CHECK_EQ_INT(r.stop_at, -1);
    run_out r2 = run("a ENx ENd E", stops, 1, false);
    CHECK_STR(r2.text, "a ENx ENd "); /* ...and held back until then */
}

TEST(earliest_of_several_stops) {
    const char *stops[] = {"world", "lo w", "", "zzz"};
    run_out r = run("hello world", stops, 4, true);
    CHECK_STR(r.text, "hel");
}

TEST(multibyte_stop_string) {
    const char *stops[] = {"。🦙"};
    run_out r = run("你好。世界。🦙后面", stops, 1, true);
    CHECK_STR(r.text, "你好。世界");
    CHECK(r.all_valid);
}

TEST(stop_at_very_start) {
    const char *stops[] = {"<|user|>"};
    run_out r = run("<|user|>hi", stops, 1, true);
    CHECK_STR(r.text, "");
    CHECK_EQ_INT(r.stop_at, 7);
}

TEST(unfinished_utf8_becomes_replacement_at_end) {
    qe_textstream ts;
    CHECK_EQ_INT(qe_textstream_init(&ts, tok, NULL, 0, NULL), QE_OK);
    qe_ids ids = bytes_ids("ok\xE4\xBD"); /* first two bytes of 你 */
    qe_buf out = {0};
    for (size_t i = 0; i < ids.n; i++) CHECK_EQ_INT(qe_textstream_push(&ts, ids.p[i], &out), QE_OK);
    CHECK_EQ_INT((int)out.n, 2);
    CHECK_EQ_INT(qe_textstream_finish(&ts, &out), QE_OK);
    CHECK(out.n > 2 && qe_utf8_valid(out.p, out.n));
    CHECK(strstr(out.p, "\xEF\xBF\xBD") != NULL);
    qe_buf_free(&out);
    qe_ids_free(&ids);
    qe_textstream_free(&ts);
}

TEST(invalid_stop_rejected) {
    qe_textstream ts;
    const char *stops[] = {"ok", "\xFF\xFE"};
    char err[QE_ERR_LEN] = "";
    CHECK_EQ_INT(qe_textstream_init(&ts, tok, stops, 2, err), QE_EINVAL);
    CHECK(strstr(err, "UTF-8") != NULL);
}

TEST(utf8_validator) {
    CHECK(qe_utf8_valid("", 0));
    CHECK(qe_utf8_valid("a你🦙", strlen("a你🦙")));
    CHECK(!qe_utf8_valid("\xC0\x80", 2));         /* overlong */
    CHECK(!qe_utf8_valid("\xED\xA0\x80", 3));     /* surrogate */
    CHECK(!qe_utf8_valid("\xF4\x90\x80\x80", 4)); /* > U+10FFFF */
    CHECK(!qe_utf8_valid("\xE4\xBD", 2));         /* truncated */
}

TEST(after_stop_nothing_more) {
    const char *stops[] = {"X"};
    qe_textstream ts;
    CHECK_EQ_INT(qe_textstream_init(&ts, tok, stops, 1, NULL), QE_OK);
    qe_ids ids = bytes_ids("aXb");
    qe_buf out = {0};
    CHECK_EQ_INT(qe_textstream_push(&ts, ids.p[0], &out), QE_OK);
    CHECK_EQ_INT(qe_textstream_push(&ts, ids.p[1], &out), QE_TEXTSTREAM_STOP);
    CHECK_EQ_INT(qe_textstream_push(&ts, ids.p[2], &out), QE_TEXTSTREAM_STOP);
    CHECK_EQ_INT(qe_textstream_finish(&ts, &out), QE_OK);
    CHECK_EQ_INT((int)out.n, 1);
    qe_buf_free(&out);
    qe_ids_free(&ids);
    qe_textstream_free(&ts);
}

int main(void) {
    load_tok();
    if (!tok) return 1;
    RUN(plain_text_passes_through);
    RUN(split_utf8_is_held_until_whole);
    RUN(stop_string_cut_and_not_emitted);
    RUN(partial_stop_is_released_when_it_breaks);
    RUN(earliest_of_several_stops);
    RUN(multibyte_stop_string);
    RUN(stop_at_very_start);
    RUN(unfinished_utf8_becomes_replacement_at_end);
    RUN(invalid_stop_rejected);
    RUN(utf8_validator);
    RUN(after_stop_nothing_more);
    qe_tokenizer_free(tok);
    return TEST_DONE();
}
