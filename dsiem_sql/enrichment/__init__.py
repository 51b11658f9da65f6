"""Threat-intel (Wise) and vulnerability (Nesd) lookups (docs/behaviour.md, "Enrichment")."""
