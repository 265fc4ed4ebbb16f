// Data-parallel training: the real `tpp train` under `mpirun --oversubscribe
// -np 2` (one thread per rank) against one process with the same global
// batch: the same loss curve and model bytes, resumption with another number
// of ranks, and every rank stopping when one of them dies or fails.
//
// OpenMPI refuses to run as root unless told twice; these switches are set
// here, for the tests only (users running as root set them themselves).
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "common/test_util.h"
#include "tpp/model/model.h"
#include "tpp/train/params.h"

namespace tpp::test {
namespace {

namespace fs = std::filesystem;

std::string file_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

class DataParallelTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string out;
    if (run_command("command -v mpirun", &out) != 0)
      GTEST_SKIP() << "mpirun not found: install openmpi-bin (scripts/setup.sh does)";
    run_command(tpp_binary() + " --version", &out);
    if (out.find("MPI: none") != std::string::npos) GTEST_SKIP() << "this tpp was built without MPI: " << out;
    ::setenv("OMPI_ALLOW_RUN_AS_ROOT", "1", 1);
    ::setenv("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1", 1);
    dir_ = temp_dir(::testing::UnitTest::GetInstance()->current_test_info()->name());
    write_inputs(dir_);
  }

  static void write_inputs(const std::string& dir) {
    std::ofstream(dir + "/config.json")
        << R"({"d_model": 32, "n_layers": 2, "n_heads": 4, "n_kv_heads": 2, "d_ff": 64,
               "vocab_size": 260, "max_seq_len": 64, "rope_theta": 10000.0, "tie_embeddings": true})";
    std::string text;
    for (int i = 0; i < 400; ++i)
      text += "The quick brown fox jumps over the lazy dog " + std::to_string(i % 37) + ". Pack my box.\n";
    std::ofstream(dir + "/corpus.txt") << text;
  }

  // `tpp train` from scratch (dir_/config.json unless args name a --config)
  // into dir_/out with `ranks` processes (0: no mpirun); the output; *code
  // the exit status. A run that hangs fails.
  std::string train(int ranks, const std::string& out, const std::string& args, int* code) const {
    const std::string config = args.find("--config ") == std::string::npos ? "--config " + dir_ + "/config.json " : "";
    const std::string run = config + "--data " + dir_ + "/corpus.txt --out " + dir_ + "/" + out +
                            " --batch 3 --seq 24 --lr 3e-3 --eval-tokens 256 -t 1 -q " + args;
    return tpp(ranks, "train " + run, code);
  }
  std::string tpp(int ranks, const std::string& args, int* code) const {
    std::string cmd = "timeout 120 ";
    if (ranks > 0) cmd += "mpirun --oversubscribe -np " + std::to_string(ranks) + " ";
    std::string output;
    *code = run_command(cmd + tpp_binary() + " " + args, &output);
    return output;
  }

  // The metrics of a run without its timings: every other field must agree bit for bit.
  std::vector<nlohmann::json> curve(const std::string& out) const {
    std::vector<nlohmann::json> lines;
    std::ifstream in(dir_ + "/" + out + "/metrics.jsonl");
    std::string line;
    while (std::getline(in, line)) {
      auto j = nlohmann::json::parse(line);
      j.erase("elapsed_s");
      j.erase("tokens_per_s");
      j.erase("reduce_s");  // only a run over ranks has it
      lines.push_back(std::move(j));
    }
    return lines;
  }
  std::string model(const std::string& out) const { return file_bytes(dir_ + "/" + out + "/model.safetensors"); }
  std::string optimizer(const std::string& out) const {
    const auto pointer = nlohmann::json::parse(file_bytes(dir_ + "/" + out + "/checkpoint.json"));
    return file_bytes(dir_ + "/" + out + "/" + pointer["dir"].get<std::string>() + "/optimizer.safetensors");
  }

  std::string dir_;
};

TEST_F(DataParallelTest, TwoRanksGiveOneProcesssBits) {
  struct Case {
    int per_rank;  // --grad-accum on each of the 2 ranks
    const char* extra;
  };
  // Small buckets start exchanging during the backward, several at a time;
  // the second config shares KV across layers and unties the output matrix.
  std::ofstream(dir_ + "/cla.json")
      << R"({"d_model": 32, "n_layers": 4, "n_heads": 4, "n_kv_heads": 2, "d_ff": 64, "cla_share": 2,
             "vocab_size": 260, "max_seq_len": 64, "rope_theta": 10000.0, "tie_embeddings": false})";
  const std::string cla = "--config " + dir_ + "/cla.json --grad-bucket-mb 0.004";
  for (const Case c : {Case{1, ""}, Case{2, ""}, Case{2, "--bf16"}, Case{3, "--clip 0.5"},
                       Case{1, "--grad-bucket-mb 0.01"}, Case{2, "--grad-bucket-mb 0.002 --bf16"}, Case{1, cla.c_str()},
                       Case{3, cla.c_str()}}) {
    SCOPED_TRACE(std::to_string(c.per_rank) + " micro-batches per rank " + c.extra);
    static int n = 0;
    const std::string tag = std::to_string(++n);
    const std::string common = std::string(" --steps 8 --eval-every 3 --save-every 3 ") + c.extra;
    int code1, code2;
    const std::string one = train(0, "one" + tag, "--grad-accum " + std::to_string(2 * c.per_rank) + common, &code1);
    ASSERT_EQ(code1, 0) << one;
    const std::string two = train(2, "two" + tag, "--grad-accum " + std::to_string(c.per_rank) + common, &code2);
    ASSERT_EQ(code2, 0) << two;
    const auto a = curve("one" + tag), b = curve("two" + tag);
    ASSERT_EQ(a.size(), 8u + 3u);  // 8 steps, evaluations at 3, 6 and 8
    EXPECT_EQ(a, b);
    EXPECT_EQ(model("one" + tag), model("two" + tag));
    EXPECT_EQ(optimizer("one" + tag), optimizer("two" + tag));
    EXPECT_TRUE(fs::exists(dir_ + "/two" + tag + "/loss.svg"));
  }
}

// --grad-sum local: each rank sums its own micro-batches first. Its bits
// depend on the number of ranks (but repeat for the same number); the stated
// tolerance against one process: loss, validation loss and gradient norm
// within 1e-6 relative, weights within 1e-5 (measured: 1.6e-8 and 1.2e-7
// after 12 steps). With one micro-batch per rank it is the ordered sum.
TEST_F(DataParallelTest, LocalSumIsWithinToleranceOfOneProcess) {
  int code;
  const std::string common = " --steps 12 --eval-every 4";
  std::string out = train(0, "one", "--grad-accum 6" + common, &code);
  ASSERT_EQ(code, 0) << out;
  for (const char* run : {"local", "again"}) {
    out = train(2, run, "--grad-accum 3 --grad-sum local" + common, &code);
    ASSERT_EQ(code, 0) << out;
  }
  EXPECT_EQ(model("local"), model("again"));
  const auto a = curve("one"), b = curve("local");
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i)
    for (const char* key : {"loss", "val_loss", "grad_norm"})
      if (a[i].contains(key)) {
        const double x = a[i][key].get<double>(), y = b[i][key].get<double>();
        EXPECT_LE(std::abs(x - y), 1e-6 * std::abs(x)) << key << " at line " << i;
      }
  const Model m1 = load_model(dir_ + "/one"), m2 = load_model(dir_ + "/local");
  const auto layout = train::make_layout(m1.config);
  const auto p1 = train::params_from_model(m1, layout), p2 = train::params_from_model(m2, layout);
  ASSERT_EQ(p1.size(), p2.size());
  float worst = 0;
  for (size_t i = 0; i < p1.size(); ++i) worst = std::max(worst, std::abs(p1[i] - p2[i]));
  EXPECT_LE(worst, 1e-5f);
  // One micro-batch per rank: nothing to sum locally, the ordered bits.
  out = train(0, "one2", "--grad-accum 2" + common, &code);
  ASSERT_EQ(code, 0) << out;
  out = train(2, "local1", "--grad-accum 1 --grad-sum local" + common, &code);
  ASSERT_EQ(code, 0) << out;
  EXPECT_EQ(model("one2"), model("local1"));
  // A resumed run keeps the run's choice.
  out = tpp(2, "train --resume " + dir_ + "/local1 --grad-sum ordered -q", &code);
  EXPECT_NE(code, 0) << out;
  EXPECT_NE(out.find("--grad-sum cannot change in a resumed run"), std::string::npos) << out;
}

TEST_F(DataParallelTest, ResumesWithAnyNumberOfRanks) {
  int code;
  std::string out = train(0, "full", "--steps 10 --grad-accum 2 --save-every 4", &code);
  ASSERT_EQ(code, 0) << out;
  // Two ranks stop after 6 steps (checkpoint at 4); one process finishes.
  out = train(2, "a", "--steps 10 --grad-accum 1 --save-every 4 --stop-after 6", &code);
  ASSERT_EQ(code, 0) << out;
  EXPECT_FALSE(fs::exists(dir_ + "/a/model.safetensors"));
  out = tpp(0, "train --resume " + dir_ + "/a -t 1 -q", &code);
  ASSERT_EQ(code, 0) << out;
  // One process stops; two ranks finish.
  out = train(0, "b", "--steps 10 --grad-accum 2 --save-every 4 --stop-after 5", &code);
  ASSERT_EQ(code, 0) << out;
  out = tpp(2, "train --resume " + dir_ + "/b -t 1 -q", &code);
  ASSERT_EQ(code, 0) << out;
  for (const char* run : {"a", "b"}) {
    SCOPED_TRACE(run);
    EXPECT_EQ(curve(run), curve("full"));
    EXPECT_EQ(model(run), model("full"));
  }
  // Three ranks share a step of two micro-batches: the third waits, the bits stay.
  out = train(0, "c", "--steps 10 --grad-accum 2 --save-every 4 --stop-after 4", &code);
  ASSERT_EQ(code, 0) << out;
  out = tpp(3, "train --resume " + dir_ + "/c -t 1 -q", &code);
  ASSERT_EQ(code, 0) << out;
  EXPECT_EQ(curve("c"), curve("full"));
  EXPECT_EQ(model("c"), model("full"));
}

TEST_F(DataParallelTest, EvalSharesTheWindowsAndPrintsOneProcesssFigures) {
  int code;
  std::string out = train(0, "m", "--steps 3", &code);
  ASSERT_EQ(code, 0) << out;
  const std::string args = "eval -m " + dir_ + "/m --data " + dir_ + "/corpus.txt --seq 32 --batch 2 -t 1";
  const std::string one = tpp(0, args, &code);
  ASSERT_EQ(code, 0) << one;
  const std::string two = tpp(2, args, &code);
  ASSERT_EQ(code, 0) << two;
  EXPECT_EQ(one, two);  // rank 0 alone prints, and the figures are the same
  EXPECT_NE(one.find("perplexity"), std::string::npos) << one;
}

TEST_F(DataParallelTest, OtherCommandsRefuseSeveralRanks) {
  int code;
  const std::string out = tpp(2, "kv-cache --config " + dir_ + "/config.json --tokens 16", &code);
  EXPECT_NE(code, 0) << out;
  EXPECT_NE(out.find("tpp kv-cache does not run over MPI ranks (mpirun started 2); only train and eval do"),
            std::string::npos)
      << out;
}

// Rank 1 alone cannot read its data (each rank runs in its own directory):
// it reports its error and stops rank 0, which waits in a collective.
TEST_F(DataParallelTest, FailingRankStopsEveryRankWithItsMessage) {
  fs::create_directories(dir_ + "/r0");
  fs::create_directories(dir_ + "/r1");
  fs::copy_file(dir_ + "/corpus.txt", dir_ + "/r0/corpus.txt");
  // Rank r runs in dir_/r<r>, writing to dir_/<out>.
  auto job = [&](const std::string& out0, const std::string& out1) {
    const std::string train = fmt::format(
        " {} train --config {}/config.json --data corpus.txt --steps 50 --batch 3 --seq 24 -t 1 -q --out {}/",
        tpp_binary(), dir_, dir_);
    return fmt::format("timeout 120 mpirun --oversubscribe -np 1 -wdir {}/r0{}{} : -np 1 -wdir {}/r1{}{}", dir_, train,
                       out0, dir_, train, out1);
  };
  std::string out;
  int code = run_command(job("out0", "out1"), &out);
  EXPECT_NE(code, 0) << out;
  EXPECT_NE(code, 124) << "the ranks hung: " << out;
  EXPECT_NE(out.find("error (rank 1 of 2): corpus.txt"), std::string::npos) << out;
  // Both have the file, but not the same text: the ranks refuse to train apart.
  std::ofstream(dir_ + "/r1/corpus.txt") << file_bytes(dir_ + "/corpus.txt") << "one more line\n";
  code = run_command(job("out0", "out0"), &out);
  EXPECT_NE(code, 0) << out;
  EXPECT_NE(code, 124) << "the ranks hung: " << out;
  EXPECT_NE(out.find("rank 1's training or validation text (as tokens) differ from rank 0's"), std::string::npos)
      << out;
}

// The environment of process `pid` as its NAME=value entries.
std::set<std::string> environment_of(const fs::path& proc) {
  std::set<std::string> entries;
  std::istringstream in(file_bytes(proc.string() + "/environ"));
  for (std::string entry; std::getline(in, entry, char(0));) entries.insert(entry);
  return entries;
}

// The pids of this test's tpp processes of `rank` (-1: any rank).
std::vector<pid_t> rank_pids(const std::string& mark, int rank) {
  std::vector<pid_t> pids;
  for (const auto& e : fs::directory_iterator("/proc")) {
    const std::string name = e.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    if (file_bytes(e.path().string() + "/comm").rfind("tpp", 0) != 0) continue;
    const auto env = environment_of(e.path());
    if (!env.count("TPP_TEST_MARK=" + mark)) continue;
    if (rank >= 0 && !env.count("OMPI_COMM_WORLD_RANK=" + std::to_string(rank))) continue;
    pids.push_back(pid_t(std::stoi(name)));
  }
  return pids;
}

// Rank 1 is killed mid-run: every rank exits, mpirun says which rank died,
// and the last checkpoint rank 0 wrote resumes.
TEST_F(DataParallelTest, KilledRankStopsEveryRankAndTheCheckpointResumes) {
  const std::string mark = std::to_string(::getpid());
  const std::string log = dir_ + "/mpirun.log";
  const std::string cmd = "TPP_TEST_MARK=" + mark + " exec timeout 120 mpirun --oversubscribe -np 2 " + tpp_binary() +
                          " train --config " + dir_ + "/config.json --data " + dir_ + "/corpus.txt --out " + dir_ +
                          "/out --steps 100000 --batch 3 --seq 24 -t 1 -q --save-every 5 --eval-every 0 > " + log +
                          " 2>&1";
  const pid_t mpirun = ::fork();
  ASSERT_GE(mpirun, 0);
  if (mpirun == 0) {
    ::execl("/bin/sh", "sh", "-c", cmd.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  // Wait for a checkpoint, then kill rank 1.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (!fs::exists(dir_ + "/out/checkpoint.json") && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  ASSERT_TRUE(fs::exists(dir_ + "/out/checkpoint.json")) << file_bytes(log);
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  const auto victims = rank_pids(mark, 1);
  ASSERT_EQ(victims.size(), 1u) << "rank 1's process not found";
  ASSERT_EQ(::kill(victims[0], SIGKILL), 0);
  int status = 0;
  ASSERT_EQ(::waitpid(mpirun, &status, 0), mpirun);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_NE(WEXITSTATUS(status), 0) << file_bytes(log);
  EXPECT_NE(WEXITSTATUS(status), 124) << "the ranks hung: " << file_bytes(log);
  const std::string said = file_bytes(log);
  EXPECT_NE(said.find("rank 1"), std::string::npos) << said;
  EXPECT_NE(said.find("signal 9"), std::string::npos) << said;
  for (int i = 0; i < 100 && !rank_pids(mark, -1).empty(); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_TRUE(rank_pids(mark, -1).empty()) << "a rank outlived the job";
  // The checkpoint is whole: two ranks resume it and take two more steps.
  const auto pointer = nlohmann::json::parse(file_bytes(dir_ + "/out/checkpoint.json"));
  const int64_t step = pointer["step"].get<int64_t>();
  EXPECT_GE(step, 5);
  int code;
  const std::string out = tpp(2, "train --resume " + dir_ + "/out -t 1 --stop-after 2", &code);
  ASSERT_EQ(code, 0) << out;
  EXPECT_NE(out.find("resuming at step " + std::to_string(step)), std::string::npos) << out;
}

}  // namespace
}  // namespace tpp::test
