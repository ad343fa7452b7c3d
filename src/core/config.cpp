#include "duet/core/config.hpp"

#include <arpa/inet.h>

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>

#include "duet/core/ipv4.hpp"

namespace duet {

const char* usage_text() {
    return "usage: duet [OPTIONS]\n"
           "  --http HOST:PORT      HTTP API address (env DUET_HTTP, default 127.0.0.1:8000)\n"
           "  --files HOST:PORT     file-transfer address (env DUET_FILES, default "
           "127.0.0.1:8001)\n"
           "  --data DIR            store directory, created if missing (env DUET_DATA, default "
           "./data)\n"
           "  --token TOKEN         require this secret for every file operation (env "
           "DUET_TOKEN);\n"
           "                        HTTP: Authorization: Bearer TOKEN, file port: AUTH TOKEN\n"
           "  --reload              reload when the executable or a --watch path changes\n"
           "  --watch PATH          extra file or directory to watch (repeatable; implies "
           "--reload)\n"
           "  --grace SECONDS       longest wait for in-flight work on shutdown or reload "
           "(default 10)\n"
           "  --max-upload BYTES    largest accepted upload (default: no limit but the disk)\n"
           "  --max-conns N         most open client connections across both ports (default "
           "10000)\n"
           "  --header-timeout S    time allowed to send a whole request head or command line "
           "(default 10)\n"
           "  --idle-timeout S      time a connection may make no progress (default 60)\n"
           "  --partial-ttl S       how long an untouched partial upload is kept (default 86400)\n"
           "  --cors ORIGIN         allow browser pages from ORIGIN (repeatable; '*' for any)\n"
           "  --access-log          one line per HTTP request and per file command on stdout\n"
           "  --check               validate the options and the store, print \"ok\", exit\n"
           "  --version, --help\n"
           "PORT 0 picks a free port. Signals: INT/TERM stop gracefully, HUP reloads, QUIT exits "
           "at once.\n";
}

bool parse_u64(const std::string& text, std::uint64_t& out) {
    if (text.empty() || text.size() > 20) return false;
    std::uint64_t v = 0;
    for (char c : text) {
        if (c < '0' || c > '9') return false;
        std::uint64_t d = static_cast<std::uint64_t>(c - '0');
        if (v > (UINT64_MAX - d) / 10) return false;
        v = v * 10 + d;
    }
    out = v;
    return true;
}

bool parse_seconds(const std::string& text, double& out) {
    if (text.empty()) return false;
    // Plain decimal only: digits with at most one '.', no sign, exponent or hex.
    int dots = 0, digits = 0;
    for (char c : text) {
        if (c == '.') {
            if (++dots > 1) return false;
        } else if (c >= '0' && c <= '9') {
            ++digits;
        } else {
            return false;
        }
    }
    if (digits == 0) return false;
    double v = std::strtod(text.c_str(), nullptr);
    if (!std::isfinite(v) || v > 86400.0 * 365) return false;
    out = v;
    return true;
}

bool parse_address(const std::string& text, Address& out) {
    std::string host, port;
    if (!text.empty() && text[0] == '[') {
        auto close = text.find(']');
        if (close == std::string::npos || close + 1 >= text.size() || text[close + 1] != ':')
            return false;
        host = text.substr(1, close - 1);
        port = text.substr(close + 2);
        in6_addr a6;
        if (inet_pton(AF_INET6, host.c_str(), &a6) != 1) return false;
    } else {
        auto colon = text.rfind(':');
        if (colon == std::string::npos) return false;
        host = text.substr(0, colon);
        port = text.substr(colon + 1);
        unsigned char a4[4];
        if (host != "localhost" && !parse_ipv4(host, a4)) return false;
    }
    std::uint64_t p;
    if (!parse_u64(port, p) || p > 65535) return false;
    out.host = host;
    out.port = static_cast<std::uint16_t>(p);
    return true;
}

bool valid_cors_origin(const std::string& o) {
    if (o == "*") return true;
    std::size_t scheme = o.find("://");
    if (scheme == std::string::npos || scheme == 0 || o.size() == scheme + 3) return false;
    for (std::size_t i = 0; i < o.size(); ++i) {
        unsigned char c = static_cast<unsigned char>(o[i]);
        if (c <= 0x20 || c >= 0x7f) return false;
        if (i >= scheme + 3 && (c == '/' || c == '?' || c == '#' || c == '@')) return false;
    }
    return true;
}

namespace {
// An address as 16 bytes and its family (IPv4 in the first 4 bytes, the rest zero), or false.
bool address_bytes(const Address& a, int& family, unsigned char (&bytes)[16]) {
    std::memset(bytes, 0, sizeof bytes);
    std::string host = a.host == "localhost" ? "127.0.0.1" : a.host;
    if (unsigned char a4[4]; parse_ipv4(host, a4)) {
        std::memcpy(bytes, a4, 4);
        family = AF_INET;
        return true;
    }
    if (inet_pton(AF_INET6, host.c_str(), bytes) == 1) {
        family = AF_INET6;
        return true;
    }
    return false;
}
}  // namespace

std::string format_address(const Address& a) {
    std::string port = std::to_string(a.port);
    if (a.host.find(':') != std::string::npos) return "[" + a.host + "]:" + port;
    return a.host + ":" + port;
}

bool addresses_clash(const Address& a, const Address& b) {
    if (a.port == 0 || a.port != b.port) return false;  // port 0: each gets its own free port
    int fa = 0, fb = 0;
    unsigned char ba[16], bb[16];
    if (!address_bytes(a, fa, ba) || !address_bytes(b, fb, bb)) return a.host == b.host;
    // IPv6 listeners are bound IPV6_V6ONLY, so the two families never share a port.
    if (fa != fb) return false;
    static const unsigned char any[16] = {};
    // The wildcard address takes the port on every address of its family.
    return std::memcmp(ba, bb, 16) == 0 || std::memcmp(ba, any, 16) == 0 ||
           std::memcmp(bb, any, 16) == 0;
}

namespace {

struct Parser {
    Config& cfg;
    std::string& error;

    bool fail(const std::string& msg) {
        error = msg;
        return false;
    }

    bool apply(const std::string& name, const std::string& value) {
        if (name == "--http" || name == "--files") {
            Address& a = name == "--http" ? cfg.http : cfg.files;
            if (!parse_address(value, a))
                return fail(name + ": '" + value +
                            "' is not HOST:PORT (IPv4, [IPv6] or localhost, port 0-65535)");
        } else if (name == "--data") {
            if (value.empty()) return fail("--data: the directory name is empty");
            cfg.data = value;
        } else if (name == "--token") {
            if (value.empty()) return fail("--token: the token is empty");
            for (unsigned char c : value)
                if (c <= 0x20 || c >= 0x7f)
                    return fail("--token: only visible ASCII characters, no spaces");
            cfg.token = value;
        } else if (name == "--watch") {
            if (value.empty()) return fail("--watch: the path is empty");
            cfg.watch.push_back(value);
            cfg.reload = true;
        } else if (name == "--grace") {
            if (!parse_seconds(value, cfg.grace))
                return fail("--grace: '" + value + "' is not a number of seconds");
        } else if (name == "--header-timeout" || name == "--idle-timeout") {
            double& d = name == "--header-timeout" ? cfg.header_timeout : cfg.idle_timeout;
            if (!parse_seconds(value, d) || d <= 0)
                return fail(name + ": '" + value + "' is not a positive number of seconds");
        } else if (name == "--partial-ttl") {
            if (!parse_seconds(value, cfg.partial_ttl) || cfg.partial_ttl < 1)
                return fail("--partial-ttl: '" + value +
                            "' is not a number of seconds (1 or more)");
        } else if (name == "--cors") {
            if (!valid_cors_origin(value))
                return fail("--cors: '" + value +
                            "' is not '*' or an origin like https://example.com[:port]");
            cfg.cors.push_back(value);
        } else if (name == "--max-upload") {
            if (!parse_u64(value, cfg.max_upload))
                return fail("--max-upload: '" + value + "' is not a number of bytes");
        } else if (name == "--max-conns") {
            std::uint64_t n;
            if (!parse_u64(value, n) || n == 0 || n > 1000000)
                return fail("--max-conns: '" + value + "' is not a number from 1 to 1000000");
            cfg.max_conns = static_cast<unsigned>(n);
        } else {
            return fail("unknown option '" + name + "' (see duet --help)");
        }
        return true;
    }
};

bool takes_value(const std::string& name) {
    static const char* const names[] = {"--http",         "--files",       "--data",
                                        "--token",        "--watch",       "--grace",
                                        "--max-upload",   "--max-conns",   "--header-timeout",
                                        "--idle-timeout", "--partial-ttl", "--cors"};
    for (const char* n : names)
        if (name == n) return true;
    return false;
}

// Applies the environment variables whose flags were not given: a flag beats its variable, so a
// bad value there does not matter once the flag overrides it.
bool apply_env(const GetEnv& getenv, const std::vector<std::string>& given, Parser& p) {
    static const char* const env_map[][2] = {{"DUET_HTTP", "--http"},
                                             {"DUET_FILES", "--files"},
                                             {"DUET_DATA", "--data"},
                                             {"DUET_TOKEN", "--token"}};
    for (auto& [env, flag] : env_map) {
        bool overridden = false;
        for (const std::string& g : given) overridden = overridden || g == flag;
        const char* v = overridden ? nullptr : getenv(env);
        // An empty DUET_TOKEN is a mistake, never "no authentication" (README "Tokens"); other
        // empty variables count as unset.
        bool token = std::string_view(flag) == "--token";
        if (v && (*v || token) && !p.apply(flag, v)) {
            p.error = std::string(env) + " (" + p.error + ")";
            return false;
        }
    }
    return true;
}

bool is_flag(const std::string& name) {
    return name == "--reload" || name == "--access-log" || name == "--check" || name == "--help" ||
           name == "--version";
}

}  // namespace

ConfigResult parse_config(int argc, const char* const* argv, const GetEnv& getenv, Config& out,
                          std::string& error) {
    out = Config{};
    Parser p{out, error};
    std::vector<std::string> given;
    for (int i = 1; i < argc; ++i) {
        std::string arg = argv[i];
        if (arg == "--help" || arg == "-h") return ConfigResult::Help;
        if (arg == "--version") return ConfigResult::Version;
        if (arg == "--reload") {
            out.reload = true;
            continue;
        }
        if (arg == "--access-log") {
            out.access_log = true;
            continue;
        }
        if (arg == "--check") {
            out.check = true;
            continue;
        }
        std::string name = arg, value;
        auto eq = arg.find('=');
        bool inline_value = arg.rfind("--", 0) == 0 && eq != std::string::npos;
        if (inline_value) {
            name = arg.substr(0, eq);
            value = arg.substr(eq + 1);
        }
        if (inline_value && is_flag(name)) {
            error = name + ": takes no value";
            return ConfigResult::Error;
        }
        if (!takes_value(name)) {
            error = (arg.rfind("-", 0) == 0 ? "unknown option '" + name + "'"
                                            : "unexpected argument '" + arg + "'") +
                    " (see duet --help)";
            return ConfigResult::Error;
        }
        if (!inline_value) {
            if (i + 1 >= argc) {
                error = name + ": missing value";
                return ConfigResult::Error;
            }
            value = argv[++i];
        }
        if (!p.apply(name, value)) return ConfigResult::Error;
        given.push_back(name);
    }
    if (!apply_env(getenv, given, p)) return ConfigResult::Error;
    // Caught here rather than at bind time, where the second bind would fail with "address
    // already in use" and point at duet itself as the holder.
    if (addresses_clash(out.http, out.files)) {
        error = "--http and --files name the same address (" + format_address(out.http) + " and " +
                format_address(out.files) + "): give each its own port";
        return ConfigResult::Error;
    }
    return ConfigResult::Run;
}

}  // namespace duet
