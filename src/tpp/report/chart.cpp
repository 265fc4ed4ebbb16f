#include "tpp/report/chart.h"

#include <algorithm>
#include <cmath>
#include <memory>
#include <sstream>

#include <cairo.h>
#include <fmt/format.h>
#include <librsvg/rsvg.h>

#include "tpp/core/error.h"
#include "tpp/io/atomic_file.h"

namespace tpp::report {
namespace {

constexpr const char* kPalette[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd",
                                    "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};

std::string escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '&': out += "&amp;"; break;
      case '"': out += "&quot;"; break;
      default: out += c;
    }
  }
  return out;
}

// One axis: its range (in log10 units when log) and tick values.
struct Axis {
  bool log = false;
  double lo = 0, hi = 1;
  double map(double v) const { return log ? std::log10(v) : v; }
  std::vector<double> ticks() const {
    std::vector<double> t;
    if (log) {
      for (int e = int(std::floor(lo)); e <= int(std::ceil(hi)); ++e)
        for (double m : {1.0, 2.0, 5.0}) {
          const double v = m * std::pow(10.0, e);
          if (std::log10(v) >= lo - 1e-9 && std::log10(v) <= hi + 1e-9) t.push_back(v);
        }
      if (t.size() > 8) std::erase_if(t, [](double v) { return std::abs(std::log10(v) - std::round(std::log10(v))) > 1e-9; });
      return t;
    }
    const double span = hi - lo, raw = span / 5, mag = std::pow(10.0, std::floor(std::log10(raw)));
    const double step = raw / mag < 1.5 ? mag : raw / mag < 3.5 ? 2 * mag : raw / mag < 7.5 ? 5 * mag : 10 * mag;
    for (double v = std::ceil(lo / step) * step; v <= hi + 1e-9 * span; v += step) t.push_back(std::abs(v) < 1e-12 * span ? 0 : v);
    return t;
  }
};

Axis axis_of(const Chart& c, bool x_axis) {
  Axis a;
  a.log = x_axis ? c.log_x : c.log_y;
  double lo = 1e300, hi = -1e300;
  for (const auto& s : c.series) {
    const auto& vs = x_axis ? s.x : s.y;
    for (size_t i = 0; i < vs.size(); ++i) {
      for (double v : {vs[i], !x_axis && i < s.lo.size() ? s.lo[i] : vs[i], !x_axis && i < s.hi.size() ? s.hi[i] : vs[i]}) {
        if (!std::isfinite(v) || (a.log && v <= 0)) continue;
        lo = std::min(lo, a.map(v));
        hi = std::max(hi, a.map(v));
      }
    }
  }
  if (lo > hi) lo = 0, hi = 1;
  if (hi - lo < 1e-12) lo -= 0.5, hi += 0.5;
  const double pad = (x_axis ? 0.02 : 0.06) * (hi - lo);
  a.lo = lo - pad;
  a.hi = hi + pad;
  return a;
}

std::string tick_text(double v) {
  if (v != 0 && (std::abs(v) >= 1e6 || std::abs(v) < 1e-3)) return fmt::format("{:.3g}", v);
  return fmt::format("{:.6g}", v);
}

}  // namespace

std::string chart_svg(const Chart& c) {
  const double W = c.width, H = c.height, left = 72, right = 24, top = 40, bottom = 52;
  const Axis ax = axis_of(c, true), ay = axis_of(c, false);
  auto X = [&](double x) { return left + (W - left - right) * (ax.map(x) - ax.lo) / (ax.hi - ax.lo); };
  auto Y = [&](double y) { return top + (H - top - bottom) * (ay.hi - ay.map(y)) / (ay.hi - ay.lo); };
  auto ok = [&](double x, double y) {
    return std::isfinite(x) && std::isfinite(y) && (!ax.log || x > 0) && (!ay.log || y > 0);
  };
  std::ostringstream s;
  s << fmt::format(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{}\" viewBox=\"0 0 {} {}\" "
      "font-family=\"DejaVu Sans, sans-serif\" font-size=\"12\">\n",
      W, H, W, H);
  s << fmt::format("<rect width=\"{}\" height=\"{}\" fill=\"white\"/>\n", W, H);
  s << fmt::format("<text x=\"{}\" y=\"24\" font-size=\"15\">{}</text>\n", left, escape(c.title));
  for (double t : ay.ticks()) {
    s << fmt::format("<line x1=\"{:.1f}\" y1=\"{:.1f}\" x2=\"{:.1f}\" y2=\"{:.1f}\" stroke=\"#e4e4e4\"/>\n", left,
                     Y(t), W - right, Y(t));
    s << fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"end\">{}</text>\n", left - 6, Y(t) + 4,
                     tick_text(t));
  }
  for (double t : ax.ticks()) {
    s << fmt::format("<line x1=\"{:.1f}\" y1=\"{:.1f}\" x2=\"{:.1f}\" y2=\"{:.1f}\" stroke=\"#e4e4e4\"/>\n", X(t),
                     top, X(t), H - bottom);
    s << fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"middle\">{}</text>\n", X(t), H - bottom + 18,
                     tick_text(t));
  }
  s << fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"middle\">{}</text>\n", (W + left) / 2, H - 12,
                   escape(c.x_label));
  s << fmt::format("<text transform=\"translate(16 {:.1f}) rotate(-90)\" text-anchor=\"middle\">{}</text>\n",
                   (top + H - bottom) / 2, escape(c.y_label));
  s << fmt::format("<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"none\" stroke=\"#444\"/>\n", left, top,
                   W - left - right, H - top - bottom);
  int legend = 0, named = 0;
  for (const auto& se : c.series) named += !se.name.empty();
  if (named)
    s << fmt::format("<rect x=\"{:.1f}\" y=\"{:.1f}\" width=\"176\" height=\"{}\" fill=\"white\" fill-opacity=\"0.85\" "
                     "stroke=\"#ccc\"/>\n",
                     W - right - 176, top + 4, 16 * named + 6);
  for (size_t i = 0; i < c.series.size(); ++i) {
    const Series& se = c.series[i];
    const char* color = kPalette[i % std::size(kPalette)];
    if (!se.lo.empty() && se.lo.size() == se.x.size() && se.hi.size() == se.x.size()) {
      s << "<polygon fill=\"" << color << "\" fill-opacity=\"0.18\" stroke=\"none\" points=\"";
      for (size_t k = 0; k < se.x.size(); ++k)
        if (ok(se.x[k], se.hi[k])) s << fmt::format("{:.1f},{:.1f} ", X(se.x[k]), Y(se.hi[k]));
      for (size_t k = se.x.size(); k-- > 0;)
        if (ok(se.x[k], se.lo[k])) s << fmt::format("{:.1f},{:.1f} ", X(se.x[k]), Y(se.lo[k]));
      s << "\"/>\n";
    }
    std::string points;
    for (size_t k = 0; k < se.x.size(); ++k)
      if (ok(se.x[k], se.y[k])) points += fmt::format("{:.1f},{:.1f} ", X(se.x[k]), Y(se.y[k]));
    if (se.line && !points.empty())
      s << "<polyline fill=\"none\" stroke=\"" << color << "\" stroke-width=\"1.6\""
        << (se.dashed ? " stroke-dasharray=\"6 4\"" : "") << " points=\"" << points << "\"/>\n";
    for (size_t k = 0; k < se.x.size(); ++k) {
      if (!ok(se.x[k], se.y[k])) continue;
      if (se.markers)
        s << fmt::format("<circle cx=\"{:.1f}\" cy=\"{:.1f}\" r=\"3.5\" fill=\"{}\"/>\n", X(se.x[k]), Y(se.y[k]), color);
      if (k < se.labels.size() && !se.labels[k].empty())
        s << fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" font-size=\"10\" fill=\"{}\">{}</text>\n", X(se.x[k]) + 5,
                         Y(se.y[k]) - 5, color, escape(se.labels[k]));
    }
    if (!se.name.empty()) {
      const double ly = top + 16 + 16 * legend++;
      s << fmt::format("<line x1=\"{:.1f}\" y1=\"{:.1f}\" x2=\"{:.1f}\" y2=\"{:.1f}\" stroke=\"{}\" stroke-width=\"3\"{}/>\n",
                       W - right - 170, ly - 4, W - right - 150, ly - 4, color,
                       se.dashed ? " stroke-dasharray=\"5 3\"" : "");
      s << fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\">{}</text>\n", W - right - 144, ly, escape(se.name));
    }
  }
  s << "</svg>\n";
  return s.str();
}

std::string svg_to_png(const std::string& svg) {
  GError* err = nullptr;
  std::unique_ptr<RsvgHandle, void (*)(RsvgHandle*)> handle(
      rsvg_handle_new_from_data(reinterpret_cast<const guint8*>(svg.data()), svg.size(), &err),
      [](RsvgHandle* h) { g_object_unref(h); });
  if (!handle) {
    const std::string msg = err ? err->message : "unknown error";
    if (err) g_error_free(err);
    fail("chart: librsvg cannot read the SVG: {}", msg);
  }
  gdouble w = 0, h = 0;
  if (!rsvg_handle_get_intrinsic_size_in_pixels(handle.get(), &w, &h) || w <= 0 || h <= 0)
    fail("chart: the SVG states no width and height in pixels");
  std::unique_ptr<cairo_surface_t, void (*)(cairo_surface_t*)> surface(
      cairo_image_surface_create(CAIRO_FORMAT_ARGB32, int(std::ceil(w)), int(std::ceil(h))), cairo_surface_destroy);
  std::unique_ptr<cairo_t, void (*)(cairo_t*)> cr(cairo_create(surface.get()), cairo_destroy);
  cairo_set_source_rgb(cr.get(), 1, 1, 1);
  cairo_paint(cr.get());
  const RsvgRectangle viewport{0, 0, w, h};
  if (!rsvg_handle_render_document(handle.get(), cr.get(), &viewport, &err)) {
    const std::string msg = err ? err->message : "unknown error";
    if (err) g_error_free(err);
    fail("chart: librsvg cannot render the SVG: {}", msg);
  }
  std::string png;
  const auto status = cairo_surface_write_to_png_stream(
      surface.get(),
      [](void* closure, const unsigned char* data, unsigned int n) {
        static_cast<std::string*>(closure)->append(reinterpret_cast<const char*>(data), n);
        return CAIRO_STATUS_SUCCESS;
      },
      &png);
  if (status != CAIRO_STATUS_SUCCESS) fail("chart: cairo cannot encode the PNG: {}", cairo_status_to_string(status));
  return png;
}

void write_chart(const Chart& chart, const std::string& base) {
  const std::string svg = chart_svg(chart);
  io::write_file_atomic(base + ".svg", svg);
  std::string png;
  try {
    png = svg_to_png(svg);
  } catch (const Error& e) {
    fail("{}.png: {}", base, e.what());
  }
  io::write_file_atomic(base + ".png", png);
}

}  // namespace tpp::report
