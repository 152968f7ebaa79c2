/* Found only through -iquote, for #include "quoted.h". */
#ifndef QUOTED_H
#define QUOTED_H
#define QUOTED_GREETING "hello from -iquote"
#endif
