// The partner's room: consent (what each person receives, and that a
// supervisor may observe), the private safety check-in and its neutral
// waiting screen, the current step (a form on your turn, the prompt
// otherwise), what was said this round, repair offers, the observer badge,
// withdrawing consent, and the always-reachable actions: a pause, "let me
// try again" and the private line to the therapist.

import { h, replaceChildren, uniqueId, byteLength, formatClock } from './dom.js';
import { roleName, capitalize, otherPartner, kindError, EVENT_WORDS } from './words.js';
import { draftKey, loadDraft, saveDraft, dropDraft } from './drafts.js';
import { buildStepForm } from './step-form.js';
import { turnBar, roundThread, stepKey, presenceLine, nameFor, observerBadge } from './room-parts.js';

// "I am composing" goes to the server at most this often (content-free).
const TYPING_EVERY_MS = 10000;
// Events a partner receives only about themselves (protocol 2, section B).
const OWN_ONLY = new Set(['private_message', 'therapist_requested', 'checkin_answered', 'replaced']);

/** Why the room is paused: 'request', 'withdrawn' or 'therapist'. */
function pauseCause(model) {
  const s = model.state;
  let cause = s.paused_by === 'therapist' ? 'therapist' : 'request';
  for (const [, e] of model.orderedEvents()) {
    if (e.by !== s.paused_by) continue;
    if (e.type === 'pause_requested') cause = 'request';
    else if (e.type === 'consent_withdrawn') cause = 'withdrawn';
    else if (e.type === 'control' && e.action === 'pause') cause = 'therapist';
  }
  return cause;
}

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
    this.lastTyping = 0;
    this.consentKey = null;
    this.checkinKey = null;

    this.observerEl = h('div', { class: 'observer-slot', role: 'status' });
    this.consentEl = h('section', { class: 'card consent', 'aria-labelledby': 'consent-h', hidden: true });
    this.checkinEl = h('section', { class: 'card checkin', 'aria-labelledby': 'checkin-h', hidden: true });
    this.turnEl = h('div', { class: 'turn-slot' });
    this.pausedEl = h('section', { class: 'card paused-note', hidden: true, 'aria-live': 'polite' });
    this.stepEl = h('section', { class: 'card step-card', 'aria-labelledby': 'step-h' });
    this.offersEl = h('section', { class: 'offers', 'aria-label': 'Repair attempts', hidden: true });
    this.threadEl = h('div', { class: 'thread-slot' });
    this.endedEl = h('section', { class: 'card ended-note', hidden: true });
    this.presenceEl = h('div', { class: 'presence-slot' });
    this.myConsentEl = h('section', { class: 'card my-consent', 'aria-labelledby': 'my-consent-h', hidden: true });

    this.pauseDialog = this.buildPauseDialog();
    this.repairDialog = this.buildRepairDialog();
    this.privateDialog = this.buildPrivateDialog();
    this.withdrawDialog = this.buildWithdrawDialog();
    this.pauseBtn = h('button', { type: 'button', class: 'action pause', onclick: () => this.openPause() }, 'I need a pause');
    this.repairBtn = h('button', { type: 'button', class: 'action repair', onclick: () => this.openRepair() }, 'Let me try again');
    this.privateCount = h('span', { class: 'new-count', hidden: true });
    this.privateBtn = h(
      'button',
      { type: 'button', class: 'action private', 'aria-haspopup': 'dialog', onclick: () => this.openPrivate() },
      'Message my therapist',
      this.privateCount,
    );
    this.actionBar = h(
      'nav',
      { class: 'action-bar', 'aria-label': 'Take care of the conversation' },
      h('div', { class: 'action-inner' }, this.pauseBtn, this.repairBtn, this.privateBtn),
    );

    replaceChildren(
      root,
      h(
        'div',
        { class: 'partner-layout' },
        this.turnEl,
        this.observerEl,
        this.consentEl,
        this.checkinEl,
        this.pausedEl,
        this.endedEl,
        this.stepEl,
        this.offersEl,
        this.threadEl,
        this.presenceEl,
        this.myConsentEl,
      ),
      this.actionBar,
      this.pauseDialog,
      this.repairDialog,
      this.privateDialog,
      this.withdrawDialog,
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
    const agreed = Boolean(s.consent[you]);

    replaceChildren(this.turnEl, turnBar(m));
    replaceChildren(this.observerEl, observerBadge(m));
    replaceChildren(this.presenceEl, presenceLine(m));

    // Consent: the notice, waiting for the other partner, or withdrawn.
    const waiting = s.status === 'waiting_consent';
    const showConsent = !agreed || waiting;
    this.consentEl.hidden = !showConsent || s.status === 'ended';
    if (showConsent && s.status !== 'ended') this.renderConsent(agreed, other, s);
    else this.consentKey = null;

    // The private safety check-in, then one neutral waiting screen.
    const checking = s.status === 'checking_in' && agreed;
    this.checkinEl.hidden = !checking;
    if (checking) this.renderCheckin(s);
    else this.checkinKey = null;

    // Paused.
    this.pausedEl.hidden = s.status !== 'paused' || !agreed;
    if (s.status === 'paused' && agreed) this.renderPaused(s, you);

    // Ended.
    this.endedEl.hidden = s.status !== 'ended';
    if (s.status === 'ended') {
      replaceChildren(
        this.endedEl,
        h('h2', {}, 'The session has ended'),
        h('p', {}, 'Thank you both for the care you brought today. You can close this page whenever you like. Your messages with your therapist stay readable under “Message my therapist”.'),
      );
    }

    const stepShown = Boolean(s.step) && agreed && !waiting && s.status !== 'checking_in';
    this.stepEl.hidden = !stepShown;
    if (stepShown) this.renderStep();
    else {
      this.currentKey = null;
      this.form = null;
    }

    this.renderOffers();
    const threadShown = s.status === 'active' || s.status === 'paused' || s.status === 'ended' || m.turns(s.round).length > 0;
    replaceChildren(
      this.threadEl,
      threadShown && agreed ? roundThread(m, s.round, s.status === 'ended' ? 'The last round' : 'This round so far') : null,
    );

    // Withdrawing consent is always possible once given, until the end.
    this.myConsentEl.hidden = !agreed || s.status === 'ended';
    if (agreed && s.status !== 'ended') this.renderMyConsent();

    // The private line is always there; the rest only once something is running.
    const running = s.status !== 'ended' && s.status !== 'waiting_consent';
    this.pauseBtn.hidden = !running;
    this.repairBtn.hidden = !running || !agreed || s.status === 'checking_in';
    this.pauseBtn.textContent = s.status === 'paused' ? 'Paused' : 'I need a pause';
    this.pauseBtn.setAttribute('aria-pressed', s.status === 'paused' ? 'true' : 'false');
    this.renderPrivate();
  }

  renderPaused(s, you) {
    const mine = s.paused_by === you;
    const cause = pauseCause(this.model);
    let title;
    let text;
    if (cause === 'withdrawn' && mine) {
      title = 'You gave your consent again';
      text = 'Thank you. The session is still paused; your therapist will pick it up with you both when you are ready.';
    } else if (cause === 'withdrawn') {
      title = 'We are taking a pause';
      text = `${capitalize(roleName(s.paused_by, you))} has withdrawn their consent for now, so the session is paused. Your therapist has been told and will pick things up with you. Anything you were writing is kept.`;
    } else if (mine) {
      title = 'You asked for a pause';
      text = 'Take all the time you need. Breathe slowly; nothing is lost. Your therapist will pick things up with you when you are ready.';
    } else {
      title = 'We are taking a pause';
      text = `${capitalize(roleName(s.paused_by, you))} paused the session. Take a breath. Anything you were writing is kept, and you can send it when the session resumes.`;
    }
    replaceChildren(this.pausedEl, h('h2', {}, title), h('p', {}, text));
  }

  /** Who receives what, from the notice's `visible_to` and `receives`. */
  whoSees(c) {
    const you = this.model.role;
    const rows = [
      ['You and your partner', c.visible_to[you]],
      ['Your therapist', c.visible_to.therapist],
      ['A supervisor, if one observes', c.visible_to.observer],
    ].filter(([, text]) => text);
    const blocks = rows.map(([who, text]) => h('p', {}, h('strong', {}, `${who}: `), text));
    const receives = c.receives || null;
    let details = null;
    if (receives) {
      const lists = [
        ['Your screen', you, true],
        ['Your partner’s screen', otherPartner(you), true],
        ['Your therapist’s screen', 'therapist', false],
        ['A supervisor’s screen', 'observer', false],
      ]
        .filter(([, role]) => Array.isArray(receives[role]))
        .map(([title, role, partner]) =>
          h(
            'div',
            { class: 'receives' },
            h('h4', {}, title),
            h(
              'ul',
              {},
              receives[role].map((type) =>
                h('li', {}, EVENT_WORDS[type] || type.replace(/_/g, ' '), partner && OWN_ONLY.has(type) ? h('span', { class: 'hint' }, ' (only their own)') : null),
              ),
            ),
          ),
        );
      details = h('details', { class: 'receives-details' }, h('summary', {}, 'Exactly what reaches each screen'), h('div', { class: 'receives-grid' }, lists));
    }
    return [...blocks, details];
  }

  renderConsent(agreed, other, s) {
    const m = this.model;
    const c = m.ack.consent;
    const you = m.role;
    const withdrawn = !agreed && m.consentWithdrawn(you);
    const key = `${agreed}|${withdrawn}|${s.consent[other]}|${s.present[other]}|${s.status}`;
    if (key === this.consentKey) return;
    this.consentKey = key;
    if (agreed) {
      const otherHere = s.present[other];
      replaceChildren(
        this.consentEl,
        h('h2', { id: 'consent-h' }, `Waiting for ${roleName(other, you)}`),
        h(
          'p',
          {},
          otherHere
            ? `Thank you for agreeing. ${roleName(other, you)} is here and reading the same notice; we'll begin as soon as they agree too.`
            : `Thank you for agreeing. ${roleName(other, you)} hasn't opened their link yet; we'll begin as soon as they join and agree.`,
        ),
        h('p', { class: 'waiting-dots', 'aria-hidden': 'true' }, h('span'), h('span'), h('span')),
      );
      return;
    }
    const btn = h('button', { type: 'button', class: 'primary' }, withdrawn ? 'Give my consent again' : 'I agree, let’s begin');
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
    const notice = [
      h('p', {}, c.text),
      h('h3', {}, 'What is recorded'),
      h('ul', { class: 'consent-list' }, c.recorded.map((r) => h('li', {}, r))),
      h('h3', {}, 'Who sees it'),
      ...this.whoSees(c),
      h(
        'p',
        { class: 'observer-disclosure' },
        'A supervisor may observe this session to support your therapist. Whenever one is present, you will see “A supervisor is observing” at the top of your screen.',
      ),
    ];
    if (withdrawn) {
      replaceChildren(
        this.consentEl,
        h('h2', { id: 'consent-h' }, 'You have withdrawn your consent'),
        h(
          'p',
          {},
          'The session is paused and your therapist has been told. Nothing more you do in the exercise is sent or recorded until you agree again. What was shared before stays in the session record.',
        ),
        h('p', {}, 'You can still message your therapist privately. If you change your mind, you can give your consent again; your therapist will then resume the session with you both.'),
        h('details', { class: 'notice-again' }, h('summary', {}, 'Read the notice again'), notice),
        h('div', { class: 'form-actions' }, btn),
        err,
      );
      return;
    }
    replaceChildren(
      this.consentEl,
      h('h2', { id: 'consent-h' }, 'Before we begin'),
      ...notice,
      h(
        'p',
        { class: 'hint' },
        s.consent[other]
          ? `${capitalize(roleName(other, you))} has already agreed.`
          : `${capitalize(roleName(other, you))} hasn't agreed yet.`,
        ' If you would rather not go ahead, you can simply close this page. You can withdraw your consent later at any time.',
      ),
      h('div', { class: 'form-actions' }, btn),
      err,
    );
  }

  /** The check-in form, or (answered, or held) the waiting screen, the same for both partners. */
  renderCheckin(s) {
    const m = this.model;
    const safety = m.safety;
    const answered = Boolean(s.checkin && s.checkin.answered);
    const key = answered ? 'waiting' : 'form';
    if (key === this.checkinKey) return;
    this.checkinKey = key;
    if (answered || !safety) {
      replaceChildren(
        this.checkinEl,
        h('h2', { id: 'checkin-h' }, 'One moment'),
        h('p', { class: 'checkin-waiting' }, (safety && safety.waiting) || 'Thank you. Your therapist will be with you in a moment.'),
        h('p', { class: 'waiting-dots', 'aria-hidden': 'true' }, h('span'), h('span'), h('span')),
        h('p', { class: 'hint' }, 'While you wait, you can message your therapist privately at any time.'),
      );
      return;
    }
    const formId = uniqueId('checkin');
    const groups = safety.questions.map((q) => {
      const name = `${formId}-${q.id}`;
      const error = h('p', { class: 'field-error', id: `${name}-err`, hidden: true });
      const radios = q.options.map((o) => h('input', { type: 'radio', name, value: o.id, id: `${name}-${o.id}` }));
      const el = h(
        'fieldset',
        { class: 'field choice', 'aria-describedby': error.id },
        h('legend', {}, q.prompt),
        h('div', { class: 'choices' }, q.options.map((o, i) => h('label', { class: 'choice-button', for: radios[i].id }, radios[i], h('span', {}, o.label)))),
        error,
      );
      return { q, el, radios, error };
    });
    const noteDef = safety.note || null;
    const noteId = `${formId}-note`;
    const note = noteDef ? h('textarea', { id: noteId, rows: 3, maxlength: noteDef.max_length || 4000 }) : null;
    const submit = h('button', { type: 'submit', class: 'primary' }, 'Send to my therapist only');
    const err = h('p', { class: 'form-error', role: 'alert', hidden: true });
    const form = h(
      'form',
      { class: 'step-form checkin-form', novalidate: true },
      groups.map((g) => g.el),
      note ? h('div', { class: 'field' }, h('label', { for: noteId }, noteDef.label), note) : null,
      err,
      h('div', { class: 'form-actions' }, submit),
    );
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      err.hidden = true;
      const answers = {};
      let firstBad = null;
      for (const g of groups) {
        const r = g.radios.find((x) => x.checked);
        if (!r) {
          g.error.textContent = 'Please choose one.';
          g.error.hidden = false;
          g.el.setAttribute('aria-invalid', 'true');
          if (!firstBad) firstBad = g;
        } else {
          g.error.hidden = true;
          g.el.removeAttribute('aria-invalid');
          answers[g.q.id] = r.value;
        }
      }
      if (firstBad) {
        firstBad.radios[0].focus();
        return;
      }
      const msg = { type: 'checkin', answers };
      const text = note ? note.value.trim() : '';
      if (text) {
        if (byteLength(text) > ((noteDef && noteDef.max_length) || 4000)) {
          err.textContent = 'The note is a little too long; please shorten it.';
          err.hidden = false;
          return;
        }
        msg.note = text;
      }
      submit.disabled = true;
      this.send(msg).then(
        () => {},
        (error) => {
          submit.disabled = false;
          err.textContent = kindError(error);
          err.hidden = false;
        },
      );
    });
    replaceChildren(
      this.checkinEl,
      h('p', { class: 'eyebrow private-label' }, 'Private: only your therapist sees this'),
      h('h2', { id: 'checkin-h' }, safety.title),
      h('p', {}, safety.intro),
      form,
    );
  }

  renderMyConsent() {
    if (this.myConsentEl.childElementCount) return;
    const btn = h('button', { type: 'button', class: 'quiet-button', 'aria-haspopup': 'dialog' }, 'Withdraw my consent');
    btn.addEventListener('click', () => this.withdrawDialog.showModal());
    replaceChildren(
      this.myConsentEl,
      h('h2', { id: 'my-consent-h' }, 'Your consent'),
      h('p', { class: 'hint' }, 'You agreed to take part. You can withdraw your consent at any time: the session pauses for both of you and your therapist is told.'),
      btn,
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
        onTyping: () => this.typing(),
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

  /** Tells the server (nothing of the words) that this partner is composing, at most every 10 s. */
  typing() {
    const s = this.model.state;
    if (!s || s.status !== 'active' || !s.step || s.step.actor !== this.model.role || !this.online) return;
    const now = Date.now();
    if (now - this.lastTyping < TYPING_EVERY_MS) return;
    this.lastTyping = now;
    this.send({ type: 'typing' }).catch(() => {});
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
    const you = m.role;
    const other = otherPartner(you);
    const agreed = Boolean(s.consent[you]);
    const items = [];
    for (const a of m.openRepairAttempts()) {
      if (a.by === you) {
        let status = `Waiting for ${roleName(other, you)}.`;
        if (a.reply === 'need_a_moment') status = `${capitalize(roleName(other, you))} said thank you, and that they need a moment.`;
        items.push(
          h(
            'div',
            { class: 'card offer mine', dataset: { attempt: String(a.id) } },
            h('p', {}, 'You offered to try again', a.text ? `: “${a.text}”` : '.'),
            h('p', { class: 'hint' }, status, a.acknowledged ? ' Your therapist has seen it.' : ''),
          ),
        );
      } else if (a.by === other && s.status !== 'ended') {
        const actions = [];
        if (agreed) {
          const accept = h('button', { type: 'button', class: 'primary' }, 'Accept');
          accept.addEventListener('click', () => {
            accept.disabled = true;
            this.send({ type: 'repair_accept', attempt_id: a.id }).catch((err) => {
              accept.disabled = false;
              this.notify(kindError(err));
            });
          });
          actions.push(accept);
          if (a.reply !== 'need_a_moment') {
            const moment = h('button', { type: 'button', class: 'secondary' }, 'Thank you, I need a moment');
            moment.addEventListener('click', () => {
              moment.disabled = true;
              this.send({ type: 'repair_reply', attempt_id: a.id, reply: 'need_a_moment' }).catch((err) => {
                moment.disabled = false;
                this.notify(kindError(err));
              });
            });
            actions.push(moment);
          }
        }
        items.push(
          h(
            'div',
            { class: 'card offer', dataset: { attempt: String(a.id) } },
            h('h2', {}, `${capitalize(roleName(a.by, you))} would like to try again`),
            a.text ? h('blockquote', {}, a.text) : null,
            a.reply === 'need_a_moment' ? h('p', { class: 'hint' }, 'You said you need a moment. Take it; whenever you are ready, you can still accept.') : null,
            actions.length ? h('div', { class: 'form-actions' }, actions) : null,
          ),
        );
      }
    }
    this.offersEl.hidden = items.length === 0;
    replaceChildren(this.offersEl, ...items);
  }

  buildPauseDialog() {
    const noteId = 'pause-note';
    const note = h('textarea', { id: noteId, rows: 3, maxlength: 4000, 'aria-describedby': 'pause-note-who' });
    const err = h('p', { class: 'form-error', role: 'alert', hidden: true });
    const go = h('button', { type: 'submit', class: 'primary' }, 'Pause now');
    const cancel = h('button', { type: 'button', class: 'quiet-button' }, 'Keep going');
    const toPrivate = h('button', { type: 'button', class: 'quiet-button' }, 'Message my therapist instead');
    const dialog = h(
      'dialog',
      { class: 'sheet', 'aria-labelledby': 'pause-h' },
      h(
        'form',
        { method: 'dialog' },
        h('h2', { id: 'pause-h' }, 'Take a pause'),
        h('p', {}, 'The exercise stops for both of you and your therapist is told. Nothing you wrote is lost.'),
        h('label', { for: noteId }, 'Anything you want to say', h('span', { class: 'optional' }, ' (optional)')),
        h(
          'p',
          { class: 'hint', id: 'pause-note-who' },
          'Your partner sees this note too. For anything only your therapist should see, use “Message my therapist” instead.',
        ),
        note,
        err,
        h('div', { class: 'form-actions' }, go, cancel),
        toPrivate,
      ),
    );
    cancel.addEventListener('click', () => dialog.close());
    toPrivate.addEventListener('click', () => {
      dialog.close();
      this.openPrivate();
    });
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
        h('p', {}, 'Reach back toward your partner. They will see this and can accept it, or say they need a moment.'),
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
    this.repairText = text;
    this.repairKey = key;
    return dialog;
  }

  /** The private line: "Message my therapist only". Never part of the shared room. */
  buildPrivateDialog() {
    const textId = 'private-text';
    this.privateList = h('ol', { class: 'private-list', 'aria-label': 'Messages with your therapist', tabindex: '0' });
    const text = h('textarea', { id: textId, rows: 3, maxlength: 4000 });
    const err = h('p', { class: 'form-error', role: 'alert', hidden: true });
    const sent = h('p', { class: 'send-note', role: 'status' });
    const go = h('button', { type: 'submit', class: 'primary' }, 'Send to my therapist');
    const close = h('button', { type: 'button', class: 'quiet-button' }, 'Close');
    const ask = h('button', { type: 'button', class: 'secondary' }, 'I need to check something with my therapist');
    // Once the session has ended the room takes nothing more from a partner
    // (the server refuses it: session_ended), so the line only shows what
    // was said and what the therapist still sends.
    this.privateComposer = h(
      'div',
      { class: 'private-composer' },
      h('label', { for: textId }, 'Your message'),
      text,
      err,
      h('div', { class: 'form-actions' }, go),
      h('div', { class: 'ask-therapist' }, h('p', { class: 'hint' }, 'Or ask for a private word, without saying why:'), ask),
    );
    this.privateClosed = h(
      'p',
      { class: 'private-closed', hidden: true },
      'The session has ended, so this line takes no new messages. Your therapist can still write to you here. To reach them now, contact their practice the way you usually do; if you are not safe, the crisis resources are linked on this page.',
    );
    const dialog = h(
      'dialog',
      { class: 'sheet private-sheet', 'aria-labelledby': 'private-h', 'aria-describedby': 'private-who' },
      h(
        'form',
        { method: 'dialog' },
        h('h2', { id: 'private-h' }, 'Message my therapist only'),
        h('p', { class: 'private-label', id: 'private-who' }, h('span', { class: 'lock', 'aria-hidden': 'true' }), 'Only your therapist sees this.'),
        h('p', { class: 'hint' }, 'Your partner never sees these messages, nor that you wrote one. You can write here at any time while the session runs, also while it is paused.'),
        this.privateList,
        this.privateComposer,
        this.privateClosed,
        h('div', { class: 'form-actions' }, close, sent),
      ),
    );
    close.addEventListener('click', () => dialog.close());
    const key = () => draftKey(this.model.ack.room, this.model.role, 'any', 'private', 'private');
    text.addEventListener('input', () => saveDraft(key(), { text: text.value }));
    // One button's message: disabled while it is on its way, a kind error if it fails.
    const sendFrom = (button, msg, done) => {
      button.disabled = true;
      this.send(msg).then(
        () => {
          button.disabled = false;
          done();
        },
        (error) => {
          button.disabled = false;
          err.textContent = kindError(error);
          err.hidden = false;
        },
      );
    };
    dialog.querySelector('form').addEventListener('submit', (e) => {
      e.preventDefault();
      const t = text.value.trim();
      err.hidden = true;
      if (!t) {
        err.textContent = 'Write your message first.';
        err.hidden = false;
        text.focus();
        return;
      }
      sendFrom(go, { type: 'private_message', to: 'therapist', text: t }, () => {
        text.value = '';
        dropDraft(key());
        sent.textContent = 'Sent. Only your therapist sees it.';
      });
    });
    ask.addEventListener('click', () => {
      err.hidden = true;
      sendFrom(ask, { type: 'ask_therapist' }, () => {
        sent.textContent = 'Your therapist has been asked for a private word. Only they know.';
      });
    });
    dialog.addEventListener('close', () => {
      sent.textContent = '';
    });
    this.privateText = text;
    this.privateKey = key;
    return dialog;
  }

  seenKey() {
    return `attune.private-seen|${this.model.ack.room}|${this.model.role}`;
  }

  seenSeq() {
    try {
      return Number(sessionStorage.getItem(this.seenKey())) || 0;
    } catch {
      return 0;
    }
  }

  markSeen() {
    const line = this.model.privateLine();
    const last = line.length ? line[line.length - 1][0] : 0;
    try {
      sessionStorage.setItem(this.seenKey(), String(last));
    } catch {
      /* storage disabled: the count simply shows again after a reload */
    }
  }

  renderPrivate() {
    const m = this.model;
    const line = m.privateLine();
    const ended = m.state?.status === 'ended';
    this.privateComposer.hidden = ended;
    this.privateClosed.hidden = !ended;
    replaceChildren(
      this.privateList,
      line.length
        ? line.map(([seq, e]) => {
            const fromMe = e.by === m.role;
            const words =
              e.type === 'therapist_requested' ? 'You asked for a private word.' : e.text;
            return h(
              'li',
              { class: `private-item${fromMe ? ' mine' : ''}`, dataset: { seq: String(seq) } },
              h('p', { class: 'private-head' }, h('span', { class: 'who' }, fromMe ? 'You' : 'Your therapist'), ' ', h('span', { class: 'time' }, formatClock(e.at))),
              h('p', {}, words),
            );
          })
        : h('li', { class: 'hint' }, 'No messages yet.'),
    );
    this.privateList.scrollTop = this.privateList.scrollHeight;
    // Replies from the therapist the partner has not opened yet.
    const seen = this.seenSeq();
    const fresh = line.filter(([seq, e]) => seq > seen && e.by === 'therapist');
    if (this.privateDialog.open) {
      this.markSeen();
      this.privateCount.hidden = true;
    } else {
      this.privateCount.hidden = fresh.length === 0;
      this.privateCount.textContent = fresh.length ? ` (${fresh.length} new)` : '';
      const newest = fresh.length ? fresh[fresh.length - 1][0] : 0;
      if (newest && newest !== this.announcedReply) {
        this.announcedReply = newest;
        this.announce('Your therapist sent you a private message.');
      }
    }
  }

  buildWithdrawDialog() {
    const go = h('button', { type: 'submit', class: 'danger' }, 'Withdraw my consent');
    const keep = h('button', { type: 'button', class: 'quiet-button' }, 'Keep my consent');
    const err = h('p', { class: 'form-error', role: 'alert', hidden: true });
    const dialog = h(
      'dialog',
      { class: 'sheet', 'aria-labelledby': 'withdraw-h' },
      h(
        'form',
        { method: 'dialog' },
        h('h2', { id: 'withdraw-h' }, 'Withdraw your consent?'),
        h('p', {}, 'The session pauses for both of you and your therapist is told. Nothing more you do in the exercise is sent until you agree again.'),
        h('p', { class: 'hint' }, 'What was already shared stays in the session record. You can still message your therapist privately, and you can give your consent again later.'),
        err,
        h('div', { class: 'form-actions' }, go, keep),
      ),
    );
    keep.addEventListener('click', () => dialog.close());
    dialog.querySelector('form').addEventListener('submit', (e) => {
      e.preventDefault();
      go.disabled = true;
      this.send({ type: 'consent_withdraw' }).then(
        () => {
          go.disabled = false;
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

  openPrivate() {
    const d = loadDraft(this.privateKey());
    if (d && d.text && !this.privateText.value) this.privateText.value = d.text;
    this.privateDialog.showModal();
    this.privateList.scrollTop = this.privateList.scrollHeight;
    this.markSeen();
    this.privateCount.hidden = true;
    this.privateText.focus();
  }
}
