"""Every check of the catalog, registered.

Importing this module imports the check modules beside it, each of which
registers its functions with ``rules.check`` as it is imported; the catalog
(``rules``) imports none of them, since they import it.
"""

from __future__ import annotations

from . import CHECKS, Check, aio, api, compat, guide, orm, security, sessions

# Imported for their registration.
MODULES = (aio, api, compat, guide, orm, security, sessions)


def load_checks() -> dict[str, Check]:
    """Every registered check by rule id."""
    return CHECKS
