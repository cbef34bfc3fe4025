"""Trace profiles, capture files (writing, rotation, per-call export) and support bundles."""
