"""The placeholders that Make blueprints carry in place of the client's own values.

The workflows guide lists the placeholders found in the generated blueprint text,
with their counts, so the list matches the files. A text that looks like a
placeholder but has no entry here fails the generation, so a new placeholder
cannot reach a blueprint without its row in the guide.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from generator.ipaas.make_http import AUTH_HEADERS, ERROR_HOOK_URL, PLACEHOLDERS
from generator.model import Bilingual

# Upper-case words joined by hyphens (HUBSPOT-PRIVATE-APP-TOKEN) and hosts under the
# reserved .example domain or named your-store. Make date formats such as
# YYYY-MM-DDTHH match the first form and are skipped (DATE_FORMAT_LETTERS).
PATTERN = re.compile(
    r"(?<![\w-])[A-Z][A-Z0-9]*(?:-[A-Z0-9]+)+(?![\w-])"
    r"|https://[a-z0-9.-]+\.example(?:/[A-Za-z0-9-]+)*"
    r"|(?<![\w.-])your-store\.[a-z.]+")
DATE_FORMAT_LETTERS = frozenset("YMDTHhms-")


@dataclass(frozen=True)
class Placeholder:
    """One placeholder: what it stands for, where its value is found, whether it is a secret."""

    value: str
    description: Bilingual
    location: Bilingual
    secret: bool = False


def _token(system: str) -> str:
    """Return the placeholder part of a system's Authorization header value."""
    return AUTH_HEADERS[system][1].split(" ")[-1]


KNOWN: tuple[Placeholder, ...] = (
    Placeholder(ERROR_HOOK_URL, Bilingual(
        "The webhook address of the error-alert scenario, where the scenarios post their "
        "failure reports.",
        "عنوان Webhook لسيناريو التنبيهات، وإليه ترسل السيناريوهات بلاغات الفشل."),
        Bilingual("Import `error-alert` first, add a webhook in its first module and copy the "
                  "address Make shows (`https://hook.<zone>.make.com/...`).",
                  "استورد `error-alert` أولًا، وأضف Webhook في وحدته الأولى، وانسخ العنوان الذي "
                  "يعرضه Make (`https://hook.<zone>.make.com/...`).")),
    Placeholder(PLACEHOLDERS["{order_sync_webhook_url}"], Bilingual(
        "The webhook address of the order-sync scenario, where the reconciliation sends each "
        "changed order again.",
        "عنوان Webhook لسيناريو الطلبات، وإليه تعيد المطابقة الدورية إرسال كل طلب تغيّر."),
        Bilingual("Import `order-sync`, add a webhook in its first module and copy its address.",
                  "استورد `order-sync`، وأضف Webhook في وحدته الأولى، وانسخ عنوانه.")),
    Placeholder(PLACEHOLDERS["{shop_domain}"], Bilingual(
        "The store's myshopify.com domain.", "نطاق المتجر على myshopify.com."),
        Bilingual("Shopify admin, Settings, Domains: the domain that ends in `.myshopify.com`.",
                  "لوحة إدارة Shopify، ثم `Settings` ثم `Domains`: النطاق الذي ينتهي بالمقطع "
                  "`.myshopify.com`.")),
    Placeholder(PLACEHOLDERS["{api_version}"], Bilingual(
        "The Shopify Admin API version, such as `2025-01`.",
        "إصدار Shopify Admin API، مثل `2025-01`."),
        Bilingual("The version the store's custom app uses; Shopify's API release notes list "
                  "the supported ones.",
                  "الإصدار الذي يستخدمه التطبيق المخصص للمتجر، وتسرد ملاحظات إصدارات API في "
                  "Shopify الإصدارات المدعومة.")),
    Placeholder(PLACEHOLDERS["{store_domain}"], Bilingual(
        "The WooCommerce store's domain.", "نطاق متجر WooCommerce."),
        Bilingual("WordPress admin, Settings, General: the Site Address, without `https://`.",
                  "لوحة WordPress، ثم `Settings` ثم `General`: عنوان الموقع `Site Address` من دون "
                  "`https://`.")),
    Placeholder(PLACEHOLDERS["{storefront_api_url}"], Bilingual(
        "The base address of the headless storefront's API.",
        "العنوان الأساسي لواجهة API في واجهة المتجر المنفصلة."),
        Bilingual("The storefront team's API documentation.",
                  "توثيق API لدى فريق واجهة المتجر.")),
    Placeholder(PLACEHOLDERS["{graph_api_version}"], Bilingual(
        "The Meta Graph API version of the WhatsApp Cloud API, such as `v21.0`.",
        "إصدار Meta Graph API الذي تستخدمه WhatsApp Cloud API، مثل `v21.0`."),
        Bilingual("Meta for Developers, the app's dashboard: the version the app calls.",
                  "لوحة التطبيق في `Meta for Developers`: الإصدار الذي يستدعيه التطبيق.")),
    Placeholder(PLACEHOLDERS["{phone_number_id}"], Bilingual(
        "The id of the WhatsApp Business phone number that sends the messages.",
        "معرّف رقم WhatsApp Business الذي تُرسل منه الرسائل."),
        Bilingual("Meta for Developers, the app's WhatsApp API Setup page: Phone number ID.",
                  "صفحة `API Setup` الخاصة بمنصة WhatsApp في تطبيق `Meta for Developers`: الحقل "
                  "`Phone number ID`.")),
    Placeholder(PLACEHOLDERS["{whatsapp_language}"], Bilingual(
        "The language code of the approved WhatsApp templates, such as `ar` or `en_US`. "
        "Optional: left as is, the scenarios send `ar`, the default of the n8n workflows' "
        "`RABT_WHATSAPP_LANGUAGE`.",
        "رمز لغة قوالب WhatsApp المعتمدة، مثل `ar` أو `en_US`. وهو اختياري: إن بقي كما هو "
        "أرسلت السيناريوهات `ar`، وهي القيمة الافتراضية للمتغير `RABT_WHATSAPP_LANGUAGE` في "
        "تدفقات n8n."),
        Bilingual("WhatsApp Manager, Message templates: the language of the approved templates.",
                  "`WhatsApp Manager`، ثم `Message templates`: لغة القوالب المعتمدة.")),
    Placeholder(PLACEHOLDERS["{sms_provider_url}"], Bilingual(
        "The send address of the SMS provider's API.", "عنوان الإرسال في API مزوّد الرسائل النصية."),
        Bilingual("The SMS provider's API documentation.", "توثيق API لدى مزوّد الرسائل النصية.")),
    Placeholder(PLACEHOLDERS["{alert_webhook_url}"], Bilingual(
        "The team's alert webhook (a chat channel's incoming webhook).",
        "Webhook التنبيهات لدى الفريق (Webhook وارد لقناة محادثة)."),
        Bilingual("The chat tool's settings for incoming webhooks.",
                  "إعدادات إشعارات Webhook الواردة في أداة المحادثة.")),
    Placeholder(_token("hubspot"), Bilingual(
        "The HubSpot private app's access token.", "رمز الوصول للتطبيق الخاص في HubSpot."),
        Bilingual("HubSpot, Settings, Integrations, Private Apps: the app's Auth tab.",
                  "HubSpot، ثم `Settings` ثم `Integrations` ثم `Private Apps`: تبويب `Auth` "
                  "في التطبيق."),
        secret=True),
    Placeholder(_token("zoho"), Bilingual(
        "A Zoho access token.", "رمز وصول Zoho."),
        Bilingual("Not needed when the data store `zoho_oauth` is set up: the scenarios fetch "
                  "and cache the token themselves.",
                  "لا حاجة إليه عند إعداد مخزن البيانات `zoho_oauth`، لأن السيناريوهات تطلب الرمز "
                  "وتحفظه بنفسها."), secret=True),
    Placeholder(_token("shopify"), Bilingual(
        "The Admin API access token of the store's custom app.",
        "رمز الوصول Admin API للتطبيق المخصص في المتجر."),
        Bilingual("Shopify admin, Settings, Apps and sales channels, Develop apps: the app's "
                  "API credentials.",
                  "لوحة إدارة Shopify، ثم `Settings` ثم `Apps and sales channels` ثم "
                  "`Develop apps`: بيانات `API credentials` للتطبيق."), secret=True),
    Placeholder(_token("woocommerce"), Bilingual(
        "The WooCommerce REST API key and secret, as Base64 of `key:secret`.",
        "مفتاح WooCommerce REST API وسرّه، بترميز Base64 للقيمة `key:secret`."),
        Bilingual("WooCommerce, Settings, Advanced, REST API: create a key with read and write "
                  "access, then Base64-encode `consumer key:consumer secret`.",
                  "WooCommerce، ثم `Settings` ثم `Advanced` ثم `REST API`: أنشئ مفتاحًا "
                  "بصلاحية القراءة والكتابة، ثم رمّز `consumer key:consumer secret` بترميز Base64."),
        secret=True),
    Placeholder(_token("whatsapp"), Bilingual(
        "The WhatsApp Cloud API access token.", "رمز الوصول إلى WhatsApp Cloud API."),
        Bilingual("Meta Business settings, System users: a permanent token with the "
                  "`whatsapp_business_messaging` permission.",
                  "إعدادات `Meta Business`، ثم `System users`: رمز دائم بصلاحية "
                  "`whatsapp_business_messaging`."), secret=True),
)


def unknown_placeholders(text: str) -> list[str]:
    """Return the texts in ``text`` that look like placeholders but have no entry in ``KNOWN``."""
    for placeholder in sorted(KNOWN, key=lambda item: len(item.value), reverse=True):
        text = text.replace(placeholder.value, " ")
    return sorted({match for match in PATTERN.findall(text)
                   if not set(match) <= DATE_FORMAT_LETTERS})


def placeholder_rows(texts: Mapping[str, str]) -> list[dict[str, Any]]:
    """Return one row per placeholder found in the blueprint ``texts`` (by file stem).

    Each row has the placeholder, what it stands for, where its value is found, its
    total count and the stems of the files that contain it.

    Raises:
        ValueError: a blueprint contains a placeholder-like text with no entry in ``KNOWN``.
    """
    unknown = sorted({found for text in texts.values() for found in unknown_placeholders(text)})
    if unknown:
        raise ValueError(f"placeholders without a guide entry in make_placeholders: {unknown}")
    rows = []
    for placeholder in KNOWN:
        # The look-arounds keep API-VERSION from counting inside GRAPH-API-VERSION.
        exact = re.compile(r"(?<![\w-])" + re.escape(placeholder.value) + r"(?![\w-])")
        counts = {stem: len(exact.findall(text)) for stem, text in texts.items()}
        files = [stem for stem, count in counts.items() if count]
        if not files:
            continue
        rows.append({"value": placeholder.value, "description_en": placeholder.description.en,
                     "description_ar": placeholder.description.ar,
                     "location_en": placeholder.location.en,
                     "location_ar": placeholder.location.ar, "secret": placeholder.secret,
                     "count": sum(counts.values()), "files": files})
    return rows
