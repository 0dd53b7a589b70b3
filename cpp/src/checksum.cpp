// The buffer checksum (checksum.h).
#include "rnnkit/checksum.h"

#include <cstring>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace rnnkit {

using i64 = std::int64_t;

namespace {

std::uint64_t mix64(std::uint64_t v) {  // splitmix64's finaliser: a bijection
  v ^= v >> 30;
  v *= 0xBF58476D1CE4E5B9ULL;
  v ^= v >> 27;
  v *= 0x94D049BB133111EBULL;
  return v ^ (v >> 31);
}

}  // namespace

std::uint64_t buffer_checksum(const void* p, std::int64_t n) {
  // Eight lanes; 8-byte word w of lane j adds lo32(x) * hi32(x), x = w ^ key_j, into
  // prod_j and w into sum_j (xxh3's accumulation; SSE2's 32x32->64 multiply does two lanes
  // per instruction, ~ memory speed). The tail is zero-padded; the lanes and the length
  // are folded with a bijective mix. The SSE2 and the plain loop give the same value.
  constexpr int kLanes = 8;
  alignas(16) static constexpr std::uint64_t kKey[kLanes] = {
      0x243F6A8885A308D3ULL, 0x13198A2E03707344ULL, 0xA4093822299F31D0ULL,
      0x082EFA98EC4E6C89ULL, 0x452821E638D01377ULL, 0xBE5466CF34E90C6CULL,
      0xC0AC29B7C97C50DDULL, 0x3F84D5B5B5470917ULL};
  constexpr i64 kBlock = 8 * kLanes;  // bytes
  const auto* bytes = static_cast<const unsigned char*>(p);
  alignas(16) std::uint64_t prod[kLanes] = {}, sum[kLanes] = {};
  const i64 blocks = n / kBlock;
  i64 b = 0;
#if defined(__SSE2__)
  {
    __m128i vp[kLanes / 2], vs[kLanes / 2], vk[kLanes / 2];
    for (int v = 0; v < kLanes / 2; ++v) {
      vp[v] = _mm_setzero_si128();
      vs[v] = _mm_setzero_si128();
      vk[v] = _mm_load_si128(reinterpret_cast<const __m128i*>(kKey + 2 * v));
    }
    for (; b < blocks; ++b) {
      const unsigned char* q = bytes + b * kBlock;
      for (int v = 0; v < kLanes / 2; ++v) {
        const __m128i d = _mm_loadu_si128(reinterpret_cast<const __m128i*>(q + 16 * v));
        const __m128i x = _mm_xor_si128(d, vk[v]);
        vp[v] = _mm_add_epi64(vp[v], _mm_mul_epu32(x, _mm_srli_epi64(x, 32)));
        vs[v] = _mm_add_epi64(vs[v], d);
      }
    }
    for (int v = 0; v < kLanes / 2; ++v) {
      _mm_store_si128(reinterpret_cast<__m128i*>(prod + 2 * v), vp[v]);
      _mm_store_si128(reinterpret_cast<__m128i*>(sum + 2 * v), vs[v]);
    }
  }
#endif
  auto add_block = [&](const unsigned char* q) {
    for (int j = 0; j < kLanes; ++j) {
      std::uint64_t w;
      std::memcpy(&w, q + 8 * j, 8);  // unaligned-safe load
      const std::uint64_t x = w ^ kKey[j];
      prod[j] += (x & 0xFFFFFFFFULL) * (x >> 32);
      sum[j] += w;
    }
  };
  for (; b < blocks; ++b) add_block(bytes + b * kBlock);
  unsigned char tail[kBlock] = {};
  std::memcpy(tail, bytes + blocks * kBlock, static_cast<std::size_t>(n - blocks * kBlock));
  add_block(tail);
  std::uint64_t r = mix64(static_cast<std::uint64_t>(n));
  for (int j = 0; j < kLanes; ++j) r = mix64(r ^ mix64(prod[j] + kKey[j]) ^ sum[j]);
  return r;
}

}  // namespace rnnkit
