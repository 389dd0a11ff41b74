"""Versioned prompt files (``<task>.v<N>.yaml``) and how a document is rendered into one.

A released prompt is never edited (``prompts/RELEASED.json`` holds their sha256 and a test checks
it); its id ``name@vN+sha8`` goes into provenance and into the cache key. Templates use
``string.Template`` placeholders (``$document``), substituted once, so braces and dollars in a
document are never interpreted.

The document sits between two marker lines carrying a nonce derived from its own text, so a
document cannot close its own block: it would have to contain the hash of itself.

>>> p = load_prompt("extract")
>>> p.id.startswith("extract@v1+")
True
>>> msgs = p.render(document="[turn 0] Customer: refund please", taxonomy="- refund", turns=True)
>>> [m["role"] for m in msgs]
['system', 'user']
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from string import Template

import yaml

from ..errors import ConfigError

PROMPT_DIR = Path(__file__).resolve().parent.parent / "prompts"
_NAME = re.compile(r"^(?P<task>[a-z_]+)\.v(?P<version>\d+)\.yaml$")
TURN_RULE = "Give the turn number N of the line you quote."
TEXT_RULE = "The document has no turns: quote it directly."


@dataclass(frozen=True)
class Prompt:
    name: str
    version: int
    system: str
    user: str
    repair: str
    sha256: str
    path: Path

    @property
    def id(self) -> str:
        return f"{self.name}@v{self.version}+{self.sha256[:8]}"

    def render(self, *, document: str, taxonomy: str, turns: bool, marker: str | None = None
               ) -> list[dict[str, str]]:
        """Chat messages for one document (already rendered as text, turns prefixed ``[turn N] Speaker:``).

        ``marker``: the nonce when ``document`` already carries its own marker lines (packed documents)."""
        values = {"document": document, "taxonomy": taxonomy, "nonce": marker or nonce(document),
                  "turn_rule": TURN_RULE if turns else TEXT_RULE}
        return [{"role": "system", "content": Template(self.system).substitute(values).strip()},
                {"role": "user", "content": Template(self.user).substitute(values).strip()}]

    def repair_message(self, error: str) -> dict[str, str]:
        return {"role": "user", "content": Template(self.repair).substitute(error=error[:500]).strip()}


def nonce(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:12]


def render_pack(texts: list[str]) -> tuple[str, str, list[str]]:
    """Several documents as one block of marked documents: ``(text, nonce, refs)``.

    >>> text, n, refs = render_pack(["Great phone.", "Refund me"])
    >>> refs, text.splitlines()[0] == f"<<<DOCUMENT D1 {n}>>>"
    (['D1', 'D2'], True)
    """
    marker = nonce("\x00".join(texts))
    refs = [f"D{i + 1}" for i in range(len(texts))]
    blocks = [f"<<<DOCUMENT {r} {marker}>>>\n{t}\n<<<END {r} {marker}>>>" for r, t in zip(refs, texts)]
    return "\n\n".join(blocks), marker, refs


def available(directory: Path = PROMPT_DIR) -> dict[str, list[int]]:
    """Prompt names and their versions in ``directory``."""
    found: dict[str, list[int]] = {}
    for path in directory.glob("*.yaml"):
        if m := _NAME.match(path.name):
            found.setdefault(m["task"], []).append(int(m["version"]))
    return {k: sorted(v) for k, v in found.items()}


def load_prompt(spec: str = "extract") -> Prompt:
    """``extract`` (newest version), ``extract@v1``, or a path to a ``<task>.v<N>.yaml`` file."""
    path = Path(spec)
    if not (path.suffix == ".yaml" and path.is_file()):
        name, _, version = spec.partition("@v")
        versions = available().get(name)
        if not versions:
            raise ConfigError(f"No prompt named {name!r}; shipped prompts: {sorted(available())}, or give a path "
                              "to a <task>.v<N>.yaml file.")
        if version and int(version) not in versions:
            raise ConfigError(f"Prompt {name} has no version {version}; versions: {versions}")
        path = PROMPT_DIR / f"{name}.v{version or versions[-1]}.yaml"
    m = _NAME.match(path.name)
    if m is None:
        raise ConfigError(f"Prompt file {path} must be named <task>.v<N>.yaml, e.g. extract.v2.yaml")
    raw = path.read_bytes()
    data = yaml.safe_load(raw)
    missing = {"system", "user", "repair"} - set(data or {})
    if missing:
        raise ConfigError(f"Prompt file {path} lacks {sorted(missing)}")
    return Prompt(m["task"], int(m["version"]), data["system"], data["user"], data["repair"],
                  hashlib.sha256(raw).hexdigest(), path)
