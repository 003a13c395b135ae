"""Read and write MAESTRO mapping files (layers plus their ``Dataflow`` blocks).

The syntax is MAESTRO's (docs/cost-model.md, section 1.2)::

    Constant T 4;                       // optional, usable as a size anywhere after it
    Network N0 {
    Layer L0 {
    Type: CONV                          // CONV | DSCONV | GEMM
    Stride { X: 2, Y: 2 }               // optional, before Dimensions
    Dimensions { K: 64, C: 3, Y: 224, X: 224, R: 7, S: 7 }
    Dataflow {
    SpatialMap(T,T) K;                  // sizes: number, Constant or Sz(dim)
    TemporalMap(Sz(R),Sz(R)) R;
    Cluster(4,P);
    ...
    }
    }
    }

Tokens are split on blanks and newlines; ``{ } ( ) , ; :`` are tokens of their own, ``-`` and
``>`` are ignored, and ``//`` starts a comment. A directive must be complete:
``SpatialMap(size,offset) DIM;``, ``TemporalMap(size,offset) DIM;``, ``Cluster(size,P);`` and
``Sz(DIM)``, every parenthesis, comma and semicolon in place (MAESTRO's own tokenizer drops them,
so it would read ``SpatialMap(1,1 K`` as a directive). Elsewhere (``Type:``, ``Dimensions { K:
64, ... }``, ``Constant T 4;``) the ``:``, ``,`` and ``;`` are optional. The parser only
checks syntax; semantic rules of the cost engine (full R/S tiles, 1-2 spatial maps per level,
cluster sizes vs. PEs) are left to the cost model. Every problem raises
:class:`~gamma.errors.MappingFileError` naming the source, the line and what is wrong.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from gamma.errors import MappingFileError
from gamma.limits import size_limit_reason
from gamma.mapping import DIMS, Cluster, Directive, Level, Mapping
from gamma.workloads.layer import Layer, LayerError

__all__ = [
    "TYPE_DIMS",
    "foreign_dims",
    "format_dataflow",
    "format_maestro_file",
    "format_maestro_input",
    "parse_dataflow",
    "parse_maestro_file",
    "read_mapping_file",
]

SUPPORTED_TYPES = ("CONV", "DSCONV", "GEMM")
#: Layer types MAESTRO knows but gamma does not model.
UNSUPPORTED_TYPES = ("TRCONV", "NGCONV", "FC", "POOL", "LSTM")
#: Dimension names allowed in ``Dimensions { ... }`` and ``Sz(...)``.
LAYER_DIMS = ("K", "C", "R", "S", "Y", "X", "N", "M", "Y'", "X'")
#: The dimensions a directive may name, per layer type (MAESTRO stops with "Dimension K not
#: found" on a K directive of a DSCONV layer; Y'/X' are output rows/cols).
TYPE_DIMS = {"CONV": ("K", "C", "R", "S", "Y", "X", "Y'", "X'"),
             "DSCONV": ("C", "R", "S", "Y", "X", "Y'", "X'"),
             "GEMM": ("M", "N", "K")}
_MAPS = {"SpatialMap": "Spatial", "TemporalMap": "Temporal"}
_BLOCK_WORDS = {"Network", "Layer", "Type", "Stride", "Dimensions", "Dataflow"}
_TOKEN = re.compile(r"[{}(),;:]|[^\s,\->():;{}]+")
#: Tokens skipped between statements and between a block's entries.
_SEPARATORS = (";", ",")
_NUMBER = re.compile(r"[0-9]+")

# --------------------------------------------------------------------------------------------
# Writing


def format_dataflow(mapping: Mapping) -> str:
    """The body of a ``Dataflow`` block: one directive per line, each line ending in ``\\n``."""
    lines: list[str] = []
    for level in mapping.levels:
        if level.cluster is not None:
            lines.append(f"Cluster({level.cluster.size},{level.cluster.type});")
        lines += [f"{d.kind}Map({d.size},{d.offset}) {d.dim};" for d in level.directives]
    return "".join(line + "\n" for line in lines)


def _dimensions_line(layer: Layer) -> str:
    if layer.type == "GEMM":
        dims = {"K": layer.K, "M": layer.M, "N": layer.N}
    else:
        dims = {"K": layer.K, "C": layer.C, "Y": layer.Y, "X": layer.X, "R": layer.R, "S": layer.S}
    return "Dimensions { " + ", ".join(f"{k}: {v}" for k, v in dims.items()) + " }"


def _check_name(name: str, what: str) -> str:
    if not _TOKEN.fullmatch(name) or name in ("{", "}"):
        raise ValueError(f"{what} name {name!r} cannot be written to a MAESTRO file "
                         "(no spaces or any of ' ,->():;{{}}')")
    return name


def format_maestro_file(layers_and_mappings: Sequence[tuple[Layer, Mapping]], network: str = "N0") -> str:
    """A whole MAESTRO mapping file; layer i is named ``layer.name`` or ``L{i}``."""
    out = [f"Network {_check_name(network, 'network')} {{\n"]
    for i, (layer, mapping) in enumerate(layers_and_mappings):
        out.append(f"Layer {_check_name(layer.name or f'L{i}', 'layer')} {{\nType: {layer.type}\n")
        if (layer.stride_x, layer.stride_y) != (1, 1):
            out.append(f"Stride {{ X: {layer.stride_x}, Y: {layer.stride_y} }}\n")
        out.append(f"{_dimensions_line(layer)}\nDataflow {{\n{format_dataflow(mapping)}}}\n}}\n")
    out.append("}\n")
    return "".join(out)


def format_maestro_input(layer: Layer, mapping: Mapping, network: str = "N0") -> str:
    """The MAESTRO file for one layer (what the reference cases call ``maestro_input``)."""
    return format_maestro_file([(layer, mapping)], network)


def foreign_dims(layer_type: str, mapping: Mapping) -> list[str]:
    """The dimensions ``mapping``'s directives name that a layer of ``layer_type`` does not have
    (:data:`TYPE_DIMS`), in order of first use; empty when MAESTRO knows every one."""
    allowed = TYPE_DIMS[layer_type]
    found = [d.dim for level in mapping.levels for d in level.directives if d.dim not in allowed]
    return list(dict.fromkeys(found))


# --------------------------------------------------------------------------------------------
# Reading


@dataclass(frozen=True)
class _Tok:
    text: str
    line: int


def _size_table(dims: dict[str, int]) -> dict[str, int]:
    """What ``Sz(D)`` means for a layer with input-centric ``dims`` (unlisted dims are 1)."""
    t = {d: 1 for d in ("K", "C", "R", "S", "Y", "X", "N", "M")} | dims
    return t | {"Y'": t["Y"] - t["R"] + 1, "X'": t["X"] - t["S"] + 1}


class _Parser:
    """Recursive descent over the token list; one instance per text."""

    def __init__(self, text: str, source: str) -> None:
        self.source = source
        lines = text.splitlines()
        self.toks = [_Tok(t, n) for n, line in enumerate(lines, 1)
                     for t in _TOKEN.findall(line.split("//", 1)[0])]
        self.last_line = max(1, len(lines))
        self.pos = 0
        self.constants: dict[str, int] = {}

    # -- token helpers
    def error(self, line: int, reason: str) -> MappingFileError:
        return MappingFileError(self.source, line, reason)

    def peek(self) -> _Tok | None:
        return self.toks[self.pos] if self.pos < len(self.toks) else None

    def next(self, expected: str) -> _Tok:
        tok = self.peek()
        if tok is None:
            raise self.error(self.last_line, f"expected {expected} but the input ended")
        self.pos += 1
        return tok

    def expect(self, text: str, after: str) -> _Tok:
        tok = self.next(f"'{text}' after '{after}'")
        if tok.text != text:
            raise self.error(tok.line, f"expected '{text}' after '{after}' but found '{tok.text}'")
        return tok

    def items(self, block: str | None, opened: int = 0) -> Iterator[_Tok]:
        """Yield (and consume) the first token of each statement up to the block's ``}``.

        ``block=None`` reads to the end of the input instead.
        """
        while True:
            tok = self.peek()
            if tok is None:
                if block is None:
                    return
                raise self.error(self.last_line,
                                 f"unterminated block '{block}' opened at line {opened} (missing '}}')")
            self.pos += 1
            if tok.text in _SEPARATORS:
                continue
            if tok.text == "}" and block is not None:
                return
            yield tok

    def optional(self, text: str) -> None:
        """Consume ``text`` if it is the next token (optional punctuation such as ``:``)."""
        tok = self.peek()
        if tok is not None and tok.text == text:
            self.pos += 1

    def unexpected(self, tok: _Tok, where: str, expected: str) -> MappingFileError:
        hint = " (is a '}' missing?)" if tok.text in _BLOCK_WORDS or tok.text == "{" else ""
        return self.error(tok.line, f"unexpected '{tok.text}' in {where}; expected {expected}{hint}")

    # -- values
    def size(self, after: str, sizes: dict[str, int] | None) -> int:
        """A positive size: a number, a Constant, or ``Sz(D)`` (needs the layer's ``sizes``)."""
        tok = self.next(f"a number after '{after}'")
        if _NUMBER.fullmatch(tok.text):
            value = int(tok.text)
        elif tok.text in self.constants:
            value = self.constants[tok.text]
        elif tok.text == "Sz":
            self.expect("(", "Sz")
            dim = self.next("a dimension after 'Sz('")
            if dim.text not in LAYER_DIMS:
                raise self.error(dim.line, f"unknown dimension '{dim.text}' in Sz() "
                                           f"(expected one of {', '.join(LAYER_DIMS)})")
            if sizes is None:
                raise self.error(tok.line, f"Sz({dim.text}) used where the layer's Dimensions are not "
                                           "known (give Dimensions before Dataflow)")
            value = sizes[dim.text]
            self.expect(")", f"Sz({dim.text}")
        else:
            hint = " (no Constant of that name is defined)" if tok.text[0].isalpha() else ""
            raise self.error(tok.line, f"expected a number after '{after}' but found '{tok.text}'{hint}")
        if value < 1:
            raise self.error(tok.line, f"'{after}' needs a positive size but got {value}")
        too_large = size_limit_reason(value, f"the size after '{after}'")
        if too_large:
            raise self.error(tok.line, too_large)
        return value

    def constant(self) -> None:
        """After ``Constant``: ``NAME value``."""
        name = self.next("a name after 'Constant'")
        if not name.text[0].isalpha() or name.text in ("Sz", *_BLOCK_WORDS, *_MAPS, "Cluster"):
            raise self.error(name.line, f"'{name.text}' cannot be used as a Constant name")
        if name.text in self.constants:
            raise self.error(name.line, f"Constant '{name.text}' is defined twice")
        self.constants[name.text] = self.size(f"Constant {name.text}", None)
        self.optional(";")

    # -- blocks
    def dataflow(self, sizes: dict[str, int] | None, block: str | None, opened: int = 0) -> Mapping:
        """Directives and Clusters up to the end of ``block`` (or of the input)."""
        levels: list[tuple[Cluster | None, list[Directive]]] = [(None, [])]
        for tok in self.items(block, opened):
            if tok.text in _MAPS:
                self.expect("(", tok.text)
                size = self.size(f"{tok.text}(", sizes)
                self.expect(",", f"{tok.text}({size}")
                offset = self.size(f"{tok.text}({size},", sizes)
                self.expect(")", f"{tok.text}({size},{offset}")
                dim = self.next(f"a dimension after '{tok.text}({size},{offset})'")
                if dim.text in ("{", "}", ";", "(", ")", ",", ":"):
                    raise self.error(dim.line, f"expected a dimension after "
                                               f"'{tok.text}({size},{offset})' but found '{dim.text}'")
                if dim.text not in DIMS:
                    raise self.error(dim.line, f"unknown dimension '{dim.text}' in {tok.text} "
                                               f"(expected one of {', '.join(DIMS)})")
                self.expect(";", f"{tok.text}({size},{offset}) {dim.text}")
                levels[-1][1].append(Directive(_MAPS[tok.text], dim.text, size, offset))  # type: ignore[arg-type]
            elif tok.text == "Cluster":
                self.expect("(", "Cluster")
                size = self.size("Cluster(", sizes)
                self.expect(",", f"Cluster({size}")
                kind = self.next(f"a cluster type (P or L) after 'Cluster({size},'")
                if kind.text not in ("P", "L"):
                    raise self.error(kind.line, f"expected a cluster type (P or L) after "
                                                f"'Cluster({size},' but found '{kind.text}'")
                self.expect(")", f"Cluster({size},{kind.text}")
                self.expect(";", f"Cluster({size},{kind.text})")
                levels.append((Cluster(size, kind.text), []))
            elif tok.text == "Constant":
                self.constant()
            else:
                expected = "SpatialMap, TemporalMap, Cluster" + (" or '}'" if block else "")
                raise self.unexpected(tok, "Dataflow", expected)
        if levels == [(None, [])]:
            return Mapping(())
        return Mapping(tuple(Level(tuple(ds), c) for c, ds in levels))

    def pairs(self, block: str, opened: int, allowed: Sequence[str]) -> dict[str, int]:
        """``{ DIM: value, ... }`` of a Stride or Dimensions block (after its keyword)."""
        self.expect("{", block)
        out: dict[str, int] = {}
        for tok in self.items(block, opened):
            if tok.text not in allowed:
                raise self.error(tok.line, f"unknown dimension '{tok.text}' in {block} "
                                           f"(expected one of {', '.join(allowed)})")
            if tok.text in out:
                raise self.error(tok.line, f"dimension '{tok.text}' is given twice in {block}")
            self.optional(":")
            out[tok.text] = self.size(f"{tok.text}:", None)
        return out

    def layer(self, opened: int, previous: Mapping | None) -> tuple[Layer, Mapping | None]:
        """After ``Layer``: ``name { Type ... Stride ... Dimensions ... Dataflow ... }``."""
        name_tok = self.next("a layer name after 'Layer'")
        name = name_tok.text
        if name in ("{", "}"):
            raise self.error(name_tok.line, f"expected a layer name after 'Layer' but found '{name}'")
        self.expect("{", f"Layer {name}")
        seen: dict[str, int] = {}
        type_: str | None = None
        stride: dict[str, int] = {}
        dims: dict[str, int] | None = None
        mapping: Mapping | None = None
        for tok in self.items(f"Layer {name}", opened):
            if tok.text in seen:
                raise self.error(tok.line, f"{tok.text} is given twice in layer {name} "
                                           f"(first at line {seen[tok.text]})")
            seen[tok.text] = tok.line
            if tok.text == "Type":
                self.optional(":")
                t = self.next("a layer type after 'Type:'")
                if t.text in UNSUPPORTED_TYPES:
                    raise self.error(t.line, f"layer type '{t.text}' (layer {name}) is not supported; "
                                             f"gamma models {', '.join(SUPPORTED_TYPES)}")
                if t.text not in SUPPORTED_TYPES:
                    raise self.error(t.line, f"unknown layer type '{t.text}' in layer {name} "
                                             f"(expected {', '.join(SUPPORTED_TYPES)})")
                type_ = t.text
            elif tok.text == "Stride":
                if "Dimensions" in seen:
                    raise self.error(tok.line, f"Stride must come before Dimensions in layer {name}")
                stride = self.pairs("Stride", tok.line, ("X", "Y"))
            elif tok.text == "Dimensions":
                dims = self.pairs("Dimensions", tok.line, LAYER_DIMS)
                for out, inp, window in (("Y'", "Y", "R"), ("X'", "X", "S")):
                    if out in dims:
                        if inp in dims:
                            raise self.error(tok.line, f"give either {inp} or {out} in Dimensions "
                                                       f"of layer {name}, not both")
                        dims[inp] = dims.pop(out) + dims.get(window, 1) - 1
            elif tok.text == "Dataflow":
                self.expect("{", "Dataflow")
                sizes = _size_table(dims) if dims is not None else None
                mapping = self.dataflow(sizes, "Dataflow", tok.line)
                if not mapping.levels:  # an empty Dataflow reuses the previous layer's
                    mapping = previous
            elif tok.text == "Constant":
                self.constant()
            else:
                raise self.unexpected(tok, f"layer {name}",
                                      "Type, Stride, Dimensions, Dataflow or '}'")
        if type_ is None:
            raise self.error(opened, f"missing Type in layer {name}")
        if dims is None:
            raise self.error(opened, f"missing Dimensions in layer {name}")
        try:
            layer = Layer(type_, **dims, stride_y=stride.get("Y", 1), stride_x=stride.get("X", 1), name=name)
        except LayerError as e:  # an impossible shape, e.g. R > Y or a GEMM with a Stride
            line = seen["Stride" if e.field.startswith("stride") else "Dimensions"]
            raise self.error(line, f"invalid layer {name}: {e}") from None
        return layer, mapping

    def network(self) -> list[tuple[Layer, Mapping | None]]:
        """The whole file: Constants, then ``Network name { Layer ... }``."""
        while (tok := self.next("'Network'")).text == "Constant":
            self.constant()
        if tok.text != "Network":
            raise self.error(tok.line, f"expected 'Network' but found '{tok.text}'")
        name = self.next("a network name after 'Network'").text
        self.expect("{", f"Network {name}")
        result: list[tuple[Layer, Mapping | None]] = []
        for tok in self.items(f"Network {name}", tok.line):
            if tok.text == "Layer":
                result.append(self.layer(tok.line, result[-1][1] if result else None))
            elif tok.text == "Constant":
                self.constant()
            else:
                raise self.unexpected(tok, f"Network {name}", "Layer or '}'")
        for tok in self.items(None):
            if tok.text != "Constant":
                raise self.error(tok.line, f"unexpected '{tok.text}' after the end of Network {name}")
            self.constant()
        return result


def parse_dataflow(text: str, source: str = "<string>", *, layer: Layer | None = None) -> Mapping:
    """Parse the inside of a ``Dataflow { ... }`` block (the wrapper itself is also accepted).

    ``Sz(D)`` needs ``layer``. Directives before the first ``Cluster`` form the top level;
    every ``Cluster`` opens a new level. Empty text gives ``Mapping(())``.
    """
    p = _Parser(text, source)
    sizes = None
    if layer is not None:
        sizes = _size_table({d: getattr(layer, d) for d in ("K", "C", "R", "S", "Y", "X", "N", "M")})
    if (tok := p.peek()) is not None and tok.text == "Dataflow":
        p.pos += 1
        p.expect("{", "Dataflow")
        mapping = p.dataflow(sizes, "Dataflow", tok.line)
        for extra in p.items(None):
            raise p.error(extra.line, f"unexpected '{extra.text}' after the end of the Dataflow block")
        return mapping
    return p.dataflow(sizes, None)


def parse_maestro_file(text_or_path: str | os.PathLike[str],
                       source: str | None = None) -> list[tuple[Layer, Mapping | None]]:
    """Parse a whole MAESTRO mapping file into ``(layer, mapping)`` pairs, in file order.

    A ``PathLike``, or a ``str`` with no newline, ``{`` or ``;``, is read as a file path (and is
    the default ``source``); any other ``str`` is the file text. A layer without a Dataflow
    block has mapping ``None``; an empty Dataflow reuses the previous layer's mapping.
    """
    if isinstance(text_or_path, os.PathLike) or (
            text_or_path.strip() and not any(c in text_or_path for c in "\n{;")):
        path = Path(text_or_path)
        source = source or str(path)
        text = _read_text(path, source)
    else:
        text = str(text_or_path)
    return _Parser(text, source or "<string>").network()


def _read_text(path: Path, source: str) -> str:
    """A mapping file's text; a :class:`MappingFileError` if it cannot be read or is not text
    (bytes that are not UTF-8, or NUL bytes)."""
    try:
        data = path.read_bytes()
    except OSError as e:
        raise MappingFileError(source, None, f"cannot read the mapping file: {e.strerror or e}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise MappingFileError(source, None, f"not a text file: byte 0x{data[e.start]:02x} at offset "
                                             f"{e.start} is not UTF-8") from None
    if "\x00" in text:
        raise MappingFileError(source, None, f"not a text file: NUL byte at offset {text.index(chr(0))}")
    return text


def read_mapping_file(path: str | os.PathLike[str]) -> list[tuple[Layer, Mapping | None]]:
    """Read a MAESTRO mapping file from disk; errors name ``path`` as the source."""
    return parse_maestro_file(Path(path), str(path))
