// A room's invitation links as rows the therapist can copy, each with a
// visible "Copied" confirmation; the therapist's own link also opens the room.

import { h, uniqueId } from './dom.js';

const ROWS = [
  ['partner_a', 'Partner A', 'Send it to partner A only.'],
  ['partner_b', 'Partner B', 'Send it to partner B only.'],
  ['therapist', 'You (therapist)', 'Your own link: it opens the live room.'],
  ['observer', 'Observer (read-only)', 'For a supervisor: sees what you see, can do nothing.'],
];

/** Copies text; resolves true when it reached the clipboard. */
export async function copyText(text, input) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    // Older browsers or a refused permission: copy the selected field.
    if (!input) return false;
    input.focus();
    input.select();
    try {
      return document.execCommand('copy');
    } catch {
      return false;
    }
  }
}

/** Opens a room link in a new tab (the dashboard stays), or here if that is refused. */
export function openRoom(url) {
  const w = window.open(url, '_blank');
  if (w) w.opener = null;
  else location.assign(url);
}

export function inviteList(invites, announce) {
  const rows = ROWS.filter(([role]) => invites[role]).map(([role, name, hint]) => {
    const id = uniqueId(`invite-${role}`);
    const input = h('input', {
      id,
      type: 'text',
      readOnly: true,
      value: invites[role],
      class: 'invite-url',
      spellcheck: 'false',
      'aria-describedby': `${id}-hint`,
    });
    input.addEventListener('focus', () => input.select());
    const done = h('span', { class: 'copied', hidden: true }, 'Copied');
    const copy = h('button', { type: 'button', class: 'secondary copy', dataset: { role } }, 'Copy', h('span', { class: 'visually-hidden' }, ` ${name} link`));
    let timer = null;
    copy.addEventListener('click', async () => {
      const ok = await copyText(invites[role], input);
      clearTimeout(timer);
      done.textContent = ok ? '✓ Copied' : 'Select the link and copy it';
      done.hidden = false;
      copy.classList.toggle('done', ok);
      if (announce) announce(ok ? `${name} link copied.` : 'Copying did not work here. The link is selected: copy it by hand.');
      timer = setTimeout(() => {
        done.hidden = true;
        copy.classList.remove('done');
      }, 4000);
    });
    const actions = [copy, done];
    if (role === 'therapist') {
      const open = h('a', { href: invites[role], class: 'button-link', target: '_blank', rel: 'noopener' }, 'Open the room');
      actions.splice(1, 0, open);
    }
    return h(
      'li',
      { class: `invite invite-${role}` },
      h('label', { for: id }, name),
      h('p', { class: 'hint', id: `${id}-hint` }, hint),
      h('div', { class: 'invite-row' }, input, h('div', { class: 'invite-actions' }, actions)),
    );
  });
  return h('ul', { class: 'invite-list' }, rows);
}
