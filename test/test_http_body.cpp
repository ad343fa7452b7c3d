// ChunkedDecoder: valid bodies decode to the exact data however the bytes are split; framing
// errors are found whole, byte by byte and at every split point; bytes after the body are left.
#include <criterion/criterion.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "duet/http/http_body.hpp"

using duet::ChunkedDecoder;
using Status = duet::ChunkedDecoder::Status;

namespace {

struct Outcome {
    Status status = Status::NeedMore;
    std::string data;      // all chunk data handed out
    std::string leftover;  // input not consumed after Done
    std::string error;
};

// Feeds `pieces` in order, as a connection would feed successive reads.
Outcome feed(const std::vector<std::string_view>& pieces) {
    ChunkedDecoder dec;
    Outcome out;
    for (std::size_t i = 0; i < pieces.size(); ++i) {
        std::string_view in = pieces[i];
        for (;;) {
            std::string_view data;
            Status st = dec.decode(in, data);
            if (st == Status::Data) {
                out.data.append(data);
                continue;
            }
            if (st == Status::NeedMore) break;
            out.status = st;
            if (st == Status::Error) {
                out.error = dec.error();
                return out;
            }
            out.leftover.assign(in);
            for (std::size_t j = i + 1; j < pieces.size(); ++j) out.leftover.append(pieces[j]);
            return out;
        }
    }
    out.status = Status::NeedMore;
    return out;
}

std::vector<std::string_view> bytes_of(std::string_view s) {
    std::vector<std::string_view> v;
    for (std::size_t i = 0; i < s.size(); ++i) v.push_back(s.substr(i, 1));
    return v;
}

// Feeds the input whole from the end of a page followed by an unreadable one.
Outcome feed_guarded(std::string_view s) {
    std::size_t page = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
    std::size_t readable = (s.size() / page + 1) * page;
    void* p =
        mmap(nullptr, readable + page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    cr_assert(p != MAP_FAILED);
    char* base = static_cast<char*>(p);
    cr_assert_eq(mprotect(base + readable, page, PROT_NONE), 0);
    char* at = base + readable - s.size();
    std::memcpy(at, s.data(), s.size());
    Outcome o = feed({std::string_view(at, s.size())});
    munmap(base, readable + page);
    return o;
}

bool same(const Outcome& a, const Outcome& b) {
    return a.status == b.status && a.data == b.data && a.leftover == b.leftover;
}

const char* name_of(Status s) {
    switch (s) {
        case Status::NeedMore:
            return "NeedMore";
        case Status::Data:
            return "Data";
        case Status::Done:
            return "Done";
        case Status::Error:
            return "Error";
    }
    return "?";
}

// Whole, guarded, byte by byte and split in two at every point: all the same outcome.
void check_all_ways(std::string_view in, const Outcome& want, const char* name) {
    Outcome whole = feed({in});
    cr_assert(same(whole, want), "%s: whole gave %s, %zu data bytes, leftover '%s' (%s)", name,
              name_of(whole.status), whole.data.size(), whole.leftover.c_str(),
              whole.error.c_str());
    cr_assert(same(feed_guarded(in), want), "%s: guarded", name);
    cr_assert(same(feed(bytes_of(in)), want), "%s: byte by byte", name);
    for (std::size_t k = 0; k <= in.size(); ++k) {
        Outcome o = feed({in.substr(0, k), in.substr(k)});
        cr_assert(same(o, want), "%s: split at %zu gave %s", name, k, name_of(o.status));
    }
}

struct ValidBody {
    const char* name;
    std::string body;
    std::string data;
};

std::vector<ValidBody> valid_bodies() {
    std::string big(300, 'x');
    for (std::size_t i = 0; i < big.size(); ++i) big[i] = char('a' + i % 26);
    return {
        {"empty body", "0\r\n\r\n", ""},
        {"one chunk", "5\r\nhello\r\n0\r\n\r\n", "hello"},
        {"several chunks", "3\r\nabc\r\n1\r\nd\r\na\r\n0123456789\r\n0\r\n\r\n", "abcd0123456789"},
        {"uppercase hex", "1A\r\n" + std::string(26, 'z') + "\r\n0\r\n\r\n", std::string(26, 'z')},
        {"lowercase hex", "12c\r\n" + big + "\r\n0\r\n\r\n", big},
        {"leading zeros in size", "0005\r\nhello\r\n000\r\n\r\n", "hello"},
        {"extensions", "5;a=b;c\r\nhello\r\n0;last=\"yes\"\r\n\r\n", "hello"},
        {"whitespace before extension", "5 ;a=b\r\nhello\r\n0\t;x\r\n\r\n", "hello"},
        {"trailers", "2\r\nhi\r\n0\r\nX-Sum: 1\r\nX-Other:two words\r\n\r\n", "hi"},
        {"extension grammar: BWS, tokens, quoted strings with escapes",
         "2 ; a = b ;c= \"x;y\\\"z\" ; d\r\nhi\r\n0;e=\"\"\r\n\r\n", "hi"},
        {"binary data with crlf inside", std::string("4\r\n\r\n\0\n\r\n0\r\n\r\n", 14),
         std::string("\r\n\0\n", 4)},
    };
}

struct BadBody {
    const char* name;
    std::string body;
};

std::vector<BadBody> bad_bodies() {
    std::string long_ext = "1;" + std::string(4100, 'e') + "\r\nx\r\n0\r\n\r\n";
    std::string long_trailers = "0\r\n";
    while (long_trailers.size() < 9000) long_trailers += "X-Trailer: 0123456789abcdef\r\n";
    long_trailers += "\r\n";
    return {
        {"bare lf in size line", "5\nhello\r\n0\r\n\r\n"},
        {"bare lf after extension", "5;a\nhello\r\n0\r\n\r\n"},
        {"bare lf after data", "5\r\nhello\n0\r\n\r\n"},
        {"bare lf ending last chunk", "0\n\r\n"},
        {"bare lf as final line", "0\r\n\n"},
        {"bare lf in trailer", "0\r\nX-A: b\n\r\n"},
        {"bare cr in size line", "5\rhello\r\n0\r\n\r\n"},
        {"bare cr after data", "5\r\nhello\rX0\r\n\r\n"},
        {"bare cr in trailer", "0\r\nX-A: b\rc\r\n\r\n"},
        {"bare cr as final line", "0\r\n\rX"},
        {"empty size", "\r\nhello\r\n0\r\n\r\n"},
        {"non-hex size", "g\r\nhello\r\n0\r\n\r\n"},
        {"hex prefix", "0x5\r\nhello\r\n0\r\n\r\n"},
        {"negative size", "-5\r\nhello\r\n0\r\n\r\n"},
        {"size with plus", "+5\r\nhello\r\n0\r\n\r\n"},
        {"space after size without extension", "5 \r\nhello\r\n0\r\n\r\n"},
        {"word after size", "5 x\r\nhello\r\n0\r\n\r\n"},
        {"16 hex digits", "1000000000000000\r\n"},
        {"16 hex digits with leading zeros", "0000000000000001\r\nx\r\n0\r\n\r\n"},
        {"size overflowing 64 bits", "10000000000000000\r\n"},
        {"data longer than size", "3\r\nhello\r\n0\r\n\r\n"},
        {"missing crlf after data", "5\r\nhello0\r\n\r\n"},
        {"extension over 4096 bytes", long_ext},
        {"trailers over 8192 bytes", long_trailers},
        {"trailer without colon", "0\r\nX-No-Colon\r\n\r\n"},
        {"nul in extension", std::string("1;a\0b\r\nx\r\n0\r\n\r\n", 15)},
        {"control byte in extension", "1;a\x01\r\nx\r\n0\r\n\r\n"},
        {"del in extension", "1;a\x7f\r\nx\r\n0\r\n\r\n"},
        {"control byte in trailer", "0\r\nX-A: \x1b\r\n\r\n"},
        // Chunk-extension syntax (RFC 9112 §7.1.1, issue 9).
        {"extension with empty name", "2;\r\nhi\r\n0\r\n\r\n"},
        {"extension with empty name before another", "2;;a\r\nhi\r\n0\r\n\r\n"},
        {"extension name starting with =", "2;=v\r\nhi\r\n0\r\n\r\n"},
        {"extension with = and no value", "2;a=\r\nhi\r\n0\r\n\r\n"},
        {"extension with unbalanced quote", "2;a=\"open\r\nhi\r\n0\r\n\r\n"},
        {"extension quote ending in an escape", "2;a=\"x\\\"\r\nhi\r\n0\r\n\r\n"},
        {"extension value not a token", "2;a=b@c\r\nhi\r\n0\r\n\r\n"},
        {"extension name with a bad byte", "2;a@b\r\nhi\r\n0\r\n\r\n"},
        {"extension bytes after a quoted value", "2;a=\"x\"y\r\nhi\r\n0\r\n\r\n"},
        {"extension two names without ;", "2;a b\r\nhi\r\n0\r\n\r\n"},
    };
}

}  // namespace

Test(http_body, decodes_valid_bodies_however_split) {
    for (const ValidBody& v : valid_bodies()) {
        Outcome want{Status::Done, v.data, "", ""};
        check_all_ways(v.body, want, v.name);
    }
}

Test(http_body, leaves_bytes_after_the_body) {
    const std::string next = "GET / HTTP/1.1\r\nHost: a\r\n\r\n";
    for (const ValidBody& v : valid_bodies()) {
        std::string in = v.body + next;
        Outcome want{Status::Done, v.data, next, ""};
        check_all_ways(in, want, v.name);
    }
}

Test(http_body, stops_at_the_end_of_the_body) {
    // Two bodies back to back: the first decode stops after the first one.
    std::string in = "1\r\na\r\n0\r\n\r\n1\r\nb\r\n0\r\n\r\n";
    std::string_view view = in;
    ChunkedDecoder dec;
    std::string_view data;
    cr_assert(dec.decode(view, data) == Status::Data);
    cr_expect(data == "a");
    cr_assert(dec.decode(view, data) == Status::Done);
    cr_expect(view == "1\r\nb\r\n0\r\n\r\n");
}

Test(http_body, data_points_into_the_input) {
    std::string in = "4\r\nabcd\r\n";
    std::string_view view = in;
    ChunkedDecoder dec;
    std::string_view data;
    cr_assert(dec.decode(view, data) == Status::Data);
    cr_expect(data.data() == in.data() + 3);
    cr_expect_eq(data.size(), 4u);
    cr_expect(dec.decode(view, data) == Status::NeedMore);
    cr_expect(view.empty());
}

Test(http_body, rejects_bad_framing_however_split) {
    for (const BadBody& b : bad_bodies()) {
        Outcome whole = feed({b.body});
        cr_expect(whole.status == Status::Error, "%s: whole gave %s", b.name,
                  name_of(whole.status));
        cr_expect(!whole.error.empty(), "%s: no error text", b.name);
        cr_expect(feed_guarded(b.body).status == Status::Error, "%s: guarded", b.name);
        cr_expect(feed(bytes_of(b.body)).status == Status::Error, "%s: byte by byte", b.name);
        for (std::size_t k = 0; k <= b.body.size(); ++k) {
            std::string_view in = b.body;
            Outcome o = feed({in.substr(0, k), in.substr(k)});
            cr_expect(o.status == Status::Error, "%s: split at %zu gave %s", b.name, k,
                      name_of(o.status));
            if (o.status != Status::Error) break;
        }
    }
}

Test(http_body, limits_are_exact) {
    // An extension of exactly kMaxChunkExtension bytes after the size passes.
    std::string ext = "1;" + std::string(duet::kMaxChunkExtension - 1, 'e') + "\r\nx\r\n0\r\n\r\n";
    cr_expect(feed({ext}).status == Status::Done);
    std::string over = "1;" + std::string(duet::kMaxChunkExtension, 'e') + "\r\nx\r\n0\r\n\r\n";
    cr_expect(feed({over}).status == Status::Error);
    // Trailer lines of exactly kMaxTrailers bytes, CRLFs included, pass; one byte more fails.
    std::string line = "X-T: " + std::string(duet::kMaxTrailers - 7, 't') + "\r\n";
    cr_assert_eq(line.size(), duet::kMaxTrailers);
    cr_expect(feed({"0\r\n" + line + "\r\n"}).status == Status::Done);
    line.insert(5, "t");
    cr_expect(feed({"0\r\n" + line + "\r\n"}).status == Status::Error);
    // 15 hex digits is the most a size may have.
    std::string fifteen = "000000000000001\r\nx\r\n0\r\n\r\n";
    cr_expect(feed({fifteen}).status == Status::Done);
}

Test(http_body, error_is_sticky) {
    ChunkedDecoder dec;
    std::string bad = "z\r\n";
    std::string_view in = bad;
    std::string_view data;
    cr_assert(dec.decode(in, data) == Status::Error);
    std::string good = "0\r\n\r\n";
    std::string_view in2 = good;
    cr_expect(dec.decode(in2, data) == Status::Error);
    dec.reset();
    cr_expect(dec.decode(in2, data) == Status::Done);
}

Test(http_body, incomplete_body_needs_more) {
    const char* partial[] = {"",
                             "5",
                             "5\r",
                             "5\r\n",
                             "5\r\nhel",
                             "5\r\nhello",
                             "5\r\nhello\r\n",
                             "5\r\nhello\r\n0\r\n",
                             "5\r\nhello\r\n0\r\nX: y\r\n",
                             "5\r\nhello\r\n0\r\n\r"};
    for (const char* p : partial) {
        Outcome o = feed({p});
        cr_expect(o.status == Status::NeedMore, "'%s' gave %s", p, name_of(o.status));
    }
}

Test(http_body, trailers_are_kept_for_the_caller) {
    ChunkedDecoder dec;
    std::string body = "2\r\nhi\r\n0\r\nRepr-Digest: sha-256=:AA==:\r\nX-B:  c\r\n\r\nNEXT";
    std::string_view in = body;
    std::string data;
    Status st;
    for (;;) {
        std::string_view d;
        st = dec.decode(in, d);
        if (st != Status::Data) break;
        data.append(d);
    }
    cr_assert(st == Status::Done, "%s", dec.error());
    cr_expect(data == "hi");
    cr_expect(in == "NEXT");
    cr_expect(dec.trailers() == "Repr-Digest: sha-256=:AA==:\nX-B:  c\n", "'%.*s'",
              int(dec.trailers().size()), dec.trailers().data());
}
