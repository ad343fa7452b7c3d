#pragma once
// Pure parsers for the resumable-upload fields of the IETF draft (structured-field items) and of
// tus 1.0.0 (plain numbers, Upload-Metadata, Upload-Checksum). No I/O; unit-tested on their own.
#include <cstdint>
#include <string>
#include <string_view>

#include "duet/core/sha256.hpp"

namespace duet {

// The draft interop versions duet speaks (draft-ietf-httpbis-resumable-upload, §"Draft Version
// Identification"): a client naming another one gets no 104, as the draft requires.
inline constexpr int kInteropMin = 6, kInteropMax = 8;
// The version in an Upload-Draft-Interop-Version value if duet supports it, else 0.
int supported_interop_version(std::string_view value);

// RFC 8941 Boolean item (`?1` / `?0`, parameters ignored). false: not a boolean.
bool parse_sf_boolean(std::string_view value, bool& out);
// RFC 8941 Integer item that is non-negative (at most 15 digits; parameters ignored). Also
// what tus sends for Upload-Offset and Upload-Length.
bool parse_sf_uint(std::string_view value, std::uint64_t& out);

enum class FieldResult { Absent, Found, Malformed };
// tus Upload-Metadata: comma-separated "key base64value" pairs (value optional). Found with the
// decoded "filename" value (`name` also takes "name" or "filename*" as tus-js-client users set
// them: "filename" wins). Malformed on bad base64 or an empty key.
FieldResult parse_tus_metadata(std::string_view value, std::string& filename);

enum class ChecksumResult { Ok, Unsupported, Malformed };
// tus Upload-Checksum "ALGORITHM BASE64": Ok for sha256 with a 32-byte digest.
ChecksumResult parse_tus_checksum(std::string_view value, Digest& out);

}  // namespace duet
