"""Customers (MISSION M9): records, identities, timelines; the store side of the CRM."""
