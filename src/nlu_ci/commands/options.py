"""Groups of settings that several commands take as flags (names of ``settings.OPTIONS``)."""
COMMON = ["models_dir", "project", "output", "log_level", "log_format"]
PLATFORM = ["platform_host", "platform_tag", "platform_auth", "http_timeout", "http_retries", "http_backoff"]
DATA = ["data", "test_data", "test_fraction", "split_salt", "max_repair_share", "strict_data"]
DATA_GIT = ["data_git_url", "data_git_ref", "data_git_user", "data_git_known_hosts", "data_git_dir", "data_git_timeout"]
RUN = COMMON + PLATFORM + DATA + DATA_GIT + [
    "configs", "policy", "out_of_scope", "report", "keep_models", "dry_run",
    "evaluation", "eval_timeout", "eval_poll_interval", "pushgateway_url", "pushgateway_username", "metrics_timeout",
    "strict_metrics", "review_url_base",
    "kubernetes", "pod_name", "pod_namespace", "pod_uid", "job_name", "job_uid", "lease_name", "lease_duration",
    "restart_deployment",
]
MESSAGES = ["messages", "messages_url_file", "messages_limit", "messages_max_age_days", "mask_messages", "strict_messages"]
LIVE = MESSAGES + ["live_messages"]  # run and check: the live agreement (messages/live.py)
RUN = RUN + LIVE
RUN += ["keep_reports", "max_intents"]  # -- hostile inputs and a full volume (docs/reliability.md)
