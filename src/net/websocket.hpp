#pragma once
// An accepted WebSocket connection (RFC 6455) of the HTTP server, plain or
// TLS, behind one interface, so the front door above does not depend on
// the stream type. Text messages only (a binary message is read as text).
//
// One read and one write may be outstanding at a time, both from the
// connection's strand (the executor the handler runs on). The server sets:
// the message size limit (server_options::body_limit: a bigger message
// closes the connection with 1009), and Beast's keep-alive: a ping after
// half the idle timeout of silence, the connection closed when the idle
// timeout passes without any frame from the peer.
#include "net/asio.hpp"

#include <boost/system/result.hpp>

#include <cstdint>
#include <string>

namespace parley::net {

class websocket_connection {
public:
    virtual ~websocket_connection() = default;
    // The next message; an error when the connection is closed (by the
    // peer: beast::websocket::error::closed), timed out, or a message was
    // over the limit.
    virtual task<boost::system::result<std::string>> read() = 0;
    // One text message; false when the connection is gone.
    virtual task<bool> write(std::string text) = 0;
    // Sends a close frame with `code` and `reason` (at most 123 bytes) and
    // waits, bounded, for the peer's.
    virtual task<void> close(std::uint16_t code, std::string reason) = 0;
    // Drops the connection at once (no close frame).
    virtual void abort() = 0;
    virtual std::string const& remote_address() const = 0;
};

}  // namespace parley::net
