"""Reading YAML that a user, a bag folder or an attacker wrote: bounded, safe, one-line errors.

Every YAML file ivif_ros reads (parameters files, ``--param`` values, calibration files,
training configs) goes through :func:`load_yaml_file` or :func:`load_yaml_text`:

* only plain data (``yaml.SafeLoader``): a ``!!python/...`` tag is an error, never code;
* the file is read up to ``MAX_YAML_BYTES`` and must be UTF-8 text;
* aliases may not expand the document past ``MAX_YAML_NODES`` nodes. PyYAML shares an
  aliased value instead of copying it, so an "alias bomb" (each level repeating the one
  before) costs little to parse but gigabytes the moment it is printed, compared or
  converted. The expanded size is counted on the composed node graph, before any value
  is built;
* every failure is a ``ConfigError`` whose text is one line of bounded length, naming the
  file and, when PyYAML knows it, the line and column.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ivif_ros.errors import ConfigError

MAX_YAML_BYTES = 4 * 1024 * 1024  # configs and calibrations are a few kB
MAX_YAML_NODES = 200_000  # scalars + collections after alias expansion
MAX_ERROR_CHARS = 300  # of PyYAML's own explanation, inside our message


def one_line(text: str, limit: int = MAX_ERROR_CHARS) -> str:
    """``text`` on one line (whitespace runs collapsed), cut to ``limit`` characters."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def _expanded_size(root) -> int:
    """Nodes in the document once every alias is expanded; stops counting past the limit."""
    import yaml

    sizes: dict[int, int] = {}

    def size(node) -> int:
        key = id(node)
        if key in sizes:
            return sizes[key]
        sizes[key] = 1  # a recursive alias (a list containing itself) counts once, not forever
        if isinstance(node, yaml.SequenceNode):
            total = 1 + sum(size(child) for child in node.value)
        elif isinstance(node, yaml.MappingNode):
            total = 1 + sum(size(k) + size(v) for k, v in node.value)
        else:
            total = 1
        sizes[key] = min(total, MAX_YAML_NODES + 1)
        return sizes[key]

    return size(root)


def load_yaml_text(text: str, where: str) -> Any:
    """Parse ``text`` (named ``where`` in errors) as plain YAML data; ``None`` for an empty document."""
    import yaml

    loader = yaml.SafeLoader(text)
    loader.name = where  # positions in PyYAML's messages then read 'in "<where>", line 3, column 5'
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        if _expanded_size(node) > MAX_YAML_NODES:
            raise ConfigError(
                f"{where}: its aliases (*name) expand to more than {MAX_YAML_NODES:,} values, "
                "which no ivif_ros file needs; write the values out or remove the aliases"
            )
        return loader.construct_document(node)
    except yaml.constructor.ConstructorError as exc:
        raise ConfigError(
            f"{where}: {one_line(exc)}; only plain YAML data is read (no !!python or other custom tags)"
        ) from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{where} is not valid YAML: {one_line(exc)}") from None
    except RecursionError:
        raise ConfigError(f"{where}: nested too deeply to be a configuration; flatten it") from None
    finally:
        loader.dispose()


def load_yaml_file(path: str | Path, what: str = "file") -> Any:
    """Read and parse the YAML file ``path``; ``what`` names its role in errors (e.g. ``config file``)."""
    path = Path(path)
    where = f"{what} {path}"
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_YAML_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"{where}: cannot be read ({exc.strerror}); check the path and its permissions") from None
    if len(raw) > MAX_YAML_BYTES:
        raise ConfigError(
            f"{where}: larger than {MAX_YAML_BYTES // 1024**2} MB, far beyond any configuration; "
            "check that it is the right file"
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{where}: not UTF-8 text (byte {exc.start} is 0x{raw[exc.start]:02x}); "
            "save it as UTF-8 or check that it is the right file"
        ) from None
    return load_yaml_text(text, where)
