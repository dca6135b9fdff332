"""The one error every SIP parser in this package raises."""


class SipParseError(ValueError):
    """Bytes or text that do not follow the SIP grammar.

    The message names the element at fault ("Via header: missing sent-by") so that a
    server can put it in the reason phrase of its 400 and a log reader can act on it.
    """
