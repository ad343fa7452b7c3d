#include "duet/store/names.hpp"

#include <algorithm>
#include <cstdio>

namespace duet {
namespace {

bool is_name_byte(unsigned char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == '-';
}

}  // namespace

std::string name_error(std::string_view name) {
    if (name.empty()) return "invalid file name: is empty";
    if (name.size() > 255)
        return "invalid file name: is " + std::to_string(name.size()) + " bytes, the limit is 255";
    for (std::size_t i = 0; i < name.size(); ++i) {
        unsigned char c = static_cast<unsigned char>(name[i]);
        if (is_name_byte(c)) continue;
        // The message goes into JSON and log lines as is: show only harmless bytes literally.
        char what[16];
        if (c > 0x20 && c < 0x7f && c != '"' && c != '\\' && c != '\'')
            std::snprintf(what, sizeof what, "'%c'", c);
        else if (c == ' ')
            std::snprintf(what, sizeof what, "' '");
        else
            std::snprintf(what, sizeof what, "byte 0x%02X", c);
        return std::string("invalid file name: ") + what + " at byte " + std::to_string(i + 1) +
               " is not one of A-Z a-z 0-9 . _ -";
    }
    if (name[0] == '.') return "invalid file name: must not start with '.'";
    return {};
}

bool valid_name(std::string_view name) {
    if (name.empty() || name.size() > 255 || name[0] == '.') return false;
    return std::all_of(name.begin(), name.end(),
                       [](char c) { return is_name_byte(static_cast<unsigned char>(c)); });
}

}  // namespace duet
