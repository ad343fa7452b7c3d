#include "duet/http/http_response.hpp"

#include <cstring>

#include "duet/core/json.hpp"

namespace duet {

const char* reason_phrase(int status) {
    switch (status) {
        case 100:
            return "Continue";
        case 104:
            return "Upload Resumption Supported";
        case 200:
            return "OK";
        case 201:
            return "Created";
        case 204:
            return "No Content";
        case 206:
            return "Partial Content";
        case 301:
            return "Moved Permanently";
        case 304:
            return "Not Modified";
        case 400:
            return "Bad Request";
        case 401:
            return "Unauthorized";
        case 403:
            return "Forbidden";
        case 404:
            return "Not Found";
        case 405:
            return "Method Not Allowed";
        case 408:
            return "Request Timeout";
        case 409:
            return "Conflict";
        case 410:
            return "Gone";
        case 412:
            return "Precondition Failed";
        case 413:
            return "Content Too Large";
        case 414:
            return "URI Too Long";
        case 416:
            return "Range Not Satisfiable";
        case 415:
            return "Unsupported Media Type";
        case 431:
            return "Request Header Fields Too Large";
        case 460:  // tus 1.0.0 checksum extension
            return "Checksum Mismatch";
        case 500:
            return "Internal Server Error";
        case 501:
            return "Not Implemented";
        case 503:
            return "Service Unavailable";
        case 505:
            return "HTTP Version Not Supported";
        case 507:
            return "Insufficient Storage";
        default:
            return "Unknown";
    }
}

std::string json_error(std::string_view message) {
    std::string s = "{\"error\":\"";
    append_json_escaped(s, message);
    s += "\"}\n";
    return s;
}

// Days since 1970-01-01 to a proleptic Gregorian date (H. Hinnant's civil_from_days). Pure
// arithmetic: gmtime_r would read the time-zone file and take a lock once per process, for a
// field that is always GMT.
std::string http_date(std::int64_t unix_seconds) {
    static constexpr char kDays[] = "ThuFriSatSunMonTueWed";  // 1970-01-01 was a Thursday
    static constexpr char kMonths[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
    std::int64_t days = unix_seconds / 86400, secs = unix_seconds % 86400;
    if (secs < 0) {
        secs += 86400;
        --days;
    }
    std::int64_t z = days + 719468;
    std::int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    std::int64_t doe = z - era * 146097;                                       // [0, 146096]
    std::int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;  // [0, 399]
    std::int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);                // [0, 365]
    std::int64_t mp = (5 * doy + 2) / 153;                                     // March = 0
    std::int64_t day = doy - (153 * mp + 2) / 5 + 1;
    std::int64_t month = mp < 10 ? mp + 3 : mp - 9;  // 1..12
    std::int64_t year = yoe + era * 400 + (month <= 2);
    std::int64_t wday = ((days % 7) + 7) % 7;
    auto two = [](std::string& s, std::int64_t v) {
        s += char('0' + v / 10);
        s += char('0' + v % 10);
    };
    std::string s;
    s.reserve(29);
    s.append(kDays + 3 * wday, 3);
    s += ", ";
    two(s, day);
    s += ' ';
    s.append(kMonths + 3 * (month - 1), 3);
    s += ' ';
    if (year < 0 || year > 9999) year = year < 0 ? 0 : 9999;  // outside what the field can say
    two(s, year / 100);
    two(s, year % 100);
    s += ' ';
    two(s, secs / 3600);
    s += ':';
    two(s, secs / 60 % 60);
    s += ':';
    two(s, secs % 60);
    s += " GMT";
    return s;
}

ResponseHead::ResponseHead(int status, std::string_view common) : status_(status) {
    put("HTTP/1.1 ");
    char code[4] = {char('0' + status / 100), char('0' + status / 10 % 10), char('0' + status % 10),
                    ' '};
    put(std::string_view(code, 4));
    put(reason_phrase(status));
    put("\r\n");
    put(common);
}

void ResponseHead::put(std::string_view s) {
    std::size_t n = s.size() < sizeof buf_ - 2 - n_ ? s.size() : sizeof buf_ - 2 - n_;
    if (n == 0) return;  // an empty view may carry a null pointer, which memcpy must not see
    std::memcpy(buf_ + n_, s.data(), n);
    n_ += n;
}

ResponseHead& ResponseHead::header(std::string_view name, std::string_view value) {
    put(name);
    put(": ");
    put(value);
    put("\r\n");
    return *this;
}

ResponseHead& ResponseHead::content_length(std::uint64_t n) {
    char digits[24];
    int i = sizeof digits;
    do {
        digits[--i] = char('0' + n % 10);
        n /= 10;
    } while (n);
    put("Content-Length: ");
    put(std::string_view(digits + i, sizeof digits - std::size_t(i)));
    put("\r\n");
    return *this;
}

ResponseHead& ResponseHead::raw(std::string_view line) {
    put(line);
    return *this;
}

std::string_view ResponseHead::finish() {
    buf_[n_++] = '\r';
    buf_[n_++] = '\n';
    return std::string_view(buf_, n_);
}

}  // namespace duet
