"""Where the production messages are: ``--messages URL`` / ``NLU_CI_MESSAGES_URL``, or a file holding the URL
(``NLU_CI_MESSAGES_URL_FILE``, a mounted Secret; it wins). The URL's password is registered with
``nlu_ci.redact`` the moment the URL is read, so it is masked in every log line, error and report."""
from __future__ import annotations

from nlu_ci import redact, safeio
from nlu_ci.errors import ConfigError

SQL_SCHEMES = ("sqlite", "postgresql", "postgres", "mysql", "mariadb", "oracle", "mssql")


def is_sql(url: str) -> bool:
    scheme = url.partition("://")[0].split("+")[0].lower() if "://" in url else ""
    return scheme in SQL_SCHEMES


def register_password(url: str) -> None:
    if not is_sql(url):
        return
    try:
        from sqlalchemy.engine import make_url

        password = make_url(url).password
    except Exception:  # an unparsable URL: the tracker-store reader reports it; redact's URL pattern still masks
        return
    redact.register(password)


def resolve(settings) -> str | None:
    """The messages URL or folder from the settings (the file wins), its password registered; None: unset."""
    url = None
    if settings.messages_url_file:
        try:
            url = safeio.read_text(settings.messages_url_file, "messages URL file", kind="secret").strip()
        except ConfigError as err:
            raise ConfigError(f"NLU_CI_MESSAGES_URL_FILE: cannot read {err}") from None
    url = url or settings.messages
    if not url:
        return None
    register_password(url)
    if settings.messages_limit < 1:
        raise ConfigError(f"--messages-limit / NLU_CI_MESSAGES_LIMIT: {settings.messages_limit} must be at least 1")
    if settings.messages_max_age_days <= 0:
        raise ConfigError(f"--messages-max-age-days / NLU_CI_MESSAGES_MAX_AGE_DAYS: "
                          f"{settings.messages_max_age_days} must be > 0")
    return url


def shown(url: str) -> str:
    """The URL as it may be shown: password masked."""
    return redact.redact(url)
