// The therapist's room (and, read-only, the observer's): the live room,
// exercise controls, marking ruptures and repairs, confirming or dismissing
// the detector's suspicions, private notes and a live rupture timeline. Open
// ruptures sit in a banner across the top that cannot be missed.

import { h, replaceChildren, formatClock, formatDuration, uniqueId } from './dom.js';
import { staffRoleName, kindError, RUPTURE_KIND, SOURCE, REPAIR_HOW } from './words.js';
import { draftKey } from './drafts.js';
import { buildStepForm } from './step-form.js';
import { turnBar, roundThread, stepKey, presenceLine } from './room-parts.js';

const CONTROLS = [
  ['back', 'Previous step'],
  ['advance', 'Next step'],
  ['pause', 'Pause'],
  ['resume', 'Resume'],
  ['swap', 'Swap speaker and listener'],
  ['end', 'End session'],
];

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
    this.currentKey = null;
    this.form = null;
    this.knownOpen = new Set();

    this.alertsEl = h('section', { class: 'rupture-alerts', 'aria-label': 'Open ruptures', hidden: true });
    this.turnEl = h('div', { class: 'turn-slot' });
    this.presenceEl = h('div', { class: 'presence-slot' });
    this.consentEl = h('section', { class: 'card', hidden: true, 'aria-label': 'Consent' });
    this.stepEl = h('section', { class: 'card step-card', 'aria-labelledby': 'step-h' });
    this.offersEl = h('section', { class: 'card offers', hidden: true, 'aria-labelledby': 'offers-h' });
    this.threadsEl = h('div', { class: 'thread-slot' });
    this.timelineEl = h('div', { class: 'timeline-body' });
    this.notesListEl = h('ol', { class: 'notes-list' });
    this.logEl = h('ol', { class: 'session-log', reversed: true });

    const side = [];
    const controls = readOnly ? null : this.buildControls();
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

    replaceChildren(
      root,
      h(
        'div',
        { class: 'staff-layout' },
        readOnly ? h('p', { class: 'observer-note' }, 'You are observing this room. Nothing you do here is sent to the room.') : null,
        this.alertsEl,
        h(
          'div',
          { class: 'staff-columns' },
          h(
            'div',
            { class: 'staff-main' },
            this.turnEl,
            this.presenceEl,
            this.consentEl,
            this.stepEl,
            controls,
            this.offersEl,
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
        h('p', {}, 'Both partners will see that the session has ended. You can still add notes and mark ruptures afterwards.'),
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
    return h('section', { class: 'card', 'aria-labelledby': `${id}-h` }, h('h2', { id: `${id}-h` }, 'Mark a rupture'), form);
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
        if (about.value) msg.rupture_id = Number(about.value);
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

    this.consentEl.hidden = s.status !== 'waiting_consent';
    if (s.status === 'waiting_consent') {
      replaceChildren(
        this.consentEl,
        h('h2', {}, 'Waiting for consent'),
        h(
          'ul',
          { class: 'consent-status' },
          ['partner_a', 'partner_b'].map((r) =>
            h('li', {}, `${staffRoleName(r)}: ${s.consent[r] ? 'has agreed' : s.present[r] ? 'is reading the notice' : 'has not joined yet'}`),
          ),
        ),
      );
    }

    this.renderStep();
    this.renderOffers();
    this.renderThreads();
    this.renderAlerts();
    this.renderTimeline();
    this.renderNotes();
    this.renderControls();
    this.renderLog();
  }

  renderLog() {
    const m = this.model;
    const items = m
      .orderedEvents()
      .reverse()
      .map(([seq, e]) => h('li', { dataset: { seq: String(seq) } }, h('span', { class: 'time' }, formatClock(e.at)), ' ', logText(m, e)));
    replaceChildren(this.logEl, items);
  }

  renderControls() {
    if (!this.controlButtons) return;
    const s = this.model.state;
    const ended = s.status === 'ended';
    const consenting = s.status === 'waiting_consent';
    const enable = {
      back: !ended && !consenting && !(s.round === 0 && s.step && s.step.index === 0),
      advance: !ended && !consenting,
      pause: !ended && s.status !== 'paused',
      resume: s.status === 'paused',
      swap: !ended && !consenting,
      end: !ended,
    };
    for (const [action, b] of this.controlButtons) b.disabled = !enable[action];
  }

  renderStep() {
    const m = this.model;
    const s = m.state;
    this.stepEl.hidden = !s.step;
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
      h(
        'ul',
        { class: 'offer-list' },
        offers.map(([seq, e]) => {
          const li = h('li', {}, h('p', {}, h('strong', {}, staffRoleName(e.by)), ` at ${formatClock(e.at)}`, e.text ? `: “${e.text}”` : ''));
          if (!this.readOnly && m.state.status !== 'ended') {
            const b = h('button', { type: 'button', class: 'secondary' }, `Accept for ${staffRoleName(e.by)}`);
            b.addEventListener('click', () => this.act({ type: 'repair_accept', attempt_seq: seq }, b).catch(() => {}));
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

  /** Banners for open and suspected ruptures, built once each so typing survives updates. */
  renderAlerts() {
    const m = this.model;
    const live = m.ruptures().filter((r) => r.status === 'open' || r.status === 'suspected');
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
          const label = `${r.status === 'open' ? 'Open rupture' : 'Suspected rupture'}: ${RUPTURE_KIND[r.kind] || r.kind}, ${m.markerLabel(r.marker)}, ${staffRoleName(r.who)}.`;
          this.alert(label);
        }
      }
    }
    this.alertsEl.hidden = live.length === 0;
    const openCount = live.filter((r) => r.status === 'open').length;
    document.title = openCount ? `(${openCount}) Open rupture · Attune` : 'Attune · Room';
    document.body.classList.toggle('has-open-rupture', openCount > 0);
  }

  buildBanner(r) {
    const m = this.model;
    const suspected = r.status === 'suspected';
    const evidence = r.evidence
      .map((seq) => m.events.get(seq))
      .filter(Boolean)
      .map((e) => evidenceText(m, e))
      .filter(Boolean);
    const timer = h('span', { class: 'since', dataset: { openedAt: String(r.opened_at) } }, formatDuration(Date.now() - r.opened_at));
    const children = [
      h(
        'h2',
        {},
        h('span', { class: 'badge' }, suspected ? 'Suspected' : 'Open rupture'),
        ` ${RUPTURE_KIND[r.kind] || r.kind}: ${m.markerLabel(r.marker)}`,
      ),
      h(
        'p',
        { class: 'banner-meta' },
        `${staffRoleName(r.who)} with ${staffRoleName(r.with)} · ${SOURCE[r.source] || r.source} · at ${formatClock(r.opened_at)} · open for `,
        timer,
      ),
      evidence.length ? h('ul', { class: 'evidence' }, evidence.map((t) => h('li', {}, t))) : null,
    ];
    if (!this.readOnly) {
      const id = uniqueId(`r${r.id}`);
      if (suspected) {
        const confirm = h('button', { type: 'button', class: 'primary' }, 'Confirm');
        const dismiss = h('button', { type: 'button', class: 'secondary' }, 'Dismiss');
        confirm.addEventListener('click', () => this.act({ type: 'rupture_confirm', rupture_id: r.id }, confirm).catch(() => {}));
        dismiss.addEventListener('click', () => this.act({ type: 'rupture_dismiss', rupture_id: r.id }, dismiss).catch(() => {}));
        children.push(h('div', { class: 'form-actions' }, confirm, dismiss));
      } else {
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
        const dismiss = h('button', { type: 'button', class: 'quiet-button' }, 'Dismiss as a false alarm');
        const form = h(
          'form',
          { class: 'repair-form', novalidate: true },
          h(
            'div',
            { class: 'field two' },
            h('div', {}, h('label', { for: strategy.id }, 'How it was repaired'), strategy),
            h('div', {}, h('label', { for: note.id }, 'Note', h('span', { class: 'optional' }, ' (private, optional)')), note),
          ),
          h('div', { class: 'form-actions' }, repair, dismiss),
        );
        form.addEventListener('submit', (e) => {
          e.preventDefault();
          const msg = { type: 'rupture_repair', rupture_id: r.id, strategy: strategy.value };
          if (note.value.trim()) msg.note = note.value.trim();
          this.act(msg, repair).catch(() => {});
        });
        dismiss.addEventListener('click', () => {
          const msg = { type: 'rupture_dismiss', rupture_id: r.id };
          if (note.value.trim()) msg.note = note.value.trim();
          this.act(msg, dismiss).catch(() => {});
        });
        children.push(form);
      }
    }
    return h('article', { class: `rupture-banner ${suspected ? 'suspected' : 'open'}`, dataset: { rupture: String(r.id) } }, children);
  }

  renderTimeline() {
    const m = this.model;
    const rs = [...m.ruptures()].sort((a, b) => a.opened_seq - b.opened_seq);
    if (!rs.length) {
      replaceChildren(this.timelineEl, h('p', { class: 'hint' }, 'No ruptures so far.'));
      return;
    }
    const first = m.orderedEvents()[0];
    const start = first ? first[1].at : rs[0].opened_at;
    const end = m.state.status === 'ended' ? lastAt(m) : Date.now();
    const span = Math.max(end - start, 1);
    const bands = h(
      'div',
      { class: 'bands', 'aria-hidden': 'true' },
      rs.map((r) => {
        const stop = r.repair ? r.repair.at : r.status === 'dismissed' ? r.opened_at : end;
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
            : r.status === 'open'
              ? 'open'
              : r.status;
        return h(
          'li',
          { class: `rupture-item ${r.status}`, dataset: { rupture: String(r.id) } },
          h('span', { class: 'time' }, formatClock(r.opened_at)),
          h(
            'span',
            { class: 'what' },
            h('strong', {}, `${RUPTURE_KIND[r.kind] || r.kind}: ${m.markerLabel(r.marker)}`),
            ` · ${staffRoleName(r.who)} with ${staffRoleName(r.with)}`,
          ),
          h('span', { class: `chip ${r.status}` }, status),
        );
      }),
    );
    replaceChildren(this.timelineEl, bands, list);
    if (this.noteAbout) {
      const keep = this.noteAbout.value;
      replaceChildren(
        this.noteAbout,
        h('option', { value: '' }, 'The session in general'),
        rs.map((r) => h('option', { value: String(r.id) }, `Rupture ${r.id}: ${m.markerLabel(r.marker)} (${staffRoleName(r.who)})`)),
      );
      this.noteAbout.value = keep;
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
          h('p', {}, e.text),
        ),
      ),
    );
    if (!this.noteAbout) return;
    if (!this.noteAbout.options.length) replaceChildren(this.noteAbout, h('option', { value: '' }, 'The session in general'));
  }

  tick() {
    for (const el of this.alertsEl.querySelectorAll('.since')) {
      el.textContent = formatDuration(Date.now() - Number(el.dataset.openedAt));
    }
  }
}

export function logText(m, e) {
  const who = staffRoleName(e.by);
  switch (e.type) {
    case 'room_created':
      return `Room created (${e.exercise}); ${staffRoleName(e.first_speaker)} speaks first.`;
    case 'joined':
      return `${who} joined.`;
    case 'left':
      return `${who} left (${e.reason}).`;
    case 'consented':
      return `${who} agreed to the session.`;
    case 'turn': {
      const def = m.stepDef(e.step);
      return `${who}: ${def ? def.title : e.step} (round ${e.round + 1}).`;
    }
    case 'control':
      return `${who}: ${e.action}.`;
    case 'pause_requested':
      return `${who} asked for a pause${e.note ? `: “${e.note}”` : '.'}`;
    case 'repair_attempt':
      return `${who} tried to repair${e.text ? `: “${e.text}”` : '.'}`;
    case 'repair_accepted':
      return `${who} accepted the repair attempt.`;
    case 'rupture_opened':
    case 'rupture_suspected':
    case 'rupture_confirmed': {
      const verb = { rupture_opened: 'opened', rupture_suspected: 'suspected', rupture_confirmed: 'confirmed' }[e.type];
      return `Rupture ${e.rupture.id} ${verb}: ${RUPTURE_KIND[e.rupture.kind] || e.rupture.kind}, ${m.markerLabel(e.rupture.marker)} (${staffRoleName(e.rupture.who)}).`;
    }
    case 'rupture_dismissed':
      return `Rupture ${e.rupture_id} dismissed${e.note ? `: “${e.note}”` : '.'}`;
    case 'rupture_repaired':
      return `Rupture ${e.rupture_id} repaired (${e.how === 'therapist_strategy' ? m.strategyLabel(e.strategy) : REPAIR_HOW[e.how] || e.how}).`;
    case 'note':
      return `Private note${e.rupture_id ? ` on rupture ${e.rupture_id}` : ''}: “${e.text}”`;
    default:
      return `${e.type.replace(/_/g, ' ')} (${who}).`;
  }
}

function lastAt(m) {
  const evs = m.orderedEvents();
  return evs.length ? evs[evs.length - 1][1].at : Date.now();
}

export function evidenceText(m, e) {
  switch (e.type) {
    case 'pause_requested':
      return `${staffRoleName(e.by)} asked for a pause${e.note ? `: “${e.note}”` : '.'}`;
    case 'left':
      return `${staffRoleName(e.by)} disconnected (${e.reason}) at ${formatClock(e.at)}.`;
    case 'repair_attempt':
      return `${staffRoleName(e.by)}: “${e.text || 'let me try again'}”`;
    case 'turn': {
      const def = m.stepDef(e.step);
      const texts = [];
      for (const [name, v] of Object.entries(e.input)) {
        if (typeof v === 'string' && (!def || (def.inputs.find((i) => i.name === name) || {}).kind === 'text')) texts.push(v);
        else if (v && typeof v === 'object' && v.text) texts.push(v.text);
        else if (typeof v === 'number') texts.push(`${name}: ${v}`);
        else if (typeof v === 'string') texts.push(v);
      }
      return `${staffRoleName(e.by)} (${def ? def.title : e.step}): ${texts.map((t) => `“${t}”`).join(' ')}`;
    }
    default:
      return `${e.type.replace(/_/g, ' ')} by ${staffRoleName(e.by)} at ${formatClock(e.at)}`;
  }
}
