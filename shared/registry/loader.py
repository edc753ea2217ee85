"""Load a ``Registry`` from one or more YAML files (or directories of them).

Every problem becomes a ``RegistryError`` whose message names the file, the entry and the
field, e.g. ``deploy/config/registry/changjia.yaml: towns[0].grids[16] (changjia-g017):
leader: Field required``; YAML syntax errors carry the line and column.
"""

from __future__ import annotations

import os
from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from shared.registry.core import Registry
from shared.registry.models import COUNTY_DEPARTMENT_PREFIX, County, Town, iter_ids

YAML_SUFFIXES = (".yaml", ".yml")
MAX_REPORTED = 10
"""Problems listed in one ``RegistryError`` message (the rest are counted)."""

_ENTRY_KEYS = frozenset(
    {"towns", "grids", "micro_grids", "departments", "instructors", "members", "squads", "service_items"}
)
_LABEL_KEYS = ("grid_id", "micro_grid_id", "squad_id", "staff_id", "department_id", "town_id", "county_id", "code")


class RegistryError(Exception):
    """The registry cannot be loaded: the message says where (file, entry, field) and why."""

    def __init__(self, problems: str | Iterable[str]) -> None:
        self.problems = (problems,) if isinstance(problems, str) else tuple(problems)
        shown = list(self.problems[:MAX_REPORTED])
        if len(self.problems) > MAX_REPORTED:
            shown.append(f"... and {len(self.problems) - MAX_REPORTED} more problems")
        super().__init__("\n".join(shown))


class RegistryFile(BaseModel):
    """What one YAML file may hold; every key is optional but the file may not be empty."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: Literal[1] = 1
    include: tuple[str, ...] = ()
    county: County | None = None
    towns: tuple[Town, ...] = ()


_SafeLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when built with it


class _Loader(_SafeLoader):  # type: ignore[misc,valid-type]
    """Safe loader that refuses duplicate mapping keys (plain PyYAML keeps the last one silently)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Hashable, Any]:
        self.flatten_mapping(node)
        seen: set[Any] = set()
        for key_node, _value in node.value:
            key = self.construct_object(key_node, deep=deep)
            if isinstance(key, Hashable) and key in seen:
                raise yaml.constructor.ConstructorError(
                    "while constructing a mapping",
                    node.start_mark,
                    f"found duplicate key {key!r}",
                    key_node.start_mark,
                )
            seen.add(key)
        mapping: dict[Hashable, Any] = super().construct_mapping(node, deep=deep)
        return mapping


def display_path(path: Path) -> str:
    """``path`` relative to the working directory when it lies below it, else as given."""
    if path.is_absolute():
        try:
            return str(path.relative_to(Path.cwd()))
        except ValueError:
            return str(path)
    return os.path.normpath(path)


def _read_yaml(path: Path, source: str) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise RegistryError(f"{source}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise RegistryError(f"{source}: cannot read: {exc}") from None
    try:
        return yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        context = f" ({exc.context}, line {exc.context_mark.line + 1})" if exc.context and exc.context_mark else ""
        raise RegistryError(f"{source}: {where}YAML syntax error: {exc.problem}{context}") from None
    except yaml.YAMLError as exc:
        raise RegistryError(f"{source}: YAML error: {exc}") from None


def _loc_text(loc: Iterable[str | int]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text


def _label(data: Any, loc: tuple[str | int, ...]) -> str:
    node = data
    for part in loc:
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            return ""
    if isinstance(node, Mapping):
        for key in _LABEL_KEYS:
            if isinstance(node.get(key), str):
                return f" ({node[key]})"
    return f" ({node})" if isinstance(node, str) else ""


def describe_errors(source: str, error: ValidationError, data: Any) -> list[str]:
    """``<source>: <entry> (<id>): <field>: <message>`` for each pydantic error."""
    problems = []
    for item in error.errors(include_url=False, include_input=False):
        loc = tuple(item["loc"])
        split = 0  # the entry is the loc up to the last index into an entry list
        for i in range(1, len(loc)):
            if isinstance(loc[i], int) and loc[i - 1] in _ENTRY_KEYS:
                split = i + 1
        entry = _loc_text(loc[:split]) + _label(data, loc[:split]) if split else ""
        field = _loc_text(loc[split:])
        message = item["msg"].removeprefix("Value error, ")
        problems.append(": ".join(p for p in (source, entry, field, message) if p))
    return problems


def _validate_file(data: Any, source: str) -> RegistryFile:
    if not isinstance(data, Mapping):
        kind = "empty" if data is None else f"a {type(data).__name__}"
        raise RegistryError(f"{source}: expected a mapping with county/towns/include, the file is {kind}")
    try:
        doc = RegistryFile.model_validate(data)
    except ValidationError as exc:
        raise RegistryError(describe_errors(source, exc, data)) from None
    if doc.county is None and not doc.towns and not doc.include:
        raise RegistryError(f"{source}: defines nothing (no county, towns or include)")
    return doc


@dataclass(frozen=True, slots=True)
class _Part:
    source: str
    doc: RegistryFile


def _yaml_files(directory: Path, source: str) -> list[Path]:
    files = sorted(p for p in directory.iterdir() if p.suffix in YAML_SUFFIXES and p.is_file())
    if not files:
        raise RegistryError(f"{source}: directory holds no *.yaml files")
    return files


def _collect(paths: Iterable[Path]) -> list[_Part]:
    parts: list[_Part] = []
    visited: set[Path] = set()

    def visit(path: Path, source: str) -> None:
        if path.is_dir():
            for child in _yaml_files(path, source):
                visit(child, display_path(child))
            return
        key = path.resolve()
        if key in visited:
            return
        visited.add(key)
        data = _read_yaml(path, source)
        doc = _validate_file(data, source)
        for i, included in enumerate(doc.include):
            target = path.parent / included
            if not target.exists():
                raise RegistryError(f"{source}: include[{i}]: no such file or directory {included!r}")
            visit(target, display_path(target))
        parts.append(_Part(source, doc))

    for path in paths:
        if not path.exists():
            raise RegistryError(f"{display_path(path)}: no such file or directory")
        visit(path, display_path(path))
    return parts


def _merge(parts: list[_Part]) -> Registry:
    county: County | None = None
    county_source = ""
    towns: list[Town] = []
    origins: list[tuple[str, int]] = []
    for part in parts:
        if part.doc.county is not None:
            if county is None:
                county, county_source = part.doc.county, part.source
            elif part.doc.county != county:
                raise RegistryError(
                    f"{part.source}: county: differs from the county block in {county_source} "
                    "(several files may carry the county block only if it is identical)"
                )
        for i, town in enumerate(part.doc.towns):
            towns.append(town)
            origins.append((part.source, i))
    sources = ", ".join(p.source for p in parts)
    if county is None:
        raise RegistryError(f"{sources}: no file has the county block (county_id, name, name_zh, departments)")
    if not towns:
        raise RegistryError(f"{sources}: no towns defined")

    problems: list[str] = []
    seen: dict[str, str] = {}
    for entity_id, t, entry, label, field in iter_ids(county, towns):
        if t is None:
            where = f"{county_source}: {entry} ({label})"
        else:
            source, index = origins[t]
            where = f"{source}: towns[{index}]" + (f".{entry}" if entry else "") + f" ({label})"
        if entity_id in seen:
            problems.append(f"{where}: {field}: duplicate id {entity_id!r}, already used by {seen[entity_id]}")
        else:
            seen[entity_id] = where
    county_departments = {d.department_id for d in county.departments}
    for t, town in enumerate(towns):
        source, index = origins[t]
        for i, item in enumerate(town.service_items):
            if item.department.startswith(COUNTY_DEPARTMENT_PREFIX) and item.department not in county_departments:
                problems.append(
                    f"{source}: towns[{index}].service_items[{i}] ({item.code}): department: "
                    f"unknown department {item.department!r} (not a county department)"
                )
    if problems:
        raise RegistryError(problems)
    try:
        return Registry(county=county, towns=tuple(towns))
    except ValidationError as exc:  # pragma: no cover - the checks above cover the registry rules
        raise RegistryError(describe_errors(sources, exc, None)) from None


def load_registry(*paths: str | os.PathLike[str]) -> Registry:
    """Load and merge YAML registry files; a directory means every ``*.yaml`` in it, sorted.

    Without arguments, loads ``GwSettings().registry_path``. Raises ``RegistryError``.
    """
    if not paths:
        from shared.settings import GwSettings

        paths = (GwSettings().registry_path,)
    return _merge(_collect(Path(p) for p in paths))


def parse_registry(data: Mapping[str, Any], source: str = "<registry>") -> Registry:
    """Build a registry from one in-memory document (the YAML file layout, without ``include``)."""
    doc = _validate_file(data, source)
    if doc.include:
        raise RegistryError(f"{source}: include: not supported for an in-memory document")
    return _merge([_Part(source, doc)])
