"""Fixed dataflows: one MAESTRO dataflow per layer, built from a template and its size rules.

A dataflow config (``conf/dataflow/<name>.yaml``, chosen with ``dataflow=<name>``) holds

* ``sizes``: named integer rules evaluated per layer and platform, in order, e.g.
  ``c: min(64, C, P)``. A rule may use the layer's ``K C R S Y X`` (input rows/cols), ``Yo``
  ``Xo`` (output rows/cols), the platform's ``P`` (PEs), ``L1`` (elements per PE) and ``L2``
  (elements), the rules above it, integers, ``+ - * //``, parentheses, ``min`` and ``max``;
* ``dataflow``: the directives in MAESTRO's syntax (:func:`gamma.workloads.maestro_io.parse_dataflow`),
  where a size may be a number, a rule's name or ``Sz(D)``; ``Cluster(size, P)`` opens a level;
* ``depthwise``: the directives for depthwise (DSCONV) layers, which have no K (MAESTRO stops
  with "Dimension K not found" on a K directive): each dataflow decides once how it runs them.

``dataflow=file dataflow.path=my.m`` reads a MAESTRO ``Dataflow`` block (or its inside) from a
file instead (and ``dataflow.depthwise_path`` one for DSCONV layers); sizes there are numbers,
``Constant``s or ``Sz(D)`` of each layer. A dataflow whose directives name a dimension the layer
type does not have (:func:`gamma.workloads.maestro_io.foreign_dims`) is an error naming it.

A dataflow that does not fit the platform is shrunk by :func:`shrink_for` (docs/fixed-dataflows.md):
cluster sizes whose product exceeds the PEs are halved first (no evaluation needed); then, while
the mapping needs more L1 (L2) than there is, the largest shrinkable tile of the innermost
(outermost) level that has one is halved. A tile is shrinkable if it covers more than one
output index: K, C, Y', X' (and M, N) of size > 1, or an input-centric Y (X) directive longer
than the filter's R (S) window. R and S tiles are never touched (MAESTRO needs them full).
Units: sizes in elements, PEs.
"""

from __future__ import annotations

import ast
import operator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Mapping as MappingT

from gamma.errors import GammaError, MappingFileError
from gamma.hardware import Hardware
from gamma.limits import size_limit_reason
from gamma.mapping import Cluster, Directive, Level, Mapping
from gamma.workloads.maestro_io import foreign_dims, parse_dataflow
from gamma.workloads.layer import Layer

#: Names a size rule may use besides the rules defined above it.
RULE_NAMES = ("K", "C", "R", "S", "Y", "X", "Yo", "Xo", "P", "L1", "L2")
_BINOPS: dict[type, Callable[[int, int], int]] = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
    ast.FloorDiv: operator.floordiv}
_FUNCS: dict[str, Callable[..., int]] = {"min": min, "max": max}
#: The layer every dataflow is checked on when it is loaded (before any search).
PROBE = Layer("CONV", K=64, C=64, Y=56, X=56, R=3, S=3)
PROBE_DW = Layer("DSCONV", C=64, Y=56, X=56, R=3, S=3)


def eval_rule(expr: str, names: MappingT[str, int]) -> int:
    """The integer value of the size rule ``expr`` with ``names`` bound (see the module doc)."""

    def ev(node: ast.AST) -> int:
        if isinstance(node, ast.Expression):
            return ev(node.body)
        if isinstance(node, ast.Constant) and isinstance(node.value, int) and not isinstance(node.value, bool):
            return int(node.value)
        if isinstance(node, ast.Name):
            if node.id not in names:
                raise ValueError(f"unknown name {node.id!r} (known: {', '.join(names)})")
            return int(names[node.id])
        if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
            right = ev(node.right)
            if isinstance(node.op, ast.FloorDiv) and right == 0:
                raise ValueError("division by zero")
            return _BINOPS[type(node.op)](ev(node.left), right)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            return -ev(node.operand)
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in _FUNCS
                and node.args and not node.keywords):
            return _FUNCS[node.func.id](*(ev(a) for a in node.args))
        raise ValueError(f"{ast.unparse(node)!r} is not allowed (integers, names, + - * //, "
                         "min, max)")

    try:
        tree = ast.parse(str(expr).strip(), mode="eval")
    except SyntaxError:
        raise ValueError(f"{expr!r} is not an expression") from None
    return ev(tree)


@dataclass(frozen=True)
class Dataflow:
    """A fixed dataflow: a MAESTRO template with per-layer size rules (``sizes``), from a config
    (``source`` is ``dataflow.<name>``) or from a user's file (``source`` is its path)."""

    name: str
    text: str  # MAESTRO directives; sizes may name a rule, a Constant or Sz(D)
    sizes: tuple[tuple[str, str], ...]  # (name, rule), in order
    source: str
    depthwise: str | None = None  # the directives for DSCONV layers (None: ``text``)
    depthwise_source: str | None = None

    @classmethod
    def from_config(cls, cfg: MappingT[str, Any] | None) -> "Dataflow":
        """The dataflow of the ``dataflow`` config group; a :class:`GammaError` naming the field
        (or the file) if it is missing or malformed."""
        if not cfg:
            raise GammaError("optimizer=fixed needs a dataflow: add dataflow=nvdla, eyeriss, "
                             "shidiannao, or file with dataflow.path=<MAESTRO dataflow file>")
        name = str(cfg.get("name") or "")
        if cfg.get("path") is not None:
            if name not in ("", "file"):
                raise GammaError(f"dataflow.path: only dataflow=file reads a file; dataflow={name} "
                                 "is a built-in template")
            path = str(cfg["path"])
            text = read_dataflow_file(path)
            dw = cfg.get("depthwise_path")
            dw_text = read_dataflow_file(str(dw)) if dw is not None else None
            return cls(name or "file", text, (), path, dw_text,
                       str(dw) if dw is not None else None).checked()
        if name == "file":
            raise GammaError("dataflow.path: dataflow=file needs dataflow.path=<MAESTRO dataflow file>")
        if not cfg.get("dataflow"):
            raise GammaError(f"dataflow.dataflow: the dataflow {name!r} has no directives")
        sizes = cfg.get("sizes") or {}
        if not isinstance(sizes, MappingT):
            raise GammaError(f"dataflow.sizes: expected name: rule pairs, got {sizes!r}")
        bad = [k for k in sizes if not str(k).isidentifier() or str(k) in RULE_NAMES]
        if bad:
            raise GammaError(f"dataflow.sizes.{bad[0]}: a rule's name must be an identifier other "
                             f"than {', '.join(RULE_NAMES)}")
        dw = cfg.get("depthwise")
        return cls(name, str(cfg["dataflow"]), tuple((str(k), str(v)) for k, v in sizes.items()),
                   f"dataflow.{name}", str(dw) if dw else None,
                   f"dataflow.{name}.depthwise" if dw else None).checked()

    def checked(self) -> "Dataflow":
        """Self, after building it once on :data:`PROBE` and, if it has depthwise directives,
        on :data:`PROBE_DW` (so syntax errors surface at once)."""
        big = Hardware(num_pes=1 << 20, l1_size=1 << 20, l2_size=1 << 30, noc_bw=1 << 20,
                       offchip_bw=1 << 20)
        self.mapping(PROBE, big)
        if self.depthwise is not None:
            self.mapping(PROBE_DW, big)
        return self

    def rule_values(self, layer: Layer, hw: Hardware) -> dict[str, int]:
        """The size rules' values for ``layer`` on ``hw`` (each at least 1)."""
        names: dict[str, int] = {"K": layer.K, "C": layer.C, "R": layer.R, "S": layer.S,
                                 "Y": layer.Y, "X": layer.X, "Yo": layer.Yo, "Xo": layer.Xo,
                                 "P": hw.num_pes, "L1": hw.l1_size, "L2": hw.l2_size}
        values: dict[str, int] = {}
        for key, rule in self.sizes:
            try:
                v = eval_rule(rule, names)
            except ValueError as e:
                raise GammaError(f"{self.source}: sizes.{key} = {rule!r}: {e}") from None
            if v < 1:
                raise GammaError(f"{self.source}: sizes.{key} = {rule!r} is {v} on layer "
                                 f"{layer.shape}; a size must be at least 1")
            too_large = size_limit_reason(v, f"sizes.{key} = {rule!r} on layer {layer.shape}")
            if too_large:
                raise GammaError(f"{self.source}: {too_large}")
            names[key] = values[key] = v
        return values

    def mapping(self, layer: Layer, hw: Hardware) -> Mapping:
        """The template's mapping of ``layer`` on ``hw`` (its depthwise directives on a DSCONV
        layer), before any shrinking."""
        text, source = self.text, self.source
        if layer.type == "DSCONV" and self.depthwise is not None:
            text, source = self.depthwise, str(self.depthwise_source)
        constants = "".join(f"Constant {k} {v};\n" for k, v in self.rule_values(layer, hw).items())
        try:
            m = parse_dataflow(constants + text, source, layer=layer)
        except MappingFileError as e:
            if self.sizes and e.line is not None:  # a template: line numbers of the text itself
                e = MappingFileError(source, e.line - len(self.sizes), e.reason)
            raise GammaError(str(e)) from None
        if not m.levels:
            raise GammaError(f"{source}: the dataflow has no directives")
        if any(not lv.directives for lv in m.levels):
            raise GammaError(f"{source}: a cluster level has no directives")
        bad = foreign_dims(layer.type, m)
        if bad:
            hint = ("; give the dataflow's depthwise directives (dataflow.depthwise_path for a "
                    "file)" if layer.type == "DSCONV" and self.depthwise is None else "")
            raise GammaError(f"{source}: directives on {', '.join(bad)}, which {layer.type} layers "
                             f"(layer {layer.shape}) do not have; MAESTRO stops with 'Dimension "
                             f"{bad[0]} not found'{hint}")
        return m


def read_dataflow_file(path: str) -> str:
    """The text of a MAESTRO dataflow file; a :class:`GammaError` naming it if it cannot be read
    or is not UTF-8 text."""
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise GammaError(f"{path}: cannot read the dataflow file: {e.strerror or e}") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise GammaError(f"{path}: not a text file: byte 0x{data[e.start]:02x} at offset {e.start} "
                         "is not UTF-8") from None
    if "\x00" in text:
        raise GammaError(f"{path}: not a text file (NUL bytes)")
    return text


# --- shrinking -----------------------------------------------------------------------------------
def _window(layer: Layer, dim: str) -> int:
    """The filter window an input-centric directive on ``dim`` spans (R for Y, S for X; else 1)."""
    return {"Y": layer.R, "X": layer.S}.get(dim, 1)


def _reach(layer: Layer, d: Directive) -> int:
    """Output indices a directive covers per step (its size less the filter window, plus one)."""
    return 0 if d.dim in ("R", "S") else d.size - _window(layer, d.dim) + 1


def _halved(layer: Layer, d: Directive) -> Directive:
    """``d`` covering half as many output indices (rounded down); a non-overlapping directive
    stays non-overlapping, a sliding one keeps its offset unless it would exceed the new reach."""
    reach = _reach(layer, d)
    new = max(1, reach // 2)
    offset = new if d.offset == reach else min(d.offset, new)
    return replace(d, size=new + _window(layer, d.dim) - 1, offset=offset)


def fit_clusters(m: Mapping, num_pes: int) -> Mapping:
    """``m`` with its largest cluster size halved (the innermost on a tie) until the product of
    the cluster sizes is at most ``num_pes`` (MAESTRO needs at least one top-level unit)."""
    levels = list(m.levels)
    while True:
        sizes = [lv.cluster.size if lv.cluster else 1 for lv in levels]
        product = 1
        for s in sizes:
            product *= s
        if product <= num_pes:
            return Mapping(tuple(levels))
        i = max(range(len(levels)), key=lambda j: (sizes[j], j))
        levels[i] = replace(levels[i], cluster=Cluster(max(1, sizes[i] // 2), levels[i].cluster.type))


def shrink_once(layer: Layer, m: Mapping, innermost_first: bool) -> Mapping | None:
    """``m`` with one tile halved: in the innermost (outermost) level that has a shrinkable
    tile, the one covering the most output indices (the outermost in loop order on a tie).
    None when no tile can shrink."""
    order = range(m.num_levels - 1, -1, -1) if innermost_first else range(m.num_levels)
    for l in order:
        dirs = m.levels[l].directives
        reach = [_reach(layer, d) for d in dirs]
        if max(reach, default=0) <= 1:
            continue
        i = reach.index(max(reach))
        new = list(dirs)
        new[i] = _halved(layer, dirs[i])
        levels = list(m.levels)
        levels[l] = Level(tuple(new), levels[l].cluster)
        return Mapping(tuple(levels))
    return None


#: Objective reasons (gamma.objectives.scalar) that shrinking addresses, and where it starts.
_L1, _L2 = "L1 over capacity", "L2 over capacity"


def shrink_for(layer: Layer, m: Mapping, reason: str) -> Mapping | None:
    """The next mapping to try after ``m`` was infeasible for ``reason`` (an objective reason):
    one tile halved, innermost level first for L1, outermost first for L2. None when shrinking
    cannot help (another reason) or nothing is left to shrink."""
    if reason.startswith(_L1):
        return shrink_once(layer, m, innermost_first=True)
    if reason.startswith(_L2):
        return shrink_once(layer, m, innermost_first=False)
    return None


# --- naming ----------------------------------------------------------------------------------------
def dataflow_name(cfg: MappingT[str, Any]) -> str | None:
    """The fixed dataflow a job evaluates (``dataflow.name``), or None when its optimizer is not
    ``fixed`` or no dataflow is chosen."""
    flow = cfg.get("dataflow")
    if (cfg.get("optimizer") or {}).get("name") != "fixed" or not flow:
        return None
    return str(flow.get("name") or "file")


def dataflow_label(cfg: MappingT[str, Any]) -> str | None:
    """The dataflow's part of a job label: its name, or ``file:<file name>`` for a user's file
    (``file:<file name>+<depthwise file name>`` with ``dataflow.depthwise_path``)."""
    name = dataflow_name(cfg)
    if name is None:
        return None
    flow = cfg.get("dataflow") or {}
    path, dw = flow.get("path"), flow.get("depthwise_path")
    if path is None:
        return name
    return f"{name}:{Path(str(path)).name}" + (f"+{Path(str(dw)).name}" if dw is not None else "")
