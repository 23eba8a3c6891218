"""The request pipeline shared by the SDK and the gateway.

- ``pipeline``: ``Call``, ``Timings``, ``Policy``, ``Pipeline`` (policies around one upstream call);
- ``policies``: the request policies (route, max_tokens, thinking, history, parameters, context);
- ``usage``, ``cache``, ``observe``: usage records, the response cache, timings and reasoning;
- ``send``: the send handler (retries, total timeout, interrupted streams), over ``retries``;
- ``transport``: ``Upstream``, one HTTP attempt as canonical events (DashScope or self-hosted);
- ``runner``: the event loop in a thread under the synchronous client.

Nothing is imported here, so importing one module does not load the others.
"""
