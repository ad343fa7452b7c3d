// libFuzzer target for the file port's line framing and command parser (README "File port").
//
// The input is a session's byte stream. It is cut into lines with next_line exactly as the
// connection does (consume, repeat), on the whole buffer and on a prefix, and every line goes
// through parse_command. Checked: lines lie inside the buffer, names round-trip through the port's
// encoding, no line is over the limit or holds an LF, a prefix never frames a line differently
// from the whole stream, every refusal is an "ERR CODE text" line, and names that pass validation
// cannot leave the store.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "duet/fileport/file_proto.hpp"
#include "duet/store/names.hpp"

using namespace duet;

namespace {

[[noreturn]] void fail(const char* what) {
    std::fprintf(stderr, "fuzz_file_cmd: property violated: %s\n", what);
    std::abort();
}

#define CHECK(cond)               \
    do {                          \
        if (!(cond)) fail(#cond); \
    } while (0)

void check_inside(std::string_view v, std::string_view outer) {
    if (v.empty()) return;
    CHECK(v.data() >= outer.data() && v.data() + v.size() <= outer.data() + outer.size());
}

void check_command(std::string_view line) {
    Command c = parse_command(line);
    if (c.error) {
        CHECK(std::strncmp(c.error, "ERR ", 4) == 0);
        CHECK(c.error[4] >= '1' && c.error[4] <= '5');
        CHECK(std::strchr(c.error, '\n') == nullptr);
        return;
    }
    switch (c.verb) {
        case Verb::Put:
        case Verb::Get:
        case Verb::Stat:
        case Verb::Del:
        case Verb::Auth:
            CHECK(!c.name.empty() || c.folder);  // "/" is the top folder
            // A name is one word, percent-decoded: written back as the port writes names, it
            // decodes to itself.
            if (c.verb != Verb::Auth && !c.name.empty()) {
                std::string back;
                bool folder = false;
                CHECK(decode_path(port_encode(c.name), back, folder).empty() && back == c.name);
                CHECK(valid_path(c.name));
                CHECK(port_encode(c.name).find(' ') == std::string::npos);
            }
            break;
        case Verb::Unknown:
            // An empty line (only spaces) is ignored; anything else unknown is an error.
            for (char ch : line) CHECK(ch == ' ' || ch == '\t');
            break;
        default:
            break;
    }
    if (c.verb == Verb::Put && !c.sized) CHECK(!c.has_digest);
    if (valid_name(c.name)) {
        CHECK(c.name.size() <= 255 && c.name[0] != '.');
        CHECK(c.name.find('/') == std::string_view::npos);
        CHECK(c.name.find('\0') == std::string_view::npos);
    }
}

struct Framed {
    std::vector<std::pair<std::size_t, std::size_t>> lines;  // offset, length
    LineStatus last = LineStatus::Incomplete;
    std::size_t used = 0;
};

Framed frame(std::string_view all) {
    Framed f;
    std::size_t off = 0;
    for (std::size_t guard = 0; guard <= all.size() + 1; ++guard) {
        std::string_view rest = all.substr(off);
        std::string_view line;
        std::size_t consumed = 0;
        LineStatus st = next_line(rest, line, consumed);
        f.last = st;
        if (st != LineStatus::Line) break;
        CHECK(consumed > 0 && consumed <= rest.size() && consumed <= kMaxCommandLine);
        CHECK(rest[consumed - 1] == '\n');
        check_inside(line, rest.substr(0, consumed));
        CHECK(line.data() == rest.data());
        CHECK(line.find('\n') == std::string_view::npos);
        CHECK(line.size() + 1 == consumed ||
              (line.size() + 2 == consumed && rest[line.size()] == '\r'));
        f.lines.emplace_back(off, line.size());
        if (!line.empty()) check_command(line);
        off += consumed;
    }
    if (f.last == LineStatus::TooLong) CHECK(all.size() - off >= kMaxCommandLine);
    if (f.last == LineStatus::Incomplete) CHECK(all.size() - off < kMaxCommandLine);
    f.used = off;
    return f;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::unique_ptr<char[]> whole_copy(new char[size ? size : 1]);
    if (size) std::memcpy(whole_copy.get(), data, size);
    Framed whole = frame(std::string_view(whole_copy.get(), size));

    // One command line parsed on its own (no framing), as an exact-size copy.
    {
        std::size_t n = size < kMaxCommandLine ? size : kMaxCommandLine;
        std::unique_ptr<char[]> line(new char[n ? n : 1]);
        if (n) std::memcpy(line.get(), data, n);
        check_command(std::string_view(line.get(), n));
    }

    if (size == 0) return 0;
    std::uint32_t seed = 2166136261u;
    for (std::size_t i = 0; i < size && i < 8; ++i) seed = (seed ^ data[i]) * 16777619u;
    std::size_t cut = seed % (size + 1);
    std::unique_ptr<char[]> part_copy(new char[cut ? cut : 1]);
    if (cut) std::memcpy(part_copy.get(), data, cut);
    Framed part = frame(std::string_view(part_copy.get(), cut));
    // Every line the prefix frames is framed identically in the whole stream.
    CHECK(part.lines.size() <= whole.lines.size());
    for (std::size_t i = 0; i < part.lines.size(); ++i) CHECK(part.lines[i] == whole.lines[i]);
    if (part.last == LineStatus::TooLong) {
        CHECK(whole.last == LineStatus::TooLong && whole.lines.size() == part.lines.size());
    }
    return 0;
}
