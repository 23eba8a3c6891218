"""Wire formats: pure translation between the canonical types and the bytes of both DashScope modes."""
