// The serving engine: batched sequences get the tokens each gets alone, the
// prefix cache keeps those bits, cancelled and refused work is handled.
#include "tpp/serve/engine.h"

#include <gtest/gtest.h>

#include "common/test_util.h"
#include "serve/serve_test_util.h"
#include "tpp/serve/openai.h"
#include "tpp/serve/text_stream.h"

namespace tpp::serve {
namespace {

using test::serve_model;

struct Result {
  std::vector<int32_t> tokens;
  std::string text, finish;
  int completion_tokens = 0, cached_tokens = 0;
};

// Every sequence's tokens (asked for as logprobs), text and finish reason.
std::vector<Result> collect(Job& job) {
  std::vector<Result> out(job.sequences().size());
  std::vector<Event> events;
  while (job.wait(events, 1000))
    for (const auto& e : events) {
      EXPECT_TRUE(e.error.empty()) << e.error;
      Result& r = out[size_t(e.index)];
      for (const auto& lp : e.logprobs) r.tokens.push_back(lp.token);
      r.text += e.text;
      if (!e.finish_reason.empty()) {
        r.finish = e.finish_reason;
        r.completion_tokens = e.completion_tokens;
        r.cached_tokens = e.cached_tokens;
      }
    }
  return out;
}

std::vector<int32_t> prompt_of(int n, int salt) {
  std::vector<int32_t> p;
  for (int i = 0; i < n; ++i) p.push_back(int32_t((i * 37 + salt * 11 + 5) % 256));
  return p;
}

struct EngineFixture {
  EngineFixture(EngineOptions o)
      : codec(serve_model().text),
        engine(serve_model().model, [this](int32_t id) { return codec.token_bytes(id); }, {262}, o, pool) {}
  ThreadPool pool{2};
  TextCodec codec;
  Engine engine;
};

TEST(EngineTest, SequencesInABatchGetTheTokensEachGetsAlone) {
  EngineOptions o;
  o.parallel = 3;  // seven sequences: some wait in the queue for a slot
  o.ctx = 512;
  EngineFixture f(o);
  std::vector<SequenceSpec> specs;
  const int lengths[] = {1, 5, 40, 300, 17, 260, 3};
  for (int i = 0; i < 7; ++i) {
    SequenceSpec s;
    s.prompt = prompt_of(lengths[i], i);
    s.max_tokens = 12 + i;
    s.logprobs = 0;
    s.sampling.temperature = i % 2 ? 0.9f : 0.0f;
    s.sampling.top_k = i == 3 ? 20 : 0;
    s.sampling.top_p = i == 5 ? 0.8f : 1.0f;
    s.sampling.min_p = 0;
    s.sampling.seed = uint64_t(100 + i);
    specs.push_back(s);
  }
  // Two jobs submitted together: their sequences share steps.
  auto a = f.engine.submit(std::vector<SequenceSpec>(specs.begin(), specs.begin() + 4));
  auto b = f.engine.submit(std::vector<SequenceSpec>(specs.begin() + 4, specs.end()));
  ASSERT_TRUE(a && b);
  auto ra = collect(*a), rb = collect(*b);
  ra.insert(ra.end(), rb.begin(), rb.end());
  int stopped = 0;
  for (size_t i = 0; i < specs.size(); ++i) {
    const auto alone = test::generate_alone(serve_model().model, specs[i].prompt, specs[i].max_tokens, specs[i].sampling);
    EXPECT_EQ(ra[i].tokens, alone) << "sequence " << i;
    EXPECT_EQ(ra[i].text, f.codec.decode(alone)) << "sequence " << i;
    const bool eos = int(alone.size()) < specs[i].max_tokens;
    EXPECT_EQ(ra[i].finish, eos ? "stop" : "length") << "sequence " << i;
    EXPECT_EQ(ra[i].completion_tokens, int(alone.size()) + (eos ? 1 : 0)) << "the end token counts";
    stopped += eos;
  }
  const EngineStats st = f.engine.stats();
  EXPECT_EQ(st.requests, 2);
  EXPECT_EQ(st.busy_slots, 0);
}

TEST(EngineTest, PrefixCacheReusesWholeChunksAndKeepsTheBits) {
  EngineOptions o;
  o.parallel = 1;
  o.ctx = 256;
  o.max_chunk = 8;
  EngineFixture f(o);
  SequenceSpec s;
  s.prompt = prompt_of(30, 1);
  s.max_tokens = 10;
  s.logprobs = 0;
  s.sampling.temperature = 0;
  auto first = f.engine.submit({s});
  ASSERT_TRUE(first);
  const auto r1 = collect(*first);
  EXPECT_EQ(r1[0].cached_tokens, 0);
  // The same first 21 tokens: two whole chunks of 8 come from the cache.
  SequenceSpec t = s;
  t.prompt.resize(21);
  for (int i = 0; i < 9; ++i) t.prompt.push_back(int32_t(200 + i));
  auto second = f.engine.submit({t});
  ASSERT_TRUE(second);
  const auto r2 = collect(*second);
  EXPECT_EQ(r2[0].cached_tokens, 16);
  EXPECT_EQ(r2[0].tokens, test::generate_alone(serve_model().model, t.prompt, t.max_tokens, t.sampling, 8));
  EXPECT_EQ(r1[0].tokens, test::generate_alone(serve_model().model, s.prompt, s.max_tokens, s.sampling, 8));
  EXPECT_EQ(f.engine.stats().cached_tokens, 16);
}

TEST(EngineTest, CancelledJobFreesItsSlot) {
  EngineOptions o;
  o.parallel = 1;
  o.ctx = 512;
  EngineFixture f(o);
  SequenceSpec s;
  s.prompt = prompt_of(4, 2);
  s.max_tokens = 400;
  s.sampling.temperature = 0;
  s.logit_bias = {{262, -100.0f}};  // never the end token: runs to max_tokens unless cancelled
  auto long_job = f.engine.submit({s});
  ASSERT_TRUE(long_job);
  std::vector<Event> events;
  while (events.empty()) long_job->wait(events, 1000);
  long_job->cancel();
  s.max_tokens = 3;
  s.logprobs = 0;
  auto next = f.engine.submit({s});
  ASSERT_TRUE(next);
  const auto r = collect(*next);  // would wait for 400 tokens if the slot were not freed
  EXPECT_EQ(r[0].tokens.size(), 3u);
  EXPECT_LT(f.engine.stats().completion_tokens, 100) << "the cancelled sequence ran on";
}

TEST(EngineTest, FullQueueRefusesAndBadSequencesThrow) {
  EngineOptions o;
  o.parallel = 1;
  o.max_queue = 1;
  o.ctx = 512;
  EngineFixture f(o);
  SequenceSpec s;
  s.prompt = prompt_of(4, 3);
  s.max_tokens = 300;
  s.logit_bias = {{262, -100.0f}};
  auto a = f.engine.submit({s});
  auto b = f.engine.submit({s});
  auto c = f.engine.submit({s});
  EXPECT_TRUE(a && b);
  EXPECT_EQ(c, nullptr) << "one slot and one queue place for three sequences";
  a->cancel();
  b->cancel();
  SequenceSpec bad = s;
  bad.max_tokens = 600;
  EXPECT_NE(test::error_message([&] { f.engine.submit({bad}); }).find("exceed the context of 512"), std::string::npos);
  bad = s;
  bad.prompt = {999};
  EXPECT_NE(test::error_message([&] { f.engine.submit({bad}); }).find("outside the vocabulary"), std::string::npos);
  bad = s;
  bad.sampling.top_p = 0;
  EXPECT_NE(test::error_message([&] { f.engine.submit({bad}); }).find("top_p"), std::string::npos);
}

TEST(TextStreamTest, StopStringsAcrossTokensAreNeverShownInPart) {
  TextStream t({"END", "stop here"});
  std::string shown;
  for (const char* piece : {"Hello ", "wor", "ld E", "N", "X and st", "op h", "ere after"}) shown += t.push(piece);
  EXPECT_TRUE(t.stopped());
  EXPECT_EQ(shown, "Hello world ENX and ");
  EXPECT_EQ(t.text(), "Hello world ENX and ");
  EXPECT_EQ(t.push("more"), "");
}

TEST(TextStreamTest, HeldBackTextIsReleasedWhenItCannotBeAStop) {
  TextStream t({"<end>"});
  EXPECT_EQ(t.push("a<e"), "a");
  EXPECT_EQ(t.push("n"), "");
  EXPECT_EQ(t.push("x"), "<enx");
  EXPECT_EQ(t.push("<"), "");
  EXPECT_EQ(t.finish(), "<");
  EXPECT_FALSE(t.stopped());
}

TEST(TextStreamTest, CharactersSplitAcrossTokensWaitForTheirLastByte) {
  TextStream t;
  // U+20AC is E2 82 AC, U+1F600 is F0 9F 98 80.
  EXPECT_EQ(t.push("a\xE2"), "a");
  EXPECT_EQ(t.push("\x82"), "");
  EXPECT_EQ(t.push("\xAC\xF0\x9F"), "\xE2\x82\xAC");
  EXPECT_EQ(t.push("\x98\x80"), "\xF0\x9F\x98\x80");
  EXPECT_EQ(utf8_complete_prefix("ab\xC3"), 2u);
  EXPECT_EQ(utf8_complete_prefix("ab\xC3\xA9"), 4u);
}

}  // namespace
}  // namespace tpp::serve
