/* parser.c - builds an AST from tokens. */
#include "parser.h"

#include <setjmp.h>
#include <stdio.h>
#include <string.h>

typedef struct parser {
    lexer lx;
    token cur;
    token peek;
    jmp_buf fail;
    char *error;
    size_t *error_pos;
    node *pending[64];  /* partial trees to free on error */
    int npending;
} parser;

static void advance(parser *p)
{
    p->cur = p->peek;
    p->peek = lexer_next(&p->lx);
}

static void syntax_error(parser *p, const char *what)
{
    if (p->cur.kind == TOK_EOF)
        snprintf(p->error, 128, "%s at end of input", what);
    else
        snprintf(p->error, 128, "%s near '%.*s'", what,
                 (int)p->cur.len, p->cur.start);
    *p->error_pos = p->cur.pos;
    longjmp(p->fail, 1);
}

static void expect(parser *p, tok_kind kind)
{
    char msg[64];
    if (p->cur.kind != kind) {
        snprintf(msg, sizeof(msg), "expected '%s'", tok_kind_name(kind));
        syntax_error(p, msg);
    }
    advance(p);
}

/* Keep partially built subtrees reachable so they can be freed on error. */
static node *hold(parser *p, node *n)
{
    if (p->npending < (int)(sizeof(p->pending) / sizeof(p->pending[0])))
        p->pending[p->npending++] = n;
    else
        syntax_error(p, "expression nested too deeply");
    return n;
}

static node *release(parser *p, node *n)
{
    int i;
    for (i = p->npending - 1; i >= 0; i--) {
        if (p->pending[i] == n) {
            memmove(&p->pending[i], &p->pending[i + 1],
                    (size_t)(p->npending - i - 1) * sizeof(node *));
            p->npending--;
            break;
        }
    }
    return n;
}

static node *parse_expr(parser *p);
static node *parse_unary(parser *p);

static node *parse_primary(parser *p)
{
    token t = p->cur;
    node *n;

    switch (t.kind) {
    case TOK_NUM:
        advance(p);
        return ast_num(t.num);
    case TOK_IDENT:
        advance(p);
        if (p->cur.kind != TOK_LPAREN)
            return ast_var(t.start, t.len);
        advance(p);
        n = hold(p, ast_call(t.start, t.len));
        if (p->cur.kind != TOK_RPAREN) {
            for (;;) {
                ast_call_add_arg(n, release(p, parse_expr(p)));
                if (p->cur.kind != TOK_COMMA)
                    break;
                advance(p);
            }
        }
        expect(p, TOK_RPAREN);
        return release(p, n);
    case TOK_LPAREN:
        advance(p);
        n = hold(p, parse_expr(p));
        expect(p, TOK_RPAREN);
        return release(p, n);
    case TOK_ERROR:
        syntax_error(p, "unexpected character");
        return NULL;
    default:
        syntax_error(p, "expected an expression");
        return NULL;
    }
}

static node *parse_power(parser *p)
{
    node *base = parse_primary(p);
    if (p->cur.kind == TOK_CARET) {
        node *exp;
        advance(p);
        hold(p, base);
        exp = parse_unary(p);
        return ast_binop('^', release(p, base), exp);
    }
    return base;
}

static node *parse_unary(parser *p)
{
    if (p->cur.kind == TOK_MINUS) {
        advance(p);
        return ast_neg(parse_unary(p));
    }
    if (p->cur.kind == TOK_PLUS) {
        advance(p);
        return parse_unary(p);
    }
    return parse_power(p);
}

static node *parse_term(parser *p)
{
    node *lhs = parse_unary(p);
    while (p->cur.kind == TOK_STAR || p->cur.kind == TOK_SLASH ||
           p->cur.kind == TOK_PERCENT) {
        char op = *p->cur.start;
        node *rhs;
        advance(p);
        hold(p, lhs);
        rhs = parse_unary(p);
        lhs = ast_binop(op, release(p, lhs), rhs);
    }
    return lhs;
}

static node *parse_expr(parser *p)
{
    node *lhs = parse_term(p);
    while (p->cur.kind == TOK_PLUS || p->cur.kind == TOK_MINUS) {
        char op = *p->cur.start;
        node *rhs;
        advance(p);
        hold(p, lhs);
        rhs = parse_term(p);
        lhs = ast_binop(op, release(p, lhs), rhs);
    }
    return lhs;
}

static node *parse_stmt(parser *p)
{
    if (p->cur.kind == TOK_IDENT && p->peek.kind == TOK_ASSIGN) {
        token name = p->cur;
        advance(p);
        advance(p);
        return ast_assign(name.start, name.len, parse_expr(p));
    }
    return parse_expr(p);
}

parse_result parse_program(const char *src)
{
    parse_result r;
    parser p;
    node *volatile tree = NULL;
    int i;

    memset(&r, 0, sizeof(r));
    memset(&p, 0, sizeof(p));
    p.error = r.error;
    p.error_pos = &r.error_pos;
    lexer_init(&p.lx, src);
    p.peek = lexer_next(&p.lx);
    advance(&p);

    if (setjmp(p.fail)) {
        for (i = 0; i < p.npending; i++)
            ast_free(p.pending[i]);
        r.tree = NULL;
        return r;
    }

    tree = hold(&p, parse_stmt(&p));
    while (p.cur.kind == TOK_SEMI) {
        advance(&p);
        if (p.cur.kind == TOK_EOF)
            break;
        node *next = parse_stmt(&p);
        tree = hold(&p, ast_seq(release(&p, tree), next));
    }
    if (p.cur.kind != TOK_EOF)
        syntax_error(&p, "unexpected token");
    r.tree = release(&p, tree);
    return r;
}
