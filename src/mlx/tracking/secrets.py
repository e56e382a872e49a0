"""Passwords and tokens out of everything mlx logs, uploads or prints.

A tracking URI (``postgresql://user:secret@host/db``, ``http://user:pw@host``) or an Optuna storage URL
may hold a password. ``redact`` masks it wherever such a URI appears in a text: the password of a URI's
user info, and the values of query parameters that name a secret (``?password=``, ``&token=``,
``access_key=``...). The user name, host, port and path stay, so the line still says which store is meant.
Applied to MLflow params and tags, to the configuration.yaml uploaded to MLflow (a redacted copy: the run
folder's own file keeps the real value, as resume reads it), and to every error line mlx prints.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

MASK = "***"

# scheme://user:password@host  (the password up to the last '@' before the host: an unencoded '@' in it
# is masked too; a bare `scheme://user@host` has no password and is left as it is)
_USERINFO = re.compile(r"(?P<head>\b[A-Za-z][A-Za-z0-9+.\-]*://[^:/@\s'\"]*:)(?P<secret>[^/?#\s'\"]+)(?=@)")

_SECRET_NAMES = (
    r"password|passwd|pwd|pass|secret|secret[_-]?key|client[_-]?secret|token|access[_-]?token|auth[_-]?token|"
    r"refresh[_-]?token|id[_-]?token|api[_-]?key|apikey|access[_-]?key|access[_-]?key[_-]?id|"
    r"aws[_-]?secret[_-]?access[_-]?key|sas[_-]?token|sig|signature|x-amz-signature|x-amz-credential|"
    r"x-amz-security-token|credential|credentials|private[_-]?key|session[_-]?token|auth|authorization"
)
# ?password=...&, ;Password=... (ODBC-style), ssl_password=...: the value up to the next separator
_QUERY = re.compile(
    rf"(?P<head>(?:[?&;]|\b)(?:[\w-]*[_-])?(?:{_SECRET_NAMES})=)(?P<secret>[^&;\s'\"#]+)", re.IGNORECASE
)


def redact(text: str) -> str:
    """``text`` with every password of a URI and every secret-valued query parameter replaced by ***."""
    if not text or ("://" not in text and "=" not in text):
        return text
    text = _USERINFO.sub(lambda m: m["head"] + MASK, text)
    return _QUERY.sub(lambda m: m["head"] + MASK, text)


def redact_tree(tree: Any) -> Any:
    """A copy of a config tree (dicts, lists, scalars) with every string redacted."""
    if isinstance(tree, str):
        return redact(tree)
    if isinstance(tree, Mapping):
        return {key: redact_tree(value) for key, value in tree.items()}
    if isinstance(tree, (list, tuple)):
        return type(tree)(redact_tree(value) for value in tree)
    return tree
