"""Sending one message over SMTP: the `MailTransport` seam and its aiosmtplib adapter.

The sender knows only `MailTransport.send`, which either returns (the server took the
message) or raises `DeliveryError` saying whether trying again may help. Tests of the
sender use `RecordingTransport`; the platform uses `SmtpTransport`, and the tests of
the platform point it at a real SMTP server (aiosmtpd).
"""

import ssl
from email.message import EmailMessage
from typing import Protocol

import aiosmtplib

from telportal.config import EmailSecurity, EmailSettings


class DeliveryError(Exception):
    """A try failed; `permanent` when the server refused the message for good."""

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


class MailTransport(Protocol):
    async def send(self, message: EmailMessage) -> None: ...


def classify(exc: Exception) -> DeliveryError:
    """Our reading of an SMTP failure. 5xx is permanent (RFC 5321 4.2.1), except a
    refused login: that is our configuration, and it may be fixed while rows wait."""
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        codes = [r.code for r in exc.recipients]
        text = "; ".join(f"{r.recipient}: {r.code} {r.message}" for r in exc.recipients)
        return DeliveryError(f"recipient refused: {text}", permanent=all(c >= 500 for c in codes))
    if isinstance(exc, aiosmtplib.SMTPAuthenticationError):
        return DeliveryError(f"login refused: {exc.code} {exc.message}")
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        return DeliveryError(f"{exc.code} {exc.message}", permanent=exc.code >= 500)
    # Refused connections, timeouts, drops, 4xx: the next try may well succeed.
    return DeliveryError(f"{type(exc).__name__}: {exc}")


class SmtpTransport:
    """One connection per message: alarms are few, and a fresh connection after a
    failure needs no recovery logic. The password goes to the server, never to a log."""

    def __init__(self, settings: EmailSettings, tls_context: ssl.SSLContext | None = None) -> None:
        self.settings = settings
        self.tls_context = tls_context

    async def send(self, message: EmailMessage) -> None:
        s = self.settings
        password = s.password.get_secret_value() if s.password is not None else None
        try:
            await aiosmtplib.send(
                message,
                hostname=s.smtp_host,
                port=s.port,
                username=s.username,
                password=password,
                use_tls=s.security is EmailSecurity.TLS,
                # "none" must mean none: aiosmtplib would otherwise upgrade when offered.
                start_tls=s.security is EmailSecurity.STARTTLS,
                validate_certs=s.validate_certs,
                tls_context=self.tls_context,
                timeout=s.timeout_seconds,
            )
        except Exception as exc:
            raise classify(exc) from exc


class RecordingTransport:
    """An in-memory transport for tests: keeps what it was given, or fails as told."""

    def __init__(self) -> None:
        self.sent: list[EmailMessage] = []
        self.fail_with: DeliveryError | None = None

    async def send(self, message: EmailMessage) -> None:
        if self.fail_with is not None:
            raise self.fail_with
        self.sent.append(message)
