/* lexer.c - turns source text into tokens. */
#include "lexer.h"

#include <ctype.h>

void lexer_init(lexer *lx, const char *src)
{
    lx->src = src;
    lx->pos = 0;
}

static token make_tok(lexer *lx, tok_kind kind, size_t start, size_t len)
{
    token t;
    t.kind = kind;
    t.num = 0;
    t.start = lx->src + start;
    t.len = len;
    t.pos = start;
    return t;
}

static void skip_space_and_comments(lexer *lx)
{
    for (;;) {
        char c = lx->src[lx->pos];
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
            lx->pos++;
        } else if (c == '#') {
            while (lx->src[lx->pos] && lx->src[lx->pos] != '\n')
                lx->pos++;
        } else {
            return;
        }
    }
}

static token lex_number(lexer *lx)
{
    size_t start = lx->pos;
    long long v = 0;
    int base = 10;
    token t;

    if (lx->src[lx->pos] == '0' &&
        (lx->src[lx->pos + 1] == 'x' || lx->src[lx->pos + 1] == 'X') &&
        isxdigit((unsigned char)lx->src[lx->pos + 2])) {
        base = 16;
        lx->pos += 2;
    }
    for (;;) {
        char c = lx->src[lx->pos];
        int d;
        if (c >= '0' && c <= '9')
            d = c - '0';
        else if (base == 16 && c >= 'a' && c <= 'f')
            d = c - 'a' + 10;
        else if (base == 16 && c >= 'A' && c <= 'F')
            d = c - 'A' + 10;
        else if (c == '_')
            d = -1; /* digit separator */
        else
            break;
        if (d >= 0)
            v = v * base + d;
        lx->pos++;
    }
    t = make_tok(lx, TOK_NUM, start, lx->pos - start);
    t.num = v;
    return t;
}

token lexer_next(lexer *lx)
{
    size_t start;
    char c;

    skip_space_and_comments(lx);
    start = lx->pos;
    c = lx->src[lx->pos];

    if (c == '\0')
        return make_tok(lx, TOK_EOF, start, 0);
    if (isdigit((unsigned char)c))
        return lex_number(lx);
    if (isalpha((unsigned char)c) || c == '_') {
        while (isalnum((unsigned char)lx->src[lx->pos]) || lx->src[lx->pos] == '_')
            lx->pos++;
        return make_tok(lx, TOK_IDENT, start, lx->pos - start);
    }

    lx->pos++;
    switch (c) {
    case '+': return make_tok(lx, TOK_PLUS, start, 1);
    case '-': return make_tok(lx, TOK_MINUS, start, 1);
    case '*': return make_tok(lx, TOK_STAR, start, 1);
    case '/': return make_tok(lx, TOK_SLASH, start, 1);
    case '%': return make_tok(lx, TOK_PERCENT, start, 1);
    case '^': return make_tok(lx, TOK_CARET, start, 1);
    case '(': return make_tok(lx, TOK_LPAREN, start, 1);
    case ')': return make_tok(lx, TOK_RPAREN, start, 1);
    case ',': return make_tok(lx, TOK_COMMA, start, 1);
    case '=': return make_tok(lx, TOK_ASSIGN, start, 1);
    case ';': return make_tok(lx, TOK_SEMI, start, 1);
    default:  return make_tok(lx, TOK_ERROR, start, 1);
    }
}

const char *tok_kind_name(tok_kind k)
{
    static const char *const names[] = {
        "EOF", "NUM", "IDENT", "+", "-", "*", "/", "%", "^",
        "(", ")", ",", "=", ";", "ERROR"
    };
    if ((unsigned)k < sizeof(names) / sizeof(names[0]))
        return names[k];
    return "?";
}

int lexer_count(const char *src)
{
    lexer lx;
    int n = 0;
    lexer_init(&lx, src);
    for (;;) {
        token t = lexer_next(&lx);
        if (t.kind == TOK_EOF)
            return n;
        if (t.kind == TOK_ERROR)
            return -1;
        n++;
    }
}
