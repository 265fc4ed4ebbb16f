// bf16 dot kernels on AVX-512 BF16 (vdpbf16ps: 32 bf16 products summed in
// pairs into 16 f32 lanes per instruction). Includes no STL and no shared
// inline header (see kernels_avx512.cpp).
//
// The packed weights (tpp/kernels/packed.h) put one weight row in each 32-bit
// lane, two consecutive k per lane: vdpbf16ps(chunk, broadcast of two
// activations) advances 16 rows by two k, with no horizontal sum. A tile is
// G groups of 16 rows times NR activation rows: G * NR independent
// accumulator chains hide the instruction's latency, and each activation
// pair is read once per G chunks.
#include "tpp/kernels/x86/avx512bf16/kernels_avx512bf16.h"

#include <immintrin.h>

namespace tpp::kernels::avx512bf16 {

namespace {

// 16 f32 (as bits) rounded to bf16 in the low halves of their 32-bit lanes,
// tpp::f32_to_bf16 in integer arithmetic bit for bit: nearest even, and a
// NaN stays a (quiet) NaN.
inline __attribute__((always_inline)) __m512i bf16_lanes(__m512i bits) {
  const __m512i abs_mask = _mm512_set1_epi32(0x7fffffff), inf = _mm512_set1_epi32(0x7f800000);
  const __m512i round = _mm512_set1_epi32(0x7fff), one = _mm512_set1_epi32(1), quiet = _mm512_set1_epi32(0x40);
  const __mmask16 nan = _mm512_cmpgt_epu32_mask(_mm512_and_si512(bits, abs_mask), inf);
  const __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(bits, 16), one);
  const __m512i r = _mm512_srli_epi32(_mm512_add_epi32(bits, _mm512_add_epi32(round, lsb)), 16);
  return _mm512_mask_mov_epi32(r, nan, _mm512_or_si512(_mm512_srli_epi32(bits, 16), quiet));
}

// Two rows' 16 values each (lanes past `mask` zero), rounded and paired as
// the packed layouts pair them: row lo in the low half of each 32-bit lane.
inline __attribute__((always_inline)) __m512i bf16_pairs(const float* lo, const float* hi, __mmask16 mask) {
  const __m512i a = bf16_lanes(_mm512_maskz_loadu_epi32(mask, lo));
  if (!hi) return a;
  return _mm512_or_si512(a, _mm512_slli_epi32(bf16_lanes(_mm512_maskz_loadu_epi32(mask, hi)), 16));
}

inline __mmask16 first(int64_t n) { return n >= 16 ? __mmask16(0xffff) : __mmask16((1u << n) - 1u); }

// r[i] = column i of the 16 x 16 matrix of 32-bit elements whose rows are r.
inline __attribute__((always_inline)) void transpose16(__m512i r[16]) {
  __m512i t[16];
  for (int i = 0; i < 8; ++i) {
    t[2 * i] = _mm512_unpacklo_epi32(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm512_unpackhi_epi32(r[2 * i], r[2 * i + 1]);
  }
  // In each 128-bit lane L: r[4 i + q] holds column 4 L + q of rows 4 i .. 4 i + 3.
  for (int i = 0; i < 4; ++i) {
    r[4 * i] = _mm512_unpacklo_epi64(t[4 * i], t[4 * i + 2]);
    r[4 * i + 1] = _mm512_unpackhi_epi64(t[4 * i], t[4 * i + 2]);
    r[4 * i + 2] = _mm512_unpacklo_epi64(t[4 * i + 1], t[4 * i + 3]);
    r[4 * i + 3] = _mm512_unpackhi_epi64(t[4 * i + 1], t[4 * i + 3]);
  }
  // Column 4 L + q gathers lane L of r[q], r[4 + q], r[8 + q], r[12 + q].
  for (int q = 0; q < 4; ++q) {
    const __m512i u0 = _mm512_shuffle_i32x4(r[q], r[4 + q], 0x44), u1 = _mm512_shuffle_i32x4(r[q], r[4 + q], 0xee);
    const __m512i u2 = _mm512_shuffle_i32x4(r[8 + q], r[12 + q], 0x44);
    const __m512i u3 = _mm512_shuffle_i32x4(r[8 + q], r[12 + q], 0xee);
    t[q] = _mm512_shuffle_i32x4(u0, u2, 0x88);
    t[4 + q] = _mm512_shuffle_i32x4(u0, u2, 0xdd);
    t[8 + q] = _mm512_shuffle_i32x4(u1, u3, 0x88);
    t[12 + q] = _mm512_shuffle_i32x4(u1, u3, 0xdd);
  }
  for (int i = 0; i < 16; ++i) r[i] = t[i];
}

}  // namespace

void to_bf16(uint16_t* dst, const float* src, int64_t n) {
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m512i r = bf16_lanes(_mm512_loadu_si512(src + i));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + i), _mm512_cvtepi32_epi16(r));
  }
  if (i < n) {
    const __m512i r = bf16_lanes(_mm512_maskz_loadu_epi32(first(n - i), src + i));
    _mm256_mask_storeu_epi16(dst + i, first(n - i), _mm512_cvtepi32_epi16(r));
  }
}

// Both layouts below read src down its rows a few columns at a time: they
// take a panel of kPanel columns per pass, so that each row's read is a run
// of whole cache lines the prefetcher follows (16 columns alone read one
// line per row, a page or more apart: a miss each). The output head's dy^T
// (1,024 x 49,152) took 67-70 ms on one core in 16-column passes, 37-40 in
// panels of 128, 34-37 in 512 and 40-43 in 2,048.
constexpr int64_t kPanel = 512;

void pack_bf16_transposed_f32(void* dst, const float* src, int64_t M, int64_t K, int64_t ld, int64_t g_begin,
                              int64_t g_end) {
  const int64_t pairs = (K + 1) / 2;
  auto* out = static_cast<uint32_t*>(dst);
  for (int64_t p0 = g_begin; p0 < g_end; p0 += kPanel / 16) {
    const int64_t p1 = p0 + kPanel / 16 < g_end ? p0 + kPanel / 16 : g_end;
    for (int64_t j = 0; j < pairs; ++j) {
      const float* lo = src + 2 * j * ld;
      const float* hi = 2 * j + 1 < K ? lo + ld : nullptr;
      for (int64_t g = p0; g < p1; ++g) {
        const int64_t m0 = 16 * g;
        _mm512_storeu_si512(out + (g * pairs + j) * 16, bf16_pairs(lo + m0, hi ? hi + m0 : nullptr, first(M - m0)));
      }
    }
  }
}

void transpose_bf16_pairs(uint32_t* dst, int64_t ldd, const float* src, int64_t ld, int64_t N, int64_t m_begin,
                          int64_t m_end) {
  const int64_t pairs = (N + 1) / 2;
  for (int64_t p0 = m_begin; p0 < m_end; p0 += kPanel) {
    const int64_t p1 = p0 + kPanel < m_end ? p0 + kPanel : m_end;
    for (int64_t j0 = 0; j0 < pairs; j0 += 16) {
      const int64_t cols = pairs - j0 < 16 ? pairs - j0 : 16;
      for (int64_t m0 = p0; m0 < p1; m0 += 16) {
        const int64_t rows = p1 - m0 < 16 ? p1 - m0 : 16;
        const __mmask16 mask = first(rows);
        // v[i]: pair j0 + i of the tile's 16 columns of src (rows m0 .. of the result).
        __m512i v[16];
        for (int64_t i = 0; i < 16; ++i) {
          const int64_t n = 2 * (j0 + i);
          v[i] = i < cols ? bf16_pairs(src + n * ld + m0, n + 1 < N ? src + (n + 1) * ld + m0 : nullptr, mask)
                          : _mm512_setzero_si512();
        }
        transpose16(v);
        for (int64_t r = 0; r < rows; ++r)
          _mm512_mask_storeu_epi32(dst + (m0 - m_begin + r) * ldd + j0, first(cols), v[r]);
      }
    }
  }
}

namespace {

// Rows n .. n+NR of y for G consecutive groups of 16 weight rows, over the
// k-pairs [j0, j1) of the packed rows (K columns each, x rows K apart);
// add: y += the partial sums (a later block of k), else y = them.
template <int G, int NR>
inline __attribute__((always_inline)) void tile(float* y, const uint16_t* xb, const uint8_t* group, int64_t K,
                                                int64_t j0, int64_t j1, int64_t ldy, const __mmask16* mask,
                                                bool add) {
  const int64_t group_bytes = 32 * K;
  __m512 acc[G][NR];
#pragma GCC unroll 4
  for (int g = 0; g < G; ++g)
#pragma GCC unroll 8
    for (int i = 0; i < NR; ++i) acc[g][i] = _mm512_setzero_ps();
  for (int64_t j = j0; j < j1; ++j) {
    __m512i wv[G];
#pragma GCC unroll 4
    for (int g = 0; g < G; ++g) {
      if constexpr (NR == 1)
        _mm_prefetch(reinterpret_cast<const char*>(group + g * group_bytes + 64 * j + 1024), _MM_HINT_T0);
      wv[g] = _mm512_loadu_si512(group + g * group_bytes + 64 * j);
    }
    // Each activation pair broadcast into a register once for its G chunks:
    // as a memory operand of every vdpbf16ps it cost 16-34 % of the
    // product's speed (one load per instruction, G times as many).
#pragma GCC unroll 8
    for (int i = 0; i < NR; ++i) {
      int32_t pair;
      __builtin_memcpy(&pair, xb + i * K + 2 * j, 4);
      const __m512bh xv = (__m512bh)_mm512_set1_epi32(pair);
#pragma GCC unroll 4
      for (int g = 0; g < G; ++g) acc[g][i] = _mm512_dpbf16_ps(acc[g][i], (__m512bh)wv[g], xv);
    }
  }
#pragma GCC unroll 4
  for (int g = 0; g < G; ++g)
#pragma GCC unroll 8
    for (int i = 0; i < NR; ++i) {
      float* out = y + i * ldy + 16 * g;
      if (add) acc[g][i] = _mm512_add_ps(acc[g][i], _mm512_maskz_loadu_ps(mask[g], out));
      _mm512_mask_storeu_ps(out, mask[g], acc[g][i]);
    }
}

// All N rows for G groups starting at group g0: tiles of 8 rows (three
// groups) or 6 (one, two or four), then the rest; k-pairs [j0, j1) as tile()
// takes them.
template <int G>
void groups(float* y, const uint16_t* xb, const uint8_t* group, int64_t N, int64_t K, int64_t j0, int64_t j1,
            int64_t ldy, const __mmask16* mask, bool add) {
  int64_t n = 0;
  constexpr int R = G == 3 ? 8 : 6;
  for (; n + R <= N; n += R) tile<G, R>(y + n * ldy, xb + n * K, group, K, j0, j1, ldy, mask, add);
  if (R == 8 && N - n >= 6) {
    tile<G, 6>(y + n * ldy, xb + n * K, group, K, j0, j1, ldy, mask, add);
    n += 6;
  }
  switch (N - n) {
    case 5: tile<G, 5>(y + n * ldy, xb + n * K, group, K, j0, j1, ldy, mask, add); break;
    case 4: tile<G, 4>(y + n * ldy, xb + n * K, group, K, j0, j1, ldy, mask, add); break;
    case 3: tile<G, 3>(y + n * ldy, xb + n * K, group, K, j0, j1, ldy, mask, add); break;
    case 2: tile<G, 2>(y + n * ldy, xb + n * K, group, K, j0, j1, ldy, mask, add); break;
    case 1: tile<G, 1>(y + n * ldy, xb + n * K, group, K, j0, j1, ldy, mask, add); break;
    default: break;
  }
}

// Rows longer than kLongPairs k-pairs (16,384 values: every projection of
// the models tpp runs, but not a vocabulary) go in blocks of kBlockPairs.
constexpr int64_t kLongPairs = 8192, kBlockPairs = 2048;

__mmask16 lanes(int64_t g, int64_t m_begin, int64_t m_end) {
  const int64_t lo = m_begin > 16 * g ? m_begin - 16 * g : 0;
  const int64_t hi = m_end < 16 * g + 16 ? m_end - 16 * g : 16;
  return __mmask16(((1u << hi) - 1u) & ~((1u << lo) - 1u));
}

}  // namespace

void matmul_bf16_packed(float* y, const uint16_t* xb, const void* w, int64_t N, int64_t K, int64_t m_begin,
                        int64_t m_end, int64_t ldy, bool accumulate) {
  const auto* base = static_cast<const uint8_t*>(w);
  const int64_t g_end = (m_end + 15) / 16;
  // Long rows (training's input gradient through the output head: K is the
  // vocabulary) run in blocks of k, so that the groups' weights stay in L2
  // across the row tiles; the split depends on K alone, so a row's result
  // never depends on N.
  const int64_t pairs = K / 2, block = pairs > kLongPairs ? kBlockPairs : pairs;
  for (int64_t j0 = 0; j0 < pairs; j0 += block) {
    const int64_t j1 = j0 + block < pairs ? j0 + block : pairs;
    const bool add = accumulate || j0 > 0;
    int64_t g = m_begin / 16;
    // Four groups at a time when decoding (more streams in flight).
    if (N == 1)
      for (; g + 4 <= g_end; g += 4) {
        const __mmask16 m[4] = {lanes(g, m_begin, m_end), lanes(g + 1, m_begin, m_end),
                                lanes(g + 2, m_begin, m_end), lanes(g + 3, m_begin, m_end)};
        groups<4>(y + 16 * g, xb, base + g * 32 * K, N, K, j0, j1, ldy, m, add);
      }
    // Three groups at a time for several rows: tiles of 8 rows x 3 groups
    // (24 accumulator chains; 5-6 % faster than 6 x 2 and than 6 x 4 on a
    // 512 x 2048 x 2048 product).
    if (N > 1)
      for (; g + 3 <= g_end; g += 3) {
        const __mmask16 m[3] = {lanes(g, m_begin, m_end), lanes(g + 1, m_begin, m_end), lanes(g + 2, m_begin, m_end)};
        groups<3>(y + 16 * g, xb, base + g * 32 * K, N, K, j0, j1, ldy, m, add);
      }
    for (; g + 2 <= g_end; g += 2) {
      const __mmask16 m[2] = {lanes(g, m_begin, m_end), lanes(g + 1, m_begin, m_end)};
      groups<2>(y + 16 * g, xb, base + g * 32 * K, N, K, j0, j1, ldy, m, add);
    }
    if (g < g_end) {
      const __mmask16 m[1] = {lanes(g, m_begin, m_end)};
      groups<1>(y + 16 * g, xb, base + g * 32 * K, N, K, j0, j1, ldy, m, add);
    }
  }
}

extern const char compiled_features[] =
#include "tpp/kernels/compiled_features.inc"
    ;

}  // namespace tpp::kernels::avx512bf16
