#include "store.hpp"

#include "saturate.hpp"
#include "wire.hpp"

#include <boost/beast/core/detail/base64.hpp>
#include <boost/json/value.hpp>

#include <variant>

namespace resilience::sim::detail {

std::string_view file_id_of(std::string_view name) noexcept {
    if (name.starts_with("files/")) name.remove_prefix(6);
    return valid_file_id(name) ? name : std::string_view{};
}

bool valid_file_id(std::string_view id) noexcept {
    if (id.empty() || id.size() > 40 || id.front() == '-' || id.back() == '-') return false;
    for (char c : id)
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) return false;
    return true;
}

store::store(const config& cfg, clock& clk)
    : cfg_(cfg),
      wall_origin_(std::chrono::system_clock::now()),
      clock_origin_(clk.now()),
      rng_(cfg.seed) {}

std::chrono::system_clock::time_point store::wall(time_point tp) const {
    auto since = std::chrono::duration_cast<std::chrono::system_clock::duration>(
        clamp(tp - clock_origin_, -max_fault_duration, max_fault_duration));
    return wall_origin_ + since;
}

std::string store::new_id_locked() {
    static constexpr char alphabet[] = "abcdefghijklmnopqrstuvwxyz0123456789";
    for (;;) {
        std::string id(12, 'a');
        for (auto& c : id) c = alphabet[rng_() % 36];
        if (!files_.contains(id)) return id;
    }
}

file_record& store::create_locked(std::string id, std::string bytes, std::string mime, std::string display,
                                  time_point now, std::uint64_t size) {
    file_record f;
    f.id = id.empty() ? new_id_locked() : std::move(id);
    f.display_name = std::move(display);
    f.mime_type = std::move(mime);
    f.sha256_hex = sha256_hex(bytes);
    f.bytes = std::move(bytes);
    f.size = std::max<std::uint64_t>(size, f.bytes.size());
    f.created = now;
    const duration lo = clamp(cfg_.processing.min, duration::zero(), max_fault_duration);
    const duration hi = clamp(cfg_.processing.max, lo, max_fault_duration);
    duration span = hi - lo;
    duration d = lo;
    if (span > duration::zero())
        d += duration(static_cast<duration::rep>(rng_() % static_cast<std::uint64_t>(span.count() + 1)));
    if (cfg_.processing_per_mib > duration::zero()) {
        const double mib = static_cast<double>(f.size) / (1024.0 * 1024.0);
        const double extra = std::min(static_cast<double>(cfg_.processing_per_mib.count()) * mib,
                                      static_cast<double>(max_fault_duration.count()));
        d = std::min(d + duration(static_cast<duration::rep>(extra)), max_fault_duration);
    }
    f.ready_at = sat_add(now, d);
    sweep_locked(now);
    if (cfg_.fail_share > 0) {
        double u = static_cast<double>(rng_() >> 11) * 0x1.0p-53;
        f.fails = u < cfg_.fail_share;
    }
    f.seq = next_seq_++;
    by_seq_[f.seq] = f.id;
    auto key = f.id;
    return files_.insert_or_assign(std::move(key), std::move(f)).first->second;
}

json::object store::render_locked(const file_record& f, time_point now) const {
    json::object o;
    o.reserve(12);
    o["name"] = "files/" + f.id;
    if (!f.display_name.empty()) o["displayName"] = f.display_name;
    o["mimeType"] = f.mime_type;
    o["sizeBytes"] = std::to_string(f.size);
    auto created = wall(f.created);
    o["createTime"] = format_rfc3339(created, 6);
    bool done = now >= f.ready_at;
    auto updated = done ? wall(f.ready_at) : created + std::chrono::milliseconds(1);
    if (updated < created) updated = created;
    o["updateTime"] = format_rfc3339(updated, 6);
    o["expirationTime"] = format_rfc3339(created + file_ttl, 9);
    o["sha256Hash"] = base64(f.sha256_hex);
    o["uri"] = cfg_.file_uri_base + "/v1beta/files/" + f.id;
    o["state"] = !done ? "PROCESSING" : f.fails ? "FAILED" : "ACTIVE";
    o["source"] = "UPLOADED";
    if (done && f.fails) {
        json::object err;
        err["code"] = 13;
        err["message"] = "Failed to process the file.";
        o["error"] = std::move(err);
    }
    return o;
}

file_record* store::find_locked(std::string_view id, time_point now) {
    auto it = files_.find(id);
    if (it == files_.end()) return nullptr;
    if (now >= it->second.created + file_ttl) {  // expired: gone, as the real service does
        by_seq_.erase(it->second.seq);
        files_.erase(it);
        return nullptr;
    }
    return &it->second;
}

// Drops what has expired: files (48 h after creation; `by_seq_` is in creation
// order) and upload sessions (`session_order_` is in start order).
void store::sweep_locked(time_point now) {
    while (!by_seq_.empty()) {
        auto it = files_.find(by_seq_.begin()->second);
        if (it != files_.end() && now < it->second.created + file_ttl) break;
        if (it != files_.end()) files_.erase(it);
        by_seq_.erase(by_seq_.begin());
    }
    while (!session_order_.empty()) {
        auto it = sessions_.find(session_order_.begin()->second);
        if (it != sessions_.end() && now < it->second.expires) break;
        if (it != sessions_.end()) sessions_.erase(it);
        session_order_.erase(session_order_.begin());
    }
}

void store::erase_session_locked(std::string_view sid) {
    auto it = sessions_.find(sid);
    if (it == sessions_.end()) return;
    session_order_.erase(it->second.seq);
    sessions_.erase(it);
}

std::variant<std::string, std::pair<int, std::string>> store::start_upload(start_request req, time_point now) {
    static constexpr char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    std::lock_guard lk(mu_);
    sweep_locked(now);
    if (!req.wanted_id.empty()) {
        if (files_.contains(req.wanted_id))
            return std::pair<int, std::string>(409, "File files/" + req.wanted_id + " already exists.");
    }
    std::string sid;
    do {
        sid.assign(48, 'A');
        for (auto& c : sid) c = alphabet[rng_() % 64];
    } while (sessions_.contains(sid));
    upload_session s;
    s.display_name = std::move(req.display_name);
    s.mime_type = std::move(req.mime_type);
    s.declared_size = req.declared_size;
    s.wanted_id = std::move(req.wanted_id);
    s.expires = sat_add(now, std::max(cfg_.upload_session_ttl, duration::zero()));
    s.seq = next_session_++;
    // At the cap, the oldest session goes (its URL then answers 404, as an expired one).
    while (cfg_.max_upload_sessions > 0 && sessions_.size() >= cfg_.max_upload_sessions && !session_order_.empty())
        erase_session_locked(session_order_.begin()->second);
    session_order_.emplace(s.seq, sid);
    sessions_.emplace(sid, std::move(s));
    return sid;
}

chunk_outcome store::chunk(std::string_view upload_id, unsigned commands, std::optional<std::uint64_t> offset,
                           std::string_view bytes, time_point now) {
    chunk_outcome out;
    std::lock_guard lk(mu_);
    auto it = sessions_.find(upload_id);
    if (it != sessions_.end() && now >= it->second.expires) {
        erase_session_locked(upload_id);
        it = sessions_.end();
    }
    if (it == sessions_.end()) {
        out.status = 404;
        out.message = "No upload session with this id (it may have expired or been cancelled).";
        return out;
    }
    auto& s = it->second;
    auto has = [&](chunk_command c) { return (commands & static_cast<unsigned>(c)) != 0; };
    auto final_file = [&] {
        if (auto* f = find_locked(s.file_id, now)) out.file = render_locked(*f, now);
    };
    out.received = s.data.size();
    if (has(chunk_command::query)) {
        out.upload_status = s.final ? "final" : "active";
        if (s.final) final_file();
        return out;
    }
    if (has(chunk_command::cancel)) {
        erase_session_locked(upload_id);
        out.upload_status = "cancelled";
        return out;
    }
    if (s.final) {
        out.status = 400;
        out.message = "The upload session is already finalized.";
        out.upload_status = "final";
        return out;
    }
    if (!has(chunk_command::upload) && !has(chunk_command::finalize)) {
        out.status = 400;
        out.message = "Unsupported X-Goog-Upload-Command.";
        return out;
    }
    if (!offset) {
        out.status = 400;
        out.message = "Missing or invalid X-Goog-Upload-Offset header.";
        return out;
    }
    if (*offset != s.data.size()) {
        out.status = 400;
        out.plain_text = true;
        out.message = "Invalid upload offset " + std::to_string(*offset) + ": " + std::to_string(s.data.size()) +
                      " bytes have been received.";
        out.upload_status = "active";
        return out;
    }
    bool finalize = has(chunk_command::finalize);
    if (!finalize && bytes.size() % upload_granularity != 0) {
        out.status = 400;
        out.plain_text = true;
        out.message = "Failed to process the upload: the chunk size " + std::to_string(bytes.size()) +
                      " is not a multiple of the upload granularity " + std::to_string(upload_granularity) +
                      " bytes.";
        return out;
    }
    if (s.declared_size && s.data.size() + bytes.size() > *s.declared_size) {
        out.status = 400;
        out.message = "The upload exceeds the declared size of " + std::to_string(*s.declared_size) + " bytes.";
        return out;
    }
    if (s.data.size() + bytes.size() > cfg_.upload_limit) {  // only without a declared size (checked at start)
        out.status = 413;
        out.message = "The upload exceeds the largest file size of " + std::to_string(cfg_.upload_limit) +
                      " bytes: " + std::to_string(s.data.size()) + " bytes have been received.";
        out.upload_status = "active";
        return out;
    }
    s.data.append(bytes);
    out.received = s.data.size();
    if (!finalize) {
        out.upload_status = "active";
        return out;
    }
    if (s.declared_size && s.data.size() != *s.declared_size) {
        out.status = 400;
        out.message = "The uploaded size " + std::to_string(s.data.size()) + " does not match the declared size " +
                      std::to_string(*s.declared_size) + ".";
        out.upload_status = "active";
        return out;
    }
    if (!s.wanted_id.empty() && files_.contains(s.wanted_id)) {
        out.status = 409;
        out.message = "File files/" + s.wanted_id + " already exists.";
        return out;
    }
    auto& f = create_locked(s.wanted_id, std::move(s.data), s.mime_type, s.display_name, now);
    s.data.clear();
    s.final = true;
    s.file_id = f.id;
    out.upload_status = "final";
    out.file = render_locked(f, now);
    return out;
}

bool store::get(std::string_view id, time_point now, std::string& body) {
    std::lock_guard lk(mu_);
    auto p = polls_.find(id);
    if (p == polls_.end()) {
        // Bounded: past max_poll_counters the oldest counter goes.
        while (cfg_.max_poll_counters > 0 && polls_.size() >= cfg_.max_poll_counters && !poll_order_.empty()) {
            polls_.erase(poll_order_.front());
            poll_order_.pop_front();
            ++polls_evicted_;
        }
        poll_order_.emplace_back(id);
        p = polls_.emplace(std::string(id), poll_counter{0, std::prev(poll_order_.end())}).first;
    }
    ++p->second.n;
    auto* f = find_locked(id, now);
    if (!f) return false;
    int state = now < f->ready_at ? 0 : f->fails ? 2 : 1;
    if (f->body_state != state) {
        f->body = pretty(render_locked(*f, now));
        f->body_state = state;
    }
    body = f->body;
    return true;
}

bool store::list(std::size_t page_size, std::string_view token, time_point now, json::array& files,
                 std::string& next_token) {
    std::uint64_t from = 0;
    if (!token.empty()) {
        // Tokens are "sim1-<seq>" in URL-safe base64 without padding, so that
        // clients treat them as opaque and they need no escaping in a query.
        std::string b64(token);
        for (auto& c : b64) c = c == '-' ? '+' : c == '_' ? '/' : c;
        std::string raw;
        raw.resize(b64.size());  // enough: decoding shrinks (decoded_size assumes padding)
        auto [n, consumed] = boost::beast::detail::base64::decode(raw.data(), b64.data(), b64.size());
        if (consumed != b64.size()) return false;
        raw.resize(n);
        if (!raw.starts_with("sim1-")) return false;
        auto digits = std::string_view(raw).substr(5);
        if (digits.empty() || digits.size() > 19) return false;
        for (char c : digits) {
            if (c < '0' || c > '9') return false;
            from = from * 10 + static_cast<std::uint64_t>(c - '0');
        }
    }
    std::lock_guard lk(mu_);
    for (auto it = by_seq_.lower_bound(from); it != by_seq_.end();) {
        auto seq = it->first;
        auto id = it->second;
        ++it;
        auto* f = find_locked(id, now);
        if (!f) continue;
        if (files.size() == page_size) {
            next_token = base64("sim1-" + std::to_string(seq));
            while (!next_token.empty() && next_token.back() == '=') next_token.pop_back();
            for (auto& c : next_token) c = c == '+' ? '-' : c == '/' ? '_' : c;
            break;
        }
        files.push_back(render_locked(*f, now));
    }
    return true;
}

bool store::remove(std::string_view id, time_point now) {
    std::lock_guard lk(mu_);
    auto* f = find_locked(id, now);
    if (!f) return false;
    by_seq_.erase(f->seq);
    // Its poll counter goes with it: a server whose files come and go keeps
    // no counter of a deleted one (memory stays flat, not just bounded).
    if (auto p = polls_.find(f->id); p != polls_.end()) {
        poll_order_.erase(p->second.at);
        polls_.erase(p);
    }
    files_.erase(f->id);
    return true;
}

store::usable store::check_usable(std::string_view id, time_point now) {
    std::lock_guard lk(mu_);
    auto* f = find_locked(id, now);
    if (!f) return usable::missing;
    if (now < f->ready_at || f->fails) return usable::not_active;
    return usable::yes;
}

std::string store::add_file(std::string bytes, std::string mime, std::string display, time_point now,
                            std::uint64_t size) {
    std::lock_guard lk(mu_);
    return "files/" + create_locked({}, std::move(bytes), std::move(mime), std::move(display), now, size).id;
}

std::optional<file_info> store::info(std::string_view name, time_point now) {
    auto id = file_id_of(name);
    std::lock_guard lk(mu_);
    auto* f = find_locked(id, now);
    if (!f) return std::nullopt;
    file_info i;
    i.name = "files/" + f->id;
    i.display_name = f->display_name;
    i.mime_type = f->mime_type;
    i.size = f->size;
    i.sha256_hex = f->sha256_hex;
    i.state = now < f->ready_at ? file_state::processing : f->fails ? file_state::failed : file_state::active;
    i.created = f->created;
    i.ready_at = f->ready_at;
    return i;
}

std::optional<std::string> store::bytes(std::string_view name, time_point now) {
    auto id = file_id_of(name);
    std::lock_guard lk(mu_);
    auto* f = find_locked(id, now);
    if (!f) return std::nullopt;
    return f->bytes;
}

std::vector<std::string> store::names(time_point now) {
    std::lock_guard lk(mu_);
    std::vector<std::string> out;
    std::vector<std::string> ids;
    for (const auto& [seq, id] : by_seq_) ids.push_back(id);
    for (const auto& id : ids)
        if (find_locked(id, now)) out.push_back("files/" + id);
    return out;
}

std::size_t store::file_count() const {
    std::lock_guard lk(mu_);
    return files_.size();
}

std::map<std::string, std::uint64_t> store::polls() const {
    std::lock_guard lk(mu_);
    std::map<std::string, std::uint64_t> out;
    for (const auto& [id, c] : polls_) out.emplace("files/" + id, c.n);
    return out;
}

void store::reset_polls() {
    std::lock_guard lk(mu_);
    polls_.clear();
    poll_order_.clear();
    polls_evicted_ = 0;
}

std::size_t store::session_count() const {
    std::lock_guard lk(mu_);
    return sessions_.size();
}

std::uint64_t store::polls_evicted() const {
    std::lock_guard lk(mu_);
    return polls_evicted_;
}

}  // namespace resilience::sim::detail
