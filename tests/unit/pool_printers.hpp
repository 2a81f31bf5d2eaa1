// How Boost.Test shows the pool core's private enums (lib/src/pool) in failed assertions.
#pragma once

#include "crew_printers.hpp"
#include "pool/worker_session.hpp"

#include <ostream>

namespace crew::detail {
inline std::ostream& boost_test_print_type(std::ostream& os, worker_session::state s) {
  return os << "state(" << static_cast<int>(s) << ")";
}
namespace policy {
inline std::ostream& boost_test_print_type(std::ostream& os, stop_step s) {
  return os << "stop_step(" << static_cast<int>(s) << ")";
}
}  // namespace policy
}  // namespace crew::detail
