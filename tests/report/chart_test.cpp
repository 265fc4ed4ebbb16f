// Charts: what the SVG holds for each kind of series, log axes, escaping,
// and the PNG rendering (size from the SVG, errors named).
#include <cstdint>
#include <string>

#include <gtest/gtest.h>

#include "common/test_util.h"
#include "tpp/report/chart.h"

namespace tpp::test {
namespace {

size_t count(const std::string& s, const std::string& what) {
  size_t n = 0;
  for (size_t p = s.find(what); p != std::string::npos; p = s.find(what, p + 1)) ++n;
  return n;
}

uint32_t be32(const std::string& s, size_t at) {
  return uint32_t(uint8_t(s[at])) << 24 | uint32_t(uint8_t(s[at + 1])) << 16 | uint32_t(uint8_t(s[at + 2])) << 8 |
         uint32_t(uint8_t(s[at + 3]));
}

report::Chart sample() {
  report::Chart c;
  c.title = "loss <by> seed & variant";
  c.x_label = "step";
  report::Series band("SwiGLU");
  band.x = {1, 2, 3};
  band.y = {3, 2, 1.5};
  band.lo = {2.9, 1.9, 1.4};
  band.hi = {3.1, 2.1, 1.6};
  report::Series points("scatter");
  points.line = false;
  points.markers = true;
  points.x = {1.5, 2.5};
  points.y = {2.5, 1.8};
  points.labels = {"GQA-2", "MQA"};
  c.series = {band, points};
  return c;
}

TEST(ChartTest, BandsLinesMarkersLabelsAndLegend) {
  const std::string svg = report::chart_svg(sample());
  EXPECT_EQ(svg.rfind("<svg", 0), 0u);
  EXPECT_EQ(count(svg, "<polygon"), 1u);   // the band
  EXPECT_EQ(count(svg, "<polyline"), 1u);  // only the first series is a line
  EXPECT_EQ(count(svg, "<circle"), 2u);    // the scatter's markers
  EXPECT_NE(svg.find(">GQA-2</text>"), std::string::npos);
  EXPECT_NE(svg.find(">SwiGLU</text>"), std::string::npos);
  EXPECT_NE(svg.find("loss &lt;by&gt; seed &amp; variant"), std::string::npos);  // escaped
}

TEST(ChartTest, LogAxesTickAtPowersAndSkipNonPositiveValues) {
  report::Chart c;
  c.log_x = c.log_y = true;
  report::Series s("bytes");
  s.x = {0, 1024, 32768};
  s.y = {-1, 5.4e8, 1.7e10};
  c.series = {s};
  const std::string svg = report::chart_svg(c);
  EXPECT_NE(svg.find(">1e+10</text>"), std::string::npos) << svg;
  EXPECT_NE(svg.find(">10000</text>"), std::string::npos) << svg;
  EXPECT_EQ(svg.find("nan"), std::string::npos);
  EXPECT_EQ(svg.find("inf"), std::string::npos);
}

TEST(ChartTest, PngHasTheSvgSize) {
  report::Chart c = sample();
  c.width = 640;
  c.height = 360;
  const std::string png = report::svg_to_png(report::chart_svg(c));
  ASSERT_GT(png.size(), 24u);
  EXPECT_EQ(png.substr(0, 8), std::string("\x89PNG\r\n\x1a\n", 8));
  EXPECT_EQ(png.substr(12, 4), "IHDR");
  EXPECT_EQ(be32(png, 16), 640u);
  EXPECT_EQ(be32(png, 20), 360u);
}

TEST(ChartTest, UnreadableSvgIsNamed) {
  EXPECT_ERROR(report::svg_to_png("<svg"), "chart: librsvg cannot read the SVG");
}

}  // namespace
}  // namespace tpp::test
