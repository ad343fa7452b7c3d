#pragma once
// Response heads, written into a fixed stack buffer and queued in one piece.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace duet {

const char* reason_phrase(int status);
// "{"error":"<message>"}" — messages are ours, plain ASCII without quotes.
std::string json_error(std::string_view message);
// IMF-fixdate (RFC 9110 §5.6.7) for a unix time.
std::string http_date(std::int64_t unix_seconds);

class ResponseHead {
  public:
    // `common` is the cached "Date: ...\r\nServer: ...\r\n" block.
    ResponseHead(int status, std::string_view common);
    ResponseHead& header(std::string_view name, std::string_view value);
    ResponseHead& content_length(std::uint64_t n);
    ResponseHead& raw(std::string_view line);  // a whole "Name: value\r\n"
    // Ends the head; returns its bytes (valid while this object lives).
    std::string_view finish();
    int status() const { return status_; }

  private:
    void put(std::string_view s);
    char buf_[2048];
    std::size_t n_ = 0;
    int status_;
};

}  // namespace duet
