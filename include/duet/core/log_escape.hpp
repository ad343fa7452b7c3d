#pragma once
// Access-log escaping (README "Limits"): every byte a client chose goes through here before it
// reaches a log line, so no line can carry a control byte, end a quoted field or forge a second
// line. Pure.
#include <string>
#include <string_view>

namespace duet {

// Appends `in` to `out` with control bytes (C0, DEL, and C1 as UTF-8), '"', '\' and every byte
// that is not part of well-formed UTF-8 written as \xHH. Well-formed printable UTF-8 is kept.
void append_log_escaped(std::string& out, std::string_view in);
inline std::string log_escape(std::string_view in) {
    std::string out;
    append_log_escaped(out, in);
    return out;
}

}  // namespace duet
