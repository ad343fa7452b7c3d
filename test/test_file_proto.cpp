// The file port's line framing and command parser (README "File port").
#include <criterion/criterion.h>

#include <cctype>
#include <cstdint>
#include <cstring>
#include <iterator>
#include <string>
#include <string_view>

#include "duet/core/sha256.hpp"
#include "duet/fileport/file_proto.hpp"

using duet::Command;
using duet::LineStatus;
using duet::Verb;

namespace {

const std::string kHex = duet::to_hex(duet::Sha256::of("abc"));

bool error_is(const Command& c, const char* prefix) {
    return c.error && std::strncmp(c.error, prefix, std::strlen(prefix)) == 0;
}

}  // namespace

Test(file_proto, next_line_lf) {
    std::string_view line;
    std::size_t used = 0;
    cr_assert(duet::next_line("PING\nLIST\n", line, used) == LineStatus::Line);
    cr_expect(line == "PING");
    cr_expect_eq(used, 5u);
}

Test(file_proto, next_line_drops_one_cr) {
    std::string_view line;
    std::size_t used = 0;
    cr_assert(duet::next_line("PING\r\nx", line, used) == LineStatus::Line);
    cr_expect(line == "PING");
    cr_expect_eq(used, 6u);
    cr_assert(duet::next_line("a\r\r\n", line, used) == LineStatus::Line);
    cr_expect(line == "a\r");
    cr_assert(duet::next_line("\n", line, used) == LineStatus::Line);
    cr_expect(line.empty());
    cr_expect_eq(used, 1u);
}

Test(file_proto, next_line_incomplete) {
    std::string_view line;
    std::size_t used = 0;
    cr_expect(duet::next_line("", line, used) == LineStatus::Incomplete);
    cr_expect(duet::next_line("PING", line, used) == LineStatus::Incomplete);
    cr_expect(duet::next_line("PING\r", line, used) == LineStatus::Incomplete);
    std::string almost(duet::kMaxCommandLine - 1, 'a');
    cr_expect(duet::next_line(almost, line, used) == LineStatus::Incomplete);
}

Test(file_proto, next_line_limit_is_4096_with_the_lf) {
    std::string_view line;
    std::size_t used = 0;
    std::string exact(duet::kMaxCommandLine - 1, 'a');
    exact += '\n';
    cr_assert(duet::next_line(exact, line, used) == LineStatus::Line);
    cr_expect_eq(line.size(), duet::kMaxCommandLine - 1);
    cr_expect_eq(used, duet::kMaxCommandLine);

    std::string no_lf(duet::kMaxCommandLine, 'a');
    cr_expect(duet::next_line(no_lf, line, used) == LineStatus::TooLong);
    std::string lf_too_late = no_lf + "\n";
    cr_expect(duet::next_line(lf_too_late, line, used) == LineStatus::TooLong);
    // A short line followed by many bytes (an upload's data) is still a line.
    std::string then_data = "PUT a 5\n" + std::string(10000, 'x');
    cr_assert(duet::next_line(then_data, line, used) == LineStatus::Line);
    cr_expect(line == "PUT a 5");
}

Test(file_proto, every_verb) {
    struct {
        const char* line;
        Verb verb;
    } cases[] = {
        {"PUT a.txt", Verb::Put}, {"GET a.txt", Verb::Get}, {"STAT a.txt", Verb::Stat},
        {"LIST", Verb::List},     {"DEL a.txt", Verb::Del}, {"AUTH tok", Verb::Auth},
        {"PING", Verb::Ping},     {"HELP", Verb::Help},     {"QUIT", Verb::Quit},
        {"put a.txt", Verb::Put}, {"gEt a.txt", Verb::Get}, {"Stat a.txt", Verb::Stat},
        {"list", Verb::List},     {"dEL a.txt", Verb::Del}, {"auth tok", Verb::Auth},
        {"ping", Verb::Ping},     {"Help", Verb::Help},     {"qUIT", Verb::Quit},
    };
    for (const auto& c : cases) {
        Command cmd = duet::parse_command(c.line);
        cr_expect(cmd.verb == c.verb, "'%s'", c.line);
        cr_expect(cmd.error == nullptr, "'%s' gave %s", c.line, cmd.error);
    }
}

Test(file_proto, extra_spaces_between_words) {
    Command c = duet::parse_command("  GET   a.txt    10   20  ");
    cr_assert(c.error == nullptr, "%s", c.error);
    cr_expect(c.verb == Verb::Get);
    cr_expect(c.name == "a.txt");
    cr_expect_eq(c.offset, 10u);
    cr_expect_eq(c.length, 20u);
}

Test(file_proto, put_unsized) {
    Command c = duet::parse_command("PUT a.txt");
    cr_assert(c.error == nullptr);
    cr_expect(c.name == "a.txt");
    cr_expect_not(c.sized);
    cr_expect_not(c.has_digest);
}

Test(file_proto, put_with_size) {
    Command c = duet::parse_command("PUT a.txt 12345");
    cr_assert(c.error == nullptr);
    cr_expect(c.sized);
    cr_expect_eq(c.size, 12345u);
    cr_expect_not(c.has_digest);
    Command zero = duet::parse_command("PUT a.txt 0");
    cr_assert(zero.error == nullptr);
    cr_expect(zero.sized);
    cr_expect_eq(zero.size, 0u);
}

Test(file_proto, put_with_size_and_digest) {
    Command c = duet::parse_command("PUT a.txt 3 " + kHex);
    cr_assert(c.error == nullptr, "%s", c.error);
    cr_expect(c.sized);
    cr_expect_eq(c.size, 3u);
    cr_expect(c.has_digest);
    cr_expect(c.digest == duet::Sha256::of("abc"));
    std::string upper = kHex;
    for (char& ch : upper) ch = char(std::toupper(static_cast<unsigned char>(ch)));
    Command u = duet::parse_command("PUT a.txt 3 " + upper);
    cr_assert(u.error == nullptr);
    cr_expect(u.digest == duet::Sha256::of("abc"));
}

Test(file_proto, put_bad_size_closes) {
    const char* bad[] = {"PUT a.txt -1",   "PUT a.txt +1",  "PUT a.txt 1k",
                         "PUT a.txt 0x10", "PUT a.txt 1.5", "PUT a.txt 99999999999999999999"};
    for (const char* line : bad) {
        Command c = duet::parse_command(line);
        cr_expect(error_is(c, "ERR 400"), "'%s' gave %s", line, c.error);
        cr_expect(c.error_closes, "'%s' must close", line);
    }
}

Test(file_proto, put_bad_digest_closes) {
    std::string bad[] = {
        "PUT a.txt 3 abc",
        "PUT a.txt 3 " + kHex.substr(1),
        "PUT a.txt 3 " + kHex + "0",
        "PUT a.txt 3 " + kHex.substr(1) + "g",
    };
    for (const std::string& line : bad) {
        Command c = duet::parse_command(line);
        cr_expect(error_is(c, "ERR 400"), "'%s' gave %s", line.c_str(), c.error);
        cr_expect(c.error_closes, "'%s' must close", line.c_str());
    }
}

Test(file_proto, put_wrong_argument_count_closes) {
    std::string too_many = "PUT a.txt 3 " + kHex + " extra";
    const char* lines[] = {"PUT", "put   ", too_many.c_str()};
    for (const char* line : lines) {
        Command c = duet::parse_command(line);
        cr_expect(error_is(c, "ERR 400 usage: PUT"), "'%s' gave %s", line, c.error);
        cr_expect(c.error_closes, "'%s' must close", line);
    }
}

Test(file_proto, get_with_offset_and_length) {
    Command whole = duet::parse_command("GET a.txt");
    cr_assert(whole.error == nullptr);
    cr_expect(whole.name == "a.txt");
    cr_expect_eq(whole.offset, 0u);
    cr_expect_eq(whole.length, UINT64_MAX);
    Command from = duet::parse_command("GET a.txt 100");
    cr_assert(from.error == nullptr);
    cr_expect_eq(from.offset, 100u);
    cr_expect_eq(from.length, UINT64_MAX);
    Command part = duet::parse_command("GET a.txt 100 0");
    cr_assert(part.error == nullptr);
    cr_expect_eq(part.offset, 100u);
    cr_expect_eq(part.length, 0u);
}

Test(file_proto, get_bad_numbers_keep_the_session) {
    const char* lines[] = {"GET a.txt -1", "GET a.txt x", "GET a.txt 1 -1", "GET a.txt 1 1e3"};
    for (const char* line : lines) {
        Command c = duet::parse_command(line);
        cr_expect(error_is(c, "ERR 400"), "'%s' gave %s", line, c.error);
        cr_expect_not(c.error_closes, "'%s' must not close", line);
    }
}

Test(file_proto, wrong_argument_counts_are_usage_errors) {
    struct {
        const char* line;
        const char* error;
    } cases[] = {
        {"GET", "ERR 400 usage: GET"},
        {"GET a 1 2 3", "ERR 400 usage: GET"},
        {"STAT", "ERR 400 usage: STAT"},
        {"STAT a b", "ERR 400 invalid file name"},
        {"DEL", "ERR 400 usage: DEL"},
        {"DEL a b", "ERR 400 invalid file name"},
        {"AUTH", "ERR 400 usage: AUTH"},
        {"AUTH a b", "ERR 400 usage: AUTH"},
        {"LIST a b", "ERR 400 usage: LIST"},
        {"LIST -r a b", "ERR 400 usage: LIST"},
        {"MKDIR", "ERR 400 usage: MKDIR"},
        {"PING x", "ERR 400"},
        {"HELP me", "ERR 400"},
        {"QUIT now", "ERR 400"},
        {"LIST a b c d e f g h i j", "ERR 400"},
    };
    for (const auto& c : cases) {
        Command cmd = duet::parse_command(c.line);
        cr_expect(error_is(cmd, c.error), "'%s' gave %s", c.line, cmd.error);
        cr_expect_not(cmd.error_closes, "'%s' must not close", c.line);
    }
}

Test(file_proto, unknown_command_keeps_the_session) {
    const char* lines[] = {"FOO", "foo bar", "PUTX a", "GETS a", "P", "\x01"};
    for (const char* line : lines) {
        Command c = duet::parse_command(line);
        cr_expect(c.verb == Verb::Unknown, "'%s'", line);
        cr_expect(error_is(c, "ERR 400 unknown command"), "'%s' gave %s", line, c.error);
        cr_expect_not(c.error_closes, "'%s'", line);
    }
}

Test(file_proto, auth_keeps_the_token) {
    Command c = duet::parse_command("AUTH s3cret-Token");
    cr_assert(c.error == nullptr);
    cr_expect(c.name == "s3cret-Token");
}

Test(file_proto, help_text_has_a_line_per_command) {
    // Every command in the command table has a usage line starting with its name, and the text
    // ends with how a session ends (what people typing into nc miss).
    for (const duet::VerbName& v : duet::verb_table()) {
        bool found = false;
        for (const char* l : duet::kHelpLines)
            found = found ||
                    std::string_view(l).substr(0, v.name.size() + 1) == std::string(v.name) + " ";
        cr_expect(found, "no HELP line for %.*s", int(v.name.size()), v.name.data());
    }
    cr_expect(std::strstr(duet::kHelpLines[0], "if=SHA256|if=none") != nullptr);
    for (const char* l : duet::kHelpLines) cr_expect(std::strchr(l, '\n') == nullptr, "%s", l);
    std::string last = std::string(std::end(duet::kHelpLines)[-2]) + std::end(duet::kHelpLines)[-1];
    cr_expect(last.find("QUIT") != std::string::npos && last.find("nc -N") != std::string::npos,
              "%s", last.c_str());
}

// ---- issue 9: preconditions and names with spaces ----

Test(file_proto, put_and_del_take_if_preconditions) {
    using K = duet::Precondition::Kind;
    Command a = duet::parse_command("PUT a.txt 3 if=" + kHex);
    cr_assert(a.error == nullptr, "%s", a.error);
    cr_expect(a.sized && a.size == 3 && !a.has_digest);
    cr_expect(a.pre.kind == K::MustMatch && a.pre.etag == duet::Sha256::of("abc"));
    Command b = duet::parse_command("PUT a.txt 3 " + kHex + " IF=NONE");
    cr_assert(b.error == nullptr, "%s", b.error);
    cr_expect(b.has_digest && b.pre.kind == K::MustNotExist);
    Command c = duet::parse_command("DEL a.txt if=none");
    cr_assert(c.error == nullptr, "%s", c.error);
    cr_expect(c.name == "a.txt" && c.pre.kind == K::MustNotExist);
    Command d = duet::parse_command("DEL a.txt if=" + kHex);
    cr_assert(d.error == nullptr);
    cr_expect(d.pre.kind == K::MustMatch);
    Command plain = duet::parse_command("PUT a.txt 3");
    cr_expect(plain.pre.kind == K::None);
}

Test(file_proto, bad_if_values_are_refused) {
    Command a = duet::parse_command("PUT a.txt 3 if=maybe");
    cr_expect(error_is(a, "ERR 400 if="), "%s", a.error);
    cr_expect(a.error_closes);
    Command b = duet::parse_command("DEL a.txt if=abc");
    cr_expect(error_is(b, "ERR 400 if="), "%s", b.error);
    cr_expect_not(b.error_closes);
}

Test(file_proto, a_name_with_spaces_is_an_invalid_name_not_a_bad_size) {
    struct {
        const char* line;
        bool closes;
    } cases[] = {
        {"PUT a b 5", true},
        {"PUT my file.txt 5", true},
        {"PUT my  file.txt 5 if=none", true},
        {"PUT a.txt -1", true},
        {"GET my file.txt", false},
        {"GET my file.txt 10 20", false},
        {"STAT my file.txt", false},
        {"DEL my file.txt if=none", false},
    };
    for (const auto& c : cases) {
        Command cmd = duet::parse_command(c.line);
        cr_expect(cmd.bad_name, "'%s' gave %s", c.line, cmd.error);
        cr_expect(error_is(cmd, "ERR 400 invalid file name"), "'%s' gave %s", c.line, cmd.error);
        cr_expect(cmd.name_why == "invalid file name: a space must be written %20 on this port",
                  "'%s': %s", c.line, cmd.name_why.c_str());
        cr_expect_eq(cmd.error_closes, c.closes, "'%s'", c.line);
    }
    // Percent-encoded, the same name is fine, and decoded.
    Command enc = duet::parse_command("PUT my%20file.txt 5");
    cr_expect(!enc.bad_name && enc.error == nullptr && enc.name == "my file.txt", "%s",
              enc.name.c_str());
    Command pct = duet::parse_command("GET 100%25%20na%C3%AFve");
    cr_expect(pct.name == "100% na\xc3\xafve", "%s", pct.name.c_str());
    Command bad_escape = duet::parse_command("STAT a%2");
    cr_expect(bad_escape.bad_name &&
              bad_escape.name_why == "invalid file name: bad percent escape at byte 2");
    // A bad name on its own (one word) is found first too.
    Command bad = duet::parse_command("PUT .hidden 5");
    cr_expect(bad.bad_name && bad.error_closes);
}
