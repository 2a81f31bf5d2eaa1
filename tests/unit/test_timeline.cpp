// The timeline picture: render_timeline's SVG, rendered by rsvg-convert to a PNG that this
// file decodes, is checked on its pixels (bars where their times say, lanes stacked, sections
// apart), and its text on escaping and well-formedness.
#include "png_image.hpp"
#include "timeline.hpp"

#include <boost/property_tree/ptree.hpp>
#include <boost/property_tree/xml_parser.hpp>
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <sys/wait.h>

#ifndef CREW_RSVG_CONVERT  // set by CMake: rsvg-convert's path, or "" if it was not found
#define CREW_RSVG_CONVERT ""
#endif
#ifndef CREW_TIMELINE_OUTPUT_DIR
#define CREW_TIMELINE_OUTPUT_DIR "test_timeline-output"
#endif

namespace {

using namespace crew::cli;
namespace L = crew::cli::timeline_layout;
namespace fs = std::filesystem;
using namespace png_test;

// ---- rendering with rsvg-convert ------------------------------------------------------------

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

std::string shell_quote(const std::string& s) {
  std::string q = "'";
  for (char c : s)
    q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

// Where a test case's SVG and PNG go (kept, to look at): <build>/tests/unit/test_timeline-output.
fs::path output_dir() {
  const fs::path dir = CREW_TIMELINE_OUTPUT_DIR;
  fs::create_directories(dir);
  return dir;
}

// Fails the test case unless rsvg-convert was found when the build was configured.
std::string rsvg_convert() {
  const std::string path = CREW_RSVG_CONVERT;
  if (path.empty()) {
    BOOST_FAIL(
        "rsvg-convert was not found when crew was configured, so the timeline picture "
        "cannot be checked: install librsvg2-bin (apt-get install librsvg2-bin) and "
        "re-run cmake");
  }
  if (!fs::exists(path)) {
    BOOST_FAIL("rsvg-convert, found at " + path +
               " when crew was configured, is gone: "
               "install librsvg2-bin (apt-get install librsvg2-bin) and re-run cmake");
  }
  return path;
}

// Writes `svg` to <name>.svg, has rsvg-convert render it to <name>.png, decodes that.
image render(const std::string& svg, const std::string& name) {
  const auto tool = rsvg_convert();
  const auto dir = output_dir();
  const auto svg_path = dir / (name + ".svg"), png_path = dir / (name + ".png");
  const auto err_path = dir / (name + ".stderr");
  fs::remove(png_path);
  std::ofstream(svg_path, std::ios::binary) << svg;
  const std::string command = shell_quote(tool) + " -f png -o " + shell_quote(png_path) + " " +
                              shell_quote(svg_path) + " 2>" + shell_quote(err_path);
  const int status = std::system(command.c_str());
  BOOST_TEST_MESSAGE("rendered " << svg_path << " to " << png_path);
  if (status == -1 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    BOOST_FAIL("rsvg-convert rejected " + svg_path.string() + " (status " + std::to_string(status) +
               "): " + read_file(err_path));
  }
  try {
    return decode_png(read_file(png_path));
  } catch (const decode_error& e) {
    BOOST_FAIL("cannot decode " + png_path.string() + ": " + e.what());
  }
  return {};
}

// ---- looking at the picture -----------------------------------------------------------------

const rgb background = parse_colour(L::background);
const rgb bar_fill = parse_colour(L::bar_fill);
const rgb failed_fill = parse_colour(L::failed_fill);
constexpr int tolerance = 12;  // anti-aliasing and colour management

struct run {
  int first, last;  // inclusive pixel columns (or rows)
};

std::ostream& operator<<(std::ostream& os, const std::vector<run>& runs) {
  for (const auto& r : runs)
    os << "[" << r.first << ".." << r.last << "] ";
  return os;
}

// Runs of pixels of colour `c` along row y.
std::vector<run> row_runs(const image& img, int y, rgb c) {
  std::vector<run> runs;
  for (int x = 0; x < img.width; ++x) {
    if (!near(img.at(x, y), c, tolerance)) continue;
    if (!runs.empty() && runs.back().last == x - 1) {
      runs.back().last = x;
    } else {
      runs.push_back({x, x});
    }
  }
  return runs;
}

std::vector<run> column_runs(const image& img, int x, int y0, int y1, rgb c) {
  std::vector<run> runs;
  for (int y = y0; y < y1; ++y) {
    if (!near(img.at(x, y), c, tolerance)) continue;
    if (!runs.empty() && runs.back().last == y - 1) {
      runs.back().last = y;
    } else {
      runs.push_back({y, y});
    }
  }
  return runs;
}

// How many pixels of colour `c` in [x0, x1) x [y0, y1).
long count_in(const image& img, int x0, int y0, int x1, int y1, rgb c) {
  long n = 0;
  for (int y = y0; y < y1; ++y) {
    for (int x = x0; x < x1; ++x)
      n += near(img.at(x, y), c, tolerance) ? 1 : 0;
  }
  return n;
}

int px(double v) {
  return static_cast<int>(std::floor(v));
}

// Rows through a bar's inside that no label text reaches: just below its top edge and just
// above its bottom edge (the label is centred, font_size high, on a bar_height bar).
static_assert(L::bar_height - L::font_size >= 6, "labels would cover the scanned rows");
std::array<int, 2> clear_rows(const timeline_geometry& g, std::size_t section, std::size_t lane) {
  const double top = g.bar_top(section, lane);
  return {px(top + 2), px(top + L::bar_height - 2)};
}

// The bar's inside, between its strokes, as pixel columns: [x(start) + 1, x(end) - 1].
// Edges are anti-aliased, so allow this much either way.
constexpr int edge_slack = 2;

void check_bar_run(const run& r, const timeline_geometry& g, double start, double end) {
  BOOST_TEST(std::abs(r.first - px(g.x(start) + 1)) <= edge_slack,
             "bar starting at " << start << " s: first column " << r.first << ", expected ~"
                                << px(g.x(start) + 1));
  BOOST_TEST(std::abs(r.last - px(g.x(end) - 1)) <= edge_slack,
             "bar ending at " << end << " s: last column " << r.last << ", expected ~"
                              << px(g.x(end) - 1));
}

// ---- data -----------------------------------------------------------------------------------

timeline_bar bar(std::size_t lane, double start, double end, std::string label, bool failed = false,
                 std::string detail = {}) {
  return {lane, start, end, std::move(label), failed, std::move(detail)};
}

// What `crew notebook --scale 0.1` would show: long_io's 0.2 s waits 4 in a row on the main
// thread, 4 side by side on 4 threads, 4 side by side on 4 workers (one of them failing).
constexpr double io = 0.2;

std::vector<timeline_section> notebook_like() {
  std::vector<timeline_section> s(3);
  s[0].title = "In [3] long_io, sequential";
  s[0].lanes = {"main thread"};
  for (int i = 0; i < 4; ++i) {
    s[0].bars.push_back(bar(0, i * io, (i + 1) * io, "long_io(" + std::to_string(i) + ")"));
  }
  s[1].title = "In [7] long_io, threads";
  s[2].title = "In [10] long_io, processes";
  for (std::size_t i = 0; i < 4; ++i) {
    s[1].lanes.push_back("thread " + std::to_string(i + 1));
    s[1].bars.push_back(bar(i, 0, io, "long_io(" + std::to_string(i) + ")"));
    s[2].lanes.push_back("worker " + std::to_string(i) + " (pid " + std::to_string(4000 + i) + ")");
    s[2].bars.push_back(bar(i, 0.01, 0.01 + io, "long_io(" + std::to_string(i) + ")", i == 2,
                            i == 2 ? "job_failed: worker 2 said no" : ""));
  }
  return s;
}

// Every piece of character data in a parsed XML tree (attributes included).
void collect_text(const boost::property_tree::ptree& t, std::vector<std::string>& out) {
  if (!t.data().empty()) out.push_back(t.data());
  for (const auto& [key, child] : t)
    collect_text(child, out);
}

// Parses `svg` as XML (throws if it is not well-formed), returns all its text.
std::vector<std::string> parse_xml(const std::string& svg) {
  std::istringstream in(svg);
  boost::property_tree::ptree tree;
  boost::property_tree::read_xml(in, tree);
  std::vector<std::string> text;
  collect_text(tree, text);
  return text;
}

bool any_contains(const std::vector<std::string>& texts, std::string_view what) {
  return std::any_of(texts.begin(), texts.end(),
                     [&](const std::string& t) { return t.find(what) != std::string::npos; });
}

long occurrences(std::string_view text, std::string_view what) {
  long n = 0;
  for (auto p = text.find(what); p != std::string_view::npos; p = text.find(what, p + 1))
    ++n;
  return n;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(timeline)

BOOST_AUTO_TEST_CASE(notebook_sequential_end_to_end_threads_side_by_side) {
  const auto sections = notebook_like();
  const auto svg = render_timeline(sections);
  const auto g = layout_timeline(sections);
  const auto img = render(svg, "notebook");

  BOOST_TEST(img.width == static_cast<int>(g.width));
  BOOST_TEST(img.height == static_cast<int>(g.height));
  // The longest section (4 x 0.2 s in a row) spans the plot width.
  BOOST_TEST(g.pixels_per_second == L::plot_width / (4 * io), boost::test_tools::tolerance(1e-9));

  // Sequential: along the main thread's lane, 4 bars one after the other, each where its
  // times say, touching (nothing but the two strokes between one and the next).
  std::vector<run> seq;
  for (int y : clear_rows(g, 0, 0)) {
    seq = row_runs(img, y, bar_fill);
    BOOST_TEST_REQUIRE(seq.size() == 4u, "row " << y << ": " << seq);
    for (int i = 0; i < 4; ++i) {
      check_bar_run(seq[static_cast<std::size_t>(i)], g, i * io, (i + 1) * io);
    }
    for (std::size_t i = 0; i + 1 < 4; ++i) {
      BOOST_TEST(seq[i + 1].first > seq[i].last + 1);  // two bars, not one
      BOOST_TEST(seq[i + 1].first - seq[i].last <= 2 * edge_slack + 1, "row " << y << ": " << seq);
    }
  }

  // Threads: each of the 4 lanes holds one bar over the same columns as the first lane's...
  std::vector<run> thread_runs;
  for (std::size_t lane = 0; lane < 4; ++lane) {
    for (int y : clear_rows(g, 1, lane)) {
      const auto runs = row_runs(img, y, bar_fill);
      BOOST_TEST_REQUIRE(runs.size() == 1u, "lane " << lane << ", row " << y << ": " << runs);
      check_bar_run(runs[0], g, 0, io);
      if (!thread_runs.empty()) {
        BOOST_TEST(std::abs(runs[0].first - thread_runs[0].first) <= 1);
        BOOST_TEST(std::abs(runs[0].last - thread_runs[0].last) <= 1);
      }
      thread_runs.push_back(runs[0]);
    }
  }
  // ... so a vertical line through the middle of that time crosses 4 bars, one per lane.
  const int mid = px(g.x(io / 2));
  const auto stacked =
      column_runs(img, mid, px(g.section_top[1]), px(g.section_bottom[1]), bar_fill);
  BOOST_TEST(stacked.size() == 4u, "column " << mid << ": " << stacked);
  // In a row vs side by side, independently of the layout: 4 bars take 4 times the width.
  const double seq_width = seq.back().last - seq.front().first + 1;
  const double thread_width = thread_runs[0].last - thread_runs[0].first + 1;
  BOOST_TEST(seq_width / thread_width == 4.0, boost::test_tools::tolerance(0.03));

  // Processes: lanes 0, 1, 3 plain bars; lane 2 failed: the failure colour, no plain colour.
  for (std::size_t lane = 0; lane < 4; ++lane) {
    const int x0 = px(g.x(0.01)) + 2, x1 = px(g.x(0.01 + io)) - 2;
    const int y0 = px(g.bar_top(2, lane)) + 2, y1 = px(g.bar_top(2, lane) + L::bar_height) - 2;
    const long area = static_cast<long>(x1 - x0) * (y1 - y0);
    const long failed = count_in(img, x0, y0, x1, y1, failed_fill);
    const long plain = count_in(img, x0, y0, x1, y1, bar_fill);
    if (lane == 2) {
      BOOST_TEST(failed > area * 4 / 10, failed << " of " << area << " pixels failure-red");
      BOOST_TEST(plain == 0);
    } else {
      BOOST_TEST(failed == 0);
      const auto runs = row_runs(img, clear_rows(g, 2, lane)[0], bar_fill);
      BOOST_TEST_REQUIRE(runs.size() == 1u, "process lane " << lane << ": " << runs);
      check_bar_run(runs[0], g, 0.01, 0.01 + io);
    }
  }
  // No failure colour in the first two sections; some in the legend (its key).
  BOOST_TEST(count_in(img, 0, 0, img.width, px(g.section_bottom[1]), failed_fill) == 0);
  BOOST_TEST(count_in(img, 0, px(g.legend_top), img.width, img.height, failed_fill) > 50);

  // Between two sections, and around the picture: only background.
  for (std::size_t i = 0; i + 1 < sections.size(); ++i) {
    const int y0 = static_cast<int>(std::ceil(g.section_bottom[i]));
    const int y1 = px(g.section_top[i + 1]);
    BOOST_TEST_REQUIRE(y1 - y0 >= static_cast<int>(L::section_gap) - 1);
    BOOST_TEST(
        count_in(img, 0, y0, img.width, y1, background) == static_cast<long>(img.width) * (y1 - y0),
        "rows " << y0 << ".." << y1 << " below section " << i);
  }
  BOOST_TEST(count_in(img, 0, 0, img.width, px(L::margin) - 1, background) ==
             static_cast<long>(img.width) * (px(L::margin) - 1));
  // No bar colour in the lane-name column, nor right of the shorter sections' axes.
  for (std::size_t s = 0; s < sections.size(); ++s) {
    const int y0 = px(g.lane_top(s, 0)), y1 = px(g.lane_top(s, sections[s].lanes.size()));
    BOOST_TEST(count_in(img, 0, y0, px(g.plot_left) - 1, y1, bar_fill) == 0);
    if (s > 0) {
      const int right = px(g.x(g.section_span[s])) + 2;
      BOOST_TEST(count_in(img, right, y0, img.width, y1, background) ==
                 static_cast<long>(img.width - right) * (y1 - y0));
    }
  }
}

BOOST_AUTO_TEST_CASE(sections_share_one_time_scale) {
  // A 1 s task and a 4 s task in two sections: the second bar is 4 times as wide.
  std::vector<timeline_section> s(2);
  s[0] = {"short", {"lane"}, {bar(0, 0, 1, "one second")}};
  s[1] = {"long", {"lane"}, {bar(0, 0, 4, "four seconds")}};
  const auto g = layout_timeline(s);
  BOOST_TEST(g.pixels_per_second == L::plot_width / 4, boost::test_tools::tolerance(1e-9));
  const auto img = render(render_timeline(s), "shared_scale");
  const auto one = row_runs(img, clear_rows(g, 0, 0)[0], bar_fill);
  const auto four = row_runs(img, clear_rows(g, 1, 0)[0], bar_fill);
  BOOST_TEST_REQUIRE(one.size() == 1u);
  BOOST_TEST_REQUIRE(four.size() == 1u);
  check_bar_run(one[0], g, 0, 1);
  check_bar_run(four[0], g, 0, 4);
  const double ratio = (four[0].last - four[0].first + 3.0) / (one[0].last - one[0].first + 3.0);
  BOOST_TEST(ratio == 4.0, boost::test_tools::tolerance(0.02));
}

BOOST_AUTO_TEST_CASE(tick_steps_are_round_and_spaced) {
  for (double span : {1e-4, 1e-3, 0.0123, 0.8, 1.0, 3.7, 59.0, 3600.0, 1e5}) {
    const std::vector<timeline_section> s{{"t", {"lane"}, {bar(0, 0, span, "x")}}};
    const auto g = layout_timeline(s);
    const double spacing = g.tick_step * g.pixels_per_second;
    BOOST_TEST(spacing >= L::min_tick_spacing * (1 - 1e-9), "span " << span);
    BOOST_TEST(spacing < 2.5 * L::min_tick_spacing, "span " << span);
    const double mantissa = g.tick_step / std::pow(10.0, std::floor(std::log10(g.tick_step)));
    const bool round = std::abs(mantissa - 1) < 1e-6 || std::abs(mantissa - 2) < 1e-6 ||
                       std::abs(mantissa - 5) < 1e-6 || std::abs(mantissa - 10) < 1e-6;
    BOOST_TEST(round, "span " << span << ": step " << g.tick_step);
    BOOST_TEST(g.section_span[0] >= span * (1 - 1e-9));
    BOOST_TEST(g.section_span[0] < std::max(span, L::min_span) + g.tick_step + 1e-12);
  }
  // The labels: seconds for steps of 0.1 s and more, else milliseconds.
  auto svg_for = [](double span) {
    return render_timeline({{"t", {"lane"}, {bar(0, 0, span, "x")}}});
  };
  const auto notebook = svg_for(0.8);
  BOOST_TEST(notebook.find(">0.1 s<") != std::string::npos);
  BOOST_TEST(notebook.find(">0.8 s<") != std::string::npos);
  BOOST_TEST(notebook.find(">0<") != std::string::npos);
  BOOST_TEST(svg_for(0.0123).find(">2 ms<") != std::string::npos);
  BOOST_TEST(svg_for(3600).find(">500 s<") != std::string::npos);
  BOOST_TEST(svg_for(1e-4).find(">0.1 ms<") != std::string::npos);  // min_span: 1 ms
}

BOOST_AUTO_TEST_CASE(xml_special_characters_are_escaped) {
  const std::string nasty = "x<&>\"'y";
  std::vector<timeline_section> s(1);
  s[0].title = "title " + nasty;
  s[0].lanes = {"lane " + nasty};
  s[0].bars = {bar(0, 0, 1, "label " + nasty, true, "detail " + nasty + "\nsecond line")};
  const auto svg = render_timeline(s);
  BOOST_TEST(svg.find(nasty) == std::string::npos);
  BOOST_TEST(occurrences(svg, "x&lt;&amp;&gt;&quot;&apos;y") >= 5);  // title, lane, bar, legend
  // A strict XML parser reads back the original text.
  std::vector<std::string> text;
  BOOST_REQUIRE_NO_THROW(text = parse_xml(svg));
  BOOST_TEST(any_contains(text, "title " + nasty));
  BOOST_TEST(any_contains(text, "lane " + nasty));
  BOOST_TEST(any_contains(text, "label " + nasty));
  BOOST_TEST(any_contains(text, "detail " + nasty + "\nsecond line"));  // the tooltip
  render(svg, "escaping");  // and librsvg (libxml2) accepts it
}

BOOST_AUTO_TEST_CASE(invalid_utf8_and_control_characters_become_replacement_characters) {
  const std::string bad =
      "a\xff"
      "b\x01"
      "c\x1b[31m"
      "d\xed\xa0\x80"
      "e\xc0\xaf"
      "f\xe2\x82";
  const std::string good = "h\xc3\xa9llo \xe2\x9c\x93 \xf0\x9f\x9a\x80";  // héllo ✓ 🚀
  std::vector<timeline_section> s{
      {bad, {bad, good}, {bar(0, 0, 1, bad, true, bad), bar(1, 0, 1, good)}}};
  const auto svg = render_timeline(s);
  for (char c : std::string("\xff\x01\x1b\xed\xc0")) {
    BOOST_TEST(svg.find(c) == std::string::npos, "byte " << int(static_cast<unsigned char>(c)));
  }
  BOOST_TEST(svg.find("a\xef\xbf\xbd"
                      "b\xef\xbf\xbd"
                      "c\xef\xbf\xbd[31m") != std::string::npos);
  BOOST_TEST(svg.find(good) != std::string::npos);
  BOOST_REQUIRE_NO_THROW(parse_xml(svg));
  render(svg, "utf8");
}

BOOST_AUTO_TEST_CASE(bad_times_are_rejected) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();
  for (auto [start, end] : {std::pair{nan, 1.0}, std::pair{0.0, nan}, std::pair{0.0, inf},
                            std::pair{-1.0, 1.0}, std::pair{2.0, 1.0}}) {
    const std::vector<timeline_section> s{
        {"t", {"lane"}, {bar(0, 0, 1, "ok"), bar(0, start, end, "bad")}}};
    BOOST_CHECK_THROW(render_timeline(s), std::invalid_argument);
    BOOST_CHECK_THROW(layout_timeline(s), std::invalid_argument);
  }
  try {
    render_timeline({{"my section", {"lane"}, {bar(0, 2, 1, "my bar")}}});
    BOOST_FAIL("no exception");
  } catch (const std::invalid_argument& e) {
    const std::string what = e.what();
    BOOST_TEST(what.find("my section") != std::string::npos, what);
    BOOST_TEST(what.find("my bar") != std::string::npos, what);
  }
}

BOOST_AUTO_TEST_CASE(empty_input_sections_and_lanes) {
  const auto none = render_timeline({});
  BOOST_TEST(none.find("no timeline data") != std::string::npos);
  BOOST_REQUIRE_NO_THROW(parse_xml(none));
  const auto empty_img = render(none, "empty");
  BOOST_TEST(empty_img.width > 0);
  BOOST_TEST(empty_img.height > 0);

  std::vector<timeline_section> s(3);
  s[0] = {"no bars", {"lane a", "lane b"}, {}};
  s[1] = {"no lanes", {}, {}};
  s[2] = {"", {"lane"}, {}};
  const auto svg = render_timeline(s);
  BOOST_TEST(svg.find("no lanes, 0 tasks") != std::string::npos);
  const auto g = layout_timeline(s);
  BOOST_TEST(g.section_span[0] == g.tick_step);  // a one-tick axis
  const auto img = render(svg, "empty_sections");
  // No bars (the legend's key has one).
  BOOST_TEST(count_in(img, 0, 0, img.width, px(g.legend_top), bar_fill) == 0);
}

BOOST_AUTO_TEST_CASE(zero_length_bars_stay_visible) {
  const std::vector<timeline_section> s{
      {"instant", {"lane"}, {bar(0, 0, 1, "one second"), bar(0, 0.5, 0.5, "instant")}},
      {"only instants", {"lane"}, {bar(0, 0, 0, "at zero")}}};
  const auto g = layout_timeline(s);
  const auto img = render(render_timeline(s), "zero_length");
  // The instant bar sits on the 1 s bar's middle; the row through the 1 s bar's inside is
  // cut there by the instant bar's (stroke-coloured) min_bar_width.
  const auto runs = row_runs(img, clear_rows(g, 0, 0)[0], bar_fill);
  BOOST_TEST_REQUIRE(runs.size() == 2u, runs);
  BOOST_TEST(std::abs(runs[1].first - runs[0].last - (L::min_bar_width + 2)) <= 2);
  BOOST_TEST(std::abs(runs[0].last - px(g.x(0.5))) <= edge_slack);
  // A bar at time 0 and 0 long: a min_bar_width wide stroke, blended with the background
  // by anti-aliasing: bluish pixels where it starts.
  long bluish = 0;
  for (int y : clear_rows(g, 1, 0)) {
    for (int x = px(g.x(0)) - 1; x < px(g.x(0)) + 4; ++x) {
      const auto c = img.at(x, y);
      bluish += c.b - c.r >= 40 && c.r < 160 ? 1 : 0;
    }
  }
  BOOST_TEST(bluish >= 2);
}

BOOST_AUTO_TEST_CASE(bars_on_unknown_lanes_are_skipped_and_reported) {
  const std::vector<timeline_section> s{
      {"t", {"lane 0", "lane 1"}, {bar(0, 0, 1, "fine"), bar(2, 0, 100, "nowhere")}}};
  const auto g = layout_timeline(s);
  // Not drawn, so not counted in the time scale either.
  BOOST_TEST(g.pixels_per_second == L::plot_width, boost::test_tools::tolerance(1e-9));
  const auto svg = render_timeline(s);
  BOOST_TEST(svg.find("nowhere") == std::string::npos);
  BOOST_TEST(svg.find("1 not drawn (unknown lane)") != std::string::npos);
  BOOST_TEST(svg.find("not drawn: 1 bar on a lane that does not exist") != std::string::npos);
  const auto img = render(svg, "unknown_lane");
  BOOST_TEST(row_runs(img, clear_rows(g, 0, 0)[0], bar_fill).size() == 1u);
  BOOST_TEST(row_runs(img, clear_rows(g, 0, 1)[0], bar_fill).empty());
}

BOOST_AUTO_TEST_CASE(labels_that_do_not_fit_keep_their_tooltip) {
  // At 800 px/s: a 0.4 s bar holds its label, a 0.05 s bar (40 px) a shortened one with an
  // ellipsis, a 0.01 s bar (8 px) none; every one keeps the full label in its tooltip.
  const std::string label = "a_rather_long_label(12345)";
  const std::vector<timeline_section> s{
      {"t",
       {"lane"},
       {bar(0, 0, 0.4, label + "A"), bar(0, 0.5, 0.55, label + "B"), bar(0, 0.6, 0.61, label + "C"),
        bar(0, 0.9, 1.0, "end")}}};
  const auto svg = render_timeline(s);
  BOOST_TEST(svg.find(">" + label + "A</text>") != std::string::npos);
  BOOST_TEST(svg.find(">a_r\xe2\x80\xa6</text>") != std::string::npos);
  BOOST_TEST(occurrences(svg, "<text class=\"t\"") == 3);
  for (const char* suffix : {"A", "B", "C"}) {
    BOOST_TEST(svg.find("<title>" + label + suffix + "\n") != std::string::npos, suffix);
  }
}

BOOST_AUTO_TEST_CASE(ten_thousand_bars_stay_small) {
  constexpr std::size_t lanes = 16, bars = 10'000, failures = 100;
  timeline_section s{"many", {}, {}};
  for (std::size_t i = 0; i < lanes; ++i)
    s.lanes.push_back("worker " + std::to_string(i));
  for (std::size_t i = 0; i < bars; ++i) {
    const double start = static_cast<double>(i / lanes) * 0.01;
    s.bars.push_back(bar(i % lanes, start, start + 0.008, "square(" + std::to_string(i) + ")",
                         i % (bars / failures) == 0, i % (bars / failures) == 0 ? "boom" : ""));
  }
  const std::vector<timeline_section> sections{s};
  const auto svg = render_timeline(sections);
  BOOST_TEST_MESSAGE("10,000 bars: " << svg.size() << " bytes");
  BOOST_TEST(svg.size() < bars * 200, svg.size() << " bytes");
  BOOST_TEST(occurrences(svg, "<rect class=\"") == static_cast<long>(bars + 2));  // + legend key
  // The legend names the first max_legend_failures failures and counts the rest.
  BOOST_TEST(svg.find("failed (100)") != std::string::npos);
  BOOST_TEST(svg.find("and 80 more failed tasks") != std::string::npos);
  const auto g = layout_timeline(sections);
  BOOST_TEST(g.height < 1500);
  BOOST_TEST(g.width < 1500);
  const auto img = render(svg, "many");
  BOOST_TEST(count_in(img, 0, 0, img.width, img.height, failed_fill) > 0);
}

BOOST_AUTO_TEST_CASE(lanes_are_grouped_under_a_header_per_host) {
  // crew run --listen: workers on two hosts, and a task that never started (no host).
  timeline_section s{"placed", {"not started", "worker 0", "worker 1", "worker 0", "worker 2"}, {}};
  s.lane_groups = {"", "node-a", "node-a", "node-b", "node-b"};
  for (std::size_t lane = 0; lane < 5; ++lane)
    s.bars.push_back(bar(lane, 0.1 * static_cast<double>(lane), 0.5, "t" + std::to_string(lane)));
  const std::vector<timeline_section> sections{s};
  const auto g = layout_timeline(sections);

  // A header row above the first lane of each host; none above the lane of no host.
  BOOST_TEST_REQUIRE(g.group_rows.at(0).size() == 2u);
  BOOST_TEST(g.group_rows[0][0].second == 1u);
  BOOST_TEST(g.group_rows[0][1].second == 3u);
  const double lanes_top = g.section_top[0] + L::section_title_height;
  BOOST_TEST(g.lane_top(0, 0) == lanes_top);
  BOOST_TEST(g.group_rows[0][0].first == lanes_top + L::lane_height);
  BOOST_TEST(g.lane_top(0, 1) == g.group_rows[0][0].first + L::group_height);
  BOOST_TEST(g.lane_top(0, 2) == g.lane_top(0, 1) + L::lane_height);
  BOOST_TEST(g.group_rows[0][1].first == g.lane_top(0, 2) + L::lane_height);
  BOOST_TEST(g.lane_top(0, 3) == g.group_rows[0][1].first + L::group_height);
  BOOST_TEST(g.lane_top(0, 5) == lanes_top + 5 * L::lane_height + 2 * L::group_height);
  BOOST_TEST(g.section_bottom[0] == g.lane_top(0, 5) + L::axis_height);

  // The hosts are named in their headers, and in the bars' tooltips.
  const auto svg = render_timeline(sections);
  BOOST_TEST(occurrences(svg, "<title>node-a</title>node-a</text>") == 1);
  BOOST_TEST(occurrences(svg, "<title>node-b</title>node-b</text>") == 1);
  BOOST_TEST(svg.find("node-b \xC2\xB7 worker 2: ") != std::string::npos);
  BOOST_TEST(svg.find("\nnot started: ") != std::string::npos);
  BOOST_REQUIRE_NO_THROW(parse_xml(svg));

  // In the picture: each bar on its own lane where its times say; the header rows hold the
  // header colour and no bar.
  const auto img = render(svg, "hosts");
  BOOST_TEST(img.height == static_cast<int>(g.height));
  for (std::size_t lane = 0; lane < 5; ++lane) {
    for (int y : clear_rows(g, 0, lane)) {
      const auto runs = row_runs(img, y, bar_fill);
      BOOST_TEST_REQUIRE(runs.size() == 1u, "lane " << lane << ", row " << y << ": " << runs);
      check_bar_run(runs[0], g, 0.1 * static_cast<double>(lane), 0.5);
    }
  }
  const rgb band = parse_colour(L::group_band);
  for (const auto& [top, lane] : g.group_rows[0]) {
    const int y0 = px(top) + 2, y1 = px(top + L::group_height) - 2;
    const int x0 = px(g.plot_left), x1 = px(g.x(g.section_span[0])) - 2;
    const long area = static_cast<long>(x1 - x0) * (y1 - y0);
    BOOST_TEST(count_in(img, x0, y0, x1, y1, bar_fill) == 0, "header above lane " << lane);
    BOOST_TEST(count_in(img, x0, y0, x1, y1, band) > area * 9 / 10, "header above lane " << lane);
  }

  // Without groups (or with none named) the section is drawn as it always was.
  timeline_section plain = s, unnamed = s;
  plain.lane_groups.clear();
  unnamed.lane_groups.assign(5, "");
  const auto plain_svg = render_timeline({plain});
  BOOST_TEST(render_timeline({unnamed}) == plain_svg);
  BOOST_TEST(plain_svg.find(L::group_band) == std::string::npos);
  const auto pg = layout_timeline({plain});
  for (std::size_t lane = 0; lane <= 5; ++lane)
    BOOST_TEST(pg.lane_top(0, lane) == lanes_top + static_cast<double>(lane) * L::lane_height);
}

BOOST_AUTO_TEST_SUITE_END()
