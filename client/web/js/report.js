// The session report (therapist only, behind the session cookie): for each
// partner the reactive and primary emotions and the needs they named, their
// connection ratings as a small SVG chart; every rupture with its kind,
// marker, evidence and time to repair; the software's suspicions apart
// (suspected, confirmed, dismissed); pauses as pauses; the check-in answers
// and the private line, marked private; takeovers; the therapist's private
// notes. Read from the stored log and its final folded state; prints cleanly
// to PDF. At the top, whether the stored record is the one that was written
// (GET /api/rooms/{id}/verify: every event's seal and hash chain, and the
// head's MAC): "Record verified" with the head's seq and a short hash, or a
// warning that says what did not check.

import { h, replaceChildren, formatClock, formatDuration } from './dom.js';
import { staffRoleName, RUPTURE_KIND, SOURCE, REPAIR_HOW } from './words.js';
import { apiProblem, staffApi } from './api.js';
import { startStaffPage } from './staff-shell.js';
import { SessionLog } from './session-log.js';
import { evidenceText, logText } from './event-text.js';

const SVG = 'http://www.w3.org/2000/svg';
const PARTNERS = ['partner_a', 'partner_b'];
const NAMED = [
  ['emotion_reactive', 'On the surface (reactive emotions)', 'No reactive emotion named.'],
  ['emotion_primary', 'Underneath (primary emotions)', 'No primary emotion named.'],
  ['need', 'Needs', 'No need named.'],
];

const app = document.getElementById('app');

function problem(title, text) {
  replaceChildren(app, h('section', { class: 'card problem' }, h('h1', {}, title), h('p', {}, text), h('p', {}, h('a', { href: 'dashboard.html' }, 'Back to your rooms'))));
}

function s(tag, attrs, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, String(v));
  for (const c of children) el.append(c);
  return el;
}

function longDate(ms) {
  return new Date(ms).toLocaleDateString([], { weekday: 'long', day: 'numeric', month: 'long', year: 'numeric' });
}

/** What a partner named in their turns: [{kind, entry, text, others, event, def}] in order. */
function namedBy(log, model, role) {
  const out = [];
  for (const { event } of log.events) {
    if (event.type !== 'turn' || event.by !== role) continue;
    const def = model.stepDef(event.step);
    if (!def) continue;
    for (const input of def.inputs) {
      const value = event.input[input.name];
      if (!value || !NAMED.some(([k]) => k === input.kind)) continue;
      const vocab = input.vocab || { emotion_reactive: 'reactive', emotion_primary: 'primary', need: 'needs' }[input.kind];
      // The other answers of the same turn give the words around it (what I did, how strong, a request).
      const others = def.inputs
        .filter((o) => o !== input && event.input[o.name] !== undefined && (o.kind === 'text' || o.kind === 'rating'))
        .map((o) => [o.label, o.kind === 'rating' ? `${event.input[o.name]} of ${o.max != null ? o.max : 10}` : event.input[o.name]]);
      out.push({ kind: input.kind, entry: value.id ? model.vocabEntry(vocab, value.id) : null, id: value.id, text: value.text, others, event, def });
    }
  }
  return out;
}

function ratingsBy(log, model, role) {
  const out = [];
  for (const { event } of log.events) {
    if (event.type !== 'turn' || event.by !== role) continue;
    const def = model.stepDef(event.step);
    if (!def || def.tag !== 'connection_rating') continue;
    for (const input of def.inputs) {
      if (input.kind === 'rating' && typeof event.input[input.name] === 'number') {
        out.push({ value: event.input[input.name], max: input.max != null ? input.max : 10, min: input.min != null ? input.min : 0, at: event.at, round: event.round });
      }
    }
  }
  return out;
}

/** A small line chart of (at least one) ratings over the session; its words are in its label. */
function ratingChart(points, name) {
  const W = 320;
  const H = 130;
  const left = 28;
  const right = 12;
  const top = 16;
  const bottom = 24;
  const max = Math.max(...points.map((p) => p.max));
  const min = Math.min(...points.map((p) => p.min));
  const x = (i) => (points.length === 1 ? left + (W - left - right) / 2 : left + (i * (W - left - right)) / (points.length - 1));
  const y = (v) => top + ((max - v) * (H - top - bottom)) / Math.max(max - min, 1);
  const label = `${name}'s connection ratings, in order: ${points.map((p) => `${p.value} of ${p.max}`).join(', ')}.`;
  const svg = s('svg', { class: 'rating-chart', viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': label });
  for (const v of [min, Math.round((min + max) / 2), max]) {
    svg.append(s('line', { class: 'grid', x1: left, x2: W - right, y1: y(v), y2: y(v) }), s('text', { x: left - 6, y: y(v) + 4, 'text-anchor': 'end' }, String(v)));
  }
  svg.append(s('line', { class: 'axis', x1: left, x2: left, y1: top, y2: H - bottom }));
  if (points.length > 1) svg.append(s('polyline', { class: 'line', points: points.map((p, i) => `${x(i)},${y(p.value)}`).join(' ') }));
  points.forEach((p, i) => {
    svg.append(
      s('circle', { class: 'point', cx: x(i), cy: y(p.value), r: 4.5 }),
      s('text', { class: 'value', x: x(i), y: y(p.value) - 8, 'text-anchor': 'middle' }, String(p.value)),
      s('text', { x: x(i), y: H - 6, 'text-anchor': 'middle' }, `round ${p.round + 1}, ${formatClock(p.at).slice(0, 5)}`),
    );
  });
  return svg;
}

function partnerSection(log, model, role) {
  const name = staffRoleName(role);
  const named = namedBy(log, model, role);
  const ratings = ratingsBy(log, model, role);
  const groups = NAMED.map(([kind, heading, none]) => {
    const items = named.filter((n) => n.kind === kind);
    return [
      h('h3', {}, heading),
      items.length
        ? h(
            'ul',
            { class: 'named', dataset: { kind } },
            items.map((n) =>
              h(
                'li',
                {},
                n.entry ? h('p', {}, h('span', { class: 'what' }, n.entry.label), h('span', { class: 'sentence' }, ` · “${n.entry.sentence}”`)) : n.id ? h('p', { class: 'what' }, n.id) : null,
                n.text ? h('p', { class: 'own' }, `In their words: “${n.text}”`) : null,
                n.others.map(([label, v]) => h('p', { class: 'context' }, h('span', { class: 'sentence' }, `${label}: `), String(v))),
                h('p', { class: 'where' }, `Round ${n.event.round + 1}, ${n.def.title}, ${formatClock(n.event.at)}`),
              ),
            ),
          )
        : h('p', { class: 'empty' }, none),
    ];
  });
  return h(
    'section',
    { class: `card partner-report${role === 'partner_a' ? '' : ' page-break'}`, dataset: { partner: role }, 'aria-labelledby': `${role}-h` },
    h('h2', { id: `${role}-h` }, name),
    groups,
    h('h3', {}, 'Connection ratings'),
    ratings.length ? ratingChart(ratings, name) : h('p', { class: 'empty' }, 'No connection rating given.'),
  );
}

function repairWords(model, r) {
  if (!r.repair) return null;
  if (r.repair.how === 'therapist_strategy') return `by the therapist: ${model.strategyLabel(r.repair.strategy)}, ${formatClock(r.repair.at)}`;
  return `${REPAIR_HOW[r.repair.how] || r.repair.how} (${staffRoleName(r.repair.by)}), ${formatClock(r.repair.at)}`;
}

function ruptureSection(log, model) {
  const last = log.finalState;
  const rs = [...last.ruptures].sort((a, b) => a.opened_seq - b.opened_seq);
  const confirmedFrom = new Map((last.suspicions || []).filter((sp) => sp.rupture_id).map((sp) => [sp.rupture_id, sp]));
  const bySeq = new Map(log.events.map((e) => [e.seq, e.event]));
  const stepTitle = (id) => (model.stepDef(id) || {}).title || id;
  const notesFor = (id) => model.notes().filter(([, e]) => e.rupture_id === id);
  const items = rs.map((r) => {
    const evidence = r.evidence.map((seq) => {
      const e = bySeq.get(seq);
      return h('li', {}, `event ${seq}, ${e ? `${formatClock(e.at)}: ${evidenceText(model, e)}` : 'not in the log'}`);
    });
    const dismissal = log.events.find((e) => e.event.type === 'rupture_dismissed' && e.event.rupture_id === r.id);
    const rows = [
      ['Between', `${staffRoleName(r.who)} with ${staffRoleName(r.with)}`],
      ['Noticed', SOURCE[r.source] || r.source],
      ['Opened', `${formatClock(r.opened_at)}${r.step ? `, round ${r.round + 1}, ${stepTitle(r.step)}` : ''}${r.confirmed ? ` (a suspicion you confirmed${r.suspicion_id || confirmedFrom.has(r.id) ? `: suspicion ${r.suspicion_id || confirmedFrom.get(r.id).id}` : ''})` : ''}`],
      ['Evidence', evidence.length ? h('ul', { class: 'evidence' }, evidence) : 'none recorded'],
    ];
    if (r.status === 'repaired') {
      rows.push(['Repaired', repairWords(model, r)], ['Time to repair', formatDuration(r.repair.time_to_repair_ms)]);
    } else if (r.status === 'open') {
      rows.push([
        'Repaired',
        last.status === 'ended'
          ? `never: still open when the session ended, ${formatDuration(log.endAt - r.opened_at) || '0 s'} after it opened`
          : `not yet: open for ${formatDuration(log.endAt - r.opened_at) || '0 s'} at the last recorded event`,
      ]);
    } else if (r.status === 'dismissed') {
      rows.push(['Dismissed', dismissal ? `${formatClock(dismissal.event.at)}${dismissal.event.note ? `: “${dismissal.event.note}”` : ''}` : 'yes']);
    } else if (r.status === 'suspected') {
      rows.push(['Status', 'suspected, never confirmed or dismissed']);
    }
    for (const [, e] of notesFor(r.id)) rows.push(['Your note', `“${e.text}”`]);
    return h(
      'li',
      { class: `report-rupture ${r.status}`, dataset: { rupture: String(r.id) } },
      h('h3', {}, `Rupture ${r.id}: ${RUPTURE_KIND[r.kind] || r.kind}, ${model.markerLabel(r.marker)}`),
      h('dl', {}, rows.map(([k, v]) => [h('dt', {}, k), h('dd', {}, v)])),
    );
  });
  const repaired = rs.filter((r) => r.status === 'repaired');
  const summary = rs.length
    ? `${rs.length} rupture${rs.length === 1 ? '' : 's'}: ${repaired.length} repaired, ${rs.filter((r) => r.status === 'open').length} left open${rs.filter((r) => r.status === 'dismissed').length ? `, ${rs.filter((r) => r.status === 'dismissed').length} dismissed` : ''}${rs.filter((r) => r.status === 'suspected').length ? `, ${rs.filter((r) => r.status === 'suspected').length} still suspected` : ''}.`
    : 'No ruptures were recorded in this session.';
  return h(
    'section',
    { class: 'card page-break', 'aria-labelledby': 'ruptures-h' },
    h('h2', { id: 'ruptures-h' }, 'Ruptures and repairs'),
    h('p', {}, summary),
    last.ruptures_dropped ? h('p', { class: 'hint' }, `${last.ruptures_dropped} further ruptures were counted but not kept (the room's limit is 128).`) : null,
    items.length ? h('ol', { class: 'report-ruptures' }, items) : null,
  );
}

/** The software's suspicions (protocol 2), counted and listed by what the therapist decided. */
function suspicionSection(log, model) {
  const last = log.finalState;
  const list = Array.isArray(last.suspicions) ? [...last.suspicions].sort((a, b) => a.raised_seq - b.raised_seq) : [];
  const bySeq = new Map(log.events.map((e) => [e.seq, e.event]));
  const stepTitle = (id) => (model.stepDef(id) || {}).title || id;
  const n = (st) => list.filter((sp) => sp.status === st).length;
  const dismissNote = (id) => {
    const d = log.events.find((e) => e.event.type === 'rupture_dismissed' && e.event.suspicion_id === id);
    return d ? d.event.note || null : null;
  };
  const notesFor = (id) => model.notes().filter(([, e]) => e.suspicion_id === id);
  const groups = [
    ['confirmed', 'Confirmed (became ruptures)'],
    ['dismissed', 'Dismissed'],
    ['suspected', 'Never decided'],
  ].map(([status, heading]) => {
    const items = list.filter((sp) => sp.status === status);
    if (!items.length) return null;
    return [
      h('h3', {}, heading),
      h(
        'ol',
        { class: 'report-suspicions', dataset: { status } },
        items.map((sp) => {
          const evidence = (sp.evidence || []).map((seq) => {
            const e = bySeq.get(seq);
            return h('li', {}, `event ${seq}, ${e ? `${formatClock(e.at)}: ${evidenceText(model, e)}` : 'not in the log'}`);
          });
          const rows = [
            ['Between', `${staffRoleName(sp.who)} with ${staffRoleName(sp.with)}`],
            ['Noticed', `${formatClock(sp.raised_at)}${sp.step ? `, round ${sp.round + 1}, ${stepTitle(sp.step)}` : ''}`],
            ['Evidence', evidence.length ? h('ul', { class: 'evidence' }, evidence) : 'none recorded'],
          ];
          if (sp.class) rows.splice(1, 0, ['Kind of blame', sp.class]);
          if (status === 'confirmed') rows.push(['Decided', `${formatClock(sp.decided_at)}: confirmed as rupture ${sp.rupture_id}`]);
          if (status === 'dismissed') {
            const note = dismissNote(sp.id);
            rows.push(['Decided', `${formatClock(sp.decided_at)}: dismissed${note ? `, “${note}”` : ''}`]);
          }
          for (const [, e] of notesFor(sp.id)) rows.push(['Your note', `“${e.text}”`]);
          return h(
            'li',
            { class: `report-suspicion ${sp.status}`, dataset: { suspicion: String(sp.id) } },
            h('h4', {}, `Suspicion ${sp.id}: ${RUPTURE_KIND[sp.kind] || sp.kind}, ${model.markerLabel(sp.marker)}`),
            h('dl', {}, rows.map(([k, v]) => [h('dt', {}, k), h('dd', {}, v)])),
          );
        }),
      ),
    ];
  });
  return h(
    'section',
    { class: 'card page-break', 'aria-labelledby': 'suspicions-h' },
    h('h2', { id: 'suspicions-h' }, 'The software’s suspicions'),
    h('p', { class: 'hint' }, 'Only you and an observing supervisor saw these; a partner saw one only once you confirmed it.'),
    h(
      'p',
      { class: 'suspicion-counts' },
      list.length
        ? ['suspected', 'confirmed', 'dismissed'].map((st) => [h('span', { class: `chip ${st}`, dataset: { count: st } }, `${n(st)} ${st === 'suspected' ? 'never decided' : st}`), ' '])
        : 'The software raised no suspicions in this session.',
    ),
    groups,
    last.suspicions_dropped ? h('p', { class: 'hint' }, `${last.suspicions_dropped} further suspicions were counted but not kept.`) : null,
  );
}

/** Pauses (a partner's request, the therapist's pause, a withdrawn consent): time-outs, not ruptures. */
function pausesSection(log, model) {
  const items = log.events.filter(
    ({ event: e }) => e.type === 'pause_requested' || e.type === 'consent_withdrawn' || (e.type === 'control' && ['pause', 'resume', 'proceed'].includes(e.action)),
  );
  const takeovers = log.events.filter(({ event: e }) => e.type === 'replaced');
  return h(
    'section',
    { class: 'card', 'aria-labelledby': 'pauses-h' },
    h('h2', { id: 'pauses-h' }, 'Pauses, consent and connections'),
    items.length
      ? h('ol', { class: 'report-pauses' }, items.map(({ seq, event }) => h('li', { dataset: { seq: String(seq), type: event.type } }, h('span', { class: 'time' }, formatClock(event.at)), ' ', logText(model, event))))
      : h('p', { class: 'empty' }, 'No pauses.'),
    h('h3', {}, 'Links opened on another device'),
    takeovers.length
      ? h('ol', { class: 'report-takeovers' }, takeovers.map(({ seq, event }) => h('li', { dataset: { seq: String(seq) } }, h('span', { class: 'time' }, formatClock(event.at)), ' ', logText(model, event))))
      : h('p', { class: 'empty' }, 'None: each link was used in one window at a time.'),
  );
}

/** The check-in answers and the private line, marked private. */
function privateSection(log, model) {
  const answers = log.events.filter(({ event: e }) => e.type === 'checkin_answered');
  const line = log.events.filter(({ event: e }) => e.type === 'private_message' || e.type === 'therapist_requested');
  const last = log.finalState;
  const held = log.events.some(({ event: e }) => e.type === 'control' && e.action === 'proceed');
  const completed = log.events.some(({ event: e }) => e.type === 'checkin_completed');
  let outcome = '';
  if (completed) outcome = 'Every answer was clear; the joint session began by itself.';
  else if (held) outcome = 'The check-in held the session; you chose to go on with the joint session.';
  else if (answers.length && last.status === 'ended') outcome = 'The check-in held the session; it ended without the joint work.';
  return h(
    'section',
    { class: 'card page-break private-report', 'aria-labelledby': 'private-h' },
    h('h2', { id: 'private-h' }, h('span', { class: 'chip private' }, 'private'), ' Check-in and private line'),
    h('p', { class: 'hint' }, 'Only you and the partner concerned saw these: never the other partner, never a supervisor.'),
    h('h3', {}, 'Safety check-in'),
    answers.length
      ? h(
          'ul',
          { class: 'report-checkin' },
          answers.map(({ seq, event }) => {
            const list = model.describeAnswers(event.answers);
            const st = last.checkin && last.checkin[event.by];
            const holds = st && st.hold !== undefined ? st.hold : list.some((a) => a.holds);
            return h(
              'li',
              { dataset: { seq: String(seq), partner: event.by } },
              h('p', {}, h('strong', {}, staffRoleName(event.by)), ` at ${formatClock(event.at)}`, holds ? h('span', { class: 'chip hold' }, 'held the session') : null),
              h('dl', {}, list.map((a) => [h('dt', {}, a.question), h('dd', {}, a.answer)])),
              event.note ? h('p', {}, `Note: “${event.note}”`) : null,
            );
          }),
        )
      : h('p', { class: 'empty' }, 'No check-in answers recorded.'),
    outcome ? h('p', {}, outcome) : null,
    h('h3', {}, 'Private line'),
    line.length
      ? h('ol', { class: 'report-private' }, line.map(({ seq, event }) => h('li', { dataset: { seq: String(seq) } }, h('span', { class: 'time' }, formatClock(event.at)), ' ', logText(model, event).replace(/^Private: /, ''))))
      : h('p', { class: 'empty' }, 'No private messages.'),
  );
}

function notesSection(log, model) {
  const notes = model.notes();
  const dismissals = log.events.filter((e) => e.event.type === 'rupture_dismissed' && e.event.note);
  const items = [
    ...notes.map(([seq, e]) => ({ seq, at: e.at, about: e.rupture_id ? `rupture ${e.rupture_id}` : e.suspicion_id ? `suspicion ${e.suspicion_id}` : null, text: e.text })),
    ...dismissals.map(({ seq, event }) => ({
      seq,
      at: event.at,
      about: event.suspicion_id !== undefined ? `dismissing suspicion ${event.suspicion_id}` : `dismissing rupture ${event.rupture_id}`,
      text: event.note,
    })),
  ].sort((a, b) => a.seq - b.seq);
  return h(
    'section',
    { class: 'card page-break', 'aria-labelledby': 'notes-h' },
    h('h2', { id: 'notes-h' }, 'Your private notes'),
    h('p', { class: 'hint' }, 'Never shown to the partners.'),
    items.length
      ? h(
          'ol',
          { class: 'report-notes' },
          items.map((n) => h('li', { class: 'note', dataset: { seq: String(n.seq) } }, h('span', { class: 'time' }, formatClock(n.at)), n.about ? h('span', { class: 'chip' }, n.about) : null, h('p', {}, n.text))),
        )
      : h('p', { class: 'empty' }, 'No notes were written.'),
  );
}

/** The record check's line: verified with the head, or a clear warning. */
function recordCheck(check) {
  if (!check) {
    return h('p', { class: 'record-check unknown hint', dataset: { verified: 'unknown' } }, 'The record could not be checked just now; reload the page to try again.');
  }
  if (check.verified) {
    const head = check.head ? `head #${check.head.seq}, ${String(check.head.hash).slice(0, 12)}` : 'no events yet';
    return h(
      'p',
      { class: 'record-check verified', dataset: { verified: 'yes' } },
      h('strong', {}, 'Record verified'),
      ` · ${check.events} ${check.events === 1 ? 'event' : 'events'}, ${head}. Every event is sealed and chained to the one before it, up to a head signed with this room’s key: this is the record as it was written.`,
    );
  }
  return h(
    'div',
    { class: 'record-check broken', role: 'alert', dataset: { verified: 'no' } },
    h('p', {}, h('strong', {}, 'The record does not verify.'), ' The stored events are not exactly the ones that were written: ', check.problem || 'something in them was changed.', check.bad_seq ? ` (first at event ${check.bad_seq})` : ''),
    h('p', {}, 'Do not rely on this report. Keep it as it is and tell whoever runs Attune for your practice.'),
  );
}

function summarySection(log, roomId, check) {
  const last = log.finalState;
  const ex = log.exercise;
  const ended =
    last.status === 'ended' ? (last.ended_reason === 'therapist' ? 'Ended by the therapist' : 'Completed (every round)') : `Not ended yet (${last.status.replace('_', ' ')}; the report shows it so far)`;
  const rounds = last.status === 'ended' && last.ended_reason === 'completed' ? `${last.rounds} of ${last.rounds}` : `${last.round + 1} of ${last.rounds} reached`;
  const print = h('button', { type: 'button', class: 'primary' }, 'Print or save as PDF');
  print.addEventListener('click', () => window.print());
  const q = `?room=${encodeURIComponent(roomId)}`;
  return h(
    'section',
    { class: 'card report-summary', 'aria-labelledby': 'report-h' },
    h('h1', { id: 'report-h' }, 'Session report'),
    h('p', { class: 'hint' }, 'Confidential: what a couple shared in therapy. Keep it as you keep clinical notes.'),
    h(
      'dl',
      { class: 'report-meta' },
      [
        ['Exercise', ex.title],
        ['Room', roomId],
        ['Date', longDate(log.startAt)],
        ['Time', `${formatClock(log.startAt)} to ${formatClock(log.endAt)} (${formatDuration(log.endAt - log.startAt)})`],
        ['Rounds', rounds],
        ['Outcome', ended],
        ['Record', `${log.length} events; final state hash ${String(log.stateHash || '').slice(0, 16)}…`],
      ].map(([k, v]) => [h('dt', {}, k), h('dd', {}, v)]),
    ),
    recordCheck(check),
    h('div', { class: 'report-actions' }, print, h('a', { class: 'button-link', href: `replay.html${q}` }, 'Open the replay'), h('a', { class: 'button-link', href: 'dashboard.html' }, 'Back to your rooms')),
  );
}

async function start() {
  const roomId = new URLSearchParams(location.search).get('room');
  await startStaffPage();
  if (!roomId) {
    problem('Which session?', 'This page needs a room. Open a report from your rooms.');
    return;
  }
  document.getElementById('replay-link').href = `replay.html?room=${encodeURIComponent(roomId)}`;
  // Every event, without the state after each (the report reads the events
  // and the final state only): page after page, then the report at once.
  let log;
  try {
    log = await SessionLog.load(roomId, { states: 'none' });
  } catch (err) {
    // The server refuses to serve a log whose chain is broken: say so.
    const check = await staffApi('GET', `/api/rooms/${encodeURIComponent(roomId)}/verify`).catch(() => null);
    if (check && !check.verified) {
      replaceChildren(app, h('section', { class: 'card problem' }, h('h1', {}, 'This report could not be made'), recordCheck(check), h('p', {}, h('a', { href: 'dashboard.html' }, 'Back to your rooms'))));
      return;
    }
    problem('This report could not be made', apiProblem(err));
    return;
  }
  if (!log.length) {
    problem('Nothing recorded yet', 'This room has no events yet.');
    return;
  }
  // A missing answer is said as such, never as "verified".
  const check = await staffApi('GET', `/api/rooms/${encodeURIComponent(roomId)}/verify`).catch(() => null);
  const model = log.modelAtEnd();
  document.title = `Report · ${log.exercise.title} · ${new Date(log.startAt).toLocaleDateString()} · Attune`;
  replaceChildren(
    app,
    h(
      'div',
      { class: 'report' },
      summarySection(log, roomId, check),
      PARTNERS.map((role) => partnerSection(log, model, role)),
      ruptureSection(log, model),
      suspicionSection(log, model),
      pausesSection(log, model),
      privateSection(log, model),
      notesSection(log, model),
    ),
  );
}

start();
