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

from typing import Any

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
from generator.ipaas.webhook_signature import PARSE_ONLY_CODE, signature_check

STORAGE = "Storage by Zapier"
FILTER = "Filter by Zapier"
DELAY = "Delay by Zapier"
WEBHOOKS = "Webhooks by Zapier"
FORMATTER = "Formatter by Zapier"
PATHS = "Paths by Zapier"
LOOPING = "Looping by Zapier"
CODE = "Code by Zapier"
POSTGRES = "PostgreSQL"
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
                    "توقف Zap حتى تاريخ ووقت محددين"),
    "Delay For": ("pauses the Zap for a set time", "توقف Zap مدة محددة"),
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
                         "توقف Zap ما لم تتحقق شروطها"),
    "Run JavaScript": ("runs JavaScript on the step's Input Data and returns an object",
                       "تشغّل JavaScript على بيانات الإدخال في الخطوة وتعيد كائنًا"),
    "Find Row via Custom Query": ("runs a SQL statement you write, with values mapped into it",
                                  "تشغّل عبارة SQL تكتبها أنت وتُربط القيم فيها"),
}


def _action(tool: str, en: str, ar: str, name: str | None = None) -> dict[str, str]:
    """Return one Zap step, with the action it must do in case its name differs.

    ``name`` is the action or rule the note is about; without it, the first name of
    ``ACTION_PURPOSES`` found in the settings is used.
    """
    if name is None:
        name = next((name for name in ACTION_PURPOSES if name in en or name == tool), None)
    action = {"tool": tool, "settings_en": en, "settings_ar": ar}
    if name is not None:
        does_en, does_ar = ACTION_PURPOSES[name]
        action["unconfirmed_en"] = (f"The name {name} may differ in your Zapier account; "
                                    f"pick the {tool} action or rule that {does_en}.")
        action["unconfirmed_ar"] = (f"قد يختلف الاسم {name} في حسابك على Zapier، فاختر من "
                                    f"{tool} الإجراء أو القاعدة التي {does_ar}.")
    return action


def _paths_gate(rule_en: str, rule_ar: str, later: Step) -> dict[str, str]:
    """Return a Paths step that skips only the guarded steps when ``rule`` does not hold.

    A Filter would end the whole Zap. In Zapier's help article "Add branching logic to
    Zaps with Paths", Paths must be the final step of a Zap, and a path can take the
    Fallback rule, which runs it when no other path's rule holds. So both paths carry
    the later steps.
    """
    return _action(
        PATHS, f"Two paths, because a Filter would stop every later step of the Zap. Path A "
        f"runs when {rule_en}: build in it every later row of this flow. Path B takes the "
        f'Fallback rule: build in it only the rows from "{later.title.en}" on, so a run '
        "that fails the rule skips just the rows before them. Zapier adds no step after "
        "Paths outside its paths, which is why both paths carry the later rows.",
        f"مساران، لأن خطوة Filter توقف كل الخطوات اللاحقة في Zap. يعمل المسار A عندما "
        f"{rule_ar}: ابنِ فيه كل الصفوف التالية من هذا التدفق. ويأخذ المسار B القاعدة "
        f"Fallback: ابنِ فيه الصفوف ابتداءً من «{later.title.ar}» فقط، فلا يتخطى التشغيل "
        "الذي لا تتحقق فيه القاعدة إلا الصفوف التي قبلها. ولا يضيف Zapier أي خطوة بعد Paths "
        "خارج مساراتها، ولهذا يحمل المساران كلاهما الصفوف اللاحقة.",
        name=PATHS)


def shared_code_gate(gates: list[Step], later: Step) -> dict[str, str]:
    """Return the Paths step that creates a shared code only for a contact it can reach.

    ``gates`` are the consent gates of the sends that carry the code, and ``later`` is
    the first row after the code's creation. The code goes to a contact with an address
    on one of those channels: a code alone sends nothing, and each send reads the
    contact's current consent in the CRM first, as in the Make scenarios. A contact
    without such an address gets no code, but still reaches the later rows.
    """
    channels = [str(gate.params["channel"]) for gate in gates if gate.gate is not None]
    text = "; ".join(f"{channel}: the {'email' if channel == 'email' else 'phone'} is set"
                     for channel in channels)
    text_ar = "؛ ".join(f"{channel}: " + ("البريد الإلكتروني موجود" if channel == "email"
                                          else "رقم الجوال موجود") for channel in channels)
    return _paths_gate(
        "the contact has an address on at least one channel whose send carries the code "
        f"({text}; Exists, one rule per channel, joined by OR). Each send still reads the "
        "contact's consent in the CRM before it goes out",
        "يكون لجهة الاتصال عنوان على قناة واحدة على الأقل من القنوات التي تحمل رسائلها رمز "
        f"الخصم ({text_ar}؛ Exists، قاعدة لكل قناة، وتُربط القواعد بالعامل OR). وتقرأ كل خطوة "
        "إرسال موافقة جهة الاتصال في CRM قبل الإرسال",
        later)


def _dedupe(step: Step) -> list[dict[str, str]]:
    key, store = step.params["key"], step.params["store"]
    # Headers stay on the trigger; body fields come parsed from the Code step after it.
    origin_en, origin_ar = ("the trigger", "المحفّز") if str(key).startswith("header ") else \
        ("the first Code step's output", "ناتج أول خطوة Code")
    return [
        _action(STORAGE, f"Action Get Value, on the `{store}` secret. Key: `{key}` from "
                f"{origin_en}, cut to 31 characters by a Formatter by Zapier step (Text, Truncate) "
                "if it is longer, because Storage keys must be shorter than 32 characters. That "
                "Formatter step costs one more task a run, which the budget does not count.",
                f"الإجراء Get Value على المفتاح السري `{store}`. المفتاح: `{key}` من {origin_ar}، "
                "ويُقصّ إلى 31 حرفًا بخطوة Formatter by Zapier (Text ثم Truncate) إن كان أطول، "
                "لأن مفاتيح التخزين يجب أن تقل عن 32 حرفًا. وتكلف خطوة Formatter هذه مهمة إضافية "
                "في كل تشغيل لا تحتسبها الميزانية."),
        _action(FILTER, "Only continue if the Value from the Get Value step does not exist, "
                "so an event already seen stops here.",
                "لا تستمر إلا إذا كانت القيمة Value الناتجة عن خطوة Get Value غير موجودة "
                "(Does not exist)، فيتوقف هنا كل حدث سبقت معالجته.", name="Does not exist"),
        _action(STORAGE, f"Action Set Value, on the `{store}` secret. Key: the same key as "
                "the Get Value step. Value: `1`. The section on dedupe keys above says "
                "how the keys are cleared.",
                f"الإجراء Set Value على المفتاح السري `{store}`. المفتاح: مفتاح خطوة Get Value "
                "نفسه. القيمة: `1`. ويشرح قسم مفاتيح منع التكرار أعلاه كيف تُمسح المفاتيح.",
                name="Set Value"),
    ]


def _filter(step: Step, later: Step | None = None) -> list[dict[str, str]]:
    fields = step.params.get("any_set")
    if fields:
        names_en = " or ".join(f"`{name}`" for name in fields)
        names_ar = " أو ".join(f"`{name}`" for name in fields)
        if later is not None:
            return [_paths_gate(f"{names_en} exists (one rule per field with the Exists "
                                "rule, joined by OR)",
                                f"يوجد {names_ar} (قاعدة Exists لكل حقل، وتُربط القواعد بالعامل OR)",
                                later)]
        return [_action(FILTER, f"Only continue if {names_en} exists: one condition per "
                        "field with the Exists rule, joined by OR.",
                        f"لا تستمر إلا إذا وُجد {names_ar}: شرط لكل حقل بقاعدة Exists، "
                        "وتُربط الشروط بالعامل OR.", name="Exists")]
    rules = step.params.get("fulfilled_when")
    if rules:
        text = " OR ".join(" and ".join(f"`{name}` is " + " or ".join(
            f"`{value}`" for value in values if value is not None)
            for name, values in rule.items()) for rule in rules)
        return [_action(FILTER, f"Only continue if {text} (Text, Exactly matches, one "
                        "condition per value, joined by OR).",
                        f"لا تستمر إلا إذا كان {text} (Text ثم Exactly matches، شرط لكل "
                        "قيمة، وتُربط الشروط بالعامل OR).", name="Exactly matches")]
    if step.params.get("absent"):
        store, key = step.params["store"], step.params["key"]
        return [
            _action(STORAGE, f"Action Get Value, on the `{store}` secret. Key: `{key}` from "
                    "the trigger.",
                    f"الإجراء Get Value على المفتاح السري `{store}`. المفتاح: `{key}` من المحفّز."),
            _action(FILTER, "Only continue if the Value from the Get Value step does not "
                    "exist, so each record starts the series once.",
                    "لا تستمر إلا إذا كانت القيمة Value الناتجة عن خطوة Get Value غير موجودة "
                    "(Does not exist)، فلا يبدأ كل سجل السلسلة إلا مرة واحدة.",
                    name="Does not exist"),
        ]
    store, key, equals = step.params["store"], step.params["key"], step.params["equals"]
    return [
        _action(STORAGE, f"Action Get Value, on the `{store}` secret. Key: `{key}`.",
                f"الإجراء Get Value على المفتاح السري `{store}`. المفتاح: `{key}`."),
        _action(FILTER, f"Only continue if the Value from the Get Value step exactly matches "
                f"the trigger's `{equals}`, so only the latest update goes on.",
                f"لا تستمر إلا إذا طابقت القيمة Value الناتجة عن خطوة Get Value قيمة `{equals}` "
                "في المحفّز تمامًا (Exactly matches)، فلا يمضي إلا آخر تحديث.",
                name="Exactly matches"),
    ]


def _store(step: Step) -> list[dict[str, str]]:
    store, key = step.params["store"], step.params["key"]
    if step.params.get("delete"):
        return [_action(STORAGE, f"Action Remove Value, on the `{store}` secret. Key: `{key}`.",
                        f"الإجراء Remove Value على المفتاح السري `{store}`. المفتاح: `{key}`.")]
    value = value_text(step.params.get("value", "1"))
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
    text = params.get("text", {"en": f"{params['amount']} {params['unit']}"})
    # The length follows the colon on its own, so it is nominative: ساعتان.
    return [_action(DELAY, f"Action Delay For: {text['en']}.",
                    f"الإجراء Delay For: {wait_text_ar(params, 'nominative')}.")]


def _loop(items_en: str, items_ar: str) -> dict[str, str]:
    """Return the Looping by Zapier step that runs the steps after it once per item."""
    return _action(LOOPING, f"Loop over {items_en}: the steps after this one run once per "
                   "item, up to the end of the Zap.",
                   f"كرّر على {items_ar}: تعمل الخطوات التي تلي هذه الخطوة مرة لكل عنصر حتى "
                   "نهاية Zap.", name=LOOPING)


def _map(step: Step) -> list[dict[str, str]]:
    en = ("Fill the next step's fields from the field map below. Add this Formatter step only "
          "where a transform needs it (numbers, dates, phone formats).")
    ar = ("املأ حقول الخطوة التالية من جدول ربط الحقول أدناه، ولا تضف خطوة Formatter هذه إلا "
          "حيث يحتاج التحويل إليها (الأرقام والتواريخ وصيغ أرقام الجوال).")
    formatter = _action(FORMATTER, en, ar, name=FORMATTER)
    items = step.params.get("iterate")
    if items:
        return [_loop(f"the items of `{items}`", f"عناصر `{items}`"), formatter]
    return [formatter]


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


def _consent_read(step: Step, crm: str) -> dict[str, str]:
    """Return the Zap step that reads the contact's current consent in the CRM."""
    read = consent_read(step, crm)
    if crm == "custom":
        return _action(POSTGRES, f"Action Find Row via Custom Query: read {read['en']}, with "
                       "the statement of the row's consent check. Do not use the store "
                       "webhook's consent field: it dates from the trigger.",
                       f"الإجراء Find Row via Custom Query: اقرأ {read['ar']} بعبارة فحص "
                       "الموافقة لهذا الصف. لا تستخدم حقل الموافقة في Webhook المتجر، فقيمته "
                       "من وقت بدء Zap.")
    return _action(WEBHOOKS, f"Action Custom Request, method GET, to read the contact's "
                   f"current consent in the CRM: {read['en']}. Do not use the store webhook's "
                   "consent field: it dates from the trigger, and a contact found by a CRM "
                   "search has none.",
                   "الإجراء Custom Request بالطريقة GET لقراءة الموافقة الحالية لجهة الاتصال "
                   f"في CRM: {read['ar']}. لا تستخدم حقل الموافقة في Webhook المتجر، فقيمته من "
                   "وقت بدء Zap، وجهة الاتصال التي يعيدها بحث CRM لا تحمله.",
                   name="Custom Request")


def _gate(step: Step, later: Step | None = None, crm: str = "") -> list[dict[str, str]]:
    read = _consent_read(step, crm)
    if later is not None:
        return [read, _paths_gate("the consent field below, from that read, has a granted "
                                  "value (Text, Exactly matches; one rule per value, joined "
                                  "by OR)",
                                  "تكون قيمة حقل الموافقة أدناه، من تلك القراءة، من قيم "
                                  "الموافقة (Text ثم Exactly matches، قاعدة لكل قيمة، "
                                  "وتُربط القواعد بالعامل OR)", later)]
    return [read, _action(FILTER, "Only continue if the consent field below, from that read, "
                          "has a granted value (Text, Exactly matches; one condition per "
                          "value, joined by OR).",
                          "لا تستمر إلا إذا كانت قيمة حقل الموافقة أدناه، من تلك القراءة، من "
                          "قيم الموافقة (Text ثم Exactly matches، شرط لكل قيمة، وتُربط الشروط "
                          "بالعامل OR).",
                          name="Exactly matches")]


def _lookup_cursor(step: Step) -> list[dict[str, str]]:
    """Return the Get Value step that reads a search's cursor, when the search keeps one."""
    store = step.params.get("cursor_store")
    if not store:
        return []
    key = step.params["cursor_key"]
    return [_action(STORAGE, f"Action Get Value, on the `{store}` secret. Key: "
                    f"`{key}`: the cursor the search starts from.",
                    f"الإجراء Get Value على المفتاح السري `{store}`. المفتاح: "
                    f"`{key}`، وهو المؤشر الذي يبدأ منه البحث.")]


def _lookup(step: Step) -> list[dict[str, str]]:
    actions = _lookup_cursor(step)
    actions.append(_action(WEBHOOKS, "Action Custom Request with the method and URL below.",
                           "الإجراء Custom Request بالطريقة والعنوان أدناه."))
    if step.params.get("iterate"):
        actions.append(_loop("the records that the search found",
                             "السجلات التي عثر عليها البحث"))
    return actions


def _database(step: Step) -> list[dict[str, str]]:
    """Return the PostgreSQL step that runs a step's SQL statement on the client's database."""
    en = ("Action Find Row via Custom Query on the client's database: paste the SQL statement "
          "this row names, listed under the table, and map each `$n` to the value listed "
          "with it.")
    ar = ("الإجراء Find Row via Custom Query على قاعدة بيانات العميل: الصق عبارة SQL التي "
          "يسمّيها هذا الصف، وهي مدرجة تحت الجدول، واربط كل `$n` بالقيمة المذكورة معها.")
    if step.kind == "upsert":
        en += (" If your PostgreSQL app has no action that runs a statement you write, build "
               "the upsert from Find Row on the unique column, then Update Row when a row is "
               "found and New Row when none is.")
        ar += (" وإذا لم يكن في تطبيق PostgreSQL لديك إجراء يشغّل عبارة تكتبها، فابنِ الإنشاء أو "
               "التحديث من Find Row على العمود الفريد، ثم Update Row إذا وُجد صف، وNew Row إذا "
               "لم يوجد.")
    loop: list[dict[str, str]] = []
    if step.params.get("iterate"):
        if step.kind == "lookup":
            loop.append(_loop("the rows that the query found", "الصفوف التي عثر عليها الاستعلام"))
        else:
            en += " Run it inside the loop of the mapping step."
            ar += " وشغّلها داخل حلقة خطوة الربط."
    return [_action(POSTGRES, en, ar, name="Find Row via Custom Query"), *loop]


def signature_action(source: str, platform: str) -> dict[str, str]:
    """Return the Code step after Catch Raw Hook: check the sender's signature, parse the body.

    A sender without a signature this sheet checks gets a step that only parses the body.
    """
    check = signature_check(source, platform)
    if check is None:
        return _action(
            CODE, f"Action Run JavaScript, right after the trigger. Input Data: `raw_body`: the "
            f"trigger's Raw Body. Code: `{PARSE_ONLY_CODE.strip()}`. Map every later field "
            "from this step's output, not from the trigger. This sender signs nothing that "
            "this sheet checks (a shopper's browser cannot keep a secret, and a help desk "
            "signs in its own way), so keep the hook address private, and add the sender's "
            "check to this code if it signs its requests.",
            "الإجراء Run JavaScript مباشرة بعد المحفّز. بيانات الإدخال: `raw_body`: حقل Raw Body "
            f"من المحفّز. الشيفرة: `{PARSE_ONLY_CODE.strip()}`. واربط كل الحقول اللاحقة من ناتج "
            "هذه الخطوة لا من المحفّز. ولا يوقّع هذا المرسل شيئًا يتحقق منه هذا الدليل (فمتصفح "
            "المتسوّق لا يستطيع حفظ سر، ولمنصة الدعم طريقتها الخاصة في التوقيع)، لذا أبقِ عنوان "
            "المحفّز سريًا، وأضف إلى هذه الشيفرة تحقق المرسل إن كان يوقّع طلباته.",
            name="Run JavaScript")
    inputs_en = "; ".join(f"`{name}`: the trigger's `{header}` header field"
                          for header, name in check.headers)
    inputs_ar = "، و".join(f"`{name}`: حقل الترويسة `{header}` من المحفّز"
                          for header, name in check.headers)
    return _action(
        CODE, "Action Run JavaScript, right after the trigger. Input Data: `raw_body`: the "
        f"trigger's Raw Body; {inputs_en}; `secret`: {check.secret.en}. Code: the signature "
        "check above. A signature that does not match stops the Zap with an error, so a "
        "forged or altered request writes nothing. The step returns the parsed body: map "
        "every later field from this step's output, not from the trigger. Unconfirmed: the "
        "label Zapier gives each header field (such as `Headers Http X Shopify Hmac Sha256`); "
        "pick the field whose sample value is that header's.",
        "الإجراء Run JavaScript مباشرة بعد المحفّز. بيانات الإدخال: `raw_body`: حقل Raw Body من "
        f"المحفّز، و{inputs_ar}، و`secret`: {check.secret.ar}. الشيفرة: شيفرة التحقق من "
        "التوقيع أعلاه. وإذا لم يطابق التوقيع توقف Zap بخطأ، فلا يكتب الطلب المزوّر أو "
        "المعدّل شيئًا. وتعيد الخطوة جسم الطلب بعد تحليله، فاربط كل الحقول اللاحقة من ناتج هذه "
        "الخطوة لا من المحفّز. غير مؤكد: الاسم الذي يعطيه Zapier لحقل كل ترويسة (مثل "
        "`Headers Http X Shopify Hmac Sha256`)، فاختر الحقل الذي تكون قيمته في العيّنة قيمة تلك "
        "الترويسة.",
        name="Run JavaScript")


def _zoho_lines_check(later: Step | None) -> dict[str, str]:
    """Return the step that lets only an order without a sales order reach the line steps."""
    if later is not None:
        return _paths_gate("the Value from the Get Value step does not exist (Does not "
                           "exist), so each store order gets one sales order",
                           "تكون القيمة Value الناتجة عن خطوة Get Value غير موجودة (Does not "
                           "exist)، فلا يحصل كل طلب في المتجر إلا على أمر بيع واحد", later)
    return _action(FILTER, "Only continue if the Value from the Get Value step does not "
                   "exist, so each store order gets one sales order.",
                   "لا تستمر إلا إذا كانت القيمة Value الناتجة عن خطوة Get Value غير موجودة "
                   "(Does not exist)، فلا يحصل كل طلب في المتجر إلا على أمر بيع واحد.",
                   name="Does not exist")


def _zoho_lines_map(step: Step, later: Step | None) -> list[dict[str, str]]:
    """Return the sales-order check and the Code step that builds the products body."""
    key = next((row.target for row in step.fields if row.name == PRODUCT_ID), "Product_Code")
    products_en, products_ar = products_body(key, str(step.params["iterate"]))
    return [
        _action(STORAGE, f"Action Get Value, on the `{SALES_ORDER_STORE}` secret. Key: "
                "`sales-order:` followed by the order's `id` from the trigger.",
                f"الإجراء Get Value على المفتاح السري `{SALES_ORDER_STORE}`. المفتاح: "
                "`sales-order:` متبوعًا بقيمة `id` للطلب من المحفّز.",
                name="Get Value"),
        _zoho_lines_check(later),
        _action(CODE, "Action Run JavaScript. Input Data: `body`, the raw body from the "
                f"trigger. Return `products`: {products_en}",
                "الإجراء Run JavaScript. بيانات الإدخال: `body`، وهو جسم الطلب الخام من "
                f"المحفّز. وأعد `products`: {products_ar}",
                name="Run JavaScript"),
    ]


def _zoho_lines_write(step: Step) -> list[dict[str, str]]:
    """Return the products request, the sales-order body, its request and the stored id."""
    order_en, order_ar = sales_order_body()
    return [
        _action(WEBHOOKS, "Action Custom Request, `POST {api_domain}/crm/v8/Products/upsert`, "
                "Data: the `products` text of the Code step (up to 100 products per call). "
                "Zoho answers with one `data[].details.id` per product, in the order sent.",
                "الإجراء Custom Request بالطلب `POST {api_domain}/crm/v8/Products/upsert`، "
                "والبيانات Data: نص `products` من خطوة Code (حتى 100 منتج في الاستدعاء). ويرد "
                "Zoho بقيمة `data[].details.id` لكل منتج بترتيب الإرسال.",
                name="Custom Request"),
        _action(CODE, "Action Run JavaScript. Input Data: `body` (the raw body from the "
                "trigger), `products` (the first Code step's output), `answer` (the raw "
                "response of the products request), `deal` (the deal's `data[0].details.id` "
                f"from the deal request) and `subject` (the mapped deal name). Return `order`: "
                f"{order_en}",
                "الإجراء Run JavaScript. بيانات الإدخال: `body` (جسم الطلب الخام من المحفّز)، "
                "و`products` (ناتج خطوة Code الأولى)، و`answer` (الرد الخام لطلب المنتجات)، "
                "و`deal` (قيمة `data[0].details.id` للصفقة من طلب الصفقة)، و`subject` (اسم "
                f"الصفقة بعد الربط). وأعد `order`: {order_ar}",
                name="Run JavaScript"),
        _action(WEBHOOKS, "Action Custom Request, `POST {api_domain}/crm/v8/Sales_Orders`, "
                "Data: the `order` text of the second Code step. It creates one sales order "
                "for the store order, with every line in its Product_Details subform.",
                "الإجراء Custom Request بالطلب `POST {api_domain}/crm/v8/Sales_Orders`، "
                "والبيانات Data: نص `order` من خطوة Code الثانية. وينشئ أمر بيع واحدًا لطلب "
                "المتجر، فيه كل البنود في الجدول الفرعي Product_Details.",
                name="Custom Request"),
        _action(STORAGE, f"Action Set Value, on the `{SALES_ORDER_STORE}` secret. Key: the "
                "same key as the Get Value step. Value: the sales order's "
                "`data[0].details.id` from the response.",
                f"الإجراء Set Value على المفتاح السري `{SALES_ORDER_STORE}`. المفتاح: مفتاح "
                "خطوة Get Value نفسه. القيمة: `data[0].details.id` لأمر البيع من الرد.",
                name="Set Value"),
    ]


def _zoho_line_actions(step: Step, later: Step | None) -> list[dict[str, str]]:
    if step.kind == "map":
        return _zoho_lines_map(step, later)
    if step.kind == "upsert":
        return _zoho_lines_write(step)
    # The links are the sales order's Deal_Name and each row's product id.
    return []


_BUILDERS = writers_by_kind(_http, dedupe=_dedupe, filter=_filter, store=_store, wait=_wait,
                           map=_map, lookup=_lookup, branch=_branch, consent_gate=_gate)


def zapier_actions(step: Step, crm: str = "", later: Step | None = None) -> list[dict[str, Any]]:
    """Return the Zap steps that build ``step``: app and settings, in English and Arabic.

    ``later`` is the first step after the part that a filter or consent gate at
    ``step`` guards. With it, the check becomes Paths by Zapier, because a Filter
    would also stop ``later`` and every step after it.
    """
    if zoho_line_step(step, crm):
        return _zoho_line_actions(step, later)
    if database_step(step, crm):
        return _lookup_cursor(step) + _database(step)
    if step.kind == "filter":
        return _filter(step, later)
    if step.kind == "consent_gate":
        return _gate(step, later, crm)
    actions = _BUILDERS[step.kind](step)
    if step.kind == "branch" and later is not None:
        actions[-1] = {**actions[-1], **_routes_go_on(actions[-1], later)}
    return actions


def _routes_go_on(action: dict[str, str], later: Step) -> dict[str, str]:
    """Return the settings of a Paths step that the flow's later rows must follow."""
    return {"settings_en": action["settings_en"] + " Zapier adds no step after Paths outside "
            f'its paths, so build the rows from "{later.title.en}" on at the end of each '
            "path that does not stop the flow.",
            "settings_ar": action["settings_ar"] + " ولا يضيف Zapier أي خطوة بعد Paths خارج "
            f"مساراتها، لذا ابنِ الصفوف ابتداءً من «{later.title.ar}» في آخر كل مسار لا "
            "يوقف التدفق."}

