#pragma once
// The file port's command language (README "File port"), as pure functions: line framing and words
// in, a typed command or a one-line error out. No I/O.
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "duet/core/sha256.hpp"
#include "duet/store/store.hpp"

namespace duet {

inline constexpr std::size_t kMaxCommandLine = 4096;  // with its LF

enum class Verb : std::uint8_t {
    Put,
    Get,
    Stat,
    List,
    Del,
    Auth,
    Ping,
    Help,
    Quit,
    Resume,
    Partial,
    Mkdir,
    Move,
    Unknown
};

struct VerbName {
    std::string_view name;  // as the user types it (any case)
    Verb verb;
};
// The command table: every command name the port accepts.
std::span<const VerbName> verb_table();

struct Command {
    Verb verb = Verb::Unknown;
    std::string name;        // PUT/GET/STAT/DEL/RESUME/PARTIAL/LIST/MKDIR, decoded; AUTH's token
    bool folder = false;     // the path ended in '/' (README "Folders")
    bool recursive = false;  // LIST -r
    std::string dest;        // MOVE's destination, decoded
    bool sized = false;      // PUT NAME SIZE (always for RESUME)
    std::uint64_t size = 0;  // PUT, RESUME
    bool has_digest = false;
    Digest digest{};
    std::uint64_t offset = 0;           // GET
    std::uint64_t length = UINT64_MAX;  // GET: to the end unless given
    Precondition pre;                   // PUT/RESUME/DEL: a trailing if=SHA256 or if=none
    const char* error = nullptr;        // "ERR ..." text when the arguments are wrong
    bool error_closes = false;          // the byte stream is out of step after this error
    // The error is about the name: `name_why` says which rule it breaks.
    bool bad_name = false;
    std::string name_why;
};

enum class LineStatus : std::uint8_t { Line, Incomplete, TooLong };
// Finds one line in `buf`: Line with `line` (without LF and a CR before it) and `consumed`.
LineStatus next_line(std::string_view buf, std::string_view& line, std::size_t& consumed);

// Names are paths (README "Folders"): segments joined by '/', each percent-decoded on its own.
// Parses a non-empty line. Command names are case-insensitive; words are split on spaces, and
// names are percent-decoded ("PUT My%20Report.pdf 5"). When a command has more words before its
// numbers than it takes, they are read as one name with raw spaces in it ("PUT my file.txt 5"),
// which is refused as a name (say the space as %20) rather than as a bad SIZE.
Command parse_command(std::string_view line);

// The HELP text, one usage line per entry.
inline constexpr const char* kHelpLines[] = {
    "PUT NAME SIZE [SHA256] [if=SHA256|if=none]  then exactly SIZE bytes; answers OK SIZE SHA256",
    "  (names are percent-encoded: a space is %20, a % is %25; LIST and PARTIAL write them so)",
    "PUT NAME                then bytes until you half-close; answers OK SIZE SHA256",
    "GET NAME [OFFSET [LENGTH]]  answers OK LENGTH SHA256, then the bytes",
    "STAT NAME               answers OK SIZE SHA256 MTIME",
    "LIST [-r] [PATH/]       answers OK COUNT, then a file: NAME SIZE SHA256, a folder: NAME/ - -",
    "                        (-r: every file below, named from the folder listed)",
    "MKDIR PATH/             makes a folder (its parent must exist)",
    "MOVE SRC DST [if=SHA256|if=none]  renames a file or folder (if=none: ERR 412 if DST exists)",
    "DEL NAME [if=SHA256|if=none]  deletes the file (if= : ERR 412 unless it holds)",
    "RESUME NAME SIZE [SHA256] [if=SHA256|if=none]  OK OFFSET, then bytes OFFSET..; OK SIZE SHA256",
    "PARTIAL [NAME]          answers OK COUNT, then NAME OFFSET SIZE ID EXPIRES per partial upload",
    "AUTH TOKEN              authenticates the session",
    "PING                    answers OK pong",
    "HELP                    this list",
    "QUIT                    answers OK bye and closes",
    // Last, because it is what people typing into nc miss: without it the session hangs.
    "A session ends with QUIT or when the client half-closes its side (nc -N); a plain nc",
    "without -N keeps it open until --idle-timeout (default 60 s) passes with no command.",
};

}  // namespace duet
