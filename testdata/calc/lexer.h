/* lexer.h - tokenizer for calc expressions. */
#ifndef CALC_LEXER_H
#define CALC_LEXER_H

#include <stddef.h>

typedef enum tok_kind {
    TOK_EOF = 0,
    TOK_NUM,
    TOK_IDENT,
    TOK_PLUS,
    TOK_MINUS,
    TOK_STAR,
    TOK_SLASH,
    TOK_PERCENT,
    TOK_CARET,
    TOK_LPAREN,
    TOK_RPAREN,
    TOK_COMMA,
    TOK_ASSIGN,
    TOK_SEMI,
    TOK_ERROR
} tok_kind;

typedef struct token {
    tok_kind kind;
    long long num;       /* TOK_NUM */
    const char *start;   /* points into the source text */
    size_t len;
    size_t pos;          /* byte offset in the source */
} token;

typedef struct lexer {
    const char *src;
    size_t pos;
} lexer;

void lexer_init(lexer *lx, const char *src);
token lexer_next(lexer *lx);
const char *tok_kind_name(tok_kind k);
/* Tokenize the whole string and return the number of tokens (without EOF),
 * or -1 on a lexical error. */
int lexer_count(const char *src);

#endif
