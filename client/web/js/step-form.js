// Builds the form for any exercise step purely from its input descriptions
// (PROTOCOL.md 8.2): text areas, searchable emotion/need pickers with free
// text beside them, rating sliders or 0-10 scales, and choice buttons. Keeps
// a draft of every keystroke and collects the `turn` input object.

import { h, uniqueId, byteLength } from './dom.js';
import { loadDraft, saveDraft, dropDraft } from './drafts.js';

const VOCAB_FOR_KIND = { emotion_reactive: 'reactive', emotion_primary: 'primary', need: 'needs' };
const SEARCH_LABEL = {
  reactive: 'Search feelings',
  primary: 'Search feelings',
  needs: 'Search needs',
};

function optionalMark(def) {
  return def.required ? null : h('span', { class: 'optional' }, ' (optional)');
}

function fieldError() {
  return h('p', { class: 'field-error', id: uniqueId('err'), hidden: true });
}

function textField(def, formId) {
  const id = `${formId}-${def.name}`;
  const max = def.max_length || 4000;
  const error = fieldError();
  const counter = h('p', { class: 'hint', id: `${id}-count`, 'aria-live': 'off' });
  const area = h('textarea', {
    id,
    name: def.name,
    rows: 3,
    maxlength: max,
    'aria-describedby': `${id}-count ${error.id}`,
  });
  const updateCounter = () => {
    const used = byteLength(area.value);
    counter.textContent = used > max * 0.8 ? `${max - used} characters left` : '';
  };
  area.addEventListener('input', updateCounter);
  const el = h('div', { class: 'field' }, h('label', { for: id }, def.label, optionalMark(def)), area, counter, error);
  return {
    def,
    el,
    error,
    focusTarget: area,
    snapshot: () => ({ text: area.value }),
    restore: (d) => {
      if (d && typeof d.text === 'string') area.value = d.text;
      updateCounter();
    },
    read() {
      const text = area.value.trim();
      if (!text) return def.required ? { error: 'Please write a few words here.' } : {};
      if (byteLength(text) > max) return { error: 'This is a little too long; please shorten it.' };
      return { value: text };
    },
  };
}

function vocabField(def, formId, model) {
  const vocabName = def.vocab || VOCAB_FOR_KIND[def.kind];
  const entries = model.vocabList(vocabName);
  const id = `${formId}-${def.name}`;
  const legendId = `${id}-legend`;
  const error = fieldError();
  const search = h('input', {
    type: 'search',
    id: `${id}-search`,
    autocomplete: 'off',
    spellcheck: false,
    'aria-controls': `${id}-options`,
  });
  const noMatch = h('p', { class: 'hint', hidden: true }, 'Nothing matches. You can say it in your own words below.');
  const optionEls = entries.map((entry) => {
    const radio = h('input', { type: 'radio', name: id, value: entry.id });
    const label = h(
      'label',
      { class: 'option' },
      radio,
      h('span', { class: 'option-text' }, h('span', { class: 'option-label' }, entry.label), h('span', { class: 'option-sentence' }, entry.sentence)),
    );
    label.dataset.search = `${entry.label} ${entry.sentence}`.toLowerCase();
    return { entry, radio, label };
  });
  const list = h('div', { class: 'options', id: `${id}-options` }, optionEls.map((o) => o.label));
  const clearBtn = h('button', { type: 'button', class: 'quiet-button', hidden: true }, 'Clear my choice');
  const own = h('textarea', { id: `${id}-text`, rows: 2, maxlength: def.max_length || 4000 });
  const ownLabel = h(
    'label',
    { for: `${id}-text` },
    def.required ? 'In my own words (instead of, or as well as, a choice)' : 'In my own words',
    h('span', { class: 'optional' }, ' (optional)'),
  );
  const selected = () => optionEls.find((o) => o.radio.checked);
  const filter = () => {
    const words = search.value.toLowerCase().split(/\s+/).filter(Boolean);
    let shown = 0;
    for (const o of optionEls) {
      const match = words.every((w) => o.label.dataset.search.includes(w)) || o.radio.checked;
      o.label.hidden = !match;
      if (match) shown += 1;
    }
    noMatch.hidden = shown > 0;
  };
  const syncClear = () => {
    clearBtn.hidden = !selected();
  };
  search.addEventListener('input', filter);
  list.addEventListener('change', syncClear);
  clearBtn.addEventListener('click', () => {
    const s = selected();
    if (s) s.radio.checked = false;
    syncClear();
    filter();
    search.focus();
    clearBtn.closest('form').dispatchEvent(new Event('input', { bubbles: true }));
  });
  const el = h(
    'fieldset',
    { class: 'field vocab', 'aria-describedby': error.id },
    h('legend', { id: legendId }, def.label, optionalMark(def)),
    h('div', { class: 'search' }, h('label', { for: `${id}-search` }, SEARCH_LABEL[vocabName] || 'Search'), search),
    list,
    noMatch,
    clearBtn,
    h('div', { class: 'own-words' }, ownLabel, own),
    error,
  );
  return {
    def,
    el,
    error,
    focusTarget: search,
    snapshot: () => ({ id: selected() ? selected().entry.id : null, text: own.value }),
    restore: (d) => {
      if (!d) return;
      const o = optionEls.find((x) => x.entry.id === d.id);
      if (o) o.radio.checked = true;
      if (typeof d.text === 'string') own.value = d.text;
      syncClear();
    },
    read() {
      const value = {};
      const s = selected();
      if (s) value.id = s.entry.id;
      const text = own.value.trim();
      if (text) {
        if (byteLength(text) > (def.max_length || 4000)) return { error: 'Your own words are a little too long.' };
        value.text = text;
      }
      if (!value.id && !value.text) {
        return def.required ? { error: 'Please choose one, or put it in your own words.' } : {};
      }
      return { value };
    },
  };
}

function sliderField(def, formId) {
  const id = `${formId}-${def.name}`;
  const min = def.min ?? 0;
  const max = def.max ?? 10;
  const error = fieldError();
  const start = Math.round((min + max) / 2);
  const range = h('input', { type: 'range', id, min, max, step: 1, value: start, 'aria-describedby': error.id });
  const output = h('output', { for: id, class: 'slider-value' }, String(start));
  range.addEventListener('input', () => {
    output.textContent = range.value;
  });
  const el = h(
    'div',
    { class: 'field slider' },
    h('label', { for: id }, def.label, optionalMark(def)),
    h('div', { class: 'slider-row' }, h('span', { class: 'end', 'aria-hidden': 'true' }, String(min)), range, h('span', { class: 'end', 'aria-hidden': 'true' }, String(max)), output),
    error,
  );
  return {
    def,
    el,
    error,
    focusTarget: range,
    snapshot: () => ({ value: Number(range.value) }),
    restore: (d) => {
      if (d && Number.isInteger(d.value)) {
        range.value = String(d.value);
        output.textContent = range.value;
      }
    },
    read: () => ({ value: Number(range.value) }),
  };
}

function scaleField(def, formId) {
  const id = `${formId}-${def.name}`;
  const min = def.min ?? 0;
  const max = def.max ?? 10;
  const error = fieldError();
  const radios = [];
  for (let n = min; n <= max; n += 1) {
    radios.push(h('input', { type: 'radio', name: id, value: String(n), id: `${id}-${n}` }));
  }
  const el = h(
    'fieldset',
    { class: 'field scale', 'aria-describedby': error.id },
    h('legend', {}, def.label, optionalMark(def)),
    h('div', { class: 'scale-row' }, radios.map((r) => h('label', { class: 'scale-point', for: r.id }, r, h('span', {}, r.value)))),
    error,
  );
  const checked = () => radios.find((r) => r.checked);
  return {
    def,
    el,
    error,
    focusTarget: radios[0],
    snapshot: () => ({ value: checked() ? Number(checked().value) : null }),
    restore: (d) => {
      const r = d && radios.find((x) => Number(x.value) === d.value);
      if (r) r.checked = true;
    },
    read() {
      const r = checked();
      if (!r) return def.required ? { error: 'Please choose a number.' } : {};
      return { value: Number(r.value) };
    },
  };
}

function choiceField(def, formId) {
  const id = `${formId}-${def.name}`;
  const error = fieldError();
  const radios = (def.options || []).map((opt) => ({
    opt,
    radio: h('input', { type: 'radio', name: id, value: opt.id, id: `${id}-${opt.id}` }),
  }));
  const el = h(
    'fieldset',
    { class: 'field choice', 'aria-describedby': error.id },
    h('legend', {}, def.label, optionalMark(def)),
    h('div', { class: 'choices' }, radios.map(({ opt, radio }) => h('label', { class: 'choice-button', for: radio.id }, radio, h('span', {}, opt.label)))),
    error,
  );
  const checked = () => radios.find((r) => r.radio.checked);
  return {
    def,
    el,
    error,
    focusTarget: radios.length ? radios[0].radio : null,
    snapshot: () => ({ id: checked() ? checked().opt.id : null }),
    restore: (d) => {
      const r = d && radios.find((x) => x.opt.id === d.id);
      if (r) r.radio.checked = true;
    },
    read() {
      const r = checked();
      if (!r) return def.required ? { error: 'Please choose one.' } : {};
      return { value: r.opt.id };
    },
  };
}

function buildField(def, formId, model, step) {
  switch (def.kind) {
    case 'text':
      return textField(def, formId);
    case 'emotion_reactive':
    case 'emotion_primary':
    case 'need':
      return vocabField(def, formId, model);
    case 'rating':
      return step.tag === 'connection_rating' ? scaleField(def, formId) : sliderField(def, formId);
    case 'choice':
      return choiceField(def, formId);
    default:
      return textField(def, formId);
  }
}

/**
 * `onTyping` (optional) is called on every edit, with nothing of what was typed.
 * @returns {{el: HTMLFormElement, setSending(b:boolean):void, setNote(t:string):void,
 *   showError(t:string):void, forget():void, focusFirst():void}}
 */
export function buildStepForm({ model, step, draftKey, submitLabel, onSubmit, onTyping }) {
  const formId = uniqueId('step');
  const fields = step.inputs.map((def) => buildField(def, formId, model, step));
  const formError = h('p', { class: 'form-error', role: 'alert', hidden: true });
  const note = h('p', { class: 'send-note', role: 'status' });
  const submit = h('button', { type: 'submit', class: 'primary' }, submitLabel);
  const form = h(
    'form',
    { class: 'step-form', novalidate: true },
    fields.map((f) => f.el),
    formError,
    h('div', { class: 'form-actions' }, submit, note),
  );
  const draft = loadDraft(draftKey);
  if (draft) for (const f of fields) f.restore(draft[f.def.name]);
  const persist = () => {
    const snap = {};
    for (const f of fields) snap[f.def.name] = f.snapshot();
    saveDraft(draftKey, snap);
  };
  form.addEventListener('input', persist);
  // A content-free "I am composing" signal (the caller throttles it).
  if (onTyping) form.addEventListener('input', () => onTyping());
  form.addEventListener('change', persist);
  let sending = false;
  let blocked = '';
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    if (sending) return;
    formError.hidden = true;
    if (blocked) {
      formError.textContent = blocked;
      formError.hidden = false;
      return;
    }
    const input = {};
    let firstBad = null;
    for (const f of fields) {
      const res = f.read();
      const control = f.el.matches('fieldset') ? f.el : f.focusTarget;
      if (res.error) {
        f.error.textContent = res.error;
        f.error.hidden = false;
        control.setAttribute('aria-invalid', 'true');
        if (!firstBad) firstBad = f;
      } else {
        f.error.hidden = true;
        control.removeAttribute('aria-invalid');
        if (res.value !== undefined) input[f.def.name] = res.value;
      }
    }
    if (firstBad) {
      if (firstBad.focusTarget) firstBad.focusTarget.focus();
      return;
    }
    onSubmit(input);
  });
  return {
    el: form,
    setSending(on) {
      sending = on;
      submit.disabled = on;
      submit.setAttribute('aria-busy', on ? 'true' : 'false');
    },
    /** A reason the form cannot be sent right now (paused, offline), or ''. */
    setBlocked(reason) {
      blocked = reason;
      note.textContent = reason;
    },
    showError(text) {
      formError.textContent = text;
      formError.hidden = false;
    },
    forget() {
      dropDraft(draftKey);
    },
    focusFirst() {
      const f = fields[0];
      if (f && f.focusTarget) f.focusTarget.focus();
    },
  };
}
