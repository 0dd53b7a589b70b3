// The pool of large buffers kept for reuse between calls (see memory_pool.h for why and
// the policy).
#include "rnnkit/memory_pool.h"

#include <algorithm>
#include <mutex>
#include <new>
#include <vector>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace rnnkit {

namespace {

constexpr std::align_val_t kAlign{64};

// Pooled sizes are rounded up to 64 KiB so that requests of nearly the same size (another
// batch's lengths, a last partial chunk) can share blocks.
constexpr std::size_t kGranule = std::size_t(64) << 10;

struct Block {
  void* p;
  std::size_t bytes;  // capacity
};

struct Pool {
  std::mutex mutex;
  std::vector<Block> cached;  // oldest first
  std::size_t cached_bytes = 0;
#if defined(__SANITIZE_ADDRESS__)  // see memory_pool.h
  std::int64_t limit = 0;
#else
  std::int64_t limit = kDefaultPoolLimitBytes;
#endif

  // Frees the oldest cached blocks until at most `keep` bytes stay. Caller holds mutex.
  void shrink_to(std::size_t keep) {
    std::size_t drop = 0;
    while (drop < cached.size() && cached_bytes > keep) {
      cached_bytes -= cached[drop].bytes;
      ::operator delete(cached[drop].p, kAlign);
      ++drop;
    }
    cached.erase(cached.begin(), cached.begin() + static_cast<std::ptrdiff_t>(drop));
  }
};

// A new block for the pool. glibc adapts to a program's large blocks when it frees them:
// the size of a freed mapped block becomes the size from which it maps new ones, and twice
// that the free space it keeps on the heap before giving it back to the kernel. A pool that
// never frees would leave both at their small defaults, and the program's other large
// temporaries (torch's, NumPy's) would then be handed back and faulted in again on every
// step. So a block of pool size is freed once, as a program without the pool would, and
// allocated again.
void* new_block(std::size_t bytes) {
  void* p = ::operator new(bytes, kAlign);
  if (bytes < kMinPooledBytes) return p;
  ::operator delete(p, kAlign);
  return ::operator new(bytes, kAlign);
}

// After blocks were freed on request: their pages go back to the kernel now. The blocks
// live on glibc's heap (new_block), which keeps freed space below its top for the
// program's next allocations unless asked to return it.
void return_freed_pages() {
#if defined(__GLIBC__)
  malloc_trim(0);
#endif
}

Pool& pool() {
  static Pool* p = new Pool;  // never destroyed: blocks may be released during exit
  return *p;
}

}  // namespace

std::size_t pool_capacity(std::size_t bytes) {
  if (bytes < kMinPooledBytes) return bytes;
  return (bytes + kGranule - 1) / kGranule * kGranule;
}

void* pool_acquire(std::size_t bytes, std::size_t* capacity) {
  const std::size_t cap = pool_capacity(bytes);
  if (cap >= kMinPooledBytes) {
    Pool& pl = pool();
    std::lock_guard<std::mutex> lock(pl.mutex);
    auto best = pl.cached.end();
    for (auto it = pl.cached.begin(); it != pl.cached.end(); ++it) {
      if (it->bytes >= cap && it->bytes / 2 <= cap &&
          (best == pl.cached.end() || it->bytes < best->bytes)) {
        best = it;
      }
    }
    if (best != pl.cached.end()) {
      void* p = best->p;
      *capacity = best->bytes;
      pl.cached_bytes -= best->bytes;
      pl.cached.erase(best);
      return p;
    }
  }
  void* p = new_block(cap);
  *capacity = cap;
  return p;
}

void pool_release(void* p, std::size_t cap) noexcept {
  if (p == nullptr) return;
  if (cap >= kMinPooledBytes) {
    Pool& pl = pool();
    std::lock_guard<std::mutex> lock(pl.mutex);
    if (static_cast<std::int64_t>(cap) <= pl.limit) {
      pl.shrink_to(static_cast<std::size_t>(pl.limit) - cap);
      pl.cached.push_back({p, cap});
      pl.cached_bytes += cap;
      return;
    }
  }
  ::operator delete(p, kAlign);
}

std::int64_t pool_cached_bytes() {
  Pool& pl = pool();
  std::lock_guard<std::mutex> lock(pl.mutex);
  return static_cast<std::int64_t>(pl.cached_bytes);
}

std::int64_t pool_limit_bytes() {
  Pool& pl = pool();
  std::lock_guard<std::mutex> lock(pl.mutex);
  return pl.limit;
}

void set_pool_limit_bytes(std::int64_t bytes) {
  Pool& pl = pool();
  std::lock_guard<std::mutex> lock(pl.mutex);
  pl.limit = std::max<std::int64_t>(bytes, 0);
  const std::size_t before = pl.cached_bytes;
  pl.shrink_to(static_cast<std::size_t>(pl.limit));
  if (pl.cached_bytes < before) return_freed_pages();
}

std::int64_t pool_release_cached() {
  Pool& pl = pool();
  std::lock_guard<std::mutex> lock(pl.mutex);
  const auto freed = static_cast<std::int64_t>(pl.cached_bytes);
  pl.shrink_to(0);
  if (freed > 0) return_freed_pages();
  return freed;
}

}  // namespace rnnkit
