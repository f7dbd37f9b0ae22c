"""One answer combination per decision rule, shared by the decision and bake tests.

Each case names the rule it exists for and the path and CRM that must follow.
"""

from __future__ import annotations

from typing import Any, NamedTuple


class RuleCase(NamedTuple):
    rule: str
    answers: dict[str, Any]
    path: str
    crm: str


BASE: dict[str, Any] = {
    "client_name": "Rule Case Store",
    "platform": "shopify",
    "monthly_orders": 500,
    "store_count": 1,
    "growth": "steady",
    "crm": "hubspot",
    "support_channels": ["email"],
    "support_agents": 2,
    "consent_channels": ["email"],
    "start_date": "2027-01-10",
}


def case(rule: str, expected_path: str, expected_crm: str, **changes: Any) -> RuleCase:
    answers = {**BASE, "project_slug": f"case-{rule}", **changes}
    return RuleCase(rule, answers, expected_path, expected_crm)


RULE_CASES: list[RuleCase] = [
    case("crm-undecided-marketing", "connector", "hubspot", crm="undecided",
         team_focus="marketing"),
    case("crm-undecided-sales-support", "connector", "zoho", crm="undecided",
         team_focus="sales_support"),
    case("headless-api", "api", "hubspot", platform="headless"),
    case("custom-platform-api", "api", "zoho", platform="custom", crm="zoho"),
    case("deep-erp-api", "api", "hubspot", erp_bi=["odoo"], deep_erp_link=True),
    case("custom-crm-api", "api", "custom", crm="custom"),
    case("high-volume-api", "api", "hubspot", monthly_orders=25000),
    case("woo-small-connector", "connector", "zoho", platform="woocommerce",
         monthly_orders=150, crm="zoho"),
    case("woo-growing-ipaas", "ipaas", "hubspot", platform="woocommerce", monthly_orders=300),
    case("woo-fast-growth-ipaas", "ipaas", "hubspot", platform="woocommerce",
         monthly_orders=100, growth="fast"),
    case("shopify-scale-ipaas", "ipaas", "hubspot", store_count=3),
    case("shopify-single-steady-connector", "connector", "hubspot"),
    case("path-override", "api", "hubspot", path="api"),
    case("support-module", "connector", "zoho", crm="zoho", support_channels=["whatsapp"],
         support_agents=25),
    case("erp-bi-module", "connector", "hubspot", erp_bi=["power_bi"], deep_erp_link=False),
    case("events-module", "ipaas", "hubspot", growth="fast"),
    case("woo-connector-daily-contacts", "connector", "hubspot", platform="woocommerce",
         monthly_orders=80),
    case("large-catalogue-top-skus", "connector", "hubspot", sku_count=420),
    case("hubspot-events-enterprise", "ipaas", "hubspot", store_count=2),
    case("hubspot-cross-border", "connector", "hubspot"),
    case("zoho-saudi-data-centre", "connector", "zoho", crm="zoho"),
    case("whatsapp-templates", "connector", "hubspot", consent_channels=["email", "whatsapp"]),
    case("ipaas-later-api", "ipaas", "hubspot", growth="fast"),
]
