/* main.c - calc: evaluate expressions from the command line or stdin,
 * or run the built-in self tests.
 *
 *   calc                 run the self tests (verbose), exit 1 on failure
 *   calc -q              run the self tests, print failures and summary only
 *   calc -e EXPR...      evaluate each EXPR in one shared environment
 *   calc -               evaluate stdin line by line
 *   calc -l              list builtin functions
 */
#include "eval.h"
#include "tests.h"

#include <stdio.h>
#include <string.h>

static int eval_and_print(calc_env *env, const char *src)
{
    eval_result r = eval_string(src, env);
    strbuf sb;

    sb_init(&sb);
    fmt_result(&sb, &r);
    puts(sb_str(&sb));
    sb_free(&sb);
    return r.ok;
}

static int run_stdin(void)
{
    calc_env env;
    char line[4096];
    int failures = 0;

    env_init(&env);
    while (fgets(line, sizeof(line), stdin)) {
        line[strcspn(line, "\n")] = '\0';
        if (line[0] == '\0')
            continue;
        if (!eval_and_print(&env, line))
            failures++;
    }
    env_free(&env);
    return failures ? 1 : 0;
}

static void list_builtins(void)
{
    int i;
    for (i = 0; i < builtin_count(); i++) {
        const builtin *b = builtin_at(i);
        if (b->min_args == b->max_args)
            printf("%s/%d\n", b->name, b->min_args);
        else
            printf("%s/%d..%d\n", b->name, b->min_args, b->max_args);
    }
}

int main(int argc, char **argv)
{
    if (argc == 1)
        return run_all_tests(1) ? 1 : 0;
    if (strcmp(argv[1], "-q") == 0)
        return run_all_tests(0) ? 1 : 0;
    if (strcmp(argv[1], "-") == 0)
        return run_stdin();
    if (strcmp(argv[1], "-l") == 0) {
        list_builtins();
        return 0;
    }
    if (strcmp(argv[1], "-e") == 0) {
        calc_env env;
        int i, failures = 0;
        env_init(&env);
        for (i = 2; i < argc; i++)
            if (!eval_and_print(&env, argv[i]))
                failures++;
        env_free(&env);
        return failures ? 1 : 0;
    }
    fprintf(stderr, "usage: calc [-q | -l | - | -e EXPR...]\n");
    return 2;
}
