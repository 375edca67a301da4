"""``TransportableObject``: a value as Covalent's results hand it over, pickled until asked for.

Covalent returns node outputs, inputs and the encoded result wrapped in this class;
``get_deserialized()`` gives the value. Stored outputs are wrapped without being unpickled,
so reading a result never runs a pickle's code until the user asks for that value.
"""

from __future__ import annotations

import base64
import json
import platform
from typing import Any

import cloudpickle

from ..errors import SerializationError


class TransportableObject:
    """A pickled value with its text; ``get_deserialized()`` unpickles it."""

    def __init__(self, obj: Any) -> None:
        try:
            self._data = cloudpickle.dumps(obj)
        except Exception as exc:
            raise SerializationError(
                f"{type(obj).__name__} value cannot be pickled ({type(exc).__name__}: {exc})"
            ) from exc
        self._object_string: str | None = _text(obj)
        self._python_version = platform.python_version()

    @classmethod
    def from_pickle(cls, data: bytes, object_string: str | None = None) -> TransportableObject:
        """Wrap bytes that ``cloudpickle.dumps`` made, without unpickling them."""
        self = cls.__new__(cls)
        self._data = data
        self._object_string = object_string
        self._python_version = platform.python_version()
        return self

    @staticmethod
    def make_transportable(obj: Any) -> TransportableObject:
        """``obj`` itself if it is already transportable, else ``obj`` wrapped."""
        return obj if isinstance(obj, TransportableObject) else TransportableObject(obj)

    @property
    def object_string(self) -> str:
        """``str()`` of the value."""
        if self._object_string is None:
            self._object_string = _text(self.get_deserialized())
        return self._object_string

    @property
    def python_version(self) -> str:
        """The Python version that pickled it."""
        return self._python_version

    @property
    def header(self) -> dict[str, Any]:
        """Covalent's header: the Python and cloudpickle versions."""
        return {"py_version": self._python_version, "cloudpickle_version": cloudpickle.__version__}

    @property
    def attrs(self) -> dict[str, Any]:
        """Covalent's attributes of the value (none are recorded here)."""
        return {}

    def get_deserialized(self) -> Any:
        """The value."""
        try:
            return cloudpickle.loads(self._data)
        except Exception as exc:
            raise SerializationError(
                f"a stored value could not be unpickled here ({type(exc).__name__}: {exc}); "
                "import the modules it needs, or read it where the workflow was defined"
            ) from exc

    def get_serialized(self) -> str:
        """The pickle, base64-encoded."""
        return base64.b64encode(self._data).decode("ascii")

    def serialize(self) -> bytes:
        """The pickle's bytes."""
        return self._data

    @staticmethod
    def deserialize(data: bytes) -> TransportableObject:
        """The inverse of :meth:`serialize`."""
        return TransportableObject.from_pickle(data)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (Covalent's layout: ``type`` and ``attributes``)."""
        return {
            "type": "TransportableObject",
            "attributes": {
                "_object": self.get_serialized(),
                "_object_string": self._object_string,
                "_header": self.header,
            },
        }

    @staticmethod
    def from_dict(object_dict: dict[str, Any]) -> TransportableObject:
        """The inverse of :meth:`to_dict`."""
        attributes = object_dict["attributes"]
        return TransportableObject.from_pickle(
            base64.b64decode(attributes["_object"]), attributes.get("_object_string")
        )

    def serialize_to_json(self) -> str:
        """:meth:`to_dict` as JSON text."""
        return json.dumps(self.to_dict())

    @staticmethod
    def deserialize_from_json(json_string: str) -> TransportableObject:
        """The inverse of :meth:`serialize_to_json`."""
        return TransportableObject.from_dict(json.loads(json_string))

    @property
    def json(self) -> str:
        """The object as JSON text (:meth:`serialize_to_json`)."""
        return self.serialize_to_json()

    def __eq__(self, other: object) -> bool:
        return isinstance(other, TransportableObject) and self._data == other._data

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        text = self.object_string if self._object_string is not None else "..."
        return f"<TransportableObject {text[:60]}>"


def _text(obj: Any) -> str | None:
    try:
        return str(obj)
    except Exception:
        return None
