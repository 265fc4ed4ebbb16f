// Counter-based random numbers: value i of stream s is a pure function of
// (seed, s, i), so results never depend on thread count or call order, and
// never on the standard library (std::normal_distribution is implementation-
// defined). splitmix64 mixing; normals by Box-Muller.
#pragma once

#include <cmath>
#include <cstdint>
#include <string_view>

namespace tpp {

inline uint64_t splitmix64(uint64_t z) {
  z += 0x9e3779b97f4a7c15ull;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

// FNV-1a: a stable stream id from a name (e.g. a tensor name).
inline uint64_t hash_name(std::string_view s) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : s) h = (h ^ c) * 0x100000001b3ull;
  return h;
}

class CounterRng {
 public:
  CounterRng(uint64_t seed, uint64_t stream) : key_(splitmix64(seed ^ splitmix64(stream))) {}
  uint64_t bits(uint64_t i) const { return splitmix64(key_ + i * 0x632be59bd9b4e019ull); }
  // Uniform in [0, 1) with 53 random bits.
  double uniform(uint64_t i) const { return double(bits(i) >> 11) * 0x1.0p-53; }
  // Standard normal for counter i (Box-Muller over counters 2i and 2i+1).
  double normal(uint64_t i) const {
    const double u1 = 1.0 - uniform(2 * i);  // (0, 1]
    const double u2 = uniform(2 * i + 1);
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
  }

 private:
  uint64_t key_;
};

// A sequential generator for sampling (state = seed + step counter).
class Rng {
 public:
  explicit Rng(uint64_t seed = 0) : rng_(seed, 0x5eed) {}
  double uniform() { return rng_.uniform(counter_++); }

 private:
  CounterRng rng_;
  uint64_t counter_ = 0;
};

}  // namespace tpp
