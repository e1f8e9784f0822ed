"""Read a YAML configuration file (pipeline config, policy, must-pass list) with one-line errors.

Hostile files are refused before they can cost memory or time: only a regular file of at most 1 MiB
(``safeio``), at most ``MAX_DEPTH`` levels of nesting and at most ``MAX_NODES`` nodes once aliases are
expanded (a "billion laughs" alias bomb is a few hundred bytes that expand to billions of nodes). The
loader is a private ``SafeLoader`` without any tag another library may have registered globally (rasa_nlu
registers ``!env_var``, which would expand environment variables, secrets included).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from nlu_ci import safeio
from nlu_ci.errors import ConfigError

MAX_DEPTH = 50
MAX_NODES = 100_000


class _Loader(yaml.SafeLoader):
    """SafeLoader with its own copy of the constructors: only YAML's standard tags."""


_Loader.yaml_constructors = {tag: fn for tag, fn in yaml.SafeLoader.yaml_constructors.items()
                             if tag is None or tag.startswith("tag:yaml.org,2002:")}
_Loader.yaml_implicit_resolvers = {
    key: [(tag, regexp) for tag, regexp in resolvers if tag.startswith("tag:yaml.org,2002:")]
    for key, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()}


def _check_size(root: yaml.Node, where: str) -> None:
    """Expanded node count and depth of the composed document, without expanding anything (memoised on node
    identity: an alias is the same node object)."""
    sizes: dict[int, int] = {}
    depths: dict[int, int] = {}
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    active: set[int] = set()
    while stack:
        node, done = stack.pop()
        key = id(node)
        if key in sizes and not done:
            continue
        children = []
        if isinstance(node, yaml.SequenceNode):
            children = list(node.value)
        elif isinstance(node, yaml.MappingNode):
            children = [n for pair in node.value for n in pair]
        if not done:
            if key in active:  # a recursive alias (&a [*a]): infinite when expanded
                raise ConfigError(f"{where}: recursive YAML alias: refused")
            active.add(key)
            stack.append((node, True))
            stack.extend((c, False) for c in children if id(c) not in sizes)
            if len(active) > MAX_DEPTH:
                raise ConfigError(f"{where}: YAML nested deeper than {MAX_DEPTH} levels: refused")
            continue
        active.discard(key)
        sizes[key] = 1 + sum(sizes.get(id(c), 0) for c in children)
        depths[key] = 1 + max((depths.get(id(c), 0) for c in children), default=0)
        if sizes[key] > MAX_NODES:
            raise ConfigError(f"{where}: YAML expands to more than {MAX_NODES} values (aliases): refused")
        if depths[key] > MAX_DEPTH:
            raise ConfigError(f"{where}: YAML nested deeper than {MAX_DEPTH} levels: refused")


def parse_yaml(text: str, where: str) -> Any:
    """Parse YAML text with the limits above; ConfigError (one line) on any problem."""
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _check_size(node, where)
        return loader.construct_document(node)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        at = f" at line {mark.line + 1} column {mark.column + 1}" if mark else ""
        problem = str(getattr(err, "problem", None) or err)[:200]
        raise ConfigError(f"{where}: invalid YAML{at}: {problem}") from None
    except RecursionError:
        raise ConfigError(f"{where}: YAML nested too deeply: refused") from None
    except (ValueError, OverflowError) as err:  # e.g. an integer of 200,000 digits
        raise ConfigError(f"{where}: invalid YAML value: {str(err)[:200]}") from None
    finally:
        loader.dispose()


def read_yaml(path: Path | str, what: str, where: str | None = None) -> tuple[Any, str]:
    """(parsed YAML, text) of ``path``; any problem is a ConfigError naming ``where`` (default: the path) and
    ``what`` the file is ("pipeline config", "policy file", ...). An empty file parses as None."""
    path = Path(path)
    where = where or str(path)
    text = safeio.read_text(path, what, kind="config", where=where)
    return parse_yaml(text, where), text
