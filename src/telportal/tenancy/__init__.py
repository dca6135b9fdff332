"""The operator's model (MISSION M13): tenants, services, numbers, centers, sites, people."""
