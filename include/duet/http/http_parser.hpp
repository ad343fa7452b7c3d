#pragma once
// The HTTP/1.x request-head parser: a pure function over (buffer, length). It allocates nothing,
// does no I/O and keeps no state between calls: the caller re-runs it when more bytes arrive, and
// it returns the first problem in byte order, so the answer never depends on how the bytes were
// split across reads. Every view it writes points into the caller's buffer, except `path` for an
// absolute-form target without a path ("http://host"), which is the static string "/".
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "duet/core/text.hpp"

namespace duet {

inline constexpr std::size_t kMaxRequestLine = 8192;  // longer: 414
inline constexpr std::size_t kMaxHead = 32768;        // longer: 431
inline constexpr std::size_t kMaxHeaders = 100;       // more: 431

struct Header {
    std::string_view name;
    std::string_view value;  // without surrounding whitespace
};

enum class BodyKind : std::uint8_t { None, Length, Chunked };

struct Request {
    std::string_view method;
    std::string_view target;  // as sent
    std::string_view path;    // target without scheme/authority and query, still percent-encoded
    int minor = 1;            // HTTP/1.<minor>
    Header headers[kMaxHeaders];
    std::size_t header_count = 0;

    // Interpreted from the headers.
    std::string_view host;
    BodyKind body = BodyKind::None;
    std::uint64_t content_length = 0;
    bool keep_alive = true;
    bool expect_continue = false;
    bool close_after = false;  // framing we answer but do not trust (TE in HTTP/1.0)

    const Header* find(std::string_view name) const;  // first, case-insensitive
    // Clears the parsed fields; the header array is overwritten as it is filled, not cleared.
    void reset();
};

enum class ParseStatus : std::uint8_t { Complete, Incomplete, Error };

struct ParseResult {
    ParseStatus status = ParseStatus::Incomplete;
    std::size_t head_length = 0;  // bytes of the head, with the empty line, when Complete
    int http_status = 0;          // 400, 414, 431, 501 or 505 when Error
    const char* message = "";     // human sentence for the JSON error body when Error
};

ParseResult parse_request(const char* buf, std::size_t len, Request& req);

// Is `token` one of the comma-separated elements of `list` (case-insensitive, OWS trimmed)?
bool list_has_token(std::string_view list, std::string_view token);

}  // namespace duet
