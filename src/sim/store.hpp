#ifndef RESILIENCE_SRC_SIM_STORE_HPP
#define RESILIENCE_SRC_SIM_STORE_HPP

// The simulator's state: stored files, upload sessions and per-file poll
// counts. I/O-free: every operation takes `now` (the server's clock) and is
// thread-safe (one mutex).

#include <resilience/sim/server.hpp>

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>

#include <chrono>
#include <list>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <unordered_map>
#include <variant>
#include <vector>

namespace resilience::sim::detail {

namespace json = boost::json;

inline constexpr std::uint64_t upload_granularity = 8u << 20;  // 8 MiB
inline constexpr duration file_ttl = std::chrono::hours(48);

struct file_record {
    std::string id;
    std::string display_name;
    std::string mime_type;
    std::string bytes;
    std::uint64_t size = 0;  // bytes.size(), or the size of a file stored without its bytes
    std::string sha256_hex;
    time_point created{};
    time_point ready_at{};
    bool fails = false;
    std::uint64_t seq = 0;
    // The pretty-printed File of files.get, rendered once per state.
    std::string body;
    int body_state = -1;
};

/// Hash and equality that let unordered_map<std::string, T> be searched with a string_view.
struct string_hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
};

struct upload_session {
    std::string display_name;
    std::string mime_type;
    std::optional<std::uint64_t> declared_size;
    std::string wanted_id;  // from the start body's "name", may be empty
    std::string data;
    bool final = false;
    std::string file_id;    // once final
    time_point expires{};   // started + config.upload_session_ttl
    std::uint64_t seq = 0;  // key in store::session_order_
};

/// What a chunk request gets back.
struct chunk_outcome {
    int status = 200;
    bool plain_text = false;        // error answered in text/plain (like the real service)
    std::string message;            // error message
    std::string upload_status;      // "active", "final", "" (error: header omitted)
    std::uint64_t received = 0;
    std::optional<json::object> file;  // the File, once final
};

enum class chunk_command : unsigned char { upload = 1, finalize = 2, query = 4, cancel = 8 };

struct start_request {
    std::string display_name;
    std::string mime_type;
    std::optional<std::uint64_t> declared_size;
    std::string wanted_id;
};

class store {
public:
    store(const config& cfg, clock& clk);

    /// Creates an upload session; returns its id, or (status, message).
    std::variant<std::string, std::pair<int, std::string>> start_upload(start_request req, time_point now);
    chunk_outcome chunk(std::string_view upload_id, unsigned commands, std::optional<std::uint64_t> offset,
                        std::string_view bytes, time_point now);

    /// The File of `id` as files.get answers it (pretty JSON), counting a
    /// poll; false if missing or expired.
    bool get(std::string_view id, time_point now, std::string& body);
    /// A page of Files; `token` is the opaque page token (empty: first page).
    /// Returns false if the token is invalid.
    bool list(std::size_t page_size, std::string_view token, time_point now, json::array& files,
              std::string& next_token);
    bool remove(std::string_view id, time_point now);

    enum class usable { yes, missing, not_active };
    usable check_usable(std::string_view id, time_point now);

    std::string add_file(std::string bytes, std::string mime, std::string display, time_point now,
                         std::uint64_t size = 0);
    std::optional<file_info> info(std::string_view id, time_point now);
    std::optional<std::string> bytes(std::string_view id, time_point now);
    std::vector<std::string> names(time_point now);
    std::size_t file_count() const;
    std::map<std::string, std::uint64_t> polls() const;
    void reset_polls();
    std::size_t session_count() const;
    std::uint64_t polls_evicted() const;

    /// The wall-clock time of a clock time point.
    std::chrono::system_clock::time_point wall(time_point tp) const;

private:
    file_record& create_locked(std::string id, std::string bytes, std::string mime, std::string display,
                               time_point now, std::uint64_t size = 0);
    std::string new_id_locked();
    json::object render_locked(const file_record& f, time_point now) const;
    file_record* find_locked(std::string_view id, time_point now);
    void erase_session_locked(std::string_view sid);
    void sweep_locked(time_point now);

    const config& cfg_;
    std::chrono::system_clock::time_point wall_origin_;
    time_point clock_origin_;
    mutable std::mutex mu_;
    std::mt19937_64 rng_;
    std::uint64_t next_seq_ = 1;
    std::unordered_map<std::string, file_record, string_hash, std::equal_to<>> files_;
    std::map<std::uint64_t, std::string> by_seq_;  // listing order
    std::unordered_map<std::string, upload_session, string_hash, std::equal_to<>> sessions_;
    std::map<std::uint64_t, std::string> session_order_;  // oldest first (they expire in this order)
    std::uint64_t next_session_ = 1;
    // Poll counters by id, and their ids oldest first (a deleted file's
    // counter goes with it, from the middle of the order).
    struct poll_counter {
        std::uint64_t n = 0;
        std::list<std::string>::iterator at;
    };
    std::unordered_map<std::string, poll_counter, string_hash, std::equal_to<>> polls_;
    std::list<std::string> poll_order_;
    std::uint64_t polls_evicted_ = 0;
};

/// "files/abc" or "abc" -> "abc" (empty if not a valid id).
std::string_view file_id_of(std::string_view name) noexcept;
bool valid_file_id(std::string_view id) noexcept;

}  // namespace resilience::sim::detail

#endif
