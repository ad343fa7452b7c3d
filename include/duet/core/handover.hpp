#pragma once
// The reload hand-over container (README "Stop and reload", STYLE pattern 16): every client
// connection crosses the execve as one opaque record written by its protocol, plus the fds the
// records refer to by index. The server only carries records; it never looks inside one. The
// container is written into a sealed memfd whose number the next image finds in DUET_HANDOVER_FD.
//
// Layout (little-endian):
//   "DUETHO\r\n"  u32 format  u32 fd_count  u32 record_count
//   fd_count x i32            the fd numbers, valid in the new image (execve keeps them)
//   record_count x { u8 kind  u8 0  u16 record_version  u32 length  length bytes }
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "duet/core/fd.hpp"
#include "duet/core/handover_record.hpp"

namespace duet {

// The container format this image writes, and every one it reads (reported by --check).
inline constexpr std::uint32_t kHandoverFormat = 1;
inline constexpr std::uint32_t kHandoverFormatsRead[] = {1};

// Record kinds. Each protocol owns its kind and versions its own record.
inline constexpr char kRecordHttp = 'h';
inline constexpr char kRecordFiles = 'f';

// The line `--check` prints after its "ok" when a reload runs it (DUET_REPORT_HANDOVER=1 in its
// environment): "handover=1", the formats this image reads; a plain --check prints only "ok". The
// test hook DUET_TEST_HANDOVER_VERSIONS replaces the list, to make a reload fall back to a drain.
std::string handover_check_line();
// Whether a --check output names `format` in its "handover=" list. `seen` gets the list ("none"
// when the check printed none: an image from before hand-over records).
bool check_reads_format(std::string_view check_output, std::uint32_t format, std::string& seen);

struct HandoverRecord {
    char kind = 0;
    std::uint16_t version = 0;
    std::string body;
};

struct HandoverOut {
    HandoverFds fds;
    std::vector<HandoverRecord> records;
    // Test hook DUET_TEST_CORRUPT_HANDOVER=N: record N (from 1) gets a field length that runs past
    // its end, so the next image must refuse that record alone.
    std::size_t corrupt = 0;
};

// The memfd is made before any connection is taken apart, so that running out of fds then means
// a fall-back drain rather than cut connections.
Fd open_handover_memfd();
// Writes the container into `memfd` and seals it, clears close-on-exec on it and on every fd in
// the table, and returns its number (>= 5, clear of the listener slots 3 and 4). -errno on
// failure (the table's fds are then closed).
int write_handover(HandoverOut& out, Fd memfd);

struct HandoverIn {
    bool present = false;    // a reload passed one (DUET_HANDOVER_FD)
    std::string error;       // why it could not be read, when present
    std::vector<char> blob;  // the container bytes; records view into it (stable across moves)
    HandoverFds fds;
    struct Record {
        char kind;
        std::uint16_t version;
        std::string_view body;
    };
    std::vector<Record> records;
    // Sockets a reload passed that no record and no list claimed, closed at start (main.cpp).
    std::size_t unclaimed_sockets = 0;
};

// Reads and checks the container from `memfd` (which it closes). Marks every passed fd
// close-on-exec again. Called first thing in main, before this image opens any fd of its own, so
// that a damaged table can only name fds that were passed. false with a one-line reason on anything
// malformed; then no record is used, and every fd in the table is closed.
bool read_handover(int memfd, HandoverIn& in, std::string& error);

// Parses a container already in memory (read_handover and the unit tests). Does not touch fds.
bool parse_handover(std::string_view blob, std::vector<int>& fds,
                    std::vector<HandoverIn::Record>& records, std::string& error);

}  // namespace duet
