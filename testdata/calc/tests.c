/* tests.c - self tests for the lexer, parser, evaluator, hash table and
 * string buffer.  Output is deterministic so `make check` can diff it. */
#include "tests.h"
#include "eval.h"
#include "hashtab.h"
#include "lexer.h"
#include "parser.h"
#include "strbuf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int g_run, g_failed, g_verbose;

static void report(const char *group, const char *name, int ok, const char *detail)
{
    g_run++;
    if (!ok)
        g_failed++;
    if (g_verbose || !ok)
        printf("%s %3d %-8s %s%s%s\n", ok ? "ok  " : "FAIL", g_run, group, name,
               detail && *detail ? "  -- " : "", detail ? detail : "");
}

struct eval_case {
    const char *src;
    int ok;
    long long value;        /* when ok */
    const char *error;      /* substring expected in the error otherwise */
};

static const struct eval_case eval_cases[] = {
    { "1 + 2 * 3",                 1, 7, NULL },
    { "(1 + 2) * 3",               1, 9, NULL },
    { "2 ^ 3 ^ 2",                 1, 512, NULL },
    { "-2 ^ 2",                    1, -4, NULL },
    { "(-2) ^ 2",                  1, 4, NULL },
    { "17 % 5 + 17 / 5",           1, 5, NULL },
    { "0x1f + 0XA",                1, 41, NULL },
    { "1_000_000 / kib",           1, 976, NULL },
    { "answer",                    1, 42, NULL },
    { "x = 6; y = 7; x * y",       1, 42, NULL },
    { "x = 2; x = x * x; x ^ x",   1, 256, NULL },
    { "max(3, 9, -2) - min(4, 1)", 1, 8, NULL },
    { "gcd(84, 36, 120)",          1, 12, NULL },
    { "lcm(4, 6, 10)",             1, 60, NULL },
    { "fact(10)",                  1, 3628800, NULL },
    { "fib(90)",                   1, 2880067194370816120LL, NULL },
    { "isqrt(1000000007)",         1, 31622, NULL },
    { "clamp(15, 0, 10) + abs(-3)",1, 13, NULL },
    { "# comment\n 5 - - 5",       1, 10, NULL },
    { "1 + 2;",                    1, 3, NULL },
    { "1 / 0",                     0, 0, "division by zero" },
    { "5 % (3 - 3)",               0, 0, "division by zero" },
    { "nope + 1",                  0, 0, "undefined variable: nope" },
    { "frob(1)",                   0, 0, "unknown function: frob" },
    { "abs(1, 2)",                 0, 0, "wrong number of arguments" },
    { "2 ^ -1",                    0, 0, "negative exponent" },
    { "2 ^ 63",                    0, 0, "overflow" },
    { "9223372036854775807 + 1",   0, 0, "overflow" },
    { "fact(21)",                  0, 0, "out of range" },
    { "1 +",                       0, 0, "expected an expression" },
    { "(1 + 2",                    0, 0, "expected ')'" },
    { "1 2",                       0, 0, "unexpected token" },
    { "3 $ 4",                     0, 0, "unexpected" },
    { "max(1,",                    0, 0, "syntax error" },
};

static void test_eval(void)
{
    size_t i;
    char detail[256];

    for (i = 0; i < sizeof(eval_cases) / sizeof(eval_cases[0]); i++) {
        const struct eval_case *c = &eval_cases[i];
        calc_env env;
        eval_result r;
        int ok;

        env_init(&env);
        r = eval_string(c->src, &env);
        if (c->ok)
            ok = r.ok && r.value == c->value;
        else
            ok = !r.ok && strstr(r.error, c->error) != NULL;
        if (r.ok)
            snprintf(detail, sizeof(detail), "= %lld", r.value);
        else
            snprintf(detail, sizeof(detail), "%s", r.error);
        {
            char name[64];
            size_t j, k = 0;
            for (j = 0; c->src[j] && k < sizeof(name) - 1; j++)
                name[k++] = c->src[j] == '\n' ? ' ' : c->src[j];
            name[k] = '\0';
            report("eval", name, ok, detail);
        }
        env_free(&env);
    }
}

static void test_lexer(void)
{
    lexer lx;
    token t;
    static const tok_kind want[] = {
        TOK_IDENT, TOK_ASSIGN, TOK_NUM, TOK_STAR, TOK_LPAREN, TOK_IDENT,
        TOK_COMMA, TOK_NUM, TOK_RPAREN, TOK_SEMI, TOK_EOF
    };
    size_t i;
    int ok = 1;

    lexer_init(&lx, "abc_1 = 0x10 * (f, 7) ; # trailing comment");
    for (i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        t = lexer_next(&lx);
        if (t.kind != want[i])
            ok = 0;
        if (i == 2 && t.num != 16)
            ok = 0;
    }
    report("lexer", "token stream", ok, NULL);
    report("lexer", "count", lexer_count("1+2*(3-4)") == 9, NULL);
    report("lexer", "error", lexer_count("1 @ 2") == -1, NULL);
    report("lexer", "names", strcmp(tok_kind_name(TOK_CARET), "^") == 0, NULL);
}

static void test_parser(void)
{
    static const struct { const char *src, *dump; int depth; } cases[] = {
        { "1 + 2 * 3",       "(1 + (2 * 3))", 3 },
        { "1 - 2 - 3",       "((1 - 2) - 3)", 3 },
        { "2 ^ 3 ^ 4",       "(2 ^ (3 ^ 4))", 3 },
        { "-a * b",          "((-a) * b)", 3 },
        { "f(1, g(2), x)",   "f(1, g(2), x)", 3 },
        { "a = 1; b = a + 1","a = 1; b = (a + 1)", 4 },
    };
    size_t i;
    strbuf sb;

    sb_init(&sb);
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        parse_result p = parse_program(cases[i].src);
        int ok = p.tree != NULL;
        sb_reset(&sb);
        if (ok) {
            ast_dump(p.tree, &sb);
            ok = strcmp(sb_str(&sb), cases[i].dump) == 0 &&
                 ast_depth(p.tree) == cases[i].depth;
        }
        report("parser", cases[i].src, ok, sb_str(&sb));
        ast_free(p.tree);
    }
    sb_free(&sb);
}

static void test_hashtab(void)
{
    hashtab ht;
    char key[32];
    long long v, sum = 0;
    int i, ok = 1;

    ht_init(&ht);
    for (i = 0; i < 1000; i++) {
        snprintf(key, sizeof(key), "k%d", i);
        ht_set(&ht, key, i * 3);
    }
    for (i = 0; i < 1000; i++) {
        snprintf(key, sizeof(key), "k%d", i);
        if (!ht_get(&ht, key, &v) || v != i * 3)
            ok = 0;
    }
    report("hashtab", "insert/lookup 1000", ok && ht_count(&ht) == 1000, NULL);

    for (i = 0; i < 1000; i += 2) {
        snprintf(key, sizeof(key), "k%d", i);
        ht_remove(&ht, key);
    }
    ok = ht_count(&ht) == 500 && !ht_get(&ht, "k0", NULL) && ht_get(&ht, "k1", &v) && v == 3;
    report("hashtab", "remove half", ok, NULL);

    for (i = 0; i < 5000; i++) {  /* churn: exercises tombstone reuse */
        snprintf(key, sizeof(key), "t%d", i % 7);
        ht_set(&ht, key, i);
        ht_remove(&ht, key);
    }
    for (i = 1; i < 1000; i += 2) {
        snprintf(key, sizeof(key), "k%d", i);
        if (ht_get(&ht, key, &v))
            sum += v;
    }
    report("hashtab", "churn keeps data", sum == 750000 && ht_count(&ht) == 500, NULL);
    ht_free(&ht);
}

static void test_strbuf(void)
{
    strbuf sb;
    char *s;
    int i, ok;

    sb_init(&sb);
    report("strbuf", "empty", strcmp(sb_str(&sb), "") == 0, NULL);
    for (i = 0; i < 100; i++)
        sb_printf(&sb, "%02d,", i);
    ok = sb.len == 300 && strncmp(sb.buf + 297, "99,", 3) == 0;
    report("strbuf", "printf append", ok, NULL);
    sb_reset(&sb);
    fmt_grouped(&sb, -1234567);
    sb_putc(&sb, ' ');
    fmt_hex(&sb, 255);
    sb_putc(&sb, ' ');
    fmt_binary(&sb, 10);
    report("strbuf", "formatting", strcmp(sb_str(&sb), "-1,234,567 0xff 0b1010") == 0, sb_str(&sb));
    s = sb_detach(&sb);
    report("strbuf", "detach", sb.buf == NULL && s[0] == '-', NULL);
    free(s);
}

static void test_checksum(void)
{
    report("misc", "checksum", warn_checksum("calc") == 2090140664u, NULL);
    report("misc", "builtins sorted",
           builtin_lookup("min") && builtin_lookup("abs") && !builtin_lookup("zzz"),
           NULL);
}

int run_all_tests(int verbose)
{
    g_run = g_failed = 0;
    g_verbose = verbose;
    test_lexer();
    test_parser();
    test_eval();
    test_hashtab();
    test_strbuf();
    test_checksum();
    printf("%d tests, %d passed, %d failed\n", g_run, g_run - g_failed, g_failed);
    return g_failed;
}
