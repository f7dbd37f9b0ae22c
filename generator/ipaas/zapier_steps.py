"""The Zapier actions that build each flow step, as steps an engineer follows in the Zap editor.

Each flow step becomes one or more Zap steps, and each Zap step gets its Zapier
app, its action and its settings written out in English and Arabic. The HTTP
calls and consent values of a step are added by the build sheet template.

Storage by Zapier keeps a value until it is removed and has no expiry setting.
Zapier's help on StoreClient (the code interface to the same storage) gives its
limits: keys shorter than 32 characters, at most 500 keys per secret, and keys
left untouched for three months are removed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from generator.ipaas.flows import Step

STORAGE = "Storage by Zapier"
FILTER = "Filter by Zapier"
DELAY = "Delay by Zapier"
WEBHOOKS = "Webhooks by Zapier"
FORMATTER = "Formatter by Zapier"
PATHS = "Paths by Zapier"
LOOPING = "Looping by Zapier"
DAYS_AR = {"sun": "الأحد", "mon": "الاثنين", "tue": "الثلاثاء", "wed": "الأربعاء",
           "thu": "الخميس", "fri": "الجمعة", "sat": "السبت"}


# Purpose of each Zapier action and filter rule named in the settings. The names were
# not checked against a public source, so the sheet states that a name may differ and
# which action to pick instead. The first name found in a step's settings is used.
ACTION_PURPOSES: dict[str, tuple[str, str]] = {
    "Get Value": ("reads the value stored under one key", "تقرأ القيمة المحفوظة تحت مفتاح واحد"),
    "Set Value": ("stores a value under one key", "تحفظ قيمة تحت مفتاح واحد"),
    "Remove Value": ("deletes the value stored under one key",
                     "تحذف القيمة المحفوظة تحت مفتاح واحد"),
    "Delay Until": ("pauses the Zap until a given date and time",
                    "توقف الـ Zap حتى تاريخ ووقت محددين"),
    "Delay For": ("pauses the Zap for a set time", "توقف الـ Zap مدة محددة"),
    "Custom Request": ("sends an HTTP request with any method, headers and JSON body",
                       "ترسل طلب HTTP بأي طريقة وترويسات وجسم JSON"),
    "Truncate": ("cuts text to a maximum length", "تقص النص إلى طول أقصى"),
    "Does not exist": ("passes only when the value is empty or missing",
                       "لا تمرّر إلا عندما تكون القيمة فارغة أو غير موجودة"),
    "Exactly matches": ("passes only when the text equals the given text",
                        "لا تمرّر إلا عندما يطابق النص النص المعطى تمامًا"),
    "Exists": ("passes only when the value is present", "لا تمرّر إلا عندما تكون القيمة موجودة"),
    "Looping by Zapier": ("runs the next steps once per item of a list",
                          "تشغّل الخطوات التالية مرة لكل عنصر في قائمة"),
    "Formatter by Zapier": ("changes a value's format (text, numbers, dates)",
                            "تغيّر صيغة القيمة (نص أو أرقام أو تواريخ)"),
    "Paths by Zapier": ("runs a different branch of steps per rule",
                        "تشغّل فرعًا مختلفًا من الخطوات لكل قاعدة"),
    "Filter by Zapier": ("stops the Zap unless its conditions hold",
                         "توقف الـ Zap ما لم تتحقق شروطها"),
}


def _action(tool: str, en: str, ar: str) -> dict[str, str]:
    """Return one Zap step, with the action it must do in case its name differs."""
    name = next((name for name in ACTION_PURPOSES if name in en or name == tool), None)
    action = {"tool": tool, "settings_en": en, "settings_ar": ar}
    if name is not None:
        does_en, does_ar = ACTION_PURPOSES[name]
        action["unconfirmed_en"] = (f"The name {name} may differ in your Zapier account; "
                                    f"pick the {tool} action or rule that {does_en}.")
        action["unconfirmed_ar"] = (f"قد يختلف الاسم {name} في حسابك على Zapier، فاختر من "
                                    f"{tool} الإجراء أو القاعدة التي {does_ar}.")
    return action


def _dedupe(step: Step) -> list[dict[str, str]]:
    key, store = step.params["key"], step.params["store"]
    return [
        _action(STORAGE, f"Action Get Value, on the `{store}` secret. Key: `{key}` from the "
                "trigger, cut to 31 characters by a Formatter by Zapier step (Text, Truncate) "
                "if it is longer, because Storage keys must be shorter than 32 characters. That "
                "Formatter step costs one more task a run, which the budget does not count.",
                f"الإجراء Get Value على المفتاح السري `{store}`. المفتاح: `{key}` من المحفّز، "
                "ويُقصّ إلى 31 حرفًا بخطوة Formatter by Zapier (Text ثم Truncate) إن كان أطول، "
                "لأن مفاتيح التخزين يجب أن تقل عن 32 حرفًا. وتكلف خطوة Formatter هذه مهمة إضافية "
                "في كل تشغيل لا تحتسبها الميزانية."),
        _action(FILTER, "Only continue if the Value from the Get Value step does not exist, "
                "so an event already seen stops here.",
                "لا تستمر إلا إذا كانت القيمة Value الناتجة عن خطوة Get Value غير موجودة "
                "(Does not exist)، فيتوقف هنا كل حدث سبقت معالجته."),
        _action(STORAGE, f"Action Set Value, on the `{store}` secret. Key: the same key as "
                "the Get Value step. Value: `1`. The section on dedupe keys above says "
                "how the keys are cleared.",
                f"الإجراء Set Value على المفتاح السري `{store}`. المفتاح: مفتاح خطوة Get Value "
                "نفسه. القيمة: `1`. ويشرح قسم مفاتيح منع التكرار أعلاه كيف تُمسح المفاتيح."),
    ]


def _filter(step: Step) -> list[dict[str, str]]:
    fields = step.params.get("any_set")
    if fields:
        names_en = " or ".join(f"`{name}`" for name in fields)
        names_ar = " أو ".join(f"`{name}`" for name in fields)
        return [_action(FILTER, f"Only continue if {names_en} exists: one condition per "
                        "field with the Exists rule, joined by OR.",
                        f"لا تستمر إلا إذا وُجد {names_ar}: شرط لكل حقل بقاعدة Exists، "
                        "وتُربط الشروط بـ OR.")]
    rules = step.params.get("fulfilled_when")
    if rules:
        text = " OR ".join(" and ".join(f"`{name}` is " + " or ".join(
            f"`{value}`" for value in values if value is not None)
            for name, values in rule.items()) for rule in rules)
        return [_action(FILTER, f"Only continue if {text} (Text, Exactly matches, one "
                        "condition per value, joined by OR).",
                        f"لا تستمر إلا إذا كان {text} (Text ثم Exactly matches، شرط لكل "
                        "قيمة، وتُربط الشروط بـ OR).")]
    if step.params.get("absent"):
        store, key = step.params["store"], step.params["key"]
        return [
            _action(STORAGE, f"Action Get Value, on the `{store}` secret. Key: `{key}` from "
                    "the trigger.",
                    f"الإجراء Get Value على المفتاح السري `{store}`. المفتاح: `{key}` من المحفّز."),
            _action(FILTER, "Only continue if the Value from the Get Value step does not "
                    "exist, so each record starts the series once.",
                    "لا تستمر إلا إذا كانت القيمة Value الناتجة عن خطوة Get Value غير موجودة "
                    "(Does not exist)، فلا يبدأ كل سجل السلسلة إلا مرة واحدة."),
        ]
    store, key, equals = step.params["store"], step.params["key"], step.params["equals"]
    return [
        _action(STORAGE, f"Action Get Value, on the `{store}` secret. Key: `{key}`.",
                f"الإجراء Get Value على المفتاح السري `{store}`. المفتاح: `{key}`."),
        _action(FILTER, f"Only continue if the Value from the Get Value step exactly matches "
                f"the trigger's `{equals}`, so only the latest update goes on.",
                f"لا تستمر إلا إذا طابقت القيمة Value الناتجة عن خطوة Get Value قيمة `{equals}` "
                "في المحفّز تمامًا (Exactly matches)، فلا يمضي إلا آخر تحديث."),
    ]


def _store(step: Step) -> list[dict[str, str]]:
    store, key = step.params["store"], step.params["key"]
    if step.params.get("delete"):
        return [_action(STORAGE, f"Action Remove Value, on the `{store}` secret. Key: `{key}`.",
                        f"الإجراء Remove Value على المفتاح السري `{store}`. المفتاح: `{key}`.")]
    value = step.params.get("value", "1")
    if isinstance(value, dict):
        value = ", ".join(str(name) for name in value.values())
    return [_action(STORAGE, f"Action Set Value, on the `{store}` secret. Key: `{key}`. "
                    f"Value: `{value}`.",
                    f"الإجراء Set Value على المفتاح السري `{store}`. المفتاح: `{key}`. "
                    f"القيمة: `{value}`.")]


def _wait(step: Step) -> list[dict[str, str]]:
    params = step.params
    if params.get("mode") == "quiet_hours":
        windows = "; ".join(f"{window['start']}-{window['end']} ({', '.join(window['days'])})"
                            for window in params["windows"])
        windows_ar = "؛ ".join(f"{window['start']}-{window['end']} "
                               f"({'، '.join(DAYS_AR[day] for day in window['days'])})"
                               for window in params["windows"])
        return [_action(DELAY, f"Action Delay Until. Work out the end of the quiet window in a "
                        f"Formatter by Zapier step (Date / Time), time zone "
                        f"{params['timezone']}; windows: {windows}.",
                        "الإجراء Delay Until. احسب نهاية فترة الهدوء في خطوة Formatter by Zapier "
                        f"(Date / Time) بتوقيت {params['timezone']}، والفترات: {windows_ar}.")]
    text = params.get("text", {"en": f"{params['amount']} {params['unit']}",
                               "ar": f"{params['amount']} {params['unit']}"})
    return [_action(DELAY, f"Action Delay For: {text['en']}.",
                    f"الإجراء Delay For: {text['ar']}.")]


def _map(step: Step) -> list[dict[str, str]]:
    en = ("Fill the next step's fields from the field map below. Add this Formatter step only "
          "where a transform needs it (numbers, dates, phone formats).")
    ar = ("املأ حقول الخطوة التالية من جدول ربط الحقول أدناه، ولا تضف خطوة Formatter هذه إلا "
          "حيث يحتاج التحويل إليها (الأرقام والتواريخ وصيغ أرقام الجوال).")
    if step.params.get("iterate"):
        en += f" Run it once per item of `{step.params['iterate']}` with Looping by Zapier."
        ar += f" وشغّلها مرة لكل عنصر في `{step.params['iterate']}` بأداة Looping by Zapier."
    return [_action(FORMATTER, en, ar)]


def _http(step: Step) -> list[dict[str, str]]:
    en = "Action Custom Request with the method and URL below; the body holds the mapped fields."
    ar = "الإجراء Custom Request بالطريقة والعنوان أدناه، ويحمل جسم الطلب الحقول بعد ربطها."
    if step.params.get("iterate"):
        en += " Run it inside the loop of the mapping step."
        ar += " وشغّلها داخل حلقة خطوة الربط."
    return [_action(WEBHOOKS, en, ar)]


def _branch(step: Step) -> list[dict[str, str]]:
    keys = step.params.get("keys")
    if keys:
        store = step.params["store"]
        return [
            _action(STORAGE, f"Action Get Value, on the `{store}` secret, once per key: "
                    + ", then ".join(f"`{key}`" for key in keys) + ".",
                    f"الإجراء Get Value على المفتاح السري `{store}` مرة لكل مفتاح: "
                    + " ثم ".join(f"`{key}`" for key in keys) + "."),
            _action(PATHS, "One path per route below: the first runs when either Value exists, "
                    "the second when neither does.",
                    "مسار لكل فرع أدناه: يعمل الأول إذا وُجدت أي من القيمتين، ويعمل الثاني إذا "
                    "لم توجد أي منهما."),
        ]
    return [_action(PATHS, "One path per route below, named as the route; its rule is the "
                    "route's condition.",
                    "مسار لكل فرع أدناه يحمل اسمه، وقاعدته هي شرط ذلك الفرع.")]


def _gate(step: Step) -> list[dict[str, str]]:
    return [_action(FILTER, "Only continue if the consent field below has a granted value "
                    "(Text, Exactly matches; one condition per value, joined by OR).",
                    "لا تستمر إلا إذا كانت قيمة حقل الموافقة أدناه من قيم الموافقة "
                    "(Text ثم Exactly matches، شرط لكل قيمة، وتُربط الشروط بـ OR).")]


def _lookup(step: Step) -> list[dict[str, str]]:
    actions = []
    store = step.params.get("cursor_store")
    if store:
        key = step.params["cursor_key"]
        actions.append(_action(STORAGE, f"Action Get Value, on the `{store}` secret. Key: "
                               f"`{key}`: the cursor the search starts from.",
                               f"الإجراء Get Value على المفتاح السري `{store}`. المفتاح: "
                               f"`{key}`، وهو المؤشر الذي يبدأ منه البحث."))
    en = "Action Custom Request with the method and URL below."
    ar = "الإجراء Custom Request بالطريقة والعنوان أدناه."
    if step.params.get("iterate"):
        en += " Run the next steps once per record found, with Looping by Zapier."
        ar += " ثم شغّل الخطوات التالية مرة لكل سجل يُعثر عليه بأداة Looping by Zapier."
    actions.append(_action(WEBHOOKS, en, ar))
    return actions


_BUILDERS: dict[str, Callable[[Step], list[dict[str, str]]]] = {
    "dedupe": _dedupe, "filter": _filter, "store": _store, "wait": _wait, "map": _map,
    "lookup": _lookup, "upsert": _http, "associate": _http, "discount": _http, "send": _http,
    "alert": _http, "branch": _branch, "consent_gate": _gate,
}


def zapier_actions(step: Step) -> list[dict[str, Any]]:
    """Return the Zap steps that build ``step``: app and settings, in English and Arabic."""
    return _BUILDERS[step.kind](step)

