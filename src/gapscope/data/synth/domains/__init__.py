"""The built-in domains, one module each, in a fixed order (the order rows are written in)."""

from __future__ import annotations

from importlib import import_module

from ..templating import DomainSpec

DOMAIN_NAMES = ("corporate", "fraud", "alerts", "marketing", "personal", "mailinglist")


def load(name: str) -> DomainSpec:
    """The DomainSpec of one built-in domain (modules import lazily, so one typo does not break all)."""
    if name not in DOMAIN_NAMES:
        raise ValueError(f"unknown synthetic domain {name!r}; choose from {', '.join(DOMAIN_NAMES)}")
    return import_module(f"{__name__}.{name}").DOMAIN
