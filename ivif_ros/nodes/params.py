"""ROS parameters from the config schema: declared with descriptors, validated at set time.

Each node declares the sections it uses. Every ``ParamSpec`` becomes a parameter with a
``ParameterDescriptor`` (description, allowed values, numeric range, read-only). A set
request is checked against the whole schema (cross-field rules included) before rclpy
accepts it, and rejected with the schema's reason; once accepted, the node gets the new
``FusionConfig`` to apply.
"""

from __future__ import annotations

import difflib
from typing import Callable, Iterable

from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor, ParameterType, SetParametersResult
from rclpy.exceptions import InvalidParameterTypeException, InvalidParameterValueException
from rclpy.node import Node

from ivif_ros.core.config import FusionConfig, ParamSpec, param_specs
from ivif_ros.core.safe_yaml import one_line
from ivif_ros.errors import ConfigError, UserFacingError

_TYPES = {
    bool: ParameterType.PARAMETER_BOOL,
    int: ParameterType.PARAMETER_INTEGER,
    float: ParameterType.PARAMETER_DOUBLE,
    str: ParameterType.PARAMETER_STRING,
}
_ARRAY_TYPES = {
    bool: ParameterType.PARAMETER_BOOL_ARRAY,
    int: ParameterType.PARAMETER_INTEGER_ARRAY,
    float: ParameterType.PARAMETER_DOUBLE_ARRAY,
    str: ParameterType.PARAMETER_STRING_ARRAY,
}


def descriptor(spec: ParamSpec) -> ParameterDescriptor:
    """The ``ParameterDescriptor`` that ``ros2 param describe`` shows for ``spec``."""
    d = ParameterDescriptor(
        name=spec.name,
        type=_ARRAY_TYPES[spec.item_kind] if spec.kind is list else _TYPES[spec.kind],
        description=spec.doc,
        read_only=spec.read_only,
    )
    constraints = []
    if spec.choices:
        constraints.append("one of: " + ", ".join(spec.choices))
    if spec.lengths:
        constraints.append("length " + " or ".join(map(str, spec.lengths)))
    if spec.range is not None:
        lo, hi = spec.range
        if spec.kind is float:
            d.floating_point_range = [FloatingPointRange(from_value=float(lo), to_value=float(hi), step=0.0)]
        elif spec.kind is int:
            d.integer_range = [IntegerRange(from_value=int(lo), to_value=int(hi), step=0)]
        else:
            constraints.append(f"each element in [{lo}, {hi}]")
    d.additional_constraints = "; ".join(constraints)
    return d


class ConfigParameters:
    """Declares the selected settings on ``node`` and keeps the validated ``FusionConfig``.

    ``select`` names sections (``"sync"``) or single settings (``"pipeline.palette"``).
    Settings not selected keep their defaults in ``config``. ``can_apply(current, updated)``
    may raise ``ConfigError`` to refuse a change the schema allows but the running node
    cannot apply (its reason is the set request's).
    """

    def __init__(
        self,
        node: Node,
        select: Iterable[str],
        on_change: Callable[[FusionConfig], None] | None = None,
        can_apply: Callable[[FusionConfig, FusionConfig], None] | None = None,
    ):
        self._node = node
        select = tuple(select)
        self.specs = [s for s in param_specs() if any(s.name == k or s.name.startswith(k + ".") for k in select)]
        self._names = {s.name for s in self.specs}
        where = f"node {node.get_fully_qualified_name()}"
        _refuse_unknown_names(node, where)
        for spec in self.specs:
            try:
                node.declare_parameter(spec.name, spec.default, descriptor(spec))
            except InvalidParameterTypeException as exc:
                kind = f"list of {spec.item_kind.__name__}" if spec.kind is list else spec.kind.__name__
                raise ConfigError(
                    f"parameter {spec.name} of {where}: {exc}; give a {kind} (e.g. 2.0, not 2, for a float)"
                ) from exc
            except InvalidParameterValueException as exc:
                raise ConfigError(f"parameter {spec.name} of {where}: {exc}; {spec.doc}") from exc
        self.config = FusionConfig().with_overrides(
            {s.name: _plain(node.get_parameter(s.name).value) for s in self.specs}, where
        )
        self._on_change = on_change
        self._can_apply = can_apply
        node.add_on_set_parameters_callback(self._check)
        node.add_post_set_parameters_callback(self._apply)

    def _updated(self, params) -> FusionConfig | None:
        ours = {p.name: _plain(p.value) for p in params if p.name in self._names}
        return self.config.with_overrides(ours, "parameter update") if ours else None

    def _check(self, params) -> SetParametersResult:
        """Reject a set request that the schema rejects, with the schema's reason."""
        try:
            updated = self._updated(params)
            if updated is not None and self._can_apply is not None:
                self._can_apply(self.config, updated)
        except UserFacingError as exc:
            return SetParametersResult(successful=False, reason=str(exc))
        except Exception as exc:  # noqa: BLE001  an exception escaping here would kill the node
            self._node.get_logger().error(f"parameter check failed unexpectedly: {exc!r}")
            return SetParametersResult(
                successful=False,
                reason=f"refused: the check failed ({type(exc).__name__}: "
                f"{one_line(exc)}); the configuration is unchanged",
            )
        return SetParametersResult(successful=True)

    def _apply(self, params) -> None:
        updated = self._updated(params)
        if updated is None:
            return
        self.config = updated
        if self._on_change is not None:
            self._on_change(updated)


def _refuse_unknown_names(node: Node, where: str) -> None:
    """A params-file or ``-p`` name in a config section that the schema does not have is a typo
    (``sync.slop: 0.05``): rclpy would silently ignore it and run with the default instead.

    rclpy has no public accessor for the overrides it was given, hence ``_parameter_overrides``.
    Names of other sections (another node's, ``qos_overrides``, ``use_sim_time``) are left alone.
    """
    known = {s.name for s in param_specs()}
    sections = {name.split(".", 1)[0] for name in known}
    for name in node._parameter_overrides:
        if name.split(".", 1)[0] in sections and name not in known:
            close = difflib.get_close_matches(name, known, n=1)
            hint = f"did you mean {close[0]}?" if close else "see config/fusion.yaml for the settings"
            raise ConfigError(f"parameter {name} given to {where} does not exist; {hint}")


def _plain(value):
    """rclpy returns arrays as array.array / numpy; the schema wants lists."""
    if hasattr(value, "tolist") and not isinstance(value, (str, bytes)):
        return value.tolist()
    return list(value) if isinstance(value, tuple) else value
