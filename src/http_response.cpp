#include "duet/http_response.hpp"

#include <cstring>
#include <ctime>

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
    s.append(message);
    s += "\"}\n";
    return s;
}

std::string http_date(std::int64_t unix_seconds) {
    static const char* const days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char* const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                         "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    std::time_t t = static_cast<std::time_t>(unix_seconds);
    std::tm tm{};
    gmtime_r(&t, &tm);
    char buf[40];
    std::snprintf(buf, sizeof buf, "%s, %02d %s %04d %02d:%02d:%02d GMT", days[tm.tm_wday],
                  tm.tm_mday, months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
                  tm.tm_sec);
    return buf;
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
