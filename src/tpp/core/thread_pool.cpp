#include "tpp/core/thread_pool.h"

#include <algorithm>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace tpp {
namespace {

inline void cpu_relax() {
#if defined(__x86_64__)
  _mm_pause();
#endif
}

// About 50-100 µs of spinning before a worker sleeps: long enough to cover
// the gap between two matmuls of one decode step.
constexpr int kSpinIterations = 20000;

}  // namespace

ThreadPool::ThreadPool(int n_threads) {
  if (n_threads <= 0) n_threads = int(std::max(1u, std::thread::hardware_concurrency()));
  n_threads_ = size_t(n_threads);
  for (size_t w = 1; w < n_threads_; ++w) threads_.emplace_back([this, w] { worker_loop(w); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard lock(mutex_);
    stop_.store(true);
    generation_.fetch_add(1);
  }
  wake_.notify_all();
  for (auto& t : threads_) t.join();
}

void ThreadPool::partition(size_t n, size_t grain, size_t n_workers, size_t w, size_t* begin,
                           size_t* end) {
  grain = std::max<size_t>(grain, 1);
  const size_t chunks = (n + grain - 1) / grain;
  const size_t per = chunks / n_workers, extra = chunks % n_workers;
  const size_t first = w * per + std::min(w, extra);
  const size_t count = per + (w < extra ? 1 : 0);
  *begin = std::min(n, first * grain);
  *end = std::min(n, (first + count) * grain);
}

void ThreadPool::run_range(size_t worker) {
  if (job_dynamic_) {
    for (;;) {
      const size_t b = next_.fetch_add(job_grain_, std::memory_order_relaxed);
      if (b >= job_n_) return;
      (*job_)(b, std::min(job_n_, b + job_grain_), worker);
    }
  }
  size_t begin, end;
  partition(job_n_, job_grain_, job_workers_, worker, &begin, &end);
  if (begin < end) (*job_)(begin, end, worker);
}

void ThreadPool::parallel_for(size_t n, size_t grain, RangeFn fn) { dispatch(n, grain, fn, false); }

void ThreadPool::parallel_for_dynamic(size_t n, size_t grain, RangeFn fn) { dispatch(n, grain, fn, true); }

void ThreadPool::dispatch(size_t n, size_t grain, const RangeFn& fn, bool dynamic) {
  if (n == 0) return;
  const size_t chunks = (n + std::max<size_t>(grain, 1) - 1) / std::max<size_t>(grain, 1);
  const size_t workers = std::min(n_threads_, chunks);
  if (workers <= 1) {
    fn(0, n, 0);
    return;
  }
  job_ = &fn;
  job_n_ = n;
  job_grain_ = grain;
  job_workers_ = workers;
  job_dynamic_ = dynamic;
  next_.store(0, std::memory_order_relaxed);
  pending_.store(n_threads_ - 1, std::memory_order_relaxed);
  {
    // The generation bump publishes the job; sleepers need the lock and a notify.
    std::lock_guard lock(mutex_);
    generation_.fetch_add(1, std::memory_order_release);
  }
  if (sleepers_.load(std::memory_order_acquire) > 0) wake_.notify_all();
  run_range(0);
  while (pending_.load(std::memory_order_acquire) != 0) cpu_relax();
  job_ = nullptr;
}

void ThreadPool::worker_loop(size_t worker) {
  uint64_t seen = 0;
  for (;;) {
    uint64_t gen = generation_.load(std::memory_order_acquire);
    for (int spin = 0; gen == seen && spin < kSpinIterations; ++spin) {
      cpu_relax();
      gen = generation_.load(std::memory_order_acquire);
    }
    if (gen == seen) {
      std::unique_lock lock(mutex_);
      sleepers_.fetch_add(1);
      wake_.wait(lock, [&] { return generation_.load() != seen; });
      sleepers_.fetch_sub(1);
      gen = generation_.load();
    }
    seen = gen;
    if (stop_.load()) return;
    if (worker < job_workers_) run_range(worker);
    pending_.fetch_sub(1, std::memory_order_acq_rel);
  }
}

}  // namespace tpp
