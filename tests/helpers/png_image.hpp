// A minimal PNG decoder for tests that check rendered pictures on their pixels (the
// timeline: test_timeline, test_cli). Header-only; see decode_png.
#pragma once

#include <array>
#include <cstdint>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace png_test {

// ---- a minimal PNG decoder: zlib inflate (RFC 1950/1951) and PNG unfiltering --------------
// Enough for rsvg-convert's output (8-bit RGB or RGBA, not interlaced). The zlib stream's
// Adler-32 and every chunk's CRC are checked, so a decoding mistake cannot pass unnoticed.

struct decode_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

class bit_reader {
 public:
  explicit bit_reader(std::string_view in) : in_(in) {}
  unsigned bits(int n) {
    unsigned v = 0;
    for (int i = 0; i < n; ++i) {
      if (pos_ >= in_.size() * 8) throw decode_error("deflate: unexpected end of data");
      const auto byte = static_cast<unsigned char>(in_[pos_ / 8]);
      v |= ((byte >> (pos_ % 8)) & 1u) << i;
      ++pos_;
    }
    return v;
  }
  void align() { pos_ = (pos_ + 7) / 8 * 8; }
  std::size_t byte_pos() const { return pos_ / 8; }
  void skip_bytes(std::size_t n) { pos_ += n * 8; }
  std::string_view data() const { return in_; }

 private:
  std::string_view in_;
  std::size_t pos_ = 0;
};

// A canonical Huffman code: how many codes of each length, and the symbols in code order.
struct huffman {
  std::array<int, 16> count{};
  std::vector<int> symbol;

  explicit huffman(const std::vector<int>& lengths) {
    for (int len : lengths)
      ++count[static_cast<std::size_t>(len)];
    count[0] = 0;                // unused symbols
    std::array<int, 16> next{};  // where the first symbol of each length goes
    for (std::size_t len = 1; len + 1 < 16; ++len)
      next[len + 1] = next[len] + count[len];
    symbol.resize(lengths.size());
    for (std::size_t s = 0; s < lengths.size(); ++s) {
      const auto len = static_cast<std::size_t>(lengths[s]);
      if (len != 0) symbol[static_cast<std::size_t>(next[len]++)] = static_cast<int>(s);
    }
  }

  int decode(bit_reader& in) const {
    int code = 0, first = 0, index = 0;
    for (std::size_t len = 1; len < 16; ++len) {
      code |= static_cast<int>(in.bits(1));
      const int n = count[len];
      if (code - n < first) return symbol[static_cast<std::size_t>(index + (code - first))];
      index += n;
      first += n;
      first <<= 1;
      code <<= 1;
    }
    throw decode_error("deflate: bad Huffman code");
  }
};

inline std::string inflate(std::string_view in) {
  static constexpr std::array<int, 29> len_base{3,  4,  5,  6,   7,   8,   9,   10,  11, 13,
                                                15, 17, 19, 23,  27,  31,  35,  43,  51, 59,
                                                67, 83, 99, 115, 131, 163, 195, 227, 258};
  static constexpr std::array<int, 29> len_extra{0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2,
                                                 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0};
  static constexpr std::array<int, 30> dist_base{
      1,   2,   3,   4,   5,   7,    9,    13,   17,   25,   33,   49,   65,    97,    129,
      193, 257, 385, 513, 769, 1025, 1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577};
  static constexpr std::array<int, 30> dist_extra{0, 0, 0,  0,  1,  1,  2,  2,  3,  3,
                                                  4, 4, 5,  5,  6,  6,  7,  7,  8,  8,
                                                  9, 9, 10, 10, 11, 11, 12, 12, 13, 13};
  if (in.size() < 6) throw decode_error("zlib: stream too short");
  const auto cmf = static_cast<unsigned char>(in[0]), flg = static_cast<unsigned char>(in[1]);
  if ((cmf & 0x0F) != 8 || (cmf * 256 + flg) % 31 != 0 || (flg & 0x20) != 0) {
    throw decode_error("zlib: bad header");
  }
  bit_reader br(in.substr(2));
  std::string out;
  bool last = false;
  while (!last) {
    last = br.bits(1) != 0;
    const unsigned type = br.bits(2);
    if (type == 0) {
      br.align();
      const std::size_t p = br.byte_pos();
      const auto d = br.data();
      if (p + 4 > d.size()) throw decode_error("deflate: stored block cut short");
      const unsigned len = static_cast<unsigned char>(d[p]) | static_cast<unsigned char>(d[p + 1])
                                                                  << 8;
      const unsigned nlen =
          static_cast<unsigned char>(d[p + 2]) | static_cast<unsigned char>(d[p + 3]) << 8;
      if ((len ^ 0xFFFFu) != nlen || p + 4 + len > d.size()) {
        throw decode_error("deflate: bad stored block");
      }
      out.append(d.substr(p + 4, len));
      br.skip_bytes(4 + len);
      continue;
    }
    if (type == 3) throw decode_error("deflate: bad block type");
    std::vector<int> lit_lengths, dist_lengths;
    if (type == 1) {
      lit_lengths.assign(288, 8);
      std::fill(lit_lengths.begin() + 144, lit_lengths.begin() + 256, 9);
      std::fill(lit_lengths.begin() + 256, lit_lengths.begin() + 280, 7);
      dist_lengths.assign(30, 5);
    } else {
      const unsigned hlit = br.bits(5) + 257, hdist = br.bits(5) + 1, hclen = br.bits(4) + 4;
      static constexpr std::array<int, 19> order{16, 17, 18, 0, 8,  7, 9,  6, 10, 5,
                                                 11, 4,  12, 3, 13, 2, 14, 1, 15};
      std::vector<int> cl(19, 0);
      for (unsigned i = 0; i < hclen; ++i) {
        cl[static_cast<std::size_t>(order[i])] = static_cast<int>(br.bits(3));
      }
      const huffman clh(cl);
      std::vector<int> lengths;
      while (lengths.size() < hlit + hdist) {
        const int sym = clh.decode(br);
        if (sym < 16) {
          lengths.push_back(sym);
        } else {
          int rep = 0, val = 0;
          if (sym == 16) {
            if (lengths.empty()) throw decode_error("deflate: repeat with no length");
            val = lengths.back();
            rep = 3 + static_cast<int>(br.bits(2));
          } else if (sym == 17) {
            rep = 3 + static_cast<int>(br.bits(3));
          } else {
            rep = 11 + static_cast<int>(br.bits(7));
          }
          lengths.insert(lengths.end(), static_cast<std::size_t>(rep), val);
        }
      }
      if (lengths.size() != hlit + hdist) throw decode_error("deflate: too many lengths");
      lit_lengths.assign(lengths.begin(), lengths.begin() + hlit);
      dist_lengths.assign(lengths.begin() + hlit, lengths.end());
    }
    const huffman lit(lit_lengths), dist(dist_lengths);
    for (;;) {
      const int sym = lit.decode(br);
      if (sym < 256) {
        out += static_cast<char>(sym);
        continue;
      }
      if (sym == 256) break;
      const auto li = static_cast<std::size_t>(sym - 257);
      if (li >= len_base.size()) throw decode_error("deflate: bad length symbol");
      const int len = len_base[li] + static_cast<int>(br.bits(len_extra[li]));
      const auto di = static_cast<std::size_t>(dist.decode(br));
      if (di >= dist_base.size()) throw decode_error("deflate: bad distance symbol");
      const auto d =
          static_cast<std::size_t>(dist_base[di] + static_cast<int>(br.bits(dist_extra[di])));
      if (d > out.size()) throw decode_error("deflate: distance too far back");
      for (int i = 0; i < len; ++i)
        out += out[out.size() - d];
    }
  }
  // The Adler-32 of the uncompressed data follows, big-endian, at the next byte boundary.
  br.align();
  const std::size_t p = 2 + br.byte_pos();
  if (p + 4 > in.size()) throw decode_error("zlib: missing Adler-32");
  std::uint32_t a = 1, b = 0;
  for (char c : out) {
    a = (a + static_cast<unsigned char>(c)) % 65521;
    b = (b + a) % 65521;
  }
  std::uint32_t expected = 0;
  for (std::size_t i = 0; i < 4; ++i)
    expected = expected << 8 | static_cast<unsigned char>(in[p + i]);
  if (expected != (b << 16 | a)) throw decode_error("zlib: Adler-32 mismatch");
  return out;
}

inline std::uint32_t crc32(std::string_view data) {
  static const auto table = [] {
    std::array<std::uint32_t, 256> t{};
    for (std::uint32_t n = 0; n < 256; ++n) {
      std::uint32_t c = n;
      for (int k = 0; k < 8; ++k)
        c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
      t[n] = c;
    }
    return t;
  }();
  std::uint32_t c = 0xFFFFFFFFu;
  for (char ch : data)
    c = table[(c ^ static_cast<unsigned char>(ch)) & 0xFF] ^ (c >> 8);
  return c ^ 0xFFFFFFFFu;
}

struct rgb {
  int r, g, b;
  bool operator==(const rgb&) const = default;
};

inline rgb parse_colour(std::string_view hex) {  // "#rrggbb"
  auto byte = [&](std::size_t i) { return std::stoi(std::string(hex.substr(i, 2)), nullptr, 16); };
  return {byte(1), byte(3), byte(5)};
}

inline bool near(rgb a, rgb b, int tolerance) {
  return std::abs(a.r - b.r) <= tolerance && std::abs(a.g - b.g) <= tolerance &&
         std::abs(a.b - b.b) <= tolerance;
}

struct image {
  int width = 0, height = 0;
  std::vector<rgb> pixels;  // row-major, composited over white
  rgb at(int x, int y) const {
    if (x < 0 || y < 0 || x >= width || y >= height) {
      throw std::out_of_range("pixel (" + std::to_string(x) + "," + std::to_string(y) +
                              ") outside the " + std::to_string(width) + "x" +
                              std::to_string(height) + " image");
    }
    return pixels[static_cast<std::size_t>(y) * static_cast<std::size_t>(width) +
                  static_cast<std::size_t>(x)];
  }
};

inline image decode_png(std::string_view png) {
  auto u32 = [&](std::size_t p) {
    if (p + 4 > png.size()) throw decode_error("png: cut short");
    std::uint32_t v = 0;
    for (std::size_t i = 0; i < 4; ++i)
      v = v << 8 | static_cast<unsigned char>(png[p + i]);
    return v;
  };
  if (png.substr(0, 8) != std::string_view("\x89PNG\r\n\x1a\n", 8)) {
    throw decode_error("png: bad signature");
  }
  image img;
  int channels = 0;
  std::string idat;
  bool ended = false;
  for (std::size_t p = 8; !ended;) {
    const std::size_t len = u32(p);
    if (p + 12 + len > png.size()) throw decode_error("png: chunk cut short");
    const auto type = png.substr(p + 4, 4);
    const auto data = png.substr(p + 8, len);
    if (crc32(png.substr(p + 4, 4 + len)) != u32(p + 8 + len)) throw decode_error("png: bad CRC");
    if (type == "IHDR") {
      img.width = static_cast<int>(u32(p + 8));
      img.height = static_cast<int>(u32(p + 12));
      const int depth = static_cast<unsigned char>(data[8]);
      const int colour = static_cast<unsigned char>(data[9]);
      const int interlace = static_cast<unsigned char>(data[12]);
      if (depth != 8 || (colour != 2 && colour != 6) || interlace != 0) {
        throw decode_error("png: only 8-bit RGB/RGBA, not interlaced (depth " +
                           std::to_string(depth) + ", colour type " + std::to_string(colour) + ")");
      }
      channels = colour == 6 ? 4 : 3;
    } else if (type == "IDAT") {
      idat.append(data);
    } else if (type == "IEND") {
      ended = true;
    }
    p += 12 + len;
  }
  if (channels == 0) throw decode_error("png: no IHDR");
  const std::string raw = inflate(idat);
  const auto w = static_cast<std::size_t>(img.width), h = static_cast<std::size_t>(img.height);
  const auto bpp = static_cast<std::size_t>(channels), stride = w * bpp;
  if (raw.size() != h * (stride + 1)) throw decode_error("png: wrong amount of image data");
  std::vector<unsigned char> cur(stride), prev(stride, 0);
  img.pixels.reserve(w * h);
  for (std::size_t y = 0; y < h; ++y) {
    const auto filter = static_cast<unsigned char>(raw[y * (stride + 1)]);
    for (std::size_t i = 0; i < stride; ++i) {
      const int x = static_cast<unsigned char>(raw[y * (stride + 1) + 1 + i]);
      const int a = i >= bpp ? cur[i - bpp] : 0, b = prev[i], c = i >= bpp ? prev[i - bpp] : 0;
      int v = 0;
      switch (filter) {
        case 0:
          v = x;
          break;
        case 1:
          v = x + a;
          break;
        case 2:
          v = x + b;
          break;
        case 3:
          v = x + (a + b) / 2;
          break;
        case 4: {
          const int pa = std::abs(b - c), pb = std::abs(a - c), pc = std::abs(a + b - 2 * c);
          v = x + (pa <= pb && pa <= pc ? a : pb <= pc ? b : c);
          break;
        }
        default:
          throw decode_error("png: bad filter type " + std::to_string(filter));
      }
      cur[i] = static_cast<unsigned char>(v & 0xFF);
    }
    for (std::size_t x = 0; x < w; ++x) {
      const unsigned char* px = &cur[x * bpp];
      const int alpha = channels == 4 ? px[3] : 255;
      auto over_white = [&](int v) { return (v * alpha + 255 * (255 - alpha) + 127) / 255; };
      img.pixels.push_back({over_white(px[0]), over_white(px[1]), over_white(px[2])});
    }
    std::swap(cur, prev);
  }
  return img;
}

}  // namespace png_test
