#ifndef HEED_CBLAS_SHIM_H
#define HEED_CBLAS_SHIM_H

#if defined(__APPLE__)
#define ACCELERATE_NEW_LAPACK 1
#include <Accelerate/Accelerate.h>
/// Accelerate manages its own threads; nothing to set.
static inline void heed_blas_set_threads(int threads) { (void)threads; }
static inline int heed_blas_get_threads(void) { return 1; }
#else
#include <cblas.h>
/// OpenBLAS thread count: 1 inside Heed's own parallel regions, all cores otherwise.
static inline void heed_blas_set_threads(int threads) { openblas_set_num_threads(threads); }
static inline int heed_blas_get_threads(void) { return openblas_get_num_threads(); }
#endif

#endif
