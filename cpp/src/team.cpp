// Storage of the team counters and the test setting declared in team.h.
#include "team.h"

namespace rnnkit::detail {

std::atomic<std::int64_t> teams_formed{0};

std::int64_t teams_formed_count() { return teams_formed.load(std::memory_order_relaxed); }

namespace {
std::atomic<std::int64_t> teams_shrunk{0};
std::atomic<std::int64_t> forced_step{-1};
}  // namespace

std::int64_t teams_shrunk_count() { return teams_shrunk.load(std::memory_order_relaxed); }
void count_shrunk_team() { teams_shrunk.fetch_add(1, std::memory_order_relaxed); }
std::int64_t set_forced_shrink_step(std::int64_t step) { return forced_step.exchange(step); }
std::int64_t forced_shrink_step() { return forced_step.load(std::memory_order_relaxed); }

}  // namespace rnnkit::detail
