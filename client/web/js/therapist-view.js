// The therapist's room (and, read-only, the observer's): the live room,
// exercise controls, the safety check-in, the private line to each partner,
// marking ruptures and repairs, confirming or dismissing the detector's
// suspicions (listed apart from ruptures), private notes and a live rupture
// timeline. High-priority alerts (a private message, a request for a private
// word, a held check-in, a withdrawn consent, a takeover) stay at the top
// until the therapist says they have seen them; open ruptures sit in banners
// beneath them.

import { h, replaceChildren, formatClock, formatDuration, uniqueId } from './dom.js';
import { staffRoleName, kindError, RUPTURE_KIND, SOURCE, REPAIR_HOW } from './words.js';
import { draftKey, loadDraft, saveDraft, dropDraft } from './drafts.js';
import { buildStepForm } from './step-form.js';
import { turnBar, roundThread, stepKey, presenceLine } from './room-parts.js';
import { logText, evidenceText, PRIVATE_TYPES } from './event-text.js';

export { logText, evidenceText };

const CONTROLS = [
  ['back', 'Previous step'],
  ['advance', 'Next step'],
  ['pause', 'Pause'],
  ['resume', 'Resume'],
  ['swap', 'Swap speaker and listener'],
  ['end', 'End session'],
];
const PARTNER_ROLES = ['partner_a', 'partner_b'];

export class TherapistView {
  constructor({ root, model, send, announce, alert, notify, readOnly }) {
    this.root = root;
    this.model = model;
    this.send = send;
    this.announce = announce;
    this.alert = alert;
    this.notify = notify;
    this.readOnly = readOnly;
    this.banners = new Map();
    this.priority = new Map();
    this.suspicionCards = new Map();
    this.currentKey = null;
    this.form = null;
    this.knownOpen = new Set();
    this.knownSuspected = new Set();

    this.priorityEl = h('section', { class: 'priority-alerts', 'aria-label': 'Needs your attention', hidden: true });
    this.alertsEl = h('section', { class: 'rupture-alerts', 'aria-label': 'Open ruptures', hidden: true });
    this.turnEl = h('div', { class: 'turn-slot' });
    this.presenceEl = h('div', { class: 'presence-slot' });
    this.consentEl = h('section', { class: 'card', hidden: true, 'aria-label': 'Consent' });
    this.pausedEl = h('section', { class: 'card paused-note staff-paused', hidden: true, 'aria-labelledby': 'staff-paused-h' });
    this.checkinEl = h('section', { class: 'card checkin-staff', hidden: true, 'aria-labelledby': 'checkin-staff-h' });
    this.stepEl = h('section', { class: 'card step-card', 'aria-labelledby': 'step-h' });
    this.offersEl = h('section', { class: 'card offers', hidden: true, 'aria-labelledby': 'offers-h' });
    this.threadsEl = h('div', { class: 'thread-slot' });
    this.suspectedListEl = h('div', { class: 'suspicions-open' });
    this.decidedListEl = h('ol', { class: 'suspicion-list' });
    this.suspicionCountEl = h('p', { class: 'suspicion-counts' });
    this.timelineEl = h('div', { class: 'timeline-body' });
    this.notesListEl = h('ol', { class: 'notes-list' });
    this.logEl = h('ol', { class: 'session-log', reversed: true });

    const side = [];
    const controls = readOnly ? null : this.buildControls();
    this.privateEl = readOnly ? null : this.buildPrivateLine();
    if (this.privateEl) side.push(this.privateEl);
    if (!readOnly) side.push(this.buildMarkForm());
    side.push(
      h('section', { class: 'card timeline', 'aria-labelledby': 'timeline-h' }, h('h2', { id: 'timeline-h' }, 'Rupture timeline'), this.timelineEl),
      this.buildNotes(),
      h(
        'section',
        { class: 'card', 'aria-labelledby': 'log-h' },
        h('h2', { id: 'log-h' }, 'Session log'),
        h('details', {}, h('summary', {}, 'Everything that happened, newest first'), this.logEl),
      ),
    );
    const suspicions = h(
      'section',
      { class: 'card suspicions', 'aria-labelledby': 'suspicions-h' },
      h('h2', { id: 'suspicions-h' }, 'Suspicions'),
      h('p', { class: 'hint' }, 'What the software noticed. Only you (and an observing supervisor) see these; a partner sees one only once you confirm it as a rupture.'),
      this.suspicionCountEl,
      this.suspectedListEl,
      h('details', { class: 'decided' }, h('summary', {}, 'Confirmed and dismissed'), this.decidedListEl),
    );

    replaceChildren(
      root,
      h(
        'div',
        { class: 'staff-layout' },
        readOnly ? h('p', { class: 'observer-note' }, 'You are observing this room. Nothing you do here is sent to the room. The partners see that a supervisor is observing. The private line and the check-in answers are not shown to observers.') : null,
        this.priorityEl,
        this.alertsEl,
        h(
          'div',
          { class: 'staff-columns' },
          h(
            'div',
            { class: 'staff-main' },
            this.turnEl,
            this.presenceEl,
            this.pausedEl,
            this.consentEl,
            this.checkinEl,
            this.stepEl,
            controls,
            this.offersEl,
            suspicions,
            this.threadsEl,
          ),
          h('div', { class: 'staff-side' }, side),
        ),
      ),
      this.endDialog || null,
    );
    this.ticker = setInterval(() => this.tick(), 1000);
  }

  setOnline(online) {
    this.online = online;
  }

  act(msg, button) {
    if (button) button.disabled = true;
    return this.send(msg).then(
      (ack) => {
        if (button) button.disabled = false;
        return ack;
      },
      (err) => {
        if (button) button.disabled = false;
        this.notify(kindError(err) + (err.message && err.code !== 'offline' && err.code !== 'disconnected' ? ` (${err.message})` : ''));
        throw err;
      },
    );
  }

  buildControls() {
    this.controlButtons = new Map();
    const buttons = CONTROLS.map(([action, label]) => {
      const b = h('button', { type: 'button', class: action === 'end' ? 'danger' : 'secondary' }, label);
      b.addEventListener('click', () => {
        if (action === 'end') {
          this.endDialog.showModal();
          return;
        }
        this.act({ type: 'control', action }, b).catch(() => {});
      });
      this.controlButtons.set(action, b);
      return b;
    });
    const confirm = h('button', { type: 'submit', class: 'danger' }, 'End the session');
    const cancel = h('button', { type: 'button', class: 'quiet-button' }, 'Keep going');
    this.endDialog = h(
      'dialog',
      { class: 'sheet', 'aria-labelledby': 'end-h' },
      h(
        'form',
        { method: 'dialog' },
        h('h2', { id: 'end-h' }, 'End this session?'),
        h('p', {}, 'Both partners will see that the session has ended. You can still add notes, answer private messages and decide on suspicions afterwards.'),
        h('div', { class: 'form-actions' }, confirm, cancel),
      ),
    );
    cancel.addEventListener('click', () => this.endDialog.close());
    this.endDialog.querySelector('form').addEventListener('submit', (e) => {
      e.preventDefault();
      this.act({ type: 'control', action: 'end' }, confirm).then(
        () => this.endDialog.close(),
        () => this.endDialog.close(),
      );
    });
    return h('section', { class: 'card controls', 'aria-labelledby': 'controls-h' }, h('h2', { id: 'controls-h' }, 'Guide the exercise'), h('div', { class: 'control-grid' }, buttons));
  }

  /** One private thread per partner, each with its own reply box (typing survives updates). */
  buildPrivateLine() {
    this.privateThreads = new Map();
    const columns = PARTNER_ROLES.map((role) => {
      const name = staffRoleName(role);
      const id = `private-${role}`;
      const list = h('ol', { class: 'private-list', 'aria-label': `Private messages with ${name}`, tabindex: '0' });
      const text = h('textarea', { id: `${id}-text`, rows: 2, maxlength: 4000 });
      const err = h('p', { class: 'form-error', role: 'alert', hidden: true });
      const submit = h('button', { type: 'submit', class: 'primary' }, `Send to ${name} only`);
      const key = () => draftKey(this.model.ack.room, this.model.role, 'any', `private-${role}`, 'private');
      const form = h(
        'form',
        { class: 'note-form private-reply', novalidate: true },
        h('div', { class: 'field' }, h('label', { for: text.id }, `Reply privately to ${name}`), text),
        err,
        h('div', { class: 'form-actions' }, submit),
      );
      text.addEventListener('input', () => saveDraft(key(), { text: text.value }));
      form.addEventListener('submit', (e) => {
        e.preventDefault();
        const t = text.value.trim();
        if (!t) {
          err.textContent = 'Write the reply first.';
          err.hidden = false;
          text.focus();
          return;
        }
        err.hidden = true;
        this.act({ type: 'private_message', to: role, text: t }, submit).then(
          () => {
            text.value = '';
            dropDraft(key());
          },
          () => {},
        );
      });
      this.privateThreads.set(role, { list, text, key, restored: false });
      return h('div', { class: 'private-thread', dataset: { partner: role } }, h('h3', {}, name), list, form);
    });
    return h(
      'section',
      { class: 'card private-line', 'aria-labelledby': 'private-line-h' },
      h('h2', { id: 'private-line-h' }, 'Private line'),
      h('p', { class: 'private-label' }, h('span', { class: 'lock', 'aria-hidden': 'true' }), 'Only you and that partner see these. The other partner never does, and neither does a supervisor.'),
      columns,
    );
  }

  buildMarkForm() {
    const m = this.model;
    const id = uniqueId('mark');
    const kindRadios = ['withdrawal', 'confrontation'].map((k, i) =>
      h('label', { class: 'choice-button' }, h('input', { type: 'radio', name: `${id}-kind`, value: k, checked: i === 0 }), h('span', {}, RUPTURE_KIND[k])),
    );
    const marker = h('select', { id: `${id}-marker` });
    const markerHint = h('p', { class: 'hint', id: `${id}-marker-hint` });
    const who = h('select', { id: `${id}-who` }, h('option', { value: 'partner_a' }, 'Partner A'), h('option', { value: 'partner_b' }, 'Partner B'));
    const withSel = h('select', { id: `${id}-with` });
    const note = h('textarea', { id: `${id}-note`, rows: 2, maxlength: 4000 });
    const submit = h('button', { type: 'submit', class: 'primary' }, 'Mark rupture');
    const kind = () => kindRadios.map((l) => l.querySelector('input')).find((r) => r.checked).value;
    const fillMarkers = () => {
      const k = kind();
      const entries = m.vocabList('markers').filter((e) => e.kind === k);
      replaceChildren(marker, entries.map((e) => h('option', { value: e.id }, e.label)));
      syncMarkerHint();
    };
    const syncMarkerHint = () => {
      const e = m.vocabEntry('markers', marker.value);
      markerHint.textContent = e ? e.sentence : '';
    };
    const fillWith = () => {
      const other = who.value === 'partner_a' ? 'partner_b' : 'partner_a';
      const keep = withSel.value;
      replaceChildren(withSel, h('option', { value: other }, staffRoleName(other)), h('option', { value: 'therapist' }, 'Therapist (you)'));
      withSel.value = keep === 'therapist' ? 'therapist' : other;
    };
    const form = h(
      'form',
      { class: 'mark-form', novalidate: true },
      h('fieldset', { class: 'field' }, h('legend', {}, 'Kind'), h('div', { class: 'choices' }, kindRadios)),
      h('div', { class: 'field' }, h('label', { for: marker.id }, '3RS marker'), marker, markerHint),
      h(
        'div',
        { class: 'field two' },
        h('div', {}, h('label', { for: who.id }, 'Who'), who),
        h('div', {}, h('label', { for: withSel.id }, 'With'), withSel),
      ),
      h('div', { class: 'field' }, h('label', { for: note.id }, 'Note', h('span', { class: 'optional' }, ' (private, optional)')), note),
      h('div', { class: 'form-actions' }, submit),
    );
    form.addEventListener('change', (e) => {
      if (e.target.name === `${id}-kind`) fillMarkers();
      if (e.target === who) fillWith();
      if (e.target === marker) syncMarkerHint();
    });
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      const msg = { type: 'rupture_mark', kind: kind(), marker: marker.value, who: who.value, with: withSel.value };
      if (note.value.trim()) msg.note = note.value.trim();
      this.act(msg, submit).then(
        () => {
          note.value = '';
        },
        () => {},
      );
    });
    fillMarkers();
    fillWith();
    return h(
      'section',
      { class: 'card', 'aria-labelledby': `${id}-h` },
      h('h2', { id: `${id}-h` }, 'Mark a rupture'),
      h('p', { class: 'hint' }, 'A rupture you mark is open at once, and both partners see it named.'),
      form,
    );
  }

  buildNotes() {
    const children = [h('h2', { id: 'notes-h' }, 'Private notes'), h('p', { class: 'hint' }, 'Only you (and an observing supervisor) see these.')];
    if (!this.readOnly) {
      const text = h('textarea', { id: 'note-text', rows: 3, maxlength: 4000 });
      const about = h('select', { id: 'note-about' });
      this.noteAbout = about;
      const submit = h('button', { type: 'submit', class: 'primary' }, 'Save note');
      const err = h('p', { class: 'form-error', role: 'alert', hidden: true });
      const form = h(
        'form',
        { class: 'note-form', novalidate: true },
        h('div', { class: 'field' }, h('label', { for: 'note-text' }, 'New note'), text),
        h('div', { class: 'field' }, h('label', { for: 'note-about' }, 'About'), about),
        err,
        h('div', { class: 'form-actions' }, submit),
      );
      form.addEventListener('submit', (e) => {
        e.preventDefault();
        const t = text.value.trim();
        if (!t) {
          err.textContent = 'Write the note first.';
          err.hidden = false;
          text.focus();
          return;
        }
        err.hidden = true;
        const msg = { type: 'note', text: t };
        if (about.value.startsWith('r:')) msg.rupture_id = Number(about.value.slice(2));
        else if (about.value.startsWith('s:')) msg.suspicion_id = Number(about.value.slice(2));
        this.act(msg, submit).then(
          () => {
            text.value = '';
          },
          () => {},
        );
      });
      children.push(form);
    }
    children.push(this.notesListEl);
    return h('section', { class: 'card notes', 'aria-labelledby': 'notes-h' }, children);
  }

  render() {
    const m = this.model;
    const s = m.state;
    if (!s) return;
    replaceChildren(this.turnEl, turnBar(m));
    replaceChildren(this.presenceEl, presenceLine(m));

    const consentMissing = PARTNER_ROLES.some((r) => !s.consent[r]);
    this.consentEl.hidden = !(s.status === 'waiting_consent' || (consentMissing && s.status !== 'ended'));
    if (!this.consentEl.hidden) {
      replaceChildren(
        this.consentEl,
        h('h2', {}, s.status === 'waiting_consent' ? 'Waiting for consent' : 'Consent'),
        h(
          'ul',
          { class: 'consent-status' },
          PARTNER_ROLES.map((r) => {
            let words;
            if (s.consent[r]) words = 'has agreed';
            else if (m.consentWithdrawn(r)) words = 'has withdrawn consent (their input is refused until they agree again)';
            else words = s.present[r] ? 'is reading the notice' : 'has not joined yet';
            return h('li', {}, `${staffRoleName(r)}: ${words}`);
          }),
        ),
      );
    }

    this.renderPaused();
    this.renderCheckin();
    this.renderStep();
    this.renderOffers();
    this.renderThreads();
    this.renderPriority();
    this.renderAlerts();
    this.renderSuspicions();
    this.renderTimeline();
    this.renderNotes();
    this.renderPrivate();
    this.renderControls();
    this.renderLog();
    this.updateTitle();
  }

  renderLog() {
    const m = this.model;
    const items = m
      .orderedEvents()
      .reverse()
      .map(([seq, e]) =>
        h(
          'li',
          { class: PRIVATE_TYPES.has(e.type) ? 'private' : null, dataset: { seq: String(seq), type: e.type } },
          h('span', { class: 'time' }, formatClock(e.at)),
          ' ',
          logText(m, e),
        ),
      );
    replaceChildren(this.logEl, items);
  }

  renderControls() {
    if (!this.controlButtons) return;
    const s = this.model.state;
    const ended = s.status === 'ended';
    const notYet = s.status === 'waiting_consent' || s.status === 'checking_in';
    const enable = {
      back: !ended && !notYet && !(s.round === 0 && s.step && s.step.index === 0),
      advance: !ended && !notYet,
      pause: !ended && s.status !== 'paused',
      resume: s.status === 'paused',
      swap: !ended && !notYet,
      end: !ended,
    };
    for (const [action, b] of this.controlButtons) b.disabled = !enable[action];
  }

  /** Who paused and why: a partner's pause request (with its note) is a time-out, not a rupture. */
  renderPaused() {
    const m = this.model;
    const s = m.state;
    this.pausedEl.hidden = s.status !== 'paused';
    if (s.status !== 'paused') return;
    let cause = null;
    for (const [, e] of m.orderedEvents()) {
      if ((e.type === 'pause_requested' || e.type === 'consent_withdrawn') && e.by === s.paused_by) cause = e;
      else if (e.type === 'control' && e.action === 'pause' && s.paused_by === 'therapist') cause = e;
    }
    const who = staffRoleName(s.paused_by);
    let title = `Paused by ${who}`;
    let text = '';
    if (cause && cause.type === 'pause_requested') {
      title = `${who} asked for a pause`;
      text = cause.note ? `“${cause.note}” (both partners see this note)` : 'No note.';
    } else if (cause && cause.type === 'consent_withdrawn') {
      title = `Paused: ${who} withdrew their consent`;
      text = s.consent[s.paused_by] ? `${who} has given consent again. Resume when you are all ready.` : `Resume once ${who} has agreed again (resuming without it returns the room to waiting for consent).`;
    }
    replaceChildren(
      this.pausedEl,
      h('h2', { id: 'staff-paused-h' }, title),
      text ? h('p', {}, text) : null,
      cause ? h('p', { class: 'hint' }, `Since ${formatClock(cause.at)}. A pause is a healthy time-out; mark a rupture only if you judge one happened.`) : null,
    );
  }

  /** The check-in: each partner's answers (therapist), or only who answered (observer); the hold. */
  renderCheckin() {
    const m = this.model;
    const s = m.state;
    const c = s.checkin;
    const anyAnswered = c && PARTNER_ROLES.some((r) => c[r] && c[r].answered);
    const show = Boolean(c) && (s.status === 'checking_in' || anyAnswered);
    this.checkinEl.hidden = !show;
    if (!show) return;
    const held = Boolean(c.held);
    const partners = PARTNER_ROLES.map((r) => [r, m.checkinOf(r)]);
    const key = JSON.stringify([partners, held, s.status, this.readOnly]);
    if (key === this.checkinKey) return;
    this.checkinKey = key;
    const rows = partners.map(([r, p]) => {
      const name = staffRoleName(r);
      if (!p) return h('li', { class: 'checkin-partner', dataset: { partner: r } }, h('strong', {}, `${name}: `), 'the answers are for the therapist only');
      if (!p.answered) return h('li', { class: 'checkin-partner', dataset: { partner: r } }, h('strong', {}, `${name}: `), s.status === 'checking_in' ? 'has not answered yet' : 'did not answer');
      if (!p.answers) return h('li', { class: 'checkin-partner', dataset: { partner: r } }, h('strong', {}, `${name}: `), 'has answered (the answers are for the therapist only)');
      const answers = m.describeAnswers(p.answers);
      const holds = p.hold !== undefined ? p.hold : answers.some((a) => a.holds);
      return h(
        'li',
        { class: `checkin-partner${holds ? ' holds' : ''}`, dataset: { partner: r } },
        h('p', {}, h('strong', {}, name), holds ? h('span', { class: 'chip hold' }, 'holds the session') : h('span', { class: 'chip clear' }, 'clear'), p.at ? h('span', { class: 'time' }, formatClock(p.at)) : null),
        h('dl', {}, answers.map((a) => [h('dt', {}, a.question), h('dd', {}, a.answer)])),
        p.note ? h('p', { class: 'checkin-note' }, h('span', { class: 'hint' }, 'Private note: '), `“${p.note}”`) : null,
      );
    });
    const list = h('ul', { class: 'checkin-list' }, rows);
    const checking = s.status === 'checking_in';
    this.checkinEl.classList.toggle('done', !checking);
    // Once the joint work is under way the answers fold away (still one click from view).
    const heldAny = partners.some(([, p]) => p && p.answers && (p.hold !== undefined ? p.hold : m.describeAnswers(p.answers).some((a) => a.holds)));
    const children = checking
      ? [
          h('p', { class: 'eyebrow private-label' }, this.readOnly ? 'Safety check-in' : 'Private: only you see these answers'),
          h('h2', { id: 'checkin-staff-h' }, held ? 'Check-in: the session is held' : 'Safety check-in'),
          list,
        ]
      : [
          h('h2', { id: 'checkin-staff-h' }, `Safety check-in${heldAny ? ': an answer held the session' : ''}`),
          h('details', {}, h('summary', {}, this.readOnly ? 'Who answered' : 'The answers (private)'), list),
        ];
    if (s.status === 'checking_in') {
      children.push(
        h(
          'p',
          { class: 'hint' },
          held
            ? 'An answer asks you to check in first. Both partners see the same neutral waiting screen and cannot tell why. Talk to them privately if you need to, then choose.'
            : 'Both partners answer privately; the joint work begins by itself when every answer is clear.',
        ),
      );
      if (!this.readOnly) {
        const go = h('button', { type: 'button', class: held ? 'primary' : 'secondary' }, 'Go on with the joint session');
        const end = h('button', { type: 'button', class: 'danger' }, 'End the joint session');
        go.addEventListener('click', () => this.act({ type: 'control', action: 'proceed' }, go).catch(() => {}));
        end.addEventListener('click', () => this.endDialog.showModal());
        children.push(h('div', { class: 'form-actions' }, go, end));
      }
    }
    replaceChildren(this.checkinEl, ...children);
  }

  renderStep() {
    const m = this.model;
    const s = m.state;
    this.stepEl.hidden = !s.step || s.status === 'checking_in';
    if (!s.step) {
      this.currentKey = null;
      return;
    }
    const key = stepKey(m);
    if (key === this.currentKey) return;
    this.currentKey = key;
    const children = [
      h('p', { class: 'eyebrow' }, `Step ${s.step.index + 1} of ${m.ack.exercise.steps.length} · ${m.ack.exercise.title}`),
      h('h2', { id: 'step-h' }, s.step.title),
      h('p', { class: 'prompt' }, s.step.prompt),
    ];
    if (s.step.actor === 'therapist' && !this.readOnly) {
      const form = buildStepForm({
        model: m,
        step: s.step,
        draftKey: draftKey(m.ack.room, m.role, s.round, s.step.id),
        submitLabel: 'Save',
        onSubmit: (input) => {
          form.setSending(true);
          this.send({ type: 'turn', step: s.step.id, input }).then(
            () => {
              form.forget();
              form.setSending(false);
            },
            (e) => {
              form.setSending(false);
              form.showError(kindError(e));
            },
          );
        },
      });
      children.push(form.el);
    } else {
      children.push(h('p', { class: 'waiting' }, `Waiting for ${staffRoleName(s.step.actor)}.`));
    }
    replaceChildren(this.stepEl, ...children);
  }

  renderOffers() {
    const m = this.model;
    const offers = m.openRepairAttempts();
    this.offersEl.hidden = offers.length === 0;
    replaceChildren(
      this.offersEl,
      h('h2', { id: 'offers-h' }, 'Repair attempts waiting'),
      h('p', { class: 'hint' }, 'Only the other partner can accept a repair attempt; you can acknowledge it.'),
      h(
        'ul',
        { class: 'offer-list' },
        offers.map((a) => {
          const state = [];
          if (a.reply === 'need_a_moment') state.push(h('span', { class: 'chip' }, `${staffRoleName(a.by === 'partner_a' ? 'partner_b' : 'partner_a')}: needs a moment`));
          if (a.acknowledged) state.push(h('span', { class: 'chip repaired' }, 'acknowledged'));
          const li = h(
            'li',
            { dataset: { attempt: String(a.id) } },
            h('p', {}, h('strong', {}, staffRoleName(a.by)), a.at ? ` at ${formatClock(a.at)}` : '', a.text ? `: “${a.text}”` : '', ' ', state),
          );
          if (!this.readOnly && m.state.status !== 'ended' && !a.acknowledged) {
            const b = h('button', { type: 'button', class: 'secondary' }, 'Acknowledge');
            b.addEventListener('click', () => this.act({ type: 'repair_reply', attempt_id: a.id, reply: 'acknowledged' }, b).catch(() => {}));
            li.appendChild(b);
          }
          return li;
        }),
      ),
    );
  }

  renderThreads() {
    const m = this.model;
    const s = m.state;
    const sections = [];
    for (let r = s.round; r >= 0; r -= 1) {
      if (r !== s.round && m.turns(r).length === 0) continue;
      sections.push(roundThread(m, r, r === s.round ? `Round ${r + 1} (current)` : `Round ${r + 1}`));
    }
    replaceChildren(this.threadsEl, sections);
  }

  ackKey() {
    return `attune.seen|${this.model.ack.room}|${this.model.role}`;
  }

  acknowledged() {
    if (!this.ackSet) {
      try {
        this.ackSet = new Set(JSON.parse(sessionStorage.getItem(this.ackKey()) || '[]'));
      } catch {
        this.ackSet = new Set();
      }
    }
    return this.ackSet;
  }

  acknowledge(key) {
    const set = this.acknowledged();
    set.add(key);
    try {
      sessionStorage.setItem(this.ackKey(), JSON.stringify([...set]));
    } catch {
      /* storage disabled: acknowledged for this page only */
    }
    const el = this.priority.get(key);
    if (el) el.remove();
    this.priority.delete(key);
    this.priorityEl.hidden = this.priority.size === 0;
    this.updateTitle();
  }

  /** What needs the therapist's attention now, as [{key, level, title, text, partner}]. */
  priorityItems() {
    const m = this.model;
    const s = m.state;
    const items = [];
    for (const [seq, e] of m.orderedEvents()) {
      const name = staffRoleName(e.by);
      if (e.type === 'private_message' && e.by !== 'therapist') {
        items.push({ key: `e${seq}`, level: 'high', title: `Private message from ${name}`, text: `“${e.text}”`, partner: e.by, at: e.at });
      } else if (e.type === 'therapist_requested') {
        items.push({ key: `e${seq}`, level: 'high', title: `${name} asked for a private word`, text: `${name} pressed “I need to check something with my therapist”. The other partner does not know.`, partner: e.by, at: e.at });
      } else if (e.type === 'consent_withdrawn') {
        items.push({ key: `e${seq}`, level: 'high', title: `${name} withdrew their consent`, text: 'The room is paused. Their further input is refused until they agree again; they can still message you privately.', at: e.at });
      } else if (e.type === 'replaced') {
        items.push({ key: `e${seq}`, level: 'info', title: `${name} reconnected from another device`, text: 'Their link was opened in another window or on another device; the earlier window was stopped and told to let you know if that was not them.', at: e.at });
      }
    }
    const c = s.checkin;
    if (s.status === 'checking_in' && c && c.held) {
      const holders = PARTNER_ROLES.filter((r) => {
        const p = m.checkinOf(r);
        return p && (p.hold !== undefined ? p.hold : m.describeAnswers(p.answers).some((a) => a.holds));
      });
      const answerSeqs = m.ofType('checkin_answered').map(([seq]) => seq).join('-');
      items.push({
        key: `held-${answerSeqs}`,
        level: 'high',
        title: 'Check-in: the session is held',
        text: `${holders.length ? holders.map(staffRoleName).join(' and ') : 'A partner'} answered in a way that holds the joint session. Both partners see a neutral waiting screen. Go on or end the joint session from the check-in below.`,
        at: null,
      });
    }
    return items;
  }

  /** High-priority banners (role=alert), each until the therapist says it was seen. */
  renderPriority() {
    const seen = this.acknowledged();
    const items = this.priorityItems().filter((it) => !seen.has(it.key));
    const live = new Set(items.map((it) => it.key));
    for (const [key, el] of this.priority) {
      if (!live.has(key)) {
        el.remove();
        this.priority.delete(key);
      }
    }
    for (const it of items) {
      if (this.priority.has(it.key)) continue;
      const ok = h('button', { type: 'button', class: 'secondary' }, 'I’ve seen this');
      ok.addEventListener('click', () => this.acknowledge(it.key));
      const actions = [ok];
      if (it.partner && this.privateThreads) {
        const reply = h('button', { type: 'button', class: 'primary' }, `Reply to ${staffRoleName(it.partner)} privately`);
        reply.addEventListener('click', () => {
          const t = this.privateThreads.get(it.partner);
          t.text.scrollIntoView({ block: 'center' });
          t.text.focus();
        });
        actions.unshift(reply);
      }
      const el = h(
        'article',
        { class: `priority-banner ${it.level}`, role: 'alert', dataset: { key: it.key } },
        h('h2', {}, h('span', { class: 'badge' }, it.level === 'high' ? 'Needs you' : 'Notice'), ` ${it.title}`),
        h('p', {}, it.text, it.at ? h('span', { class: 'time' }, ` · ${formatClock(it.at)}`) : null),
        h('div', { class: 'form-actions' }, actions),
      );
      this.priority.set(it.key, el);
      this.priorityEl.appendChild(el);
    }
    this.priorityEl.hidden = this.priority.size === 0;
  }

  /** Banners for open ruptures, built once each so typing survives updates. */
  renderAlerts() {
    const m = this.model;
    const live = m.ruptures().filter((r) => r.status === 'open');
    const liveIds = new Set(live.map((r) => `${r.id}:${r.status}`));
    for (const [key, banner] of this.banners) {
      if (!liveIds.has(key)) {
        banner.remove();
        this.banners.delete(key);
      }
    }
    for (const r of live) {
      const key = `${r.id}:${r.status}`;
      if (!this.banners.has(key)) {
        const banner = this.buildBanner(r);
        this.banners.set(key, banner);
        this.alertsEl.appendChild(banner);
        if (!this.knownOpen.has(key)) {
          this.knownOpen.add(key);
          this.alert(`Open rupture: ${RUPTURE_KIND[r.kind] || r.kind}, ${m.markerLabel(r.marker)}, ${staffRoleName(r.who)}.`);
        }
      }
    }
    this.alertsEl.hidden = live.length === 0;
  }

  updateTitle() {
    const openCount = this.model.ruptures().filter((r) => r.status === 'open').length;
    const urgent = [...this.priority.values()].filter((el) => el.classList.contains('high')).length;
    const parts = [];
    if (urgent) parts.push(`${urgent} needs you`);
    if (openCount) parts.push(`${openCount} open rupture${openCount === 1 ? '' : 's'}`);
    document.title = parts.length ? `(${parts.join(', ')}) · Attune` : 'Attune · Room';
    document.body.classList.toggle('has-open-rupture', openCount > 0);
    document.body.classList.toggle('has-priority', urgent > 0);
  }

  evidenceList(seqs) {
    const m = this.model;
    const texts = (seqs || [])
      .map((seq) => m.events.get(seq))
      .filter(Boolean)
      .map((e) => evidenceText(m, e))
      .filter(Boolean);
    return texts.length ? h('ul', { class: 'evidence' }, texts.map((t) => h('li', {}, t))) : null;
  }

  buildBanner(r) {
    const m = this.model;
    const timer = h('span', { class: 'since', dataset: { openedAt: String(r.opened_at) } }, formatDuration(Date.now() - r.opened_at));
    const children = [
      h('h2', {}, h('span', { class: 'badge' }, 'Open rupture'), ` ${RUPTURE_KIND[r.kind] || r.kind}: ${m.markerLabel(r.marker)}`),
      h(
        'p',
        { class: 'banner-meta' },
        `${staffRoleName(r.who)} with ${staffRoleName(r.with)} · ${r.confirmed ? 'a suspicion you confirmed' : SOURCE[r.source] || r.source} · at ${formatClock(r.opened_at)} · open for `,
        timer,
      ),
      this.evidenceList(r.evidence),
    ];
    if (!this.readOnly) {
      const id = uniqueId(`r${r.id}`);
      const strategy = h(
        'select',
        { id: `${id}-strategy` },
        ['immediate', 'exploratory'].map((kind) =>
          h(
            'optgroup',
            { label: kind === 'immediate' ? 'Immediate' : 'Exploratory' },
            m.vocabList('strategies').filter((e) => e.kind === kind).map((e) => h('option', { value: e.id }, e.label)),
          ),
        ),
      );
      const note = h('textarea', { id: `${id}-note`, rows: 2, maxlength: 4000 });
      const repair = h('button', { type: 'submit', class: 'primary' }, 'Mark repaired');
      const form = h(
        'form',
        { class: 'repair-form', novalidate: true },
        h(
          'div',
          { class: 'field two' },
          h('div', {}, h('label', { for: strategy.id }, 'How it was repaired'), strategy),
          h('div', {}, h('label', { for: note.id }, 'Note', h('span', { class: 'optional' }, ' (private, optional)')), note),
        ),
        h('div', { class: 'form-actions' }, repair),
      );
      form.addEventListener('submit', (e) => {
        e.preventDefault();
        const msg = { type: 'rupture_repair', rupture_id: r.id, strategy: strategy.value };
        if (note.value.trim()) msg.note = note.value.trim();
        this.act(msg, repair).catch(() => {});
      });
      children.push(form);
    }
    return h('article', { class: 'rupture-banner open', dataset: { rupture: String(r.id) } }, children);
  }

  suspicionTitle(sp) {
    const m = this.model;
    return `${RUPTURE_KIND[sp.kind] || sp.kind}: ${m.markerLabel(sp.marker)}`;
  }

  suspicionMeta(sp) {
    const m = this.model;
    const where = sp.step ? `, round ${sp.round + 1}, ${(m.stepDef(sp.step) || {}).title || sp.step}` : '';
    return `${staffRoleName(sp.who)} with ${staffRoleName(sp.with)} · noticed at ${formatClock(sp.raised_at)}${where}`;
  }

  /** An undecided suspicion, with Confirm and Dismiss and one private note for either. */
  buildSuspicionCard(sp) {
    const children = [
      h(
        'h3',
        {},
        h('span', { class: 'chip suspected' }, 'suspected'),
        ' ',
        this.suspicionTitle(sp),
        sp.class ? h('span', { class: `chip blame-${sp.class}` }, sp.class) : null,
      ),
      h('p', { class: 'banner-meta' }, this.suspicionMeta(sp)),
      this.evidenceList(sp.evidence),
    ];
    if (!this.readOnly) {
      const id = uniqueId(`s${sp.id}`);
      const note = h('textarea', { id: `${id}-note`, rows: 2, maxlength: 4000 });
      const confirm = h('button', { type: 'button', class: 'primary' }, 'Confirm');
      const dismiss = h('button', { type: 'button', class: 'secondary' }, 'Dismiss');
      const withNote = (msg) => {
        if (note.value.trim()) msg.note = note.value.trim();
        return msg;
      };
      confirm.addEventListener('click', () => this.act(withNote({ type: 'rupture_confirm', suspicion_id: sp.id }), confirm).catch(() => {}));
      dismiss.addEventListener('click', () => this.act(withNote({ type: 'rupture_dismiss', suspicion_id: sp.id }), dismiss).catch(() => {}));
      children.push(
        h('div', { class: 'field' }, h('label', { for: note.id }, 'Note', h('span', { class: 'optional' }, ' (private, optional: why you confirm or dismiss it)')), note),
        h('div', { class: 'form-actions' }, confirm, dismiss),
        h('p', { class: 'hint' }, 'Confirming makes it a rupture both partners see. Dismissing keeps it private, in the record.'),
      );
    }
    return h('article', { class: 'suspicion suspected', dataset: { suspicion: String(sp.id) } }, children);
  }

  renderSuspicions() {
    const m = this.model;
    const all = m.suspicions();
    const by = (st) => all.filter((sp) => sp.status === st);
    const suspected = by('suspected');
    const confirmed = by('confirmed');
    const dismissed = by('dismissed');
    const counts = [
      ['suspected', suspected.length, 'waiting for you'],
      ['confirmed', confirmed.length, 'confirmed'],
      ['dismissed', dismissed.length, 'dismissed'],
    ];
    replaceChildren(
      this.suspicionCountEl,
      counts.map(([cls, n, words]) => h('span', { class: `chip ${cls}`, dataset: { count: cls } }, `${n} ${words}`)),
      m.state.suspicions_dropped ? h('span', { class: 'hint' }, ` · ${m.state.suspicions_dropped} more counted but not kept`) : null,
    );
    const live = new Set(suspected.map((sp) => sp.id));
    for (const [id, el] of this.suspicionCards) {
      if (!live.has(id)) {
        el.remove();
        this.suspicionCards.delete(id);
      }
    }
    for (const sp of suspected) {
      if (this.suspicionCards.has(sp.id)) continue;
      const el = this.buildSuspicionCard(sp);
      this.suspicionCards.set(sp.id, el);
      this.suspectedListEl.appendChild(el);
      if (!this.knownSuspected.has(sp.id)) {
        this.knownSuspected.add(sp.id);
        this.announce(`Suspicion: ${this.suspicionTitle(sp)}, ${staffRoleName(sp.who)}. Confirm or dismiss it when you are ready.`);
      }
    }
    if (!suspected.length && !this.suspectedListEl.querySelector('.hint')) {
      this.suspectedListEl.appendChild(h('p', { class: 'hint none-waiting' }, 'Nothing waiting for you.'));
    } else if (suspected.length) {
      const none = this.suspectedListEl.querySelector('.none-waiting');
      if (none) none.remove();
    }
    const notes = new Map();
    for (const [, e] of m.ofType('rupture_dismissed')) if (e.suspicion_id !== undefined && e.note) notes.set(e.suspicion_id, e.note);
    const decided = [...confirmed, ...dismissed].sort((a, b) => a.raised_seq - b.raised_seq);
    replaceChildren(
      this.decidedListEl,
      decided.length
        ? decided.map((sp) =>
            h(
              'li',
              { class: `suspicion-item ${sp.status}`, dataset: { suspicion: String(sp.id) } },
              h('span', { class: 'time' }, formatClock(sp.raised_at)),
              h('span', { class: 'what' }, h('strong', {}, this.suspicionTitle(sp)), sp.class ? ` (${sp.class})` : '', ` · ${staffRoleName(sp.who)} with ${staffRoleName(sp.with)}`),
              h(
                'span',
                { class: `chip ${sp.status}` },
                sp.status === 'confirmed' ? `confirmed${sp.rupture_id ? ` as rupture ${sp.rupture_id}` : ''}` : `dismissed${notes.has(sp.id) ? `: “${notes.get(sp.id)}”` : ''}`,
              ),
            ),
          )
        : h('li', { class: 'hint' }, 'None yet.'),
    );
  }

  renderTimeline() {
    const m = this.model;
    const rs = [...m.ruptures()].sort((a, b) => (a.opened_seq ?? a.opened_at) - (b.opened_seq ?? b.opened_at));
    if (!rs.length) {
      replaceChildren(this.timelineEl, h('p', { class: 'hint' }, 'No ruptures so far. Suspicions wait in their own list until you confirm them.'));
    } else {
      const first = m.orderedEvents()[0];
      const start = first ? first[1].at : rs[0].opened_at;
      const end = m.state.status === 'ended' ? lastAt(m) : Date.now();
      const span = Math.max(end - start, 1);
      const bands = h(
        'div',
        { class: 'bands', 'aria-hidden': 'true' },
        rs.map((r) => {
          const stop = r.repair ? r.repair.at : end;
          const left = ((r.opened_at - start) / span) * 100;
          const width = Math.max(((stop - r.opened_at) / span) * 100, 0.8);
          const band = h('span', { class: `band ${r.status}` });
          band.style.left = `${Math.min(left, 99)}%`;
          band.style.width = `${Math.min(width, 100 - Math.min(left, 99))}%`;
          return h('div', { class: 'band-row' }, band);
        }),
      );
      const list = h(
        'ol',
        { class: 'rupture-list' },
        rs.map((r) => {
          const status =
            r.status === 'repaired'
              ? `repaired after ${formatDuration(r.repair.time_to_repair_ms)} (${r.repair.how === 'therapist_strategy' ? m.strategyLabel(r.repair.strategy) : REPAIR_HOW[r.repair.how] || r.repair.how})`
              : r.status;
          return h(
            'li',
            { class: `rupture-item ${r.status}`, dataset: { rupture: String(r.id) } },
            h('span', { class: 'time' }, formatClock(r.opened_at)),
            h(
              'span',
              { class: 'what' },
              h('strong', {}, `${RUPTURE_KIND[r.kind] || r.kind}: ${m.markerLabel(r.marker)}`),
              ` · ${staffRoleName(r.who)} with ${staffRoleName(r.with)}${r.confirmed ? ' · confirmed suspicion' : ''}`,
            ),
            h('span', { class: `chip ${r.status}` }, status),
          );
        }),
      );
      replaceChildren(this.timelineEl, bands, list);
    }
    if (this.noteAbout) {
      const keep = this.noteAbout.value;
      replaceChildren(
        this.noteAbout,
        h('option', { value: '' }, 'The session in general'),
        rs.map((r) => h('option', { value: `r:${r.id}` }, `Rupture ${r.id}: ${m.markerLabel(r.marker)} (${staffRoleName(r.who)})`)),
        m.suspicions().map((sp) => h('option', { value: `s:${sp.id}` }, `Suspicion ${sp.id}: ${m.markerLabel(sp.marker)} (${staffRoleName(sp.who)}, ${sp.status})`)),
      );
      this.noteAbout.value = keep;
      if (this.noteAbout.value !== keep) this.noteAbout.value = '';
    }
  }

  renderNotes() {
    const notes = this.model.notes();
    replaceChildren(
      this.notesListEl,
      notes.map(([seq, e]) =>
        h(
          'li',
          { class: 'note', dataset: { seq: String(seq) } },
          h('span', { class: 'time' }, formatClock(e.at)),
          e.rupture_id ? h('span', { class: 'chip' }, `rupture ${e.rupture_id}`) : null,
          e.suspicion_id ? h('span', { class: 'chip' }, `suspicion ${e.suspicion_id}`) : null,
          h('p', {}, e.text),
        ),
      ),
    );
  }

  renderPrivate() {
    if (!this.privateThreads) return;
    const m = this.model;
    for (const [role, t] of this.privateThreads) {
      if (!t.restored) {
        t.restored = true;
        const d = loadDraft(t.key());
        if (d && d.text && !t.text.value) t.text.value = d.text;
      }
      const line = m.privateLine(role);
      replaceChildren(
        t.list,
        line.length
          ? line.map(([seq, e]) =>
              h(
                'li',
                { class: `private-item${e.by === 'therapist' ? ' mine' : ''}`, dataset: { seq: String(seq) } },
                h('p', { class: 'private-head' }, h('span', { class: 'who' }, e.by === 'therapist' ? 'You' : staffRoleName(e.by)), ' ', h('span', { class: 'time' }, formatClock(e.at))),
                h('p', {}, e.type === 'therapist_requested' ? 'Asked for a private word (“I need to check something with my therapist”).' : e.text),
              ),
            )
          : h('li', { class: 'hint' }, 'No private messages.'),
      );
      t.list.scrollTop = t.list.scrollHeight;
    }
  }

  tick() {
    for (const el of this.alertsEl.querySelectorAll('.since')) {
      el.textContent = formatDuration(Date.now() - Number(el.dataset.openedAt));
    }
  }
}

function lastAt(m) {
  const evs = m.orderedEvents();
  return evs.length ? evs[evs.length - 1][1].at : Date.now();
}
