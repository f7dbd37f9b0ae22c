"""Zoho's data centres: the accounts server that issues tokens for each one.

From Zoho's multi-DC OAuth page (zoho.com/accounts/protocol/oauth/multi-dc.html).
``rabt crm`` and the generated service's Zoho client both read this table. The token
response names the API domain (``api_domain``), so only the accounts server is kept.

NOTE: the UK entry comes from a secondary source.
"""

from __future__ import annotations

ZOHO_ACCOUNTS_BY_DC = {
    "com": "https://accounts.zoho.com",
    "eu": "https://accounts.zoho.eu",
    "in": "https://accounts.zoho.in",
    "com.au": "https://accounts.zoho.com.au",
    "jp": "https://accounts.zoho.jp",
    "com.cn": "https://accounts.zoho.com.cn",
    "ca": "https://accounts.zohocloud.ca",
    "sa": "https://accounts.zoho.sa",
    "uk": "https://accounts.zoho.uk",
}
