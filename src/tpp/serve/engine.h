// The serving engine: continuous batching over a fixed number of slots.
//
// Every sequence (one choice of one request) waits in a queue until a slot is
// free, then owns that slot's KV cache until it finishes. One scheduler
// thread runs steps: each step is one Transformer::forward_batch over every
// active slot, a prompt chunk for those still prefilling and one token for
// those decoding, so the weights are read once per step for all of them.
// New sequences join between steps and finished ones leave.
//
// A prompt is prefilled in chunks of `max_chunk` tokens from its start, the
// chunks Transformer::forward uses, and a batch gives each row the bits it
// gets alone: a sequence's tokens are those `generate` gives for the same
// prompt, sampling parameters and seed, however many others share its steps.
//
// Prefix cache: a free slot keeps the tokens of its last sequence. A new
// sequence goes to the free slot whose cached tokens share the longest prefix
// with its prompt and reuses that prefix up to a chunk boundary (so the
// chunks, and the bits, stay those of a fresh prefill).
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "tpp/core/thread_pool.h"
#include "tpp/infer/sampler.h"
#include "tpp/model/kv_cache.h"
#include "tpp/model/transformer.h"
#include "tpp/serve/json_grammar.h"

namespace tpp::serve {

// One sequence to generate.
struct SequenceSpec {
  std::vector<int32_t> prompt;
  int max_tokens = 16;
  SamplingParams sampling;
  // OpenAI's penalties over the tokens generated so far: logit -= presence
  // (if the token occurred) + frequency * (times it occurred).
  float presence_penalty = 0, frequency_penalty = 0;
  std::vector<std::pair<int32_t, float>> logit_bias;  // added to the logits
  std::vector<std::string> stop;                      // stop strings
  int logprobs = -1;  // -1: none; else the number of alternatives per token (0..20)
  // Constrained decoding: only tokens that continue valid JSON (of the
  // schema) are drawn; the reply ends, "stop", when the object closes.
  std::shared_ptr<const JsonGrammar> grammar;
};

struct TokenLogprob {
  int32_t token = 0;
  float logprob = 0;
  std::vector<std::pair<int32_t, float>> top;  // most likely first
};

// What one sequence produced since its last event.
struct Event {
  int index = 0;                       // the sequence's index in its job
  std::string text;                    // new text, safe to show
  std::vector<TokenLogprob> logprobs;  // the new tokens, when asked for
  std::string finish_reason;           // "" while running, else "stop" or "length"
  int prompt_tokens = 0, completion_tokens = 0, cached_tokens = 0;  // set with finish_reason
  std::string error;                   // the engine failed this sequence
};

// One request: its sequences and the channel their events arrive on.
class Job {
 public:
  explicit Job(std::vector<SequenceSpec> seqs) : seqs_(std::move(seqs)) {}
  const std::vector<SequenceSpec>& sequences() const { return seqs_; }

  // Moves the pending events into `out`, waiting up to `timeout_ms` for one;
  // false when every sequence has finished and no event is left.
  bool wait(std::vector<Event>& out, int timeout_ms);
  // The client went away: its slots are freed at the next step.
  void cancel() { cancelled_.store(true); }
  bool cancelled() const { return cancelled_.load(); }

 private:
  friend class Engine;
  void post(Event e);

  std::vector<SequenceSpec> seqs_;
  std::mutex mutex_;
  std::condition_variable ready_;
  std::vector<Event> events_;
  size_t finished_ = 0;
  std::atomic<bool> cancelled_{false};
};

struct EngineOptions {
  int parallel = 4;                 // slots (sequences in flight)
  int64_t ctx = 2048;               // tokens per slot
  DType kv_type = DType::f16;
  int max_queue = 64;               // waiting sequences before submit refuses
  int max_chunk = 256;              // prefill chunk (Transformer::forward's)
  int prefill_budget = 512;         // prompt tokens per step across slots
};

struct EngineStats {
  int64_t requests = 0, prompt_tokens = 0, cached_tokens = 0, completion_tokens = 0;
  double prefill_seconds = 0, decode_seconds = 0;  // step time, split by tokens
  int busy_slots = 0, queued = 0;
  int64_t kv_tokens = 0, kv_capacity = 0;          // positions held / allocated
};

class Engine {
 public:
  // token_bytes(id): a generated token's bytes (for stop strings and text);
  // stop_ids: tokens that end a reply. The model must outlive the engine.
  Engine(const Model& model, std::function<std::string(int32_t)> token_bytes, std::vector<int32_t> stop_ids,
         EngineOptions options, ThreadPool& pool);
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Queues a job; nullptr when the queue is full (the caller answers 503).
  // Throws tpp::Error for a sequence that cannot fit a slot.
  std::shared_ptr<Job> submit(std::vector<SequenceSpec> seqs);
  // Finishes the queued and running sequences, then stops the scheduler.
  void shutdown();

  EngineStats stats() const;
  const EngineOptions& options() const { return options_; }

 private:
  struct Slot;
  struct Pending {
    std::shared_ptr<Job> job;
    int index = 0;
  };
  void loop();
  void admit();
  void finish(Slot& s, const std::string& reason);
  void release(Slot& s);  // frees the slot without an event
  void emit(Slot& s);  // samples from s.logits, posts the event
  int32_t sample(Slot& s);

  const Model& model_;
  std::function<std::string(int32_t)> token_bytes_;
  std::vector<std::string> vocab_bytes_;  // token_bytes_ of every token, for grammar masks
  std::vector<int32_t> stop_ids_;
  EngineOptions options_;
  ThreadPool& pool_;
  Transformer transformer_;
  std::vector<std::unique_ptr<Slot>> slots_;

  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<Pending> queue_;
  int active_ = 0;  // slots holding a sequence
  bool stopping_ = false;
  EngineStats stats_;
  std::thread thread_;
};

}  // namespace tpp::serve
