// Storage of the team counter declared in team.h.
#include "team.h"

namespace rnnkit::detail {

std::atomic<std::int64_t> teams_formed{0};

std::int64_t teams_formed_count() { return teams_formed.load(std::memory_order_relaxed); }

}  // namespace rnnkit::detail
