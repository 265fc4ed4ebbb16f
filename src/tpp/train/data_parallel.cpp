#include "tpp/train/data_parallel.h"


#include <algorithm>
#include <chrono>
#include <climits>
#include <limits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>

#include <fmt/format.h>

#include "tpp/core/error.h"
#include "tpp/core/rng.h"
#include "tpp/train/optim.h"

#if TPP_HAVE_MPI
#include <mpi.h>
#endif

namespace tpp::train {

namespace {

// Whether mpirun started this process, and with how many ranks (0: unknown).
bool started_by_mpirun(int* size) {
  const char* s = std::getenv("OMPI_COMM_WORLD_SIZE");
  *size = s ? std::atoi(s) : 0;
  return s != nullptr || std::getenv("PMIX_RANK") != nullptr;
}

#if TPP_HAVE_MPI
void check_mpi(int code, const char* what) {
  if (code == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(code, text, &len);
  fail("train: MPI {} failed: {}", what, std::string(text, size_t(len)));
}
#endif

}  // namespace

Ranks Ranks::join_environment() {
  Ranks r;
  int size = 0;
  if (!started_by_mpirun(&size)) return r;
#if TPP_HAVE_MPI
  int initialized = 0;
  MPI_Initialized(&initialized);
  TPP_CHECK(!initialized, "train: MPI is already initialised in this process");
  int provided = 0;
  // Only the main thread calls MPI; the thread pool's workers never do.
  check_mpi(MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided), "MPI_Init_thread");
  // Errors come back as codes (turned into tpp::Error) instead of aborting silently.
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  r.mpi_ = true;
  MPI_Comm_rank(MPI_COMM_WORLD, &r.rank_);
  MPI_Comm_size(MPI_COMM_WORLD, &r.size_);
  MPI_Comm local;
  check_mpi(MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &local), "MPI_Comm_split_type");
  MPI_Comm_size(local, &r.local_size_);
  MPI_Comm_free(&local);
#else
  if (size > 1)
    fail("train: mpirun started {} ranks, but this tpp was built without MPI; install libopenmpi-dev and rebuild "
         "(scripts/setup.sh does), or run one process",
         size);
#endif
  return r;
}

#if TPP_HAVE_MPI
struct Ranks::Requests {
  std::vector<MPI_Request> slots;  // MPI_REQUEST_NULL: free
};
#else
struct Ranks::Requests {};
#endif

Ranks::Ranks() = default;

Ranks::Ranks(Ranks&& other) noexcept
    : rank_(other.rank_),
      size_(other.size_),
      local_size_(other.local_size_),
      mpi_(other.mpi_),
      requests_(std::move(other.requests_)) {
  other.mpi_ = false;
}

Ranks::~Ranks() {
#if TPP_HAVE_MPI
  if (mpi_) MPI_Finalize();
#endif
}

void Ranks::sum_disjoint(std::span<double> v) {
  if (size_ == 1 || v.empty()) return;
#if TPP_HAVE_MPI
  TPP_CHECK(v.size() <= size_t(INT_MAX), "train: {} values are too many for one MPI message", v.size());
  check_mpi(MPI_Allreduce(MPI_IN_PLACE, v.data(), int(v.size()), MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD),
            "MPI_Allreduce");
#endif
}

uint64_t Ranks::broadcast(uint64_t value) {
#if TPP_HAVE_MPI
  if (size_ > 1) check_mpi(MPI_Bcast(&value, 1, MPI_UINT64_T, 0, MPI_COMM_WORLD), "MPI_Bcast");
#endif
  return value;
}

void Ranks::check_same(uint64_t value, const std::string& what) {
  const uint64_t theirs = broadcast(value);
  TPP_CHECK(theirs == value,
            "train: rank {}'s {} differ from rank 0's; every rank must run the same command on the same files", rank_,
            what);
}

void Ranks::alltoallv(const float* send, std::span<const int> send_counts, std::span<const int> send_displs,
                      float* recv, std::span<const int> recv_counts, std::span<const int> recv_displs) {
#if TPP_HAVE_MPI
  check_mpi(MPI_Alltoallv(send, send_counts.data(), send_displs.data(), MPI_FLOAT, recv, recv_counts.data(),
                          recv_displs.data(), MPI_FLOAT, MPI_COMM_WORLD),
            "MPI_Alltoallv");
#else
  (void)send, (void)send_counts, (void)send_displs, (void)recv, (void)recv_counts, (void)recv_displs;
  fail("train: MPI_Alltoallv without MPI");
#endif
}

void Ranks::allgatherv(const float* send, int count, float* recv, std::span<const int> counts,
                       std::span<const int> displs) {
#if TPP_HAVE_MPI
  check_mpi(MPI_Allgatherv(send ? send : MPI_IN_PLACE, count, MPI_FLOAT, recv, counts.data(), displs.data(), MPI_FLOAT,
                           MPI_COMM_WORLD),
            "MPI_Allgatherv");
#else
  (void)send, (void)count, (void)recv, (void)counts, (void)displs;
  fail("train: MPI_Allgatherv without MPI");
#endif
}

int Ranks::start_alltoallv(const float* send, std::span<const int> send_counts, std::span<const int> send_displs,
                           float* recv, std::span<const int> recv_counts, std::span<const int> recv_displs) {
#if TPP_HAVE_MPI
  if (!requests_) requests_ = std::make_unique<Requests>();
  auto& slots = requests_->slots;
  size_t h = 0;
  while (h < slots.size() && slots[h] != MPI_REQUEST_NULL) ++h;
  if (h == slots.size()) slots.push_back(MPI_REQUEST_NULL);
  check_mpi(MPI_Ialltoallv(send, send_counts.data(), send_displs.data(), MPI_FLOAT, recv, recv_counts.data(),
                           recv_displs.data(), MPI_FLOAT, MPI_COMM_WORLD, &slots[h]),
            "MPI_Ialltoallv");
  return int(h);
#else
  (void)send, (void)send_counts, (void)send_displs, (void)recv, (void)recv_counts, (void)recv_displs;
  fail("train: MPI_Ialltoallv without MPI");
#endif
}

bool Ranks::test(int handle) {
#if TPP_HAVE_MPI
  int done = 0;
  check_mpi(MPI_Test(&requests_->slots[size_t(handle)], &done, MPI_STATUS_IGNORE), "MPI_Test");
  return done != 0;
#else
  (void)handle;
  return true;
#endif
}

void Ranks::wait(int handle) {
#if TPP_HAVE_MPI
  check_mpi(MPI_Wait(&requests_->slots[size_t(handle)], MPI_STATUS_IGNORE), "MPI_Wait");
#else
  (void)handle;
#endif
}

void Ranks::abort(const std::string& message) const {
  if (size_ > 1 && rank_ != 0) std::this_thread::sleep_for(std::chrono::milliseconds(500));
  if (size_ > 1) std::fprintf(stderr, "error (rank %d of %d): %s\n", rank_, size_, message.c_str());
  else std::fprintf(stderr, "error: %s\n", message.c_str());
  std::fflush(stderr);
#if TPP_HAVE_MPI
  if (mpi_) MPI_Abort(MPI_COMM_WORLD, 1);
#endif
  std::_Exit(1);
}

std::string mpi_library() {
#if TPP_HAVE_MPI
  char text[MPI_MAX_LIBRARY_VERSION_STRING];
  int len = 0;
  MPI_Get_library_version(text, &len);
  const std::string s(text, size_t(len));
  return s.substr(0, s.find_first_of(",\n"));
#else
  return "";
#endif
}

uint64_t hash_bytes(const void* data, size_t n, uint64_t seed) {
  // The RNG's splitmix64 over 8-byte words, the last one zero-padded, and
  // the length: enough to tell files apart.
  const auto* p = static_cast<const unsigned char*>(data);
  uint64_t h = splitmix64(seed);
  for (size_t i = 0; i < n; i += 8) {
    uint64_t w = 0;
    std::memcpy(&w, p + i, std::min<size_t>(8, n - i));
    h = splitmix64(h ^ w);
  }
  return splitmix64(h ^ n);
}

void add_into(float* a, const float* b, int64_t n, ThreadPool& pool) {
  pool.parallel_for(size_t(n), 4096, [&](size_t begin, size_t end, size_t) {
    for (size_t i = begin; i < end; ++i) a[i] += b[i];
  });
}

GradientSum::GradientSum(Ranks& ranks, int64_t n, int64_t micro_batches, ThreadPool& pool, GradSum order,
                         int64_t bucket)
    : ranks_(ranks),
      pool_(pool),
      local_(order == GradSum::local),
      micro_batches_(micro_batches),
      rounds_((micro_batches + ranks.size() - 1) / ranks.size()),
      grads_(size_t(n)) {
  TPP_CHECK(micro_batches > 0, "train: {} micro-batches per step; at least 1 is needed", micro_batches);
  const int P = ranks.size();
  if (P == 1) return;
  if (bucket == 0) bucket = std::max<int64_t>(int64_t(1) << 22, int64_t(P) << 18);
  TPP_CHECK(bucket > 0 && bucket <= INT_MAX, "train: gradient bucket {} out of range", bucket);
  const int me = ranks.rank();
  int64_t own = 0, largest_own = 0;
  for (int64_t begin = 0; begin < n; begin += bucket) {
    Bucket b;
    b.begin = begin;
    b.size = std::min(bucket, n - begin);
    for (int r = 0; r < P; ++r) {
      const int64_t lo = b.size * r / P, hi = b.size * (r + 1) / P;
      b.displs.push_back(int(lo));
      b.counts.push_back(int(hi - lo));
    }
    b.own = own;
    own += b.counts[size_t(me)];
    largest_own = std::max<int64_t>(largest_own, b.counts[size_t(me)]);
    buckets_.push_back(std::move(b));
  }
  // The running sum of the owned slices lives in own_sum_ between rounds; the
  // last round writes it straight into grads_ for the allgather.
  for (size_t b = buckets_.size(); b-- > 0;) order_.push_back(b);
  if (rounds_ > 1 && !local_) own_sum_.resize(size_t(own));
  // Up to kInFlight buckets are exchanged at once, each into its own buffer.
  constexpr size_t kInFlight = 4;
  recv_.assign(std::min(kInFlight, buckets_.size()), std::vector<float>(size_t(largest_own * P)));
}

int64_t GradientSum::micro_batch(int64_t round) const {
  const int64_t m = round * ranks_.size() + ranks_.rank();
  return round >= 0 && round < rounds_ && m < micro_batches_ ? m : -1;
}

float* GradientSum::target(int64_t round) {
  TPP_CHECK(micro_batch(round) >= 0, "train: rank {} has no micro-batch in round {}", ranks_.rank(), round);
  begin_round(round);
  // One process (and a rank summing locally first) keeps the running sum in
  // grads_ and adds each later micro-batch from scratch_; ranks in the
  // ordered sum send every round's gradient away from grads_.
  const bool into_sum = (ranks_.size() > 1 && !local_) || round == 0;
  std::vector<float>& buf = into_sum ? grads_ : scratch_;
  if (buf.empty()) buf.resize(grads_.size());
  zero(buf, pool_);
  return buf.data();
}

void GradientSum::begin_round(int64_t round) {
  TPP_CHECK(round >= 0 && round < rounds_, "train: round {} of a step of {} rounds", round, rounds_);
  if (round == round_) return;
  round_ = round;
  const int P = ranks_.size();
  const bool last = round == rounds_ - 1;
  next_ = 0;
  if (P == 1 || (local_ && !last)) {
    exchanging_ = false;
    return;
  }
  exchanging_ = true;
  if (local_) {
    // One exchange of each rank's sum; ranks without a micro-batch in the step send none.
    active_ = int(std::min<int64_t>(P, micro_batches_));
    onto_running_sum_ = false;
  } else {
    // The ranks with a micro-batch this round are 0 .. active-1.
    active_ = int(std::min<int64_t>(P, micro_batches_ - round * P));
    onto_running_sum_ = round > 0;
  }
  into_grads_ = last;
}

void GradientSum::set_levels(std::span<const Range> ranges) {
  for (Bucket& b : buckets_) {
    b.level = std::numeric_limits<int>::max();
    for (const Range& r : ranges)
      if (r.offset < b.begin + b.size && b.begin < r.offset + r.size) b.level = std::min(b.level, r.level);
  }
  std::stable_sort(order_.begin(), order_.end(),
                   [&](size_t a, size_t b) { return buckets_[a].level > buckets_[b].level; });
}

void GradientSum::ready(int level) {
  if (!exchanging_) return;
  const auto t0 = std::chrono::steady_clock::now();
  while (next_ < order_.size() && buckets_[order_[next_]].level >= level) start(order_[next_++]);
  // MPI moves data only inside MPI calls: let the oldest exchanges finish.
  while (!inflight_.empty() && ranks_.test(inflight_.front().handle)) complete_oldest(false);
  seconds_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

void GradientSum::add(int64_t round) {
  begin_round(round);
  const bool mine = micro_batch(round) >= 0;
  if (!exchanging_) {
    if (round > 0 && mine) add_into(grads_.data(), scratch_.data(), int64_t(grads_.size()), pool_);
    round_ = -1;
    return;
  }
  const auto t0 = std::chrono::steady_clock::now();
  while (next_ < order_.size()) start(order_[next_++]);
  while (!inflight_.empty()) complete_oldest(true);
  round_ = -1;
  seconds_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

void GradientSum::start(size_t bucket) {
  if (inflight_.size() == recv_.size()) complete_oldest(true);
  const Bucket& b = buckets_[bucket];
  if (local_ && round_ > 0 && micro_batch(round_) >= 0)  // this round's micro-batch joins the rank's sum
    add_into(grads_.data() + b.begin, scratch_.data() + b.begin, b.size, pool_);
  const int P = ranks_.size(), me = ranks_.rank(), mine = b.counts[size_t(me)];
  std::vector<bool> used(recv_.size(), false);
  for (const Exchange& e : inflight_) used[e.slot] = true;
  Exchange x;
  x.bucket = bucket;
  x.slot = size_t(std::find(used.begin(), used.end(), false) - used.begin());
  x.send_counts.resize(size_t(P));
  x.recv_counts.resize(size_t(P));
  x.recv_displs.resize(size_t(P));
  // Each rank's slice r goes to rank r; a rank's own slice stays where it is.
  for (int r = 0; r < P; ++r) {
    x.send_counts[size_t(r)] = r == me || me >= active_ ? 0 : b.counts[size_t(r)];
    x.recv_counts[size_t(r)] = r == me || r >= active_ ? 0 : mine;
    x.recv_displs[size_t(r)] = r * mine;
  }
  inflight_.push_back(std::move(x));
  Exchange& e = inflight_.back();
  e.handle = ranks_.start_alltoallv(grads_.data() + b.begin, e.send_counts, b.displs, recv_[e.slot].data(),
                                    e.recv_counts, e.recv_displs);
}

void GradientSum::complete_oldest(bool wait) {
  Exchange e = std::move(inflight_.front());
  inflight_.pop_front();
  if (wait) ranks_.wait(e.handle);
  const Bucket& b = buckets_[e.bucket];
  const int P = ranks_.size(), me = ranks_.rank(), mine = b.counts[size_t(me)];
  std::vector<const float*> slice(static_cast<size_t>(P));
  for (int r = 0; r < P; ++r)
    slice[size_t(r)] =
        r == me ? grads_.data() + b.begin + b.displs[size_t(me)] : recv_[e.slot].data() + int64_t(r) * mine;
  // Slice r holds rank r's part (ordered: micro-batch round * P + r): fold
  // the active ranks' in rank order, element by element, onto the running
  // sum (none before micro-batch 0).
  const float* running = onto_running_sum_ ? own_sum_.data() + b.own : nullptr;
  float* dst = into_grads_ ? grads_.data() + b.begin + b.displs[size_t(me)] : own_sum_.data() + b.own;
  const int active = active_;
  constexpr size_t kChunk = 2048;
  pool_.parallel_for(size_t(mine), kChunk, [&](size_t begin, size_t end, size_t) {
    float v[kChunk];  // dst may be this rank's own slice: read every input before writing
    for (size_t c = begin; c < end; c += kChunk) {
      const size_t len = std::min(kChunk, end - c);
      int r = 0;
      if (running) std::copy(running + c, running + c + len, v);
      else std::copy(slice[0] + c, slice[0] + c + len, v), r = 1;
      for (; r < active; ++r)
        for (size_t i = 0; i < len; ++i) v[i] += slice[size_t(r)][c + i];
      std::copy(v, v + len, dst + c);
    }
  });
}

void GradientSum::finish() {
  if (ranks_.size() == 1) return;
  const auto t0 = std::chrono::steady_clock::now();
  for (const Bucket& b : buckets_) ranks_.allgatherv(nullptr, 0, grads_.data() + b.begin, b.counts, b.displs);
  seconds_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

double GradientSum::take_seconds() {
  const double s = seconds_;
  seconds_ = 0;
  return s;
}

int64_t GradientSum::bytes_sent_per_round() const {
  const int P = ranks_.size();
  if (P == 1) return 0;
  int64_t sent = 0;
  for (const Bucket& b : buckets_) sent += b.size - b.counts[size_t(ranks_.rank())];
  return sent * int64_t(sizeof(float));
}

}  // namespace tpp::train
