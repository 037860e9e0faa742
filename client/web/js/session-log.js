// A finished or live session as the server stored it (GET /api/rooms/{id}/log,
// protocol/HTTP.md): every event with the state right after it, folded by the
// C core and sent a page at a time. Nothing here folds events: the room at any
// point is the stored state (each page's first event carries it whole, later
// ones a patch of the top-level keys that changed, which this file applies),
// plus the events up to there for the record of what was said. Ruptures
// (named or confirmed: what the partners saw) and suspicions (the software's,
// staff only) are kept apart; a legacy (protocol 1) log keeps its old shapes.

import { RoomModel } from './model.js';
import { staffApi } from './api.js';

export const OPENINGS = new Set(['rupture_opened', 'rupture_suspected']);
export const PAGE_EVENTS = 1000; // the most the server sends in one page

const wait = (ms) => new Promise((r) => setTimeout(r, ms));

/** One page of the log; a busy server (503 with Retry-After) is asked again. */
export async function fetchLogPage(roomId, { after = 0, upto = null, states = 'each' } = {}) {
  const q = new URLSearchParams({ after: String(after), limit: String(PAGE_EVENTS), states });
  if (upto !== null) q.set('upto', String(upto));
  for (let attempt = 0; ; attempt += 1) {
    try {
      return await staffApi('GET', `/api/rooms/${encodeURIComponent(roomId)}/log?${q}`);
    } catch (err) {
      if (err.status !== 503 || attempt >= 20) throw err;
      await wait((err.retryAfterS || 1) * 1000);
    }
  }
}

export class SessionLog {
  /** From the first page (after=0); more pages come through addPage. */
  constructor(first) {
    this.room = first.room;
    this.exercise = first.exercise;
    this.vocab = first.vocab;
    this.events = [];
    this.indexOfSeq = new Map();
    // Every event of the session up to the moment the first page was made
    // (seqs 1..upto); later pages are asked for up to the same seq.
    this.total = first.upto;
    this.complete = false;
    this.stateHash = null;
    this.lastState = null; // the final state the last page sends
    this.addPage(first);
    // Read as a read-only staff viewer: nobody's "you", the therapist's view
    // (the stored states are the therapist's: private line and check-in included).
    this.ack = {
      protocol: 2,
      room: first.room.id,
      role: 'observer',
      exercise: first.exercise,
      vocab: first.vocab,
      consent: first.consent,
      safety: first.safety || null,
    };
  }

  /** Loads one session's log: the first page, then (in the background when
   * onPage is given, which hears of each page) the rest, in order. */
  static async load(roomId, { states = 'each', onPage = null } = {}) {
    const log = new SessionLog(await fetchLogPage(roomId, { states }));
    log.states = states;
    log.roomId = roomId;
    const rest = log.loadRest(onPage);
    if (!onPage) await rest;
    else log.loading = rest;
    return log;
  }

  /** The pages after the first, in order; the next one is asked for as soon
   * as a page arrives, so the server builds it while this one is read. */
  async loadRest(onPage) {
    const ask = (after) => fetchLogPage(this.roomId, { after, upto: this.total, states: this.states });
    let next = this.complete ? null : ask(this.nextAfter);
    while (next) {
      const page = await next;
      next = page.more ? ask(page.next_after) : null;
      this.addPage(page);
      if (onPage) onPage(this);
    }
  }

  /** Appends a page's events, each with its whole state (a patch applied to
   * the state before it: unchanged values are shared, not copied). */
  addPage(page) {
    let prev = this.events.length ? this.events[this.events.length - 1].state : null;
    for (const e of page.events) {
      let state;
      if (e.state) state = e.state;
      else if (e.patch && prev) state = { ...prev, ...e.patch };
      else state = null; // states=none: only the final state is sent
      this.indexOfSeq.set(e.seq, this.events.length);
      this.events.push({ seq: e.seq, event: e.event, state });
      prev = state;
    }
    this.nextAfter = page.next_after;
    if (!page.more) {
      this.complete = true;
      this.stateHash = page.state_hash;
      this.lastState = page.final_state;
    }
  }

  get length() {
    return this.events.length;
  }

  /** The state after the last event loaded (the session's final one once complete). */
  get finalState() {
    if (this.complete && this.lastState) return this.lastState;
    return this.events.length ? this.events[this.events.length - 1].state : null;
  }

  get startAt() {
    return this.events.length ? this.events[0].event.at : 0;
  }

  get endAt() {
    return this.events.length ? this.events[this.events.length - 1].event.at : 0;
  }

  /** The room as it stood right after event i, as a RoomModel the room views can read. */
  modelAt(i) {
    const m = new RoomModel();
    m.setAck(this.ack);
    for (let k = 0; k <= i && k < this.events.length; k += 1) m.addEvent(this.events[k].seq, this.events[k].event);
    const e = this.events[Math.min(i, this.events.length - 1)];
    const state = e && (e.state || (i >= this.events.length - 1 ? this.finalState : null));
    if (state) m.setState(state);
    return m;
  }

  /** A model holding every event and the last state (for the report). */
  modelAtEnd() {
    return this.modelAt(this.events.length - 1);
  }

  /** Index of the event with this seq, or of the first event after it. */
  indexAtOrAfter(seq) {
    if (this.indexOfSeq.has(seq)) return this.indexOfSeq.get(seq);
    const i = this.events.findIndex((e) => e.seq > seq);
    return i < 0 ? this.events.length - 1 : i;
  }

  /**
   * Runs of events during which the room stood at one step (same round, step,
   * actor and status, per the stored states): [{from, to, round, step, actor, speaker}].
   */
  stepRuns() {
    const runs = [];
    this.events.forEach(({ state }, i) => {
      const key = state.step ? `${state.round}|${state.step.id}|${state.step.actor}|${state.status}` : `none|${state.status}`;
      const last = runs[runs.length - 1];
      if (last && last.key === key) last.to = i;
      else {
        runs.push({ key, from: i, to: i, round: state.round, step: state.step, status: state.status, speaker: state.speaker });
      }
    });
    return runs;
  }

  /** Index of the first event of this type matching `pred`, or null. */
  findIndex(type, pred) {
    const i = this.events.findIndex((e) => e.event.type === type && pred(e.event));
    return i < 0 ? null : i;
  }

  /**
   * Every suspicion as it ended up (protocol 2), with the positions where it
   * was raised and where the therapist decided it (null while undecided).
   */
  suspicionSpans() {
    const last = this.finalState;
    if (!last || !Array.isArray(last.suspicions)) return [];
    return [...last.suspicions]
      .sort((a, b) => a.raised_seq - b.raised_seq)
      .map((sp) => {
        let to = null;
        if (sp.status === 'confirmed') to = this.findIndex('rupture_confirmed', (e) => e.suspicion_id === sp.id);
        else if (sp.status === 'dismissed') to = this.findIndex('rupture_dismissed', (e) => e.suspicion_id === sp.id);
        const dismissal = sp.status === 'dismissed' ? this.events.find((e) => e.event.type === 'rupture_dismissed' && e.event.suspicion_id === sp.id) : null;
        return { suspicion: sp, from: this.indexAtOrAfter(sp.raised_seq), to, note: dismissal ? dismissal.event.note || null : null };
      });
  }

  /** Every rupture as it ended up, with the positions of its opening and its close (repair or dismissal). */
  ruptureSpans() {
    const last = this.finalState;
    if (!last) return [];
    return [...last.ruptures]
      .sort((a, b) => a.opened_seq - b.opened_seq)
      .map((r) => {
        let closeSeq = r.repair ? r.repair.seq : null;
        if (r.status === 'dismissed') {
          const d = this.events.find((e) => e.event.type === 'rupture_dismissed' && e.event.rupture_id === r.id);
          if (d) closeSeq = d.seq;
        }
        return {
          rupture: r,
          from: this.indexAtOrAfter(r.opened_seq),
          to: closeSeq != null ? this.indexAtOrAfter(closeSeq) : null,
        };
      });
  }
}
