#include <crew/protocol.hpp>

#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <limits>
#include <ostream>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "crew_printers.hpp"

namespace {

namespace proto = crew::protocol;
using bytes = std::vector<std::byte>;

const proto::frame_type all_types[] = {proto::frame_type::hello,  proto::frame_type::task,
                                       proto::frame_type::result, proto::frame_type::error,
                                       proto::frame_type::cancel, proto::frame_type::shutdown,
                                       proto::frame_type::batch,  proto::frame_type::batch_result};

bytes text(const std::string& s) {
  bytes out(s.size());
  std::memcpy(out.data(), s.data(), s.size());
  return out;
}

bytes pattern(std::size_t n, unsigned seed) {
  bytes out(n);
  for (std::size_t i = 0; i < n; ++i)
    out[i] = static_cast<std::byte>((i * 31 + seed) & 0xff);
  return out;
}

unsigned at(const bytes& b, std::size_t i) {
  return std::to_integer<unsigned>(b.at(i));
}

std::uint64_t le(const bytes& b, std::size_t offset, std::size_t n) {
  std::uint64_t v = 0;
  for (std::size_t i = 0; i < n; ++i)
    v |= std::uint64_t{at(b, offset + i)} << (8 * i);
  return v;
}

void put_le(bytes& b, std::size_t offset, std::size_t n, std::uint64_t v) {
  for (std::size_t i = 0; i < n; ++i)
    b.at(offset + i) = static_cast<std::byte>((v >> (8 * i)) & 0xff);
}

bytes frame(proto::frame_type type, std::uint64_t task_id, const bytes& payload) {
  bytes out;
  proto::append_frame(out, type, task_id, payload);
  return out;
}

struct received {
  proto::frame_header header;
  bytes payload;
};

void feed(proto::frame_reader& r, const std::byte* data, std::size_t n) {
  const auto space = r.prepare(n);
  if (space.size() < n) BOOST_FAIL("prepare(" << n << ") gave " << space.size() << " bytes");
  if (n != 0) std::memcpy(space.data(), data, n);
  r.commit(n);
}

/// Takes every complete frame out of `r`, copying the payloads (views die on next()).
std::vector<received> drain(proto::frame_reader& r, boost::system::error_code& ec) {
  std::vector<received> out;
  proto::frame_view v;
  while (r.next(v, ec))
    out.push_back({v.header, bytes(v.payload.begin(), v.payload.end())});
  return out;
}

struct sent {
  proto::frame_type type;
  std::uint64_t task_id;
  bytes payload;
};

std::vector<sent> sample_frames() {
  return {
      {proto::frame_type::hello, 0, text("hello payload")},
      {proto::frame_type::task, 1, pattern(1000, 1)},
      {proto::frame_type::result, 1, {}},
      {proto::frame_type::error, 0xffffffffffffffff, text("e")},
      {proto::frame_type::cancel, 42, pattern(3, 9)},
      {proto::frame_type::task, 0x0102030405060708, pattern(70000, 5)},
      {proto::frame_type::shutdown, 0, {}},
  };
}

bytes stream_of(const std::vector<sent>& frames) {
  bytes out;
  for (const auto& f : frames)
    proto::append_frame(out, f.type, f.task_id, f.payload);
  return out;
}

void check_frames(const std::vector<received>& got, const std::vector<sent>& want) {
  BOOST_TEST_REQUIRE(got.size() == want.size());
  for (std::size_t i = 0; i < got.size(); ++i) {
    BOOST_TEST_CONTEXT("frame " << i) {
      BOOST_TEST(got[i].header.type == want[i].type);
      BOOST_TEST(got[i].header.task_id == want[i].task_id);
      BOOST_TEST(got[i].header.flags == 0u);
      BOOST_TEST(got[i].header.length == want[i].payload.size());
      BOOST_TEST((got[i].payload == want[i].payload));
    }
  }
}

template <class F>
bool throws_decode_error(F&& f) {
  try {
    f();
  } catch (const crew::decode_error& e) {
    return e.code() == crew::errc::decode_error;
  } catch (...) {
    return false;
  }
  return false;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(protocol)

// ---------------------------------------------------------------------------------------
// Frame headers

BOOST_AUTO_TEST_CASE(constants) {
  BOOST_TEST(proto::header_size == 20u);
  BOOST_TEST(proto::version == 1u);
  BOOST_TEST(proto::default_max_payload == std::size_t{256} << 20);
  BOOST_TEST(static_cast<int>(proto::frame_type::hello) == 1);
  BOOST_TEST(static_cast<int>(proto::frame_type::shutdown) == 6);
}

BOOST_AUTO_TEST_CASE(header_layout) {
  const bytes f = frame(proto::frame_type::task, 0x1122334455667788, text("xyz"));
  BOOST_TEST_REQUIRE(f.size() == proto::header_size + 3);
  BOOST_TEST(at(f, 0) == unsigned{'C'});
  BOOST_TEST(at(f, 1) == unsigned{'R'});
  BOOST_TEST(at(f, 2) == unsigned{'E'});
  BOOST_TEST(at(f, 3) == unsigned{'W'});
  BOOST_TEST(le(f, 0, 4) == proto::magic);
  BOOST_TEST(at(f, 4) == proto::version);
  BOOST_TEST(at(f, 5) == 2u);  // task
  BOOST_TEST(at(f, 6) == 0u);
  BOOST_TEST(at(f, 7) == 0u);
  const unsigned id_bytes[] = {0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11};
  for (std::size_t i = 0; i < 8; ++i)
    BOOST_TEST(at(f, 8 + i) == id_bytes[i]);
  BOOST_TEST(at(f, 16) == 3u);
  BOOST_TEST(at(f, 17) == 0u);
  BOOST_TEST(at(f, 18) == 0u);
  BOOST_TEST(at(f, 19) == 0u);
  BOOST_TEST(at(f, 20) == unsigned{'x'});
  BOOST_TEST(at(f, 22) == unsigned{'z'});

  const bytes big = frame(proto::frame_type::result, 0, pattern(0x010203, 0));
  BOOST_TEST(le(big, 16, 4) == 0x010203u);
  BOOST_TEST(big.size() == proto::header_size + 0x010203);
}

BOOST_AUTO_TEST_CASE(append_frame_appends) {
  bytes out = text("prefix");
  proto::append_frame(out, proto::frame_type::result, 9, text("p"));
  proto::append_frame(out, proto::frame_type::shutdown, 10, {});
  BOOST_TEST_REQUIRE(out.size() == 6 + proto::header_size + 1 + proto::header_size);
  BOOST_TEST(at(out, 0) == unsigned{'p'});
  BOOST_TEST(at(out, 6) == unsigned{'C'});
  BOOST_TEST(at(out, 6 + 5) == 3u);
  BOOST_TEST(le(out, 6 + 8, 8) == 9u);
  BOOST_TEST(at(out, 6 + proto::header_size) == unsigned{'p'});
  const std::size_t second = 6 + proto::header_size + 1;
  BOOST_TEST(at(out, second + 5) == 6u);
  BOOST_TEST(le(out, second + 8, 8) == 10u);
  BOOST_TEST(le(out, second + 16, 4) == 0u);
}

BOOST_AUTO_TEST_CASE(header_round_trip_for_every_type) {
  for (const auto type : all_types) {
    for (const std::uint64_t id : {std::uint64_t{0}, std::uint64_t{1}, ~std::uint64_t{0}}) {
      for (const std::size_t len : {std::size_t{0}, std::size_t{1}, std::size_t{5000}}) {
        BOOST_TEST_CONTEXT("type " << static_cast<int>(type) << " id " << id << " len " << len) {
          const bytes f = frame(type, id, pattern(len, 3));
          BOOST_TEST_REQUIRE(f.size() == proto::header_size + len);
          BOOST_TEST(at(f, 5) == static_cast<unsigned>(type));
          proto::frame_header h;
          const auto ec = proto::parse_header(f.data(), proto::default_max_payload, h);
          BOOST_TEST(!ec);
          BOOST_TEST(h.type == type);
          BOOST_TEST(h.flags == 0u);
          BOOST_TEST(h.task_id == id);
          BOOST_TEST(h.length == len);
        }
      }
    }
  }
}

BOOST_AUTO_TEST_CASE(parse_header_rejects_bad_headers) {
  const bytes good = frame(proto::frame_type::result, 7, pattern(10, 0));
  const auto parse = [](const bytes& f, std::size_t max = proto::default_max_payload) {
    proto::frame_header h;
    return proto::parse_header(f.data(), max, h);
  };
  BOOST_TEST(!parse(good));

  for (std::size_t i = 0; i < 4; ++i) {
    bytes f = good;
    f[i] ^= std::byte{0x20};  // "crew" is not "CREW"
    BOOST_TEST(parse(f) == crew::errc::protocol_error, "magic byte " << i);
  }
  for (const unsigned v : {0u, 2u, 0xffu}) {
    bytes f = good;
    f[4] = static_cast<std::byte>(v);
    BOOST_TEST(parse(f) == crew::errc::protocol_error, "version " << v);
  }
  for (const unsigned t : {0u, 11u, 0x80u, 0xffu}) {
    bytes f = good;
    f[5] = static_cast<std::byte>(t);
    BOOST_TEST(parse(f) == crew::errc::protocol_error, "type " << t);
  }
  for (const std::uint64_t flags : {2u, 3u, 4u, 0x100u, 0x8000u, 0xffffu}) {
    bytes f = good;
    put_le(f, 6, 2, flags);
    BOOST_TEST(parse(f) == crew::errc::protocol_error, "flags " << flags);
  }
  {
    // flag_batch says what a worker accepts: on its hello, and nowhere else.
    bytes f = frame(proto::frame_type::hello, 0, {});
    put_le(f, 6, 2, proto::flag_batch | proto::flag_shm);
    BOOST_TEST(!parse(f));
    // flag_heartbeat likewise: a hello may carry it, no other frame.
    put_le(f, 6, 2, proto::flag_heartbeat | proto::flag_batch);
    BOOST_TEST(!parse(f));
    bytes ping = frame(proto::frame_type::ping, 7, {});
    BOOST_TEST(!parse(ping));
    put_le(ping, 6, 2, proto::flag_heartbeat);
    BOOST_TEST(parse(ping) == crew::errc::protocol_error);
  }
  {
    bytes f = good;  // flag_shm is the one flag version 1 knows
    put_le(f, 6, 2, proto::flag_shm);
    BOOST_TEST(!parse(f));
  }
  // The length limit: equal is fine, one more is too large.
  BOOST_TEST(!parse(good, 10));
  BOOST_TEST(parse(good, 9) == crew::errc::payload_too_large);
  BOOST_TEST(parse(good, 0) == crew::errc::payload_too_large);
  bytes huge = good;
  put_le(huge, 16, 4, 0xffffffff);
  BOOST_TEST(parse(huge) == crew::errc::payload_too_large);
  BOOST_TEST(!parse(huge, 0xffffffff));
}

// ---------------------------------------------------------------------------------------
// frame_reader

BOOST_AUTO_TEST_CASE(reader_one_byte_at_a_time) {
  const auto frames = sample_frames();
  const bytes stream = stream_of(frames);
  proto::frame_reader r;
  std::vector<received> got;
  boost::system::error_code ec;
  for (std::size_t i = 0; i < stream.size(); ++i) {
    feed(r, stream.data() + i, 1);
    auto more = drain(r, ec);
    if (ec) BOOST_FAIL("byte " << i << ": " << ec.message());
    got.insert(got.end(), more.begin(), more.end());
  }
  check_frames(got, frames);
  BOOST_TEST(!r.mid_frame());
  proto::frame_view v;
  BOOST_TEST(!r.next(v, ec));
  BOOST_TEST(!ec);
}

BOOST_AUTO_TEST_CASE(reader_mid_frame_tracks_partial_input) {
  const bytes f = frame(proto::frame_type::result, 3, text("abc"));
  proto::frame_reader r;
  BOOST_TEST(!r.mid_frame());
  boost::system::error_code ec;
  for (std::size_t i = 0; i + 1 < f.size(); ++i) {
    feed(r, f.data() + i, 1);
    proto::frame_view v;
    BOOST_TEST(!r.next(v, ec), "byte " << i);
    BOOST_TEST(!ec);
    BOOST_TEST(r.mid_frame(), "byte " << i);
  }
  feed(r, f.data() + f.size() - 1, 1);
  const auto got = drain(r, ec);
  BOOST_TEST(!ec);
  BOOST_TEST_REQUIRE(got.size() == 1u);
  BOOST_TEST((got[0].payload == text("abc")));
  BOOST_TEST(!r.mid_frame());
}

BOOST_AUTO_TEST_CASE(reader_many_frames_in_one_chunk) {
  const auto frames = sample_frames();
  const bytes stream = stream_of(frames);
  proto::frame_reader r;
  feed(r, stream.data(), stream.size());
  boost::system::error_code ec;
  check_frames(drain(r, ec), frames);
  BOOST_TEST(!ec);
  BOOST_TEST(!r.mid_frame());
}

BOOST_AUTO_TEST_CASE(reader_random_chunks) {
  const auto frames = sample_frames();
  bytes stream;
  for (int rep = 0; rep < 3; ++rep) {
    const bytes s = stream_of(frames);
    stream.insert(stream.end(), s.begin(), s.end());
  }
  std::vector<sent> want;
  for (int rep = 0; rep < 3; ++rep)
    want.insert(want.end(), frames.begin(), frames.end());

  std::mt19937 rng(12345);
  for (int trial = 0; trial < 20; ++trial) {
    proto::frame_reader r;
    std::vector<received> got;
    boost::system::error_code ec;
    std::size_t pos = 0;
    while (pos < stream.size()) {
      // Mostly small chunks, sometimes large ones; prepare is asked for a varying amount.
      const std::size_t n = std::min<std::size_t>(stream.size() - pos,
                                                  rng() % 8 == 0 ? rng() % 100000 : 1 + rng() % 50);
      const auto space = r.prepare(n + rng() % 3);
      if (space.size() < n) BOOST_FAIL("prepare gave too little space");
      std::memcpy(space.data(), stream.data() + pos, n);
      r.commit(n);
      pos += n;
      auto more = drain(r, ec);
      if (ec) BOOST_FAIL("trial " << trial << " at " << pos << ": " << ec.message());
      got.insert(got.end(), more.begin(), more.end());
    }
    check_frames(got, want);
    BOOST_TEST(!r.mid_frame());
  }
}

BOOST_AUTO_TEST_CASE(reader_partial_commit_of_prepared_space) {
  // prepare() may hand out more space than is filled: only committed bytes count.
  const bytes f = frame(proto::frame_type::task, 77, pattern(300, 4));
  proto::frame_reader r;
  auto space = r.prepare();
  BOOST_TEST_REQUIRE(space.size() >= 64u * 1024);
  std::memcpy(space.data(), f.data(), 25);
  r.commit(25);
  boost::system::error_code ec;
  BOOST_TEST(drain(r, ec).empty());
  BOOST_TEST(!ec);
  BOOST_TEST(r.mid_frame());
  space = r.prepare(1);
  // The header is known now: there is room for the whole frame's rest.
  BOOST_TEST_REQUIRE(space.size() >= f.size() - 25);
  std::memcpy(space.data(), f.data() + 25, f.size() - 25);
  r.commit(f.size() - 25);
  const auto got = drain(r, ec);
  BOOST_TEST(!ec);
  BOOST_TEST_REQUIRE(got.size() == 1u);
  BOOST_TEST(got[0].header.task_id == 77u);
  BOOST_TEST((got[0].payload == pattern(300, 4)));
}

BOOST_AUTO_TEST_CASE(reader_truncated_frame) {
  const bytes f = frame(proto::frame_type::result, 5, pattern(100, 2));
  for (const std::size_t len :
       {std::size_t{1}, std::size_t{19}, std::size_t{20}, std::size_t{119}}) {
    proto::frame_reader r;
    feed(r, f.data(), len);
    proto::frame_view v;
    boost::system::error_code ec;
    BOOST_TEST(!r.next(v, ec), "len " << len);
    BOOST_TEST(!ec);
    BOOST_TEST(r.mid_frame());
  }
  // A complete frame followed by part of the next one.
  bytes two = f;
  two.insert(two.end(), f.begin(), f.begin() + 30);
  proto::frame_reader r;
  feed(r, two.data(), two.size());
  boost::system::error_code ec;
  BOOST_TEST(drain(r, ec).size() == 1u);
  BOOST_TEST(!ec);
  BOOST_TEST(r.mid_frame());
}

BOOST_AUTO_TEST_CASE(reader_garbage_is_an_error) {
  {
    const bytes junk(40, std::byte{'X'});
    proto::frame_reader r;
    feed(r, junk.data(), junk.size());
    proto::frame_view v;
    boost::system::error_code ec;
    BOOST_TEST(!r.next(v, ec));
    BOOST_TEST(ec == crew::errc::protocol_error);
  }
  {
    // A valid frame, then a header with a bad type.
    bytes s = frame(proto::frame_type::result, 1, text("ok"));
    bytes bad = frame(proto::frame_type::result, 2, text("no"));
    bad[5] = std::byte{11};
    s.insert(s.end(), bad.begin(), bad.end());
    proto::frame_reader r;
    feed(r, s.data(), s.size());
    proto::frame_view v;
    boost::system::error_code ec;
    BOOST_TEST_REQUIRE(r.next(v, ec));
    BOOST_TEST(!ec);
    BOOST_TEST(v.header.task_id == 1u);
    BOOST_TEST(!r.next(v, ec));
    BOOST_TEST(ec == crew::errc::protocol_error);
  }
  {
    // Unknown flags.
    bytes s = frame(proto::frame_type::task, 1, text("ok"));
    s[7] = std::byte{1};
    proto::frame_reader r;
    feed(r, s.data(), s.size());
    proto::frame_view v;
    boost::system::error_code ec;
    BOOST_TEST(!r.next(v, ec));
    BOOST_TEST(ec == crew::errc::protocol_error);
  }
}

BOOST_AUTO_TEST_CASE(reader_rejects_oversized_payload_before_buffering_it) {
  proto::frame_reader r(1024);
  bytes header = frame(proto::frame_type::result, 1, {});
  put_le(header, 16, 4, 0xffffffff);
  feed(r, header.data(), header.size());
  proto::frame_view v;
  boost::system::error_code ec;
  BOOST_TEST(!r.next(v, ec));
  BOOST_TEST(ec == crew::errc::payload_too_large);
  // The buffer was not grown to what the header claims.
  BOOST_TEST(r.prepare(16).size() < std::size_t{1} << 20);

  proto::frame_reader r2(1024);
  put_le(header, 16, 4, 1025);
  feed(r2, header.data(), header.size());
  BOOST_TEST(r2.prepare(16).size() < std::size_t{1} << 20);
  BOOST_TEST(!r2.next(v, ec));
  BOOST_TEST(ec == crew::errc::payload_too_large);
}

BOOST_AUTO_TEST_CASE(reader_accepts_payload_at_the_limit) {
  proto::frame_reader r(1024);
  const bytes f = frame(proto::frame_type::result, 1, pattern(1024, 8));
  feed(r, f.data(), f.size());
  boost::system::error_code ec;
  const auto got = drain(r, ec);
  BOOST_TEST(!ec);
  BOOST_TEST_REQUIRE(got.size() == 1u);
  BOOST_TEST((got[0].payload == pattern(1024, 8)));
}

BOOST_AUTO_TEST_CASE(reader_empty_payloads) {
  proto::frame_reader r(0);
  bytes s = frame(proto::frame_type::shutdown, 1, {});
  const bytes second = frame(proto::frame_type::cancel, 2, {});
  s.insert(s.end(), second.begin(), second.end());
  feed(r, s.data(), s.size());
  boost::system::error_code ec;
  const auto got = drain(r, ec);
  BOOST_TEST(!ec);
  BOOST_TEST_REQUIRE(got.size() == 2u);
  BOOST_TEST(got[0].payload.empty());
  BOOST_TEST(got[1].header.type == proto::frame_type::cancel);
}

// Issue 14, finding 6: a 20-byte header announcing 256 MiB made prepare() zero-fill 256 MiB.
// The buffer now follows the bytes that arrive: at most as much again as is buffered.
BOOST_AUTO_TEST_CASE(reader_grows_with_the_bytes_that_arrive_not_with_the_header) {
  proto::frame_reader r;  // the default limit: 256 MiB
  bytes header = frame(proto::frame_type::result, 1, {});
  put_le(header, 16, 4, proto::default_max_payload);
  feed(r, header.data(), header.size());
  proto::frame_view v;
  boost::system::error_code ec;
  BOOST_TEST(!r.next(v, ec));
  BOOST_TEST(!ec);
  const auto space = r.prepare();
  BOOST_TEST(space.size() >= proto::frame_reader::reserve_ahead);
  BOOST_TEST(r.capacity() <= std::size_t{256} << 10, "capacity " << r.capacity());

  // A 4 MiB frame read 64 KiB at a time: the buffer doubles as it comes, never far ahead.
  const bytes payload = pattern(std::size_t{4} << 20, 3);
  const bytes f = frame(proto::frame_type::result, 2, payload);
  proto::frame_reader g;
  std::size_t fed = 0, reallocations = 0, last = 0;
  while (fed < f.size()) {
    const auto room = g.prepare();
    const std::size_t n = std::min({room.size(), f.size() - fed, std::size_t{64} << 10});
    std::memcpy(room.data(), f.data() + fed, n);
    g.commit(n);
    fed += n;
    if (g.capacity() != last) ++reallocations, last = g.capacity();
    BOOST_TEST(g.capacity() <= 4 * std::max(fed, proto::frame_reader::reserve_ahead),
               "capacity " << g.capacity() << " with " << fed << " bytes read");
    if (fed < f.size()) BOOST_TEST(!g.next(v, ec));
  }
  BOOST_TEST(reallocations <= 12u);  // doubling: a few, not one per read
  BOOST_TEST_REQUIRE(g.next(v, ec));
  BOOST_TEST((bytes(v.payload.begin(), v.payload.end()) == payload));
}

// The buffer a large frame grew is given back once that frame is consumed.
BOOST_AUTO_TEST_CASE(reader_shrinks_after_a_large_frame) {
  proto::frame_reader r;
  const bytes payload = pattern(std::size_t{4} << 20, 4);
  bytes s = frame(proto::frame_type::result, 1, payload);
  const bytes small = frame(proto::frame_type::result, 2, pattern(100, 5));
  s.insert(s.end(), small.begin(), small.end());
  feed(r, s.data(), s.size() - 50);  // the large frame and half of the small one
  BOOST_TEST(r.capacity() >= payload.size());
  proto::frame_view v;
  boost::system::error_code ec;
  BOOST_TEST_REQUIRE(r.next(v, ec));
  BOOST_TEST((bytes(v.payload.begin(), v.payload.end()) == payload));  // valid until prepare
  BOOST_TEST(!r.next(v, ec));
  feed(r, s.data() + s.size() - 50, 50);  // prepare() compacts and shrinks
  BOOST_TEST(r.capacity() <= std::size_t{256} << 10, "capacity " << r.capacity());
  BOOST_TEST_REQUIRE(r.next(v, ec));
  BOOST_TEST(v.header.task_id == 2u);
  BOOST_TEST((bytes(v.payload.begin(), v.payload.end()) == pattern(100, 5)));
  // And with nothing left over.
  feed(r, s.data(), s.size());
  BOOST_TEST_REQUIRE(r.next(v, ec));
  BOOST_TEST_REQUIRE(r.next(v, ec));
  BOOST_TEST(!r.mid_frame());
  (void)r.prepare();
  BOOST_TEST(r.capacity() <= std::size_t{256} << 10, "capacity " << r.capacity());
}

// ---------------------------------------------------------------------------------------
// Payloads

BOOST_AUTO_TEST_CASE(hello_round_trip) {
  proto::hello h;
  h.pid = 123456;
  h.jobs = {{"long_comp", "f64(i32)"}, {"", ""}, {"x", std::string(300, 's')}};
  const bytes b = proto::encode_hello(h);
  const proto::hello out = proto::decode_hello(b);
  BOOST_TEST(out.pid == 123456u);
  BOOST_TEST_REQUIRE(out.jobs.size() == 3u);
  for (std::size_t i = 0; i < 3; ++i)
    BOOST_TEST((out.jobs[i] == h.jobs[i]));

  const proto::hello empty = proto::decode_hello(proto::encode_hello(proto::hello{}));
  BOOST_TEST(empty.pid == 0u);
  BOOST_TEST(empty.jobs.empty());
}

BOOST_AUTO_TEST_CASE(hello_layout) {
  proto::hello h;
  h.pid = 0x01020304;
  h.jobs = {{"a", "b"}};
  const bytes b = proto::encode_hello(h);
  BOOST_TEST_REQUIRE(b.size() == 4u + 4 + 8 + 1 + 8 + 1);
  BOOST_TEST(le(b, 0, 4) == 0x01020304u);
  BOOST_TEST(le(b, 4, 4) == 1u);
  BOOST_TEST(le(b, 8, 8) == 1u);
  BOOST_TEST(at(b, 16) == unsigned{'a'});
  BOOST_TEST(le(b, 17, 8) == 1u);
  BOOST_TEST(at(b, 25) == unsigned{'b'});
}

BOOST_AUTO_TEST_CASE(hello_rejects_malformed) {
  proto::hello h;
  h.pid = 99;
  h.jobs = {{"one", "i32()"}, {"two", "void(str)"}};
  const bytes good = proto::encode_hello(h);
  for (std::size_t len = 0; len < good.size(); ++len) {
    const bytes prefix(good.begin(), good.begin() + static_cast<std::ptrdiff_t>(len));
    BOOST_TEST(throws_decode_error([&] { (void)proto::decode_hello(prefix); }), "prefix " << len);
  }
  bytes trailing = good;
  trailing.push_back(std::byte{0});
  BOOST_TEST(throws_decode_error([&] { (void)proto::decode_hello(trailing); }));

  // Job counts the remaining bytes cannot hold.
  for (const std::uint64_t n : {std::uint64_t{3}, std::uint64_t{1000}, std::uint64_t{0xffffffff}}) {
    bytes b = good;
    put_le(b, 4, 4, n);
    BOOST_TEST(throws_decode_error([&] { (void)proto::decode_hello(b); }), "count " << n);
  }
  bytes fewer = good;
  put_le(fewer, 4, 4, 1);  // one job then trailing bytes
  BOOST_TEST(throws_decode_error([&] { (void)proto::decode_hello(fewer); }));
}

// Issue 14, finding 3: a hello has its own limits, far below max_payload, checked before
// anything is allocated; each refusal names its limit.
BOOST_AUTO_TEST_CASE(hello_limits_are_checked_and_named) {
  auto message_of = [](const bytes& b) -> std::string {
    try {
      (void)proto::decode_hello(b);
    } catch (const crew::decode_error& e) {
      return e.message();
    }
    return "accepted";
  };
  auto hello_of = [](std::size_t jobs, std::size_t name, std::size_t signature) {
    proto::hello h;
    h.pid = 7;
    for (std::size_t i = 0; i < jobs; ++i)
      h.jobs.push_back({std::string(name, 'n'), std::string(signature, 's')});
    return proto::encode_hello(h);
  };
  // At the limits.
  BOOST_TEST(proto::decode_hello(hello_of(proto::max_hello_jobs, 8, 8)).jobs.size() ==
             proto::max_hello_jobs);
  const auto wide =
      proto::decode_hello(hello_of(1, proto::max_hello_job_name, proto::max_hello_signature));
  BOOST_TEST(wide.jobs.at(0).name.size() == proto::max_hello_job_name);
  BOOST_TEST(wide.jobs.at(0).signature.size() == proto::max_hello_signature);
  // One over each.
  BOOST_TEST(message_of(hello_of(proto::max_hello_jobs + 1, 1, 1)) ==
             "a hello listing 10001 jobs, more than the limit of 10000 (max_hello_jobs)");
  BOOST_TEST(message_of(hello_of(1, proto::max_hello_job_name + 1, 1)) ==
             "a job name of 1025 bytes, more than the limit of 1024 (max_hello_job_name)");
  BOOST_TEST(message_of(hello_of(1, 1, proto::max_hello_signature + 1)) ==
             "a job signature of 4097 bytes, more than the limit of 4096 (max_hello_signature)");
  bytes big = hello_of(1, 1, 1);
  big.resize(proto::max_hello_payload + 1);
  BOOST_TEST(message_of(big) ==
             "a hello of 1048577 bytes, more than the limit of 1048576 (max_hello_payload)");
  // A name's length is checked before its bytes are: a huge claim is refused as too long.
  bytes claim = hello_of(1, 1, 1);
  put_le(claim, 8, 8, std::uint64_t{1} << 40);
  BOOST_TEST(message_of(claim).find("(max_hello_job_name)") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(a_frame_written_in_place_equals_one_appended_whole) {
  const bytes args = crew::encode_values(3.5, std::string("arg"));
  bytes out = text("before");
  std::byte* at = proto::append_frame_for(out, proto::frame_type::task, 0xabcdef, 4 + args.size());
  BOOST_TEST_REQUIRE(out.size() == 6 + proto::header_size + 4 + args.size());
  BOOST_TEST(at == out.data() + 6 + proto::header_size);
  const std::uint32_t index = 7;
  std::memcpy(at, &index, 4);
  std::memcpy(at + 4, args.data(), args.size());

  // Read it back with a frame_reader, skipping what came before.
  proto::frame_reader r;
  feed(r, out.data() + 6, out.size() - 6);
  boost::system::error_code ec;
  const auto got = drain(r, ec);
  BOOST_TEST(!ec);
  BOOST_TEST_REQUIRE(got.size() == 1u);
  BOOST_TEST(got[0].header.type == proto::frame_type::task);
  BOOST_TEST(got[0].header.task_id == 0xabcdefu);
  BOOST_TEST(got[0].header.length == 4 + args.size());
  crew::decoder d(got[0].payload);
  BOOST_TEST(d.get<std::uint32_t>() == 7u);
  BOOST_TEST(d.get<double>() == 3.5);
  BOOST_TEST(d.get<std::string>() == "arg");
  d.expect_end();

  // The same bytes as append_frame with the whole payload.
  bytes expected = text("before");
  proto::append_frame(expected, proto::frame_type::task, 0xabcdef, got[0].payload);
  BOOST_TEST((out == expected));
}

BOOST_AUTO_TEST_CASE(a_payload_too_large_for_a_32_bit_length_is_refused) {
  bytes out;
  BOOST_CHECK_THROW(
      proto::append_frame_for(out, proto::frame_type::result, 1, std::size_t{1} << 32),
      crew::capacity_exceeded);
  BOOST_TEST(out.empty());  // refused before anything was appended
  proto::append_frame_for(out, proto::frame_type::result, 1, 0);
  BOOST_TEST(out.size() == proto::header_size);
  BOOST_TEST(le(out, 16, 4) == 0u);
}

BOOST_AUTO_TEST_CASE(error_payload_round_trip) {
  for (int v = static_cast<int>(crew::errc::job_failed);
       v <= static_cast<int>(crew::errc::cancelled); ++v) {
    const auto code = static_cast<crew::errc>(v);
    BOOST_TEST_CONTEXT(crew::to_string(code)) {
      const proto::error_payload e{code, std::string("message for ") + crew::to_string(code)};
      const bytes b = proto::encode_error(e);
      BOOST_TEST(le(b, 0, 4) == static_cast<std::uint64_t>(v));
      const auto out = proto::decode_error_payload(b);
      BOOST_TEST(out.code == code);
      BOOST_TEST(out.message == e.message);
    }
  }
  const auto empty = proto::decode_error_payload(proto::encode_error({crew::errc::cancelled, ""}));
  BOOST_TEST(empty.message.empty());
}

BOOST_AUTO_TEST_CASE(error_payload_rejects_malformed) {
  const auto with_code = [](std::uint32_t code) {
    return crew::encode_values(code, std::string("m"));
  };
  for (const std::uint32_t code :
       {0u, static_cast<std::uint32_t>(crew::errc::cancelled) + 1, 100u, 0xffffffffu}) {
    const bytes b = with_code(code);
    BOOST_TEST(throws_decode_error([&] { (void)proto::decode_error_payload(b); }), "code " << code);
  }
  const bytes good = proto::encode_error({crew::errc::worker_crashed, "signal 9"});
  for (std::size_t len = 0; len < good.size(); ++len) {
    const bytes prefix(good.begin(), good.begin() + static_cast<std::ptrdiff_t>(len));
    BOOST_TEST(throws_decode_error([&] { (void)proto::decode_error_payload(prefix); }),
               "prefix " << len);
  }
  bytes trailing = good;
  trailing.push_back(std::byte{0});
  BOOST_TEST(throws_decode_error([&] { (void)proto::decode_error_payload(trailing); }));
}

// ---------------------------------------------------------------------------------------
// batches

bytes batch_of(const std::vector<bytes>& items) {
  bytes out(4);
  put_le(out, 0, 4, items.size());
  for (const auto& i : items) {
    std::byte* to = proto::append_batch_arg(out, i.size());
    if (!i.empty()) std::memcpy(to, i.data(), i.size());
  }
  return out;
}

BOOST_AUTO_TEST_CASE(batch_items_round_trip_and_lay_out_as_documented) {
  const std::vector<bytes> items{text("ab"), {}, pattern(300, 3)};
  const bytes b = batch_of(items);
  BOOST_TEST(b.size() == 4u + (4 + 2) + 4 + (4 + 300));
  BOOST_TEST(le(b, 0, 4) == 3u);
  BOOST_TEST(le(b, 4, 4) == 2u);
  BOOST_TEST(le(b, 10, 4) == 0u);
  proto::batch_reader r(b);
  BOOST_TEST_REQUIRE(r.count() == 3u);
  for (const auto& want : items) {
    const auto got = r.next();
    BOOST_TEST((bytes(got.begin(), got.end()) == want));
  }
  r.expect_end();
}

BOOST_AUTO_TEST_CASE(batch_reader_rejects_malformed_batches) {
  const bytes good = batch_of({text("abc"), text("de")});
  // Every truncation fails somewhere: at the count, at an item, or at the end.
  for (std::size_t len = 0; len < good.size(); ++len) {
    const bytes prefix(good.begin(), good.begin() + static_cast<std::ptrdiff_t>(len));
    BOOST_TEST(throws_decode_error([&] {
                 proto::batch_reader r(prefix);
                 for (std::uint32_t i = 0; i < r.count(); ++i)
                   (void)r.next();
                 r.expect_end();
               }),
               "prefix " << len);
  }
  bytes trailing = good;
  trailing.push_back(std::byte{0});
  BOOST_TEST(throws_decode_error([&] {
    proto::batch_reader r(trailing);
    (void)r.next();
    (void)r.next();
    r.expect_end();
  }));
  // A count that could not fit is refused before anything else: nothing is reserved for it.
  bytes huge(8);
  put_le(huge, 0, 4, 0xffffffff);
  BOOST_TEST(throws_decode_error([&] { proto::batch_reader r(huge); }));
  bytes long_item = good;
  put_le(long_item, 4, 4, 0xfffffff0);
  BOOST_TEST(throws_decode_error([&] {
    proto::batch_reader r(long_item);
    (void)r.next();
  }));
}

BOOST_AUTO_TEST_CASE(batch_results_are_checked_item_by_item) {
  bytes b(4);
  put_le(b, 0, 4, 2);
  const bytes value = text("xyz");
  std::memcpy(proto::append_batch_item(b, value.size(), proto::frame_type::result), value.data(),
              value.size());
  const bytes err = proto::encode_error({crew::errc::job_failed, "no"});
  std::memcpy(proto::append_batch_item(b, err.size(), proto::frame_type::error), err.data(),
              err.size());
  BOOST_TEST(le(b, 4, 1) == 3u);  // kind, then the length
  BOOST_TEST(le(b, 5, 4) == 3u);
  proto::check_batch_result(b, 2);
  proto::batch_result_reader r(b, 2);
  BOOST_TEST((r.next().kind == proto::frame_type::result));
  const auto e = r.next();
  BOOST_TEST((e.kind == proto::frame_type::error));
  BOOST_TEST(proto::decode_error_payload(e.bytes).message == "no");
  r.expect_end();

  BOOST_TEST(throws_decode_error([&] { proto::check_batch_result(b, 3); }));  // count differs
  BOOST_TEST(throws_decode_error([&] { proto::check_batch_result(b, 1); }));
  for (std::size_t len = 0; len < b.size(); ++len) {
    const bytes prefix(b.begin(), b.begin() + static_cast<std::ptrdiff_t>(len));
    BOOST_TEST(throws_decode_error([&] { proto::check_batch_result(prefix, 2); }),
               "prefix " << len);
  }
  bytes bad_kind = b;
  bad_kind[4] = std::byte{5};  // cancel is no outcome
  BOOST_TEST(throws_decode_error([&] { proto::check_batch_result(bad_kind, 2); }));
  bytes bad_error = b;
  put_le(bad_error, 4 + 5 + 3 + 5, 4, 999);  // the error item's code
  BOOST_TEST(throws_decode_error([&] { proto::check_batch_result(bad_error, 2); }));
}

// The builders write exactly the layout written by hand above, which the readers read.
BOOST_AUTO_TEST_CASE(batch_builders_write_what_the_readers_read) {
  const std::vector<bytes> items{text("ab"), {}, pattern(300, 3)};
  proto::batch_builder b;
  BOOST_TEST(b.count() == 0u);
  BOOST_TEST(b.size() == 4u);  // the count, even before the first item
  b.reserve(1000);
  b.add(items[0]);
  (void)b.add(items[1].size());
  std::byte* to = b.add(items[2].size());
  std::memcpy(to, items[2].data(), items[2].size());
  BOOST_TEST(b.count() == 3u);
  BOOST_TEST(b.size() == batch_of(items).size());
  const bytes batch = b.finish();
  BOOST_TEST((batch == batch_of(items)));
  proto::batch_reader r(batch);
  BOOST_TEST(r.count() == 3u);
  // Finished, the builder starts over; with no item, a batch is its zero count.
  BOOST_TEST(b.count() == 0u);
  b.add(items[0]);
  BOOST_TEST((b.finish() == batch_of({items[0]})));
  BOOST_TEST((b.finish() == bytes(4)));

  bytes by_hand(4);
  put_le(by_hand, 0, 4, 2);
  const bytes value = text("xyz");
  std::memcpy(proto::append_batch_item(by_hand, value.size(), proto::frame_type::result),
              value.data(), value.size());
  const bytes err = proto::encode_error({crew::errc::job_failed, "no"});
  std::memcpy(proto::append_batch_item(by_hand, err.size(), proto::frame_type::error), err.data(),
              err.size());
  proto::batch_result_builder results;
  results.reserve(64);
  results.add(proto::frame_type::result, value);
  to = results.add(proto::frame_type::error, err.size());
  std::memcpy(to, err.data(), err.size());
  BOOST_TEST(results.count() == 2u);
  const bytes payload = results.finish();
  BOOST_TEST((payload == by_hand));
  proto::check_batch_result(payload, 2);
  BOOST_TEST((results.finish() == bytes(4)));
  proto::check_batch_result(bytes(4), 0);
  // Only a result or an error is an outcome.
  BOOST_CHECK_THROW((void)results.add(proto::frame_type::cancel, 0), std::invalid_argument);
  BOOST_TEST(results.count() == 0u);
}

// An unknown code is a decode_error (as documented), whose text says what happened and not
// what the decode_error code means ("bytes did not decode as the declared type").
BOOST_AUTO_TEST_CASE(an_unknown_error_code_is_named_without_another_errors_text) {
  const bytes b = crew::encode_values(std::uint32_t{13}, std::string("m"));
  try {
    (void)proto::decode_error_payload(b);
    BOOST_FAIL("code 13 must be refused");
  } catch (const crew::decode_error& e) {
    BOOST_TEST(e.code() == crew::errc::decode_error);
    BOOST_TEST(e.message() == "error frame carries unknown code 13");
    BOOST_TEST(std::string(e.what()) == "error frame carries unknown code 13");
  }
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_CASE(shm_descriptors_are_checked_before_use) {
  auto encoded = [](std::uint64_t off, std::uint64_t len, std::uint64_t gen) {
    bytes b;
    proto::append_descriptor(b, {off, len, gen});
    return b;
  };
  proto::shm_descriptor d;
  const std::size_t area = 4096;
  BOOST_TEST(!proto::check_descriptor(encoded(0, 4096, 7), area, 7, d));
  BOOST_TEST(d.offset == 0u);
  BOOST_TEST(d.length == 4096u);
  BOOST_TEST(!proto::check_descriptor(encoded(4096, 0, 7), area, 7, d));  // empty, at the end
  BOOST_TEST(!proto::check_descriptor(encoded(100, 3996, 7), area, 7, d));
  const std::uint64_t max = std::numeric_limits<std::uint64_t>::max();
  struct bad_case {
    std::uint64_t off, len, gen;
    const char* why;
  };
  for (const auto& c :
       {bad_case{0, 4097, 7, "one byte past the end"}, bad_case{4097, 0, 7, "offset past the end"},
        bad_case{100, 3997, 7, "ends past the end"},
        bad_case{1, max, 7, "offset + length wraps around"},
        bad_case{max, 2, 7, "offset near 2^64"}, bad_case{0, 16, 6, "stale generation"},
        bad_case{0, 16, 8, "future generation"}}) {
    BOOST_TEST(proto::check_descriptor(encoded(c.off, c.len, c.gen), area, 7, d) ==
                   crew::errc::protocol_error,
               c.why);
  }
  bytes short_payload = encoded(0, 1, 7);
  short_payload.pop_back();
  BOOST_TEST(proto::check_descriptor(short_payload, area, 7, d) == crew::errc::protocol_error);
  bytes long_payload = encoded(0, 1, 7);
  long_payload.push_back(std::byte{0});
  BOOST_TEST(proto::check_descriptor(long_payload, area, 7, d) == crew::errc::protocol_error);
}

BOOST_AUTO_TEST_CASE(shm_header_round_trips_and_rejects_areas_outside_the_files) {
  std::vector<std::byte> page(proto::shm_header::size);
  const std::size_t request_file = 2 * 4096, response_file = 4096;
  const proto::shm_header h{4096, 4096, 0, 4096};
  proto::write_shm_header(page.data(), h);
  BOOST_TEST(std::memcmp(page.data(), "CRSH", 4) == 0);
  proto::shm_header got;
  BOOST_TEST(!proto::read_shm_header(page.data(), request_file, response_file, got));
  BOOST_TEST(got.request_offset == 4096u);
  BOOST_TEST(got.response_size == 4096u);
  // The same header with files one byte too small.
  BOOST_TEST(proto::read_shm_header(page.data(), request_file - 1, response_file, got) ==
             crew::errc::protocol_error);
  BOOST_TEST(proto::read_shm_header(page.data(), request_file, response_file - 1, got) ==
             crew::errc::protocol_error);
  // A request area over the header, sizes that would wrap, a wrong magic.
  proto::write_shm_header(page.data(), {0, 4096, 0, 4096});
  BOOST_TEST(proto::read_shm_header(page.data(), request_file, response_file, got) ==
             crew::errc::protocol_error);
  proto::write_shm_header(page.data(), {4096, ~std::uint64_t{0}, 0, 4096});
  BOOST_TEST(proto::read_shm_header(page.data(), request_file, response_file, got) ==
             crew::errc::protocol_error);
  proto::write_shm_header(page.data(), {4096, 4096, ~std::uint64_t{0}, 2});
  BOOST_TEST(proto::read_shm_header(page.data(), request_file, response_file, got) ==
             crew::errc::protocol_error);
  proto::write_shm_header(page.data(), h);
  page[0] = std::byte{'X'};
  BOOST_TEST(proto::read_shm_header(page.data(), request_file, response_file, got) ==
             crew::errc::protocol_error);
}
