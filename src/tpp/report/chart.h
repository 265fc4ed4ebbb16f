// Charts for run reports: lines with optional bands (seed spreads), labelled
// scatter points, linear or log axes; drawn as SVG and rendered to PNG by
// librsvg (the SVG is the one drawing, the PNG its raster).
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace tpp::report {

struct Series {
  explicit Series(std::string legend = "") : name(std::move(legend)) {}
  std::string name;             // the legend entry ("" = none)
  std::vector<double> x, y;
  std::vector<double> lo, hi;   // a shaded band around y (empty = none), as long as x
  std::vector<std::string> labels;  // text next to each point (empty = none)
  bool line = true;             // join the points
  bool markers = false;         // draw a dot at each point
  bool dashed = false;
};

struct Chart {
  std::string title, x_label, y_label;
  bool log_x = false, log_y = false;
  std::vector<Series> series;
  int width = 760, height = 460;
};

std::string chart_svg(const Chart& chart);

// An SVG document rendered to PNG bytes at its own width and height on white.
// Errors (tpp::Error) name what librsvg or cairo reported.
std::string svg_to_png(const std::string& svg);

// base + ".svg" and base + ".png", each written atomically.
void write_chart(const Chart& chart, const std::string& base);

}  // namespace tpp::report
