"""The nevergrad baselines' parametrization: ``ng.p.Array(shape=(d,), lower=0, upper=1)``, with
nevergrad's per-candidate bookkeeping done in a few attribute copies.

Nevergrad's optimizers handle every candidate as a ``Parameter``: ``ask`` spawns a child
(a copy of the parameter tree, its layers and its ``sigma`` sub-parameter), sets its
standardized data and freezes it; ``tell`` freezes it again, checks its constraints and files
it in the archive. Each step walks the parameter tree (``Subobjects.apply`` scans every
attribute of every node): 0.3-0.6 ms of CPU per sample on a 14-coordinate box, most of each
nevergrad baseline's time outside the cost model. :class:`UnitBox` is the same ``Array`` (same
layers: bouncing bounds on [0, 1], sigma 1/6) whose hot methods take the short path that has
the same effect on this parameter:

* ``copy``: the layers are copied as nevergrad copies them (shallow, re-attached), and the
  ``sigma`` sub-parameter is shared instead of copied: it is a ``Constant`` inside a ``Dict``
  that nothing changes (no mutable sigma), and ``freeze`` leaves it alone;
* ``freeze``, ``_check_frozen``, ``_set_parenthood``: the parameter's own flags only;
* ``satisfies_constraints``: reads the value (which applies the bounds, as nevergrad's does)
  and is True: the box has no constraint and no tabu list (otherwise nevergrad's own check);
* ``dimension``: the value's size (nevergrad: ``int(np.prod(shape))``, asked twice per PSO sample);
* ``value``: nevergrad's bouncing bound (``Clipping(0, 1, bounce=True)``, applied only when a
  coordinate is outside and then stored, as nevergrad's ``Bound`` layer does), not checked
  again once the parameter is frozen (nothing changes a frozen parameter's value);
* standardized data: nevergrad's own formulas (``sigma * (data + ref / sigma)`` and
  ``(value - ref) / sigma``), the same floating-point operations.

Every optimizer therefore draws the same random numbers and sees the same floats: the tests
run each baseline with both parametrizations and compare every evaluated cost.

Sampling: the box's ``sample()`` (PSO's initial swarm, DE's initial population, CMA-ES's random
initial mean) draws uniformly in [0, 1]^d, as nevergrad documents for an array with both bounds
("full_range_sampling ... activated by default if both bounds are provided") and as the
baselines' configs assume. nevergrad 1.0.12's ``Data.__init__`` decides it with ``init is None``
after it has set ``init`` to the box centre, so ``Array(shape=..., lower=0, upper=1).sample()``
is the centre plus N(0, 1/6) noise per coordinate (bounced); :func:`full_range_sampling` sets
the bound layer's flag. Around the centre the codec decodes large inner tiles, over the L1
capacity: on ResNet-18 layers 1 and 16, 0.02-0.2 % of those samples are feasible against
0.4-4 % of uniform points, so PSO's 100 initial particles held no feasible one on S1, S2 and
S3 alike.
"""

from __future__ import annotations

import uuid
from typing import Any

import nevergrad as ng
import numpy as np
from nevergrad.parametrization import _datalayers, core

#: nevergrad's ``value`` descriptor (reads through the layers), for the paths kept as they are.
_NG_VALUE = core.Parameter.__dict__["value"]


def full_range_sampling(param: ng.p.Array) -> ng.p.Array:
    """``param`` (bounded on both sides) with a ``sample()`` uniform between its bounds (see the
    module doc); nothing else changes (sigma, bounds, standardized data)."""
    for layer in param._layers:
        if isinstance(layer, _datalayers.BoundLayer):
            layer.uniform_sampling = True
    return param


class UnitBox(ng.p.Array):
    """``ng.p.Array(shape=(dim,), lower=0.0, upper=1.0)`` with short per-candidate paths and a
    uniform ``sample()``."""

    def __init__(self, dim: int) -> None:
        self._box_ready = False  # nevergrad's own paths until the layers are in place
        self._box_inside: np.ndarray | None = None  # the last value found inside the box
        super().__init__(shape=(dim,), lower=0.0, upper=1.0)
        bounds = [layer for layer in self._layers if isinstance(layer, _datalayers.BoundLayer)]
        if len(bounds) != 1 or not isinstance(bounds[0], _datalayers.Bound) or bounds[0]._method != "bouncing":
            raise RuntimeError(f"unexpected nevergrad layers {self._layers}: expected one bouncing bound")
        if not isinstance(self.parameters["sigma"], core.Constant):
            raise RuntimeError("unexpected nevergrad parameter: sigma is not a constant")
        full_range_sampling(self)
        self._box_bound = bounds[0]._transform  # Clipping(0, 1, bounce=True), shared by the copies
        self._box_sigma = self.sigma.value  # 1/6, the Constant's own float
        self._box_ready = True

    # --- copies -----------------------------------------------------------------------------
    def copy(self) -> "UnitBox":
        """nevergrad's ``Data.copy`` (new uid, unfrozen, empty ``_meta``, copied heritage and
        parents, no loss, copied value), sharing the constant ``sigma`` sub-parameter."""
        if not self._box_ready:
            return super().copy()
        child = object.__new__(type(self))
        child.__dict__.update(self.__dict__)  # what copy.copy does
        layers: list[Any] = [child]
        for k, layer in enumerate(self._layers[1:], 1):
            new = object.__new__(type(layer))
            new.__dict__.update(layer.__dict__)
            new._layers, new._layer_index = layers, k
            layers.append(new)
        child._layers, child._layer_index = layers, 0
        child.uid = uuid.uuid4().hex
        child._frozen = False
        child._subobjects = self._subobjects.new(child)
        child._meta = {}
        child.parents_uids = list(self.parents_uids)
        child.heritage = dict(self.heritage)
        child.loss = None
        child._losses = None
        child._constraint_checkers = list(self._constraint_checkers)
        for layer in layers:
            layer._layered_del_value()
        child._value = np.array(self._value, copy=True)
        return child

    def _set_parenthood(self, parent: core.Parameter | None) -> None:
        if not self._box_ready:
            return super()._set_parenthood(parent)
        if parent is None:
            self._generation = 0
            self.heritage = dict(lineage=self.uid)
            self.parents_uids = []
        else:
            self._generation = parent.generation + 1
            self.parents_uids = [parent.uid]

    # --- freezing and constraints ----------------------------------------------------------
    def freeze(self) -> None:
        if not self._box_ready:
            return super().freeze()
        self._frozen = True

    def _check_frozen(self) -> None:
        if not self._box_ready:
            return super()._check_frozen()
        if self._frozen:
            raise RuntimeError(f"Cannot modify frozen Parameter {self.name}, please spawn a child and "
                               "modify it instead")
        if self._random_state is None:
            self.random_state  # noqa: B018 - nevergrad initializes it here

    def satisfies_constraints(self, ref: core.Parameter | None = None, no_tabu: bool = False) -> bool:
        tabu = not no_tabu and ref is not None and ref.tabu_length > 0
        if not self._box_ready or tabu or self._constraint_checkers:
            return super().satisfies_constraints(ref, no_tabu)
        self.value  # noqa: B018 - applies the bounds, as nevergrad's check does
        return True

    # --- value and standardized data --------------------------------------------------------
    @property
    def dimension(self) -> int:
        """nevergrad's ``int(np.prod(self._value.shape))``."""
        return int(self._value.size)

    def _get_value(self) -> np.ndarray:
        if not self._box_ready:
            return _NG_VALUE.__get__(self, type(self))
        if self._random_state is None:
            self.random_state  # noqa: B018
        deep = self._value
        if self._frozen and self._box_inside is deep:  # checked, and frozen since
            return deep
        if deep.min() < 0.0 or deep.max() > 1.0:  # as nevergrad's BoundChecker (NaN is inside)
            t = self._box_bound  # Clipping(bounce=True).forward past its checker, inlined
            value = np.clip(2 * np.clip(deep, t.a_min, t.a_max) - deep, t.a_min, t.a_max)
            self._check_frozen()
            self._value = deep = value
        self._box_inside = deep
        return deep

    def _set_value(self, value: Any) -> None:
        _NG_VALUE.__set__(self, value)

    def _del_value(self) -> None:
        _NG_VALUE.__delete__(self)

    value = property(_get_value, _set_value, _del_value)

    def set_standardized_data(self, data: Any, *, reference: "UnitBox | None" = None) -> "UnitBox":
        ref = self if reference is None else reference
        if not (self._box_ready and isinstance(ref, UnitBox) and ref._box_ready):
            return super().set_standardized_data(data, reference=reference)
        self._check_frozen()
        for layer in self._layers:
            layer._layered_del_value()
        sigma = ref._box_sigma
        data = np.asarray(data)
        self._value = (sigma * (data + (ref._value / sigma).ravel())).reshape(ref._value.shape)
        self.value  # noqa: B018 - applies the bounds
        return self

    def get_standardized_data(self, *, reference: "UnitBox") -> np.ndarray:
        ref = self if reference is None else reference
        if not (self._box_ready and isinstance(ref, UnitBox) and ref._box_ready):
            return super().get_standardized_data(reference=reference)
        return ((self._value - ref._value) / ref._box_sigma).ravel()
