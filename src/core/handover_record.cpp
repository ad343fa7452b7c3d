// The hand-over field list: writing is appending; reading checks every length before use.
#include "duet/core/handover_record.hpp"

#include <cstring>

namespace duet {
namespace {

constexpr std::size_t kFieldHead = 6;  // u16 tag + u32 length

}  // namespace

void put_le(std::string& out, std::uint64_t v, int bytes) {
    for (int i = 0; i < bytes; ++i) out += static_cast<char>((v >> (8 * i)) & 0xff);
}

std::uint64_t get_le(const char* p, int bytes) {
    std::uint64_t v = 0;
    for (int i = 0; i < bytes; ++i) v |= std::uint64_t(static_cast<unsigned char>(p[i])) << (8 * i);
    return v;
}

void RecordWriter::u64(std::uint16_t tag, std::uint64_t v) {
    put_le(out_, tag, 2);
    put_le(out_, 8, 4);
    put_le(out_, v, 8);
}

void RecordWriter::bytes(std::uint16_t tag, std::string_view v) {
    put_le(out_, tag, 2);
    put_le(out_, v.size(), 4);
    out_.append(v);
}

bool RecordReader::parse(std::string_view body) {
    fields_.clear();
    std::size_t at = 0;
    while (at < body.size()) {
        if (body.size() - at < kFieldHead) return fail("a field head runs past the record");
        auto tag = static_cast<std::uint16_t>(get_le(body.data() + at, 2));
        std::uint64_t len = get_le(body.data() + at + 2, 4);
        at += kFieldHead;
        if (len > body.size() - at) return fail("a field runs past the record");
        fields_.push_back({tag, body.substr(at, std::size_t(len))});
        at += std::size_t(len);
    }
    return true;
}

const RecordReader::Field* RecordReader::find(std::uint16_t tag) const {
    for (auto it = fields_.rbegin(); it != fields_.rend(); ++it)
        if (it->tag == tag) return &*it;
    return nullptr;
}

bool RecordReader::u64(std::uint16_t tag, std::uint64_t& out) const {
    const Field* f = find(tag);
    if (!f || f->value.size() != 8) return false;
    out = get_le(f->value.data(), 8);
    return true;
}

std::uint64_t RecordReader::u64_or(std::uint16_t tag, std::uint64_t fallback) const {
    std::uint64_t v;
    return u64(tag, v) ? v : fallback;
}

std::string_view RecordReader::bytes(std::uint16_t tag) const {
    const Field* f = find(tag);
    return f ? f->value : std::string_view();
}

std::vector<std::string_view> RecordReader::all(std::uint16_t tag) const {
    std::vector<std::string_view> out;
    for (const Field& f : fields_)
        if (f.tag == tag) out.push_back(f.value);
    return out;
}

bool RecordReader::fd(std::uint16_t tag, Fd& out) const {
    std::uint64_t index;
    return u64(tag, index) && fds_->take(index, out);
}

bool RecordReader::record(std::uint16_t tag, RecordReader& sub) const {
    const Field* f = find(tag);
    if (!f) return false;
    return sub.parse(f->value);
}

}  // namespace duet
