// What the page knows about its room: the hello ack (exercise script,
// vocabularies, consent notice, safety check-in), every event it has seen (by
// seq, counted in this role's own audience: 1, 2, 3 ... with no gap) and the
// latest state. Views read from here; only main.js writes.

export const PARTNERS = ['partner_a', 'partner_b'];

function capital(text) {
  return text ? text[0].toUpperCase() + text.slice(1) : text;
}

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

  get isPartner() {
    return this.role === 'partner_a' || this.role === 'partner_b';
  }

  setAck(ack) {
    if (this.ack && (this.ack.room !== ack.room || this.ack.role !== ack.role)) {
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

  ofType(...types) {
    return this.orderedEvents().filter(([, e]) => types.includes(e.type));
  }

  turns(round) {
    return this.orderedEvents().filter(
      ([, e]) => e.type === 'turn' && (round === undefined || e.round === round),
    );
  }

  /** Seq of the latest event that moved the exercise (a turn, a step control, consent, the check-in). */
  lastProgressSeq() {
    let last = 0;
    for (const [seq, e] of this.events) {
      const moves =
        e.type === 'turn' ||
        (e.type === 'control' && ['advance', 'back', 'swap', 'end', 'proceed'].includes(e.action)) ||
        e.type === 'consented' ||
        e.type === 'checkin_completed';
      if (moves && seq > last) last = seq;
    }
    return last;
  }

  /**
   * The repair_attempt event with this attempt id. Protocol 1 logs carried no
   * attempt_id: their attempts are numbered 1, 2, 3 in log order (PROTOCOL.md 15).
   */
  attemptEvent(attemptId) {
    let n = 0;
    for (const [seq, e] of this.orderedEvents()) {
      if (e.type !== 'repair_attempt') continue;
      n += 1;
      if (e.attempt_id === attemptId || (e.attempt_id === undefined && n === attemptId)) return [seq, e];
    }
    return null;
  }

  /**
   * Repair attempts nobody has accepted yet, oldest first, as
   * {id, by, text, at, rupture_id, reply, acknowledged}. From the state's
   * repair_attempts (protocol 2: named by attempt_id); the text comes from the event.
   */
  openRepairAttempts() {
    const list = (this.state && this.state.repair_attempts) || [];
    const out = [];
    for (const a of list) {
      if (a.accepted) continue;
      const id = a.id;
      const found = this.attemptEvent(id);
      const e = found ? found[1] : {};
      out.push({
        id,
        by: a.by,
        text: e.text || null,
        at: e.at || null,
        rupture_id: a.rupture_id ?? null,
        reply: a.reply || null,
        acknowledged: Boolean(a.acknowledged),
      });
    }
    return out;
  }

  notes() {
    return this.orderedEvents().filter(([, e]) => e.type === 'note');
  }

  /** The private line: private_message and therapist_requested events, oldest first. */
  privateLine(partner) {
    return this.orderedEvents().filter(([, e]) => {
      if (e.type === 'therapist_requested') return !partner || e.by === partner;
      if (e.type !== 'private_message') return false;
      return !partner || e.by === partner || e.to === partner;
    });
  }

  /** Whether this partner's latest consent event is a withdrawal. */
  consentWithdrawn(partner) {
    let withdrawn = false;
    for (const [, e] of this.orderedEvents()) {
      if (e.by !== partner) continue;
      if (e.type === 'consent_withdrawn') withdrawn = true;
      else if (e.type === 'consented') withdrawn = false;
    }
    return withdrawn;
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
    return entry ? entry.label : String(id || '').replace(/_/g, ' ');
  }

  strategyLabel(id) {
    const entry = this.vocabEntry('strategies', id);
    return entry ? entry.label : String(id || '').replace(/_/g, ' ');
  }

  /** The safety check-in questions from the hello ack (protocol/safety.json), or null. */
  get safety() {
    return (this.ack && this.ack.safety) || null;
  }

  /**
   * A partner's check-in as the staff state tells it, with the answers and the
   * note: from the state when it carries them, else from the checkin_answered
   * event the state names by `seq` (or the partner's latest such event).
   * null when the state says nothing of it (an observer's state).
   */
  checkinOf(partner) {
    const c = this.state && this.state.checkin;
    const p = c && c[partner];
    if (!p) return null;
    let answers = p.answers;
    let note = p.note ?? null;
    let at = null;
    if (p.answered && answers === undefined) {
      let e = p.seq != null ? this.events.get(p.seq) : null;
      if (!e || e.type !== 'checkin_answered') {
        const mine = this.ofType('checkin_answered').filter(([, x]) => x.by === partner);
        e = mine.length ? mine[mine.length - 1][1] : null;
      }
      if (e) {
        answers = e.answers;
        note = e.note ?? null;
        at = e.at;
      }
    }
    return { answered: Boolean(p.answered), hold: p.hold, answers, note, at };
  }

  /** "Question prompt: option label" pairs for a set of check-in answers. */
  describeAnswers(answers) {
    const safety = this.safety;
    const out = [];
    for (const [qid, oid] of Object.entries(answers || {})) {
      const q = safety && safety.questions.find((x) => x.id === qid);
      const opt = q && q.options.find((o) => o.id === oid);
      // Without the questions (a log served without `safety`), the ids in plain words.
      out.push({
        question: q ? q.prompt : `${capital(qid.replace(/_/g, ' '))}:`,
        answer: opt ? opt.label : capital(String(oid).replace(/_/g, ' ')),
        holds: Boolean(q && (q.hold || []).includes(oid)),
      });
    }
    return out;
  }

  ruptures() {
    return (this.state && this.state.ruptures) || [];
  }

  /** The detector's suspicions (staff states only; partners never receive them). */
  suspicions() {
    return (this.state && this.state.suspicions) || [];
  }
}
