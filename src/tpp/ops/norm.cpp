#include "tpp/ops/norm.h"

#include <cmath>
#include <vector>

namespace tpp {
namespace {

// Per-row statistics: mean (0 for RMSNorm) and 1/sqrt(var + eps).
template <class R>
void row_stats(const R* x, int64_t d, const NormParams& p, double* mean, double* rstd) {
  double m = 0, v = 0;
  if (p.kind == NormKind::rmsnorm) {
    for (int64_t i = 0; i < d; ++i) v += double(x[i]) * double(x[i]);
  } else {
    for (int64_t i = 0; i < d; ++i) m += double(x[i]);
    m /= double(d);
    for (int64_t i = 0; i < d; ++i) v += (double(x[i]) - m) * (double(x[i]) - m);
  }
  *mean = m;
  *rstd = 1.0 / std::sqrt(v / double(d) + p.eps);
}

template <class R>
R scale_of(const NormWeights<R>& w, const NormParams& p, int64_t i) {
  return p.one_plus ? R(1) + w.w[i] : w.w[i];
}

}  // namespace

template <class R>
void norm_forward(R* y, const R* x, int64_t N, int64_t d, NormWeights<R> w, const NormParams& p, ThreadPool& pool) {
  pool.parallel_for(size_t(N), 16, [&](size_t n0, size_t n1, size_t) {
    for (size_t n = n0; n < n1; ++n) {
      const R* xr = x + int64_t(n) * d;
      R* yr = y + int64_t(n) * d;
      double mean, rstd;
      row_stats(xr, d, p, &mean, &rstd);
      if (p.kind == NormKind::rmsnorm) {
        const R r = R(rstd);
        for (int64_t i = 0; i < d; ++i) yr[i] = xr[i] * r * scale_of(w, p, i);
      } else {
        for (int64_t i = 0; i < d; ++i)
          yr[i] = R((double(xr[i]) - mean) * rstd) * scale_of(w, p, i) + (w.b ? w.b[i] : R(0));
      }
    }
  });
}

template <class R>
void norm_backward(R* dx, bool accumulate, const R* dy, const R* x, int64_t N, int64_t d, NormWeights<R> w,
                   NormGrads<R> g, const NormParams& p, ThreadPool& pool) {
  const size_t workers = pool.size();
  std::vector<R> partial(workers * size_t(2 * d), R(0));
  pool.parallel_for(size_t(N), 16, [&](size_t n0, size_t n1, size_t worker) {
    R* pw = partial.data() + worker * size_t(2 * d);
    R* pb = pw + d;
    for (size_t n = n0; n < n1; ++n) {
      const R* xr = x + int64_t(n) * d;
      const R* gr = dy + int64_t(n) * d;
      R* out = dx + int64_t(n) * d;
      double mean_d, rstd_d;
      row_stats(xr, d, p, &mean_d, &rstd_d);
      const R r = R(rstd_d), mean = R(mean_d);
      if (p.kind == NormKind::rmsnorm) {
        // dx = r (dy w') - x r^3 mean(dy w' x)
        R gx = 0;
        for (int64_t i = 0; i < d; ++i) {
          gx += gr[i] * scale_of(w, p, i) * xr[i];
          pw[i] += gr[i] * xr[i] * r;
        }
        const R c = r * r * r * gx / R(d);
        for (int64_t i = 0; i < d; ++i) {
          const R v = r * gr[i] * scale_of(w, p, i) - xr[i] * c;
          out[i] = accumulate ? out[i] + v : v;
        }
      } else {
        // dx = r (g - mean(g) - xhat mean(g xhat)),  g = dy w'
        R mg = 0, mgx = 0;
        for (int64_t i = 0; i < d; ++i) {
          const R xhat = (xr[i] - mean) * r;
          const R gi = gr[i] * scale_of(w, p, i);
          mg += gi;
          mgx += gi * xhat;
          pw[i] += gr[i] * xhat;
          pb[i] += gr[i];
        }
        mg /= R(d);
        mgx /= R(d);
        for (int64_t i = 0; i < d; ++i) {
          const R xhat = (xr[i] - mean) * r;
          const R v = r * (gr[i] * scale_of(w, p, i) - mg - xhat * mgx);
          out[i] = accumulate ? out[i] + v : v;
        }
      }
    }
  });
  for (size_t wk = 0; wk < workers; ++wk) {
    const R* pw = partial.data() + wk * size_t(2 * d);
    for (int64_t i = 0; i < d; ++i) g.dw[i] += pw[i];
    if (g.db)
      for (int64_t i = 0; i < d; ++i) g.db[i] += pw[d + i];
  }
}

template void norm_forward(float*, const float*, int64_t, int64_t, NormWeights<float>, const NormParams&, ThreadPool&);
template void norm_forward(double*, const double*, int64_t, int64_t, NormWeights<double>, const NormParams&,
                           ThreadPool&);
template void norm_backward(float*, bool, const float*, const float*, int64_t, int64_t, NormWeights<float>,
                            NormGrads<float>, const NormParams&, ThreadPool&);
template void norm_backward(double*, bool, const double*, const double*, int64_t, int64_t, NormWeights<double>,
                            NormGrads<double>, const NormParams&, ThreadPool&);

}  // namespace tpp
