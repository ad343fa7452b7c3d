// parse_config with a fake environment: defaults, every option with good and bad values, both
// "--opt value" and "--opt=value", environment variables and their precedence, and addresses.
#include <arpa/inet.h>
#include <criterion/criterion.h>

#include <cstdint>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "duet/core/config.hpp"
#include "duet/core/ipv4.hpp"

using duet::Config;
using duet::ConfigResult;

namespace {

using Env = std::map<std::string, std::string>;

struct Parsed {
    ConfigResult result = ConfigResult::Error;
    Config cfg;
    std::string error;
};

Parsed parse(const std::vector<std::string>& args, const Env& env = {}) {
    std::vector<const char*> argv{"duet"};
    for (const std::string& a : args) argv.push_back(a.c_str());
    argv.push_back(nullptr);
    duet::GetEnv getenv = [&env](const char* name) -> const char* {
        auto it = env.find(name);
        return it == env.end() ? nullptr : it->second.c_str();
    };
    Parsed p;
    p.result = duet::parse_config(int(argv.size() - 1), argv.data(), getenv, p.cfg, p.error);
    return p;
}

// The option is refused with an error line that names it.
void expect_refused(const std::vector<std::string>& args, const std::string& names,
                    const Env& env = {}) {
    Parsed p = parse(args, env);
    std::string joined;
    for (const std::string& a : args) joined += a + " ";
    cr_expect(p.result == ConfigResult::Error, "accepted: %s", joined.c_str());
    cr_expect(p.error.find(names) != std::string::npos, "'%s' does not name %s (args: %s)",
              p.error.c_str(), names.c_str(), joined.c_str());
    cr_expect(p.error.find('\n') == std::string::npos, "error is one line: '%s'", p.error.c_str());
}

Parsed accepted(const std::vector<std::string>& args, const Env& env = {}) {
    Parsed p = parse(args, env);
    cr_assert(p.result == ConfigResult::Run, "refused (%s)", p.error.c_str());
    return p;
}

}  // namespace

Test(config, defaults) {
    Parsed p = accepted({});
    const Config& c = p.cfg;
    cr_expect_eq(c.http.host, "127.0.0.1");
    cr_expect_eq(c.http.port, 8000);
    cr_expect_eq(c.files.host, "127.0.0.1");
    cr_expect_eq(c.files.port, 8001);
    cr_expect_eq(c.data, "./data");
    cr_expect(c.token.empty());
    cr_expect_not(c.reload);
    cr_expect(c.watch.empty());
    cr_expect_eq(c.grace, 10.0);
    cr_expect_eq(c.max_upload, UINT64_MAX);
    cr_expect_eq(c.max_conns, 10000u);
    cr_expect_eq(c.header_timeout, 10.0);
    cr_expect_eq(c.idle_timeout, 60.0);
    cr_expect_not(c.access_log);
    cr_expect_not(c.check);
}

Test(config, addresses_good) {
    Parsed p = accepted({"--http", "0.0.0.0:9000", "--files", "[::1]:0"});
    cr_expect_eq(p.cfg.http.host, "0.0.0.0");
    cr_expect_eq(p.cfg.http.port, 9000);
    cr_expect_eq(p.cfg.files.host, "::1");
    cr_expect_eq(p.cfg.files.port, 0);
    Parsed q = accepted({"--http=localhost:65535", "--files=127.0.0.1:1"});
    cr_expect_eq(q.cfg.http.host, "localhost");
    cr_expect_eq(q.cfg.http.port, 65535);
    cr_expect_eq(q.cfg.files.port, 1);
}

Test(config, addresses_bad) {
    const char* bad[] = {"example.com:80",
                         "127.0.0.1",
                         "127.0.0.1:",
                         "127.0.0.1:65536",
                         "127.0.0.1:-1",
                         ":8000",
                         "::1:8000",
                         "[::1]",
                         "[::1]8000",
                         "1.2.3:80",
                         "[127.0.0.1]:80",
                         "localhost:http",
                         ""};
    for (const char* a : bad) {
        expect_refused({"--http", a}, "--http");
        expect_refused({std::string("--files=") + a}, "--files");
    }
}

Test(config, the_two_addresses_must_differ) {
    const char* clash[][2] = {
        {"127.0.0.1:8000", "127.0.0.1:8000"}, {"localhost:8000", "127.0.0.1:8000"},
        {"0.0.0.0:8000", "127.0.0.1:8000"},   {"127.0.0.1:8000", "0.0.0.0:8000"},
        {"[::1]:8000", "[::1]:8000"},         {"[::]:8000", "[::1]:8000"},
        {"[::1]:8000", "[0:0::1]:8000"},
    };
    for (auto& c : clash) {
        expect_refused({"--http", c[0], "--files", c[1]},
                       "--http and --files name the same address");
        // Also when one of them comes from the environment.
        expect_refused({"--files", c[1]}, "--http and --files name the same address",
                       {{"DUET_HTTP", c[0]}});
    }
    const char* differ[][2] = {
        {"127.0.0.1:0", "127.0.0.1:0"},  // each gets its own free port
        {"127.0.0.1:8000", "127.0.0.1:8001"}, {"127.0.0.1:8000", "127.0.0.2:8000"},
        {"0.0.0.0:8000", "[::]:8000"},  // IPv6 listeners are IPV6_V6ONLY
        {"127.0.0.1:8000", "[::1]:8000"},
    };
    for (auto& c : differ) accepted({"--http", c[0], "--files", c[1]});
    Parsed p = parse({"--http", "127.0.0.1:8000", "--files", "localhost:8000"});
    cr_expect_eq(p.error,
                 "--http and --files name the same address (127.0.0.1:8000 and localhost:8000): "
                 "give each its own port");
    cr_expect(!duet::addresses_clash({"::1", 80}, {"::1", 81}));
    cr_expect(duet::addresses_clash({"::", 80}, {"::1", 80}));
}

Test(config, data_dir) {
    cr_expect_eq(accepted({"--data", "/tmp/store"}).cfg.data, "/tmp/store");
    cr_expect_eq(accepted({"--data=rel/dir"}).cfg.data, "rel/dir");
    expect_refused({"--data", ""}, "--data");
    expect_refused({"--data="}, "--data");
}

Test(config, token) {
    cr_expect_eq(accepted({"--token", "s3cret-Token"}).cfg.token, "s3cret-Token");
    cr_expect_eq(accepted({"--token=a=b"}).cfg.token, "a=b");  // only the first '=' splits
    expect_refused({"--token", ""}, "--token");
    expect_refused({"--token", "two words"}, "--token");
    expect_refused({"--token", "tab\there"}, "--token");
    expect_refused({"--token", "caf\xc3\xa9"}, "--token");
}

Test(config, flags) {
    Parsed p = accepted({"--reload", "--access-log", "--check"});
    cr_expect(p.cfg.reload);
    cr_expect(p.cfg.access_log);
    cr_expect(p.cfg.check);
    expect_refused({"--reload=yes"}, "--reload: takes no value");
    expect_refused({"--check=1"}, "--check: takes no value");
    expect_refused({"--access-log="}, "--access-log: takes no value");
}

Test(config, watch_is_repeatable_and_implies_reload) {
    Parsed p = accepted({"--watch", "conf", "--watch=templates/"});
    cr_expect(p.cfg.reload);
    cr_assert_eq(p.cfg.watch.size(), 2u);
    cr_expect_eq(p.cfg.watch[0], "conf");
    cr_expect_eq(p.cfg.watch[1], "templates/");
    expect_refused({"--watch", ""}, "--watch");
}

Test(config, seconds_options) {
    const char* names[] = {"--grace", "--header-timeout", "--idle-timeout"};
    for (const char* n : names) {
        std::string name = n;
        Parsed p = accepted({name, "2.5"});
        Parsed q = accepted({name + "=30"});
        double got = name == "--grace"            ? p.cfg.grace
                     : name == "--header-timeout" ? p.cfg.header_timeout
                                                  : p.cfg.idle_timeout;
        double got_q = name == "--grace"            ? q.cfg.grace
                       : name == "--header-timeout" ? q.cfg.header_timeout
                                                    : q.cfg.idle_timeout;
        cr_expect_eq(got, 2.5, "%s", n);
        cr_expect_eq(got_q, 30.0, "%s", n);
        const char* bad[] = {"",  "-1",   "+1", "1e3", "abc", "1.2.3",
                             ".", "0x10", "1 ", "inf", "nan", "99999999999"};
        for (const char* b : bad) expect_refused({name, b}, name);
    }
    cr_expect_eq(accepted({"--grace", "0"}).cfg.grace, 0.0);  // no waiting at all
    expect_refused({"--header-timeout", "0"}, "--header-timeout");
    expect_refused({"--idle-timeout", "0.0"}, "--idle-timeout");
}

Test(config, max_upload) {
    cr_expect_eq(accepted({"--max-upload", "1048576"}).cfg.max_upload, 1048576u);
    cr_expect_eq(accepted({"--max-upload=0"}).cfg.max_upload, 0u);
    cr_expect_eq(accepted({"--max-upload", "18446744073709551615"}).cfg.max_upload, UINT64_MAX);
    const char* bad[] = {"", "-1", "1M", "1.5", "18446744073709551616", "0x10"};
    for (const char* b : bad) expect_refused({"--max-upload", b}, "--max-upload");
}

Test(config, max_conns) {
    cr_expect_eq(accepted({"--max-conns", "1"}).cfg.max_conns, 1u);
    cr_expect_eq(accepted({"--max-conns=1000000"}).cfg.max_conns, 1000000u);
    const char* bad[] = {"", "0", "1000001", "-5", "many", "4294967297"};
    for (const char* b : bad) expect_refused({"--max-conns", b}, "--max-conns");
}

Test(config, missing_value_names_the_option) {
    const char* names[] = {"--http",           "--files",       "--data",       "--token",
                           "--watch",          "--grace",       "--max-upload", "--max-conns",
                           "--header-timeout", "--idle-timeout"};
    for (const char* n : names) expect_refused({n}, n);
}

Test(config, unknown_options_and_arguments) {
    expect_refused({"--nope"}, "--nope");
    expect_refused({"--nope=1"}, "--nope");
    expect_refused({"-x"}, "-x");
    expect_refused({"stray"}, "stray");
    expect_refused({"--http", "127.0.0.1:1", "stray"}, "stray");
}

Test(config, help_and_version) {
    cr_expect(parse({"--help"}).result == ConfigResult::Help);
    cr_expect(parse({"-h"}).result == ConfigResult::Help);
    cr_expect(parse({"--version"}).result == ConfigResult::Version);
    cr_expect(parse({"--data", "d", "--version"}).result == ConfigResult::Version);
    std::string usage = duet::usage_text();
    cr_expect(usage.find("--max-upload") != std::string::npos);
}

Test(config, environment_variables) {
    Env env{{"DUET_HTTP", "127.0.0.1:7000"},
            {"DUET_FILES", "[::1]:7001"},
            {"DUET_DATA", "/srv/duet"},
            {"DUET_TOKEN", "envtoken"}};
    Parsed p = accepted({}, env);
    cr_expect_eq(p.cfg.http.port, 7000);
    cr_expect_eq(p.cfg.files.host, "::1");
    cr_expect_eq(p.cfg.files.port, 7001);
    cr_expect_eq(p.cfg.data, "/srv/duet");
    cr_expect_eq(p.cfg.token, "envtoken");
}

Test(config, flag_beats_its_environment_variable) {
    Env env{{"DUET_HTTP", "127.0.0.1:7000"},
            {"DUET_FILES", "127.0.0.1:7001"},
            {"DUET_DATA", "/srv/duet"},
            {"DUET_TOKEN", "envtoken"}};
    Parsed p = accepted({"--http", "127.0.0.1:9000", "--files=localhost:9001", "--data", "here",
                         "--token", "flagtoken"},
                        env);
    cr_expect_eq(p.cfg.http.port, 9000);
    cr_expect_eq(p.cfg.files.host, "localhost");
    cr_expect_eq(p.cfg.files.port, 9001);
    cr_expect_eq(p.cfg.data, "here");
    cr_expect_eq(p.cfg.token, "flagtoken");
}

Test(config, bad_environment_variable_is_named) {
    expect_refused({}, "DUET_HTTP", Env{{"DUET_HTTP", "nonsense"}});
    expect_refused({}, "DUET_FILES", Env{{"DUET_FILES", "1.2.3.4:99999"}});
    expect_refused({}, "DUET_TOKEN", Env{{"DUET_TOKEN", "has space"}});
    expect_refused({"--data", "d"}, "DUET_TOKEN", Env{{"DUET_TOKEN", "has space"}});
}

Test(config, flag_beats_a_bad_environment_variable) {
    // The variable is only a default for its flag: once the flag is given it is not read at all.
    Env env{{"DUET_HTTP", "nonsense"}, {"DUET_TOKEN", "has space"}};
    Parsed p = accepted({"--http=127.0.0.1:1", "--token", "t"}, env);
    cr_expect_eq(p.cfg.http.port, 1);
    cr_expect_eq(p.cfg.token, "t");
}

Test(config, empty_environment_variable_is_unset) {
    Parsed p = accepted({}, Env{{"DUET_HTTP", ""}, {"DUET_DATA", ""}});
    cr_expect_eq(p.cfg.http.port, 8000);
    cr_expect_eq(p.cfg.data, "./data");
}

Test(config, empty_duet_token_is_refused_not_no_auth) {
    // README "Tokens": an empty token from the environment is a bad option, like --token=.
    expect_refused({}, "DUET_TOKEN", Env{{"DUET_TOKEN", ""}});
    // A flag still beats it.
    Parsed p = accepted({"--token", "t"}, Env{{"DUET_TOKEN", ""}});
    cr_expect_eq(p.cfg.token, "t");
}

Test(config, later_flag_wins) {
    Parsed p = accepted({"--grace", "1", "--grace", "2"});
    cr_expect_eq(p.cfg.grace, 2.0);
}

Test(config, parse_address_directly) {
    duet::Address a;
    cr_expect(duet::parse_address("127.0.0.1:8000", a));
    cr_expect_eq(a.host, "127.0.0.1");
    cr_expect_eq(a.port, 8000);
    cr_expect(duet::parse_address("[::1]:8000", a));
    cr_expect_eq(a.host, "::1");
    cr_expect_eq(a.port, 8000);
    cr_expect(duet::parse_address("localhost:0", a));
    cr_expect_eq(a.host, "localhost");
    cr_expect_eq(a.port, 0);
    cr_expect(duet::parse_address("[::]:1", a));
    duet::Address keep{"kept", 42};
    const char* bad[] = {
        "127.0.0.1:65536", "127.0.0.1:-1", "127.0.0.1:", "example.com:80", "LOCALHOST.:80",
        "my-host:80",      "localhost",    "[::1]:",     "[::1:80"};
    for (const char* b : bad) {
        cr_expect_not(duet::parse_address(b, keep), "accepted '%s'", b);
        cr_expect_eq(keep.host, "kept", "'%s' changed the address", b);
    }
}

Test(config, partial_ttl) {
    cr_expect_eq(accepted({}).cfg.partial_ttl, 86400.0);
    cr_expect_eq(accepted({"--partial-ttl", "60"}).cfg.partial_ttl, 60.0);
    for (const char* b : {"", "0", "0.5", "-1", "1h", "x"})
        expect_refused({"--partial-ttl", b}, "--partial-ttl");
}

Test(config, cors_is_repeatable_and_checked) {
    auto p = accepted({"--cors", "https://a.example", "--cors=*", "--cors", "http://b:8080"});
    cr_assert_eq(p.cfg.cors.size(), 3u);
    cr_expect_eq(p.cfg.cors[1], "*");
    cr_expect(accepted({}).cfg.cors.empty());
    for (const char* b : {"", "a.example", "https://", "https://a.example/path", "https://a b",
                          "https://u@a.example"})
        expect_refused({"--cors", b}, "--cors");
}

// parse_ipv4 / format_ipv4 replace inet_pton / inet_ntop for IPv4; those are the oracle.
Test(config, ipv4_text_matches_inet_pton) {
    const char* cases[] = {
        "0.0.0.0",  "127.0.0.1", "255.255.255.255", "1.2.3.4",    "10.0.0.255",    "256.0.0.1",
        "1.2.3",    "1.2.3.4.5", "01.2.3.4",        "1.2.3.04",   "1..2.3",        ".1.2.3",
        "1.2.3.",   "1.2.3.4 ",  " 1.2.3.4",        "1.2.3.-4",   "a.b.c.d",       "",
        "1.2.3.4x", "0x1.2.3.4", "999.1.1.1",       "1.2.3.2555", "192.168.001.1", "00.0.0.0"};
    for (const char* c : cases) {
        unsigned char want[4] = {}, got[4] = {};
        bool ok = inet_pton(AF_INET, c, want) == 1;
        cr_expect_eq(duet::parse_ipv4(c, got), ok, "'%s'", c);
        if (!ok) continue;
        cr_expect(std::memcmp(want, got, 4) == 0, "'%s'", c);
        char text[INET_ADDRSTRLEN];
        inet_ntop(AF_INET, want, text, sizeof text);
        std::string formatted = duet::format_ipv4(got);
        cr_expect_str_eq(formatted.c_str(), text);
    }
}
