"""``nlu-ci check`` judged by the base branch: the active model pulled over HTTP, the base branch's held-out
examples and policy, a data diff (docs/check.md)."""
