"""Method registries, spec validation, :func:`build` and the :func:`cocktail` grid.

A *spec* names the methods to use:

* ``None`` or ``"none"``: plain backward (no aggregator);
* one name, e.g. ``"pcgrad"`` or ``"imtlg"``;
* a pair ``(magnitude, direction)`` in either order, either of which may be
  ``"none"``, e.g. ``("imtlg", "pcgrad")`` or ``("none", "graddrop")``.
"""

from __future__ import annotations

import inspect
import numbers
from typing import Dict, List, Mapping, Optional, Tuple, Type

from .aggregator import Aggregator
from .aligned_mtl import AlignedMTL
from .base import DirectionMethod, MagnitudeMethod
from .dualproj import DualProj
from .graddrop import GradDrop
from .gradnorm import GradNorm
from .imtlg import IMTLG
from .mgda import MGDAUB
from .nash_mtl import NashMTL
from .pcgrad import PCGrad
from .upgrad import UPGrad

__all__ = [
    "MAGNITUDE_METHODS",
    "DIRECTION_METHODS",
    "PAPER_MAGNITUDE",
    "PAPER_DIRECTION",
    "validate_spec",
    "validate_method_params",
    "method_hyperparameters",
    "build",
    "cocktail",
]

#: name -> class of every magnitude method.
MAGNITUDE_METHODS: Dict[str, Type[MagnitudeMethod]] = {cls.name: cls for cls in (GradNorm, MGDAUB, IMTLG, NashMTL)}
#: name -> class of every direction method.
DIRECTION_METHODS: Dict[str, Type[DirectionMethod]] = {
    cls.name: cls for cls in (PCGrad, GradDrop, UPGrad, DualProj, AlignedMTL)
}
#: The methods of Javaloy et al.'s "cocktail" (their 4 x 3 grid with "none").
PAPER_MAGNITUDE = ("none", "gradnorm", "mgda-ub", "imtlg")
PAPER_DIRECTION = ("none", "graddrop", "pcgrad")

_ALL_METHODS = {**MAGNITUDE_METHODS, **DIRECTION_METHODS}


def _valid_names() -> str:
    return (f"magnitude methods: {', '.join(MAGNITUDE_METHODS)}; "
            f"direction methods: {', '.join(DIRECTION_METHODS)}; or 'none'")


def _normalise_name(name) -> str:
    if name is None:
        return "none"
    if not isinstance(name, str):
        raise ValueError(f"moo: method names must be strings, got {name!r}; valid names are {_valid_names()}")
    key = name.strip().lower()
    if key != "none" and key not in _ALL_METHODS:
        raise ValueError(f"moo: unknown method {name!r}; valid names are {_valid_names()}")
    return key


def validate_spec(spec) -> Tuple[str, str]:
    """Normalise a spec to the canonical ``(magnitude, direction)`` pair.

    ``None`` -> ``("none", "none")``, ``"pcgrad"`` -> ``("none", "pcgrad")``,
    ``("pcgrad", "imtlg")`` -> ``("imtlg", "pcgrad")``. Names are
    case-insensitive.

    Parameters
    ----------
    spec : None, str, or tuple or list of one or two str
        The methods to use (see the module docstring); ``None`` and
        ``"none"`` stand for no method.

    Returns
    -------
    magnitude, direction : str
        The lower-case method names, ``"none"`` for a family not used.

    Raises
    ------
    ValueError
        For unknown names, two methods of the same family, or a sequence
        that is not of length 1 or 2; the message lists the valid names.
    """
    if spec is None or isinstance(spec, str):
        names = [_normalise_name(spec)]
    elif isinstance(spec, (tuple, list)) and 1 <= len(spec) <= 2:
        names = [_normalise_name(s) for s in spec]
    else:
        raise ValueError(
            f"moo must be None, a method name or a (magnitude, direction) pair, got {spec!r}; "
            f"valid names are {_valid_names()}"
        )
    magnitude = [n for n in names if n in MAGNITUDE_METHODS]
    direction = [n for n in names if n in DIRECTION_METHODS]
    if len(magnitude) > 1 or len(direction) > 1:
        raise ValueError(
            f"moo={spec!r} names two methods of the same family; combine at most one magnitude "
            f"method ({', '.join(MAGNITUDE_METHODS)}) with at most one direction method "
            f"({', '.join(DIRECTION_METHODS)})"
        )
    return (magnitude[0] if magnitude else "none", direction[0] if direction else "none")


def method_hyperparameters(name: str) -> Dict[str, object]:
    """The hyperparameters of a method and their defaults (``n_tasks`` excluded).

    Parameters
    ----------
    name : str
        A magnitude or direction method name (case-insensitive), or
        ``"none"`` (no method, so no hyperparameters).

    Returns
    -------
    dict
        ``{parameter: default}`` in the order of the method's constructor.
    """
    key = _normalise_name(name)
    if key == "none":
        return {}
    cls = _ALL_METHODS[key]
    params = inspect.signature(cls.__init__).parameters
    return {
        p: v.default for p, v in params.items()
        if p not in ("self", "n_tasks") and v.kind not in (v.VAR_POSITIONAL, v.VAR_KEYWORD)
    }


def validate_method_params(method_params: Optional[Mapping]) -> Dict[str, dict]:
    """Check a ``{method name: {param: value}}`` dict against the registries.

    Entries for methods absent from a given spec are allowed (so one dict can
    serve a whole :func:`cocktail` grid), but every name and every parameter
    must exist, and every entry's values are checked by building its method,
    so a bad value fails every candidate of a grid search alike, not only
    those that use the method.

    Parameters
    ----------
    method_params : mapping of str to mapping, or None
        Hyperparameters keyed by method name (case-insensitive), e.g.
        ``{"gradnorm": {"alpha": 1.5}}``; ``None`` for none.

    Returns
    -------
    dict of dict
        A copy keyed by the lower-case method names (empty for ``None``).

    Raises
    ------
    ValueError
        For an unknown method or parameter, a method named twice, or
        ``"none"``; a bad value raises what the method's constructor does.
    """
    if method_params is None:
        return {}
    if not isinstance(method_params, Mapping):
        raise ValueError(f"method_params must be a dict of dicts keyed by method name, got {method_params!r}")
    out = {}
    for name, params in method_params.items():
        key = _normalise_name(name)
        if key == "none":
            raise ValueError("method_params: 'none' has no parameters")
        if key in out:
            raise ValueError(f"method_params names {key} twice (names are case-insensitive)")
        if not isinstance(params, Mapping):
            raise ValueError(f"method_params[{name!r}] must be a dict of parameters, got {params!r}")
        valid = method_hyperparameters(key)
        unknown = sorted(set(params) - set(valid))
        if unknown:
            raise ValueError(
                f"method_params[{name!r}]: unknown parameter(s) {', '.join(map(repr, unknown))}; "
                f"valid parameters of {key} are {', '.join(valid) or '(none)'}"
            )
        out[key] = dict(params)
        _instantiate(key, 1, out[key])
    return out


def _instantiate(name: str, n_tasks: int, params: dict):
    cls = _ALL_METHODS[name]
    if cls.needs_n_tasks:
        return cls(n_tasks=n_tasks, **params)
    return cls(**params)


def build(spec, n_tasks: int, method_params: Optional[Mapping] = None,
          rescale: bool = True, check_finite: bool = True) -> Optional[Aggregator]:
    """Build the aggregator a spec names.

    Parameters
    ----------
    spec : None, str or (str, str)
        See the module docstring.
    n_tasks : int
        Number of tasks K (columns); needed by stateful methods (GradNorm).
    method_params : dict of dict, optional
        Hyperparameters keyed by method name, e.g.
        ``{"gradnorm": {"alpha": 1.5}, "graddrop": {"leakage": 0.2}}``.
    rescale : bool, default=True
        See :class:`~heterovae.moo.aggregator.Aggregator`.
    check_finite : bool, default=True
        See :class:`~heterovae.moo.aggregator.Aggregator`.

    Returns
    -------
    Aggregator or None
        ``None`` when the spec asks for no method: use the plain backward.
    """
    magnitude, direction = validate_spec(spec)
    params = validate_method_params(method_params)
    if isinstance(n_tasks, bool) or not isinstance(n_tasks, numbers.Integral) or n_tasks < 1:
        raise ValueError(f"n_tasks must be a positive int, got {n_tasks!r}")
    n_tasks = int(n_tasks)
    if magnitude == "none" and direction == "none":
        return None
    methods = {}
    for family, name in (("magnitude", magnitude), ("direction", direction)):
        if name != "none":
            methods[family] = _instantiate(name, n_tasks, params.get(name, {}))
            methods[family].check_n_tasks(n_tasks)
    return Aggregator(**methods, rescale=rescale, check_finite=check_finite)


def cocktail(include_newer: bool = False) -> List[Optional[Tuple[str, str]]]:
    """Every magnitude x direction combination, for a grid search over ``moo``.

    With ``include_newer=False`` these are the 12 combinations of Javaloy et
    al.: ``{none, gradnorm, mgda-ub, imtlg} x {none, graddrop, pcgrad}``, with
    the ``("none", "none")`` combination written as ``None`` (plain training).
    ``include_newer=True`` adds the magnitude method Nash-MTL and the
    direction methods UPGrad, DualProj and Aligned-MTL (5 x 6 = 30 specs).

    Parameters
    ----------
    include_newer : bool, default=False
        Also combine the methods that are not in the paper's grid.

    Returns
    -------
    list of None or (str, str)
        The specs, ``(magnitude, direction)`` pairs, for the ``moo``
        parameter.

    Examples
    --------
    >>> GridSearchCV(HeterogeneousVAEImputer(), {"moo": heterovae.moo.cocktail()})  # doctest: +SKIP
    """
    magnitudes, directions = PAPER_MAGNITUDE, PAPER_DIRECTION
    if include_newer:
        magnitudes += tuple(m for m in MAGNITUDE_METHODS if m not in PAPER_MAGNITUDE)
        directions += tuple(d for d in DIRECTION_METHODS if d not in PAPER_DIRECTION)
    return [None if (m, d) == ("none", "none") else (m, d) for m in magnitudes for d in directions]
