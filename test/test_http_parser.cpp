// parse_request: tables of valid and hostile heads, each parsed whole, at every split point and
// right before an unreadable page, so the answer never depends on how the bytes arrived and no
// byte past the input is ever read.
#include <criterion/criterion.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "duet/http/http_parser.hpp"

using duet::BodyKind;
using duet::ParseResult;
using duet::ParseStatus;
using duet::Request;

namespace {

// Memory whose last readable byte is followed by a PROT_NONE page: a read past the input crashes.
class Guarded {
  public:
    explicit Guarded(std::size_t max) {
        page_ = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
        readable_ = (max + page_ - 1) / page_ * page_;
        if (readable_ == 0) readable_ = page_;
        void* p = mmap(nullptr, readable_ + page_, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        cr_assert(p != MAP_FAILED);
        base_ = static_cast<char*>(p);
        cr_assert_eq(mprotect(base_ + readable_, page_, PROT_NONE), 0);
    }
    ~Guarded() { munmap(base_, readable_ + page_); }
    Guarded(const Guarded&) = delete;
    Guarded& operator=(const Guarded&) = delete;

    // Copies `s` so that its last byte is the last readable one; returns where it starts.
    const char* place(std::string_view s) {
        char* at = base_ + readable_ - s.size();
        std::memcpy(at, s.data(), s.size());
        return at;
    }

  private:
    std::size_t page_ = 0, readable_ = 0;
    char* base_ = nullptr;
};

ParseResult parse_guarded(Guarded& g, std::string_view s, Request& req) {
    return duet::parse_request(g.place(s), s.size(), req);
}

const char* status_name(ParseStatus s) {
    switch (s) {
        case ParseStatus::Complete:
            return "Complete";
        case ParseStatus::Incomplete:
            return "Incomplete";
        case ParseStatus::Error:
            return "Error";
    }
    return "?";
}

// Every prefix must be Incomplete or give exactly the whole input's answer.
void check_every_split(const std::string& in, const ParseResult& whole, const char* name) {
    Guarded g(in.size());
    Request req;
    for (std::size_t k = 0; k < in.size(); ++k) {
        ParseResult r = parse_guarded(g, std::string_view(in).substr(0, k), req);
        if (r.status == ParseStatus::Incomplete) continue;
        cr_assert(r.status == whole.status && r.http_status == whole.http_status &&
                      r.head_length == whole.head_length,
                  "%s: prefix of %zu bytes gave %s %d, whole gave %s %d", name, k,
                  status_name(r.status), r.http_status, status_name(whole.status),
                  whole.http_status);
    }
}

struct Valid {
    const char* name;
    std::string input;
    std::string_view method = "GET";
    std::string_view path = "/";
    int minor = 1;
    bool keep_alive = true;
    BodyKind body = BodyKind::None;
    std::uint64_t content_length = 0;
    bool expect_continue = false;
    std::size_t head_length = 0;  // 0: the whole input
    std::string_view host = "a";
};

std::string repeat(std::string_view s, std::size_t n) {
    std::string out;
    for (std::size_t i = 0; i < n; ++i) out += s;
    return out;
}

std::string many_fields(std::size_t n) {
    std::string s = "GET / HTTP/1.1\r\nHost: a\r\n";
    for (std::size_t i = 1; i < n; ++i) s += "X-F" + std::to_string(i) + ": v\r\n";
    return s + "\r\n";
}

std::string long_target(std::size_t line_length) {
    // "GET " + target + " HTTP/1.1" is line_length bytes.
    return "GET /" + std::string(line_length - 14, 'a') + " HTTP/1.1\r\nHost: a\r\n\r\n";
}

std::vector<Valid> valid_cases() {
    return {
        {.name = "get with host", .input = "GET / HTTP/1.1\r\nHost: a\r\n\r\n"},
        {.name = "host with port",
         .input = "GET / HTTP/1.1\r\nHost: a.example:8080\r\n\r\n",
         .host = "a.example:8080"},
        {.name = "host ipv6 literal with port",
         .input = "GET / HTTP/1.1\r\nHost: [::1]:80\r\n\r\n",
         .host = "[::1]:80"},
        {.name = "host ipv4 and empty port",
         .input = "GET / HTTP/1.1\r\nHost: 127.0.0.1:\r\n\r\n",
         .host = "127.0.0.1:"},
        {.name = "host empty", .input = "GET / HTTP/1.1\r\nHost:\r\n\r\n", .host = ""},
        {.name = "content-length 2^63-1",
         .input = "PUT / HTTP/1.1\r\nHost: a\r\nContent-Length: 9223372036854775807\r\n\r\n",
         .method = "PUT",
         .body = BodyKind::Length,
         .content_length = 9223372036854775807ull},
        {.name = "content-length with leading zeros",
         .input = "PUT / HTTP/1.1\r\nHost: a\r\nContent-Length: 000000000000000000000005\r\n\r\n",
         .method = "PUT",
         .body = BodyKind::Length,
         .content_length = 5},
        {.name = "http/1.0 without host",
         .input = "GET /x HTTP/1.0\r\n\r\n",
         .path = "/x",
         .minor = 0,
         .keep_alive = false,
         .host = ""},
        {.name = "http/1.0 keep-alive",
         .input = "GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n",
         .minor = 0,
         .keep_alive = true,
         .host = ""},
        {.name = "http/1.0 keep-alive and close",
         .input = "GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n",
         .minor = 0,
         .keep_alive = false,
         .host = ""},
        {.name = "http/1.1 close",
         .input = "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
         .keep_alive = false},
        {.name = "http/1.1 close among tokens",
         .input = "GET / HTTP/1.1\r\nHost: a\r\nConnection: upgrade ,  CLOSE\r\n\r\n",
         .keep_alive = false},
        {.name = "http/1.1 keep-alive",
         .input = "GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive\r\n\r\n"},
        {.name = "content-length",
         .input = "PUT /files/a HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n",
         .method = "PUT",
         .path = "/files/a",
         .body = BodyKind::Length,
         .content_length = 5},
        {.name = "content-length zero",
         .input = "PUT /files/a HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n",
         .method = "PUT",
         .path = "/files/a"},
        {.name = "content-length leading zeros",
         .input = "PUT / HTTP/1.1\r\nHost: a\r\nContent-Length: 007\r\n\r\n",
         .method = "PUT",
         .body = BodyKind::Length,
         .content_length = 7},
        {.name = "content-length repeated with same value",
         .input = "PUT / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\ncontent-length: 3\r\n\r\n",
         .method = "PUT",
         .body = BodyKind::Length,
         .content_length = 3},
        {.name = "chunked",
         .input = "PUT / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n",
         .method = "PUT",
         .body = BodyKind::Chunked},
        {.name = "chunked any case",
         .input = "PUT / HTTP/1.1\r\nHost: a\r\ntransfer-encoding:  CHUNKED \r\n\r\n",
         .method = "PUT",
         .body = BodyKind::Chunked},
        {.name = "chunked in http/1.0 closes",
         .input = "PUT / HTTP/1.0\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n",
         .method = "PUT",
         .minor = 0,
         .keep_alive = false,
         .body = BodyKind::Chunked,
         .host = ""},
        {.name = "expect 100-continue",
         .input = "PUT / HTTP/1.1\r\nHost: a\r\nExpect: 100-Continue\r\nContent-Length: 1\r\n\r\n",
         .method = "PUT",
         .body = BodyKind::Length,
         .content_length = 1,
         .expect_continue = true},
        {.name = "expect 100-continue ignored in http/1.0",  // RFC 9110 §10.1.1
         .input = "PUT / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n",
         .method = "PUT",
         .minor = 0,
         .keep_alive = false,
         .body = BodyKind::Length,
         .content_length = 1,
         .host = ""},
        {.name = "absolute-form",
         .input = "GET http://example.com:8000/files/a?x=1 HTTP/1.1\r\nHost: a\r\n\r\n",
         .path = "/files/a"},
        {.name = "absolute-form without path",
         .input = "GET HTTP://example.com HTTP/1.1\r\nHost: a\r\n\r\n"},
        {.name = "absolute-form with query but no path",
         .input = "GET http://example.com?next=/files/x HTTP/1.1\r\nHost: a\r\n\r\n"},
        {.name = "options asterisk",
         .input = "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n",
         .method = "OPTIONS",
         .path = "*"},
        {.name = "query stripped",
         .input = "GET /files/a%20b?x=1&y=/z HTTP/1.1\r\nHost: a\r\n\r\n",
         .path = "/files/a%20b"},
        {.name = "bare lf", .input = "GET / HTTP/1.1\nHost: a\n\n"},
        {.name = "mixed line endings", .input = "GET / HTTP/1.1\nHost: a\r\n\n"},
        {.name = "leading empty lines", .input = "\r\n\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n"},
        {.name = "1 KiB of leading empty lines",
         .input = repeat("\r\n", 512) + "GET / HTTP/1.1\r\nHost: a\r\n\r\n"},
        {.name = "value whitespace trimmed", .input = "GET / HTTP/1.1\r\nHost:  \t a \t \r\n\r\n"},
        {.name = "empty header value", .input = "GET / HTTP/1.1\r\nHost: a\r\nX-Empty:\r\n\r\n"},
        {.name = "obs-text in value",
         .input = "GET / HTTP/1.1\r\nHost: a\r\nX-T: caf\xc3\xa9\r\n\r\n"},
        {.name = "pipelined bytes after the head",
         .input = "GET / HTTP/1.1\r\nHost: a\r\n\r\nGET /next HTTP/1.1\r\n",
         .head_length = 27},
        {.name = "100 header fields", .input = many_fields(100)},
        {.name = "request line of 8192 bytes",
         .input = long_target(8192),
         .path = std::string_view()},  // checked separately
    };
}

void check_valid(const Valid& v, const Request& req, const ParseResult& r) {
    cr_assert(r.status == ParseStatus::Complete, "%s: got %s %d (%s)", v.name,
              status_name(r.status), r.http_status, r.message);
    std::size_t head = v.head_length ? v.head_length : v.input.size();
    cr_expect_eq(r.head_length, head, "%s: head_length %zu", v.name, r.head_length);
    cr_expect(req.method == v.method, "%s: method", v.name);
    if (!v.path.empty())
        cr_expect(req.path == v.path, "%s: path '%.*s'", v.name, int(req.path.size()),
                  req.path.data());
    cr_expect_eq(req.minor, v.minor, "%s: minor", v.name);
    cr_expect_eq(req.keep_alive, v.keep_alive, "%s: keep_alive", v.name);
    cr_expect(req.body == v.body, "%s: body kind", v.name);
    if (v.body == BodyKind::Length)
        cr_expect_eq(req.content_length, v.content_length, "%s: content_length", v.name);
    cr_expect_eq(req.expect_continue, v.expect_continue, "%s: expect_continue", v.name);
    cr_expect(req.host == v.host, "%s: host '%.*s'", v.name, int(req.host.size()), req.host.data());
}

struct Hostile {
    const char* name;
    std::string input;
    int status;
};

std::string with_header(std::string_view field) {
    return "GET / HTTP/1.1\r\nHost: a\r\n" + std::string(field) + "\r\n\r\n";
}

std::string put_with(std::string_view fields) {
    return "PUT / HTTP/1.1\r\nHost: a\r\n" + std::string(fields) + "\r\n";
}

std::string request_with_version(std::string_view v) {
    return "GET / " + std::string(v) + "\r\nHost: a\r\n\r\n";
}

std::vector<Hostile> hostile_cases() {
    std::string big_value = with_header("X-Big: " + std::string(33000, 'v'));
    std::string head_just_over = "GET / HTTP/1.1\r\nHost: a\r\n";
    while (head_just_over.size() < duet::kMaxHead) head_just_over += "X-Pad: 0123456789abcdef\r\n";
    head_just_over += "\r\n";
    return {
        {"missing host in 1.1", "GET / HTTP/1.1\r\n\r\n", 400},
        {"missing host with absolute-form", "GET http://a/ HTTP/1.1\r\n\r\n", 400},
        {"repeated host", "GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n", 400},
        {"repeated host any case", "GET / HTTP/1.0\r\nHost: a\r\nhOST: b\r\n\r\n", 400},
        {"field without colon", with_header("X-No-Colon"), 400},
        {"field with empty name", with_header(": v"), 400},
        {"space before colon", "GET / HTTP/1.1\r\nHost : a\r\n\r\n", 400},
        {"tab before colon", with_header("X-A\t: v"), 400},
        {"space inside name", with_header("X A: v"), 400},
        {"bad byte in name", with_header("X(A): v"), 400},
        {"obs-fold", "GET / HTTP/1.1\r\nHost: a\r\nX-A: v\r\n  w\r\n\r\n", 400},
        {"obs-fold with tab", "GET / HTTP/1.1\r\nHost: a\r\nX-A: v\r\n\tw\r\n\r\n", 400},
        {"whitespace before first field", "GET / HTTP/1.1\r\n Host: a\r\n\r\n", 400},
        {"bare cr in request line", "GET /a\rb HTTP/1.1\r\nHost: a\r\n\r\n", 400},
        {"bare cr ending request line", "GET / HTTP/1.1\r\r\nHost: a\r\n\r\n", 400},
        {"bare cr in header", with_header("X-A: a\rb"), 400},
        {"bare cr ending header", with_header("X-A: a\r"), 400},
        {"bare cr as empty line", "GET / HTTP/1.1\r\nHost: a\r\n\r\r\n", 400},
        {"nul in header value", with_header(std::string("X-A: a\0b", 8)), 400},
        {"soh in header value", with_header("X-A: a\x01"), 400},
        {"esc in header value", with_header("X-A: \x1b[31m"), 400},
        {"del in header value", with_header("X-A: a\x7f"), 400},
        {"vertical tab in header value", with_header("X-A: a\vb"), 400},
        {"nul in request target", std::string("GET /a\0 HTTP/1.1\r\nHost: a\r\n\r\n", 30), 400},
        {"tab in request target", "GET /a\tb HTTP/1.1\r\nHost: a\r\n\r\n", 400},
        {"bad byte in method", "G(T / HTTP/1.1\r\nHost: a\r\n\r\n", 400},
        {"two spaces in request line", "GET  / HTTP/1.1\r\nHost: a\r\n\r\n", 400},
        {"trailing space in request line", "GET / HTTP/1.1 \r\nHost: a\r\n\r\n", 400},
        {"leading space in request line", " GET / HTTP/1.1\r\nHost: a\r\n\r\n", 400},
        {"request line without version", "GET /\r\nHost: a\r\n\r\n", 400},
        {"target not a path", "GET files HTTP/1.1\r\nHost: a\r\n\r\n", 400},
        {"target with other scheme", "GET ftp://a/b HTTP/1.1\r\nHost: a\r\n\r\n", 400},
        {"content-length with plus", put_with("Content-Length: +5\r\n"), 400},
        {"content-length negative", put_with("Content-Length: -5\r\n"), 400},
        {"content-length list", put_with("Content-Length: 5,5\r\n"), 400},
        {"content-length list with space", put_with("Content-Length: 5, 5\r\n"), 400},
        {"content-length space inside", put_with("Content-Length: 1 0\r\n"), 400},
        {"content-length hex", put_with("Content-Length: 0x5\r\n"), 400},
        {"content-length letters", put_with("Content-Length: 5a\r\n"), 400},
        {"content-length empty", put_with("Content-Length:\r\n"), 400},
        {"content-length overflow", put_with("Content-Length: 18446744073709551616\r\n"), 400},
        {"content-length repeated different",
         put_with("Content-Length: 5\r\nContent-Length: 6\r\n"), 400},
        {"content-length with transfer-encoding",
         put_with("Content-Length: 5\r\nTransfer-Encoding: chunked\r\n"), 400},
        {"transfer-encoding with content-length",
         put_with("Transfer-Encoding: chunked\r\nContent-Length: 5\r\n"), 400},
        {"transfer-encoding empty", put_with("Transfer-Encoding:\r\n"), 400},
        {"transfer-encoding only commas", put_with("Transfer-Encoding: , ,\r\n"), 400},
        {"transfer-encoding only commas with content-length",
         put_with("Transfer-Encoding: ,\r\nContent-Length: 5\r\n"), 400},
        {"transfer-encoding gzip", put_with("Transfer-Encoding: gzip\r\n"), 501},
        {"transfer-encoding identity", put_with("Transfer-Encoding: identity\r\n"), 501},
        {"transfer-encoding chunked, gzip", put_with("Transfer-Encoding: chunked, gzip\r\n"), 501},
        {"transfer-encoding gzip, chunked", put_with("Transfer-Encoding: gzip, chunked\r\n"), 501},
        {"transfer-encoding xchunked", put_with("Transfer-Encoding: xchunked\r\n"), 501},
        {"transfer-encoding chunked twice in a list",
         put_with("Transfer-Encoding: chunked, chunked\r\n"), 501},
        {"transfer-encoding twice",
         put_with("Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n"), 501},
        {"version 2.0", request_with_version("HTTP/2.0"), 505},
        {"version 1.2", request_with_version("HTTP/1.2"), 505},
        {"version 0.9", request_with_version("HTTP/0.9"), 505},
        {"version 3.1", request_with_version("HTTP/3.1"), 505},
        // RFC 9112 §3.2 / RFC 3986 uri-host[:port] (issue 9).
        {"host with space", "GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400},
        {"host with slash", "GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", 400},
        {"host with userinfo", "GET / HTTP/1.1\r\nHost: u@h\r\n\r\n", 400},
        {"host list", "GET / HTTP/1.1\r\nHost: a, b\r\n\r\n", 400},
        {"host list without space", "GET / HTTP/1.1\r\nHost: a,b\r\n\r\n", 400},
        {"host port not digits", "GET / HTTP/1.1\r\nHost: h:8x\r\n\r\n", 400},
        {"host two ports", "GET / HTTP/1.1\r\nHost: h:80:81\r\n\r\n", 400},
        {"host bad percent", "GET / HTTP/1.1\r\nHost: h%zz\r\n\r\n", 400},
        {"host unclosed ip literal", "GET / HTTP/1.1\r\nHost: [::1\r\n\r\n", 400},
        {"host in http/1.0 checked too", "GET / HTTP/1.0\r\nHost: a b\r\n\r\n", 400},
        {"content-length 2^63", put_with("Content-Length: 9223372036854775808\r\n"), 400},
        {"content-length 19 nines (past 63 bits)",
         put_with("Content-Length: 9999999999999999999\r\n"), 400},
        {"content-length 20 digits", put_with("Content-Length: 99999999999999999999\r\n"), 400},
        {"version without minor", request_with_version("HTTP/1"), 400},
        {"version lowercase", request_with_version("http/1.1"), 400},
        {"version two-digit major", request_with_version("HTTP/11.1"), 400},
        {"version letters", request_with_version("HTTP/1.x"), 400},
        {"version extra part", request_with_version("HTTP/1.1.1"), 400},
        {"request line over 8 KiB", long_target(8193), 414},
        {"request line far over 8 KiB", long_target(20000), 414},
        {"head over 32 KiB by one long value", big_value, 431},
        {"head over 32 KiB by many fields", head_just_over, 431},
        {"101 header fields", many_fields(101), 431},
        {"over 1 KiB of leading empty lines", std::string(1025, '\n'), 400},
        {"endless leading empty lines", std::string(40000, '\n'), 400},
        {"many leading crlf before a request",
         repeat("\r\n", 600) + "GET / HTTP/1.1\r\nHost: a\r\n\r\n", 400},
    };
}

}  // namespace

Test(http_parser, parses_valid_requests) {
    for (const Valid& v : valid_cases()) {
        Guarded g(v.input.size());
        Request req;
        ParseResult r = parse_guarded(g, v.input, req);
        check_valid(v, req, r);
    }
}

Test(http_parser, valid_requests_same_at_every_split) {
    for (const Valid& v : valid_cases()) {
        Request req;
        ParseResult whole = duet::parse_request(v.input.data(), v.input.size(), req);
        cr_assert(whole.status == ParseStatus::Complete, "%s", v.name);
        check_every_split(v.input, whole, v.name);
    }
}

Test(http_parser, rejects_hostile_requests) {
    for (const Hostile& h : hostile_cases()) {
        Guarded g(h.input.size());
        Request req;
        ParseResult r = parse_guarded(g, h.input, req);
        cr_expect(r.status == ParseStatus::Error && r.http_status == h.status,
                  "%s: got %s %d, want %d", h.name, status_name(r.status), r.http_status, h.status);
        if (r.status == ParseStatus::Error)
            cr_expect(std::strlen(r.message) > 0, "%s: no message", h.name);
    }
}

Test(http_parser, hostile_requests_same_at_every_split) {
    for (const Hostile& h : hostile_cases()) {
        Request req;
        ParseResult whole = duet::parse_request(h.input.data(), h.input.size(), req);
        cr_assert(whole.status == ParseStatus::Error, "%s", h.name);
        check_every_split(h.input, whole, h.name);
    }
}

Test(http_parser, gives_views_into_the_buffer) {
    std::string in = "DELETE /files/f.txt?v=1 HTTP/1.1\r\nHost: example.org\r\nX-A:  b c \r\n\r\n";
    Request req;
    ParseResult r = duet::parse_request(in.data(), in.size(), req);
    cr_assert(r.status == ParseStatus::Complete);
    cr_expect(req.method == "DELETE");
    cr_expect(req.target == "/files/f.txt?v=1");
    cr_expect(req.path == "/files/f.txt");
    cr_expect(req.host == "example.org");
    cr_assert_eq(req.header_count, 2u);
    cr_expect(req.headers[1].name == "X-A");
    cr_expect(req.headers[1].value == "b c");
    const char* lo = in.data();
    const char* hi = in.data() + in.size();
    cr_expect(req.path.data() >= lo && req.path.data() < hi);
    cr_expect(req.headers[1].value.data() >= lo && req.headers[1].value.data() < hi);
    const duet::Header* h = req.find("x-a");
    cr_assert(h != nullptr);
    cr_expect(h->value == "b c");
    cr_expect(req.find("x-missing") == nullptr);
}

Test(http_parser, reused_request_is_reset) {
    Request req;
    std::string first = "PUT / HTTP/1.0\r\nContent-Length: 4\r\nConnection: keep-alive\r\n\r\n";
    cr_assert(duet::parse_request(first.data(), first.size(), req).status == ParseStatus::Complete);
    std::string second = "GET / HTTP/1.1\r\nHost: h\r\n\r\n";
    cr_assert(duet::parse_request(second.data(), second.size(), req).status ==
              ParseStatus::Complete);
    cr_expect(req.body == BodyKind::None);
    cr_expect_eq(req.content_length, 0u);
    cr_expect_eq(req.header_count, 1u);
    cr_expect_eq(req.minor, 1);
}

Test(http_parser, empty_and_partial_inputs_are_incomplete) {
    const char* partial[] = {"",
                             "\r",
                             "\r\n",
                             "\n\n",
                             "G",
                             "GET / HTTP/1.1",
                             "GET / HTTP/1.1\r\n",
                             "GET / HTTP/1.1\r\nHost: a\r\n",
                             "GET / HTTP/1.1\r\nHost: a\r\n\r"};
    for (const char* p : partial) {
        Request req;
        ParseResult r = duet::parse_request(p, std::strlen(p), req);
        cr_expect(r.status == ParseStatus::Incomplete, "'%s' gave %s", p, status_name(r.status));
    }
}

Test(http_parser, request_line_limit_is_exact) {
    Request req;
    std::string ok = long_target(duet::kMaxRequestLine);
    cr_expect(duet::parse_request(ok.data(), ok.size(), req).status == ParseStatus::Complete);
    cr_expect_eq(req.target.size(), duet::kMaxRequestLine - 13);
    std::string over = long_target(duet::kMaxRequestLine + 1);
    ParseResult r = duet::parse_request(over.data(), over.size(), req);
    cr_expect_eq(r.http_status, 414);
}

Test(http_parser, head_limit_is_exact) {
    // A head of exactly kMaxHead bytes (with its empty line) passes; one byte more is 431.
    std::string head = "GET / HTTP/1.1\r\nHost: a\r\nX-Pad: ";
    std::string tail = "\r\n\r\n";
    std::string exact = head + std::string(duet::kMaxHead - head.size() - tail.size(), 'p') + tail;
    cr_assert_eq(exact.size(), duet::kMaxHead);
    Request req;
    ParseResult r = duet::parse_request(exact.data(), exact.size(), req);
    cr_expect(r.status == ParseStatus::Complete, "got %d", r.http_status);
    std::string over =
        head + std::string(duet::kMaxHead - head.size() - tail.size() + 1, 'p') + tail;
    r = duet::parse_request(over.data(), over.size(), req);
    cr_expect(r.status == ParseStatus::Error && r.http_status == 431);
}

Test(http_parser, list_has_token_trims_and_ignores_case) {
    cr_expect(duet::list_has_token("a, Close ,b", "close"));
    cr_expect(duet::list_has_token("close", "close"));
    cr_expect_not(duet::list_has_token("closed, x", "close"));
    cr_expect_not(duet::list_has_token("", "close"));
    cr_expect(duet::iequals("Content-LENGTH", "content-length"));
    cr_expect_not(duet::iequals("abc", "abcd"));
}
