"""The SIP edge of the platform: directory, registrar service and the UA core."""
