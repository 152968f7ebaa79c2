/* env.c - variable environment backed by the hash table. */
#include "eval.h"

void env_init(calc_env *env)
{
    ht_init(&env->vars);
    env->steps = 0;
    /* predefined constants */
    env_set(env, "answer", 42);
    env_set(env, "kib", 1024);
}

void env_free(calc_env *env)
{
    ht_free(&env->vars);
}

int env_get(const calc_env *env, const char *name, long long *out)
{
    return ht_get(&env->vars, name, out);
}

void env_set(calc_env *env, const char *name, long long value)
{
    ht_set(&env->vars, name, value);
}

static void dump_one(const char *key, long long value, void *ctx)
{
    strbuf *out = ctx;
    sb_printf(out, "%s=%lld\n", key, value);
}

void env_dump(const calc_env *env, strbuf *out)
{
    ht_foreach_sorted(&env->vars, dump_one, out);
}
