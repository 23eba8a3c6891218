"""The base class of every canonical wire object.

Unknown fields are kept (``extra="allow"``): a gateway that receives a field it does not
understand passes it on instead of dropping it, and a newer service field survives a round trip
through an older qwenkit. ``to_wire()`` is the one way to turn a model back into JSON-ready data:
it drops unset optional fields (so an absent field stays absent, and ``null`` stays ``null`` only
where it was given) and keeps the extras.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict


class WireModel(BaseModel):
    """A pydantic model that preserves unknown fields and serialises without unset defaults."""

    model_config = ConfigDict(
        extra="allow",
        populate_by_name=True,
        validate_assignment=False,
        ser_json_inf_nan="constants",
    )

    def to_wire(self) -> dict[str, Any]:
        """JSON-ready dict of the fields that were set (explicitly or by a decoder), extras included."""
        return self.model_dump(mode="json", exclude_unset=True, by_alias=True)

    @property
    def extras(self) -> dict[str, Any]:
        """The fields this model does not know, exactly as received."""
        return dict(self.model_extra or {})
