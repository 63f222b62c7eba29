"""The sans-IO rule: core modules import no adapter, network, storage, clock or OS code."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "ncb_relay"
ADAPTERS = {"atomic_file", "bureau", "bureau_cli", "cli", "client", "demo", "keystore", "relay"}
ADAPTERS |= {"log_cli"}  # ncb-relay log audit|witness: the network, the clock, a state file
ADAPTERS |= {"conformance"}  # the conformance adapter and runner: stdin, stdout, processes
ADAPTERS |= {  # the administrators' commands, run by cli (spec/directory.md, "Command line")
    "admin_anchor",
    "admin_directory",
    "admin_display",
    "admin_exports",
    "admin_files",
    "admin_keys",
    "admin_keystores",
    "admin_options",
    "admin_principals",
    "admin_relay",
    "admin_root",
    "admin_signing",
    "admin_times",
    "admin_verify",
}
ALLOWED_EXTERNAL = {
    "__future__",
    "base64",
    "collections",
    "dataclasses",
    "enum",
    "hashlib",
    "heapq",
    "hmac",
    "ipaddress",
    "msgpack",
    "nacl",
    "pydantic",
    "re",
    "types",
    "typing",
    "unicodedata",
}


def _core_modules() -> list[Path]:
    # subpackages too (ncb_relay/messages/...); an adapter may be a module or a package
    return sorted(
        p
        for p in PACKAGE.rglob("*.py")
        if p.relative_to(PACKAGE).parts[0].removesuffix(".py") not in ADAPTERS
    )


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                names.update(
                    f".{alias.name}" if not node.module else f".{node.module}"
                    for alias in node.names
                )
            elif node.module:
                names.add(node.module)
    return names


@pytest.mark.parametrize(
    "path", _core_modules(), ids=lambda p: p.relative_to(PACKAGE).with_suffix("").as_posix()
)
def test_core_module_imports_only_core_and_pure_libraries(path: Path) -> None:
    for name in _imports(path):
        if name.startswith("."):
            assert name.lstrip(".").split(".")[0] not in ADAPTERS, f"{path.stem} imports {name}"
        else:
            assert name.split(".")[0] in ALLOWED_EXTERNAL, f"{path.stem} imports {name}"


def test_importing_the_core_loads_no_io_modules() -> None:
    # 'socket' is not in the list: pydantic's plugin loader reads importlib.metadata, whose
    # email.utils imports socket. The core never imports it (the static test above).
    code = (
        "import sys, ncb_relay, ncb_relay.walkthrough\n"
        "io = {'sqlite3', 'asyncio', 'trio', 'httpx', 'ncb_relay.cli'}\n"
        "bad = io & set(sys.modules)\n"
        "print(sorted(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
