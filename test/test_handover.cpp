// The reload hand-over's pure parts: the record field list (round trips, bounds checks on every
// truncation and on flipped bytes, fd indexes), the container, the --check version line, and the
// state carried for an upload: SHA-256 and chunked-decoder save/restore on both hash paths.
#include <criterion/criterion.h>
#include <fcntl.h>
#include <unistd.h>

#include <cstdint>
#include <string>
#include <vector>

#include "duet/core/handover.hpp"
#include "duet/core/handover_record.hpp"
#include "duet/core/sha256.hpp"
#include "duet/http/http_body.hpp"

using namespace duet;

namespace {

std::string sample_record(HandoverFds& fds) {
    RecordWriter w(fds);
    w.u64(1, 42);
    w.bytes(2, "half a head\r\nHo");
    w.flag(3, true);
    w.flag(4, false);  // not written at all
    RecordWriter sub = w.child();
    sub.u64(1, 7);
    sub.bytes(9, "x");
    sub.bytes(9, "y");
    w.record(5, sub);
    w.bytes(300, std::string(1000, 'z'));  // a tag this reader does not know: skipped
    return w.take();
}

std::string pseudo_random(std::size_t n, std::uint64_t seed) {
    std::string s(n, '\0');
    for (auto& c : s) {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        c = static_cast<char>(seed);
    }
    return s;
}

}  // namespace

Test(record, round_trip_of_every_field_type) {
    HandoverFds fds;
    std::string body = sample_record(fds);
    RecordReader r(fds);
    cr_assert(r.parse(body));
    std::uint64_t v = 0;
    cr_assert(r.u64(1, v));
    cr_assert_eq(v, 42u);
    cr_assert_eq(r.bytes(2), "half a head\r\nHo");
    cr_assert(r.flag(3));
    cr_assert_not(r.flag(4));
    cr_assert_not(r.has(4));
    cr_assert_eq(r.u64_or(6, 99), 99u);
    cr_assert_not(r.u64(2, v), "a 15-byte value is not a u64");
    RecordReader sub = r.child();
    cr_assert(r.record(5, sub));
    cr_assert_eq(sub.u64_or(1, 0), 7u);
    auto all = sub.all(9);
    cr_assert_eq(all.size(), 2u);
    cr_assert_eq(all[0], "x");
    cr_assert_eq(all[1], "y");
    cr_assert_eq(r.bytes(300).size(), 1000u);
}

Test(record, every_truncation_is_refused_or_a_clean_prefix) {
    HandoverFds fds;
    std::string body = sample_record(fds);
    for (std::size_t n = 0; n < body.size(); ++n) {
        RecordReader r(fds);
        bool ok = r.parse(std::string_view(body).substr(0, n));
        // Cut inside a field: refused, with a reason. Cut between fields: a shorter record.
        if (!ok) cr_assert_neq(r.error(), "", "cut at %zu gives no reason", n);
    }
}

Test(record, flipped_bytes_never_read_outside_the_record) {
    HandoverFds fds;
    std::string body = sample_record(fds);
    for (std::size_t i = 0; i < body.size(); ++i) {
        for (unsigned char flip : {0x01, 0x80, 0xff}) {
            std::string bad = body;
            bad[i] = static_cast<char>(bad[i] ^ flip);
            // Exact-size heap copy: an over-read is an ASan report.
            std::vector<char> copy(bad.begin(), bad.end());
            RecordReader r(fds);
            if (!r.parse(std::string_view(copy.data(), copy.size()))) continue;
            RecordReader sub = r.child();
            (void)r.record(5, sub);
            (void)r.u64_or(1, 0);
            (void)sub.all(9);
        }
    }
}

Test(record, field_length_past_the_end_is_refused) {
    HandoverFds fds;
    RecordWriter w(fds);
    w.bytes(2, "abcdef");
    std::string body = w.take();
    body[2] = '\x07';  // claims 7 bytes, holds 6
    RecordReader r(fds);
    cr_assert_not(r.parse(body));
    cr_assert_str_eq(r.error().c_str(), "a field runs past the record");
}

Test(record, fds_are_claimed_once_and_only_in_range) {
    HandoverFds fds;
    int p[2];
    cr_assert_eq(pipe2(p, O_CLOEXEC), 0);
    RecordWriter w(fds);
    w.fd(1, Fd(p[0]));
    w.u64(2, 5);  // an index past the table
    std::string body = w.take();
    ::close(p[1]);
    RecordReader r(fds);
    cr_assert(r.parse(body));
    Fd got;
    cr_assert_not(r.fd(2, got));
    cr_assert(r.fd(1, got));
    cr_assert_eq(got.get(), p[0]);
    Fd again;
    cr_assert_not(r.fd(1, again), "an fd is claimed once");
}

Test(container, round_trip_and_malformed_containers) {
    // Build a container by hand, as write_handover lays it out.
    auto le = [](std::string& s, std::uint64_t v, int n) {
        for (int i = 0; i < n; ++i) s += static_cast<char>((v >> (8 * i)) & 0xff);
    };
    std::string blob("DUETHO\r\n", 8);
    le(blob, kHandoverFormat, 4);
    le(blob, 2, 4);  // fds
    le(blob, 2, 4);  // records
    le(blob, 7, 4);
    le(blob, 9, 4);
    for (char kind : {kRecordHttp, kRecordFiles}) {
        blob += kind;
        blob += '\0';
        le(blob, 1, 2);
        le(blob, 3, 4);
        blob += "abc";
    }
    std::vector<int> fds;
    std::vector<HandoverIn::Record> recs;
    std::string err;
    cr_assert(parse_handover(blob, fds, recs, err), "%s", err.c_str());
    cr_assert_eq(fds.size(), 2u);
    cr_assert_eq(fds[1], 9);
    cr_assert_eq(recs.size(), 2u);
    cr_assert_eq(recs[1].kind, kRecordFiles);
    cr_assert_eq(recs[1].version, 1);
    cr_assert_eq(recs[1].body, "abc");

    for (std::size_t n = 0; n < blob.size(); ++n) {
        cr_assert_not(parse_handover(blob.substr(0, n), fds, recs, err), "cut at %zu", n);
        // Found by fuzz_handover: nothing half-read may be left for the caller.
        cr_assert(recs.empty() && fds.empty(), "cut at %zu left records behind", n);
    }
    cr_assert_not(parse_handover(blob + "x", fds, recs, err));
    std::string other = blob;
    other[8] = '\x02';  // format 2: not one this image reads
    cr_assert_not(parse_handover(other, fds, recs, err));
    cr_assert(err.find("format 2") != std::string::npos, "%s", err.c_str());
    std::string huge = blob;
    huge[12] = '\xff';  // an fd table far larger than the container
    cr_assert_not(parse_handover(huge, fds, recs, err));
}

Test(container, written_memfd_is_sealed_and_read_back) {
    HandoverOut out;
    int p[2];
    cr_assert_eq(pipe2(p, O_CLOEXEC), 0);
    RecordWriter w(out.fds);
    w.fd(1, Fd(p[0]));
    w.bytes(2, "state");
    out.records.push_back({kRecordHttp, 1, w.take()});
    int memfd = write_handover(out, open_handover_memfd());
    cr_assert_geq(memfd, 5);
    cr_assert_eq(fcntl(memfd, F_GETFD) & FD_CLOEXEC, 0, "the memfd must cross execve");
    cr_assert(fcntl(memfd, F_GET_SEALS) & F_SEAL_WRITE);
    cr_assert_lt(::write(memfd, "x", 1), 0, "sealed against writes");
    HandoverIn in;
    std::string err;
    cr_assert(read_handover(memfd, in, err), "%s", err.c_str());
    cr_assert_eq(in.records.size(), 1u);
    RecordReader r(in.fds);
    cr_assert(r.parse(in.records[0].body));
    Fd got;
    cr_assert(r.fd(1, got));
    cr_assert(fcntl(got.get(), F_GETFD) & FD_CLOEXEC, "close-on-exec again once read");
    cr_assert_eq(::write(p[1], "k", 1), 1);
    char c = 0;
    cr_assert_eq(::read(got.get(), &c, 1), 1);
    cr_assert_eq(c, 'k');
    ::close(p[1]);
}

Test(container, test_hook_corrupts_one_record_only) {
    HandoverOut out;
    for (int i = 0; i < 3; ++i) {
        RecordWriter w(out.fds);
        w.u64(1, std::uint64_t(i));
        out.records.push_back({kRecordHttp, 1, w.take()});
    }
    out.corrupt = 2;
    int memfd = write_handover(out, open_handover_memfd());
    HandoverIn in;
    std::string err;
    cr_assert(read_handover(memfd, in, err), "%s", err.c_str());
    cr_assert_eq(in.records.size(), 3u);
    for (std::size_t i = 0; i < 3; ++i) {
        RecordReader r(in.fds);
        cr_assert_eq(r.parse(in.records[i].body), i != 1, "record %zu", i + 1);
    }
}

Test(check_line, formats_read_by_the_new_image) {
    std::string seen;
    cr_assert(check_reads_format("ok\nduet: handover=1\n", 1, seen));
    cr_assert_eq(seen, "1");
    cr_assert(check_reads_format("ok\nduet: handover=2,1\n", 1, seen));
    cr_assert_not(check_reads_format("ok\nduet: handover=7\n", 1, seen));
    cr_assert_eq(seen, "7");
    cr_assert_not(check_reads_format("ok\nduet: handover=11\n", 1, seen));
    cr_assert_not(check_reads_format("ok\n", 1, seen), "an image from before hand-over records");
    cr_assert_eq(seen, "none");
    cr_assert(handover_check_line().starts_with("handover="));
}

static void sha_save_restore_on_every_split(bool portable) {
    sha256_impl::force_portable(portable);
    std::string data = pseudo_random(300, 5);
    Digest whole = Sha256::of(data);
    for (std::size_t cut = 0; cut <= data.size(); ++cut) {
        Sha256 a;
        a.update(data.data(), cut);
        std::string saved = a.save();
        Sha256 b;
        b.update("garbage", 7);
        cr_assert(b.restore(saved), "cut %zu", cut);
        b.update(data.data() + cut, data.size() - cut);
        cr_assert(b.finish() == whole, "cut %zu", cut);
    }
    sha256_impl::force_portable(false);
}

Test(sha256_state, save_restore_portable) {
    sha_save_restore_on_every_split(true);
}

Test(sha256_state, save_restore_with_the_fast_path_when_present) {
    sha_save_restore_on_every_split(false);
}

Test(sha256_state, restore_refuses_inconsistent_state) {
    Sha256 a;
    a.update("hello", 5);
    std::string saved = a.save();
    Sha256 b;
    cr_assert_not(b.restore(saved.substr(0, saved.size() - 1)));
    std::string bad = saved;
    bad[40] = 6;  // partial-block length disagrees with the byte count
    cr_assert_not(b.restore(bad));
    cr_assert_not(b.restore(""));
    cr_assert(b.restore(saved));
}

Test(chunked_state, save_restore_at_every_split_gives_the_same_body) {
    std::string body =
        "5;ext=1\r\nhello\r\n1a\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\nT: v\r\n\r\nNEXT";
    for (std::size_t cut = 0; cut <= body.size(); ++cut) {
        ChunkedDecoder a;
        std::string out;
        std::string_view in(body.data(), cut), data;
        ChunkedDecoder::Status st = ChunkedDecoder::Status::NeedMore;
        while (!in.empty() && st != ChunkedDecoder::Status::Done) {
            st = a.decode(in, data);
            out.append(data.data(), data.size());
            data = {};
        }
        ChunkedDecoder b;
        cr_assert(b.restore(a.save()), "cut %zu", cut);
        std::string_view rest(body.data() + (cut - in.size()), body.size() - (cut - in.size()));
        while (!rest.empty() && st != ChunkedDecoder::Status::Done) {
            st = b.decode(rest, data);
            cr_assert_neq(st, ChunkedDecoder::Status::Error, "cut %zu", cut);
            out.append(data.data(), data.size());
            data = {};
        }
        cr_assert_eq(st, ChunkedDecoder::Status::Done, "cut %zu", cut);
        cr_assert_eq(out, "helloabcdefghijklmnopqrstuvwxyz", "cut %zu", cut);
        cr_assert_eq(rest, "NEXT", "cut %zu", cut);
    }
}

Test(chunked_state, restore_refuses_impossible_state) {
    ChunkedDecoder d;
    std::string s = d.save();
    cr_assert(d.restore(s));
    cr_assert_not(d.restore(s.substr(1)));
    std::string bad = s;
    bad[13] = 100;  // no such state
    cr_assert_not(d.restore(bad));
    bad = s;
    bad[12] = 16;  // more size digits than the decoder allows
    cr_assert_not(d.restore(bad));
}
