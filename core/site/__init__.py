"""The site model of one OSBiz + Unify Phone connectivity and its loader (``examples/site-healthy.yaml``)."""

from core.site.loader import MAX_SITE_BYTES, format_path, load_site, load_site_text
from core.site.model import Site, Team, User, parse_version, same_version

__all__ = [
    "MAX_SITE_BYTES",
    "Site",
    "Team",
    "User",
    "format_path",
    "load_site",
    "load_site_text",
    "parse_version",
    "same_version",
]
