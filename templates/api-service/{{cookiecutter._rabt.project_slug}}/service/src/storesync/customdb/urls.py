"""Checks and masking of DATABASE_URL, without SQLAlchemy, so the settings can use them."""

from __future__ import annotations

from urllib.parse import unquote, urlsplit

# The schemes DATABASE_URL may use; all of them connect through psycopg 3.
URL_SCHEMES = ("postgresql://", "postgres://", "postgresql+psycopg://")
URL_EXAMPLE = "postgresql://USER:PASSWORD@HOST:5432/DATABASE"
PERCENT_ENCODING_HINT = (
    "percent-encode special characters in the password, e.g. @ as %40, : as %3A, "
    "/ as %2F and # as %23.")


def masked_url(url: str) -> str:
    """Return ``url`` with everything between ``://`` and the last ``@`` replaced by ``***``.

    Cutting at the last ``@`` hides the whole password even when it contains an
    unescaped ``@``. A URL without ``@`` has no credentials and is returned as it is.
    """
    scheme, separator, rest = url.partition("://")
    if not separator:
        return "***"
    credentials, at_sign, location = rest.rpartition("@")
    if not at_sign:
        return url
    return f"{scheme}://***@{location}" if credentials else url


def database_url_problem(url: str) -> tuple[str, str] | None:
    """Return ``(problem, fix)`` when ``url`` cannot be a PostgreSQL connection URL.

    Checks the scheme, a single ``@`` before the host, a numeric port from 1 to
    65535 and a database name. The problem text never contains the password.
    """
    if not url.startswith(URL_SCHEMES):
        return ("does not start with postgresql://.", f"set DATABASE_URL={URL_EXAMPLE}.")
    rest = url.partition("://")[2]
    authority = rest.split("/", 1)[0].split("?", 1)[0]
    if authority.count("@") > 1:
        return (f"{masked_url(url)} has more than one @ before the host, so the password "
                "contains an unescaped @.", PERCENT_ENCODING_HINT)
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return (f"{masked_url(url)} has a port that is not a number from 1 to 65535.",
                f"write the port as digits after the host, e.g. {URL_EXAMPLE}, and "
                f"{PERCENT_ENCODING_HINT}")
    # urlsplit reads "host:" with nothing after the colon as no port at all, but the
    # driver then fails to parse the empty port.
    if port is None and parts.netloc.endswith(":"):
        return (f"{masked_url(url)} has an empty port after the colon.",
                f"write the port as digits after the host, e.g. {URL_EXAMPLE}, or drop "
                "the colon.")
    if port == 0:
        return (f"{masked_url(url)} has port 0.",
                f"use the server's port, e.g. {URL_EXAMPLE}.")
    if not parts.hostname and "host=" not in parts.query:
        return (f"{masked_url(url)} has no host name.",
                f"name the server after the @, e.g. {URL_EXAMPLE}.")
    if not unquote(parts.path.lstrip("/")):
        return (f"{masked_url(url)} has no database name, so PostgreSQL would pick a default "
                "database.", f"add the database name after the last /, e.g. {URL_EXAMPLE}.")
    return None
