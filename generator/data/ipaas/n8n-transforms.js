// Field transforms for n8n Code nodes, the JavaScript twin of generator/runtime.
//
// generator/ipaas/n8n.py puts this file into each mapping Code node after a
// `const RABT = {...}` line that carries the project's data: the stage tables, the
// city aliases, the attribution channels, the event keys and the support origins.
// Code nodes run without npm modules, so Saudi phone numbers are checked against
// libphonenumber's patterns passed in RABT.phone rather than by the library, and
// money is rounded on decimal strings instead of floats.

// Bidi and other format marks that people paste around numbers and names.
const FORMAT_MARKS = /[\u200e\u200f\u202a-\u202e\u2066-\u2069\u061c\ufeff]/g;

function isEmpty(value) {
  if (value === null || value === undefined) return true;
  if (typeof value === 'boolean') return false;
  if (typeof value === 'string') return value.trim() === '';
  // WooCommerce writes 0 for an absent id (a guest's customer_id, a simple product's variation_id).
  if (typeof value === 'number') return value === 0;
  if (Array.isArray(value)) return value.every(isEmpty);
  if (typeof value === 'object') return Object.keys(value).length === 0;
  return false;
}

function asciiDigits(text) {
  return String(text)
    .replace(/[\u0660-\u0669]/g, (digit) => String(digit.charCodeAt(0) - 0x0660))
    .replace(/[\u06f0-\u06f9]/g, (digit) => String(digit.charCodeAt(0) - 0x06f0))
    .replace(FORMAT_MARKS, '');
}

function parsePath(path) {
  return path.split('.').map((part) => {
    const match = /^([^[\]]+)(?:\[([^\]]*)\])?$/.exec(part);
    return match ? { name: match[1], selector: match[2] } : { name: part, selector: undefined };
  });
}

// Read a dotted path; name[] runs through a list, name[0] reads one item and
// name[key] reads the value of a WooCommerce meta_data entry with that key.
function readPath(data, path) {
  let values = [data];
  let throughList = false;
  for (const { name, selector } of parsePath(path)) {
    const found = [];
    for (const value of values) {
      const child = value && typeof value === 'object' ? value[name] : undefined;
      if (selector === undefined) {
        found.push(child);
      } else if (selector === '') {
        throughList = true;
        if (Array.isArray(child)) found.push(...child);
      } else if (Array.isArray(child)) {
        found.push(/^\d+$/.test(selector) ? child[Number(selector)]
          : (child.find((entry) => entry && entry.key === selector) || {}).value);
      }
    }
    values = found;
  }
  if (throughList) return values.filter((value) => value !== undefined && value !== null);
  return values.length ? values[0] : undefined;
}

// @transforms: the part below reads RABT; nodes that only need the helpers above stop here.

// The Saudi number patterns come from libphonenumber's metadata (through the
// phonenumbers package at generation time): RABT.phone contains the national-number
// patterns of mobiles, landlines, toll-free and shared-cost (920) numbers.
const phonePattern = (name) => new RegExp(`^(?:${RABT.phone[name]})$`);
const INTERNATIONAL = /^[1-9]\d{6,14}$/;
const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;

function phoneE164(value) {
  if (isEmpty(value)) return { value: null, flags: ['missing'] };
  const cleaned = asciiDigits(value).trim();
  if (!/^\+?[0-9 \-.()/\u00a0]+$/.test(cleaned)) return { value: null, flags: ['invalid_phone'] };
  let digits = cleaned.replace(/[^0-9+]/g, '');
  let international = false;
  if (digits.startsWith('+')) { international = true; digits = digits.slice(1); }
  else if (digits.startsWith('00')) { international = true; digits = digits.slice(2); }
  else if (digits.startsWith('966') && digits.length >= 12) { international = true; }
  let national;
  if (international && digits.startsWith('966')) {
    national = digits.slice(3).replace(/^0/, '');
  } else if (international) {
    // NOTE: numbers outside Saudi Arabia are checked for length only; the Python
    // runtime checks them against libphonenumber's metadata.
    return INTERNATIONAL.test(digits)
      ? { value: `+${digits}`, flags: ['not_messageable'] } : { value: null, flags: ['invalid_phone'] };
  } else {
    national = digits.replace(/^0/, '');
  }
  const e164 = `+966${national}`;
  if (phonePattern('mobile').test(national)) return { value: e164, flags: [] };
  if (phonePattern('landline').test(national)) return { value: e164, flags: ['not_messageable', 'landline'] };
  if (phonePattern('toll_free').test(national)) return { value: e164, flags: ['not_messageable', 'toll_free'] };
  if (phonePattern('shared_cost').test(national)) return { value: e164, flags: ['not_messageable'] };
  return { value: null, flags: ['invalid_phone'] };
}

// Round a decimal string to 0.01, half away from zero (Python's ROUND_HALF_UP), on
// the digits themselves so no binary float ever touches the amount.
function moneyText(value) {
  if (isEmpty(value) && value !== 0) return null;
  const text = asciiDigits(value).replace(/\u066b/g, '.').replace(/[\u066c,\s]/g, '');
  const match = /^([+-]?)(\d*)(?:\.(\d*))?$/.exec(text);
  if (!match || (match[2] === '' && !match[3])) return null;
  const negative = match[1] === '-';
  const fraction = (match[3] || '').padEnd(3, '0');
  let cents = BigInt(match[2] || '0') * 100n + BigInt(fraction.slice(0, 2));
  if (Number(fraction[2]) >= 5) cents += 1n;
  const whole = (cents / 100n).toString();
  const rest = (cents % 100n).toString().padStart(2, '0');
  return `${negative && cents !== 0n ? '-' : ''}${whole}.${rest}`;
}

// The lookup key of a city name, as generator/runtime/cities.py builds it: lower
// case, no bidi marks, diacritics, tatweel or apostrophes, unified letters, no
// words that only mean "city" and no article.
function cityKey(text) {
  const words = asciiDigits(text).toLowerCase().normalize('NFKD').replace(/\p{M}/gu, '')
    .replace(/\u0640/g, '').replace(/ة/g, 'ه').replace(/[ىی]/g, 'ي').replace(/ک/g, 'ك')
    .replace(/['\u2018\u2019\u02bc\u02bb`\u00b4]/g, '')
    .split(/[\s\-_./\\()]+/).filter((word) => word && word !== 'city' && word !== 'مدينه');
  return words.map((word) => {
    if (word === 'al' || word === 'el' || word === 'ال') return '';
    return word.startsWith('ال') && word.length > 3 ? word.slice(2) : word;
  }).filter(Boolean).join(' ');
}

function findCity(text) {
  for (const candidate of [text, String(text).split(/[,\u060c]/)[0]]) {
    const city = RABT.cities[cityKey(candidate)];
    if (city) return city;
  }
  return null;
}

function matchStage(rules, facts) {
  for (const rule of rules) {
    const when = rule.when || {};
    const matches = Object.entries(when).every(([field, expected]) => {
      const actual = Object.prototype.hasOwnProperty.call(facts, field) ? facts[field] : undefined;
      if (Array.isArray(expected)) return expected.includes(actual === undefined ? null : actual);
      if (expected === 'set') return actual !== undefined && actual !== null && actual !== '';
      return actual === expected;
    });
    if (matches) return rule.stage;
  }
  return null;
}

function statusFacts(payload, rules) {
  const holders = payload.order && typeof payload.order === 'object' ? [payload, payload.order] : [payload];
  const facts = {};
  for (const rule of rules) {
    for (const field of Object.keys(rule.when || {})) {
      const holder = holders.find((item) => Object.prototype.hasOwnProperty.call(item, field));
      if (!holder) continue;
      let status = holder[field];
      if (typeof status === 'string') {
        status = status.trim().toLowerCase();
        if (RABT.platform === 'woocommerce' && field === 'status') status = status.replace(/^wc-/, '');
        if (RABT.platform === 'shopify' && field === 'fulfillment_status' && status === 'unfulfilled') status = null;
      }
      facts[field] = status;
    }
  }
  return facts;
}

function stageValue(table, stage) {
  const entry = (table.stages || []).find((item) => item.key === stage);
  return entry && entry.crm_value !== null && entry.crm_value !== undefined ? entry.crm_value : stage;
}

// Whether the order's stage is a won stage of the stage table (paid or fulfilled), the
// rule by which the runtime's roll-ups count an order as a purchase.
function orderWon(payload) {
  const table = RABT.order_stages;
  const rules = Array.isArray(table.rules) ? table.rules : (table.rules || {})[RABT.platform] || [];
  const stage = matchStage(rules, statusFacts(payload, rules));
  const entry = (table.stages || []).find((item) => item.key === stage);
  return Boolean(entry && entry.won);
}

// The marketing channel of an order, read from the signals in the order that
// generator/runtime/attribution.py uses: an offline order, the UTM source, an ad
// click id in the landing URL, then the referrer's host. Without any, it is organic.
const PLATFORM_WORDS = {
  facebook: 'meta', fb: 'meta', instagram: 'meta', ig: 'meta', meta: 'meta', messenger: 'meta',
  google: 'google', googleads: 'google', adwords: 'google', gads: 'google',
  googleadservices: 'google', doubleclick: 'google', youtube: 'google', youtu: 'google',
  tiktok: 'tiktok', snapchat: 'snapchat', snap: 'snapchat',
};
const OFFLINE_SOURCES = new Set(['pos', 'shopify_draft_order', 'offline', 'phone', 'phone_order',
  'instore', 'in_store']);
const CLICK_IDS = { gclid: 'google', gbraid: 'google', wbraid: 'google', dclid: 'google',
  fbclid: 'meta', ttclid: 'tiktok', sccid: 'snapchat' };
const WOO_META_PREFIX = '_wc_order_attribution_';

function classifySource(text) {
  const source = String(text).trim().toLowerCase();
  if (OFFLINE_SOURCES.has(source)) return 'offline';
  for (const word of source.match(/[a-z0-9]+/g) || []) {
    if (Object.prototype.hasOwnProperty.call(PLATFORM_WORDS, word)) return PLATFORM_WORDS[word];
  }
  return null;
}

const texts = (value) => (typeof value === 'string' && value.trim() ? [value] : []);
const looksLikeUrl = (text) => ['/', '?', '=', '.'].some((mark) => text.includes(mark));

function queryPairs(text) {
  const query = String(text).trim().split('#')[0].split('?').slice(1).join('?');
  const pairs = [];
  for (const part of query.split(/[&;]/)) {
    const [name, ...rest] = part.split('=');
    const raw = rest.join('=');
    if (!name || !raw) continue;
    try {
      pairs.push([decodeURIComponent(name.replace(/\+/g, ' ')),
        decodeURIComponent(raw.replace(/\+/g, ' '))]);
    } catch (error) {
      pairs.push([name, raw]);
    }
  }
  return pairs;
}

function hostOf(text) {
  let candidate = String(text).trim();
  if (!looksLikeUrl(candidate) || candidate.startsWith('/') || candidate.startsWith('?')) return '';
  if (!candidate.includes('://')) candidate = `http://${candidate}`;
  try {
    return new URL(candidate).hostname.toLowerCase();
  } catch (error) {
    return '';
  }
}

function wooMeta(payload) {
  const found = {};
  for (const entry of Array.isArray(payload.meta_data) ? payload.meta_data : []) {
    if (entry && typeof entry.key === 'string' && entry.key.startsWith(WOO_META_PREFIX)) {
      const key = entry.key.slice(WOO_META_PREFIX.length);
      if (!(key in found)) found[key] = entry.value;
    }
  }
  return found;
}

function payloadSources(payload) {
  if (RABT.platform === 'shopify') {
    return [texts(payload.landing_site), texts(payload.referring_site), []];
  }
  if (RABT.platform === 'woocommerce') {
    const meta = wooMeta(payload);
    return [texts(meta.session_entry), texts(meta.referrer), texts(meta.utm_source)];
  }
  const attribution = payload.attribution;
  if (!attribution || typeof attribution !== 'object') return [[], [], []];
  return [texts(attribution.landing_page), texts(attribution.referrer),
    texts(attribution.utm_source)];
}

function isOfflineOrder(payload) {
  if (RABT.platform === 'shopify') {
    return ['pos', 'shopify_draft_order'].includes(String(payload.source_name || '').toLowerCase());
  }
  if (RABT.platform === 'woocommerce') {
    return payload.created_via === 'admin' || wooMeta(payload).source_type === 'admin';
  }
  return false;
}

function classifyChannel(value, payload) {
  const resolved = texts(value);
  const [landing, referrers, utmSources] = payloadSources(payload);
  if (isOfflineOrder(payload) || (resolved.length && classifySource(resolved[0]) === 'offline')) {
    return ['offline', []];
  }

  const sources = [];
  const clicks = [];
  for (const text of [...resolved, ...landing]) {
    for (const [name, param] of queryPairs(text)) {
      const key = name.toLowerCase();
      if (key === 'utm_source' && param.trim()) sources.push(param);
      else if (CLICK_IDS[key] && param.trim()) clicks.push(CLICK_IDS[key]);
    }
  }
  sources.push(...utmSources);
  // A bare word is a UTM source, unless it is Shopify's source_name (a sales channel).
  if (resolved.length && !looksLikeUrl(resolved[0]) && resolved[0] !== payload.source_name) {
    sources.push(resolved[0]);
  }

  if (sources.length) {
    const channel = classifySource(sources[0]);
    return channel === null ? ['organic', ['unknown_source']] : [channel, []];
  }
  if (clicks.length) return [clicks[0], []];
  for (const text of [...resolved, ...referrers]) {
    const host = hostOf(text);
    const channel = host ? classifySource(host) : null;
    if (channel !== null && channel !== 'offline') return [channel, []];
  }
  return ['organic', []];
}

function utmChannel(value, payload) {
  const [channel, flags] = classifyChannel(value, payload);
  const listed = RABT.attribution.values;
  if (!Array.isArray(listed) || listed.includes(channel)) return { value: channel, flags };
  return { value: RABT.attribution.other_value || 'other',
    flags: [...flags, 'unlisted_channel', `channel:${channel}`] };
}

const TRANSFORMS = {
  identity: (value) => ({ value: isEmpty(value) ? null : value, flags: [] }),
  id_text: (value) => ({ value: isEmpty(value) ? null : String(value), flags: [] }),
  email_lower: (value) => {
    if (isEmpty(value)) return { value: null, flags: ['missing'] };
    const email = String(value).trim().toLowerCase();
    return EMAIL.test(email) ? { value: email, flags: [] } : { value: null, flags: ['invalid_email'] };
  },
  phone_e164_sa: (value) => phoneE164(value),
  split_name: (value) => ({ value: isEmpty(value) ? null : String(value).trim().replace(/\s+/g, ' '), flags: [] }),
  city_canonical: (value) => {
    if (isEmpty(value)) return { value: null, flags: ['missing'] };
    const city = findCity(value);
    // An unknown city is left out; the raw spelling goes to its own field.
    return city ? { value: city, flags: [] } : { value: null, flags: ['unknown_city'] };
  },
  money_sar: (value, payload) => {
    const currency = payload.currency || (payload.order && payload.order.currency);
    if (currency && String(currency).toUpperCase() !== 'SAR') return { value: null, flags: ['other_currency'] };
    const amount = moneyText(value);
    return amount === null ? { value: null, flags: ['invalid_amount'] } : { value: amount, flags: [] };
  },
  refund_total_sar: (value) => {
    const refunds = Array.isArray(value) ? value : [value];
    let cents = 0n;
    for (const refund of refunds) {
      const amount = moneyText(refund && typeof refund === 'object' ? refund.total || refund.amount : refund);
      if (amount !== null) cents += BigInt(amount.replace('-', '').replace('.', ''));
    }
    return { value: `${cents / 100n}.${(cents % 100n).toString().padStart(2, '0')}`, flags: [] };
  },
  status_to_stage: (value, payload) => {
    const table = RABT.order_stages;
    const rules = Array.isArray(table.rules) ? table.rules : (table.rules || {})[RABT.platform] || [];
    const stage = matchStage(rules, statusFacts(payload, rules));
    if (stage === null) return { value: null, flags: ['unknown_status'] };
    // Until set-up stores the CRM's stage ids the stage key is written and flagged.
    const crmValue = stageValue(table, stage);
    return { value: crmValue, flags: crmValue === stage ? ['stage_id_pending'] : [] };
  },
  ticket_status_to_stage: (value) => {
    const status = isEmpty(value) ? null : String(value).trim().toLowerCase();
    const stage = matchStage(RABT.ticket_stages.rules, { status });
    if (stage === null) return { value: null, flags: ['unknown_status'] };
    return { value: (RABT.ticket_stages.crm_values || {})[stage] || stage, flags: [] };
  },
  iso_datetime: (value) => {
    if (isEmpty(value)) return { value: null, flags: ['missing'] };
    const text = String(value).trim();
    if (/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$/.test(text)) return { value: text, flags: [] };
    const date = new Date(text);
    return Number.isNaN(date.getTime()) ? { value: null, flags: ['invalid_date'] } : { value: date.toISOString(), flags: [] };
  },
  // Asia/Riyadh is UTC+3 all year (no daylight saving time).
  riyadh_date: (value) => {
    const date = new Date(isEmpty(value) ? NaN : String(value).trim());
    if (Number.isNaN(date.getTime())) return { value: null, flags: ['invalid_date'] };
    return { value: new Date(date.getTime() + 3 * 3600 * 1000).toISOString().slice(0, 10), flags: [] };
  },
  sku_or_variant_id: (value) => ({ value: isEmpty(value) ? null : String(value).trim(), flags: [] }),
  deal_name: (value) => {
    if (isEmpty(value)) return { value: null, flags: ['missing'] };
    const number = String(value).trim();
    return { value: `Order ${number.startsWith('#') ? number : `#${number}`}`, flags: [] };
  },
  utm_channel: (value, payload) => utmChannel(value, payload),
  list_join: (value) => {
    const items = (Array.isArray(value) ? value : [value])
      .map((item) => (item && typeof item === 'object' ? item.code || item.name : item))
      .filter((item) => !isEmpty(item));
    return { value: items.length ? items.join(', ') : null, flags: [] };
  },
  category_map: (value) => {
    if (isEmpty(value)) return { value: null, flags: ['missing'] };
    const category = String(value).trim().replace(/\s+/g, ' ');
    const wanted = category.toLowerCase();
    const hit = Object.entries(RABT.category_map || {}).find(([name]) => name.toLowerCase() === wanted);
    return hit ? { value: hit[1], flags: [] } : { value: category, flags: ['unmapped_category'] };
  },
  html_to_text: (value) => ({
    value: isEmpty(value) ? null : String(value).replace(/<[^>]*>/g, ' ').replace(/&nbsp;/g, ' ')
      .replace(/&amp;/g, '&').replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/\s+/g, ' ').trim(),
    flags: [],
  }),
  event_key: (value) => {
    const key = isEmpty(value) ? null : RABT.event_keys[String(value).trim().toLowerCase()];
    return key ? { value: key, flags: [] } : { value: null, flags: ['unknown_event'] };
  },
  // A consent state to a CRM checkbox, compared without regard to case. A missing
  // state leaves the checkbox as it is, because the body says nothing about consent.
  consent_opt_in: (value, payload, field) => {
    if (isEmpty(value)) return { value: null, flags: ['missing'] };
    const granted = (field.granted || []).map((state) => String(state).toLowerCase());
    return { value: granted.includes(String(value).trim().toLowerCase()), flags: [] };
  },
  consent_opt_out: (value, payload, field) => {
    if (isEmpty(value)) return { value: null, flags: ['missing'] };
    const granted = (field.granted || []).map((state) => String(state).toLowerCase());
    return { value: !granted.includes(String(value).trim().toLowerCase()), flags: [] };
  },
  channel_to_origin: (value) => {
    const aliases = { wa: 'whatsapp', call: 'phone', voice: 'phone', mail: 'email' };
    const channel = isEmpty(value) ? '' : String(value).trim().toLowerCase();
    const origin = RABT.support_origins[aliases[channel] || channel];
    return origin ? { value: origin, flags: [] } : { value: null, flags: ['unknown_channel'] };
  },
};

// Words that join the word after them, as generator/runtime/names.py lists them:
// given-name joiners anywhere ("عبد الله", "Abdul Rahman", "أبو بكر"), family and
// patronymic joiners only after the first word ("Al Saud", "بن سلمان"), so "Al" in
// "Al Pacino" stays a given name. Hamza forms (أ إ آ) are unified before lookup.
const GIVEN_NAME_JOINERS = new Set(['عبد', 'ابو', 'ابا', 'ابي', 'ام',
  'abd', 'abdul', 'abdel', 'abdal', 'abdol', 'abdur', 'abu', 'abou', 'umm']);
const FAMILY_JOINERS = new Set(['ال', 'بن', 'بنت', 'ابن', 'al', 'el', 'bin', 'bint', 'ibn']);

function joinsNext(word, position) {
  const key = word.toLowerCase().replace(/[أإآ]/g, 'ا');
  return GIVEN_NAME_JOINERS.has(key) || (position > 0 && FAMILY_JOINERS.has(key));
}

function nameParts(words) {
  const parts = [];
  let index = 0;
  while (index < words.length) {
    let end = index;
    while (end < words.length - 1 && joinsNext(words[end], end)) end += 1;
    parts.push(words.slice(index, end + 1).join(' '));
    index = end + 1;
  }
  return parts;
}

// The last part is the family name and the rest the given name; a name of one part
// has no given name.
function splitFullName(text) {
  const parts = nameParts(String(text).replace(FORMAT_MARKS, '').split(/\s+/).filter(Boolean));
  if (!parts.length) return [null, null];
  if (parts.length === 1) return [null, parts[0]];
  return [parts.slice(0, -1).join(' '), parts[parts.length - 1]];
}

// Both name fields with text are kept as sent. When only one has text it is split;
// a one-word name is the given name unless the CRM requires a family name (Zoho).
function splitNames(first, last, lastRequired) {
  const clean = (text) => (typeof text === 'string' && text.replace(FORMAT_MARKS, '').trim()
    ? text.replace(FORMAT_MARKS, '').trim().split(/\s+/).join(' ') : null);
  let given = clean(first);
  let family = clean(last);
  if (given && family) return [given, family];
  const whole = given || family;
  if (!whole) return [null, null];
  [given, family] = splitFullName(whole);
  if (given === null && family !== null && !lastRequired) return [family, null];
  return [given, family];
}

function splitWholeName(record, first, last, lastRequired) {
  const [given, family] = splitNames(record[first], record[last], lastRequired);
  delete record[first];
  delete record[last];
  if (given !== null) record[first] = given;
  if (family !== null) record[last] = family;
}

function readField(field, payload, item, itemPath) {
  const read = (path) => (itemPath && item && path.startsWith(`${itemPath}.`)
    ? readPath(item, path.slice(itemPath.length + 1)) : readPath(payload, path));
  let value = read(field.source);
  for (const fallback of field.fallback_sources || []) {
    if (!isEmpty(value)) break;
    value = read(fallback);
  }
  return value;
}

// The pipeline id goes beside the stage once set-up has stored it.
function addPipeline(record, flags, name) {
  const pipeline = RABT.order_stages.pipeline || {};
  if (!pipeline.field) return;
  if (pipeline.crm_value === null || pipeline.crm_value === undefined) {
    flags.push(`${name}:pipeline_id_pending`);
  } else {
    record[pipeline.field] = pipeline.crm_value;
  }
}

// Map one payload to CRM records: one record, or one per item of the list path
// (line_items[]) that the first field reads from.
function mapRecords(payload, fields, names) {
  const itemPath = fields.length && fields[0].source.includes('[]')
    ? fields[0].source.slice(0, fields[0].source.indexOf('[]') + 2) : null;
  const items = itemPath ? readPath(payload, itemPath) || [] : [null];
  return items.map((item) => {
    const record = {};
    const flags = [];
    for (const field of fields) {
      // A purchase roll-up (the latest order time) is left out unless the order is won,
      // so a pending or cancelled order never sets it.
      if (field.won_only && !orderWon(payload)) continue;
      const transform = TRANSFORMS[field.transform];
      const result = transform(readField(field, payload, item, itemPath), payload, field);
      flags.push(...result.flags.map((flag) => `${field.name}:${flag}`));
      if (!isEmpty(result.value) || typeof result.value === 'boolean') record[field.target] = result.value;
      if (field.transform === 'status_to_stage') addPipeline(record, flags, field.name);
    }
    if (names) splitWholeName(record, names.first, names.last, names.last_required);
    return { record, flags };
  });
}
