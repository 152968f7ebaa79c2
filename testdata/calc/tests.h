/* tests.h - built-in self tests. */
#ifndef CALC_TESTS_H
#define CALC_TESTS_H

/* Runs every test, prints one line per test and a summary line.
 * Returns the number of failures. */
int run_all_tests(int verbose);

#endif
