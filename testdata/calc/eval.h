/* eval.h - evaluator for calc expression trees. */
#ifndef CALC_EVAL_H
#define CALC_EVAL_H

#include "ast.h"
#include "hashtab.h"
#include "strbuf.h"

typedef struct calc_env {
    hashtab vars;
    unsigned long steps;    /* nodes evaluated, for statistics */
} calc_env;

typedef struct eval_result {
    int ok;
    long long value;
    char error[128];
} eval_result;

/* env.c */
void env_init(calc_env *env);
void env_free(calc_env *env);
int env_get(const calc_env *env, const char *name, long long *out);
void env_set(calc_env *env, const char *name, long long value);
void env_dump(const calc_env *env, strbuf *out);

/* builtins.c */
typedef int (*builtin_fn)(const long long *args, int nargs, long long *out,
                          char *err, size_t errlen);
typedef struct builtin {
    const char *name;
    int min_args;
    int max_args;
    builtin_fn fn;
} builtin;

const builtin *builtin_lookup(const char *name);
int builtin_count(void);
const builtin *builtin_at(int i);

/* eval.c */
eval_result eval_tree(const node *tree, calc_env *env);
eval_result eval_string(const char *src, calc_env *env);

/* format.c */
void fmt_grouped(strbuf *out, long long v);
void fmt_hex(strbuf *out, long long v);
void fmt_binary(strbuf *out, long long v);
void fmt_result(strbuf *out, const eval_result *r);

/* warn.c */
unsigned warn_checksum(const char *s);

#endif
