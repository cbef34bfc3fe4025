"""Collectors turn real sources (captures, live traffic, trace logs, probes, tokens) into core values."""
