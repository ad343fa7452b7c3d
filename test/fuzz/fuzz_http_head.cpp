// libFuzzer target for the HTTP head parser (README "Protocol rules").
//
// Properties checked on every input:
//  - no crash, no over-read: each buffer handed to parse_request is its own exact-size heap copy,
//    so ASan sees any byte read past `len`;
//  - stateless re-parse: the server re-runs parse_request on a growing buffer and acts on the
//    first answer that is not Incomplete. So for every prefix, a Complete or Error answer must be
//    exactly the answer for the whole input (same head length / same HTTP status);
//  - every view (method, target, path, host, header names and values) lies inside the head;
//  - a /files/NAME path that decodes to a valid name never names anything outside the store.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>

#include "duet/http/http_fields.hpp"
#include "duet/http/http_parser.hpp"
#include "duet/store/names.hpp"

using namespace duet;

namespace {

[[noreturn]] void fail(const char* what) {
    std::fprintf(stderr, "fuzz_http_head: property violated: %s\n", what);
    std::abort();
}

#define CHECK(cond)               \
    do {                          \
        if (!(cond)) fail(#cond); \
    } while (0)

void check_inside(std::string_view v, const char* lo, const char* hi) {
    if (v.empty()) return;
    CHECK(v.data() >= lo && v.data() + v.size() <= hi);
}

void check_request(const Request& req, const ParseResult& r, const char* buf, std::size_t len) {
    if (r.status == ParseStatus::Error) {
        CHECK(r.http_status == 400 || r.http_status == 414 || r.http_status == 431 ||
              r.http_status == 501 || r.http_status == 505);
        CHECK(r.message != nullptr && r.message[0] != '\0');
        return;
    }
    if (r.status != ParseStatus::Complete) return;
    CHECK(r.head_length > 0 && r.head_length <= len);
    // The head ends with an empty line.
    CHECK(buf[r.head_length - 1] == '\n');
    const char* end = buf + r.head_length;
    CHECK(!req.method.empty() && !req.target.empty() && !req.path.empty());
    check_inside(req.method, buf, end);
    check_inside(req.target, buf, end);
    // Known exception (parser, split_target): an absolute-form target without a path
    // ("http://host", "http://host?q") gets the static "/" as its path: not in the buffer, but
    // static and never dangling. Every other view must be inside the head.
    if (!(req.path == "/" && req.target[0] != '/')) check_inside(req.path, buf, end);
    check_inside(req.host, buf, end);
    CHECK(req.header_count <= kMaxHeaders);
    CHECK(req.minor == 0 || req.minor == 1);
    for (std::size_t i = 0; i < req.header_count; ++i) {
        check_inside(req.headers[i].name, buf, end);
        check_inside(req.headers[i].value, buf, end);
        CHECK(!req.headers[i].name.empty());
        for (char c : req.headers[i].value) CHECK(c != '\r' && c != '\n' && c != '\0');
    }
    for (char c : req.target) CHECK(c > 0x20 && c < 0x7f);
    if (req.body == BodyKind::Length) CHECK(req.content_length > 0);
    if (req.body == BodyKind::Chunked) {
        // Chunked framing never goes together with a Content-Length (CL.TE / TE.CL smuggling).
        CHECK(req.find("content-length") == nullptr);
    }
    if (req.minor == 1) CHECK(req.find("host") != nullptr);

    // Names that pass validation stay inside the store directory.
    std::string_view p = req.path;
    if (p.substr(0, 7) == "/files/") {
        std::string name;
        if (percent_decode(p.substr(7), name) && valid_name(name)) {
            CHECK(!name.empty() && name.size() <= 255);
            CHECK(name[0] != '.');
            CHECK(name.find('/') == std::string::npos);
            CHECK(name.find('\0') == std::string::npos);
        }
    }
}

ParseResult parse_copy(const std::uint8_t* data, std::size_t len, Request& req,
                       std::unique_ptr<char[]>& keep) {
    // new char[0] is a valid, unreadable allocation: an over-read still shows up.
    keep.reset(new char[len ? len : 1]);
    if (len) std::memcpy(keep.get(), data, len);
    ParseResult r = parse_request(keep.get(), len, req);
    check_request(req, r, keep.get(), len);
    return r;
}

bool same(const ParseResult& a, const ParseResult& b) {
    if (a.status != b.status) return false;
    if (a.status == ParseStatus::Complete) return a.head_length == b.head_length;
    if (a.status == ParseStatus::Error) return a.http_status == b.http_status;
    return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static Request whole_req, part_req;  // large (100 headers): keep them off the stack
    std::unique_ptr<char[]> whole_buf, part_buf;
    ParseResult whole = parse_copy(data, size, whole_req, whole_buf);
    if (size == 0) return 0;

    // Split points derived from the input itself, so seeds stay real requests.
    std::uint32_t seed = 2166136261u;
    for (std::size_t i = 0; i < size && i < 8; ++i) seed = (seed ^ data[i]) * 16777619u;
    seed ^= std::uint32_t(size);
    std::size_t splits[6];
    splits[0] = seed % (size + 1);
    for (int i = 1; i < 6; ++i) {
        seed = seed * 1103515245u + 12345u;
        splits[i] = (seed >> 8) % (size + 1);
    }
    for (std::size_t cut : splits) {
        ParseResult part = parse_copy(data, cut, part_req, part_buf);
        if (part.status == ParseStatus::Incomplete) continue;
        if (!same(part, whole)) {
            std::fprintf(stderr,
                         "prefix of %zu/%zu bytes: status %d http %d len %zu; whole: status %d "
                         "http %d len %zu\n",
                         cut, size, int(part.status), part.http_status, part.head_length,
                         int(whole.status), whole.http_status, whole.head_length);
            fail("a prefix answered differently from the whole input");
        }
    }
    // Growing by one byte around the end of the head (where most decisions are taken).
    if (whole.status == ParseStatus::Complete) {
        std::size_t from = whole.head_length > 4 ? whole.head_length - 4 : 0;
        for (std::size_t cut = from; cut < whole.head_length; ++cut) {
            ParseResult part = parse_copy(data, cut, part_req, part_buf);
            if (part.status != ParseStatus::Incomplete) {
                std::fprintf(stderr, "prefix of %zu bytes before head end %zu: status %d http %d\n",
                             cut, whole.head_length, int(part.status), part.http_status);
                fail("a prefix shorter than the head was not Incomplete");
            }
        }
    }
    return 0;
}
