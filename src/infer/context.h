/* context.h — what the library's own front ends (generation) need of an evaluation
 * context beyond the public API. */
#ifndef MC_CONTEXT_H
#define MC_CONTEXT_H

#include "mambac.h"

const mambac_model *mc_context_model(const mambac_context *ctx);

#endif
