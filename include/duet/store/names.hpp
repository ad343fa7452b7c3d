#pragma once
// Client file names (README "File names"), pure and apart from the store so that the parsers and
// their fuzz targets can check names without linking the store.
#include <string>
#include <string_view>

namespace duet {

// 1–255 bytes of A-Z a-z 0-9 . _ -, not starting with '.'.
// name_error says which rule failed ("invalid file name: ..."), or "" when the name is valid.
std::string name_error(std::string_view name);
bool valid_name(std::string_view name);

}  // namespace duet
