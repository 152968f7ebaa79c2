/* Preprocessed assembly: the preprocessor runs before the assembler. */
#define RETURN_VALUE 42
        .text
        .globl  tricky_asm_answer
        .type   tricky_asm_answer, @function
tricky_asm_answer:
        movl    $RETURN_VALUE, %eax
        ret
        .size   tricky_asm_answer, .-tricky_asm_answer
        .section .note.GNU-stack,"",@progbits
