#include "duet/file_proto.hpp"

#include <cstring>

#include "duet/http_parser.hpp"

namespace duet {
namespace {

constexpr std::size_t kMaxWords = 8;

std::size_t split_words(std::string_view line, std::string_view* words) {
    std::size_t n = 0;
    std::size_t i = 0;
    while (i < line.size() && n < kMaxWords) {
        while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
        if (i == line.size()) break;
        std::size_t start = i;
        while (i < line.size() && line[i] != ' ' && line[i] != '\t') ++i;
        words[n++] = line.substr(start, i - start);
    }
    return n;
}

bool to_u64(std::string_view s, std::uint64_t& out) {
    if (s.empty() || s.size() > 19) return false;
    std::uint64_t v = 0;
    for (char c : s) {
        if (c < '0' || c > '9') return false;
        v = v * 10 + std::uint64_t(c - '0');
    }
    out = v;
    return true;
}

// Every command the port knows. Read by verb_of, and by the README test through verb_table().
constexpr VerbName kVerbs[] = {
    {"PUT", Verb::Put},   {"GET", Verb::Get},       {"STAT", Verb::Stat},      {"LIST", Verb::List},
    {"DEL", Verb::Del},   {"AUTH", Verb::Auth},     {"PING", Verb::Ping},      {"HELP", Verb::Help},
    {"QUIT", Verb::Quit}, {"RESUME", Verb::Resume}, {"PARTIAL", Verb::Partial}};

Verb verb_of(std::string_view w) {
    for (auto& v : kVerbs)
        if (iequals(w, v.name)) return v.verb;
    return Verb::Unknown;
}

Command usage(Command c, const char* text, bool closes = false) {
    c.error = text;
    c.error_closes = closes;
    return c;
}

}  // namespace

std::span<const VerbName> verb_table() {
    return kVerbs;
}

LineStatus next_line(std::string_view buf, std::string_view& line, std::size_t& consumed) {
    if (buf.empty()) return LineStatus::Incomplete;  // also: no buffer at all (data() is null)
    std::size_t limit = buf.size() < kMaxCommandLine ? buf.size() : kMaxCommandLine;
    const void* lf = std::memchr(buf.data(), '\n', limit);
    if (!lf) return buf.size() >= kMaxCommandLine ? LineStatus::TooLong : LineStatus::Incomplete;
    std::size_t at = std::size_t(static_cast<const char*>(lf) - buf.data());
    consumed = at + 1;
    line = buf.substr(0, at);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    return LineStatus::Line;
}

Command parse_command(std::string_view line) {
    std::string_view w[kMaxWords];
    std::size_t n = split_words(line, w);
    Command c;
    if (n == 0) return c;
    c.verb = verb_of(w[0]);
    switch (c.verb) {
        case Verb::Put: {
            // The bytes that follow a PUT cannot be told apart from commands, so any refusal of
            // the command itself leaves the stream out of step: answer and close.
            if (n < 2 || n > 4) return usage(c, "ERR 400 usage: PUT NAME [SIZE [SHA256]]", true);
            c.name = w[1];
            if (n >= 3) {
                c.sized = true;
                if (!to_u64(w[2], c.size)) return usage(c, "ERR 400 SIZE must be a number", true);
            }
            if (n == 4) {
                if (!parse_hex_digest(w[3], c.digest))
                    return usage(c, "ERR 400 SHA256 must be 64 hex digits", true);
                c.has_digest = true;
            }
            return c;
        }
        case Verb::Resume:
            // Like a sized PUT, its bytes follow: a refusal leaves the stream out of step.
            if (n < 3 || n > 4) return usage(c, "ERR 400 usage: RESUME NAME SIZE [SHA256]", true);
            c.name = w[1];
            c.sized = true;
            if (!to_u64(w[2], c.size)) return usage(c, "ERR 400 SIZE must be a number", true);
            if (n == 4) {
                if (!parse_hex_digest(w[3], c.digest))
                    return usage(c, "ERR 400 SHA256 must be 64 hex digits", true);
                c.has_digest = true;
            }
            return c;
        case Verb::Partial:
            if (n > 2) return usage(c, "ERR 400 usage: PARTIAL [NAME]");
            if (n == 2) c.name = w[1];
            return c;
        case Verb::Get:
            if (n < 2 || n > 4) return usage(c, "ERR 400 usage: GET NAME [OFFSET [LENGTH]]");
            c.name = w[1];
            if (n >= 3 && !to_u64(w[2], c.offset))
                return usage(c, "ERR 400 OFFSET must be a number");
            if (n == 4 && !to_u64(w[3], c.length))
                return usage(c, "ERR 400 LENGTH must be a number");
            return c;
        case Verb::Stat:
        case Verb::Del:
            if (n != 2)
                return usage(c, c.verb == Verb::Stat ? "ERR 400 usage: STAT NAME"
                                                     : "ERR 400 usage: DEL NAME");
            c.name = w[1];
            return c;
        case Verb::Auth:
            if (n != 2) return usage(c, "ERR 400 usage: AUTH TOKEN");
            c.name = w[1];
            return c;
        case Verb::List:
        case Verb::Ping:
        case Verb::Help:
        case Verb::Quit:
            if (n != 1) return usage(c, "ERR 400 this command takes no arguments");
            return c;
        case Verb::Unknown:
            return usage(c, "ERR 400 unknown command");
    }
    return c;
}

}  // namespace duet
