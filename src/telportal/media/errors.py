"""Errors of the media engine; each message says which endpoint and what was wrong."""


class MediaError(Exception):
    """Base of the media engine's errors."""


class UnknownEndpointError(MediaError, LookupError):
    def __init__(self, endpoint_id: str) -> None:
        super().__init__(f"no media endpoint {endpoint_id!r} (never created, or closed)")
        self.endpoint_id = endpoint_id


class MediaStateError(MediaError):
    """The endpoint cannot do this now (no codec negotiated yet, no recording running...)."""


class PortsExhaustedError(MediaError):
    """No free pair of RTP/RTCP ports in the configured range."""
