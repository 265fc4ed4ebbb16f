// `tpp serve` as users run it: SIGTERM while a streamed reply is in flight.
// The reply finishes ([DONE] arrives), new requests are refused meanwhile,
// and the process exits 0. Release pass only.
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>

#include "common/test_util.h"
#include "serve/serve_test_util.h"

namespace tpp::test {
namespace {

std::string read_file(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

TEST(ServeShutdownTest, SigtermLetsTheRequestInFlightFinish) {
  if (std::system("node --version > /dev/null 2>&1") != 0) GTEST_SKIP() << "node is not installed";
  const std::string dir = temp_dir("serve_shutdown");
  // A streamed request of 4 x 480 tokens (the end token banned); after its
  // first chunk the client sends the server SIGTERM, then reads on to the end.
  std::ofstream(dir + "/client.mjs") << R"js(
const [port, pid] = process.argv.slice(2);
const r = await fetch(`http://127.0.0.1:${port}/v1/completions`, { method: 'POST',
  headers: { 'Content-Type': 'application/json' },
  body: JSON.stringify({ prompt: 'the cat', max_tokens: 480, n: 4, temperature: 0, stream: true,
                         logit_bias: { '262': -100 } }) });
const reader = r.body.getReader();
const decoder = new TextDecoder();
let text = '', signalled = false;
for (;;) {
  const { value, done } = await reader.read();
  if (done) break;
  text += decoder.decode(value, { stream: true });
  if (!signalled && text.includes('data: ')) {
    process.kill(Number(pid), 'SIGTERM');
    signalled = true;
    // A new request meanwhile is refused.
    const late = await fetch(`http://127.0.0.1:${port}/v1/completions`, { method: 'POST',
      headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ prompt: 'x', max_tokens: 1 }) })
      .then((x) => x.status, () => 'refused');
    console.log(`late request: ${late}`);
  }
}
console.log(text);
)js";
  const std::string script = fmt::format(R"sh(
set -u
cd {dir}
{tpp} serve -m {model} --port 0 -t 1 > server.log 2>&1 &
pid=$!
for i in $(seq 100); do grep -q 'http://' server.log && break; sleep 0.1; done
port=$(sed -n 's|.*http://127.0.0.1:\([0-9]*\).*|\1|p' server.log)
node client.mjs "$port" "$pid" > reply.txt 2>&1
wait $pid
echo "server exit $?" > exit.txt
)sh",
                                         fmt::arg("dir", dir), fmt::arg("tpp", tpp_binary()),
                                         fmt::arg("model", serve_model().dir));
  std::ofstream(dir + "/run.sh") << script;
  std::string out;
  run_command("bash " + dir + "/run.sh 2>&1", &out);
  const std::string log = read_file(dir + "/server.log"), reply = read_file(dir + "/reply.txt");
  EXPECT_EQ(read_file(dir + "/exit.txt"), "server exit 0\n") << out << log;
  EXPECT_NE(log.find("SIGTERM: finishing the requests in flight"), std::string::npos) << log;
  EXPECT_NE(log.find("tpp serve: stopped"), std::string::npos) << log;
  EXPECT_NE(reply.find("\"finish_reason\":\"length\""), std::string::npos) << reply.substr(0, 500);
  EXPECT_NE(reply.find("data: [DONE]"), std::string::npos) << "the reply was cut: " << reply.substr(0, 500);
  size_t lengths = 0;
  for (size_t at = 0; (at = reply.find("\"finish_reason\":\"length\"", at)) != std::string::npos; ++at) ++lengths;
  EXPECT_EQ(lengths, 4u) << "every choice runs to max_tokens";
  EXPECT_TRUE(reply.find("late request: 503") != std::string::npos || reply.find("late request: refused") != std::string::npos)
      << reply.substr(0, 300);
}

}  // namespace
}  // namespace tpp::test
