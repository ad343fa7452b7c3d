#include "duet/fileport/file_proto.hpp"

#include <cstring>

#include "duet/core/text.hpp"

namespace duet {
namespace {

constexpr std::size_t kMaxWords = 16;

// Splits on spaces and tabs. More than kMaxWords words: kMaxWords + 1 (the caller refuses it).
std::size_t split_words(std::string_view line, std::string_view* words) {
    std::size_t n = 0;
    std::size_t i = 0;
    while (i < line.size()) {
        while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
        if (i == line.size()) break;
        if (n == kMaxWords) return kMaxWords + 1;
        std::size_t start = i;
        while (i < line.size() && line[i] != ' ' && line[i] != '\t') ++i;
        words[n++] = line.substr(start, i - start);
    }
    return n;
}

bool all_digits(std::string_view s) {
    if (s.empty()) return false;
    for (char c : s)
        if (c < '0' || c > '9') return false;
    return true;
}

// The name is w[1] up to (not including) the first word from w[2] on that `ends_name` accepts;
// returns that index. A name of one word is percent-decoded into c.name and checked; more words
// mean raw spaces, refused. c.name_why says why the name is refused, or is empty.
template <class F>
std::size_t take_name(Command& c, const std::string_view* w, std::size_t n, F ends_name) {
    std::size_t k = 2;
    while (k < n && !ends_name(w[k])) ++k;
    if (k > 2)
        c.name_why = "invalid file name: a space must be written %20 on this port";
    else
        c.name_why = decode_path(w[1], c.name, c.folder);
    return k;
}

bool is_if_word(std::string_view w) {
    return w.size() >= 3 && iequals(w.substr(0, 3), "if=");
}

// "if=none" or "if=SHA256" (README "File port" preconditions).
bool parse_if(std::string_view w, Precondition& pre) {
    std::string_view v = w.substr(3);
    if (iequals(v, "none")) {
        pre.kind = Precondition::Kind::MustNotExist;
        return true;
    }
    if (!parse_hex_digest(v, pre.etag)) return false;
    pre.kind = Precondition::Kind::MustMatch;
    return true;
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
    {"PUT", Verb::Put},       {"GET", Verb::Get},         {"STAT", Verb::Stat},
    {"LIST", Verb::List},     {"DEL", Verb::Del},         {"AUTH", Verb::Auth},
    {"PING", Verb::Ping},     {"HELP", Verb::Help},       {"QUIT", Verb::Quit},
    {"RESUME", Verb::Resume}, {"PARTIAL", Verb::Partial}, {"MKDIR", Verb::Mkdir},
    {"MOVE", Verb::Move}};

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

// PUT and RESUME: NAME [SIZE [SHA256]] [if=SHA256|if=none]; RESUME needs the SIZE. Every refusal
// closes, since the upload's bytes follow the line.
Command parse_upload(Command c, const std::string_view* w, std::size_t n, bool size_required,
                     const char* usage_text) {
    if (n >= 3 && is_if_word(w[n - 1])) {
        if (!parse_if(w[n - 1], c.pre))
            return usage(c, "ERR 400 if= takes a SHA256 (64 hex digits) or none", true);
        --n;
    }
    if (n < (size_required ? 3u : 2u)) return usage(c, usage_text, true);
    std::size_t k = take_name(c, w, n, all_digits);
    if (!c.name_why.empty()) {
        c.bad_name = true;
        return usage(c, "ERR 400 invalid file name", true);
    }
    if (n - k > 2 || (size_required && k == n)) return usage(c, usage_text, true);
    if (k < n) {
        c.sized = true;
        if (!to_u64(w[k], c.size)) return usage(c, "ERR 400 SIZE must be a number", true);
    }
    if (k + 1 < n) {
        if (!parse_hex_digest(w[k + 1], c.digest))
            return usage(c, "ERR 400 SHA256 must be 64 hex digits", true);
        c.has_digest = true;
    }
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
    std::string_view w[kMaxWords + 1];
    std::size_t n = split_words(line, w);
    Command c;
    if (n == 0) return c;
    c.verb = verb_of(w[0]);
    if (n > kMaxWords) {
        // The bytes that follow a PUT cannot be told apart from commands: answer and close.
        return usage(c, "ERR 400 too many words", c.verb == Verb::Put || c.verb == Verb::Resume);
    }
    auto bad_name = [&c](bool closes) {
        c.bad_name = true;
        return usage(c, "ERR 400 invalid file name", closes);
    };
    switch (c.verb) {
        case Verb::Put:
            // The bytes that follow a PUT cannot be told apart from commands, so any refusal of
            // the command itself leaves the stream out of step: answer and close.
            return parse_upload(c, w, n, false,
                                "ERR 400 usage: PUT NAME [SIZE [SHA256]] [if=SHA256|if=none]");
        case Verb::Resume:
            // Like a sized PUT, its bytes follow; the name and if= are read by the same rules.
            return parse_upload(c, w, n, true,
                                "ERR 400 usage: RESUME NAME SIZE [SHA256] [if=SHA256|if=none]");
        case Verb::Partial:
            if (n >= 2) {
                take_name(c, w, n, [](std::string_view) { return false; });
                if (!c.name_why.empty()) return bad_name(false);
            }
            return c;
        case Verb::Get: {
            if (n < 2) return usage(c, "ERR 400 usage: GET NAME [OFFSET [LENGTH]]");
            std::size_t k = take_name(c, w, n, all_digits);
            if (!c.name_why.empty()) return bad_name(false);
            if (n - k > 2) return usage(c, "ERR 400 usage: GET NAME [OFFSET [LENGTH]]");
            if (k < n && !to_u64(w[k], c.offset))
                return usage(c, "ERR 400 OFFSET must be a number");
            if (k + 1 < n && !to_u64(w[k + 1], c.length))
                return usage(c, "ERR 400 LENGTH must be a number");
            return c;
        }
        case Verb::Stat:
        case Verb::Del: {
            if (c.verb == Verb::Del && n >= 3 && is_if_word(w[n - 1])) {
                if (!parse_if(w[n - 1], c.pre))
                    return usage(c, "ERR 400 if= takes a SHA256 (64 hex digits) or none");
                --n;
            }
            if (n < 2)
                return usage(c, c.verb == Verb::Stat
                                    ? "ERR 400 usage: STAT NAME"
                                    : "ERR 400 usage: DEL NAME [if=SHA256|if=none]");
            take_name(c, w, n, [](std::string_view) { return false; });
            if (!c.name_why.empty()) return bad_name(false);
            return c;
        }
        case Verb::Auth:
            if (n != 2) return usage(c, "ERR 400 usage: AUTH TOKEN");
            c.name = std::string(w[1]);
            return c;
        case Verb::List: {
            std::size_t k = 1;
            if (k < n && w[k] == "-r") {
                c.recursive = true;
                ++k;
            }
            if (n - k > 1) return usage(c, "ERR 400 usage: LIST [-r] [PATH/]");
            c.folder = true;
            if (k < n) {
                c.name_why = decode_path(w[k], c.name, c.folder);
                if (!c.name_why.empty()) return bad_name(false);
                c.folder = true;  // LIST a/ and LIST a both list the folder a
            }
            return c;
        }
        case Verb::Mkdir:
            if (n != 2) return usage(c, "ERR 400 usage: MKDIR PATH/");
            take_name(c, w, n, [](std::string_view) { return false; });
            if (!c.name_why.empty()) return bad_name(false);
            if (c.name.empty()) return usage(c, "ERR 405 the top folder exists");
            return c;
        case Verb::Move: {
            if (n == 4 && is_if_word(w[3])) {
                if (!parse_if(w[3], c.pre))
                    return usage(c, "ERR 400 if= takes a SHA256 (64 hex digits) or none");
                --n;
            }
            if (n != 3) return usage(c, "ERR 400 usage: MOVE SRC DST [if=SHA256|if=none]");
            bool dest_folder = false;
            c.name_why = decode_path(w[1], c.name, c.folder);
            if (c.name_why.empty()) c.name_why = decode_path(w[2], c.dest, dest_folder);
            if (!c.name_why.empty()) return bad_name(false);
            if (c.name.empty() || c.dest.empty())
                return usage(c, "ERR 403 the top folder cannot be moved or replaced");
            return c;
        }
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
