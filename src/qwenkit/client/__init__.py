"""The client: ``AsyncQwen`` and its sync twin ``Qwen``, the SDK's door onto the pipeline.

- ``_async``: ``AsyncQwen``, the one implementation (settings, the pooled HTTP client, the
  pipeline); ``_sync``: ``Qwen``, which runs each ``AsyncQwen`` method on a background loop;
- ``_call``: a method's arguments as the pipeline's ``Call`` (``make_call``, ``MessagesInput``);
- ``_result``: ``ChatResult`` and the streams that end in one;
- ``_structured`` and ``_extraction``: JSON mode and Pydantic extraction (``json``, ``extract``...);
- ``_tasks`` and ``_tasks_server``: ``submit()``, a call as a background job or a service task.

Inside the package the imports point one way: ``_result`` ← ``_call`` ← ``_extraction`` ←
``_structured`` ← ``_tasks`` ← ``_tasks_server`` ← ``_async`` ← ``_sync``. The public names are
exported here and from ``qwenkit``.
"""

from qwenkit.client._async import AsyncQwen
from qwenkit.client._call import MessagesInput
from qwenkit.client._extraction import ExtractionAttempt, ExtractionError
from qwenkit.client._result import AsyncChatStream, ChatResult, ChatStream
from qwenkit.client._structured import JSONResult
from qwenkit.client._sync import Qwen
from qwenkit.client._tasks import AsyncTask, PollSchedule, Task, TaskError, TaskTimeoutError

__all__ = [
    "AsyncChatStream",
    "AsyncQwen",
    "AsyncTask",
    "ChatResult",
    "ChatStream",
    "ExtractionAttempt",
    "ExtractionError",
    "JSONResult",
    "MessagesInput",
    "PollSchedule",
    "Qwen",
    "Task",
    "TaskError",
    "TaskTimeoutError",
]
