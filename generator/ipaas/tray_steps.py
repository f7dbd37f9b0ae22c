"""The Tray steps that build each flow step: connector, operation and field mapping, in words.

Each flow step becomes one or more Tray steps, written out in English and Arabic.
The HTTP calls, consent values and the field map are added by the build sheet
template. Tray publishes no workflow format, and the connector and operation names
below were not checked against Tray's documentation, so each step also states what
its operation must do, for when a name differs in the client's Tray workspace.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from generator.arabic_counts import arabic_count
from generator.ipaas.flows import Step

STORAGE = "Data Storage"
CONDITION = "Boolean Condition"
DELAY = "Delay"
SCRIPT = "Script"
HTTP = "HTTP Client"
LOOP = "Loop Collection"
BRANCH = "Branch"
# Purpose of each connector's operation, for the note that its name may differ.
PURPOSES: dict[str, tuple[str, str]] = {
    STORAGE: ("reads, writes or deletes a value under a key, kept between runs",
              "تقرأ قيمة تحت مفتاح أو تكتبها أو تحذفها، وتبقى القيمة من تشغيل إلى آخر"),
    CONDITION: ("splits the run into a true and a false path by a comparison",
                "تقسم التشغيل إلى مسار صحيح ومسار خاطئ بحسب مقارنة"),
    DELAY: ("pauses the run for a set time", "توقف التشغيل مدة محددة"),
    SCRIPT: ("runs JavaScript on the step's input and returns an object",
             "تشغّل JavaScript على مدخلات الخطوة وتعيد كائنًا"),
    HTTP: ("sends an HTTP request with a method, URL, headers and JSON body",
           "ترسل طلب HTTP بطريقة وعنوان وترويسات وجسم JSON"),
    LOOP: ("runs the steps inside it once per item of a list",
           "تشغّل الخطوات التي بداخلها مرة لكل عنصر في قائمة"),
    BRANCH: ("runs one of several paths by a value", "تشغّل مسارًا من عدة مسارات بحسب قيمة"),
}


def _action(tool: str, en: str, ar: str) -> dict[str, str]:
    does_en, does_ar = PURPOSES[tool]
    return {"tool": tool, "settings_en": en, "settings_ar": ar,
            "unconfirmed_en": f"Unconfirmed name: use the {tool} operation that {does_en}.",
            "unconfirmed_ar": f"اسم غير مؤكد: استخدم من {tool} العملية التي {does_ar}."}


def _get(store: str, key: str) -> dict[str, str]:
    return _action(STORAGE, f"Operation Get Value, scope Account. Key: `{store}:` followed by "
                   f"`{key}` from the trigger.",
                   f"العملية Get Value بالنطاق Account. المفتاح: `{store}:` متبوعًا بقيمة `{key}` "
                   "من المحفّز.")


def _dedupe(step: Step) -> list[dict[str, str]]:
    key, store = str(step.params["key"]), str(step.params["store"])
    days = int(step.params.get("ttl_days", 7))
    return [
        _get(store, key),
        _action(CONDITION, "Value 1: the Get Value step's value; operator: Is null. Put every "
                "later step on the true path; the false path ends the run, because the event "
                "was processed before.",
                "القيمة الأولى: قيمة خطوة Get Value، والمعامل: Is null. ضع كل الخطوات التالية في "
                "المسار الصحيح، وينهي المسار الخاطئ التشغيل لأن الحدث عولج من قبل."),
        _action(STORAGE, f"Operation Set Value, scope Account, same key. Value: the current "
                f"time. Delete keys older than {days} days in a daily workflow.",
                "العملية Set Value بالنطاق Account وبالمفتاح نفسه. القيمة: الوقت الحالي. واحذف "
                f"المفاتيح الأقدم من {arabic_count(days, 'day')} في تدفق يومي."),
    ]


def _filter(step: Step) -> list[dict[str, str]]:
    params = step.params
    if params.get("any_set"):
        names = " OR ".join(f"`{name}` Is not empty" for name in params["any_set"])
        return [_action(CONDITION, f"Conditions: {names}. Later steps go on the true path; "
                        "the false path ends the run.",
                        f"الشروط: {names}. تُوضع الخطوات التالية في المسار الصحيح، وينهي المسار "
                        "الخاطئ التشغيل.")]
    if params.get("fulfilled_when"):
        text = " OR ".join(" AND ".join(
            f"`{name}` Equal to " + " or ".join(f"`{value}`" for value in values
                                                if value is not None)
            for name, values in rule.items()) for rule in params["fulfilled_when"])
        return [_action(CONDITION, f"Conditions, compared in lower case: {text}. Later steps "
                        "go on the true path; the false path ends the run.",
                        f"الشروط، وتُقارن بأحرف صغيرة: {text}. تُوضع الخطوات التالية في المسار "
                        "الصحيح، وينهي المسار الخاطئ التشغيل.")]
    store, key = str(params["store"]), str(params["key"])
    if params.get("absent"):
        return [_get(store, key),
                _action(CONDITION, "Value 1: the Get Value step's value; operator: Is null. "
                        "Later steps go on the true path, so each record starts once.",
                        "القيمة الأولى: قيمة خطوة Get Value، والمعامل: Is null. تُوضع الخطوات "
                        "التالية في المسار الصحيح، فلا يبدأ كل سجل إلا مرة واحدة.")]
    return [_get(store, key),
            _action(CONDITION, f"Value 1: the Get Value step's value; operator: Equal to; "
                    f"value 2: `{params['equals']}` from the trigger. Later steps go on the "
                    "true path, so only the latest update goes on.",
                    f"القيمة الأولى: قيمة خطوة Get Value، والمعامل: Equal to، والقيمة الثانية: "
                    f"`{params['equals']}` من المحفّز. تُوضع الخطوات التالية في المسار الصحيح، "
                    "فلا يمضي إلا آخر تحديث.")]


def _store(step: Step) -> list[dict[str, str]]:
    store, key = str(step.params["store"]), str(step.params["key"])
    if step.params.get("delete"):
        return [_action(STORAGE, f"Operation Delete Value, scope Account. Key: `{store}:` "
                        f"followed by `{key}`.",
                        f"العملية Delete Value بالنطاق Account. المفتاح: `{store}:` متبوعًا "
                        f"بقيمة `{key}`.")]
    value = step.params.get("value") or "the current time"
    if isinstance(value, dict):
        value = ", ".join(str(item) for item in value.values())
    value_ar = "الوقت الحالي" if value == "the current time" else f"`{value}`"
    value_en = value if value == "the current time" else f"`{value}`"
    return [_action(STORAGE, f"Operation Set Value, scope Account. Key: `{store}:` followed "
                    f"by `{key}`. Value: {value_en}.",
                    f"العملية Set Value بالنطاق Account. المفتاح: `{store}:` متبوعًا بقيمة "
                    f"`{key}`. القيمة: {value_ar}.")]


def _wait(step: Step) -> list[dict[str, str]]:
    params = step.params
    if params.get("mode") == "quiet_hours":
        return [
            _action(SCRIPT, f"Input: the current time. Return the end of the quiet window "
                    f"the time falls in ({params['timezone']}), or the current time outside "
                    "the windows; the windows are in the spec's playbooks.yaml.",
                    f"المدخل: الوقت الحالي. أعد نهاية فترة الهدوء التي يقع فيها الوقت "
                    f"(بتوقيت {params['timezone']})، أو الوقت الحالي خارجها، والفترات في "
                    "playbooks.yaml ضمن المواصفات."),
            _action(DELAY, "Delay until the time the Script step returned.",
                    "التأخير حتى الوقت الذي أعادته خطوة Script."),
        ]
    text = params.get("text") or {"en": f"{params['amount']} {params['unit']}",
                                  "ar": f"{params['amount']} {params['unit']}"}
    return [_action(DELAY, f"Delay for {text['en']}. A delay longer than the connector "
                    "allows is built as a scheduled workflow that reads the due records.",
                    f"التأخير مدة {text['ar']}. وإذا تجاوز التأخير ما يسمح به الموصل فابنِه "
                    "تدفقًا مجدولًا يقرأ السجلات المستحقة.")]


def _map(step: Step) -> list[dict[str, str]]:
    en = ("Input: the trigger body. Return one object with a key per target in the field map "
          "below, each computed by its transform.")
    ar = ("المدخل: جسم المحفّز. أعد كائنًا واحدًا فيه مفتاح لكل هدف في جدول ربط الحقول أدناه، "
          "ويُحسب كل منها بتحويله.")
    actions = []
    if step.params.get("iterate"):
        actions.append(_action(LOOP, f"Operation Loop List over `{step.params['iterate']}`; "
                               "the next steps go inside the loop.",
                               f"العملية Loop List على `{step.params['iterate']}`، وتُوضع "
                               "الخطوات التالية داخل الحلقة."))
    actions.append(_action(SCRIPT, en, ar))
    return actions


def _http(step: Step) -> list[dict[str, str]]:
    en = ("Operation by the method below, URL below, authentication from Tray's store. Body: "
          "the request shape below, each field filled from the Script step's object.")
    ar = ("العملية بحسب الطريقة أدناه والعنوان أدناه، والمصادقة من مخزن Tray. جسم الطلب: الشكل "
          "أدناه، ويُملأ كل حقل من كائن خطوة Script.")
    actions = [_action(HTTP, en, ar)]
    if step.kind == "lookup" and step.params.get("iterate"):
        actions.append(_action(LOOP, "Operation Loop List over the records the response "
                               "lists; the next steps go inside the loop.",
                               "العملية Loop List على السجلات التي يعيدها الرد، وتُوضع الخطوات "
                               "التالية داخل الحلقة."))
    return actions


def _lookup(step: Step) -> list[dict[str, str]]:
    actions = []
    if step.params.get("cursor_store"):
        actions.append(_get(str(step.params["cursor_store"]), str(step.params["cursor_key"])))
    return actions + _http(step)


def _branch(step: Step) -> list[dict[str, str]]:
    if step.params.get("keys"):
        store = str(step.params["store"])
        keys = " and ".join(f"`{key}`" for key in step.params["keys"])
        return [_get(store, keys),
                _action(CONDITION, "Value 1: the Get Value result; operator: Is not null. "
                        "The true path is the first route below, the false path the second.",
                        "القيمة الأولى: نتيجة Get Value، والمعامل: Is not null. المسار الصحيح هو "
                        "الفرع الأول أدناه، والخاطئ هو الثاني.")]
    return [_action(BRANCH, "One branch per route below, named as the route; its value is "
                    "the route's condition.",
                    "فرع لكل مسار أدناه يحمل اسمه، وقيمته شرط ذلك المسار.")]


def _gate(step: Step) -> list[dict[str, str]]:
    return [_action(CONDITION, "Value 1: the consent field below, in lower case; operator: "
                    "Equal to one of the granted values. Put only the steps up to this step's "
                    "send on the true path, and the later steps after the condition, so a "
                    "contact without consent still reaches them.",
                    "القيمة الأولى: حقل الموافقة أدناه بأحرف صغيرة، والمعامل: Equal to إحدى قيم "
                    "الموافقة. ضع في المسار الصحيح الخطوات حتى خطوة الإرسال فقط، وضع الخطوات "
                    "اللاحقة بعد الشرط، لتصل إليها جهة الاتصال التي لم توافق أيضًا.")]


_BUILDERS: dict[str, Callable[[Step], list[dict[str, str]]]] = {
    "dedupe": _dedupe, "filter": _filter, "store": _store, "wait": _wait, "map": _map,
    "lookup": _lookup, "upsert": _http, "associate": _http, "discount": _http, "send": _http,
    "alert": _http, "branch": _branch, "consent_gate": _gate,
}


def tray_actions(step: Step) -> list[dict[str, Any]]:
    """Return the Tray steps that build ``step``: connector, operation and settings."""
    return _BUILDERS[step.kind](step)
