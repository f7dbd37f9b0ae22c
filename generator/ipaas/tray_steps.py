"""The Tray steps that build each flow step: connector, operation and field mapping, in words.

Each flow step becomes one or more Tray steps, written out in English and Arabic.
The HTTP calls, consent values and the field map are added by the build sheet
template. Tray publishes no workflow format, and the connector and operation names
below were not checked against Tray's documentation, so each step also states what
its operation must do, for when a name differs in the client's Tray workspace.
"""

from __future__ import annotations

from typing import Any

from generator.arabic_counts import arabic_count
from generator.ipaas.flows import Step, wait_text_ar
from generator.ipaas.make_zoho_items import PRODUCT_ID, SALES_ORDER_STORE
from generator.ipaas.sheet_steps import (
    consent_read,
    database_step,
    products_body,
    sales_order_body,
    value_text,
    writers_by_kind,
    zoho_line_step,
)
from generator.ipaas.webhook_signature import signature_check

STORAGE = "Data Storage"
CONDITION = "Boolean Condition"
DELAY = "Delay"
SCRIPT = "Script"
HTTP = "HTTP Client"
LOOP = "Loop Collection"
BRANCH = "Branch"
POSTGRES = "PostgreSQL"
REPLY = "Trigger Event Reply"
# Purpose of each connector's operation, for the note that its name may differ.
PURPOSES: dict[str, tuple[str, str]] = {
    STORAGE: ("reads, writes or deletes a value under a key, kept between runs",
              "تقرأ قيمة تحت مفتاح أو تكتبها أو تحذفها، وتبقى القيمة من تشغيل إلى آخر"),
    CONDITION: ("splits the run into a true and a false path by a comparison",
                "تقسم التشغيل إلى فرع true وفرع false بحسب مقارنة"),
    DELAY: ("pauses the run for a set time", "توقف التشغيل مدة محددة"),
    SCRIPT: ("runs JavaScript on the step's input and returns an object",
             "تشغّل JavaScript على مدخلات الخطوة وتعيد كائنًا"),
    HTTP: ("sends an HTTP request with a method, URL, headers and JSON body",
           "ترسل طلب HTTP بطريقة وعنوان وترويسات وجسم JSON"),
    LOOP: ("runs the steps inside it once per item of a list",
           "تشغّل الخطوات التي بداخلها مرة لكل عنصر في قائمة"),
    BRANCH: ("runs one of several paths by a value", "تشغّل مسارًا من عدة مسارات بحسب قيمة"),
    POSTGRES: ("runs a SQL statement with parameters on the database and returns its rows",
               "تشغّل عبارة SQL بمعاملات على قاعدة البيانات وتعيد صفوفها"),
    REPLY: ("sends the HTTP status and body that the webhook trigger answers the sender with",
            "ترسل رمز حالة HTTP والجسم اللذين يرد بهما محفّز Webhook على المرسل"),
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
                "فرع true، وينهي فرع false التشغيل لأن الحدث عولج من قبل."),
        _action(STORAGE, f"Operation Set Value, scope Account, same key. Value: the current "
                f"time. Delete keys older than {days} days in a daily workflow.",
                "العملية Set Value بالنطاق Account وبالمفتاح نفسه. القيمة: الوقت الحالي. واحذف "
                f"المفاتيح الأقدم من {arabic_count(days, 'day')} في تدفق يومي."),
    ]


def _guarded_paths(later: Step) -> tuple[str, str]:
    """Return where the steps go when a condition guards only part of the workflow."""
    return (f'Put the steps of this part on the true path and the steps from "{later.title.en}" '
            "on after the condition, outside both paths, so a run whose condition fails still "
            "reaches them; the false path stays empty.",
            "ضع خطوات هذا الجزء في فرع true، وضع الخطوات ابتداءً من "
            f"«{later.title.ar}» بعد الشرط خارج الفرعين، ليصل إليها التشغيل الذي لم يتحقق "
            "شرطه أيضًا، ويبقى فرع false فارغًا.")


def _filter(step: Step, later: Step | None = None) -> list[dict[str, str]]:
    params = step.params
    if params.get("any_set"):
        names = " OR ".join(f"`{name}` Is not empty" for name in params["any_set"])
        if later is not None:
            where_en, where_ar = _guarded_paths(later)
            return [_action(CONDITION, f"Conditions: {names}. {where_en}",
                            f"الشروط: {names}. {where_ar}")]
        return [_action(CONDITION, f"Conditions: {names}. Later steps go on the true path; "
                        "the false path ends the run.",
                        f"الشروط: {names}. تُوضع الخطوات التالية في فرع true، وينهي فرع "
                        "false التشغيل.")]
    if params.get("fulfilled_when"):
        text = " OR ".join(" AND ".join(
            f"`{name}` Equal to " + " or ".join(f"`{value}`" for value in values
                                                if value is not None)
            for name, values in rule.items()) for rule in params["fulfilled_when"])
        return [_action(CONDITION, f"Conditions, compared in lower case: {text}. Later steps "
                        "go on the true path; the false path ends the run.",
                        f"الشروط، وتُقارن بأحرف صغيرة: {text}. تُوضع الخطوات التالية في فرع "
                        "true، وينهي فرع false التشغيل.")]
    store, key = str(params["store"]), str(params["key"])
    if params.get("absent"):
        return [_get(store, key),
                _action(CONDITION, "Value 1: the Get Value step's value; operator: Is null. "
                        "Later steps go on the true path, so each record starts once.",
                        "القيمة الأولى: قيمة خطوة Get Value، والمعامل: Is null. تُوضع الخطوات "
                        "التالية في فرع true، فلا يبدأ كل سجل إلا مرة واحدة.")]
    return [_get(store, key),
            _action(CONDITION, f"Value 1: the Get Value step's value; operator: Equal to; "
                    f"value 2: `{params['equals']}` from the trigger. Later steps go on the "
                    "true path, so only the latest update goes on.",
                    f"القيمة الأولى: قيمة خطوة Get Value، والمعامل: Equal to، والقيمة الثانية: "
                    f"`{params['equals']}` من المحفّز. تُوضع الخطوات التالية في فرع true، "
                    "فلا يمضي إلا آخر تحديث.")]


def _store(step: Step) -> list[dict[str, str]]:
    store, key = str(step.params["store"]), str(step.params["key"])
    if step.params.get("delete"):
        return [_action(STORAGE, f"Operation Delete Value, scope Account. Key: `{store}:` "
                        f"followed by `{key}`.",
                        f"العملية Delete Value بالنطاق Account. المفتاح: `{store}:` متبوعًا "
                        f"بقيمة `{key}`.")]
    value = value_text(step.params.get("value") or "the current time")
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
    text = params.get("text") or {"en": f"{params['amount']} {params['unit']}"}
    # After مدة the length is in the genitive: مدة ساعتين.
    return [_action(DELAY, f"Delay for {text['en']}. A delay longer than the connector "
                    "allows is built as a scheduled workflow that reads the due records.",
                    f"التأخير مدة {wait_text_ar(params)}. وإذا تجاوز التأخير ما يسمح به "
                    "الموصل فابنِه تدفقًا مجدولًا يقرأ السجلات المستحقة.")]


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


def _database(step: Step) -> list[dict[str, str]]:
    """Return the PostgreSQL step that runs a step's SQL statement on the client's database."""
    actions = []
    if step.params.get("cursor_store"):
        actions.append(_get(str(step.params["cursor_store"]), str(step.params["cursor_key"])))
    actions.append(_action(
        POSTGRES, "Operation Execute SQL query, authentication from Tray's store: paste the "
        "SQL statement this row names, listed under the table, and fill each `$n` from the "
        "Script step's object as listed with it.",
        "العملية Execute SQL query، والمصادقة من مخزن Tray: الصق عبارة SQL التي يسمّيها هذا "
        "الصف، وهي مدرجة تحت الجدول، واملأ كل `$n` من كائن خطوة Script كما هو مذكور معها."))
    if step.kind == "lookup" and step.params.get("iterate"):
        actions.append(_action(LOOP, "Operation Loop List over the rows the query returns; "
                               "the next steps go inside the loop.",
                               "العملية Loop List على الصفوف التي يعيدها الاستعلام، وتُوضع "
                               "الخطوات التالية داخل الحلقة."))
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
                        "القيمة الأولى: نتيجة Get Value، والمعامل: Is not null. فرع true هو "
                        "المسار الأول أدناه، وفرع false هو الثاني.")]
    return [_action(BRANCH, "One branch per route below, named as the route; its value is "
                    "the route's condition.",
                    "فرع لكل مسار أدناه يحمل اسمه، وقيمته شرط ذلك المسار.")]


def _gate(step: Step, crm: str = "") -> list[dict[str, str]]:
    read = consent_read(step, crm)
    if crm == "custom":
        first = _action(POSTGRES, f"Operation Execute SQL query: read {read['en']}. Do not use "
                        "the store webhook's consent field: it dates from the trigger.",
                        f"العملية Execute SQL query: اقرأ {read['ar']}. لا تستخدم حقل الموافقة "
                        "في Webhook المتجر، فقيمته من وقت بدء سير العمل.")
    else:
        first = _action(HTTP, "Operation GET, to read the contact's current consent in the "
                        f"CRM: {read['en']}. Do not use the store webhook's consent field: it "
                        "dates from the trigger, and a contact found by a CRM search has none.",
                        "العملية GET لقراءة الموافقة الحالية لجهة الاتصال في CRM: "
                        f"{read['ar']}. لا تستخدم حقل الموافقة في Webhook المتجر، فقيمته من وقت "
                        "بدء سير العمل، وجهة الاتصال التي يعيدها بحث CRM لا تحمله.")
    return [first, _action(
        CONDITION, "Value 1: the consent field below, from that read, in lower case; "
        "operator: Equal to one of the granted values. Put only the steps up to this step's "
        "send on the true path, and the later steps after the condition, so a contact "
        "without consent still reaches them.",
        "القيمة الأولى: حقل الموافقة أدناه من تلك القراءة بأحرف صغيرة، والمعامل: Equal to "
        "إحدى قيم الموافقة. ضع في فرع true الخطوات حتى خطوة الإرسال فقط، وضع الخطوات "
        "اللاحقة بعد الشرط، لتصل إليها جهة الاتصال التي لم توافق أيضًا.")]


def _zoho_lines_map(step: Step, later: Step | None) -> list[dict[str, str]]:
    """Return the sales-order check and the Script step that builds the products body."""
    key = next((row.target for row in step.fields if row.name == PRODUCT_ID), "Product_Code")
    products_en, products_ar = products_body(key, str(step.params["iterate"]))
    if later is not None:
        where_en, where_ar = _guarded_paths(later)
    else:
        where_en = "Put the later steps on the true path; the false path ends the run."
        where_ar = "ضع الخطوات التالية في فرع true، وينهي فرع false التشغيل."
    return [
        _action(STORAGE, f"Operation Get Value, scope Account. Key: `{SALES_ORDER_STORE}:"
                "sales-order:` followed by the order's `id` from the trigger.",
                f"العملية Get Value بالنطاق Account. المفتاح: `{SALES_ORDER_STORE}:"
                "sales-order:` متبوعًا بقيمة `id` للطلب من المحفّز."),
        _action(CONDITION, "Value 1: the Get Value step's value; operator: Is null, so each "
                f"store order gets one sales order. {where_en}",
                "القيمة الأولى: قيمة خطوة Get Value، والمعامل: Is null، فلا يحصل كل طلب في "
                f"المتجر إلا على أمر بيع واحد. {where_ar}"),
        _action(SCRIPT, f"Input: the trigger body. Return `products`: {products_en}",
                f"المدخل: جسم المحفّز. وأعد `products`: {products_ar}"),
    ]


def _zoho_lines_write() -> list[dict[str, str]]:
    """Return the products request, the sales-order body, its request and the stored id."""
    order_en, order_ar = sales_order_body()
    return [
        _action(HTTP, "Operation POST to `{api_domain}/crm/v8/Products/upsert`, authentication "
                "from Tray's store. Body: the `products` text of the Script step (up to 100 "
                "products per call). Zoho answers with one `data[].details.id` per product, in "
                "the order sent.",
                "العملية POST إلى `{api_domain}/crm/v8/Products/upsert`، والمصادقة من مخزن "
                "Tray. جسم الطلب: نص `products` من خطوة Script (حتى 100 منتج في الاستدعاء). ويرد "
                "Zoho بقيمة `data[].details.id` لكل منتج بترتيب الإرسال."),
        _action(SCRIPT, "Input: the trigger body, the first Script step's `products`, the "
                "response of the products request, the deal's `data[0].details.id` from the "
                f"deal request and the mapped deal name. Return `order`: {order_en}",
                "المدخل: جسم المحفّز، و`products` من خطوة Script الأولى، ورد طلب المنتجات، "
                "وقيمة `data[0].details.id` للصفقة من طلب الصفقة، واسم الصفقة بعد الربط. وأعد "
                f"`order`: {order_ar}"),
        _action(HTTP, "Operation POST to `{api_domain}/crm/v8/Sales_Orders`, authentication "
                "from Tray's store. Body: the `order` text of the second Script step. It "
                "creates one sales order for the store order, with every line in its "
                "Product_Details subform.",
                "العملية POST إلى `{api_domain}/crm/v8/Sales_Orders`، والمصادقة من مخزن Tray. "
                "جسم الطلب: نص `order` من خطوة Script الثانية. وينشئ أمر بيع واحدًا لطلب "
                "المتجر، فيه كل البنود في الجدول الفرعي Product_Details."),
        _action(STORAGE, "Operation Set Value, scope Account, the same key as the Get Value "
                "step. Value: the sales order's `data[0].details.id` from the response.",
                "العملية Set Value بالنطاق Account وبمفتاح خطوة Get Value نفسه. القيمة: "
                "`data[0].details.id` لأمر البيع من الرد."),
    ]


def _zoho_line_actions(step: Step, later: Step | None) -> list[dict[str, str]]:
    if step.kind == "map":
        return _zoho_lines_map(step, later)
    if step.kind == "upsert":
        return _zoho_lines_write()
    # The links are the sales order's Deal_Name and each row's product id.
    return []


_BUILDERS = writers_by_kind(_http, dedupe=_dedupe, filter=_filter, store=_store, wait=_wait,
                           map=_map, lookup=_lookup, branch=_branch, consent_gate=_gate)


def tray_actions(step: Step, crm: str = "", later: Step | None = None) -> list[dict[str, Any]]:
    """Return the Tray steps that build ``step``: connector, operation and settings.

    ``later`` is the first step after the part that a filter or branch at ``step``
    guards. After a filter, the later steps go after the condition instead of on its
    true path. After a branch, they go inside each route that goes on.
    """
    if zoho_line_step(step, crm):
        return _zoho_line_actions(step, later)
    if database_step(step, crm):
        return _database(step)
    if step.kind == "filter":
        return _filter(step, later)
    if step.kind == "consent_gate":
        return _gate(step, crm)
    actions = _BUILDERS[step.kind](step)
    if step.kind == "branch" and later is not None:
        # Tray runs the steps after a condition or branch on every path, but these
        # belong only to the routes that go on.
        last = actions[-1]
        actions[-1] = {
            **last,
            "settings_en": last["settings_en"] + f' Put the steps from "{later.title.en}" on '
            "at the end of each path that does not stop the flow, not after the "
            f"{last['tool']} step, where every path would run them.",
            "settings_ar": last["settings_ar"] + f" وضع الخطوات ابتداءً من «{later.title.ar}» "
            f"في آخر كل مسار لا يوقف التدفق، لا بعد خطوة {last['tool']} حيث تشغّلها كل "
            "المسارات."}
    return actions


def _step_titled(action: dict[str, str], en: str, ar: str) -> dict[str, str]:
    return {**action, "step_en": en, "step_ar": ar}


def signature_actions(source: str, platform: str) -> list[dict[str, str]]:
    """Return the Tray steps that check a webhook's signature before any step reads its body.

    The Script step runs the shared check and returns ``valid``. A Boolean Condition
    sends a bad signature to a Trigger Event Reply with status 401, which ends the run,
    and a good one to a reply with status 200 before the flow's own steps. According to
    Tray's Trigger Event Reply page, a reply works only with a Webhook trigger set to the
    operation Await workflow and respond. A sender without a checked signature gets no
    steps.
    """
    check = signature_check(source, platform)
    if check is None:
        return []
    inputs_en = "; ".join(f"`{name}`: the trigger's `{header.lower()}` header"
                          for header, name in check.headers)
    inputs_ar = "، و".join(f"`{name}`: الترويسة `{header.lower()}` من المحفّز"
                          for header, name in check.headers)
    script = _action(
        SCRIPT, "Input variables: `raw_body`: the trigger's raw request body (see the "
        f"signature check above); {inputs_en}; `secret`: {check.secret.en}. Script: the "
        "signature check above. It returns `valid` and, for a valid request, the parsed "
        "`body`: map every later field from this step's `body`, not from the trigger.",
        "متغيرات الإدخال: `raw_body`: جسم الطلب الخام من المحفّز (انظر قسم التحقق من التوقيع "
        f"أعلاه)، و{inputs_ar}، و`secret`: {check.secret.ar}. السكربت: شيفرة التحقق من "
        "التوقيع أعلاه. وتعيد الخطوة `valid`، وللطلب الصحيح `body` بعد تحليله، فاربط كل الحقول "
        "اللاحقة من `body` في هذه الخطوة لا من المحفّز.")
    condition = _action(
        CONDITION, "Value 1: the Script step's `valid`; operator: Equal to; value 2: `true`. "
        "Put every later step on the true path. The false path holds only the next step, "
        "so a forged or altered request writes nothing.",
        "القيمة الأولى: `valid` من خطوة Script، والمعامل: Equal to، والقيمة الثانية: `true`. "
        "ضع كل الخطوات التالية في فرع true، ولا يحوي فرع false إلا الخطوة التالية، "
        "فلا يكتب الطلب المزوّر أو المعدّل شيئًا.")
    reject = _action(
        REPLY, "On the false path: status `401`, body `{\"error\": \"invalid signature\"}`. "
        "The run ends after it, and the store logs the failed delivery.",
        "في فرع false: رمز الحالة `401` والجسم `{\"error\": \"invalid signature\"}`. "
        "وينتهي التشغيل بعدها، ويسجّل المتجر التسليم الفاشل.")
    accept = _action(
        REPLY, "First step of the true path: status `200`, empty body, so the store gets "
        "its answer before the CRM writes. Unconfirmed: that the run goes on after this "
        "reply; check it in the first test run.",
        "أول خطوة في فرع true: رمز الحالة `200` وجسم فارغ، فيصل الرد إلى المتجر قبل "
        "الكتابة في CRM. غير مؤكد: أن التشغيل يستمر بعد هذا الرد، فتحقق من ذلك في أول تشغيل "
        "تجريبي.")
    return [
        _step_titled(script, "Check the signature and read the body",
                     "التحقق من التوقيع وقراءة الجسم"),
        _step_titled(condition, "Stop a request with a bad signature",
                     "إيقاف الطلب ذي التوقيع غير الصحيح"),
        _step_titled(reject, "Answer a bad signature with 401",
                     "الرد على التوقيع غير الصحيح بالرمز 401"),
        _step_titled(accept, "Answer a valid request with 200",
                     "الرد على الطلب الصحيح بالرمز 200"),
    ]
