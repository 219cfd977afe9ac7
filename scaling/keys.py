"""Help for a mistyped key or name: which schema model a grid key path leads to, every dotted RunSpec field
(the keys an axis may vary), and the closest known name ("did you mean ...?")."""

from __future__ import annotations

import difflib
import types
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel

from scaling.spec import RunSpec
from scaling.yamlfile import KeyPath


def _model_class(annotation: Any) -> Any:
    """Strip Optional/Annotated down to what validates a value (a model class, dict[...] or list[...])."""
    while get_origin(annotation) in (Union, types.UnionType, Annotated):
        args = [a for a in get_args(annotation) if a is not type(None)]
        annotation = args[0]
    return annotation


def model_at(cls: type[BaseModel], path: KeyPath) -> type[BaseModel] | None:
    """The model class that validates the mapping at `path` under `cls` (None if it is not a model)."""
    annotation: Any = cls
    for part in path:
        annotation = _model_class(annotation)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            if str(part) not in annotation.model_fields:
                return None
            annotation = annotation.model_fields[str(part)].annotation
        elif get_origin(annotation) in (dict, list):
            annotation = get_args(annotation)[-1]
        else:
            return None
    annotation = _model_class(annotation)
    return annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None


def unknown_key(key: str, candidates: list[str]) -> str:
    close = difflib.get_close_matches(key, candidates, n=1, cutoff=0.6)
    return "unknown key" + (f"; did you mean {close[0]!r}?" if close else f" (expected one of {', '.join(candidates)})")


def spec_paths(cls: type[BaseModel] = RunSpec, prefix: str = "") -> list[str]:
    """Every dotted field path of a spec model (data, data.pool_size, optim.lr, ...), for axes keys."""
    paths = []
    for name, info in cls.model_fields.items():
        if name in ("reference", "wsd"):  # set by methods.<method>.reference and by the schedule block
            continue
        paths.append(prefix + name)
        sub = _model_class(info.annotation)
        if isinstance(sub, type) and issubclass(sub, BaseModel):
            paths += spec_paths(sub, f"{prefix}{name}.")
    return paths


def suggest(name: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(name, choices, n=1, cutoff=0.5)
    return f"; did you mean {close[0]!r}?" if close else f" (choose one of {', '.join(choices)})"
