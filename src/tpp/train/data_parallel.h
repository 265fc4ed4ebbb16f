// Data-parallel training over MPI (Debian's OpenMPI): `mpirun -np P tpp train`.
//
// Every rank holds the whole model and optimizer. A step's global batch is
// M micro-batches of `batch` sequences (grad_accum x P for a new run);
// micro-batch m is drawn as a pure function of (seed, step, m), and rank r
// computes the micro-batches m = k*P + r < M (k = 0, 1, ...: its "rounds").
// When P does not divide M (a run resumed with another number of ranks) the
// last round leaves some ranks without a micro-batch.
//
// The step's gradient is one fixed expression whatever P is: the left fold
// g_0 + g_1 + ... + g_{M-1} in f32, element by element, where g_m is micro-
// batch m's gradient written by the backward into a zeroed buffer. One
// process computes exactly that; P ranks compute it as a reduce-scatter with
// a fixed order (MPI_Alltoallv sends each rank's slice of a bucket to the
// slice's owner, which folds the P slices in rank order, which is micro-batch
// order) followed by MPI_Allgatherv of the folded slices. So P ranks give one
// process's loss curve and model bytes bit for bit, for the same thread count
// per process (see docs/training.md for the cost of this choice).
//
// Without mpirun (or with P = 1) everything here is a no-op on one rank and
// tpp needs no MPI at run time beyond the shared library.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "tpp/core/thread_pool.h"

namespace tpp::train {

// The processes of one run.
class Ranks {
 public:
  // One rank: no MPI.
  Ranks();
  // The MPI job this process was started in by mpirun (it sets
  // OMPI_COMM_WORLD_SIZE or PMIX_RANK), or one rank when there is none. Fails
  // with a clear message when mpirun started several ranks but this tpp was
  // built without MPI. Finalizes MPI when destroyed.
  static Ranks join_environment();
  ~Ranks();
  Ranks(Ranks&& other) noexcept;
  Ranks& operator=(Ranks&&) = delete;
  Ranks(const Ranks&) = delete;

  int rank() const { return rank_; }
  int size() const { return size_; }
  bool root() const { return rank_ == 0; }
  // Ranks on this machine (for the default thread count).
  int local_size() const { return local_size_; }

  // v summed over the ranks where each element is non-zero on at most one
  // rank: exact (x + 0 = x), so the order MPI adds in does not matter.
  void sum_disjoint(std::span<double> v);
  // Rank 0's value on every rank.
  uint64_t broadcast(uint64_t value);
  // Fails on every rank whose `value` differs from rank 0's, naming `what`.
  void check_same(uint64_t value, const std::string& what);

  // The world's collectives on float buffers (counts and displacements in
  // floats, each at most INT32_MAX).
  void alltoallv(const float* send, std::span<const int> send_counts, std::span<const int> send_displs, float* recv,
                 std::span<const int> recv_counts, std::span<const int> recv_displs);
  // send null: in place (this rank's part is already in recv).
  void allgatherv(const float* send, int count, float* recv, std::span<const int> counts, std::span<const int> displs);
  // MPI_Ialltoallv: returns a handle; the buffers and count arrays must stay
  // alive and unchanged until test() says done or wait() returns.
  int start_alltoallv(const float* send, std::span<const int> send_counts, std::span<const int> send_displs,
                      float* recv, std::span<const int> recv_counts, std::span<const int> recv_displs);
  // Lets MPI progress the request; true (and the handle freed) once it is done.
  bool test(int handle);
  void wait(int handle);

  // Stops every rank of the job: prints "error (rank R of P): message" and
  // aborts the MPI job (mpirun then ends the other ranks). For one rank it
  // only prints. A failure every rank meets at once is reported by rank 0:
  // the other ranks wait a moment before printing.
  [[noreturn]] void abort(const std::string& message) const;

 private:
  int rank_ = 0, size_ = 1, local_size_ = 1;
  bool mpi_ = false;  // this object initialised MPI and finalizes it
  struct Requests;    // MPI_Request slots of the nonblocking calls
  std::unique_ptr<Requests> requests_;
};

// The MPI library tpp was built with ("Open MPI v4.1.4"), or "" for none.
std::string mpi_library();

// How the step's micro-batch gradients are summed over ranks.
enum class GradSum {
  // The left fold over all micro-batches in index order (see the top): any P
  // gives one process's bits. Each micro-batch's gradient reaches its slice's
  // owner on its own: a rank sends (K + 1)(P - 1)/P x 4N bytes per step for K
  // micro-batches per rank (a ring all-reduce's bytes for K = 1).
  ordered,
  // Each rank first sums its own micro-batches, then the P sums are folded in
  // rank order: 2(P - 1)/P x 4N bytes whatever K, bits that depend on P (the
  // same for the same P; for K = 1 the same as ordered).
  local,
};

// 64-bit hash of bytes (for check_same: the ranks' options, data and
// parameters must agree).
uint64_t hash_bytes(const void* data, size_t n, uint64_t seed = 0);

// The step's gradient: see the comment at the top. Usage per step:
//   for k in 0 .. rounds()-1:
//     if (micro_batch(k) >= 0) backward(... target(k) ...);
//     add(k);
//   finish();            // grads() now holds the sum on every rank
class GradientSum {
 public:
  // n: parameters; micro_batches: M, the step's micro-batches over all
  // ranks (rounds(): ceil(M / P) per step, the same on every rank); bucket: floats
  // exchanged per collective call (the last bucket may be shorter); 0 picks
  // 4M floats (16 MB), or more with many ranks so that each rank-to-rank
  // message stays at least 1 MB (a network's latency then costs little
  // against its bandwidth).
  GradientSum(Ranks& ranks, int64_t n, int64_t micro_batches, ThreadPool& pool, GradSum order = GradSum::ordered,
              int64_t bucket = 0);

  int64_t rounds() const { return rounds_; }
  // This rank's micro-batch of round k, or -1 when it has none.
  int64_t micro_batch(int64_t round) const;
  // The zeroed buffer round k's backward adds its gradient into (only for a
  // round where this rank has a micro-batch).
  float* target(int64_t round);
  // When each gradient becomes final in the backward: parameter ranges and
  // their level (Graph::set_on_ready: n_layers for the head, l for layer l,
  // -1 for the embeddings). Without it every bucket waits for add().
  struct Range {
    int64_t offset, size;
    int level;
  };
  void set_levels(std::span<const Range> ranges);
  // During a round's backward: the gradients of level >= `level` are final.
  // The buckets made of them start their exchange (MPI_Ialltoallv),
  // overlapping the rest of the backward, and the oldest exchanges progress.
  // Optional: add() does whatever is left. Every rank starts the buckets in
  // one order (by level, then from the last bucket down), whether the
  // backward announced them or add() did.
  void ready(int level);
  // Takes round k's gradient into the sum; every rank calls it every round
  // (with no micro-batch, it only helps the others' exchange).
  void add(int64_t round);
  // Completes the sum on every rank.
  void finish();
  std::vector<float>& grads() { return grads_; }

  // Bytes this rank sends per round and in finish() (for the docs' cost model).
  int64_t bytes_sent_per_round() const;
  // Seconds spent in the collectives and the folding since the last call.
  double take_seconds();

 private:
  struct Bucket {
    int64_t begin = 0, size = 0;
    std::vector<int> counts, displs;  // slice r of the bucket: [begin + displs[r], + counts[r])
    int64_t own = 0;                  // where this rank's slice starts in own_sum_
    int level = -1;                   // final once the backward reaches this level
  };
  // One bucket's reduce-scatter in flight: the ranks 0 .. active_-1 send
  // their slices of grads_ to the slices' owners, which fold them in rank
  // order, onto own_sum_ or not, into own_sum_ or into their own slice of grads_.
  struct Exchange {
    size_t bucket = 0, slot = 0;  // slot: which recv_ buffer
    int handle = -1;
    std::vector<int> send_counts, recv_counts, recv_displs;  // alive until done
  };
  void begin_round(int64_t round);
  void start(size_t bucket);
  void complete_oldest(bool wait);

  Ranks& ranks_;
  ThreadPool& pool_;
  bool local_;
  int64_t micro_batches_, rounds_;
  std::vector<float> grads_, scratch_, own_sum_;
  std::vector<std::vector<float>> recv_;
  std::vector<Bucket> buckets_;
  // The round being summed (-1: none) and how.
  int64_t round_ = -1;
  bool exchanging_ = false, onto_running_sum_ = false, into_grads_ = false;
  int active_ = 0;
  std::vector<size_t> order_;  // buckets in their start order
  size_t next_ = 0;            // order_[0 .. next_) have started this round
  std::deque<Exchange> inflight_;
  double seconds_ = 0;
};

// a[i] += b[i] for i < n, in f32 (exact IEEE adds; the split over threads
// does not change any element).
void add_into(float* a, const float* b, int64_t n, ThreadPool& pool);

}  // namespace tpp::train
