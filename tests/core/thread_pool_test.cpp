// ThreadPool: every index visited exactly once, static ranges contiguous and
// fixed per worker, dynamic chunks complete, many back-to-back calls.
#include <atomic>
#include <vector>

#include <gtest/gtest.h>

#include "tpp/core/thread_pool.h"

namespace tpp {
namespace {

TEST(ThreadPoolTest, StaticPartitionsCoverEachIndexOnceInWorkerOrder) {
  for (int threads : {1, 2, 3, 5}) {
    ThreadPool pool(threads);
    for (size_t n : {size_t(1), size_t(7), size_t(64), size_t(1000)}) {
      for (size_t grain : {size_t(1), size_t(16)}) {
        std::vector<int> hits(n, 0), owner(n, -1);
        pool.parallel_for(n, grain, [&](size_t b, size_t e, size_t w) {
          for (size_t i = b; i < e; ++i) {
            hits[i]++;
            owner[i] = int(w);
          }
        });
        for (size_t i = 0; i < n; ++i) ASSERT_EQ(hits[i], 1) << threads << " " << n << " " << i;
        for (size_t i = 1; i < n; ++i) ASSERT_LE(owner[i - 1], owner[i]);  // contiguous, in worker order
      }
    }
  }
}

TEST(ThreadPoolTest, DynamicChunksCoverEachIndexOnce) {
  ThreadPool pool(3);
  for (int rep = 0; rep < 200; ++rep) {
    std::vector<std::atomic<int>> hits(1001);
    pool.parallel_for_dynamic(hits.size(), 64, [&](size_t b, size_t e, size_t) {
      for (size_t i = b; i < e; ++i) hits[i]++;
    });
    for (auto& h : hits) ASSERT_EQ(h.load(), 1);
  }
}

TEST(ThreadPoolTest, ManyCallsInARowAndPartitionHelper) {
  ThreadPool pool(2);
  std::atomic<long> sum{0};
  for (int i = 0; i < 20000; ++i)
    pool.parallel_for(10, 1, [&](size_t b, size_t e, size_t) { sum += long(e - b); });
  EXPECT_EQ(sum.load(), 200000);
  size_t b, e;
  ThreadPool::partition(10, 4, 2, 1, &b, &e);  // chunks [0,4) [4,8) [8,10): worker 1 gets the last
  EXPECT_EQ(b, 8u);
  EXPECT_EQ(e, 10u);
}

}  // namespace
}  // namespace tpp
