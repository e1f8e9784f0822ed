"""The review page of a run (``page``), its numbers (``content``) and its charts (``svg``)."""
