// The partner's room: consent, waiting for the other partner, the current
// step (a form on your turn, the prompt otherwise), what was said this round,
// repair offers, and the always-reachable pause / try-again actions.

import { h, replaceChildren } from './dom.js';
import { roleName, capitalize, otherPartner, kindError } from './words.js';
import { draftKey, loadDraft, saveDraft, dropDraft } from './drafts.js';
import { buildStepForm } from './step-form.js';
import { turnBar, roundThread, stepKey, presenceLine, nameFor } from './room-parts.js';

export class PartnerView {
  constructor({ root, model, send, announce, notify }) {
    this.root = root;
    this.model = model;
    this.send = send;
    this.announce = announce;
    this.notify = notify;
    this.currentKey = null;
    this.form = null;
    this.online = false;

    this.consentEl = h('section', { class: 'card consent', 'aria-labelledby': 'consent-h', hidden: true });
    this.turnEl = h('div', { class: 'turn-slot' });
    this.pausedEl = h('section', { class: 'card paused-note', hidden: true, 'aria-live': 'polite' });
    this.stepEl = h('section', { class: 'card step-card', 'aria-labelledby': 'step-h' });
    this.offersEl = h('section', { class: 'offers', 'aria-label': 'Repair attempts', hidden: true });
    this.threadEl = h('div', { class: 'thread-slot' });
    this.endedEl = h('section', { class: 'card ended-note', hidden: true });
    this.presenceEl = h('div', { class: 'presence-slot' });

    this.pauseDialog = this.buildPauseDialog();
    this.repairDialog = this.buildRepairDialog();
    this.pauseBtn = h('button', { type: 'button', class: 'action pause', onclick: () => this.openPause() }, 'I need a pause');
    this.repairBtn = h('button', { type: 'button', class: 'action repair', onclick: () => this.openRepair() }, 'Let me try again');
    this.actionBar = h(
      'nav',
      { class: 'action-bar', 'aria-label': 'Take care of the conversation' },
      h('div', { class: 'action-inner' }, this.pauseBtn, this.repairBtn),
    );

    replaceChildren(
      root,
      h(
        'div',
        { class: 'partner-layout' },
        this.turnEl,
        this.consentEl,
        this.pausedEl,
        this.endedEl,
        this.stepEl,
        this.offersEl,
        this.threadEl,
        this.presenceEl,
      ),
      this.actionBar,
      this.pauseDialog,
      this.repairDialog,
    );
  }

  setOnline(online) {
    this.online = online;
    this.updateFormBlock();
  }

  render() {
    const m = this.model;
    const s = m.state;
    if (!s) return;
    const you = m.role;
    const other = otherPartner(you);

    replaceChildren(this.turnEl, turnBar(m));
    replaceChildren(this.presenceEl, presenceLine(m));

    // Consent and waiting for the other partner.
    const waiting = s.status === 'waiting_consent';
    this.consentEl.hidden = !waiting;
    if (waiting) this.renderConsent(s.consent[you], other, s);

    // Paused.
    this.pausedEl.hidden = s.status !== 'paused';
    if (s.status === 'paused') {
      const mine = s.paused_by === you;
      replaceChildren(
        this.pausedEl,
        h('h2', {}, mine ? 'You asked for a pause' : 'We are taking a pause'),
        h(
          'p',
          {},
          mine
            ? 'Take all the time you need. Breathe slowly; nothing is lost. Your therapist will pick things up with you when you are ready.'
            : `${capitalize(roleName(s.paused_by, you))} paused the session. Take a breath. Anything you were writing is kept, and you can send it when the session resumes.`,
        ),
      );
    }

    // Ended.
    this.endedEl.hidden = s.status !== 'ended';
    if (s.status === 'ended') {
      replaceChildren(
        this.endedEl,
        h('h2', {}, 'The session has ended'),
        h('p', {}, 'Thank you both for the care you brought today. You can close this page whenever you like.'),
      );
    }

    this.stepEl.hidden = !s.step || waiting;
    if (s.step && !waiting) this.renderStep();
    else {
      this.currentKey = null;
      this.form = null;
    }

    this.renderOffers();
    replaceChildren(
      this.threadEl,
      waiting ? null : roundThread(m, s.round, s.status === 'ended' ? 'The last round' : 'This round so far'),
    );

    const canCare = s.status !== 'ended' && !waiting;
    // Before both agree nothing is running yet, and after the end nothing can be paused.
    this.actionBar.hidden = !canCare;
    this.pauseBtn.textContent = s.status === 'paused' ? 'Paused' : 'I need a pause';
    this.pauseBtn.setAttribute('aria-pressed', s.status === 'paused' ? 'true' : 'false');
  }

  renderConsent(agreed, other, s) {
    const m = this.model;
    const c = m.ack.consent;
    if (agreed) {
      const otherHere = s.present[other];
      replaceChildren(
        this.consentEl,
        h('h2', { id: 'consent-h' }, `Waiting for ${roleName(other, m.role)}`),
        h(
          'p',
          {},
          otherHere
            ? `Thank you for agreeing. ${roleName(other, m.role)} is here and reading the same notice; we'll begin as soon as they agree too.`
            : `Thank you for agreeing. ${roleName(other, m.role)} hasn't opened their link yet; we'll begin as soon as they join and agree.`,
        ),
        h('p', { class: 'waiting-dots', 'aria-hidden': 'true' }, h('span'), h('span'), h('span')),
      );
      return;
    }
    const btn = h('button', { type: 'button', class: 'primary' }, 'I agree, let’s begin');
    const err = h('p', { class: 'form-error', role: 'alert', hidden: true });
    btn.addEventListener('click', () => {
      btn.disabled = true;
      this.send({ type: 'consent', accept: true }).then(
        () => {},
        (e) => {
          btn.disabled = false;
          err.textContent = kindError(e);
          err.hidden = false;
        },
      );
    });
    replaceChildren(
      this.consentEl,
      h('h2', { id: 'consent-h' }, 'Before we begin'),
      h('p', {}, c.text),
      h('h3', {}, 'What is recorded'),
      h('ul', { class: 'consent-list' }, c.recorded.map((r) => h('li', {}, r))),
      h('h3', {}, 'Who sees it'),
      h('p', {}, h('strong', {}, 'You and your partner: '), c.visible_to[m.role] || ''),
      h('p', {}, h('strong', {}, 'Your therapist: '), c.visible_to.therapist || ''),
      h(
        'p',
        { class: 'hint' },
        s.consent[other]
          ? `${capitalize(roleName(other, m.role))} has already agreed.`
          : `${capitalize(roleName(other, m.role))} hasn't agreed yet.`,
        ' If you would rather not go ahead, you can simply close this page.',
      ),
      h('div', { class: 'form-actions' }, btn),
      err,
    );
  }

  renderStep() {
    const m = this.model;
    const s = m.state;
    const key = stepKey(m);
    const mine = s.step.actor === m.role;
    if (key === this.currentKey) {
      this.updateFormBlock();
      return;
    }
    const hadFocus = this.stepEl.contains(document.activeElement);
    this.currentKey = key;
    this.form = null;
    const children = [h('h2', { id: 'step-h' }, s.step.title), h('p', { class: 'prompt' }, s.step.prompt)];
    if (mine) {
      const dk = draftKey(m.ack.room, m.role, s.round, s.step.id);
      const form = buildStepForm({
        model: m,
        step: s.step,
        draftKey: dk,
        submitLabel: 'Share',
        onSubmit: (input) => this.submitTurn(form, s.step.id, input),
      });
      this.form = form;
      children.push(form.el);
    } else if (s.step.actor === 'therapist') {
      children.push(h('p', { class: 'waiting' }, 'Your therapist is writing this part. It will show up below.'));
    } else {
      children.push(
        h(
          'p',
          { class: 'waiting' },
          `${nameFor(m, s.step.actor)} is answering. Their words will appear below when they share them.`,
        ),
      );
    }
    replaceChildren(this.stepEl, ...children);
    this.updateFormBlock();
    if (mine && hadFocus && this.form) this.form.focusFirst();
  }

  updateFormBlock() {
    if (!this.form || !this.model.state) return;
    const s = this.model.state;
    let reason = '';
    if (!this.online) reason = 'Reconnecting… your words are kept and you can send them in a moment.';
    else if (s.status === 'paused') reason = 'Paused. You can keep writing; you can send it when the session resumes.';
    this.form.setBlocked(reason);
  }

  submitTurn(form, stepId, input) {
    form.setSending(true);
    this.send({ type: 'turn', step: stepId, input }).then(
      () => {
        form.forget();
        form.setSending(false);
      },
      (e) => {
        form.setSending(false);
        form.showError(kindError(e));
      },
    );
  }

  renderOffers() {
    const m = this.model;
    const s = m.state;
    const offers = m.openRepairAttempts();
    const items = [];
    for (const [seq, e] of offers) {
      if (e.by === m.role) {
        items.push(
          h(
            'div',
            { class: 'card offer mine' },
            h('p', {}, 'You offered to try again', e.text ? `: “${e.text}”` : '.'),
            h('p', { class: 'hint' }, `Waiting for ${roleName(otherPartner(m.role), m.role)} or your therapist.`),
          ),
        );
      } else if (s.status !== 'ended') {
        const accept = h('button', { type: 'button', class: 'primary' }, 'I’m open to that');
        accept.addEventListener('click', () => {
          accept.disabled = true;
          this.send({ type: 'repair_accept', attempt_seq: seq }).catch((err) => {
            accept.disabled = false;
            this.notify(kindError(err));
          });
        });
        items.push(
          h(
            'div',
            { class: 'card offer' },
            h('h2', {}, `${capitalize(roleName(e.by, m.role))} would like to try again`),
            e.text ? h('blockquote', {}, e.text) : null,
            h('div', { class: 'form-actions' }, accept),
          ),
        );
      }
    }
    this.offersEl.hidden = items.length === 0;
    replaceChildren(this.offersEl, ...items);
  }

  buildPauseDialog() {
    const noteId = 'pause-note';
    const note = h('textarea', { id: noteId, rows: 3, maxlength: 4000 });
    const err = h('p', { class: 'form-error', role: 'alert', hidden: true });
    const go = h('button', { type: 'submit', class: 'primary' }, 'Pause now');
    const cancel = h('button', { type: 'button', class: 'quiet-button' }, 'Keep going');
    const dialog = h(
      'dialog',
      { class: 'sheet', 'aria-labelledby': 'pause-h' },
      h(
        'form',
        { method: 'dialog' },
        h('h2', { id: 'pause-h' }, 'Take a pause'),
        h('p', {}, 'The exercise stops for both of you and your therapist is told. Nothing you wrote is lost.'),
        h('label', { for: noteId }, 'Anything you want to say', h('span', { class: 'optional' }, ' (optional)')),
        note,
        err,
        h('div', { class: 'form-actions' }, go, cancel),
      ),
    );
    cancel.addEventListener('click', () => dialog.close());
    dialog.querySelector('form').addEventListener('submit', (e) => {
      e.preventDefault();
      const msg = { type: 'pause_request' };
      if (note.value.trim()) msg.note = note.value.trim();
      go.disabled = true;
      this.send(msg).then(
        () => {
          go.disabled = false;
          note.value = '';
          err.hidden = true;
          dialog.close();
        },
        (error) => {
          go.disabled = false;
          err.textContent = error.code === 'session_paused' ? 'The session is already paused. Take your time.' : kindError(error);
          err.hidden = false;
        },
      );
    });
    this.pauseNote = note;
    this.pauseGo = go;
    return dialog;
  }

  buildRepairDialog() {
    const textId = 'repair-text';
    const text = h('textarea', { id: textId, rows: 3, maxlength: 4000, placeholder: 'I’m sorry, that came out wrong. Can I try again?' });
    const err = h('p', { class: 'form-error', role: 'alert', hidden: true });
    const go = h('button', { type: 'submit', class: 'primary' }, 'Send');
    const cancel = h('button', { type: 'button', class: 'quiet-button' }, 'Not now');
    const dialog = h(
      'dialog',
      { class: 'sheet', 'aria-labelledby': 'repair-h' },
      h(
        'form',
        { method: 'dialog' },
        h('h2', { id: 'repair-h' }, 'Let me try again'),
        h('p', {}, 'Reach back toward your partner. They will see this and can accept it.'),
        h('label', { for: textId }, 'What you would like to say', h('span', { class: 'optional' }, ' (optional)')),
        text,
        err,
        h('div', { class: 'form-actions' }, go, cancel),
      ),
    );
    cancel.addEventListener('click', () => dialog.close());
    const key = () => draftKey(this.model.ack.room, this.model.role, 'any', 'repair', 'repair');
    text.addEventListener('input', () => saveDraft(key(), { text: text.value }));
    dialog.querySelector('form').addEventListener('submit', (e) => {
      e.preventDefault();
      const msg = { type: 'repair_attempt' };
      if (text.value.trim()) msg.text = text.value.trim();
      go.disabled = true;
      this.send(msg).then(
        () => {
          go.disabled = false;
          text.value = '';
          dropDraft(key());
          err.hidden = true;
          dialog.close();
        },
        (error) => {
          go.disabled = false;
          err.textContent = kindError(error);
          err.hidden = false;
        },
      );
    });
    dialog.addEventListener('close', () => {});
    this.repairText = text;
    this.repairKey = key;
    return dialog;
  }

  openPause() {
    if (this.model.state && this.model.state.status === 'paused') {
      this.notify('The session is already paused. Take all the time you need.');
      return;
    }
    this.pauseDialog.showModal();
    this.pauseGo.focus();
  }

  openRepair() {
    const d = loadDraft(this.repairKey());
    if (d && d.text && !this.repairText.value) this.repairText.value = d.text;
    this.repairDialog.showModal();
    this.repairText.focus();
  }
}
