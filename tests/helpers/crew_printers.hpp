// How Boost.Test shows crew's enums in failed assertions (found by ADL). Include it after
// the header under test.
#pragma once

#include <crew/error.hpp>
#include <crew/protocol.hpp>

#include <ostream>

namespace crew {
inline std::ostream& boost_test_print_type(std::ostream& os, errc e) {
  return os << to_string(e);
}
namespace protocol {
inline std::ostream& boost_test_print_type(std::ostream& os, frame_type t) {
  return os << "frame_type(" << static_cast<int>(t) << ")";
}
}  // namespace protocol
}  // namespace crew
