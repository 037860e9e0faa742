// What the page knows about its room: the hello ack (exercise script,
// vocabularies, consent notice), every event it has seen (by seq) and the
// latest state. Views read from here; only main.js writes.

export const PARTNERS = ['partner_a', 'partner_b'];

export class RoomModel {
  constructor() {
    this.ack = null;
    this.events = new Map();
    this.state = null;
    this.maxSeq = 0;
  }

  get role() {
    return this.ack ? this.ack.role : null;
  }

  get isStaff() {
    return this.role === 'therapist' || this.role === 'observer';
  }

  setAck(ack) {
    if (this.ack && this.ack.room !== ack.room) {
      this.events.clear();
      this.state = null;
      this.maxSeq = 0;
    }
    this.ack = ack;
  }

  addEvent(seq, event) {
    if (!this.events.has(seq)) this.events.set(seq, event);
    if (seq > this.maxSeq) this.maxSeq = seq;
  }

  setState(state) {
    this.state = state;
    if (state.seq > this.maxSeq) this.maxSeq = state.seq;
  }

  /** Events in seq order as [seq, event] pairs. */
  orderedEvents() {
    return [...this.events.entries()].sort((a, b) => a[0] - b[0]);
  }

  turns(round) {
    return this.orderedEvents().filter(
      ([, e]) => e.type === 'turn' && (round === undefined || e.round === round),
    );
  }

  /** Seq of the latest event that moved the exercise (a turn or a step control). */
  lastProgressSeq() {
    let last = 0;
    for (const [seq, e] of this.events) {
      const moves =
        e.type === 'turn' ||
        (e.type === 'control' && ['advance', 'back', 'swap', 'end'].includes(e.action)) ||
        e.type === 'consented';
      if (moves && seq > last) last = seq;
    }
    return last;
  }

  /** Repair attempts nobody has accepted yet, oldest first. */
  openRepairAttempts() {
    const accepted = new Set();
    for (const e of this.events.values()) {
      if (e.type === 'repair_accepted') accepted.add(e.attempt_seq);
    }
    return this.orderedEvents().filter(
      ([seq, e]) => e.type === 'repair_attempt' && !accepted.has(seq),
    );
  }

  notes() {
    return this.orderedEvents().filter(([, e]) => e.type === 'note');
  }

  stepDef(stepId) {
    if (!this.ack || !this.ack.exercise) return null;
    return this.ack.exercise.steps.find((s) => s.id === stepId) || null;
  }

  vocabList(name) {
    return (this.ack && this.ack.vocab && this.ack.vocab[name]) || [];
  }

  vocabEntry(name, id) {
    return this.vocabList(name).find((e) => e.id === id) || null;
  }

  markerLabel(id) {
    const entry = this.vocabEntry('markers', id);
    return entry ? entry.label : id.replace(/_/g, ' ');
  }

  strategyLabel(id) {
    const entry = this.vocabEntry('strategies', id);
    return entry ? entry.label : id.replace(/_/g, ' ');
  }

  ruptures() {
    return (this.state && this.state.ruptures) || [];
  }
}
