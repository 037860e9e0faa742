// A finished or live session as the server stored it (GET /api/rooms/{id}/log):
// every event with the state right after it, folded by the C core. Nothing
// here folds events: the room at any point is the stored state, plus the
// events up to there for the record of what was said. Ruptures (named or
// confirmed: what the partners saw) and suspicions (the software's, staff
// only) are kept apart; a legacy (protocol 1) log keeps its old shapes.

import { RoomModel } from './model.js';

export const OPENINGS = new Set(['rupture_opened', 'rupture_suspected']);

export class SessionLog {
  constructor(log) {
    this.room = log.room;
    this.exercise = log.exercise;
    this.vocab = log.vocab;
    this.events = log.events || [];
    this.stateHash = log.state_hash;
    this.indexOfSeq = new Map(this.events.map((e, i) => [e.seq, i]));
    // Read as a read-only staff viewer: nobody's "you", the therapist's view
    // (the stored states are the therapist's: private line and check-in included).
    this.ack = {
      protocol: 2,
      room: log.room.id,
      role: 'observer',
      exercise: log.exercise,
      vocab: log.vocab,
      consent: log.consent,
      safety: log.safety || null,
    };
  }

  get length() {
    return this.events.length;
  }

  get finalState() {
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
    if (this.events[i]) m.setState(this.events[i].state);
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
