#ifndef RESILIENCE_HTTP_CONNECTOR_HPP
#define RESILIENCE_HTTP_CONNECTOR_HPP

// The HTTP client's transport seam: a connector opens the connections the
// client sends requests over (client_options::connect). Empty, the client
// uses its own TCP path (resolve, connect, TLS for https). Set, the client
// asks the connector for a connected stream whenever its pool has no idle
// connection to an origin, and does everything else itself: pooling and
// connection limits, HTTP/1.1 framing, size limits, every timeout, stale
// re-sends and the mapping of errors. Uses: tests that drive the client over
// beast::test::stream (no sockets, no real time), a Unix socket, a tunnel,
// a custom resolver.
//
//   opts.connect = [ex](const resilience::http::origin& o, resilience::http::connect_handler h) {
//       boost::beast::test::stream client_end(ex), server_end(ex);
//       client_end.connect(server_end);
//       ... hand server_end to the test's fake server ...
//       std::move(h)(resilience::error_code(), resilience::http::any_stream(std::move(client_end)));
//   };
//
// Contract:
// - The connector is called on the client's internal executor, once per new
//   connection, and must not block. It completes `h` once, from any thread,
//   from within the call or later (the client posts the result to its own
//   executor): with an empty code and a connected stream, or with a code
//   (the request then fails with it, classified as usual: asio's network
//   codes such as connection_refused are retried). Build the stream on the
//   client's io_context (or executor): its operations complete on the
//   client's executor, as with any Asio stream.
// - For an https origin the stream must already speak TLS (the connector
//   handshakes and verifies); the client writes plain HTTP/1.1 bytes over it.
// - Limits: connect_timeout and the request's deadline bound the connector;
//   when one passes, or the request is cancelled, the client stops waiting,
//   emits a terminal cancellation on the handler's associated cancellation
//   slot (the connector may stop early through it) and discards whatever
//   the handler later receives. The client then fails the request with its
//   own timeout or operation_aborted code, as on its TCP path.
// - Timers: over a custom stream every limit (io, header, progress,
//   deadline) runs as a watchdog on the client's clock that closes the
//   stream (any_stream::close) when its limit passes, whatever the clock;
//   the TCP path keeps Beast's own stream timers on the steady clock.
// - An exception thrown by the connector propagates out of send().

#include <resilience/diagnostics.hpp>
#include <resilience/http/any_stream.hpp>

#include <boost/asio/any_completion_handler.hpp>

#include <cstdint>
#include <functional>
#include <string>

namespace resilience::http {

/// Where a connection goes: the scheme, host and port of a request URL.
struct origin {
    origin() = default;
    bool tls = false;        ///< https: the stream must speak TLS
    std::string host;        ///< host name or IP address (IPv6 without brackets), percent-decoded
    std::uint16_t port = 0;  ///< the URL's port, or 80 / 443
};

/// Completes a connect: an empty code and a connected stream, or a code.
using connect_handler = boost::asio::any_completion_handler<void(error_code, any_stream)>;

/// Opens a connection to an origin (see the contract above).
using connector = std::function<void(const origin&, connect_handler)>;

}  // namespace resilience::http

#endif
