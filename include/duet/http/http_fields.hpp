#pragma once
// Pure parsers for the request fields the routes use: percent-decoding, Range, digests,
// entity-tag lists, bearer tokens. No I/O; each is unit-tested on its own.
#include <cstdint>
#include <string>
#include <string_view>

#include "duet/core/sha256.hpp"
#include "duet/store/names.hpp"  // percent_decode

namespace duet {

// The query of `target` turns `key` on: "key", "key=1", "key=true" or "key=yes" among its
// '&'-separated parts.
bool query_flag(std::string_view target, std::string_view key);
// The value of `key` in the query of `target` ("" when absent or empty).
std::string_view query_value(std::string_view target, std::string_view key);

// RFC 3986 §5.2.4 remove_dot_segments on an absolute path: "/a/../b/./c" -> "/b/c".
std::string remove_dot_segments(std::string_view path);
// Whether the path has a "." or ".." segment at all (the common case has none: no copy).
bool has_dot_segment(std::string_view path);

// Repr-Digest / Content-Digest expectations gathered from every field of an upload: each
// sha-256 member found must equal the body's digest. Two different ones can never both match.
struct ExpectedDigest {
    bool any = false;
    bool conflict = false;
    Digest d{};
    // Parses one field (all its lines combined with ", "); false when malformed.
    bool add(std::string_view combined_value);
};

// The combined value of every `name` line in a trailer section (lines "name: value\n"), like
// RFC 9110 §5.3 combines repeated fields. false when a line is not a valid field line.
bool trailer_value(std::string_view trailers, std::string_view name, std::string& combined,
                   bool& present);

enum class RangeResult { Ignore, Satisfiable, Unsatisfiable };
// A single "bytes=" range against a representation of `size` bytes (RFC 9110 §14). Several
// ranges or a malformed value: Ignore (the whole file is sent, as the RFC allows).
RangeResult parse_range(std::string_view value, std::uint64_t size, std::uint64_t& start,
                        std::uint64_t& length);

enum class DigestField { Absent, Found, Malformed };
// The sha-256 member of a Repr-Digest / Content-Digest dictionary: sha-256=:base64:.
DigestField parse_digest_field(std::string_view value, Digest& out);

// If-None-Match: "*" or a list of entity tags, compared weakly with `etag` (quoted).
bool etag_list_matches(std::string_view list, std::string_view etag);

// "Bearer TOKEN" against the expected token, in time independent of where they differ.
bool bearer_matches(std::string_view authorization, std::string_view token);

}  // namespace duet
