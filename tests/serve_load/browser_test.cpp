// The chat page at "/" in headless chromium (tests/serve_load/browser.mjs):
// a typed message gets a streamed reply, the stop button ends a long one,
// and the page is photographed (BUILD/.../serve_chat.png). Release pass only.
#include <httplib.h>

#include <fstream>
#include <thread>

#include <gtest/gtest.h>

#include "common/test_util.h"
#include "serve/serve_test_util.h"
#include "tpp/serve/server.h"

namespace tpp::serve {
namespace {

TEST(ChatPageTest, HeadlessChromiumChatsStreamsAndStops) {
  const std::string modules = test::source_path("data/node/node_modules");
  const std::string chromium = "/usr/bin/chromium";
  if (!std::ifstream(modules + "/puppeteer-core/package.json"))
    GTEST_SKIP() << "puppeteer-core is not installed (scripts/get_node_test_deps.sh)";
  if (!std::ifstream(chromium)) GTEST_SKIP() << "chromium is not installed (scripts/get_node_test_deps.sh)";
  test::TestServer server;
  // The page itself: served without the API, self-contained.
  httplib::Client client("127.0.0.1", server.port());
  auto page = client.Get("/");
  ASSERT_TRUE(page);
  EXPECT_EQ(page->get_header_value("Content-Type"), "text/html; charset=utf-8");
  EXPECT_EQ(page->body.find("src=\"http"), std::string::npos) << "the page loads nothing from elsewhere";
  const std::string shot = test::temp_dir("chat_page") + "/serve_chat.png";
  std::string out;
  const int code = test::run_command(fmt::format("node {} http://127.0.0.1:{}/ {} {} {} 2>&1",
                                                 test::source_path("tests/serve_load/browser.mjs"), server.port(),
                                                 modules, chromium, shot),
                                     &out);
  std::printf("%s", out.c_str());
  EXPECT_EQ(code, 0) << out;
  EXPECT_NE(out.find("stopped a second reply"), std::string::npos) << out;
  std::ifstream png(shot, std::ios::binary);
  char magic[4] = {};
  png.read(magic, 4);
  EXPECT_EQ(std::string(magic + 1, 3), "PNG") << "no screenshot at " << shot;
}

}  // namespace
}  // namespace tpp::serve
