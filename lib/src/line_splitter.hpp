// Private: turns a byte stream into lines, bounding how much one line may hold.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace crew::detail {

class line_splitter {
 public:
  explicit line_splitter(std::size_t max_line = 64 * 1024) : max_line_(max_line) {}

  /// Feeds bytes; calls `emit(std::string_view)` for each complete line (without '\n').
  /// A line longer than max_line is emitted in max_line pieces.
  template <class Emit>
  void feed(std::string_view bytes, Emit&& emit) {
    while (!bytes.empty()) {
      const auto nl = bytes.find('\n');
      const auto take = nl == std::string_view::npos ? bytes.size() : nl;
      const auto room = max_line_ - partial_.size();
      if (take > room) {
        partial_.append(bytes.substr(0, room));
        emit(std::string_view(partial_));
        partial_.clear();
        bytes.remove_prefix(room);
        continue;
      }
      partial_.append(bytes.substr(0, take));
      if (nl == std::string_view::npos) return;
      emit(std::string_view(partial_));
      partial_.clear();
      bytes.remove_prefix(take + 1);
    }
  }

  /// Emits what is left without a final newline, if anything.
  template <class Emit>
  void finish(Emit&& emit) {
    if (!partial_.empty()) emit(std::string_view(partial_));
    partial_.clear();
  }

 private:
  std::size_t max_line_;
  std::string partial_;
};

}  // namespace crew::detail
