// See include/KernelsBF16.h for the order every output is computed in.
#include "KernelsBF16.h"

#if defined(__x86_64__)
#include <immintrin.h>

// Round to nearest even on the bits: add 0x7FFF plus the lowest kept bit, keep the high half. A NaN keeps
// its sign and high payload bits with the quiet bit set (adding could carry it into an infinity).
static inline __m256i round16(__m512 v) {
    const __m512i bits = _mm512_castps_si512(v);
    const __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(bits, 16), _mm512_set1_epi32(1));
    const __m512i rounded = _mm512_srli_epi32(_mm512_add_epi32(bits, _mm512_add_epi32(lsb, _mm512_set1_epi32(0x7FFF))), 16);
    const __m512i quiet = _mm512_or_si512(_mm512_srli_epi32(bits, 16), _mm512_set1_epi32(0x40));
    const __mmask16 nan = _mm512_cmpgt_epu32_mask(_mm512_and_si512(bits, _mm512_set1_epi32(0x7FFFFFFF)), _mm512_set1_epi32(0x7F800000));
    return _mm512_cvtepi32_epi16(_mm512_mask_blend_epi32(nan, rounded, quiet));
}

void ablab_bf16_round_rows(const float *src, long rows, long cols, long lds, uint16_t *dst, long kp) {
    for (long r = 0; r < rows; r++) {
        const float *s = src + r * lds;
        uint16_t *d = dst + r * kp;
        long p = 0;
        for (; p + 16 <= cols; p += 16) _mm256_storeu_si256((__m256i *)(d + p), round16(_mm512_loadu_ps(s + p)));
        if (p < cols) {
            // the tail: masked load (zeros past cols, which round to zero)
            const __mmask16 mask = (__mmask16)((1u << (cols - p)) - 1);
            _mm256_storeu_si256((__m256i *)(d + p), round16(_mm512_maskz_loadu_ps(mask, s + p)));
            p += 16;
        }
        for (; p < kp; p += 16) _mm256_storeu_si256((__m256i *)(d + p), _mm256_setzero_si256());
    }
}

static inline __m512bh bh(const uint16_t *p) { return (__m512bh)_mm512_loadu_si512((const void *)p); }

// The sixteen lanes reduced as the Float32 kernels reduce them (KernelABI's canonical order): lane i + lane
// i + 8, then i + i + 4, then i + i + 2, then lanes 0 + 1 (written out: the compiler may not reorder
// floating-point additions).
static inline float hsum(__m512 v) {
    const __m256 s8 = _mm256_add_ps(_mm512_castps512_ps256(v), _mm512_extractf32x8_ps(v, 1));
    const __m128 s4 = _mm_add_ps(_mm256_castps256_ps128(s8), _mm256_extractf128_ps(s8, 1));
    const __m128 s2 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
    return _mm_cvtss_f32(_mm_add_ss(s2, _mm_movehdup_ps(s2)));
}

static inline void put(float *o, __m512 acc, int accumulate) {
    const float r = hsum(acc);
    if (accumulate) *o += r; else *o = r;
}

// One output: x row · w row.
static inline void single(const uint16_t *w, const uint16_t *x, long kp, float *o, int accumulate) {
    __m512 a = _mm512_setzero_ps();
    for (long p = 0; p < kp; p += 32) a = _mm512_dpbf16_ps(a, bh(x + p), bh(w + p));
    put(o, a, accumulate);
}

// One x row against four w rows.
static inline void row4(const uint16_t *w, const uint16_t *x, long kp, float *o, int accumulate) {
    const uint16_t *w0 = w, *w1 = w + kp, *w2 = w + 2 * kp, *w3 = w + 3 * kp;
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    for (long p = 0; p < kp; p += 32) {
        const __m512bh u = bh(x + p);
        a0 = _mm512_dpbf16_ps(a0, u, bh(w0 + p)); a1 = _mm512_dpbf16_ps(a1, u, bh(w1 + p));
        a2 = _mm512_dpbf16_ps(a2, u, bh(w2 + p)); a3 = _mm512_dpbf16_ps(a3, u, bh(w3 + p));
    }
    put(o, a0, accumulate); put(o + 1, a1, accumulate); put(o + 2, a2, accumulate); put(o + 3, a3, accumulate);
}

// Four x rows × four w rows: 16 accumulators, 4 w operands and one x operand of the 32 zmm registers.
static inline void tile4x4(const uint16_t *w, const uint16_t *x, long kp, float *out, long ldo, int accumulate) {
    const uint16_t *w0 = w, *w1 = w + kp, *w2 = w + 2 * kp, *w3 = w + 3 * kp;
    const uint16_t *x0 = x, *x1 = x + kp, *x2 = x + 2 * kp, *x3 = x + 3 * kp;
    __m512 a00 = _mm512_setzero_ps(), a01 = a00, a02 = a00, a03 = a00;
    __m512 a10 = a00, a11 = a00, a12 = a00, a13 = a00;
    __m512 a20 = a00, a21 = a00, a22 = a00, a23 = a00;
    __m512 a30 = a00, a31 = a00, a32 = a00, a33 = a00;
    for (long p = 0; p < kp; p += 32) {
        const __m512bh v0 = bh(w0 + p), v1 = bh(w1 + p), v2 = bh(w2 + p), v3 = bh(w3 + p);
        __m512bh u = bh(x0 + p);
        a00 = _mm512_dpbf16_ps(a00, u, v0); a01 = _mm512_dpbf16_ps(a01, u, v1); a02 = _mm512_dpbf16_ps(a02, u, v2); a03 = _mm512_dpbf16_ps(a03, u, v3);
        u = bh(x1 + p);
        a10 = _mm512_dpbf16_ps(a10, u, v0); a11 = _mm512_dpbf16_ps(a11, u, v1); a12 = _mm512_dpbf16_ps(a12, u, v2); a13 = _mm512_dpbf16_ps(a13, u, v3);
        u = bh(x2 + p);
        a20 = _mm512_dpbf16_ps(a20, u, v0); a21 = _mm512_dpbf16_ps(a21, u, v1); a22 = _mm512_dpbf16_ps(a22, u, v2); a23 = _mm512_dpbf16_ps(a23, u, v3);
        u = bh(x3 + p);
        a30 = _mm512_dpbf16_ps(a30, u, v0); a31 = _mm512_dpbf16_ps(a31, u, v1); a32 = _mm512_dpbf16_ps(a32, u, v2); a33 = _mm512_dpbf16_ps(a33, u, v3);
    }
    float *o0 = out, *o1 = out + ldo, *o2 = out + 2 * ldo, *o3 = out + 3 * ldo;
    put(o0, a00, accumulate); put(o0 + 1, a01, accumulate); put(o0 + 2, a02, accumulate); put(o0 + 3, a03, accumulate);
    put(o1, a10, accumulate); put(o1 + 1, a11, accumulate); put(o1 + 2, a12, accumulate); put(o1 + 3, a13, accumulate);
    put(o2, a20, accumulate); put(o2 + 1, a21, accumulate); put(o2 + 2, a22, accumulate); put(o2 + 3, a23, accumulate);
    put(o3, a30, accumulate); put(o3 + 1, a31, accumulate); put(o3 + 2, a32, accumulate); put(o3 + 3, a33, accumulate);
}

void ablab_bf16_panel_product(const uint16_t *w, long nj, long kp, const uint16_t *x, long m,
                              float *out, long ldo, int accumulate) {
    long i = 0;
    for (; i + 4 <= m; i += 4) {
        long j = 0;
        for (; j + 4 <= nj; j += 4) tile4x4(w + j * kp, x + i * kp, kp, out + i * ldo + j, ldo, accumulate);
        for (; j < nj; j++)
            for (long ii = i; ii < i + 4; ii++) single(w + j * kp, x + ii * kp, kp, out + ii * ldo + j, accumulate);
    }
    for (; i < m; i++) {
        long j = 0;
        for (; j + 4 <= nj; j += 4) row4(w + j * kp, x + i * kp, kp, out + i * ldo + j, accumulate);
        for (; j < nj; j++) single(w + j * kp, x + i * kp, kp, out + i * ldo + j, accumulate);
    }
}

void ablab_bf16_dpbf16ps(float *acc, const uint16_t *a, const uint16_t *b) {
    _mm512_storeu_ps(acc, _mm512_dpbf16_ps(_mm512_loadu_ps(acc), bh(a), bh(b)));
}
#endif
