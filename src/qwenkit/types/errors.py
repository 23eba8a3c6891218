"""The canonical form of an error reported by the service (or produced for a client).

``code`` is the DashScope native code (``InvalidParameter``, ``Throttling.RateQuota``...), the
most specific name the service has. The compatible wire uses other names for the same errors
(``invalid_parameter_error`` with type ``invalid_request_error``...); ``qwenkit.wire.errors`` maps
between them. When an error was decoded from the compatible wire, ``compat_code`` and
``compat_type`` keep what was received, so it is re-encoded exactly.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ErrorInfo:
    status: int
    code: str
    message: str
    request_id: str | None = None
    compat_code: str | None = None
    compat_type: str | None = None
    param: str | None = None

    def __str__(self) -> str:
        rid = f" (request_id {self.request_id})" if self.request_id else ""
        return f"{self.status} {self.code}: {self.message}{rid}"
