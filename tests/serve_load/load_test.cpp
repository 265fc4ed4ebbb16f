// The server under load: 64 concurrent clients x 10 requests (tests/serve_load/
// load.mjs), 5 % of them disconnecting mid-stream. No request fails, every
// completed reply is its single-client reply, and the slots of the clients
// that left are free afterwards. Release pass only (a minute under the
// sanitizers); loopback only.
#include <httplib.h>

#include <thread>

#include <gtest/gtest.h>

#include "common/test_util.h"
#include "serve/serve_test_util.h"
#include "tpp/serve/server.h"

namespace tpp::serve {
namespace {

TEST(ServerLoadTest, SixtyFourClientsTenRequestsEach) {
  if (std::system("node --version > /dev/null 2>&1") != 0) GTEST_SKIP() << "node is not installed";
  ServerOptions o = test::test_server_options(8);
  // 64 clients wait at most 64 sequences, but a client that disconnected is
  // only noticed at the server's next write to it: its sequence may still
  // hold a place when the client's next request arrives.
  o.engine.max_queue = 128;
  test::TestServer server(o);
  std::string out;
  const int code = test::run_command(fmt::format("node {} http://127.0.0.1:{} 64 10 2>&1",
                                                 test::source_path("tests/serve_load/load.mjs"), server.port()),
                                     &out);
  std::printf("%s", out.c_str());
  // The disconnected clients' sequences leave at the next step.
  EngineStats st = server.server().engine().stats();
  for (int i = 0; i < 100 && (st.busy_slots || st.queued); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    st = server.server().engine().stats();
  }
  EXPECT_EQ(code, 0) << out;
  EXPECT_NE(out.find("\"mismatched\":0,\"failed\":0"), std::string::npos) << out;
  EXPECT_EQ(st.busy_slots, 0);
  EXPECT_EQ(st.queued, 0);
}

}  // namespace
}  // namespace tpp::serve
