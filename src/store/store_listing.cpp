// Listings from the store index (see store_index.hpp): one shared body per version of a small
// store, one ListingStream per client of a big one. Both render entries with the same functions,
// so the totals kept by account() are exactly the bytes a stream sends.
#include <cerrno>
#include <cstring>
#include <ctime>

#include "duet/core/json.hpp"
#include "duet/store/store.hpp"
#include "duet/store/store_index.hpp"

namespace duet {
namespace {

// A JSON entry, or a LIST line, is at most this long (a path is ≤ 1024 bytes, ≤ 3 when encoded).
constexpr std::size_t kMaxEntry = 3 * kMaxPathBytes + 256;

std::int64_t clock_ns() {
    timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return std::int64_t(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

// A file duet may not read is listed with its size and no digest (null / "-"), as a lookup would
// say; one that failed otherwise is not listed (it cannot be served).
bool unreadable(const StoreIndex::Entry& e) {
    return e.state == StoreIndex::State::Failed && (e.error == EACCES || e.error == EPERM);
}

bool listed(const StoreIndex::Entry& e) {
    return e.state == StoreIndex::State::Ready || unreadable(e);
}

// A recursive listing names files only; a folder's listing names its folders too.
bool listed_in(const StoreIndex::Entry& e, bool recursive) {
    return e.dir ? !recursive : listed(e);
}

std::size_t digits(std::uint64_t v) {
    std::size_t n = 1;
    while (v >= 10) {
        v /= 10;
        ++n;
    }
    return n;
}

std::int64_t mtime_s(const StoreIndex::Entry& e) {
    return e.mtime_ns / 1000000000;
}

std::size_t sdigits(std::int64_t v) {
    return v < 0 ? 1 + digits(std::uint64_t(0) - std::uint64_t(v)) : digits(std::uint64_t(v));
}

char* put(char* p, std::string_view s) {
    std::memcpy(p, s.data(), s.size());
    return p + s.size();
}

char* put_u64(char* p, std::uint64_t v) {
    std::size_t n = digits(v);
    for (std::size_t i = n; i-- > 0; v /= 10) p[i] = char('0' + v % 10);
    return p + n;
}

char* put_i64(char* p, std::int64_t v) {
    if (v >= 0) return put_u64(p, std::uint64_t(v));
    *p++ = '-';
    return put_u64(p, std::uint64_t(0) - std::uint64_t(v));
}

char* put_hex(char* p, const Digest& d) {
    static const char kHex[] = "0123456789abcdef";
    for (unsigned char b : d) {
        *p++ = kHex[b >> 4];
        *p++ = kHex[b & 15];
    }
    return p;
}

constexpr std::string_view kJsonName = "{\"name\":\"",
                           kJsonSize = "\",\"size\":", kJsonSha = ",\"sha256\":",
                           kJsonMtime = ",\"mtime\":", kJsonFile = ",\"type\":\"file\"}",
                           kDir = "\",\"type\":\"dir\"", kDirText = "/ - -\n";

std::size_t json_size(std::string_view name, const StoreIndex::Entry& e) {
    if (e.dir)
        return kJsonName.size() + json_escaped_size(name) + kDir.size() + kJsonMtime.size() +
               sdigits(mtime_s(e)) + 1;
    return kJsonName.size() + json_escaped_size(name) + kJsonSize.size() + digits(e.size) +
           kJsonSha.size() + (unreadable(e) ? 4 : 66) + kJsonMtime.size() + sdigits(mtime_s(e)) +
           kJsonFile.size();
}

std::size_t text_size(std::string_view name, const StoreIndex::Entry& e) {
    if (e.dir) return port_encoded_size(name) + kDirText.size();
    return port_encoded_size(name) + 1 + digits(e.size) + 1 + (unreadable(e) ? 1 : 64) + 1;
}

// {"name":"N","size":S,"sha256":"HEX"|null,"mtime":T,"type":"file"} or
// {"name":"N","type":"dir","mtime":T}
char* render_json(char* p, std::string_view name, const StoreIndex::Entry& e) {
    p = put(p, kJsonName);
    p = put_json_escaped(p, name);
    if (e.dir) {
        p = put(p, kDir);
        p = put(p, kJsonMtime);
        p = put_i64(p, mtime_s(e));
        *p++ = '}';
        return p;
    }
    p = put(p, kJsonSize);
    p = put_u64(p, e.size);
    p = put(p, kJsonSha);
    if (unreadable(e)) {
        p = put(p, "null");
    } else {
        *p++ = '"';
        p = put_hex(p, e.sha256);
        *p++ = '"';
    }
    p = put(p, kJsonMtime);
    p = put_i64(p, mtime_s(e));
    p = put(p, kJsonFile);
    return p;
}

// NAME SIZE HEX|- or NAME/ - -
char* render_text(char* p, std::string_view name, const StoreIndex::Entry& e) {
    p = put_port_encoded(p, name);
    if (e.dir) return put(p, kDirText);
    *p++ = ' ';
    p = put_u64(p, e.size);
    *p++ = ' ';
    if (unreadable(e))
        *p++ = '-';
    else
        p = put_hex(p, e.sha256);
    *p++ = '\n';
    return p;
}

}  // namespace

bool StoreIndex::shown(const Entry& e) {
    return listed_in(e, false);
}

std::string StoreIndex::entry_json(std::string_view name, const Entry& e) {
    std::string out(json_size(name, e), '\0');
    out.resize(std::size_t(render_json(out.data(), name, e) - out.data()));
    return out;
}

void StoreIndex::account(std::string_view name, const Entry& e, int sign) {
    if (!listed_in(e, false)) return;
    auto add = [this, sign](std::string_view folder, bool below, std::uint64_t j, std::uint64_t x) {
        auto it = folders_.try_emplace(std::string(folder)).first;
        Totals& t = below ? it->second.below : it->second.direct;
        if (sign > 0) {
            ++t.count, t.json += j, t.text += x;
        } else {
            --t.count, t.json -= j, t.text -= x;
        }
        // Nothing left to list: the folder's totals go (the top folder's stay).
        if (!folder.empty() && it->second.direct.count == 0 && it->second.below.count == 0)
            folders_.erase(it);
    };
    std::string_view leaf = leaf_of(name), folder = parent_of(name);
    add(folder, false, json_size(leaf, e), text_size(leaf, e));
    if (e.dir) return;
    // Every folder above the file, the top one included, lists it recursively.
    std::uint64_t j = json_size(name, e), x = text_size(name, e);
    for (std::string_view up = folder;; up = parent_of(up)) {
        add(up, true, j, x);
        if (up.empty()) break;
    }
}

StoreIndex::Totals StoreIndex::totals(const Scope& scope) const {
    auto it = folders_.find(scope.folder);
    if (it == folders_.end()) return {};
    if (!scope.recursive) return it->second.direct;
    // Recursive names are relative to the folder: its prefix is taken off each full path.
    Totals t = it->second.below;
    std::string prefix = scope.prefix();
    t.json -= t.count * json_escaped_size(prefix);
    t.text -= t.count * port_encoded_size(prefix);
    return t;
}

StoreIndex::EntryMap::const_iterator StoreIndex::next_in_scope(EntryMap::const_iterator it,
                                                               const std::string& prefix,
                                                               bool recursive) const {
    while (it != entries_.end()) {
        const std::string& key = it->first;
        if (key.compare(0, prefix.size(), prefix) != 0) return entries_.end();
        std::size_t slash = key.find('/', prefix.size());
        if (recursive || slash == std::string::npos) return it;
        // Inside a subfolder: jump past all of it ('0' follows '/').
        std::string past = key.substr(0, slash);
        past += '0';
        it = entries_.lower_bound(past);
    }
    return it;
}

void StoreIndex::before_change(const std::string& name) {
    auto it = entries_.find(name);
    const Entry* old = it == entries_.end() ? nullptr : &it->second;
    for (ListingStream* ls : streams_) ls->before_change(name, old);
}

bool StoreIndex::listing(const Scope& scope, bool json, std::shared_ptr<const std::string>& body,
                         std::unique_ptr<ListingStream>& stream, std::uint64_t& count,
                         std::uint64_t& length) {
    Totals top = totals(Scope{});
    bool shared = scope.folder.empty() && !scope.recursive;
    if (listing_ready() && (!shared || top.json + top.count > kSharedListing)) {
        // A reload is writing ahead what each stream owes: a new one waits (parked, its request
        // unread) and is carried to the next image, which answers it. So the writing ahead
        // has a fixed amount to do and ends, however many clients keep asking.
        if (hooks_.streams_on_hold()) return false;
        stream = std::make_unique<ListingStream>(*this, json, scope);
        count = stream->count();
        length = stream->length();
        return true;
    }
    body = json ? json_listing() : text_listing(count);
    if (body) length = body->size();
    return body != nullptr;
}

void StoreIndex::want_render() {
    if (render_) return;
    render_ = std::make_unique<Render>();
    render_->version = version_;
}

std::shared_ptr<const std::string> StoreIndex::json_listing() {
    if (json_ && (listing_version_ == version_ || stale_renders_ >= 2)) return json_;
    if (listing_ready()) want_render();
    return nullptr;
}

std::shared_ptr<const std::string> StoreIndex::text_listing(std::uint64_t& count) {
    count = text_count_;
    if (text_ && (listing_version_ == version_ || stale_renders_ >= 2)) return text_;
    if (listing_ready()) want_render();
    return nullptr;
}

bool StoreIndex::run_slice(std::int64_t budget_ns) {
    if (walk_due_) {
        walk_due_ = false;
        pump_hashing();  // the bounded walk for the next file to hash goes on
    }
    if (!render_) return false;
    if (!listing_ready()) {
        render_.reset();  // a digest went missing meanwhile: render again once it is back
        return false;
    }
    Render& r = *render_;
    std::int64_t until = clock_ns() + budget_ns;
    // The top folder's own entries: its subfolders' contents are jumped over.
    static const std::string kTop;
    auto it =
        next_in_scope(r.started ? entries_.upper_bound(r.cursor) : entries_.begin(), kTop, false);
    r.started = true;
    char buf[kMaxEntry];
    for (int n = 0; it != entries_.end(); it = next_in_scope(std::next(it), kTop, false), ++n) {
        if ((n & 63) == 63 && clock_ns() >= until) {
            r.cursor = std::prev(it)->first;
            return true;
        }
        const Entry& e = it->second;
        if (!listed_in(e, false)) continue;
        if (r.count) r.json += ',';
        r.json.append(buf, std::size_t(render_json(buf, it->first, e) - buf));
        r.text.append(buf, std::size_t(render_text(buf, it->first, e) - buf));
        ++r.count;
    }
    r.json += "]\n";
    json_ = std::make_shared<const std::string>(std::move(r.json));
    text_ = std::make_shared<const std::string>(std::move(r.text));
    text_count_ = r.count;
    listing_version_ = r.version;
    // Under constant change a fresh render may never match the version; after two in a row the
    // latest is served anyway, so listings cannot starve.
    stale_renders_ = listing_version_ == version_ ? 0 : stale_renders_ + 1;
    render_.reset();
    hooks_.wake();
    return false;
}

// ---- one client's stream ----

ListingStream::ListingStream(StoreIndex& index, bool json, StoreIndex::Scope scope)
    : index_(&index), prefix_(scope.prefix()), recursive_(scope.recursive), json_(json) {
    StoreIndex::Totals t = index.totals(scope);
    count_ = t.count;
    if (json)
        length_ = count_ == 0 ? 3 : 1 + t.json + (count_ - 1) + 2;  // [a,b]\n
    else
        length_ = t.text;
    index.streams_.push_back(this);
}

bool ListingStream::in_scope(const std::string& name) const {
    if (name.compare(0, prefix_.size(), prefix_) != 0) return false;
    return recursive_ || name.find('/', prefix_.size()) == std::string::npos;
}

ListingStream::~ListingStream() {
    if (!index_) return;
    auto& v = index_->streams_;
    for (auto it = v.begin(); it != v.end(); ++it) {
        if (*it == this) {
            *it = v.back();
            v.pop_back();
            break;
        }
    }
}

void ListingStream::before_change(const std::string& name, const StoreIndex::Entry* old) {
    if (name <= cursor_ && !cursor_.empty()) return;  // already sent
    if (!in_scope(name)) return;
    if (old && listed_in(*old, recursive_))
        kept_.try_emplace(name, *old);
    else
        kept_.try_emplace(name, std::nullopt);
}

void ListingStream::detach(bool keep_rest) {
    if (!index_) return;
    if (keep_rest) {
        auto& m = index_->entries_;
        auto from = cursor_.empty() ? m.lower_bound(prefix_) : m.upper_bound(cursor_);
        for (auto it = index_->next_in_scope(from, prefix_, recursive_); it != m.end();
             it = index_->next_in_scope(std::next(it), prefix_, recursive_))
            if (listed_in(it->second, recursive_)) kept_.try_emplace(it->first, it->second);
    }
    index_ = nullptr;  // from now on only kept_ is read
}

std::size_t ListingStream::fill(char* p, std::size_t room) {
    if (finished_) return 0;
    char* out = p;
    char* end = p + room;
    if (json_ && sent_bytes_ == 0) {
        if (room < 1) return 0;
        *out++ = '[';
    }
    static const StoreIndex::EntryMap kNone;
    const auto& m = index_ ? index_->entries_ : kNone;
    auto next = [this, &m](StoreIndex::EntryMap::const_iterator at) {
        return index_ ? index_->next_in_scope(at, prefix_, recursive_) : m.end();
    };
    auto it = next(cursor_.empty() ? m.lower_bound(prefix_) : m.upper_bound(cursor_));
    auto kept = cursor_.empty() ? kept_.begin() : kept_.upper_bound(cursor_);
    std::string_view last;
    for (;;) {
        // The next name in order from the index or from what was kept (which wins: it is the
        // state this listing promised).
        const std::string* name = nullptr;
        const StoreIndex::Entry* e = nullptr;
        bool from_kept = kept != kept_.end() && (it == m.end() || kept->first <= it->first);
        if (from_kept) {
            name = &kept->first;
            e = kept->second ? &*kept->second : nullptr;
        } else if (it != m.end()) {
            name = &it->first;
            e = &it->second;
        } else {
            break;
        }
        std::string_view rel = std::string_view(*name).substr(prefix_.size());
        if (e && listed_in(*e, recursive_)) {
            std::size_t comma = json_ && sent_count_ > 0 ? 1 : 0;
            std::size_t need = comma + (json_ ? json_size(rel, *e) : text_size(rel, *e));
            if (need > std::size_t(end - out)) break;  // next time round
            // More than was promised cannot happen while every change ahead is kept; if it
            // did, the entry is left out rather than break the framing.
            std::uint64_t after = sent_bytes_ + std::uint64_t(out - p) + need + (json_ ? 2 : 0);
            if (sent_count_ < count_ && after <= length_) {
                if (comma) *out++ = ',';
                out = json_ ? render_json(out, rel, *e) : render_text(out, rel, *e);
                ++sent_count_;
            }
        }
        last = *name;
        if (from_kept) {
            if (it != m.end() && it->first == kept->first) it = next(std::next(it));
            ++kept;
        } else {
            it = next(std::next(it));
        }
    }
    if (!last.empty()) cursor_.assign(last);
    kept_.erase(kept_.begin(), kept);
    bool at_end = it == m.end() && kept == kept_.end();
    std::size_t n = std::size_t(out - p);
    if (at_end) {
        if (json_) {
            // The promised length exactly, whatever happened: spaces are valid JSON.
            std::uint64_t want = length_ - (sent_bytes_ + n);
            if (want < 2 || std::size_t(end - out) < want) {
                sent_bytes_ += n;
                return n;  // the tail next time round
            }
            for (; want > 2; --want) *out++ = ' ';
            *out++ = ']';
            *out++ = '\n';
            n = std::size_t(out - p);
        }
        finished_ = true;
    }
    sent_bytes_ += n;
    return n;
}

}  // namespace duet
