#include "timeline.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <stdexcept>
#include <string_view>

namespace crew::cli {

namespace {

namespace L = timeline_layout;

// ---- text ---------------------------------------------------------------------------------

void append_utf8(std::string& out, char32_t c) {
  if (c < 0x80) {
    out += static_cast<char>(c);
  } else if (c < 0x800) {
    out += static_cast<char>(0xC0 | (c >> 6));
    out += static_cast<char>(0x80 | (c & 0x3F));
  } else if (c < 0x10000) {
    out += static_cast<char>(0xE0 | (c >> 12));
    out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (c & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (c >> 18));
    out += static_cast<char>(0x80 | ((c >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (c & 0x3F));
  }
}

// The code points of `s`: invalid UTF-8 (overlong forms, surrogates, truncated sequences,
// stray continuation bytes) and characters XML 1.0 forbids become U+FFFD, one per bad byte.
// Tabs and newlines stay if `keep_newlines`, else they become spaces.
std::u32string decode(std::string_view s, bool keep_newlines) {
  std::u32string out;
  out.reserve(s.size());
  std::size_t i = 0;
  while (i < s.size()) {
    const auto b = static_cast<unsigned char>(s[i]);
    char32_t c = 0xFFFD;
    std::size_t n = 1;
    if (b < 0x80) {
      c = b;
    } else if (b >= 0xC2 && b <= 0xF4) {
      const std::size_t len = b < 0xE0 ? 2 : b < 0xF0 ? 3 : 4;
      char32_t v = b & (len == 2 ? 0x1F : len == 3 ? 0x0F : 0x07);
      std::size_t k = 1;
      for (; k < len && i + k < s.size(); ++k) {
        const auto cb = static_cast<unsigned char>(s[i + k]);
        if ((cb & 0xC0) != 0x80) break;
        v = (v << 6) | (cb & 0x3F);
      }
      const bool ok = k == len && !(len == 3 && v < 0x800) && !(len == 4 && v < 0x10000) &&
                      v <= 0x10FFFF && !(v >= 0xD800 && v <= 0xDFFF);
      if (ok) {
        c = v;
        n = len;
      }
    }
    if (c == '\t' || c == '\n' || c == '\r') {
      c = keep_newlines && c != '\r' ? c : U' ';
    } else if (c < 0x20 || c == 0x7F || c == 0xFFFE || c == 0xFFFF) {
      c = 0xFFFD;
    }
    out += c;
    i += n;
  }
  return out;
}

// `text` (sanitized code points) as XML character data, usable in attributes too.
std::string escape(std::u32string_view text) {
  std::string out;
  out.reserve(text.size() + 8);
  for (char32_t c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&apos;";
        break;
      default:
        append_utf8(out, c);
    }
  }
  return out;
}

std::string escape(std::string_view s, bool keep_newlines = false) {
  return escape(decode(s, keep_newlines));
}

// Estimated width of a character, in em: sans-serif Latin averages about 0.6 em; symbols,
// U+FFFD and East Asian characters are wider. Over- rather than underestimated.
double char_width(char32_t c) {
  if (c < 0x80) return 0.6;
  if (c < 0x2000) return 0.7;
  return 1.0;
}

double text_width(std::u32string_view text, double size) {
  double w = 0;
  for (char32_t c : text)
    w += char_width(c);
  return w * size;
}

double text_width(std::string_view s, double size) {
  return text_width(decode(s, false), size);
}

// The code points of `s` (sanitized), shortened with an ellipsis if wider than `width`.
// Empty if shortening leaves fewer than `min_chars` characters.
std::u32string shorten(std::string_view s, double width, double size = L::font_size,
                       std::size_t min_chars = 1) {
  auto text = decode(s, false);
  if (text_width(text, size) <= width) return text;
  double w = size;  // the ellipsis, generously
  std::size_t n = 0;
  while (n < text.size() && w + char_width(text[n]) * size <= width) {
    w += char_width(text[n++]) * size;
  }
  if (n < min_chars) return {};
  text.resize(n);
  text += U'\u2026';
  return text;
}

// `s` escaped, shortened to fit `width` pixels; empty if not even 3 characters fit.
std::string fit(std::string_view s, double width, double size = L::font_size) {
  return escape(shorten(s, width, size, 3));
}

// ---- numbers ------------------------------------------------------------------------------

void append_fixed(std::string& out, double v, int decimals) {
  char buf[64];
  const auto r = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::fixed, decimals);
  out.append(buf, r.ptr);
}

// A coordinate: at most 2 decimals, no trailing zeros.
void append_num(std::string& out, double v) {
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::fixed, 2);
  char* end = r.ptr;
  while (end[-1] == '0')
    --end;
  if (end[-1] == '.') --end;
  std::string_view sv(buf, static_cast<std::size_t>(end - buf));
  if (sv == "-0") sv = "0";
  out += sv;
}

std::string num(double v) {
  std::string s;
  append_num(s, v);
  return s;
}

// A duration for tooltips and headers: "1.234 s", "0.200 s", "12.34 ms", "56.7 us".
std::string duration(double seconds) {
  std::string s;
  if (seconds == 0) return "0 s";
  if (seconds >= 0.1) {
    append_fixed(s, seconds, 3);
    s += " s";
  } else if (seconds >= 1e-3) {
    append_fixed(s, seconds * 1e3, 2);
    s += " ms";
  } else {
    append_fixed(s, seconds * 1e6, 1);
    s += " \xC2\xB5s";
  }
  return s;
}

// A tick label: the unit follows from the step; as many decimals as the step needs.
std::string tick_label(double t, double step) {
  if (t == 0) return "0";
  const bool ms = step < 0.1;
  const double unit_step = ms ? step * 1e3 : step;
  const int decimals = std::max(0, -static_cast<int>(std::floor(std::log10(unit_step) + 1e-9)));
  std::string s;
  append_fixed(s, ms ? t * 1e3 : t, decimals);
  s += ms ? " ms" : " s";
  return s;
}

// The smallest of 1, 2, 5 x 10^k seconds at least `min_seconds`.
double nice_step(double min_seconds) {
  const double e = std::floor(std::log10(min_seconds));
  for (double m : {1.0, 2.0, 5.0}) {
    if (m * std::pow(10.0, e) >= min_seconds * (1 - 1e-9)) return m * std::pow(10.0, e);
  }
  return std::pow(10.0, e + 1);
}

// ---- layout -------------------------------------------------------------------------------

void validate(const std::vector<timeline_section>& sections) {
  for (std::size_t s = 0; s < sections.size(); ++s) {
    const auto& bars = sections[s].bars;
    for (std::size_t b = 0; b < bars.size(); ++b) {
      const auto& bar = bars[b];
      const char* problem = nullptr;
      if (!std::isfinite(bar.start) || !std::isfinite(bar.end)) {
        problem = "a time that is not finite";
      } else if (bar.start < 0) {
        problem = "a negative start";
      } else if (bar.end < bar.start) {
        problem = "end < start";
      }
      if (problem) {
        throw std::invalid_argument("render_timeline: section " + std::to_string(s) + " (" +
                                    sections[s].title + "), bar " + std::to_string(b) + " (" +
                                    bar.label + ") has " + problem);
      }
    }
  }
}

// The group of lane `li` ("" for none).
const std::string& group_of(const timeline_section& s, std::size_t li) {
  static const std::string none;
  return li < s.lane_groups.size() ? s.lane_groups[li] : none;
}

// Whether a header row stands above lane `li`: the first lane of a run of a named group.
bool group_starts(const timeline_section& s, std::size_t li) {
  const auto& g = group_of(s, li);
  return !g.empty() && (li == 0 || group_of(s, li - 1) != g);
}

// The lane's name, with its group's when it has one (tooltips).
std::string lane_title(const timeline_section& s, std::size_t li) {
  const auto& g = group_of(s, li);
  return g.empty() ? s.lanes[li] : g + " \xC2\xB7 " + s.lanes[li];
}

bool drawn(const timeline_section& s, const timeline_bar& b) {
  return b.lane < s.lanes.size();
}

double section_end(const timeline_section& s) {
  double end = 0;
  for (const auto& b : s.bars) {
    if (drawn(s, b)) end = std::max(end, b.end);
  }
  return end;
}

struct section_counts {
  std::size_t tasks = 0, failed = 0, skipped = 0;
};

section_counts count(const timeline_section& s) {
  section_counts c;
  for (const auto& b : s.bars) {
    if (!drawn(s, b)) {
      ++c.skipped;
    } else {
      ++c.tasks;
      if (b.failed) ++c.failed;
    }
  }
  return c;
}

std::string plural(std::size_t n, const char* word) {
  return std::to_string(n) + " " + word + (n == 1 ? "" : "s");
}

std::string summary(const timeline_section& s) {
  const auto c = count(s);
  std::string out;
  if (s.lanes.empty()) out = "no lanes, ";
  out += plural(c.tasks, "task");
  if (c.failed) out += ", " + std::to_string(c.failed) + " failed";
  if (c.skipped) out += ", " + std::to_string(c.skipped) + " not drawn (unknown lane)";
  if (c.tasks) out += ", " + duration(section_end(s));
  return out;
}

struct legend_line {
  std::u32string text;  // sanitized, not escaped
  bool failure;
};

std::vector<legend_line> legend_lines(const std::vector<timeline_section>& sections) {
  std::vector<legend_line> lines;
  std::size_t failed = 0, skipped = 0;
  constexpr double max_width = 1200;
  for (const auto& s : sections) {
    skipped += count(s).skipped;
    for (const auto& b : s.bars) {
      if (!drawn(s, b) || !b.failed) continue;
      if (++failed > L::max_legend_failures) continue;
      std::string text = "\xE2\x9C\x95 " + s.title + ": " + b.label;
      if (!b.detail.empty()) text += " \xE2\x80\x94 " + b.detail;
      lines.push_back({shorten(text, max_width), true});
    }
  }
  if (failed > L::max_legend_failures) {
    lines.push_back(
        {decode("\xE2\x80\xA6 and " + plural(failed - L::max_legend_failures, "more failed task"),
                false),
         true});
  }
  if (skipped) {
    lines.push_back(
        {decode("not drawn: " + plural(skipped, "bar") + " on a lane that does not exist", false),
         false});
  }
  return lines;
}

std::size_t legend_failures(const std::vector<timeline_section>& sections) {
  std::size_t n = 0;
  for (const auto& s : sections)
    n += count(s).failed;
  return n;
}

}  // namespace

double timeline_geometry::lane_top(std::size_t section, std::size_t lane) const {
  const auto& y = lane_y.at(section);
  if (lane < y.size()) return y[lane];
  return y.back() + static_cast<double>(lane - (y.size() - 1)) * L::lane_height;
}

double timeline_geometry::bar_top(std::size_t section, std::size_t lane) const {
  return lane_top(section, lane) + (L::lane_height - L::bar_height) / 2;
}

timeline_geometry layout_timeline(const std::vector<timeline_section>& sections) {
  validate(sections);
  timeline_geometry g{};
  double longest = 0;
  for (const auto& s : sections)
    longest = std::max(longest, section_end(s));
  g.pixels_per_second = L::plot_width / std::max(longest, L::min_span);
  g.tick_step = nice_step(L::min_tick_spacing / g.pixels_per_second);
  g.plot_left = L::margin + L::lane_label_width;

  double width = g.plot_left + L::plot_width + L::margin;
  double y = L::margin;
  for (const auto& s : sections) {
    // The axis ends at the first tick at or after the section's last bar.
    const double ticks = std::max(1.0, std::ceil(section_end(s) / g.tick_step - 1e-9));
    g.section_span.push_back(ticks * g.tick_step);
    g.section_top.push_back(y);
    y += L::section_title_height;
    auto& lanes = g.lane_y.emplace_back();
    auto& groups = g.group_rows.emplace_back();
    for (std::size_t li = 0; li < s.lanes.size(); ++li) {
      if (group_starts(s, li)) {
        groups.emplace_back(y, li);
        y += L::group_height;
      }
      lanes.push_back(y);
      y += L::lane_height;
    }
    lanes.push_back(y);
    y += L::axis_height;
    g.section_bottom.push_back(y);
    y += L::section_gap;
    // Room for the last tick label, and for the header line.
    width = std::max(width, g.x(g.section_span.back()) + L::min_tick_spacing / 2 + L::margin);
    const double header = text_width(s.title + " \xE2\x80\x94 " + summary(s), L::title_font_size);
    width = std::max(width, 2 * L::margin + 8 + header);
  }
  g.legend_top = sections.empty() ? L::margin : y - L::section_gap / 2;
  const auto lines = legend_lines(sections);
  for (const auto& l : lines) {
    width = std::max(width, 2 * L::margin + text_width(l.text, L::font_size));
  }
  g.width = std::ceil(width);
  g.height = std::ceil(g.legend_top +
                       static_cast<double>(1 + lines.size()) * L::legend_line_height + L::margin);
  return g;
}

std::string render_timeline(const std::vector<timeline_section>& sections) {
  const auto g = layout_timeline(sections);
  std::size_t nbars = 0;
  for (const auto& s : sections)
    nbars += s.bars.size();

  std::string o;
  o.reserve(4096 + nbars * 160);
  auto attr = [&o](const char* name, double v) {
    o += ' ';
    o += name;
    o += "=\"";
    append_num(o, v);
    o += '"';
  };

  o += "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<svg xmlns=\"http://www.w3.org/2000/svg\"";
  attr("width", g.width);
  attr("height", g.height);
  o += " viewBox=\"0 0 " + num(g.width) + " " + num(g.height) + "\"";
  o += " font-family=\"sans-serif\" font-size=\"" + num(L::font_size) + "\">\n";
  o += "<title>crew timeline</title>\n";
  o += "<style>\n";
  o += ".b{fill:" + std::string(L::bar_fill) + ";stroke:" + L::bar_stroke + "}\n";
  o += ".f{fill:url(#crew-hatch);stroke:" + std::string(L::failed_stroke) + "}\n";
  o += ".t{fill:#ffffff}\n";
  o += "</style>\n";
  // Failed bars: the failure colour under light diagonal stripes.
  o += "<defs><pattern id=\"crew-hatch\" width=\"7\" height=\"7\" patternUnits=\"userSpaceOnUse\""
       " patternTransform=\"rotate(45)\"><rect width=\"7\" height=\"7\" fill=\"";
  o += L::failed_fill;
  o += "\"/><rect width=\"1.5\" height=\"7\" fill=\"#ffffff\" fill-opacity=\"0.5\"/>"
       "</pattern></defs>\n";
  o += "<rect width=\"100%\" height=\"100%\" fill=\"";
  o += L::background;
  o += "\"/>\n";

  for (std::size_t si = 0; si < sections.size(); ++si) {
    const auto& s = sections[si];
    const double top = g.section_top[si];
    const double lanes_top = top + L::section_title_height;
    const double axis_y = g.lane_y[si].back();
    const double x0 = g.x(0), x1 = g.x(g.section_span[si]);
    o += "<g>\n<text";
    attr("x", L::margin);
    attr("y", top + 18);
    attr("font-size", L::title_font_size);
    o += " font-weight=\"bold\" fill=\"#222222\">" + escape(s.title);
    o += "<tspan dx=\"8\" font-weight=\"normal\" fill=\"#666666\">\xE2\x80\x94 " +
         escape(summary(s)) + "</tspan></text>\n";

    // Lanes: names on the left, every other one (of its group) on a grey band.
    std::size_t in_group = 0;
    for (std::size_t li = 0; li < s.lanes.size(); ++li) {
      const double ly = g.lane_top(si, li);
      if (li > 0 && group_of(s, li) != group_of(s, li - 1)) in_group = 0;
      if (in_group++ % 2 == 1) {
        o += "<rect";
        attr("x", x0);
        attr("y", ly);
        attr("width", x1 - x0);
        attr("height", L::lane_height);
        o += " fill=\"";
        o += L::lane_band;
        o += "\"/>\n";
      }
      o += "<text";
      attr("x", g.plot_left - 8);
      attr("y", ly + L::lane_height / 2 + L::font_size * 0.35);
      o += " text-anchor=\"end\" fill=\"#333333\"><title>" + escape(s.lanes[li]) + "</title>" +
           fit(s.lanes[li], L::lane_label_width - 16) + "</text>\n";
    }

    // Time axis: grid lines through the lanes, ticks and labels below them.
    const auto nticks = static_cast<std::size_t>(std::llround(g.section_span[si] / g.tick_step));
    if (!s.lanes.empty()) {
      o += "<path stroke=\"";
      o += L::grid;
      o += "\" d=\"";
      for (std::size_t k = 0; k <= nticks; ++k) {
        const double tx = std::round(g.x(static_cast<double>(k) * g.tick_step)) + 0.5;
        o += "M";
        append_num(o, tx);
        o += ' ';
        append_num(o, lanes_top);
        o += "V";
        append_num(o, axis_y);
      }
      o += "\"/>\n";
    }
    // Group headers, over the grid: a band across the section naming the lanes' group.
    for (const auto& [gy, li] : g.group_rows[si]) {
      o += "<rect";
      attr("x", L::margin);
      attr("y", gy);
      attr("width", x1 - L::margin);
      attr("height", L::group_height);
      o += " fill=\"";
      o += L::group_band;
      o += "\"/>\n<text";
      attr("x", L::margin + 6);
      attr("y", gy + L::group_height / 2 + L::font_size * 0.35);
      o += " font-weight=\"bold\" fill=\"#223344\"><title>" + escape(group_of(s, li)) + "</title>" +
           fit(group_of(s, li), x1 - L::margin - 12) + "</text>\n";
    }
    o += "<path stroke=\"#444444\" fill=\"none\" d=\"M";
    append_num(o, x0);
    o += ' ';
    append_num(o, axis_y + 0.5);
    o += "H";
    append_num(o, x1);
    for (std::size_t k = 0; k <= nticks; ++k) {
      const double tx = std::round(g.x(static_cast<double>(k) * g.tick_step)) + 0.5;
      o += "M";
      append_num(o, tx);
      o += ' ';
      append_num(o, axis_y);
      o += "v5";
    }
    o += "\"/>\n<g text-anchor=\"middle\" fill=\"#444444\">";
    for (std::size_t k = 0; k <= nticks; ++k) {
      const double t = static_cast<double>(k) * g.tick_step;
      o += "<text";
      attr("x", g.x(t));
      attr("y", axis_y + 17);
      o += ">" + tick_label(t, g.tick_step) + "</text>";
    }
    o += "</g>\n";

    // Bars, each with its tooltip.
    for (const auto& b : s.bars) {
      if (!drawn(s, b)) continue;
      const double bx = g.x(b.start);
      const double bw = std::max(L::min_bar_width, (b.end - b.start) * g.pixels_per_second);
      const double by = g.bar_top(si, b.lane);
      o += "<g><title>";
      o += escape(b.label);
      if (b.failed) o += " \xE2\x80\x94 FAILED";
      o += "\n" + escape(lane_title(s, b.lane)) + ": " + duration(b.start) + " \xE2\x86\x92 " +
           duration(b.end) + " (" + duration(b.end - b.start) + ")";
      if (!b.detail.empty()) o += "\n" + escape(b.detail, true);
      o += "</title><rect class=\"";
      o += b.failed ? 'f' : 'b';
      o += '"';
      attr("x", bx);
      attr("y", by);
      attr("width", bw);
      attr("height", L::bar_height);
      o += "/>";
      // A failed bar's label starts with a cross, so that it reads as failed without colour.
      const auto label = fit(b.failed ? "\xE2\x9C\x95 " + b.label : b.label, bw - 8);
      if (!label.empty()) {
        o += "<text class=\"t\"";
        attr("x", bx + 4);
        attr("y", by + L::bar_height / 2 + L::font_size * 0.35);
        o += ">" + label + "</text>";
      }
      o += "</g>\n";
    }
    o += "</g>\n";
  }

  // Legend: the key, then the failed tasks by name, then what was not drawn.
  double ly = g.legend_top;
  if (sections.empty()) {
    o += "<text";
    attr("x", L::margin);
    attr("y", ly + 13);
    o += " fill=\"#666666\">no timeline data</text>\n";
  } else {
    o += "<g fill=\"#333333\"><rect class=\"b\"";
    attr("x", L::margin + 0.5);
    attr("y", ly + 3.5);
    o += " width=\"24\" height=\"12\"/><text";
    attr("x", L::margin + 30);
    attr("y", ly + 13);
    o += ">task (hover for details)</text><rect class=\"f\"";
    attr("x", L::margin + 200.5);
    attr("y", ly + 3.5);
    o += " width=\"24\" height=\"12\"/><text";
    attr("x", L::margin + 230);
    attr("y", ly + 13);
    o += ">failed (" + std::to_string(legend_failures(sections)) + ")</text></g>\n";
  }
  for (const auto& l : legend_lines(sections)) {
    ly += L::legend_line_height;
    o += "<text";
    attr("x", L::margin);
    attr("y", ly + 13);
    o += l.failure ? " fill=\"" + std::string(L::failed_stroke) + "\">" : " fill=\"#666666\">";
    o += escape(l.text) + "</text>\n";
  }
  o += "</svg>\n";
  return o;
}

}  // namespace crew::cli
