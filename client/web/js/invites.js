// A room's invitation links as rows the therapist can copy, each with a
// visible "Copied" confirmation, and the invitation panel: each partner's
// link as recorded (issued, expires, revoked) with "Revoke and reissue". A
// link is shown only when it is issued: the server keeps a hash of it, not
// the link. The therapist's own live view opens with the login (openLiveView).

import { h, replaceChildren, uniqueId } from './dom.js';

const ROWS = [
  ['partner_a', 'Partner A', 'Send it to partner A only.'],
  ['partner_b', 'Partner B', 'Send it to partner B only.'],
];
const ROLE_NAME = {
  partner_a: 'Partner A',
  partner_b: 'Partner B',
  therapist: 'Therapist (operator link)',
  observer: 'Observer (operator link)',
};

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

/** The therapist's (or observer's) live view: opened with the login, no link. */
export function openLiveView(roomId) {
  openRoom(`index.html?room=${encodeURIComponent(roomId)}`);
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

function when(ms) {
  return new Date(ms).toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' });
}

function statusOf(inv) {
  if (inv.revoked) return 'revoked';
  if (inv.expired) return 'expired';
  return `valid until ${when(inv.expires_at)}`;
}

/**
 * The invitation panel of a room: per partner, its links as recorded and a
 * "Revoke and reissue" button (reissue(role) resolves with the server's
 * answer: {url, invitations}); operator links (therapist, observer) made on
 * the command line are listed with "Revoke". A new link is shown once.
 */
export function invitationPanel(invitations, { reissue, announce }) {
  const root = h('div', { class: 'invitation-panel' });
  const render = (list, fresh) => {
    const roles = ['partner_a', 'partner_b', ...['therapist', 'observer'].filter((r) => list.some((i) => i.role === r && !i.revoked && !i.expired))];
    const items = roles.map((role) => {
      const mine = list.filter((i) => i.role === role);
      const live = mine.filter((i) => !i.revoked && !i.expired);
      const partner = role === 'partner_a' || role === 'partner_b';
      const problem = h('p', { class: 'form-error', role: 'alert', hidden: true });
      const button = h('button', { type: 'button', class: 'secondary reissue', dataset: { role } }, partner ? 'Revoke and reissue' : 'Revoke', h('span', { class: 'visually-hidden' }, ` ${ROLE_NAME[role]} link`));
      button.addEventListener('click', async () => {
        button.disabled = true;
        problem.hidden = true;
        try {
          const res = await reissue(role);
          render(res.invitations, res.url ? { [role]: res.url } : {});
          if (announce) announce(partner ? `${ROLE_NAME[role]}'s old link no longer works. The new link is shown below it.` : `${ROLE_NAME[role]} links revoked.`);
        } catch (err) {
          problem.textContent = (err && err.message) || 'That did not work. Please try again.';
          problem.hidden = false;
          button.disabled = false;
        }
      });
      const status = live.length
        ? `${live.length === 1 ? 'One link' : `${live.length} links`} in use, last issued ${when(live[live.length - 1].issued_at)} by ${live[live.length - 1].issued_by}, ${statusOf(live[live.length - 1])}.`
        : mine.length
          ? 'No link in use: every one issued has been revoked or has expired.'
          : 'No link issued yet.';
      const revoked = mine.filter((i) => i.revoked).length;
      return h(
        'li',
        { class: `invitation invitation-${role}`, dataset: { role } },
        h('h4', {}, ROLE_NAME[role]),
        h('p', { class: 'invitation-status' }, status, revoked ? ` ${revoked} revoked.` : ''),
        fresh && fresh[role] ? inviteList({ [role]: fresh[role] }, announce) : null,
        h('div', { class: 'form-actions' }, button),
        problem,
      );
    });
    replaceChildren(
      root,
      h('p', { class: 'hint' }, 'A link is shown only when it is made: the server keeps no copy of it. If a partner lost theirs, or it went to the wrong person, revoke it and send the new one. Revoking ends that link at once, also on a device where it is open.'),
      h('ul', { class: 'invitation-list' }, items),
    );
  };
  render(invitations, null);
  return root;
}

/**
 * Supervisors who observe the room (named accounts of kind supervisor):
 * their names with "Remove", and a field to invite one by account name.
 * observe(name, remove) resolves with {observers}.
 */
export function observerPanel(observers, { observe, announce }) {
  const root = h('section', { class: 'observer-panel', 'aria-label': 'Supervisors observing' });
  const render = (list) => {
    const id = uniqueId('observer-name');
    const input = h('input', { id, type: 'text', autocomplete: 'off', spellcheck: 'false', 'aria-describedby': `${id}-hint` });
    const invite = h('button', { type: 'submit', class: 'secondary' }, 'Invite to observe');
    const problem = h('p', { class: 'form-error', role: 'alert', hidden: true });
    const act = async (name, remove) => {
      problem.hidden = true;
      try {
        const res = await observe(name, remove);
        render(res.observers);
        if (announce) announce(remove ? `${name} no longer observes this room.` : `${name} may now observe this room.`);
      } catch (err) {
        problem.textContent = (err && err.message) || 'That did not work. Please try again.';
        problem.hidden = false;
      }
    };
    const form = h(
      'form',
      { class: 'observer-form', novalidate: true },
      h('label', { for: id }, 'Supervisor’s account name'),
      h('p', { class: 'hint', id: `${id}-hint` }, 'A supervisor sees the live room as you do, without the private line or check-in answers, and can do nothing in it. They log in with their own account.'),
      h('div', { class: 'invite-row' }, input, invite),
      problem,
    );
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      const name = input.value.trim();
      if (name) act(name, false);
    });
    const items = list.map((o) =>
      h(
        'li',
        { class: 'observer' },
        h('span', {}, o.name),
        h('button', { type: 'button', class: 'secondary', onclick: () => act(o.name, true) }, 'Remove', h('span', { class: 'visually-hidden' }, ` ${o.name}`)),
      ),
    );
    replaceChildren(
      root,
      h('h4', {}, 'Supervisors observing'),
      items.length ? h('ul', { class: 'observer-list' }, items) : h('p', { class: 'hint' }, 'Nobody observes this room.'),
      form,
    );
  };
  render(observers);
  return root;
}
