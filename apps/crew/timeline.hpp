// The timeline picture (`--timeline FILE.svg`): a Gantt chart of tasks as a self-contained
// SVG. A pure function from data to text; how the data is collected is not its business.
#pragma once

#include <cstddef>
#include <string>
#include <utility>
#include <vector>

namespace crew::cli {

/// One task: a bar on one lane from `start` to `end`.
struct timeline_bar {
  std::size_t lane;     ///< index into timeline_section::lanes
  double start, end;    ///< seconds from the section's time origin (0 <= start <= end)
  std::string label;    ///< e.g. "long_io(2)"; shown on the bar if it fits, always as tooltip
  bool failed = false;  ///< drawn red and hatched, and listed in the legend
  std::string detail;   ///< extra tooltip text (error message, pid, ...)
};

/// One Gantt chart: a title, its lanes (threads, workers) and the bars on them.
struct timeline_section {
  timeline_section() = default;
  timeline_section(std::string title_, std::vector<std::string> lanes_,
                   std::vector<timeline_bar> bars_, std::vector<std::string> lane_groups_ = {})
      : title(std::move(title_)),
        lanes(std::move(lanes_)),
        bars(std::move(bars_)),
        lane_groups(std::move(lane_groups_)) {}

  std::string title;               ///< e.g. "In [3] long_io, sequential"
  std::vector<std::string> lanes;  ///< e.g. "main thread", "thread 1", "worker 0 (pid 1234)"
  std::vector<timeline_bar> bars;
  /// Optional: the group of each lane (where its worker ran: a host, a node), parallel to
  /// `lanes`. Each run of consecutive lanes of one non-empty group is drawn under a header
  /// row naming it; lanes of no group (empty, or past the end of this vector) get none, so
  /// put them first. Empty (the default): no headers, the section drawn as without groups.
  std::vector<std::string> lane_groups;
};

/// A self-contained SVG (no scripts, no external fonts/links): one Gantt chart per section,
/// stacked vertically, each with its own lanes and a time axis with ticks in s/ms.
/// All sections share one time scale (pixels per second) so that sections can be compared
/// visually — a section lasting 4x longer is 4x wider.
///
/// Edge cases:
/// - a bar with a NaN or infinite time, a negative start or end < start: std::invalid_argument
///   (naming the section and the bar); nothing is drawn.
/// - a bar whose lane is out of range: skipped (not drawn, not counted in the section's
///   extent), and the section's header and the legend say how many were skipped.
/// - a zero-length (or very short) bar: drawn `timeline_layout::min_bar_width` wide.
/// - a section without bars, or without lanes: its title, its lanes and a one-tick axis.
/// - no sections at all: a small picture saying so.
/// - text: XML special characters are escaped; control characters and invalid UTF-8 become
///   U+FFFD, so any bytes make a well-formed document.
std::string render_timeline(const std::vector<timeline_section>& sections);

/// The picture's layout constants, in SVG user units (= CSS pixels = rsvg-convert's pixels
/// at its default 96 dpi). Exposed so that a test can compute where things must appear.
namespace timeline_layout {
inline constexpr double margin = 16;                ///< picture edge to content, all sides
inline constexpr double lane_label_width = 170;     ///< left column holding the lane names
inline constexpr double plot_width = 800;           ///< pixels of the longest section's span
inline constexpr double section_title_height = 28;  ///< title line above a section's lanes
inline constexpr double lane_height = 24;
inline constexpr double group_height = 20;  ///< a group's header row, above its lanes
inline constexpr double bar_height = 18;    ///< centred in its lane
inline constexpr double axis_height = 28;   ///< axis line, ticks and tick labels
inline constexpr double section_gap = 20;   ///< empty space between two sections
inline constexpr double legend_line_height = 18;
inline constexpr double min_bar_width = 2;      ///< zero-length bars stay visible
inline constexpr double min_tick_spacing = 70;  ///< ticks are a nice step at least this far
inline constexpr double font_size = 11;         ///< bar labels, lane names, ticks, legend
inline constexpr double title_font_size = 13;
inline constexpr double min_span = 1e-3;                ///< shortest time span shown (seconds)
inline constexpr std::size_t max_legend_failures = 20;  ///< failed tasks listed by name

inline constexpr const char* background = "#ffffff";
inline constexpr const char* lane_band = "#f2f2f2";   ///< every other lane's background
inline constexpr const char* grid = "#dddddd";        ///< vertical lines at the ticks
inline constexpr const char* group_band = "#dde4ee";  ///< a group's header row
inline constexpr const char* bar_fill = "#4c78a8";
inline constexpr const char* bar_stroke = "#2c4a6e";
inline constexpr const char* failed_fill = "#d62728";  ///< under a light diagonal hatch
inline constexpr const char* failed_stroke = "#7f1010";
}  // namespace timeline_layout

/// Where render_timeline puts things, for the same sections (it throws as render_timeline).
struct timeline_geometry {
  double pixels_per_second;         ///< shared by all sections
  double tick_step;                 ///< seconds between two ticks: 1, 2 or 5 times a power of ten
  double width, height;             ///< of the whole picture (whole pixels)
  double plot_left;                 ///< x of time 0 in every section
  std::vector<double> section_top;  ///< y of each section's title line
  std::vector<double> section_bottom;  ///< y below each section's axis labels
  /// Seconds covered by each section's axis: its last bar's end rounded up to a tick (at
  /// least one tick).
  std::vector<double> section_span;
  double legend_top;  ///< y of the legend, below the last section
  /// Per section: the top of each lane, and one more entry: the bottom of the last lane.
  std::vector<std::vector<double>> lane_y;
  /// Per section: the top of each group header row (group_height high), in order, and the
  /// lane below which it stands.
  std::vector<std::vector<std::pair<double, std::size_t>>> group_rows;

  double x(double seconds) const { return plot_left + seconds * pixels_per_second; }
  /// Top of lane `lane` of section `section` (lane == its lane count: the bottom of the
  /// last lane); its bars span bar_top .. bar_top + bar_height.
  double lane_top(std::size_t section, std::size_t lane) const;
  double bar_top(std::size_t section, std::size_t lane) const;
};
timeline_geometry layout_timeline(const std::vector<timeline_section>& sections);

}  // namespace crew::cli
