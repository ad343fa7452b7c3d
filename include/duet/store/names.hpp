#pragma once
// Client file names (README "File names"), pure and apart from the store so that the parsers and
// their fuzz targets can check names without linking the store.
//
// A segment is 1–255 bytes of valid UTF-8 with only what is dangerous or ambiguous refused: '/',
// '\', control characters (U+0000–U+001F, U+007F–U+009F), the bidirectional controls
// (U+202A–U+202E, U+2066–U+2069), a leading '.', leading or trailing spaces. Names are kept as the
// bytes given (no normalization).
#include <string>
#include <string_view>

namespace duet {

inline constexpr std::size_t kMaxSegmentBytes = 255;
// A path (README "Folders"): 1–32 segments joined by '/', at most 1024 bytes in all.
inline constexpr std::size_t kMaxSegments = 32;
inline constexpr std::size_t kMaxPathBytes = 1024;

// Which rule `name` (one segment) breaks ("invalid file name: ..."), or "" when it is valid.
std::string name_error(std::string_view name);
bool valid_name(std::string_view name);

// Which rule the path `path` ("a/b/c.txt", no leading or trailing '/') breaks, or "".
std::string path_error(std::string_view path);
bool valid_path(std::string_view path);
// The folder holding `path` ("" for the root) and its last segment.
std::string_view parent_of(std::string_view path);
std::string_view leaf_of(std::string_view path);

// A name as the file port writes it (README "File port"): a space, '%' and every byte outside
// printable ASCII as %XX, so that a line stays one line and one word.
std::string port_encode(std::string_view name);
std::size_t port_encoded_size(std::string_view name);
char* put_port_encoded(char* p, std::string_view name);
// A name inside a URL path (Location): every byte but unreserved ones and a few safe
// sub-delimiters as %XX.
std::string url_encode(std::string_view name);
// Percent-decodes `in` into `out` (cleared first). false on a bad escape, with its 1-based byte in
// `bad_at` when given.
bool percent_decode(std::string_view in, std::string& out, std::size_t* bad_at = nullptr);
// The same for a path: '/' separates segments, each percent-decoded on its own (so "%2F" is a '/'
// inside a segment, refused). A trailing '/' names a folder (`folder`); "" is the root (a
// folder, `out` empty). "" or the reason it is refused.
std::string decode_path(std::string_view raw, std::string& out, bool& folder);

}  // namespace duet
