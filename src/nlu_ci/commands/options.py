"""Groups of settings that several commands take as flags (names of ``settings.OPTIONS``). The registry
backends' and the output channels' options come from their registration lists, so a new backend or channel
brings its flags along."""
from nlu_ci.outputs import channels
from nlu_ci.registry import backends

COMMON = ["models_dir", "project", "output", "log_level", "log_format"]
PLATFORM = ["platform_host", "platform_tag", "platform_auth", "http_timeout", "http_retries", "http_backoff"]
REGISTRY = PLATFORM + [n for n in backends.option_names() if n not in PLATFORM]  # --registry, every backend's
DATA = ["data", "test_data", "test_fraction", "split_salt", "max_repair_share", "strict_data"]
DATA_GIT = ["data_git_url", "data_git_ref", "data_git_user", "data_git_known_hosts", "data_git_dir", "data_git_timeout"]
RUN_CORE = COMMON + REGISTRY + DATA + DATA_GIT + [
    "configs", "policy", "out_of_scope", "report", "keep_models", "dry_run",
    "kubernetes", "pod_name", "pod_namespace", "pod_uid", "job_name", "job_uid", "lease_name", "lease_duration",
    "restart_deployment",
]
MESSAGES = ["messages", "messages_url_file", "messages_limit", "messages_max_age_days", "mask_messages", "strict_messages"]
LIVE = MESSAGES + ["live_messages"]  # run and check: the live agreement (messages/live.py)
RUN_CORE = RUN_CORE + LIVE
RUN_CORE += ["cv_folds", "workers", "cv_job_template", "cv_job_timeout"]  # -- cv config search (search/)
RUN_CORE += ["keep_reports", "max_intents"]  # -- hostile inputs and a full volume (docs/reliability.md)
RUN = RUN_CORE + ["accept_relabels"] + channels.option_names()  # + every channel's options
