#ifndef RESILIENCE_HTTP_IMPL_ANY_STREAM_HPP
#define RESILIENCE_HTTP_IMPL_ANY_STREAM_HPP

// Template bodies of http::any_stream (documented in http/any_stream.hpp).

#include <boost/asio/associated_allocator.hpp>
#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/socket_base.hpp>
#include <boost/beast/core/stream_traits.hpp>

#include <utility>

namespace resilience::http {

namespace detail {

// A peek at an idle socket: readable (closed by the peer, or unsolicited
// bytes) means the connection must not carry another request.
template <class Socket>
bool socket_looks_closed(Socket& s) noexcept {
    if (!s.is_open()) return true;
    error_code ec;
    const bool was_non_blocking = s.non_blocking();
    s.non_blocking(true, ec);
    if (ec) return false;
    char c;
    s.receive(boost::asio::buffer(&c, 1), boost::asio::socket_base::message_peek, ec);
    error_code ignored;
    s.non_blocking(was_non_blocking, ignored);
    return ec != boost::asio::error::would_block && ec != boost::asio::error::try_again;
}

// The handler given to the wrapped stream when the caller's handler has a
// cancellation slot: the stream sees `inner`'s slot; the caller's slot is
// served by any_stream (see cancel_or_close). Executor and allocator are
// the caller's handler's (associated_executor / associated_allocator below).
struct slot_handler {
    io_handler handler;
    boost::asio::cancellation_slot outer;
    boost::asio::cancellation_signal* inner;

    using cancellation_slot_type = boost::asio::cancellation_slot;
    cancellation_slot_type get_cancellation_slot() const noexcept { return inner->slot(); }

    void operator()(error_code ec, std::size_t n) {
        outer.clear();
        std::move(handler)(ec, n);
    }
};

template <class Stream>
struct any_stream_impl final : any_stream_base {
    explicit any_stream_impl(Stream&& s) : stream(std::move(s)) {}

    boost::asio::any_io_executor get_executor() noexcept override { return stream.get_executor(); }

    void async_read_some(const buffer_array<boost::asio::mutable_buffer>& b, io_handler h) override {
        auto outer = boost::asio::get_associated_cancellation_slot(h);
        if (!outer.is_connected()) return stream.async_read_some(b, std::move(h));
        stream.async_read_some(b, watch(std::move(h), outer, read_signal));
    }
    void async_write_some(const buffer_array<boost::asio::const_buffer>& b, io_handler h) override {
        auto outer = boost::asio::get_associated_cancellation_slot(h);
        if (!outer.is_connected()) return stream.async_write_some(b, std::move(h));
        stream.async_write_some(b, watch(std::move(h), outer, write_signal));
    }

    // Per-operation cancellation for any stream: the caller's signal goes to
    // the stream if it listens to its handler's slot (as Asio's sockets and
    // beast::tcp_stream do); a stream that does not (beast::test::stream in
    // Boost 1.81) is closed on terminal cancellation, which ends its pending
    // operations; partial or total cancellation is then ignored, as Asio allows.
    slot_handler watch(io_handler h, boost::asio::cancellation_slot outer, boost::asio::cancellation_signal& inner) {
        inner.slot().clear();
        outer.assign([this, &inner](boost::asio::cancellation_type t) {
            if (inner.slot().has_handler()) inner.emit(t);
            else if ((t & boost::asio::cancellation_type::terminal) != boost::asio::cancellation_type::none) close();
        });
        return slot_handler{std::move(h), outer, &inner};
    }

    void close() noexcept override {
        auto& low = boost::beast::get_lowest_layer(stream);
        if constexpr (requires(error_code& ec) { low.close(ec); }) {
            error_code ec;
            low.close(ec);
        } else {
            try {
                low.close();
            } catch (...) {  // closing is best effort: the connection is dropped either way
            }
        }
    }

    bool looks_closed() noexcept override {
        auto& low = boost::beast::get_lowest_layer(stream);
        if constexpr (requires { low.socket().non_blocking(); }) {
            return socket_looks_closed(low.socket());
        } else if constexpr (requires(error_code& ec) {
                                 low.non_blocking();
                                 low.receive(boost::asio::mutable_buffer(), boost::asio::socket_base::message_peek, ec);
                             }) {
            return socket_looks_closed(low);
        } else {
            return false;
        }
    }

    void* target(const std::type_info& t) noexcept override { return t == typeid(Stream) ? &stream : nullptr; }

    Stream stream;
    boost::asio::cancellation_signal read_signal, write_signal;  // one operation per direction at a time
};

}  // namespace detail

template <class Stream, class>
any_stream::any_stream(Stream&& s)
    : impl_(std::make_unique<detail::any_stream_impl<std::decay_t<Stream>>>(std::forward<Stream>(s))) {}

template <class MutableBufferSequence, class ReadToken>
auto any_stream::async_read_some(const MutableBufferSequence& buffers, ReadToken&& token) {
    return boost::asio::async_initiate<ReadToken, void(error_code, std::size_t)>(
        [](auto handler, detail::any_stream_base* impl, const detail::buffer_array<boost::asio::mutable_buffer>& b) {
            impl->async_read_some(b, detail::io_handler(std::move(handler)));
        },
        token, impl_.get(), detail::buffer_array<boost::asio::mutable_buffer>::from(buffers));
}

template <class ConstBufferSequence, class WriteToken>
auto any_stream::async_write_some(const ConstBufferSequence& buffers, WriteToken&& token) {
    return boost::asio::async_initiate<WriteToken, void(error_code, std::size_t)>(
        [](auto handler, detail::any_stream_base* impl, const detail::buffer_array<boost::asio::const_buffer>& b) {
            impl->async_write_some(b, detail::io_handler(std::move(handler)));
        },
        token, impl_.get(), detail::buffer_array<boost::asio::const_buffer>::from(buffers));
}

}  // namespace resilience::http

namespace boost::asio {

template <class Executor>
struct associated_executor<resilience::http::detail::slot_handler, Executor> {
    using type = associated_executor_t<resilience::http::detail::io_handler, Executor>;
    static type get(const resilience::http::detail::slot_handler& h, const Executor& ex = Executor()) noexcept {
        return get_associated_executor(h.handler, ex);
    }
};

template <class Allocator>
struct associated_allocator<resilience::http::detail::slot_handler, Allocator> {
    using type = associated_allocator_t<resilience::http::detail::io_handler, Allocator>;
    static type get(const resilience::http::detail::slot_handler& h, const Allocator& a = Allocator()) noexcept {
        return get_associated_allocator(h.handler, a);
    }
};

}  // namespace boost::asio

#endif
