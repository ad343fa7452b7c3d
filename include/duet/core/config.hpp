#pragma once
// Command-line and environment options (README "Options"). Parsing is pure: it reads argv and a
// getenv-like function and returns either a Config or one line naming the bad option.
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace duet {

inline constexpr const char* kVersion = "1.0.0";

struct Address {
    std::string host;  // as the user wrote it: "127.0.0.1", "::1", "localhost"
    std::uint16_t port = 0;
};

struct Config {
    Address http{"127.0.0.1", 8000};
    Address files{"127.0.0.1", 8001};
    std::string data = "./data";
    std::string token;  // empty: no token required
    bool reload = false;
    std::vector<std::string> watch;
    double grace = 10;
    std::uint64_t max_upload = UINT64_MAX;
    unsigned max_conns = 10000;
    double header_timeout = 10;
    double idle_timeout = 60;
    double partial_ttl = 86400;     // seconds an untouched partial upload is kept
    std::vector<std::string> cors;  // allowed Origin values ("*": any); empty: no CORS
    bool access_log = false;
    bool check = false;
};

enum class ConfigResult { Run, Help, Version, Error };

using GetEnv = std::function<const char*(const char*)>;
ConfigResult parse_config(int argc, const char* const* argv, const GetEnv& getenv, Config& out,
                          std::string& error);

// Pure value parsers, exposed for tests.
bool parse_address(const std::string& text, Address& out);
bool parse_seconds(const std::string& text, double& out);
bool parse_u64(const std::string& text, std::uint64_t& out);
// True when two listeners on these addresses could not both bind: the same port (not 0) on the
// same address, or on the wildcard address of the same family.
bool addresses_clash(const Address& a, const Address& b);
// "HOST:PORT", with brackets around an IPv6 HOST.
std::string format_address(const Address& a);
// "*" or "scheme://host[:port]" (no path, no spaces).
bool valid_cors_origin(const std::string& origin);

const char* usage_text();

}  // namespace duet
