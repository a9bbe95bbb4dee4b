"""``omnichannel new-plugin NAME``: a plugin distribution that passes the contract kit.

The files come from ``_scaffold_templates`` with the names filled in; ``examples/plugin_template``
is exactly what ``new-plugin example`` writes (a test keeps them equal), and docs/plugins.md
walks through the same files.
"""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path

from ._errors import ConfigurationError

__all__ = ["plugin_files", "write_plugin"]

_NAME = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")

# template file → where it goes in the distribution ({package} is the import package)
_LAYOUT = {
    "pyproject.toml.tmpl": "pyproject.toml",
    "README.md.tmpl": "README.md",
    "__init__.py.tmpl": "src/{package}/__init__.py",
    "_adapter.py.tmpl": "src/{package}/_adapter.py",
    "_plugin.py.tmpl": "src/{package}/_plugin.py",
    "test_contract.py.tmpl": "tests/test_contract.py",
}


def plugin_files(name: str) -> dict[str, str]:
    """The files of the ``omnichannel-<name>`` distribution, by relative path.

    ``name`` is the adapter name: lower-case letters and digits, words joined by ``-``
    (``line``, ``acme-chat``); anything else is a :class:`ConfigurationError`.
    """
    if not _NAME.match(name) or len(name) > 40:
        raise ConfigurationError(f"plugin name {name!r}: use lower-case letters and digits, words "
                                 "joined by '-' (e.g. 'line', 'acme-chat')", field="name")
    words = name.split("-")
    values = {"name": name, "dist": f"omnichannel-{name}", "package": "omnichannel_" + "_".join(words),
              "Class": "".join(w.capitalize() for w in words),
              "Title": "-".join(w.capitalize() for w in words), "ENV": "_".join(words).upper()}
    templates = resources.files("omnichannel_sdk").joinpath("_scaffold_templates")
    files: dict[str, str] = {}
    for template, target in _LAYOUT.items():
        text = templates.joinpath(template).read_text(encoding="utf-8")
        for key, value in values.items():
            text = text.replace("{{" + key + "}}", value)
        files[target.format(package=values["package"])] = text
    files[f"src/{values['package']}/py.typed"] = ""
    return files


def write_plugin(name: str, directory: Path) -> list[Path]:
    """Write the distribution into ``directory`` (created; it must not exist or be empty) and
    return the paths written."""
    if directory.exists() and any(directory.iterdir()):
        raise ConfigurationError(f"{directory} exists and is not empty", field="directory")
    written = []
    for relative, text in plugin_files(name).items():
        path = directory / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written
