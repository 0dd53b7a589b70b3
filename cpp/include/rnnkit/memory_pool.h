// Large buffers kept for reuse between calls.
//
// Why: a training step of a mid-size LSTM (T=50, B=64, H=512) allocates about 100 MB (the
// state kept for the backward, the backward's gate gradients). glibc serves blocks that
// large with fresh pages from the kernel, and every step would page-fault them in again
// (docs/performance.md, "Memory pool"). A freed block of at least kMinPooledBytes goes
// back to this pool instead (when it fits under the limit) and the next request it can
// serve takes it, already resident.
//
// Policy: a request takes the smallest cached block that holds it and is at most twice its
// size (a much larger block would stay busy and make a later large request allocate
// again); otherwise it allocates. A released block is cached when it fits under the limit,
// evicting the least recently cached blocks first; otherwise it is freed. Thread-safe.
// AddressSanitizer builds start with limit 0 (every block freed at once) so that
// AddressSanitizer sees each use after free.
#pragma once
#include <cstddef>
#include <cstdint>

namespace rnnkit {

// Blocks smaller than this go straight to operator new/delete (malloc recycles them well).
constexpr std::size_t kMinPooledBytes = std::size_t(1) << 20;

// Default cap of the bytes the pool keeps cached (idle, not in use).
constexpr std::int64_t kDefaultPoolLimitBytes = std::int64_t(1) << 30;

// A 64-byte aligned block of at least `bytes` bytes (from the pool or new); *capacity is
// set to its actual size. Throws std::bad_alloc. Give it back with
// pool_release(p, *capacity).
void* pool_acquire(std::size_t bytes, std::size_t* capacity);
void pool_release(void* p, std::size_t capacity) noexcept;
// The capacity pool_acquire(bytes) gives a newly allocated block (bytes rounded up to the
// pool's granule); a cached block it hands out may be larger. A caller that does not keep
// the capacity may release with pool_capacity(bytes): the block is then cached as that
// size.
std::size_t pool_capacity(std::size_t bytes);

// Bytes the pool holds cached (idle), and the limit on them (>= 0; 0: nothing is cached).
std::int64_t pool_cached_bytes();
std::int64_t pool_limit_bytes();
// Sets the limit and frees cached blocks beyond it (least recently cached first).
void set_pool_limit_bytes(std::int64_t bytes);
// Frees every cached block; returns the bytes freed.
std::int64_t pool_release_cached();

// An owning array of n T's (uninitialised) from the pool.
template <typename T>
class PooledArray {
 public:
  PooledArray() = default;
  explicit PooledArray(std::int64_t n)
      : data_(static_cast<T*>(pool_acquire(static_cast<std::size_t>(n) * sizeof(T), &bytes_))) {}
  PooledArray(const PooledArray&) = delete;
  PooledArray& operator=(const PooledArray&) = delete;
  PooledArray(PooledArray&& o) noexcept : bytes_(o.bytes_), data_(o.data_) {
    o.data_ = nullptr;
    o.bytes_ = 0;
  }
  PooledArray& operator=(PooledArray&& o) noexcept {
    if (this != &o) {
      reset();
      bytes_ = o.bytes_;
      data_ = o.data_;
      o.data_ = nullptr;
      o.bytes_ = 0;
    }
    return *this;
  }
  ~PooledArray() { reset(); }

  void reset() noexcept {
    if (data_ != nullptr) pool_release(data_, bytes_);
    data_ = nullptr;
    bytes_ = 0;
  }
  T* get() const { return data_; }

 private:
  std::size_t bytes_ = 0;  // capacity of the block
  T* data_ = nullptr;
};

}  // namespace rnnkit
