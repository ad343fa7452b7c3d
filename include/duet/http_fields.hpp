#pragma once
// Pure parsers for the request fields the routes use: percent-decoding, Range, digests,
// entity-tag lists, bearer tokens. No I/O; each is unit-tested on its own.
#include <cstdint>
#include <string>
#include <string_view>

#include "duet/sha256.hpp"

namespace duet {

// RFC 3986 percent-decoding. false on a malformed escape ("%", "%G1", "%2").
bool percent_decode(std::string_view in, std::string& out);

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
