#include "tpp/serve/engine.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <optional>
#include <unordered_map>

#include "tpp/core/error.h"
#include "tpp/kernels/api.h"
#include "tpp/serve/text_stream.h"

namespace tpp::serve {

bool Job::wait(std::vector<Event>& out, int timeout_ms) {
  std::unique_lock lock(mutex_);
  ready_.wait_for(lock, std::chrono::milliseconds(timeout_ms),
                  [&] { return !events_.empty() || finished_ == seqs_.size(); });
  out.clear();
  out.swap(events_);
  return !(out.empty() && finished_ == seqs_.size());
}

void Job::post(Event e) {
  {
    std::lock_guard lock(mutex_);
    if (!e.finish_reason.empty() || !e.error.empty()) ++finished_;
    events_.push_back(std::move(e));
  }
  ready_.notify_all();
}

struct Engine::Slot {
  Slot(const ModelConfig& c, int64_t ctx, DType kv_type) : cache(c, ctx, kv_type) {}
  KvCache cache;
  std::vector<int32_t> cached;  // the tokens whose K/V the cache holds, in order
  // The sequence in this slot (job == nullptr: free).
  std::shared_ptr<Job> job;
  int index = 0;
  const SequenceSpec* spec = nullptr;
  int64_t fed = 0;                 // prompt tokens in the cache
  int reused = 0;                  // of which came from the prefix cache
  std::vector<int32_t> history;    // prompt, then the generated tokens
  std::optional<Sampler> sampler;
  std::optional<TextStream> text;
  std::unordered_map<int32_t, int> counts;  // generated tokens, for the penalties
  int generated = 0;
  int32_t next = 0;                // the token the next decode step feeds
  std::vector<float> logits, logp, saved;
  JsonGrammar::State grammar;
};

Engine::Engine(const Model& model, std::function<std::string(int32_t)> token_bytes, std::vector<int32_t> stop_ids,
               EngineOptions options, ThreadPool& pool)
    : model_(model),
      token_bytes_(std::move(token_bytes)),
      stop_ids_(std::move(stop_ids)),
      options_(options),
      pool_(pool),
      transformer_(model, options.max_chunk) {
  const ModelConfig& c = model.config;
  TPP_CHECK(options.parallel >= 1, "serve: --parallel {} must be at least 1", options.parallel);
  TPP_CHECK(options.ctx >= 2 && options.ctx <= c.max_seq_len,
            "serve: --ctx {} must be in [2, {}] (the model's max_seq_len)", options.ctx, c.max_seq_len);
  TPP_CHECK(options.max_queue >= 0, "serve: the queue limit {} must be >= 0", options.max_queue);
  TPP_CHECK(options.prefill_budget >= 1, "serve: the prefill budget {} must be >= 1", options.prefill_budget);
  for (int i = 0; i < options.parallel; ++i) {
    slots_.push_back(std::make_unique<Slot>(c, options.ctx, options.kv_type));
    slots_.back()->logits.resize(size_t(c.vocab_size));
  }
  stats_.kv_capacity = int64_t(options.parallel) * options.ctx;
  vocab_bytes_.resize(size_t(c.vocab_size));
  for (int32_t t = 0; t < int32_t(c.vocab_size); ++t) vocab_bytes_[size_t(t)] = token_bytes_(t);
  thread_ = std::thread([this] { loop(); });
}

Engine::~Engine() { shutdown(); }

void Engine::shutdown() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

std::shared_ptr<Job> Engine::submit(std::vector<SequenceSpec> seqs) {
  const int64_t V = model_.config.vocab_size;
  TPP_CHECK(!seqs.empty(), "no sequences to generate");
  for (const auto& s : seqs) {
    TPP_CHECK(!s.prompt.empty(), "the prompt is empty (give at least one token)");
    for (int32_t t : s.prompt)
      TPP_CHECK(t >= 0 && t < V, "prompt token {} is outside the vocabulary [0, {})", t, V);
    TPP_CHECK(s.max_tokens >= 1, "max_tokens {} must be at least 1", s.max_tokens);
    TPP_CHECK(int64_t(s.prompt.size()) + s.max_tokens <= options_.ctx,
              "the prompt ({} tokens) and max_tokens ({}) exceed the context of {} tokens", s.prompt.size(),
              s.max_tokens, options_.ctx);
    TPP_CHECK(s.logprobs <= 20, "top_logprobs {} must be at most 20", s.logprobs);
    for (const auto& [t, b] : s.logit_bias) TPP_CHECK(t >= 0 && t < V, "logit_bias: token {} is outside the vocabulary", t);
    Sampler check(s.sampling);  // throws on out-of-range parameters
  }
  auto job = std::make_shared<Job>(std::move(seqs));
  {
    std::lock_guard lock(mutex_);
    // Room: the queue's places and the slots no sequence holds yet (the
    // sequences of clients that went away leave the queue first).
    std::erase_if(queue_, [](const Pending& p) { return p.job->cancelled(); });
    const size_t room = size_t(options_.max_queue) + slots_.size() - size_t(active_);
    if (stopping_ || queue_.size() + job->sequences().size() > room) return nullptr;
    for (int i = 0; i < int(job->sequences().size()); ++i) queue_.push_back({job, i});
    ++stats_.requests;
  }
  wake_.notify_all();
  return job;
}

EngineStats Engine::stats() const {
  std::lock_guard lock(mutex_);
  return stats_;
}

// Under mutex_: queued sequences into free slots, each into the free slot
// whose cached tokens share the longest prefix with its prompt.
void Engine::admit() {
  while (!queue_.empty()) {
    Pending p = queue_.front();
    if (p.job->cancelled()) {
      queue_.pop_front();
      continue;
    }
    const SequenceSpec& spec = p.job->sequences()[size_t(p.index)];
    Slot* best = nullptr;
    int64_t best_common = -1;
    for (auto& s : slots_) {
      if (s->job) continue;
      int64_t common = 0;
      const int64_t most = std::min<int64_t>(int64_t(s->cached.size()), int64_t(spec.prompt.size()) - 1);
      while (common < most && s->cached[size_t(common)] == spec.prompt[size_t(common)]) ++common;
      if (common > best_common) best = s.get(), best_common = common;
    }
    if (!best) return;
    queue_.pop_front();
    ++active_;
    Slot& s = *best;
    const int64_t reuse = best_common / options_.max_chunk * options_.max_chunk;
    s.cached.resize(size_t(reuse));
    s.cache.set_n_past(reuse);
    s.job = p.job;
    s.index = p.index;
    s.spec = &spec;
    s.fed = reuse;
    s.reused = int(reuse);
    s.history = spec.prompt;
    s.history.reserve(spec.prompt.size() + size_t(spec.max_tokens));
    s.sampler.emplace(spec.sampling);
    s.text.emplace(spec.stop);
    s.counts.clear();
    s.generated = 0;
    if (spec.logprobs >= 0) s.logp.resize(s.logits.size());
    if (spec.grammar) s.grammar = spec.grammar->initial();
  }
}

void Engine::release(Slot& s) {
  s.job = nullptr;
  std::lock_guard lock(mutex_);
  --active_;
}

void Engine::finish(Slot& s, const std::string& reason) {
  Event e;
  e.index = s.index;
  e.finish_reason = reason;
  e.prompt_tokens = int(s.spec->prompt.size());
  e.completion_tokens = s.generated;
  e.cached_tokens = s.reused;
  {
    std::lock_guard lock(mutex_);
    --active_;
    stats_.prompt_tokens += e.prompt_tokens;
    stats_.cached_tokens += e.cached_tokens;
    stats_.completion_tokens += e.completion_tokens;
  }
  auto job = std::move(s.job);
  s.job = nullptr;
  job->post(std::move(e));
}

void Engine::emit(Slot& s) {
  const SequenceSpec& sp = *s.spec;
  const int64_t V = model_.config.vocab_size;
  float* logits = s.logits.data();
  Event e;
  e.index = s.index;
  // Log-probabilities of the model's distribution (before bias, penalties
  // and temperature), as OpenAI reports them.
  if (sp.logprobs >= 0) {
    const auto& kr = kernels::kernels();
    float mx = 0, sum = 0;
    if (kr.max_f32 && kr.exp_sum_f32) {
      mx = kr.max_f32(logits, V);
      sum = kr.exp_sum_f32(nullptr, logits, mx, V);
    } else {
      mx = *std::max_element(logits, logits + V);
      for (int64_t i = 0; i < V; ++i) sum += std::exp(logits[i] - mx);
    }
    const float lse = mx + std::log(sum);
    for (int64_t i = 0; i < V; ++i) s.logp[size_t(i)] = logits[i] - lse;
  }
  for (const auto& [t, b] : sp.logit_bias) logits[t] += b;
  if (sp.presence_penalty != 0 || sp.frequency_penalty != 0)
    for (const auto& [t, n] : s.counts) logits[t] -= sp.presence_penalty + sp.frequency_penalty * float(n);
  const int32_t token = sample(s);
  if (token < 0) {
    e.error = "no token of the vocabulary continues the JSON reply";
    s.job->post(std::move(e));
    finish(s, "stop");
    return;
  }
  ++s.generated;
  s.history.push_back(token);
  if (std::find(stop_ids_.begin(), stop_ids_.end(), token) != stop_ids_.end()) {
    e.text = s.text->finish();
    if (!e.text.empty()) s.job->post(std::move(e));
    finish(s, "stop");
    return;
  }
  ++s.counts[token];
  e.text = s.text->push(token_bytes_(token));
  if (sp.logprobs >= 0) {
    TokenLogprob lp{token, s.logp[size_t(token)], {}};
    if (sp.logprobs > 0) {
      std::vector<int32_t> ids(static_cast<size_t>(V));
      for (int32_t i = 0; i < int32_t(V); ++i) ids[size_t(i)] = i;
      const auto by_p = [&](int32_t a, int32_t b) {
        return s.logp[size_t(a)] > s.logp[size_t(b)] || (s.logp[size_t(a)] == s.logp[size_t(b)] && a < b);
      };
      std::partial_sort(ids.begin(), ids.begin() + sp.logprobs, ids.end(), by_p);
      for (int i = 0; i < sp.logprobs; ++i) lp.top.emplace_back(ids[size_t(i)], s.logp[size_t(ids[size_t(i)])]);
    }
    e.logprobs.push_back(std::move(lp));
  }
  bool stopped = s.text->stopped();
  if (sp.grammar) {
    sp.grammar->feed(s.grammar, vocab_bytes_[size_t(token)]);
    if (s.grammar.done) {
      stopped = true;
      e.text += s.text->finish();
    }
  }
  const bool full = s.generated >= sp.max_tokens;
  if (!stopped && full) e.text += s.text->finish();
  if (!e.text.empty() || !e.logprobs.empty()) s.job->post(std::move(e));
  if (stopped || full) {
    finish(s, stopped ? "stop" : "length");
    return;
  }
  s.next = token;
}

// A draw from s.logits; with a grammar, a draw that cannot continue the JSON
// is replaced by a draw from the tokens that can (all others masked), as
// llama.cpp's grammar sampling does. -1 when no token can.
int32_t Engine::sample(Slot& s) {
  const SequenceSpec& sp = *s.spec;
  const size_t V = s.logits.size();
  const std::span<float> logits(s.logits.data(), V);
  if (!sp.grammar) return s.sampler->sample(logits, s.history);
  auto allowed = [&](int32_t t) {
    if (std::find(stop_ids_.begin(), stop_ids_.end(), t) != stop_ids_.end()) return false;
    return sp.grammar->accepts(s.grammar, vocab_bytes_[size_t(t)]);
  };
  s.saved.assign(logits.begin(), logits.end());
  const int32_t first = s.sampler->sample(logits, s.history);
  if (allowed(first)) return first;
  std::copy(s.saved.begin(), s.saved.end(), logits.begin());
  bool any = false;
  for (size_t t = 0; t < V; ++t) {
    if (allowed(int32_t(t))) any = true;
    else logits[t] = -INFINITY;
  }
  return any ? s.sampler->sample(logits, s.history) : -1;
}

void Engine::loop() {
  using clock = std::chrono::steady_clock;
  std::vector<Transformer::Request> reqs;
  struct Fed {
    Slot* slot;
    int64_t n;  // prompt tokens fed this step; 0 = one decode token
  };
  std::vector<Fed> fed;
  for (;;) {
    {
      std::unique_lock lock(mutex_);
      admit();
      const int busy = active_;
      stats_.busy_slots = busy;
      stats_.queued = int(queue_.size());
      int64_t kv = 0;
      for (auto& s : slots_)
        if (s->job) kv += s->cache.n_past();
      stats_.kv_tokens = kv;
      if (busy == 0) {
        if (stopping_ && queue_.empty()) return;
        wake_.wait_for(lock, std::chrono::milliseconds(100));
        continue;
      }
    }
    reqs.clear();
    fed.clear();
    int64_t budget = options_.prefill_budget, prefill = 0, decode = 0;
    for (auto& sp : slots_) {
      Slot& s = *sp;
      if (!s.job) continue;
      if (s.job->cancelled()) {
        release(s);  // the client is gone: no event
        continue;
      }
      const auto& prompt = s.spec->prompt;
      if (s.fed < int64_t(prompt.size())) {
        if (budget <= 0 && prefill > 0) continue;
        const int64_t n = std::min<int64_t>(options_.max_chunk, int64_t(prompt.size()) - s.fed);
        const bool last = s.fed + n == int64_t(prompt.size());
        reqs.push_back({&s.cache, std::span(prompt).subspan(size_t(s.fed), size_t(n)), last ? s.logits.data() : nullptr,
                        false});
        fed.push_back({&s, n});
        budget -= n;
        prefill += n;
      } else {
        reqs.push_back({&s.cache, std::span(&s.next, 1), s.logits.data(), false});
        fed.push_back({&s, 0});
        ++decode;
      }
    }
    if (reqs.empty()) continue;
    const auto t0 = clock::now();
    try {
      transformer_.forward_batch(reqs, pool_);
    } catch (const std::exception& ex) {
      for (auto& f : fed) {
        Event e;
        e.index = f.slot->index;
        e.error = ex.what();
        f.slot->job->post(std::move(e));
        f.slot->cached.clear();
        f.slot->cache.clear();
        release(*f.slot);
      }
      continue;
    }
    const double dt = std::chrono::duration<double>(clock::now() - t0).count();
    {
      std::lock_guard lock(mutex_);
      stats_.prefill_seconds += dt * double(prefill) / double(prefill + decode);
      stats_.decode_seconds += dt * double(decode) / double(prefill + decode);
    }
    for (auto& f : fed) {
      Slot& s = *f.slot;
      if (f.n > 0) {
        const auto& prompt = s.spec->prompt;
        s.cached.insert(s.cached.end(), prompt.begin() + s.fed, prompt.begin() + s.fed + f.n);
        s.fed += f.n;
        if (s.fed < int64_t(prompt.size())) continue;
      } else {
        s.cached.push_back(s.next);
      }
      emit(s);
    }
  }
}

}  // namespace tpp::serve
