"""Settings of the Zoho CRM stand-in: data centre, edition limits, token rules and clock.

Figures come from Zoho's own pages. The API limits page gives credits per rolling
24 hours and concurrency per edition (the same table in API v4 to v8). The Accounts
OAuth pages say access tokens live one hour and a refresh token keeps at most 30 live
access tokens. The v7/v8 Create Custom Fields page allows at most 5 fields per call,
2 unique fields per module and a number of custom fields per module by edition. Every
figure is a setting, because Zoho changes them between editions and versions.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

__all__ = [
    "ACCESS_TOKEN_SECONDS",
    "CREDIT_WINDOW_SECONDS",
    "EDITIONS",
    "HEAVY_CONCURRENCY_LIMIT",
    "MAX_FIELDS_PER_CREATE_CALL",
    "MAX_RECORDS_PER_PAGE",
    "MAX_RECORDS_PER_WRITE",
    "MAX_UNIQUE_FIELDS_PER_MODULE",
    "Edition",
    "ZohoStandinConfig",
]

ACCESS_TOKEN_SECONDS = 3600
MAX_ACCESS_TOKENS_PER_REFRESH_TOKEN = 30
CREDIT_WINDOW_SECONDS = 24 * 60 * 60
MAX_RECORDS_PER_WRITE = 100
MAX_RECORDS_PER_PAGE = 200
RECORDS_PER_CREDIT = 10
MAX_FIELDS_PER_CREATE_CALL = 5
MAX_UNIQUE_FIELDS_PER_MODULE = 2
# NOTE: the sub-concurrency limit for heavy calls (writes of more than 10 records,
# search) comes from a secondary summary of Zoho's limits page.
HEAVY_CONCURRENCY_LIMIT = 10
HEAVY_WRITE_RECORDS = 10

# Zoho's data centres: the suffix of accounts.zoho.<dc> and www.zohoapis.<dc>.
DATA_CENTRES = ("com", "eu", "in", "com.au", "jp", "com.cn", "ca", "sa", "uk")


@dataclass(frozen=True)
class Edition:
    """API limits of one Zoho CRM edition.

    Attributes:
        base_credits: Credits per rolling 24 hours before the per-user part.
        credits_per_user: Credits added per user licence.
        max_credits: Cap on the daily credits, or None for no cap.
        concurrency: Calls one app may have in flight for one org at a time.
        max_custom_fields: Custom fields allowed per module.
    """

    base_credits: int
    credits_per_user: int
    max_credits: int | None
    concurrency: int
    max_custom_fields: int

    def daily_credits(self, user_licences: int) -> int:
        """Return the credits per rolling 24 hours for ``user_licences`` users."""
        credits = self.base_credits + self.credits_per_user * user_licences
        if self.max_credits is not None:
            credits = min(credits, self.max_credits)
        return credits


# NOTE: the custom-field count for the Free edition is not on the Create Custom
# Fields page; 10 (the Standard figure) is an assumption.
EDITIONS: Mapping[str, Edition] = {
    "free": Edition(5_000, 0, 5_000, 5, 10),
    "standard": Edition(50_000, 250, 100_000, 10, 10),
    "professional": Edition(50_000, 500, 3_000_000, 15, 155),
    "enterprise": Edition(50_000, 1_000, 5_000_000, 20, 300),
    "ultimate": Edition(50_000, 2_000, None, 25, 500),
}


@dataclass(frozen=True)
class ZohoStandinConfig:
    """Settings of one stand-in instance.

    Attributes:
        data_centre: The data centre this stand-in plays, such as ``sa`` or ``com``.
        api_domain: The ``api_domain`` returned with tokens; None returns the base URL
            the client called, so the stand-in works on any port.
        clients: Accepted client ids mapped to their secrets; None accepts any
            non-empty pair.
        refresh_tokens: Refresh tokens mapped to the data centre that issued them;
            None accepts any non-empty refresh token as issued here.
        wrong_data_centre_error: The ``error`` value for a refresh token issued by
            another data centre.
        static_access_tokens: Access tokens that never expire, for tests that skip
            the token endpoint.
        scopes: The scopes granted to every access token.
        access_token_seconds: Lifetime of an access token.
        edition: A key of ``EDITIONS``.
        user_licences: User licences, which raise the daily credits.
        credits_per_day: Overrides the edition's daily credits when set.
        concurrency_limit: Overrides the edition's concurrency limit when set.
        heavy_concurrency_limit: Limit on heavy calls in flight at once.
        max_custom_fields: Overrides the edition's custom fields per module when set.
        pipelines_enabled: Whether Deals pipelines are switched on in the org.
        allow_standard_field_updates: Whether PATCH may change system-defined fields.
        picklist_match: Which option value a record write must match:
            ``actual_value``, ``display_value`` or ``either``.
        reject_unknown_fields: Reject field names the module lacks instead of
            dropping them.
        search_index_delay_seconds: Seconds before a written record shows in search.
        latency_seconds: Delay added to every CRM call, to make calls overlap.
        credit_headers: Whether responses carry the credit headers below.
        credits_remaining_header: Header with the credits left in the window.
        utc_offset_hours: Offset of the org's time zone in record timestamps.
        org_id: The org's id, as ``GET /crm/v8/org`` returns it.
        clock: Returns the time in seconds since the epoch; tests inject their own.
    """

    data_centre: str = "sa"
    api_domain: str | None = None
    clients: Mapping[str, str] | None = None
    refresh_tokens: Mapping[str, str] | None = None
    # NOTE: Zoho returns invalid_client for a client id unknown to a data centre, as
    # client issue reports show. A refresh token from another data centre may also
    # come back as invalid_code.
    wrong_data_centre_error: str = "invalid_client"
    static_access_tokens: frozenset[str] = frozenset()
    scopes: tuple[str, ...] = ("ZohoCRM.modules.ALL", "ZohoCRM.settings.ALL", "ZohoCRM.org.READ")
    access_token_seconds: int = ACCESS_TOKEN_SECONDS
    edition: str = "enterprise"
    user_licences: int = 10
    credits_per_day: int | None = None
    concurrency_limit: int | None = None
    heavy_concurrency_limit: int = HEAVY_CONCURRENCY_LIMIT
    max_custom_fields: int | None = None
    pipelines_enabled: bool = True
    # NOTE: Zoho's v6 docs say system-defined fields cannot be updated; v8 names
    # only their labels. Values of standard picklists such as Stage stay a manual
    # step by default.
    allow_standard_field_updates: bool = False
    # NOTE: whether record writes must use a picklist's actual_value or its
    # display_value was not confirmed; "either" accepts both.
    picklist_match: str = "either"
    # NOTE: Zoho is believed to ignore unknown field names in record writes.
    reject_unknown_fields: bool = False
    search_index_delay_seconds: float = 0.0
    latency_seconds: float = 0.0
    # NOTE: the header name comes from a secondary summary of the v8 docs.
    credit_headers: bool = True
    credits_remaining_header: str = "X-API-CREDITS-REMAINING"
    utc_offset_hours: int = 3
    org_id: str = "4000000000001"
    clock: Callable[[], float] = field(default=time.time)

    def __post_init__(self) -> None:
        problems = []
        if self.edition not in EDITIONS:
            problems.append(f"edition {self.edition!r} is not one of {', '.join(EDITIONS)}")
        if self.picklist_match not in ("actual_value", "display_value", "either"):
            problems.append(f"picklist_match {self.picklist_match!r} is not actual_value, "
                            "display_value or either")
        if self.access_token_seconds <= 0:
            problems.append("access_token_seconds must be positive")
        if problems:
            raise ValueError("invalid Zoho stand-in settings: " + "; ".join(problems))

    @property
    def edition_limits(self) -> Edition:
        """The limits of the configured edition."""
        return EDITIONS[self.edition]

    def daily_credits(self) -> int:
        """Return the credits allowed per rolling 24 hours."""
        if self.credits_per_day is not None:
            return self.credits_per_day
        return self.edition_limits.daily_credits(self.user_licences)

    def concurrency(self) -> int:
        """Return how many calls one app may have in flight at once."""
        if self.concurrency_limit is not None:
            return self.concurrency_limit
        return self.edition_limits.concurrency

    def custom_field_limit(self) -> int:
        """Return how many custom fields a module may have."""
        if self.max_custom_fields is not None:
            return self.max_custom_fields
        return self.edition_limits.max_custom_fields
