// schemas.test.mjs - checks protocol/schema/ against protocol/PROTOCOL.md and
// the shared client-message corpus: every schema compiles, every fenced
// example validates against the schema its info string names, every valid
// corpus file validates and every schema-expressible invalid one does not.
// Run: node --test tests/schema/
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join, dirname, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import Ajv2020 from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { createHash } from 'node:crypto';
import { VISIBILITY, ROLES, receivesOf, canonicalJson } from '../integration/visibility.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const schemaDir = join(root, 'protocol', 'schema');
const corpusDir = join(root, 'tests', 'corpus');
const BASE = 'https://attune.example/schema/';

const CLIENT_TYPES = ['hello', 'ping', 'typing', 'consent', 'consent_withdraw', 'checkin', 'turn',
  'control', 'pause_request', 'repair_attempt', 'repair_accept', 'repair_reply', 'rupture_mark',
  'rupture_repair', 'rupture_confirm', 'rupture_dismiss', 'note', 'private_message', 'ask_therapist'];
const SERVER_SCHEMAS = ['ack', 'ack-hello', 'error', 'event', 'state', 'bye'];
const EVENT_TYPES = Object.keys(VISIBILITY);

function walk(dir) {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    return statSync(p).isDirectory() ? walk(p) : [p];
  });
}

const schemaFiles = walk(schemaDir).filter((p) => p.endsWith('.schema.json')).sort();
const schemas = schemaFiles.map((p) => ({ path: relative(schemaDir, p), json: JSON.parse(readFileSync(p, 'utf8')) }));

function makeAjv() {
  const ajv = new Ajv2020({ allErrors: true, strict: true, strictTypes: false, strictRequired: false });
  addFormats(ajv);
  for (const s of schemas) ajv.addSchema(s.json);
  // Any client message: used for corpus files whose `type` is missing or unknown.
  ajv.addSchema({
    $id: `${BASE}test/any-client.schema.json`,
    anyOf: CLIENT_TYPES.map((t) => ({ $ref: `../client/${t}.schema.json` })),
  });
  return ajv;
}
const ajv = makeAjv();
const validator = (name) => {
  const v = ajv.getSchema(`${BASE}${name}.schema.json`);
  assert.ok(v, `no schema ${name}`);
  return v;
};
const errorsOf = (v) => ajv.errorsText(v.errors);

test('every schema file has the $id its path implies and compiles', () => {
  assert.ok(schemas.length >= 1 + CLIENT_TYPES.length + SERVER_SCHEMAS.length + EVENT_TYPES.length);
  for (const s of schemas) {
    assert.equal(s.json.$id, BASE + s.path.split('\\').join('/'), s.path);
    assert.equal(s.json.$schema, 'https://json-schema.org/draft/2020-12/schema', s.path);
    assert.equal(typeof validator(s.path.replace(/\.schema\.json$/, '')), 'function', s.path);
  }
  for (const t of CLIENT_TYPES) validator(`client/${t}`);
  for (const t of SERVER_SCHEMAS) validator(`server/${t}`);
  for (const t of EVENT_TYPES) validator(`event/${t}`);
});

test('client schemas are closed (additionalProperties false)', () => {
  for (const t of CLIENT_TYPES) {
    const s = schemas.find((x) => x.path === `client/${t}.schema.json`);
    assert.equal(s.json.additionalProperties, false, t);
    assert.deepEqual(s.json.properties.type, { const: t });
  }
});

test('the limits in defs.schema.json match types.h', () => {
  const defs = schemas.find((x) => x.path === 'defs.schema.json').json.$defs;
  const header = readFileSync(join(root, 'protocol', 'include', 'attune', 'types.h'), 'utf8');
  const macro = (name) => Number(new RegExp(`#define ${name} (\\d+)`).exec(header)[1]);
  const limits = defs.limits.const;
  assert.equal(limits.message_bytes, macro('ATT_MAX_MESSAGE_BYTES'));
  assert.equal(limits.depth, macro('ATT_MAX_DEPTH'));
  assert.equal(limits.id_bytes, macro('ATT_MAX_ID_BYTES'));
  assert.equal(limits.token_bytes, macro('ATT_MAX_TOKEN_BYTES'));
  assert.equal(limits.text_bytes, macro('ATT_MAX_TEXT_BYTES'));
  assert.equal(limits.input_members, macro('ATT_MAX_INPUT_MEMBERS'));
  assert.equal(defs.msg_id.maxLength, limits.id_bytes);
  assert.equal(defs.token.maxLength, limits.token_bytes);
  assert.equal(defs.text.maxLength, limits.text_bytes);
  assert.equal(defs.input.maxProperties, limits.input_members);
  assert.equal(defs.catalog_id.maxLength, limits.catalog_id_bytes);
  assert.equal(defs.step_id.maxLength, limits.step_id_bytes);
});

function protocolExamples() {
  const md = readFileSync(join(root, 'protocol', 'PROTOCOL.md'), 'utf8');
  const re = /^```json[ \t]+(\S+)[ \t]*\n([\s\S]*?)^```[ \t]*$/gm;
  const out = [];
  let m;
  while ((m = re.exec(md)) !== null) {
    out.push({ schema: m[1], text: m[2], line: md.slice(0, m.index).split('\n').length });
  }
  return out;
}

test('every fenced example in PROTOCOL.md validates against the schema it names', () => {
  const examples = protocolExamples();
  const seen = new Set();
  for (const ex of examples) {
    let value;
    assert.doesNotThrow(() => { value = JSON.parse(ex.text); }, `PROTOCOL.md:${ex.line} is not JSON`);
    const v = validator(ex.schema);
    assert.ok(v(value), `PROTOCOL.md:${ex.line} (${ex.schema}): ${errorsOf(v)}`);
    if (ex.schema.startsWith('client/') || ex.schema.startsWith('event/')) {
      assert.equal(value.type, ex.schema.split('/')[1], `PROTOCOL.md:${ex.line} type vs info string`);
    }
    if (ex.schema === 'server/event') {
      const ev = validator(`event/${value.event.type}`);
      assert.ok(ev(value.event), `PROTOCOL.md:${ex.line}: ${errorsOf(ev)}`);
    }
    seen.add(ex.schema);
  }
  for (const t of CLIENT_TYPES) assert.ok(seen.has(`client/${t}`), `no example for client/${t}`);
  for (const t of SERVER_SCHEMAS) assert.ok(seen.has(`server/${t}`), `no example for server/${t}`);
  for (const t of EVENT_TYPES) assert.ok(seen.has(`event/${t}`), `no example for event/${t}`);
});

test('the schemas reject what they should (spot checks)', () => {
  const turn = validator('client/turn');
  const deep = (n) => { let v = {}; for (let i = 0; i < n; i++) v = { a: v }; return v; };
  // root = 1, input = 2, so input.x = deep(k) puts the innermost object at depth 2 + k + 1.
  assert.ok(turn({ type: 'turn', step: 's', input: { x: deep(5) } }), errorsOf(turn)); // depth 8
  assert.ok(!turn({ type: 'turn', step: 's', input: { x: deep(6) } })); // depth 9
  const many = Object.fromEntries(Array.from({ length: 17 }, (_, i) => [`k${i}`, 1]));
  assert.ok(!turn({ type: 'turn', step: 's', input: many }));
  const mark = validator('client/rupture_mark');
  assert.ok(!mark({ type: 'rupture_mark', kind: 'withdrawal', marker: 'denial', who: 'partner_a', with: 'partner_a' }));
  assert.ok(mark({ type: 'rupture_mark', kind: 'withdrawal', marker: 'denial', who: 'partner_a', with: 'therapist' }));
  const ev = validator('server/event');
  assert.ok(!ev({ type: 'event', seq: 1, event: { type: 'joined', at: 1, by: 'partner_a', extra: 1 } }));
  const opened = validator('event/rupture_opened');
  const rupture = { id: 1, kind: 'withdrawal', marker: 'silence', source: 'detector', who: 'partner_a', with: 'partner_b', step: 's', round: 0 };
  assert.ok(opened({ type: 'rupture_opened', at: 1, by: 'therapist', rupture }), errorsOf(opened));
  assert.ok(!opened({ type: 'rupture_opened', at: 1, by: 'system', rupture }), 'a v2 rupture opened by the system');
  assert.ok(opened({ type: 'rupture_opened', at: 1, by: 'system', rupture: { ...rupture, evidence: [3] } }), 'protocol 1 form');
  const confirmed = validator('event/rupture_confirmed');
  assert.ok(confirmed({ type: 'rupture_confirmed', at: 1, by: 'therapist', suspicion_id: 2, rupture_id: 1 }), errorsOf(confirmed));
  assert.ok(!confirmed({ type: 'rupture_confirmed', at: 1, by: 'therapist', suspicion_id: 2 }));
  assert.ok(!confirmed({ type: 'rupture_confirmed', at: 1, by: 'therapist', suspicion_id: 2, rupture_id: 1, rupture: { ...rupture, evidence: [] } }));
  const accepted = validator('event/repair_accepted');
  assert.ok(!accepted({ type: 'repair_accepted', at: 1, by: 'therapist', attempt_id: 1 }), 'the therapist never accepts (protocol 2)');
  assert.ok(!accepted({ type: 'repair_accepted', at: 1, by: 'partner_a', attempt_id: 1, attempt_seq: 4 }));
  const pm = validator('event/private_message');
  assert.ok(!pm({ type: 'private_message', at: 1, by: 'partner_a', to: 'partner_b', text: 'x' }), 'partner to partner');
  assert.ok(!pm({ type: 'private_message', at: 1, by: 'therapist', to: 'therapist', text: 'x' }));
  const replied = validator('event/repair_replied');
  assert.ok(!replied({ type: 'repair_replied', at: 1, by: 'therapist', attempt_id: 1, reply: 'need_a_moment' }));
  const rep = validator('event/repair_accepted') && validator('event/rupture_repaired');
  assert.ok(!rep({ type: 'rupture_repaired', at: 1, by: 'therapist', rupture_id: 1, how: 'therapist_strategy' }));
});

test('partner and staff states: the schema keeps staff members out of partner states', () => {
  const state = validator('server/state');
  const ex = protocolExamples().filter((e) => e.schema === 'server/state').map((e) => JSON.parse(e.text));
  const partner = ex.find((s) => s.you === 'partner_a');
  const therapist = ex.find((s) => s.you === 'therapist');
  assert.ok(partner && therapist, 'PROTOCOL.md has a partner and a therapist state example');
  assert.ok(state(partner), errorsOf(state));
  assert.ok(state(therapist), errorsOf(state));
  // A partner's state may carry none of the staff members ...
  for (const key of ['step_started_seq', 'next_rupture_id', 'suspicions', 'suspicions_dropped', 'private_line'])
    assert.ok(!state({ ...partner, [key]: therapist[key] }), `partner state with ${key} passes`);
  // ... nor staff rupture members, nor the therapist's check-in view.
  const r = partner.ruptures[0];
  for (const [k, v] of [['evidence', [12]], ['opened_seq', 17], ['confirmed', true], ['suspicion_id', 1]])
    assert.ok(!state({ ...partner, ruptures: [{ ...r, [k]: v }] }), `partner rupture with ${k} passes`);
  assert.ok(!state({ ...partner, ruptures: [{ ...r, repair: { ...r.repair, seq: 19 } }] }), 'partner repair.seq passes');
  assert.ok(!state({ ...partner, checkin: therapist.checkin }), "partner state with the therapist's check-in passes");
  assert.ok(!state({ ...partner, you: 'partner_b', checkin: { answered: true, other: false } }));
  // The staff states must carry them.
  const { suspicions, ...noSusp } = therapist;
  assert.ok(!state(noSusp), 'therapist state without suspicions passes');
  const { private_line: privateLine, ...staffView } = therapist;
  assert.ok(privateLine, 'the therapist example has private_line');
  assert.ok(!state({ ...staffView, you: 'observer' }), 'observer state with the therapist check-in passes');
  const observer = { ...staffView, you: 'observer', checkin: {} };
  assert.ok(!state({ ...observer, checkin: { partner_a: { answered: true }, partner_b: { answered: false } } }), 'observer state telling who answered passes');
  assert.ok(state(observer), errorsOf(state));
  assert.ok(!state({ ...observer, private_line: privateLine }), 'observer state with the private line counter passes');
  assert.ok(!state(staffView), 'therapist state without private_line passes');
  assert.ok(!state({ ...therapist, ruptures: partner.ruptures }), 'therapist state with partner-shaped ruptures passes');
});

test('protocol/safety.json validates against safety.schema.json; hold ids are options', () => {
  const safety = JSON.parse(readFileSync(join(root, 'protocol', 'safety.json'), 'utf8'));
  const v = validator('safety');
  assert.ok(v(safety), errorsOf(v));
  const ids = new Set();
  for (const q of safety.questions) {
    assert.ok(!ids.has(q.id), `question ${q.id} twice`);
    ids.add(q.id);
    const opts = new Set(q.options.map((o) => o.id));
    assert.equal(opts.size, q.options.length, `${q.id}: duplicate option`);
    for (const h of q.hold) assert.ok(opts.has(h), `${q.id}: hold ${h} is not an option`);
  }
});

test("protocol/consent.json: receives is the visibility table, and the notice validates with its hash", () => {
  const notice = JSON.parse(readFileSync(join(root, 'protocol', 'consent.json'), 'utf8'));
  assert.ok(!('hash' in notice), 'the file has no hash: the server computes it');
  const hash = createHash('sha256').update(canonicalJson(notice)).digest('hex');
  const v = validator('defs');
  const cn = ajv.compile({ $ref: `${BASE}defs.schema.json#/$defs/consent_notice` });
  assert.ok(v, 'defs');
  assert.ok(cn({ ...notice, hash }), ajv.errorsText(cn.errors));
  for (const role of ROLES) {
    assert.deepEqual([...notice.receives[role]].sort(), receivesOf(role).sort(), `receives.${role}`);
    assert.ok(typeof notice.visible_to[role] === 'string', `visible_to.${role}`);
  }
  // The examples in PROTOCOL.md say the same.
  for (const ex of protocolExamples().filter((e) => e.schema === 'server/ack-hello')) {
    const ack = JSON.parse(ex.text);
    for (const role of ROLES)
      assert.deepEqual([...ack.consent.receives[role]].sort(), receivesOf(role).sort(), `PROTOCOL.md:${ex.line} receives.${role}`);
  }
});

function readManifest() {
  const rows = readFileSync(join(corpusDir, 'invalid.tsv'), 'utf8').split('\n')
    .filter((l) => l.trim() !== '' && !l.startsWith('#'))
    .map((l) => l.split('\t'));
  return rows.map(([file, code, flag, ...reason]) => ({ file, code, flag: flag || '', reason: reason.join('\t') }));
}

test('every valid corpus file validates against its client schema', () => {
  const files = readdirSync(join(corpusDir, 'valid')).filter((f) => f.endsWith('.json')).sort();
  const types = new Set();
  for (const f of files) {
    const msg = JSON.parse(readFileSync(join(corpusDir, 'valid', f), 'utf8'));
    assert.ok(CLIENT_TYPES.includes(msg.type), `${f}: type ${msg.type}`);
    const v = validator(`client/${msg.type}`);
    assert.ok(v(msg), `valid/${f}: ${errorsOf(v)}`);
    types.add(msg.type);
  }
  for (const t of CLIENT_TYPES) assert.ok(types.has(t), `no valid corpus file of type ${t}`);
});

test('invalid corpus: schema-expressible bad_message/unknown_type cases fail validation', () => {
  const rows = readManifest();
  assert.ok(rows.length >= 60, `only ${rows.length} invalid cases`);
  const any = validator('test/any-client');
  let checked = 0;
  let cOnly = 0;
  for (const row of rows) {
    const text = readFileSync(join(corpusDir, 'invalid', row.file), 'utf8');
    if (row.code !== 'bad_message' && row.code !== 'unknown_type') {
      assert.equal(row.flag, '', `${row.file}: c-only is only for bad_message cases`);
      continue;
    }
    const msg = JSON.parse(text);
    if (row.flag === 'c-only') {
      // Honest exemptions: the schema really accepts them, and a reason is given.
      assert.ok(row.reason.length > 0, `${row.file}: c-only without a reason`);
      assert.ok(any(msg), `${row.file} is marked c-only but the schema rejects it`);
      cOnly++;
      continue;
    }
    assert.equal(row.flag, '', `${row.file}: unknown flag ${row.flag}`);
    assert.ok(!any(msg), `invalid/${row.file} (${row.code}) passes the schema`);
    checked++;
  }
  assert.ok(checked >= 30, `only ${checked} schema-checked cases`);
  assert.ok(cOnly <= 5, `${cOnly} c-only cases: keep them few`);
});

test('every vocabulary and blame rule file validates against vocab.schema.json', () => {
  const v = validator('vocab');
  const vocabDir = join(root, 'protocol', 'vocab');
  const files = [
    ...readdirSync(vocabDir).filter((f) => f.endsWith('.json')),
    ...readdirSync(join(vocabDir, 'blame'))
      .filter((f) => f.endsWith('.json'))
      .map((f) => join('blame', f)),
  ];
  assert.ok(files.length >= 9, 'five vocabularies and four blame languages at least');
  for (const f of files) assert.ok(v(JSON.parse(readFileSync(join(vocabDir, f), 'utf8'))), `${f}: ${errorsOf(v)}`);
  // The old one-list lexicon is no longer a vocabulary file.
  assert.ok(!v({ id: 'blame', phrases: ['you always'] }));
});

test('every exercise script validates against exercise.schema.json and says its language', () => {
  const v = validator('exercise');
  const dir = join(root, 'protocol', 'exercises');
  for (const f of readdirSync(dir).filter((x) => x.endsWith('.json'))) {
    const script = JSON.parse(readFileSync(join(dir, f), 'utf8'));
    assert.ok(v(script), `${f}: ${errorsOf(v)}`);
    assert.match(script.language, /^[a-z]{2}/, `${f} names its language`);
    // Reflective steps never time a partner's silence.
    for (const s of script.steps)
      if (s.tag === 'reflection' || s.tag === 'reflection_check') assert.equal(s.silence_ms, 0, `${f}: ${s.id}`);
  }
});
