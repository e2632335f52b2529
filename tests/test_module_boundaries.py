"""No gapscope module imports another module's private name: a leading underscore means a module
may rename or drop it, which another module's import would break without a test noticing."""

import ast
from pathlib import Path

import gapscope


def test_no_module_imports_a_private_name_of_another():
    root = Path(gapscope.__file__).parent
    private = []
    for path in sorted(root.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("gapscope"):
                private += [f"{path.relative_to(root)}: {node.module}.{a.name}" for a in node.names
                            if a.name.startswith("_") and not a.name.startswith("__")]
    assert private == []
