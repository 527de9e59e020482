"""A code version for model metadata: a digest of the package's source and spec files."""

from __future__ import annotations

import hashlib
from functools import lru_cache

from alevor_assets.lib.config import PACKAGE_DIR, SQL_DIR


@lru_cache(maxsize=1)
def code_version() -> str:
    digest = hashlib.sha256()
    files = sorted(
        [*PACKAGE_DIR.rglob("*.py"), *PACKAGE_DIR.rglob("*.yaml"), *(SQL_DIR.glob("*.sql") if SQL_DIR.exists() else [])]
    )
    for path in files:
        digest.update(str(path.relative_to(PACKAGE_DIR.parent)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]
