// A fast checksum of a buffer's bytes, for the stack's in-place-modification checks.
#pragma once
#include <cstdint>

namespace rnnkit {

// A 64-bit checksum of n bytes at p, at about memory speed: per 8-byte word, a 32x32-bit
// product of the word (keyed) and the word itself summed in eight lanes (xxh3's
// accumulation, SSE2 where available), lanes and length folded with a bijective mix. It
// detects accidental changes (a changed word, a sign flip of many elements, pass with
// probability about 2^-64); it is a check, not a guarantee against deliberately
// constructed collisions.
std::uint64_t buffer_checksum(const void* p, std::int64_t n);

}  // namespace rnnkit
