"""Hardened OpenID Connect sign-in for Django.

Public entry points are the ``secure_sso.urls`` URLconf, the ``SECURE_SSO`` setting
(:mod:`secure_sso.conf`), the adapter (:mod:`secure_sso.adapter`) and the signals
(:mod:`secure_sso.signals`). Nothing here imports models, so settings may import it.
"""

__version__ = "0.1.0"
__all__ = ["__version__"]
