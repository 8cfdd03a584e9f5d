#ifndef RESILIENCE_HTTP_ANY_STREAM_HPP
#define RESILIENCE_HTTP_ANY_STREAM_HPP

// A connected byte stream of any type, type-erased: what a connector
// (resilience/http/connector.hpp) hands to the HTTP client. It owns the
// stream it was built from and is itself an Asio AsyncReadStream and
// AsyncWriteStream, so Beast's HTTP algorithms run over it unchanged
// (Boost.MySQL's any_connection erases its stream the same way).
//
//   boost::beast::test::stream client_end(ctx), server_end(ctx);
//   client_end.connect(server_end);
//   resilience::http::any_stream s(std::move(client_end));
//
// Each operation erases its completion handler with
// asio::any_completion_handler (one allocation through the handler's
// associated allocator); the handler's associated executor and allocator
// reach the wrapped stream. Buffer sequences are passed on as up to 8
// buffers (a write_some may write fewer bytes, as any write_some).
//
// Per-operation cancellation: a signal on the handler's cancellation slot
// reaches the wrapped stream when it listens to its handler's slot (Asio's
// sockets, beast::tcp_stream); a stream that does not (beast::test::stream
// in Boost 1.81) is closed on terminal cancellation, which completes its
// pending operation; other cancellation types are then ignored.
//
// close() ends the connection through the lowest layer's close() (pending
// operations then complete, as the stream does on close). looks_closed()
// answers whether an idle connection was closed by its peer; it can tell
// only when the lowest layer is an Asio socket (or has one as `socket()`,
// like beast::tcp_stream); for any other stream it answers false.
//
// Thread safety: as the wrapped stream (one operation of each direction at
// a time, from one strand).

#include <resilience/diagnostics.hpp>

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/buffer.hpp>

#include <array>
#include <cstddef>
#include <memory>
#include <type_traits>
#include <typeinfo>

namespace resilience::http {

namespace detail {

/// Up to N buffers of a buffer sequence, itself a buffer sequence (a value,
/// cheap to copy, as Asio requires of the buffers passed to an operation).
template <class Buffer, std::size_t N = 8>
struct buffer_array {
    std::array<Buffer, N> items{};
    std::size_t count = 0;

    const Buffer* begin() const noexcept { return items.data(); }
    const Buffer* end() const noexcept { return items.data() + count; }

    template <class Sequence>
    static buffer_array from(const Sequence& s) {
        buffer_array a;
        for (auto it = boost::asio::buffer_sequence_begin(s), e = boost::asio::buffer_sequence_end(s);
             it != e && a.count < N; ++it) {
            Buffer b(*it);
            if (b.size() > 0) a.items[a.count++] = b;
        }
        return a;
    }
};

using io_handler = boost::asio::any_completion_handler<void(error_code, std::size_t)>;

struct any_stream_base {
    virtual ~any_stream_base() = default;
    virtual boost::asio::any_io_executor get_executor() noexcept = 0;
    virtual void async_read_some(const buffer_array<boost::asio::mutable_buffer>& b, io_handler h) = 0;
    virtual void async_write_some(const buffer_array<boost::asio::const_buffer>& b, io_handler h) = 0;
    virtual void close() noexcept = 0;
    virtual bool looks_closed() noexcept = 0;
    virtual void* target(const std::type_info& t) noexcept = 0;
};

template <class Stream>
struct any_stream_impl;

}  // namespace detail

/// A move-only, type-erased, connected AsyncReadStream + AsyncWriteStream.
class any_stream {
public:
    using executor_type = boost::asio::any_io_executor;

    /// No stream (operator bool is false).
    any_stream() noexcept = default;

    /// Takes ownership of `s` (moved in). Stream must be an AsyncReadStream
    /// and AsyncWriteStream whose executor converts to any_io_executor.
    template <class Stream,
              class = std::enable_if_t<!std::is_same_v<std::decay_t<Stream>, any_stream> &&
                                       !std::is_lvalue_reference_v<Stream>>>
    explicit any_stream(Stream&& s);

    any_stream(any_stream&&) noexcept = default;
    any_stream& operator=(any_stream&&) noexcept = default;

    explicit operator bool() const noexcept { return impl_ != nullptr; }

    /// The wrapped stream's executor.
    executor_type get_executor() noexcept { return impl_->get_executor(); }

    /// Reads some bytes: `void(error_code, std::size_t)`, any completion token.
    template <class MutableBufferSequence, class ReadToken>
    auto async_read_some(const MutableBufferSequence& buffers, ReadToken&& token);

    /// Writes some bytes: `void(error_code, std::size_t)`, any completion token.
    template <class ConstBufferSequence, class WriteToken>
    auto async_write_some(const ConstBufferSequence& buffers, WriteToken&& token);

    /// Closes the lowest layer; pending and later operations fail.
    void close() noexcept {
        if (impl_) impl_->close();
    }

    /// True when an idle connection is known to be closed by its peer (or
    /// carries unsolicited bytes). Known only for Asio sockets; false otherwise.
    bool looks_closed() noexcept { return impl_ && impl_->looks_closed(); }

    /// The wrapped stream if it is a T, else nullptr (as any_io_executor::target).
    template <class T>
    T* target() noexcept {
        return impl_ ? static_cast<T*>(impl_->target(typeid(T))) : nullptr;
    }

private:
    std::unique_ptr<detail::any_stream_base> impl_;
};

}  // namespace resilience::http

#include <resilience/http/impl/any_stream.hpp>

#endif
