// The bf16 compute mode's kernels (`--compute bf16`): AVX512_BF16's vdpbf16ps, built only for x86-64 and
// called only on CPUs whose flags include avx512f, avx512bw, avx512dq, avx512vl and avx512_bf16 (ModelRuntime's
// `ComputeMode` checks them). Written in C because Swift has no type that lowers to LLVM's bfloat vectors,
// which the instruction's intrinsic takes.
//
// The order of one output (documented in README, "--compute bf16"): x and W rounded to bf16 (round to
// nearest even from the Float32 value; NaN stays NaN, quiet), both padded with zeros to kp, a multiple of 32;
// sixteen Float32 lanes from +0, chunk c = 0, 1, … of 32 elements in increasing order, each one vdpbf16ps:
// lane l += x[32c+2l+1]·w[32c+2l+1], then += x[32c+2l]·w[32c+2l] (each a fused multiply-add as the
// instruction defines it: denormal inputs as zero, denormal results flushed to zero, round to nearest even);
// then the sixteen lanes reduced pairwise as in the Float32 kernels (i + i+8, i + i+4, i + i+2, 0 + 1). The same operations for every output whatever m, the tiling or
// the thread, so results do not depend on --threads, batching or the number of rows.
#ifndef ABLAB_KERNELS_BF16_H
#define ABLAB_KERNELS_BF16_H

#include <stdint.h>

/// dst[r, 0..<kp] = bf16(src[r, 0..<cols]) padded with zeros, for r < rows. src: [rows, lds] Float32,
/// dst: [rows, kp] bf16 bits (kp ≥ cols, a multiple of 32).
void ablab_bf16_round_rows(const float *src, long rows, long cols, long lds, uint16_t *dst, long kp);

/// out[i, j] (+)= Σ_p x[i, p] · w[j, p] in the bf16 order above, for i < m, j < nj. w: [nj, kp] bf16,
/// x: [m, kp] bf16, out: [m, ldo] Float32. With `accumulate` the dot product is finished first, then added.
void ablab_bf16_panel_product(const uint16_t *w, long nj, long kp, const uint16_t *x, long m,
                              float *out, long ldo, int accumulate);

/// One vdpbf16ps on 512 bits: acc[16] = dpbf16ps(acc, a[32], b[32]) (for the test that compares the
/// instruction with its definition).
void ablab_bf16_dpbf16ps(float *acc, const uint16_t *a, const uint16_t *b);

#endif
