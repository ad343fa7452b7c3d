// The index's changes as events (README "The page"): what a folder's listing would show
// differently after each change, told to the event streams that follow that folder.
#include "duet/core/json.hpp"
#include "duet/store/store_index.hpp"

namespace duet {

void StoreIndex::note_change(const std::string& name, const Entry* old, const Entry* now) {
    bool was = old && shown(*old), is = now && shown(*now);
    if (!was && !is) return;  // a file being hashed is not shown yet: its event comes when it is
    if (!is) {
        std::string data = "{\"name\":\"";
        append_json_escaped(data, name);
        data += "\"}";
        feed_.add(ChangeFeed::Kind::Deleted, name, {}, std::move(data));
        return;
    }
    feed_.add(was ? ChangeFeed::Kind::Replaced : ChangeFeed::Kind::Created, name, {},
              entry_json(name, *now));
}

void StoreIndex::note_move(const std::string& from, const std::string& to) {
    std::string data = "{\"from\":\"";
    append_json_escaped(data, from);
    data += "\",\"to\":\"";
    append_json_escaped(data, to);
    data += "\"}";
    feed_.add(ChangeFeed::Kind::Moved, from, to, std::move(data));
}

std::vector<std::pair<std::string, StoreIndex::Entry>> StoreIndex::folder_entries(
    const std::string& folder, std::size_t max) const {
    std::vector<std::pair<std::string, Entry>> out;
    std::string prefix = folder.empty() ? std::string() : folder + "/";
    for (auto it = next_in_scope(entries_.lower_bound(prefix), prefix, false);
         it != entries_.end() && out.size() < max; it = next_in_scope(std::next(it), prefix, false))
        if (it->first.size() > prefix.size() && shown(it->second))
            out.emplace_back(it->first.substr(prefix.size()), it->second);
    return out;
}

}  // namespace duet
