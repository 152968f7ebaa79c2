/* parser.h - recursive-descent parser for calc programs. */
#ifndef CALC_PARSER_H
#define CALC_PARSER_H

#include "ast.h"
#include "lexer.h"

typedef struct parse_result {
    node *tree;         /* NULL on error */
    char error[128];    /* message when tree is NULL */
    size_t error_pos;
} parse_result;

/*
 * Grammar:
 *   program := stmt (';' stmt)* [';']
 *   stmt    := IDENT '=' expr | expr
 *   expr    := term (('+' | '-') term)*
 *   term    := unary (('*' | '/' | '%') unary)*
 *   unary   := '-' unary | power
 *   power   := primary ['^' unary]          (right associative)
 *   primary := NUM | IDENT | IDENT '(' [expr (',' expr)*] ')' | '(' expr ')'
 */
parse_result parse_program(const char *src);

#endif
