/* eval.c - tree-walking evaluator. */
#include "eval.h"
#include "parser.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>

#define MAX_ARGS 16

typedef struct evaluator {
    calc_env *env;
    char *err;
    size_t errlen;
} evaluator;

static int fail(evaluator *ev, const char *msg, const char *detail)
{
    if (detail)
        snprintf(ev->err, ev->errlen, "%s: %s", msg, detail);
    else
        snprintf(ev->err, ev->errlen, "%s", msg);
    return 0;
}

static int ipow(evaluator *ev, long long base, long long exp, long long *out)
{
    long long r = 1;
    if (exp < 0)
        return fail(ev, "negative exponent", NULL);
    while (exp) {
        if (exp & 1) {
            if (__builtin_mul_overflow(r, base, &r))
                return fail(ev, "overflow", "^");
        }
        exp >>= 1;
        if (exp && __builtin_mul_overflow(base, base, &base))
            return fail(ev, "overflow", "^");
    }
    *out = r;
    return 1;
}

static int eval_node(evaluator *ev, const node *n, long long *out);

static int eval_binop(evaluator *ev, const node *n, long long *out)
{
    long long a, b;
    if (!eval_node(ev, n->lhs, &a) || !eval_node(ev, n->rhs, &b))
        return 0;
    switch (n->op) {
    case '+':
        if (__builtin_add_overflow(a, b, out))
            return fail(ev, "overflow", "+");
        return 1;
    case '-':
        if (__builtin_sub_overflow(a, b, out))
            return fail(ev, "overflow", "-");
        return 1;
    case '*':
        if (__builtin_mul_overflow(a, b, out))
            return fail(ev, "overflow", "*");
        return 1;
    case '/':
    case '%':
        if (b == 0)
            return fail(ev, "division by zero", NULL);
        if (a == LLONG_MIN && b == -1)
            return fail(ev, "overflow", "/");
        *out = n->op == '/' ? a / b : a % b;
        return 1;
    case '^':
        return ipow(ev, a, b, out);
    default:
        return fail(ev, "internal error", "bad operator");
    }
}

static int eval_call(evaluator *ev, const node *n, long long *out)
{
    const builtin *b = builtin_lookup(n->name);
    long long args[MAX_ARGS];
    int i;

    if (!b)
        return fail(ev, "unknown function", n->name);
    if (n->nargs < b->min_args || n->nargs > b->max_args || n->nargs > MAX_ARGS)
        return fail(ev, "wrong number of arguments", n->name);
    for (i = 0; i < n->nargs; i++)
        if (!eval_node(ev, n->args[i], &args[i]))
            return 0;
    return b->fn(args, n->nargs, out, ev->err, ev->errlen);
}

static int eval_node(evaluator *ev, const node *n, long long *out)
{
    ev->env->steps++;
    switch (n->kind) {
    case N_NUM:
        *out = n->num;
        return 1;
    case N_VAR:
        if (!env_get(ev->env, n->name, out))
            return fail(ev, "undefined variable", n->name);
        return 1;
    case N_NEG:
        if (!eval_node(ev, n->lhs, out))
            return 0;
        if (*out == LLONG_MIN)
            return fail(ev, "overflow", "unary -");
        *out = -*out;
        return 1;
    case N_BINOP:
        return eval_binop(ev, n, out);
    case N_CALL:
        return eval_call(ev, n, out);
    case N_ASSIGN:
        if (!eval_node(ev, n->lhs, out))
            return 0;
        env_set(ev->env, n->name, *out);
        return 1;
    case N_SEQ:
        return eval_node(ev, n->lhs, out) && eval_node(ev, n->rhs, out);
    }
    return fail(ev, "internal error", "bad node");
}

eval_result eval_tree(const node *tree, calc_env *env)
{
    eval_result r;
    evaluator ev;

    memset(&r, 0, sizeof(r));
    ev.env = env;
    ev.err = r.error;
    ev.errlen = sizeof(r.error);
    r.ok = eval_node(&ev, tree, &r.value);
    if (!r.ok)
        r.value = 0;
    return r;
}

eval_result eval_string(const char *src, calc_env *env)
{
    parse_result p = parse_program(src);
    eval_result r;

    if (!p.tree) {
        memset(&r, 0, sizeof(r));
        snprintf(r.error, sizeof(r.error), "syntax error at %zu: %.100s",
                 p.error_pos, p.error);
        return r;
    }
    r = eval_tree(p.tree, env);
    ast_free(p.tree);
    return r;
}
