"""The layer rules of STYLE.md: cli -> core -> common, apps apart, crypto in one module."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("common", "courier", "center")


def _modules() -> list[tuple[str, set[str]]]:
    result = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            imported: set[str] = set()
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.Import):
                    imported |= {alias.name for alias in node.names}
                elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                    imported.add(node.module)
            result.append((module, imported))
    return result


MODULES = _modules()


def _violations(rule) -> list[str]:  # type: ignore[no-untyped-def]
    return [f"{m} imports {i}" for m, imports in MODULES for i in imports if rule(m, i)]


def _top(name: str) -> str:
    return name.split(".")[0]


def test_modules_were_found() -> None:
    """The scan sees every package (guards against a vacuous pass)."""
    tops = {_top(m) for m, _ in MODULES}
    assert tops == set(PACKAGES) and len(MODULES) > 20


def test_common_imports_neither_app() -> None:
    """common/ imports neither courier nor center."""
    assert _violations(lambda m, i: _top(m) == "common" and _top(i) in ("courier", "center")) == []


@pytest.mark.parametrize(("app", "other"), [("courier", "center"), ("center", "courier")])
def test_apps_never_import_each_other(app: str, other: str) -> None:
    """courier and center never import each other."""
    assert _violations(lambda m, i: _top(m) == app and _top(i) == other) == []


def test_core_never_imports_cli() -> None:
    """core packages do not depend on the CLI layer."""
    assert _violations(lambda m, i: ".core" in m and ".cli" in i) == []


def test_only_crypto_imports_crypto_libraries() -> None:
    """Only the common.crypto package (common/crypto/) imports pyrage or cryptography.hazmat."""

    def rule(m: str, i: str) -> bool:
        inside = m == "common.crypto" or m.startswith("common.crypto.")
        return not inside and (_top(i) == "pyrage" or i.startswith("cryptography.hazmat"))

    assert _violations(rule) == []


def test_cli_does_no_sql_or_crypto() -> None:
    """CLI modules import no sqlite3, pyrage or cryptography: they call core functions."""
    banned = ("sqlite3", "sqlite_utils", "pyrage", "cryptography", "pydicom")
    assert _violations(lambda m, i: ".cli" in m and _top(i) in banned) == []
