"""Numbers written as gamma reads them, in Hydra overrides and config files: an integer is
written with the digits 0-9 only (the rule of :func:`gamma.limits.parse_int`, which the model
files follow).

Hydra's override grammar reads ``budget=1_0`` as 10 and ``x=1_0.5`` as 10.5, and YAML 1.1 (how
OmegaConf reads ``conf/`` files) reads ``K: 1_0`` as 10, ``0x10`` as 16, ``010`` as 8 and
``1:30`` as 90. By the time a job sees its config these are plain numbers, so the raw text is
checked: the overrides on the command line (:func:`check_overrides`) and the config files Hydra
composed the job from (:func:`check_config_files`), a sweep's grid values written in a file's
``hydra.sweeper.params`` included (``budget: 1_0,20`` is the grid 10, 20 to Hydra's sweeper). A
sweep checks the files of all its jobs before it launches them (gamma.search.sweep.CheckSweep).
Each problem is a :class:`GammaError` naming the override, or the file, line and field.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

from gamma.errors import GammaError
from gamma.limits import parse_int


# --- overrides --------------------------------------------------------------------------------
def override_numbers(override: str) -> list[str]:
    """The numbers of one Hydra override (``key=value``) that Hydra reads as an int or a float,
    as written (parsed by Hydra's own grammar: a number inside a longer string such as
    ``run_1_0`` is not one)."""
    from antlr4 import CommonTokenStream, InputStream
    from antlr4.tree.Tree import TerminalNode
    from hydra.grammar.gen.OverrideLexer import OverrideLexer
    from hydra.grammar.gen.OverrideParser import OverrideParser

    lexer = OverrideLexer(InputStream(override))
    lexer.removeErrorListeners()
    parser = OverrideParser(CommonTokenStream(lexer))
    parser.removeErrorListeners()  # a syntax error is Hydra's to report
    found: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, OverrideParser.PrimitiveContext):
            parts = [c for c in node.getChildren()
                     if not (isinstance(c, TerminalNode) and c.symbol.type == OverrideLexer.WS)]
            if (len(parts) == 1 and isinstance(parts[0], TerminalNode)
                    and parts[0].symbol.type in (OverrideLexer.INT, OverrideLexer.FLOAT)):
                found.append(parts[0].getText())
            return
        for child in node.getChildren() if hasattr(node, "getChildren") else ():
            walk(child)

    try:
        walk(parser.override())
    except Exception:  # noqa: BLE001 - a malformed override: Hydra reports it
        return []
    return found


def grammar_problem(override: str) -> str | None:
    """Why a number Hydra's grammar reads in ``override`` (``key=value``) is not written as
    gamma reads numbers, e.g. ``'1_0' is not an integer ...; Hydra would read it as 10`` (None
    if all are)."""
    for text in override_numbers(override):
        if "_" not in text:
            continue
        try:
            read = int(text)
            what = "an integer (digits 0-9 only)"
        except ValueError:
            read = float(text)  # type: ignore[assignment]
            what = "a number (no '_' in numbers)"
        return f"{text!r} is not {what}; Hydra would read it as {read}"
    return None


def override_problem(override: str) -> str | None:
    """Why a number in ``override`` is not written as gamma reads numbers (None if all are)."""
    problem = grammar_problem(override)
    return f"override {override}: {problem}" if problem else None


def check_overrides(overrides: Sequence[str]) -> None:
    """A :class:`GammaError` for the first override holding a number with ``_``."""
    for override in overrides:
        problem = override_problem(override)
        if problem:
            raise GammaError(problem)


# --- config files -----------------------------------------------------------------------------
#: Where a config file holds a sweep's grid (``hydra.sweeper.params``, an experiment's
#: ``# @package _global_`` file): each value is a string that Hydra's sweeper reads with its
#: override grammar (``budget: 1_0,20`` is the grid 10, 20).
GRID_PREFIX = "hydra.sweeper.params."


def yaml_number_problems(text: str) -> Iterator[tuple[int, str, str]]:
    """(line, field, reason) of every plain scalar of a YAML text that OmegaConf reads as a
    number differently from its digits: an int written other than with 0-9 (``1_0``, ``0x10``,
    ``1:30``) or that YAML 1.1 reads in another base (``010`` is 8), a float with ``_`` or ``:``;
    and of every sweep grid value (:data:`GRID_PREFIX`, quoted or not) holding a number with
    ``_`` in Hydra's grammar. ``field`` is a dotted path (``layers[0].K``)."""
    import yaml
    from omegaconf._utils import get_yaml_loader

    loader = get_yaml_loader()
    root = yaml.compose(text, Loader=loader)  # noqa: S506 - OmegaConf's safe loader

    def walk(node: Any, path: str) -> Iterator[tuple[int, str, str]]:
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                yield from walk(value, f"{path}.{key.value}" if path else str(key.value))
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                yield from walk(item, f"{path}[{i}]")
        elif isinstance(node, yaml.ScalarNode):
            reason = _scalar_problem(node.value, node.tag, loader) if node.style is None else None
            if reason is None and path.startswith(GRID_PREFIX) and node.tag == "tag:yaml.org,2002:str":
                reason = grammar_problem(f"{path[len(GRID_PREFIX):]}={node.value}")
            if reason:
                yield node.start_mark.line + 1, path, reason

    if root is not None:
        yield from walk(root, "")


def _scalar_problem(text: str, tag: str, loader: Any) -> str | None:
    """Why a plain YAML scalar ``text`` resolved to ``tag`` is a number read otherwise than
    written (None if it is not)."""
    import yaml

    if tag == "tag:yaml.org,2002:int":
        read = yaml.load(text, Loader=loader)  # noqa: S506 - OmegaConf's safe loader
        try:
            if parse_int(text) == read:
                return None
        except ValueError:
            pass
        return f"{text!r} is not an integer (digits 0-9 only); YAML 1.1 reads it as {read}"
    if tag == "tag:yaml.org,2002:float" and ("_" in text or ":" in text):
        read = yaml.load(text, Loader=loader)  # noqa: S506
        return f"{text!r} is not a number (no '_' or ':' in numbers); YAML 1.1 reads it as {read}"
    return None


def check_config_file(path: Path, name: str | None = None) -> None:
    """A :class:`GammaError` naming the file (as ``name``), line and field of the first number
    written otherwise than gamma reads it; YAML errors are left to Hydra, which read it."""
    import yaml

    try:
        problems = list(yaml_number_problems(path.read_text(encoding="utf-8")))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return
    if problems:
        line, field, reason = problems[0]
        raise GammaError(f"{name or path}: line {line}: field {field}: {reason}")


def composed_files(config_name: str, choices: Mapping[str, Any], dirs: Sequence[Path]) -> list[Path]:
    """The YAML files of ``dirs`` (Hydra's file config sources, in search order) that Hydra
    composed a job from: the primary config and each group's chosen option (the first source
    holding it, as Hydra picks it)."""
    names = [config_name]
    for group, option in choices.items():
        for opt in option if isinstance(option, (list, tuple)) else [option]:
            if isinstance(opt, str):
                names.append(f"{group}/{opt}")
    files = []
    for name in names:
        stem = name[:-5] if name.endswith(".yaml") else name
        for d in dirs:
            path = d / f"{stem}.yaml"
            if path.is_file():
                files.append(path)
                break
    return files


def check_config_files(files: Sequence[Path], root: Path | None = None) -> None:
    """:func:`check_config_file` on each of ``files`` (named relative to ``root`` where they lie
    under it)."""
    for path in files:
        name = path
        if root is not None and path.is_relative_to(root):
            name = path.relative_to(root)
        check_config_file(path, str(name))


def check_hydra_job(hc: Any, root: Path | None = None,
                    also: Mapping[str, Sequence[str]] | None = None) -> None:
    """The config files of the job Hydra composed (``HydraConfig.get()``, or a sweep's
    ``config.hydra``): its primary config and chosen options found in its file config sources,
    and the options ``also`` (group -> options: the ones a sweep's grid chooses)."""
    dirs = [Path(s.path) for s in hc.runtime.config_sources
            if s.schema == "file" and s.path and Path(s.path).is_dir()]
    choices: dict[str, Any] = dict(hc.runtime.choices)
    for group, options in (also or {}).items():
        chosen = choices.get(group)
        choices[group] = list(dict.fromkeys([*(chosen if isinstance(chosen, (list, tuple)) else [chosen]),
                                             *options]))
    check_config_files(composed_files(str(hc.job.config_name), choices, dirs), root)
