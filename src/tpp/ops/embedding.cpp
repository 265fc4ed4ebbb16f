#include "tpp/ops/embedding.h"

#include <cmath>
#include <cstring>
#include <type_traits>

#include "tpp/core/error.h"

namespace tpp {
namespace {

template <class R>
void read_row(const MatrixRef& m, int64_t r, R* out) {
  if constexpr (std::is_same_v<R, float>) {
    m.row_f32(r, out);
  } else {
    TPP_CHECK(m.dtype == DType::f64, "embedding: double activations need an f64 table, got {}", dtype_name(m.dtype));
    std::memcpy(out, static_cast<const double*>(m.data) + r * m.cols, size_t(m.cols) * sizeof(double));
  }
}

}  // namespace

template <class R>
void embed_forward(R* x, const int32_t* tokens, const int64_t* pos, int64_t N, const MatrixRef& tok,
                   const MatrixRef* pos_table, const EmbedParams& p, ThreadPool& pool) {
  const int64_t d = tok.cols;
  const R scale = R(p.scale);
  pool.parallel_for(size_t(N), 16, [&](size_t n0, size_t n1, size_t) {
    std::vector<R> row(p.pos == PosEncoding::learned ? size_t(d) : 0);
    for (size_t n = n0; n < n1; ++n) {
      R* xr = x + int64_t(n) * d;
      read_row(tok, tokens[n], xr);
      if (scale != R(1))
        for (int64_t i = 0; i < d; ++i) xr[i] *= scale;
      if (p.pos == PosEncoding::learned) {
        read_row(*pos_table, pos[n], row.data());
        for (int64_t i = 0; i < d; ++i) xr[i] += row[size_t(i)];
      } else if (p.pos == PosEncoding::sinusoidal) {
        // Rounded to f32 for every R, so the double graph sees the same table.
        for (int64_t i = 0; 2 * i < d; ++i) {
          const double angle = double(pos[n]) / std::pow(10000.0, double(2 * i) / double(d));
          xr[2 * i] += R(float(std::sin(angle)));
          if (2 * i + 1 < d) xr[2 * i + 1] += R(float(std::cos(angle)));
        }
      }
    }
  });
}

template <class R>
void embed_backward(R* dtok, R* dpos, const R* dx, const int32_t* tokens, const int64_t* pos, int64_t N, int64_t d,
                    const EmbedParams& p) {
  // Serial: rows sharing a token add into the same gradient row.
  const R scale = R(p.scale);
  for (int64_t n = 0; n < N; ++n) {
    const R* g = dx + n * d;
    R* er = dtok + int64_t(tokens[n]) * d;
    for (int64_t i = 0; i < d; ++i) er[i] += g[i] * scale;
    if (p.pos == PosEncoding::learned) {
      R* pr = dpos + pos[n] * d;
      for (int64_t i = 0; i < d; ++i) pr[i] += g[i];
    }
  }
}

template void embed_forward(float*, const int32_t*, const int64_t*, int64_t, const MatrixRef&, const MatrixRef*,
                            const EmbedParams&, ThreadPool&);
template void embed_forward(double*, const int32_t*, const int64_t*, int64_t, const MatrixRef&, const MatrixRef*,
                            const EmbedParams&, ThreadPool&);
template void embed_backward(float*, float*, const float*, const int32_t*, const int64_t*, int64_t, int64_t,
                             const EmbedParams&);
template void embed_backward(double*, double*, const double*, const int32_t*, const int64_t*, int64_t, int64_t,
                             const EmbedParams&);

}  // namespace tpp
