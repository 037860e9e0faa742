// Pieces of the room shown to everyone: the turn bar (whose turn, your role,
// round), the record of what was said in a round, presence (and, for
// partners, the observer badge), and the sentence announced to screen readers
// when the turn or the status changes.

import { h } from './dom.js';
import { roleName, staffRoleName, capitalize, describeValue } from './words.js';

export function nameFor(model, role) {
  return model.isStaff ? staffRoleName(role) : capitalize(roleName(role, model.role));
}

/** Identifies "this step, this time": changes when a new form should be built. */
export function stepKey(model) {
  const s = model.state;
  if (!s || !s.step) return `none|${s ? s.status : ''}`;
  return `${s.round}|${s.step.id}|${s.step.actor}|${model.lastProgressSeq()}`;
}

export function turnBar(model) {
  const s = model.state;
  const you = model.role;
  const parts = [];
  if (s.status === 'ended') {
    const why = s.ended_reason === 'therapist' ? ' (ended by the therapist)' : s.ended_reason === 'completed' ? ' (completed)' : '';
    parts.push(h('p', { class: 'turn-who' }, 'The session has ended', h('span', { class: 'turn-step' }, why)));
  } else if (s.status === 'waiting_consent') {
    parts.push(h('p', { class: 'turn-who' }, 'Getting ready'));
  } else if (s.status === 'checking_in') {
    // Partners see the same words whatever anyone answered.
    const held = model.isStaff && s.checkin && s.checkin.held;
    parts.push(h('p', { class: 'turn-who' }, model.isStaff ? 'Safety check-in' : 'Getting ready', held ? h('span', { class: 'turn-step' }, ' · held for you to decide') : null));
  } else if (s.status === 'paused' && s.step) {
    // Nobody's turn while paused: say so first, and what comes next.
    const mine = s.step.actor === you;
    const next = mine ? 'your turn' : `${nameFor(model, s.step.actor)}’s turn`;
    parts.push(h('p', { class: 'turn-who' }, 'Paused', h('span', { class: 'turn-step' }, ` · then ${next}: ${s.step.title}`)));
  } else if (s.step) {
    const mine = s.step.actor === you;
    const who = mine ? 'Your turn' : `${nameFor(model, s.step.actor)}’s turn`;
    parts.push(
      h('p', { class: `turn-who${mine ? ' mine' : ''}` }, who, h('span', { class: 'turn-step' }, ` · ${s.step.title}`)),
    );
  }
  const meta = [];
  meta.push(`Round ${s.round + 1} of ${s.rounds}`);
  if (you === 'partner_a' || you === 'partner_b') {
    meta.push(s.speaker === you ? 'You are the speaker' : 'You are the listener');
  } else {
    meta.push(`Speaker: ${staffRoleName(s.speaker)} · Listener: ${staffRoleName(s.listener)}`);
  }
  if (s.status === 'paused') meta.push(`Paused by ${nameFor(model, s.paused_by).replace(/^You$/, 'you')}`);
  return h(
    'div',
    { class: `turn-bar status-${s.status}` },
    parts,
    h('p', { class: 'turn-meta' }, meta.map((m, i) => h('span', { class: i === 1 ? 'role-pill' : 'meta-item' }, m))),
  );
}

/** One turn as a card: who, which step, each answer with its label. */
export function turnCard(model, seq, event) {
  const def = model.stepDef(event.step);
  const inputs = def ? def.inputs : Object.keys(event.input).map((name) => ({ name, label: name }));
  const rows = [];
  for (const inputDef of inputs) {
    const value = event.input[inputDef.name];
    if (value === undefined) continue;
    rows.push(h('dt', {}, inputDef.label), h('dd', {}, describeValue(model, def ? inputDef : null, value)));
  }
  const mine = event.by === model.role;
  return h(
    'li',
    { class: `turn-card${mine ? ' mine' : ''}`, dataset: { seq: String(seq) } },
    h('p', { class: 'turn-card-head' }, h('span', { class: 'who' }, nameFor(model, event.by)), h('span', { class: 'what' }, def ? def.title : event.step)),
    h('dl', {}, rows),
  );
}

export function roundThread(model, round, heading) {
  const turns = model.turns(round);
  const list = h(
    'ol',
    { class: 'thread' },
    turns.map(([seq, e]) => turnCard(model, seq, e)),
  );
  return h(
    'section',
    { class: 'card thread-card', 'aria-labelledby': `round-${round}-h` },
    h('h2', { id: `round-${round}-h` }, heading),
    turns.length ? list : h('p', { class: 'hint' }, 'Nothing has been shared in this round yet.'),
  );
}

export function presenceLine(model) {
  const p = model.state.present;
  const items = ['partner_a', 'partner_b', 'therapist']
    .filter((r) => r !== model.role)
    .map((r) =>
      h(
        'li',
        { class: p[r] ? 'here' : 'away' },
        h('span', { class: 'dot', 'aria-hidden': 'true' }),
        `${nameFor(model, r)} ${p[r] ? 'is here' : 'is not connected'}`,
      ),
    );
  if (p.observers) {
    const words = model.isStaff ? `${p.observers} observing` : p.observers === 1 ? 'A supervisor is observing' : `${p.observers} supervisors are observing`;
    items.push(h('li', { class: 'here' }, h('span', { class: 'dot', 'aria-hidden': 'true' }), words));
  }
  return h('ul', { class: 'presence', 'aria-label': 'Who is here' }, items);
}

/**
 * The partners' observer disclosure: a calm badge at the top of the room
 * whenever a supervisor is connected (null when none is).
 */
export function observerBadge(model) {
  const n = (model.state && model.state.present && model.state.present.observers) || 0;
  if (!n) return null;
  return h(
    'p',
    { class: 'observer-badge' },
    h('span', { class: 'eye', 'aria-hidden': 'true' }),
    h('strong', {}, n === 1 ? 'A supervisor is observing' : `${n} supervisors are observing`),
    h('span', { class: 'observer-more' }, 'They support your therapist and see what your therapist sees, except your private messages and check-in.'),
  );
}

/** The sentence for the live region when something changed, or ''. */
export function announcement(model, prev) {
  const s = model.state;
  if (!prev) return '';
  const observers = (st) => (st.present && st.present.observers) || 0;
  if (model.isPartner && observers(s) !== observers(prev)) {
    if (observers(s) > observers(prev)) return 'A supervisor is now observing this session.';
    if (!observers(s)) return 'The supervisor has stopped observing.';
  }
  if (prev.status !== s.status) {
    if (s.status === 'checking_in') return 'You have both agreed. Next, a short private check-in.';
    if (s.status === 'active' && (prev.status === 'waiting_consent' || prev.status === 'checking_in')) return `The session begins. ${turnSentence(model)}`;
    if (s.status === 'paused') return `The session is paused by ${roleName(s.paused_by, model.role)}.`;
    if (s.status === 'active' && prev.status === 'paused') return `The session has resumed. ${turnSentence(model)}`;
    if (s.status === 'ended') return 'The session has ended.';
  }
  if (s.status === 'waiting_consent' || s.status === 'checking_in') return '';
  const prevKey = prev.step ? `${prev.round}|${prev.step.id}|${prev.step.actor}` : '';
  const key = s.step ? `${s.round}|${s.step.id}|${s.step.actor}` : '';
  if (prevKey !== key && s.step) {
    const swapped = prev.speaker !== s.speaker ? 'Roles have swapped. ' : '';
    return `${swapped}${turnSentence(model)}`;
  }
  return '';
}

function turnSentence(model) {
  const s = model.state;
  if (!s.step) return '';
  if (s.step.actor === model.role) return `Your turn: ${s.step.title}.`;
  return `${nameFor(model, s.step.actor)}’s turn: ${s.step.title}.`;
}
