"""The house's shape, measured from the code's own imports (issue 16's figures):

    python scripts/architecture.py [--tree]

- rooms: each top-level module or subpackage of `nas/`, and `tasks/` and `flows/` whole;
- arrows: distinct imports from one room to another;
- floors: the rooms on the longest chain of such imports (a room importing nothing is floor 1);
- string-key reads: `x["key"]` loads and `x.get("key")` calls in nas/, flows/ and tasks/ (reads
  of untyped dicts);
- the three functions with the most parameters.
"""

from __future__ import annotations

import argparse
import ast
from functools import cache
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("nas", "tasks", "flows")


def room_of(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] in ("tasks", "flows"):
        return parts[0]
    if parts[0] == "nas":
        return "nas" if len(parts) == 1 else f"nas.{parts[1]}"
    return None


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported(tree: ast.AST, module: str, is_package: bool) -> set[str]:
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = module.split(".") if is_package else module.split(".")[:-1]
                base = ".".join(package[: len(package) - node.level + 1] + ([base] if base else []))
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)  # `from nas import dataset`
    return names


def measure() -> dict:
    arrows: set[tuple[str, str]] = set()
    rooms: set[str] = set()
    key_reads = 0
    widths: list[tuple[int, str]] = []
    for package in PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            module = module_name(path)
            tree = ast.parse(path.read_text(), str(path))
            here = room_of(module)
            rooms.add(here)
            for name in imported(tree, module, path.name == "__init__.py"):
                there = room_of(name)
                if there and there != here and (there != "nas" or name == "nas"):
                    arrows.add((here, there))
            for node in ast.walk(tree):
                if (isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Load)
                        and isinstance(node.slice, ast.Constant) and isinstance(node.slice.value, str)):
                    key_reads += 1
                elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "get"
                      and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
                    key_reads += 1
                elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    a = node.args
                    count = len(a.posonlyargs) + len(a.args) + len(a.kwonlyargs)
                    count -= bool(a.args and a.args[0].arg in ("self", "cls"))
                    widths.append((count, f"{module}.{node.name}"))
    arrows = {(a, b) for a, b in arrows if b in rooms}
    out = {room: sorted(b for a, b in arrows if a == room) for room in sorted(rooms)}

    @cache
    def floor(room: str) -> int:
        return 1 + max((floor(b) for b in out[room]), default=0)

    return {"rooms": len(rooms), "floors": max(map(floor, rooms)), "arrows": len(arrows),
            "string_key_reads": key_reads, "widest": sorted(widths, reverse=True)[:3], "floor": {r: floor(r) for r in rooms},
            "imports": out}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tree", action="store_true", help="also list the rooms by floor with their imports")
    args = parser.parse_args()
    m = measure()
    widest = ", ".join(f"{name} ({count})" for count, name in m["widest"])
    print(f"{m['rooms']} rooms on {m['floors']} floors, {m['arrows']} arrows; {m['string_key_reads']} string-key "
          f"reads; widest functions (parameters): {widest}")
    if args.tree:
        for room in sorted(m["floor"], key=lambda r: (-m["floor"][r], r)):
            print(f"  {m['floor'][room]:2d} {room} -> {', '.join(m['imports'][room])}")


if __name__ == "__main__":
    main()
