"""Credentials: password hashing, bearer tokens, API keys, SIP digest secrets, lockouts."""
