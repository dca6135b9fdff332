"""The errors `SipTransportLayer.send` and `receive` raise; all are `TransportError`."""


class TransportError(OSError):
    """A message could not be sent (no route, no connection, a socket error)."""


class ConnectionGone(TransportError):
    """The connection a message was meant for has closed.

    Raised instead of silently opening a new connection when the message was addressed to
    a connection (a `Source`): a phone behind NAT cannot be reached any other way, and the
    layer above must learn that its flow failed (RFC 5626 section 4.4).
    """


class NoRoute(TransportError):
    """Nothing can carry a message to this destination (no listener, a browser peer)."""


class TransportClosed(TransportError):
    """The transport layer has been closed."""
