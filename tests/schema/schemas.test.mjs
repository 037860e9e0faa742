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

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const schemaDir = join(root, 'protocol', 'schema');
const corpusDir = join(root, 'tests', 'corpus');
const BASE = 'https://attune.example/schema/';

const CLIENT_TYPES = ['hello', 'ping', 'consent', 'turn', 'control', 'pause_request',
  'repair_attempt', 'repair_accept', 'rupture_mark', 'rupture_repair', 'rupture_confirm',
  'rupture_dismiss', 'note'];
const SERVER_SCHEMAS = ['ack', 'ack-hello', 'error', 'event', 'state', 'bye'];
const EVENT_TYPES = ['room_created', 'joined', 'left', 'consented', 'turn', 'control',
  'pause_requested', 'repair_attempt', 'repair_accepted', 'rupture_opened', 'rupture_suspected',
  'rupture_confirmed', 'rupture_dismissed', 'rupture_repaired', 'note'];

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
  const rep = validator('event/rupture_repaired');
  assert.ok(!rep({ type: 'rupture_repaired', at: 1, by: 'therapist', rupture_id: 1, how: 'therapist_strategy' }));
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
