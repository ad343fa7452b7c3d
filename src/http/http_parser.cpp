#include "duet/http/http_parser.hpp"

#include <cctype>
#include <cstdint>
#include <cstring>

#include "duet/core/text.hpp"

namespace duet {
namespace {

// Field-value bytes: VCHAR, obs-text, SP, HTAB. Everything else (CTL, NUL, DEL, bare CR) is
// refused.
constexpr bool is_field_byte(unsigned char c) {
    return c == '\t' || (c >= 0x20 && c != 0x7f);
}

// request-target bytes: visible ASCII only.
constexpr bool is_target_byte(unsigned char c) {
    return c > 0x20 && c < 0x7f;
}

// Empty lines accepted before a request line (RFC 9112 §2.2 asks for at least one).
constexpr std::size_t kMaxLeadingEmpty = 1024;

ParseResult error(int status, const char* message) {
    return ParseResult{ParseStatus::Error, 0, status, message};
}

// Finds the end of the line starting at `pos`. Lines end with LF or CRLF; returns the index of the
// LF, or npos. `content_end` gets the index just past the line's content (before any CR).
std::size_t find_line(const char* buf, std::size_t len, std::size_t pos, std::size_t& content_end) {
    const void* lf = std::memchr(buf + pos, '\n', len - pos);
    if (!lf) return std::string_view::npos;
    std::size_t at = static_cast<std::size_t>(static_cast<const char*>(lf) - buf);
    content_end = (at > pos && buf[at - 1] == '\r') ? at - 1 : at;
    return at;
}

ParseResult parse_version(std::string_view v, Request& req) {
    if (v.size() != 8 || v.substr(0, 5) != "HTTP/" || v[6] != '.' || v[5] < '0' || v[5] > '9' ||
        v[7] < '0' || v[7] > '9')
        return error(400, "The request line has no valid HTTP version.");
    if (v[5] != '1' || (v[7] != '0' && v[7] != '1'))
        return error(505, "Only HTTP/1.0 and HTTP/1.1 are supported.");
    req.minor = v[7] - '0';
    return ParseResult{};
}

// origin-form "/path?query", absolute-form "http://host/path", asterisk-form "*".
bool split_target(std::string_view target, std::string_view& path) {
    if (target == "*") {
        path = target;
        return true;
    }
    if (target[0] != '/') {
        std::size_t scheme = target.find("://");
        if (scheme == std::string_view::npos) return false;
        std::string_view s = target.substr(0, scheme);
        if (!iequals(s, "http") && !iequals(s, "https")) return false;
        // The authority ends at the first '/', '?' or '#' (RFC 3986 §3.2): a '/' inside the
        // query of "http://host?a=/b" is not the start of the path.
        std::size_t end = target.find_first_of("/?#", scheme + 3);
        target = end == std::string_view::npos || target[end] != '/' ? std::string_view("/")
                                                                     : target.substr(end);
    }
    std::size_t q = target.find_first_of("?#");
    path = target.substr(0, q);
    return true;
}

ParseResult parse_request_line(std::string_view line, Request& req) {
    std::size_t sp1 = line.find(' ');
    if (sp1 == std::string_view::npos || sp1 == 0)
        return error(400, "The request line is not METHOD TARGET VERSION.");
    std::size_t sp2 = line.find(' ', sp1 + 1);
    if (sp2 == std::string_view::npos || sp2 == sp1 + 1 || line.find(' ', sp2 + 1) != line.npos)
        return error(400, "The request line is not METHOD TARGET VERSION.");
    req.method = line.substr(0, sp1);
    req.target = line.substr(sp1 + 1, sp2 - sp1 - 1);
    for (unsigned char c : req.method)
        if (!is_tchar(c)) return error(400, "The method is not a valid token.");
    for (unsigned char c : req.target)
        if (!is_target_byte(c)) return error(400, "The request target has invalid bytes.");
    ParseResult v = parse_version(line.substr(sp2 + 1), req);
    if (v.status == ParseStatus::Error) return v;
    if (!split_target(req.target, req.path))
        return error(400, "The request target is not a path or an absolute URL.");
    return ParseResult{};
}

ParseResult parse_field_line(std::string_view line, Request& req) {
    if (line[0] == ' ' || line[0] == '\t')
        return error(400, "Folded header lines (obs-fold) are not accepted.");
    std::size_t colon = line.find(':');
    if (colon == std::string_view::npos) return error(400, "A header line has no colon.");
    if (colon == 0) return error(400, "A header line has an empty name.");
    std::string_view name = line.substr(0, colon);
    for (unsigned char c : name) {
        if (c == ' ' || c == '\t')
            return error(400, "Whitespace between a header name and its colon is not allowed.");
        if (!is_tchar(c)) return error(400, "A header name has invalid characters.");
    }
    std::string_view value = line.substr(colon + 1);
    for (unsigned char c : value)
        if (!is_field_byte(c)) return error(400, "A header value has control characters.");
    if (req.header_count == kMaxHeaders)
        return error(431, "The request has over 100 header lines.");
    req.headers[req.header_count++] = Header{name, trim_ows(value)};
    return ParseResult{};
}

bool all_digits(std::string_view s) {
    if (s.empty()) return false;
    for (char c : s)
        if (c < '0' || c > '9') return false;
    return true;
}

// RFC 3986 uri-host [":" port] (RFC 9112 §3.2): IP-literal, IPv4 or reg-name, then digits only.
// Stricter than reg-name in one way the README asks for: no ',' (a list of hosts). Empty is
// allowed (RFC 9112 §3.2: the target may have no authority).
bool valid_host(std::string_view h) {
    std::size_t i = 0;
    if (!h.empty() && h[0] == '[') {
        std::size_t close = h.find(']');
        if (close == std::string_view::npos || close == 1) return false;
        for (char c : h.substr(1, close - 1)) {
            bool ok = (c >= '0' && c <= '9') || ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') ||
                      c == ':' || c == '.' || c == '-' || c == '_' || c == '~' || c == '%';
            if (!ok) return false;
        }
        i = close + 1;
    } else {
        for (; i < h.size() && h[i] != ':'; ++i) {
            unsigned char c = static_cast<unsigned char>(h[i]);
            bool unreserved = (c >= '0' && c <= '9') || ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') ||
                              c == '-' || c == '.' || c == '_' || c == '~';
            bool sub_delim = std::strchr("!$&'()*+;=", c) != nullptr && c != 0;
            if (c == '%') {
                if (i + 2 >= h.size() || !std::isxdigit(static_cast<unsigned char>(h[i + 1])) ||
                    !std::isxdigit(static_cast<unsigned char>(h[i + 2])))
                    return false;
                i += 2;
                continue;
            }
            if (!unreserved && !sub_delim) return false;
        }
    }
    if (i == h.size()) return true;
    if (h[i] != ':') return false;
    for (char c : h.substr(i + 1))
        if (c < '0' || c > '9') return false;
    return true;
}

// Reads one Transfer-Encoding field: each element must be exactly "chunked", and only once
// overall. Returns false when the field names no coding at all.
bool scan_codings(std::string_view rest, bool& has_te, bool& chunked_only) {
    bool any = false;
    while (!rest.empty()) {
        std::size_t comma = rest.find(',');
        std::string_view item = trim_ows(rest.substr(0, comma));
        if (!item.empty()) {
            if (!iequals(item, "chunked") || has_te) chunked_only = false;
            has_te = any = true;
        }
        if (comma == std::string_view::npos) break;
        rest.remove_prefix(comma + 1);
    }
    return any;
}

// Applies the framing and connection rules of RFC 9112 §6 and README "HTTP API" to the parsed
// fields.
ParseResult interpret(Request& req) {
    int hosts = 0;
    bool has_length = false, has_te = false, te_chunked_only = true, te_empty = false;
    bool conn_close = false, conn_keep = false;
    for (std::size_t i = 0; i < req.header_count; ++i) {
        const Header& h = req.headers[i];
        if (iequals(h.name, "host")) {
            if (++hosts > 1) return error(400, "The request has more than one Host header.");
            if (!valid_host(h.value))
                return error(400, "The Host header is not a valid host[:port].");
            req.host = h.value;
        } else if (iequals(h.name, "content-length")) {
            if (!all_digits(h.value)) return error(400, "Content-Length must be plain digits.");
            // Leading zeros are still a valid number; past 63 bits it is not one we can use.
            std::string_view v = h.value;
            while (v.size() > 1 && v.front() == '0') v.remove_prefix(1);
            std::uint64_t n = 0;
            for (char c : v) n = n * 10 + std::uint64_t(c - '0');
            if (v.size() > 19 || n > std::uint64_t(INT64_MAX))
                return error(400, "Content-Length does not fit in 63 bits.");
            if (has_length && n != req.content_length)
                return error(400, "Content-Length is repeated with different values.");
            has_length = true;
            req.content_length = n;
        } else if (iequals(h.name, "transfer-encoding")) {
            // A field with no coding at all ("", ", ,") still means "framing by TE": it must not
            // let a Content-Length through as if it were absent.
            if (!scan_codings(h.value, has_te, te_chunked_only)) te_empty = true;
        } else if (iequals(h.name, "connection")) {
            if (list_has_token(h.value, "close")) conn_close = true;
            if (list_has_token(h.value, "keep-alive")) conn_keep = true;
        } else if (iequals(h.name, "expect")) {
            // RFC 9110 §10.1.1: an HTTP/1.0 client cannot be waiting for 100 Continue.
            if (req.minor == 1 && iequals(h.value, "100-continue")) req.expect_continue = true;
        }
    }
    if (req.minor == 1 && hosts == 0) return error(400, "HTTP/1.1 requests need a Host header.");
    if (te_empty) return error(400, "Transfer-Encoding is empty.");
    if (has_te && has_length)
        return error(400, "Content-Length together with Transfer-Encoding is not allowed.");
    if (has_te && !te_chunked_only)
        return error(501, "Only the chunked transfer coding is supported.");
    if (has_te) {
        req.body = BodyKind::Chunked;
        // RFC 9112 §6.1: chunked framing from an HTTP/1.0 client cannot be trusted for reuse.
        if (req.minor == 0) req.close_after = true;
    } else if (has_length && req.content_length > 0) {
        req.body = BodyKind::Length;
    }
    req.keep_alive = req.minor == 1 ? !conn_close : (conn_keep && !conn_close);
    if (req.close_after) req.keep_alive = false;
    return ParseResult{};
}

}  // namespace

bool list_has_token(std::string_view list, std::string_view token) {
    while (!list.empty()) {
        std::size_t comma = list.find(',');
        if (iequals(trim_ows(list.substr(0, comma)), token)) return true;
        if (comma == std::string_view::npos) break;
        list.remove_prefix(comma + 1);
    }
    return false;
}

const Header* Request::find(std::string_view name) const {
    for (std::size_t i = 0; i < header_count; ++i)
        if (iequals(headers[i].name, name)) return &headers[i];
    return nullptr;
}

void Request::reset() {
    method = target = path = host = {};
    minor = 1;
    header_count = 0;
    body = BodyKind::None;
    content_length = 0;
    keep_alive = true;
    expect_continue = close_after = false;
}

ParseResult parse_request(const char* buf, std::size_t len, Request& req) {
    req.reset();
    std::size_t pos = 0;
    // RFC 9112 §2.2: ignore at least one empty line before the request line; a bounded number,
    // so a stream of newlines cannot fill the read buffer without ever being an error.
    while (pos < len &&
           (buf[pos] == '\n' || (buf[pos] == '\r' && pos + 1 < len && buf[pos + 1] == '\n')))
        pos += buf[pos] == '\r' ? 2 : 1;
    if (pos > kMaxLeadingEmpty) return error(400, "Too many empty lines before the request.");
    if (pos == len) return ParseResult{};
    std::size_t start = pos, content_end = 0;
    std::size_t lf = find_line(buf, len, pos, content_end);
    if (lf == std::string_view::npos) {
        if (len - start > kMaxRequestLine + 1) return error(414, "The request line is over 8 KiB.");
        if (len - start > kMaxHead) return error(431, "The request head is over 32 KiB.");
        return ParseResult{};
    }
    if (content_end - start > kMaxRequestLine) return error(414, "The request line is over 8 KiB.");
    std::string_view line(buf + start, content_end - start);
    if (line.find('\r') != line.npos || line.find('\0') != line.npos)
        return error(400, "The request line has a bare CR or NUL.");
    ParseResult r = parse_request_line(line, req);
    if (r.status == ParseStatus::Error) return r;
    pos = lf + 1;
    for (;;) {
        lf = find_line(buf, len, pos, content_end);
        if (lf == std::string_view::npos) {
            if (len - start > kMaxHead) return error(431, "The request head is over 32 KiB.");
            return ParseResult{};
        }
        if (lf + 1 - start > kMaxHead) return error(431, "The request head is over 32 KiB.");
        std::string_view field(buf + pos, content_end - pos);
        pos = lf + 1;
        if (field.empty()) break;
        if (field.find('\r') != field.npos) return error(400, "A header line has a bare CR.");
        r = parse_field_line(field, req);
        if (r.status == ParseStatus::Error) return r;
    }
    r = interpret(req);
    if (r.status == ParseStatus::Error) return r;
    return ParseResult{ParseStatus::Complete, pos, 0, ""};
}

}  // namespace duet
