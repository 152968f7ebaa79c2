/* ast.c - constructors, destructor and printer for expression trees. */
#include "ast.h"
#include "util.h"

#include <stdlib.h>

static node *new_node(node_kind kind)
{
    node *n = xcalloc(1, sizeof(*n));
    n->kind = kind;
    return n;
}

node *ast_num(long long v)
{
    node *n = new_node(N_NUM);
    n->num = v;
    return n;
}

node *ast_var(const char *name, size_t len)
{
    node *n = new_node(N_VAR);
    n->name = xstrndup(name, len);
    return n;
}

node *ast_neg(node *operand)
{
    node *n = new_node(N_NEG);
    n->lhs = operand;
    return n;
}

node *ast_binop(char op, node *lhs, node *rhs)
{
    node *n = new_node(N_BINOP);
    n->op = op;
    n->lhs = lhs;
    n->rhs = rhs;
    return n;
}

node *ast_call(const char *name, size_t len)
{
    node *n = new_node(N_CALL);
    n->name = xstrndup(name, len);
    return n;
}

void ast_call_add_arg(node *call, node *arg)
{
    call->args = xrealloc(call->args, (size_t)(call->nargs + 1) * sizeof(node *));
    call->args[call->nargs++] = arg;
}

node *ast_assign(const char *name, size_t len, node *value)
{
    node *n = new_node(N_ASSIGN);
    n->name = xstrndup(name, len);
    n->lhs = value;
    return n;
}

node *ast_seq(node *first, node *second)
{
    node *n = new_node(N_SEQ);
    n->lhs = first;
    n->rhs = second;
    return n;
}

void ast_free(node *n)
{
    int i;
    if (!n)
        return;
    ast_free(n->lhs);
    ast_free(n->rhs);
    for (i = 0; i < n->nargs; i++)
        ast_free(n->args[i]);
    free(n->args);
    free(n->name);
    free(n);
}

void ast_dump(const node *n, strbuf *out)
{
    int i;
    switch (n->kind) {
    case N_NUM:
        sb_printf(out, "%lld", n->num);
        break;
    case N_VAR:
        sb_puts(out, n->name);
        break;
    case N_NEG:
        sb_puts(out, "(-");
        ast_dump(n->lhs, out);
        sb_putc(out, ')');
        break;
    case N_BINOP:
        sb_putc(out, '(');
        ast_dump(n->lhs, out);
        sb_printf(out, " %c ", n->op);
        ast_dump(n->rhs, out);
        sb_putc(out, ')');
        break;
    case N_CALL:
        sb_printf(out, "%s(", n->name);
        for (i = 0; i < n->nargs; i++) {
            if (i)
                sb_puts(out, ", ");
            ast_dump(n->args[i], out);
        }
        sb_putc(out, ')');
        break;
    case N_ASSIGN:
        sb_printf(out, "%s = ", n->name);
        ast_dump(n->lhs, out);
        break;
    case N_SEQ:
        ast_dump(n->lhs, out);
        sb_puts(out, "; ");
        ast_dump(n->rhs, out);
        break;
    }
}

int ast_depth(const node *n)
{
    int d = 0, i, c;
    if (!n)
        return 0;
    c = ast_depth(n->lhs);
    if (c > d)
        d = c;
    c = ast_depth(n->rhs);
    if (c > d)
        d = c;
    for (i = 0; i < n->nargs; i++) {
        c = ast_depth(n->args[i]);
        if (c > d)
            d = c;
    }
    return d + 1;
}

int ast_count(const node *n)
{
    int c, i;
    if (!n)
        return 0;
    c = 1 + ast_count(n->lhs) + ast_count(n->rhs);
    for (i = 0; i < n->nargs; i++)
        c += ast_count(n->args[i]);
    return c;
}
