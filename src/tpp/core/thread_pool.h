// One pool of worker threads with static, contiguous partitions.
//
// parallel_for(n, grain, fn) splits [0, n) into at most size() contiguous
// ranges (each a multiple of `grain`, except the last) and calls
// fn(begin, end, worker) once per non-empty range. Worker w always gets the
// w-th range, so per-worker scratch indexed by `worker` and partial sums
// combined in worker order make results bitwise repeatable for a fixed
// thread count.
//
// Workers spin briefly before sleeping: decode issues a few hundred
// parallel_for calls per token, and a condition-variable wake-up per call
// would cost more than the matmuls of a small model.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <mutex>
#include <thread>
#include <vector>

namespace tpp {

// A non-owning reference to a callable fn(begin, end, worker): unlike
// std::function it never allocates, so a parallel_for per matmul costs no
// heap traffic on the per-token path.
class RangeFn {
 public:
  template <class F>
  RangeFn(const F& f)  // NOLINT: implicit by design, like std::function_ref
      : object_(&f), call_([](const void* o, size_t b, size_t e, size_t w) { (*static_cast<const F*>(o))(b, e, w); }) {}
  void operator()(size_t begin, size_t end, size_t worker) const { call_(object_, begin, end, worker); }

 private:
  const void* object_;
  void (*call_)(const void*, size_t, size_t, size_t);
};

class ThreadPool {
 public:

  // n_threads <= 0 means one thread per hardware core.
  explicit ThreadPool(int n_threads = 0);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  size_t size() const { return n_threads_; }

  // fn must outlive the call (it is referenced, not copied).
  void parallel_for(size_t n, size_t grain, RangeFn fn);

  // Workers take chunks of `grain` items from a shared counter until none
  // are left: balances uneven workers (a busy core, a slower one), but which
  // worker runs which chunk varies, so use it only where each item's result
  // does not depend on the partition.
  void parallel_for_dynamic(size_t n, size_t grain, RangeFn fn);

  // The range worker `w` of `n_workers` gets for (n, grain): shared with
  // callers that need to size per-worker scratch consistently.
  static void partition(size_t n, size_t grain, size_t n_workers, size_t w, size_t* begin,
                        size_t* end);

 private:
  void worker_loop(size_t worker);
  void run_range(size_t worker);
  void dispatch(size_t n, size_t grain, const RangeFn& fn, bool dynamic);

  size_t n_threads_;
  std::vector<std::thread> threads_;
  const RangeFn* job_ = nullptr;  // valid during parallel_for only
  size_t job_n_ = 0, job_grain_ = 1, job_workers_ = 1;
  bool job_dynamic_ = false;
  std::atomic<size_t> next_{0};
  std::atomic<uint64_t> generation_{0};
  std::atomic<size_t> pending_{0};
  std::atomic<bool> stop_{false};
  std::mutex mutex_;
  std::condition_variable wake_;
  std::atomic<int> sleepers_{0};
};

}  // namespace tpp
