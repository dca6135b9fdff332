"""Email about cases' SLA alarms and escalations (issue 7).

- `recipients`: who is told (the assignee, their supervisors, whom an escalation names);
- `messages`: the RFC 5322 messages in English or Simplified Chinese, and their
  deduplication key;
- `delivery`: what a try's outcome does to a stored email (retries, backoff, giving up);
- `outbox`: the emails in the store, stored before they are sent;
- `smtp`: the `MailTransport` seam and its aiosmtplib adapter;
- `sender`: the task that empties the outbox;
- `notifier`: follows the bus, stores the emails, catches up after a stop.

The first three are pure; the rest are adapters.
"""

from telportal.notify.delivery import OutboxState, RetryPolicy
from telportal.notify.notifier import CaseNotifier, EmailNotifications
from telportal.notify.sender import OutboxSender
from telportal.notify.smtp import DeliveryError, MailTransport, RecordingTransport, SmtpTransport

__all__ = [
    "CaseNotifier",
    "DeliveryError",
    "EmailNotifications",
    "MailTransport",
    "OutboxSender",
    "OutboxState",
    "RecordingTransport",
    "RetryPolicy",
    "SmtpTransport",
]
