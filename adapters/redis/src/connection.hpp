#ifndef RESILIENCE_REDIS_CONNECTION_HPP
#define RESILIENCE_REDIS_CONNECTION_HPP

// One connection to Redis: our own Asio socket; hiredis formats the commands
// (redisFormatCommandArgv) and parses the replies (redisReader). One request
// at a time (the fleet's traffic is rare: failures, transitions), each bounded
// by a timeout; the subscriber reads pushed messages with no timeout.

#include <resilience/redis/fleet.hpp>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>

#include <hiredis/hiredis.h>

#include <array>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace resilience::redis::detail {

struct reply_free {
    void operator()(redisReply* r) const noexcept {
        if (r) freeReplyObject(r);
    }
};
using reply_ptr = std::unique_ptr<redisReply, reply_free>;
using reply_result = std::pair<error_code, reply_ptr>;

/// The text of a string, status or error reply ("" otherwise).
std::string_view text(const redisReply* r) noexcept;

class connection {
public:
    explicit connection(boost::asio::any_io_executor ex);
    ~connection();
    connection(const connection&) = delete;
    connection& operator=(const connection&) = delete;

    /// Resolves and connects within `timeout` (errc::timeout past it).
    boost::asio::awaitable<error_code> connect(std::string host, std::uint16_t port, duration timeout);
    /// Sends one command and reads its reply within `timeout`. An error reply
    /// is returned as a reply (the caller decides); a failure closes nothing.
    boost::asio::awaitable<reply_result> exec(std::vector<std::string> args, duration timeout);
    /// Reads the next reply (pushed messages), no timeout.
    boost::asio::awaitable<reply_result> read();
    /// Closes the socket: pending operations end with operation_aborted.
    void close() noexcept;

private:
    boost::asio::awaitable<reply_result> read_one();
    boost::asio::awaitable<error_code> connect_only(std::string host, std::uint16_t port);
    boost::asio::ip::tcp::socket sock_;
    boost::asio::steady_timer timer_;
    redisReader* reader_;
    std::array<char, 16384> buf_{};
};

}  // namespace resilience::redis::detail

#endif
