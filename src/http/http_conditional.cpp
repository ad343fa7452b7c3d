// Conditional requests (RFC 9110 §13.1 and §13.2.2), pure.
#include "duet/http/http_conditional.hpp"

#include <cstring>

#include "duet/core/text.hpp"

namespace duet {
namespace {

// Calls f(tag, weak) for each element of an entity-tag list; stops early when f returns true.
// Malformed elements are skipped: they can match nothing.
template <class F>
bool any_tag(std::string_view list, F&& f) {
    while (!list.empty()) {
        std::size_t comma = list.find(',');
        std::string_view tag = trim_ows(list.substr(0, comma));
        bool weak = tag.size() >= 2 && tag[0] == 'W' && tag[1] == '/';
        if (weak) tag.remove_prefix(2);
        if (tag.size() >= 2 && tag.front() == '"' && tag.back() == '"' && f(tag, weak)) return true;
        if (comma == std::string_view::npos) break;
        list.remove_prefix(comma + 1);
    }
    return false;
}

bool is_get_or_head(CondMethod m) {
    return m == CondMethod::Get || m == CondMethod::Head;
}

int month_of(std::string_view m) {
    static const char* const names[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                        "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    for (int i = 0; i < 12; ++i)
        if (m == names[i]) return i + 1;
    return 0;
}

bool digits(std::string_view s, std::size_t n, int& out) {
    if (s.size() != n) return false;
    int v = 0;
    for (char c : s) {
        if (c < '0' || c > '9') return false;
        v = v * 10 + (c - '0');
    }
    out = v;
    return true;
}

// "HH:MM:SS"
bool parse_clock(std::string_view s, int& h, int& m, int& sec) {
    return s.size() == 8 && s[2] == ':' && s[5] == ':' && digits(s.substr(0, 2), 2, h) &&
           digits(s.substr(3, 2), 2, m) && digits(s.substr(6, 2), 2, sec) && h < 24 && m < 60 &&
           sec < 61;
}

// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
std::int64_t days_from_civil(int y, int m, int d) {
    y -= m <= 2;
    const int era = (y >= 0 ? y : y - 399) / 400;
    const unsigned yoe = static_cast<unsigned>(y - era * 400);
    const unsigned doy = (153 * unsigned(m + (m > 2 ? -3 : 9)) + 2) / 5 + unsigned(d) - 1;
    const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return std::int64_t(era) * 146097 + std::int64_t(doe) - 719468;
}

bool make_time(int y, int mon, int d, int h, int m, int s, std::int64_t& out) {
    if (mon < 1 || d < 1 || d > 31) return false;
    out = days_from_civil(y, mon, d) * 86400 + h * 3600 + m * 60 + s;
    return true;
}

}  // namespace

bool if_match_true(std::string_view value, const CondState& s) {
    value = trim_ows(value);
    if (!s.exists) return false;
    if (value == "*") return true;
    return any_tag(value, [&](std::string_view tag, bool weak) { return !weak && tag == s.etag; });
}

bool if_none_match_true(std::string_view value, const CondState& s) {
    value = trim_ows(value);
    if (!s.exists) return true;
    if (value == "*") return false;
    return !any_tag(value, [&](std::string_view tag, bool) { return tag == s.etag; });
}

bool parse_http_date(std::string_view v, std::int64_t& out) {
    v = trim_ows(v);
    int d = 0, y = 0, h = 0, m = 0, s = 0;
    // IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT" (29 bytes)
    if (v.size() == 29 && v[3] == ',' && v[4] == ' ' && v[7] == ' ' && v[11] == ' ' &&
        v[16] == ' ' && v[25] == ' ' && v.substr(26) == "GMT") {
        int mon = month_of(v.substr(8, 3));
        return mon && digits(v.substr(5, 2), 2, d) && digits(v.substr(12, 4), 4, y) &&
               parse_clock(v.substr(17, 8), h, m, s) && make_time(y, mon, d, h, m, s, out);
    }
    // asctime: "Sun Nov  6 08:49:37 1994" (24 bytes)
    if (v.size() == 24 && v[3] == ' ' && v[7] == ' ' && v[10] == ' ' && v[19] == ' ') {
        int mon = month_of(v.substr(4, 3));
        std::string_view day = v.substr(8, 2);
        if (day[0] == ' ') day.remove_prefix(1);
        return mon && digits(day, day.size(), d) && digits(v.substr(20, 4), 4, y) &&
               parse_clock(v.substr(11, 8), h, m, s) && make_time(y, mon, d, h, m, s, out);
    }
    // RFC 850: "Sunday, 06-Nov-94 08:49:37 GMT"
    std::size_t comma = v.find(", ");
    if (comma != std::string_view::npos && comma >= 6 && v.size() == comma + 24) {
        std::string_view rest = v.substr(comma + 2);
        if (rest[2] != '-' || rest[6] != '-' || rest[9] != ' ' || rest[18] != ' ' ||
            rest.substr(19) != "GMT")
            return false;
        int mon = month_of(rest.substr(3, 3));
        int yy = 0;
        if (!mon || !digits(rest.substr(0, 2), 2, d) || !digits(rest.substr(7, 2), 2, yy) ||
            !parse_clock(rest.substr(10, 8), h, m, s))
            return false;
        // RFC 9110 §5.6.7: a two-digit year more than 50 years in the future is in the past.
        y = yy < 70 ? 2000 + yy : 1900 + yy;
        return make_time(y, mon, d, h, m, s, out);
    }
    return false;
}

CondOutcome evaluate_conditions(CondMethod m, const CondHeaders& h, const CondState& s) {
    std::int64_t date = 0;
    // Step 1 / 2.
    if (h.has_if_match) {
        if (!if_match_true(h.if_match, s)) return CondOutcome::PreconditionFailed;
    } else if (h.has_if_unmodified_since && s.exists &&
               parse_http_date(h.if_unmodified_since, date)) {
        if (s.mtime > date) return CondOutcome::PreconditionFailed;
    }
    // Step 3 / 4.
    if (h.has_if_none_match) {
        if (!if_none_match_true(h.if_none_match, s))
            return is_get_or_head(m) ? CondOutcome::NotModified : CondOutcome::PreconditionFailed;
    } else if (h.has_if_modified_since && is_get_or_head(m) && s.exists &&
               parse_http_date(h.if_modified_since, date)) {
        if (s.mtime <= date) return CondOutcome::NotModified;
    }
    return CondOutcome::Proceed;
}

}  // namespace duet
