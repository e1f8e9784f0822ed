"""The run report: the typed model (``model``), the views every reader shares (``views``), the JSON file and
the human summary (``document``), the pull-request summary in Markdown (``markdown``)."""
