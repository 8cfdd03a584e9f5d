#include "faults.hpp"

#include "saturate.hpp"
#include "wire.hpp"

#include <boost/json/parse.hpp>

#include <array>

namespace resilience::sim {

namespace {

constexpr std::array<std::string_view, 9> route_names = {"upload_start", "upload_chunk", "get",   "list", "delete",
                                                         "generate",     "admin",        "other", "all"};
constexpr std::array<std::string_view, 13> kind_names = {
    "rate_limit",          "rate_limit_bare", "quota_per_day",  "retry_after_seconds", "retry_after_date",
    "overloaded",          "internal",        "latency",        "reset_before_headers", "reset_after_headers",
    "truncated_body",      "malformed_json",  "plain_text_error"};

failure plan_error(std::string what) {
    return failure(make_error_code(errc::invalid_config), "fault plan: " + std::move(what));
}

result<duration> duration_field(const boost::json::value& v, std::string_view field) {
    if (v.is_string()) {
        auto d = parse_duration(v.get_string());
        if (!d) return plan_error("\"" + std::string(field) + "\": " + d.error().diag.message);
        return *d;
    }
    if (v.is_number()) {
        double s = v.to_number<double>();
        if (!(s >= 0 && s < 1e9)) return plan_error("\"" + std::string(field) + "\" is out of range");
        return std::chrono::duration_cast<duration>(std::chrono::duration<double>(s));
    }
    return plan_error("\"" + std::string(field) + "\" must be a duration string or a number of seconds");
}

result<std::uint64_t> count_field(const boost::json::value& v, std::string_view field) {
    if (v.is_uint64()) return v.get_uint64();
    if (v.is_int64() && v.get_int64() >= 0) return static_cast<std::uint64_t>(v.get_int64());
    return plan_error("\"" + std::string(field) + "\" must be a non-negative integer");
}

result<route> route_field(const boost::json::object& o) {
    auto* v = o.if_contains("route");
    if (!v) return route::all;
    if (!v->is_string()) return plan_error("\"route\" must be a string");
    auto r = route_from_string(v->get_string());
    if (!r || *r == route::admin || *r == route::other)
        return plan_error("unknown route \"" + std::string(v->get_string().subview(0, 40)) +
                          "\" (upload_start, upload_chunk, get, list, delete, generate, all)");
    return *r;
}

result<fault> parse_fault(const boost::json::value& v) {
    if (!v.is_object()) return plan_error("each fault must be an object");
    const auto& o = v.get_object();
    fault f;
    auto* k = o.if_contains("kind");
    if (!k || !k->is_string()) return plan_error("a fault needs a \"kind\" string");
    auto kind = fault_kind_from_string(k->get_string());
    if (!kind) return plan_error("unknown fault kind \"" + std::string(k->get_string().subview(0, 40)) + "\"");
    f.kind = *kind;
    auto r = route_field(o);
    if (!r) return r.error();
    f.target = *r;
    for (const auto& kv : o) {
        auto key = kv.key();
        const auto& val = kv.value();
        if (key == "kind" || key == "route") continue;
        if (key == "probability") {
            if (!val.is_number()) return plan_error("\"probability\" must be a number");
            f.probability = val.to_number<double>();
            if (!(f.probability >= 0 && f.probability <= 1)) return plan_error("\"probability\" must be in [0, 1]");
        } else if (key == "skip") {
            auto c = count_field(val, key);
            if (!c) return c.error();
            f.skip = *c;
        } else if (key == "count") {
            auto c = count_field(val, key);
            if (!c) return c.error();
            f.count = *c;
        } else if (key == "requests") {  // [first, last], 1-based inclusive
            if (!val.is_array() || val.get_array().size() != 2)
                return plan_error("\"requests\" must be [first, last]");
            auto a = count_field(val.get_array()[0], key);
            auto b = count_field(val.get_array()[1], key);
            if (!a || !b || *a == 0 || *b < *a) return plan_error("\"requests\" must be [first, last] with 1 <= first <= last");
            f.skip = *a - 1;
            f.count = *b - *a + 1;
        } else if (key == "retry_delay") {
            auto d = duration_field(val, key);
            if (!d) return d.error();
            f.retry_delay = *d;
        } else if (key == "latency") {
            auto d = duration_field(val, key);
            if (!d) return d.error();
            f.latency = *d;
        } else if (key == "status") {
            if (!val.is_int64() || val.get_int64() < 100 || val.get_int64() > 599)
                return plan_error("\"status\" must be an HTTP status (100..599)");
            f.status = static_cast<int>(val.get_int64());
        } else {
            return plan_error("unknown fault field \"" + std::string(key.substr(0, 40)) + "\"");
        }
    }
    return f;
}

}  // namespace

std::string_view to_string(route r) noexcept {
    auto i = static_cast<std::size_t>(r);
    return i < route_names.size() ? route_names[i] : "unknown";
}

std::optional<route> route_from_string(std::string_view s) noexcept {
    for (std::size_t i = 0; i < route_names.size(); ++i)
        if (route_names[i] == s) return static_cast<route>(i);
    if (s == "remove") return route::remove;
    return std::nullopt;
}

std::string_view to_string(fault_kind k) noexcept {
    auto i = static_cast<std::size_t>(k);
    return i < kind_names.size() ? kind_names[i] : "unknown";
}

std::optional<fault_kind> fault_kind_from_string(std::string_view s) noexcept {
    for (std::size_t i = 0; i < kind_names.size(); ++i)
        if (kind_names[i] == s) return static_cast<fault_kind>(i);
    return std::nullopt;
}

fault fault::next(fault_kind k, route r, std::uint64_t n) {
    fault f(k, r);
    f.count = n;
    return f;
}

fault fault::requests(fault_kind k, route r, std::uint64_t first, std::uint64_t last) {
    fault f(k, r);
    f.skip = first > 0 ? first - 1 : 0;
    f.count = last >= first ? last - first + 1 : 0;
    return f;
}

fault fault::sometimes(fault_kind k, route r, double p) {
    fault f(k, r);
    f.probability = p;
    return f;
}

result<fault_plan> fault_plan::from_json(std::string_view text) {
    boost::system::error_code ec;
    auto v = boost::json::parse(text, ec);
    if (ec) return plan_error("not valid JSON: " + ec.message());
    fault_plan plan;
    if (v.is_array()) {  // a bare list of faults
        for (const auto& e : v.get_array()) {
            auto f = parse_fault(e);
            if (!f) return f.error();
            plan.faults.push_back(*f);
        }
        return plan;
    }
    if (!v.is_object()) return plan_error("expected an object or an array of faults");
    const auto& o = v.get_object();
    if (o.contains("kind")) {  // a single fault
        auto f = parse_fault(v);
        if (!f) return f.error();
        plan.faults.push_back(*f);
        return plan;
    }
    for (const auto& kv : o) {
        auto key = kv.key();
        const auto& val = kv.value();
        if (key == "seed") {
            auto s = count_field(val, key);
            if (!s) return s.error();
            plan.seed = *s;
        } else if (key == "faults") {
            if (!val.is_array()) return plan_error("\"faults\" must be an array");
            for (const auto& e : val.get_array()) {
                auto f = parse_fault(e);
                if (!f) return f.error();
                plan.faults.push_back(*f);
            }
        } else if (key == "outages") {
            if (!val.is_array()) return plan_error("\"outages\" must be an array");
            for (const auto& e : val.get_array()) {
                if (!e.is_object()) return plan_error("each outage must be an object");
                outage out;
                for (const auto& f : e.get_object()) {
                    if (f.key() == "start" || f.key() == "length") {
                        auto d = duration_field(f.value(), f.key());
                        if (!d) return d.error();
                        (f.key() == "start" ? out.start : out.length) = *d;
                    } else if (f.key() == "route") {
                        auto r = route_field(e.get_object());
                        if (!r) return r.error();
                        out.target = *r;
                    } else {
                        return plan_error("unknown outage field \"" + std::string(f.key().substr(0, 40)) + "\"");
                    }
                }
                plan.outages.push_back(out);
            }
        } else if (key == "quotas") {
            if (!val.is_array()) return plan_error("\"quotas\" must be an array");
            for (const auto& e : val.get_array()) {
                if (!e.is_object()) return plan_error("each quota must be an object");
                quota q;
                bool has_limit = false;
                for (const auto& f : e.get_object()) {
                    if (f.key() == "limit") {
                        auto c = count_field(f.value(), "limit");
                        if (!c) return c.error();
                        q.limit = *c;
                        has_limit = true;
                    } else if (f.key() == "window") {
                        auto d = duration_field(f.value(), "window");
                        if (!d) return d.error();
                        if (*d <= duration::zero()) return plan_error("\"window\" must be positive");
                        q.window = *d;
                    } else if (f.key() == "route") {
                        auto r = route_field(e.get_object());
                        if (!r) return r.error();
                        q.target = *r;
                    } else if (f.key() == "quota_id") {
                        if (!f.value().is_string()) return plan_error("\"quota_id\" must be a string");
                        q.quota_id = f.value().get_string();
                    } else {
                        return plan_error("unknown quota field \"" + std::string(f.key().substr(0, 40)) + "\"");
                    }
                }
                if (!has_limit) return plan_error("a quota needs a \"limit\"");
                plan.quotas.push_back(q);
            }
        } else {
            return plan_error("unknown field \"" + std::string(key.substr(0, 40)) + "\"");
        }
    }
    return plan;
}

}  // namespace resilience::sim

namespace resilience::sim::detail {

bool route_matches(route target, route r) noexcept {
    if (r == route::admin) return false;
    return target == route::all || target == r;
}

void fault_engine::install(const fault_plan& p, time_point now) {
    // Durations given through the C++ API are held to what the JSON form
    // allows, so that no sum or time point below can overflow.
    auto bound = [](duration d) { return clamp(d, duration::zero(), max_fault_duration); };
    std::lock_guard lk(mu_);
    if (p.seed) rng_.seed(*p.seed);
    for (auto f : p.faults) {
        f.latency = bound(f.latency);
        f.retry_delay = bound(f.retry_delay);
        rules_.push_back({f});
    }
    for (auto o : p.outages) {
        o.start = bound(o.start);
        o.length = bound(o.length);
        outages_.push_back({o, now});
    }
    for (auto q : p.quotas) {
        q.window = clamp(q.window, std::chrono::milliseconds(1), max_fault_duration);
        quotas_.push_back({q, now});
    }
    any_.store(!rules_.empty() || !outages_.empty() || !quotas_.empty(), std::memory_order_release);
}

void fault_engine::clear() {
    std::lock_guard lk(mu_);
    rules_.clear();
    outages_.clear();
    quotas_.clear();
    any_.store(false, std::memory_order_release);
}

decision fault_engine::decide(route r, time_point now) {
    decision d;
    if (!any_.load(std::memory_order_acquire) || r == route::admin) return d;
    std::lock_guard lk(mu_);
    for (const auto& o : outages_) {
        if (!route_matches(o.o.target, r)) continue;
        auto begin = sat_add(o.from, o.o.start);
        if (now >= begin && now < sat_add(begin, o.o.length)) {
            d.from = decision::source::outage;
            return d;
        }
    }
    for (auto& rule : rules_) {
        if (!route_matches(rule.f.target, r)) continue;
        bool latency = rule.f.kind == fault_kind::latency;
        if (!latency && d.from != decision::source::none) continue;
        ++rule.seen;
        if (rule.seen <= rule.f.skip) continue;
        if (rule.f.count && rule.seen - rule.f.skip > *rule.f.count) continue;
        if (rule.f.probability < 1.0) {
            double u = static_cast<double>(rng_() >> 11) * 0x1.0p-53;
            if (!(u < rule.f.probability)) continue;
        }
        ++rule.hits;
        if (latency) {
            // Latency rules add up, saturating at the longest single latency.
            d.latency = std::min(sat_add(d.latency, rule.f.latency), max_fault_duration);
            ++d.latency_hits;
        } else {
            d.from = decision::source::rule;
            d.answer = rule.f;
        }
    }
    if (d.from != decision::source::none) return d;
    for (auto& q : quotas_) {
        if (!route_matches(q.q.target, r)) continue;
        const duration since = std::max(now - q.origin, duration::zero());
        auto idx = static_cast<std::uint64_t>(since / q.q.window);
        if (idx != q.window) {
            q.window = idx;
            q.used = 0;
        }
        if (q.used >= q.q.limit) {
            d.from = decision::source::quota;
            d.quota_remaining = q.q.window - since % q.q.window;
            d.quota_id = q.q.quota_id;
            return d;
        }
        ++q.used;
    }
    return d;
}

boost::json::object fault_engine::describe() const {
    namespace json = boost::json;
    std::lock_guard lk(mu_);
    json::array faults, outs, quotas;
    for (const auto& rule : rules_) {
        json::object o;
        o["kind"] = to_string(rule.f.kind);
        o["route"] = to_string(rule.f.target);
        o["probability"] = rule.f.probability;
        o["skip"] = rule.f.skip;
        if (rule.f.count) o["count"] = *rule.f.count;
        o["retry_delay"] = format_proto_duration(rule.f.retry_delay);
        if (rule.f.kind == fault_kind::latency) o["latency"] = format_proto_duration(rule.f.latency);
        if (rule.f.status) o["status"] = rule.f.status;
        o["seen"] = rule.seen;
        o["hits"] = rule.hits;
        faults.push_back(std::move(o));
    }
    for (const auto& o : outages_) {
        json::object j;
        j["start"] = format_proto_duration(o.o.start);
        j["length"] = format_proto_duration(o.o.length);
        j["route"] = to_string(o.o.target);
        outs.push_back(std::move(j));
    }
    for (const auto& q : quotas_) {
        json::object j;
        j["route"] = to_string(q.q.target);
        j["limit"] = q.q.limit;
        j["window"] = format_proto_duration(q.q.window);
        j["quota_id"] = q.q.quota_id;
        quotas.push_back(std::move(j));
    }
    json::object root;
    root["faults"] = std::move(faults);
    root["outages"] = std::move(outs);
    root["quotas"] = std::move(quotas);
    return root;
}

}  // namespace resilience::sim::detail
