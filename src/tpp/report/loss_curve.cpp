#include "tpp/report/loss_curve.h"

#include <filesystem>
#include <fstream>
#include <sstream>

#include <fmt/format.h>

#include "tpp/core/error.h"
#include "tpp/io/atomic_file.h"

namespace tpp::report {

std::vector<nlohmann::json> read_metrics(const std::string& path) {
  std::ifstream in(path);
  if (!in) fail("{}: cannot open the metrics file", path);
  std::vector<nlohmann::json> records;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    auto j = nlohmann::json::parse(line, nullptr, false);
    if (!j.is_discarded() && j.is_object() && j.contains("step")) records.push_back(std::move(j));
  }
  return records;
}

void write_loss_curve(const std::string& run_dir) {
  namespace fs = std::filesystem;
  const auto records = read_metrics((fs::path(run_dir) / "metrics.jsonl").string());
  io::write_file_atomic((fs::path(run_dir) / "loss.svg").string(), loss_curve_svg(records));
}

std::string loss_curve_svg(const std::vector<nlohmann::json>& records) {
  std::vector<std::pair<double, double>> train, val;
  for (const auto& r : records) {
    if (r.contains("loss")) train.emplace_back(r["step"].get<double>(), r["loss"].get<double>());
    if (r.contains("val_loss")) val.emplace_back(r["step"].get<double>(), r["val_loss"].get<double>());
  }
  const double W = 720, H = 420, left = 64, right = 20, top = 36, bottom = 48;
  double x_max = 1, y_min = 1e30, y_max = -1e30;
  for (const auto* series : {&train, &val})
    for (const auto& [x, y] : *series) {
      x_max = std::max(x_max, x);
      y_min = std::min(y_min, y);
      y_max = std::max(y_max, y);
    }
  if (y_min > y_max) y_min = 0, y_max = 1;
  if (y_max - y_min < 1e-9) y_max = y_min + 1;
  const double pad = 0.05 * (y_max - y_min);
  y_min -= pad;
  y_max += pad;
  auto X = [&](double x) { return left + (W - left - right) * x / x_max; };
  auto Y = [&](double y) { return top + (H - top - bottom) * (y_max - y) / (y_max - y_min); };
  std::ostringstream s;
  s << fmt::format("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{}\" font-family=\"sans-serif\" "
                   "font-size=\"12\">\n",
                   W, H);
  s << fmt::format("<rect width=\"{}\" height=\"{}\" fill=\"white\"/>\n", W, H);
  s << fmt::format("<text x=\"{}\" y=\"22\" font-size=\"15\">Loss (nats per token)</text>\n", left);
  for (int i = 0; i <= 5; ++i) {
    const double y = y_min + (y_max - y_min) * i / 5, x = x_max * i / 5;
    s << fmt::format("<line x1=\"{:.1f}\" y1=\"{:.1f}\" x2=\"{:.1f}\" y2=\"{:.1f}\" stroke=\"#ddd\"/>\n", left, Y(y),
                     W - right, Y(y));
    s << fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"end\">{:.2f}</text>\n", left - 6, Y(y) + 4, y);
    s << fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"middle\">{:.0f}</text>\n", X(x), H - bottom + 18,
                     x);
  }
  s << fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"middle\">step</text>\n", (W + left) / 2, H - 10);
  s << fmt::format("<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"none\" stroke=\"#444\"/>\n", left, top,
                   W - left - right, H - top - bottom);
  auto polyline = [&](const std::vector<std::pair<double, double>>& pts, const char* color, double width) {
    if (pts.empty()) return;
    s << "<polyline fill=\"none\" stroke=\"" << color << "\" stroke-width=\"" << width << "\" points=\"";
    for (const auto& [x, y] : pts) s << fmt::format("{:.1f},{:.1f} ", X(x), Y(y));
    s << "\"/>\n";
  };
  polyline(train, "#1f77b4", 1.2);
  polyline(val, "#d62728", 2);
  for (const auto& [x, y] : val)
    s << fmt::format("<circle cx=\"{:.1f}\" cy=\"{:.1f}\" r=\"3\" fill=\"#d62728\"/>\n", X(x), Y(y));
  s << fmt::format("<text x=\"{:.1f}\" y=\"22\" fill=\"#1f77b4\">train</text>\n", W - right - 130);
  s << fmt::format("<text x=\"{:.1f}\" y=\"22\" fill=\"#d62728\">validation</text>\n", W - right - 80);
  s << "</svg>\n";
  return s.str();
}

}  // namespace tpp::report
