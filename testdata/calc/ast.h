/* ast.h - expression tree. */
#ifndef CALC_AST_H
#define CALC_AST_H

#include "strbuf.h"

typedef enum node_kind {
    N_NUM,
    N_VAR,
    N_NEG,
    N_BINOP,
    N_CALL,
    N_ASSIGN,
    N_SEQ
} node_kind;

typedef struct node node;

struct node {
    node_kind kind;
    long long num;      /* N_NUM */
    char *name;         /* N_VAR, N_CALL, N_ASSIGN */
    char op;            /* N_BINOP: one of + - * / % ^ */
    node *lhs, *rhs;    /* N_BINOP, N_SEQ; N_NEG/N_ASSIGN use lhs */
    node **args;        /* N_CALL */
    int nargs;
};

node *ast_num(long long v);
node *ast_var(const char *name, size_t len);
node *ast_neg(node *operand);
node *ast_binop(char op, node *lhs, node *rhs);
node *ast_call(const char *name, size_t len);
void ast_call_add_arg(node *call, node *arg);
node *ast_assign(const char *name, size_t len, node *value);
node *ast_seq(node *first, node *second);
void ast_free(node *n);
/* Fully parenthesised rendering, e.g. "(1 + (2 * 3))". */
void ast_dump(const node *n, strbuf *out);
int ast_depth(const node *n);
int ast_count(const node *n);

#endif
