/* Opcode kinds as a C table, shared by the validator (vm.c) and the run loop (run.c). */
#ifndef FASTAD_KINDS_H
#define FASTAD_KINDS_H

#include "vm.h"

enum fa_kind { K_UNARY, K_CONST, K_BINARY, K_COPY, K_FILL, K_SUM, K_MATMUL, K_ROWS };

static const unsigned char kind_of[] = {
#define FA_KIND(name, kind) K_##kind,
    FA_OPCODES(FA_KIND)
#undef FA_KIND
};

/* The number of elements a (validated) group member computes. */
static inline int64_t group_elements(const fa_instr *ins)
{
    return kind_of[ins->op] == K_BINARY ? ins->shape[0] : ins->n;
}

#endif
