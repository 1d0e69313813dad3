/* One instruction set's and dtype's SIMD kernels (simd.h defines their parameters before
 * each inclusion): the direct convolution and 2 x 2 max pooling; then the parameters go. */
#include "conv_direct.h"
#include "maxpool2.h"

#undef T
#undef NAME
#undef TARGET
#undef V
#undef VW
#undef ZERO
#undef SET1
#undef LOAD
#undef STORE
#undef FMA
#undef MASK_T
#undef MASK
#undef MLOAD
#undef MSTORE
#undef M
#undef M_OR
#undef M_AND
#undef M_ANDNOT
#undef M_ALL
#undef GT
#undef EQ
#undef ISNAN
#undef SEL
#undef EVEN
#undef ODD
#undef LO
#undef HI
#undef UNITS
