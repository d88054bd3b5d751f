"""Record how each phcontrol module was built, so a model file can rebuild it.

A class that inherits :class:`Configurable` remembers the arguments of its
outermost ``__init__`` call. :func:`to_spec` turns a module into a JSON
tree (class names from a closed registry, tensors by reference) and
:func:`from_spec` rebuilds it; nothing is imported or executed by name
outside that registry.
"""

from __future__ import annotations

import functools
import inspect
from typing import Any

import torch
from torch import Tensor, nn

from .errors import ModelFileError

__all__: list[str] = []

_REGISTRY: dict[str, type] = {}
_ACTIVATIONS = {
    c.__name__: c for c in (nn.Tanh, nn.ReLU, nn.SiLU, nn.Softplus, nn.GELU)
}


class Configurable:
    """Mixin that records constructor arguments in ``_init_args``."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        _REGISTRY[cls.__name__] = cls
        if "__init__" not in cls.__dict__:
            return
        init = cls.__dict__["__init__"]
        signature = inspect.signature(init)

        @functools.wraps(init)
        def wrapped(self: Any, *args: Any, **kw: Any) -> None:
            if "_init_args" not in self.__dict__:
                bound = signature.bind(self, *args, **kw)
                arguments = dict(bound.arguments)
                arguments.pop("self", None)
                object.__setattr__(self, "_init_args", arguments)
            init(self, *args, **kw)

        cls.__init__ = wrapped  # type: ignore[misc]


def to_spec(obj: Any, tensors: dict[str, Tensor], prefix: str = "init") -> Any:
    """Return a JSON-able tree describing ``obj``; tensors go into ``tensors``."""
    if isinstance(obj, Configurable):
        args = getattr(obj, "_init_args", {})
        return {
            "class": type(obj).__name__,
            "args": {k: to_spec(v, tensors, f"{prefix}.{k}") for k, v in args.items()},
        }
    if isinstance(obj, Tensor):
        tensors[prefix] = obj.detach().cpu().contiguous()
        return {"tensor": prefix}
    if isinstance(obj, type) and obj.__name__ in _ACTIVATIONS:
        return {"activation": obj.__name__}
    if isinstance(obj, list | tuple):
        return {
            "list": [to_spec(v, tensors, f"{prefix}.{i}") for i, v in enumerate(obj)]
        }
    if isinstance(obj, dict):
        return {
            "dict": {
                str(k): to_spec(v, tensors, f"{prefix}.{k}") for k, v in obj.items()
            }
        }
    if obj is None or isinstance(obj, bool | int | float | str):
        return obj
    if callable(obj):
        raise TypeError(
            f"cannot store the Python function "
            f"{getattr(obj, '__qualname__', type(obj).__name__)} (at {prefix}) "
            "in a model file, "
            "since model files hold no code; keep the function in your script "
            "and save phcontrol.greybox.parameter_values(model) to rebuild it"
        )
    raise TypeError(
        f"cannot store an argument of type {type(obj).__name__} in a model file "
        f"(at {prefix}); build the model from phcontrol modules and plain values"
    )


def from_spec(spec: Any, tensors: dict[str, Tensor]) -> Any:
    """Rebuild what :func:`to_spec` described."""
    if isinstance(spec, dict):
        if "class" in spec:
            name = spec["class"]
            cls = _REGISTRY.get(name)
            if cls is None:
                raise ModelFileError(
                    f"the model file names an unknown class {name!r}; it was written "
                    "by a newer phcontrol or edited by hand"
                )
            args = {k: from_spec(v, tensors) for k, v in spec["args"].items()}
            return cls(**args)
        if "tensor" in spec:
            key = spec["tensor"]
            if key not in tensors:
                raise ModelFileError(f"the model file lacks the tensor {key!r}")
            value = tensors[key]
            # Floating tensors follow the default dtype the model is rebuilt
            # under; integer and boolean ones (masks, indices) keep theirs.
            if value.is_floating_point():
                return value.to(torch.get_default_dtype())
            return value
        if "activation" in spec:
            if spec["activation"] not in _ACTIVATIONS:
                raise ModelFileError(f"unknown activation {spec['activation']!r}")
            return _ACTIVATIONS[spec["activation"]]
        if "list" in spec:
            return [from_spec(v, tensors) for v in spec["list"]]
        if "dict" in spec:
            return {k: from_spec(v, tensors) for k, v in spec["dict"].items()}
        raise ModelFileError(f"the model file has an unreadable entry: {sorted(spec)}")
    return spec
