"""Threat-intel (Wise) and vulnerability (Nesd) lookups (SPEC §8)."""
